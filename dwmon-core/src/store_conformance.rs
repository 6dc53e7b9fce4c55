//! A conformance suite any [`Store`] runs in its own tests with one call (feature
//! `test-suite`), so every store honours the contract the engine relies on: first-seen
//! semantics, half-open windows, `record` idempotent per `(checker, requirement_index, minute)`
//! and returning the stored versions, the outbox order, settlements and retry times, the
//! outbox and check log surviving a reopen, two handles recording one minute at once, fencing
//! of stale claims and their renewal, purge boundaries, the status views, and the alert state
//! (round trips, its history's order and limit, surviving a reopen, two handles at once).
//!
//! A store's test implements [`StoreFactory`] (a new empty store; the same store opened again)
//! and calls [`run_all`]:
//!
//! ```
//! use async_trait::async_trait;
//! use dwmon_core::store_conformance::{self, StoreFactory};
//! use dwmon_core::{MemoryStore, StoreError};
//! use std::sync::Arc;
//!
//! struct Memory;
//!
//! #[async_trait]
//! impl StoreFactory for Memory {
//!     type Store = Arc<MemoryStore>;
//!     async fn create(&self) -> Result<Self::Store, StoreError> {
//!         Ok(Arc::new(MemoryStore::new()))
//!     }
//!     async fn reopen(&self, store: &Self::Store) -> Result<Self::Store, StoreError> {
//!         Ok(store.clone()) // nothing outlives the process: the same store
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! store_conformance::run_all(&Memory).await.unwrap();
//! # });
//! ```
//!
//! See `dwmon-sqlite/tests/store_conformance.rs` (a file store, reopened from its path) and
//! `dwmon-core/tests/store_conformance.rs` (`MemoryStore`) for more.

use crate::alert_state::{
    AlertPhase, AlertState, AlertStateStore, AlertStoreError, AlertTransition, AlertUpdate,
    ChannelKind, HistoryState, Notification, NotificationKind, Pause, PendingNotification,
    SourceState, Target, HISTORY_PER_CHECKER,
};
use crate::ping::PingKind;
use crate::ping_log::{Ping, PingEntry, PingLog};
use crate::record::{CheckRecord, Status};
use crate::runs::Run;
use crate::source::Row;
use crate::store::{
    CheckLog, CheckerClaim, Lease, PendingDelivery, Recorded, Retry, RowStore, Settlement, Store,
    StoreError, StoreView,
};
use async_trait::async_trait;
use std::collections::BTreeMap;

/// What a store's test provides to run the suite.
#[async_trait]
pub trait StoreFactory: Send + Sync {
    /// The store under test.
    type Store: Store + 'static;

    /// A new, empty store.
    ///
    /// # Errors
    /// When the store cannot be created.
    async fn create(&self) -> Result<Self::Store, StoreError>;

    /// Another handle on `store`'s data, as a restarted process (or a second runner) opens it:
    /// for a persistent store a new connection to the same file or database. The suite drops
    /// `store` after this to check what survives it. A store whose data cannot outlive its
    /// handle (in memory) returns a handle sharing it.
    ///
    /// # Errors
    /// When the store cannot be opened again.
    async fn reopen(&self, store: &Self::Store) -> Result<Self::Store, StoreError>;
}

/// A contract the store broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("store conformance case {case:?}: {message}")]
pub struct Failure {
    /// The case's name.
    pub case: &'static str,
    /// What went wrong.
    pub message: String,
}

/// Runs every case, each on a store of its own from `factory`.
///
/// # Errors
/// The first case the store fails, with what it did instead.
pub async fn run_all<F: StoreFactory + ?Sized>(factory: &F) -> Result<(), Failure> {
    first_seen(factory).await?;
    half_open_windows(factory).await?;
    record_is_idempotent(factory).await?;
    record_refuses_other_checkers(factory).await?;
    outbox_order_and_settlements(factory).await?;
    outbox_survives_reopen(factory).await?;
    concurrent_handles(factory).await?;
    stale_claims_are_refused(factory).await?;
    renewed_claims_keep_their_fence(factory).await?;
    purge_boundaries(factory).await?;
    status_views(factory).await?;
    last_good_minutes(factory).await?;
    alert_state_round_trips(factory).await?;
    alert_history_order_and_limit(factory).await?;
    alert_state_survives_reopen(factory).await?;
    alert_state_two_handles(factory).await?;
    Ok(())
}

/// The [`PingLog`] case: runs pair each finish with the latest open start of its `rid`,
/// whatever the history's `keep`; [`PingLog::runs`] selects by start or finish in a
/// half-open range; each finish's history entry carries its run's duration. `log` must
/// hold no pings of the checkers `job` and `other` yet. (Not part of [`run_all`]: a
/// [`Store`] need not be a ping log. `MemoryPingLog` and `SqliteStore` run it.)
///
/// # Errors
/// The first broken promise.
pub async fn ping_log_runs<L: PingLog + ?Sized>(log: &L) -> Result<(), Failure> {
    const CASE: &str = "ping_log_runs";
    let err = |e: StoreError| fail(CASE, e.to_string());
    let ping = |key: &str, kind: PingKind, time: i64, rid: Option<&str>| Ping {
        row: Row::new(key, time),
        entry: PingEntry {
            rid: rid.map(str::to_string),
            ..PingEntry::new("job", kind, time)
        },
    };
    // keep = 1: pairing must not depend on the history's length.
    let batches = [
        vec![
            ping("s1", PingKind::Start, 100, Some("a")),
            ping("s2", PingKind::Start, 110, None),
        ],
        vec![ping("l1", PingKind::Log, 115, None)],
        vec![ping("f1", PingKind::Success, 130, None)],
        vec![ping("f2", PingKind::Fail, 200, Some("a"))],
        vec![
            ping("f3", PingKind::Success, 210, Some("b")),
            ping("s3", PingKind::Start, 300, None),
        ],
    ];
    let durations = [None, None, Some(20), Some(100), None];
    for (batch, duration) in batches.iter().zip(durations) {
        log.record_pings(batch, 1).await.map_err(err)?;
        let newest = log.recent_pings("job", 5).await.map_err(err)?;
        let last = batch.last().map(|p| p.entry.time);
        expect_eq(
            CASE,
            "the newest entry and its run duration",
            newest.first().map(|e| (e.time, e.duration_seconds)),
            last.map(|t| (t, duration)),
        )?;
    }
    let run = |start, rid: Option<&str>, finish| Run {
        start,
        rid: rid.map(str::to_string),
        finish,
    };
    let all = vec![
        run(100, Some("a"), Some(200)),
        run(110, None, Some(130)),
        run(300, None, None),
    ];
    let runs = |from, to| log.runs("job", from, to);
    expect_eq(
        CASE,
        "every run",
        runs(0, 1_000).await.map_err(err)?,
        all.clone(),
    )?;
    expect_eq(
        CASE,
        "runs started or finished in [130, 131)",
        runs(130, 131).await.map_err(err)?,
        vec![all[1].clone()],
    )?;
    expect_eq(
        CASE,
        "runs started or finished in [131, 300)",
        runs(131, 300).await.map_err(err)?,
        vec![all[0].clone()],
    )?;
    expect_eq(
        CASE,
        "runs started or finished in [300, 301)",
        runs(300, 301).await.map_err(err)?,
        vec![all[2].clone()],
    )?;
    expect_eq(
        CASE,
        "another checker's runs",
        log.runs("other", 0, 1_000).await.map_err(err)?,
        Vec::new(),
    )?;
    // The open start ends with the next finish without rid.
    log.record_pings(&[ping("f4", PingKind::Success, 400, None)], 1)
        .await
        .map_err(err)?;
    expect_eq(
        CASE,
        "the open run, finished",
        runs(300, 301).await.map_err(err)?,
        vec![run(300, None, Some(400))],
    )?;
    // A start retried with its key (`curl --retry` after a lost answer) counts once and
    // opens one run, in one batch or across batches: no run is left open by the retries.
    log.record_pings(
        &[
            ping("again", PingKind::Start, 500, Some("r")),
            ping("again", PingKind::Start, 501, Some("r")),
        ],
        1,
    )
    .await
    .map_err(err)?;
    log.record_pings(&[ping("again", PingKind::Start, 502, Some("r"))], 1)
        .await
        .map_err(err)?;
    log.record_pings(&[ping("f5", PingKind::Success, 530, Some("r"))], 1)
        .await
        .map_err(err)?;
    expect_eq(
        CASE,
        "a retried start's runs",
        runs(450, 1_000).await.map_err(err)?,
        vec![run(500, Some("r"), Some(530))],
    )?;
    Ok(())
}

