//! A reader (the status command, a web page) on its own connection never blocks the
//! runner and is never blocked by it; writers wait for each other only up to the busy timeout.

mod common;

use common::{record, record_checks};
use dwmon_core::{Row, RowStore, StoreError, StoreView};
use dwmon_sqlite::{SqliteStore, SqliteStoreOptions};
use std::time::{Duration, Instant};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const BUSY: Duration = Duration::from_millis(200);

fn options() -> SqliteStoreOptions {
    SqliteStoreOptions {
        busy_timeout: BUSY,
        ..SqliteStoreOptions::default()
    }
}

#[tokio::test]
async fn a_reader_is_not_blocked_by_an_open_write_transaction() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("store.sqlite");
    let runner = SqliteStore::open_with(&path, &options())?;
    runner.insert_first_seen("c", &[Row::new("a", 10)]).await?;
    record_checks(&runner, "c", &[record("c", 0, 60, 1)]).await?;

    // Another writer holds the write lock with uncommitted changes.
    let mut raw = rusqlite::Connection::open(&path)?;
    let tx = raw.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute("DELETE FROM rows", [])?;

    let reader = SqliteStore::open_with(
        &path,
        &SqliteStoreOptions {
            read_only: true,
            ..options()
        },
    )?;
    let started = Instant::now();
    let status = reader.status().await?;
    assert_eq!(status[0].last_minute, Some(60));
    assert_eq!(
        reader.count("c", 0, 100).await?,
        1,
        "readers see the last committed state"
    );
    assert!(
        started.elapsed() < BUSY,
        "the reader waited {:?}",
        started.elapsed()
    );

    // The runner, a writer, waits up to the busy timeout and then says so.
    let error = record_checks(&runner, "c", &[record("c", 0, 120, 1)])
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Busy { .. }), "{error:?}");
    assert_eq!(
        reader.status().await?[0].last_minute,
        Some(60),
        "nothing partial"
    );

    tx.rollback()?;
    assert_eq!(
        record_checks(&runner, "c", &[record("c", 0, 120, 1)]).await?,
        1
    );
    assert_eq!(reader.status().await?[0].last_minute, Some(120));
    Ok(())
}

#[tokio::test]
async fn a_long_read_does_not_block_the_runner() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("store.sqlite");
    let runner = SqliteStore::open_with(&path, &options())?;
    runner.insert_first_seen("c", &[Row::new("a", 10)]).await?;

    // A reader sits inside a read transaction (a slow status page).
    let mut raw = rusqlite::Connection::open(&path)?;
    let tx = raw.transaction()?;
    let before: i64 = tx.query_row("SELECT count(*) FROM rows", [], |r| r.get(0))?;

    let started = Instant::now();
    for minute in 1..=50 {
        let rows = [Row::new(format!("k{minute}"), minute * 60)];
        runner.insert_first_seen("c", &rows).await?;
        record_checks(&runner, "c", &[record("c", 0, minute * 60, 1)]).await?;
        runner.purge("c", 0).await?;
    }
    assert!(
        started.elapsed() < BUSY * 5,
        "the runner waited {:?}",
        started.elapsed()
    );
    // The reader's snapshot is stable; after it ends it sees everything.
    let during: i64 = tx.query_row("SELECT count(*) FROM rows", [], |r| r.get(0))?;
    assert_eq!(during, before);
    tx.commit()?;
    let after: i64 = raw.query_row("SELECT count(*) FROM rows", [], |r| r.get(0))?;
    assert_eq!(after, 51);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_queries_run_while_the_runner_writes() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("store.sqlite");
    let runner = SqliteStore::open_with(&path, &options())?;
    record_checks(&runner, "c", &[record("c", 0, 0, 1)]).await?;
    let reader = SqliteStore::open_with(
        &path,
        &SqliteStoreOptions {
            read_only: true,
            ..options()
        },
    )?;

    const MINUTES: i64 = 200;
    let writing = tokio::spawn(async move {
        for minute in 1..=MINUTES {
            let rows: Vec<Row> = (0..50)
                .map(|i| Row::new(format!("m{minute}-{i}"), minute * 60 - i))
                .collect();
            runner.insert_first_seen("c", &rows).await?;
            record_checks(
                &runner,
                "c",
                &[
                    record("c", 0, minute * 60, 50),
                    record("c", 1, minute * 60, 50),
                ],
            )
            .await?;
            runner.purge("c", (minute - 30) * 60).await?;
        }
        Ok::<_, StoreError>(())
    });
    let reading = tokio::spawn(async move {
        let mut last_seen = 0;
        let mut reads = 0;
        loop {
            let status = reader.status().await?;
            let c = &status[0];
            let minute = c.last_minute.unwrap_or(0);
            // Snapshots only move forward and are internally consistent.
            assert!(
                minute >= last_seen,
                "went back from {last_seen} to {minute}"
            );
            assert!(c.requirements.iter().all(|r| r.minute <= minute));
            last_seen = minute;
            reader.recent_checks("c", 5).await?;
            reader.count("c", 0, MINUTES * 60).await?;
            reads += 1;
            if minute == MINUTES * 60 {
                return Ok::<_, StoreError>(reads);
            }
        }
    });
    writing.await??;
    let reads = reading.await??;
    assert!(reads > 1, "the reader made {reads} reads");
    Ok(())
}
