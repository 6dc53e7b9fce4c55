//! Bad input: files that are not stores, stores that cannot be written, a full disk.
//! Each gives a clear typed error, never a panic, and never a partial write.

mod common;

use common::{pending_deliveries, record, record_checks};
use dwmon_core::{CheckLog, Row, RowStore, StoreError, StoreView};
use dwmon_sqlite::{SqliteStore, SqliteStoreOptions};
use std::path::{Path, PathBuf};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn temp_file(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

fn open_error(path: &Path) -> StoreError {
    match SqliteStore::open(path) {
        Ok(store) => panic!("{store:?} opened, expected an error"),
        Err(error) => error,
    }
}

#[test]
fn a_text_file_is_not_a_store() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = temp_file(&dir, "notes.txt");
    std::fs::write(&path, "these are my notes, not a database\n".repeat(200))?;
    let error = open_error(&path);
    assert!(matches!(error, StoreError::NotAStore { .. }), "{error:?}");
    assert!(
        error.to_string().contains("notes.txt is not a dwmon store"),
        "{error}"
    );
    // And the file is untouched.
    assert!(std::fs::read_to_string(&path)?.starts_with("these are my notes"));
    Ok(())
}

#[test]
fn random_bytes_are_not_a_store() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = temp_file(&dir, "noise.bin");
    let bytes: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&path, &bytes)?;
    assert!(matches!(open_error(&path), StoreError::NotAStore { .. }));
    assert_eq!(std::fs::read(&path)?, bytes);
    Ok(())
}

#[test]
fn another_applications_database_is_not_written_into() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = temp_file(&dir, "app.sqlite");
    rusqlite::Connection::open(&path)?.execute_batch("CREATE TABLE invoices (id INTEGER)")?;
    let error = open_error(&path);
    assert!(matches!(error, StoreError::NotAStore { .. }), "{error:?}");
    let tables: i64 = rusqlite::Connection::open(&path)?.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
        [],
        |r| r.get(0),
    )?;
    assert_eq!(tables, 1);
    Ok(())
}

#[test]
fn an_empty_file_becomes_a_store() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = temp_file(&dir, "empty.sqlite");
    std::fs::write(&path, b"")?;
    SqliteStore::open(&path)?;
    Ok(())
}

#[test]
fn a_store_from_a_newer_dwmon_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = temp_file(&dir, "store.sqlite");
    drop(SqliteStore::open(&path)?);
    rusqlite::Connection::open(&path)?.execute(
        "UPDATE meta SET value = 99 WHERE name = 'schema_version'",
        [],
    )?;
    let error = open_error(&path);
    assert!(matches!(
        &error,
        StoreError::SchemaTooNew { path: p, found: 99, supported }
            if *p == path.display().to_string() && *supported == SqliteStore::schema_version()
    ));
    assert!(error.to_string().contains("upgrade dwmon"));
    // Read-only openers refuse it too.
    assert!(matches!(
        SqliteStore::open_read_only(&path),
        Err(StoreError::SchemaTooNew { found: 99, .. })
    ));
    Ok(())
}

#[test]
fn a_missing_directory_cannot_be_opened() {
    let error = SqliteStore::open("/nonexistent-dwmon-dir/sub/store.sqlite").unwrap_err();
    assert!(matches!(error, StoreError::Open { .. }), "{error:?}");
    assert!(error
        .to_string()
        .contains("/nonexistent-dwmon-dir/sub/store.sqlite"));
    let error = SqliteStore::open_read_only("/nonexistent-dwmon-dir/store.sqlite").unwrap_err();
    assert!(matches!(error, StoreError::Open { .. }), "{error:?}");
}

#[tokio::test]
async fn a_read_only_store_reads_but_refuses_writes() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = temp_file(&dir, "store.sqlite");
    let writer = SqliteStore::open(&path)?;
    writer.insert_first_seen("c", &[Row::new("a", 10)]).await?;
    record_checks(&writer, "c", &[record("c", 0, 60, 1)]).await?;

    let reader = SqliteStore::open_read_only(&path)?;
    assert_eq!(reader.count("c", 0, 100).await?, 1);
    assert_eq!(reader.status().await?.len(), 1);
    let refused = [
        reader
            .insert_first_seen("c", &[Row::new("b", 20)])
            .await
            .map(|_| ()),
        record_checks(&reader, "c", &[record("c", 0, 120, 1)])
            .await
            .map(|_| ()),
        reader.purge("c", 1_000).await.map(|_| ()),
    ];
    for result in refused {
        assert!(
            matches!(result, Err(StoreError::ReadOnly { .. })),
            "{result:?}"
        );
    }
    assert_eq!(writer.count("c", 0, 100).await?, 1);
    assert_eq!(writer.last_checked_minute("c").await?, Some(60));
    Ok(())
}

#[cfg(unix)]
#[test]
fn a_file_without_write_permission_is_read_only() -> TestResult {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir()?;
    let path = temp_file(&dir, "store.sqlite");
    drop(SqliteStore::open(&path)?);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444))?;
    // As root, permission bits do not apply; the immutable attribute does (ext4, xfs, btrfs).
    let _immutable = if std::fs::OpenOptions::new().write(true).open(&path).is_ok() {
        match Immutable::set(&path) {
            Some(guard) => Some(guard),
            None => {
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED: a_file_without_write_permission_is_read_only needs a non-root user \
                     or `chattr +i` support on the temp directory's filesystem"
                );
                return Ok(());
            }
        }
    } else {
        None
    };
    let error = open_error(&path);
    assert!(matches!(error, StoreError::ReadOnly { .. }), "{error:?}");
    assert!(error.to_string().contains("store.sqlite"), "{error}");
    Ok(())
}

