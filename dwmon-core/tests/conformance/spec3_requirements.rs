//! Requirement lines (docs/FORMAT.md) — the seed grammar exactly, the cron-field extension, canonical
//! text, and every error kind with its column.

use dwmon_core::requirement::RequirementErrorKind as Kind;
use dwmon_core::{FieldSet, Requirement, RequirementError, Severity};

/// Builds a set from explicit values.
fn set(values: &[u32]) -> FieldSet {
    let mut s = FieldSet(0);
    for &v in values {
        s.insert(v);
    }
    s
}

/// Every requirement line written in the seed (`000_*`) and docs/FORMAT.md.
const SEED_LINES: [&str; 4] = [
    "CHECKHOURS0-23 CHECKMINUTES0-59 WEEKENDS WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS180",
    "CHECKHOURS9-9 CHECKMINUTES*/20 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS180",
    "CHECKHOURS9-9 CHECKMINUTES0-0 WEEKENDS WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS180",
    "CHECKHOURS13-13 CHECKMINUTES0-0 WEEKENDS WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS180",
];

#[test]
fn seed_lines_parse_and_print_back_unchanged() -> Result<(), RequirementError> {
    for line in SEED_LINES {
        let r = Requirement::parse(line)?;
        assert_eq!(r.to_string(), line);
        assert_eq!(r.canonical(), line);
        assert_eq!((r.min, r.max, r.lookback_seconds), (5, 20, 180), "{line}");
    }
    Ok(())
}

#[test]
fn seed_lines_mean_what_the_seed_says() -> Result<(), RequirementError> {
    let every = Requirement::parse(SEED_LINES[0])?.schedule;
    assert_eq!(every.hours, FieldSet::range(0, 23));
    assert_eq!(every.minutes, FieldSet::range(0, 59));
    assert_eq!(every.weekdays, FieldSet::range(0, 6));

    let nine = Requirement::parse(SEED_LINES[1])?.schedule;
    assert_eq!(nine.hours, set(&[9]));
    assert_eq!(nine.minutes, set(&[0, 20, 40]));
    assert_eq!(nine.weekdays, FieldSet::range(1, 5));

    let one_pm = Requirement::parse(SEED_LINES[3])?.schedule;
    assert_eq!((one_pm.hours, one_pm.minutes), (set(&[13]), set(&[0])));
    Ok(())
}

/// Parses `CHECKMINUTES<field>` in an otherwise fixed line and returns the minute set.
fn minutes(field: &str) -> Result<FieldSet, RequirementError> {
    let line =
        format!("CHECKHOURS0-23 CHECKMINUTES{field} WEEKDAYS MINNUM0 MAXNUM1 LOOKBACKSECONDS60");
    Ok(Requirement::parse(&line)?.schedule.minutes)
}

#[test]
fn equivalent_minute_fields_give_equal_sets() -> Result<(), RequirementError> {
    let expected = set(&[0, 20, 40]);
    for field in [
        "*/20",
        "0-59/20",
        "0,20,40",
        "0-40/20",
        "0/20",
        "40,0,20,20",
        "0-50/20",
    ] {
        assert_eq!(minutes(field)?, expected, "{field}");
    }
    Ok(())
}

#[test]
fn cron_fields_expand_as_documented() -> Result<(), RequirementError> {
    let cases: &[(&str, &[u32])] = &[
        ("*", &[]), // checked separately below: the full range
        ("7", &[7]),
        ("58-59", &[58, 59]),
        ("5-20/5", &[5, 10, 15, 20]),
        ("50/3", &[50, 53, 56, 59]),
        ("*/25", &[0, 25, 50]),
        ("1,3-4,10-20/5", &[1, 3, 4, 10, 15, 20]),
        ("*/60", &[0]),
        ("007", &[7]),
    ];
    for &(field, values) in cases {
        let expected = if field == "*" {
            FieldSet::range(0, 59)
        } else {
            set(values)
        };
        assert_eq!(minutes(field)?, expected, "{field}");
    }
    Ok(())
}

/// Parses `options` between fixed hour/minute and bound options.
fn schedule(options: &str) -> Result<dwmon_core::Schedule, RequirementError> {
    let line = format!("CHECKHOURS0 CHECKMINUTES0 {options} MINNUM0 MAXNUM1 LOOKBACKSECONDS60");
    Ok(Requirement::parse(&line)?.schedule)
}

