//! Test helpers for dwmon's own tests and for organisations testing their setup: a scripted
//! [`RowGetter`], a recording [`CheckHandler`], a [`Store`] wrapper that fails on demand, a
//! [`Clock`] following Tokio's (pausable) time, builders for checkers and requirements, and
//! [`record_checks`] / [`pending_deliveries`] to write and read a store's check log directly.
//!
//! ```
//! use dwmon_core::testutil::{checker, every_minute, ScriptedSource, Step};
//! use dwmon_core::{Row, SourceError};
//!
//! let source = ScriptedSource::new();
//! source.set_rows("orders", vec![Row::new("o1", 100)]); // every call, unless...
//! source.push("orders", Step::Fail(SourceError::Other("db down".into()))); // ...next call fails
//! source.push("orders", Step::Hang); // and the one after never returns
//! let orders = checker("orders", vec![every_minute(1, 10, 300)]);
//! # assert_eq!(orders.requirements[0].horizon_minutes(), 50);
//! ```

use crate::alert_state::{
    AlertPhase, AlertState, AlertStateStore, AlertUpdate, ChannelKind, HistoryState, Notification,
    Pause, PendingNotification, SourceState, Target,
};
use crate::checker_file::Checker;
use crate::engine::Clock;
use crate::handler::{CheckHandler, HandlerError};
use crate::record::{CheckRecord, ErrorEvent, Event};
use crate::requirement::{FieldSet, Requirement, RequirementError, Schedule};
use crate::source::{FetchRequest, Fetched, Row, RowGetter, SourceError};
use crate::store::{
    CheckLog, CheckerClaim, CheckerStatus, Lease, PendingDelivery, Recorded, RowStore, Settlement,
    StoreError, StoreView,
};
use crate::MemoryStore;
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a [`ScriptedSource`] answers to one fetch.
#[derive(Debug, Clone)]
pub enum Step {
    /// These rows, none rejected.
    Rows(Vec<Row>),
    /// This full result (use it to report rejected rows).
    Fetched(Fetched),
    /// This error.
    Fail(SourceError),
    /// Never returns (the engine's fetch timeout must cut it).
    Hang,
}

#[derive(Debug, Default)]
struct Script {
    queued: HashMap<String, VecDeque<Step>>,
    standing: HashMap<String, Step>,
    calls: Vec<String>,
}

/// A [`RowGetter`] answering from a per-checker script: queued one-shot [`Step`]s first (in
/// order), then the checker's standing step, else no rows.
#[derive(Debug, Default)]
pub struct ScriptedSource {
    script: Mutex<Script>,
}

impl ScriptedSource {
    /// A source that returns no rows for every checker.
    pub fn new() -> Self {
        ScriptedSource::default()
    }

    /// Queues `step` as the answer to a later call for `checker` (after those already queued).
    pub fn push(&self, checker: &str, step: Step) {
        let mut script = lock(&self.script);
        script
            .queued
            .entry(checker.to_string())
            .or_default()
            .push_back(step);
    }

    /// Sets the answer for `checker` once its queue is empty.
    pub fn set(&self, checker: &str, step: Step) {
        lock(&self.script)
            .standing
            .insert(checker.to_string(), step);
    }

    /// Shorthand for `set(checker, Step::Rows(rows))`.
    pub fn set_rows(&self, checker: &str, rows: Vec<Row>) {
        self.set(checker, Step::Rows(rows));
    }

    /// The checkers fetched so far, in call order.
    pub fn calls(&self) -> Vec<String> {
        lock(&self.script).calls.clone()
    }

    /// How many times `checker` was fetched.
    pub fn call_count(&self, checker: &str) -> usize {
        lock(&self.script)
            .calls
            .iter()
            .filter(|c| *c == checker)
            .count()
    }
}

