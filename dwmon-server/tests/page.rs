//! The status page and badges over a real loopback socket: access (none, public, read and
//! write sessions), the security headers, escaping of hostile text, pausing from the page.

mod support;

use dwmon_alert::{AlertStateStore, MemoryAlertStore};
use dwmon_core::testutil::{checker, every_minute, RecordingHandler, ScriptedSource, Step};
use dwmon_core::{Engine, MemoryStore, Row, SourceError, Store};
use dwmon_server::auth::{Access, StaticTokens};
use dwmon_server::{badge, page, RunnerStats, ServerBuilder};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

const T0: i64 = 1_700_000_040;
const READ: &str = "read-token-0123456789abcdef";
const WRITE: &str = "write-token-0123456789abcdef";
const XSS_SCRIPT: &str = "<script>alert(1)</script>";
const XSS_ATTR: &str = "\"><img src=x onerror=alert(2)>";

struct Site {
    url: String,
    alerts: Arc<MemoryAlertStore>,
    client: reqwest::Client,
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Site {
    async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let answer = request.send().await.unwrap();
        Answer {
            status: answer.status().as_u16(),
            headers: answer.headers().clone(),
            body: answer.text().await.unwrap(),
        }
    }

    async fn get(&self, path: &str, session: Option<&str>) -> Answer {
        let mut request = self.client.get(format!("{}{path}", self.url));
        if let Some(token) = session {
            request = request.header("cookie", format!("dwmon_session={token}"));
        }
        self.send(request).await
    }

    async fn form(&self, path: &str, session: Option<&str>, form: &[(&str, &str)]) -> Answer {
        let mut request = self.client.post(format!("{}{path}", self.url)).form(form);
        if let Some(token) = session {
            request = request.header("cookie", format!("dwmon_session={token}"));
        }
        self.send(request).await
    }
}

/// `orders` GOOD with a hostile `__EXTRA__` and query; `payments` BAD; `broken` failing with
/// a hostile error text.
async fn site(public: bool) -> Site {
    let source = Arc::new(ScriptedSource::new());
    let store = Arc::new(MemoryStore::new());
    let mut orders = checker("orders", vec![every_minute(1, 10, 3600)]);
    orders.query = format!("SELECT 1 -- {XSS_ATTR}");
    orders.extra = serde_json::json!({"note": XSS_SCRIPT, "alert": XSS_ATTR});
    let engine = Engine::new(
        source.clone(),
        store.clone(),
        Arc::new(RecordingHandler::new()),
    )
    .with_checkers(vec![
        orders,
        checker("payments", vec![every_minute(5, 100, 60)]),
        checker("broken", vec![every_minute(0, 10, 60)]),
    ]);
    source.set_rows("orders", vec![Row::new("o1", T0 - 30)]);
    source.set(
        "broken",
        Step::Fail(SourceError::Query {
            source_name: "default".into(),
            message: format!("syntax error near {XSS_SCRIPT}"),
        }),
    );
    let clock = Arc::new(AtomicI64::new(T0 + 5));
    let stats = {
        let clock = Arc::clone(&clock);
        Arc::new(RunnerStats::new(Arc::new(move || {
            clock.load(Ordering::SeqCst)
        })))
    };
    stats.set_checkers(engine.checkers(), chrono_tz::UTC);
    stats.record_cycle(&engine.run_cycle(T0 + 5).await);
    let alerts = Arc::new(MemoryAlertStore::new());
    let store: Arc<dyn Store> = store;
    let router = ServerBuilder::new(store)
        .stats(stats)
        .alerts(alerts.clone())
        .public(public)
        .authorizer(Arc::new(StaticTokens::new([
            (READ, Access::Read),
            (WRITE, Access::Write),
        ])))
        .merge(page::router())
        .merge(badge::router())
        .build();
    let url = support::serve_url(router).await;
    Site {
        url,
        alerts,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    }
}

