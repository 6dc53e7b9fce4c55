//! The alert state in the store file: `SqliteStore` as an `AlertStateStore`, the same
//! behaviour as `MemoryAlertStore`, typed errors, and store files of the release before the
//! merge (tests/fixtures, written by tests/fixtures/generate.rs) migrating in place in both
//! orders of first opening.

use dwmon_core::alert_state::{
    AlertPhase, AlertState, AlertStateStore, AlertStoreError, AlertUpdate, MemoryAlertStore, Pause,
    Target, HISTORY_PER_CHECKER,
};
use dwmon_core::store::Lease;
use dwmon_core::testutil::{alert_state_round_trips, firing_state};
use dwmon_core::{CheckLog, Row, RowStore, StoreError};
use dwmon_sqlite::{SqliteStore, SqliteStoreOptions};
use std::path::{Path, PathBuf};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[tokio::test]
async fn memory_and_sqlite_alert_stores_behave_alike() -> TestResult {
    alert_state_round_trips(&MemoryAlertStore::new()).await?;
    alert_state_round_trips(&SqliteStore::open_in_memory()?).await?;
    let dir = tempfile::tempdir()?;
    alert_state_round_trips(&SqliteStore::open(dir.path().join("dwmon.sqlite"))?).await
}

#[tokio::test]
async fn alert_state_survives_reopening_beside_rows_and_checks() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("dwmon.sqlite");
    {
        let store = SqliteStore::open(&path)?;
        store
            .insert_first_seen("orders", &[Row::new("a", 30)])
            .await?;
        store
            .apply(&AlertUpdate {
                checker: "orders".into(),
                alert: Some((0, firing_state(60))),
                ..AlertUpdate::default()
            })
            .await?;
    }
    let store = SqliteStore::open_read_only(&path)?;
    assert_eq!(store.count("orders", 0, 60).await?, 1);
    assert_eq!(
        store.alert_state("orders", 0).await?,
        Some(firing_state(60))
    );
    Ok(())
}

#[tokio::test]
async fn writes_through_a_read_only_store_fail_as_read_only() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("dwmon.sqlite");
    drop(SqliteStore::open(&path)?);
    let store = SqliteStore::open_read_only(&path)?;
    match store.set_pause("orders", None).await {
        Err(AlertStoreError::Store(StoreError::ReadOnly { .. })) => Ok(()),
        other => Err(format!("expected a read-only error, got {other:?}").into()),
    }
}

#[tokio::test]
async fn a_locked_store_fails_as_busy() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("dwmon.sqlite");
    let options = SqliteStoreOptions {
        busy_timeout: std::time::Duration::from_millis(20),
        ..SqliteStoreOptions::default()
    };
    let store = SqliteStore::open_with(&path, &options)?;
    let other = rusqlite::Connection::open(&path)?;
    other.execute_batch("BEGIN IMMEDIATE")?;
    let result = store
        .apply(&AlertUpdate {
            checker: "orders".into(),
            alert: Some((0, firing_state(60))),
            ..AlertUpdate::default()
        })
        .await;
    other.execute_batch("ROLLBACK")?;
    assert!(
        matches!(result, Err(AlertStoreError::Store(StoreError::Busy { .. }))),
        "{result:?}"
    );
    // Nothing was written, and the store works once the lock is gone.
    assert_eq!(store.alert_state("orders", 0).await?, None);
    store.set_pause("orders", None).await?;
    Ok(())
}

#[tokio::test]
async fn a_full_store_fails_as_full_and_writes_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("dwmon.sqlite");
    drop(SqliteStore::open(&path)?);
    let pages: u64 =
        rusqlite::Connection::open(&path)?.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let options = SqliteStoreOptions {
        max_page_count: Some(pages),
        ..SqliteStoreOptions::default()
    };
    let store = SqliteStore::open_with(&path, &options)?;
    let pause = Pause {
        since: 0,
        until: None,
        comment: Some("x".repeat(64 * 1024)),
    };
    let result = store.set_pause("orders", Some(&pause)).await;
    assert!(
        matches!(result, Err(AlertStoreError::Store(StoreError::Full { .. }))),
        "{result:?}"
    );
    assert_eq!(store.pause("orders").await?, None);
    Ok(())
}

#[tokio::test]
async fn an_unreadable_state_is_corrupt_with_its_key() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("dwmon.sqlite");
    let store = SqliteStore::open(&path)?;
    rusqlite::Connection::open(&path)?.execute(
        "INSERT INTO alert_state (checker, requirement_index, phase, state)
         VALUES ('orders', 3, 'OK', 'not json')",
        [],
    )?;
    match store.alert_state("orders", 3).await {
        Err(AlertStoreError::Corrupt { key, .. }) => assert_eq!(key, "orders/3"),
        other => return Err(format!("expected corrupt, got {other:?}").into()),
    }
    Ok(())
}

/// A copy of a fixture file in a fresh directory (the fixture itself is never written).
fn fixture(name: &str) -> Result<(tempfile::TempDir, PathBuf), std::io::Error> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join(name);
    std::fs::copy(source, &path)?;
    Ok((dir, path))
}

fn tables(path: &Path) -> rusqlite::Result<Vec<String>> {
    let conn = rusqlite::Connection::open(path)?;
    let mut statement =
        conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")?;
    let names = statement
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(names)
}

