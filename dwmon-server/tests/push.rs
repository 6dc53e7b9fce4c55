//! The ping routes on a real socket over a real SQLite store.

mod support;

use dwmon_core::checker_file::parse_checker;
use dwmon_core::{RowStore, Store, StoreView};
use dwmon_server::push::{Push, PushConfig};
use dwmon_server::tokens::{MemoryTokenStore, Scope, TokenStore};
use dwmon_server::{RunnerStats, ServerBuilder};
use std::sync::Arc;
use std::time::{Duration, Instant};

const NOW: i64 = 1_800_000_000;
const REQ: &str = "CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM1 MAXNUM9 LOOKBACKSECONDS60";

struct Server {
    addr: std::net::SocketAddr,
    store: Arc<dwmon_sqlite::SqliteStore>,
    token: String,
    /// A `read` API token.
    reader: String,
    _dir: tempfile::TempDir,
}

async fn start(config: PushConfig) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(dwmon_sqlite::SqliteStore::open(dir.path().join("s.sqlite")).unwrap());
    let tokens = Arc::new(MemoryTokenStore::new());
    let token = tokens
        .create(Scope::parse("ping:job").unwrap(), "", NOW)
        .await
        .unwrap()
        .token
        .expose()
        .to_string();
    let reader = tokens
        .create(Scope::Read, "", NOW)
        .await
        .unwrap()
        .token
        .expose()
        .to_string();
    let stats = Arc::new(RunnerStats::new(Arc::new(|| NOW)));
    let checker = parse_checker(
        "job.dwmon",
        &format!("__SOURCE__\npush\n__REQUIREMENTS__\n{REQ}\n"),
    )
    .unwrap();
    stats.set_checkers(vec![checker].into(), chrono_tz::UTC);
    let push = Push::new(
        Arc::clone(&store) as Arc<dyn dwmon_core::ping_log::PingLog>,
        tokens.clone(),
        stats,
        config,
    );
    // No runner statistics: the views show every checker the store knows, so a ping-kind
    // series would show there if the store listed it.
    let router = ServerBuilder::new(Arc::clone(&store) as Arc<dyn Store>)
        .tokens(tokens.clone())
        .merge(push.router())
        .merge(dwmon_server::api::router())
        .merge(dwmon_server::metrics::router())
        .merge(dwmon_server::page::router())
        .build();
    let addr = support::serve_on_loopback(router).await;
    Server {
        addr,
        store,
        token,
        reader,
        _dir: dir,
    }
}

