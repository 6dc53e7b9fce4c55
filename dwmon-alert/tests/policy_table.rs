//! The alert policy as a pure table (issue 7): sequences of GOOD/BAD/ERROR checks with
//! FAILAFTER, RECOVERAFTER, repeat and pause, and the notifications each step must produce.
//!
//! Step tokens (each check token is one minute later than the previous one):
//! `G` GOOD, `B` BAD, `X` MISSED, `E` error event, `B=` / `G=` the previous minute again (a redelivery),
//! `P` pause (no end), `P+n` pause until n minutes after the next check's minute, `U` unpause.
//! Expected tokens, aligned with the steps: `-` nothing, `F` Firing, `M` reMinder, `Rn`
//! Resolved saying n checks failed (issue 12 item 7), `S` SourceError, `O` SourceRecovered; `O+F` = two notifications in that order.

mod common;

use common::{error_event, no_extra, record, T0};
use dwmon_alert::{
    AlertPolicy, AlertRule, AlertState, Notification, NotificationKind, Pause, Severity,
    SourceState,
};
use dwmon_core::Status;

struct Case {
    name: &'static str,
    fail_after: u32,
    recover_after: u32,
    repeat_minutes: u64,
    steps: &'static str,
    expected: &'static str,
}

const CASES: &[Case] = &[
    Case {
        name: "MISSED neither fires nor resolves",
        fail_after: 1,
        recover_after: 1,
        repeat_minutes: 240,
        steps: "X X B X X G X",
        expected: "- - F - - R1 -",
    },
    Case {
        name: "MISSED starts no streak and breaks none",
        fail_after: 2,
        recover_after: 1,
        repeat_minutes: 240,
        steps: "B X X B G",
        expected: "- - - F R2",
    },
    Case {
        name: "defaults: first BAD fires, first GOOD resolves",
        fail_after: 1,
        recover_after: 1,
        repeat_minutes: 240,
        steps: "G B G G",
        expected: "- F R1 -",
    },
    Case {
        name: "FAILAFTER3 needs three BAD in a row",
        fail_after: 3,
        recover_after: 1,
        repeat_minutes: 240,
        steps: "B B G B B B B G",
        expected: "- - - - - F - R4",
    },
    Case {
        name: "FAILAFTER2 never fires on flapping",
        fail_after: 2,
        recover_after: 1,
        repeat_minutes: 240,
        steps: "B G B G B G B B",
        expected: "- - - - - - - F",
    },
    Case {
        name: "RECOVERAFTER2 needs two GOOD in a row",
        fail_after: 1,
        recover_after: 2,
        repeat_minutes: 240,
        steps: "B G B G G G",
        expected: "F - - - R2 -",
    },
    Case {
        name: "a resolution counts every BAD check of the incident, not only the last streak",
        fail_after: 1,
        recover_after: 3,
        repeat_minutes: 240,
        steps: "B B G B G G G B G G G",
        expected: "F - - - - - R3 F - - R1",
    },
    Case {
        name: "reminders every repeat interval while firing",
        fail_after: 1,
        recover_after: 1,
        repeat_minutes: 2,
        steps: "B B B B B G",
        expected: "F - M - M R5",
    },
    Case {
        name: "repeat 0 means no reminders",
        fail_after: 1,
        recover_after: 1,
        repeat_minutes: 0,
        steps: "B B B B B G",
        expected: "F - - - - R5",
    },
    Case {
        name: "reminders count from the Firing, not the first BAD",
        fail_after: 2,
        recover_after: 1,
        repeat_minutes: 3,
        steps: "B B B B B G",
        expected: "- F - - M R5",
    },
    Case {
        name: "redeliveries change nothing",
        fail_after: 1,
        recover_after: 1,
        repeat_minutes: 1,
        steps: "B B= B= G G=",
        expected: "F - - R1 -",
    },
    Case {
        name: "source error once per streak, recovery on the next check",
        fail_after: 1,
        recover_after: 1,
        repeat_minutes: 240,
        steps: "E E B E G G",
        expected: "S - O+F S O+R1 -",
    },
    Case {
        name: "pause suppresses Firing until unpaused",
        fail_after: 1,
        recover_after: 1,
        repeat_minutes: 240,
        steps: "P B B U B G",
        expected: "- - - - F R3",
    },
    Case {
        name: "a resolution during a pause is announced after it",
        fail_after: 1,
        recover_after: 1,
        repeat_minutes: 240,
        steps: "B P G G U G",
        expected: "F - - - - R1",
    },
    Case {
        name: "a streak inside a pause is never announced",
        fail_after: 1,
        recover_after: 1,
        repeat_minutes: 240,
        steps: "P B G U G B G",
        expected: "- - - - - F R1",
    },
    Case {
        name: "a pause with an end expires by itself",
        fail_after: 1,
        recover_after: 1,
        repeat_minutes: 240,
        steps: "P+2 B B B G",
        expected: "- - - F R3",
    },
    Case {
        name: "a reminder due during a pause goes out right after it",
        fail_after: 1,
        recover_after: 1,
        repeat_minutes: 2,
        steps: "B P B B B U B G",
        expected: "F - - - - - M R5",
    },
    Case {
        name: "source errors during a pause are announced after it",
        fail_after: 1,
        recover_after: 1,
        repeat_minutes: 240,
        steps: "P E U E B",
        expected: "- - - S O+F",
    },
    Case {
        name: "a recovery during a pause is announced after it",
        fail_after: 1,
        recover_after: 1,
        repeat_minutes: 240,
        steps: "E P G U G",
        expected: "S - - - O",
    },
];