/// A check record of `checker`, requirement `index`, at `minute`, with `count`.
pub fn record(checker: &str, index: usize, minute: i64, count: u64) -> CheckRecord {
    CheckRecord {
        checker: checker.to_string(),
        requirement_index: index,
        requirement: format!("requirement {index}"),
        minute,
        minute_local: String::new(),
        timezone: "UTC".to_string(),
        lookback_seconds: 60,
        count,
        min: 1,
        max: 10,
        status: Status::judge(count, 1, 10),
        extra: serde_json::json!({"team": "data"}),
        monitor: None,
        runs: None,
    }
}

const LEASE: Lease = Lease {
    now: 100_000,
    until: 100_600,
};

fn fail(case: &'static str, message: impl Into<String>) -> Failure {
    Failure {
        case,
        message: message.into(),
    }
}

/// `Err(Failure)` unless `got == want`.
fn expect_eq<T: PartialEq + std::fmt::Debug>(
    case: &'static str,
    what: &str,
    got: T,
    want: T,
) -> Result<(), Failure> {
    if got == want {
        Ok(())
    } else {
        Err(fail(case, format!("{what}: got {got:?}, want {want:?}")))
    }
}

/// Maps a store error to a failure of `case`.
fn store<T>(case: &'static str, result: Result<T, StoreError>) -> Result<T, Failure> {
    result.map_err(|e| fail(case, format!("store error: {e}")))
}

async fn create<F: StoreFactory + ?Sized>(
    factory: &F,
    case: &'static str,
) -> Result<F::Store, Failure> {
    store(case, factory.create().await)
}

async fn claim_one(
    case: &'static str,
    store_: &dyn Store,
    checker: &str,
    now: i64,
) -> Result<CheckerClaim, Failure> {
    let claims = store(case, store_.claim(&[checker.to_string()], now).await)?;
    match claims.into_iter().find(|c| c.checker == checker) {
        Some(claim) => Ok(claim),
        None => Err(fail(
            case,
            format!("an unclaimed checker {checker:?} was not granted"),
        )),
    }
}

async fn record_all(
    case: &'static str,
    store_: &dyn Store,
    records: &[CheckRecord],
) -> Result<Recorded, Failure> {
    let claim = claim_one(case, store_, &records[0].checker, LEASE.now).await?;
    store(case, store_.record(&claim, records).await)
}

fn keys(entries: &[PendingDelivery]) -> Vec<&str> {
    entries.iter().map(|e| e.key.as_str()).collect()
}

async fn last_good_minutes<F: StoreFactory + ?Sized>(factory: &F) -> Result<(), Failure> {
    const CASE: &str = "last GOOD minutes";
    let s = create(factory, CASE).await?;
    // c #0: GOOD, GOOD, BAD; c #1: BAD only; d #0: GOOD. Count 0 is BAD (1..10).
    record_all(
        CASE,
        &s,
        &[
            record("c", 0, 60, 5),
            record("c", 1, 60, 0),
            record("c", 0, 120, 5),
            record("c", 0, 180, 0),
        ],
    )
    .await?;
    record_all(CASE, &s, &[record("d", 0, 60, 3)]).await?;
    let asked = ["d".to_string(), "c".to_string(), "x".to_string()];
    let want = vec![("d".to_string(), 0, 60), ("c".to_string(), 0, 120)];
    expect_eq(
        CASE,
        "the newest GOOD minute per line, in the order asked",
        store(CASE, s.last_good_minutes(&asked).await)?,
        want.clone(),
    )?;
    expect_eq(
        CASE,
        "no checkers asked",
        store(CASE, s.last_good_minutes(&[]).await)?,
        Vec::new(),
    )?;
    let again = store(CASE, factory.reopen(&s).await)?;
    expect_eq(
        CASE,
        "after reopening",
        store(CASE, again.last_good_minutes(&asked).await)?,
        want,
    )
}

async fn first_seen<F: StoreFactory + ?Sized>(factory: &F) -> Result<(), Failure> {
    const CASE: &str = "first-seen rows";
    let s = create(factory, CASE).await?;
    let rows = [Row::new("a", 100), Row::new("a", 50), Row::new("b", 120)];
    let new = store(CASE, s.insert_first_seen("c", &rows).await)?;
    expect_eq(CASE, "new rows of a batch with a repeated key", new, 2)?;
    let new = store(CASE, s.insert_first_seen("c", &[Row::new("b", 10)]).await)?;
    expect_eq(CASE, "new rows when the key is stored", new, 0)?;
    let stamps = store(CASE, s.row_timestamps("c", i64::MIN, i64::MAX).await)?;
    expect_eq(
        CASE,
        "timestamps (first occurrence wins)",
        stamps,
        vec![100, 120],
    )?;
    let new = store(CASE, s.insert_first_seen("d", &[Row::new("a", 10)]).await)?;
    expect_eq(CASE, "the same key of another checker", new, 1)?;
    let new = store(CASE, s.insert_first_seen("c", &[]).await)?;
    expect_eq(CASE, "an empty batch", new, 0)
}

