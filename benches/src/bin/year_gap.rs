//! Whole-process memory benchmark of a long catch-up: one checker with a 366-day window
//! (`LOOKBACKSECONDS31622400`, due every minute) comes back after a year away, so 525,600 due
//! minutes are inside its horizon.
//!
//! ```text
//! cargo build --release -p dwmon-benches --bin year_gap
//! target/release/year_gap                      # chunked: 10,000 checks per cycle (default)
//! target/release/year_gap --max-checks 0       # the whole backlog in one cycle (before)
//! ```
//!
//! Setup: one cycle at `T0` (the checker's first check) on an SQLite store in a temporary
//! directory. Then cycles at `T0 + 365 d`, one simulated minute apart, until a cycle makes at
//! most one check (the backlog is worked off). Prints per-cycle checks, the total time, every
//! minute recorded once (from the store), and the peak RSS of the process (`VmHWM`).

use dwmon_benches::{arg, peak_rss_mib, CountingHandler, START};
use dwmon_core::engine::EngineConfig;
use dwmon_core::testutil::ScriptedSource;
use dwmon_core::{parse_checker, Engine, Row, StoreView};
use dwmon_sqlite::SqliteStore;
use std::sync::Arc;
use std::time::Instant;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let max_checks: usize = arg("--max-checks", EngineConfig::default().max_checks_per_cycle);
    let days: i64 = arg("--days", 365);
    let dir = tempfile::tempdir()?;
    let store = Arc::new(SqliteStore::open(dir.path().join("year_gap.sqlite"))?);
    let checker = parse_checker(
        "yearly.dwmon",
        "__QUERY__\nSELECT key AS dwmon_unique_key, ts AS dwmon_timestamp FROM backups\n\
         __REQUIREMENTS__\n\
         CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM0 MAXNUM1000000 LOOKBACKSECONDS31622400\n",
    )?;
    let source = Arc::new(ScriptedSource::new());
    source.set_rows("yearly", vec![Row::new("backup-1", START - 3600)]);
    let handler = Arc::new(CountingHandler::default());
    let engine = Engine::new(source, store.clone(), handler)
        .with_config(EngineConfig {
            max_checks_per_cycle: if max_checks == 0 {
                usize::MAX
            } else {
                max_checks
            },
            ..EngineConfig::default()
        })
        .with_checkers(vec![checker]);
    engine.run_cycle(START).await;
    let back = START + days * 86_400;
    let started = Instant::now();
    let mut total = 0;
    let mut cycles = 0;
    loop {
        let report = engine.run_cycle(back + cycles * 60).await;
        let checks = report.checks().count();
        total += checks;
        cycles += 1;
        if cycles <= 3 || checks <= 1 {
            println!("cycle {cycles}: {checks} checks");
        }
        if checks <= 1 || cycles > 10_000 {
            break;
        }
    }
    let elapsed = started.elapsed();
    let status = store.status().await?;
    println!(
        "max checks per cycle {}: {total} checks in {cycles} cycles, {:.1} s; last checked {:?}, \
         {} pending; peak RSS {:.0} MiB",
        if max_checks == 0 {
            "unlimited".to_string()
        } else {
            max_checks.to_string()
        },
        elapsed.as_secs_f64(),
        status[0].last_minute.map(|m| (m - START) / 60),
        status[0].pending_deliveries,
        peak_rss_mib().unwrap_or(f64::NAN)
    );
    Ok(())
}
