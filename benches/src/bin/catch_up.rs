//! Whole-process catch-up benchmark (SPEC 7): 1,000 checkers come back after a 24 h outage.
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
//! `--tight-purger` swaps the default purger (which keeps a safety day beyond every window
//! still reachable) for one that keeps exactly the reachable windows: the engine then skips
//! storing fetched rows no window can count (about two thirds of this fetch), at the price of
//! forgetting the first-seen timestamp of keys older than that (a key reappearing later with
//! a newer timestamp would be counted again).

use dwmon_benches::{arg, describe, peak_rss_mib, Fixture, START};
use dwmon_core::{Checker, DefaultPurger, Purger};
use dwmon_sqlite::{SqliteStore, SqliteStoreOptions};
use std::sync::Arc;

/// Keeps only what a window still inside the horizon can count (no safety margin).
struct TightPurger;

impl Purger for TightPurger {
    fn delete_older_than(&self, checker: &Checker, now: i64) -> Option<i64> {
        let keep = DefaultPurger::keep_seconds(checker) - DefaultPurger::SAFETY_SECONDS;
        Some(dwmon_core::minute_floor(now) - keep)
    }
}

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
    let tight = std::env::args().any(|a| a == "--tight-purger");
    let store = SqliteStore::open_with(&path, &options)?;
    let mut fixture = Fixture::new(Arc::new(store), checkers, rows, rate);
    if tight {
        fixture.engine = fixture.engine.with_purger(Arc::new(TightPurger));
    }
    let now = t0 + outage_hours * 3600;
    let (elapsed, report) = fixture.cycle(now).await;
    println!(
        "catch-up after {outage_hours} h, {checkers} checkers{}: {:.3} s ({})",
        if tight { " (tight purger)" } else { "" },
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
