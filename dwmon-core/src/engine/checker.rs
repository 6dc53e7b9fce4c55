//! One checker's path through a cycle, step by step as in SPEC 5 and README "How a cycle
//! works": due minutes → fetch → admit rows → store → count and judge → record → deliver →
//! purge. Each step returns `Result`; [`CycleContext::report`] is the one place a failed step
//! becomes an `ERROR` event and the checker's last error.

use super::admit::Admit;
use super::due::{candidates, missed_minutes, oldest_chunk, requirement_progress};
use super::failure::Failure;
use super::CheckerOutcome;
use super::{clock_behind_text, local_rfc3339, reachable_from, CheckerJob, CycleContext};
use crate::checker_file::Checker;
use crate::purger::Cutoffs;
use crate::record::{CheckRecord, ErrorKind, Status};
use crate::runs::{judge_runs, Run};
use crate::source::{FetchRequest, SourceError};
use chrono_tz::Tz;
use std::sync::Arc;
use tracing::{debug, info, warn};

/// Steps 1-3's answer for a checker with something to check.
struct Due {
    /// The last checked minute (`None`: the checker's first cycle).
    last: Option<i64>,
    /// Candidate `(minute, requirement_index)` pairs, ascending.
    candidates: Vec<(i64, usize)>,
    /// Each candidate's window `[m - L, m)`.
    windows: Vec<(i64, i64)>,
    /// Due pairs that left the horizon unchecked, recorded as `MISSED`.
    missed: Vec<(i64, usize)>,
}

/// What steps 1-6a did for a checker that had something to check.
struct Evaluated {
    /// The records to deliver this cycle ([`CycleContext::record`]).
    to_deliver: Vec<CheckRecord>,
    /// What this cycle purges (nothing unless a purge is due).
    purge: Cutoffs,
    /// Rows were rejected: reported once the checks are recorded.
    rejected: Option<Failure>,
}

impl CycleContext {
    /// Steps 1-7 of a cycle for one checker.
    pub(super) async fn check(self: Arc<Self>, job: CheckerJob) -> CheckerOutcome {
        let checker = &job.checkers[job.index];
        let mut outcome = CheckerOutcome::named(&checker.name);
        // Eviction by age, also in cycles without a fetch: nothing older can be handed over
        // after this cycle (see "Rows that are not stored").
        self.store
            .set_reachable_from(&checker.name, reachable_from(checker, self.minute));
        let evaluated = self.evaluate(checker, &mut outcome).await;
        let evaluated = self.ok_or_report(checker, &mut outcome, evaluated).await;
        let mut evaluated = evaluated.flatten();
        if let Some(evaluated) = &mut evaluated {
            match evaluated.rejected.take() {
                Some(rejected) => self.report(checker, &mut outcome, rejected).await,
                None => self.clear_error(&checker.name).await,
            }
        }
        let records = evaluated.as_ref().map_or(&[][..], |e| &e.to_deliver[..]);
        self.deliver_checks(&mut outcome, job.pending, records, job.may_have_unseen)
            .await;
        if let Some(evaluated) = &evaluated {
            self.purge(checker, evaluated.purge, &mut outcome).await;
        }
        self.deliver_errors(&outcome).await;
        outcome
    }

    /// Steps 1-6a: due minutes → fetch → admit rows → store → count and judge → record.
    /// `Ok(None)`: nothing is due this cycle.
    async fn evaluate(
        &self,
        checker: &Checker,
        outcome: &mut CheckerOutcome,
    ) -> Result<Option<Evaluated>, Failure> {
        if !self.may_claim(&checker.name) {
            debug!(checker = %checker.name, "claimed by another runner");
            return Ok(None);
        }
        if checker.per_host() {
            // A template: each host's sub-check (`NAME@HOST`, crate::ping::with_hosts) is
            // checked on its own; the template has no rows of its own to judge.
            return Ok(None);
        }
        let Some(due) = self.due(checker, outcome).await? else {
            return Ok(None);
        };
        let (purge, rejected) = self.fetch(checker, &due, outcome).await?;
        let counts = self.count(checker, &due).await?;
        let runs = self.runs(checker, &due).await?;
        let zone = checker.zone(self.config.default_zone);
        let records = judge(checker, zone, due, counts, &runs);
        let Some(to_deliver) = self.record(&checker.name, records, outcome).await? else {
            return Ok(None);
        };
        Ok(Some(Evaluated {
            to_deliver,
            purge,
            rejected,
        }))
    }