async fn half_open_windows<F: StoreFactory + ?Sized>(factory: &F) -> Result<(), Failure> {
    const CASE: &str = "half-open windows";
    let s = create(factory, CASE).await?;
    let rows = [Row::new("a", 60), Row::new("b", 119), Row::new("c", 120)];
    store(CASE, s.insert_first_seen("c", &rows).await)?;
    let windows = [
        (60, 120),
        (120, 180),
        (0, 60),
        (61, 120),
        (100, 50),
        (i64::MIN, i64::MAX),
    ];
    let counts = store(CASE, s.count_windows("c", &windows).await)?;
    expect_eq(CASE, "counts of [from, to)", counts, vec![2, 1, 0, 1, 0, 3])?;
    let count = store(CASE, s.count("unknown", i64::MIN, i64::MAX).await)?;
    expect_eq(CASE, "an unknown checker", count, 0)?;
    let stamps = store(CASE, s.row_timestamps("c", 60, 120).await)?;
    expect_eq(CASE, "row timestamps of [60, 120)", stamps, vec![60, 119])
}

async fn record_is_idempotent<F: StoreFactory + ?Sized>(factory: &F) -> Result<(), Failure> {
    const CASE: &str = "record is idempotent";
    let s = create(factory, CASE).await?;
    let first = [record("c", 0, 120, 3), record("c", 1, 120, 0)];
    let recorded = record_all(CASE, &s, &first).await?;
    expect_eq(CASE, "inserted", recorded.inserted, first.to_vec())?;
    expect_eq(CASE, "existing", recorded.existing, vec![])?;
    // The same minute again (with another count: a second runner's view) and a new one.
    let second = [record("c", 0, 120, 7), record("c", 0, 180, 5)];
    let recorded = record_all(CASE, &s, &second).await?;
    expect_eq(
        CASE,
        "inserted the second time",
        recorded.inserted,
        vec![second[1].clone()],
    )?;
    expect_eq(
        CASE,
        "the stored version of a recorded minute",
        recorded.existing,
        vec![first[0].clone()],
    )?;
    let last = store(CASE, s.last_checked_minute("c").await)?;
    expect_eq(CASE, "last checked minute", last, Some(180))?;
    let per = store(CASE, s.last_checked_minutes("c").await)?;
    expect_eq(
        CASE,
        "last checked minute per requirement",
        per,
        vec![(0, 180), (1, 120)],
    )?;
    let outbox = store(CASE, s.claim_deliveries(100, LEASE).await)?;
    expect_eq(
        CASE,
        "one outbox entry per inserted record",
        keys(&outbox),
        vec!["c/0/120", "c/1/120", "c/0/180"],
    )?;
    expect_eq(
        CASE,
        "the outbox holds the first version",
        &outbox[0].record,
        &first[0],
    )?;
    let later = record_all(CASE, &s, &[record("c", 0, 240, 1)]).await?;
    expect_eq(CASE, "a new minute", later.inserted.len(), 1)?;
    let claim = claim_one(CASE, &s, "c", LEASE.now).await?;
    let nothing = store(CASE, s.record(&claim, &[]).await)?;
    expect_eq(CASE, "recording nothing", nothing, Recorded::default())
}

async fn record_refuses_other_checkers<F: StoreFactory + ?Sized>(
    factory: &F,
) -> Result<(), Failure> {
    const CASE: &str = "record refuses a record of another checker";
    let s = create(factory, CASE).await?;
    let claim = claim_one(CASE, &s, "c", LEASE.now).await?;
    let mixed = [record("c", 0, 60, 1), record("other", 0, 60, 1)];
    if s.record(&claim, &mixed).await.is_ok() {
        return Err(fail(
            CASE,
            "a batch with another checker's record was accepted",
        ));
    }
    let last = store(CASE, s.last_checked_minute("c").await)?;
    expect_eq(CASE, "nothing of the refused batch recorded", last, None)
}

async fn outbox_order_and_settlements<F: StoreFactory + ?Sized>(
    factory: &F,
) -> Result<(), Failure> {
    const CASE: &str = "outbox order, settlements and retry times";
    let s = create(factory, CASE).await?;
    record_all(CASE, &s, &[record("b", 1, 120, 1), record("b", 0, 180, 1)]).await?;
    record_all(CASE, &s, &[record("a", 0, 180, 1), record("a", 0, 120, 1)]).await?;
    let all = store(CASE, s.claim_deliveries(100, LEASE).await)?;
    expect_eq(
        CASE,
        "order: checker, minute, requirement index",
        keys(&all),
        vec!["a/0/120", "a/0/180", "b/1/120", "b/0/180"],
    )?;
    let fresh = &all[0];
    expect_eq(CASE, "a new entry's attempts", fresh.attempts, 0)?;
    expect_eq(
        CASE,
        "a new entry is due at its minute",
        fresh.next_attempt_at,
        120,
    )?;
    expect_eq(
        CASE,
        "a new entry's first attempt",
        fresh.first_attempt_at,
        None,
    )?;
    let limited = store(CASE, s.claim_deliveries(2, LEASE).await)?;
    expect_eq(
        CASE,
        "at most `limit`",
        keys(&limited),
        vec!["a/0/120", "a/0/180"],
    )?;

    let failed = Retry {
        at: 100_300,
        error: Some("target down".into()),
        delivered_to: vec!["slack".into()],
        first_attempt_at: 100_000,
    };
    store(
        CASE,
        s.settle("a/0/120", &Settlement::RetryAt(failed)).await,
    )?;
    let skipped = Retry {
        at: 100_300,
        error: None,
        delivered_to: vec!["slack".into(), "mail".into()],
        first_attempt_at: 100_060,
    };
    store(
        CASE,
        s.settle("a/0/120", &Settlement::RetryAt(skipped)).await,
    )?;
    store(CASE, s.settle("a/0/180", &Settlement::Delivered).await)?;
    store(
        CASE,
        s.settle("b/1/120", &Settlement::GaveUp("gone".into()))
            .await,
    )?;
    store(CASE, s.settle("no/0/60", &Settlement::Delivered).await)?;
    let left = store(CASE, s.claim_deliveries(100, LEASE).await)?;
    expect_eq(
        CASE,
        "entries left after Delivered and GaveUp",
        keys(&left),
        vec!["a/0/120", "b/0/180"],
    )?;
    let kept = &left[0];
    expect_eq(
        CASE,
        "attempts (a round without error adds none)",
        kept.attempts,
        1,
    )?;
    expect_eq(CASE, "next attempt", kept.next_attempt_at, 100_300)?;
    expect_eq(
        CASE,
        "last error",
        kept.last_error.as_deref(),
        Some("target down"),
    )?;
    expect_eq(
        CASE,
        "delivered to",
        kept.delivered_to.clone(),
        vec!["slack".to_string(), "mail".to_string()],
    )?;
    expect_eq(
        CASE,
        "the first attempt is kept",
        kept.first_attempt_at,
        Some(100_000),
    )?;
    Ok(())
}

