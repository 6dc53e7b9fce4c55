//! Two runners on one store: a minute another runner recorded while this cycle was fetching
//! is not delivered in this cycle's version (which is not in the check log); only recorded
//! checks reach the handler, each minute's own once from this runner.

use async_trait::async_trait;
use dwmon_core::testutil::{checker, every_minute, RecordingHandler};
use dwmon_core::{
    CheckRecord, Engine, FetchRequest, Fetched, MemoryStore, Row, RowGetter, SourceError, Status,
    Store,
};
use std::sync::{Arc, Mutex};

/// Tue 2023-11-14 22:14:00 UTC, a minute.
const T: i64 = 1_700_000_040;
const MIN: i64 = 60;

/// A source whose first fetch lets "another runner" record `minute` (count 999) first.
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
            self.store
                .record_checks(&record.checker.clone(), &[record])
                .await
                .map_err(|e| SourceError::Other(e.to_string()))?;
        }
        Ok(Fetched::from_rows(self.rows.clone()))
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

#[tokio::test]
async fn a_minute_recorded_by_another_runner_is_delivered_only_as_recorded(
) -> Result<(), Box<dyn std::error::Error>> {
    let store = Arc::new(MemoryStore::new());
    let handler = Arc::new(RecordingHandler::new());
    let rows = vec![Row::new("a", T - 30), Row::new("b", T + 2 * MIN - 30)];
    // Cycle 1 at T: records and delivers T.
    let source = Arc::new(RacingSource {
        store: store.clone(),
        race: Mutex::new(None),
        rows: rows.clone(),
    });
    let engine = Engine::new(source.clone(), store.clone(), handler.clone())
        .with_checkers(vec![checker("orders", vec![every_minute(1, 5, 60)])]);
    engine.run_cycle(T + 5).await;
    let first = handler.checks();
    assert_eq!(first.len(), 1);

    // Cycle 2 at T+2: candidates T+1 and T+2, but during the fetch another runner records
    // T+1 with its own count.
    let theirs = record_like(&first[0], T + MIN, 999);
    if let Ok(mut race) = source.race.lock() {
        *race = Some(theirs.clone());
    }
    handler.clear();
    let report = engine.run_cycle(T + 2 * MIN + 5).await;
    assert_eq!(
        report.checks().count(),
        2,
        "this cycle computed both minutes"
    );

    let delivered = handler.checks();
    let minutes: Vec<(i64, u64)> = delivered.iter().map(|r| (r.minute, r.count)).collect();
    // T+1 as recorded (999, the other runner's, at least once), never this runner's 0;
    // T+2 (this runner's, recorded) once.
    assert_eq!(minutes, vec![(T + MIN, 999), (T + 2 * MIN, 1)]);
    assert!(store.pending_deliveries(i64::MAX, 100).await?.is_empty());
    Ok(())
}
