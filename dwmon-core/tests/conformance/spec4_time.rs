//! Time (README "Time zones and daylight saving time"). A minute is due iff its local wall-clock time in the checker's zone matches
//! every schedule field; local times skipped by a spring-forward never match, local times
//! repeated by a fall-back match twice. All instants are fixed; nothing reads the clock.

use chrono::NaiveDateTime;
use chrono_tz::Tz;
use dwmon_core::schedule::{due_minutes, matches, ZoneCursor};
use dwmon_core::{FieldSet, Requirement, RequirementError, Schedule};

const NEW_YORK: Tz = Tz::America__New_York;
const LONDON: Tz = Tz::Europe__London;
const TOKYO: Tz = Tz::Asia__Tokyo;
const KATHMANDU: Tz = Tz::Asia__Kathmandu;
const LORD_HOWE: Tz = Tz::Australia__Lord_Howe;

/// `"2026-03-08T06:59Z"` (or with seconds, `"...T06:59:30Z"`) as epoch seconds.
fn utc(text: &str) -> i64 {
    let format = if text.len() > 17 {
        "%Y-%m-%dT%H:%M:%SZ"
    } else {
        "%Y-%m-%dT%H:%MZ"
    };
    NaiveDateTime::parse_from_str(text, format)
        .unwrap_or_else(|e| panic!("bad test instant {text}: {e}"))
        .and_utc()
        .timestamp()
}

/// A set from explicit values.
fn at(values: &[u32]) -> FieldSet {
    let mut set = FieldSet(0);
    for &v in values {
        set.insert(v);
    }
    set
}

/// `CHECKHOURS0-23 CHECKMINUTES0-59 WEEKDAYS WEEKENDS`: every minute.
fn every_minute() -> Schedule {
    Schedule {
        minutes: FieldSet::range(0, 59),
        hours: FieldSet::range(0, 23),
        days: FieldSet::range(1, 31),
        months: FieldSet::range(1, 12),
        weekdays: FieldSet::range(0, 6),
    }
}

/// `WEEKENDS` (Saturday and Sunday).
fn weekends() -> FieldSet {
    at(&[0, 6])
}

/// `WEEKDAYS` (Monday to Friday).
fn weekdays() -> FieldSet {
    FieldSet::range(1, 5)
}

/// The local time of a minute as the cursor sees it: `"2026-01-09 23:59 Fri"`.
fn local_text(zone: Tz, minute: i64) -> String {
    const NAMES: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    let f = ZoneCursor::new(zone)
        .local_fields(minute)
        .expect("test minutes are in range");
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} {}",
        f.year, f.month, f.day, f.hour, f.minute, NAMES[f.weekday as usize]
    )
}

fn due(schedule: &Schedule, zone: Tz, from: &str, to: &str) -> Vec<i64> {
    due_minutes(schedule, zone, utc(from), utc(to)).collect()
}

/// One fixed instant: its local time, and whether a schedule is due there.
struct PointCase {
    name: &'static str,
    zone: Tz,
    instant: &'static str,
    local: &'static str,
    schedule: Schedule,
    due: bool,
}

fn check_points(cases: &[PointCase]) {
    for case in cases {
        let minute = utc(case.instant);
        assert_eq!(
            local_text(case.zone, minute),
            case.local,
            "{}: local time",
            case.name
        );
        assert_eq!(
            matches(&case.schedule, minute, case.zone),
            case.due,
            "{}: matches",
            case.name
        );
        assert_eq!(
            ZoneCursor::new(case.zone).matches(&case.schedule, minute),
            case.due,
            "{}: ZoneCursor::matches",
            case.name
        );
    }
}

/// The due minutes in a range: either listed exactly or counted.
enum Expect {
    Exactly(&'static [&'static str]),
    Count(usize),
}

struct RangeCase {
    name: &'static str,
    zone: Tz,
    schedule: Schedule,
    from: &'static str,
    to: &'static str,
    expect: Expect,
}

