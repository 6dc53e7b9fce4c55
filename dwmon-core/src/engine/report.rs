//! What a cycle did: [`CycleReport`], one [`CheckerOutcome`] per checker.

use crate::record::{CheckRecord, ErrorEvent, Status};
use std::collections::BTreeMap;
use std::time::Duration;

/// What one cycle did for one checker.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckerOutcome {
    /// Checker name (for a file that failed to load: its stem).
    pub checker: String,
    /// Candidate `(minute, requirement)` pairs found (0: nothing was fetched).
    pub candidates: usize,
    /// How long the fetch took, when one ran (also set when it failed).
    pub fetch_duration: Option<Duration>,
    /// Rows the source returned (good ones).
    pub rows_fetched: u64,
    /// Rows that were new to the store.
    pub new_rows: u64,
    /// Rows the source rejected (reported in an `ERROR` event).
    pub rejected_rows: u64,
    /// Checks recorded this cycle, ascending `(minute, requirement_index)`.
    pub checks: Vec<CheckRecord>,
    /// `ERROR` events produced this cycle (fetch failure, rejected rows, store failure, bad
    /// checker file); each was also handed to the handler.
    pub errors: Vec<ErrorEvent>,
    /// Check deliveries the handler accepted (this cycle's and earlier cycles' retries).
    pub delivered: u64,
    /// Check deliveries the handler failed (they stay in the outbox).
    pub delivery_failures: u64,
    /// `(record, target)` deliveries given up this cycle
    /// ([`EngineConfig::delivery_give_up_seconds`](super::EngineConfig::delivery_give_up_seconds)).
    pub given_up: u64,
    /// Stored rows deleted by the purge step.
    pub purged_rows: u64,
    /// Check records deleted by the purge step ([`Cutoffs::checks`](crate::Cutoffs::checks)).
    pub purged_checks: u64,
}

impl CheckerOutcome {
    /// An empty outcome for the checker (or monitor record name) `name`.
    pub(super) fn named(name: &str) -> Self {
        CheckerOutcome {
            checker: name.to_string(),
            ..CheckerOutcome::default()
        }
    }
}

/// What a cycle did: one [`CheckerOutcome`] per checker, sorted by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CycleReport {
    /// The `now` the cycle ran for.
    pub now: i64,
    /// `M`, the minute containing `now`.
    pub minute: i64,
    /// Per checker, by name.
    pub checkers: Vec<CheckerOutcome>,
    /// How long the cycle took, start to end (wall time, measured with a monotonic clock).
    pub duration: Duration,
}

impl CycleReport {
    /// The outcome of the checker named `name`.
    pub fn outcome(&self, name: &str) -> Option<&CheckerOutcome> {
        self.checkers.iter().find(|o| o.checker == name)
    }

    /// All checks recorded this cycle, by checker then `(minute, requirement_index)`.
    pub fn checks(&self) -> impl Iterator<Item = &CheckRecord> {
        self.checkers.iter().flat_map(|o| o.checks.iter())
    }

    /// All `ERROR` events of this cycle.
    pub fn errors(&self) -> impl Iterator<Item = &ErrorEvent> {
        self.checkers.iter().flat_map(|o| o.errors.iter())
    }

    /// Totals for a one-line summary.
    pub fn summary(&self) -> String {
        let sum = |f: fn(&CheckerOutcome) -> u64| self.checkers.iter().map(f).sum::<u64>();
        format!(
            "minute {}: {} checkers, {} checks ({} bad), {} errors, {} new rows, {} delivered, {} delivery failures in {:.3} s",
            self.minute,
            self.checkers.len(),
            self.checks().count(),
            self.checks().filter(|c| c.status == Status::Bad).count(),
            self.errors().count(),
            sum(|o| o.new_rows),
            sum(|o| o.delivered),
            sum(|o| o.delivery_failures),
            self.duration.as_secs_f64(),
        )
    }
}

pub(super) fn merge(outcomes: &mut BTreeMap<String, CheckerOutcome>, outcome: CheckerOutcome) {
    let entry = outcomes.entry(outcome.checker.clone()).or_default();
    if *entry == CheckerOutcome::default() {
        *entry = outcome;
        return;
    }
    entry.candidates += outcome.candidates;
    entry.fetch_duration = entry.fetch_duration.or(outcome.fetch_duration);
    entry.rows_fetched += outcome.rows_fetched;
    entry.new_rows += outcome.new_rows;
    entry.rejected_rows += outcome.rejected_rows;
    entry.checks.extend(outcome.checks);
    entry.errors.extend(outcome.errors);
    entry.delivered += outcome.delivered;
    entry.delivery_failures += outcome.delivery_failures;
    entry.given_up += outcome.given_up;
    entry.purged_rows += outcome.purged_rows;
    entry.purged_checks += outcome.purged_checks;
}