async fn outbox_survives_reopen<F: StoreFactory + ?Sized>(factory: &F) -> Result<(), Failure> {
    const CASE: &str = "outbox and check log survive a reopen";
    let s = create(factory, CASE).await?;
    store(CASE, s.insert_first_seen("c", &[Row::new("k", 90)]).await)?;
    let records = [
        record("c", 0, 120, 1),
        record("c", 0, 180, 1),
        record("c", 0, 240, 1),
    ];
    record_all(CASE, &s, &records).await?;
    store(CASE, s.settle("c/0/120", &Settlement::Delivered).await)?;
    let retry = Retry {
        at: 100_120,
        error: Some("timeout".into()),
        delivered_to: vec!["a".into()],
        first_attempt_at: 100_000,
    };
    store(CASE, s.settle("c/0/180", &Settlement::RetryAt(retry)).await)?;
    let again = store(CASE, factory.reopen(&s).await)?;
    drop(s);
    let left = store(CASE, again.claim_deliveries(100, LEASE).await)?;
    expect_eq(
        CASE,
        "outbox after reopening",
        keys(&left),
        vec!["c/0/180", "c/0/240"],
    )?;
    expect_eq(CASE, "its record", &left[0].record, &records[1])?;
    expect_eq(CASE, "its attempts", left[0].attempts, 1)?;
    expect_eq(CASE, "its next attempt", left[0].next_attempt_at, 100_120)?;
    expect_eq(
        CASE,
        "its progress",
        left[0].delivered_to.clone(),
        vec!["a".to_string()],
    )?;
    let last = store(CASE, again.last_checked_minute("c").await)?;
    expect_eq(CASE, "last checked minute after reopening", last, Some(240))?;
    let count = store(CASE, again.count("c", 0, 100).await)?;
    expect_eq(CASE, "rows after reopening", count, 1)?;
    let recorded = record_all(CASE, &again, &records[..1]).await?;
    expect_eq(
        CASE,
        "a delivered minute is still recorded",
        recorded.existing,
        records[..1].to_vec(),
    )
}

async fn concurrent_handles<F: StoreFactory + ?Sized>(factory: &F) -> Result<(), Failure> {
    const CASE: &str = "two handles record one minute at once";
    let one = create(factory, CASE).await?;
    let two = store(CASE, factory.reopen(&one).await)?;
    for round in 0..20_i64 {
        let minute = 60 * (round + 1);
        let mine = [record("c", 0, minute, 1), record("c", 1, minute, 1)];
        let theirs = [record("c", 0, minute, 2), record("c", 1, minute, 2)];
        let claim_one_ = claim_one(CASE, &one, "c", LEASE.now).await;
        let claim_two = claim_one(CASE, &two, "c", LEASE.now).await;
        let (a, b) = futures::join!(
            async {
                match &claim_one_ {
                    Ok(claim) => Some(one.record(claim, &mine).await),
                    Err(_) => None,
                }
            },
            async {
                match &claim_two {
                    Ok(claim) => Some(two.record(claim, &theirs).await),
                    Err(_) => None,
                }
            }
        );
        let mut inserted: Vec<CheckRecord> = Vec::new();
        let mut winners = 0;
        for result in [a, b].into_iter().flatten() {
            match result {
                Ok(recorded) => {
                    winners += 1;
                    let mut stored = recorded.stored();
                    stored.sort_by_key(|r| r.requirement_index);
                    expect_eq(
                        CASE,
                        "records as stored, one per requirement",
                        stored.len(),
                        2,
                    )?;
                    inserted.extend(recorded.inserted);
                }
                Err(e) if e.is_stale_claim() => {}
                Err(e) => return Err(fail(CASE, format!("store error: {e}"))),
            }
        }
        if winners == 0 {
            return Err(fail(CASE, "neither handle recorded the minute"));
        }
        inserted.sort_by_key(|r| r.requirement_index);
        let indexes: Vec<usize> = inserted.iter().map(|r| r.requirement_index).collect();
        expect_eq(
            CASE,
            "each requirement inserted exactly once",
            indexes,
            vec![0, 1],
        )?;
        let log = store(CASE, one.checks_before("c", (minute + 1, 0), 10).await)?;
        let at_minute: Vec<&CheckRecord> = log.iter().filter(|r| r.minute == minute).collect();
        expect_eq(CASE, "check log entries of the minute", at_minute.len(), 2)?;
        for stored in &at_minute {
            let won = inserted
                .iter()
                .find(|r| r.requirement_index == stored.requirement_index);
            expect_eq(
                CASE,
                "the log holds the inserted version",
                Some(*stored),
                won,
            )?;
        }
    }
    let outbox = store(CASE, two.claim_deliveries(1000, LEASE).await)?;
    expect_eq(CASE, "outbox entries: one per check", outbox.len(), 40)
}

async fn stale_claims_are_refused<F: StoreFactory + ?Sized>(factory: &F) -> Result<(), Failure> {
    const CASE: &str = "a stale claim is refused";
    let s = create(factory, CASE).await?;
    let old = claim_one(CASE, &s, "c", LEASE.now).await?;
    let new = claim_one(CASE, &s, "c", LEASE.now + 60).await?;
    if new.fence <= old.fence {
        return Err(fail(
            CASE,
            format!(
                "a later claim's fence {} is not above {}",
                new.fence, old.fence
            ),
        ));
    }
    match s.record(&old, &[record("c", 0, 120, 1)]).await {
        Err(StoreError::StaleClaim { .. }) => {}
        Err(e) => return Err(fail(CASE, format!("want StaleClaim, got {e}"))),
        Ok(_) => return Err(fail(CASE, "a record under a superseded claim was stored")),
    }
    let last = store(CASE, s.last_checked_minute("c").await)?;
    expect_eq(CASE, "nothing recorded under the stale claim", last, None)?;
    let outbox = store(CASE, s.claim_deliveries(10, LEASE).await)?;
    expect_eq(
        CASE,
        "nothing enqueued under the stale claim",
        outbox.len(),
        0,
    )?;
    let recorded = store(CASE, s.record(&new, &[record("c", 0, 120, 1)]).await)?;
    expect_eq(
        CASE,
        "the current claim records",
        recorded.inserted.len(),
        1,
    )?;
    let other = claim_one(CASE, &s, "d", LEASE.now).await?;
    let recorded = store(CASE, s.record(&other, &[record("d", 0, 120, 1)]).await)?;
    expect_eq(
        CASE,
        "claims of other checkers stay valid",
        recorded.inserted.len(),
        1,
    )
}

