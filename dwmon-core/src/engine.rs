//! The cycle engine (README "How a cycle works"): due minutes -> fetch -> first-seen store -> count and judge ->
//! record -> deliver through the outbox -> purge, once a minute, for every checker.
//!
//! [`Engine::run_cycle`] runs one cycle for a given `now` (the engine never reads the clock
//! itself); [`Engine::run`] is the loop a binary runs, driven by a [`Clock`].
//!
//! # How a cycle works
//!
//! With `M` the minute containing `now`, for each checker (concurrently, at most
//! [`EngineConfig::max_concurrent_checkers`] at a time per source):
//!
//! 1. `last` = the latest minute ever checked for the checker (from the [`Store`]).
//! 2. Candidates: for each requirement, the minutes `m` of the last `H = 10 * ceil(L / 60)`
//!    minutes up to `M_r = M - D` with `m > last_r` that match its schedule in the checker's
//!    zone, where `D` is the requirement's `DELAYSECONDS` rounded up to whole minutes (0
//!    without the option, so `M_r = M`) and `last_r` is the later of the requirement's own
//!    last checked minute and `last - D` (so `last_r = last` without delays; see
//!    [`requirement_progress`]). On the very first cycle of a checker only `M_r` itself is a
//!    candidate.
//!    A last checked minute after `M` (the clock went back, or a run used a future `--now`)
//!    is an `ERROR` event of kind [`ErrorKind::ClockBehind`] every cycle, naming the minute.
//! 3. No candidate: nothing happens for the checker (besides retrying its pending deliveries).
//! 4. Otherwise the query runs once, under [`EngineConfig::fetch_timeout`]; the rows are
//!    stored first-seen (a known key keeps its first timestamp), batch by batch as the
//!    source hands them over ([`RowGetter::get_rows_batched`]): each batch is stored before
//!    the next is read, so a fetch holds about one batch in memory, whatever its size.
//! 5. Each candidate `(m, r)` counts the stored rows with `m - L <= ts < m` and is `GOOD`
//!    when `MINNUM <= count <= MAXNUM`, else `BAD`. Due minutes after `last` that have left
//!    the horizon are recorded as `MISSED` (count 0, see [`missed_minutes`]).
//! 6. All the checker's checks are recorded in one store transaction (which also enqueues them
//!    in the outbox), then delivered in ascending `(minute, requirement)` order, after any
//!    deliveries of the same checker left pending by earlier cycles. Progress is kept per
//!    handler target ([`CheckHandler::targets`]: stdout, each alert channel): a target that
//!    fails keeps the record in the outbox for that target only and is retried with
//!    exponential backoff; the checker's later records wait behind it for that target alone,
//!    so every target sees a checker's checks in order and no target waits for another.
//!    A target still failing [`EngineConfig::delivery_give_up_seconds`] after the first
//!    attempt of its oldest owed record is given up for all the records it owes the checker,
//!    with one `ERROR` event ([`ErrorKind::DeliveryGivenUp`], default route); so is a target
//!    whose error is [permanent](crate::HandlerError::permanent), at its first failure.
//!    (Each requirement's checks arrive in ascending minutes; with `DELAYSECONDS` a delayed
//!    requirement's minute arrives after later minutes of the checker's undelayed
//!    requirements.)
//! 7. The [`Purger`] decides which old rows to delete (the [`DefaultPurger`] purges a
//!    checker about once an hour, at a minute picked from its name, so that purges are
//!    spread over the hour instead of piling up in one cycle).
//!
//! A checker whose `__EXTRA__` names a `"parent"` among the loaded checkers
//! ([`Checker::parent`]) starts once its parent's work of the cycle (steps 1-6) is done:
//! checkers run in waves by depth (no parent: 0; else the parent's depth + 1), so the
//! alerting sees a parent's check before its children's of the same minute.
//!
//! A fetch that fails or times out records nothing (the minutes are retried next cycle while
//! still inside the horizon) and sends an `ERROR` event; other checkers are not affected.
//! Batches of a failing fetch stored before the failure stay stored: they are first-seen
//! rows the source did return, and the next fetch finds them seen (a key keeps its first
//! timestamp either way), so no check is ever judged on part of a result. The fetch timeout
//! covers the whole batched fetch, storing included.
//!
//! # Rows that are not stored
//!
//! Fetched rows are deduplicated first (a key's first occurrence in the batch decides its
//! timestamp, step 4 of a cycle in README "How a cycle works"); then some are dropped instead of stored:
//!
//! - A checker's first cycle (no last checked minute) stores the whole fetched history and
//!   does not purge, so the history views (`dwmon histogram`) show it; the purger trims it
//!   at a later cycle.
//! - On later cycles, rows older than both the purger's retention cutoff
//!   ([`Purger::retention_cutoff`], else this cycle's purge cutoff) and every window of this
//!   cycle: they could not be counted now and a purge deletes them, so storing them changes
//!   nothing.
//! - On later cycles too, rows older than the oldest window any requirement can still reach,
//!   `cutoff = min_r(M_r - (H_r - 1) * 60 - L_r)`. Every later candidate minute is later than
//!   the last checked one, so no current or future check can count such a row.
//!
//! The only observable difference from storing every row is a key whose first sighting
//! carries a timestamp before `cutoff` and which later reappears with a newer timestamp: a
//! stored key keeps its first timestamp, a dropped one is stored (and counted once) at the
//! newer one. A key that reappears with the same old timestamp is dropped again and counts
//! nowhere, as it would if stored. (If a checker's requirements are edited to reach further
//! back, rows dropped before the edit are stored only if the source still returns them.)
//! After a 24 h outage this keeps a catch-up cycle from storing the whole fetch when only
//! the last horizon can be counted.

