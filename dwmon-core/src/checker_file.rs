//! Checker files (docs/FORMAT.md): `NAME.dwmon` with `__QUERY__`, `__REQUIREMENTS__`, `__SOURCE__`,
//! `__EXTRA__` and `__TIMEZONE__` sections.
//!
//! CONTRACT (other crates rely on these names): `Checker` (pub fields), `Checker::zone`,
//! `parse_checker(file_name, text)`, `load_dir(dir)`, `LoadReport { checkers, errors }`,
//! `CheckerFileError { file, line, column, .. }` displaying as `FILE:LINE:COL: message`.

use crate::requirement::{Requirement, RequirementErrorKind};
use std::path::PathBuf;

/// A parsed checker file.
#[derive(Debug, Clone, PartialEq)]
pub struct Checker {
    /// The file stem, e.g. `new_executions`.
    pub name: String,
    /// Where it was loaded from, if from a file.
    pub path: Option<PathBuf>,
    /// The `__QUERY__` text, trimmed.
    pub query: String,
    /// The `__SOURCE__` name (`default` when absent).
    pub source: String,
    /// The `__EXTRA__` JSON (`{}` when absent).
    pub extra: serde_json::Value,
    /// The `__TIMEZONE__` zone, if given.
    pub timezone: Option<chrono_tz::Tz>,
    /// The requirements, in file order (their index is the `requirement_index`).
    pub requirements: Vec<Requirement>,
}

impl Checker {
    /// The zone schedules are matched in: the checker's own, else `default`.
    pub fn zone(&self, default: chrono_tz::Tz) -> chrono_tz::Tz {
        self.timezone.unwrap_or(default)
    }

    /// The checker this one depends on: the `"parent"` string of its `__EXTRA__`
    /// (docs/ALERTING.md, "Dependencies"). While the parent is BAD or ERROR, this checker's
    /// notifications are held.
    ///
    /// ```
    /// let text = "__QUERY__\nq\n__REQUIREMENTS__\n\
    ///             CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM1 MAXNUM9 LOOKBACKSECONDS60\n\
    ///             __EXTRA__\n{\"parent\": \"orders_db\"}\n";
    /// let checker = dwmon_core::parse_checker("orders.dwmon", text)?;
    /// assert_eq!(checker.parent(), Some("orders_db"));
    /// # Ok::<(), dwmon_core::CheckerFileError>(())
    /// ```
    pub fn parent(&self) -> Option<&str> {
        parent_of(&self.extra)
    }
}

/// The `__EXTRA__` key naming a checker's parent.
pub const PARENT_KEY: &str = "parent";

/// The `"parent"` string of a checker's `__EXTRA__` (also of a check record's `extra`).
pub fn parent_of(extra: &serde_json::Value) -> Option<&str> {
    extra.get(PARENT_KEY).and_then(serde_json::Value::as_str)
}

/// What kind of mistake a [`CheckerFileError`] reports, for callers that match on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CheckerFileErrorKind {
    /// The file name is not `NAME.dwmon` with `NAME` of 1-100 characters `[A-Za-z0-9_.-]`.
    InvalidName,
    /// The file could not be read.
    Unreadable,
    /// The file is not valid UTF-8 (the position is that of the first invalid byte).
    NotUtf8,
    /// Non-blank text before the first section marker.
    TextBeforeFirstSection,
    /// A `__X__` marker line that is not one of the five sections (markers are case-sensitive).
    UnknownSection,
    /// A section given twice.
    DuplicateSection,
    /// `__QUERY__` or `__REQUIREMENTS__` is absent.
    MissingSection,
    /// `__QUERY__` has no text.
    EmptyQuery,
    /// `__SOURCE__` has no name, more than one line, or a name longer than [`MAX_NAME_LEN`].
    InvalidSource,
    /// `__EXTRA__` is empty or not valid JSON.
    InvalidExtra,
    /// `__TIMEZONE__` is empty, has more than one line, or names an unknown zone.
    InvalidTimeZone,
    /// `__REQUIREMENTS__` has no requirement line.
    NoRequirements,
    /// A requirement line failed to parse (docs/FORMAT.md, "Requirement lines").
    Requirement(RequirementErrorKind),
    /// Two requirement lines of one file have the same `ALERTKEY`.
    DuplicateAlertKey,
    /// The `"parent"` of `__EXTRA__` is not a checker name, or names the checker itself.
    InvalidParent,
    /// The `"parent"` names no checker file of the directory ([`load_dir`]).
    UnknownParent,
    /// The checker is on a cycle of `"parent"` links ([`load_dir`]).
    ParentCycle,
    /// A push checker (`__SOURCE__` `push`) with a `__QUERY__`, or a `PINGS<KIND>`,
    /// `MINDURATION` or `MAXDURATION` option in a checker that is not a push checker.
    Push,
}