#[async_trait]
impl RowGetter for ScriptedSource {
    async fn get_rows(&self, request: &FetchRequest<'_>) -> Result<Fetched, SourceError> {
        let step = {
            let mut script = lock(&self.script);
            script.calls.push(request.checker.to_string());
            let queued = script
                .queued
                .get_mut(request.checker)
                .and_then(VecDeque::pop_front);
            queued.or_else(|| script.standing.get(request.checker).cloned())
        };
        match step {
            None => Ok(Fetched::default()),
            Some(Step::Rows(rows)) => Ok(Fetched::from_rows(rows)),
            Some(Step::Fetched(fetched)) => Ok(fetched),
            Some(Step::Fail(error)) => Err(error),
            Some(Step::Hang) => std::future::pending().await,
        }
    }
}

#[derive(Debug, Default)]
struct HandlerLog {
    delivered: Vec<Event>,
    attempts: Vec<String>,
    fail_next: u32,
}

/// A [`CheckHandler`] that records what it receives and fails on demand.
#[derive(Debug, Default)]
pub struct RecordingHandler {
    log: Mutex<HandlerLog>,
}

impl RecordingHandler {
    /// A handler that accepts everything.
    pub fn new() -> Self {
        RecordingHandler::default()
    }

    /// Makes the next `n` calls fail (without recording their events as delivered).
    pub fn fail_next(&self, n: u32) {
        lock(&self.log).fail_next = n;
    }

    /// Every event accepted, in order.
    pub fn events(&self) -> Vec<Event> {
        lock(&self.log).delivered.clone()
    }

    /// The accepted check records, in order.
    pub fn checks(&self) -> Vec<CheckRecord> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Check(c) => Some(c),
                Event::Error(_) => None,
            })
            .collect()
    }

    /// The accepted error events, in order.
    pub fn errors(&self) -> Vec<ErrorEvent> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Error(e) => Some(e),
                Event::Check(_) => None,
            })
            .collect()
    }

    /// The idempotency key of every call, failed ones included, in order.
    pub fn attempts(&self) -> Vec<String> {
        lock(&self.log).attempts.clone()
    }

    /// Forgets everything received so far.
    pub fn clear(&self) {
        let mut log = lock(&self.log);
        log.delivered.clear();
        log.attempts.clear();
    }
}

#[async_trait]
impl CheckHandler for RecordingHandler {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        let mut log = lock(&self.log);
        log.attempts.push(event.idempotency_key());
        if log.fail_next > 0 {
            log.fail_next -= 1;
            return Err(HandlerError::new("scripted handler failure"));
        }
        log.delivered.push(event.clone());
        Ok(())
    }
}

/// Records `records` of `checker` under a fresh claim (granted at 0) and returns how many
/// were new: [`CheckLog::claim`] then [`CheckLog::record`], for tests that write a store's
/// check log directly.
///
/// # Errors
/// The store's error, or a backend error when the store granted no claim on `checker` (a
/// multi-runner store whose claim another runner holds).
///
/// ```
/// use dwmon_core::testutil::{pending_deliveries, record_checks};
/// use dwmon_core::store_conformance::record;
/// use dwmon_core::MemoryStore;
///
/// # futures::executor::block_on(async {
/// let store = MemoryStore::new();
/// assert_eq!(record_checks(&store, "c", &[record("c", 0, 120, 1)]).await?, 1);
/// assert_eq!(record_checks(&store, "c", &[record("c", 0, 120, 1)]).await?, 0);
/// assert!(pending_deliveries(&store, 60, 10).await?.is_empty()); // due at 120
/// assert_eq!(pending_deliveries(&store, 120, 10).await?.len(), 1);
/// # Ok::<(), dwmon_core::StoreError>(())
/// # }).unwrap();
/// ```
pub async fn record_checks<S: CheckLog + ?Sized>(
    store: &S,
    checker: &str,
    records: &[CheckRecord],
) -> Result<u64, StoreError> {
    let claims = store.claim(&[checker.to_string()], 0).await?;
    let Some(claim) = claims.into_iter().find(|c| c.checker == checker) else {
        return Err(StoreError::backend(format!(
            "the store granted no claim on {checker}"
        )));
    };
    Ok(store.record(&claim, records).await?.inserted.len() as u64)
}

