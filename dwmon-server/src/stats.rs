//! [`RunnerStats`]: what the cycle loop publishes for the server to read (`/metrics`, the
//! API's runner health, the status page).
//!
//! The runner calls [`RunnerStats::record_cycle`] once per cycle with the cycle's report; the
//! server takes a [`RunnerStats::snapshot`]. Both hold one short mutex (no I/O, no await
//! inside), so a scrape never delays a cycle by more than a copy of a few counters.

use dwmon_core::engine::CycleReport;
use dwmon_core::{Checker, ErrorKind, Status};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Upper bounds (seconds) of the fetch duration histogram's buckets (`+Inf` is implied).
pub const FETCH_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0, 60.0,
];

/// Every check status, in the order of [`StatsSnapshot::checks`].
pub const STATUSES: [Status; 4] = [Status::Good, Status::Bad, Status::Error, Status::Missed];

/// Reads the runner's clock (epoch seconds): the wall clock, or the simulated clock of
/// `dwmon run --now T --speed N`, so lag is measured against the time the runner uses.
pub type NowFn = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Reads the measured skew of the runner's clock, milliseconds: the clock it runs on (the
/// database's, for a PostgreSQL store) minus this host's.
pub type SkewFn = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The last finished cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastCycle {
    /// The `now` the cycle ran for.
    pub now: i64,
    /// The minute containing `now`.
    pub minute: i64,
    /// How long the cycle took.
    pub duration: Duration,
    /// The runner clock when the cycle ended.
    pub finished_at: i64,
}

/// Fetch durations and failures of one `__SOURCE__` name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FetchStats {
    /// Fetches per bucket of [`FETCH_BUCKETS`] (not cumulative; the last entry is `+Inf`).
    pub buckets: [u64; FETCH_BUCKETS.len() + 1],
    /// Sum of all fetch durations, seconds.
    pub sum_seconds: f64,
    /// Fetches made.
    pub count: u64,
    /// Fetches that failed (the source's `ERROR` events of kind fetch).
    pub errors: u64,
}

impl FetchStats {
    fn observe(&mut self, seconds: f64) {
        let bucket = FETCH_BUCKETS
            .iter()
            .position(|&upper| seconds <= upper)
            .unwrap_or(FETCH_BUCKETS.len());
        self.buckets[bucket] += 1;
        self.sum_seconds += seconds;
        self.count += 1;
    }
}

/// Check deliveries the cycles made, by result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryStats {
    /// Deliveries the handler took.
    pub delivered: u64,
    /// Deliveries that failed (they stay in the outbox and are retried).
    pub failed: u64,
    /// `(record, target)` deliveries given up after the give-up age.
    pub given_up: u64,
}

/// A copy of everything the runner published, taken under the lock in one go.
#[derive(Debug, Clone, Default)]
pub struct StatsSnapshot {
    /// The runner clock now.
    pub now: i64,
    /// When the runner started (runner clock).
    pub started_at: i64,
    /// The checkers of the current cycle set, by name.
    pub checkers: Arc<[Checker]>,
    /// The zone of checkers without `__TIMEZONE__`.
    pub default_zone: chrono_tz::Tz,
    /// Cycles finished since the start.
    pub cycles: u64,
    /// The last finished cycle, if any.
    pub last_cycle: Option<LastCycle>,
    /// Checks recorded since the start, by status, in the order of [`STATUSES`].
    pub checks: [u64; STATUSES.len()],
    /// Fetch statistics by source name.
    pub fetches: BTreeMap<String, FetchStats>,
    /// Deliveries by result.
    pub deliveries: DeliveryStats,
    /// The latest GOOD minute seen per `(checker, requirement_index)` since the start.
    pub last_good: HashMap<(String, usize), i64>,
    /// Counted pings by `(kind, answer)` (see [`RunnerStats::count_ping`]).
    pub pings: BTreeMap<(String, String), u64>,
    /// Notification deliveries per alert channel, in the order of
    /// [`DeliveryResult::ALL`](dwmon_alert::DeliveryResult::ALL); empty while alerting is
    /// off (see [`RunnerStats::set_notification_deliveries`]).
    pub notification_deliveries: Vec<(dwmon_alert::ChannelKind, [u64; 3])>,
    /// The clock skew last measured, seconds (the database's clock minus this host's); `None`
    /// when the runner runs on this host's clock (see [`RunnerStats::set_clock_skew`]).
    pub clock_skew_seconds: Option<f64>,
}

impl StatsSnapshot {
    /// How far the runner is behind its clock at [`StatsSnapshot::now`]; see
    /// [`StatsSnapshot::lag_at`].
    pub fn lag_seconds(&self) -> i64 {
        self.lag_at(self.now)
    }

