//! Child process of the SIGKILL crash-safety test: runs cycles against a store file with the
//! deterministic streams of `dwmon_tests::crash`, delivering to an append-only file, and
//! prints `cycle NOW` after each cycle. Killed at random instants by the test and restarted;
//! on start it resumes one minute after the latest minute the store has checked.
//!
//! Usage: `crash_child STORE DELIVERIES FIRST_MINUTE LAST_MINUTE`

use dwmon_core::{CheckLog, Engine};
use dwmon_sqlite::SqliteStore;
use dwmon_tests::crash::{checkers, AppendHandler, StreamSource, CYCLE_OFFSET};
use std::path::PathBuf;
use std::sync::Arc;

fn arg<T: std::str::FromStr>(args: &[String], index: usize, what: &str) -> Result<T, String> {
    args.get(index)
        .ok_or_else(|| format!("missing {what}"))?
        .parse()
        .map_err(|_| format!("bad {what}"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let store_path: PathBuf = arg(&args, 1, "store path")?;
    let deliveries: PathBuf = arg(&args, 2, "deliveries path")?;
    let first: i64 = arg(&args, 3, "first minute")?;
    let last: i64 = arg(&args, 4, "last minute")?;

    let store = Arc::new(SqliteStore::open(&store_path)?);
    let checkers = checkers();
    let mut resume = first;
    for checker in &checkers {
        if let Some(minute) = store.last_checked_minute(&checker.name).await? {
            resume = resume.max(minute + 60);
        }
    }
    let source = Arc::new(StreamSource::default());
    let handler = Arc::new(AppendHandler::open(&deliveries)?);
    let engine = Engine::new(source.clone(), store.clone(), handler).with_checkers(checkers);
    let mut minute = resume;
    while minute <= last {
        let now = minute + CYCLE_OFFSET;
        source.set_now(now);
        let report = engine.run_cycle(now).await;
        if report.errors().next().is_some() {
            eprintln!("cycle {now}: {}", report.summary());
        }
        println!("cycle {now}");
        minute += 60;
    }
    drop(engine);
    drop(store);
    println!("done");
    Ok(())
}
