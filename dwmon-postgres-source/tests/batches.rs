//! Streaming (issue 15 item 13): `PostgresSource` hands a result over in batches of the
//! sink's size through a portal, one page per batch, so a fetch holds one batch whatever the
//! result's size. Against the real server (`DWMON_TEST_POSTGRES_URL`, see `support::test_url`).

mod support;

use async_trait::async_trait;
use dwmon_core::source::DEFAULT_BATCH_ROWS;
use dwmon_core::testutil::RecordingHandler;
use dwmon_core::{
    parse_checker, CheckLog, Engine, FetchRequest, Fetched, Row, RowGetter, RowSink, RowStore,
    SourceError,
};
use dwmon_postgres_source::PostgresSource;
use dwmon_sqlite::SqliteStore;
use std::error::Error;
use std::sync::Arc;
use std::time::Duration;
use support::{fetch, TestSchema};

type TestResult = Result<(), Box<dyn Error>>;

/// 2023-11-14T22:13:20Z.
const T: i64 = 1_700_000_000;

/// Records every batch; may sleep in each (a slow store), refuse the batch numbered `refuse`,
/// or look up the source's backend state on the server while it holds a batch.
struct Sink<'a> {
    limit: usize,
    sizes: Vec<(usize, u64)>,
    rows: Vec<Row>,
    pause: Duration,
    refuse: Option<usize>,
    /// The admin client and the source's application name: each batch records the state of
    /// the source's backend while the sink holds it.
    watch: Option<(&'a tokio_postgres::Client, &'a str)>,
    states: Vec<String>,
}

