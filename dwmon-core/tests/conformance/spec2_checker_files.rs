//! Checker files (docs/FORMAT.md) — sections in any order, defaults, names, CRLF/BOM, and every error
//! kind with its exact line and column.

use dwmon_core::checker_file::CheckerFileErrorKind as Kind;
use dwmon_core::requirement::RequirementErrorKind;
use dwmon_core::{load_dir, parse_checker, Checker, CheckerFileError, Requirement};

/// The seed's sample file (`000_*`), byte for byte.
const SEED_SAMPLE: &str = r#"__QUERY__
SELECT
execution_id AS dwmon_unique_key,
ts AS dwmon_timestamp
FROM model_executions
ORDER BY dwmon_timestamp DESC
LIMIT 10000
__REQUIREMENTS__
# This is a comment
CHECKHOURS0-23 CHECKMINUTES0-59 WEEKENDS WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS180
__SOURCE__
AWS
__EXTRA__
{"some_extra_config": ["your", "arbitrary", "json"], "alert": "devops@nerds.com"}
"#;

const REQ: &str =
    "CHECKHOURS0-23 CHECKMINUTES0-59 WEEKENDS WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS180";

#[test]
fn seed_sample_parses_as_written() -> Result<(), Box<dyn std::error::Error>> {
    let c = parse_checker("new_executions.dwmon", SEED_SAMPLE)?;
    let expected = Checker {
        name: "new_executions".to_owned(),
        path: None,
        query: "SELECT\nexecution_id AS dwmon_unique_key,\nts AS dwmon_timestamp\n\
                FROM model_executions\nORDER BY dwmon_timestamp DESC\nLIMIT 10000"
            .to_owned(),
        source: "AWS".to_owned(),
        extra: serde_json::json!({
            "some_extra_config": ["your", "arbitrary", "json"],
            "alert": "devops@nerds.com"
        }),
        timezone: None,
        requirements: vec![Requirement::parse(REQ)?],
    };
    assert_eq!(c, expected);
    Ok(())
}

#[test]
fn seed_sample_parses_with_crlf_and_bom() -> Result<(), CheckerFileError> {
    let plain = parse_checker("new_executions.dwmon", SEED_SAMPLE)?;
    let crlf = SEED_SAMPLE.replace('\n', "\r\n");
    assert_eq!(parse_checker("new_executions.dwmon", &crlf)?, plain);
    let bom = format!("\u{feff}{crlf}");
    assert_eq!(parse_checker("new_executions.dwmon", &bom)?, plain);
    Ok(())
}

#[test]
fn sections_in_any_order_give_the_same_checker() -> Result<(), CheckerFileError> {
    let sections = [
        "__QUERY__\nSELECT 1\n",
        &format!("__REQUIREMENTS__\n{REQ}\n"),
        "__SOURCE__\nwarehouse\n",
        "__EXTRA__\n{\"team\": \"data\"}\n",
        "__TIMEZONE__\nEurope/London\n",
    ];
    let orders: [[usize; 5]; 6] = [
        [0, 1, 2, 3, 4],
        [4, 3, 2, 1, 0],
        [1, 0, 4, 2, 3],
        [2, 4, 0, 3, 1],
        [3, 1, 4, 0, 2],
        [4, 0, 1, 3, 2],
    ];
    let first = parse_checker("x.dwmon", &sections.concat())?;
    assert_eq!(first.source, "warehouse");
    assert_eq!(first.extra, serde_json::json!({"team": "data"}));
    assert_eq!(first.timezone, Some(chrono_tz::Europe::London));
    for order in orders {
        let text: String = order.iter().map(|&i| sections[i]).collect();
        assert_eq!(parse_checker("x.dwmon", &text)?, first, "{order:?}");
    }
    Ok(())
}

#[test]
fn optional_sections_default() -> Result<(), CheckerFileError> {
    let c = parse_checker(
        "x.dwmon",
        &format!("\n\n__REQUIREMENTS__\n\n{REQ}\n\n__QUERY__\n  q\n"),
    )?;
    assert_eq!(c.source, "default");
    assert_eq!(c.extra, serde_json::json!({}));
    assert_eq!(c.timezone, None);
    assert_eq!(
        c.zone(chrono_tz::America::New_York),
        chrono_tz::America::New_York
    );
    assert_eq!(c.query, "q");
    Ok(())
}

