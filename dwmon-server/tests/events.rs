//! `POST /api/v1/events` on a real socket over a real SQLite store, with the runner clock
//! fixed at `NOW`.

mod support;

use dwmon_core::checker_file::parse_checker;
use dwmon_core::{RowStore, Store};
use dwmon_server::events::{Events, EventsConfig};
use dwmon_server::hosts::HostRegistry;
use dwmon_server::push::{Push, PushConfig};
use dwmon_server::tokens::{MemoryTokenStore, Scope, TokenStore};
use dwmon_server::{RunnerStats, ServerBuilder};
use proptest::strategy::Strategy;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

const NOW: i64 = 1_800_000_000;
const REQ: &str = "CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM1 MAXNUM9 LOOKBACKSECONDS60";

struct Server {
    url: String,
    store: Arc<dwmon_sqlite::SqliteStore>,
    /// `ping:job`.
    job: String,
    /// `ping` (any push checker).
    key: String,
    /// `read`.
    read: String,
    hosts: Arc<HostRegistry>,
    events: Arc<Events>,
    stats: Arc<RunnerStats>,
    dir: tempfile::TempDir,
}

async fn token(tokens: &MemoryTokenStore, scope: &str) -> String {
    tokens
        .create(Scope::parse(scope).unwrap(), "", NOW)
        .await
        .unwrap()
        .token
        .expose()
        .to_string()
}

async fn start(push: PushConfig, events: EventsConfig) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(dwmon_sqlite::SqliteStore::open(dir.path().join("s.sqlite")).unwrap());
    let tokens = Arc::new(MemoryTokenStore::new());
    let (job, key, read) = (
        token(&tokens, "ping:job").await,
        token(&tokens, "ping").await,
        token(&tokens, "read").await,
    );
    let stats = Arc::new(RunnerStats::new(Arc::new(|| NOW)));
    let mut checkers = ["job", "other"]
        .iter()
        .map(|name| {
            parse_checker(
                &format!("{name}.dwmon"),
                &format!("__SOURCE__\npush\n__REQUIREMENTS__\n{REQ}\n"),
            )
            .unwrap()
        })
        .collect::<Vec<_>>();
    checkers.push(
        parse_checker(
            "beat.dwmon",
            &format!(
                "__SOURCE__\npush\n__REQUIREMENTS__\n{REQ}\n__EXTRA__\n{{\"per_host\": true}}\n"
            ),
        )
        .unwrap(),
    );
    let hosts = Arc::new(HostRegistry::in_memory());
    stats.set_checkers(checkers.into(), chrono_tz::UTC);
    let push = Push::new(
        Arc::clone(&store) as Arc<dyn dwmon_core::ping_log::PingLog>,
        tokens.clone(),
        Arc::clone(&stats),
        push,
    );
    let events = Events::new(
        Arc::clone(&push),
        Arc::clone(&store) as Arc<dyn Store>,
        Arc::clone(&hosts),
        events,
    );
    let router = ServerBuilder::new(Arc::clone(&store) as Arc<dyn Store>)
        .tokens(tokens)
        .merge(push.router())
        .merge(Arc::clone(&events).router())
        .merge(dwmon_server::api::router())
        .build();
    let url = format!("{}/api/v1/events", support::serve_url(router).await);
    Server {
        url,
        store,
        job,
        key,
        read,
        hosts,
        events,
        stats,
        dir,
    }
}

impl Server {
    async fn post(&self, token: Option<&str>, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let mut request = reqwest::Client::new().post(&self.url).body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let answer = request.send().await.unwrap();
        let status = answer.status().as_u16();
        assert!(answer.headers().contains_key("ping-body-limit"));
        let text = answer.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        (status, value)
    }

    async fn count(&self, series: &str) -> u64 {
        self.store
            .count(series, NOW - 3600, NOW + 3600)
            .await
            .unwrap()
    }
}