    /// How far the runner is behind its clock at `now`, in seconds: 0 while the last cycle
    /// ran for the current minute or the one before (whose successor starts shortly after the
    /// minute boundary), then growing by one a second while no cycle finishes. Before the
    /// first cycle: the seconds since the start.
    pub fn lag_at(&self, now: i64) -> i64 {
        let since = match self.last_cycle {
            Some(last) => last.minute.saturating_add(dwmon_core::MINUTE),
            None => self.started_at,
        };
        now.saturating_sub(since).max(0)
    }
}

#[derive(Debug, Default)]
struct Inner {
    checkers: Arc<[Checker]>,
    default_zone: chrono_tz::Tz,
    cycles: u64,
    last_cycle: Option<LastCycle>,
    checks: [u64; STATUSES.len()],
    fetches: BTreeMap<String, FetchStats>,
    deliveries: DeliveryStats,
    last_good: HashMap<(String, usize), i64>,
    pings: BTreeMap<(String, String), u64>,
    notifications: Option<Arc<dwmon_alert::DeliveryCounts>>,
    skew: Option<Skew>,
}

/// A [`SkewFn`] in [`Inner`] (which is `Debug`).
struct Skew(SkewFn);

impl std::fmt::Debug for Skew {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Skew").field(&(self.0)()).finish()
    }
}

/// The runner's in-process statistics, shared between the cycle loop and the server.
pub struct RunnerStats {
    now: NowFn,
    started_at: i64,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for RunnerStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunnerStats")
            .field("started_at", &self.started_at)
            .finish_non_exhaustive()
    }
}

