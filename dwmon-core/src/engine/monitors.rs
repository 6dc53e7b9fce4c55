//! The monitor step of a cycle (see [`crate::monitor`]): after every checker, each monitor's
//! due minutes are counted, judged, recorded and delivered — its own step, apart from the
//! checkers' evaluation.

use super::failure::Failure;
use super::{CheckerOutcome, CycleContext, OutboxView};
use crate::checker_file::Checker;
use crate::monitor::{self, Monitor, MonitorCounts, MonitorError, MonitorInput};
use crate::record::{CheckRecord, ErrorKind, InputCount};
use crate::store::PendingDelivery;
use chrono_tz::Tz;
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

/// One monitor's declaration, as the monitor step uses it.
struct Declared<'a> {
    monitor: &'a dyn Monitor,
    schedule: crate::MonitorSchedule,
    inputs: Vec<MonitorInput>,
    /// The monitor's stand-in checker ([`stand_in`]).
    checker: Checker,
    zone: Tz,
}

/// A monitor's due minutes: to count and judge, and to record as `MISSED`.
struct DueMinutes {
    candidates: Vec<i64>,
    missed: Vec<i64>,
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
                    warn!(monitor = %name, "monitor panicked");
                    let text = "internal error: judging the monitor panicked (a bug in its \
                                judge, the store or the handler)";
                    self.report_panic(name, ErrorKind::Monitor, text).await
                }
            };
            outcomes.push(outcome);
        }
        for (name, pending) in std::mem::take(&mut work.backlog) {
            let mut outcome = CheckerOutcome::named(&name);
            let may_have_unseen = work.outbox.may_have_unseen(&name);
            self.deliver_checks(&mut outcome, pending, &[], may_have_unseen)
                .await;
            outcomes.push(outcome);
        }
        outcomes
    }

    /// One monitor: due minutes → count its inputs → judge → record → deliver → purge its
    /// check log; a failed step is reported through the engine's one failure path.
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
        let declared = Declared {
            monitor,
            schedule,
            inputs: monitor.inputs(),
            zone: checker.zone(self.config.default_zone),
            checker,
        };
        let checker = &declared.checker;
        let mut outcome = CheckerOutcome::named(&checker.name);
        let judged = self
            .judge_monitor(&declared, work, duplicate, &mut outcome)
            .await;
        let records = self.ok_or_report(checker, &mut outcome, judged).await;
        let records = records.flatten().unwrap_or_default();
        self.deliver_checks(&mut outcome, pending, &records, may_have_unseen)
            .await;
        if !outcome.checks.is_empty() {
            let cutoffs = self.purger.cutoffs(checker, self.now);
            // A monitor has no rows of its own: only its check log is purged.
            let purge = self.this_cycles_purge(checker, cutoffs, true);
            self.purge(checker, purge, &mut outcome).await;
        }
        self.deliver_errors(&outcome).await;
        outcome
    }

    /// Steps 1-6a for a monitor: `Some(records to deliver now)` when it recorded, `None`
    /// when nothing was due.
    async fn judge_monitor(
        &self,
        declared: &Declared<'_>,
        work: &Work<'_>,
        duplicate: bool,
        outcome: &mut CheckerOutcome,
    ) -> Result<Option<Vec<CheckRecord>>, Failure> {
        validate(declared, work, duplicate)?;
        let Some(due) = self.monitor_due(declared, outcome).await? else {
            return Ok(None);
        };
        let counts = self.count_inputs(declared, &due.candidates).await?;
        let records = verdicts(declared, counts, due.missed)?;
        let name = declared.checker.name.as_str();
        let Some(to_deliver) = self.record(name, records, outcome).await? else {
            return Ok(None);
        };
        self.clear_error(name).await;
        Ok(Some(to_deliver))
    }

    /// The monitor's due minutes: after its last checked minute, up to the minute every input
    /// has been checked to (later ones wait for their rows); `None` when there are none.
    async fn monitor_due(
        &self,
        declared: &Declared<'_>,
        outcome: &mut CheckerOutcome,
    ) -> Result<Option<DueMinutes>, Failure> {
        let last = self.last_checked(&declared.checker.name).await?;
        let mut ready = Some(i64::MAX);
        for input in &declared.inputs {
            let minute = self
                .store
                .last_checked_minute(&input.checker)
                .await
                .map_err(|e| {
                    let what = format!("cannot read the last checked minute of {}", input.checker);
                    Failure::store(what, e)
                })?;
            ready = ready.zip(minute).map(|(a, b)| a.min(b));
        }
        let longest = monitor::longest_window(&declared.inputs);
        let (mut candidates, missed) = monitor::due_minutes(
            &declared.schedule,
            longest,
            declared.zone,
            self.minute,
            last,
            ready,
        );
        candidates.truncate(self.config.max_checks_per_cycle.max(1));
        outcome.candidates = candidates.len();
        if candidates.is_empty() && missed.is_empty() {
            return Ok(None);
        }
        Ok(Some(DueMinutes { candidates, missed }))
    }

    /// One count per (input, candidate minute), one store call per input.
    async fn count_inputs(
        &self,
        declared: &Declared<'_>,
        candidates: &[i64],
    ) -> Result<Vec<MonitorCounts>, Failure> {
        let mut counts: Vec<MonitorCounts> = candidates
            .iter()
            .map(|&minute| MonitorCounts {
                minute,
                inputs: Vec::with_capacity(declared.inputs.len()),
            })
            .collect();
        for input in &declared.inputs {
            let lookback = i64::try_from(input.lookback_seconds).unwrap_or(i64::MAX);
            let windows: Vec<(i64, i64)> = candidates
                .iter()
                .map(|&m| (m.saturating_sub(lookback), m))
                .collect();
            let counted = self
                .store
                .count_windows(&input.checker, &windows)
                .await
                .map_err(|e| {
                    Failure::store(format!("cannot count rows of {}", input.checker), e)
                })?;
            if counted.len() != windows.len() {
                let text = format!(
                    "store: asked for {} window counts of {}, got {}",
                    windows.len(),
                    input.checker,
                    counted.len()
                );
                return Err(Failure::new(ErrorKind::Store, text));
            }
            for (at, count) in counts.iter_mut().zip(counted) {
                at.inputs.push(InputCount {
                    checker: input.checker.clone(),
                    lookback_seconds: input.lookback_seconds,
                    count,
                });
            }
        }
        Ok(counts)
    }
}

