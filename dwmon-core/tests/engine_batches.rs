//! Step 4 of a cycle with batched fetches (issue 15 item 13, "memory bounded by design"): the
//! engine stores each batch a source hands over before the source reads on, a batched fetch
//! gives exactly the stored rows, records and errors of the same rows fetched whole, and a
//! fetch failing halfway records no check.

use async_trait::async_trait;
use dwmon_core::source::{Batcher, RowSink, DEFAULT_BATCH_ROWS};
use dwmon_core::store::{CheckerClaim, Lease, Recorded, Settlement};
use dwmon_core::testutil::{checker, every_minute, RecordingHandler, ScriptedSource};
use dwmon_core::{
    CheckLog, CheckRecord, CheckerStatus, Engine, ErrorKind, FetchRequest, Fetched, MemoryStore,
    PendingDelivery, Row, RowGetter, RowStore, SourceError, StoreError, StoreView,
};
use proptest::prelude::*;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Tue 2023-11-14 22:14:00 UTC, a minute.
const T: i64 = 1_700_000_040;
const MIN: i64 = 60;

/// A [`MemoryStore`] that counts the rows handed to `insert_first_seen` and can fail the
/// insert numbered `fail_insert` (0-based).
#[derive(Debug, Default)]
struct CountingStore {
    inner: MemoryStore,
    received: AtomicU64,
    inserts: AtomicUsize,
    fail_insert: Mutex<Option<usize>>,
}

dwmon_core::delegate_alert_state_store!(CountingStore => inner);