#[test]
fn day_and_month_fields_with_defaults_and_names() -> Result<(), RequirementError> {
    let every_day = FieldSet::range(1, 31);
    let every_month = FieldSet::range(1, 12);
    // `(options, days, months)`; absent CHECKDAYS / CHECKMONTHS mean `*`.
    let cases = [
        ("WEEKDAYS", every_day, every_month),
        (
            "CHECKDAYS1,15 CHECKMONTHS* WEEKDAYS",
            set(&[1, 15]),
            every_month,
        ),
        ("CHECKDAYS*/10 WEEKENDS", set(&[1, 11, 21, 31]), every_month),
        (
            "CHECKMONTHSjan-Mar,DEC WEEKENDS",
            every_day,
            set(&[1, 2, 3, 12]),
        ),
        (
            "CHECKMONTHS2-12/2 WEEKDAYS",
            every_day,
            set(&[2, 4, 6, 8, 10, 12]),
        ),
        (
            "CHECKMONTHSnov/1 CHECKDAYS31 WEEKDAYS",
            set(&[31]),
            set(&[11, 12]),
        ),
    ];
    for (options, days, months) in cases {
        let s = schedule(options)?;
        assert_eq!((s.days, s.months), (days, months), "{options}");
    }
    Ok(())
}

#[test]
fn day_of_week_is_the_union_of_its_options() -> Result<(), RequirementError> {
    // `(options, day-of-week set with 0 = Sunday)`.
    let cases = [
        ("WEEKDAYS", FieldSet::range(1, 5)),
        ("WEEKENDS", set(&[0, 6])),
        ("WEEKDAYS WEEKENDS", FieldSet::range(0, 6)),
        // 0 and 7 are both Sunday.
        ("CHECKWEEKDAYS0", set(&[0])),
        ("CHECKWEEKDAYS7", set(&[0])),
        ("CHECKWEEKDAYS5-7", set(&[0, 5, 6])),
        ("CHECKWEEKDAYS*/2", set(&[0, 2, 4, 6])),
        // Names are case-insensitive; SUN ending a range means 7.
        ("CHECKWEEKDAYSsat-sun", set(&[0, 6])),
        ("CHECKWEEKDAYSMON-SUN", FieldSet::range(0, 6)),
        ("CHECKWEEKDAYSSUN-SAT", FieldSet::range(0, 6)),
        // ...but only after a start that is not Sunday: a range from Sunday to SUN is Sunday.
        ("CHECKWEEKDAYSSUN-SUN", set(&[0])),
        ("CHECKWEEKDAYSsun-sun", set(&[0])),
        ("CHECKWEEKDAYS0-SUN", set(&[0])),
        ("CHECKWEEKDAYS7-SUN", set(&[0])),
        ("CHECKWEEKDAYS0-7", FieldSet::range(0, 6)),
        ("CHECKWEEKDAYSTue,thu", set(&[2, 4])),
        ("CHECKWEEKDAYSMON/2", set(&[0, 1, 3, 5])),
        // The union with the shorthands.
        ("WEEKENDS CHECKWEEKDAYSMON", set(&[0, 1, 6])),
        ("CHECKWEEKDAYS3 WEEKDAYS", FieldSet::range(1, 5)),
        ("CHECKWEEKDAYS1 WEEKENDS WEEKDAYS", FieldSet::range(0, 6)),
    ];
    for (options, weekdays) in cases {
        assert_eq!(schedule(options)?.weekdays, weekdays, "{options}");
    }
    Ok(())
}

#[test]
fn options_in_any_order_and_any_whitespace() -> Result<(), RequirementError> {
    let canonical = Requirement::parse(SEED_LINES[1])?;
    for line in [
        "LOOKBACKSECONDS180 MAXNUM20 MINNUM5 WEEKDAYS CHECKMINUTES*/20 CHECKHOURS9-9",
        "  CHECKMINUTES0,20,40\tCHECKHOURS9   WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS180  ",
        "CHECKHOURS9 CHECKMINUTES*/20 CHECKWEEKDAYSMON-FRI MINNUM05 MAXNUM20 LOOKBACKSECONDS180",
    ] {
        assert_eq!(Requirement::parse(line)?, canonical, "{line}");
    }
    Ok(())
}