#[cfg(unix)]
#[tokio::test]
async fn a_store_in_a_read_only_directory_opens_for_reading() -> TestResult {
    // A backup or snapshot on read-only media: a WAL reader cannot create the `-shm` file
    // there, so the store is read as an immutable snapshot.
    let dir = tempfile::tempdir()?;
    let path = temp_file(&dir, "store.sqlite");
    {
        let writer = SqliteStore::open(&path)?;
        writer.insert_first_seen("c", &[Row::new("a", 10)]).await?;
        record_checks(&writer, "c", &[record("c", 0, 60, 1)]).await?;
    }
    let Some(_immutable) = Immutable::set(dir.path()) else {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: a_store_in_a_read_only_directory_opens_for_reading needs `chattr +i`"
        );
        return Ok(());
    };
    let reader = SqliteStore::open_read_only(&path)?;
    assert_eq!(reader.count("c", 0, 100).await?, 1);
    assert_eq!(reader.last_checked_minute("c").await?, Some(60));
    assert!(matches!(
        reader.insert_first_seen("c", &[Row::new("b", 20)]).await,
        Err(StoreError::ReadOnly { .. })
    ));
    // A writer cannot open it, and says why.
    assert!(SqliteStore::open(&path).is_err());
    Ok(())
}

/// Makes a file immutable with `chattr +i` for as long as it lives (root ignores permission
/// bits, not this attribute), and removes the attribute on drop so the temp dir can go.
#[cfg(unix)]
struct Immutable(std::path::PathBuf);

#[cfg(unix)]
impl Immutable {
    fn set(path: &Path) -> Option<Self> {
        let status = std::process::Command::new("chattr")
            .arg("+i")
            .arg(path)
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        let guard = Immutable(path.to_path_buf());
        let writable = if path.is_dir() {
            std::fs::write(path.join("probe"), b"").is_ok()
        } else {
            std::fs::OpenOptions::new().write(true).open(path).is_ok()
        };
        (status.success() && !writable).then_some(guard)
    }
}

#[cfg(unix)]
impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.0)
            .status();
    }
}

/// A store capped at `pages` pages of 4 KiB.
fn capped(dir: &tempfile::TempDir, pages: u64) -> Result<SqliteStore, StoreError> {
    let options = SqliteStoreOptions {
        max_page_count: Some(pages),
        ..SqliteStoreOptions::default()
    };
    SqliteStore::open_with(temp_file(dir, "full.sqlite"), &options)
}

#[tokio::test]
async fn a_full_disk_fails_the_insert_whole() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = capped(&dir, 40)?;
    let mut stored = 0;
    let mut batch_no = 0;
    let error = loop {
        let rows: Vec<Row> = (0..200)
            .map(|i| Row::new(format!("batch{batch_no}-key{i}-{}", "x".repeat(40)), i))
            .collect();
        batch_no += 1;
        match store.insert_first_seen("c", &rows).await {
            Ok(n) => stored += n,
            Err(error) => break error,
        }
        assert!(batch_no < 1_000, "the cap never hit");
    };
    assert!(matches!(error, StoreError::Full { .. }), "{error:?}");
    assert!(error.to_string().contains("is full"), "{error}");
    // Nothing of the failed batch is stored: the count is a whole number of batches.
    assert_eq!(store.count("c", 0, 1_000).await?, stored);
    assert_eq!(stored % 200, 0);
    // The failed keys were not cached as seen either: a bigger store takes them.
    drop(store);
    let roomy = SqliteStore::open(temp_file(&dir, "full.sqlite"))?;
    let last: Vec<Row> = (0..200)
        .map(|i| {
            Row::new(
                format!("batch{}-key{i}-{}", batch_no - 1, "x".repeat(40)),
                i,
            )
        })
        .collect();
    assert_eq!(roomy.insert_first_seen("c", &last).await?, 200);
    Ok(())
}

#[tokio::test]
async fn a_full_disk_records_no_partial_cycle() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = capped(&dir, 40)?;
    record_checks(&store, "c", &[record("c", 0, 0, 1)]).await?;
    // A cycle's worth of big records that cannot all fit.
    let big: Vec<_> = (1..=300)
        .map(|m| {
            let mut r = record("c", 0, m * 60, 1);
            r.extra = serde_json::json!({ "note": "y".repeat(2_000) });
            r
        })
        .collect();
    let error = record_checks(&store, "c", &big).await.unwrap_err();
    assert!(matches!(error, StoreError::Full { .. }), "{error:?}");
    assert_eq!(store.last_checked_minute("c").await?, Some(0));
    assert_eq!(store.recent_checks("c", 1_000).await?.len(), 1);
    assert_eq!(pending_deliveries(&store, i64::MAX, 1_000).await?.len(), 1);
    // Still usable for what fits.
    assert_eq!(
        record_checks(&store, "c", &[record("c", 0, 60, 1)]).await?,
        1
    );
    Ok(())
}
