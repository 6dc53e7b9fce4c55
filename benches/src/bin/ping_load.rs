//! Whole-path ping benchmark: the `/ping` routes on loopback, every counted ping a 200, i.e.
//! committed.
//!
//! Two modes:
//!
//! ```sh
//! # In-process: dwmon-server's `Push` over an SQLite store file, reqwest clients in the
//! # same process (the harness of the first figures, kept to compare builds).
//! cargo run --release -p dwmon-benches --bin ping_load -- [PINGS] [CONCURRENCY] [RATE]
//!
//! # A real `dwmon serve` process (its own store file, `dwmon token create` tokens), driven
//! # by a lean keep-alive HTTP/1.1 client in this process; the server's RSS is sampled.
//! ping_load serve --dwmon target/release/dwmon [--connections 64] [--pings 200000]
//!     [--rate R] [--seconds S] [--tokens 1] [--timeout-ms 5000] [-- EXTRA SERVE ARGS]
//! ```
//!
//! In-process: `PINGS` (default 200000) pings from `CONCURRENCY` (default 64) connections, as
//! fast as possible, or paced at `RATE` pings/s in total. Prints committed pings/s, latency
//! percentiles and the process's peak RSS (server and client together).
//!
//! `serve`: as fast as possible for `--pings`, or paced at `--rate` pings/s in total for
//! `--seconds` (open loop: each connection sends at its due times; latency counts from the
//! due time, so a server that falls behind is charged for the wait). A 60 s burst at 20x an
//! average of 1,000/s is `--rate 20000 --seconds 60 --connections 512`. Prints the answers by
//! status (200, 429, 503, other, broken connections, answers slower than `--timeout-ms`),
//! latency percentiles of the 200s, and the server's peak RSS (VmHWM and the largest VmRSS
//! sampled every 50 ms). The pings of connection i use token i mod `--tokens`; when the
//! binary has `--ping-rate`, the per-token rate limit is raised out of the way. A paced run
//! stops sending 2 s after its `--seconds`: a server that fell behind is reported with the
//! pings it never got (`unsent`), not waited for.

use dwmon_core::checker_file::parse_checker;
use dwmon_core::ping_log::PingLog;
use dwmon_core::{RowStore, Store};
use dwmon_server::push::{Push, PushConfig};
use dwmon_server::tokens::{MemoryTokenStore, Scope, TokenStore};
use dwmon_server::{RunnerStats, ServerBuilder};
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

fn peak_rss_mib() -> f64 {
    status_kib("/proc/self/status", "VmHWM:").map_or(0.0, |kib| kib as f64 / 1024.0)
}

