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
//!    when `MINNUM <= count <= MAXNUM`, else `BAD`; a push checker's requirement with
//!    `MINDURATION` / `MAXDURATION` is also `BAD` when a run in its window broke one (the
//!    runs read from [`Engine::with_ping_log`], judged by [`crate::runs::judge_runs`]).
//!    Due minutes after `last` that have left
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
//! 7. Old rows and check records are purged: the [`Purger`] says how much to keep (its
//!    [`Cutoffs`](crate::Cutoffs)), the engine when ([`EngineConfig::purge_timing`]: by
//!    default about once an hour per checker, at a minute picked from its name, so that
//!    purges are spread over the hour instead of piling up in one cycle; see [`purge_slot`]).
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
//! - On later cycles, rows older than both the purger's rows cutoff
//!   ([`Cutoffs::rows`](crate::Cutoffs::rows), whether or not this cycle purges) and every
//!   window of this cycle: they could not be counted now and a purge deletes them, so storing them changes
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
mod checker;
mod clock;
mod config;
mod delivery;
mod due;
mod failure;
mod monitors;
mod purge;
mod report;

pub use clock::{Clock, SystemClock};
pub use config::EngineConfig;
use delivery::OutboxView;
pub use due::{
    candidates, missed_minutes, oldest_chunk, requirement_progress, MAX_MISSED_PER_CYCLE,
};
pub use purge::{purge_slot, PurgeTiming};
use report::merge;
pub use report::{CheckerOutcome, CycleReport};