async fn renewed_claims_keep_their_fence<F: StoreFactory + ?Sized>(
    factory: &F,
) -> Result<(), Failure> {
    const CASE: &str = "a renewed claim keeps its fence and records";
    let s = create(factory, CASE).await?;
    let old = claim_one(CASE, &s, "c", LEASE.now).await?;
    let new = claim_one(CASE, &s, "c", LEASE.now + 60).await?;
    let renewed = store(CASE, s.renew(&[old.clone(), new.clone()]).await)?;
    let Some(held) = renewed.iter().find(|c| c.fence == new.fence) else {
        return Err(fail(
            CASE,
            format!("the current claim was not renewed: {renewed:?}"),
        ));
    };
    expect_eq(
        CASE,
        "the renewed claim's checker",
        held.checker.as_str(),
        "c",
    )?;
    if held.until < new.until {
        return Err(fail(
            CASE,
            format!(
                "renewal shortened the lease: {} < {}",
                held.until, new.until
            ),
        ));
    }
    let recorded = store(CASE, s.record(held, &[record("c", 0, 120, 1)]).await)?;
    expect_eq(
        CASE,
        "the renewed claim records",
        recorded.inserted.len(),
        1,
    )?;
    // Renewing a superseded claim may report it held or lost, but it never records.
    match s.record(&old, &[record("c", 0, 180, 1)]).await {
        Err(StoreError::StaleClaim { .. }) => {}
        Err(e) => return Err(fail(CASE, format!("want StaleClaim, got {e}"))),
        Ok(_) => {
            return Err(fail(
                CASE,
                "a record under a renewed superseded claim was stored",
            ))
        }
    }
    let nothing = store(CASE, s.renew(&[]).await)?;
    expect_eq(CASE, "renewing no claims", nothing.len(), 0)
}

async fn purge_boundaries<F: StoreFactory + ?Sized>(factory: &F) -> Result<(), Failure> {
    const CASE: &str = "purge boundaries";
    let s = create(factory, CASE).await?;
    let rows = [
        Row::new("a", 10),
        Row::new("b", 19),
        Row::new("c", 20),
        Row::new("d", 30),
    ];
    store(CASE, s.insert_first_seen("c", &rows).await)?;
    store(CASE, s.insert_first_seen("other", &rows).await)?;
    let purged = store(CASE, s.purge("c", 20).await)?;
    expect_eq(CASE, "rows purged (timestamp < cutoff)", purged, 2)?;
    let stamps = store(CASE, s.row_timestamps("c", i64::MIN, i64::MAX).await)?;
    expect_eq(CASE, "rows left", stamps, vec![20, 30])?;
    let untouched = store(CASE, s.count("other", i64::MIN, i64::MAX).await)?;
    expect_eq(CASE, "another checker's rows", untouched, 4)?;
    let new = store(CASE, s.insert_first_seen("c", &[Row::new("a", 40)]).await)?;
    expect_eq(CASE, "a purged key is new again", new, 1)?;
    let purged = store(CASE, s.purge("unknown", 100).await)?;
    expect_eq(CASE, "purging an unknown checker", purged, 0)?;

    // Check log: everything before the cutoff goes except each requirement's newest record.
    let records = [
        record("c", 0, 60, 1),
        record("c", 1, 60, 1),
        record("c", 0, 120, 1),
        record("c", 0, 180, 1),
    ];
    record_all(CASE, &s, &records).await?;
    let deleted = store(CASE, s.purge_checks("c", 180).await)?;
    let left = store(CASE, s.checks_before("c", (i64::MAX, usize::MAX), 10).await)?;
    let left: Vec<(i64, usize)> = left
        .iter()
        .map(|r| (r.minute, r.requirement_index))
        .collect();
    if deleted == 0 && left.len() == records.len() {
        // A store that keeps its whole check log (the default `purge_checks`).
        return Ok(());
    }
    expect_eq(CASE, "check records purged", deleted, 2)?;
    expect_eq(
        CASE,
        "check records left (each requirement keeps its newest)",
        left,
        vec![(180, 0), (60, 1)],
    )?;
    let outbox = store(CASE, s.claim_deliveries(10, LEASE).await)?;
    expect_eq(
        CASE,
        "purging checks keeps their deliveries",
        outbox.len(),
        4,
    )
}

async fn status_views<F: StoreFactory + ?Sized>(factory: &F) -> Result<(), Failure> {
    const CASE: &str = "status views";
    let s = create(factory, CASE).await?;
    store(CASE, s.insert_first_seen("c", &[Row::new("k", 30)]).await)?;
    let records = [
        record("c", 0, 60, 0),
        record("c", 0, 120, 3),
        record("c", 1, 120, 3),
    ];
    record_all(CASE, &s, &records).await?;
    store(CASE, s.settle("c/0/60", &Settlement::Delivered).await)?;
    store(
        CASE,
        s.set_last_error("c", Some((120, "fetch failed"))).await,
    )?;
    let status = store(CASE, s.status().await)?;
    let Some(c) = status.iter().find(|st| st.checker == "c") else {
        return Err(fail(CASE, format!("no status for checker c in {status:?}")));
    };
    expect_eq(CASE, "last minute", c.last_minute, Some(120))?;
    let last: Vec<(usize, i64, u64, Status)> = c
        .requirements
        .iter()
        .map(|r| (r.requirement_index, r.minute, r.count, r.status))
        .collect();
    expect_eq(
        CASE,
        "last check per requirement",
        last,
        vec![(0, 120, 3, Status::Good), (1, 120, 3, Status::Good)],
    )?;
    expect_eq(CASE, "pending deliveries", c.pending_deliveries, 2)?;
    expect_eq(
        CASE,
        "last error",
        c.last_error.clone(),
        Some((120, "fetch failed".into())),
    )?;
    expect_eq(CASE, "stored rows", c.stored_rows, 1)?;
    store(CASE, s.set_last_error("c", None).await)?;
    let status = store(CASE, s.status().await)?;
    let cleared = status
        .iter()
        .find(|st| st.checker == "c")
        .map(|st| st.last_error.clone());
    expect_eq(CASE, "a cleared last error", cleared, Some(None))?;

    let page = store(CASE, s.checks_before("c", (i64::MAX, usize::MAX), 2).await)?;
    let page: Vec<(i64, usize)> = page
        .iter()
        .map(|r| (r.minute, r.requirement_index))
        .collect();
    expect_eq(CASE, "newest checks first", page, vec![(120, 1), (120, 0)])?;
    let next = store(CASE, s.checks_before("c", (120, 0), 2).await)?;
    expect_eq(CASE, "the next page", next, vec![records[0].clone()])?;
    let recent = store(CASE, s.recent_statuses("c", 10).await)?;
    expect_eq(
        CASE,
        "recent statuses",
        recent,
        vec![
            (1, 120, Status::Good),
            (0, 120, Status::Good),
            (0, 60, Status::Bad),
        ],
    )?;
    let counts = store(CASE, s.status_counts("c", &[0, 100]).await)?;
    expect_eq(
        CASE,
        "status counts since 0 and 100",
        counts,
        vec![
            (0, Status::Bad, vec![1, 0]),
            (0, Status::Good, vec![1, 1]),
            (1, Status::Good, vec![1, 1]),
        ],
    )?;
    let summary = store(CASE, s.outbox_summary().await)?;
    expect_eq(CASE, "outbox summary: pending", summary.pending, 2)?;
    if let Some(oldest) = summary.oldest_minute {
        expect_eq(CASE, "outbox summary: oldest minute", oldest, 120)?;
    }
    Ok(())
}