/// The monitor's declaration holds: a name of its own, valid inputs, each a loaded checker.
fn validate(declared: &Declared<'_>, work: &Work<'_>, duplicate: bool) -> Result<(), Failure> {
    let monitor = declared.monitor;
    let declared_ok = if duplicate {
        Err(MonitorError::DuplicateName {
            name: monitor.name().to_string(),
        })
    } else {
        monitor::validate(monitor)
    };
    let unknown = declared
        .inputs
        .iter()
        .find(|i| !work.checkers.iter().any(|c| c.name == i.checker));
    let declared_ok = declared_ok.and_then(|()| match unknown {
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
    declared_ok.map_err(|e| Failure::new(ErrorKind::Monitor, e.to_string()))
}

/// The monitor's verdict on each counted minute, and a `MISSED` record for each missed one,
/// ascending. A judge that panics records nothing.
fn verdicts(
    declared: &Declared<'_>,
    counts: Vec<MonitorCounts>,
    missed: Vec<i64>,
) -> Result<Vec<CheckRecord>, Failure> {
    let Declared {
        monitor,
        schedule,
        zone,
        ..
    } = declared;
    let mut records = Vec::with_capacity(counts.len() + missed.len());
    for at in counts {
        let judged = std::panic::catch_unwind(AssertUnwindSafe(|| monitor.judge(&at)));
        let Ok(verdict) = judged else {
            let text = format!(
                "the monitor's judge panicked at minute {}; nothing was recorded",
                at.minute
            );
            return Err(Failure::new(ErrorKind::Monitor, text));
        };
        records.push(monitor::verdict_record(
            *monitor,
            schedule,
            *zone,
            at,
            Some(verdict),
        ));
    }
    let longest = monitor::longest_window(&declared.inputs);
    for minute in missed {
        let at = MonitorCounts {
            minute,
            inputs: Vec::new(),
        };
        let mut record = monitor::verdict_record(*monitor, schedule, *zone, at, None);
        record.lookback_seconds = longest;
        records.push(record);
    }
    records.sort_by_key(|r| r.minute);
    Ok(records)
}
