//! [`AlertTransition`]: one entry of the alert state history — what changed, when, and the
//! notification it sent — and [`transitions`], the pure function every
//! [`AlertStateStore`](super::AlertStateStore) uses to derive them from an [`AlertUpdate`]
//! and the states it replaces, inside the transaction that writes it.

use super::{AlertPhase, AlertState, AlertUpdate, NotificationKind, Pause, SourceState};
use serde::{Deserialize, Serialize};

/// How many history entries a store keeps per checker; older ones are dropped as new ones
/// are written.
pub const HISTORY_PER_CHECKER: usize = 1000;

/// A state as the history names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryState {
    /// A requirement that is not failing (no BAD check in a row).
    Ok,
    /// A requirement with BAD checks in a row, fewer than its FAILAFTER.
    Pending,
    /// A requirement that is FIRING.
    Firing,
    /// A checker whose source works.
    SourceOk,
    /// A checker whose source fails (an error streak).
    SourceError,
    /// A checker that is not paused.
    Active,
    /// A paused checker.
    Paused,
}

impl HistoryState {
    /// Its name in the history's JSON: `ok`, `pending`, `firing`, `source_ok`,
    /// `source_error`, `active`, `paused`.
    pub fn as_str(self) -> &'static str {
        match self {
            HistoryState::Ok => "ok",
            HistoryState::Pending => "pending",
            HistoryState::Firing => "firing",
            HistoryState::SourceOk => "source_ok",
            HistoryState::SourceError => "source_error",
            HistoryState::Active => "active",
            HistoryState::Paused => "paused",
        }
    }

    /// The history's name of a requirement's alert state.
    pub fn of_alert(state: &AlertState) -> HistoryState {
        match state.phase {
            AlertPhase::Firing => HistoryState::Firing,
            AlertPhase::Ok if state.consecutive_bad > 0 => HistoryState::Pending,
            AlertPhase::Ok => HistoryState::Ok,
        }
    }

    /// The history's name of a checker's source state.
    pub fn of_source(state: &SourceState) -> HistoryState {
        if state.failing {
            HistoryState::SourceError
        } else {
            HistoryState::SourceOk
        }
    }
}

/// One change of alert state, appended to the history in the transaction that makes it.
///
/// A state change without a notification (OK → pending, a FIRING not announced while paused)
/// has no `notification`; a notification without a state change (a reminder, a firing
/// announced after a pause or a held parent) has `from == to`.
///
/// ```
/// use dwmon_core::alert_state::{AlertTransition, HistoryState, NotificationKind};
/// let entry: AlertTransition = serde_json::from_str(r#"{"at": 120, "checker": "orders",
///     "requirement_index": 0, "from": "pending", "to": "firing",
///     "notification": "firing", "idempotency_key": "orders/0/120/firing"}"#)?;
/// assert_eq!((entry.from, entry.to), (HistoryState::Pending, HistoryState::Firing));
/// assert_eq!(entry.notification, Some(NotificationKind::Firing));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertTransition {
    /// When it happened (epoch seconds): the policy's `now` of the update, or when a pause
    /// began.
    pub at: i64,
    /// The checker.
    pub checker: String,
    /// The requirement; `None` for the checker's source or pause.
    pub requirement_index: Option<usize>,
    /// The state before.
    pub from: HistoryState,
    /// The state after.
    pub to: HistoryState,
    /// The notification decided with it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<NotificationKind>,
    /// That notification's idempotency key (what receivers deduplicate on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// Why, in words, when the change has a why beyond its states: a pause's comment, who
    /// lifted a pause, the error that made a source fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The history entries `update` makes, given the states it replaces (`alert_before`: the