/// A checker file could not be loaded. Displays as `FILE:LINE:COL: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct CheckerFileError {
    /// The file name as given (e.g. `new_executions.dwmon`).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// What kind of mistake it is.
    pub kind: CheckerFileErrorKind,
    /// What was wrong and what was expected.
    pub message: String,
}
/// The result of loading a directory: the good checkers *and* the per-file errors.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Checkers that parsed, sorted by name.
    pub checkers: Vec<Checker>,
    /// One error per bad file.
    pub errors: Vec<CheckerFileError>,
}

/// The file name suffix of checker files.
pub const EXTENSION: &str = ".dwmon";

/// The longest accepted checker name.
pub const MAX_NAME_LEN: usize = 100;

/// The five sections of a checker file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SectionKind {
    Query,
    Requirements,
    Source,
    Extra,
    TimeZone,
}

const SECTIONS: [(&str, SectionKind); 5] = [
    ("__QUERY__", SectionKind::Query),
    ("__REQUIREMENTS__", SectionKind::Requirements),
    ("__SOURCE__", SectionKind::Source),
    ("__EXTRA__", SectionKind::Extra),
    ("__TIMEZONE__", SectionKind::TimeZone),
];

/// One section: where its marker is and its content lines `(line number, text)`.
struct Section<'a> {
    kind: SectionKind,
    marker: &'static str,
    line: usize,
    column: usize,
    lines: Vec<(usize, &'a str)>,
}

impl<'a> Section<'a> {
    /// The non-blank content lines.
    fn non_blank(&self) -> impl Iterator<Item = &(usize, &'a str)> {
        self.lines
            .iter()
            .filter(|(_, text)| !text.trim().is_empty())
    }

    /// The content as one string, lines joined with `\n`.
    fn text(&self) -> String {
        let lines: Vec<&str> = self.lines.iter().map(|(_, text)| *text).collect();
        lines.join("\n")
    }
}

/// Builds errors for one file.
struct ErrorAt<'a> {
    file: &'a str,
}

impl ErrorAt<'_> {
    fn at(
        &self,
        line: usize,
        column: usize,
        kind: CheckerFileErrorKind,
        message: impl Into<String>,
    ) -> CheckerFileError {
        CheckerFileError {
            file: self.file.to_owned(),
            line,
            column,
            kind,
            message: message.into(),
        }
    }
}

/// The 1-based column of the first non-blank character of `text`.
fn indent_column(text: &str) -> usize {
    text.chars().take_while(|c| c.is_whitespace()).count() + 1
}