#[test]
fn canonical_text_is_compact() -> Result<(), RequirementError> {
    let cases = [
        // The example in docs/FORMAT.md.
        (
            "CHECKMINUTES0,20,40 CHECKHOURS9,10,11 CHECKMONTHSjan-mar WEEKDAYS WEEKENDS MAXNUM3 MINNUM0 LOOKBACKSECONDS3600",
            "CHECKHOURS9-11 CHECKMINUTES*/20 CHECKMONTHS1-3 WEEKENDS WEEKDAYS MINNUM0 MAXNUM3 LOOKBACKSECONDS3600",
        ),
        (
            "CHECKMINUTES0,20,40 CHECKHOURS9-17 WEEKENDS MAXNUM3 MINNUM0 LOOKBACKSECONDS3600",
            "CHECKHOURS9-17 CHECKMINUTES*/20 WEEKENDS MINNUM0 MAXNUM3 LOOKBACKSECONDS3600",
        ),
        (
            "CHECKHOURS* CHECKMINUTES5,35 CHECKDAYS* CHECKMONTHS* WEEKDAYS WEEKENDS MINNUM1 MAXNUM1 LOOKBACKSECONDS90000",
            "CHECKHOURS0-23 CHECKMINUTES5,35 WEEKENDS WEEKDAYS MINNUM1 MAXNUM1 LOOKBACKSECONDS90000",
        ),
        (
            "CHECKHOURS8,9,10,12 CHECKMINUTES5-55/10 CHECKDAYS1 CHECKMONTHSjan,apr,jul,oct CHECKWEEKDAYSsat-sun,wed MINNUM0 MAXNUM0 LOOKBACKSECONDS60",
            "CHECKHOURS8-10,12 CHECKMINUTES5-55/10 CHECKDAYS1-1 CHECKMONTHS*/3 CHECKWEEKDAYS*/3 MINNUM0 MAXNUM0 LOOKBACKSECONDS60",
        ),
        (
            "CHECKHOURS0 CHECKMINUTES0 CHECKWEEKDAYS1-5 MINNUM0 MAXNUM0 LOOKBACKSECONDS60",
            "CHECKHOURS0-0 CHECKMINUTES0-0 WEEKDAYS MINNUM0 MAXNUM0 LOOKBACKSECONDS60",
        ),
        (
            "CHECKHOURS0 CHECKMINUTES0 CHECKWEEKDAYS1-6 MINNUM0 MAXNUM0 LOOKBACKSECONDS60",
            "CHECKHOURS0-0 CHECKMINUTES0-0 CHECKWEEKDAYS1-6 MINNUM0 MAXNUM0 LOOKBACKSECONDS60",
        ),
        // The alerting example in docs/FORMAT.md.
        (
            "RECOVERAFTER2 SEVERITYCRITICAL FAILAFTER03 CHECKHOURS* CHECKMINUTES* WEEKDAYS MINNUM1 MAXNUM9 LOOKBACKSECONDS60",
            "CHECKHOURS0-23 CHECKMINUTES0-59 WEEKDAYS MINNUM1 MAXNUM9 LOOKBACKSECONDS60 FAILAFTER3 RECOVERAFTER2",
        ),
    ];
    for (input, canonical) in cases {
        let r = Requirement::parse(input)?;
        assert_eq!(r.to_string(), canonical, "{input}");
        assert_eq!(Requirement::parse(canonical)?, r, "{canonical}");
    }
    Ok(())
}

#[test]
fn bounds_and_limits() -> Result<(), RequirementError> {
    let parse =
        |tail: &str| Requirement::parse(&format!("CHECKHOURS0 CHECKMINUTES0 WEEKDAYS {tail}"));
    let r = parse("MINNUM0 MAXNUM0 LOOKBACKSECONDS1")?;
    assert_eq!((r.min, r.max, r.lookback_seconds), (0, 0, 1));
    let r = parse("MINNUM9223372036854775807 MAXNUM9223372036854775807 LOOKBACKSECONDS31622400")?;
    assert_eq!(
        (r.min, r.max, r.lookback_seconds),
        (i64::MAX as u64, i64::MAX as u64, 31_622_400)
    );
    assert_eq!(r.horizon_minutes(), 5_270_400);
    Ok(())
}

#[test]
fn alerting_options_default_and_parse() -> Result<(), RequirementError> {
    let base = "CHECKHOURS0-23 CHECKMINUTES0-59 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60";
    let plain = Requirement::parse(base)?;
    assert_eq!(
        (plain.severity, plain.fail_after, plain.recover_after),
        (Severity::Critical, 1, 1)
    );
    // `(options, severity, fail_after, recover_after, canonical suffix)`.
    let cases = [
        ("SEVERITYCRITICAL", Severity::Critical, 1, 1, ""),
        (
            "SEVERITYWARNING",
            Severity::Warning,
            1,
            1,
            " SEVERITYWARNING",
        ),
        ("FAILAFTER1 RECOVERAFTER1", Severity::Critical, 1, 1, ""),
        ("FAILAFTER3", Severity::Critical, 3, 1, " FAILAFTER3"),
        (
            "RECOVERAFTER010",
            Severity::Critical,
            1,
            10,
            " RECOVERAFTER10",
        ),
        (
            "RECOVERAFTER2 SEVERITYWARNING FAILAFTER10000",
            Severity::Warning,
            10_000,
            2,
            " SEVERITYWARNING FAILAFTER10000 RECOVERAFTER2",
        ),
    ];
    for (options, severity, fail_after, recover_after, suffix) in cases {
        // Alerting options may come anywhere on the line.
        for line in [format!("{base} {options}"), format!("{options} {base}")] {
            let r = Requirement::parse(&line)?;
            assert_eq!(
                (r.severity, r.fail_after, r.recover_after),
                (severity, fail_after, recover_after),
                "{line}"
            );
            assert_eq!(r.schedule, plain.schedule, "{line}");
            assert_eq!(r.to_string(), format!("{base}{suffix}"), "{line}");
            assert_eq!(Requirement::parse(&r.to_string())?, r, "{line}");
        }
    }
    Ok(())
}

