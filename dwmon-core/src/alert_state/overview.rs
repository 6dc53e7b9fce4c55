//! [`AlertOverview`]: everything a status view shows about alerting.

use super::{AlertPhase, AlertState, Pause, PendingNotification, SourceState};
use serde::Serialize;

/// One requirement's alert state, for status views.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertStateEntry {
    /// Checker name.
    pub checker: String,
    /// Requirement index.
    pub requirement_index: usize,
    /// The state.
    pub state: AlertState,
}

/// Everything a status view shows about alerting (`serde_json` gives `status --json`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct AlertOverview {
    /// Per (checker, requirement), ordered.
    pub alerts: Vec<AlertStateEntry>,
    /// Per checker with a source state, ordered.
    pub sources: Vec<(String, SourceState)>,
    /// Paused checkers (expired pauses included; check [`Pause::is_active`]).
    pub pauses: Vec<(String, Pause)>,
    /// Notifications not yet delivered to all their targets.
    pub pending: Vec<PendingNotification>,
}

impl AlertOverview {
    /// Nothing is known about alerting: no state, pause or pending notification (alerting
    /// never ran on the store).
    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty()
            && self.sources.is_empty()
            && self.pauses.is_empty()
            && self.pending.is_empty()
    }

    /// Human-readable lines for a status view at `now`: every requirement that is firing or
    /// has a BAD streak, every broken source, every pause, and the undelivered count.
    ///
    /// ```
    /// use dwmon_core::alert_state::{AlertOverview, Pause};
    /// let overview = AlertOverview {
    ///     pauses: vec![("orders".into(), Pause { since: 0, until: Some(3600), comment: Some("migration".into()) })],
    ///     ..AlertOverview::default()
    /// };
    /// assert_eq!(overview.lines(60), ["orders: paused until 1970-01-01 01:00 UTC (migration)"]);
    /// ```
    pub fn lines(&self, now: i64) -> Vec<String> {
        let mut lines = Vec::new();
        for (checker, pause) in &self.pauses {
            let until = match (pause.until, pause.is_active(now)) {
                (_, false) => "paused, expired".to_string(),
                (Some(until), true) => format!("paused until {}", utc(until)),
                (None, true) => "paused".to_string(),
            };
            let comment = pause
                .comment
                .as_deref()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default();
            lines.push(format!("{checker}: {until}{comment}"));
        }
        for (checker, source) in &self.sources {
            if source.failing {
                lines.push(format!(
                    "{checker}: source ERROR since {}: {}",
                    source.since.map(utc).unwrap_or_default(),
                    source.last_error.as_deref().unwrap_or("unknown error")
                ));
            }
        }
        for entry in &self.alerts {
            let state = &entry.state;
            let head = format!("{} #{}", entry.checker, entry.requirement_index);
            match state.phase {
                AlertPhase::Firing => lines.push(format!(
                    "{head}: FIRING ({}) since {}{}",
                    state.severity,
                    state.firing_since.map(utc).unwrap_or_default(),
                    match (state.announced, &state.held) {
                        (true, _) => String::new(),
                        (false, Some(held)) => format!(
                            ", held: parent {} is BAD or ERROR",
                            crate::checker_file::parent_of(&held.extra).unwrap_or("?")
                        ),
                        (false, None) => ", not announced (paused)".to_string(),
                    }
                )),
                AlertPhase::Ok if state.consecutive_bad > 0 => lines.push(format!(
                    "{head}: OK, {} BAD in a row",
                    state.consecutive_bad
                )),
                AlertPhase::Ok if state.announced => {
                    lines.push(format!("{head}: OK, resolution not announced yet (paused)"))
                }
                AlertPhase::Ok => {}
            }
        }
        if !self.pending.is_empty() {
            lines.push(format!(
                "{} alert notifications waiting for delivery",
                self.pending.len()
            ));
        }
        lines
    }
}

fn utc(epoch: i64) -> String {
    chrono::DateTime::from_timestamp(epoch, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| epoch.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Severity;

    #[test]
    fn overview_lines_show_what_needs_attention() {
        let overview = AlertOverview {
            alerts: vec![
                AlertStateEntry {
                    checker: "orders".into(),
                    requirement_index: 0,
                    state: AlertState {
                        phase: AlertPhase::Firing,
                        firing_since: Some(0),
                        announced: true,
                        severity: Severity::Warning,
                        ..AlertState::default()
                    },
                },
                AlertStateEntry {
                    checker: "orders".into(),
                    requirement_index: 1,
                    state: AlertState {
                        consecutive_bad: 2,
                        ..AlertState::default()
                    },
                },
                AlertStateEntry {
                    checker: "quiet".into(),
                    requirement_index: 0,
                    state: AlertState::default(),
                },
            ],
            sources: vec![(
                "backups".into(),
                SourceState {
                    failing: true,
                    since: Some(120),
                    last_error: Some("fetch failed: timeout".into()),
                    ..SourceState::default()
                },
            )],
            pauses: vec![(
                "legacy".into(),
                Pause {
                    since: 0,
                    until: Some(60),
                    comment: None,
                },
            )],
            pending: Vec::new(),
        };
        assert!(AlertOverview::default().is_empty());
        assert!(!overview.is_empty());
        assert_eq!(
            overview.lines(600),
            [
                "legacy: paused, expired",
                "backups: source ERROR since 1970-01-01 00:02 UTC: fetch failed: timeout",
                "orders #0: FIRING (warning) since 1970-01-01 00:00 UTC",
                "orders #1: OK, 2 BAD in a row",
            ]
        );
    }
}
