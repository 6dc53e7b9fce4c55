//! Cycle time versus total stored rows (README "Performance": cost grows with the batch, never with the
//! total stored). For each size, a fresh store gets the same small workload — 10 checkers x
//! 1,000 rows a fetch, 99% seen, one requirement each (about 10^4 stored rows of its own) —
//! plus old rows up to that total (a fast bulk insert, as history kept by a generous purger),
//! then the cycles are timed.
//!
//! ```text
//! cargo run --release -p dwmon-benches --bin scaling -- --sizes 10000,1000000,10000000
//! ```
//!
//! Reported per size: the median of `--cycles` warm cycles (cache of stored keys on), the
//! median with the cache off (every row asks SQLite), and the first cycle after a restart
//! (cold cache).

use dwmon_benches::{arg, median, Fixture, START};
use dwmon_core::purger::KeepEverything;
use dwmon_core::StoreView;
use dwmon_sqlite::{SqliteStore, SqliteStoreOptions};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

const CHECKERS: usize = 10;
const ROWS: i64 = 1_000;
const RATE: i64 = 10;

/// Bulk-inserts `total` old rows spread over the checkers, straight into the `rows` table.
fn prefill(path: &Path, total: i64) -> Result<(), Box<dyn std::error::Error>> {
    let mut conn = rusqlite::Connection::open(path)?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;")?;
    let ids: Vec<i64> = {
        let mut stmt = conn.prepare("SELECT id FROM checkers ORDER BY id")?;
        let ids = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        ids
    };
    let per_checker = total / (ids.len().max(1) as i64);
    let tx = conn.transaction()?;
    {
        let values = vec!["(?, ?, ?)"; 50].join(", ");
        let mut insert = tx.prepare(&format!(
            "INSERT INTO rows (checker_id, key, ts) VALUES {values}"
        ))?;
        for &id in &ids {
            let mut seq = 0;
            while seq < per_checker {
                let n = (per_checker - seq).min(50);
                if n < 50 {
                    for j in seq..seq + n {
                        tx.execute(
                            "INSERT INTO rows (checker_id, key, ts) VALUES (?1, ?2, ?3)",
                            rusqlite::params![id, format!("old{j:010}"), START - 30 * 86_400 + j],
                        )?;
                    }
                } else {
                    let mut index = 1;
                    for j in seq..seq + 50 {
                        insert.raw_bind_parameter(index, id)?;
                        insert.raw_bind_parameter(index + 1, format!("old{j:010}"))?;
                        insert.raw_bind_parameter(index + 2, START - 30 * 86_400 + j)?;
                        index += 3;
                    }
                    insert.raw_execute()?;
                }
                seq += n;
            }
        }
        tx.execute(
            "UPDATE checkers SET stored_rows = stored_rows + ?1",
            [per_checker],
        )?;
    }
    tx.commit()?;
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
    Ok(())
}

fn fixture(store: SqliteStore) -> Fixture {
    let fixture = Fixture::new(Arc::new(store), CHECKERS, ROWS, RATE);
    Fixture {
        engine: fixture.engine.with_purger(Arc::new(KeepEverything)),
        ..fixture
    }
}

async fn run(
    path: &Path,
    options: &SqliteStoreOptions,
    now: &mut i64,
    cycles: usize,
) -> Result<(f64, f64), Box<dyn std::error::Error>> {
    let fixture = fixture(SqliteStore::open_with(path, options)?);
    *now += 60;
    let (first, _) = fixture.cycle(*now).await;
    let mut times = Vec::new();
    for _ in 0..cycles {
        *now += 60;
        let (elapsed, report) = fixture.cycle(*now).await;
        assert_eq!(report.errors().count(), 0, "{}", report.summary());
        times.push(elapsed.as_secs_f64());
    }
    Ok((first.as_secs_f64(), median(&mut times)))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sizes: String = arg("--sizes", "10000,1000000,10000000".to_string());
    let cycles: usize = arg("--cycles", 10);
    println!(
        "scaling: {CHECKERS} checkers x {ROWS} rows/fetch ({}% new per cycle), {cycles} cycles each",
        100 * RATE / ROWS
    );
    println!("| stored rows | file MiB | warm cycle (median) | cache off (median) | first cycle after restart |");
    println!("|---:|---:|---:|---:|---:|");
    for size in sizes
        .split(',')
        .filter_map(|s| s.trim().parse::<i64>().ok())
    {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("scaling.sqlite");
        let mut now = START + 5;
        {
            // Register the checkers and reach the steady state, then add the history.
            let fixture = fixture(SqliteStore::open(&path)?);
            fixture.cycle(now).await;
        }
        let started = Instant::now();
        let own = (CHECKERS as i64) * (ROWS + (2 * cycles as i64 + 2) * RATE);
        prefill(&path, (size - own).max(0))?;
        let fill = started.elapsed().as_secs_f64();
        let (restart, warm) = run(&path, &SqliteStoreOptions::default(), &mut now, cycles).await?;
        let off = SqliteStoreOptions {
            seen_cache_capacity: 0,
            ..SqliteStoreOptions::default()
        };
        let (_, uncached) = run(&path, &off, &mut now, cycles).await?;
        let store = SqliteStore::open(&path)?;
        let stored: u64 = store.status().await?.iter().map(|s| s.stored_rows).sum();
        let mib = std::fs::metadata(&path)?.len() as f64 / (1024.0 * 1024.0);
        println!(
            "| {stored} | {mib:.0} | {:.1} ms | {:.1} ms | {:.1} ms |",
            warm * 1e3,
            uncached * 1e3,
            restart * 1e3,
        );
        eprintln!("(pre-fill of {size} rows took {fill:.1} s)");
    }
    Ok(())
}