fn check_ranges(cases: &[RangeCase]) {
    for case in cases {
        let actual = due(&case.schedule, case.zone, case.from, case.to);
        match case.expect {
            Expect::Exactly(listed) => {
                let expected: Vec<i64> = listed.iter().map(|t| utc(t)).collect();
                assert_eq!(actual, expected, "{}", case.name);
            }
            Expect::Count(n) => assert_eq!(actual.len(), n, "{}", case.name),
        }
        // The skipping iterator must equal testing every minute of the range.
        let mut cursor = ZoneCursor::new(case.zone);
        let brute: Vec<i64> = (utc(case.from)..=utc(case.to))
            .step_by(60)
            .filter(|m| cursor.matches(&case.schedule, *m))
            .collect();
        assert_eq!(actual, brute, "{}: brute force", case.name);
    }
}

#[test]
fn weekend_boundaries_follow_local_days_not_utc_days() {
    let weekend = Schedule {
        weekdays: weekends(),
        ..every_minute()
    };
    let weekday = Schedule {
        weekdays: weekdays(),
        ..every_minute()
    };
    let mut cases = Vec::new();
    // (zone, instant, local, is a local weekend minute). In New York the local weekend starts
    // five hours into the UTC Saturday; in Tokyo nine hours before it.
    #[rustfmt::skip]
    let table = [
        ("NY Friday 23:59 (UTC Saturday)", NEW_YORK, "2026-01-10T04:59Z", "2026-01-09 23:59 Fri", false),
        ("NY Saturday 00:00", NEW_YORK, "2026-01-10T05:00Z", "2026-01-10 00:00 Sat", true),
        ("NY Sunday 23:59 (UTC Monday)", NEW_YORK, "2026-01-12T04:59Z", "2026-01-11 23:59 Sun", true),
        ("NY Monday 00:00", NEW_YORK, "2026-01-12T05:00Z", "2026-01-12 00:00 Mon", false),
        ("NY summer Friday 23:59 (EDT)", NEW_YORK, "2026-07-11T03:59Z", "2026-07-10 23:59 Fri", false),
        ("NY summer Saturday 00:00 (EDT)", NEW_YORK, "2026-07-11T04:00Z", "2026-07-11 00:00 Sat", true),
        ("Tokyo Friday 23:59", TOKYO, "2026-01-09T14:59Z", "2026-01-09 23:59 Fri", false),
        ("Tokyo Saturday 00:00 (UTC Friday)", TOKYO, "2026-01-09T15:00Z", "2026-01-10 00:00 Sat", true),
        ("Tokyo Sunday 23:59", TOKYO, "2026-01-11T14:59Z", "2026-01-11 23:59 Sun", true),
        ("Tokyo Monday 00:00 (UTC Sunday)", TOKYO, "2026-01-11T15:00Z", "2026-01-12 00:00 Mon", false),
        ("Kathmandu Saturday 00:00 (+05:45)", KATHMANDU, "2026-01-09T18:15Z", "2026-01-10 00:00 Sat", true),
        ("Kathmandu Friday 23:59 (+05:45)", KATHMANDU, "2026-01-09T18:14Z", "2026-01-09 23:59 Fri", false),
    ];
    for (name, zone, instant, local, is_weekend) in table {
        cases.push(PointCase {
            name,
            zone,
            instant,
            local,
            schedule: weekend,
            due: is_weekend,
        });
        cases.push(PointCase {
            name,
            zone,
            instant,
            local,
            schedule: weekday,
            due: !is_weekend,
        });
    }
    check_points(&cases);

    // A whole local weekend is exactly 2 * 1440 minutes, starting and ending on local midnight.
    check_ranges(&[
        RangeCase {
            name: "NY weekend of 2026-01-10",
            zone: NEW_YORK,
            schedule: weekend,
            from: "2026-01-09T00:00Z",
            to: "2026-01-13T00:00Z",
            expect: Expect::Count(2 * 1440),
        },
        RangeCase {
            name: "Tokyo weekend of 2026-01-10",
            zone: TOKYO,
            schedule: weekend,
            from: "2026-01-09T00:00Z",
            to: "2026-01-13T00:00Z",
            expect: Expect::Count(2 * 1440),
        },
    ]);
    let ny = due(&weekend, NEW_YORK, "2026-01-09T00:00Z", "2026-01-13T00:00Z");
    assert_eq!(
        (ny.first().copied(), ny.last().copied()),
        (
            Some(utc("2026-01-10T05:00Z")),
            Some(utc("2026-01-12T04:59Z"))
        )
    );
    let tokyo = due(&weekend, TOKYO, "2026-01-09T00:00Z", "2026-01-13T00:00Z");
    assert_eq!(
        (tokyo.first().copied(), tokyo.last().copied()),
        (
            Some(utc("2026-01-09T15:00Z")),
            Some(utc("2026-01-11T14:59Z"))
        )
    );
}