fn assert_no_markup_injected(body: &str) {
    for raw in [XSS_SCRIPT, XSS_ATTR, "<img", "onerror=alert(2)>"] {
        assert!(!body.contains(raw), "unescaped {raw:?} in:\n{body}");
    }
}

fn header<'a>(answer: &'a Answer, name: &str) -> &'a str {
    answer
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[tokio::test]
async fn without_a_token_the_page_asks_for_one() {
    let site = site(false).await;
    for path in ["/", "/checkers/orders"] {
        let answer = site.get(path, None).await;
        assert_eq!(answer.status, 401, "{path}");
        assert!(answer.body.contains("name=token"), "{}", answer.body);
        assert!(
            !answer.body.contains("orders\""),
            "no checker shown: {}",
            answer.body
        );
        assert!(header(&answer, "content-security-policy").starts_with("default-src 'self'"));
    }
    assert_eq!(site.get("/badge.svg", None).await.status, 401);
    // A refused session cookie is cleared.
    let answer = site.get("/", Some("not-a-token")).await;
    assert_eq!(answer.status, 401);
    assert!(header(&answer, "set-cookie").contains("Max-Age=0"));
}

#[tokio::test]
async fn a_read_session_sees_everything_escaped_and_cannot_pause() {
    let site = site(false).await;
    // Signing in sets an HttpOnly, SameSite=Strict session cookie and goes to the overview.
    let answer = site.form("/session", None, &[("token", READ)]).await;
    assert_eq!(answer.status, 303);
    let cookie = header(&answer, "set-cookie");
    assert!(
        cookie.starts_with(&format!("dwmon_session={READ};")),
        "{cookie}"
    );
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    assert_eq!(
        site.form("/session", None, &[("token", "wrong")])
            .await
            .status,
        401
    );

    let overview = site.get("/", Some(READ)).await;
    assert_eq!(overview.status, 200);
    assert_eq!(
        header(&overview, "content-security-policy"),
        page::CSP,
        "default-src 'self' and no framing"
    );
    assert!(page::CSP.starts_with("default-src 'self'"));
    assert_eq!(
        header(&overview, "content-type"),
        "text/html; charset=utf-8"
    );
    let body = &overview.body;
    assert_no_markup_injected(body);
    for expected in [
        "<a href=\"/checkers/orders\">orders</a>",
        "<tr class=g>",
        "<b>GOOD</b>",
        "<b>BAD</b>",
        "<b>ERROR</b>",
        "1..10",
        "5..100",
        "syntax error near &lt;script&gt;",
        "read access",
    ] {
        assert!(body.contains(expected), "no {expected:?} in:\n{body}");
    }
    // No external assets: only same-origin stylesheet and script.
    assert!(
        !body.contains("http://") && !body.contains("https://"),
        "{body}"
    );
    assert!(body.contains("href=/static/dwmon.css") && body.contains("src=/static/dwmon.js"));
    assert_eq!(site.get("/static/dwmon.css", None).await.status, 200);

    let page = site.get("/checkers/orders", Some(READ)).await;
    assert_eq!(page.status, 200);
    assert_no_markup_injected(&page.body);
    assert!(
        page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{}",
        page.body
    );
    assert!(page.body.contains("<svg"), "the band chart");
    assert!(
        !page.body.contains("Pause</button>"),
        "no pause button for read"
    );
    let refused = site
        .form("/checkers/orders/pause", Some(READ), &[("comment", "x")])
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(site.alerts.pause("orders").await.unwrap(), None);
    assert_eq!(site.get("/checkers/nope", Some(READ)).await.status, 404);
}

