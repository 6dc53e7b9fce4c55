//! `SqliteSource` against real SQLite files (created read-write with rusqlite in a temp
//! directory, then read through the source).

use dwmon_core::{FetchRequest, Fetched, Row, RowGetter, SourceError};
use dwmon_sqlite::source::SqliteSourceError;
use dwmon_sqlite::SqliteSource;
use rusqlite::Connection;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tempfile::TempDir;

type TestResult = Result<(), Box<dyn Error>>;

/// A temp directory with `data.db` made by running `setup`.
fn database(setup: &str) -> Result<(TempDir, PathBuf), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("data.db");
    let connection = Connection::open(&path)?;
    connection.execute_batch(setup)?;
    connection.close().map_err(|(_, e)| e)?;
    Ok((dir, path))
}

async fn fetch(source: &SqliteSource, name: &str, query: &str) -> Result<Fetched, SourceError> {
    let extra = serde_json::json!({});
    let request = FetchRequest {
        checker: "orders",
        query,
        source: name,
        extra: &extra,
    };
    source.get_rows(&request).await
}

/// Fetches `SELECT key AS dwmon_unique_key, ts AS dwmon_timestamp FROM t` from a one-table
/// database filled by `inserts`.
async fn fetch_table(values: &str) -> Result<Fetched, Box<dyn Error>> {
    let setup = format!("CREATE TABLE t (n INTEGER, k, ts); INSERT INTO t VALUES {values};");
    let (_dir, path) = database(&setup)?;
    let source = SqliteSource::new(&path);
    let query = "SELECT k AS dwmon_unique_key, ts AS dwmon_timestamp FROM t ORDER BY n";
    Ok(fetch(&source, "default", query).await?)
}

mod source_keys {
    use super::*;

    #[tokio::test]
    async fn text_integer_real_and_blob_keys_become_strings() -> TestResult {
        let fetched = fetch_table(
            "(1, 'abc', 1700000000), (2, 42, 1700000001), (3, -7, 1700000002), \
             (4, 1.5, 1700000003), (5, 2.0, 1700000004), (6, x'00ab', 1700000005), \
             (7, '', 1700000006)",
        )
        .await?;
        let keys: Vec<&str> = fetched.rows.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["abc", "42", "-7", "1.5", "2", "00ab", ""]);
        assert_eq!(fetched.rejected, 0);
        Ok(())
    }

    #[tokio::test]
    async fn null_key_is_rejected_and_counted() -> TestResult {
        let fetched =
            fetch_table("(1, 'a', 1700000000), (2, NULL, 1700000001), (3, 'c', 1700000002)")
                .await?;
        assert_eq!(
            fetched.rows,
            vec![Row::new("a", 1_700_000_000), Row::new("c", 1_700_000_002)]
        );
        assert_eq!(fetched.rejected, 1);
        assert_eq!(
            fetched.rejected_samples,
            vec!["row 2: dwmon_unique_key is NULL".to_string()]
        );
        Ok(())
    }
}

mod source_timestamps {
    use super::*;

    #[tokio::test]
    async fn integers_floats_and_texts_become_epoch_seconds() -> TestResult {
        let fetched = fetch_table(
            "(1, 'int', 1700000000), (2, 'real', 1700000000.9), (3, 'text', '1700000000'), \
             (4, 'text-real', '1700000000.5'), (5, 'datetime', '2023-11-14 22:13:20'), \
             (6, 'iso', '2023-11-14T22:13:20Z'), (7, 'zero', 0)",
        )
        .await?;
        let expected: Vec<Row> = ["int", "real", "text", "text-real", "datetime", "iso"]
            .iter()
            .map(|k| Row::new(*k, 1_700_000_000))
            .chain([Row::new("zero", 0)])
            .collect();
        assert_eq!(fetched.rows, expected);
        assert_eq!(fetched.rejected, 0);
        Ok(())
    }