mod admit;
mod clock;
mod config;
mod delivery;
mod due;
mod monitors;
mod report;

use admit::Admit;
pub use clock::{Clock, SystemClock};
pub use config::EngineConfig;
use delivery::OutboxView;
pub use due::{
    candidates, missed_minutes, oldest_chunk, requirement_progress, MAX_MISSED_PER_CYCLE,
};
use report::merge;
pub use report::{CheckerOutcome, CycleReport};

use crate::checker_file::{Checker, CheckerFileError, LoadReport};
use crate::handler::CheckHandler;
use crate::purger::{DefaultPurger, Purger};
use crate::record::{CheckRecord, ErrorEvent, ErrorKind, Status};
use crate::source::{FetchRequest, RowGetter, SourceError};
use crate::store::{PendingDelivery, Store};
use crate::{minute_floor, MINUTE};
use chrono_tz::Tz;
use futures::FutureExt;
use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

/// Reloads the checker set before each cycle of [`Engine::run`] (e.g. `load_dir`).
type CheckerLoader = Box<dyn Fn() -> std::io::Result<LoadReport> + Send + Sync>;

/// The checkers of the next cycle and the files that failed to load.
#[derive(Debug, Default)]
struct CheckerSet {
    checkers: Arc<[Checker]>,
    load_errors: Vec<CheckerFileError>,
    /// The `__EXTRA__` of each checker when it last loaded, kept while its file fails to
    /// load, so its `ERROR` events carry the last good extra (and routing).
    last_extra: BTreeMap<String, serde_json::Value>,
}

impl CheckerSet {
    /// Remembers the extras of the loaded checkers and forgets those of checkers that are
    /// neither loaded nor failing to load.
    fn remember_extras(&mut self) {
        for checker in self.checkers.iter() {
            self.last_extra
                .insert(checker.name.clone(), checker.extra.clone());
        }
        let failing: Vec<String> = self.load_errors.iter().map(load_error_checker).collect();
        let loaded = &self.checkers;
        self.last_extra
            .retain(|name, _| failing.contains(name) || loaded.iter().any(|c| &c.name == name));
    }

    /// The load errors with the last good extra of each (`{}` if never loaded).
    fn load_errors_with_extra(&self) -> Vec<(CheckerFileError, serde_json::Value)> {
        self.load_errors
            .iter()
            .map(|error| {
                let extra = self
                    .last_extra
                    .get(&load_error_checker(error))
                    .cloned()
                    .unwrap_or_else(|| serde_json::json!({}));
                (error.clone(), extra)
            })
            .collect()
    }
}

/// The checker a file that failed to load stands for: the file stem.
fn load_error_checker(error: &CheckerFileError) -> String {
    std::path::Path::new(&error.file)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| error.file.clone())
}