/// If `trimmed` has the shape of a marker line (`__NAME__`), its name.
fn marker_shape(trimmed: &str) -> Option<&str> {
    let inner = trimmed.strip_prefix("__")?.strip_suffix("__")?;
    (!inner.is_empty() && inner.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .then_some(inner)
}

/// Whether `name` is a valid checker name: 1 to [`MAX_NAME_LEN`] characters from
/// `A-Z a-z 0-9 _ . -` (the stem of a valid checker file name).
///
/// ```
/// use dwmon_core::checker_file::is_valid_checker_name;
/// assert!(is_valid_checker_name("new_executions"));
/// assert!(!is_valid_checker_name(""));
/// assert!(!is_valid_checker_name("../etc"));
/// ```
pub fn is_valid_checker_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// The checker name for `file_name` (its final path component minus `.dwmon`), if valid.
fn checker_name(file_name: &str) -> Option<&str> {
    let base = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
    let stem = base.strip_suffix(EXTENSION)?;
    is_valid_checker_name(stem).then_some(stem)
}

/// Parses the text of one checker file named `file_name` (its stem is the checker's name;
/// a leading directory is ignored). A UTF-8 byte order mark and CRLF line endings are accepted.
///
/// ```
/// let text = "__QUERY__\nSELECT id, ts FROM runs\n__REQUIREMENTS__\n\
///             CHECKHOURS0-23 CHECKMINUTES0-59 WEEKENDS WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS180\n";
/// let checker = dwmon_core::parse_checker("new_executions.dwmon", text)?;
/// assert_eq!(checker.name, "new_executions");
/// assert_eq!(checker.source, "default");
/// # Ok::<(), dwmon_core::CheckerFileError>(())
/// ```
///
/// # Errors
/// The first problem found, with line and column: an invalid name, a misplaced, unknown,
/// duplicate or missing section, or invalid section content (see [`CheckerFileErrorKind`]).
pub fn parse_checker(file_name: &str, text: &str) -> Result<Checker, CheckerFileError> {
    use CheckerFileErrorKind::*;
    let err = ErrorAt { file: file_name };
    let name = checker_name(file_name).ok_or_else(|| {
        err.at(
            1,
            1,
            InvalidName,
            format!(
                "invalid checker file name `{file_name}`; expected NAME{EXTENSION} with NAME of 1 to \
                 {MAX_NAME_LEN} characters from A-Z a-z 0-9 _ . -"
            ),
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);

    let mut sections: Vec<Section<'_>> = Vec::new();
    for (index, raw) in text.split('\n').enumerate() {
        let line_number = index + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = line.trim();
        if let Some(marker_name) = marker_shape(trimmed) {
            let column = indent_column(line);
            let Some(&(marker, kind)) = SECTIONS.iter().find(|(m, _)| *m == trimmed) else {
                let hint = SECTIONS
                    .iter()
                    .find(|(m, _)| m[2..m.len() - 2].eq_ignore_ascii_case(marker_name))
                    .map_or(String::new(), |(m, _)| {
                        format!(" (markers are case-sensitive: did you mean {m}?)")
                    });
                return Err(err.at(
                    line_number,
                    column,
                    UnknownSection,
                    format!(
                        "unknown section marker `{}`{hint}; expected one of __QUERY__, \
                         __REQUIREMENTS__, __SOURCE__, __EXTRA__, __TIMEZONE__",
                        crate::requirement::excerpt(trimmed)
                    ),
                ));
            };
            if let Some(first) = sections.iter().find(|s| s.kind == kind) {
                return Err(err.at(
                    line_number,
                    column,
                    DuplicateSection,
                    format!(
                        "duplicate {marker} section (first at line {}); each section may appear \
                         at most once",
                        first.line
                    ),
                ));
            }
            sections.push(Section {
                kind,
                marker,
                line: line_number,
                column,
                lines: Vec::new(),
            });
        } else if let Some(section) = sections.last_mut() {
            section.lines.push((line_number, line));
        } else if !trimmed.is_empty() {
            return Err(err.at(
                line_number,
                indent_column(line),
                TextBeforeFirstSection,
                "text before the first section; expected a section marker such as __QUERY__",
            ));
        }
    }

    let mut checker = Checker {
        name: name.to_owned(),
        path: None,
        query: String::new(),
        source: "default".to_owned(),
        extra: serde_json::Value::Object(serde_json::Map::new()),
        timezone: None,
        requirements: Vec::new(),
    };
    for section in &sections {
        match section.kind {
            SectionKind::Query => checker.query = parse_query(&err, section)?,
            SectionKind::Requirements => {
                checker.requirements = parse_requirements(&err, section)?;
            }
            SectionKind::Source => checker.source = parse_source(&err, section)?,
            SectionKind::Extra => {
                checker.extra = parse_extra(&err, section)?;
                check_retention(&err, section, &checker.extra)?;
                check_parent(&err, section, &checker.extra, name)?;
            }
            SectionKind::TimeZone => checker.timezone = Some(parse_zone(&err, section)?),
        }
    }
    check_push(&err, &sections, &checker)?;
    for (required, kind) in [
        ("__QUERY__", SectionKind::Query),
        ("__REQUIREMENTS__", SectionKind::Requirements),
    ] {
        // A push checker has no query: its rows are the pings it receives.
        if kind == SectionKind::Query && checker.is_push() {
            continue;
        }
        if !sections.iter().any(|s| s.kind == kind) {
            return Err(err.at(
                1,
                1,
                MissingSection,
                format!(
                    "missing {required} section; every checker needs __QUERY__ and __REQUIREMENTS__"
                ),
            ));
        }
    }
    Ok(checker)
}

/// A push checker has no `__QUERY__`; `PINGS<KIND>`, `MINDURATION` and `MAXDURATION` belong
/// to push checkers only.
fn check_push(
    err: &ErrorAt<'_>,
    sections: &[Section<'_>],
    checker: &Checker,
) -> Result<(), CheckerFileError> {
    let push = checker.is_push();
    if let Some(query) = sections.iter().find(|s| s.kind == SectionKind::Query) {
        if push {
            return Err(err.at(
                query.line,
                1,
                CheckerFileErrorKind::Push,
                "a push checker (__SOURCE__ push) has no __QUERY__: its rows are the pings it \
                 receives; remove the __QUERY__ section",
            ));
        }
    }
    if let Some(value) = checker.extra.get(crate::ping::PER_HOST_KEY) {
        let message = match (value.as_bool(), push) {
            (Some(_), true) => None,
            (None, _) => Some("\"per_host\" must be true or false"),
            (Some(_), false) => Some(
                "\"per_host\" makes one sub-check per host of a push checker; this checker's \
                 __SOURCE__ is not push",
            ),
        };
        if let Some(message) = message {
            let extra = sections.iter().find(|s| s.kind == SectionKind::Extra);
            let (line, column) =
                extra.map_or((1, 1), |s| key_position(s, crate::ping::PER_HOST_KEY));
            return Err(err.at(line, column, CheckerFileErrorKind::Push, message));
        }
    }
    if push {
        return Ok(());
    }
    let Some(section) = sections
        .iter()
        .find(|s| s.kind == SectionKind::Requirements)
    else {
        return Ok(());
    };
    for &(line, text) in section.non_blank() {
        if text.trim_start().starts_with('#') {
            continue;
        }
        let push_only = [
            (
                "PINGS",
                "PINGS<KIND> counts the pings of a push checker; this checker's __SOURCE__ is \
                 not push",
            ),
            (
                "MINDURATION",
                "MINDURATION judges the runs (start to finish) of a push checker; this \
                 checker's __SOURCE__ is not push",
            ),
            (
                "MAXDURATION",
                "MAXDURATION judges the runs (start to finish) of a push checker; this \
                 checker's __SOURCE__ is not push",
            ),
        ];
        let first = push_only
            .iter()
            .filter_map(|&(option, message)| Some((text.find(option)?, message)))
            .min_by_key(|&(at, _)| at);
        if let Some((at, message)) = first {
            return Err(err.at(
                line,
                text[..at].chars().count() + 1,
                CheckerFileErrorKind::Push,
                message,
            ));
        }
    }
    Ok(())
}

fn parse_query(err: &ErrorAt<'_>, section: &Section<'_>) -> Result<String, CheckerFileError> {
    let query = section.text().trim().to_owned();
    if query.is_empty() {
        return Err(err.at(
            section.line,
            section.column,
            CheckerFileErrorKind::EmptyQuery,
            "__QUERY__ section is empty; expected the query text on the lines after it",
        ));
    }
    Ok(query)
}

fn parse_requirements(
    err: &ErrorAt<'_>,
    section: &Section<'_>,
) -> Result<Vec<Requirement>, CheckerFileError> {
    let mut requirements = Vec::new();
    // (line, key) of the lines with an ALERTKEY so far.
    let mut alert_keys: Vec<(usize, String)> = Vec::new();
    for &(line, text) in section.non_blank() {
        if text.trim_start().starts_with('#') {
            continue;
        }
        let requirement = Requirement::parse(text).map_err(|e| {
            err.at(
                line,
                e.column,
                CheckerFileErrorKind::Requirement(e.kind),
                e.message,
            )
        })?;
        if let Some(key) = &requirement.alert_key {
            if let Some((first, _)) = alert_keys.iter().find(|(_, k)| k == key) {
                let column = text
                    .find("ALERTKEY")
                    .map_or(1, |i| text[..i].chars().count() + 1);
                return Err(err.at(
                    line,
                    column,
                    CheckerFileErrorKind::DuplicateAlertKey,
                    format!(
                        "ALERTKEY{key} is already the key of the requirement on line {first}; \
                         each line's key must be unique within the file"
                    ),
                ));
            }
            alert_keys.push((line, key.clone()));
        }
        requirements.push(requirement);
    }
    if requirements.is_empty() {
        return Err(err.at(
            section.line,
            section.column,
            CheckerFileErrorKind::NoRequirements,
            "__REQUIREMENTS__ section has no requirement; expected at least one line such as \
             `CHECKHOURS0-23 CHECKMINUTES0-59 WEEKENDS WEEKDAYS MINNUM1 MAXNUM100 LOOKBACKSECONDS3600`",
        ));
    }
    Ok(requirements)
}

/// The single non-blank line of a one-value section, trimmed.
fn single_line<'a>(
    err: &ErrorAt<'_>,
    section: &Section<'a>,
    kind: CheckerFileErrorKind,
    what: &str,
) -> Result<(usize, &'a str), CheckerFileError> {
    let mut lines = section.non_blank();
    let Some(&(line, text)) = lines.next() else {
        return Err(err.at(
            section.line,
            section.column,
            kind,
            format!("{} section is empty; expected {what}", section.marker),
        ));
    };
    if let Some(&(extra_line, extra_text)) = lines.next() {
        return Err(err.at(
            extra_line,
            indent_column(extra_text),
            kind,
            format!(
                "{} section has more than one line; expected only {what}",
                section.marker
            ),
        ));
    }
    Ok((line, text.trim()))
}

fn parse_source(err: &ErrorAt<'_>, section: &Section<'_>) -> Result<String, CheckerFileError> {
    let kind = CheckerFileErrorKind::InvalidSource;
    let (line, source) = single_line(err, section, kind, "one source name")?;
    // Source names go into every log line and event of the checker: bound them like names.
    if source.chars().count() > MAX_NAME_LEN {
        return Err(err.at(
            line,
            1,
            kind,
            format!(
                "source name `{}` is too long; expected at most {MAX_NAME_LEN} characters",
                crate::requirement::excerpt(source)
            ),
        ));
    }
    Ok(source.to_owned())
}

fn parse_zone(err: &ErrorAt<'_>, section: &Section<'_>) -> Result<chrono_tz::Tz, CheckerFileError> {
    let kind = CheckerFileErrorKind::InvalidTimeZone;
    let (line, zone) = single_line(
        err,
        section,
        kind,
        "one IANA time zone name such as America/New_York",
    )?;
    zone.parse::<chrono_tz::Tz>().map_err(|_| {
        let column = section
            .lines
            .iter()
            .find(|(l, _)| *l == line)
            .map_or(1, |(_, text)| indent_column(text));
        err.at(
            line,
            column,
            kind,
            format!(
                "unknown time zone `{}`; expected an IANA time zone name such as \
                 America/New_York or UTC (names are case-sensitive)",
                crate::requirement::excerpt(zone)
            ),
        )
    })
}

/// A malformed `"retention"` in `__EXTRA__` is an error of the file, pointing at the line
/// that holds the key (else the section's first line).
fn check_retention(
    err: &ErrorAt<'_>,
    section: &Section<'_>,
    extra: &serde_json::Value,
) -> Result<(), CheckerFileError> {
    let Err(message) = crate::retention::Retention::from_extra(extra) else {
        return Ok(());
    };
    let (line, column) = key_position(section, "retention");
    Err(err.at(line, column, CheckerFileErrorKind::InvalidExtra, message))
}

/// A `"parent"` in `__EXTRA__` must be a checker name other than the checker's own.
fn check_parent(
    err: &ErrorAt<'_>,
    section: &Section<'_>,
    extra: &serde_json::Value,
    own: &str,
) -> Result<(), CheckerFileError> {
    let Some(value) = extra.get(PARENT_KEY) else {
        return Ok(());
    };
    let message = match value.as_str() {
        Some(name) if name == own => {
            format!("\"parent\": a checker cannot be its own parent ({own:?}); expected the name of another checker")
        }
        Some(name) if is_valid_checker_name(name) => return Ok(()),
        Some(name) => format!(
            "\"parent\": {:?} is not a checker name; expected the name (file stem) of another \
             checker, 1 to {MAX_NAME_LEN} characters from A-Z a-z 0-9 _ . -",
            crate::requirement::excerpt(name)
        ),
        None => "\"parent\" must be a string: the name of another checker".to_string(),
    };
    let (line, column) = key_position(section, PARENT_KEY);
    Err(err.at(line, column, CheckerFileErrorKind::InvalidParent, message))
}

/// Line and column of `"key"` in a section (else its first non-blank line, else its marker).
fn key_position(section: &Section<'_>, key: &str) -> (usize, usize) {
    let quoted = format!("\"{key}\"");
    section
        .lines
        .iter()
        .find_map(|&(line, text)| {
            text.find(&quoted)
                .map(|byte| (line, text[..byte].chars().count() + 1))
        })
        .or_else(|| section.non_blank().next().map(|&(line, _)| (line, 1)))
        .unwrap_or((section.line, section.column))
}

/// Line and column of `"key"` inside the `__EXTRA__` section of a checker file's text
/// (line 1, column 1 when it cannot be found).
fn extra_key_position(text: &str, key: &str) -> (usize, usize) {
    let quoted = format!("\"{key}\"");
    let mut in_extra = false;
    for (index, raw) in text.split('\n').enumerate() {
        let trimmed = raw.trim();
        if marker_shape(trimmed).is_some() {
            in_extra = trimmed == "__EXTRA__";
            continue;
        }
        if let Some(byte) = raw.find(&quoted).filter(|_| in_extra) {
            let column = raw[..byte].trim_start_matches('\u{feff}').chars().count() + 1;
            return (index + 1, column);
        }
    }
    (1, 1)
}

/// Checks the `"parent"` links of a loaded directory: a parent must be a checker file of
/// the directory (one that failed to load counts: its checker is in ERROR), and no checker
/// may be its own ancestor. Each offending checker moves from [`LoadReport::checkers`] to
/// [`LoadReport::errors`], at its `"parent"` key (`position`).
fn check_parents(
    report: &mut LoadReport,
    files: &std::collections::BTreeSet<String>,
    position: &std::collections::BTreeMap<String, (usize, usize)>,
) {
    let parents: std::collections::BTreeMap<&str, &str> = report
        .checkers
        .iter()
        .filter_map(|c| c.parent().map(|p| (c.name.as_str(), p)))
        .collect();
    let mut bad: Vec<(String, CheckerFileErrorKind, String)> = Vec::new();
    for (&child, &parent) in &parents {
        if !files.contains(parent) {
            bad.push((
                child.to_string(),
                CheckerFileErrorKind::UnknownParent,
                format!(
                    "\"parent\": no checker {parent:?} (no file {parent}{EXTENSION} in the \
                     checker directory); expected the name of another checker"
                ),
            ));
            continue;
        }
        // Follow the chain; a cycle through `child` comes back to it within parents.len() steps.
        let mut chain = vec![child, parent];
        let mut at = parent;
        while let Some(&next) = parents.get(at) {
            if next == child {
                chain.push(next);
                bad.push((
                    child.to_string(),
                    CheckerFileErrorKind::ParentCycle,
                    format!(
                        "\"parent\": a cycle of parents ({}); a checker cannot depend on \
                         itself",
                        chain.join(" -> ")
                    ),
                ));
                break;
            }
            if chain.contains(&next) || chain.len() > parents.len() + 1 {
                break; // a cycle further up, reported at its own members
            }
            chain.push(next);
            at = next;
        }
    }
    for (name, kind, message) in bad {
        let Some(index) = report.checkers.iter().position(|c| c.name == name) else {
            continue;
        };
        let checker = report.checkers.remove(index);
        let file = checker
            .path
            .as_ref()
            .and_then(|p| p.file_name())
            .map_or_else(
                || format!("{name}{EXTENSION}"),
                |f| f.to_string_lossy().into_owned(),
            );
        let (line, column) = position.get(&name).copied().unwrap_or((1, 1));
        report.errors.push(CheckerFileError {
            file,
            line,
            column,
            kind,
            message,
        });
    }
}

fn parse_extra(
    err: &ErrorAt<'_>,
    section: &Section<'_>,
) -> Result<serde_json::Value, CheckerFileError> {
    let kind = CheckerFileErrorKind::InvalidExtra;
    let text = section.text();
    if text.trim().is_empty() {
        return Err(err.at(
            section.line,
            section.column,
            kind,
            "__EXTRA__ section is empty; expected a JSON value such as {}",
        ));
    }
    serde_json::from_str(&text).map_err(|e| {
        // serde_json counts lines from 1 and columns in bytes; map both into the file.
        let last_non_blank = section.non_blank().last();
        let (line, column) = match section.lines.get(e.line().saturating_sub(1)) {
            // An unexpected end is reported just after the last character of the JSON.
            _ if e.is_eof() => last_non_blank.map_or((section.line, section.column), |&(l, t)| {
                (l, t.trim_end().chars().count() + 1)
            }),
            Some(&(line, line_text)) => {
                let byte = e.column().saturating_sub(1).min(line_text.len());
                let chars = line_text
                    .char_indices()
                    .take_while(|(i, _)| *i < byte)
                    .count();
                (line, chars + 1)
            }
            None => (section.line, section.column),
        };
        let full = e.to_string();
        let reason = full
            .rsplit_once(" at line ")
            .map_or(full.as_str(), |(reason, _)| reason);
        err.at(
            line,
            column,
            kind,
            format!("invalid JSON in __EXTRA__: {reason}; expected a JSON value such as {{}}"),
        )
    })
}

/// Parses the bytes of one checker file: like [`parse_checker`], but invalid UTF-8 is an
/// error at the line and column of the first invalid byte.
///
/// # Errors
/// As [`parse_checker`], plus [`CheckerFileErrorKind::NotUtf8`].
pub fn parse_checker_bytes(file_name: &str, bytes: &[u8]) -> Result<Checker, CheckerFileError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse_checker(file_name, text),
        Err(e) => {
            let valid = &bytes[..e.valid_up_to()];
            let line_start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
            // The prefix is valid UTF-8 by construction.
            let column =
                std::str::from_utf8(&valid[line_start..]).map_or(1, |s| s.chars().count() + 1);
            Err(CheckerFileError {
                file: file_name.to_owned(),
                line,
                column,
                kind: CheckerFileErrorKind::NotUtf8,
                message: "the file is not valid UTF-8; expected UTF-8 text".to_owned(),
            })
        }
    }
}

/// The largest checker file [`load_dir`] reads, in bytes (16 MiB).
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Reads a checker file: only a regular file (a FIFO named `x.dwmon` would block the runner
/// forever, a link to `/dev/zero` would fill the memory) of at most [`MAX_FILE_BYTES`].
fn read_checker_file(path: &std::path::Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let not_regular = |metadata: &std::fs::Metadata| {
        let what = if metadata.is_dir() {
            "a directory"
        } else {
            "a special file"
        };
        format!("cannot read the file: it is {what}; expected a regular file")
    };
    // Checked before opening: opening a FIFO for reading blocks until a writer comes.
    let metadata = std::fs::metadata(path).map_err(|e| format!("cannot read the file: {e}"))?;
    if !metadata.is_file() {
        return Err(not_regular(&metadata));
    }
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read the file: {e}"))?;
    let metadata = file
        .metadata()
        .map_err(|e| format!("cannot read the file: {e}"))?;
    if !metadata.is_file() {
        return Err(not_regular(&metadata));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the file: {e}"))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "the file is larger than {} MiB; expected a checker file of at most {MAX_FILE_BYTES} bytes",
            MAX_FILE_BYTES / (1024 * 1024)
        ));
    }
    Ok(bytes)
}

