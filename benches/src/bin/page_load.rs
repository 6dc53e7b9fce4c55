//! Status page and `/metrics` under load (README "Performance"): 1,000 checkers loaded from
//! checker files, each with one requirement and a history of recorded checks, in a SQLite
//! store file; the router `dwmon serve` mounts (page, metrics, API, badges, push) on
//! loopback, reading the file through its own read-only connection as `dwmon serve` does;
//! and, on the same store file at the same time, the engine running cycle after cycle as fast
//! as it can (every cycle fetches, stores rows and records 1,000 checks).
//!
//! ```sh
//! cargo build --release -p dwmon-benches --bin page_load
//! target/release/page_load [--checkers 1000] [--history 95] [--requests 50] [--reader own|shared]
//! ```
//!
//! `--reader shared` serves from the writer's own connection instead (as this benchmark did
//! before it matched `dwmon serve`): every read then waits for the writer's statements.
//!
//! Time to first byte is the time from sending a request until its status line and headers
//! arrive (the page and `/metrics` are rendered whole before the first byte is sent);
//! `total` adds reading the body.

use dwmon_benches::{arg, peak_rss_mib, Fixture, START};
use dwmon_core::Store;
use dwmon_server::push::{Push, PushConfig};
use dwmon_server::tokens::MemoryTokenStore;
use dwmon_server::{RunnerStats, ServerBuilder};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Rows per fetch and new events per minute of the synthetic stream.
const ROWS: i64 = 100;
const RATE: i64 = 10;

struct Measured {
    ttfb: Vec<Duration>,
    total: Vec<Duration>,
    bytes: usize,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
        .map_or(f64::NAN, |d| ms(*d))
}