/// Runs cycles (README "How a cycle works") over a set of checkers with pluggable source, store, handler and
/// purger.
///
/// The checker set is held by the engine and replaceable between cycles
/// ([`Engine::set_checkers`], [`Engine::set_load_report`], or a loader run before each cycle
/// of [`Engine::run`], see [`Engine::with_loader`]).
///
/// ```
/// use std::sync::Arc;
/// use dwmon_core::testutil::{checker, every_minute, RecordingHandler, ScriptedSource};
/// use dwmon_core::{Engine, MemoryStore, Row};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let source = Arc::new(ScriptedSource::new());
/// let handler = Arc::new(RecordingHandler::new());
/// let engine = Engine::new(source.clone(), Arc::new(MemoryStore::new()), handler.clone())
///     .with_checkers(vec![checker("orders", vec![every_minute(1, 10, 60)])]);
///
/// source.set_rows("orders", vec![Row::new("o1", 1_700_000_010)]);
/// let report = engine.run_cycle(1_700_000_065).await; // minute 1_700_000_040
/// assert_eq!(report.checks().count(), 1);
/// assert_eq!(handler.checks()[0].count, 1);
/// # });
/// ```
pub struct Engine {
    source: Arc<dyn RowGetter>,
    store: Arc<dyn Store>,
    handler: Arc<dyn CheckHandler>,
    purger: Arc<dyn Purger>,
    config: EngineConfig,
    set: Mutex<CheckerSet>,
    loader: Option<CheckerLoader>,
    /// Checkers whose stored last error is known to be clear (saves a write per cycle).
    clean: Arc<Mutex<HashSet<String>>>,
    /// Monitors judged after the checkers each cycle ([`Engine::with_monitors`]).
    monitors: Arc<[Arc<dyn crate::Monitor>]>,
    /// The checkers of the last cycle, whose reachable window the store was told
    /// ([`Store::set_reachable_from`]); one that leaves the set is forgotten.
    reachable_told: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.config)
            .field("checkers", &self.checkers().len())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine with the default config, the [`DefaultPurger`] and no checkers.
    pub fn new(
        source: Arc<dyn RowGetter>,
        store: Arc<dyn Store>,
        handler: Arc<dyn CheckHandler>,
    ) -> Self {
        Engine {
            source,
            store,
            handler,
            purger: Arc::new(DefaultPurger),
            config: EngineConfig::default(),
            set: Mutex::new(CheckerSet::default()),
            loader: None,
            clean: Arc::default(),
            monitors: Arc::new([]),
            reachable_told: Mutex::default(),
        }
    }

    /// Judges `monitors` each cycle, after the checkers (see [`crate::monitor`]): their
    /// records are named `monitor:NAME` and go through the store and the handler like checks.
    pub fn with_monitors(mut self, monitors: Vec<Arc<dyn crate::Monitor>>) -> Self {
        self.monitors = monitors.into();
        self
    }

    /// The monitors each cycle judges.
    pub fn monitors(&self) -> &[Arc<dyn crate::Monitor>] {
        &self.monitors
    }

    /// Replaces the config.
    pub fn with_config(mut self, config: EngineConfig) -> Self {
        self.config = config;
        self
    }

    /// Replaces the purger.
    pub fn with_purger(mut self, purger: Arc<dyn Purger>) -> Self {
        self.purger = purger;
        self
    }

    /// Sets the initial checkers.
    pub fn with_checkers(self, checkers: Vec<Checker>) -> Self {
        self.set_checkers(checkers);
        self
    }

    /// Makes [`Engine::run`] call `loader` before each cycle (e.g.
    /// `move || dwmon_core::load_dir(&dir)`), so edits to checker files take effect at the
    /// next minute. When the loader fails, the previous set is kept and a warning logged.
    pub fn with_loader(
        mut self,
        loader: impl Fn() -> std::io::Result<LoadReport> + Send + Sync + 'static,
    ) -> Self {
        self.loader = Some(Box::new(loader));
        self
    }

    /// The config.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The store (for status views and tests).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The checkers the next cycle will run.
    pub fn checkers(&self) -> Arc<[Checker]> {
        self.lock_set().checkers.clone()
    }

    /// Replaces the checkers for the next cycle (the load errors are kept).
    pub fn set_checkers(&self, checkers: Vec<Checker>) {
        let mut set = self.lock_set();
        set.checkers = checkers.into();
        set.remember_extras();
    }

    /// Replaces the checker files that failed to load. Each cycle sends one `ERROR` event per
    /// such file (checker name = file stem) until the file is fixed; the other checkers run
    /// as usual. The event carries the checker's last good `__EXTRA__` (from the last set
    /// in which it loaded; `{}` if it never did), so its routing stays the same.
    pub fn set_load_errors(&self, errors: Vec<CheckerFileError>) {
        let mut set = self.lock_set();
        set.load_errors = errors;
        set.remember_extras();
    }

    /// Replaces both the checkers and the load errors from a [`LoadReport`].
    pub fn set_load_report(&self, report: LoadReport) {
        let mut set = self.lock_set();
        set.checkers = report.checkers.into();
        set.load_errors = report.errors;
        set.remember_extras();
    }

    /// Runs the loader given to [`Engine::with_loader`], if any, and installs its result.
    ///
    /// # Errors
    /// The loader's error; the previous checker set is kept.
    pub fn reload(&self) -> std::io::Result<()> {
        if let Some(loader) = &self.loader {
            self.set_load_report(loader()?);
        }
        Ok(())
    }

    fn lock_set(&self) -> std::sync::MutexGuard<'_, CheckerSet> {
        self.set.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs one cycle (README "How a cycle works") for `now` over the current checker set and reports what
    /// happened. Never fails as a whole: every problem belongs to one checker and is reported
    /// in its [`CheckerOutcome::errors`] (and to the handler as an `ERROR` event).
    ///
    /// # Panics
    /// When called outside a Tokio runtime (checkers run as Tokio tasks, fetches under
    /// Tokio timers). A panic inside a RowGetter, Store or handler is caught and reported as
    /// an `ERROR` event for that checker.
    pub async fn run_cycle(&self, now: i64) -> CycleReport {
        let started = std::time::Instant::now();
        let minute = minute_floor(now);
        let (checkers, load_errors) = {
            let set = self.lock_set();
            (set.checkers.clone(), set.load_errors_with_extra())
        };
        let context = Arc::new(CycleContext {
            source: self.source.clone(),
            store: self.store.clone(),
            handler: self.handler.clone(),
            purger: self.purger.clone(),
            config: self.config.clone(),
            clean: self.clean.clone(),
            now,
            minute,
        });

        let (mut backlog, outbox) = context.read_outbox().await;
        let mut limits = SourceLimits::new(self.config.max_concurrent_checkers);
        let limits_deliveries = limits.for_deliveries_only();
        let mut tasks = JoinSet::new();
        let mut outcomes: BTreeMap<String, CheckerOutcome> = BTreeMap::new();
        let mut seen = HashSet::new();
        let mut duplicates = Vec::new();

        // Checkers with a parent run after it (a wave per depth), so that a child's checks
        // are judged by the alerting after its parent's of the same minute.
        let depths = parent_depths(&checkers);
        let mut waves: BTreeMap<usize, Vec<CheckerJob>> = BTreeMap::new();
        for index in 0..checkers.len() {
            let name = checkers[index].name.clone();
            if !seen.insert(name.clone()) {
                // Two checkers with one name would share rows and checks: run only the first.
                let checker = &checkers[index];
                let zone = checker.zone(self.config.default_zone);
                let event = context.error_event(
                    &name,
                    checker.extra.clone(),
                    zone,
                    ErrorKind::CheckerFile,
                    format!("duplicate checker name {name:?}: only the first one is checked"),
                );
                duplicates.push(event);
                continue;
            }
            let job = CheckerJob {
                pending: backlog.remove(&name).unwrap_or_default(),
                may_have_unseen: outbox.may_have_unseen(&name),
                checkers: checkers.clone(),
                index,
            };
            waves.entry(depths[index]).or_default().push(job);
        }
        let mut spawn_wave = |tasks: &mut JoinSet<CheckerOutcome>, jobs: Vec<CheckerJob>| {
            for job in jobs {
                let checker = &checkers[job.index];
                let name = checker.name.clone();
                let permits = limits.of(&checker.source);
                let work = context.clone().check(job);
                spawn_guarded(tasks, &permits, &context, name, work);
            }
        };
        let mut waves = waves.into_values();
        if let Some(first) = waves.next() {
            spawn_wave(&mut tasks, first);
        }
        self.forget_unloaded(&seen);
        let monitor_backlog = monitors::take_backlog(&mut backlog);
        // Pending deliveries of checkers no longer loaded still reach the handler.
        for (name, pending) in std::mem::take(&mut backlog) {
            let task_context = context.clone();
            let may_have_unseen = outbox.may_have_unseen(&name);
            let checker = name.clone();
            let work = async move {
                let mut outcome = CheckerOutcome {
                    checker,
                    ..CheckerOutcome::default()
                };
                task_context
                    .deliver_checks(&mut outcome, pending, &[], may_have_unseen)
                    .await;
                for event in &outcome.errors {
                    task_context.deliver_error(event).await;
                }
                outcome
            };
            let permits = limits_deliveries.clone();
            spawn_guarded(&mut tasks, &permits, &context, name, work);
        }
        for event in duplicates {
            context.deliver_error(&event).await;
            merge(
                &mut outcomes,
                CheckerOutcome {
                    checker: event.checker.clone(),
                    errors: vec![event],
                    ..CheckerOutcome::default()
                },
            );
        }
        let failing: Vec<String> = load_errors
            .iter()
            .map(|(error, _)| load_error_checker(error))
            .collect();
        for (error, extra) in load_errors {
            let outcome = context.report_load_error(&error, extra).await;
            merge(&mut outcomes, outcome);
        }
        loop {
            while let Some(joined) = tasks.join_next().await {
                match joined {
                    Ok(outcome) => merge(&mut outcomes, outcome),
                    Err(e) => warn!(error = %e, "checker task failed"),
                }
            }
            match waves.next() {
                Some(wave) => spawn_wave(&mut tasks, wave),
                None => break,
            }
        }
        // Monitors read the rows the checkers just stored: after every checker.
        let monitored = monitors::Work {
            monitors: &self.monitors,
            checkers: &checkers,
            failing: &failing,
            backlog: monitor_backlog,
            outbox: &outbox,
        };
        for outcome in context.run_monitors(monitored).await {
            merge(&mut outcomes, outcome);
        }
        for (name, outcome) in &mut outcomes {
            outcome.checker.clone_from(name);
        }
        CycleReport {
            now,
            minute,
            checkers: outcomes.into_values().collect(),
            duration: started.elapsed(),
        }
    }

    /// Tells the store that the checkers of the last cycle missing from `loaded` can no
    /// longer be handed rows (a cache of their stored keys is of no further use).
    fn forget_unloaded(&self, loaded: &HashSet<String>) {
        let mut told = self
            .reachable_told
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for gone in told.difference(loaded) {
            self.store.set_reachable_from(gone, i64::MAX);
        }
        told.clone_from(loaded);
    }

    /// Runs cycles until `shutdown` resolves: one right away, then one shortly after each
    /// minute boundary ([`EngineConfig::wake_delay_seconds`]). Before each cycle the loader
    /// (see [`Engine::with_loader`]) reloads the checkers. A cycle in flight when `shutdown`
    /// resolves is finished first. A cycle that overruns a minute is followed at once by the
    /// next; the skipped minutes are caught up inside their horizon.
    pub async fn run<S: Future<Output = ()>>(&self, clock: &dyn Clock, shutdown: S) {
        self.run_with(clock, shutdown, |_| {}).await;
    }

    /// [`Engine::run`], calling `on_cycle` with each cycle's report.
    pub async fn run_with<S, F>(&self, clock: &dyn Clock, shutdown: S, mut on_cycle: F)
    where
        S: Future<Output = ()>,
        F: FnMut(&CycleReport),
    {
        let shutdown = shutdown.fuse();
        futures::pin_mut!(shutdown);
        let mut stopping = false;
        while !stopping {
            if let Err(e) = self.reload() {
                warn!(error = %e, "cannot reload checkers; keeping the previous set");
            }
            let now = clock.now();
            let cycle = self.run_cycle(now).fuse();
            futures::pin_mut!(cycle);
            // Keep polling `shutdown` during the cycle (signal futures register on first
            // poll) but never cancel the cycle itself.
            let report = loop {
                futures::select_biased! {
                    report = cycle => break report,
                    () = shutdown => {
                        info!("shutdown requested; finishing the cycle in flight");
                        stopping = true;
                    }
                }
            };
            info!("{}", report.summary());
            on_cycle(&report);
            if stopping {
                break;
            }
            let wake = minute_floor(now) + MINUTE + self.config.wake_delay_seconds.max(0);
            let sleep = clock.sleep_until(wake).fuse();
            futures::pin_mut!(sleep);
            futures::select_biased! {
                () = shutdown => stopping = true,
                () = sleep => {}
            }
        }
        info!("engine stopped");
    }
}

