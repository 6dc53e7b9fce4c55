//! The SQLite store's cache of stored keys over many cycles (issue 15 item 15, "long runs slow
//! down"): it holds only keys a later fetch can still look up — inside the checker's reachable
//! window (its horizon plus its longest lookback) — and never those of a first cycle's history,
//! of rows that aged out of every window, or of checkers no longer loaded; and a fetch the
//! source hands over in several batches stays cached from one cycle to the next.
//!
//! Engine over a real SQLite store, fixed instants, no sleeps. The cache is exact about which
//! keys it holds to within one cache bucket (`BUCKET` seconds of timestamps).

use async_trait::async_trait;
use dwmon_core::testutil::{checker, every_minute, RecordingHandler, ScriptedSource};
use dwmon_core::{Engine, FetchRequest, Fetched, Row, RowGetter, RowSink, RowStore, SourceError};
use dwmon_sqlite::SqliteStore;
use std::sync::Arc;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Tue 2023-11-14 22:14:00 UTC, a minute.
const T: i64 = 1_700_000_040;
const MIN: i64 = 60;
const DAY: i64 = 86_400;
/// The cache's timestamp bucket width, seconds (`seen_cache.rs`).
const BUCKET: i64 = 600;

/// An every-minute requirement with a 180 s window: horizon 30 minutes, so no later check
/// counts a row older than `now - 29 min - 180 s`.
fn three_minutes(name: &str) -> dwmon_core::Checker {
    checker(name, vec![every_minute(0, 1_000_000, 180)])
}

/// The oldest timestamp a 180 s every-minute checker can still count after the cycle at `now`.
fn reach_of_three_minutes(now: i64) -> i64 {
    now - 29 * MIN - 180
}

fn engine(source: Arc<dyn RowGetter>, store: &SqliteStore) -> (Engine, Arc<RecordingHandler>) {
    let handler = Arc::new(RecordingHandler::new());
    let engine = Engine::new(source, Arc::new(store.clone()), handler.clone());
    (engine, handler)
}

/// A week of history, one row every 604 s up to `now`, keys `h0` (newest) to `h999`.
fn week_of_history(now: i64) -> Vec<Row> {
    (0..1_000)
        .map(|i| Row::new(format!("h{i}"), now - i * 604))
        .collect()
}

#[tokio::test]
async fn a_first_cycles_history_is_stored_but_not_cached() -> TestResult {
    let store = SqliteStore::open_in_memory()?;
    let source = Arc::new(ScriptedSource::new());
    let history = week_of_history(T);
    source.set_rows("c", history.clone());
    let (engine, _) = engine(source.clone(), &store);
    let engine = engine.with_checkers(vec![three_minutes("c")]);

    engine.run_cycle(T).await;
    // All 1,000 rows are stored (the histogram shows the week) ...
    assert_eq!(store.row_timestamps("c", 0, T + 1).await?.len(), 1_000);
    // ... but only those a later check can count (or that share their cache bucket) are cached.
    let reachable = history
        .iter()
        .filter(|r| r.timestamp >= reach_of_three_minutes(T + MIN) - BUCKET)
        .count() as u64;
    assert!(
        store.cached_keys() <= reachable,
        "{} keys cached, at most {reachable} can be seen again",
        store.cached_keys()
    );

    // The next cycles find the reachable rows in the cache and store nothing twice.
    for k in 1..=3 {
        let report = engine.run_cycle(T + k * MIN).await;
        assert_eq!(report.checkers[0].new_rows, 0);
        assert!(store.cached_keys() <= reachable, "{}", store.cached_keys());
    }
    Ok(())
}