#[test]
fn requirements_keep_file_order_and_skip_comments() -> Result<(), Box<dyn std::error::Error>> {
    let text = "__QUERY__\nq\n__REQUIREMENTS__\n\
                # morning\n\
                CHECKHOURS9-9 CHECKMINUTES0-0 WEEKENDS WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS180\n\
                \n   # afternoon, indented\n\
                \tCHECKHOURS13-13 CHECKMINUTES0-0 WEEKENDS WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS180\n";
    let c = parse_checker("x.dwmon", text)?;
    let printed: Vec<String> = c.requirements.iter().map(Requirement::to_string).collect();
    assert_eq!(
        printed,
        [
            "CHECKHOURS9-9 CHECKMINUTES0-0 WEEKENDS WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS180",
            "CHECKHOURS13-13 CHECKMINUTES0-0 WEEKENDS WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS180",
        ]
    );
    Ok(())
}

#[test]
fn checker_names() {
    let body = format!("__QUERY__\nq\n__REQUIREMENTS__\n{REQ}\n");
    let hundred = format!("{}.dwmon", "n".repeat(100));
    for good in [
        "a.dwmon",
        "A-Z_a.z-0.9.dwmon",
        "checkers/sub/x.dwmon",
        hundred.as_str(),
    ] {
        assert!(parse_checker(good, &body).is_ok(), "{good}");
    }
    let too_long = format!("{}.dwmon", "n".repeat(101));
    for bad in [
        "a.dwmon.txt",
        "a",
        ".dwmon",
        "a b.dwmon",
        "a+b.dwmon",
        "é.dwmon",
        "a.DWMON",
        too_long.as_str(),
    ] {
        let err = parse_checker(bad, &body).err();
        assert_eq!(
            err.map(|e| (e.line, e.column, e.kind)),
            Some((1, 1, Kind::InvalidName)),
            "{bad}"
        );
    }
}