    /// Steps 1-3: the candidates (the oldest chunk of a long catch-up) and the minutes that
    /// left the horizon unchecked; `None` when there are neither.
    async fn due(
        &self,
        checker: &Checker,
        outcome: &mut CheckerOutcome,
    ) -> Result<Option<Due>, Failure> {
        let (last, progress) = self.progress(checker).await?;
        let zone = checker.zone(self.config.default_zone);
        let mut candidates = candidates(checker, zone, self.minute, &progress);
        let due = candidates.len();
        oldest_chunk(&mut candidates, self.config.max_checks_per_cycle);
        if candidates.len() < due {
            info!(
                checker = %checker.name,
                checks = candidates.len(),
                left = due - candidates.len(),
                "catching up: the oldest due checks this cycle, the rest in the next ones"
            );
        }
        outcome.candidates = candidates.len();
        let missed = missed_minutes(checker, zone, self.minute, &progress);
        if candidates.is_empty() && missed.is_empty() {
            return Ok(None);
        }
        let windows = windows(checker, &candidates);
        Ok(Some(Due {
            last,
            candidates,
            windows,
            missed,
        }))
    }

    /// Step 1: the checker's last checked minute and how far each requirement was judged.
    async fn progress(
        &self,
        checker: &Checker,
    ) -> Result<(Option<i64>, Vec<Option<i64>>), Failure> {
        let last = self.last_checked(&checker.name).await?;
        let delayed = checker.requirements.iter().any(|r| r.delay_seconds > 0);
        let own = if last.is_some() && delayed {
            self.store
                .last_checked_minutes(&checker.name)
                .await
                .map_err(|e| Failure::store("cannot read the last checked minutes", e))?
        } else {
            Vec::new()
        };
        Ok((last, requirement_progress(checker, last, &own)))
    }

    /// The last checked minute of `name` (a checker or a monitor); one after this cycle's
    /// minute is a [`ErrorKind::ClockBehind`] failure.
    pub(super) async fn last_checked(&self, name: &str) -> Result<Option<i64>, Failure> {
        let last = self
            .store
            .last_checked_minute(name)
            .await
            .map_err(|e| Failure::store("cannot read the last checked minute", e))?;
        match last {
            Some(last) if last > self.minute => Err(Failure::new(
                ErrorKind::ClockBehind,
                clock_behind_text(last, self.minute),
            )),
            _ => Ok(last),
        }
    }

    /// Step 4: fetch → admit rows → store, batch by batch ([`Admit`]); the row counts go to
    /// `outcome` whether or not the fetch succeeds (batches stored before a failure stay:
    /// they are real first-seen rows). Answers what this cycle purges and the rejected rows
    /// to report.
    async fn fetch(
        &self,
        checker: &Checker,
        due: &Due,
        outcome: &mut CheckerOutcome,
    ) -> Result<(Cutoffs, Option<Failure>), Failure> {
        let mut admit = Admit::new(self, checker, due.last.is_some(), &due.windows);
        let fetched = self.fetch_into(checker, outcome, &mut admit).await;
        outcome.rows_fetched = admit.rows_fetched;
        outcome.new_rows = admit.new_rows;
        outcome.rejected_rows = admit.rejected;
        if let Some(e) = admit.store_error.take() {
            return Err(Failure::store("cannot store fetched rows", e));
        }
        fetched.map_err(|e| Failure::new(ErrorKind::Fetch, format!("fetch failed: {e}")))?;
        Ok(admit.finish())
    }

