//! Claim renewal (issue 11, "renew while fetching"): while a checker is still being fetched,
//! the cycle renews its claim every `claim_renew_interval`, stops renewing a checker once its
//! task is done (and everything once the cycle is), drops a claim the store reports lost, and
//! never renews claims that do not expire. Timing runs on Tokio's paused clock.

use async_trait::async_trait;
use dwmon_core::store::{CheckerClaim, Lease, Recorded, Settlement};
use dwmon_core::testutil::{checker, every_minute, RecordingHandler, ScriptedSource};
use dwmon_core::{
    CheckLog, CheckRecord, CheckerStatus, Engine, EngineConfig, FetchRequest, Fetched, MemoryStore,
    PendingDelivery, Row, RowGetter, RowStore, SourceError, StoreError, StoreView,
};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Tue 2023-11-14 22:14:00 UTC, a minute.
const T: i64 = 1_700_000_040;

/// A [`MemoryStore`] whose claims expire `lease` seconds after the cycle's `now` (`None`:
/// never, as the memory store's own), logging every renewal with the seconds since `start`
/// on Tokio's clock. A checker in `steal` is claimed by "another runner" at its first
/// renewal, which reports it lost.
struct LeasedStore {
    inner: MemoryStore,
    lease: Option<i64>,
    start: tokio::time::Instant,
    renewals: Mutex<Vec<(u64, Vec<String>)>>,
    steal: Mutex<BTreeSet<String>>,
}

impl LeasedStore {
    fn new(lease: Option<i64>) -> Self {
        LeasedStore {
            inner: MemoryStore::new(),
            lease,
            start: tokio::time::Instant::now(),
            renewals: Mutex::default(),
            steal: Mutex::default(),
        }
    }

    fn renewals(&self) -> Vec<(u64, Vec<String>)> {
        self.renewals.lock().unwrap().clone()
    }
}

dwmon_core::delegate_alert_state_store!(LeasedStore => inner);