/// A notification of `kind` about requirement `index` of `checker` (`None`: its source) at
/// `minute`, keyed `checker/index/minute/kind` (`checker/source/minute/kind`).
pub fn notification(
    checker: &str,
    index: Option<usize>,
    minute: i64,
    kind: NotificationKind,
) -> Notification {
    let line = index.map_or_else(|| "source".to_string(), |i| i.to_string());
    Notification {
        version: 1,
        idempotency_key: format!("{checker}/{line}/{minute}/{kind}"),
        kind,
        incident_key: format!("{checker}/{line}"),
        event_key: format!("{checker}/{line}/{minute}"),
        checker: checker.to_string(),
        severity: crate::Severity::Critical,
        at: minute,
        minute,
        minute_local: String::new(),
        timezone: "UTC".to_string(),
        since: None,
        requirement_index: index,
        requirement: index.map(|i| format!("requirement {i}")),
        count: None,
        min: None,
        max: None,
        lookback_seconds: None,
        error: None,
        monitor: None,
        runs: None,
        failed_checks: None,
    }
}

/// An alert state in `phase` after `bad` BAD checks in a row, last applied at `minute`.
fn alert_state(phase: AlertPhase, bad: u32, minute: i64) -> AlertState {
    AlertState {
        phase,
        consecutive_bad: bad,
        last_minute: Some(minute),
        firing_since: (phase == AlertPhase::Firing).then_some(minute),
        announced: phase == AlertPhase::Firing,
        last_count: Some(u64::from(bad)),
        requirement: Some("requirement 0".to_string()),
        ..AlertState::default()
    }
}

/// Maps an alert store error to a failure of `case`.
fn alert<T>(case: &'static str, result: Result<T, AlertStoreError>) -> Result<T, Failure> {
    result.map_err(|e| fail(case, format!("alert store error: {e}")))
}

/// `(at, requirement_index, from, to, notification)` of each entry.
type HistoryLine = (
    i64,
    Option<usize>,
    HistoryState,
    HistoryState,
    Option<NotificationKind>,
);

fn history_lines(entries: &[AlertTransition]) -> Vec<HistoryLine> {
    entries
        .iter()
        .map(|e| (e.at, e.requirement_index, e.from, e.to, e.notification))
        .collect()
}

fn pending_keys(entries: &[PendingNotification]) -> Vec<&str> {
    entries
        .iter()
        .map(|p| p.notification.idempotency_key.as_str())
        .collect()
}

async fn alert_state_round_trips<F: StoreFactory + ?Sized>(factory: &F) -> Result<(), Failure> {
    const CASE: &str = "alert state round trips";
    let s = create(factory, CASE).await?;
    expect_eq(
        CASE,
        "a new store's state",
        alert(CASE, s.alert_state("c", 0).await)?,
        None,
    )?;
    expect_eq(
        CASE,
        "a new store's source state",
        alert(CASE, s.source_state("c").await)?,
        None,
    )?;
    expect_eq(
        CASE,
        "a new store's pause",
        alert(CASE, s.pause("c").await)?,
        None,
    )?;
    let overview = alert(CASE, s.overview().await)?;
    expect_eq(
        CASE,
        "a new store's overview is empty",
        overview.is_empty(),
        true,
    )?;

    let targets = vec![
        Target::new(ChannelKind::Log, ""),
        Target::new(ChannelKind::Webhook, "https://example.invalid/hook"),
    ];
    let firing = PendingNotification::new(
        notification("c", Some(1), 120, NotificationKind::Firing),
        targets.clone(),
    );
    let source = SourceState {
        failing: true,
        since: Some(60),
        last_error_minute: Some(120),
        last_error: Some("timeout".into()),
        announced: false,
        last_routing: Some(serde_json::json!({"team": "data"})),
    };
    let update = AlertUpdate {
        checker: "c".into(),
        alert: Some((1, alert_state(AlertPhase::Firing, 3, 120))),
        source: Some(source.clone()),
        notifications: vec![firing.clone()],
        at: Some(120),
    };
    alert(CASE, s.apply(&update).await)?;
    let zero = AlertUpdate {
        checker: "c".into(),
        alert: Some((0, alert_state(AlertPhase::Ok, 1, 120))),
        ..AlertUpdate::default()
    };
    alert(CASE, s.apply(&zero).await)?;
    expect_eq(
        CASE,
        "a saved state",
        alert(CASE, s.alert_state("c", 1).await)?,
        Some(alert_state(AlertPhase::Firing, 3, 120)),
    )?;
    expect_eq(
        CASE,
        "the states of a checker, by index",
        alert(CASE, s.alert_states("c").await)?,
        vec![
            (0, alert_state(AlertPhase::Ok, 1, 120)),
            (1, alert_state(AlertPhase::Firing, 3, 120)),
        ],
    )?;
    expect_eq(
        CASE,
        "another checker's states",
        alert(CASE, s.alert_states("d").await)?,
        vec![],
    )?;
    expect_eq(
        CASE,
        "a saved source state",
        alert(CASE, s.source_state("c").await)?,
        Some(source),
    )?;
    expect_eq(
        CASE,
        "an enqueued notification",
        alert(CASE, s.pending("c").await)?,
        vec![firing.clone()],
    )?;

    // Progress is saved; enqueuing the same key again keeps the entry and its progress.
    let mut progress = firing.clone();
    progress.delivered.push(targets[0].id());
    progress.attempts = 2;
    progress.last_error = Some("hook down".into());
    alert(CASE, s.save_progress(&progress).await)?;
    alert(CASE, s.apply(&update).await)?;
    let reminder = PendingNotification::new(
        notification("c", Some(1), 180, NotificationKind::Reminder),
        targets.clone(),
    );
    alert(
        CASE,
        s.apply(&AlertUpdate {
            checker: "c".into(),
            notifications: vec![reminder.clone()],
            ..AlertUpdate::default()
        })
        .await,
    )?;
    expect_eq(
        CASE,
        "pending notifications, oldest first, with their progress",
        alert(CASE, s.pending("c").await)?,
        vec![progress.clone(), reminder.clone()],
    )?;
    expect_eq(
        CASE,
        "another checker's pending",
        alert(CASE, s.pending("d").await)?,
        vec![],
    )?;
    alert(
        CASE,
        s.complete(&progress.notification.idempotency_key).await,
    )?;
    alert(CASE, s.complete("no/such/key").await)?;
    expect_eq(
        CASE,
        "pending after completing one",
        pending_keys(&alert(CASE, s.pending("c").await)?),
        vec![reminder.notification.idempotency_key.as_str()],
    )?;

    let pause = Pause {
        since: 200,
        until: Some(3800),
        comment: Some("migration".into()),
    };
    alert(CASE, s.set_pause("c", Some(&pause)).await)?;
    expect_eq(
        CASE,
        "a set pause",
        alert(CASE, s.pause("c").await)?,
        Some(pause.clone()),
    )?;
    let overview = alert(CASE, s.overview().await)?;
    let mut states: Vec<(String, usize)> = overview
        .alerts
        .iter()
        .map(|e| (e.checker.clone(), e.requirement_index))
        .collect();
    states.sort();
    expect_eq(
        CASE,
        "overview: alert states",
        states,
        vec![("c".to_string(), 0), ("c".to_string(), 1)],
    )?;
    expect_eq(CASE, "overview: source states", overview.sources.len(), 1)?;
    expect_eq(
        CASE,
        "overview: pauses",
        overview.pauses,
        vec![("c".to_string(), pause)],
    )?;
    expect_eq(
        CASE,
        "overview: pending",
        pending_keys(&overview.pending),
        vec![reminder.notification.idempotency_key.as_str()],
    )?;
    alert(CASE, s.set_pause("c", None).await)?;
    expect_eq(
        CASE,
        "a lifted pause",
        alert(CASE, s.pause("c").await)?,
        None,
    )?;

    // Prune: unknown checkers and indices past the count go; pauses and pending stay.
    for (checker, index) in [("c", 2), ("gone", 0)] {
        let update = AlertUpdate {
            checker: checker.into(),
            alert: Some((index, AlertState::default())),
            source: Some(SourceState::default()),
            ..AlertUpdate::default()
        };
        alert(CASE, s.apply(&update).await)?;
    }
    alert(
        CASE,
        s.set_pause(
            "gone",
            Some(&Pause {
                since: 0,
                until: None,
                comment: None,
            }),
        )
        .await,
    )?;
    let known = BTreeMap::from([("c".to_string(), 2)]);
    expect_eq(
        CASE,
        "alert states pruned",
        alert(CASE, s.prune(&known).await)?,
        2,
    )?;
    let left: Vec<usize> = alert(CASE, s.alert_states("c").await)?
        .into_iter()
        .map(|(i, _)| i)
        .collect();
    expect_eq(CASE, "states left after pruning", left, vec![0, 1])?;
    expect_eq(
        CASE,
        "a pruned source state",
        alert(CASE, s.source_state("gone").await)?,
        None,
    )?;
    expect_eq(
        CASE,
        "a pruned checker keeps its pause",
        alert(CASE, s.pause("gone").await)?.is_some(),
        true,
    )?;
    expect_eq(
        CASE,
        "pruning keeps pending notifications",
        alert(CASE, s.pending("c").await)?.len(),
        1,
    )
}

