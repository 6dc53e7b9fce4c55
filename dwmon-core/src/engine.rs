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

mod monitors;

use crate::checker_file::{Checker, CheckerFileError, LoadReport};
use crate::handler::CheckHandler;
use crate::purger::{DefaultPurger, Purger};
use crate::record::{CheckRecord, ErrorEvent, ErrorKind, Event, Status};
use crate::source::{FetchRequest, Fetched, RowGetter, RowSink, SourceError};
use crate::store::{PendingDelivery, Store};
use crate::{minute_floor, schedule, MINUTE};
use async_trait::async_trait;
use chrono_tz::Tz;
use futures::FutureExt;
use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

/// How the engine behaves; every field has a production default ([`EngineConfig::default`]).
///
/// ```
/// use std::time::Duration;
/// let config = dwmon_core::EngineConfig {
///     default_zone: chrono_tz::Europe::Berlin,
///     fetch_timeout: Duration::from_secs(20),
///     ..Default::default()
/// };
/// # assert_eq!(config.max_concurrent_checkers, 8);
/// ```
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Zone for checkers without `__TIMEZONE__` (default UTC).
    pub default_zone: Tz,
    /// How many checkers of one source (`__SOURCE__` name) are fetched and evaluated at the
    /// same time (default 8; 0 acts as 1). Each source has its own limit, so hung queries on
    /// one source never take the slots of another source's checkers.
    pub max_concurrent_checkers: usize,
    /// A fetch taking longer is abandoned and reported as an `ERROR` event (default 60 s).
    pub fetch_timeout: Duration,
    /// Fetches slower than this are logged as warnings (default 10 s).
    pub slow_fetch_warning: Duration,
    /// A handler call taking longer counts as a failed delivery (default 30 s).
    pub delivery_timeout: Duration,
    /// First retry delay after a failed delivery, in seconds; doubles per failure (default 30).
    pub retry_base_seconds: i64,
    /// Longest retry delay, in seconds (default 3600).
    pub retry_max_seconds: i64,
    /// A handler target ([`CheckHandler::targets`]) whose oldest undelivered record of a
    /// checker was first tried more than this many seconds ago and fails again is given up
    /// for all of that checker's records it still owes, with one `ERROR` event of kind
    /// [`ErrorKind::DeliveryGivenUp`] (default 86 400, a day; 0 or less: never give up).
    pub delivery_give_up_seconds: i64,
    /// At most this many outbox entries are read per cycle (default 10 000).
    pub outbox_batch_limit: usize,
    /// [`Engine::run`] wakes this many seconds after each minute boundary, so rows written
    /// right at the boundary are visible (default 2).
    pub wake_delay_seconds: i64,
    /// Rows stamped more than this many seconds after `now` are rejected as far-future
    /// (counted and reported in the `rejected_rows` ERROR event, never stored, where
    /// they would otherwise sit until a window reaches them). Default one day, which tolerates
    /// clock skew and time-zone mistakes of a few hours while catching seconds/milliseconds
    /// mix-ups and placeholder dates.
    pub max_future_seconds: i64,
    /// At most about this many checks of one checker are made per cycle (default 10 000):
    /// a long catch-up (a 366-day window after a year away is half a million due minutes) is
    /// made oldest first, a chunk per cycle, each chunk recorded, so memory stays bounded.
    /// A chunk always ends at a whole minute (every requirement due then is in it); 0 acts
    /// as 1.
    pub max_checks_per_cycle: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            default_zone: chrono_tz::UTC,
            max_concurrent_checkers: 8,
            fetch_timeout: Duration::from_secs(60),
            slow_fetch_warning: Duration::from_secs(10),
            delivery_timeout: Duration::from_secs(30),
            retry_base_seconds: 30,
            retry_max_seconds: 3600,
            delivery_give_up_seconds: 86_400,
            outbox_batch_limit: 10_000,
            max_checks_per_cycle: 10_000,
            wake_delay_seconds: 2,
            max_future_seconds: 86_400,
        }
    }
}

