//! Streaming (issue 15 item 13): `MysqlSource` hands a result over in batches of the sink's
//! size as the driver reads it, so a fetch holds one batch whatever the result's size.
//! Against the real server (`DWMON_TEST_MYSQL_URL`, default `mysql://root@127.0.0.1:3306/test`).

mod support;

use async_trait::async_trait;
use dwmon_core::source::DEFAULT_BATCH_ROWS;
use dwmon_core::testutil::RecordingHandler;
use dwmon_core::{
    parse_checker, CheckLog, Engine, FetchRequest, Fetched, MemoryStore, Row, RowGetter, RowSink,
    RowStore, SourceError,
};
use dwmon_mysql_source::MysqlSource;
use std::error::Error;
use std::sync::Arc;
use std::time::Duration;
use support::{fetch, TestDb};

type TestResult = Result<(), Box<dyn Error>>;

/// 2023-11-14T22:13:20Z.
const T: i64 = 1_700_000_000;

/// Records every batch; may sleep in each (a slow store) or refuse the batch numbered
/// `refuse`.
struct Sink {
    limit: usize,
    sizes: Vec<(usize, u64)>,
    rows: Vec<Row>,
    pause: Duration,
    refuse: Option<usize>,
}

impl Sink {
    fn new(limit: usize) -> Self {
        Sink {
            limit,
            sizes: Vec::new(),
            rows: Vec::new(),
            pause: Duration::ZERO,
            refuse: None,
        }
    }

    /// The rows received, sorted (batches of a query without ORDER BY come in any order).
    fn sorted_rows(&self) -> Vec<Row> {
        let mut rows = self.rows.clone();
        rows.sort_by(|a, b| (a.timestamp, &a.key).cmp(&(b.timestamp, &b.key)));
        rows
    }
}

#[async_trait]
impl RowSink for Sink {
    fn batch_rows(&self) -> usize {
        self.limit
    }

    async fn accept(&mut self, batch: Fetched) -> Result<(), SourceError> {
        if self.refuse == Some(self.sizes.len()) {
            return Err(SourceError::Other("store is full".into()));
        }
        self.sizes.push((batch.rows.len(), batch.rejected));
        self.rows.extend(batch.rows);
        if !self.pause.is_zero() {
            tokio::time::sleep(self.pause).await;
        }
        Ok(())
    }
}

async fn stream(source: &MysqlSource, query: &str, sink: &mut Sink) -> Result<(), SourceError> {
    let extra = serde_json::json!({});
    let request = FetchRequest {
        checker: "orders",
        query,
        source: "default",
        extra: &extra,
    };
    source.get_rows_batched(&request, sink).await
}

/// Table `t` with `n` (at most 100,000) rows `k0..`, a second apart from `T`, every 1000th
/// key NULL, and `boom(i, at)`, which fails once `i` reaches `at`.
fn numbered(n: usize) -> String {
    format!(
        "CREATE TABLE digits (d INT NOT NULL);
         INSERT INTO digits VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9);
         CREATE TABLE t (n INT PRIMARY KEY, k VARCHAR(20) NULL, ts BIGINT NOT NULL);
         INSERT INTO t
           SELECT n, IF(n % 1000 = 999, NULL, CONCAT('k', n)), {T} + n FROM (
             SELECT a.d + 10 * b.d + 100 * c.d + 1000 * e.d + 10000 * f.d AS n
             FROM digits a, digits b, digits c, digits e, digits f
           ) AS s WHERE n < {n};
         CREATE FUNCTION boom(i INT, at_n INT) RETURNS INT DETERMINISTIC NO SQL
         BEGIN
           IF i >= at_n THEN
             SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'boom: the source failed mid-result';
           END IF;
           RETURN i;
         END"
    )
}

/// The good rows of [`numbered`], sorted by timestamp.
fn expected(n: i64) -> Vec<Row> {
    (0..n)
        .filter(|i| i % 1000 != 999)
        .map(|i| Row::new(format!("k{i}"), T + i))
        .collect()
}