async fn alert_history_order_and_limit<F: StoreFactory + ?Sized>(
    factory: &F,
) -> Result<(), Failure> {
    const CASE: &str = "alert history order and limit";
    let s = create(factory, CASE).await?;
    let with = |kind, minute| {
        PendingNotification::new(notification("c", Some(0), minute, kind), Vec::new())
    };
    let steps = [
        // OK -> pending, no notification.
        AlertUpdate {
            checker: "c".into(),
            alert: Some((0, alert_state(AlertPhase::Ok, 1, 60))),
            at: Some(60),
            ..AlertUpdate::default()
        },
        // pending -> firing, with its notification.
        AlertUpdate {
            checker: "c".into(),
            alert: Some((0, alert_state(AlertPhase::Firing, 2, 120))),
            notifications: vec![with(NotificationKind::Firing, 120)],
            at: Some(120),
            ..AlertUpdate::default()
        },
        // The same event replayed: nothing new.
        AlertUpdate {
            checker: "c".into(),
            alert: Some((0, alert_state(AlertPhase::Firing, 2, 120))),
            notifications: vec![with(NotificationKind::Firing, 120)],
            at: Some(130),
            ..AlertUpdate::default()
        },
        // Bookkeeping (no `at`): recorded nowhere.
        AlertUpdate {
            checker: "c".into(),
            alert: Some((0, alert_state(AlertPhase::Ok, 0, 150))),
            ..AlertUpdate::default()
        },
        AlertUpdate {
            checker: "c".into(),
            alert: Some((0, alert_state(AlertPhase::Firing, 3, 180))),
            at: None,
            ..AlertUpdate::default()
        },
        // A reminder: no state change, an entry of its own.
        AlertUpdate {
            checker: "c".into(),
            alert: Some((0, alert_state(AlertPhase::Firing, 4, 240))),
            notifications: vec![with(NotificationKind::Reminder, 240)],
            at: Some(240),
            ..AlertUpdate::default()
        },
        // firing -> OK, resolved.
        AlertUpdate {
            checker: "c".into(),
            alert: Some((0, alert_state(AlertPhase::Ok, 0, 300))),
            notifications: vec![with(NotificationKind::Resolved, 300)],
            at: Some(300),
            ..AlertUpdate::default()
        },
        // Another checker's history is its own.
        AlertUpdate {
            checker: "d".into(),
            alert: Some((0, alert_state(AlertPhase::Ok, 1, 300))),
            at: Some(300),
            ..AlertUpdate::default()
        },
    ];
    for step in &steps {
        alert(CASE, s.apply(step).await)?;
    }
    let pause = Pause {
        since: 360,
        until: None,
        comment: None,
    };
    alert(CASE, s.set_pause("c", Some(&pause)).await)?;
    expect_eq(
        CASE,
        "lift_pause answers the pause it lifted",
        alert(
            CASE,
            s.lift_pause("c", 420, Some("unpaused by a test")).await,
        )?,
        Some(pause),
    )?;
    expect_eq(
        CASE,
        "lift_pause without a pause",
        alert(CASE, s.lift_pause("c", 430, None).await)?,
        None,
    )?;
    use HistoryState::{Active, Firing, Ok, Paused, Pending};
    let want: Vec<HistoryLine> = vec![
        (420, None, Paused, Active, None),
        (360, None, Active, Paused, None),
        (300, Some(0), Firing, Ok, Some(NotificationKind::Resolved)),
        (
            240,
            Some(0),
            Firing,
            Firing,
            Some(NotificationKind::Reminder),
        ),
        (
            120,
            Some(0),
            Pending,
            Firing,
            Some(NotificationKind::Firing),
        ),
        (60, Some(0), Ok, Pending, None),
    ];
    let all = alert(CASE, s.history("c", 100).await)?;
    expect_eq(
        CASE,
        "history, newest first",
        history_lines(&all),
        want.clone(),
    )?;
    expect_eq(
        CASE,
        "a notification's idempotency key",
        all[4].idempotency_key.as_deref(),
        Some("c/0/120/firing"),
    )?;
    expect_eq(
        CASE,
        "a lifted pause's reason",
        all[0].reason.as_deref(),
        Some("unpaused by a test"),
    )?;
    let two = alert(CASE, s.history("c", 2).await)?;
    expect_eq(
        CASE,
        "history, limit 2",
        history_lines(&two),
        want[..2].to_vec(),
    )?;
    expect_eq(
        CASE,
        "history, limit 0",
        alert(CASE, s.history("c", 0).await)?.len(),
        0,
    )?;
    let other = alert(CASE, s.history("d", 100).await)?;
    expect_eq(
        CASE,
        "another checker's history",
        history_lines(&other),
        vec![(300, Some(0), Ok, Pending, None)],
    )?;
    expect_eq(
        CASE,
        "an unknown checker's history",
        alert(CASE, s.history("x", 10).await)?.len(),
        0,
    )?;

    // At most HISTORY_PER_CHECKER entries per checker: the oldest go.
    for i in 0..=HISTORY_PER_CHECKER as i64 {
        let phase = if i % 2 == 0 {
            AlertPhase::Firing
        } else {
            AlertPhase::Ok
        };
        let step = AlertUpdate {
            checker: "e".into(),
            alert: Some((0, alert_state(phase, 5, 60 * i))),
            at: Some(60 * i),
            ..AlertUpdate::default()
        };
        alert(CASE, s.apply(&step).await)?;
    }
    let kept = alert(CASE, s.history("e", usize::MAX).await)?;
    expect_eq(
        CASE,
        "entries kept per checker",
        kept.len(),
        HISTORY_PER_CHECKER,
    )?;
    expect_eq(
        CASE,
        "the newest kept, the oldest dropped",
        (kept.first().map(|e| e.at), kept.last().map(|e| e.at)),
        (Some(60 * HISTORY_PER_CHECKER as i64), Some(60)),
    )
}