/// Per checker (by index): 0 without a parent among `checkers`, else one more than its
/// parent's depth. A cycle of parents (refused by [`crate::load_dir`], possible with
/// [`Engine::with_checkers`]) is cut where it closes.
fn parent_depths(checkers: &[Checker]) -> Vec<usize> {
    let index: BTreeMap<&str, usize> = checkers
        .iter()
        .enumerate()
        .rev()
        .map(|(i, c)| (c.name.as_str(), i))
        .collect();
    (0..checkers.len())
        .map(|start| {
            let mut depth = 0;
            let mut at = start;
            while let Some(&parent) = checkers[at].parent().and_then(|p| index.get(p)) {
                if parent == start || depth >= checkers.len() {
                    break;
                }
                depth += 1;
                at = parent;
            }
            depth
        })
        .collect()
}

/// One semaphore per source name, so hung queries on one source never take the slots of
/// checkers on another; checkers no longer loaded (only deliveries left) share one more.
struct SourceLimits {
    per_source: usize,
    sources: BTreeMap<String, Arc<tokio::sync::Semaphore>>,
    deliveries: Arc<tokio::sync::Semaphore>,
}

impl SourceLimits {
    fn new(per_source: usize) -> Self {
        let per_source = per_source.max(1);
        SourceLimits {
            per_source,
            sources: BTreeMap::new(),
            deliveries: Arc::new(tokio::sync::Semaphore::new(per_source)),
        }
    }

