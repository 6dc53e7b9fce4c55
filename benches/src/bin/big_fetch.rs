//! Whole-process memory benchmark of one huge fetch: a checker whose query returns
//! `--rows` rows (default 2,000,000) from a real SQLite source file.
//!
//! ```text
//! cargo build --release -p dwmon-benches --bin big_fetch
//! target/release/big_fetch --rows 2000000
//! ```
//!
//! Setup (not measured): the source file with `--rows` events a second apart ending at `T0`.
//! Then two cycles on an SQLite store: the checker's first (every row is new and stored) and
//! the next minute's (every row seen before). Prints each cycle's time and the peak RSS.

use dwmon_benches::{arg, describe, peak_rss_mib, CountingHandler, START};
use dwmon_core::{parse_checker, Engine};
use dwmon_sqlite::{SqliteSource, SqliteStore};
use std::sync::Arc;
use std::time::Instant;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows: i64 = arg("--rows", 2_000_000);
    let dir = tempfile::tempdir()?;
    let source_path = dir.path().join("source.sqlite");
    {
        let mut conn = rusqlite::Connection::open(&source_path)?;
        conn.execute_batch("CREATE TABLE events (id INTEGER PRIMARY KEY, ts INTEGER NOT NULL)")?;
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare("INSERT INTO events (id, ts) VALUES (?1, ?2)")?;
            for i in 0..rows {
                insert.execute(rusqlite::params![i, START - rows + i])?;
            }
        }
        tx.commit()?;
    }
    let setup_rss = peak_rss_mib().unwrap_or(f64::NAN);
    let checker = parse_checker(
        "events.dwmon",
        "__QUERY__\nSELECT id AS dwmon_unique_key, ts AS dwmon_timestamp FROM events\n\
         __REQUIREMENTS__\n\
         CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM1 MAXNUM1000000 LOOKBACKSECONDS600\n",
    )?;
    let store = Arc::new(SqliteStore::open(dir.path().join("store.sqlite"))?);
    let engine = Engine::new(
        Arc::new(SqliteSource::new(&source_path)),
        store,
        Arc::new(CountingHandler::default()),
    )
    .with_checkers(vec![checker]);
    for (name, now) in [
        ("first cycle (all new)", START),
        ("next cycle (all seen)", START + 60),
    ] {
        let started = Instant::now();
        let report = engine.run_cycle(now).await;
        println!(
            "{name}: {:.2} s ({}), peak RSS so far {:.0} MiB",
            started.elapsed().as_secs_f64(),
            describe(&report),
            peak_rss_mib().unwrap_or(f64::NAN)
        );
    }
    println!(
        "peak RSS {:.0} MiB (setup alone {setup_rss:.0} MiB)",
        peak_rss_mib().unwrap_or(f64::NAN)
    );
    Ok(())
}