async fn alert_state_survives_reopen<F: StoreFactory + ?Sized>(factory: &F) -> Result<(), Failure> {
    const CASE: &str = "alert state survives a reopen";
    let s = create(factory, CASE).await?;
    let target = Target::new(ChannelKind::Log, "");
    let mut pending = PendingNotification::new(
        notification("c", None, 120, NotificationKind::SourceError),
        vec![target.clone(), Target::new(ChannelKind::Stdout, "")],
    );
    let source = SourceState {
        failing: true,
        since: Some(120),
        last_error_minute: Some(120),
        last_error: Some("connection refused".into()),
        announced: true,
        last_routing: None,
    };
    let update = AlertUpdate {
        checker: "c".into(),
        alert: Some((0, alert_state(AlertPhase::Firing, 2, 120))),
        source: Some(source.clone()),
        notifications: vec![pending.clone()],
        at: Some(120),
    };
    alert(CASE, s.apply(&update).await)?;
    pending.delivered.push(target.id());
    pending.attempts = 1;
    pending.last_error = Some("stdout closed".into());
    alert(CASE, s.save_progress(&pending).await)?;
    let pause = Pause {
        since: 150,
        until: Some(7350),
        comment: Some("deploy".into()),
    };
    alert(CASE, s.set_pause("c", Some(&pause)).await)?;
    let history = alert(CASE, s.history("c", 100).await)?;
    let again = store(CASE, factory.reopen(&s).await)?;
    drop(s);
    expect_eq(
        CASE,
        "alert state after reopening",
        alert(CASE, again.alert_state("c", 0).await)?,
        Some(alert_state(AlertPhase::Firing, 2, 120)),
    )?;
    expect_eq(
        CASE,
        "source state after reopening",
        alert(CASE, again.source_state("c").await)?,
        Some(source),
    )?;
    expect_eq(
        CASE,
        "pending notification and its progress after reopening",
        alert(CASE, again.pending("c").await)?,
        vec![pending],
    )?;
    expect_eq(
        CASE,
        "pause after reopening",
        alert(CASE, again.pause("c").await)?,
        Some(pause),
    )?;
    expect_eq(CASE, "history entries before reopening", history.len(), 3)?;
    expect_eq(
        CASE,
        "history after reopening",
        alert(CASE, again.history("c", 100).await)?,
        history,
    )
}

async fn alert_state_two_handles<F: StoreFactory + ?Sized>(factory: &F) -> Result<(), Failure> {
    const CASE: &str = "two handles apply alert updates at once";
    let one = create(factory, CASE).await?;
    let two = store(CASE, factory.reopen(&one).await)?;
    for round in 0..10_i64 {
        let minute = 60 * (round + 1);
        // Both handles apply the same event (two runners) and each one of its own checker.
        let shared = AlertUpdate {
            checker: "c".into(),
            alert: Some((0, alert_state(AlertPhase::Firing, 2, minute))),
            notifications: vec![PendingNotification::new(
                notification("c", Some(0), minute, NotificationKind::Reminder),
                Vec::new(),
            )],
            at: Some(minute),
            ..AlertUpdate::default()
        };
        let own = |checker: &str| AlertUpdate {
            checker: checker.into(),
            alert: Some((0, alert_state(AlertPhase::Ok, 1, minute))),
            ..AlertUpdate::default()
        };
        let (own_a, own_b) = (own("a"), own("b"));
        let (a, b, c, d) = futures::join!(
            one.apply(&shared),
            two.apply(&shared),
            one.apply(&own_a),
            two.apply(&own_b)
        );
        for result in [a, b, c, d] {
            alert(CASE, result)?;
        }
        for (handle, name) in [(&one, "one"), (&two, "two")] {
            for checker in ["a", "b"] {
                let state = alert(CASE, handle.alert_state(checker, 0).await)?;
                expect_eq(
                    CASE,
                    &format!("handle {name} reads the state of {checker}"),
                    state,
                    Some(alert_state(AlertPhase::Ok, 1, minute)),
                )?;
            }
        }
        let pending = alert(CASE, two.pending("c").await)?;
        expect_eq(
            CASE,
            "a notification enqueued by both handles is pending once",
            pending.len(),
            usize::try_from(round + 1).unwrap_or(usize::MAX),
        )?;
    }
    let reminders = alert(CASE, one.history("c", 100).await)?
        .iter()
        .filter(|e| e.notification == Some(NotificationKind::Reminder))
        .count();
    expect_eq(CASE, "each notification in the history once", reminders, 10)?;
    let pause = Pause {
        since: 900,
        until: None,
        comment: None,
    };
    alert(CASE, one.set_pause("c", Some(&pause)).await)?;
    expect_eq(
        CASE,
        "a pause set through the other handle",
        alert(CASE, two.pause("c").await)?,
        Some(pause),
    )
}