    fn of(&mut self, source: &str) -> Arc<tokio::sync::Semaphore> {
        let per_source = self.per_source;
        self.sources
            .entry(source.to_string())
            .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(per_source)))
            .clone()
    }

    fn for_deliveries_only(&self) -> Arc<tokio::sync::Semaphore> {
        self.deliveries.clone()
    }
}

/// Spawns one checker's work, bounded by the semaphore; a panic becomes an `ERROR` outcome.
fn spawn_guarded<F>(
    tasks: &mut JoinSet<CheckerOutcome>,
    permits: &Arc<tokio::sync::Semaphore>,
    context: &Arc<CycleContext>,
    checker: String,
    work: F,
) where
    F: Future<Output = CheckerOutcome> + Send + 'static,
{
    let permits = permits.clone();
    let context = context.clone();
    tasks.spawn(async move {
        // The semaphore is never closed, so acquiring only fails if it were; run anyway.
        let _permit = permits.acquire_owned().await.ok();
        match AssertUnwindSafe(work).catch_unwind().await {
            Ok(outcome) => outcome,
            Err(_) => {
                let text =
                    "internal error: checking panicked (a bug in the source, store or handler)"
                        .to_string();
                warn!(checker = %checker, "checker task panicked");
                let zone = context.config.default_zone;
                let event = context.error_event(
                    &checker,
                    serde_json::json!({}),
                    zone,
                    ErrorKind::Internal,
                    text,
                );
                context.deliver_error(&event).await;
                CheckerOutcome {
                    checker,
                    errors: vec![event],
                    ..CheckerOutcome::default()
                }
            }
        }
    });
}

