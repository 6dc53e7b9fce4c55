//! [`Notification`]: what the [`AlertPolicy`](crate::AlertPolicy) decides to tell people.
//!
//! Its JSON form is the body of the generic webhook and the line the stdout channel prints
//! (documented field by field on [`Notification`]). Defined in [`dwmon_core::alert_state`]
//! and re-exported here under its old path.

pub use dwmon_core::alert_state::{Notification, NotificationKind};

#[cfg(test)]
mod tests {
    use crate::{AlertPolicy, AlertRule, AlertState, NotificationKind};
    use dwmon_core::{CheckRecord, Status};

    fn record(minute: i64, status: Status) -> CheckRecord {
        CheckRecord {
            checker: "orders".into(),
            requirement_index: 0,
            requirement: String::new(),
            minute,
            minute_local: "2023-11-14T22:14:00+00:00".into(),
            timezone: "UTC".into(),
            lookback_seconds: 60,
            count: 0,
            min: 1,
            max: 10,
            status,
            extra: serde_json::json!({}),
            monitor: None,
            runs: None,
        }
    }

    #[test]
    fn a_recovery_notice_says_how_many_checks_failed() -> Result<(), serde_json::Error> {
        let policy = AlertPolicy::new(0);
        let mut state = AlertState::default();
        let mut sent = Vec::new();
        for (i, status) in [Status::Bad, Status::Bad, Status::Bad, Status::Good]
            .into_iter()
            .enumerate()
        {
            let minute = 60 * i as i64;
            let r = record(minute, status);
            sent.extend(policy.on_check(&mut state, &AlertRule::default(), &r, None, minute));
        }
        let [firing, resolved] = sent.as_slice() else {
            panic!("expected a firing and a resolved, got {sent:?}");
        };
        assert_eq!(firing.failed_checks, None);
        assert!(!serde_json::to_string(firing)?.contains("failed_checks"));
        assert_eq!(resolved.kind, NotificationKind::Resolved);
        assert_eq!(resolved.failed_checks, Some(3));
        assert!(serde_json::to_string(resolved)?.contains("\"failed_checks\":3"));
        assert!(
            resolved.summary().ends_with("(UTC) after 3 failed checks"),
            "{}",
            resolved.summary()
        );
        assert_eq!(state.failed_checks, 0, "the next incident counts from 0");
        Ok(())
    }

    #[test]
    fn a_firing_about_a_run_says_which_run_and_its_duration() {
        let runs = dwmon_core::runs::judge_runs(
            &[dwmon_core::runs::Run::new(100, Some(103))],
            120,
            60,
            Some(10),
            None,
        );
        let record = CheckRecord {
            count: 1,
            runs,
            ..record(120, Status::Bad)
        };
        let mut state = AlertState::default();
        let sent =
            AlertPolicy::new(0).on_check(&mut state, &AlertRule::default(), &record, None, 120);
        let [firing] = sent.as_slice() else {
            panic!("expected a firing, got {sent:?}");
        };
        assert_eq!(firing.runs, record.runs);
        assert!(
            firing.summary().contains(
                "#0: run started at 1970-01-01T00:01:40Z finished after 3 s, under MINDURATION10 \
                 (finished too fast); count 1 not in 1..=10"
            ),
            "{}",
            firing.summary()
        );
    }
}