impl RunnerStats {
    /// Statistics read against the clock `now` (the runner's), starting now.
    pub fn new(now: NowFn) -> Self {
        let started_at = now();
        RunnerStats {
            now,
            started_at,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Statistics on the wall clock.
    pub fn wall_clock() -> Self {
        RunnerStats::new(Arc::new(|| chrono::Utc::now().timestamp()))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The runner clock now.
    pub fn now(&self) -> i64 {
        (self.now)()
    }

    /// Publishes the checker set the next cycles run (`default_zone` for those without
    /// `__TIMEZONE__`).
    pub fn set_checkers(&self, checkers: Arc<[Checker]>, default_zone: chrono_tz::Tz) {
        let mut inner = self.lock();
        inner.checkers = checkers;
        inner.default_zone = default_zone;
    }

    /// The checker set last published and the default zone.
    pub fn checker_set(&self) -> (Arc<[Checker]>, chrono_tz::Tz) {
        let inner = self.lock();
        (Arc::clone(&inner.checkers), inner.default_zone)
    }

    /// Adds a finished cycle: its checks by status, fetch durations and errors by source,
    /// deliveries, and the last GOOD minute of each requirement.
    pub fn record_cycle(&self, report: &CycleReport) {
        let finished_at = self.now();
        let mut inner = self.lock();
        let sources: HashMap<String, String> = inner
            .checkers
            .iter()
            .map(|c| (c.name.clone(), c.source.clone()))
            .collect();
        inner.cycles += 1;
        inner.last_cycle = Some(LastCycle {
            now: report.now,
            minute: report.minute,
            duration: report.duration,
            finished_at,
        });
        for outcome in &report.checkers {
            let source = sources.get(&outcome.checker);
            if let (Some(source), Some(duration)) = (source, outcome.fetch_duration) {
                inner
                    .fetches
                    .entry(source.clone())
                    .or_default()
                    .observe(duration.as_secs_f64());
            }
            let fetch_errors = outcome
                .errors
                .iter()
                .filter(|e| e.kind == ErrorKind::Fetch)
                .count() as u64;
            if let (Some(source), true) = (source, fetch_errors > 0) {
                inner.fetches.entry(source.clone()).or_default().errors += fetch_errors;
            }
            for check in &outcome.checks {
                if let Some(i) = STATUSES.iter().position(|s| *s == check.status) {
                    inner.checks[i] += 1;
                }
                if check.status == Status::Good {
                    let key = (check.checker.clone(), check.requirement_index);
                    let last = inner.last_good.entry(key).or_insert(check.minute);
                    *last = (*last).max(check.minute);
                }
            }
            inner.deliveries.delivered += outcome.delivered;
            inner.deliveries.failed += outcome.delivery_failures;
            inner.deliveries.given_up += outcome.given_up;
        }
    }

    /// Reads notification deliveries from `counts` (the alert handler's
    /// [`delivery_counts`](dwmon_alert::AlertHandler::delivery_counts)) in every snapshot.
    pub fn set_notification_deliveries(&self, counts: Arc<dwmon_alert::DeliveryCounts>) {
        self.lock().notifications = Some(counts);
    }

    /// Reads the clock skew from `skew` in every snapshot (for `dwmon_clock_skew_seconds`):
    /// set when the runner runs on the database's clock (`dwmon_postgres_store::DatabaseClock`,
    /// its `skew_millis`).
    pub fn set_clock_skew(&self, skew: SkewFn) {
        self.lock().skew = Some(Skew(skew));
    }

    /// Counts a ping of `kind` answered with `answer` (e.g. `("success", "ok")`), for
    /// `dwmon_pings_total`. Both must come from a fixed set, never from request text.
    pub fn count_ping(&self, kind: &str, answer: &str) {
        let mut inner = self.lock();
        // A handful of pairs: finding one costs less than the two strings a key would.
        match inner
            .pings
            .iter_mut()
            .find(|((k, a), _)| k == kind && a == answer)
        {
            Some((_, n)) => *n += 1,
            None => {
                inner
                    .pings
                    .insert((kind.to_string(), answer.to_string()), 1);
            }
        }
    }

    /// A consistent copy of everything, with the runner clock's `now`.
    pub fn snapshot(&self) -> StatsSnapshot {
        let now = self.now();
        let inner = self.lock();
        StatsSnapshot {
            now,
            started_at: self.started_at,
            checkers: Arc::clone(&inner.checkers),
            default_zone: inner.default_zone,
            cycles: inner.cycles,
            last_cycle: inner.last_cycle,
            checks: inner.checks,
            fetches: inner.fetches.clone(),
            deliveries: inner.deliveries,
            last_good: inner.last_good.clone(),
            pings: inner.pings.clone(),
            notification_deliveries: inner
                .notifications
                .as_ref()
                .map(|counts| counts.snapshot())
                .unwrap_or_default(),
            clock_skew_seconds: inner.skew.as_ref().map(|skew| (skew.0)() as f64 / 1000.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dwmon_core::engine::CheckerOutcome;
    use dwmon_core::CheckRecord;
    use std::sync::atomic::{AtomicI64, Ordering};

    fn record(checker: &str, minute: i64, status: Status) -> CheckRecord {
        CheckRecord {
            checker: checker.into(),
            requirement_index: 0,
            requirement: String::new(),
            minute,
            minute_local: String::new(),
            timezone: "UTC".into(),
            lookback_seconds: 60,
            count: 0,
            min: 1,
            max: 10,
            status,
            extra: serde_json::json!({}),
            monitor: None,
            runs: None,
        }
    }

    #[test]
    fn missed_checks_are_counted_and_last_good_keeps_the_latest_minute() {
        let clock = Arc::new(AtomicI64::new(10_000));
        let stats = {
            let clock = Arc::clone(&clock);
            RunnerStats::new(Arc::new(move || clock.load(Ordering::SeqCst)))
        };
        let report = CycleReport {
            now: 6_005,
            minute: 6_000,
            checkers: vec![CheckerOutcome {
                checker: "orders".into(),
                // A catch-up: minutes that left the horizon are MISSED, then GOOD ones.
                checks: vec![
                    record("orders", 5_760, Status::Missed),
                    record("orders", 5_820, Status::Missed),
                    record("orders", 5_940, Status::Good),
                    record("orders", 5_880, Status::Good),
                    record("orders", 6_000, Status::Bad),
                ],
                ..CheckerOutcome::default()
            }],
            duration: Duration::from_millis(250),
        };
        stats.record_cycle(&report);
        let snapshot = stats.snapshot();
        assert_eq!(snapshot.checks, [2, 1, 0, 2], "good, bad, error, missed");
        assert_eq!(snapshot.last_good.get(&("orders".into(), 0)), Some(&5_940));
        assert_eq!(snapshot.cycles, 1);
        let last = snapshot.last_cycle.unwrap();
        assert_eq!((last.minute, last.finished_at), (6_000, 10_000));
        assert_eq!(last.duration, Duration::from_millis(250));
        // 10 000 is 3 940 s past the end of minute 6 000.
        assert_eq!(snapshot.lag_seconds(), 3_940);
        assert_eq!(snapshot.lag_at(6_059), 0);
    }

    #[test]
    fn fetch_durations_fall_into_their_buckets() {
        let mut fetch = FetchStats::default();
        for seconds in [0.001, 0.005, 0.3, 61.0] {
            fetch.observe(seconds);
        }
        assert_eq!(fetch.buckets[0], 2, "0.005 is in the le=0.005 bucket");
        assert_eq!(fetch.buckets[6], 1, "0.3 is in le=0.5");
        assert_eq!(
            fetch.buckets[FETCH_BUCKETS.len()],
            1,
            "61 s is only in +Inf"
        );
        assert_eq!(fetch.count, 4);
    }

    #[test]
    fn before_the_first_cycle_the_lag_counts_from_the_start() {
        let clock = Arc::new(AtomicI64::new(1_000));
        let stats = {
            let clock = Arc::clone(&clock);
            RunnerStats::new(Arc::new(move || clock.load(Ordering::SeqCst)))
        };
        clock.store(1_030, Ordering::SeqCst);
        assert_eq!(stats.snapshot().lag_seconds(), 30);
        stats.count_ping("success", "ok");
        stats.count_ping("success", "ok");
        assert_eq!(
            stats.snapshot().pings.get(&("success".into(), "ok".into())),
            Some(&2)
        );
    }
}
