//! A conformance suite any [`Store`] runs in its own tests with one call (feature
//! `test-suite`), so every store honours the contract the engine relies on: first-seen
//! semantics, half-open windows, `record` idempotent per `(checker, requirement_index, minute)`
//! and returning the stored versions, the outbox order, settlements and retry times, the
//! outbox and check log surviving a reopen, two handles recording one minute at once, fencing
//! of stale claims, purge boundaries and the status views.
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

use crate::record::{CheckRecord, Status};
use crate::source::Row;
use crate::store::{
    CheckLog, CheckerClaim, Lease, PendingDelivery, Recorded, Retry, RowStore, Settlement, Store,
    StoreError, StoreView,
};
use async_trait::async_trait;

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
    purge_boundaries(factory).await?;
    status_views(factory).await?;
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