    /// The seed's sample queries use `strftime('%s', ...)`, which returns TEXT in SQLite.
    #[tokio::test]
    async fn strftime_text_epoch_from_the_seed() -> TestResult {
        let (_dir, path) = database(
            "CREATE TABLE e (id TEXT, at TEXT); INSERT INTO e VALUES ('x', '2023-11-14 22:13:20');",
        )?;
        let source = SqliteSource::new(&path);
        let typed = Connection::open(&path)?.query_row(
            "SELECT typeof(strftime('%s', at)) FROM e",
            [],
            |row| row.get::<_, String>(0),
        )?;
        assert_eq!(typed, "text");
        let fetched = fetch(
            &source,
            "default",
            "SELECT id AS dwmon_unique_key, strftime('%s', at) AS dwmon_timestamp FROM e",
        )
        .await?;
        assert_eq!(fetched.rows, vec![Row::new("x", 1_700_000_000)]);
        Ok(())
    }

    #[tokio::test]
    async fn bad_timestamps_are_rejected_with_reasons() -> TestResult {
        let fetched = fetch_table(
            "(1, 'null', NULL), (2, 'word', 'yesterday'), (3, 'negative', -1), \
             (4, 'millis', 1700000000000), (5, 'blob', x'01'), (6, 'nan-text', 'NaN'), \
             (7, 'ok', 1700000000), (8, 'negative-real', -0.5)",
        )
        .await?;
        assert_eq!(fetched.rows, vec![Row::new("ok", 1_700_000_000)]);
        assert_eq!(fetched.rejected, 7);
        // The first five reasons are kept, each naming the row and the value.
        assert_eq!(fetched.rejected_samples.len(), Fetched::MAX_SAMPLES);
        let samples = &fetched.rejected_samples;
        assert_eq!(samples[0], "row 1: dwmon_timestamp is NULL");
        assert!(samples[1].starts_with("row 2: dwmon_timestamp 'yesterday' is not epoch seconds"));
        assert_eq!(
            samples[2],
            "row 3: dwmon_timestamp -1 is negative (before 1970)"
        );
        assert!(
            samples[3].starts_with("row 4: dwmon_timestamp 1700000000000 is after the year 5000")
        );
        assert!(samples[3].contains("looks like milliseconds; divide by 1000"));
        assert!(samples[4].starts_with("row 5: dwmon_timestamp BLOB of 1 bytes is a BLOB"));
        Ok(())
    }
}

mod source_contract {
    use super::*;

    #[tokio::test]
    async fn missing_columns_name_the_checker_and_list_the_columns() -> TestResult {
        let (_dir, path) = database("CREATE TABLE t (id, ts);")?;
        let source = SqliteSource::new(&path);
        // Checked from the statement's columns, so an empty result is no excuse.
        let error = fetch(
            &source,
            "default",
            "SELECT id, ts AS dwmon_timestamp FROM t",
        )
        .await
        .unwrap_err();
        assert_eq!(
            error,
            SourceError::MissingColumns {
                checker: "orders".into(),
                found: vec!["id".into(), "dwmon_timestamp".into()],
            }
        );
        Ok(())
    }

    #[tokio::test]
    async fn other_columns_are_ignored_and_case_does_not_matter() -> TestResult {
        let (_dir, path) = database("")?;
        let source = SqliteSource::new(&path);
        let fetched = fetch(
            &source,
            "default",
            "SELECT 'x' AS note, 1700000000 AS DWMON_TIMESTAMP, 'k' AS Dwmon_Unique_Key",
        )
        .await?;
        assert_eq!(fetched.rows, vec![Row::new("k", 1_700_000_000)]);
        Ok(())
    }

    #[tokio::test]
    async fn named_sources_pick_the_file_and_unknown_names_fail() -> TestResult {
        let (_a, first) = database("CREATE TABLE t (k); INSERT INTO t VALUES ('from-a');")?;
        let (_b, second) = database("CREATE TABLE t (k); INSERT INTO t VALUES ('from-b');")?;
        let source = SqliteSource::builder()
            .source("a", &first)?
            .source("b", &second)?
            .build()?;
        let query = "SELECT k AS dwmon_unique_key, 5 AS dwmon_timestamp FROM t";
        assert_eq!(
            fetch(&source, "a", query).await?.rows,
            vec![Row::new("from-a", 5)]
        );
        assert_eq!(
            fetch(&source, "b", query).await?.rows,
            vec![Row::new("from-b", 5)]
        );
        assert_eq!(
            fetch(&source, "c", query).await.unwrap_err(),
            SourceError::UnknownSource {
                source_name: "c".into(),
                known: vec!["a".into(), "b".into()],
            }
        );
        Ok(())
    }