fn line(event: Value) -> String {
    format!("{event}\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_lines_are_stored_and_each_bad_line_is_named() {
    let server = start(PushConfig::default(), EventsConfig::default()).await;
    let body = [
        line(json!({"service": "job", "state": "ok", "key": "a"})),
        line(json!({"service": "job", "state": "critical", "description": "disk full"})),
        "{not json\n".to_string(),
        line(json!({"service": "job", "state": "warning", "time": NOW - 30})),
        line(json!({"service": "job", "time": NOW * 1000})),
        line(json!({"service": "other"})),
        line(json!({"service": "nope"})),
        line(json!({"service": "job", "state": "unknown", "time": "2027-01-15T07:59:00Z"})),
    ]
    .concat();
    let (status, answer) = server.post(Some(&server.job), body).await;
    assert_eq!(status, 207, "{answer}");
    assert_eq!(answer["accepted"], 4);
    assert_eq!(answer["rejected"], 4);
    let lines: Vec<u64> = answer["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [3, 5, 6, 7]);
    let why = |i: usize| answer["errors"][i]["error"].as_str().unwrap().to_string();
    assert!(why(0).starts_with("not an event"), "{}", why(0));
    assert!(why(1).contains("milliseconds?"), "{}", why(1));
    assert!(why(2).contains("for \"job\" only"), "{}", why(2));
    assert!(why(3).contains("not \"nope\""), "{}", why(3));
    let (status, answer) = server
        .post(Some(&server.key), json!({"service": "nope"}).to_string())
        .await;
    assert_eq!(status, 400);
    let why = answer["errors"][0]["error"].as_str().unwrap();
    assert!(why.contains("no push checker named \"nope\""), "{why}");
    // Committed before the answer: ok -> success, critical -> fail, warning/unknown -> log.
    assert_eq!(server.count("job").await, 1);
    assert_eq!(server.count("job~fail").await, 1);
    assert_eq!(server.count("job~log").await, 2);
    assert_eq!(
        server
            .store
            .row_timestamps("job~log", 0, i64::MAX)
            .await
            .unwrap(),
        [NOW - 60, NOW - 30],
        "the event's time is the row's timestamp"
    );
    assert_eq!(server.count("other").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_counts_once_and_a_ping_key_reaches_every_checker() {
    let server = start(PushConfig::default(), EventsConfig::default()).await;
    for _ in 0..5 {
        let event = json!({"service": "job", "key": "deploy-42"}).to_string();
        let (status, answer) = server.post(Some(&server.job), event).await;
        assert_eq!(
            (status, answer),
            (200, json!({"accepted": 1, "rejected": 0, "errors": []}))
        );
    }
    assert_eq!(server.count("job").await, 1);
    // One pretty-printed event, and NDJSON for two checkers with a ping key.
    let pretty = "{\n  \"service\": \"other\",\n  \"state\": \"ok\"\n}\n";
    assert_eq!(server.post(Some(&server.key), pretty).await.0, 200);
    let both = line(json!({"service": "job"})) + &line(json!({"service": "other"}));
    assert_eq!(server.post(Some(&server.key), both).await.0, 200);
    assert_eq!(server.count("job").await, 2);
    assert_eq!(server.count("other").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_bodies_and_all_bad_lines_get_their_answers() {
    let server = start(
        PushConfig {
            rate_per_second: 0.01,
            burst: 3.0,
            ..PushConfig::default()
        },
        EventsConfig {
            body_limit: 300,
            ..EventsConfig::default()
        },
    )
    .await;
    let event = json!({"service": "job"}).to_string();
    let (status, answer) = server.post(None, event.clone()).await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (401, &json!("unauthorized"))
    );
    let (status, _) = server.post(Some("dw_0000000000_nope"), event.clone()).await;
    assert_eq!(status, 401);
    let (status, answer) = server.post(Some(&server.read), event.clone()).await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (403, &json!("forbidden"))
    );
    let (status, answer) = server.post(Some(&server.job), "x".repeat(301)).await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (413, &json!("too_large"))
    );
    let (status, answer) = server.post(Some(&server.job), "").await;
    assert_eq!((status, &answer["errors"][0]["line"]), (400, &json!(1)));
    let (status, answer) = server
        .post(
            Some(&server.job),
            "{}\n[]\n{\"service\": \"job\", \"token\": \"t\"}",
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["rejected"], 3);
    assert!(answer["errors"][2]["error"]
        .as_str()
        .unwrap()
        .contains("Authorization header"));
    assert_eq!(
        server.count("job").await,
        0,
        "nothing of a refused body is stored"
    );
    // Each event costs one from the token's bucket of 3: the third request is refused whole.
    let two = line(json!({"service": "job"})).repeat(2);
    assert_eq!(server.post(Some(&server.job), two.clone()).await.0, 200);
    assert_eq!(server.post(Some(&server.job), event.clone()).await.0, 200);
    let answer = reqwest::Client::new()
        .post(&server.url)
        .bearer_auth(&server.job)
        .body(event)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 429);
    assert!(answer.headers().contains_key("retry-after"));
    assert_eq!(server.count("job").await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_cannot_commit_answers_503_within_2_seconds() {
    let server = start(PushConfig::default(), EventsConfig::default()).await;
    let blocker = rusqlite::Connection::open(server.dir.path().join("s.sqlite")).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = Instant::now();
    let body = line(json!({"service": "job", "key": "k1"})) + "garbage\n";
    let answer = reqwest::Client::new()
        .post(&server.url)
        .bearer_auth(&server.job)
        .body(body)
        .send()
        .await
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(answer.status(), 503);
    assert_eq!(answer.headers()["retry-after"], "2");
    assert!(
        waited >= Duration::from_millis(1900) && waited < Duration::from_millis(2600),
        "{waited:?}"
    );
    blocker.execute_batch("ROLLBACK").unwrap();
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
    #[test]
    fn garbage_lines_never_break_the_server(
        lines in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)
                    .prop_map(|b: Vec<u8>| String::from_utf8_lossy(&b).replace('\n', " ")),
                "\\{\"service\": ?\"(job|other|beat|x y)\"(, \"(state|time|host|key|tags|ttl|metric|token)\": ?(\"[a-z0-9 :-]{0,12}\"|\\[\"shutdown\"\\]|-?[0-9]{1,15}(\\.[0-9]+)?|null|\\[\\]|\\{\\}))*\\}",
            ],
            0..12,
        ),
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let server = start(
                PushConfig { rate_per_second: 1e6, burst: 1e6, ..PushConfig::default() },
                EventsConfig::default(),
            )
            .await;
            let body = lines.join("\n");
            let (status, answer) = server.post(Some(&server.key), body.clone()).await;
            assert!([200, 207, 400].contains(&status), "{body:?}: {status} {answer}");
            let accepted = answer["accepted"].as_u64().unwrap();
            let rejected = answer["rejected"].as_u64().unwrap();
            assert_eq!(answer["errors"].as_array().unwrap().len() as u64, rejected);
            let stored = server.count("job").await + server.count("job~fail").await
                + server.count("job~log").await + server.count("other").await
                + server.count("other~fail").await + server.count("other~log").await;
            assert!(stored <= accepted, "{stored} stored, {accepted} accepted");
            // Still serving.
            let (status, _) = server.post(Some(&server.key), r#"{"service": "job"}"#).await;
            assert_eq!(status, 200);
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_make_one_sub_check_per_host_and_a_shutdown_removes_it() {
    let server = start(PushConfig::default(), EventsConfig::default()).await;
    let body = [
        line(json!({"service": "beat", "host": "web1"})),
        line(json!({"service": "beat", "host": "web2", "key": "w2-1"})),
        line(json!({"service": "beat"})),
        line(json!({"service": "beat", "host": "web2", "key": "w2-1"})),
        line(json!({"service": "beat", "host": "web1", "state": "critical"})),
    ]
    .concat();
    let (status, answer) = server.post(Some(&server.key), body).await;
    assert_eq!(status, 207, "{answer}");
    assert_eq!(answer["errors"][0]["line"], 3);
    assert!(answer["errors"][0]["error"]
        .as_str()
        .unwrap()
        .starts_with("host: missing"));
    let pairs = |names: &[&str]| -> Vec<(String, String)> {
        names
            .iter()
            .map(|h| ("beat".to_string(), h.to_string()))
            .collect()
    };
    assert_eq!(server.hosts.hosts(), pairs(&["web1", "web2"]));
    assert_eq!(server.count("beat@web1").await, 1);
    assert_eq!(server.count("beat@web1~fail").await, 1);
    assert_eq!(server.count("beat@web2").await, 1, "w2-1 counts once");
    assert_eq!(server.count("beat").await, 0, "the template has no rows");
    // A graceful shutdown removes web2 with its rows; web1 stays.
    let shutdown = json!({"service": "beat", "host": "web2", "tags": ["shutdown"]});
    let (status, answer) = server.post(Some(&server.key), shutdown.to_string()).await;
    assert_eq!((status, &answer["accepted"]), (200, &json!(1)));
    assert_eq!(server.hosts.hosts(), pairs(&["web1"]));
    assert_eq!(server.count("beat@web2").await, 0);
    assert_eq!(server.count("beat@web1").await, 1);
    // A ping cannot say which host it is from: refused, never a 200 that counts nowhere.
    let ping = reqwest::get(
        server
            .url
            .replace("/api/v1/events", &format!("/ping/{}/beat", server.key)),
    )
    .await
    .unwrap();
    assert_eq!(ping.status(), 400);
    // It may come back.
    let back = json!({"service": "beat", "host": "web2"}).to_string();
    assert_eq!(server.post(Some(&server.key), back).await.0, 200);
    assert_eq!(server.hosts.hosts(), pairs(&["web1", "web2"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_datagrams_carry_their_token_and_are_stored_unacknowledged() {
    let server = start(PushConfig::default(), EventsConfig::default()).await;
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let listener = tokio::spawn(dwmon_server::udp::serve_udp(
        socket,
        Arc::clone(&server.events),
        async {
            let _ = stopped.await;
        },
    ));
    let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let datagrams = [
        line(json!({"service": "job", "token": server.job, "key": "u1"}))
            + &line(json!({"service": "beat", "host": "web1", "token": server.key})),
        line(json!({"service": "job", "token": server.job, "key": "u1"})),
        line(json!({"service": "job"})),
        line(json!({"service": "job", "token": "dw_0000000000_nope"})),
        line(json!({"service": "job", "token": server.read})),
        "garbage".to_string(),
        line(json!({"service": "job", "token": server.job, "state": "critical"})),
    ];
    for datagram in &datagrams {
        client.send_to(datagram.as_bytes(), addr).await.unwrap();
    }
    // The listener reads what was sent before the shutdown, then commits it.
    stop.send(()).unwrap();
    listener.await.unwrap().unwrap();
    assert_eq!(server.count("job").await, 1, "u1 twice counts once");
    assert_eq!(server.count("job~fail").await, 1);
    assert_eq!(server.count("beat@web1").await, 1);
    assert_eq!(
        server.hosts.hosts(),
        [("beat".to_string(), "web1".to_string())]
    );
    let refused =
        server.stats.snapshot().pings[&("unknown".to_string(), "bad_request".to_string())];
    assert_eq!(refused, 4, "no token, a wrong one, a read token, garbage");
}