/// One checker's work order for a cycle.
struct CheckerJob {
    /// Its outbox entries from earlier cycles, ascending `(minute, requirement_index)`.
    pending: Vec<PendingDelivery>,
    may_have_unseen: bool,
    checkers: Arc<[Checker]>,
    index: usize,
}

/// Everything a checker task needs; shared by the tasks of one cycle.
struct CycleContext {
    source: Arc<dyn RowGetter>,
    store: Arc<dyn Store>,
    handler: Arc<dyn CheckHandler>,
    purger: Arc<dyn Purger>,
    config: EngineConfig,
    clean: Arc<Mutex<HashSet<String>>>,
    now: i64,
    minute: i64,
}

/// The result of steps 1-6a for a checker.
struct Evaluated {
    records: Vec<CheckRecord>,
    purge_before: Option<i64>,
    /// Some of `records` were already in the check log: another runner on the same store
    /// recorded those minutes between this cycle's `last_minute` read and its write. Its
    /// records, not these, are the truth, so this cycle's records are delivered from the
    /// outbox (see [`CycleContext::recorded_here`]).
    recorded_elsewhere: bool,
}

impl CycleContext {
    /// steps 1-7 of a cycle (README "How a cycle works") for one checker.
    async fn check(self: Arc<Self>, job: CheckerJob) -> CheckerOutcome {
        let checker = &job.checkers[job.index];
        let zone = checker.zone(self.config.default_zone);
        let mut outcome = CheckerOutcome {
            checker: checker.name.clone(),
            ..CheckerOutcome::default()
        };
        // Eviction by age, also in cycles without a fetch: nothing older can be handed over
        // after this cycle (see "Rows that are not stored").
        self.store
            .set_reachable_from(&checker.name, reachable_from(checker, self.minute));
        let evaluated = self.evaluate(checker, zone, &mut outcome).await;
        let recorded_here = match &evaluated {
            Some(e) if e.recorded_elsewhere => {
                self.recorded_here(&checker.name, &e.records, &job.pending)
                    .await
            }
            _ => Vec::new(),
        };
        let records = match &evaluated {
            Some(e) if e.recorded_elsewhere => recorded_here.as_slice(),
            Some(e) => e.records.as_slice(),
            None => &[],
        };
        self.deliver_checks(&mut outcome, job.pending, records, job.may_have_unseen)
            .await;
        if evaluated.is_some() {
            if let Some(cutoff) = self.purger.check_log_cutoff(checker, self.now) {
                let purged = self.store.purge_checks(&checker.name, cutoff).await;
                outcome.purged_checks = self
                    .purged(checker, zone, &mut outcome, purged, || {
                        format!("check records before {cutoff}")
                    })
                    .await;
            }
        }
        if let Some(cutoff) = evaluated.and_then(|e| e.purge_before) {
            if checker.is_push() {
                for kind in &crate::ping::PingKind::ALL[1..] {
                    let series = crate::ping::series(&checker.name, *kind);
                    if let Err(e) = self.store.purge(&series, cutoff).await {
                        warn!(checker = %checker.name, error = %e, "cannot purge old pings");
                    }
                }
            }
            let purged = self.store.purge(&checker.name, cutoff).await;
            outcome.purged_rows = self
                .purged(checker, zone, &mut outcome, purged, || {
                    format!("rows older than {cutoff}")
                })
                .await;
        }
        for event in &outcome.errors {
            self.deliver_error(event).await;
        }
        outcome
    }