/// The outbox entries due at `now` (`next_attempt_at <= now`), in the outbox's order, at most
/// `limit`; `i64::MAX` gives every entry. Claimed with a lease that ends at `now`, so nothing
/// stays hidden from the engine under test.
///
/// # Errors
/// The store's error.
pub async fn pending_deliveries<S: CheckLog + ?Sized>(
    store: &S,
    now: i64,
    limit: usize,
) -> Result<Vec<PendingDelivery>, StoreError> {
    let all = store
        .claim_deliveries(usize::MAX, Lease::new(now, 0))
        .await?;
    Ok(all
        .into_iter()
        .filter(|p| p.next_attempt_at <= now)
        .take(limit)
        .collect())
}

/// A [`MemoryStore`] whose operations fail for chosen checkers (every row, check log and view
/// method that takes a checker name), to test that one checker's store trouble does not
/// affect the others. Its alert state is `inner`'s and never fails.
#[derive(Debug, Default)]
pub struct FailingStore {
    /// The store that answers for the other checkers.
    pub inner: MemoryStore,
    failing: Mutex<HashSet<String>>,
    failing_purges: Mutex<HashSet<String>>,
}

crate::delegate_alert_state_store!(FailingStore => inner);

impl FailingStore {
    /// A working store.
    pub fn new() -> Self {
        FailingStore::default()
    }

    /// Makes every operation on `checker` fail (`true`) or work again (`false`).
    pub fn set_failing(&self, checker: &str, failing: bool) {
        let mut set = lock(&self.failing);
        if failing {
            set.insert(checker.to_string());
        } else {
            set.remove(checker);
        }
    }

    /// Makes only the purges (of rows and of check records) of `checker` fail (`true`) or
    /// work again (`false`).
    pub fn set_failing_purges(&self, checker: &str, failing: bool) {
        let mut set = lock(&self.failing_purges);
        if failing {
            set.insert(checker.to_string());
        } else {
            set.remove(checker);
        }
    }

    fn check_purge(&self, checker: &str) -> Result<(), StoreError> {
        self.check(checker)?;
        if lock(&self.failing_purges).contains(checker) {
            return Err(StoreError::backend(format!(
                "scripted purge failure for {checker}"
            )));
        }
        Ok(())
    }

    fn check(&self, checker: &str) -> Result<(), StoreError> {
        if lock(&self.failing).contains(checker) {
            return Err(StoreError::backend(format!(
                "scripted failure for {checker}"
            )));
        }
        Ok(())
    }
}

