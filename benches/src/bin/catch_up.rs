//! Whole-process catch-up benchmark (README "Performance"): 1,000 checkers come back after a 24 h outage.
//!
//! ```text
//! cargo build --release -p dwmon-benches --bin catch_up
//! /usr/bin/time -v target/release/catch_up --checkers 1000 --rows 10000
//! ```
//!
//! Setup (not timed): one cycle at `T0` stores every checker's fetch and records its check
//! at `T0`; the process state is then dropped. Timed: a fresh store handle (cold cache, as
//! after a restart) and engine run the cycle at `T0 + 24 h`. Each checker has 30 due minutes
//! (its horizon: 10 * ceil(180 s / 60) minutes), its fetch returns `--rows` rows of which none
//! was seen before (the stream moved on for a day), so the cycle stores 10^7 new rows,
//! counts 30 windows, records and delivers 30 checks per checker.
//!
//! The engine stores only the rows a window can still reach (the last 32 minutes of the fetch:
//! 29 earlier candidate minutes plus the 180 s window, about a third of it), and the default
//! purger purges each checker at its own minute of the hour, so the catch-up cycle purges
//! about 1/60 of the checkers. `--purge-every-cycle` swaps in a purger with the same cutoff
//! that purges every checker on every cycle (the behaviour before purges were spread), to
//! show what the spreading saves.

use dwmon_benches::{arg, describe, peak_rss_mib, Fixture, START};
use dwmon_core::{EngineConfig, PurgeTiming};
use dwmon_sqlite::{SqliteStore, SqliteStoreOptions};
use std::sync::Arc;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let checkers: usize = arg("--checkers", 1_000);
    let rows: i64 = arg("--rows", 10_000);
    let rate: i64 = arg("--rate", 100);
    let outage_hours: i64 = arg("--outage-hours", 24);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("catch_up.sqlite");
    let options = SqliteStoreOptions {
        page_size: arg("--page-size", SqliteStoreOptions::default().page_size),
        page_cache_kib: arg(
            "--page-cache-kib",
            SqliteStoreOptions::default().page_cache_kib,
        ),
        ..SqliteStoreOptions::default()
    };
    let t0 = START + 5;
    {
        let store = SqliteStore::open_with(&path, &options)?;
        let fixture = Fixture::new(Arc::new(store), checkers, rows, rate);
        let (elapsed, report) = fixture.cycle(t0).await;
        println!(
            "setup cycle at T0: {:.3} s ({})",
            elapsed.as_secs_f64(),
            describe(&report)
        );
    }
    let every_cycle = std::env::args().any(|a| a == "--purge-every-cycle");
    let store = SqliteStore::open_with(&path, &options)?;
    let mut fixture = Fixture::new(Arc::new(store), checkers, rows, rate);
    if every_cycle {
        let config = EngineConfig {
            purge_timing: PurgeTiming::EveryCycle,
            ..fixture.engine.config().clone()
        };
        fixture.engine = fixture.engine.with_config(config);
    }
    let now = t0 + outage_hours * 3600;
    let (elapsed, report) = fixture.cycle(now).await;
    println!(
        "catch-up after {outage_hours} h, {checkers} checkers{}: {:.3} s ({})",
        if every_cycle {
            " (purging every cycle)"
        } else {
            ""
        },
        elapsed.as_secs_f64(),
        describe(&report)
    );
    let (next, report) = fixture.cycle(now + 60).await;
    println!(
        "next cycle: {:.3} s ({})",
        next.as_secs_f64(),
        describe(&report)
    );
    println!("peak RSS {:.0} MiB", peak_rss_mib().unwrap_or(f64::NAN));
    Ok(())
}