#[test]
fn delay_option_defaults_and_parses() -> Result<(), RequirementError> {
    let base = "CHECKHOURS0-23 CHECKMINUTES0-59 WEEKDAYS MINNUM1 MAXNUM100 LOOKBACKSECONDS600";
    assert_eq!(Requirement::parse(base)?.delay_seconds, 0);
    // `(options, delay_seconds, whole minutes waited, canonical suffix)`.
    let cases = [
        ("DELAYSECONDS0", 0, 0, ""),
        ("DELAYSECONDS300", 300, 5, " DELAYSECONDS300"),
        ("DELAYSECONDS0300", 300, 5, " DELAYSECONDS300"),
        ("DELAYSECONDS1", 1, 1, " DELAYSECONDS1"),
        ("DELAYSECONDS90", 90, 2, " DELAYSECONDS90"),
        ("DELAYSECONDS604800", 604_800, 10_080, " DELAYSECONDS604800"),
        (
            "FAILAFTER2 DELAYSECONDS120 SEVERITYWARNING",
            120,
            2,
            " DELAYSECONDS120 SEVERITYWARNING FAILAFTER2",
        ),
    ];
    for (options, seconds, minutes, suffix) in cases {
        for line in [format!("{base} {options}"), format!("{options} {base}")] {
            let r = Requirement::parse(&line)?;
            assert_eq!(r.delay_seconds, seconds, "{line}");
            assert_eq!(r.delay_minutes(), minutes, "{line}");
            assert_eq!(r.to_string(), format!("{base}{suffix}"), "{line}");
            assert_eq!(Requirement::parse(&r.to_string())?, r, "{line}");
        }
    }
    // The example in docs/FORMAT.md.
    let r = Requirement::parse(
        "CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM1 MAXNUM100 LOOKBACKSECONDS600 DELAYSECONDS300",
    )?;
    assert_eq!((r.lookback_seconds, r.delay_seconds), (600, 300));
    assert_eq!(r.judged_up_to(1_700_000_400), 1_700_000_100);
    Ok(())
}

#[test]
fn duration_options_default_and_parse() -> Result<(), RequirementError> {
    let base = "CHECKHOURS0-23 CHECKMINUTES0-59 WEEKDAYS MINNUM1 MAXNUM100 LOOKBACKSECONDS600";
    let plain = Requirement::parse(base)?;
    assert_eq!((plain.min_duration, plain.max_duration), (None, None));
    assert!(!plain.has_duration_bounds());
    // `(options, MINDURATION, MAXDURATION, canonical suffix)`.
    let cases = [
        ("MINDURATION0", Some(0), None, " MINDURATION0"),
        ("MINDURATION010", Some(10), None, " MINDURATION10"),
        ("MAXDURATION3600", None, Some(3600), " MAXDURATION3600"),
        ("MAXDURATION0", None, Some(0), " MAXDURATION0"),
        (
            "MAXDURATION60 MINDURATION60",
            Some(60),
            Some(60),
            " MINDURATION60 MAXDURATION60",
        ),
        (
            "MAXDURATION31622400 MINDURATION1",
            Some(1),
            Some(31_622_400),
            " MINDURATION1 MAXDURATION31622400",
        ),
        (
            "MAXDURATION900 PINGSFAIL FAILAFTER2 MINDURATION30",
            Some(30),
            Some(900),
            " FAILAFTER2 PINGSFAIL MINDURATION30 MAXDURATION900",
        ),
    ];
    for (options, min_duration, max_duration, suffix) in cases {
        for line in [format!("{base} {options}"), format!("{options} {base}")] {
            let r = Requirement::parse(&line)?;
            assert_eq!(
                (r.min_duration, r.max_duration),
                (min_duration, max_duration),
                "{line}"
            );
            assert!(r.has_duration_bounds(), "{line}");
            assert_eq!((r.min, r.max, r.lookback_seconds), (1, 100, 600), "{line}");
            assert_eq!(r.to_string(), format!("{base}{suffix}"), "{line}");
            assert_eq!(Requirement::parse(&r.to_string())?, r, "{line}");
        }
    }
    Ok(())
}