/// `(file text, line, column, kind, message)`: every error kind at its exact position.
fn error_cases() -> Vec<(String, usize, usize, Kind, String)> {
    let q = "__QUERY__\nq\n";
    let r = format!("__REQUIREMENTS__\n{REQ}\n");
    let case = |text: String, line, column, kind, message: &str| {
        (text, line, column, kind, message.to_owned())
    };
    vec![
        case(format!("# a comment\n{q}{r}"), 1, 1, Kind::TextBeforeFirstSection,
             "text before the first section; expected a section marker such as __QUERY__"),
        case(format!("\n\n   SELECT 1\n{q}{r}"), 3, 4, Kind::TextBeforeFirstSection,
             "text before the first section; expected a section marker such as __QUERY__"),
        case(format!("{q}{r}__SOURCES__\nx\n"), 5, 1, Kind::UnknownSection,
             "unknown section marker `__SOURCES__`; expected one of __QUERY__, __REQUIREMENTS__, __SOURCE__, __EXTRA__, __TIMEZONE__"),
        case(format!("{q}{r}  __extra__\n{{}}\n"), 5, 3, Kind::UnknownSection,
             "unknown section marker `__extra__` (markers are case-sensitive: did you mean __EXTRA__?); expected one of __QUERY__, __REQUIREMENTS__, __SOURCE__, __EXTRA__, __TIMEZONE__"),
        case(format!("{q}{r}__QUERY__\nq2\n"), 5, 1, Kind::DuplicateSection,
             "duplicate __QUERY__ section (first at line 1); each section may appear at most once"),
        case(r.clone(), 1, 1, Kind::MissingSection,
             "missing __QUERY__ section; every checker needs __QUERY__ and __REQUIREMENTS__"),
        case(q.to_owned(), 1, 1, Kind::MissingSection,
             "missing __REQUIREMENTS__ section; every checker needs __QUERY__ and __REQUIREMENTS__"),
        case(format!("{r}__QUERY__\n  \n\n"), 3, 1, Kind::EmptyQuery,
             "__QUERY__ section is empty; expected the query text on the lines after it"),
        case(format!("{q}__REQUIREMENTS__\n# only a comment\n\n"), 3, 1, Kind::NoRequirements,
             "__REQUIREMENTS__ section has no requirement; expected at least one line such as `CHECKHOURS0-23 CHECKMINUTES0-59 WEEKENDS WEEKDAYS MINNUM1 MAXNUM100 LOOKBACKSECONDS3600`"),
        case(format!("{q}{r}__SOURCE__\n\n"), 5, 1, Kind::InvalidSource,
             "__SOURCE__ section is empty; expected one source name"),
        case(format!("{q}{r}__SOURCE__\nAWS\n  GCP\n"), 7, 3, Kind::InvalidSource,
             "__SOURCE__ section has more than one line; expected only one source name"),
        case(format!("{q}{r}__TIMEZONE__\n  Mars/Olympus\n"), 6, 3, Kind::InvalidTimeZone,
             "unknown time zone `Mars/Olympus`; expected an IANA time zone name such as America/New_York or UTC (names are case-sensitive)"),
        case(format!("{q}{r}__TIMEZONE__\n"), 5, 1, Kind::InvalidTimeZone,
             "__TIMEZONE__ section is empty; expected one IANA time zone name such as America/New_York"),
        case(format!("{q}{r}__EXTRA__\n"), 5, 1, Kind::InvalidExtra,
             "__EXTRA__ section is empty; expected a JSON value such as {}"),
        case(format!("{q}{r}__EXTRA__\n{{\"a\": [1,\n   2,, 3]}}\n"), 7, 6, Kind::InvalidExtra,
             "invalid JSON in __EXTRA__: expected value; expected a JSON value such as {}"),
        case(format!("{q}{r}__EXTRA__\n{{\"a\": 1\n\n"), 6, 8, Kind::InvalidExtra,
             "invalid JSON in __EXTRA__: EOF while parsing an object; expected a JSON value such as {}"),
        case(format!("{q}{r}__EXTRA__\n{{}} {{}}\n"), 6, 4, Kind::InvalidExtra,
             "invalid JSON in __EXTRA__: trailing characters; expected a JSON value such as {}"),
        // Requirement errors keep the column within the line, leading whitespace included.
        case(format!("{q}__REQUIREMENTS__\n# c\n\n  CHECKHOURS0-23 WEEKDAYS MAXNUM2 CHECKMINUTES0 MINNUM5 LOOKBACKSECONDS60\n"),
             6, 27, Kind::Requirement(RequirementErrorKind::MaxBelowMin),
             "MAXNUM must be >= MINNUM (5 > 2)"),
        case(format!("{q}__REQUIREMENTS__\n{REQ}\n\tCHECKHOURS0-23 CHECKMINUTES60 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60\n"),
             5, 17, Kind::Requirement(RequirementErrorKind::OutOfRange),
             "CHECKMINUTES: `60` is out of range; expected a minute from 0 to 59"),
        case(format!("{q}__REQUIREMENTS__\r\n{REQ} #trailing\r\n"), 4, 87, Kind::Requirement(RequirementErrorKind::UnknownOption),
             "unexpected `#trailing`; expected an option (CHECKHOURS, CHECKMINUTES, CHECKDAYS, CHECKMONTHS, CHECKWEEKDAYS, WEEKDAYS, WEEKENDS, MINNUM, MAXNUM, LOOKBACKSECONDS, DELAYSECONDS, SEVERITYWARNING, SEVERITYCRITICAL, FAILAFTER, RECOVERAFTER, ALERTKEY, PINGS, MINDURATION, MAXDURATION), with its value attached without a space"),
    ]
}