impl EngineConfig {
    /// Seconds to wait before retrying a delivery that has already failed `attempts` times
    /// (0 for the first failure): `retry_base_seconds * 2^attempts`, at most
    /// `retry_max_seconds`.
    pub fn retry_delay(&self, attempts: u32) -> i64 {
        let factor = 1_i64.checked_shl(attempts.min(62)).unwrap_or(i64::MAX);
        self.retry_base_seconds
            .max(1)
            .saturating_mul(factor)
            .min(self.retry_max_seconds.max(1))
    }
}

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
    /// ([`EngineConfig::delivery_give_up_seconds`]).
    pub given_up: u64,
    /// Stored rows deleted by the purge step.
    pub purged_rows: u64,
    /// Check records deleted by the purge step ([`Purger::check_log_cutoff`]).
    pub purged_checks: u64,
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

/// A source of time for [`Engine::run`]. [`SystemClock`] is the real one; tests use a fake
/// (see [`crate::testutil::TokioClock`]) so the loop runs under Tokio's paused time.
#[async_trait]
pub trait Clock: Send + Sync {
    /// The current Unix time in seconds.
    fn now(&self) -> i64;
    /// Returns once [`Clock::now`] is at least `epoch_seconds`.
    async fn sleep_until(&self, epoch_seconds: i64);
}

/// The wall clock: the only place in dwmon-core that reads it.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> i64 {
        chrono::Utc::now().timestamp()
    }

    async fn sleep_until(&self, epoch_seconds: i64) {
        let target = chrono::DateTime::from_timestamp(epoch_seconds, 0).unwrap_or_default();
        let wait = (target - chrono::Utc::now()).to_std().unwrap_or_default();
        tokio::time::sleep(wait).await;
    }
}

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