#[tokio::test]
async fn a_write_session_pauses_and_unpauses_from_the_page() {
    let site = site(false).await;
    let page = site.get("/checkers/payments", Some(WRITE)).await;
    assert!(page.body.contains("Pause</button>"), "{}", page.body);
    let comment = format!("migration {XSS_SCRIPT} {XSS_ATTR}");
    let answer = site
        .form(
            "/checkers/payments/pause",
            Some(WRITE),
            &[("hours", "2"), ("comment", &comment)],
        )
        .await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    assert_eq!(header(&answer, "location"), "/checkers/payments");
    let pause = site.alerts.pause("payments").await.unwrap().unwrap();
    assert_eq!(pause.until, Some(T0 + 5 + 7200));
    assert_eq!(pause.comment.as_deref(), Some(comment.as_str()));
    let page = site.get("/checkers/payments", Some(WRITE)).await;
    assert_no_markup_injected(&page.body);
    assert!(page.body.contains("Paused since"), "{}", page.body);
    assert!(page.body.contains("Unpause</button>"));
    let overview = site.get("/", Some(WRITE)).await;
    assert!(overview.body.contains("<tr class=p>"), "{}", overview.body);
    assert_no_markup_injected(&overview.body);
    // A form posted from another site is refused even with the session.
    let forged = site
        .send(
            site.client
                .post(format!("{}/checkers/payments/unpause", site.url))
                .header("cookie", format!("dwmon_session={WRITE}"))
                .header("origin", "http://evil.example"),
        )
        .await;
    assert_eq!(forged.status, 403);
    assert!(site.alerts.pause("payments").await.unwrap().is_some());
    let answer = site
        .form("/checkers/payments/unpause", Some(WRITE), &[])
        .await;
    assert_eq!(answer.status, 303);
    assert!(site.alerts.pause("payments").await.unwrap().is_none());
    // Both are in the alert history, newest first, the comment escaped.
    let page = site.get("/checkers/payments", Some(READ)).await;
    assert_no_markup_injected(&page.body);
    let history = page
        .body
        .split("<h3>Alert history</h3>")
        .nth(1)
        .unwrap_or_else(|| panic!("no alert history:\n{}", page.body));
    let unpaused = "<tr class=g><td>2023-11-14T22:14:05+00:00<td>pause\
                    <td>paused → <b>active</b><td>unpaused from the status page";
    let paused = format!(
        "<tr class=n><td>2023-11-14T22:14:05+00:00<td>pause<td>active → <b>paused</b>\
         <td>migration {} {}",
        page::escape(XSS_SCRIPT),
        page::escape(XSS_ATTR)
    );
    assert!(
        history
            .find(unpaused)
            .is_some_and(|u| history.find(&paused) > Some(u)),
        "{history}"
    );
    for hours in ["-1", "x", "1e9"] {
        let answer = site
            .form("/checkers/payments/pause", Some(WRITE), &[("hours", hours)])
            .await;
        assert_eq!(answer.status, 400, "{hours}");
    }
}

#[tokio::test]
async fn public_mode_shows_names_and_states_only() {
    let site = site(true).await;
    let overview = site.get("/", None).await;
    assert_eq!(overview.status, 200);
    assert!(overview.body.contains(">orders</a>") && overview.body.contains("<b>ERROR</b>"));
    assert!(
        !overview.body.contains("syntax error"),
        "no error texts: {}",
        overview.body
    );
    let page = site.get("/checkers/orders", None).await;
    assert_eq!(page.status, 200);
    for secret in ["SELECT", "note", "__EXTRA__", "syntax error"] {
        assert!(
            !page.body.contains(secret),
            "{secret} in public:\n{}",
            page.body
        );
    }
    let broken = site.get("/checkers/broken", None).await;
    assert!(!broken.body.contains("syntax error"), "{}", broken.body);
    // No alert history (it holds pause comments and error texts).
    let pause = dwmon_alert::Pause {
        since: T0,
        until: None,
        comment: Some("secret plan".into()),
    };
    site.alerts.set_pause("orders", Some(&pause)).await.unwrap();
    let page = site.get("/checkers/orders", None).await;
    assert!(page.body.contains("<b>PAUSED</b>"), "{}", page.body);
    assert!(
        !page.body.contains("Alert history") && !page.body.contains("secret plan"),
        "{}",
        page.body
    );
    let read = site.get("/checkers/orders", Some(READ)).await;
    assert!(
        read.body.contains("<h3>Alert history</h3>") && read.body.contains("secret plan"),
        "{}",
        read.body
    );
    assert_eq!(
        site.form("/checkers/orders/pause", None, &[]).await.status,
        403,
        "public is not write"
    );
}