/// `(line, column, kind, message)`: every error kind, at the column of the offending option.
const ERRORS: &[(&str, usize, Kind, &str)] = &[
    ("CHECKHOURS0-23 CHECKMINUTES0-59 WEEKDAYS MINNUM5 MAXNUM2 LOOKBACKSECONDS60", 50, Kind::MaxBelowMin,
     "MAXNUM must be >= MINNUM (5 > 2)"),
    ("CHECKHOURS0-23 CHECKMINUTES0-59 WEEKDAYS FOO MINNUM5 MAXNUM20 LOOKBACKSECONDS60", 42, Kind::UnknownOption,
     "unexpected `FOO`; expected an option (CHECKHOURS, CHECKMINUTES, CHECKDAYS, CHECKMONTHS, CHECKWEEKDAYS, WEEKDAYS, WEEKENDS, MINNUM, MAXNUM, LOOKBACKSECONDS, DELAYSECONDS, SEVERITYWARNING, SEVERITYCRITICAL, FAILAFTER, RECOVERAFTER, ALERTKEY, PINGS, MINDURATION, MAXDURATION), with its value attached without a space"),
    ("checkhours0-23 CHECKMINUTES0-59 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60", 1, Kind::UnknownOption,
     "unknown option `checkhours0-23`; options are case-sensitive: did you mean CHECKHOURS?"),
    ("CHECKHOURS0-23 CHECKMINUTES0-59 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60 CHECKHOURS1", 77, Kind::DuplicateOption,
     "CHECKHOURS given twice (first at column 1); each option may appear at most once"),
    ("CHECKHOURS0-23 CHECKMINUTES0-59 WEEKDAYS WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60", 42, Kind::DuplicateOption,
     "WEEKDAYS given twice (first at column 33); each option may appear at most once"),
    ("CHECKHOURS0-23 CHECKMINUTES0-59 WEEKDAYS MINNUM 5 MAXNUM20 LOOKBACKSECONDS60", 42, Kind::MissingValue,
     "MINNUM needs a value right after it, with no space, e.g. `MINNUM5`"),
    ("CHECKHOURS0-23 CHECKMINUTES0-59 WEEKDAYSX MINNUM5 MAXNUM20 LOOKBACKSECONDS60", 33, Kind::UnexpectedValue,
     "WEEKDAYS takes no value, found `WEEKDAYSX`; expected `WEEKDAYS` alone"),
    ("CHECKHOURS0-24 CHECKMINUTES0-59 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60", 1, Kind::OutOfRange,
     "CHECKHOURS: `24` is out of range; expected an hour from 0 to 23"),
    ("CHECKHOURS0-23 CHECKMINUTES60 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60", 16, Kind::OutOfRange,
     "CHECKMINUTES: `60` is out of range; expected a minute from 0 to 59"),
    ("CHECKHOURS0-23 CHECKMINUTES0 CHECKDAYS0 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60", 30, Kind::OutOfRange,
     "CHECKDAYS: `0` is out of range; expected a day of the month from 1 to 31"),
    ("CHECKHOURS0-23 CHECKMINUTES0 CHECKMONTHS13 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60", 30, Kind::OutOfRange,
     "CHECKMONTHS: `13` is out of range; expected a month from 1 to 12 or JAN-DEC"),
    ("CHECKHOURS0-23 CHECKMINUTES0 CHECKWEEKDAYS8 MINNUM5 MAXNUM20 LOOKBACKSECONDS60", 30, Kind::OutOfRange,
     "CHECKWEEKDAYS: `8` is out of range; expected a day of the week from 0 to 7 (0 and 7 = Sunday) or SUN-SAT"),
    ("CHECKHOURS17-9 CHECKMINUTES0 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60", 1, Kind::ReversedRange,
     "CHECKHOURS: reversed range `17-9`; expected the start <= the end"),
    ("CHECKHOURS0 CHECKMINUTES0 CHECKMONTHSDEC-JAN WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60", 27, Kind::ReversedRange,
     "CHECKMONTHS: reversed range `DEC-JAN`; expected the start <= the end"),
    ("CHECKHOURS0 CHECKMINUTES*/0 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60", 13, Kind::ZeroStep,
     "CHECKMINUTES: step must not be 0; expected a number from 1 to 60"),
    ("CHECKHOURS*/25 CHECKMINUTES0 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60", 1, Kind::OutOfRange,
     "CHECKHOURS: step `/25` is out of range; expected a number from 1 to 24"),
    ("CHECKHOURS0 CHECKMINUTES0,,5 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60", 13, Kind::InvalidValue,
     "CHECKMINUTES: empty list item; expected a minute from 0 to 59, `*`, a range `a-b`, a step `*/n`, `a-b/n` or `a/n`, or a comma list of these"),
    ("CHECKHOURS0 CHECKMINUTES0x WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60", 13, Kind::InvalidValue,
     "CHECKMINUTES: invalid value `0x`; expected a minute from 0 to 59, `*`, a range `a-b`, a step `*/n`, `a-b/n` or `a/n`, or a comma list of these"),
    ("CHECKHOURS0 CHECKMINUTES0 WEEKDAYS MINNUM-1 MAXNUM20 LOOKBACKSECONDS60", 36, Kind::InvalidValue,
     "MINNUM: invalid value `-1`; expected an integer from 0 to 9223372036854775807"),
    ("CHECKHOURS0 CHECKMINUTES0 WEEKDAYS MINNUM5 MAXNUM99999999999999999999999 LOOKBACKSECONDS60", 44, Kind::OutOfRange,
     "MAXNUM: `99999999999999999999999` is out of range; expected an integer from 0 to 9223372036854775807"),
    ("CHECKHOURS0 CHECKMINUTES0 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS0", 53, Kind::OutOfRange,
     "LOOKBACKSECONDS: `0` is out of range; expected an integer from 1 to 31622400"),
    ("CHECKHOURS0 CHECKMINUTES0 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS31622401", 53, Kind::OutOfRange,
     "LOOKBACKSECONDS: `31622401` is out of range; expected an integer from 1 to 31622400"),
    // Alerting options (issue 7); the line before them ends at column 69.
    ("CHECKHOURS0 CHECKMINUTES0 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60 FAILAFTER0", 71, Kind::OutOfRange,
     "FAILAFTER: `0` is out of range; expected an integer from 1 to 10000"),
    ("CHECKHOURS0 CHECKMINUTES0 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60 RECOVERAFTER10001", 71, Kind::OutOfRange,
     "RECOVERAFTER: `10001` is out of range; expected an integer from 1 to 10000"),
    ("CHECKHOURS0 CHECKMINUTES0 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60 FAILAFTER99999999999999999999999", 71, Kind::OutOfRange,
     "FAILAFTER: `99999999999999999999999` is out of range; expected an integer from 1 to 10000"),
    ("CHECKHOURS0 CHECKMINUTES0 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60 RECOVERAFTER-2", 71, Kind::InvalidValue,
     "RECOVERAFTER: invalid value `-2`; expected an integer from 1 to 10000"),
    ("CHECKHOURS0 CHECKMINUTES0 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60 FAILAFTER 3", 71, Kind::MissingValue,
     "FAILAFTER needs a value right after it, with no space, e.g. `FAILAFTER3`"),
    ("CHECKHOURS0 CHECKMINUTES0 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60 RECOVERAFTER", 71, Kind::MissingValue,
     "RECOVERAFTER needs a value right after it, with no space, e.g. `RECOVERAFTER2`"),
    ("CHECKHOURS0 CHECKMINUTES0 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60 FAILAFTER2 FAILAFTER3", 82, Kind::DuplicateOption,
     "FAILAFTER given twice (first at column 71); each option may appear at most once"),
    ("CHECKHOURS0 CHECKMINUTES0 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60 SEVERITYWARNING SEVERITYCRITICAL", 87, Kind::ConflictingOptions,
     "SEVERITYCRITICAL conflicts with SEVERITYWARNING (at column 71); give at most one severity"),
    ("SEVERITYCRITICAL CHECKHOURS0 CHECKMINUTES0 SEVERITYWARNING WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60", 44, Kind::ConflictingOptions,
     "SEVERITYWARNING conflicts with SEVERITYCRITICAL (at column 1); give at most one severity"),
    ("CHECKHOURS0 CHECKMINUTES0 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60 SEVERITYWARNING SEVERITYWARNING", 87, Kind::DuplicateOption,
     "SEVERITYWARNING given twice (first at column 71); each option may appear at most once"),
    ("CHECKHOURS0 CHECKMINUTES0 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60 SEVERITYWARNING3", 71, Kind::UnexpectedValue,
     "SEVERITYWARNING takes no value, found `SEVERITYWARNING3`; expected `SEVERITYWARNING` alone"),
    ("CHECKHOURS0 CHECKMINUTES0 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60 severitywarning", 71, Kind::UnknownOption,
     "unknown option `severitywarning`; options are case-sensitive: did you mean SEVERITYWARNING?"),
    // DELAYSECONDS (late-arriving data); the line before it ends at column 69.
    ("CHECKHOURS0 CHECKMINUTES0 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60 DELAYSECONDS604801", 71, Kind::OutOfRange,
     "DELAYSECONDS: `604801` is out of range; expected an integer from 0 to 604800"),
    ("CHECKHOURS0 CHECKMINUTES0 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60 DELAYSECONDS99999999999999999999999", 71, Kind::OutOfRange,
     "DELAYSECONDS: `99999999999999999999999` is out of range; expected an integer from 0 to 604800"),
    ("CHECKHOURS0 CHECKMINUTES0 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60 DELAYSECONDS-60", 71, Kind::InvalidValue,
     "DELAYSECONDS: invalid value `-60`; expected an integer from 0 to 604800"),
    ("CHECKHOURS0 CHECKMINUTES0 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60 DELAYSECONDS5m", 71, Kind::InvalidValue,
     "DELAYSECONDS: invalid value `5m`; expected an integer from 0 to 604800"),
    ("CHECKHOURS0 CHECKMINUTES0 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60 DELAYSECONDS 300", 71, Kind::MissingValue,
     "DELAYSECONDS needs a value right after it, with no space, e.g. `DELAYSECONDS300`"),
    ("CHECKHOURS0 CHECKMINUTES0 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60 DELAYSECONDS300 DELAYSECONDS0", 87, Kind::DuplicateOption,
     "DELAYSECONDS given twice (first at column 71); each option may appear at most once"),
    ("CHECKHOURS0 CHECKMINUTES0 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60 delayseconds300", 71, Kind::UnknownOption,
     "unknown option `delayseconds300`; options are case-sensitive: did you mean DELAYSECONDS?"),
    ("CHECKHOURS0 CHECKMINUTES0 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60 DELAYSECOND300", 71, Kind::UnknownOption,
     "unexpected `DELAYSECOND300`; expected an option (CHECKHOURS, CHECKMINUTES, CHECKDAYS, CHECKMONTHS, CHECKWEEKDAYS, WEEKDAYS, WEEKENDS, MINNUM, MAXNUM, LOOKBACKSECONDS, DELAYSECONDS, SEVERITYWARNING, SEVERITYCRITICAL, FAILAFTER, RECOVERAFTER, ALERTKEY, PINGS, MINDURATION, MAXDURATION), with its value attached without a space"),
    ("CHECKHOURS0 CHECKMINUTES0 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60 ALERTKEY", 71, Kind::MissingValue,
     "ALERTKEY needs a value right after it, with no space, e.g. `ALERTKEYpayments-hourly`"),
    ("CHECKHOURS0 CHECKMINUTES0 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60 ALERTKEYpay/ments", 71, Kind::InvalidValue,
     "ALERTKEY: `/` is not allowed in a key (`pay/ments`); expected letters, digits, `.`, `_` or `-`"),
    ("CHECKHOURS0 CHECKMINUTES0 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60 ALERTKEYaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 71, Kind::OutOfRange,
     "ALERTKEY: the key has 65 characters; expected at most 64"),
    ("CHECKHOURS0 CHECKMINUTES0 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60 ALERTKEYa ALERTKEYb", 81, Kind::DuplicateOption,
     "ALERTKEY given twice (first at column 71); each option may appear at most once"),
    ("CHECKHOURS0 CHECKMINUTES0 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60 PINGS", 71, Kind::MissingValue,
     "PINGS needs a value right after it, with no space, e.g. `PINGSFAIL`"),
    ("CHECKHOURS0 CHECKMINUTES0 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60 PINGSfail", 71, Kind::InvalidValue,
     "PINGS: unknown ping kind `fail`; expected PINGSSUCCESS, PINGSFAIL, PINGSSTART or PINGSLOG"),
    ("CHECKHOURS0 CHECKMINUTES0 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60 PINGSFAIL PINGSLOG", 81, Kind::DuplicateOption,
     "PINGS given twice (first at column 71); each option may appear at most once"),
    ("CHECKHOURS0 CHECKMINUTES0 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60 MINDURATION", 71, Kind::MissingValue,
     "MINDURATION needs a value right after it, with no space, e.g. `MINDURATION10`"),
    ("CHECKHOURS0 CHECKMINUTES0 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60 MAXDURATION", 71, Kind::MissingValue,
     "MAXDURATION needs a value right after it, with no space, e.g. `MAXDURATION3600`"),
    ("CHECKHOURS0 CHECKMINUTES0 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60 MINDURATION10s", 71, Kind::InvalidValue,
     "MINDURATION: invalid value `10s`; expected an integer from 0 to 31622400"),
    ("CHECKHOURS0 CHECKMINUTES0 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60 MAXDURATION-1", 71, Kind::InvalidValue,
     "MAXDURATION: invalid value `-1`; expected an integer from 0 to 31622400"),
    ("CHECKHOURS0 CHECKMINUTES0 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60 MAXDURATION31622401", 71, Kind::OutOfRange,
     "MAXDURATION: `31622401` is out of range; expected an integer from 0 to 31622400"),
    ("CHECKHOURS0 CHECKMINUTES0 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60 MINDURATION99999999999999999999", 71, Kind::OutOfRange,
     "MINDURATION: `99999999999999999999` is out of range; expected an integer from 0 to 31622400"),
    ("CHECKHOURS0 CHECKMINUTES0 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60 MINDURATION5 MINDURATION6", 84, Kind::DuplicateOption,
     "MINDURATION given twice (first at column 71); each option may appear at most once"),
    ("CHECKHOURS0 CHECKMINUTES0 WEEKDAYS MAXDURATION30 MINNUM5 MAXNUM20 LOOKBACKSECONDS60 MINDURATION60", 36, Kind::MaxBelowMin,
     "MAXDURATION must be >= MINDURATION (60 > 30)"),
    // Missing options are reported just after the last non-blank character.
    ("CHECKMINUTES0 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS60  ", 58, Kind::MissingOption,
     "missing CHECKHOURS; every requirement needs CHECKHOURS and CHECKMINUTES"),
    ("CHECKHOURS0 MINNUM5 MAXNUM20 LOOKBACKSECONDS60 WEEKDAYS", 56, Kind::MissingOption,
     "missing CHECKMINUTES; every requirement needs CHECKHOURS and CHECKMINUTES"),
    ("CHECKHOURS0 CHECKMINUTES0 MINNUM5 MAXNUM20 LOOKBACKSECONDS60", 61, Kind::MissingOption,
     "missing a day-of-week option; expected at least one of WEEKDAYS, WEEKENDS, CHECKWEEKDAYS"),
    ("CHECKHOURS0 CHECKMINUTES0 WEEKDAYS MAXNUM20 LOOKBACKSECONDS60", 62, Kind::MissingOption,
     "missing MINNUM; every requirement needs MINNUM, MAXNUM and LOOKBACKSECONDS"),
    ("CHECKHOURS0 CHECKMINUTES0 WEEKDAYS MINNUM5 LOOKBACKSECONDS60", 61, Kind::MissingOption,
     "missing MAXNUM; every requirement needs MINNUM, MAXNUM and LOOKBACKSECONDS"),
    ("CHECKHOURS0 CHECKMINUTES0 WEEKDAYS MINNUM5 MAXNUM20", 52, Kind::MissingOption,
     "missing LOOKBACKSECONDS; every requirement needs MINNUM, MAXNUM and LOOKBACKSECONDS"),
    ("", 1, Kind::MissingOption,
     "missing CHECKHOURS; every requirement needs CHECKHOURS and CHECKMINUTES"),
    // Columns count characters, not bytes.
    ("CHECKHOURS0 ü CHECKMINUTES0", 13, Kind::UnknownOption,
     "unexpected `ü`; expected an option (CHECKHOURS, CHECKMINUTES, CHECKDAYS, CHECKMONTHS, CHECKWEEKDAYS, WEEKDAYS, WEEKENDS, MINNUM, MAXNUM, LOOKBACKSECONDS, DELAYSECONDS, SEVERITYWARNING, SEVERITYCRITICAL, FAILAFTER, RECOVERAFTER, ALERTKEY, PINGS, MINDURATION, MAXDURATION), with its value attached without a space"),
];

#[test]
fn every_error_kind_with_its_column() {
    for &(line, column, kind, message) in ERRORS {
        let expected = RequirementError {
            column,
            kind,
            message: message.to_owned(),
        };
        assert_eq!(Requirement::parse(line), Err(expected), "{line}");
    }
}

#[test]
fn error_display_names_the_column() {
    let err = Requirement::parse(
        "CHECKHOURS0-23 CHECKMINUTES0-59 WEEKDAYS MINNUM5 MAXNUM2 LOOKBACKSECONDS60",
    );
    assert_eq!(
        err.map_err(|e| e.to_string()),
        Err("column 50: MAXNUM must be >= MINNUM (5 > 2)".to_owned())
    );
}