impl Server {
    fn url(&self, rest: &str) -> String {
        format!("http://{}/ping/{}{rest}", self.addr, self.token)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_counts_once_and_each_kind_has_its_series() {
    let server = start(PushConfig::default()).await;
    let client = reqwest::Client::new();
    for _ in 0..5 {
        let answer = client.post(server.url("?key=run-7")).send().await.unwrap();
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.headers()["ping-body-limit"], "10000");
    }
    for rest in ["/fail", "/3", "/start", "/log", "/0", ""] {
        assert_eq!(
            client.get(server.url(rest)).send().await.unwrap().status(),
            200,
            "{rest}"
        );
    }
    let count = |series: &'static str| {
        let store = Arc::clone(&server.store);
        async move { store.count(series, NOW - 10, NOW + 10).await.unwrap() }
    };
    assert_eq!(count("job").await, 3, "run-7 once, /0 and the plain ping");
    assert_eq!(count("job~fail").await, 2, "/fail and exit status 3");
    assert_eq!(count("job~start").await, 1);
    assert_eq!(count("job~log").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_kind_series_never_show_as_checkers_in_the_api_page_or_metrics() {
    let server = start(PushConfig::default()).await;
    let client = reqwest::Client::new();
    for rest in ["", "/fail", "/start", "/log", "/7"] {
        let answer = client.get(server.url(rest)).send().await.unwrap();
        assert_eq!(answer.status(), 200, "{rest}");
    }
    let status = server.store.status().await.unwrap();
    let names: Vec<(&str, u64)> = status
        .iter()
        .map(|s| (s.checker.as_str(), s.stored_rows))
        .collect();
    assert_eq!(
        names,
        [("job", 5)],
        "every ping counts in the checker's rows"
    );
    for path in [
        "/api/v1/checkers",
        "/api/v1/status",
        "/api/v1/checkers/job",
        "/metrics",
        "/",
    ] {
        let answer = client
            .get(format!("http://{}{path}", server.addr))
            .bearer_auth(&server.reader)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{path}");
        let text = answer.text().await.unwrap();
        let expected = match path {
            "/api/v1/status" => "\"store_ok\":true",
            "/metrics" => "\ndwmon_checkers 1\n",
            _ => "job",
        };
        assert!(text.contains(expected), "{path}: {text}");
        for kind in ["fail", "start", "log"] {
            assert!(!text.contains(&format!("job~{kind}")), "{path}: {text}");
        }
    }
    for kind in ["fail", "start", "log"] {
        let answer = client
            .get(format!("http://{}/api/v1/checkers/job~{kind}", server.addr))
            .bearer_auth(&server.reader)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 404, "job~{kind}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_cannot_commit_answers_503_within_2_seconds() {
    let server = start(PushConfig::default()).await;
    // Another connection holds the write lock (as a long transaction of another process would).
    let path = server._dir.path().join("s.sqlite");
    let blocker = rusqlite::Connection::open(&path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = Instant::now();
    let answer = reqwest::get(server.url("?key=blocked")).await.unwrap();
    let waited = started.elapsed();
    assert_eq!(answer.status(), 503);
    assert_eq!(answer.headers()["retry-after"], "2");
    assert!(
        waited >= Duration::from_millis(1900) && waited < Duration::from_millis(2600),
        "{waited:?}"
    );
    blocker.execute_batch("ROLLBACK").unwrap();
}

/// Beyond `max_in_flight` requests, the next is answered 503 at once, not queued: a flood
/// against a stalled store never piles up waiting sockets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_in_flight_bound_get_503_at_once() {
    let server = start(PushConfig {
        max_in_flight: 4,
        ..PushConfig::default()
    })
    .await;
    let path = server._dir.path().join("s.sqlite");
    let blocker = rusqlite::Connection::open(&path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let client = reqwest::Client::new();
    let waiting: Vec<_> = (0..4)
        .map(|i| {
            let request = client.get(server.url(&format!("?key=w{i}"))).send();
            tokio::spawn(request)
        })
        .collect();
    // Let the four reach the writer's queue (they wait up to 2 s for the commit).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let refused = client.get(server.url("?key=fifth")).send().await.unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    assert!(refused.text().await.unwrap().contains("in flight"));
    assert!(started.elapsed() < Duration::from_millis(500), "at once");
    for request in waiting {
        assert_eq!(request.await.unwrap().unwrap().status(), 503);
    }
    blocker.execute_batch("ROLLBACK").unwrap();
    let ok = client.get(server.url("?key=later")).send().await.unwrap();
    assert_eq!(ok.status(), 200, "the bound is released with the answers");
}

/// A real `curl --retry 5` whose first try meets a store that cannot commit: it gets 503 with
/// `Retry-After`, retries, and its `key=` makes the ping count once although the first try's
/// row is committed later too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_retry_5_with_a_key_counts_once_after_a_503() {
    let server = start(PushConfig::default()).await;
    let path = server._dir.path().join("s.sqlite");
    let blocker = rusqlite::Connection::open(&path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let url = server.url("?key=nightly-2026-12-03");
    // A real file: curl truncates its output before a retry, which /dev/null refuses.
    let body = server._dir.path().join("answer.txt");
    let curl = tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl")
            .args(["-w", "%{http_code}", "--retry", "5", "-o"])
            .arg(body)
            .arg(url)
            .output()
            .expect("curl runs")
    });
    // The first try waits 2 s for its commit and gets 503; then the lock is gone.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    blocker.execute_batch("ROLLBACK").unwrap();
    let out = curl.await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200", "{stderr}");
    assert!(stderr.contains("Will retry"), "curl retried: {stderr}");
    assert_eq!(
        server.store.count("job", NOW - 10, NOW + 10).await.unwrap(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_over_its_rate_gets_429_with_retry_after() {
    let server = start(PushConfig {
        rate_per_second: 0.1,
        burst: 2.0,
        ..PushConfig::default()
    })
    .await;
    let statuses = {
        let mut statuses = Vec::new();
        for _ in 0..3 {
            statuses.push(reqwest::get(server.url("")).await.unwrap());
        }
        statuses
    };
    assert_eq!(statuses[0].status(), 200);
    assert_eq!(statuses[1].status(), 200);
    assert_eq!(statuses[2].status(), 429);
    let retry: u64 = statuses[2].headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=10).contains(&retry), "{retry}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    #[test]
    fn fuzzed_suffixes_queries_and_bodies_never_break_the_server(
        suffix in "[/a-zA-Z0-9%._~-]{0,20}",
        query in "[a-z=&%0-9+;~-]{0,40}",
        body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2000),
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        runtime.block_on(async {
            let server = start(PushConfig { rate_per_second: 1e6, burst: 1e6, ..PushConfig::default() }).await;
            let url = format!("{}{}?{}", server.url(""), suffix, query);
            let answer = reqwest::Client::new().post(&url).body(body).send().await.unwrap();
            let status = answer.status().as_u16();
            assert!([200, 400, 404, 405, 409, 413].contains(&status), "{url}: {status}");
            // Still serving.
            assert_eq!(reqwest::get(server.url("")).await.unwrap().status(), 200);
        });
    }
}