/// stored state of the update's requirement; `source_before`: the checker's source state;
/// `None` when none was stored). Empty when `update.at` is `None` (bookkeeping, such as
/// moving states to other lines).
///
/// Each notification is attached to the state change of its requirement (or of the source)
/// when that change is the one it announces; otherwise it gets an entry of its own with the
/// current state on both sides.
pub fn transitions(
    update: &AlertUpdate,
    alert_before: Option<&AlertState>,
    source_before: Option<&SourceState>,
) -> Vec<AlertTransition> {
    let Some(at) = update.at else {
        return Vec::new();
    };
    let entry = |requirement_index, from, to| AlertTransition {
        at,
        checker: update.checker.clone(),
        requirement_index,
        from,
        to,
        notification: None,
        idempotency_key: None,
        reason: None,
    };
    let mut entries = Vec::new();
    let mut alert_now = None;
    if let Some((index, state)) = &update.alert {
        let from = alert_before.map_or(HistoryState::Ok, HistoryState::of_alert);
        let to = HistoryState::of_alert(state);
        alert_now = Some((*index, to));
        if from != to {
            entries.push(entry(Some(*index), from, to));
        }
    }
    let mut source_now = None;
    if let Some(state) = &update.source {
        let from = source_before.map_or(HistoryState::SourceOk, HistoryState::of_source);
        let to = HistoryState::of_source(state);
        source_now = Some(to);
        if from != to {
            let mut change = entry(None, from, to);
            if state.failing {
                change.reason.clone_from(&state.last_error);
            }
            entries.push(change);
        }
    }
    for pending in &update.notifications {
        let notification = &pending.notification;
        let index = notification.requirement_index;
        let announces = |e: &AlertTransition| {
            e.notification.is_none()
                && e.requirement_index == index
                && match notification.kind {
                    NotificationKind::Firing => e.to == HistoryState::Firing,
                    NotificationKind::Resolved => e.from == HistoryState::Firing,
                    NotificationKind::SourceError => e.to == HistoryState::SourceError,
                    NotificationKind::SourceRecovered => e.from == HistoryState::SourceError,
                    NotificationKind::Reminder | NotificationKind::DeliveryGivenUp => false,
                }
        };
        let slot = match entries.iter().position(announces) {
            Some(position) => &mut entries[position],
            None => {
                let current = match (index, alert_now) {
                    (Some(i), Some((j, state))) if i == j => state,
                    (Some(_), _) if notification.kind == NotificationKind::Resolved => {
                        HistoryState::Ok
                    }
                    (Some(_), _) => HistoryState::Firing,
                    (None, _) => source_now.unwrap_or(match notification.kind {
                        NotificationKind::SourceRecovered => HistoryState::SourceOk,
                        _ => HistoryState::SourceError,
                    }),
                };
                entries.push(entry(index, current, current));
                let last = entries.len() - 1;
                &mut entries[last]
            }
        };
        slot.notification = Some(notification.kind);
        slot.idempotency_key = Some(notification.idempotency_key.clone());
    }
    entries
}