fn merge(outcomes: &mut BTreeMap<String, CheckerOutcome>, outcome: CheckerOutcome) {
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

/// Which checkers may have outbox entries this cycle did not read (the read was truncated at
/// `outbox_batch_limit`, or failed). Their new records stay in the outbox, so that the
/// handler never sees a checker's checks out of order.
enum OutboxView {
    Complete,
    /// Entries were read up to this checker (inclusive); it and later names may have more.
    TruncatedAt(String),
    Unknown,
}

impl OutboxView {
    fn may_have_unseen(&self, checker: &str) -> bool {
        match self {
            OutboxView::Complete => false,
            OutboxView::TruncatedAt(last) => checker >= last.as_str(),
            OutboxView::Unknown => true,
        }
    }
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

/// What a cycle gave up for one target of one checker.
struct GiveUp {
    /// When the oldest record given up was first tried.
    first_attempt_at: i64,
    /// The target's last error.
    error: String,
    /// Whether the handler called the error permanent (given up at the first failure).
    permanent: bool,
    records: u64,
    oldest_minute: i64,
    newest_minute: i64,
}

/// A failed delivery to one target: the error with its causes, and whether the handler
/// called it [permanent](crate::HandlerError::permanent).
struct Failed {
    error: String,
    permanent: bool,
}

impl GiveUp {
    fn new(first_attempt_at: i64, error: String, permanent: bool) -> Self {
        GiveUp {
            first_attempt_at,
            error,
            permanent,
            records: 0,
            oldest_minute: i64::MAX,
            newest_minute: i64::MIN,
        }
    }

    fn add(&mut self, event: &Event) {
        if let Event::Check(record) = event {
            self.records += 1;
            self.oldest_minute = self.oldest_minute.min(record.minute);
            self.newest_minute = self.newest_minute.max(record.minute);
        }
    }
}

impl CycleContext {
    /// Reads every outbox entry (due or not, up to the batch limit), grouped by checker.
    async fn read_outbox(&self) -> (BTreeMap<String, Vec<PendingDelivery>>, OutboxView) {
        let limit = self.config.outbox_batch_limit.max(1);
        match self.store.pending_deliveries(i64::MAX, limit).await {
            Ok(entries) => {
                let view = match entries.last() {
                    Some(last) if entries.len() >= limit => {
                        OutboxView::TruncatedAt(last.record.checker.clone())
                    }
                    _ => OutboxView::Complete,
                };
                let mut grouped: BTreeMap<String, Vec<PendingDelivery>> = BTreeMap::new();
                for entry in entries {
                    grouped
                        .entry(entry.record.checker.clone())
                        .or_default()
                        .push(entry);
                }
                (grouped, view)
            }
            Err(e) => {
                warn!(error = %e, "cannot read the delivery outbox; new checks stay queued");
                (BTreeMap::new(), OutboxView::Unknown)
            }
        }
    }

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

    /// Which fetched rows are worth storing after the first cycle (see "Rows that are not
    /// stored" in the module docs): none before every window of this cycle and the purger's
    /// retention cutoff (they could not be counted now and the purge deletes them), and none
    /// before the oldest window any requirement can still reach (later candidates are after
    /// the last checked minute, so nothing can ever count them).
    fn keep_from(
        &self,
        checker: &Checker,
        windows: &[(i64, i64)],
        purge_before: Option<i64>,
    ) -> i64 {
        let oldest_window = windows.iter().map(|w| w.0).min().unwrap_or(i64::MIN);
        let purgeable = self
            .purger
            .retention_cutoff(checker, self.now)
            .or(purge_before)
            .map_or(i64::MIN, |cutoff| cutoff.min(oldest_window));
        purgeable.max(reachable_from(checker, self.minute))
    }

    /// After a partly ignored `record_checks`: the outbox entries of this cycle's minutes
    /// that the job's earlier read did not hold, i.e. the recorded versions (this cycle's own
    /// where it won, the other runner's where it did not; delivering the latter too is
    /// at-least-once, never a check that is not in the log). Empty if the outbox cannot be
    /// read: the entries then wait for the next cycle.
    async fn recorded_here(
        &self,
        checker: &str,
        records: &[CheckRecord],
        pending: &[PendingDelivery],
    ) -> Vec<CheckRecord> {
        let keys: HashSet<String> = records.iter().map(CheckRecord::idempotency_key).collect();
        let limit = self.config.outbox_batch_limit.max(1);
        match self.store.pending_deliveries(i64::MAX, limit).await {
            Ok(entries) => entries
                .into_iter()
                .filter(|e| {
                    e.record.checker == checker
                        && keys.contains(&e.key)
                        && !pending.iter().any(|p| p.key == e.key)
                })
                .map(|e| e.record)
                .collect(),
            Err(e) => {
                warn!(checker = %checker, error = %e, "cannot read the delivery outbox; new checks stay queued");
                Vec::new()
            }
        }
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

    /// Step 6b: earlier cycles' pending deliveries of this checker, then this cycle's records,
    /// in order, each to every handler target ([`CheckHandler::targets`]) that does not have
    /// it yet. A target that fails, or whose entry is not due yet, is skipped for the rest of
    /// the checker's records this cycle, so it never receives them out of order; the other
    /// targets go on. A target failing past the give-up age is given up
    /// ([`CycleContext::give_up`]).
    async fn deliver_checks(
        &self,
        outcome: &mut CheckerOutcome,
        pending: Vec<PendingDelivery>,
        records: &[CheckRecord],
        may_have_unseen: bool,
    ) {
        let mut queue = pending;
        if !may_have_unseen {
            queue.extend(records.iter().cloned().map(PendingDelivery::new));
        }
        // Targets that failed or are waiting for their backoff: later records wait.
        let mut blocked: HashSet<String> = HashSet::new();
        // Targets given up this cycle: the records they still owe are settled too.
        let mut given_up: BTreeMap<String, GiveUp> = BTreeMap::new();
        for entry in queue {
            let event = Event::Check(entry.record);
            let mut targets = self.handler.targets(&event);
            if targets.is_empty() {
                targets.push(String::new());
            }
            let owed: Vec<String> = targets
                .iter()
                .filter(|t| !entry.delivered_to.contains(t))
                .cloned()
                .collect();
            let key = entry.key;
            if !owed.is_empty() && entry.next_attempt_at > self.now {
                blocked.extend(owed);
                continue;
            }
            let first_attempt_at = entry.first_attempt_at.unwrap_or(self.now);
            let mut delivered_to = entry.delivered_to;
            let mut newly_delivered = 0_usize;
            let mut settled = 0_usize;
            let mut failures: Vec<String> = Vec::new();
            for target in owed.iter() {
                if let Some(give_up) = given_up.get_mut(target) {
                    give_up.add(&event);
                    settled += 1;
                    continue;
                }
                if blocked.contains(target) {
                    continue;
                }
                match self.deliver_to(target, &event, entry.attempts).await {
                    Ok(()) => {
                        delivered_to.push(target.clone());
                        newly_delivered += 1;
                    }
                    Err(Failed { error, permanent }) => {
                        let age = self.now.saturating_sub(first_attempt_at);
                        let limit = self.config.delivery_give_up_seconds;
                        if permanent || (limit > 0 && age >= limit) {
                            self.handler.gave_up(target, &event).await;
                            let mut give_up = GiveUp::new(first_attempt_at, error, permanent);
                            give_up.add(&event);
                            given_up.insert(target.clone(), give_up);
                            settled += 1;
                        } else {
                            warn!(key = %key, target = %target, attempts = entry.attempts + 1,
                                error = %error, "delivery failed");
                            blocked.insert(target.clone());
                            failures.push(if target.is_empty() {
                                error
                            } else {
                                format!("{target}: {error}")
                            });
                        }
                    }
                }
            }
            if newly_delivered + settled == owed.len() {
                outcome.delivered += 1;
                if let Err(e) = self.store.ack_delivery(&key).await {
                    // The targets have it; it will be delivered once more (at least once).
                    warn!(key = %key, error = %e, "cannot acknowledge a delivery");
                }
                continue;
            }
            let failure = if failures.is_empty() {
                None
            } else {
                outcome.delivery_failures += 1;
                let next = self
                    .now
                    .saturating_add(self.config.retry_delay(entry.attempts));
                Some((next, failures.join("; ")))
            };
            // A given-up target counts as having the record (it is never sent it again).
            delivered_to.extend(
                owed.iter()
                    .filter(|t| given_up.contains_key(*t) && !delivered_to.contains(*t))
                    .cloned()
                    .collect::<Vec<_>>(),
            );
            let changed = newly_delivered + settled > 0
                || entry.first_attempt_at.is_none()
                || failure.is_some();
            if !changed {
                continue;
            }
            let progress = crate::store::DeliveryProgress {
                delivered_to,
                first_attempt_at,
                failure,
            };
            if let Err(e) = self.store.save_delivery_progress(&key, &progress).await {
                warn!(key = %key, error = %e, "cannot save a delivery's progress");
            }
        }
        if !given_up.is_empty() {
            self.report_give_ups(outcome, given_up).await;
        }
    }

    /// Hands one check to one target, under the delivery timeout.
    async fn deliver_to(&self, target: &str, event: &Event, attempts: u32) -> Result<(), Failed> {
        let handled = self.handler.deliver_to(target, event, attempts);
        match tokio::time::timeout(self.config.delivery_timeout, handled).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Failed {
                error: e.chain(),
                permanent: e.is_permanent(),
            }),
            Err(_) => Err(Failed {
                error: format!(
                    "handler timed out after {} ms",
                    self.config.delivery_timeout.as_millis()
                ),
                permanent: false,
            }),
        }
    }

    /// Records this cycle's give-ups of a checker and reports them in one `ERROR` event of
    /// kind [`ErrorKind::DeliveryGivenUp`], without the checker's `__EXTRA__` so that it goes
    /// to the default route (delivered with the checker's other errors).
    async fn report_give_ups(
        &self,
        outcome: &mut CheckerOutcome,
        given_up: BTreeMap<String, GiveUp>,
    ) {
        let checker = outcome.checker.clone();
        let count: u64 = given_up.values().map(|g| g.records).sum();
        let parts: Vec<String> = given_up
            .iter()
            .map(|(target, g)| {
                let target = if target.is_empty() {
                    "the handler".to_string()
                } else {
                    format!("target {target:?}")
                };
                if g.permanent {
                    return format!(
                        "{target}: {} checks of minutes {} to {} not delivered: permanent \
                         error: {}",
                        g.records,
                        local_rfc3339(g.oldest_minute, chrono_tz::UTC),
                        local_rfc3339(g.newest_minute, chrono_tz::UTC),
                        g.error
                    );
                }
                format!(
                    "{target}: {} checks of minutes {} to {} not delivered since {} \
                     (more than {} s); last error: {}",
                    g.records,
                    local_rfc3339(g.oldest_minute, chrono_tz::UTC),
                    local_rfc3339(g.newest_minute, chrono_tz::UTC),
                    local_rfc3339(g.first_attempt_at, chrono_tz::UTC),
                    self.config.delivery_give_up_seconds,
                    g.error
                )
            })
            .collect();
        let text = format!(
            "delivery given up for checker {checker:?}: {}",
            parts.join("; ")
        );
        tracing::error!(checker = %checker, given_up = count, error = %text, "delivery given up");
        outcome.given_up += count;
        if let Err(e) = self
            .store
            .record_give_up(&checker, count, self.minute, &text)
            .await
        {
            warn!(checker = %checker, error = %e, "cannot record a delivery give-up");
        }
        let event = self.error_event(
            &checker,
            serde_json::json!({}),
            chrono_tz::UTC,
            ErrorKind::DeliveryGivenUp,
            text,
        );
        outcome.errors.push(event);
    }

    /// Error events are delivered once, best effort.
    async fn deliver_error(&self, event: &ErrorEvent) {
        let event = Event::Error(event.clone());
        match tokio::time::timeout(self.config.delivery_timeout, self.handler.handle(&event)).await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                warn!(checker = %event.checker(), error = %e, "cannot deliver an error event")
            }
            Err(_) => warn!(checker = %event.checker(), "error event delivery timed out"),
        }
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

/// The minute each requirement of `checker` has been judged up to, by index (`None` on a
/// checker's first cycle, when `last` is `None`), from the checker's last checked minute
/// `last` and each requirement's own (`own`, from [`Store::last_checked_minutes`]):
/// `last_r = max(own_r, last - D_r)` with `D_r` the requirement's `DELAYSECONDS` in whole
/// minutes.
///
/// Without delays this is `last` for every requirement (an own minute is never after it),
/// as without the option. With delays, requirements are judged up to different minutes: one with
/// `DELAYSECONDS300` at the cycle of 10:10 judges up to 10:05 while one without judges up
/// to 10:10, so each continues from its own last check. `last - D_r` is a floor that never
/// skips a minute: the cycle that recorded `last` ran at a minute `>= last`, so it judged
/// every requirement `r` up to at least `last - D_r`. It starts a requirement without a
/// check of its own (added to the checker, or not due at the checker's first cycle) where
/// the checker is, as a requirement added to a checker always did.
pub fn requirement_progress(
    checker: &Checker,
    last: Option<i64>,
    own: &[(usize, i64)],
) -> Vec<Option<i64>> {
    checker
        .requirements
        .iter()
        .enumerate()
        .map(|(index, requirement)| {
            let last = last?;
            let floor = requirement.judged_up_to(last);
            let own = own
                .iter()
                .filter(|(i, _)| *i == index)
                .map(|(_, m)| *m)
                .max();
            Some(own.map_or(floor, |own| own.max(floor)))
        })
        .collect()
}

/// Step 2 of a cycle (README "How a cycle works"): the candidate `(minute, requirement_index)` pairs of `checker` for the cycle
/// minute `minute`, ascending, given each requirement's progress (from
/// [`requirement_progress`]; a missing or `None` entry means a first cycle). Requirement `r`
/// judges minutes up to [`Requirement::judged_up_to`]`(minute)`, i.e. `minute` less its
/// `DELAYSECONDS`.
///
/// [`Requirement::judged_up_to`]: crate::Requirement::judged_up_to
pub fn candidates(
    checker: &Checker,
    zone: Tz,
    minute: i64,
    progress: &[Option<i64>],
) -> Vec<(i64, usize)> {
    let mut out = Vec::new();
    for (index, requirement) in checker.requirements.iter().enumerate() {
        let up_to = requirement.judged_up_to(minute);
        let from = match progress.get(index).copied().flatten() {
            None => up_to,
            Some(last) => {
                let horizon = requirement.horizon_minutes();
                let earliest =
                    up_to.saturating_sub(horizon.saturating_sub(1).saturating_mul(MINUTE));
                earliest.max(minute_floor(last).saturating_add(MINUTE))
            }
        };
        if from > up_to {
            continue;
        }
        out.extend(
            schedule::due_minutes(&requirement.schedule, zone, from, up_to).map(|m| (m, index)),
        );
    }
    out.sort_unstable();
    out
}

/// Keeps the oldest `limit` candidates (sorted by minute), extended to the end of the last
/// minute kept, so no requirement due at that minute waits for a later cycle while another one
/// moves the checker's last checked minute past it.
pub fn oldest_chunk(candidates: &mut Vec<(i64, usize)>, limit: usize) {
    let limit = limit.max(1);
    if candidates.len() <= limit {
        return;
    }
    let last_minute = candidates[limit - 1].0;
    let end = candidates[limit..]
        .iter()
        .position(|&(m, _)| m != last_minute)
        .map_or(candidates.len(), |i| limit + i);
    candidates.truncate(end);
}

/// At most this many `MISSED` records per checker and cycle (the newest): a year-long gap of
/// an every-minute checker would otherwise make half a million records in one cycle.
pub const MAX_MISSED_PER_CYCLE: usize = 10_000;

/// The due `(minute, requirement_index)` pairs that have left the horizon unchecked: after
/// the requirement's last checked minute (its entry of `progress`, see
/// [`requirement_progress`]) and before its oldest candidate minute, ascending (at most the
/// newest [`MAX_MISSED_PER_CYCLE`]). Empty on a first cycle.
pub fn missed_minutes(
    checker: &Checker,
    zone: Tz,
    minute: i64,
    progress: &[Option<i64>],
) -> Vec<(i64, usize)> {
    let mut out = Vec::new();
    for (index, requirement) in checker.requirements.iter().enumerate() {
        let Some(last) = progress.get(index).copied().flatten() else {
            continue;
        };
        let horizon = requirement.horizon_minutes();
        let earliest = requirement
            .judged_up_to(minute)
            .saturating_sub(horizon.saturating_sub(1).saturating_mul(MINUTE));
        let from = minute_floor(last).saturating_add(MINUTE);
        let to = earliest.saturating_sub(MINUTE);
        if from > to {
            continue;
        }
        // Keep only the newest, so a gap of years costs no memory.
        let mut newest = std::collections::VecDeque::with_capacity(MAX_MISSED_PER_CYCLE);
        let mut skipped: u64 = 0;
        for m in schedule::due_minutes(&requirement.schedule, zone, from, to) {
            if newest.len() == MAX_MISSED_PER_CYCLE {
                newest.pop_front();
                skipped += 1;
            }
            newest.push_back(m);
        }
        if skipped > 0 {
            warn!(checker = %checker.name, requirement = index, skipped,
                "more due minutes left the horizon unchecked than are recorded as MISSED");
        }
        out.extend(newest.into_iter().map(|m| (m, index)));
    }
    out.sort_unstable();
    let excess = out.len().saturating_sub(MAX_MISSED_PER_CYCLE);
    out.drain(..excess);
    out
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

/// Step 4's admission of fetched rows, one batch at a time ([`RowSink`] of the engine):
/// far-future rows are rejected, rows no window can reach are dropped (after a checker's
/// first cycle, see "Rows that are not stored"), and the rest go to
/// [`Store::insert_first_seen`] before the source reads on. What it counts adds up to what one
/// whole-result batch would give: a key's first occurrence in the result decides, across
/// batches too (the store keeps a stored key's first timestamp; [`DroppedKeys`] remembers the
/// dropped ones).
struct Admit<'a> {
    context: &'a CycleContext,
    checker: &'a Checker,
    windows: &'a [(i64, i64)],
    /// Not the checker's first cycle: rows no window can reach are dropped.
    drop_unreachable: bool,
    /// The purger's answer and the resulting keep-from epoch, once asked (at the first batch
    /// after a first cycle, else after the fetch).
    purge: Option<(Option<i64>, i64)>,
    dropped: DroppedKeys,
    future_limit: i64,
    batches: u64,
    rows_fetched: u64,
    new_rows: u64,
    rejected: u64,
    rejected_samples: Vec<String>,
    /// The store failed on a batch: the fetch was stopped, and this is the error to report.
    store_error: Option<crate::store::StoreError>,
}

impl<'a> Admit<'a> {
    fn new(
        context: &'a CycleContext,
        checker: &'a Checker,
        drop_unreachable: bool,
        windows: &'a [(i64, i64)],
    ) -> Self {
        Admit {
            context,
            checker,
            windows,
            drop_unreachable,
            purge: None,
            dropped: DroppedKeys::default(),
            future_limit: context
                .now
                .saturating_add(context.config.max_future_seconds.max(0)),
            batches: 0,
            rows_fetched: 0,
            new_rows: 0,
            rejected: 0,
            rejected_samples: Vec::new(),
            store_error: None,
        }
    }

    /// This cycle's purge cutoff (the purger is asked once per cycle; the first cycle never
    /// purges) and the epoch before which fetched rows are not stored.
    fn purge(&mut self) -> (Option<i64>, i64) {
        if let Some(purge) = self.purge {
            return purge;
        }
        let context = self.context;
        let purge_before = context
            .purger
            .delete_older_than(self.checker, context.now)
            .filter(|_| self.drop_unreachable);
        let keep_from = if self.drop_unreachable {
            context.keep_from(self.checker, self.windows, purge_before)
        } else {
            i64::MIN
        };
        *self.purge.insert((purge_before, keep_from))
    }

    fn purge_before(&mut self) -> Option<i64> {
        self.purge().0
    }
}

#[async_trait]
impl RowSink for Admit<'_> {
    fn batch_rows(&self) -> usize {
        crate::source::DEFAULT_BATCH_ROWS
    }

    async fn accept(&mut self, batch: Fetched) -> Result<(), SourceError> {
        if self.store_error.is_some() {
            return Err(stopped_by_store());
        }
        let Fetched {
            mut rows,
            rejected,
            rejected_samples,
        } = batch;
        self.batches += 1;
        self.rejected += rejected;
        let room = Fetched::MAX_SAMPLES.saturating_sub(self.rejected_samples.len());
        self.rejected_samples
            .extend(rejected_samples.into_iter().take(room));
        let (now, future_limit) = (self.context.now, self.future_limit);
        let max_future = self.context.config.max_future_seconds;
        let room = Fetched::MAX_SAMPLES.saturating_sub(self.rejected_samples.len());
        let mut far_future: u64 = 0;
        let mut samples = Vec::new();
        rows.retain(|row| {
            if row.timestamp <= future_limit {
                return true;
            }
            far_future += 1;
            if samples.len() < room {
                samples.push(format!(
                    "key {:?}: timestamp {} is {} s in the future (more than the {max_future} s allowed)",
                    crate::requirement::excerpt(&row.key),
                    row.timestamp,
                    row.timestamp.saturating_sub(now),
                ));
            }
            false
        });
        self.rejected += far_future;
        self.rejected_samples.extend(samples);
        self.rows_fetched += rows.len() as u64;
        if self.drop_unreachable {
            let (_, keep_from) = self.purge();
            skip_unreachable(&mut rows, keep_from, &mut self.dropped);
        }
        if rows.is_empty() {
            return Ok(());
        }
        match self
            .context
            .store
            .insert_first_seen(&self.checker.name, &rows)
            .await
        {
            Ok(new) => {
                self.new_rows += new;
                Ok(())
            }
            Err(e) => {
                self.store_error = Some(e);
                Err(stopped_by_store())
            }
        }
    }
}