    /// Steps 1-6a: candidates, fetch, first-seen store, count, judge, record. `None` when
    /// nothing was recorded (no candidate, or a failure already reported in `outcome`).
    async fn evaluate(
        &self,
        checker: &Checker,
        zone: Tz,
        outcome: &mut CheckerOutcome,
    ) -> Option<Evaluated> {
        if checker.per_host() {
            // A template: each host's sub-check (`NAME@HOST`, crate::ping::with_hosts) is
            // checked on its own; the template has no rows of its own to judge.
            return None;
        }
        let name = checker.name.as_str();
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
            let text = clock_behind_text(last, self.minute);
            self.fail(checker, zone, outcome, ErrorKind::ClockBehind, text)
                .await;
            return None;
        }
        let own = if last.is_some() && checker.requirements.iter().any(|r| r.delay_seconds > 0) {
            match self.store.last_checked_minutes(name).await {
                Ok(own) => own,
                Err(e) => {
                    let text = format!("store: cannot read the last checked minutes: {e}");
                    self.fail(checker, zone, outcome, ErrorKind::Store, text)
                        .await;
                    return None;
                }
            }
        } else {
            Vec::new()
        };
        let progress = requirement_progress(checker, last, &own);
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
            return None;
        }

        let windows: Vec<(i64, i64)> = candidates
            .iter()
            .map(|&(m, r)| {
                let lookback =
                    i64::try_from(checker.requirements[r].lookback_seconds).unwrap_or(i64::MAX);
                (m.saturating_sub(lookback), m)
            })
            .collect();
        let mut admit = Admit::new(self, checker, last.is_some(), &windows);
        let fetched = self.fetch(checker, outcome, &mut admit).await;
        outcome.rows_fetched = admit.rows_fetched;
        outcome.new_rows = admit.new_rows;
        outcome.rejected_rows = admit.rejected;
        if let Some(e) = admit.store_error.take() {
            let text = format!("store: cannot store fetched rows: {e}");
            self.fail(checker, zone, outcome, ErrorKind::Store, text)
                .await;
            return None;
        }
        if let Err(e) = fetched {
            // Batches stored before the failure stay: they are real first-seen rows.
            let text = format!("fetch failed: {e}");
            self.fail(checker, zone, outcome, ErrorKind::Fetch, text)
                .await;
            return None;
        }
        let purge_before = admit.purge_before();
        let Admit {
            rejected,
            rejected_samples,
            ..
        } = admit;

        let counts = match self.count_windows(checker, &candidates, &windows).await {
            Ok(counts) if counts.len() == windows.len() => counts,
            Ok(counts) => {
                let text = format!(
                    "store: asked for {} window counts, got {}",
                    windows.len(),
                    counts.len()
                );
                self.fail(checker, zone, outcome, ErrorKind::Store, text)
                    .await;
                return None;
            }
            Err(e) => {
                let text = format!("store: cannot count rows: {e}");
                self.fail(checker, zone, outcome, ErrorKind::Store, text)
                    .await;
                return None;
            }
        };

        let records: Vec<CheckRecord> = candidates
            .iter()
            .zip(counts)
            .map(|(&(minute, index), count)| {
                let requirement = &checker.requirements[index];
                let status = Status::judge(count, requirement.min, requirement.max);
                check_record(checker, index, minute, zone, count, status)
            })
            .collect();
        let records = with_missed(records, missed, checker, zone);
        let recorded_elsewhere = match self.store.record_checks(name, &records).await {
            Ok(new) => usize::try_from(new).is_ok_and(|new| new < records.len()),
            Err(e) => {
                let text = format!("store: cannot record checks: {e}");
                self.fail(checker, zone, outcome, ErrorKind::Store, text)
                    .await;
                return None;
            }
        };
        if recorded_elsewhere {
            warn!(
                checker = %name,
                "some minutes were already recorded (another runner on this store?); \
                 delivering only the recorded checks"
            );
        }
        outcome.checks.clone_from(&records);

        if rejected > 0 {
            let mut text = format!(
                "{rejected} rows rejected (checks used the {} good rows)",
                outcome.rows_fetched
            );
            if !rejected_samples.is_empty() {
                text.push_str(": ");
                text.push_str(&rejected_samples.join("; "));
            }
            self.fail(checker, zone, outcome, ErrorKind::RejectedRows, text)
                .await;
        } else {
            self.clear_error(name).await;
        }
        Some(Evaluated {
            records,
            purge_before,
            recorded_elsewhere,
        })
    }

    /// Step 5's counts, one per candidate: for a push checker, each requirement counts the
    /// series of the ping kind it names ([`crate::ping::series`]), one store call per kind.
    async fn count_windows(
        &self,
        checker: &Checker,
        candidates: &[(i64, usize)],
        windows: &[(i64, i64)],
    ) -> Result<Vec<u64>, crate::StoreError> {
        if !checker.is_push() {
            return self.store.count_windows(&checker.name, windows).await;
        }
        let mut counts = vec![0; windows.len()];
        for kind in crate::ping::PingKind::ALL {
            let picked: Vec<usize> = (0..candidates.len())
                .filter(|&i| checker.requirements[candidates[i].1].pings == kind)
                .collect();
            if picked.is_empty() {
                continue;
            }
            let of_kind: Vec<(i64, i64)> = picked.iter().map(|&i| windows[i]).collect();
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

    /// Step 4's fetch under the timeout, logged: the source hands its rows to `admit` batch
    /// by batch, and each batch is stored before the next is read.
    async fn fetch(
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
        let rows = admit.rows_fetched;
        let batches = admit.batches;
        if elapsed > self.config.slow_fetch_warning {
            warn!(checker = %checker.name, source = %checker.source, millis, rows, batches, "slow fetch");
        } else {
            debug!(checker = %checker.name, source = %checker.source, millis, rows, batches, "fetched");
        }
        result
    }

    /// Reports a problem of `checker`: remembered in the store, logged, and queued as an
    /// `ERROR` event (delivered at the end of the checker's work).
    /// How many a purge deleted; a failed purge is a failure like every other (an ERROR event
    /// and the checker's last error, so `status` shows it) and counts 0.
    async fn purged(
        &self,
        checker: &Checker,
        zone: Tz,
        outcome: &mut CheckerOutcome,
        result: Result<u64, crate::store::StoreError>,
        what: impl FnOnce() -> String,
    ) -> u64 {
        match result {
            Ok(n) => n,
            Err(e) => {
                let text = format!("store: cannot purge {}: {e}", what());
                self.fail(checker, zone, outcome, ErrorKind::Store, text)
                    .await;
                0
            }
        }
    }

    async fn fail(
        &self,
        checker: &Checker,
        zone: Tz,
        outcome: &mut CheckerOutcome,
        kind: ErrorKind,
        text: String,
    ) {
        warn!(checker = %checker.name, error = %text, "checker error");
        self.remember_error(&checker.name, &text).await;
        let event = self.error_event(&checker.name, checker.extra.clone(), zone, kind, text);
        outcome.errors.push(event);
    }

    async fn remember_error(&self, name: &str, text: &str) {
        self.lock_clean().remove(name);
        if let Err(e) = self
            .store
            .set_last_error(name, Some((self.minute, text)))
            .await
        {
            warn!(checker = %name, error = %e, "cannot store the last error");
        }
    }

    async fn clear_error(&self, name: &str) {
        if self.lock_clean().contains(name) {
            return;
        }
        match self.store.set_last_error(name, None).await {
            Ok(()) => {
                self.lock_clean().insert(name.to_string());
            }
            Err(e) => warn!(checker = %name, error = %e, "cannot clear the last error"),
        }
    }

    fn lock_clean(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.clean.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn error_event(
        &self,
        checker: &str,
        extra: serde_json::Value,
        zone: Tz,
        kind: ErrorKind,
        error: String,
    ) -> ErrorEvent {
        ErrorEvent {
            kind,
            checker: checker.to_string(),
            minute: self.minute,
            minute_local: local_rfc3339(self.minute, zone),
            timezone: zone.name().to_string(),
            status: Status::Error,
            error,
            extra,
        }
    }

    /// A checker file that failed to load: one `ERROR` event per cycle until it is fixed,
    /// carrying `extra`, the checker's last good `__EXTRA__` in this process (`{}` if none).
    async fn report_load_error(
        &self,
        error: &CheckerFileError,
        extra: serde_json::Value,
    ) -> CheckerOutcome {
        let name = load_error_checker(error);
        let text = format!("cannot load checker file: {error}");
        warn!(checker = %name, error = %text, "checker file not loaded");
        self.remember_error(&name, &text).await;
        let zone = self.config.default_zone;
        let event = self.error_event(&name, extra, zone, ErrorKind::CheckerFile, text);
        self.deliver_error(&event).await;
        CheckerOutcome {
            checker: name,
            errors: vec![event],
            ..CheckerOutcome::default()
        }
    }
}

/// `records` with a `MISSED` record (count 0) for each missed pair, ascending
/// `(minute, requirement_index)`.
fn with_missed(
    mut records: Vec<CheckRecord>,
    missed: Vec<(i64, usize)>,
    checker: &Checker,
    zone: Tz,
) -> Vec<CheckRecord> {
    if missed.is_empty() {
        return records;
    }
    records.extend(
        missed
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
    }
}

/// The start of the oldest window any requirement of `checker` can reach from the cycle at
/// `minute` on: `min_r(M_r - (H_r - 1) * 60 - L_r)` with `M_r = minute - D_r` (its
/// `DELAYSECONDS` in whole minutes). With unchanged requirements no check can ever count a
/// row before it: a later cycle at `M' >= minute` has candidates no older than
/// `M'_r - (H_r - 1) * 60`; one at an earlier `M'` (a clock set back) only has candidates
/// after the last checked minute, which is at least one of this cycle's candidates.
fn reachable_from(checker: &Checker, minute: i64) -> i64 {
    checker
        .requirements
        .iter()
        .map(|r| {
            let lookback = i64::try_from(r.lookback_seconds).unwrap_or(i64::MAX);
            r.judged_up_to(minute)
                .saturating_sub(r.horizon_minutes().saturating_sub(1).saturating_mul(MINUTE))
                .saturating_sub(lookback)
        })
        .min()
        .unwrap_or(i64::MIN)
}

/// The `ClockBehind` error text: names the future minute and the way out.
fn clock_behind_text(last: i64, minute: i64) -> String {
    format!(
        "the last checked minute {} ({last}) is after this cycle's minute {} ({minute}): \
         the clock went back or a run used a future --now; nothing is checked until the \
         clock passes it, or remove the future records with `dwmon forget --after {minute}`",
        local_rfc3339(last, chrono_tz::UTC),
        local_rfc3339(minute, chrono_tz::UTC),
    )
}

/// `minute` as RFC 3339 with the offset of `zone`.
pub(crate) fn local_rfc3339(minute: i64, zone: Tz) -> String {
    chrono::DateTime::from_timestamp(minute, 0)
        .map(|t| {
            t.with_timezone(&zone)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
        })
        .unwrap_or_else(|| minute.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_minutes_carry_the_zone_offset() {
        assert_eq!(
            local_rfc3339(1_700_056_800, chrono_tz::America::New_York),
            "2023-11-15T09:00:00-05:00"
        );
        assert_eq!(
            local_rfc3339(0, chrono_tz::UTC),
            "1970-01-01T00:00:00+00:00"
        );
    }
}