    /// The fetch itself, under the timeout, logged: the source hands its rows to `admit`
    /// batch by batch, and each batch is stored before the next is read.
    async fn fetch_into(
        &self,
        checker: &Checker,
        outcome: &mut CheckerOutcome,
        admit: &mut Admit<'_>,
    ) -> Result<(), SourceError> {
        if checker.is_push() {
            // Its rows arrive over HTTP (`dwmon serve`): nothing to fetch.
            outcome.fetch_duration = Some(std::time::Duration::ZERO);
            return Ok(());
        }
        let request = FetchRequest {
            checker: &checker.name,
            query: &checker.query,
            source: &checker.source,
            extra: &checker.extra,
        };
        let started = tokio::time::Instant::now();
        let fetch = self.source.get_rows_batched(&request, admit);
        let result = match tokio::time::timeout(self.config.fetch_timeout, fetch).await {
            Ok(result) => result,
            Err(_) => Err(SourceError::Timeout {
                millis: u64::try_from(self.config.fetch_timeout.as_millis()).unwrap_or(u64::MAX),
            }),
        };
        let elapsed = started.elapsed();
        outcome.fetch_duration = Some(elapsed);
        let millis = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        let (rows, batches) = (admit.rows_fetched, admit.batches);
        if elapsed > self.config.slow_fetch_warning {
            warn!(checker = %checker.name, source = %checker.source, millis, rows, batches, "slow fetch");
        } else {
            debug!(checker = %checker.name, source = %checker.source, millis, rows, batches, "fetched");
        }
        result
    }

    /// Step 5's counts, one per candidate: for a push checker, each requirement counts the
    /// series of the ping kind it names ([`crate::ping::series`]), one store call per kind.
    async fn count(&self, checker: &Checker, due: &Due) -> Result<Vec<u64>, Failure> {
        let counted = if checker.is_push() {
            self.count_pings(checker, due).await
        } else {
            self.store.count_windows(&checker.name, &due.windows).await
        };
        let counts = counted.map_err(|e| Failure::store("cannot count rows", e))?;
        if counts.len() != due.windows.len() {
            let text = format!(
                "store: asked for {} window counts, got {}",
                due.windows.len(),
                counts.len()
            );
            return Err(Failure::new(ErrorKind::Store, text));
        }
        Ok(counts)
    }

    /// Step 5's runs, for the candidates whose requirement has `MINDURATION` /
    /// `MAXDURATION` (push checkers only): one read of the ping log covering each such
    /// window `[m - L, m)` and the starts that can be overdue in it, from `m - L -
    /// MAXDURATION` (see [`crate::runs`]). Empty when no candidate needs them.
    async fn runs(&self, checker: &Checker, due: &Due) -> Result<Vec<Run>, Failure> {
        if !checker.is_push() {
            return Ok(Vec::new());
        }
        let spans = due
            .candidates
            .iter()
            .zip(&due.windows)
            .filter_map(|(&(_, r), &(from, to))| {
                let requirement = &checker.requirements[r];
                requirement.has_duration_bounds().then(|| {
                    let longest = requirement.max_duration.unwrap_or(0);
                    (
                        from.saturating_sub(i64::try_from(longest).unwrap_or(i64::MAX)),
                        to,
                    )
                })
            });
        let Some((from, to)) = spans.reduce(|(a, b), (c, d)| (a.min(c), b.max(d))) else {
            return Ok(Vec::new());
        };
        let Some(log) = &self.ping_log else {
            return Err(Failure::new(
                ErrorKind::Store,
                "MINDURATION / MAXDURATION judge the runs of the pings `dwmon serve` \
                 receives; this runner has no ping log to read them from"
                    .to_string(),
            ));
        };
        log.runs(&checker.name, from, to)
            .await
            .map_err(|e| Failure::store("cannot read the runs", e))
    }

    async fn count_pings(
        &self,
        checker: &Checker,
        due: &Due,
    ) -> Result<Vec<u64>, crate::StoreError> {
        let mut counts = vec![0; due.windows.len()];
        for kind in crate::ping::PingKind::ALL {
            let picked: Vec<usize> = (0..due.candidates.len())
                .filter(|&i| checker.requirements[due.candidates[i].1].pings == kind)
                .collect();
            if picked.is_empty() {
                continue;
            }
            let of_kind: Vec<(i64, i64)> = picked.iter().map(|&i| due.windows[i]).collect();
            let series = crate::ping::series(&checker.name, kind);
            let found = self.store.count_windows(&series, &of_kind).await?;
            if found.len() != of_kind.len() {
                // Reported by the caller as a count mismatch.
                return Ok(found);
            }
            for (&i, count) in picked.iter().zip(found) {
                counts[i] = count;
            }
        }
        Ok(counts)
    }

    /// Whether this runner may check `name` this cycle: it holds its claim (or the claim
    /// failed, which [`CycleContext::record`] reports).
    pub(super) fn may_claim(&self, name: &str) -> bool {
        self.claims
            .as_ref()
            .map_or(true, |claims| claims.contains_key(name))
    }