/// The history entry of setting or lifting a pause at `at`, if it changes whether the
/// checker is paused (`before`: the pause it replaces). A pause set carries its comment as
/// the entry's `reason`; a pause lifted carries none (the caller says who lifted it).
pub fn pause_transition(
    checker: &str,
    before: Option<&Pause>,
    after: Option<&Pause>,
    at: i64,
) -> Option<AlertTransition> {
    let state = |p: Option<&Pause>| {
        if p.is_some() {
            HistoryState::Paused
        } else {
            HistoryState::Active
        }
    };
    let (from, to) = (state(before), state(after));
    (from != to || (before.is_some() && before != after)).then(|| AlertTransition {
        at,
        checker: checker.to_string(),
        requirement_index: None,
        from,
        to,
        notification: None,
        idempotency_key: None,
        reason: after.and_then(|p| p.comment.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert_state::{Notification, PendingNotification};

    fn notification(kind: &str, index: Option<usize>) -> PendingNotification {
        let mut value = serde_json::json!({
            "version": 1, "idempotency_key": format!("c/0/60/{kind}"), "kind": kind,
            "incident_key": "c/0", "event_key": "c/0/60", "checker": "c",
            "severity": "critical", "at": 60, "minute": 60,
            "minute_local": "1970-01-01T00:01:00+00:00", "timezone": "UTC"
        });
        if let Some(index) = index {
            value["requirement_index"] = index.into();
        }
        let notification: Notification =
            serde_json::from_value(value).unwrap_or_else(|e| panic!("notification: {e}"));
        PendingNotification::new(notification, Vec::new())
    }

    fn state(phase: AlertPhase, consecutive_bad: u32) -> AlertState {
        AlertState {
            phase,
            consecutive_bad,
            ..AlertState::default()
        }
    }

    type Row = (HistoryState, HistoryState, Option<NotificationKind>);
    /// State before, state after, notifications decided, expected history.
    type Case = (
        Option<AlertState>,
        AlertState,
        Vec<PendingNotification>,
        Vec<Row>,
    );

    fn rows(entries: &[AlertTransition]) -> Vec<Row> {
        entries
            .iter()
            .map(|e| (e.from, e.to, e.notification))
            .collect()
    }

    #[test]
    fn requirement_transitions_and_their_notifications() {
        use AlertPhase::{Firing, Ok};
        use HistoryState as S;
        let cases: Vec<Case> = vec![
            // First BAD of a FAILAFTER3 line: pending, nobody told.
            (None, state(Ok, 1), vec![], vec![(S::Ok, S::Pending, None)]),
            // Another BAD: still pending, nothing to record.
            (Some(state(Ok, 1)), state(Ok, 2), vec![], vec![]),
            (
                Some(state(Ok, 2)),
                state(Firing, 3),
                vec![notification("firing", Some(0))],
                vec![(S::Pending, S::Firing, Some(NotificationKind::Firing))],
            ),
            (
                Some(state(Firing, 4)),
                state(Firing, 5),
                vec![notification("reminder", Some(0))],
                vec![(S::Firing, S::Firing, Some(NotificationKind::Reminder))],
            ),
            (
                Some(state(Firing, 5)),
                state(Ok, 0),
                vec![notification("resolved", Some(0))],
                vec![(S::Firing, S::Ok, Some(NotificationKind::Resolved))],
            ),
            // Firing while paused: the change, no notification.
            (
                Some(state(Ok, 0)),
                state(Firing, 1),
                vec![],
                vec![(S::Ok, S::Firing, None)],
            ),
            // Announced later (pause over): a notification without a change.
            (
                Some(state(Firing, 1)),
                state(Firing, 2),
                vec![notification("firing", Some(0))],
                vec![(S::Firing, S::Firing, Some(NotificationKind::Firing))],
            ),
        ];
        for (before, after, notifications, expected) in cases {
            let update = AlertUpdate {
                checker: "c".into(),
                at: Some(60),
                alert: Some((0, after.clone())),
                notifications,
                ..AlertUpdate::default()
            };
            let entries = transitions(&update, before.as_ref(), None);
            assert_eq!(rows(&entries), expected, "{before:?} -> {after:?}");
            for e in &entries {
                assert_eq!((e.at, e.requirement_index), (60, Some(0)));
                assert_eq!(
                    e.idempotency_key.is_some(),
                    e.notification.is_some(),
                    "{e:?}"
                );
            }
        }
    }

    #[test]
    fn source_transitions_carry_their_notifications() {
        let failing = SourceState {
            failing: true,
            ..SourceState::default()
        };
        let update = AlertUpdate {
            checker: "c".into(),
            at: Some(60),
            source: Some(failing.clone()),
            notifications: vec![notification("source_error", None)],
            ..AlertUpdate::default()
        };
        assert_eq!(
            rows(&transitions(&update, None, None)),
            [(
                HistoryState::SourceOk,
                HistoryState::SourceError,
                Some(NotificationKind::SourceError)
            )]
        );
        let update = AlertUpdate {
            source: Some(SourceState::default()),
            notifications: vec![notification("source_recovered", None)],
            ..update
        };
        let entries = transitions(&update, None, Some(&failing));
        assert_eq!(
            rows(&entries),
            [(
                HistoryState::SourceError,
                HistoryState::SourceOk,
                Some(NotificationKind::SourceRecovered)
            )]
        );
        assert_eq!(entries[0].requirement_index, None);
    }

    #[test]
    fn state_names_are_their_json_names() {
        use HistoryState as S;
        for state in [
            S::Ok,
            S::Pending,
            S::Firing,
            S::SourceOk,
            S::SourceError,
            S::Active,
            S::Paused,
        ] {
            assert_eq!(
                serde_json::to_value(state).ok(),
                Some(serde_json::Value::from(state.as_str()))
            );
        }
    }

    #[test]
    fn bookkeeping_updates_make_no_history() {
        let update = AlertUpdate {
            checker: "c".into(),
            alert: Some((1, state(AlertPhase::Firing, 1))),
            ..AlertUpdate::default()
        };
        assert!(transitions(&update, None, None).is_empty());
    }

    #[test]
    fn pauses_are_recorded_when_set_changed_or_lifted() {
        let pause = Pause {
            since: 10,
            until: None,
            comment: None,
        };
        let set = pause_transition("c", None, Some(&pause), 10);
        assert_eq!(
            set.map(|e| (e.from, e.to, e.at)),
            Some((HistoryState::Active, HistoryState::Paused, 10))
        );
        let lifted = pause_transition("c", Some(&pause), None, 99);
        assert_eq!(
            lifted.map(|e| (e.from, e.to, e.at)),
            Some((HistoryState::Paused, HistoryState::Active, 99))
        );
        assert_eq!(pause_transition("c", None, None, 5), None);
        assert_eq!(pause_transition("c", Some(&pause), Some(&pause), 5), None);
    }
}