impl Sink<'_> {
    fn new(limit: usize) -> Self {
        Sink {
            limit,
            sizes: Vec::new(),
            rows: Vec::new(),
            pause: Duration::ZERO,
            refuse: None,
            watch: None,
            states: Vec::new(),
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
impl RowSink for Sink<'_> {
    fn batch_rows(&self) -> usize {
        self.limit
    }

    async fn accept(&mut self, batch: Fetched) -> Result<(), SourceError> {
        if self.refuse == Some(self.sizes.len()) {
            return Err(SourceError::Other("store is full".into()));
        }
        self.sizes.push((batch.rows.len(), batch.rejected));
        self.rows.extend(batch.rows);
        if let Some((admin, application)) = self.watch {
            let row = admin
                .query_one(
                    "SELECT string_agg(state, ',') FROM pg_stat_activity WHERE application_name = $1",
                    &[&application],
                )
                .await
                .map_err(|e| SourceError::Other(e.to_string()))?;
            self.states
                .push(row.get::<_, Option<String>>(0).unwrap_or_default());
        }
        if !self.pause.is_zero() {
            tokio::time::sleep(self.pause).await;
        }
        Ok(())
    }
}

async fn stream(
    source: &PostgresSource,
    query: &str,
    sink: &mut Sink<'_>,
) -> Result<(), SourceError> {
    let extra = serde_json::json!({});
    let request = FetchRequest {
        checker: "orders",
        query,
        source: "default",
        extra: &extra,
    };
    source.get_rows_batched(&request, sink).await
}

/// Table `t` with `n` rows `k0..`, a second apart from `T`, every 1000th key NULL.
fn numbered(n: usize) -> String {
    format!(
        "CREATE TABLE t AS SELECT i AS n, CASE WHEN i % 1000 = 999 THEN NULL ELSE 'k' || i END AS k, \
         {T} + i AS ts FROM generate_series(0, {n} - 1) AS i;"
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
    let Some(db) = TestSchema::create("batches", &numbered(25_500)).await else {
        return Ok(());
    };
    let source = PostgresSource::new(&db.url)?;
    // No ORDER BY: the batches' order is the server's, the rows must be the same.
    let query = db.sql("SELECT k AS dwmon_unique_key, ts AS dwmon_timestamp FROM {s}.t");
    let mut sink = Sink::new(1_000);
    stream(&source, &query, &mut sink).await?;
    assert!(sink.sizes.len() >= 26, "{} batches", sink.sizes.len());
    assert!(
        sink.sizes.iter().all(|&(rows, _)| rows <= 1_000),
        "{:?}",
        sink.sizes
    );
    let rejected: u64 = sink.sizes.iter().map(|s| s.1).sum();
    assert_eq!((sink.rows.len(), rejected), (25_475, 25));
    assert_eq!(sink.sorted_rows(), expected(25_500));

    // get_rows is the same result, whole.
    let mut whole = fetch(&source, "default", &query).await?;
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
    let Some(db) = TestSchema::create("default_batches", &numbered(n)).await else {
        return Ok(());
    };
    let source = PostgresSource::new(&db.url)?;
    let query = db.sql("SELECT k AS dwmon_unique_key, ts AS dwmon_timestamp FROM {s}.t ORDER BY n");
    let mut sink = Sink::new(DEFAULT_BATCH_ROWS);
    stream(&source, &query, &mut sink).await?;
    // One page of DEFAULT_BATCH_ROWS result rows per batch (its NULL keys rejected).
    let rows: Vec<usize> = sink.sizes.iter().map(|s| s.0).collect();
    assert_eq!(rows, vec![19_980, 19_980, 19_980, 123], "{:?}", sink.sizes);
    assert_eq!(sink.rows, expected(i64::try_from(n)?));
    db.drop().await;
    Ok(())
}

#[tokio::test]
async fn the_server_waits_while_the_sink_holds_a_batch() -> TestResult {
    let Some(db) = TestSchema::create("portal_waits", &numbered(5_000)).await else {
        return Ok(());
    };
    let source = PostgresSource::new(&db.url)?;
    let query = db.sql("SELECT k AS dwmon_unique_key, ts AS dwmon_timestamp FROM {s}.t ORDER BY n");
    let mut sink = Sink::new(1_000);
    sink.watch = Some((&db.admin, &db.name));
    stream(&source, &query, &mut sink).await?;
    assert_eq!(sink.rows, expected(5_000));
    // The portal is suspended between pages: the backend is not running the query, nor
    // pushing rows the source has not asked for, while the store works on a batch.
    assert_eq!(sink.states.len(), 5);
    assert!(
        sink.states
            .iter()
            .all(|state| state == "idle in transaction"),
        "{:?}",
        sink.states
    );
    db.drop().await;
    Ok(())
}

#[tokio::test]
async fn a_failure_mid_stream_fails_the_fetch_after_the_batches_before_it() -> TestResult {
    let Some(db) = TestSchema::create("mid_stream", &numbered(10_000)).await else {
        return Ok(());
    };
    let source = PostgresSource::builder()
        .source("default", &db.url)?
        .pool_size(1)
        .build()?;
    // Row n = 5000 divides by zero: the sixth page fails. (No ORDER BY: a sort would
    // evaluate every row before the first page; a scan evaluates them page by page.)
    let query = db.sql(
        "SELECT CASE WHEN n < 5000 THEN k ELSE (1 / (n - n))::text END AS dwmon_unique_key, \
         ts AS dwmon_timestamp FROM {s}.t",
    );
    let mut sink = Sink::new(1_000);
    let error = stream(&source, &query, &mut sink).await.unwrap_err();
    assert!(
        matches!(&error, SourceError::Query { message, .. } if message.contains("division by zero")),
        "{error:?}"
    );
    assert_eq!(sink.sizes.len(), 5, "{:?}", sink.sizes);
    assert_eq!(sink.sorted_rows(), expected(5_000));
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
    let Some(db) = TestSchema::create("refused", &numbered(10_000)).await else {
        return Ok(());
    };
    let source = PostgresSource::builder()
        .source("default", &db.url)?
        .pool_size(1)
        .build()?;
    let query = db.sql("SELECT k AS dwmon_unique_key, ts AS dwmon_timestamp FROM {s}.t ORDER BY n");
    let mut sink = Sink::new(1_000);
    sink.refuse = Some(2);
    let error = stream(&source, &query, &mut sink).await.unwrap_err();
    assert_eq!(error, SourceError::Other("store is full".into()));
    assert_eq!(sink.sizes.len(), 2);
    // The connection, left mid-portal, was rolled back: the next fetch gets every row.
    let mut sink = Sink::new(1_000);
    stream(&source, &query, &mut sink).await?;
    assert_eq!(sink.rows, expected(10_000));
    db.drop().await;
    Ok(())
}

/// The server's statement timeout bounds each page, the client timeout the reading of the
/// whole result; neither counts the time the sink takes to store a batch.
mod timeouts {
    use super::*;

    #[tokio::test]
    async fn a_slow_sink_is_not_a_query_timeout() -> TestResult {
        let Some(db) = TestSchema::create("slow_sink", &numbered(4_000)).await else {
            return Ok(());
        };
        // Reading 4,000 rows takes milliseconds; the sink takes 4 x 250 ms, more than both
        // timeouts.
        let source = PostgresSource::builder()
            .source("default", &db.url)?
            .statement_timeout(Duration::from_millis(300))
            .client_timeout(Duration::from_millis(600))
            .build()?;
        let query =
            db.sql("SELECT k AS dwmon_unique_key, ts AS dwmon_timestamp FROM {s}.t ORDER BY n");
        let mut sink = Sink::new(1_000);
        sink.pause = Duration::from_millis(250);
        stream(&source, &query, &mut sink).await?;
        assert_eq!(sink.rows, expected(4_000));
        db.drop().await;
        Ok(())
    }

    #[tokio::test]
    async fn the_client_timeout_bounds_the_whole_result_not_each_page() -> TestResult {
        let Some(db) = TestSchema::create("slow_pages", "").await else {
            return Ok(());
        };
        // Each page of 5 rows takes 250 ms of server time (under the 2 s statement timeout);
        // the 100 rows take 5 s, over the 1 s client timeout.
        let source = PostgresSource::builder()
            .source("default", &db.url)?
            .pool_size(1)
            .statement_timeout(Duration::from_secs(2))
            .client_timeout(Duration::from_secs(1))
            .build()?;
        let query = "SELECT i::text AS dwmon_unique_key, 1700000000 + i AS dwmon_timestamp, \
                     pg_sleep(0.05)::text AS pause FROM generate_series(1, 100) AS i";
        let mut sink = Sink::new(5);
        let started = std::time::Instant::now();
        let error = stream(&source, query, &mut sink).await.unwrap_err();
        assert_eq!(error, SourceError::Timeout { millis: 1_000 });
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert!(
            (1..20).contains(&sink.sizes.len()),
            "{} batches",
            sink.sizes.len()
        );
        // The connection was dropped, not reused mid-portal: the next fetch works.
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
    let Some(db) = TestSchema::create(
        "engine_mid_stream",
        &format!(
            "CREATE TABLE t AS SELECT i AS n, {T} + i AS ts FROM generate_series(0, {n} - 1) AS i;"
        ),
    )
    .await
    else {
        return Ok(());
    };
    let fail_at = 2 * DEFAULT_BATCH_ROWS + 10;
    let checker = parse_checker(
        "orders.dwmon",
        &db.sql(&format!(
            "__QUERY__\n\
             SELECT CASE WHEN n < {fail_at} THEN n::text ELSE (1 / (n - n))::text END AS dwmon_unique_key, \
             ts AS dwmon_timestamp FROM {{s}}.t\n\
             __REQUIREMENTS__\n\
             CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM1 MAXNUM1000000 LOOKBACKSECONDS600\n"
        )),
    )?;
    let dir = tempfile::tempdir()?;
    let store = Arc::new(SqliteStore::open(dir.path().join("dwmon.sqlite"))?);
    let handler = Arc::new(RecordingHandler::new());
    let engine = Engine::new(
        Arc::new(PostgresSource::new(&db.url)?),
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
        errors[0].error.contains("division by zero"),
        "{}",
        errors[0].error
    );
    assert_eq!(store.last_checked_minute("orders").await?, None);
    let stored = store.count("orders", T, T + i64::try_from(n)?).await?;
    assert_eq!(stored, 2 * DEFAULT_BATCH_ROWS as u64);
    db.drop().await;
    Ok(())
}