#[tokio::test]
async fn keys_leave_the_cache_once_no_window_can_reach_them() -> TestResult {
    let store = SqliteStore::open_in_memory()?;
    let source = Arc::new(ScriptedSource::new());
    // A table that stopped growing: the query returns the same 100 rows of the last 100 s.
    let rows: Vec<Row> = (0..100).map(|i| Row::new(format!("r{i}"), T - i)).collect();
    source.set_rows("c", rows);
    let (engine, handler) = engine(source, &store);
    let engine = engine.with_checkers(vec![three_minutes("c")]);

    engine.run_cycle(T).await;
    engine.run_cycle(T + MIN).await;
    assert_eq!(store.cached_keys(), 100);
    // Once the rows are older than any window can reach (plus a bucket), none stays cached,
    // although every cycle still fetches them and nothing is purged.
    let mut now = T + MIN;
    while reach_of_three_minutes(now) < T + BUCKET {
        now += MIN;
        engine.run_cycle(now).await;
    }
    assert_eq!(store.cached_keys(), 0, "at {} min", (now - T) / MIN);
    assert_eq!(store.row_timestamps("c", 0, now).await?.len(), 100);
    let last = handler.checks().last().cloned().ok_or("no check")?;
    assert_eq!((last.minute, last.count), (now, 0));
    Ok(())
}

#[tokio::test]
async fn a_checker_no_longer_loaded_leaves_the_cache() -> TestResult {
    let store = SqliteStore::open_in_memory()?;
    let source = Arc::new(ScriptedSource::new());
    for name in ["a", "b"] {
        let rows: Vec<Row> = (0..50)
            .map(|i| Row::new(format!("{name}{i}"), T - i))
            .collect();
        source.set_rows(name, rows);
    }
    let (engine, _) = engine(source, &store);
    let engine = engine.with_checkers(vec![three_minutes("a"), three_minutes("b")]);
    engine.run_cycle(T).await;
    engine.run_cycle(T + MIN).await;
    assert_eq!(store.cached_keys(), 100);
    // b's file was deleted: its keys can never be looked up again.
    engine.set_checkers(vec![three_minutes("a")]);
    engine.run_cycle(T + 2 * MIN).await;
    assert_eq!(store.cached_keys(), 50);
    Ok(())
}

/// Hands its rows over in batches of `batch`, in result order, as a streaming source does.
struct Batches {
    rows: std::sync::Mutex<Vec<Row>>,
    batch: usize,
}

#[async_trait]
impl RowGetter for Batches {
    async fn get_rows(&self, _request: &FetchRequest<'_>) -> Result<Fetched, SourceError> {
        Ok(Fetched::from_rows(self.rows.lock().unwrap().clone()))
    }

    async fn get_rows_batched(
        &self,
        _request: &FetchRequest<'_>,
        sink: &mut dyn RowSink,
    ) -> Result<(), SourceError> {
        let rows = self.rows.lock().unwrap().clone();
        for batch in rows.chunks(self.batch) {
            sink.accept(Fetched::from_rows(batch.to_vec())).await?;
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_fetch_of_several_batches_stays_cached_from_cycle_to_cycle() -> TestResult {
    let store = SqliteStore::open_in_memory()?;
    // A day's window: the horizon is 10 days, so 9 days of rows stay countable.
    let c = checker("big", vec![every_minute(0, 1_000_000, DAY as u64)]);
    // 45,000 rows over 9 days, oldest first (`ORDER BY ts`), in batches of 20,000.
    let mut rows: Vec<Row> = (0..45_000)
        .map(|i| Row::new(format!("k{i}"), T - 9 * DAY + i * 17))
        .collect();
    let source = Arc::new(Batches {
        rows: std::sync::Mutex::new(rows.clone()),
        batch: 20_000,
    });
    let (engine, _) = engine(source.clone(), &store);
    let engine = engine.with_checkers(vec![c]);
    engine.run_cycle(T).await;
    assert_eq!(store.cached_keys(), 45_000);

    rows.extend((0..10).map(|i| Row::new(format!("n{i}"), T + i)));
    *source.rows.lock().unwrap() = rows;
    let report = engine.run_cycle(T + MIN).await;
    assert_eq!(report.checkers[0].new_rows, 10);
    assert_eq!(store.cached_keys(), 45_010);
    Ok(())
}