/// What the engine's sink answers a source when the store refused a batch.
fn stopped_by_store() -> SourceError {
    SourceError::Other("fetch stopped: the store could not take the rows".to_string())
}

/// The keys of rows dropped as unreachable earlier in one fetch (their first occurrence
/// decides, so a later occurrence is dropped too). The last batch's dropped keys are kept as
/// they are and hashed only when another batch comes, so a fetch of one batch (most fetches)
/// never hashes them for this. Older batches' keys are kept as 64-bit SipHash hashes (random
/// keys per fetch), 8-16 bytes a key instead of the key itself: a hash collision would drop
/// one reachable row whose key hashes like an earlier batch's dropped one (about `n / 2^64`
/// per row after `n` dropped keys), the same residual risk as the store's cache of seen keys;
/// inside a batch the check is exact.
#[derive(Default)]
struct DroppedKeys {
    hasher: std::hash::RandomState,
    /// Dropped keys of the batches before the last one, hashed.
    earlier: HashSet<u64>,
    /// Dropped keys of the last batch.
    last: Vec<String>,
}

impl DroppedKeys {
    fn hash(&self, key: &str) -> u64 {
        std::hash::BuildHasher::hash_one(&self.hasher, key)
    }

    /// Moves the last batch's keys into `earlier` (a new batch has come).
    fn settle(&mut self) {
        if self.last.is_empty() {
            return;
        }
        let last = std::mem::take(&mut self.last);
        self.earlier.reserve(last.len());
        for key in &last {
            let hash = self.hash(key);
            self.earlier.insert(hash);
        }
    }
}

