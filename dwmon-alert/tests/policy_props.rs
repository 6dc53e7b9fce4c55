//! Property tests of the alert policy (issue 7): over random sequences of GOOD/BAD/ERROR,
//! redeliveries and pauses, with random FAILAFTER/RECOVERAFTER/repeat:
//!
//! - never a `Resolved` without an earlier unresolved `Firing`; never a `SourceRecovered`
//!   without an earlier unrecovered `SourceError`;
//! - at most one `Firing` per firing streak (Firing and Resolved alternate, starting with
//!   Firing); reminders only between them;
//! - nothing at all while paused; a redelivered minute never produces anything;
//! - when nothing is paused, the phase follows the FAILAFTER/RECOVERAFTER definition.

mod common;

use common::{error_event, no_extra, record, T0};
use dwmon_alert::{
    AlertPhase, AlertPolicy, AlertRule, AlertState, NotificationKind, Pause, Severity, SourceState,
};
use dwmon_core::Status;
use proptest::prelude::*;

#[derive(Debug, Clone, Copy)]
enum Step {
    Good,
    Bad,
    Error,
    /// The previous check minute again.
    Replay,
    Pause,
    Unpause,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => Just(Step::Good),
        4 => Just(Step::Bad),
        1 => Just(Step::Error),
        1 => Just(Step::Replay),
        1 => Just(Step::Pause),
        1 => Just(Step::Unpause),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn notifications_alternate_and_respect_pause(
        steps in prop::collection::vec(step(), 1..80),
        fail_after in 1u32..4,
        recover_after in 1u32..4,
        repeat_minutes in 0u64..5,
    ) {
        let policy = AlertPolicy::new(repeat_minutes * 60);
        let rule = AlertRule { severity: Severity::Critical, fail_after, recover_after };
        let mut state = AlertState::default();
        let mut source = SourceState::default();
        let mut pause: Option<Pause> = None;
        let mut minute = T0;
        let mut last_check: Option<(i64, Status)> = None;
        let mut announced = false;
        let mut source_announced = false;
        let (mut bad_run, mut good_run) = (0u32, 0u32);
        let mut firing = false;

        for step in steps {
            let mut produced = Vec::new();
            let paused = pause.is_some();
            match step {
                Step::Good | Step::Bad => {
                    minute += 60;
                    let status = if matches!(step, Step::Good) { Status::Good } else { Status::Bad };
                    last_check = Some((minute, status));
                    let r = record("c", 0, minute, status, no_extra());
                    produced.extend(policy.on_source_ok(&mut source, &r, pause.as_ref(), minute));
                    produced.extend(policy.on_check(&mut state, &rule, &r, pause.as_ref(), minute));
                    // Reference model of the phase.
                    if status == Status::Bad { bad_run += 1; good_run = 0; } else { good_run += 1; bad_run = 0; }
                    if !firing && bad_run >= fail_after { firing = true; }
                    if firing && good_run >= recover_after { firing = false; }
                    prop_assert_eq!(state.phase == AlertPhase::Firing, firing);
                }
                Step::Replay => {
                    if let Some((checked, status)) = last_check {
                        let r = record("c", 0, checked, status, no_extra());
                        let before = state.clone();
                        let n = policy.on_check(&mut state, &rule, &r, pause.as_ref(), checked);
                        prop_assert!(n.is_none(), "a redelivery produced {:?}", n);
                        prop_assert_eq!(&state, &before);
                    }
                }
                Step::Error => {
                    minute += 60;
                    let e = error_event("c", minute, no_extra());
                    produced.extend(policy.on_error(&mut source, &e, pause.as_ref(), minute));
                }
                Step::Pause => pause = Some(Pause { since: minute, until: None, comment: None }),
                Step::Unpause => pause = None,
            }
            if paused {
                prop_assert!(produced.is_empty(), "sent while paused: {:?}", produced);
            }
            for n in produced {
                match n.kind {
                    NotificationKind::Firing => {
                        prop_assert!(!announced, "second Firing in one streak");
                        announced = true;
                    }
                    NotificationKind::Reminder => prop_assert!(announced, "Reminder without Firing"),
                    NotificationKind::Resolved => {
                        prop_assert!(announced, "Resolved without Firing");
                        announced = false;
                    }
                    NotificationKind::SourceError => {
                        prop_assert!(!source_announced, "second SourceError in one streak");
                        source_announced = true;
                    }
                    NotificationKind::SourceRecovered => {
                        prop_assert!(source_announced, "SourceRecovered without SourceError");
                        source_announced = false;
                    }
                    // Only the engine's give-up event makes one; checks and errors never do.
                    NotificationKind::DeliveryGivenUp => {
                        prop_assert!(false, "DeliveryGivenUp from a check or an error");
                    }
                }
            }
            prop_assert_eq!(state.announced, announced);
        }
    }

    #[test]
    fn without_pause_a_firing_streak_is_always_announced(
        statuses in prop::collection::vec(any::<bool>(), 1..60),
        fail_after in 1u32..4,
    ) {
        let policy = AlertPolicy::new(0);
        let rule = AlertRule { fail_after, ..AlertRule::default() };
        let mut state = AlertState::default();
        for (i, good) in statuses.into_iter().enumerate() {
            let minute = T0 + 60 * i as i64;
            let status = if good { Status::Good } else { Status::Bad };
            let r = record("c", 0, minute, status, no_extra());
            let _ = policy.on_check(&mut state, &rule, &r, None, minute);
            // Unpaused, what was announced always equals the phase after each check.
            prop_assert_eq!(state.announced, state.phase == AlertPhase::Firing);
        }
    }
}
