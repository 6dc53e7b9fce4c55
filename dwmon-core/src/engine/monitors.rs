//! The monitor step of a cycle (see [`crate::monitor`]): after every checker, each monitor's
//! due minutes are counted, judged, recorded and delivered — its own step, apart from the
//! checkers' evaluation.

use super::{CheckerOutcome, CycleContext, OutboxView};
use crate::checker_file::Checker;
use crate::monitor::{self, Monitor, MonitorCounts, MonitorError};
use crate::record::{CheckRecord, ErrorKind, InputCount};
use crate::store::PendingDelivery;
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use tracing::warn;

/// What the monitor step needs from the cycle.
pub(super) struct Work<'a> {
    pub monitors: &'a [Arc<dyn Monitor>],
    /// The loaded checkers.
    pub checkers: &'a [Checker],
    /// Checkers whose files failed to load.
    pub failing: &'a [String],
    /// Monitors' outbox entries of earlier cycles, by record name.
    pub backlog: BTreeMap<String, Vec<PendingDelivery>>,
    pub outbox: &'a OutboxView,
}

/// Takes the monitors' entries (`monitor:NAME`) out of the cycle's outbox read: the monitor
/// step delivers them before the monitor's new records, in order.
pub(super) fn take_backlog(
    backlog: &mut BTreeMap<String, Vec<PendingDelivery>>,
) -> BTreeMap<String, Vec<PendingDelivery>> {
    let names: Vec<String> = backlog
        .keys()
        .filter(|name| monitor::is_monitor_record(name))
        .cloned()
        .collect();
    names
        .into_iter()
        .filter_map(|name| backlog.remove_entry(&name))
        .collect()
}

/// The monitor's stand-in checker: its record name, extra, zone and a requirement with its
/// schedule and longest window, so errors, purges and the purger's retention treat it as a
/// checker of its own.
fn stand_in(monitor: &dyn Monitor, schedule: &crate::MonitorSchedule) -> Checker {
    let longest = monitor::longest_window(&monitor.inputs());
    Checker {
        name: monitor::record_name(monitor.name()),
        path: None,
        query: String::new(),
        source: "monitor".to_string(),
        extra: monitor.extra(),
        timezone: monitor.timezone(),
        requirements: vec![monitor::stand_in_requirement(schedule, longest)],
    }
}

impl CycleContext {
    /// Runs every monitor, one after the other; also delivers the pending records of
    /// monitors no longer registered.
    pub(super) async fn run_monitors(&self, mut work: Work<'_>) -> Vec<CheckerOutcome> {
        let mut outcomes = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for monitor in work.monitors {
            let name = monitor::record_name(monitor.name());
            let pending = work.backlog.remove(&name).unwrap_or_default();
            let may_have_unseen = work.outbox.may_have_unseen(&name);
            let duplicate = !seen.insert(name.clone());
            let outcome = AssertUnwindSafe(self.run_monitor(
                monitor.as_ref(),
                &work,
                pending,
                may_have_unseen,
                duplicate,
            ));
            let outcome = match futures::FutureExt::catch_unwind(outcome).await {
                Ok(outcome) => outcome,
                Err(_) => {
                    let text = "internal error: judging the monitor panicked (a bug in its \
                                judge, the store or the handler)"
                        .to_string();
                    let zone = self.config.default_zone;
                    let event = self.error_event(
                        &name,
                        serde_json::json!({}),
                        zone,
                        ErrorKind::Monitor,
                        text,
                    );
                    warn!(monitor = %name, "monitor panicked");
                    self.deliver_error(&event).await;
                    CheckerOutcome {
                        checker: name,
                        errors: vec![event],
                        ..CheckerOutcome::default()
                    }
                }
            };
            outcomes.push(outcome);
        }
        for (name, pending) in std::mem::take(&mut work.backlog) {
            let mut outcome = CheckerOutcome {
                checker: name.clone(),
                ..CheckerOutcome::default()
            };
            let may_have_unseen = work.outbox.may_have_unseen(&name);
            self.deliver_checks(&mut outcome, pending, &[], may_have_unseen)
                .await;
            outcomes.push(outcome);
        }
        outcomes
    }

    /// One monitor: due minutes, counts, verdicts, record, deliver, purge its check log.
    async fn run_monitor(
        &self,
        monitor: &dyn Monitor,
        work: &Work<'_>,
        pending: Vec<PendingDelivery>,
        may_have_unseen: bool,
        duplicate: bool,
    ) -> CheckerOutcome {
        let schedule = monitor.schedule();
        let checker = stand_in(monitor, &schedule);
        let zone = checker.zone(self.config.default_zone);
        let mut outcome = CheckerOutcome {
            checker: checker.name.clone(),
            ..CheckerOutcome::default()
        };
        let records = self
            .judge_monitor(
                monitor,
                &schedule,
                &checker,
                zone,
                work,
                duplicate,
                &mut outcome,
            )
            .await;
        let records = records.unwrap_or_default();
        self.deliver_checks(&mut outcome, pending, &records, may_have_unseen)
            .await;
        if !outcome.checks.is_empty() {
            if let Some(cutoff) = self.purger.check_log_cutoff(&checker, self.now) {
                let purged = self.store.purge_checks(&checker.name, cutoff).await;
                outcome.purged_checks = self
                    .purged(&checker, zone, &mut outcome, purged, || {
                        format!("check records before {cutoff}")
                    })
                    .await;
            }
        }
        for event in &outcome.errors {
            self.deliver_error(event).await;
        }
        outcome
    }