/// A `/proc/PID/status` field in KiB.
fn status_kib(path: &str, field: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
    })
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("serve") {
        serve_mode(&args[2..]).await;
    } else {
        in_process(&args).await;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

async fn in_process(args: &[String]) {
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
    let push = Push::new(
        Arc::clone(&store) as Arc<dyn PingLog>,
        tokens,
        stats,
        config,
    );
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
    let stored = store.count("job", 0, i64::MAX).await.expect("count");
    println!(
        "ping_load: {} committed pings ({failed} not 200) in {elapsed:.2} s = {:.0}/s; \
         {concurrency} connections{}; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; \
         rows stored {stored}; peak RSS {:.0} MiB",
        latencies.len(),
        latencies.len() as f64 / elapsed,
        rate.map(|r| format!(", paced at {r}/s"))
            .unwrap_or_default(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
        peak_rss_mib()
    );
}

/// Options of the `serve` mode.
struct ServeOptions {
    dwmon: String,
    connections: usize,
    pings: usize,
    rate: Option<f64>,
    seconds: f64,
    tokens: usize,
    timeout: Duration,
    extra: Vec<String>,
}

fn parse_serve_options(args: &[String]) -> ServeOptions {
    let mut options = ServeOptions {
        dwmon: "target/release/dwmon".into(),
        connections: 64,
        pings: 200_000,
        rate: None,
        seconds: 10.0,
        tokens: 1,
        timeout: Duration::from_secs(5),
        extra: Vec::new(),
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().cloned().unwrap_or_default();
        match arg.as_str() {
            "--dwmon" => options.dwmon = value(),
            "--connections" => options.connections = value().parse().expect("--connections N"),
            "--pings" => options.pings = value().parse().expect("--pings N"),
            "--rate" => options.rate = Some(value().parse().expect("--rate R")),
            "--seconds" => options.seconds = value().parse().expect("--seconds S"),
            "--tokens" => options.tokens = value().parse().expect("--tokens N"),
            "--timeout-ms" => {
                options.timeout = Duration::from_millis(value().parse().expect("--timeout-ms N"))
            }
            "--" => {
                options.extra = args.cloned().collect();
                break;
            }
            other => panic!("unknown option {other}"),
        }
    }
    options.connections = options.connections.max(1);
    options.tokens = options.tokens.max(1);
    options
}

/// What one connection saw.
#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    by_status: std::collections::BTreeMap<u16, u64>,
    broken: u64,
    slow: u64,
    /// Due pings not sent because the paced run's time was up (the server fell behind).
    unsent: u64,
}

/// A keep-alive HTTP/1.1 connection that sends `GET`s and reads whole answers.
struct Connection {
    stream: BufReader<TcpStream>,
    line: String,
    request: Vec<u8>,
}

impl Connection {
    async fn open(addr: std::net::SocketAddr) -> std::io::Result<Connection> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream: BufReader::new(stream),
            line: String::new(),
            request: Vec::new(),
        })
    }

    /// Sends `GET path` and returns the status; `Ok(None)` when the server closes after it.
    async fn get(&mut self, path: &str) -> std::io::Result<(u16, bool)> {
        self.request.clear();
        self.request.extend_from_slice(b"GET ");
        self.request.extend_from_slice(path.as_bytes());
        self.request
            .extend_from_slice(b" HTTP/1.1\r\nHost: bench\r\nUser-Agent: ping_load\r\n\r\n");
        self.stream.get_mut().write_all(&self.request).await?;
        let mut status = 0;
        let mut length = 0usize;
        let mut close = false;
        let mut first = true;
        loop {
            self.line.clear();
            if self.stream.read_line(&mut self.line).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let line = self.line.trim_end();
            if first {
                status = line
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                first = false;
            } else if line.is_empty() {
                break;
            } else if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                } else if name.eq_ignore_ascii_case("connection") {
                    close = value.trim().eq_ignore_ascii_case("close");
                }
            }
        }
        let mut body = vec![0u8; length];
        self.stream.read_exact(&mut body).await?;
        Ok((status, close))
    }
}

/// Starts `dwmon serve` on a fresh store; returns the child, its address and the tokens.
fn start_server(
    options: &ServeOptions,
    dir: &std::path::Path,
) -> (std::process::Child, std::net::SocketAddr, Vec<String>) {
    let checkers = dir.join("checkers");
    std::fs::create_dir_all(&checkers).expect("checkers dir");
    std::fs::write(
        checkers.join("job.dwmon"),
        "__SOURCE__\npush\n__REQUIREMENTS__\n\
         CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM1 MAXNUM100000000 LOOKBACKSECONDS60\n",
    )
    .expect("checker file");
    let store = dir.join("dwmon.sqlite").display().to_string();
    let tokens: Vec<String> = (0..options.tokens)
        .map(|_| {
            let out = Command::new(&options.dwmon)
                .args(["token", "create", "--store", &store, "--scope", "ping:job"])
                .output()
                .expect("dwmon token create runs");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        })
        .collect();
    let help = Command::new(&options.dwmon)
        .args(["serve", "--help"])
        .output()
        .expect("dwmon serve --help runs");
    let mut command = Command::new(&options.dwmon);
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--store", &store])
        .arg("--checkers")
        .arg(&checkers);
    if String::from_utf8_lossy(&help.stdout).contains("--ping-rate") {
        command.args(["--ping-rate", "1000000", "--ping-burst", "1000000"]);
    }
    command
        .args(&options.extra)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("dwmon serve starts");
    let stderr = child.stderr.take().expect("stderr");
    let (found, listening) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut found = Some(found);
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.split("listening on http://").nth(1) {
                if let Some(found) = found.take() {
                    let addr = rest.split_whitespace().next().unwrap_or_default();
                    let _ = found.send(addr.parse::<std::net::SocketAddr>());
                }
            } else if line.contains("ERROR") || line.contains("WARN") {
                eprintln!("server: {line}");
            }
        }
    });
    let addr = listening
        .recv_timeout(Duration::from_secs(60))
        .expect("dwmon serve listens")
        .expect("an address");
    (child, addr, tokens)
}