#[test]
fn dst_instants_map_to_the_expected_local_times() {
    let hour_minute = |h: u32, m: u32| Schedule {
        hours: at(&[h]),
        minutes: at(&[m]),
        ..every_minute()
    };
    #[rustfmt::skip]
    let cases = [
        // New York, 2026-03-08: 02:00 EST -> 03:00 EDT at 07:00Z.
        PointCase { name: "NY last EST minute", zone: NEW_YORK, instant: "2026-03-08T06:59Z", local: "2026-03-08 01:59 Sun", schedule: hour_minute(1, 59), due: true },
        PointCase { name: "NY first EDT minute", zone: NEW_YORK, instant: "2026-03-08T07:00Z", local: "2026-03-08 03:00 Sun", schedule: hour_minute(3, 0), due: true },
        PointCase { name: "NY first EDT minute is not 02:00", zone: NEW_YORK, instant: "2026-03-08T07:00Z", local: "2026-03-08 03:00 Sun", schedule: hour_minute(2, 0), due: false },
        // New York, 2026-11-01: 02:00 EDT -> 01:00 EST at 06:00Z; 01:30 happens twice.
        PointCase { name: "NY 01:30 EDT", zone: NEW_YORK, instant: "2026-11-01T05:30Z", local: "2026-11-01 01:30 Sun", schedule: hour_minute(1, 30), due: true },
        PointCase { name: "NY 01:30 EST", zone: NEW_YORK, instant: "2026-11-01T06:30Z", local: "2026-11-01 01:30 Sun", schedule: hour_minute(1, 30), due: true },
        PointCase { name: "NY 02:00 EST", zone: NEW_YORK, instant: "2026-11-01T07:00Z", local: "2026-11-01 02:00 Sun", schedule: hour_minute(2, 0), due: true },
        // London, 2026-03-29: 01:00 GMT -> 02:00 BST at 01:00Z.
        PointCase { name: "London last GMT minute", zone: LONDON, instant: "2026-03-29T00:59Z", local: "2026-03-29 00:59 Sun", schedule: hour_minute(0, 59), due: true },
        PointCase { name: "London first BST minute", zone: LONDON, instant: "2026-03-29T01:00Z", local: "2026-03-29 02:00 Sun", schedule: hour_minute(2, 0), due: true },
        PointCase { name: "London first BST minute is not 01:00", zone: LONDON, instant: "2026-03-29T01:00Z", local: "2026-03-29 02:00 Sun", schedule: hour_minute(1, 0), due: false },
        // London, 2026-10-25: 02:00 BST -> 01:00 GMT at 01:00Z; 01:00 happens twice.
        PointCase { name: "London 01:00 BST", zone: LONDON, instant: "2026-10-25T00:00Z", local: "2026-10-25 01:00 Sun", schedule: hour_minute(1, 0), due: true },
        PointCase { name: "London 01:00 GMT", zone: LONDON, instant: "2026-10-25T01:00Z", local: "2026-10-25 01:00 Sun", schedule: hour_minute(1, 0), due: true },
        // Seconds are dropped: 06:59:59Z is the minute 06:59Z.
        PointCase { name: "NY rounding down", zone: NEW_YORK, instant: "2026-03-08T06:59:59Z", local: "2026-03-08 01:59 Sun", schedule: hour_minute(1, 59), due: true },
        // Before 1970: negative epochs work like any other minute.
        PointCase { name: "UTC 1969-12-31 23:59:30", zone: Tz::UTC, instant: "1969-12-31T23:59:30Z", local: "1969-12-31 23:59 Wed", schedule: hour_minute(23, 59), due: true },
    ];
    check_points(&cases);
}