#[tokio::test]
async fn a_large_result_comes_in_batches_of_the_sinks_size_with_the_whole_fetchs_rows() -> TestResult
{
    let Some(db) = TestDb::create("batches", &numbered(25_500)).await else {
        return Ok(());
    };
    let source = MysqlSource::new(&db.url)?;
    // No ORDER BY: the batches' order is the server's, the rows must be the same.
    let query = "SELECT k AS dwmon_unique_key, ts AS dwmon_timestamp FROM t";
    let mut sink = Sink::new(1_000);
    stream(&source, query, &mut sink).await?;
    assert!(sink.sizes.len() >= 25, "{} batches", sink.sizes.len());
    assert!(
        sink.sizes.iter().all(|&(rows, _)| rows <= 1_000),
        "{:?}",
        sink.sizes
    );
    let rejected: u64 = sink.sizes.iter().map(|s| s.1).sum();
    assert_eq!((sink.rows.len(), rejected), (25_475, 25));
    assert_eq!(sink.sorted_rows(), expected(25_500));

    // get_rows is the same result, whole.
    let mut whole = fetch(&source, "default", query).await?;
    assert_eq!(whole.rejected, 25);
    whole
        .rows
        .sort_by(|a, b| (a.timestamp, &a.key).cmp(&(b.timestamp, &b.key)));
    assert_eq!(whole.rows, expected(25_500));
    db.drop().await;
    Ok(())
}

#[tokio::test]
async fn the_engines_batch_size_cuts_a_result_of_several_batches() -> TestResult {
    let n = 3 * DEFAULT_BATCH_ROWS + 123;
    let Some(db) = TestDb::create("default_batches", &numbered(n)).await else {
        return Ok(());
    };
    let source = MysqlSource::new(&db.url)?;
    let query = "SELECT k AS dwmon_unique_key, ts AS dwmon_timestamp FROM t ORDER BY n";
    let mut sink = Sink::new(DEFAULT_BATCH_ROWS);
    stream(&source, query, &mut sink).await?;
    let expected = expected(i64::try_from(n)?);
    // Full batches of good rows, then the rest.
    let rows: Vec<usize> = sink.sizes.iter().map(|s| s.0).collect();
    let mut full = vec![DEFAULT_BATCH_ROWS; expected.len() / DEFAULT_BATCH_ROWS];
    full.push(expected.len() % DEFAULT_BATCH_ROWS);
    assert_eq!(full, vec![20_000, 20_000, 20_000, 63]);
    assert_eq!(rows, full, "{:?}", sink.sizes);
    assert_eq!(sink.rows, expected);
    db.drop().await;
    Ok(())
}

#[tokio::test]
async fn a_failure_mid_stream_fails_the_fetch_after_the_batches_before_it() -> TestResult {
    let Some(db) = TestDb::create("mid_stream", &numbered(10_000)).await else {
        return Ok(());
    };
    let source = MysqlSource::builder()
        .source("default", &db.url)?
        .pool_size(1)
        .build()?;
    // Row n = 5000 raises an error: five batches of 1,000 rows arrived before it.
    let query =
        "SELECT CONCAT('k', boom(n, 5000)) AS dwmon_unique_key, ts AS dwmon_timestamp FROM t";
    let mut sink = Sink::new(1_000);
    let error = stream(&source, query, &mut sink).await.unwrap_err();
    assert!(
        matches!(&error, SourceError::Query { message, .. } if message.contains("failed mid-result")),
        "{error:?}"
    );
    assert_eq!(sink.sizes, vec![(1_000, 0); 5]);
    let keys: Vec<Row> = (0..5_000_i64)
        .map(|i| Row::new(format!("k{i}"), T + i))
        .collect();
    assert_eq!(sink.sorted_rows(), keys);
    // The only connection serves the next fetch.
    let next = fetch(
        &source,
        "default",
        "SELECT 'a' AS dwmon_unique_key, 1 AS dwmon_timestamp",
    )
    .await?;
    assert_eq!(next.rows, vec![Row::new("a", 1)]);
    db.drop().await;
    Ok(())
}

#[tokio::test]
async fn a_refused_batch_stops_the_fetch_with_the_sinks_error() -> TestResult {
    let Some(db) = TestDb::create("refused", &numbered(50_000)).await else {
        return Ok(());
    };
    let source = MysqlSource::new(&db.url)?;
    let query = "SELECT k AS dwmon_unique_key, ts AS dwmon_timestamp FROM t ORDER BY n";
    let mut sink = Sink::new(1_000);
    sink.refuse = Some(2);
    let error = stream(&source, query, &mut sink).await.unwrap_err();
    assert_eq!(error, SourceError::Other("store is full".into()));
    assert_eq!(sink.sizes.len(), 2);
    // The connection left mid-result is never reused: the next fetch gets every row.
    let mut sink = Sink::new(10_000);
    stream(&source, query, &mut sink).await?;
    assert_eq!(sink.rows, expected(50_000));
    db.drop().await;
    Ok(())
}