#[async_trait]
impl RowStore for LeasedStore {
    async fn insert_first_seen(&self, checker: &str, rows: &[Row]) -> Result<u64, StoreError> {
        self.inner.insert_first_seen(checker, rows).await
    }
    async fn count_windows(
        &self,
        checker: &str,
        windows: &[(i64, i64)],
    ) -> Result<Vec<u64>, StoreError> {
        self.inner.count_windows(checker, windows).await
    }
    async fn row_timestamps(
        &self,
        checker: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<i64>, StoreError> {
        self.inner.row_timestamps(checker, from, to).await
    }
    async fn purge(&self, checker: &str, older_than: i64) -> Result<u64, StoreError> {
        self.inner.purge(checker, older_than).await
    }
}

#[async_trait]
impl CheckLog for LeasedStore {
    async fn last_checked_minute(&self, checker: &str) -> Result<Option<i64>, StoreError> {
        self.inner.last_checked_minute(checker).await
    }
    async fn last_checked_minutes(&self, checker: &str) -> Result<Vec<(usize, i64)>, StoreError> {
        self.inner.last_checked_minutes(checker).await
    }
    async fn claim(&self, checkers: &[String], now: i64) -> Result<Vec<CheckerClaim>, StoreError> {
        let mut claims = self.inner.claim(checkers, now).await?;
        if let Some(lease) = self.lease {
            for claim in &mut claims {
                claim.until = now + lease;
            }
        }
        Ok(claims)
    }
    async fn renew(&self, claims: &[CheckerClaim]) -> Result<Vec<CheckerClaim>, StoreError> {
        let at = self.start.elapsed().as_secs();
        let mut names: Vec<String> = claims.iter().map(|c| c.checker.clone()).collect();
        names.sort();
        self.renewals.lock().unwrap().push((at, names));
        let stolen: Vec<String> = {
            let mut steal = self.steal.lock().unwrap();
            let stolen = claims
                .iter()
                .filter(|c| steal.contains(&c.checker))
                .map(|c| c.checker.clone())
                .collect();
            steal.clear();
            stolen
        };
        // Another runner's claim bumps the fence.
        self.inner.claim(&stolen, 0).await?;
        let held = self.inner.renew(claims).await?;
        Ok(held
            .into_iter()
            .map(|c| CheckerClaim {
                until: c.until + 30,
                ..c
            })
            .collect())
    }
    async fn record(
        &self,
        claim: &CheckerClaim,
        records: &[CheckRecord],
    ) -> Result<Recorded, StoreError> {
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
    async fn set_last_error(
        &self,
        checker: &str,
        error: Option<(i64, &str)>,
    ) -> Result<(), StoreError> {
        self.inner.set_last_error(checker, error).await
    }
}

#[async_trait]
impl StoreView for LeasedStore {
    async fn status(&self) -> Result<Vec<CheckerStatus>, StoreError> {
        self.inner.status().await
    }
    async fn checks_before(
        &self,
        checker: &str,
        before: (i64, usize),
        limit: usize,
    ) -> Result<Vec<CheckRecord>, StoreError> {
        self.inner.checks_before(checker, before, limit).await
    }
}

/// Answers checkers named `slow...` after `seconds` on Tokio's clock, every other checker at
/// once; one row each.
struct SlowSource {
    seconds: u64,
    rows: ScriptedSource,
}

#[async_trait]
impl RowGetter for SlowSource {
    async fn get_rows(&self, request: &FetchRequest<'_>) -> Result<Fetched, SourceError> {
        if request.checker.starts_with("slow") {
            tokio::time::sleep(Duration::from_secs(self.seconds)).await;
        }
        self.rows.get_rows(request).await
    }
}

fn engine(store: Arc<LeasedStore>, fetch_seconds: u64, renew_seconds: u64) -> Engine {
    let rows = ScriptedSource::new();
    for name in ["slow", "quick"] {
        rows.set_rows(name, vec![Row::new(format!("{name}-1"), T - 30)]);
    }
    let source = Arc::new(SlowSource {
        seconds: fetch_seconds,
        rows,
    });
    Engine::new(source, store, Arc::new(RecordingHandler::new()))
        .with_config(EngineConfig {
            fetch_timeout: Duration::from_secs(600),
            claim_renew_interval: Duration::from_secs(renew_seconds),
            ..EngineConfig::default()
        })
        .with_checkers(vec![
            checker("slow", vec![every_minute(1, 5, 60)]),
            checker("quick", vec![every_minute(1, 5, 60)]),
        ])
}

fn checked(report: &dwmon_core::CycleReport) -> Vec<String> {
    let mut names: Vec<String> = report.checks().map(|r| r.checker.clone()).collect();
    names.sort();
    names
}

#[tokio::test(start_paused = true)]
async fn a_slow_fetch_has_its_claim_renewed_every_interval_until_it_is_done() {
    let store = Arc::new(LeasedStore::new(Some(90)));
    let engine = engine(store.clone(), 100, 30);
    let report = engine.run_cycle(T + 5).await;
    // Long after the cycle: nothing renews any more.
    tokio::time::sleep(Duration::from_secs(300)).await;

    assert_eq!(checked(&report), ["quick", "slow"], "both recorded");
    assert_eq!(report.errors().count(), 0);
    let slow = vec!["slow".to_string()];
    assert_eq!(
        store.renewals(),
        [(30, slow.clone()), (60, slow.clone()), (90, slow)],
        "renewed at 30, 60 and 90 s of a 100 s fetch; the quick checker (done at once) never"
    );
}

#[tokio::test(start_paused = true)]
async fn a_claim_reported_lost_is_renewed_no_more_and_records_nothing() {
    let store = Arc::new(LeasedStore::new(Some(90)));
    store.steal.lock().unwrap().insert("slow".into());
    let engine = engine(store.clone(), 100, 30);
    let report = engine.run_cycle(T + 5).await;

    assert_eq!(
        store.renewals(),
        [(30, vec!["slow".to_string()])],
        "lost at the first renewal, then not renewed again"
    );
    assert_eq!(
        checked(&report),
        ["quick"],
        "the fence refused the slow record"
    );
    assert_eq!(report.errors().count(), 0, "losing a checker is no error");
}

#[tokio::test(start_paused = true)]
async fn claims_that_never_expire_are_not_renewed() {
    let store = Arc::new(LeasedStore::new(None));
    let engine = engine(store.clone(), 100, 30);
    let report = engine.run_cycle(T + 5).await;

    assert_eq!(checked(&report), ["quick", "slow"]);
    assert!(store.renewals().is_empty(), "{:?}", store.renewals());
}

#[tokio::test(start_paused = true)]
async fn a_zero_interval_never_renews() {
    let store = Arc::new(LeasedStore::new(Some(90)));
    let engine = engine(store.clone(), 100, 0);
    let report = engine.run_cycle(T + 5).await;

    assert_eq!(checked(&report), ["quick", "slow"]);
    assert!(store.renewals().is_empty(), "{:?}", store.renewals());
}

#[tokio::test(start_paused = true)]
async fn a_checker_waiting_for_a_slot_has_its_claim_renewed_too() {
    let store = Arc::new(LeasedStore::new(Some(90)));
    let rows = ScriptedSource::new();
    for name in ["slow-a", "slow-b"] {
        rows.set_rows(name, vec![Row::new(format!("{name}-1"), T - 30)]);
    }
    let source = Arc::new(SlowSource { seconds: 100, rows });
    // One fetch at a time: slow-b waits 100 s for slow-a's slot, then fetches for 100 s.
    let engine = Engine::new(source, store.clone(), Arc::new(RecordingHandler::new()))
        .with_config(EngineConfig {
            fetch_timeout: Duration::from_secs(600),
            claim_renew_interval: Duration::from_secs(30),
            max_concurrent_checkers: 1,
            ..EngineConfig::default()
        })
        .with_checkers(vec![
            checker("slow-a", vec![every_minute(1, 5, 60)]),
            checker("slow-b", vec![every_minute(1, 5, 60)]),
        ]);
    let report = engine.run_cycle(T + 5).await;

    assert_eq!(checked(&report), ["slow-a", "slow-b"]);
    let both = vec!["slow-a".to_string(), "slow-b".to_string()];
    let second = vec!["slow-b".to_string()];
    let renewals = store.renewals();
    assert_eq!(
        renewals,
        [
            (30, both.clone()),
            (60, both.clone()),
            (90, both),
            (120, second.clone()),
            (150, second.clone()),
            (180, second)
        ],
        "the waiting checker's claim is renewed from the start, the first one's until done"
    );
}