#[test]
fn skipped_local_times_never_match_and_repeated_ones_match_twice() {
    let hour = |h: u32| Schedule {
        hours: at(&[h]),
        ..every_minute()
    };
    let hour_minute = |h: u32, m: u32| Schedule {
        hours: at(&[h]),
        minutes: at(&[m]),
        ..every_minute()
    };
    let on = |day: u32, month: u32, schedule: Schedule| Schedule {
        days: at(&[day]),
        months: at(&[month]),
        ..schedule
    };
    check_ranges(&[
        // New York spring forward, 2026-03-08: 02:xx does not exist that night.
        RangeCase {
            name: "NY CHECKHOURS2 on 2026-03-08",
            zone: NEW_YORK,
            schedule: on(8, 3, hour(2)),
            from: "2026-01-01T00:00Z",
            to: "2026-12-31T23:59Z",
            expect: Expect::Exactly(&[]),
        },
        RangeCase {
            name: "NY CHECKHOURS2 CHECKMINUTES30 around 2026-03-08",
            zone: NEW_YORK,
            schedule: hour_minute(2, 30),
            from: "2026-03-07T00:00Z",
            to: "2026-03-10T00:00Z",
            // 02:30 EST on the 7th, none on the 8th, 02:30 EDT on the 9th.
            expect: Expect::Exactly(&["2026-03-07T07:30Z", "2026-03-09T06:30Z"]),
        },
        RangeCase {
            name: "NY local 2026-03-08 has 23 hours",
            zone: NEW_YORK,
            schedule: on(8, 3, every_minute()),
            from: "2026-03-07T00:00Z",
            to: "2026-03-10T00:00Z",
            expect: Expect::Count(23 * 60),
        },
        // New York fall back, 2026-11-01: 01:xx happens in EDT, then again in EST.
        RangeCase {
            name: "NY CHECKHOURS1 CHECKMINUTES30 on 2026-11-01",
            zone: NEW_YORK,
            schedule: on(1, 11, hour_minute(1, 30)),
            from: "2026-01-01T00:00Z",
            to: "2026-12-31T23:59Z",
            expect: Expect::Exactly(&["2026-11-01T05:30Z", "2026-11-01T06:30Z"]),
        },
        RangeCase {
            name: "NY CHECKHOURS1 on 2026-11-01 is 120 minutes",
            zone: NEW_YORK,
            schedule: on(1, 11, hour(1)),
            from: "2026-10-31T00:00Z",
            to: "2026-11-03T00:00Z",
            expect: Expect::Count(120),
        },
        RangeCase {
            name: "NY local 2026-11-01 has 25 hours",
            zone: NEW_YORK,
            schedule: on(1, 11, every_minute()),
            from: "2026-10-31T00:00Z",
            to: "2026-11-03T00:00Z",
            expect: Expect::Count(25 * 60),
        },
        // London spring forward, 2026-03-29: 01:xx does not exist.
        RangeCase {
            name: "London CHECKHOURS1 around 2026-03-29",
            zone: LONDON,
            schedule: hour_minute(1, 0),
            from: "2026-03-28T00:00Z",
            to: "2026-03-30T23:59Z",
            expect: Expect::Exactly(&["2026-03-28T01:00Z", "2026-03-30T00:00Z"]),
        },
        RangeCase {
            name: "London local 2026-03-29 has 23 hours",
            zone: LONDON,
            schedule: on(29, 3, every_minute()),
            from: "2026-03-27T00:00Z",
            to: "2026-03-31T00:00Z",
            expect: Expect::Count(23 * 60),
        },
        // London fall back, 2026-10-25: 01:xx happens in BST, then again in GMT.
        RangeCase {
            name: "London CHECKHOURS1 CHECKMINUTES0 on 2026-10-25",
            zone: LONDON,
            schedule: on(25, 10, hour_minute(1, 0)),
            from: "2026-01-01T00:00Z",
            to: "2026-12-31T23:59Z",
            expect: Expect::Exactly(&["2026-10-25T00:00Z", "2026-10-25T01:00Z"]),
        },
        RangeCase {
            name: "London local 2026-10-25 has 25 hours",
            zone: LONDON,
            schedule: on(25, 10, every_minute()),
            from: "2026-10-23T00:00Z",
            to: "2026-10-27T00:00Z",
            expect: Expect::Count(25 * 60),
        },
        RangeCase {
            name: "London CHECKMINUTES*/20 over the 25-hour day",
            zone: LONDON,
            schedule: on(
                25,
                10,
                Schedule {
                    minutes: at(&[0, 20, 40]),
                    ..every_minute()
                },
            ),
            from: "2026-10-24T00:00Z",
            to: "2026-10-27T00:00Z",
            expect: Expect::Count(25 * 3),
        },
        // Lord Howe falls back only 30 minutes (02:00 +11 -> 01:30 +10:30 on 2026-04-05):
        // 01:00-01:29 once, 01:30-01:59 twice.
        RangeCase {
            name: "Lord Howe CHECKHOURS1 on 2026-04-05",
            zone: LORD_HOWE,
            schedule: on(5, 4, hour(1)),
            from: "2026-04-03T00:00Z",
            to: "2026-04-07T00:00Z",
            expect: Expect::Count(90),
        },
    ]);
}