fn code(notification: &Notification) -> String {
    match notification.kind {
        NotificationKind::Firing => "F".into(),
        NotificationKind::Reminder => "M".into(),
        NotificationKind::Resolved => match notification.failed_checks {
            Some(n) => format!("R{n}"),
            None => "R?".into(),
        },
        NotificationKind::SourceError => "S".into(),
        NotificationKind::DeliveryGivenUp => "D".into(),
        NotificationKind::SourceRecovered => "O".into(),
    }
}

/// Runs a case through the pure policy and returns one expected-style token per step.
fn run(case: &Case) -> Vec<String> {
    let policy = AlertPolicy::new(case.repeat_minutes * 60);
    let rule = AlertRule {
        severity: Severity::Critical,
        fail_after: case.fail_after,
        recover_after: case.recover_after,
    };
    let mut state = AlertState::default();
    let mut source = SourceState::default();
    let mut pause: Option<Pause> = None;
    let mut minute = T0 - 60;
    let mut out = Vec::new();
    for token in case.steps.split_whitespace() {
        let mut produced = Vec::new();
        let mut check = |status: Status, minute: i64, pause: &Option<Pause>| {
            let r = record("orders", 0, minute, status, no_extra());
            // The handler applies the source first, then the requirement.
            let now = minute;
            produced.extend(policy.on_source_ok(&mut source, &r, pause.as_ref(), now));
            produced.extend(policy.on_check(&mut state, &rule, &r, pause.as_ref(), now));
        };
        match token {
            "G" | "B" => {
                minute += 60;
                let status = if token == "G" {
                    Status::Good
                } else {
                    Status::Bad
                };
                check(status, minute, &pause);
            }
            "G=" | "B=" => {
                let status = if token == "G=" {
                    Status::Good
                } else {
                    Status::Bad
                };
                check(status, minute, &pause);
            }
            "X" => {
                minute += 60;
                check(Status::Missed, minute, &pause);
            }
            "E" => {
                minute += 60;
                let event = error_event("orders", minute, no_extra());
                produced.extend(policy.on_error(&mut source, &event, pause.as_ref(), minute));
            }
            "P" => {
                pause = Some(Pause {
                    since: minute,
                    until: None,
                    comment: None,
                })
            }
            "U" => pause = None,
            other => {
                let n: i64 = other
                    .strip_prefix("P+")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("bad step token {other:?} in {:?}", case.name));
                pause = Some(Pause {
                    since: minute,
                    until: Some(minute + 60 + n * 60),
                    comment: Some("maintenance".into()),
                });
            }
        }
        let codes: Vec<String> = produced.iter().map(code).collect();
        out.push(if codes.is_empty() {
            "-".to_string()
        } else {
            codes.join("+")
        });
    }
    out
}

#[test]
fn policy_table() {
    let mut failures = Vec::new();
    for case in CASES {
        let expected: Vec<&str> = case.expected.split_whitespace().collect();
        assert_eq!(
            expected.len(),
            case.steps.split_whitespace().count(),
            "misaligned case {:?}",
            case.name
        );
        let got = run(case);
        if got != expected {
            failures.push(format!(
                "{}\n  steps:    {}\n  expected: {}\n  got:      {}",
                case.name,
                case.steps,
                case.expected,
                got.join(" ")
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn notifications_carry_keys_severity_and_since() {
    let policy = AlertPolicy::new(120);
    let rule = AlertRule {
        severity: Severity::Warning,
        fail_after: 2,
        recover_after: 1,
    };
    let mut state = AlertState::default();
    let mut got = Vec::new();
    for (i, status) in [
        Status::Bad,
        Status::Bad,
        Status::Bad,
        Status::Bad,
        Status::Good,
    ]
    .into_iter()
    .enumerate()
    {
        let minute = T0 + 60 * i as i64;
        let r = record("orders", 3, minute, status, no_extra());
        got.extend(policy.on_check(&mut state, &rule, &r, None, minute));
    }
    let summary: Vec<(NotificationKind, String, Option<i64>)> = got
        .iter()
        .map(|n| (n.kind, n.idempotency_key.clone(), n.since))
        .collect();
    assert_eq!(
        summary,
        [
            (
                NotificationKind::Firing,
                format!("orders/3/{}/firing", T0 + 60),
                Some(T0)
            ),
            (
                NotificationKind::Reminder,
                format!("orders/3/{}/reminder", T0 + 180),
                Some(T0)
            ),
            (
                NotificationKind::Resolved,
                format!("orders/3/{}/resolved", T0 + 240),
                None
            ),
        ]
    );
    for n in &got {
        assert_eq!(n.severity, Severity::Warning);
        assert_eq!(n.incident_key, "orders/3");
        assert_eq!(n.requirement_index, Some(3));
    }
}
