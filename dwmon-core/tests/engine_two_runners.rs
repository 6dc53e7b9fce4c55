//! Two runners on one store. A minute another runner recorded while this cycle was fetching
//! is never delivered in this cycle's version (which is not in the check log): only recorded
//! checks reach the handler, in minute order. With fencing (the other runner claimed the
//! checker since), this cycle records nothing at all and reports no error.

use async_trait::async_trait;
use dwmon_core::store::{
    CheckLog, CheckerClaim, Lease, LocalFences, PendingDelivery, Recorded, Settlement, StoreView,
};
use dwmon_core::testutil::{checker, every_minute, RecordingHandler};
use dwmon_core::{
    CheckRecord, CheckerStatus, Engine, FetchRequest, Fetched, MemoryStore, Row, RowGetter,
    RowStore, SourceError, Status, StoreError,
};
use std::sync::{Arc, Mutex};

/// Tue 2023-11-14 22:14:00 UTC, a minute.
const T: i64 = 1_700_000_040;
const MIN: i64 = 60;

/// This runner's handle on a [`MemoryStore`] shared with another runner, as each of two
/// processes has its own on one SQLite file: its claims are its own, so the other runner's
/// claims do not fence it (both record, and the check log's key decides).
struct OwnProcess(Arc<MemoryStore>, LocalFences);

dwmon_core::delegate_alert_state_store!(OwnProcess => 0);

/// A source whose fetch lets "another runner" claim the checker and record a minute first.
struct RacingSource {
    store: Arc<MemoryStore>,
    race: Mutex<Option<CheckRecord>>,
    rows: Vec<Row>,
}

#[async_trait]
impl RowGetter for RacingSource {
    async fn get_rows(&self, _request: &FetchRequest<'_>) -> Result<Fetched, SourceError> {
        let competing = self.race.lock().map(|mut r| r.take()).unwrap_or_default();
        if let Some(record) = competing {
            let other = |e: StoreError| SourceError::Other(e.to_string());
            let claim = self
                .store
                .claim(std::slice::from_ref(&record.checker), 0)
                .await
                .map_err(other)?;
            self.store
                .record(&claim[0], &[record])
                .await
                .map_err(other)?;
        }
        Ok(Fetched::from_rows(self.rows.clone()))
    }
}