#[test]
fn day_of_month_month_and_day_of_week_are_anded() {
    let nine = Schedule {
        hours: at(&[9]),
        minutes: at(&[0]),
        ..every_minute()
    };
    check_ranges(&[
        RangeCase {
            // CHECKDAYS13 CHECKWEEKDAYS5: Friday the 13th only, not every 13th and every Friday.
            name: "Friday the 13th in London, 2026",
            zone: LONDON,
            schedule: Schedule {
                days: at(&[13]),
                weekdays: at(&[5]),
                ..nine
            },
            from: "2026-01-01T00:00Z",
            to: "2026-12-31T23:59Z",
            expect: Expect::Exactly(&[
                "2026-02-13T09:00Z",
                "2026-03-13T09:00Z",
                "2026-11-13T09:00Z",
            ]),
        },
        RangeCase {
            // CHECKMONTHS2 WEEKENDS in Tokyo: 8 weekend days in February 2026.
            name: "February weekends in Tokyo, 2026",
            zone: TOKYO,
            schedule: Schedule {
                months: at(&[2]),
                weekdays: weekends(),
                ..nine
            },
            from: "2026-01-01T00:00Z",
            to: "2026-12-31T23:59Z",
            expect: Expect::Count(8),
        },
        RangeCase {
            // The leap day exists only in 2028 (a Tuesday).
            name: "CHECKDAYS29 CHECKMONTHS2, 2026-2031, UTC",
            zone: Tz::UTC,
            schedule: Schedule {
                days: at(&[29]),
                months: at(&[2]),
                ..nine
            },
            from: "2026-01-01T00:00Z",
            to: "2031-12-31T23:59Z",
            expect: Expect::Exactly(&["2028-02-29T09:00Z"]),
        },
        RangeCase {
            name: "CHECKDAYS29 CHECKMONTHS2 WEEKDAYS in Kathmandu (+05:45)",
            zone: KATHMANDU,
            schedule: Schedule {
                days: at(&[29]),
                months: at(&[2]),
                weekdays: weekdays(),
                ..nine
            },
            from: "2026-01-01T00:00Z",
            to: "2031-12-31T23:59Z",
            expect: Expect::Exactly(&["2028-02-29T03:15Z"]),
        },
        RangeCase {
            name: "CHECKDAYS29 CHECKMONTHS2 WEEKENDS never happens 2026-2031",
            zone: Tz::UTC,
            schedule: Schedule {
                days: at(&[29]),
                months: at(&[2]),
                weekdays: weekends(),
                ..nine
            },
            from: "2026-01-01T00:00Z",
            to: "2031-12-31T23:59Z",
            expect: Expect::Exactly(&[]),
        },
        RangeCase {
            name: "CHECKDAYS31 skips short months",
            zone: NEW_YORK,
            schedule: Schedule {
                days: at(&[31]),
                ..nine
            },
            from: "2026-01-01T00:00Z",
            to: "2026-12-31T23:59Z",
            expect: Expect::Count(7),
        },
    ]);
}