#[test]
fn every_error_kind_with_its_line_and_column() {
    for (text, line, column, kind, message) in error_cases() {
        let expected = CheckerFileError {
            file: "bad.dwmon".to_owned(),
            line,
            column,
            kind,
            message,
        };
        assert_eq!(parse_checker("bad.dwmon", &text), Err(expected), "{text:?}");
        // The same positions with CRLF line endings.
        let crlf = text.replace('\n', "\r\n");
        let err = parse_checker("bad.dwmon", &crlf).err();
        assert_eq!(
            err.map(|e| (e.line, e.column, e.kind)),
            Some((line, column, kind)),
            "{crlf:?}"
        );
    }
}

#[test]
fn the_spec_example_message() {
    let text = format!(
        "__QUERY__\nq\n__SOURCE__\nAWS\n__EXTRA__\n{{}}\n__TIMEZONE__\nUTC\n\n\n\n__REQUIREMENTS__\n{REQ}\n  \
         CHECKHOURS0-23 WEEKDAYS MAXNUM2 CHECKMINUTES0 MINNUM5 LOOKBACKSECONDS60\n"
    );
    let err = parse_checker("new_executions.dwmon", &text).map_err(|e| e.to_string());
    assert_eq!(
        err,
        Err("new_executions.dwmon:14:27: MAXNUM must be >= MINNUM (5 > 2)".to_owned())
    );
}

#[test]
fn load_dir_keeps_good_checkers_next_to_bad_files() -> std::io::Result<()> {
    let dir = tempfile::tempdir()?;
    let write = |name: &str, bytes: &[u8]| std::fs::write(dir.path().join(name), bytes);
    write("new_executions.dwmon", SEED_SAMPLE.as_bytes())?;
    write(
        "a_bad.dwmon",
        format!("__QUERY__\nq\n__REQUIREMENTS__\n{REQ} EXTRA\n").as_bytes(),
    )?;
    write("binary.dwmon", &[0x5f, 0x5f, 0xc3, 0x28, 0x00, 0xff])?;
    write("bad name.dwmon", SEED_SAMPLE.as_bytes())?;
    write("backup.dwmon~", b"junk")?;
    write("notes.txt", b"junk")?;
    std::fs::create_dir(dir.path().join("nested"))?;
    std::fs::write(dir.path().join("nested").join("inner.dwmon"), SEED_SAMPLE)?;
    let report = load_dir(dir.path())?;
    let good: Vec<(&str, bool)> = report
        .checkers
        .iter()
        .map(|c| {
            (
                c.name.as_str(),
                c.path == Some(dir.path().join("new_executions.dwmon")),
            )
        })
        .collect();
    assert_eq!(good, [("new_executions", true)]);
    let errors: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        errors,
        [
            "a_bad.dwmon:4:87: unexpected `EXTRA`; expected an option (CHECKHOURS, CHECKMINUTES, CHECKDAYS, CHECKMONTHS, CHECKWEEKDAYS, WEEKDAYS, WEEKENDS, MINNUM, MAXNUM, LOOKBACKSECONDS, DELAYSECONDS, SEVERITYWARNING, SEVERITYCRITICAL, FAILAFTER, RECOVERAFTER, ALERTKEY, PINGS, MINDURATION, MAXDURATION), with its value attached without a space",
            "bad name.dwmon:1:1: invalid checker file name `bad name.dwmon`; expected NAME.dwmon with NAME of 1 to 100 characters from A-Z a-z 0-9 _ . -",
            "binary.dwmon:1:3: the file is not valid UTF-8; expected UTF-8 text",
        ]
    );
    Ok(())
}

#[test]
fn load_dir_fails_only_when_the_directory_is_unreadable() -> std::io::Result<()> {
    let dir = tempfile::tempdir()?;
    assert!(load_dir(&dir.path().join("does-not-exist")).is_err());
    let empty = load_dir(dir.path())?;
    assert!(empty.checkers.is_empty() && empty.errors.is_empty());
    Ok(())
}