#[async_trait]
impl RowStore for CountingStore {
    async fn insert_first_seen(&self, checker: &str, rows: &[Row]) -> Result<u64, StoreError> {
        let number = self.inserts.fetch_add(1, Ordering::SeqCst);
        if *self.fail_insert.lock().unwrap() == Some(number) {
            return Err(StoreError::backend("scripted insert failure"));
        }
        self.received.fetch_add(rows.len() as u64, Ordering::SeqCst);
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
impl CheckLog for CountingStore {
    async fn last_checked_minute(&self, checker: &str) -> Result<Option<i64>, StoreError> {
        self.inner.last_checked_minute(checker).await
    }
    async fn last_checked_minutes(&self, checker: &str) -> Result<Vec<(usize, i64)>, StoreError> {
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
    async fn purge_checks(&self, checker: &str, older_than: i64) -> Result<u64, StoreError> {
        self.inner.purge_checks(checker, older_than).await
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
impl StoreView for CountingStore {
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

/// Streams `rows` in batches of `batch` rows (0: the sink's size, through [`Batcher`]),
/// failing after `fail_after` batches if set. Before handing a row over it notes how many
/// rows it has handed out that the store has not received: the rows the engine holds.
struct StreamingSource {
    rows: Vec<Row>,
    rejected_every: Option<usize>,
    batch: usize,
    fail_after: Option<usize>,
    store: Arc<CountingStore>,
    most_held: AtomicU64,
    largest_hint: AtomicUsize,
}

impl StreamingSource {
    fn new(rows: Vec<Row>, batch: usize, store: Arc<CountingStore>) -> Self {
        StreamingSource {
            rows,
            rejected_every: None,
            batch,
            fail_after: None,
            store,
            most_held: AtomicU64::new(0),
            largest_hint: AtomicUsize::new(0),
        }
    }

    /// `base`: what the store had received when the fetch started. Rows the engine drops
    /// never reach it, so this is an upper bound on what the engine holds.
    fn note_held(&self, base: u64, handed_out: u64) {
        let received = self.store.received.load(Ordering::SeqCst) - base;
        let held = handed_out.saturating_sub(received);
        self.most_held.fetch_max(held, Ordering::SeqCst);
    }
}

#[async_trait]
impl RowGetter for StreamingSource {
    async fn get_rows(&self, request: &FetchRequest<'_>) -> Result<Fetched, SourceError> {
        dwmon_core::collect_rows(self, request).await
    }

    async fn get_rows_batched(
        &self,
        _request: &FetchRequest<'_>,
        sink: &mut dyn RowSink,
    ) -> Result<(), SourceError> {
        self.largest_hint
            .fetch_max(sink.batch_rows(), Ordering::SeqCst);
        let size = if self.batch == 0 {
            sink.batch_rows()
        } else {
            self.batch
        };
        let mut handed_out: u64 = 0;
        let base = self.store.received.load(Ordering::SeqCst);
        for (number, chunk) in self.rows.chunks(size.max(1)).enumerate() {
            if self.fail_after == Some(number) {
                return Err(SourceError::Connection {
                    source_name: "default".into(),
                    message: "connection lost mid-result".into(),
                });
            }
            let mut batch = Fetched::default();
            for (i, row) in chunk.iter().enumerate() {
                match self.rejected_every {
                    Some(n) if (number * size + i) % n == n - 1 => {
                        batch.reject(format!("row {}: NULL key", number * size + i + 1))
                    }
                    _ => batch.rows.push(row.clone()),
                }
            }
            self.note_held(base, handed_out);
            handed_out += batch.rows.len() as u64;
            sink.accept(batch).await?;
        }
        self.note_held(base, handed_out);
        Ok(())
    }
}

/// A source handing `rows` over through [`Batcher`] at the sink's batch size.
struct BatcherSource {
    rows: Vec<Row>,
    store: Arc<CountingStore>,
    most_held: AtomicU64,
}

#[async_trait]
impl RowGetter for BatcherSource {
    async fn get_rows(&self, request: &FetchRequest<'_>) -> Result<Fetched, SourceError> {
        dwmon_core::collect_rows(self, request).await
    }

    async fn get_rows_batched(
        &self,
        _request: &FetchRequest<'_>,
        sink: &mut dyn RowSink,
    ) -> Result<(), SourceError> {
        let mut batches = Batcher::new(sink);
        for (handed_out, row) in self.rows.iter().enumerate() {
            let held = handed_out as u64 - self.store.received.load(Ordering::SeqCst);
            self.most_held.fetch_max(held, Ordering::SeqCst);
            batches.push(row.clone()).await?;
        }
        batches.finish().await
    }
}

/// `n` distinct rows, a second apart, ending just before `end`.
fn rows_before(end: i64, n: i64) -> Vec<Row> {
    (0..n)
        .map(|i| Row::new(format!("k{i}"), end - n + i))
        .collect()
}

#[tokio::test]
async fn the_engine_stores_each_batch_before_the_source_reads_on() {
    let store = Arc::new(CountingStore::default());
    let rows = rows_before(T, 100_000);
    let source = Arc::new(StreamingSource::new(rows, 1_000, store.clone()));
    let engine = Engine::new(
        source.clone(),
        store.clone(),
        Arc::new(RecordingHandler::new()),
    )
    .with_checkers(vec![checker("big", vec![every_minute(1, 1_000_000, 600)])]);

    // First cycle: every row is stored (the whole history is kept).
    let report = engine.run_cycle(T).await;
    let outcome = report.outcome("big").unwrap();
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    assert_eq!((outcome.rows_fetched, outcome.new_rows), (100_000, 100_000));
    assert_eq!(store.received.load(Ordering::SeqCst), 100_000);
    assert_eq!(store.inserts.load(Ordering::SeqCst), 100);
    assert_eq!(
        source.most_held.load(Ordering::SeqCst),
        0,
        "a batch was still unstored when the source handed over the next"
    );
    assert_eq!(outcome.checks[0].count, 600);
}

#[tokio::test]
async fn batches_through_the_batcher_stay_within_the_engines_batch_size() {
    let store = Arc::new(CountingStore::default());
    let source = Arc::new(BatcherSource {
        rows: rows_before(T, 3 * DEFAULT_BATCH_ROWS as i64 + 17),
        store: store.clone(),
        most_held: AtomicU64::new(0),
    });
    let engine = Engine::new(
        source.clone(),
        store.clone(),
        Arc::new(RecordingHandler::new()),
    )
    .with_checkers(vec![checker("big", vec![every_minute(1, 1_000_000, 60)])]);
    let report = engine.run_cycle(T).await;
    let outcome = report.outcome("big").unwrap();
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    assert_eq!(outcome.new_rows, 3 * DEFAULT_BATCH_ROWS as u64 + 17);
    assert_eq!(store.inserts.load(Ordering::SeqCst), 4);
    // The engine never holds more than one batch of rows the store has not received.
    assert!(source.most_held.load(Ordering::SeqCst) < DEFAULT_BATCH_ROWS as u64);
}

#[tokio::test]
async fn a_fetch_failing_halfway_records_no_check_and_keeps_the_stored_batches() {
    let store = Arc::new(CountingStore::default());
    let handler = Arc::new(RecordingHandler::new());
    let mut source = StreamingSource::new(rows_before(T + MIN, 5_000), 1_000, store.clone());
    source.fail_after = Some(3);
    let source = Arc::new(source);
    let engine = Engine::new(source.clone(), store.clone(), handler.clone())
        .with_checkers(vec![checker("half", vec![every_minute(1, 100_000, 600)])]);
    // A first cycle that works, so the failing one is an ordinary later cycle.
    let first = StreamingSource::new(rows_before(T, 100), 1_000, store.clone());
    let warm = Engine::new(Arc::new(first), store.clone(), handler.clone())
        .with_checkers(engine.checkers().to_vec());
    assert_eq!(warm.run_cycle(T).await.checks().count(), 1);
    handler.clear();

    let report = engine.run_cycle(T + MIN).await;
    let outcome = report.outcome("half").unwrap();
    assert_eq!(
        report.checks().count(),
        0,
        "no check is judged on part of a fetch"
    );
    assert_eq!(outcome.errors.len(), 1);
    assert_eq!(outcome.errors[0].kind, ErrorKind::Fetch);
    assert!(
        outcome.errors[0]
            .error
            .contains("connection lost mid-result"),
        "{}",
        outcome.errors[0].error
    );
    assert!(handler.checks().is_empty());
    assert_eq!(handler.errors().len(), 1);
    assert_eq!(store.last_checked_minute("half").await.unwrap(), Some(T));
    // The three batches before the failure were stored: real first-seen rows.
    assert_eq!(outcome.rows_fetched, 3_000);
    assert_eq!(store.received.load(Ordering::SeqCst), 100 + 3_000);

    // The next cycle fetches it all and judges the minute it missed, as if nothing failed.
    let whole = StreamingSource::new(rows_before(T + MIN, 5_000), 1_000, store.clone());
    let retry = Engine::new(Arc::new(whole), store.clone(), handler.clone())
        .with_checkers(engine.checkers().to_vec());
    let report = retry.run_cycle(T + 2 * MIN).await;
    let minutes: Vec<(i64, u64)> = report.checks().map(|c| (c.minute, c.count)).collect();
    // 600 of the 5,000 rows and the 100 of the first cycle in the first window.
    assert_eq!(minutes, vec![(T + MIN, 700), (T + 2 * MIN, 640)]);
}

#[tokio::test]
async fn a_store_failing_on_a_batch_stops_the_fetch_and_is_reported_as_a_store_error() {
    let store = Arc::new(CountingStore::default());
    *store.fail_insert.lock().unwrap() = Some(1);
    let source = Arc::new(StreamingSource::new(
        rows_before(T, 5_000),
        1_000,
        store.clone(),
    ));
    let engine = Engine::new(
        source.clone(),
        store.clone(),
        Arc::new(RecordingHandler::new()),
    )
    .with_checkers(vec![checker("full", vec![every_minute(1, 100_000, 600)])]);
    let report = engine.run_cycle(T).await;
    let outcome = report.outcome("full").unwrap();
    assert_eq!(report.checks().count(), 0);
    assert_eq!(outcome.errors.len(), 1);
    assert_eq!(outcome.errors[0].kind, ErrorKind::Store);
    assert!(outcome.errors[0].error.contains("scripted insert failure"));
    // The source stopped at the refused batch instead of reading the rest.
    assert_eq!(store.inserts.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn the_engine_asks_for_batches_of_its_batch_size() {
    let store = Arc::new(CountingStore::default());
    let source = Arc::new(StreamingSource::new(rows_before(T, 10), 0, store.clone()));
    let engine = Engine::new(
        source.clone(),
        store.clone(),
        Arc::new(RecordingHandler::new()),
    )
    .with_checkers(vec![checker("c", vec![every_minute(1, 100, 60)])]);
    engine.run_cycle(T).await;
    assert_eq!(
        source.largest_hint.load(Ordering::SeqCst),
        DEFAULT_BATCH_ROWS
    );
}

/// What a run leaves behind, for comparing a batched with a whole fetch.
#[derive(Debug, PartialEq)]
struct Observed {
    checks: Vec<CheckRecord>,
    /// Per cycle: (kind, rejected count or error text) of each error event.
    errors: Vec<Vec<(ErrorKind, String)>>,
    /// Per cycle: rows fetched, new rows, rejected rows.
    counts: Vec<(u64, u64, u64)>,
    stored: Vec<i64>,
}

/// Runs `cycles` cycles of one checker over `fetches` (one result per cycle), fetched whole
/// (`batch` = None) or in batches of `batch` rows.
async fn observe(
    fetches: &[(Vec<Row>, usize)],
    batch: Option<usize>,
    max_future_seconds: i64,
) -> Observed {
    let store = Arc::new(CountingStore::default());
    let handler = Arc::new(RecordingHandler::new());
    let checkers = vec![checker(
        "c",
        vec![every_minute(1, 5, 120), every_minute(0, 3, 600)],
    )];
    let config = dwmon_core::EngineConfig {
        max_future_seconds,
        ..Default::default()
    };
    let mut observed = Observed {
        checks: Vec::new(),
        errors: Vec::new(),
        counts: Vec::new(),
        stored: Vec::new(),
    };
    for (cycle, (rows, rejected_every)) in fetches.iter().enumerate() {
        let now = T + cycle as i64 * 7 * MIN;
        let report = match batch {
            None => {
                let source = Arc::new(ScriptedSource::new());
                let mut fetched = Fetched::default();
                for (i, row) in rows.iter().enumerate() {
                    if *rejected_every > 0 && i % rejected_every == rejected_every - 1 {
                        fetched.reject(format!("row {}: NULL key", i + 1));
                    } else {
                        fetched.rows.push(row.clone());
                    }
                }
                source.set("c", dwmon_core::testutil::Step::Fetched(fetched));
                Engine::new(source, store.clone(), handler.clone())
                    .with_config(config.clone())
                    .with_checkers(checkers.clone())
                    .run_cycle(now)
                    .await
            }
            Some(size) => {
                let mut source = StreamingSource::new(rows.clone(), size, store.clone());
                source.rejected_every = (*rejected_every > 0).then_some(*rejected_every);
                Engine::new(Arc::new(source), store.clone(), handler.clone())
                    .with_config(config.clone())
                    .with_checkers(checkers.clone())
                    .run_cycle(now)
                    .await
            }
        };
        let outcome = report.outcome("c").cloned().unwrap_or_default();
        observed.checks.extend(outcome.checks.iter().cloned());
        observed.counts.push((
            outcome.rows_fetched,
            outcome.new_rows,
            outcome.rejected_rows,
        ));
        observed.errors.push(
            outcome
                .errors
                .iter()
                .map(|e| {
                    // Rejection reasons may come in another order; their count may not.
                    let text = match e.kind {
                        ErrorKind::RejectedRows => {
                            e.error.split(':').next().unwrap_or_default().to_string()
                        }
                        _ => e.error.clone(),
                    };
                    (e.kind, text)
                })
                .collect(),
        );
    }
    observed.stored = store.row_timestamps("c", i64::MIN, i64::MAX).await.unwrap();
    observed
}

#[tokio::test]
async fn a_key_dropped_as_unreachable_in_one_batch_is_dropped_in_later_batches_too() {
    // Cycle 0 stores history; at cycle 1 the first occurrence of "dup" is unreachable (a
    // day old), so its later, reachable occurrence in another batch is dropped as well.
    let old = T - 86_400;
    let now = T + 7 * MIN;
    let mut later = vec![Row::new("dup", old)];
    later.extend((0..5).map(|i| Row::new(format!("fill{i}"), now - 30 - i)));
    later.push(Row::new("dup", now - 10));
    let fetches = vec![(vec![Row::new("a", T - 10)], 0), (later, 0)];
    let whole = observe(&fetches, None, 86_400).await;
    let batched = observe(&fetches, Some(2), 86_400).await;
    assert_eq!(batched, whole);
    // "dup" counts nowhere: 5 fill rows in the last 120 s window.
    let last = whole
        .checks
        .iter()
        .find(|c| c.minute == now && c.requirement_index == 0);
    assert_eq!(last.map(|c| c.count), Some(5));
}

fn row_strategy() -> impl Strategy<Value = Row> {
    // Few keys, so keys repeat within and across batches and cycles; timestamps from long
    // before the horizon to past the far-future limit.
    (0..24_u8, -90_000_i64..3_000).prop_map(|(key, offset)| Row::new(format!("k{key}"), T + offset))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// STYLE: a count never depends on how the rows were batched.
    #[test]
    fn batched_and_whole_fetches_store_and_record_the_same(
        fetches in prop::collection::vec(
            (prop::collection::vec(row_strategy(), 0..60), 0_usize..6),
            1..5,
        ),
        batch in 1_usize..9,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (whole, batched) = runtime.block_on(async {
            (observe(&fetches, None, 1_200).await, observe(&fetches, Some(batch), 1_200).await)
        });
        prop_assert_eq!(batched, whole);
    }
}