#[test]
fn extreme_and_empty_ranges_yield_nothing_and_never_panic() {
    let all = every_minute();
    assert_eq!(due_minutes(&all, NEW_YORK, 120, 60).count(), 0);
    assert_eq!(due_minutes(&all, NEW_YORK, i64::MAX, i64::MIN).count(), 0);
    assert_eq!(
        due_minutes(&all, NEW_YORK, i64::MAX - 59, i64::MAX).count(),
        0
    );
    assert_eq!(
        due_minutes(&all, NEW_YORK, i64::MIN, i64::MIN + 3600).count(),
        0
    );
    for minute in [i64::MIN, i64::MIN / 2, i64::MAX / 2, i64::MAX] {
        assert!(!matches(&all, minute, LORD_HOWE), "{minute}");
        assert_eq!(ZoneCursor::new(LORD_HOWE).local_fields(minute), None);
    }
    // A range that includes one minute yields it, whatever the seconds of its ends.
    assert_eq!(
        due(
            &all,
            Tz::UTC,
            "2026-05-01T10:00:59Z",
            "2026-05-01T10:00:01Z"
        ),
        vec![utc("2026-05-01T10:00Z")]
    );
}

/// The seed's requirement lines (and the cron-field extension of docs/FORMAT.md) evaluated from text.
#[test]
fn requirement_text_drives_the_schedule() -> Result<(), RequirementError> {
    let due_of =
        |line: &str, zone: Tz, from: &str, to: &str| -> Result<Vec<i64>, RequirementError> {
            Ok(due(&Requirement::parse(line)?.schedule, zone, from, to))
        };
    // `*/20`, `0-59/20` and `0,20,40` are the same minutes, here over a DST week.
    let week = ("2026-10-29T00:00Z", "2026-11-05T00:00Z");
    let step = due_of(
        "CHECKHOURS9-17 CHECKMINUTES*/20 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS180",
        NEW_YORK,
        week.0,
        week.1,
    )?;
    let range_step = due_of(
        "CHECKHOURS9-17 CHECKMINUTES0-59/20 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS180",
        NEW_YORK,
        week.0,
        week.1,
    )?;
    let list = due_of(
        "CHECKHOURS9-17 CHECKMINUTES0,20,40 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS180",
        NEW_YORK,
        week.0,
        week.1,
    )?;
    // Thursday 29th, Friday 30th, Monday 2nd, Tuesday 3rd, Wednesday 4th: 5 days * 9 hours * 3.
    assert_eq!(step.len(), 5 * 9 * 3);
    assert_eq!(step, range_step);
    assert_eq!(step, list);
    // 09:00 EDT on Friday, then 09:00 EST on Monday: the UTC hour moves with the offset.
    assert!(step.contains(&utc("2026-10-30T13:00Z")));
    assert!(step.contains(&utc("2026-11-02T14:00Z")));

    // Seed line 2: at 09:00, 09:20, 09:40 on weekdays only.
    let seed = due_of(
        "CHECKHOURS9-9 CHECKMINUTES*/20 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS180",
        TOKYO,
        "2026-01-09T00:00Z",
        "2026-01-12T23:59Z",
    )?;
    assert_eq!(
        seed,
        [
            "2026-01-09T00:00Z",
            "2026-01-09T00:20Z",
            "2026-01-09T00:40Z",
            "2026-01-12T00:00Z",
            "2026-01-12T00:20Z",
            "2026-01-12T00:40Z"
        ]
        .map(utc)
        .to_vec()
    );

    // Friday the 13th from text: names for months and weekdays, then numbers.
    let friday_13th = due_of(
        "CHECKHOURS9 CHECKMINUTES0 CHECKDAYS13 CHECKMONTHSJAN-MAR CHECKWEEKDAYSFRI MINNUM0 MAXNUM0 LOOKBACKSECONDS60",
        LONDON,
        "2026-01-01T00:00Z",
        "2026-12-31T23:59Z",
    )?;
    assert_eq!(
        friday_13th,
        ["2026-02-13T09:00Z", "2026-03-13T09:00Z"].map(utc).to_vec()
    );
    let friday_names = due_of(
        "CHECKHOURS9 CHECKMINUTES0 CHECKDAYS13 CHECKWEEKDAYS5 MINNUM0 MAXNUM0 LOOKBACKSECONDS60",
        LONDON,
        "2026-01-01T00:00Z",
        "2026-12-31T23:59Z",
    )?;
    assert_eq!(
        friday_names,
        [
            "2026-02-13T09:00Z",
            "2026-03-13T09:00Z",
            "2026-11-13T09:00Z"
        ]
        .map(utc)
        .to_vec()
    );
    Ok(())
}