/// Loads every `*.dwmon` file directly in `dir` (not recursive), in file name order. Each bad
/// file (unreadable, not a regular file, larger than [`MAX_FILE_BYTES`], not
/// UTF-8, invalid) becomes one entry of [`LoadReport::errors`]; the
/// others still load.
///
/// # Errors
/// Only when `dir` itself cannot be read; bad files are reported in [`LoadReport::errors`].
pub fn load_dir(dir: &std::path::Path) -> std::io::Result<LoadReport> {
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    let mut report = LoadReport::default();
    for entry in std::fs::read_dir(dir)? {
        match entry {
            Ok(entry) => {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.ends_with(EXTENSION) {
                    files.push((name, entry.path()));
                }
            }
            Err(e) => report.errors.push(CheckerFileError {
                file: dir.display().to_string(),
                line: 1,
                column: 1,
                kind: CheckerFileErrorKind::Unreadable,
                message: format!("cannot list a directory entry: {e}"),
            }),
        }
    }
    files.sort();
    let mut stems = std::collections::BTreeSet::new();
    let mut parent_at = std::collections::BTreeMap::new();
    for (name, path) in files {
        if let Some(stem) = checker_name(&name) {
            stems.insert(stem.to_string());
        }
        let parsed = read_checker_file(&path)
            .map_err(|message| CheckerFileError {
                file: name.clone(),
                line: 1,
                column: 1,
                kind: CheckerFileErrorKind::Unreadable,
                message,
            })
            .and_then(|bytes| {
                let checker = parse_checker_bytes(&name, &bytes)?;
                if checker.parent().is_some() {
                    let text = String::from_utf8_lossy(&bytes);
                    let at = extra_key_position(&text, PARENT_KEY);
                    parent_at.insert(checker.name.clone(), at);
                }
                Ok(checker)
            });
        match parsed {
            Ok(mut checker) => {
                checker.path = Some(path);
                report.checkers.push(checker);
            }
            Err(e) => report.errors.push(e),
        }
    }
    check_parents(&mut report, &stems, &parent_at);
    report.checkers.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQ: &str =
        "CHECKHOURS0-23 CHECKMINUTES0-59 WEEKENDS WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS180";

    #[test]
    fn a_runaway_source_name_is_a_load_error_quoting_an_excerpt() -> Result<(), CheckerFileError> {
        let huge = "s".repeat(10_000_000);
        let text = format!("__QUERY__\nx\n__REQUIREMENTS__\n{REQ}\n__SOURCE__\n{huge}\n");
        let error = parse_checker("big.dwmon", &text).expect_err("a 10 MB source name");
        assert_eq!(error.kind, CheckerFileErrorKind::InvalidSource);
        assert_eq!(error.line, 6);
        assert!(error.to_string().len() < 400, "{}", error.to_string().len());
        let longest = "s".repeat(MAX_NAME_LEN);
        let text = format!("__QUERY__\nx\n__REQUIREMENTS__\n{REQ}\n__SOURCE__\n{longest}\n");
        assert_eq!(parse_checker("ok.dwmon", &text)?.source, longest);
        Ok(())
    }

    #[test]
    fn alert_keys_are_unique_within_a_file() {
        let text = format!(
            "__QUERY__\nx\n__REQUIREMENTS__\n{REQ} ALERTKEYa\n{REQ} ALERTKEYb\n{REQ}  ALERTKEYa\n"
        );
        let error = parse_checker("keys.dwmon", &text).expect_err("a duplicate key");
        assert_eq!(error.kind, CheckerFileErrorKind::DuplicateAlertKey);
        assert_eq!((error.line, error.column), (6, REQ.len() + 3));
        assert!(error.message.contains("line 4"), "{}", error.message);
    }

    #[test]
    fn errors_quote_at_most_an_excerpt_of_a_runaway_marker_or_zone() {
        let runaway = "A".repeat(100_000);
        for text in [
            format!("__{runaway}__\n"),
            format!("__QUERY__\nx\n__REQUIREMENTS__\n{REQ}\n__TIMEZONE__\n{runaway}\n"),
        ] {
            let error = parse_checker("big.dwmon", &text).expect_err("invalid");
            let message = error.to_string();
            assert!(message.len() < 400, "{} bytes", message.len());
            assert!(message.contains("(100"), "{message}");
        }
    }

    fn error(file: &str, text: &str) -> (usize, usize, CheckerFileErrorKind, String) {
        match parse_checker(file, text) {
            Ok(c) => panic!("expected an error, parsed {c:?}"),
            Err(e) => (e.line, e.column, e.kind, e.message),
        }
    }

    #[test]
    fn defaults_apply_to_absent_optional_sections() -> Result<(), CheckerFileError> {
        let c = parse_checker(
            "a.dwmon",
            &format!("__QUERY__\n  q  \n__REQUIREMENTS__\n{REQ}\n"),
        )?;
        assert_eq!(c.name, "a");
        assert_eq!(c.query, "q");
        assert_eq!(c.source, "default");
        assert_eq!(c.extra, serde_json::json!({}));
        assert_eq!(c.timezone, None);
        assert_eq!(c.requirements.len(), 1);
        Ok(())
    }

    #[test]
    fn a_bad_retention_in_extra_is_an_error_at_its_line() {
        let text = "__QUERY__\nSELECT 1\n__REQUIREMENTS__\nCHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM1 MAXNUM2 LOOKBACKSECONDS60\n__EXTRA__\n{\"team\": \"x\",\n  \"retention\": {\"rows\": \"5y\"}}\n";
        let e = parse_checker("r.dwmon", text).unwrap_err();
        assert_eq!(
            (e.line, e.column, e.kind),
            (7, 3, CheckerFileErrorKind::InvalidExtra)
        );
        assert!(e.message.contains("\"rows\""), "{e}");
        let good = text.replace("5y", "35d");
        assert!(parse_checker("r.dwmon", &good).is_ok());
    }

    #[test]
    fn extra_json_errors_map_into_the_file() {
        let text = format!(
            "__QUERY__\nq\n__REQUIREMENTS__\n{REQ}\n__EXTRA__\n{{\"a\": 1,\n  \"é\": x}}\n"
        );
        let (line, column, kind, message) = error("a.dwmon", &text);
        assert_eq!(
            (line, column, kind),
            (7, 8, CheckerFileErrorKind::InvalidExtra)
        );
        assert!(
            message.starts_with("invalid JSON in __EXTRA__: expected value"),
            "{message}"
        );
    }

    #[test]
    fn unclosed_extra_json_points_at_the_end() {
        let text = format!("__QUERY__\nq\n__REQUIREMENTS__\n{REQ}\n__EXTRA__\n{{\"a\": 1\n");
        let (line, column, kind, _) = error("a.dwmon", &text);
        assert_eq!(kind, CheckerFileErrorKind::InvalidExtra);
        assert_eq!((line, column), (6, 8), "line {line} column {column}");
    }

    #[test]
    fn invalid_utf8_points_at_the_first_bad_byte() {
        let bytes = b"__QUERY__\nab\xffc\n";
        let e = parse_checker_bytes("a.dwmon", bytes).err();
        assert_eq!(
            e.map(|e| (e.line, e.column, e.kind)),
            Some((2, 3, CheckerFileErrorKind::NotUtf8))
        );
    }

    #[test]
    fn names_are_checked() {
        for bad in [
            "a.txt",
            ".dwmon",
            "a b.dwmon",
            "ä.dwmon",
            &format!("{}.dwmon", "x".repeat(101)),
        ] {
            assert_eq!(error(bad, "").2, CheckerFileErrorKind::InvalidName, "{bad}");
        }
        assert_eq!(
            checker_name(&format!("dir/{}.dwmon", "x".repeat(100))).map(str::len),
            Some(100)
        );
        assert_eq!(checker_name("A-b_c.1.dwmon"), Some("A-b_c.1"));
    }

    #[test]
    fn load_dir_returns_good_checkers_and_errors() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let good = format!("__QUERY__\nq\n__REQUIREMENTS__\n{REQ}\n");
        std::fs::write(dir.path().join("b.dwmon"), &good)?;
        std::fs::write(dir.path().join("a.dwmon"), &good)?;
        std::fs::write(dir.path().join("c.dwmon"), "oops\n")?;
        std::fs::write(dir.path().join("d.dwmon"), b"\xff\xfe")?;
        std::fs::write(dir.path().join("ignored.txt"), "oops")?;
        std::fs::create_dir(dir.path().join("sub.dwmon"))?;
        let report = load_dir(dir.path())?;
        let names: Vec<&str> = report.checkers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(report.checkers[0].path, Some(dir.path().join("a.dwmon")));
        let errors: Vec<(&str, CheckerFileErrorKind)> = report
            .errors
            .iter()
            .map(|e| (e.file.as_str(), e.kind))
            .collect();
        assert_eq!(
            errors,
            [
                ("c.dwmon", CheckerFileErrorKind::TextBeforeFirstSection),
                ("d.dwmon", CheckerFileErrorKind::NotUtf8),
                ("sub.dwmon", CheckerFileErrorKind::Unreadable),
            ]
        );
        assert!(load_dir(&dir.path().join("missing")).is_err());
        Ok(())
    }

    #[cfg(unix)]
    #[test]
    fn load_dir_never_blocks_on_a_fifo_nor_reads_a_device_or_a_huge_file() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let good = format!("__QUERY__\nq\n__REQUIREMENTS__\n{REQ}\n");
        std::fs::write(dir.path().join("a.dwmon"), &good)?;
        let fifo = dir.path().join("fifo.dwmon");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status()?;
        assert!(made.success());
        std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero.dwmon"))?;
        let huge = std::fs::File::create(dir.path().join("huge.dwmon"))?;
        huge.set_len(MAX_FILE_BYTES + 1)?;
        let report = load_dir(dir.path())?;
        let names: Vec<&str> = report.checkers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["a"]);
        let errors: Vec<(&str, &str)> = report
            .errors
            .iter()
            .map(|e| (e.file.as_str(), e.message.as_str()))
            .collect();
        assert_eq!(
            errors,
            [
                (
                    "fifo.dwmon",
                    "cannot read the file: it is a special file; expected a regular file"
                ),
                (
                    "huge.dwmon",
                    "the file is larger than 16 MiB; expected a checker file of at most 16777216 bytes"
                ),
                (
                    "zero.dwmon",
                    "cannot read the file: it is a special file; expected a regular file"
                ),
            ]
        );
        Ok(())
    }
}