async fn measure(client: &reqwest::Client, url: &str, requests: usize) -> Measured {
    let mut m = Measured {
        ttfb: Vec::with_capacity(requests),
        total: Vec::with_capacity(requests),
        bytes: 0,
    };
    for _ in 0..requests {
        let sent = Instant::now();
        let answer = client.get(url).send().await.expect("request");
        let first = sent.elapsed();
        assert_eq!(answer.status(), 200, "{url}");
        let body = answer.bytes().await.expect("body");
        m.total.push(sent.elapsed());
        m.ttfb.push(first);
        m.bytes = m.bytes.max(body.len());
    }
    m.ttfb.sort();
    m.total.sort();
    m
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let checkers: usize = arg("--checkers", 1_000);
    let history: usize = arg("--history", 95);
    let requests: usize = arg("--requests", 50);
    let reader: String = arg("--reader", "own".to_string());

    // The checker files, as `dwmon serve --checkers DIR` would read them.
    let files = tempfile::tempdir()?;
    for c in dwmon_benches::checkers(checkers, RATE.unsigned_abs()) {
        let text = format!(
            "__QUERY__\n{}\n__REQUIREMENTS__\n{}\n",
            c.query,
            c.requirements
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::fs::write(files.path().join(format!("{}.dwmon", c.name)), text)?;
    }
    let loaded = dwmon_core::checker_file::load_dir(files.path())?;
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    assert_eq!(loaded.checkers.len(), checkers);

    let dir = tempfile::tempdir()?;
    let store = Arc::new(dwmon_sqlite::SqliteStore::open(
        dir.path().join("dwmon.sqlite"),
    )?);
    let fixture = Arc::new(Fixture::new(
        Arc::clone(&store) as Arc<dyn Store>,
        checkers,
        ROWS,
        RATE,
    ));
    let now = Arc::new(AtomicI64::new(START));
    let stats = {
        let now = Arc::clone(&now);
        Arc::new(RunnerStats::new(Arc::new(move || {
            now.load(Ordering::SeqCst)
        })))
    };
    stats.set_checkers(loaded.checkers.into(), chrono_tz::UTC);

    // The history: `history` cycles, one minute apart, before the server starts.
    let filling = Instant::now();
    let mut minute = START + 5;
    for _ in 0..history {
        now.store(minute, Ordering::SeqCst);
        let (_, report) = fixture.cycle(minute).await;
        stats.record_cycle(&report);
        minute += 60;
    }
    println!(
        "page_load: {checkers} checkers, {history} recorded checks each (filled in {:.1} s), \
         {ROWS} rows/fetch; store {}",
        filling.elapsed().as_secs_f64(),
        dir.path().join("dwmon.sqlite").display()
    );

    // The router of `dwmon serve` (commands.rs `server_router`), public so no sign-in.
    let tokens = Arc::new(MemoryTokenStore::new());
    let push = Push::new(
        Arc::clone(&store) as Arc<dyn dwmon_core::ping_log::PingLog>,
        tokens.clone(),
        Arc::clone(&stats),
        PushConfig::default(),
    );
    let served: Arc<dyn Store> = match reader.as_str() {
        "shared" => Arc::clone(&store) as Arc<dyn Store>,
        _ => Arc::new(dwmon_sqlite::SqliteStore::open_read_only(
            dir.path().join("dwmon.sqlite"),
        )?),
    };
    let router = ServerBuilder::new(served)
        .stats(Arc::clone(&stats))
        .public(true)
        .tokens(tokens)
        .push(push)
        .merge(dwmon_server::metrics::router())
        .merge(dwmon_server::api::router())
        .merge(dwmon_server::page::router())
        .merge(dwmon_server::badge::router())
        .build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(dwmon_server::serve(
        listener,
        router,
        std::future::pending(),
    ));

    // The page on an idle store first, to tell rendering from contention with the writer.
    let client = reqwest::Client::new();
    let base = format!("http://{addr}");
    measure(&client, &format!("{base}/"), 1).await;
    let idle = measure(&client, &format!("{base}/"), requests.div_ceil(5)).await;

    // The writer: cycles back to back on the same store until the measuring ends.
    let stop = Arc::new(AtomicBool::new(false));
    let cycles = Arc::new(AtomicU64::new(0));
    let writer = {
        let (fixture, stats, now, stop, cycles) = (
            Arc::clone(&fixture),
            Arc::clone(&stats),
            Arc::clone(&now),
            Arc::clone(&stop),
            Arc::clone(&cycles),
        );
        tokio::spawn(async move {
            let mut minute = minute;
            while !stop.load(Ordering::SeqCst) {
                now.store(minute, Ordering::SeqCst);
                let (_, report) = fixture.cycle(minute).await;
                stats.record_cycle(&report);
                cycles.fetch_add(1, Ordering::Relaxed);
                minute += 60;
            }
        })
    };

    measure(&client, &format!("{base}/metrics"), 1).await;
    let started = Instant::now();
    let page = measure(&client, &format!("{base}/"), requests).await;
    let metrics = measure(&client, &format!("{base}/metrics"), requests).await;
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::SeqCst);
    writer.await?;
    let cycles = cycles.load(Ordering::Relaxed);

    println!(
        "writer: {cycles} cycles ({} checks recorded) during {elapsed:.1} s of measuring = {:.0} checks/s",
        cycles * checkers as u64,
        (cycles * checkers as u64) as f64 / elapsed
    );
    println!(
        "{:<10} {:>5} {:>10} {:>10} {:>10} {:>12} {:>10}",
        "path", "n", "TTFB p50", "TTFB p95", "TTFB max", "total p50", "body"
    );
    for (path, m) in [("/ idle", &idle), ("/", &page), ("/metrics", &metrics)] {
        println!(
            "{:<10} {:>5} {:>7.1} ms {:>7.1} ms {:>7.1} ms {:>9.1} ms {:>7.0} KB",
            path,
            m.ttfb.len(),
            pct(&m.ttfb, 0.5),
            pct(&m.ttfb, 0.95),
            pct(&m.ttfb, 1.0),
            pct(&m.total, 0.5),
            m.bytes as f64 / 1000.0
        );
    }
    println!(
        "peak RSS {:.0} MiB; command: target/release/page_load --checkers {checkers} \
         --history {history} --requests {requests} --reader {reader}",
        peak_rss_mib().unwrap_or(f64::NAN)
    );
    Ok(())
}