    /// Step 6a, for checkers and monitors alike: records `records` of `name` under this
    /// runner's claim, in one store transaction (which also queues them in the outbox); the
    /// checks as stored go into `outcome`. Answers those to deliver now: all of them, unless
    /// another runner on the same store recorded some of these minutes first (between this
    /// cycle's read of the last checked minute and its write). Its records, not these, are
    /// the truth: then every record of the checker waits in the outbox, and the next cycle
    /// delivers them in minute order. `None`: another runner holds the checker (its claim is
    /// newer), so nothing was recorded and nothing is wrong.
    pub(super) async fn record(
        &self,
        name: &str,
        records: Vec<CheckRecord>,
        outcome: &mut CheckerOutcome,
    ) -> Result<Option<Vec<CheckRecord>>, Failure> {
        let claim = match &self.claims {
            Ok(claims) => match claims.get(name) {
                Some(claim) => claim,
                None => return Ok(None),
            },
            Err(e) => {
                let text = format!("store: cannot claim the checker: {e}");
                return Err(Failure::new(ErrorKind::Store, text));
            }
        };
        let recorded = match self.store.record(claim, &records).await {
            Ok(recorded) => recorded,
            Err(e) if e.is_stale_claim() => {
                info!(checker = %name, error = %e, "another runner took the checker over");
                return Ok(None);
            }
            Err(e) => return Err(Failure::store("cannot record checks", e)),
        };
        if recorded.existing.is_empty() {
            outcome.checks = records;
            return Ok(Some(recorded.inserted));
        }
        warn!(
            checker = %name,
            "some minutes were already recorded (another runner on this store?); \
             the checks as recorded are delivered from the outbox, in order"
        );
        outcome.checks = recorded.stored();
        Ok(Some(Vec::new()))
    }
}

/// Each candidate's window `[m - L, m)`.
fn windows(checker: &Checker, candidates: &[(i64, usize)]) -> Vec<(i64, i64)> {
    candidates
        .iter()
        .map(|&(m, r)| {
            let lookback =
                i64::try_from(checker.requirements[r].lookback_seconds).unwrap_or(i64::MAX);
            (m.saturating_sub(lookback), m)
        })
        .collect()
}

/// Step 5's verdicts: each candidate's count judged against its requirement's bounds (and
/// its `runs` against its duration bounds: any run that breaks one makes it BAD, and the
/// record says which), and a `MISSED` record (count 0) for each missed pair, ascending
/// `(minute, requirement_index)`.
fn judge(
    checker: &Checker,
    zone: Tz,
    due: Due,
    counts: Vec<u64>,
    runs: &[Run],
) -> Vec<CheckRecord> {
    let mut records: Vec<CheckRecord> = due
        .candidates
        .iter()
        .zip(counts)
        .map(|(&(minute, index), count)| {
            let requirement = &checker.requirements[index];
            let mut status = Status::judge(count, requirement.min, requirement.max);
            let report = judge_runs(
                runs,
                minute,
                requirement.lookback_seconds,
                requirement.min_duration,
                requirement.max_duration,
            );
            if report.is_some() {
                status = Status::Bad;
            }
            let mut record = check_record(checker, index, minute, zone, count, status);
            record.runs = report;
            record
        })
        .collect();
    if due.missed.is_empty() {
        return records;
    }
    records.extend(
        due.missed
            .into_iter()
            .map(|(minute, index)| check_record(checker, index, minute, zone, 0, Status::Missed)),
    );
    records.sort_by_key(|r| (r.minute, r.requirement_index));
    records
}

/// The check record of requirement `index` of `checker` at `minute`, with `count` and `status`.
fn check_record(
    checker: &Checker,
    index: usize,
    minute: i64,
    zone: Tz,
    count: u64,
    status: Status,
) -> CheckRecord {
    let requirement = &checker.requirements[index];
    CheckRecord {
        checker: checker.name.clone(),
        requirement_index: index,
        requirement: requirement.to_string(),
        minute,
        minute_local: local_rfc3339(minute, zone),
        timezone: zone.name().to_string(),
        lookback_seconds: requirement.lookback_seconds,
        count,
        min: requirement.min,
        max: requirement.max,
        status,
        extra: checker.extra.clone(),
        monitor: None,
        runs: None,
    }
}
