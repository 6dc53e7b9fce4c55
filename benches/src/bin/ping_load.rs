//! Whole-path ping benchmark: the `/ping` routes of `dwmon serve` (dwmon-server's `Push`
//! over a real SQLite store file) on loopback, driven by keep-alive HTTP clients in the
//! same process. Every counted ping got a 200, i.e. was committed.
//!
//! ```sh
//! cargo run --release -p dwmon-benches --bin ping_load -- [PINGS] [CONCURRENCY] [RATE]
//! ```
//! `PINGS` (default 200000) pings from `CONCURRENCY` (default 64) connections, as fast as
//! possible, or paced at `RATE` pings/s in total when given (latency at a fixed load).
//! Prints committed pings/s, latency percentiles and the process's peak RSS (server and
//! client together).

use dwmon_core::checker_file::parse_checker;
use dwmon_core::Store;
use dwmon_server::push::{Push, PushConfig};
use dwmon_server::tokens::{MemoryTokenStore, Scope, TokenStore};
use dwmon_server::{RunnerStats, ServerBuilder};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let pings: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let concurrency: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(64);
    let rate: Option<f64> = args.get(3).and_then(|a| a.parse().ok());

    let dir = tempfile::tempdir().expect("tempdir");
    let store =
        Arc::new(dwmon_sqlite::SqliteStore::open(dir.path().join("dwmon.sqlite")).expect("store"));
    let tokens = Arc::new(MemoryTokenStore::new());
    let token = tokens
        .create(Scope::parse("ping:job").expect("scope"), "bench", 0)
        .await
        .expect("token")
        .token
        .expose()
        .to_string();
    let stats = Arc::new(RunnerStats::wall_clock());
    let checker = parse_checker(
        "job.dwmon",
        "__SOURCE__\npush\n__REQUIREMENTS__\n\
         CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM1 MAXNUM100000000 LOOKBACKSECONDS60\n",
    )
    .expect("checker");
    stats.set_checkers(vec![checker].into(), chrono_tz::UTC);
    let config = PushConfig {
        rate_per_second: 1e9,
        burst: 1e9,
        ..PushConfig::default()
    };
    let push = Push::new(Arc::clone(&store) as Arc<dyn Store>, tokens, stats, config);
    let router = ServerBuilder::new(Arc::clone(&store) as Arc<dyn Store>)
        .merge(push.router())
        .build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(dwmon_server::serve(
        listener,
        router,
        std::future::pending(),
    ));

    let url = Arc::new(format!("http://{addr}/ping/{token}"));
    let per_task = pings / concurrency.max(1);
    let interval = rate.map(|r| Duration::from_secs_f64(concurrency as f64 / r));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for task in 0..concurrency {
        let url = Arc::clone(&url);
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut latencies = Vec::with_capacity(per_task);
            let mut failed = 0usize;
            let begin = Instant::now();
            for i in 0..per_task {
                if let Some(interval) = interval {
                    let due = begin + interval.mul_f64(i as f64);
                    tokio::time::sleep_until(due.into()).await;
                }
                let sent = Instant::now();
                let ok = client
                    .get(format!("{url}?key={task}-{i}"))
                    .send()
                    .await
                    .is_ok_and(|a| a.status() == 200);
                if ok {
                    latencies.push(sent.elapsed());
                } else {
                    failed += 1;
                }
            }
            (latencies, failed)
        }));
    }
    let mut latencies = Vec::new();
    let mut failed = 0;
    for task in tasks {
        let (l, f) = task.await.expect("client task");
        latencies.extend(l);
        failed += f;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let stored = store.count("job", 0, i64::MAX).await.expect("count");
    println!(
        "ping_load: {} committed pings ({failed} not 200) in {elapsed:.2} s = {:.0}/s; \
         {concurrency} connections{}; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; \
         rows stored {stored}; peak RSS {:.0} MiB",
        latencies.len(),
        latencies.len() as f64 / elapsed,
        rate.map(|r| format!(", paced at {r}/s"))
            .unwrap_or_default(),
        pct(0.5),
        pct(0.99),
        pct(1.0),
        peak_rss_mib()
    );
}