#[async_trait]
impl RowStore for FailingStore {
    async fn insert_first_seen(&self, checker: &str, rows: &[Row]) -> Result<u64, StoreError> {
        self.check(checker)?;
        self.inner.insert_first_seen(checker, rows).await
    }
    async fn count_windows(
        &self,
        checker: &str,
        windows: &[(i64, i64)],
    ) -> Result<Vec<u64>, StoreError> {
        self.check(checker)?;
        self.inner.count_windows(checker, windows).await
    }
    async fn row_timestamps(
        &self,
        checker: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<i64>, StoreError> {
        self.check(checker)?;
        self.inner.row_timestamps(checker, from, to).await
    }
    async fn purge(&self, checker: &str, older_than: i64) -> Result<u64, StoreError> {
        self.check_purge(checker)?;
        self.inner.purge(checker, older_than).await
    }
}

#[async_trait]
impl CheckLog for FailingStore {
    async fn last_checked_minute(&self, checker: &str) -> Result<Option<i64>, StoreError> {
        self.check(checker)?;
        self.inner.last_checked_minute(checker).await
    }
    async fn last_checked_minutes(&self, checker: &str) -> Result<Vec<(usize, i64)>, StoreError> {
        self.check(checker)?;
        self.inner.last_checked_minutes(checker).await
    }
    async fn claim(&self, checkers: &[String], now: i64) -> Result<Vec<CheckerClaim>, StoreError> {
        self.inner.claim(checkers, now).await
    }
    async fn renew(&self, claims: &[CheckerClaim]) -> Result<Vec<CheckerClaim>, StoreError> {
        self.inner.renew(claims).await
    }
    async fn record(
        &self,
        claim: &CheckerClaim,
        records: &[CheckRecord],
    ) -> Result<Recorded, StoreError> {
        self.check(&claim.checker)?;
        self.inner.record(claim, records).await
    }
    async fn claim_deliveries(
        &self,
        limit: usize,
        lease: Lease,
    ) -> Result<Vec<PendingDelivery>, StoreError> {
        self.inner.claim_deliveries(limit, lease).await
    }
    async fn settle(&self, key: &str, settlement: &Settlement) -> Result<(), StoreError> {
        self.inner.settle(key, settlement).await
    }
    async fn record_give_up(
        &self,
        checker: &str,
        count: u64,
        minute: i64,
        message: &str,
    ) -> Result<(), StoreError> {
        self.inner
            .record_give_up(checker, count, minute, message)
            .await
    }
    async fn purge_checks(&self, checker: &str, older_than: i64) -> Result<u64, StoreError> {
        self.check_purge(checker)?;
        self.inner.purge_checks(checker, older_than).await
    }
    async fn set_last_error(
        &self,
        checker: &str,
        error: Option<(i64, &str)>,
    ) -> Result<(), StoreError> {
        self.check(checker)?;
        self.inner.set_last_error(checker, error).await
    }
}

#[async_trait]
impl StoreView for FailingStore {
    async fn status(&self) -> Result<Vec<CheckerStatus>, StoreError> {
        self.inner.status().await
    }
    async fn checks_before(
        &self,
        checker: &str,
        before: (i64, usize),
        limit: usize,
    ) -> Result<Vec<CheckRecord>, StoreError> {
        self.check(checker)?;
        self.inner.checks_before(checker, before, limit).await
    }
}

/// A [`Clock`] that starts at `start_epoch` and advances with Tokio's clock, so
/// [`Engine::run`](crate::Engine::run) can be tested under `#[tokio::test(start_paused = true)]`.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    start_epoch: i64,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// A clock reading `start_epoch` now.
    pub fn new(start_epoch: i64) -> Self {
        TokioClock {
            start_epoch,
            start: tokio::time::Instant::now(),
        }
    }
}

#[async_trait]
impl Clock for TokioClock {
    fn now(&self) -> i64 {
        let elapsed = i64::try_from(self.start.elapsed().as_secs()).unwrap_or(i64::MAX);
        self.start_epoch.saturating_add(elapsed)
    }

    async fn sleep_until(&self, epoch_seconds: i64) {
        let offset = u64::try_from(epoch_seconds.saturating_sub(self.start_epoch)).unwrap_or(0);
        tokio::time::sleep_until(self.start + Duration::from_secs(offset)).await;
    }
}

/// A schedule matching every minute of every day.
pub fn every_day_schedule(minutes: FieldSet) -> Schedule {
    Schedule {
        minutes,
        hours: FieldSet::range(0, 23),
        days: FieldSet::range(1, 31),
        months: FieldSet::range(1, 12),
        weekdays: FieldSet::range(0, 6),
    }
}

/// The minutes `0, n, 2n, ...` of the hour (`CHECKMINUTES*/n`).
pub fn every_nth_minute(n: u32) -> FieldSet {
    let mut set = FieldSet::default();
    for m in (0..60).step_by(n.max(1) as usize) {
        set.insert(m);
    }
    set
}

/// A requirement checked at `minutes` of every hour of every day.
pub fn requirement(minutes: FieldSet, min: u64, max: u64, lookback_seconds: u64) -> Requirement {
    Requirement::new(every_day_schedule(minutes), min, max, lookback_seconds)
}

/// A requirement checked every minute: `MINNUM min MAXNUM max LOOKBACKSECONDS lookback`.
pub fn every_minute(min: u64, max: u64, lookback_seconds: u64) -> Requirement {
    requirement(FieldSet::range(0, 59), min, max, lookback_seconds)
}