    #[tokio::test]
    async fn sql_errors_are_query_errors() -> TestResult {
        let (_dir, path) = database("")?;
        let source = SqliteSource::new(&path);
        let error = fetch(&source, "default", "SELECT * FROM no_such_table")
            .await
            .unwrap_err();
        match error {
            SourceError::Query {
                source_name,
                message,
            } => {
                assert_eq!(source_name, "default");
                assert!(
                    message.contains("no such table: no_such_table"),
                    "{message}"
                );
            }
            other => panic!("expected a query error, got {other:?}"),
        }
        Ok(())
    }

    #[test]
    fn builder_errors() {
        assert_eq!(
            SqliteSource::builder().build().unwrap_err(),
            SqliteSourceError::NoSources
        );
    }

    #[tokio::test]
    async fn syntax_errors_do_not_quote_the_whole_query() -> TestResult {
        let (_dir, path) = database("CREATE TABLE t (a);")?;
        let source = SqliteSource::new(&path);
        let long_query = format!("SELECT nope\nFROM t\nWHERE a = '{}'", "x".repeat(100_000));
        let error = fetch(&source, "default", &long_query).await.unwrap_err();
        let SourceError::Query { message, .. } = error else {
            panic!("expected a query error, got {error:?}");
        };
        assert!(message.contains("no such column: nope"), "{message}");
        assert!(message.contains("offset 7"), "{message}");
        assert!(!message.contains('\n'), "one line: {message}");
        assert!(message.len() < 300, "{} characters", message.len());
        Ok(())
    }
}

mod source_read_only {
    use super::*;

    fn files(dir: &Path) -> Result<Vec<String>, Box<dyn Error>> {
        let mut names: Vec<String> = std::fs::read_dir(dir)?
            .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<_, _>>()?;
        names.sort();
        Ok(names)
    }

    fn snapshot(path: &Path) -> Result<(Vec<u8>, std::time::SystemTime), Box<dyn Error>> {
        Ok((std::fs::read(path)?, std::fs::metadata(path)?.modified()?))
    }

    #[tokio::test]
    async fn the_source_never_writes_the_file() -> TestResult {
        let (dir, path) =
            database("CREATE TABLE t (k, ts); INSERT INTO t VALUES ('a', 1700000000);")?;
        let before = snapshot(&path)?;
        let source = SqliteSource::new(&path);
        let query = "SELECT k AS dwmon_unique_key, ts AS dwmon_timestamp FROM t";
        assert_eq!(fetch(&source, "default", query).await?.rows.len(), 1);

        // Writes that return columns reach SQLite and are refused by the read-only connection.
        for write in [
            "INSERT INTO t VALUES ('b', 1) RETURNING k AS dwmon_unique_key, ts AS dwmon_timestamp",
            "UPDATE t SET ts = 1 RETURNING k AS dwmon_unique_key, ts AS dwmon_timestamp",
            "DELETE FROM t RETURNING k AS dwmon_unique_key, ts AS dwmon_timestamp",
        ] {
            let error = fetch(&source, "default", write).await.unwrap_err();
            assert!(
                matches!(&error, SourceError::Query { message, .. } if message.contains("readonly")),
                "{write}: {error:?}"
            );
        }
        // Statements without the two columns are refused before they run.
        for write in [
            "CREATE TABLE u (x)",
            "DELETE FROM t",
            "PRAGMA user_version = 7",
        ] {
            let error = fetch(&source, "default", write).await.unwrap_err();
            assert!(
                matches!(error, SourceError::MissingColumns { .. }),
                "{write}: {error:?}"
            );
        }
        assert_eq!(fetch(&source, "default", query).await?.rows.len(), 1);
        assert_eq!(snapshot(&path)?, before, "file bytes or mtime changed");
        assert_eq!(
            files(dir.path())?,
            ["data.db"],
            "no journal or side file left"
        );
        Ok(())
    }

    #[tokio::test]
    async fn a_missing_file_is_a_clear_error_and_is_not_created() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("absent.db");
        let source = SqliteSource::new(&path);
        let error = fetch(&source, "default", "SELECT 1").await.unwrap_err();
        match &error {
            SourceError::Connection {
                source_name,
                message,
            } => {
                assert_eq!(source_name, "default");
                assert!(message.contains("absent.db"), "{message}");
                assert!(message.contains("does not exist"), "{message}");
            }
            other => panic!("expected a connection error, got {other:?}"),
        }
        assert!(!path.exists());