/// The client timeout bounds reading the whole result, not the time the sink takes.
mod timeouts {
    use super::*;

    #[tokio::test]
    async fn a_slow_sink_is_not_a_client_timeout() -> TestResult {
        let Some(db) = TestDb::create("slow_sink", &numbered(4_000)).await else {
            return Ok(());
        };
        // Reading 4,000 rows takes milliseconds; the sink takes 4 x 250 ms.
        let source = MysqlSource::builder()
            .source("default", &db.url)?
            .client_timeout(Duration::from_millis(600))
            .build()?;
        let query = "SELECT k AS dwmon_unique_key, ts AS dwmon_timestamp FROM t ORDER BY n";
        let mut sink = Sink::new(1_000);
        sink.pause = Duration::from_millis(250);
        stream(&source, query, &mut sink).await?;
        assert_eq!(sink.rows, expected(4_000));
        db.drop().await;
        Ok(())
    }

    #[tokio::test]
    async fn the_client_timeout_bounds_the_whole_result_not_each_batch() -> TestResult {
        let Some(db) = TestDb::create("slow_rows", &numbered(100)).await else {
            return Ok(());
        };
        // Each row takes 50 ms on the server (each batch of 5, 250 ms); the 100 rows take
        // 5 s, over the 1 s client timeout.
        let source = MysqlSource::builder()
            .source("default", &db.url)?
            .statement_timeout(Duration::from_secs(60))
            .client_timeout(Duration::from_secs(1))
            .build()?;
        let query = "SELECT n AS dwmon_unique_key, ts AS dwmon_timestamp, SLEEP(0.05) AS pause \
                     FROM t ORDER BY n";
        let mut sink = Sink::new(5);
        let started = std::time::Instant::now();
        let error = stream(&source, query, &mut sink).await.unwrap_err();
        assert_eq!(error, SourceError::Timeout { millis: 1_000 });
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert!(sink.sizes.len() < 20, "{} batches", sink.sizes.len());
        let next = fetch(
            &source,
            "default",
            "SELECT 'a' AS dwmon_unique_key, 1 AS dwmon_timestamp",
        )
        .await?;
        assert_eq!(next.rows, vec![Row::new("a", 1)]);
        db.drop().await;
        Ok(())
    }
}

/// Through the engine: a fetch that fails after two stored batches sends an ERROR event and
/// records no check; the rows of the batches stored before the failure stay stored.
#[tokio::test]
async fn the_engine_reports_a_failure_mid_stream_and_keeps_the_stored_batches() -> TestResult {
    let n = 3 * DEFAULT_BATCH_ROWS;
    let Some(db) = TestDb::create("engine_mid_stream", &numbered(n)).await else {
        return Ok(());
    };
    let fail_at = 2 * DEFAULT_BATCH_ROWS + 10;
    let checker = parse_checker(
        "orders.dwmon",
        &format!(
            "__QUERY__\n\
             SELECT boom(n, {fail_at}) AS dwmon_unique_key, ts AS dwmon_timestamp FROM t ORDER BY n\n\
             __REQUIREMENTS__\n\
             CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM1 MAXNUM1000000 LOOKBACKSECONDS600\n"
        ),
    )?;
    let store = Arc::new(MemoryStore::new());
    let handler = Arc::new(RecordingHandler::new());
    let engine = Engine::new(
        Arc::new(MysqlSource::new(&db.url)?),
        store.clone(),
        handler.clone(),
    )
    .with_checkers(vec![checker]);
    // A minute after the last row.
    let now = (T + i64::try_from(n)?) / 60 * 60 + 120;
    engine.run_cycle(now).await;
    assert!(handler.checks().is_empty(), "{:?}", handler.checks());
    let errors = handler.errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].error.contains("failed mid-result"),
        "{}",
        errors[0].error
    );
    assert_eq!(store.last_checked_minute("orders").await?, None);
    let stored = store.count("orders", T, T + i64::try_from(n)?).await?;
    assert_eq!(stored, 2 * DEFAULT_BATCH_ROWS as u64);
    db.drop().await;
    Ok(())
}