/// A checker named `name` with these requirements, query `SELECT 1`, source `default`,
/// extra `{}`, no zone of its own.
pub fn checker(name: &str, requirements: Vec<Requirement>) -> Checker {
    Checker {
        name: name.to_string(),
        path: None,
        query: "SELECT 1".to_string(),
        source: "default".to_string(),
        extra: serde_json::json!({}),
        timezone: None,
        requirements,
    }
}

/// A checker whose requirements are parsed from requirement lines (docs/FORMAT.md, "Requirement lines").
///
/// # Errors
/// The first line that does not parse.
pub fn checker_from_lines(name: &str, lines: &[&str]) -> Result<Checker, RequirementError> {
    let requirements = lines
        .iter()
        .map(|line| Requirement::parse(line))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(checker(name, requirements))
}

/// A firing notification of requirement 1 of `checker` at `minute` (JSON as the alerting
/// layer writes it).
///
/// # Errors
/// Never for these fields; the JSON is parsed as a stored one would be.
pub fn firing_notification(checker: &str, minute: i64) -> Result<Notification, serde_json::Error> {
    serde_json::from_value(serde_json::json!({
        "version": 1, "idempotency_key": format!("{checker}/1/{minute}/firing"), "kind": "firing",
        "requirement_index": 1,
        "incident_key": format!("{checker}/0"), "event_key": format!("{checker}/0/{minute}"),
        "checker": checker, "severity": "critical", "at": minute, "minute": minute,
        "minute_local": "1970-01-01T00:01:00+00:00", "timezone": "UTC"
    }))
}

/// The state of a requirement that started firing, and was announced, at `minute`.
pub fn firing_state(minute: i64) -> AlertState {
    AlertState {
        phase: AlertPhase::Firing,
        consecutive_bad: 1,
        last_minute: Some(minute),
        firing_since: Some(minute),
        announced: true,
        ..AlertState::default()
    }
}