#[test]
fn the_format_reference_example_parses() -> Result<(), Box<dyn std::error::Error>> {
    let doc = include_str!("../../../docs/FORMAT.md");
    let example = doc
        .split("```text\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .ok_or("docs/FORMAT.md has no ```text example")?;
    let c = parse_checker("new_executions.dwmon", example)?;
    assert_eq!(c.requirements.len(), 2);
    assert_eq!(c.timezone, Some(chrono_tz::America::New_York));
    assert_eq!(
        c.requirements[1].to_string(),
        "CHECKHOURS9-17 CHECKMINUTES*/20 WEEKDAYS MINNUM1 MAXNUM1000 LOOKBACKSECONDS3600"
    );
    Ok(())
}

/// A checker file whose `__EXTRA__` is `extra` (the JSON starts at line 6, column 1).
fn with_extra(extra: &str) -> String {
    format!("__QUERY__\nq\n__REQUIREMENTS__\n{REQ}\n__EXTRA__\n{extra}\n")
}

#[test]
fn a_parent_must_be_another_checkers_name() -> Result<(), CheckerFileError> {
    let c = parse_checker("orders.dwmon", &with_extra(r#"{"parent": "orders_db"}"#))?;
    assert_eq!(c.parent(), Some("orders_db"));
    assert_eq!(
        parse_checker("orders.dwmon", &with_extra("{}"))?.parent(),
        None
    );
    for (extra, column, says) in [
        (r#"{"parent": "orders"}"#, 2, "cannot be its own parent"),
        (
            r#"{"team": "x", "parent": "../db"}"#,
            15,
            "is not a checker name",
        ),
        (r#"{"parent": ""}"#, 2, "is not a checker name"),
        (r#"{"parent": ["db"]}"#, 2, "must be a string"),
    ] {
        let e = parse_checker("orders.dwmon", &with_extra(extra)).expect_err(extra);
        assert_eq!(e.kind, Kind::InvalidParent, "{extra}");
        assert_eq!((e.line, e.column), (6, column), "{extra}: {e}");
        assert!(e.message.contains(says), "{extra}: {e}");
    }
    Ok(())
}

#[test]
fn load_dir_refuses_unknown_parents_and_cycles_at_the_parent_key() -> std::io::Result<()> {
    let dir = tempfile::tempdir()?;
    let write = |name: &str, extra: &str| std::fs::write(dir.path().join(name), with_extra(extra));
    write("db.dwmon", "{}")?;
    write("orders.dwmon", "{\n  \"parent\": \"db\"\n}")?;
    write("typo.dwmon", "{\"team\": 1,\n \"parent\": \"dbb\"}")?;
    write("a.dwmon", r#"{"parent": "b"}"#)?;
    write("b.dwmon", r#"{"parent": "a"}"#)?;
    write("below_cycle.dwmon", r#"{"parent": "a"}"#)?;
    // A parent whose file does not load is still a parent (its checker is in ERROR).
    std::fs::write(dir.path().join("broken.dwmon"), "junk")?;
    write("child_of_broken.dwmon", r#"{"parent": "broken"}"#)?;
    let report = load_dir(dir.path())?;
    let names: Vec<&str> = report.checkers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["below_cycle", "child_of_broken", "db", "orders"]);
    let mut errors: Vec<(String, Kind)> = report
        .errors
        .iter()
        .map(|e| (e.to_string(), e.kind))
        .collect();
    errors.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        errors,
        [
            (
                "a.dwmon:6:2: \"parent\": a cycle of parents (a -> b -> a); a checker cannot depend on itself".to_string(),
                Kind::ParentCycle
            ),
            (
                "b.dwmon:6:2: \"parent\": a cycle of parents (b -> a -> b); a checker cannot depend on itself".to_string(),
                Kind::ParentCycle
            ),
            (
                "broken.dwmon:1:1: text before the first section; expected a section marker such as __QUERY__".to_string(),
                Kind::TextBeforeFirstSection
            ),
            (
                "typo.dwmon:7:2: \"parent\": no checker \"dbb\" (no file dbb.dwmon in the checker directory); expected the name of another checker".to_string(),
                Kind::UnknownParent
            ),
        ]
    );
    let orders = report.checkers.iter().find(|c| c.name == "orders");
    assert_eq!(orders.and_then(Checker::parent), Some("db"));
    Ok(())
}