    /// Steps 1-6a for a monitor. `Some(records to deliver now)` when it recorded (empty when
    /// another runner recorded some of them: the outbox delivers those next cycle), `None`
    /// when nothing was due or a failure was reported in `outcome`.
    #[allow(clippy::too_many_arguments)]
    async fn judge_monitor(
        &self,
        monitor: &dyn Monitor,
        schedule: &crate::MonitorSchedule,
        checker: &Checker,
        zone: chrono_tz::Tz,
        work: &Work<'_>,
        duplicate: bool,
        outcome: &mut CheckerOutcome,
    ) -> Option<Vec<CheckRecord>> {
        let name = checker.name.as_str();
        let declared = if duplicate {
            Err(MonitorError::DuplicateName {
                name: monitor.name().to_string(),
            })
        } else {
            monitor::validate(monitor)
        };
        let inputs = monitor.inputs();
        let unknown = inputs
            .iter()
            .find(|i| !work.checkers.iter().any(|c| c.name == i.checker));
        let declared = declared.and_then(|()| match unknown {
            None => Ok(()),
            Some(input) => Err(MonitorError::UnknownInput {
                monitor: monitor.name().to_string(),
                checker: input.checker.clone(),
                hint: if work.failing.contains(&input.checker) {
                    " (its file failed to load)".to_string()
                } else {
                    String::new()
                },
            }),
        });
        if let Err(e) = declared {
            self.fail(checker, zone, outcome, ErrorKind::Monitor, e.to_string())
                .await;
            return None;
        }

        let last = match self.store.last_checked_minute(name).await {
            Ok(last) => last,
            Err(e) => {
                let text = format!("store: cannot read the last checked minute: {e}");
                self.fail(checker, zone, outcome, ErrorKind::Store, text)
                    .await;
                return None;
            }
        };
        if let Some(last) = last.filter(|&last| last > self.minute) {
            let text = super::clock_behind_text(last, self.minute);
            self.fail(checker, zone, outcome, ErrorKind::ClockBehind, text)
                .await;
            return None;
        }
        // The minutes every input has been checked up to: later ones wait for their rows.
        let mut ready = Some(i64::MAX);
        for input in &inputs {
            match self.store.last_checked_minute(&input.checker).await {
                Ok(minute) => ready = ready.zip(minute).map(|(a, b)| a.min(b)),
                Err(e) => {
                    let text = format!(
                        "store: cannot read the last checked minute of {}: {e}",
                        input.checker
                    );
                    self.fail(checker, zone, outcome, ErrorKind::Store, text)
                        .await;
                    return None;
                }
            }
        }
        let longest = monitor::longest_window(&inputs);
        let (mut candidates, missed) =
            monitor::due_minutes(schedule, longest, zone, self.minute, last, ready);
        candidates.truncate(self.config.max_checks_per_cycle.max(1));
        outcome.candidates = candidates.len();
        if candidates.is_empty() && missed.is_empty() {
            return None;
        }

        // One count per (input, candidate minute), one store call per input.
        let mut counts: Vec<MonitorCounts> = candidates
            .iter()
            .map(|&minute| MonitorCounts {
                minute,
                inputs: Vec::with_capacity(inputs.len()),
            })
            .collect();
        for input in &inputs {
            let lookback = i64::try_from(input.lookback_seconds).unwrap_or(i64::MAX);
            let windows: Vec<(i64, i64)> = candidates
                .iter()
                .map(|&m| (m.saturating_sub(lookback), m))
                .collect();
            let counted = match self.store.count_windows(&input.checker, &windows).await {
                Ok(counted) if counted.len() == windows.len() => counted,
                Ok(counted) => {
                    let text = format!(
                        "store: asked for {} window counts of {}, got {}",
                        windows.len(),
                        input.checker,
                        counted.len()
                    );
                    self.fail(checker, zone, outcome, ErrorKind::Store, text)
                        .await;
                    return None;
                }
                Err(e) => {
                    let text = format!("store: cannot count rows of {}: {e}", input.checker);
                    self.fail(checker, zone, outcome, ErrorKind::Store, text)
                        .await;
                    return None;
                }
            };
            for (at, count) in counts.iter_mut().zip(counted) {
                at.inputs.push(InputCount {
                    checker: input.checker.clone(),
                    lookback_seconds: input.lookback_seconds,
                    count,
                });
            }
        }

        let mut records = Vec::with_capacity(counts.len() + missed.len());
        for at in counts {
            let judged = std::panic::catch_unwind(AssertUnwindSafe(|| monitor.judge(&at)));
            let Ok(verdict) = judged else {
                let text = format!(
                    "the monitor's judge panicked at minute {}; nothing was recorded",
                    at.minute
                );
                self.fail(checker, zone, outcome, ErrorKind::Monitor, text)
                    .await;
                return None;
            };
            records.push(monitor::verdict_record(
                monitor,
                schedule,
                zone,
                at,
                Some(verdict),
            ));
        }
        for minute in missed {
            let at = MonitorCounts {
                minute,
                inputs: Vec::new(),
            };
            let mut record = monitor::verdict_record(monitor, schedule, zone, at, None);
            record.lookback_seconds = longest;
            records.push(record);
        }
        records.sort_by_key(|r| r.minute);

        let recorded_elsewhere = match self.store.record_checks(name, &records).await {
            Ok(new) => usize::try_from(new).is_ok_and(|new| new < records.len()),
            Err(e) => {
                let text = format!("store: cannot record checks: {e}");
                self.fail(checker, zone, outcome, ErrorKind::Store, text)
                    .await;
                return None;
            }
        };
        outcome.checks.clone_from(&records);
        self.clear_error(name).await;
        if recorded_elsewhere {
            warn!(monitor = %name, "some minutes were already recorded (another runner on this store?); \
                 the outbox delivers the recorded checks");
            return Some(Vec::new());
        }
        Some(records)
    }
}
