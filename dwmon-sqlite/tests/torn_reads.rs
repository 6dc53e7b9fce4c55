//! Several checkers reading one rollback-journal SQLite file while another process writes it:
//! every fetch sees a consistent snapshot.
//!
//! The writer is this test executable run again as a separate process (the
//! `writer_process` test with `DWMON_TEST_TORN_WRITER` set), committing rows strictly in
//! transactions of 10. POSIX locks belong to the process, and closing *any* descriptor of a
//! file drops all of them, so a fetch that opened and closed the file beside another fetch's
//! connection would let the writer change pages under that reader: a count that is not a
//! multiple of 10, or "database disk image is malformed".
//!
//! `DWMON_TEST_TORN_ROUNDS` (default 100) sets how many rounds of four concurrent fetches run.

use dwmon_core::{FetchRequest, RowGetter};
use dwmon_sqlite::SqliteSource;
use rusqlite::Connection;
use std::error::Error;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

type TestResult = Result<(), Box<dyn Error>>;

/// Set (to the database path) only in the writer process.
const WRITER_VARIABLE: &str = "DWMON_TEST_TORN_WRITER";
/// Rows committed per transaction: every consistent snapshot holds a multiple of this.
const GROUP: usize = 10;
/// Rows before the checkers start, so that one fetch reads many pages.
const INITIAL_ROWS: usize = 5_000;
const CHECKERS: usize = 4;

/// The writer, when run as a child process; a no-op in a normal test run.
#[test]
fn writer_process() -> TestResult {
    let Some(path) = std::env::var_os(WRITER_VARIABLE) else {
        return Ok(());
    };
    let path = Path::new(&path);
    let stop = path.with_extension("stop");
    let mut connection = Connection::open(path)?;
    connection.busy_timeout(std::time::Duration::from_secs(30))?;
    // Short commits: more of them while the checkers read.
    connection.pragma_update(None, "synchronous", "OFF")?;
    let mut next: u64 = 1_000_000;
    // Bounded, so a writer whose parent died cannot run forever.
    for _ in 0..2_000_000 {
        if stop.exists() {
            break;
        }
        let tx = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        for _ in 0..GROUP {
            tx.execute(
                "INSERT INTO events (k, ts, padding) VALUES (?1, 1700000000, randomblob(64))",
                [next],
            )?;
            next += 1;
        }
        tx.commit()?;
        // Leave readers room to get their shared lock between commits.
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    Ok(())
}

/// Kills the writer when the test ends, also on a failed assertion.
struct Writer(Child);

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_fetches_never_see_a_torn_rollback_journal_database() -> TestResult {
    let rounds: usize = match std::env::var("DWMON_TEST_TORN_ROUNDS") {
        Ok(text) => text.parse()?,
        Err(_) => 100,
    };
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("app.db");
    {
        let mut connection = Connection::open(&path)?;
        connection.execute_batch(
            "PRAGMA journal_mode = DELETE;
             CREATE TABLE events (k INTEGER PRIMARY KEY, ts INTEGER NOT NULL, padding BLOB);",
        )?;
        let tx = connection.transaction()?;
        for key in 0..INITIAL_ROWS {
            tx.execute(
                "INSERT INTO events (k, ts, padding) VALUES (?1, 1700000000, randomblob(64))",
                [key],
            )?;
        }
        tx.commit()?;
    }
    let mut writer = Writer(
        Command::new(std::env::current_exe()?)
            .args([
                "writer_process",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(WRITER_VARIABLE, &path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()?,
    );

    let source = Arc::new(SqliteSource::new(&path));
    let mut counts = Vec::new();
    let mut failures = Vec::new();
    for _ in 0..rounds {
        let fetches: Vec<_> = (0..CHECKERS)
            .map(|checker| {
                let source = Arc::clone(&source);
                tokio::spawn(async move {
                    let extra = serde_json::json!({});
                    let name = format!("checker{checker}");
                    let request = FetchRequest {
                        checker: &name,
                        query: "SELECT k AS dwmon_unique_key, ts AS dwmon_timestamp FROM events",
                        source: "default",
                        extra: &extra,
                    };
                    source.get_rows(&request).await.map(|f| f.rows.len())
                })
            })
            .collect();
        for fetch in fetches {
            match fetch.await? {
                Ok(count) => counts.push(count),
                Err(error) => failures.push(error.to_string()),
            }
        }
        if let Some(status) = writer.0.try_wait()? {
            return Err(format!("the writer process ended early: {status}").into());
        }
    }
    std::fs::write(path.with_extension("stop"), "")?;
    let status = writer.0.wait()?;
    assert!(status.success(), "the writer failed: {status}");

    let torn: Vec<usize> = counts.iter().copied().filter(|c| c % GROUP != 0).collect();
    let grew = counts.first() < counts.last();
    assert!(
        torn.is_empty() && failures.is_empty(),
        "{} of {} counts not a multiple of {GROUP} (e.g. {:?}); {} fetches failed (e.g. {:?})",
        torn.len(),
        counts.len() + failures.len(),
        &torn[..torn.len().min(5)],
        failures.len(),
        failures.first()
    );
    assert!(grew, "the writer committed during the run: {counts:?}");
    eprintln!(
        "{} fetches in {rounds} rounds, counts {}..{}: all consistent",
        counts.len(),
        counts.first().copied().unwrap_or_default(),
        counts.last().copied().unwrap_or_default()
    );
    Ok(())
}