        // It recovers by itself once the file appears.
        Connection::open(&path)?
            .execute_batch("CREATE TABLE t (k); INSERT INTO t VALUES ('k');")?;
        let fetched = fetch(
            &source,
            "default",
            "SELECT k AS dwmon_unique_key, 9 AS dwmon_timestamp FROM t",
        )
        .await?;
        assert_eq!(fetched.rows, vec![Row::new("k", 9)]);
        Ok(())
    }

    #[tokio::test]
    async fn reads_an_idle_wal_database_without_creating_side_files() -> TestResult {
        let (dir, path) = database(
            "PRAGMA journal_mode = WAL; CREATE TABLE t (k, ts); INSERT INTO t VALUES ('a', 5);",
        )?;
        let before = snapshot(&path)?;
        let source = SqliteSource::new(&path);
        let fetched = fetch(
            &source,
            "default",
            "SELECT k AS dwmon_unique_key, ts AS dwmon_timestamp FROM t",
        )
        .await;
        assert_eq!(fetched?.rows, vec![Row::new("a", 5)]);
        // No -wal/-shm files left beside the user's file (they would be ours, not theirs).
        assert_eq!(files(dir.path())?, ["data.db"]);
        assert_eq!(snapshot(&path)?, before);
        Ok(())
    }

    #[tokio::test]
    async fn reads_a_wal_database_while_a_writer_has_it_open() -> TestResult {
        let (_dir, path) = database("PRAGMA journal_mode = WAL; CREATE TABLE t (k, ts);")?;
        let writer = Connection::open(&path)?;
        writer.execute("INSERT INTO t VALUES ('committed', 1700000000)", [])?;
        writer.execute_batch("BEGIN; INSERT INTO t VALUES ('uncommitted', 1700000001);")?;
        let source = SqliteSource::new(&path);
        let fetched = fetch(
            &source,
            "default",
            "SELECT k AS dwmon_unique_key, ts AS dwmon_timestamp FROM t",
        )
        .await?;
        assert_eq!(fetched.rows, vec![Row::new("committed", 1_700_000_000)]);
        writer.execute_batch("COMMIT")?;
        Ok(())
    }
}

mod source_timeouts {
    use super::*;

    /// The never-ending query runs on the blocking pool (where tokio's paused time cannot
    /// reach), so a short real timeout bounds it; the interrupt stops it.
    #[tokio::test]
    async fn a_query_running_too_long_is_interrupted() -> TestResult {
        let (_dir, path) = database("")?;
        let source = SqliteSource::builder()
            .source("default", &path)?
            .query_timeout(Duration::from_millis(100))
            .build()?;
        let endless = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) \
                       SELECT max(i) AS dwmon_unique_key, 1 AS dwmon_timestamp FROM n";
        let error = fetch(&source, "default", endless).await.unwrap_err();
        assert_eq!(error, SourceError::Timeout { millis: 100 });
        // The interrupted query released the file: the source still works.
        let fetched = fetch(
            &source,
            "default",
            "SELECT 'k' AS dwmon_unique_key, 1 AS dwmon_timestamp",
        )
        .await?;
        assert_eq!(fetched.rows, vec![Row::new("k", 1)]);
        Ok(())
    }

    #[tokio::test]
    async fn a_locked_database_fails_after_the_busy_timeout() -> TestResult {
        let (_dir, path) = database("CREATE TABLE t (k, ts);")?;
        let writer = Connection::open(&path)?;
        writer.execute_batch("BEGIN EXCLUSIVE; INSERT INTO t VALUES ('x', 1);")?;
        let source = SqliteSource::builder()
            .source("default", &path)?
            .busy_timeout(Duration::ZERO)
            .build()?;
        let error = fetch(
            &source,
            "default",
            "SELECT k AS dwmon_unique_key, ts AS dwmon_timestamp FROM t",
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&error, SourceError::Query { message, .. } if message.contains("locked")),
            "{error:?}"
        );
        writer.execute_batch("ROLLBACK")?;
        Ok(())
    }
}

mod not_a_regular_file {
    use super::*;

