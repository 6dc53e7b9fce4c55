//! Fuzzing the ping routes in-process (the `Router` itself, no socket, so thousands of cases
//! are cheap): any method, path, query, `Content-Length` and body gets one of the documented
//! answers with `Ping-Body-Limit`, never a panic, and the server keeps committing pings.
//! More cases: `PROPTEST_CASES=20000 cargo test -p dwmon-server --test push_fuzz`.

use axum::body::Body;
use axum::http::{Method, Request};
use dwmon_core::checker_file::parse_checker;
use dwmon_core::{RowStore, Store};
use dwmon_server::push::{Push, PushConfig};
use dwmon_server::tokens::{MemoryTokenStore, Scope, TokenStore};
use dwmon_server::{RunnerStats, ServerBuilder};
use proptest::prelude::*;
use std::sync::{Arc, OnceLock};
use tower::ServiceExt;

const NOW: i64 = 1_800_000_000;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    tokens: Vec<String>,
    store: Arc<dwmon_sqlite::SqliteStore>,
    _dir: tempfile::TempDir,
}

/// One server for all cases (its writer task lives on `runtime`).
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(dwmon_sqlite::SqliteStore::open(dir.path().join("s.sqlite")).unwrap());
        let (router, tokens) = runtime.block_on(async {
            let tokens = Arc::new(MemoryTokenStore::new());
            let mut texts = Vec::new();
            for scope in ["ping:job", "ping:posted", "ping", "read", "ping:gone"] {
                let issued = tokens
                    .create(Scope::parse(scope).unwrap(), "", NOW)
                    .await
                    .unwrap();
                texts.push(issued.token.expose().to_string());
            }
            let stats = Arc::new(RunnerStats::new(Arc::new(|| NOW)));
            let req = "CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM1 MAXNUM9 LOOKBACKSECONDS60";
            let job = parse_checker(
                "job.dwmon",
                &format!("__SOURCE__\npush\n__REQUIREMENTS__\n{req}\n"),
            )
            .unwrap();
            let posted = parse_checker(
                "posted.dwmon",
                &format!(
                    "__SOURCE__\npush\n__REQUIREMENTS__\n{req}\n__EXTRA__\n{{\"post_only\": true}}\n"
                ),
            )
            .unwrap();
            stats.set_checkers(vec![job, posted].into(), chrono_tz::UTC);
            let config = PushConfig {
                rate_per_second: 1e9,
                burst: 1e9,
                body_limit: 1000,
                ..PushConfig::default()
            };
            let push = Push::new(
                Arc::clone(&store) as Arc<dyn dwmon_core::ping_log::PingLog>,
                tokens.clone(),
                stats,
                config,
            );
            let router = ServerBuilder::new(Arc::clone(&store) as Arc<dyn Store>)
                .merge(push.router())
                .build();
            (router, texts)
        });
        Fixture {
            runtime,
            router,
            tokens,
            store,
            _dir: dir,
        }
    })
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::GET),
        Just(Method::HEAD),
        Just(Method::POST),
        Just(Method::PUT),
        Just(Method::DELETE),
        Just(Method::OPTIONS),
        "[A-Z]{1,8}".prop_map(|m| Method::from_bytes(m.as_bytes()).unwrap()),
    ]
}

/// A path segment: mostly plausible, sometimes anything URI-legal (percent escapes included).
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("start".to_string()),
        Just("fail".to_string()),
        Just("log".to_string()),
        Just("job".to_string()),
        Just("JOB".to_string()),
        Just("posted".to_string()),
        (0u16..300).prop_map(|n| n.to_string()),
        "[a-zA-Z0-9._~!$&'()*+,;=:@%-]{0,30}",
        "(%[0-9A-Fa-f]{2}){1,6}",
    ]
}

fn query() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(prop_oneof![
        "(key|rid)=[a-zA-Z0-9%+._~-]{0,250}",
        "[a-z=&%0-9+;~-]{0,60}",
        "key=%00&rid=%ff%fe",
        "key=[a-z]{1,5}&key=[a-z]{1,5}&rid=",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn any_request_to_the_ping_routes_gets_a_documented_answer(
        method in method(),
        token in 0usize..7,
        rest in proptest::collection::vec(segment(), 0..4),
        query in query(),
        declared in proptest::option::of(prop_oneof![Just("0".to_string()), (0u64..3000).prop_map(|n| n.to_string()), Just("99999999999999999999".to_string()), Just("-1".to_string()), Just("x".to_string())]),
        body in proptest::collection::vec(any::<u8>(), 0..1500),
    ) {
        let f = fixture();
        let token = match token {
            0..=4 => f.tokens[token].clone(),
            5 => "dw_0123456789_0123456789abcdef0123456789abcdef".to_string(),
            _ => "not-a-token".to_string(),
        };
        let mut uri = format!("/ping/{token}");
        for segment in &rest {
            uri.push('/');
            uri.push_str(segment);
        }
        if let Some(query) = &query {
            uri.push('?');
            uri.push_str(query);
        }
        let Ok(uri) = uri.parse::<axum::http::Uri>() else {
            return Ok(()); // not a URI a client could send
        };
        let mut request = Request::builder().method(method.clone()).uri(uri.clone());
        if let Some(declared) = &declared {
            request = request.header("content-length", declared);
        }
        let request = request.body(Body::from(body)).unwrap();
        let answer = f.runtime.block_on(f.router.clone().oneshot(request)).unwrap();
        let status = answer.status().as_u16();
        prop_assert!(
            [200, 400, 404, 405, 409, 413].contains(&status),
            "{method} {uri}: {status}"
        );
        prop_assert_eq!(
            answer.headers().get("ping-body-limit").map(|v| v.to_str().unwrap_or_default()),
            Some("1000"),
            "{} {}", method, uri
        );
    }
}

/// Runs beside the fuzzing (tests share the fixture): pings keep committing.
#[test]
fn beside_the_fuzzing_pings_still_commit() {
    let f = fixture();
    for i in 0..20 {
        let request = Request::builder()
            .uri(format!("/ping/{}?key=beside-fuzz-{i}", f.tokens[0]))
            .body(Body::empty())
            .unwrap();
        let answer = f
            .runtime
            .block_on(f.router.clone().oneshot(request))
            .unwrap();
        assert_eq!(answer.status(), 200);
    }
    let stored = f
        .runtime
        .block_on(f.store.count("job", NOW - 10, NOW + 10))
        .unwrap();
    assert!(stored >= 20, "{stored}");
}