#[async_trait]
impl RowStore for OwnProcess {
    async fn insert_first_seen(&self, checker: &str, rows: &[Row]) -> Result<u64, StoreError> {
        self.0.insert_first_seen(checker, rows).await
    }
    async fn count_windows(
        &self,
        checker: &str,
        windows: &[(i64, i64)],
    ) -> Result<Vec<u64>, StoreError> {
        self.0.count_windows(checker, windows).await
    }
    async fn row_timestamps(
        &self,
        checker: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<i64>, StoreError> {
        self.0.row_timestamps(checker, from, to).await
    }
    async fn purge(&self, checker: &str, older_than: i64) -> Result<u64, StoreError> {
        self.0.purge(checker, older_than).await
    }
}

#[async_trait]
impl CheckLog for OwnProcess {
    async fn last_checked_minute(&self, checker: &str) -> Result<Option<i64>, StoreError> {
        self.0.last_checked_minute(checker).await
    }
    async fn last_checked_minutes(&self, checker: &str) -> Result<Vec<(usize, i64)>, StoreError> {
        self.0.last_checked_minutes(checker).await
    }
    async fn claim(&self, checkers: &[String], now: i64) -> Result<Vec<CheckerClaim>, StoreError> {
        Ok(self.1.claim(checkers, now))
    }
    async fn renew(&self, claims: &[CheckerClaim]) -> Result<Vec<CheckerClaim>, StoreError> {
        Ok(self.1.renew(claims))
    }
    async fn record(
        &self,
        claim: &CheckerClaim,
        records: &[CheckRecord],
    ) -> Result<Recorded, StoreError> {
        // Fenced by this process's claims only; the shared store sees a fresh writer.
        self.1.check(claim)?;
        let shared = self
            .0
            .claim(std::slice::from_ref(&claim.checker), 0)
            .await?;
        self.0.record(&shared[0], records).await
    }
    async fn claim_deliveries(
        &self,
        limit: usize,
        lease: Lease,
    ) -> Result<Vec<PendingDelivery>, StoreError> {
        self.0.claim_deliveries(limit, lease).await
    }
    async fn settle(&self, key: &str, settlement: &Settlement) -> Result<(), StoreError> {
        self.0.settle(key, settlement).await
    }
    async fn set_last_error(
        &self,
        checker: &str,
        error: Option<(i64, &str)>,
    ) -> Result<(), StoreError> {
        self.0.set_last_error(checker, error).await
    }
}

#[async_trait]
impl StoreView for OwnProcess {
    async fn status(&self) -> Result<Vec<CheckerStatus>, StoreError> {
        self.0.status().await
    }
    async fn checks_before(
        &self,
        checker: &str,
        before: (i64, usize),
        limit: usize,
    ) -> Result<Vec<CheckRecord>, StoreError> {
        self.0.checks_before(checker, before, limit).await
    }
}

fn record_like(template: &CheckRecord, minute: i64, count: u64) -> CheckRecord {
    CheckRecord {
        minute,
        count,
        status: Status::judge(count, template.min, template.max),
        ..template.clone()
    }
}

/// `takes_over`: the engine shares the store's claims, so the other runner's claim fences it
/// out; else it has claims of its own (another process).
///
/// Cycle 1 at T records and delivers T; cycle 2 at T+2 has candidates T+1 and T+2, but during
/// its fetch the other runner records T+1 with count 999; cycle 3, still at minute T+2,
/// delivers what is left in the outbox. Returns the store, cycle 2's report and the
/// deliveries of cycles 2 and 3.
async fn race(
    takes_over: bool,
) -> Result<(Arc<MemoryStore>, usize, Vec<(i64, u64)>, Vec<(i64, u64)>), StoreError> {
    let store = Arc::new(MemoryStore::new());
    let handler = Arc::new(RecordingHandler::new());
    let rows = vec![Row::new("a", T - 30), Row::new("b", T + 2 * MIN - 30)];
    let source = Arc::new(RacingSource {
        store: store.clone(),
        race: Mutex::new(None),
        rows: rows.clone(),
    });
    let engine_store: Arc<dyn dwmon_core::Store> = if takes_over {
        store.clone()
    } else {
        Arc::new(OwnProcess(store.clone(), LocalFences::new()))
    };
    let engine = Engine::new(source.clone(), engine_store, handler.clone())
        .with_checkers(vec![checker("orders", vec![every_minute(1, 5, 60)])]);
    engine.run_cycle(T + 5).await;
    let first = handler.checks();
    assert_eq!(first.len(), 1);

    let theirs = record_like(&first[0], T + MIN, 999);
    if let Ok(mut race) = source.race.lock() {
        *race = Some(theirs.clone());
    }
    handler.clear();
    let report = engine.run_cycle(T + 2 * MIN + 5).await;
    assert!(
        report.errors().next().is_none(),
        "losing a race is no error"
    );
    let second = handler.checks();
    handler.clear();
    engine.run_cycle(T + 2 * MIN + 30).await;
    let third = handler.checks();
    let minutes = |records: Vec<CheckRecord>| records.iter().map(|r| (r.minute, r.count)).collect();
    Ok((
        store,
        report.checks().count(),
        minutes(second),
        minutes(third),
    ))
}

#[tokio::test]
async fn a_minute_recorded_by_another_process_is_delivered_only_as_recorded(
) -> Result<(), Box<dyn std::error::Error>> {
    let (store, checks, second, third) = race(false).await?;
    // Cycle 2 reports the checks as stored: T+1 the other runner's, T+2 its own.
    assert_eq!(checks, 2, "this cycle's records as stored");
    // Nothing out of order: the records wait in the outbox for the next cycle...
    assert_eq!(second, vec![]);
    // ...which delivers T+1 as recorded (999, never this runner's 0), then T+2 once.
    assert_eq!(third, vec![(T + MIN, 999), (T + 2 * MIN, 1)]);
    assert!(store
        .claim_deliveries(100, Lease::new(0, 0))
        .await?
        .is_empty());
    Ok(())
}

#[tokio::test]
async fn a_runner_fenced_out_by_a_takeover_records_nothing(
) -> Result<(), Box<dyn std::error::Error>> {
    let (store, checks, second, third) = race(true).await?;
    assert_eq!(checks, 0, "the stale claim recorded nothing");
    assert_eq!(second, vec![]);
    // The next cycle claims again: T+1 as the other runner recorded it, then T+2 checked here.
    assert_eq!(third, vec![(T + MIN, 999), (T + 2 * MIN, 1)]);
    let log = store.recent_checks("orders", 10).await?;
    let minutes: Vec<(i64, u64)> = log.iter().map(|r| (r.minute, r.count)).collect();
    assert_eq!(minutes, vec![(T + 2 * MIN, 1), (T + MIN, 999), (T, 1)]);
    assert!(store
        .claim_deliveries(100, Lease::new(0, 0))
        .await?
        .is_empty());
    Ok(())
}