    /// A FIFO's open() blocks until a writer appears; a directory is no database either.
    #[tokio::test]
    async fn a_fifo_or_a_directory_is_an_error_before_it_is_opened() -> TestResult {
        let dir = tempfile::tempdir()?;
        let fifo = dir.path().join("pipe.db");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status()?;
        assert!(made.success(), "mkfifo failed");
        for path in [fifo.as_path(), dir.path()] {
            let source = SqliteSource::builder()
                .source("default", path)?
                .query_timeout(Duration::from_secs(30))
                .build()?;
            let started = std::time::Instant::now();
            let error = fetch(&source, "default", "SELECT 1")
                .await
                .expect_err("not a database file");
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "waited {:?}",
                started.elapsed()
            );
            let text = error.to_string();
            assert!(text.contains("not a regular file"), "{text}");
        }
        Ok(())
    }
}

/// Streaming (issue 15 item 13): a fetch hands its rows over in batches of the sink's size,
/// reading on only after the sink took the previous batch.
mod batches {
    use super::*;
    use async_trait::async_trait;
    use dwmon_core::RowSink;

    /// Records each batch's size, sleeping `pause` in each (a slow store), refusing the batch
    /// numbered `refuse`.
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

    /// A file with `n` rows `k0..`, every 1000th with a NULL key.
    fn numbered(n: usize) -> Result<(TempDir, PathBuf), Box<dyn Error>> {
        database(&format!(
            "CREATE TABLE t (n INTEGER PRIMARY KEY, k, ts);
             WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < {n})
             INSERT INTO t SELECT i, CASE WHEN i % 1000 = 999 THEN NULL ELSE 'k' || i END,
                                  1700000000 + i FROM s;"
        ))
    }

    const QUERY: &str = "SELECT k AS dwmon_unique_key, ts AS dwmon_timestamp FROM t ORDER BY n";

    async fn stream(source: &SqliteSource, sink: &mut Sink) -> Result<(), SourceError> {
        let extra = serde_json::json!({});
        let request = FetchRequest {
            checker: "orders",
            query: QUERY,
            source: "default",
            extra: &extra,
        };
        source.get_rows_batched(&request, sink).await
    }

    #[tokio::test]
    async fn a_large_result_comes_in_batches_of_the_sinks_size_in_order() -> TestResult {
        let (_dir, path) = numbered(25_500)?;
        let source = SqliteSource::new(&path);
        let mut sink = Sink::new(1_000);
        stream(&source, &mut sink).await?;
        assert!(sink.sizes.len() >= 25, "{} batches", sink.sizes.len());
        assert!(sink.sizes.iter().all(|&(rows, _)| rows <= 1_000));
        let rejected: u64 = sink.sizes.iter().map(|s| s.1).sum();
        assert_eq!((sink.rows.len(), rejected), (25_475, 25));
        let expected: Vec<Row> = (0..25_500_i64)
            .filter(|i| i % 1000 != 999)
            .map(|i| Row::new(format!("k{i}"), 1_700_000_000 + i))
            .collect();
        assert_eq!(sink.rows, expected);
        // get_rows is the same result, whole.
        let whole = fetch(&source, "default", QUERY).await?;
        assert_eq!(whole.rows, expected);
        assert_eq!(whole.rejected, 25);
        Ok(())
    }

    #[tokio::test]
    async fn a_refused_batch_stops_the_fetch_with_the_sinks_error() -> TestResult {
        let (_dir, path) = numbered(10_000)?;
        let source = SqliteSource::new(&path);
        let mut sink = Sink::new(1_000);
        sink.refuse = Some(2);
        let error = stream(&source, &mut sink).await.unwrap_err();
        assert_eq!(error, SourceError::Other("store is full".into()));
        assert_eq!(sink.sizes.len(), 2);
        // The checker is free again: its next fetch runs.
        let mut sink = Sink::new(1_000);
        stream(&source, &mut sink).await?;
        assert_eq!(sink.rows.len(), 9_990);
        Ok(())
    }

    #[tokio::test]
    async fn the_query_timeout_counts_reading_not_the_sinks_time() -> TestResult {
        let (_dir, path) = numbered(4_000)?;
        // Reading 4,000 rows takes milliseconds; the sink takes 4 x 150 ms.
        let source = SqliteSource::builder()
            .source("default", &path)?
            .query_timeout(Duration::from_millis(300))
            .build()?;
        let mut sink = Sink::new(1_000);
        sink.pause = Duration::from_millis(150);
        stream(&source, &mut sink).await?;
        assert_eq!(sink.rows.len(), 3_996);
        Ok(())
    }
}