use crate::checker_file::{Checker, CheckerFileError, LoadReport};
use crate::handler::CheckHandler;
use crate::purger::{DefaultPurger, Purger};
use crate::record::{ErrorEvent, ErrorKind};
use crate::source::RowGetter;
use crate::store::{CheckerClaim, PendingDelivery, Store};
use crate::{minute_floor, MINUTE};
use chrono_tz::Tz;
use futures::FutureExt;
use std::collections::HashMap;
use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use tokio::task::JoinSet;
use tracing::{info, warn};

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
    /// Where push checkers' runs are read for `MINDURATION` / `MAXDURATION`
    /// ([`Engine::with_ping_log`]).
    ping_log: Option<Arc<dyn crate::ping_log::PingLog>>,
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
            ping_log: None,
        }
    }

    /// Reads push checkers' runs from `log` (where `dwmon serve` commits the pings: the same
    /// SQLite store, or the [`MemoryPingLog`](crate::ping_log::MemoryPingLog) of the server),
    /// for the `MINDURATION` / `MAXDURATION` bounds ([`crate::runs`]). Without one, a
    /// requirement with those bounds is an `ERROR` ([`ErrorKind::Store`]) each cycle.
    pub fn with_ping_log(mut self, log: Arc<dyn crate::ping_log::PingLog>) -> Self {
        self.ping_log = Some(log);
        self
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
        let (checkers, load_errors) = {
            let set = self.lock_set();
            (set.checkers.clone(), set.load_errors_with_extra())
        };
        let claims = self.claim(&checkers, now).await;
        let expiring: Vec<CheckerClaim> = match &claims {
            Ok(claims) => claims
                .values()
                .filter(|c| c.until < i64::MAX)
                .cloned()
                .collect(),
            Err(_) => Vec::new(),
        };
        let context = Arc::new(self.context(now, claims));
        let work = self.run_claimed(&context, checkers, load_errors, now, started);
        self.while_renewing(&context, expiring, work).await
    }

    /// The cycle's work once its checkers are claimed.
    async fn run_claimed(
        &self,
        context: &Arc<CycleContext>,
        checkers: Arc<[Checker]>,
        load_errors: Vec<(CheckerFileError, serde_json::Value)>,
        now: i64,
        started: std::time::Instant,
    ) -> CycleReport {
        let (mut backlog, outbox) = context.read_outbox().await;
        let plan = plan(context, &checkers, &mut backlog, &outbox);
        let mut cycle = Cycle::new(context.clone(), self.config.max_concurrent_checkers);
        let mut waves = plan.waves.into_iter();
        if let Some(first) = waves.next() {
            cycle.spawn_wave(&checkers, first);
        }
        self.forget_unloaded(&plan.names);
        let monitor_backlog = monitors::take_backlog(&mut backlog);
        // Pending deliveries of checkers no longer loaded still reach the handler.
        cycle.spawn_deliveries(backlog, &outbox);
        cycle.report_duplicates(plan.duplicates).await;
        let failing = cycle.report_load_errors(load_errors).await;
        cycle.join_waves(&checkers, waves).await;
        // Monitors read the rows the checkers just stored: after every checker.
        let monitored = monitors::Work {
            monitors: &self.monitors,
            checkers: &checkers,
            failing: &failing,
            backlog: monitor_backlog,
            outbox: &outbox,
        };
        for outcome in context.run_monitors(monitored).await {
            merge(&mut cycle.outcomes, outcome);
        }
        cycle.report(now, started)
    }

    /// Runs `work` while renewing `claims` every [`EngineConfig::claim_renew_interval`]
    /// (first one interval after the start), each time those whose checker's task has not
    /// finished yet ([`CheckLog::renew`](crate::store::CheckLog::renew)); stops with `work`.
    async fn while_renewing<T>(
        &self,
        context: &CycleContext,
        claims: Vec<CheckerClaim>,
        work: impl Future<Output = T>,
    ) -> T {
        let interval = self.config.claim_renew_interval;
        if claims.is_empty() || interval.is_zero() {
            return work.await;
        }
        let renewing = renew_claims(self.store.as_ref(), context, claims, interval).fuse();
        let work = work.fuse();
        futures::pin_mut!(work, renewing);
        futures::select_biased! {
            out = work => out,
            never = renewing => match never {},
        }
    }

    /// What the checker tasks of the cycle at `now` share.
    fn context(
        &self,
        now: i64,
        claims: Result<HashMap<String, CheckerClaim>, String>,
    ) -> CycleContext {
        CycleContext {
            claims,
            source: self.source.clone(),
            store: self.store.clone(),
            handler: self.handler.clone(),
            purger: self.purger.clone(),
            config: self.config.clone(),
            clean: self.clean.clone(),
            ping_log: self.ping_log.clone(),
            now,
            minute: minute_floor(now),
            finished: Mutex::default(),
        }
    }

    /// Claims this cycle's checkers and monitors in one store call (see
    /// [`CheckLog::claim`](crate::store::CheckLog::claim)): the ones granted are checked here,
    /// the others by the runner that holds them. The store's error is reported by each
    /// checker's record step.
    async fn claim(
        &self,
        checkers: &[Checker],
        now: i64,
    ) -> Result<HashMap<String, CheckerClaim>, String> {
        let mut names: Vec<String> = checkers.iter().map(|c| c.name.clone()).collect();
        names.extend(
            self.monitors
                .iter()
                .map(|m| crate::monitor::record_name(m.name())),
        );
        match self.store.claim(&names, now).await {
            Ok(claims) => Ok(claims.into_iter().map(|c| (c.checker.clone(), c)).collect()),
            Err(e) => {
                warn!(error = %e, "cannot claim the checkers; nothing is recorded this cycle");
                Err(e.to_string())
            }
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

/// Renews `held` every `interval` until dropped: each time the claims whose checker has not
/// finished ([`CycleContext::finished`]); a claim the store reports lost is renewed no more
/// (its record will be refused by the fence: another runner checks those minutes).
async fn renew_claims(
    store: &dyn Store,
    context: &CycleContext,
    mut held: Vec<CheckerClaim>,
    interval: std::time::Duration,
) -> std::convert::Infallible {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        {
            let finished = context.lock_finished();
            held.retain(|claim| !finished.contains(&claim.checker));
        }
        if held.is_empty() {
            std::future::pending::<()>().await;
        }
        match store.renew(&held).await {
            Ok(renewed) => {
                for lost in held
                    .iter()
                    .filter(|c| !renewed.iter().any(|r| r.checker == c.checker))
                {
                    warn!(
                        checker = %lost.checker,
                        fence = lost.fence,
                        "lost the claim while checking (another runner took the checker \
                         over); its checks will be refused, the other runner records them"
                    );
                }
                held = renewed;
            }
            Err(e) => warn!(
                error = %e,
                claims = held.len(),
                "cannot renew the claims; trying again at the next renewal"
            ),
        }
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

/// The checkers of a cycle grouped into waves, and the duplicate names reported instead.
struct Plan {
    /// Jobs by depth: checkers with a parent run after it, so that a child's checks are
    /// judged by the alerting after its parent's of the same minute.
    waves: Vec<Vec<CheckerJob>>,
    /// The names of the checkers run.
    names: HashSet<String>,
    /// `ERROR` events of checkers sharing a name with an earlier one (which share its rows
    /// and checks, so only the first one is checked).
    duplicates: Vec<ErrorEvent>,
}

/// Groups the checkers into waves by depth, each job with its outbox entries (taken from
/// `backlog`).
fn plan(
    context: &CycleContext,
    checkers: &Arc<[Checker]>,
    backlog: &mut BTreeMap<String, Vec<PendingDelivery>>,
    outbox: &OutboxView,
) -> Plan {
    let depths = parent_depths(checkers);
    let mut waves: BTreeMap<usize, Vec<CheckerJob>> = BTreeMap::new();
    let mut names = HashSet::new();
    let mut duplicates = Vec::new();
    for (index, checker) in checkers.iter().enumerate() {
        let name = checker.name.clone();
        if !names.insert(name.clone()) {
            let zone = checker.zone(context.config.default_zone);
            let text = format!("duplicate checker name {name:?}: only the first one is checked");
            let extra = checker.extra.clone();
            let kind = ErrorKind::CheckerFile;
            duplicates.push(context.error_event(&name, extra, zone, kind, text));
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
    Plan {
        waves: waves.into_values().collect(),
        names,
        duplicates,
    }
}

/// A cycle in flight: the checker tasks and the outcomes gathered so far.
struct Cycle {
    context: Arc<CycleContext>,
    limits: SourceLimits,
    tasks: JoinSet<CheckerOutcome>,
    outcomes: BTreeMap<String, CheckerOutcome>,
}

impl Cycle {
    fn new(context: Arc<CycleContext>, per_source: usize) -> Self {
        Cycle {
            context,
            limits: SourceLimits::new(per_source),
            tasks: JoinSet::new(),
            outcomes: BTreeMap::new(),
        }
    }

    /// Starts the checkers of one wave, each under its source's limit.
    fn spawn_wave(&mut self, checkers: &[Checker], jobs: Vec<CheckerJob>) {
        for job in jobs {
            let checker = &checkers[job.index];
            let permits = self.limits.of(&checker.source);
            let work = self.context.clone().check(job);
            spawn_guarded(
                &mut self.tasks,
                &permits,
                &self.context,
                checker.name.clone(),
                work,
            );
        }
    }

    /// Starts the deliveries of the outbox entries left in `backlog` (of checkers no longer
    /// loaded).
    fn spawn_deliveries(
        &mut self,
        backlog: BTreeMap<String, Vec<PendingDelivery>>,
        outbox: &OutboxView,
    ) {
        for (name, pending) in backlog {
            let context = self.context.clone();
            let may_have_unseen = outbox.may_have_unseen(&name);
            let checker = name.clone();
            let work = async move {
                let mut outcome = CheckerOutcome::named(&checker);
                context
                    .deliver_checks(&mut outcome, pending, &[], may_have_unseen)
                    .await;
                context.deliver_errors(&outcome).await;
                outcome
            };
            let permits = self.limits.for_deliveries_only();
            spawn_guarded(&mut self.tasks, &permits, &self.context, name, work);
        }
    }

    async fn report_duplicates(&mut self, duplicates: Vec<ErrorEvent>) {
        for event in duplicates {
            self.context.deliver_error(&event).await;
            let outcome = CheckerOutcome {
                checker: event.checker.clone(),
                errors: vec![event],
                ..CheckerOutcome::default()
            };
            merge(&mut self.outcomes, outcome);
        }
    }

    /// Reports the files that failed to load; answers the checkers they stand for.
    async fn report_load_errors(
        &mut self,
        load_errors: Vec<(CheckerFileError, serde_json::Value)>,
    ) -> Vec<String> {
        let failing = load_errors
            .iter()
            .map(|(error, _)| load_error_checker(error))
            .collect();
        for (error, extra) in load_errors {
            let outcome = self.context.report_load_error(&error, extra).await;
            merge(&mut self.outcomes, outcome);
        }
        failing
    }

    /// Waits for the running tasks, then runs the remaining waves one after the other.
    async fn join_waves(
        &mut self,
        checkers: &[Checker],
        mut waves: impl Iterator<Item = Vec<CheckerJob>>,
    ) {
        loop {
            while let Some(joined) = self.tasks.join_next().await {
                match joined {
                    Ok(outcome) => merge(&mut self.outcomes, outcome),
                    Err(e) => warn!(error = %e, "checker task failed"),
                }
            }
            match waves.next() {
                Some(wave) => self.spawn_wave(checkers, wave),
                None => break,
            }
        }
    }

    fn report(self, now: i64, started: std::time::Instant) -> CycleReport {
        let mut outcomes = self.outcomes;
        for (name, outcome) in &mut outcomes {
            outcome.checker.clone_from(name);
        }
        CycleReport {
            now,
            minute: minute_floor(now),
            checkers: outcomes.into_values().collect(),
            duration: started.elapsed(),
        }
    }
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
        let outcome = match AssertUnwindSafe(work).catch_unwind().await {
            Ok(outcome) => outcome,
            Err(_) => {
                warn!(checker = %checker, "checker task panicked");
                let text =
                    "internal error: checking panicked (a bug in the source, store or handler)";
                context
                    .report_panic(checker.clone(), ErrorKind::Internal, text)
                    .await
            }
        };
        context.lock_finished().insert(checker);
        outcome
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
    /// This runner's claims of the cycle, by checker (or the store's error).
    claims: Result<HashMap<String, CheckerClaim>, String>,
    source: Arc<dyn RowGetter>,
    store: Arc<dyn Store>,
    handler: Arc<dyn CheckHandler>,
    purger: Arc<dyn Purger>,
    config: EngineConfig,
    clean: Arc<Mutex<HashSet<String>>>,
    ping_log: Option<Arc<dyn crate::ping_log::PingLog>>,
    now: i64,
    minute: i64,
    /// The checkers whose task of this cycle has finished: their claims need no renewal.
    finished: Mutex<HashSet<String>>,
}

impl CycleContext {
    fn lock_finished(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.finished
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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