#[tokio::test]
async fn badges_are_svg_and_shields_json_and_never_cached() {
    let site = site(true).await;
    let answer = site.get("/badge/orders.svg", None).await;
    assert_eq!(answer.status, 200);
    assert_eq!(header(&answer, "content-type"), "image/svg+xml");
    assert_eq!(header(&answer, "cache-control"), "no-cache");
    assert!(answer.body.contains(">orders</text>") && answer.body.contains(">GOOD</text>"));
    let answer = site.get("/badge/payments.json", None).await;
    assert_eq!(header(&answer, "cache-control"), "no-cache");
    let json: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"schemaVersion": 1, "label": "payments", "message": "BAD", "color": "red"})
    );
    let all: serde_json::Value =
        serde_json::from_str(&site.get("/badge.json", None).await.body).unwrap();
    assert_eq!(
        (&all["label"], &all["message"]),
        (&"dwmon".into(), &"ERROR".into())
    );
    assert!(site
        .get("/badge.svg", None)
        .await
        .body
        .contains(">ERROR</text>"));
    assert_eq!(site.get("/badge/nope.svg", None).await.status, 404);
    assert_eq!(site.get("/badge/orders.png", None).await.status, 404);
}

/// The overview reads the last checks of every line of every checker in one store read
/// (`status_histories`): each line's bar shows its own statuses, and the uptime figures are
/// counted the same way.
#[tokio::test]
async fn the_overview_bars_show_each_lines_last_checks() {
    let store = Arc::new(dwmon_sqlite::SqliteStore::open_in_memory().unwrap());
    let source = Arc::new(ScriptedSource::new());
    // Line 0 wants 0..10 rows (GOOD), line 1 at least 5 (BAD with 1 row).
    let two = dwmon_core::testutil::checker_from_lines(
        "two",
        &[
            "CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM0 MAXNUM10 LOOKBACKSECONDS60",
            "CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM5 MAXNUM10 LOOKBACKSECONDS60",
        ],
    )
    .unwrap();
    let engine = Engine::new(
        source.clone(),
        store.clone(),
        Arc::new(RecordingHandler::new()),
    )
    .with_checkers(vec![two, checker("one", vec![every_minute(1, 10, 60)])]);
    let stats = Arc::new(RunnerStats::new(Arc::new(|| T0 + 125)));
    stats.set_checkers(engine.checkers(), chrono_tz::UTC);
    for minute in [T0, T0 + 60, T0 + 120] {
        source.set_rows("two", vec![Row::new(format!("t{minute}"), minute - 30)]);
        source.set_rows("one", vec![Row::new(format!("o{minute}"), minute - 30)]);
        stats.record_cycle(&engine.run_cycle(minute + 5).await);
    }
    let builder = ServerBuilder::new(store as Arc<dyn Store>)
        .stats(stats)
        .public(true)
        .merge(page::router());
    let names = vec!["one".to_string(), "two".to_string()];
    let figures = dwmon_server::uptime::count(builder.state(), &names, T0 + 125).await;
    assert_eq!(figures[&("two".to_string(), 0)], [Some(100.0); 3]);
    assert_eq!(figures[&("two".to_string(), 1)], [Some(0.0); 3]);
    assert_eq!(figures[&("one".to_string(), 0)], [Some(100.0); 3]);
    let router = builder.build();
    let url = format!("{}/", support::serve_url(router).await);
    let body = reqwest::get(&url).await.unwrap().text().await.unwrap();
    let rows: Vec<&str> = body.split("<tr class=").skip(1).collect();
    let row = |start: &str| {
        rows.iter()
            .find(|r| r.contains(start))
            .unwrap_or_else(|| panic!("no row with {start:?} in:\n{body}"))
    };
    // Three checks each, right-aligned in the 90 slots.
    assert!(
        row("/checkers/one").contains(r#"<path class=g d="M87 .5h3"/>"#),
        "{body}"
    );
    let line0 = row("/checkers/two");
    assert!(line0.contains(r#"<path class=g d="M87 .5h3"/>"#), "{line0}");
    let line1 = row("<small>#1</small>");
    assert!(line1.starts_with("b>"), "line 1 is BAD: {line1}");
    assert!(line1.contains(r#"<path class=b d="M87 .5h3"/>"#), "{line1}");
}

/// A push checker's page lists its recent pings newest first with escaped bodies; public
/// mode shows kinds and times only.
#[tokio::test]
async fn a_push_checkers_page_shows_its_pings_escaped() {
    use dwmon_server::push::{Push, PushConfig};
    use dwmon_server::tokens::{MemoryTokenStore, Scope, TokenStore};
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let tokens = Arc::new(MemoryTokenStore::new());
    let ping = tokens
        .create(Scope::parse("ping:job").unwrap(), "", T0)
        .await
        .unwrap()
        .token
        .expose()
        .to_string();
    let stats = Arc::new(RunnerStats::new(Arc::new(|| T0 + 5)));
    let job = dwmon_core::checker_file::parse_checker(
        "job.dwmon",
        "__SOURCE__\npush\n__REQUIREMENTS__\n\
         CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM1 MAXNUM9 LOOKBACKSECONDS60\n",
    )
    .unwrap();
    stats.set_checkers(
        vec![job, checker("plain", vec![every_minute(1, 10, 60)])].into(),
        chrono_tz::UTC,
    );
    let push = Push::new(
        Arc::new(dwmon_core::ping_log::MemoryPingLog::new(Arc::clone(&store))),
        tokens.clone(),
        Arc::clone(&stats),
        PushConfig::default(),
    );
    let router = ServerBuilder::new(store)
        .stats(stats)
        .public(true)
        .authorizer(Arc::new(StaticTokens::new([(READ, Access::Read)])))
        .tokens(tokens)
        .push(push)
        .merge(page::router())
        .build();
    let url = support::serve_url(router).await;
    let site = Site {
        url: url.clone(),
        alerts: Arc::new(MemoryAlertStore::new()),
        client: reqwest::Client::new(),
    };
    let empty = site.get("/checkers/job", Some(READ)).await;
    assert!(
        empty.body.contains("No pings received yet"),
        "{}",
        empty.body
    );
    let hostile = format!("backup done {XSS_SCRIPT} {XSS_ATTR}");
    for (path, body) in [
        (format!("/ping/{ping}/start"), String::new()),
        (format!("/ping/{ping}"), hostile.clone()),
    ] {
        let answer = site
            .client
            .post(format!("{url}{path}"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
    }
    let page = site.get("/checkers/job", Some(READ)).await;
    assert_eq!(page.status, 200);
    assert_no_markup_injected(&page.body);
    let section = page.body.split("<h3>Recent pings</h3>").nth(1).unwrap();
    assert!(
        section.contains(&page::escape(&hostile)),
        "the body, escaped: {section}"
    );
    let success = section.find("<b>success</b>").expect("the success ping");
    let start = section.find("<b>start</b>").expect("the start ping");
    assert!(success < start, "newest first: {section}");
    let public = site.get("/checkers/job", None).await;
    assert_eq!(public.status, 200);
    assert!(public.body.contains("<b>success</b>"), "{}", public.body);
    assert!(
        !public.body.contains("backup done"),
        "no bodies in public mode: {}",
        public.body
    );
    let plain = site.get("/checkers/plain", Some(READ)).await;
    assert!(plain.body.contains("only push checkers receive pings"));
}