/// Round trips every [`AlertStateStore`] must pass (states, sources, notifications and their
/// progress, history with reasons, pauses set and lifted, pruning), asserting as it goes; the
/// store must be empty. dwmon runs it on the memory, SQLite and PostgreSQL stores.
///
/// # Errors
/// The store's errors.
///
/// # Panics
/// On any behaviour that differs.
pub async fn alert_state_round_trips(
    store: &dyn AlertStateStore,
) -> Result<(), Box<dyn std::error::Error>> {
    assert_eq!(store.alert_state("orders", 0).await?, None);
    assert_eq!(store.pause("orders").await?, None);
    let target = Target::new(ChannelKind::Log, "");
    let mut entry =
        PendingNotification::new(firing_notification("orders", 60)?, vec![target.clone()]);
    let update = AlertUpdate {
        checker: "orders".into(),
        alert: Some((1, firing_state(60))),
        source: Some(SourceState {
            failing: true,
            since: Some(0),
            last_error: Some("timeout".into()),
            ..SourceState::default()
        }),
        notifications: vec![entry.clone()],
        at: Some(60),
    };
    store.apply(&update).await?;
    assert_eq!(
        store.alert_state("orders", 1).await?,
        Some(firing_state(60))
    );
    assert_eq!(store.alert_states("orders").await?, [(1, firing_state(60))]);
    assert!(store
        .source_state("orders")
        .await?
        .is_some_and(|s| s.failing));
    // A second enqueue of the same key keeps the first entry and its progress.
    entry.delivered.push(target.id());
    entry.attempts = 2;
    entry.last_error = Some("down".into());
    store.save_progress(&entry).await?;
    store.apply(&update).await?;
    assert_eq!(store.pending("orders").await?, [entry.clone()]);
    assert!(store.pending("other").await?.is_empty());
    // The history: the requirement's change with its notification and the source's, once
    // (the replayed enqueue above added nothing).
    let history: Vec<_> = store
        .history("orders", 10)
        .await?
        .into_iter()
        .map(|e| (e.at, e.requirement_index, e.from, e.to, e.idempotency_key))
        .collect();
    assert_eq!(
        history,
        [
            (
                60,
                None,
                HistoryState::SourceOk,
                HistoryState::SourceError,
                None
            ),
            (
                60,
                Some(1),
                HistoryState::Ok,
                HistoryState::Firing,
                Some("orders/1/60/firing".to_string())
            ),
        ],
        "newest first"
    );
    assert_eq!(store.history("orders", 1).await?.len(), 1);
    assert!(store.history("other", 10).await?.is_empty());
    store.complete(&entry.notification.idempotency_key).await?;
    assert!(store.pending("orders").await?.is_empty());
    // Decided from a state that is no longer the stored one: nothing is written.
    let rewrite = AlertUpdate {
        checker: "orders".into(),
        alert: Some((1, firing_state(60))),
        ..AlertUpdate::default()
    };
    let stale = crate::alert_state::DecidedFrom {
        alert: Some((1, None)),
        source: None,
    };
    let reset = AlertUpdate {
        alert: Some((1, AlertState::default())),
        ..rewrite.clone()
    };
    assert!(!store.apply_if_unchanged(&reset, &stale).await?);
    assert_eq!(
        store.alert_state("orders", 1).await?,
        Some(firing_state(60))
    );
    let current = crate::alert_state::DecidedFrom {
        alert: Some((1, Some(firing_state(60)))),
        source: Some(store.source_state("orders").await?),
    };
    assert!(store.apply_if_unchanged(&rewrite, &current).await?);

    let pause = Pause {
        since: 0,
        until: Some(3600),
        comment: Some("migration".into()),
    };
    store.set_pause("orders", Some(&pause)).await?;
    assert_eq!(store.pause("orders").await?, Some(pause.clone()));
    let overview = store.overview().await?;
    assert_eq!(overview.alerts.len(), 1);
    assert_eq!(overview.sources.len(), 1);
    assert_eq!(overview.pauses, [("orders".to_string(), pause.clone())]);
    store.set_pause("orders", None).await?;
    assert_eq!(store.pause("orders").await?, None);
    let newest = store.history("orders", 1).await?;
    assert_eq!(
        newest
            .iter()
            .map(|e| (e.at, e.from, e.to))
            .collect::<Vec<_>>(),
        [(0, HistoryState::Active, HistoryState::Paused)]
    );
    assert_eq!(
        newest[0].reason.as_deref(),
        Some("migration"),
        "the comment"
    );
    // Lifted at a time, by someone: in the history; lifting again changes nothing.
    store.set_pause("orders", Some(&pause)).await?;
    assert_eq!(
        store
            .lift_pause("orders", 90, Some("dwmon unpause"))
            .await?,
        Some(pause.clone())
    );
    assert_eq!(store.pause("orders").await?, None);
    assert_eq!(store.lift_pause("orders", 95, None).await?, None);
    let newest = store.history("orders", 2).await?;
    assert_eq!(
        newest
            .iter()
            .map(|e| (e.at, e.from, e.to, e.reason.as_deref()))
            .collect::<Vec<_>>(),
        [
            (
                90,
                HistoryState::Paused,
                HistoryState::Active,
                Some("dwmon unpause")
            ),
            (
                0,
                HistoryState::Active,
                HistoryState::Paused,
                Some("migration")
            )
        ]
    );
    let source_error = store
        .history("orders", 10)
        .await?
        .into_iter()
        .find(|e| e.to == HistoryState::SourceError)
        .ok_or("no source error in the history")?;
    assert_eq!(source_error.reason.as_deref(), Some("timeout"));

    for (checker, index) in [("orders", 0), ("orders", 2), ("gone", 0)] {
        store
            .apply(&AlertUpdate {
                checker: checker.into(),
                alert: Some((index, AlertState::default())),
                ..AlertUpdate::default()
            })
            .await?;
    }
    let known = BTreeMap::from([("orders".to_string(), 2)]);
    assert_eq!(store.prune(&known).await?, 2, "orders #2 and gone #0");
    let left: Vec<usize> = store
        .alert_states("orders")
        .await?
        .into_iter()
        .map(|(i, _)| i)
        .collect();
    assert_eq!(left, [0, 1]);
    assert_eq!(store.source_state("gone").await?, None);
    Ok(())
}