/// The alert data both fixtures hold (see tests/fixtures/generate.rs).
async fn has_the_release_alert_state(store: &SqliteStore) -> TestResult {
    let state = store
        .alert_state("orders", 0)
        .await?
        .ok_or("orders #0 lost its state")?;
    assert_eq!(state.phase, AlertPhase::Firing);
    assert_eq!(state.firing_since, Some(1_700_000_100));
    assert_eq!(state.incident_key.as_deref(), Some("orders/0"));
    let backups = store
        .source_state("backups")
        .await?
        .ok_or("backups lost its source state")?;
    assert!(backups.failing);
    assert_eq!(backups.last_error.as_deref(), Some("fetch failed: timeout"));
    let pause = store
        .pause("legacy")
        .await?
        .ok_or("legacy lost its pause")?;
    assert_eq!(pause.comment.as_deref(), Some("migration"));
    let pending = store.pending("orders").await?;
    assert_eq!(pending.len(), 1);
    assert_eq!(
        pending[0].notification.idempotency_key,
        "orders/0/1700000100/firing"
    );
    assert_eq!(pending[0].delivered, ["log:"]);
    assert_eq!(pending[0].attempts, 1);
    assert_eq!(
        pending[0]
            .remaining()
            .map(Target::display_safe)
            .collect::<Vec<_>>(),
        ["webhook https://hooks.example.com"]
    );
    Ok(())
}

#[tokio::test]
async fn a_release_file_written_by_the_store_then_the_alert_store_migrates_in_place() -> TestResult
{
    let (_dir, path) = fixture("store-then-alerts.sqlite")?;
    assert!(tables(&path)?.contains(&"alert_schema".to_string()));
    let store = SqliteStore::open(&path)?;
    has_the_release_alert_state(&store).await?;
    // The rows, checks and outbox of the store side are all still there.
    assert_eq!(
        store.count("orders", 1_700_000_000, 1_700_000_060).await?,
        2
    );
    assert_eq!(
        store.last_checked_minute("orders").await?,
        Some(1_700_000_100)
    );
    let deliveries = store.claim_deliveries(10, Lease::new(0, 0)).await?;
    assert_eq!(
        deliveries.len(),
        1,
        "one of the two checks was acknowledged"
    );
    assert_eq!(deliveries[0].key, "orders/0/1700000100");
    // One version for the whole file.
    assert!(!tables(&path)?.contains(&"alert_schema".to_string()));
    let version: i64 = rusqlite::Connection::open(&path)?.query_row(
        "SELECT value FROM meta WHERE name = 'schema_version'",
        [],
        |r| r.get(0),
    )?;
    assert_eq!(version, SqliteStore::schema_version());
    Ok(())
}

#[tokio::test]
async fn a_release_file_first_opened_by_the_alert_store_is_adopted() -> TestResult {
    let (_dir, path) = fixture("alerts-first.sqlite")?;
    // Read-only it cannot be migrated, and says so.
    assert!(matches!(
        SqliteStore::open_read_only(&path),
        Err(StoreError::ReadOnly { .. })
    ));
    let store = SqliteStore::open(&path)?;
    has_the_release_alert_state(&store).await?;
    // And it is a whole store now.
    assert_eq!(
        store
            .insert_first_seen("orders", &[Row::new("a", 30)])
            .await?,
        1
    );
    drop(store);
    let reopened = SqliteStore::open_read_only(&path)?;
    assert_eq!(reopened.count("orders", 0, 60).await?, 1);
    has_the_release_alert_state(&reopened).await
}

#[tokio::test]
async fn a_database_with_alert_tables_and_tables_of_its_own_is_still_refused() -> TestResult {
    let (_dir, path) = fixture("alerts-first.sqlite")?;
    rusqlite::Connection::open(&path)?.execute_batch("CREATE TABLE invoices (id INTEGER)")?;
    assert!(matches!(
        SqliteStore::open(&path),
        Err(StoreError::NotAStore { .. })
    ));
    Ok(())
}

#[tokio::test]
async fn the_history_is_bounded_per_checker_and_written_with_the_state() -> TestResult {
    let memory = MemoryAlertStore::new();
    let sqlite = SqliteStore::open_in_memory()?;
    for store in [&memory as &dyn AlertStateStore, &sqlite] {
        let total = HISTORY_PER_CHECKER as i64 + 5;
        for i in 0..total {
            let state = AlertState {
                consecutive_bad: u32::from(i % 2 == 0),
                ..AlertState::default()
            };
            store
                .apply(&AlertUpdate {
                    checker: "flappy".into(),
                    alert: Some((0, state)),
                    at: Some(60 * i),
                    ..AlertUpdate::default()
                })
                .await?;
        }
        let history = store.history("flappy", usize::MAX).await?;
        assert_eq!(history.len(), HISTORY_PER_CHECKER);
        assert_eq!(history[0].at, 60 * (total - 1), "newest first");
        assert_eq!(
            history[HISTORY_PER_CHECKER - 1].at,
            60 * 5,
            "oldest dropped"
        );
    }
    // On SQLite a failed write leaves neither state nor history behind.
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("dwmon.sqlite");
    let options = SqliteStoreOptions {
        busy_timeout: std::time::Duration::from_millis(20),
        ..SqliteStoreOptions::default()
    };
    let store = SqliteStore::open_with(&path, &options)?;
    let other = rusqlite::Connection::open(&path)?;
    other.execute_batch("BEGIN IMMEDIATE")?;
    let update = AlertUpdate {
        checker: "orders".into(),
        alert: Some((0, firing_state(60))),
        at: Some(60),
        ..AlertUpdate::default()
    };
    assert!(store.apply(&update).await.is_err());
    other.execute_batch("ROLLBACK")?;
    assert!(store.history("orders", 10).await?.is_empty());
    store.apply(&update).await?;
    assert_eq!(store.history("orders", 10).await?.len(), 1);
    Ok(())
}
