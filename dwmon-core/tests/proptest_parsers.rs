//! Property tests for the checker-file and requirement parsers (docs/FORMAT.md): canonical text round-trips, and no input makes a
//! parser panic. Case counts stay at proptest's default (256) so `cargo test` stays fast;
//! raise them with `PROPTEST_CASES=100000` for a longer run.

use dwmon_core::checker_file::parse_checker_bytes;
use dwmon_core::ping::PingKind;
use dwmon_core::requirement::{MAX_ALERT_AFTER, MAX_DURATION_SECONDS};
use dwmon_core::{parse_checker, FieldSet, Requirement, Schedule, Severity};
use proptest::prelude::*;

/// A non-empty set of values in `lo..=hi`.
fn field_set(lo: u32, hi: u32) -> impl Strategy<Value = FieldSet> {
    let width = hi - lo + 1;
    prop_oneof![
        // Arbitrary subsets.
        any::<u64>().prop_map(move |bits| FieldSet((bits & ((1u64 << width) - 1)) << lo)),
        // Ranges and steps, the shapes the canonical printer compresses.
        (lo..=hi, lo..=hi, 1..=width).prop_map(move |(a, b, step)| {
            let (a, b) = (a.min(b), a.max(b));
            let mut set = FieldSet(0);
            (a..=b).step_by(step as usize).for_each(|v| set.insert(v));
            set
        }),
        Just(FieldSet::range(lo, hi)),
    ]
    .prop_filter("non-empty", |s| !s.is_empty())
}

/// Severity, FAILAFTER and RECOVERAFTER, often the defaults (which print nothing).
fn alerting() -> impl Strategy<Value = (Severity, u32, u32)> {
    let count = prop_oneof![Just(1u32), 1..=5u32, 1..=MAX_ALERT_AFTER];
    (
        prop_oneof![Just(Severity::Critical), Just(Severity::Warning)],
        count.clone(),
        count,
    )
}

/// A ping kind and run duration bounds with `MINDURATION <= MAXDURATION` when both are given.
fn pings_and_durations() -> impl Strategy<Value = (PingKind, Option<u64>, Option<u64>)> {
    let seconds = prop_oneof![0..=600u64, 0..=MAX_DURATION_SECONDS];
    (
        proptest::sample::select(PingKind::ALL.to_vec()),
        proptest::option::of(seconds.clone()),
        proptest::option::of(seconds),
    )
        .prop_map(|(kind, a, b)| match (a, b) {
            (Some(a), Some(b)) => (kind, Some(a.min(b)), Some(a.max(b))),
            other => (kind, other.0, other.1),
        })
}

fn requirement() -> impl Strategy<Value = Requirement> {
    let bound = prop_oneof![0..=100u64, 0..=i64::MAX as u64];
    (
        (
            field_set(0, 59),
            field_set(0, 23),
            field_set(1, 31),
            field_set(1, 12),
            field_set(0, 6),
        ),
        bound.clone(),
        bound,
        1..=dwmon_core::requirement::MAX_LOOKBACK_SECONDS,
        alerting(),
        prop_oneof![
            Just(0u64),
            0..=600u64,
            0..=dwmon_core::requirement::MAX_DELAY_SECONDS
        ],
        proptest::option::of("[A-Za-z0-9._-]{1,64}"),
        pings_and_durations(),
    )
        .prop_map(
            |(
                (minutes, hours, days, months, weekdays),
                a,
                b,
                lookback_seconds,
                (severity, fail_after, recover_after),
                delay_seconds,
                alert_key,
                (pings, min_duration, max_duration),
            )| Requirement {
                schedule: Schedule {
                    minutes,
                    hours,
                    days,
                    months,
                    weekdays,
                },
                min: a.min(b),
                max: a.max(b),
                lookback_seconds,
                severity,
                fail_after,
                recover_after,
                delay_seconds,
                alert_key,
                pings,
                min_duration,
                max_duration,
            },
        )
}

/// Lines built from requirement-like pieces, to reach deep into the grammar.
fn requirement_like_line() -> impl Strategy<Value = String> {
    let option = prop_oneof![
        Just("CHECKHOURS"),
        Just("CHECKMINUTES"),
        Just("CHECKDAYS"),
        Just("CHECKMONTHS"),
        Just("CHECKWEEKDAYS"),
        Just("WEEKDAYS"),
        Just("WEEKENDS"),
        Just("MINNUM"),
        Just("MAXNUM"),
        Just("LOOKBACKSECONDS"),
        Just("SEVERITYWARNING"),
        Just("SEVERITYCRITICAL"),
        Just("FAILAFTER"),
        Just("RECOVERAFTER"),
        Just("DELAYSECONDS"),
        Just("PINGS"),
        Just("MINDURATION"),
        Just("MAXDURATION"),
        Just("checkhours"),
    ];
    let value = "[0-9*/,A-Za-z-]{0,12}";
    prop::collection::vec((option, value), 0..10).prop_map(|parts| {
        parts
            .into_iter()
            .map(|(o, v)| format!("{o}{v}"))
            .collect::<Vec<_>>()
            .join(" ")
    })
}

/// Files built from section markers and requirement-like lines.
fn checker_like_file() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        Just("__QUERY__".to_owned()),
        Just("__REQUIREMENTS__".to_owned()),
        Just("__SOURCE__".to_owned()),
        Just("__EXTRA__".to_owned()),
        Just("__TIMEZONE__".to_owned()),
        Just("__OTHER__".to_owned()),
        Just("America/New_York".to_owned()),
        Just("# comment".to_owned()),
        Just(String::new()),
        "[{}\\[\\]\":,0-9a-zé ]{0,20}",
        requirement_like_line(),
    ];
    (
        prop::collection::vec(line, 0..14),
        prop_oneof![Just("\n"), Just("\r\n")],
    )
        .prop_map(|(lines, newline)| lines.join(newline))
}

proptest! {
    #[test]
    fn canonical_text_round_trips(r in requirement()) {
        let text = r.to_string();
        prop_assert_eq!(Requirement::parse(&text), Ok(r.clone()), "{}", text);
        // Canonical text is a fixed point.
        prop_assert_eq!(Requirement::parse(&text).map(|p| p.to_string()), Ok(text));
    }

    #[test]
    fn requirement_parse_never_panics_on_arbitrary_text(line in any::<String>()) {
        let _ = Requirement::parse(&line);
    }

    #[test]
    fn requirement_parse_never_panics_on_grammar_like_text(line in requirement_like_line()) {
        if let Ok(r) = Requirement::parse(&line) {
            prop_assert_eq!(Requirement::parse(&r.to_string()), Ok(r));
        }
    }

    #[test]
    fn checker_parse_never_panics_on_arbitrary_text(name in any::<String>(), text in any::<String>()) {
        let _ = parse_checker(&name, &text);
    }

    #[test]
    fn checker_parse_never_panics_on_arbitrary_bytes(bytes in any::<Vec<u8>>()) {
        let _ = parse_checker_bytes("x.dwmon", &bytes);
    }

    #[test]
    fn checker_parse_never_panics_on_file_like_text(text in checker_like_file()) {
        match parse_checker("x.dwmon", &text) {
            Ok(c) => prop_assert!(!c.requirements.is_empty() && !c.query.is_empty()),
            Err(e) => prop_assert!(e.line >= 1 && e.column >= 1),
        }
    }
}
