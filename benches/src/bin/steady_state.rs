//! Whole-process steady-state benchmark (README "Performance"): 1,000 checkers, each fetch 10,000 rows of
//! which 99% were seen before, one requirement each, SQLite store. Time the process with
//! `/usr/bin/time -v` for the peak RSS:
//!
//! ```text
//! cargo build --release -p dwmon-benches --bin steady_state
//! /usr/bin/time -v target/release/steady_state --checkers 1000 --rows 10000
//! ```
//!
//! The first cycle stores every row (bootstrap), the warm-up cycles bring the store to the
//! steady state (1% new per cycle), then the measured cycles are reported, each with its wall
//! time and the process CPU time it used. A long run (`--cycles 120`) also prints the spread
//! of each block of `--block` cycles (default 30), so a cycle that slows down as the run goes
//! on shows, in CPU time even on a loaded machine:
//!
//! ```text
//! /usr/bin/time -v target/release/steady_state --checkers 1000 --rows 10000 --cycles 120
//! ```
//!
//! `--store postgres://...` runs the same cycles on the PostgreSQL store instead, in a schema
//! of its own (`dwmon_bench_<pid>`, dropped at the end), so both stores are measured by one
//! binary in one run:
//!
//! ```text
//! target/release/steady_state --checkers 1000 --rows 10000 --store postgres://postgres@127.0.0.1:5432/test
//! ```

use dwmon_benches::{arg, cpu_seconds, describe, median, peak_rss_mib, spread, Fixture, START};
use dwmon_core::Store;
use dwmon_postgres_store::{PostgresStore, PostgresStoreOptions};
use dwmon_sqlite::{SqliteStore, SqliteStoreOptions};
use std::sync::Arc;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let checkers: usize = arg("--checkers", 1_000);
    let rows: i64 = arg("--rows", 10_000);
    let rate: i64 = arg("--rate", 100);
    let warm: usize = arg("--warm", 2);
    let cycles: usize = arg("--cycles", 5);
    let block: usize = arg("--block", 30_usize).max(1);
    let cache: u64 = arg(
        "--cache-capacity",
        SqliteStoreOptions::default().seen_cache_capacity,
    );
    let page_size: u32 = arg("--page-size", SqliteStoreOptions::default().page_size);
    let page_cache_kib: u64 = arg(
        "--page-cache-kib",
        SqliteStoreOptions::default().page_cache_kib,
    );
    let postgres: String = arg("--store", String::new());
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("steady.sqlite");
    let options = SqliteStoreOptions {
        seen_cache_capacity: cache,
        page_size,
        page_cache_kib,
        ..SqliteStoreOptions::default()
    };
    let sqlite = SqliteStore::open_with(&path, &options)?;
    let schema = format!("dwmon_bench_{}", std::process::id());
    let mut pg = None;
    let (store, label): (Arc<dyn Store>, String) = if postgres.is_empty() {
        (
            Arc::new(sqlite.clone()),
            format!("SQLite store, cache capacity {cache}"),
        )
    } else {
        admin(&postgres, &format!("CREATE SCHEMA {schema}")).await?;
        let separator = if postgres.contains('?') { '&' } else { '?' };
        let url = format!("{postgres}{separator}options=-csearch_path%3D{schema}");
        let options = PostgresStoreOptions::default().with_seen_cache_capacity(cache);
        let store = PostgresStore::connect_with(&url, &options).await?;
        pg = Some(store.clone());
        (
            Arc::new(store),
            format!("PostgreSQL store, schema {schema}, cache capacity {cache}"),
        )
    };
    let cached_keys = || {
        pg.as_ref()
            .map_or(sqlite.cached_keys(), |p| p.cached_keys())
    };
    let fixture = Fixture::new(Arc::clone(&store), checkers, rows, rate);
    println!(
        "steady_state: {checkers} checkers x {rows} rows/fetch, {rate} new events/min \
         ({:.1}% new per cycle), {label}",
        100.0 * rate as f64 / rows as f64
    );

    let mut now = START + 5;
    let (elapsed, report) = fixture.cycle(now).await;
    println!(
        "bootstrap cycle: {:.3} s ({})",
        elapsed.as_secs_f64(),
        describe(&report)
    );
    for i in 0..warm {
        now += 60;
        let (elapsed, report) = fixture.cycle(now).await;
        println!(
            "warm-up {i}: {:.3} s ({})",
            elapsed.as_secs_f64(),
            describe(&report)
        );
    }
    let mut times = Vec::new();
    let mut cpu = Vec::new();
    for i in 0..cycles {
        now += 60;
        let cpu_before = cpu_seconds().unwrap_or(f64::NAN);
        let (elapsed, report) = fixture.cycle(now).await;
        let used = cpu_seconds().unwrap_or(f64::NAN) - cpu_before;
        times.push(elapsed.as_secs_f64());
        cpu.push(used);
        println!(
            "cycle {i}: {:.3} s, cpu {used:.2} s, {} keys cached ({})",
            elapsed.as_secs_f64(),
            cached_keys(),
            describe(&report)
        );
    }
    if cycles > block {
        for (n, (wall, cpu)) in times.chunks(block).zip(cpu.chunks(block)).enumerate() {
            println!(
                "cycles {}-{}: wall {} s, cpu {} s (min / median / max)",
                n * block,
                n * block + wall.len() - 1,
                spread(wall),
                spread(cpu),
            );
        }
    }
    let max = times.iter().copied().fold(0.0, f64::max);
    let size = std::fs::metadata(&path)?.len() as f64 / (1024.0 * 1024.0);
    let status = store.status().await?;
    let stored: u64 = status.iter().map(|s| s.stored_rows).sum();
    println!(
        "steady state: median {:.3} s (cpu {:.2} s), max {max:.3} s over {cycles} cycles; \
         {stored} rows stored ({size:.0} MiB SQLite file), {} keys cached, peak RSS {:.0} MiB \
         (cpu: this process only, not the database server's)",
        median(&mut times),
        median(&mut cpu),
        cached_keys(),
        peak_rss_mib().unwrap_or(f64::NAN),
    );
    if !postgres.is_empty() {
        drop(fixture);
        drop(store);
        drop(pg);
        admin(&postgres, &format!("DROP SCHEMA {schema} CASCADE")).await?;
    }
    Ok(())
}

/// Runs `sql` on the PostgreSQL server at `url` over a connection of its own.
async fn admin(url: &str, sql: &str) -> Result<(), Box<dyn std::error::Error>> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    let driver = tokio::spawn(connection);
    client.batch_execute(sql).await?;
    drop(client);
    let _ = driver.await;
    Ok(())
}