async fn serve_mode(args: &[String]) {
    let options = parse_serve_options(args);
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, addr, tokens) = start_server(&options, dir.path());
    let status_path = format!("/proc/{}/status", child.id());
    let sampling = Arc::new(AtomicBool::new(true));
    let max_rss = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (sampling, max_rss, path) = (
            Arc::clone(&sampling),
            Arc::clone(&max_rss),
            status_path.clone(),
        );
        std::thread::spawn(move || {
            while sampling.load(Ordering::Relaxed) {
                if let Some(kib) = status_kib(&path, "VmRSS:") {
                    max_rss.fetch_max(kib, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let idle_rss = status_kib(&status_path, "VmRSS:").unwrap_or(0);

    let connections = options.connections;
    let (per_connection, interval) = match options.rate {
        Some(rate) => {
            let total = (rate * options.seconds) as usize;
            (
                total / connections,
                Some(Duration::from_secs_f64(connections as f64 / rate)),
            )
        }
        None => (options.pings / connections, None),
    };
    let timeout = options.timeout;
    let started = Instant::now();
    let stop_at = interval.map(|_| started + Duration::from_secs_f64(options.seconds + 2.0));
    let mut tasks = Vec::new();
    for task in 0..connections {
        let path = format!("/ping/{}", tokens[task % tokens.len()]);
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut connection: Option<Connection> = None;
            // Spread the connections' due times over one interval.
            let offset = interval.map_or(Duration::ZERO, |i| {
                i.mul_f64(task as f64 / connections as f64)
            });
            let begin = Instant::now() + offset;
            let mut url = String::new();
            for i in 0..per_connection {
                if stop_at.is_some_and(|stop| Instant::now() >= stop) {
                    tally.unsent += (per_connection - i) as u64;
                    break;
                }
                let due = match interval {
                    Some(interval) => {
                        let due = begin + interval.mul_f64(i as f64);
                        tokio::time::sleep_until(due.into()).await;
                        due
                    }
                    None => Instant::now(),
                };
                url.clear();
                url.push_str(&path);
                url.push_str(&format!("?key={task}-{i}"));
                if connection.is_none() {
                    match Connection::open(addr).await {
                        Ok(c) => connection = Some(c),
                        Err(_) => {
                            tally.broken += 1;
                            continue;
                        }
                    }
                }
                let Some(open) = connection.as_mut() else {
                    continue;
                };
                match tokio::time::timeout(timeout, open.get(&url)).await {
                    Ok(Ok((status, close))) => {
                        *tally.by_status.entry(status).or_default() += 1;
                        if status == 200 {
                            tally.latencies.push(due.elapsed());
                        }
                        if close {
                            connection = None;
                        }
                    }
                    Ok(Err(_)) => {
                        tally.broken += 1;
                        connection = None;
                    }
                    Err(_) => {
                        tally.slow += 1;
                        connection = None;
                    }
                }
            }
            tally
        }));
    }
    let mut all = Tally::default();
    for task in tasks {
        let tally = task.await.expect("client task");
        all.latencies.extend(tally.latencies);
        for (status, n) in tally.by_status {
            *all.by_status.entry(status).or_default() += n;
        }
        all.broken += tally.broken;
        all.slow += tally.slow;
        all.unsent += tally.unsent;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let hwm = status_kib(&status_path, "VmHWM:").unwrap_or(0);
    sampling.store(false, Ordering::Relaxed);
    let _ = sampler.join();
    let _ = child.kill();
    let _ = child.wait();
    all.latencies.sort();
    let ok = all.latencies.len();
    let store = dwmon_sqlite::SqliteStore::open(dir.path().join("dwmon.sqlite")).expect("store");
    let stored = store.count("job", 0, i64::MAX).await.expect("count");
    let others: u64 = all
        .by_status
        .iter()
        .filter(|(s, _)| ![200, 429, 503].contains(*s))
        .map(|(_, n)| n)
        .sum();
    let count = |s: u16| all.by_status.get(&s).copied().unwrap_or(0);
    println!(
        "ping_load serve: {ok} committed pings in {elapsed:.2} s = {:.0}/s; {connections} \
         connections, {} tokens{}; 429: {}, 503: {}, other: {others}, broken: {}, slower than \
         {} ms: {}, unsent (time up): {}; latency of 200s p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; rows stored \
         {stored}; server RSS idle {:.0} MiB, peak sampled {:.0} MiB, VmHWM {:.0} MiB",
        ok as f64 / elapsed,
        tokens.len(),
        options
            .rate
            .map(|r| format!(", offered {r}/s for {} s", options.seconds))
            .unwrap_or_default(),
        count(429),
        count(503),
        all.broken,
        timeout.as_millis(),
        all.slow,
        all.unsent,
        percentile(&all.latencies, 0.5),
        percentile(&all.latencies, 0.99),
        percentile(&all.latencies, 1.0),
        idle_rss as f64 / 1024.0,
        max_rss.load(Ordering::Relaxed) as f64 / 1024.0,
        hwm as f64 / 1024.0,
    );
    assert!(stored >= ok as u64, "a 200 whose row is not stored");
}