/// Drops the rows with `timestamp < keep_from`, and the later occurrences of their keys: the
/// first occurrence of a key decides its timestamp (step 4 of a cycle, README "How a cycle
/// works"), even when it is dropped, also when it came in an earlier batch of the fetch
/// (`dropped`, updated here). Repeats among the kept rows are left to the store (first one
/// wins).
///
/// This runs on every row of every fetch after a checker's first cycle, so it hashes each row
/// once, with a fast hash (foldhash): the dropped rows' hashes go in a table, and a kept row
/// whose hash is there is compared by key with the dropped row, so a collision costs time,
/// never a row.
fn skip_unreachable(rows: &mut Vec<crate::source::Row>, keep_from: i64, dropped: &mut DroppedKeys) {
    dropped.settle();
    let old = rows.iter().filter(|row| row.timestamp < keep_from).count();
    if old == 0 && dropped.earlier.is_empty() {
        return;
    }
    let fast = foldhash::fast::RandomState::default();
    // Fast hash of a dropped key -> the index of its first dropped row.
    let mut first_dropped: std::collections::HashMap<u64, usize, foldhash::fast::RandomState> =
        std::collections::HashMap::with_capacity_and_hasher(old, fast.clone());
    for (index, row) in rows.iter().enumerate() {
        if row.timestamp < keep_from {
            let hash = std::hash::BuildHasher::hash_one(&fast, row.key.as_str());
            first_dropped.entry(hash).or_insert(index);
        }
    }
    let mut keep: Vec<bool> = Vec::with_capacity(rows.len());
    for (index, row) in rows.iter().enumerate() {
        if row.timestamp < keep_from {
            keep.push(false);
            continue;
        }
        let dropped_here = !first_dropped.is_empty()
            && first_dropped
                .get(&std::hash::BuildHasher::hash_one(&fast, row.key.as_str()))
                .is_some_and(|&first| {
                    first < index
                        && (rows[first].key == row.key
                            // A collision of the fast hash: look for the key itself.
                            || rows[..index]
                                .iter()
                                .any(|r| r.timestamp < keep_from && r.key == row.key))
                });
        let dropped_before =
            !dropped.earlier.is_empty() && dropped.earlier.contains(&dropped.hash(&row.key));
        keep.push(!(dropped_here || dropped_before));
    }
    let mut index = 0;
    rows.retain_mut(|row| {
        let kept = keep[index];
        if row.timestamp < keep_from {
            dropped.last.push(std::mem::take(&mut row.key));
        }
        index += 1;
        kept
    });
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
    use crate::source::Row;

    #[test]
    fn retry_delay_doubles_up_to_the_cap() {
        let config = EngineConfig::default();
        let delays: Vec<i64> = [0, 1, 2, 6, 7, 40, u32::MAX]
            .iter()
            .map(|a| config.retry_delay(*a))
            .collect();
        assert_eq!(delays, vec![30, 60, 120, 1920, 3600, 3600, 3600]);
    }

    #[test]
    fn skipping_unreachable_rows_respects_first_occurrence() {
        let mut rows = vec![
            Row::new("old_first", 10),
            Row::new("new", 200),
            Row::new("old_first", 300), // a later occurrence never replaces the first
            Row::new("new", 5),
            Row::new("old", 99),
            Row::new("edge", 100),
        ];
        let mut dropped = DroppedKeys::default();
        skip_unreachable(&mut rows, 100, &mut dropped);
        assert_eq!(rows, vec![Row::new("new", 200), Row::new("edge", 100)]);

        // A later batch of the same fetch: keys dropped before stay dropped.
        let mut rows = vec![Row::new("old", 150), Row::new("fresh", 150)];
        skip_unreachable(&mut rows, 100, &mut dropped);
        assert_eq!(rows, vec![Row::new("fresh", 150)]);

        // Nothing old: the batch is left alone, duplicates included.
        let mut rows = vec![Row::new("a", 100), Row::new("a", 200)];
        skip_unreachable(&mut rows, 100, &mut DroppedKeys::default());
        assert_eq!(rows.len(), 2);
    }

    proptest::proptest! {
        /// Batch by batch, a row is dropped exactly when it is old or an earlier row of the
        /// whole fetch with its key was old (brute-force oracle).
        #[test]
        fn skipping_unreachable_rows_agrees_with_an_oracle(
            spec in proptest::collection::vec((0_u8..12, 0_i64..200), 0..80),
            batch in 1_usize..30,
        ) {
            let rows: Vec<Row> = spec.iter().map(|&(k, t)| Row::new(format!("k{k}"), t)).collect();
            let expected: Vec<Row> = rows
                .iter()
                .enumerate()
                .filter(|&(i, row)| {
                    row.timestamp >= 100
                        && !rows[..i].iter().any(|r| r.timestamp < 100 && r.key == row.key)
                })
                .map(|(_, row)| row.clone())
                .collect();
            let mut dropped = DroppedKeys::default();
            let mut kept = Vec::new();
            for chunk in rows.chunks(batch) {
                let mut chunk = chunk.to_vec();
                skip_unreachable(&mut chunk, 100, &mut dropped);
                kept.extend(chunk);
            }
            proptest::prop_assert_eq!(kept, expected);
        }
    }

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
