//! The persisted alert state: per (checker, requirement) an [`AlertState`], per checker a
//! [`SourceState`] and an optional [`Pause`]. All serialize with serde so any
//! [`AlertStateStore`](super::AlertStateStore) can keep them as JSON.

use crate::Severity;
use serde::{Deserialize, Serialize};

/// Whether a requirement is currently considered failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum AlertPhase {
    /// Not failing (or not failing long enough to fire).
    #[default]
    Ok,
    /// Failing: FAILAFTER consecutive BAD checks and not yet RECOVERAFTER GOOD ones.
    Firing,
}

impl AlertPhase {
    /// `OK` or `FIRING`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertPhase::Ok => "OK",
            AlertPhase::Firing => "FIRING",
        }
    }
}

/// The alert state machine of one requirement of one checker.
///
/// `phase` follows the checks whether or not the checker is paused; `announced` records what
/// the outside world was told, so notifications converge on the truth once a pause ends.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AlertState {
    /// OK or FIRING.
    pub phase: AlertPhase,
    /// BAD checks in a row (0 after a GOOD one).
    pub consecutive_bad: u32,
    /// GOOD checks in a row (0 after a BAD one).
    pub consecutive_good: u32,
    /// The latest check minute applied; older or equal minutes are replays and change nothing.
    pub last_minute: Option<i64>,
    /// First minute of the current run of BAD checks.
    pub bad_since: Option<i64>,
    /// First BAD minute of the streak that made the phase FIRING.
    pub firing_since: Option<i64>,
    /// BAD checks of the current incident: the streak that made the phase FIRING and every
    /// BAD check since, until the `Resolved` that reports it (0 while OK and announced
    /// nothing). States saved before it was kept read as 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed_checks: u32,
    /// A `Firing` was sent and no `Resolved` since.
    pub announced: bool,
    /// When the last `Firing` or `Reminder` was sent (the policy's `now`).
    pub last_notified: Option<i64>,
    /// Count of the latest check.
    pub last_count: Option<u64>,
    /// Severity of the latest check's rule.
    pub severity: Severity,
    /// Canonical text of the requirement line this state follows (`None` in states saved
    /// before it was kept). When lines move, the state moves with its line
    /// (`dwmon_alert::reconcile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requirement: Option<String>,
    /// The incident key the current `Firing` was sent under, so its reminders and its
    /// `Resolved` use it even if the line moved since (`None` when not announced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_key: Option<String>,
    /// A `Firing` held back because the checker's parent is BAD or ERROR (docs/ALERTING.md,
    /// "Dependencies"): the latest check that would have fired. It is announced when the
    /// parent recovers while this is still FIRING (`dwmon_alert::AlertPolicy::release`), or by
    /// the next check once nothing holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<Box<crate::CheckRecord>>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Whether a checker's source works (the `ERROR` status of a cycle).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SourceState {
    /// An error streak is going on.
    pub failing: bool,
    /// Minute of the first error of the current streak.
    pub since: Option<i64>,
    /// Minute of the latest error event applied.
    pub last_error_minute: Option<i64>,
    /// Text of the latest error.
    pub last_error: Option<String>,
    /// A `SourceError` was sent and no `SourceRecovered` since.
    pub announced: bool,
    /// The `"alert"` value of the checker's `__EXTRA__` in its latest check (`None`: none
    /// seen, or the checker has no `"alert"` key). A checker file that stops loading has no
    /// `__EXTRA__`; its `SourceError` is routed by this, the last good routing, so it goes
    /// where the checker's checks (and its later `SourceRecovered`) go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_routing: Option<serde_json::Value>,
}

/// A paused checker: checks go on and state evolves, but no notification is sent until the
/// pause is lifted or `until` passes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    /// When the pause was set (epoch seconds).
    pub since: i64,
    /// The pause ends by itself at this instant (epoch seconds); `None` = until unpaused.
    pub until: Option<i64>,
    /// Why, for the status view.
    pub comment: Option<String>,
}

impl Pause {
    /// Whether the pause still holds at `now` (`now < until`).
    pub fn is_active(&self, now: i64) -> bool {
        match self.until {
            None => true,
            Some(until) => now < until,
        }
    }
}

/// Whether `pause` (if any) holds at `now`.
pub fn is_paused(pause: Option<&Pause>, now: i64) -> bool {
    pause.is_some_and(|p| p.is_active(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_until_expires_at_the_instant() {
        let pause = Pause {
            since: 0,
            until: Some(600),
            comment: None,
        };
        assert!(pause.is_active(599));
        assert!(!pause.is_active(600));
        assert!(is_paused(Some(&pause), 0));
        assert!(!is_paused(None, 0));
    }

    #[test]
    fn pause_without_until_never_expires() {
        let pause = Pause {
            since: 0,
            until: None,
            comment: Some("maintenance".into()),
        };
        assert!(pause.is_active(i64::MAX));
    }

    #[test]
    fn states_round_trip_through_json() -> Result<(), serde_json::Error> {
        let state = AlertState {
            phase: AlertPhase::Firing,
            consecutive_bad: 3,
            last_minute: Some(120),
            firing_since: Some(0),
            announced: true,
            severity: Severity::Warning,
            ..AlertState::default()
        };
        let text = serde_json::to_string(&state)?;
        assert!(text.contains("\"phase\":\"FIRING\""), "{text}");
        assert_eq!(serde_json::from_str::<AlertState>(&text)?, state);
        Ok(())
    }
}
