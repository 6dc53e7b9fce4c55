//! `AlertRule::from_requirement_text` (what the handler applies to a check record) agrees with
//! `dwmon_core::Requirement::parse` (what the checker file says) for the alerting options, in
//! any order on the line and through the canonical text the engine puts in records.

use dwmon_alert::{AlertRule, Severity};
use dwmon_core::Requirement;
use proptest::prelude::*;

const BASE: [&str; 6] = [
    "CHECKHOURS0-23",
    "CHECKMINUTES*/5",
    "WEEKDAYS",
    "MINNUM1",
    "MAXNUM9",
    "LOOKBACKSECONDS300",
];

fn options() -> impl Strategy<Value = Vec<String>> {
    let severity = prop_oneof![
        Just(None),
        Just(Some("SEVERITYWARNING".to_string())),
        Just(Some("SEVERITYCRITICAL".to_string())),
    ];
    let count = |name: &'static str| {
        prop_oneof![
            Just(None),
            (1u32..=10_000).prop_map(move |n| Some(format!("{name}{n}"))),
        ]
    };
    (severity, count("FAILAFTER"), count("RECOVERAFTER"))
        .prop_map(|(s, f, r)| [s, f, r].into_iter().flatten().collect())
}

proptest! {
    #[test]
    fn the_handler_reads_what_the_parser_parsed(
        extra in options(),
        order in Just((0..9).collect::<Vec<usize>>()).prop_shuffle(),
    ) {
        let mut tokens: Vec<String> = BASE.iter().map(|t| t.to_string()).collect();
        tokens.extend(extra);
        let line = order
            .iter()
            .filter_map(|&i| tokens.get(i).cloned())
            .collect::<Vec<_>>()
            .join(" ");
        let parsed = Requirement::parse(&line);
        prop_assert!(parsed.is_ok(), "{}: {:?}", line, parsed);
        let Ok(parsed) = parsed else { return Ok(()) };
        let expected = AlertRule {
            severity: parsed.severity,
            fail_after: parsed.fail_after,
            recover_after: parsed.recover_after,
        };
        prop_assert_eq!(AlertRule::from_requirement(&parsed), expected);
        prop_assert_eq!(AlertRule::from_requirement_text(&line), expected);
        prop_assert_eq!(AlertRule::from_requirement_text(&parsed.canonical()), expected);
        prop_assert_eq!(
            expected.severity == Severity::Warning,
            line.contains("SEVERITYWARNING")
        );
    }
}
