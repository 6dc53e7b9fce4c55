//! HTTP channels against a real server on loopback (issue 7): exact bodies for the generic
//! webhook, Slack and PagerDuty; retries after a 500 (directly and through the engine's
//! outbox); one failing channel does not block the others; secrets never reach error texts.

mod common;

use common::{error_event, record, HttpServer, RecordingNotifier, T0};
use dwmon_alert::{
    AlertHandler, AlertStateStore, AlertsConfig, ChannelKind, Channels, MemoryAlertStore,
};
use dwmon_core::testutil::{checker, every_minute, ScriptedSource};
use dwmon_core::{CheckHandler, Engine, Event, MemoryStore, Status};
use serde_json::{json, Value};
use std::sync::Arc;

const REQUIREMENT: &str =
    "CHECKHOURS0-23 CHECKMINUTES0-59 WEEKDAYS WEEKENDS MINNUM1 MAXNUM10 LOOKBACKSECONDS60";

fn config(text: &str) -> AlertsConfig {
    AlertsConfig::parse("alerts.json", text, &|_| None).expect("valid test config")
}

fn handler(config: &AlertsConfig) -> (AlertHandler, Arc<MemoryAlertStore>) {
    let store = Arc::new(MemoryAlertStore::new());
    let handler = AlertHandler::from_config(store.clone(), config).expect("handler");
    (handler, store)
}

fn check(minute: i64, status: Status, extra: Value) -> Event {
    Event::Check(record("orders", 0, minute, status, extra))
}

#[tokio::test]
async fn webhook_posts_the_documented_json_with_idempotency_header() {
    let server = HttpServer::start().await;
    let extra = json!({"alert": {"webhook": server.url("/hook")}});
    let (handler, _) = handler(&config("{}"));

    handler
        .handle(&check(T0, Status::Bad, extra))
        .await
        .expect("delivered");

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/hook")
    );
    assert_eq!(
        request.headers.get("idempotency-key").map(String::as_str),
        Some("orders/0/1700000040/firing")
    );
    assert_eq!(
        request.headers.get("content-type").map(String::as_str),
        Some("application/json")
    );
    assert_eq!(
        request.json(),
        json!({
            "version": 1,
            "idempotency_key": "orders/0/1700000040/firing",
            "kind": "firing",
            "incident_key": "orders/0",
            "event_key": "orders/0/1700000040",
            "checker": "orders",
            "severity": "critical",
            "at": 1_700_000_040,
            "minute": 1_700_000_040,
            "minute_local": "2023-11-14T22:14:00+00:00",
            "timezone": "UTC",
            "since": 1_700_000_040,
            "requirement_index": 0,
            "requirement": REQUIREMENT,
            "count": 0,
            "min": 1,
            "max": 10,
            "lookback_seconds": 60
        })
    );
}

#[tokio::test]
async fn slack_gets_a_readable_message_with_link_and_channel() {
    let server = HttpServer::start().await;
    let config = config(&format!(
        r#"{{"link_template": "https://dash.example.com/checkers/{{checker}}?minute={{minute}}",
            "slack": {{"webhook_url": "{}"}}}}"#,
        server.url("/services/T000/B000/XXXX")
    ));
    let (handler, _) = handler(&config);
    let extra = json!({"alert": {"slack": "#data"}});

    handler
        .handle(&check(T0, Status::Bad, extra.clone()))
        .await
        .expect("firing");
    handler
        .handle(&check(T0 + 60, Status::Good, extra))
        .await
        .expect("resolved");

    let bodies: Vec<Value> = server.requests().iter().map(|r| r.json()).collect();
    assert_eq!(
        bodies,
        [
            json!({
                "channel": "#data",
                "text": "\
:rotating_light: *FIRING* (critical) `orders` requirement #0
count 0, expected 1..=10 in the 60 s before 2023-11-14 22:14 +00:00 (UTC)
firing since 2023-11-14 22:14 UTC
<https://dash.example.com/checkers/orders?minute=1700000040|details>
key: orders/0/1700000040/firing"
            }),
            json!({
                "channel": "#data",
                "text": "\
:white_check_mark: *RESOLVED* (critical) `orders` requirement #0
count 5, expected 1..=10 in the 60 s before 2023-11-14 22:15 +00:00 (UTC)
failed checks: 1
<https://dash.example.com/checkers/orders?minute=1700000100|details>
key: orders/0/1700000100/resolved"
            }),
        ]
    );
    assert!(server
        .requests()
        .iter()
        .all(|r| r.path == "/services/T000/B000/XXXX"));
}

#[tokio::test]
async fn pagerduty_triggers_and_resolves_with_a_dedup_key() {
    let server = HttpServer::start().await;
    let config = config(&format!(
        r#"{{"pagerduty": {{"events_url": "{}", "services": {{"data-team": "routing-key-abc"}}}}}}"#,
        server.url("/v2/enqueue")
    ));
    let (handler, _) = handler(&config);
    let extra = json!({"alert": {"pagerduty": "data-team", "repeat_seconds": 60}});

    handler
        .handle(&check(T0, Status::Bad, extra.clone()))
        .await
        .expect("trigger");
    // A reminder is due, but PagerDuty escalates by itself: no request.
    handler
        .handle(&check(T0 + 60, Status::Bad, extra.clone()))
        .await
        .expect("reminder");
    handler
        .handle(&check(T0 + 120, Status::Good, extra))
        .await
        .expect("resolve");

    let requests = server.requests();
    assert!(requests.iter().all(|r| r.path == "/v2/enqueue"));
    let bodies: Vec<Value> = requests.iter().map(|r| r.json()).collect();
    assert_eq!(
        bodies,
        [
            json!({
                "routing_key": "routing-key-abc",
                "event_action": "trigger",
                "dedup_key": "orders/0",
                "payload": {
                    "summary": "FIRING [critical] orders #0: count 0 not in 1..=10 over the last 60 s at 2023-11-14T22:14:00+00:00 (UTC)",
                    "source": "dwmon",
                    "severity": "critical",
                    "timestamp": "2023-11-14T22:14:00Z",
                    "component": "orders",
                    "group": "orders/0",
                    "class": "firing",
                    "custom_details": {
                        "idempotency_key": "orders/0/1700000040/firing",
                        "requirement": REQUIREMENT,
                        "count": 0,
                        "min": 1,
                        "max": 10,
                        "lookback_seconds": 60,
                        "minute_local": "2023-11-14T22:14:00+00:00",
                        "error": null
                    }
                }
            }),
            json!({
                "routing_key": "routing-key-abc",
                "event_action": "resolve",
                "dedup_key": "orders/0"
            }),
        ]
    );
}

#[tokio::test]
async fn pagerduty_source_errors_use_the_source_dedup_key() {
    let server = HttpServer::start().await;
    let config = config(&format!(
        r#"{{"pagerduty": {{"events_url": "{}", "services": {{"data-team": "routing-key-abc"}}}}}}"#,
        server.url("/v2/enqueue")
    ));
    let (handler, _) = handler(&config);
    let extra = json!({"alert": {"pagerduty": "data-team"}});

    let error = Event::Error(error_event("orders", T0, extra.clone()));
    handler.handle(&error).await.expect("trigger");
    handler
        .handle(&check(T0 + 60, Status::Good, extra))
        .await
        .expect("resolve");

    let bodies: Vec<Value> = server.requests().iter().map(|r| r.json()).collect();
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[0]["event_action"], "trigger");
    assert_eq!(bodies[0]["dedup_key"], "orders/source");
    assert_eq!(bodies[0]["payload"]["severity"], "critical");
    assert_eq!(
        bodies[0]["payload"]["custom_details"]["error"],
        "fetch failed: connection refused"
    );
    assert_eq!(
        bodies[1],
        json!({"routing_key": "routing-key-abc", "event_action": "resolve", "dedup_key": "orders/source"})
    );
}

#[tokio::test]
async fn a_500_is_retried_only_for_the_failed_target_and_the_other_channel_is_not_blocked() {
    let server = HttpServer::start().await;
    server.respond_with(&[500]);
    let store = Arc::new(MemoryAlertStore::new());
    let log = RecordingNotifier::new();
    let channels = Channels::from_config(&AlertsConfig::default())
        .expect("channels")
        .with(ChannelKind::Log, log.clone());
    let handler = AlertHandler::new(store.clone(), channels);
    let extra = json!({"alert": {"webhook": server.url("/hook"), "log": true}});
    let event = check(T0, Status::Bad, extra);

    let error = handler
        .handle(&event)
        .await
        .expect_err("the webhook answered 500");
    let port = server.addr.port();
    assert_eq!(
        error.message,
        format!("1 alert deliveries failed: webhook http://127.0.0.1:{port}: HTTP 500 Internal Server Error")
    );
    assert_eq!(
        log.kinds(),
        ["firing"],
        "the log channel got its message at once"
    );
    let pending = store.overview().await.expect("overview").pending;
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].delivered, ["log:"]);
    assert_eq!(pending[0].attempts, 1);

    // The engine retries the same event from its outbox: only the webhook is sent again.
    handler
        .handle(&event)
        .await
        .expect("second attempt succeeds");
    assert_eq!(log.kinds(), ["firing"]);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].body, requests[1].body);
    assert_eq!(
        requests[1]
            .headers
            .get("idempotency-key")
            .map(String::as_str),
        Some("orders/0/1700000040/firing")
    );
    assert!(store.overview().await.expect("overview").pending.is_empty());
}

#[tokio::test]
async fn the_engine_outbox_retries_a_failed_alert_with_backoff() {
    let server = HttpServer::start().await;
    server.respond_with(&[500]);
    let mut orders = checker("orders", vec![every_minute(1, 10, 60)]);
    orders.extra = json!({"alert": {"webhook": server.url("/hook")}});
    let source = Arc::new(ScriptedSource::new());
    source.set_rows("orders", vec![]);
    let alerts = Arc::new(AlertHandler::new(
        Arc::new(MemoryAlertStore::new()),
        Channels::from_config(&AlertsConfig::default()).expect("channels"),
    ));
    let engine =
        Engine::new(source, Arc::new(MemoryStore::new()), alerts).with_checkers(vec![orders]);

    let first = engine.run_cycle(T0 + 5).await;
    assert_eq!(
        first.outcome("orders").map(|o| o.delivery_failures),
        Some(1)
    );
    // Next minute: the outbox retries the BAD check (now accepted), then delivers the new
    // BAD check, which is still firing: no second message.
    let second = engine.run_cycle(T0 + 65).await;
    assert_eq!(second.outcome("orders").map(|o| o.delivered), Some(2));

    let keys: Vec<String> = server
        .requests()
        .iter()
        .map(|r| {
            r.json()["idempotency_key"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(
        keys,
        ["orders/0/1700000040/firing", "orders/0/1700000040/firing"]
    );
}

#[tokio::test]
async fn secrets_never_appear_in_channel_errors() {
    let server = HttpServer::start().await;
    server.respond_with(&[500, 500, 503]);
    let closed = {
        // A port with nothing listening: bind, note the port, close.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let env = |name: &str| match name {
        "SLACK_URL" => Some(format!(
            "http://127.0.0.1:{}/services/T0/B0/SlackSecretToken",
            server.addr.port()
        )),
        "DOWN_URL" => Some(format!(
            "http://127.0.0.1:{closed}/hook?token=DownSecretToken"
        )),
        "PD_KEY" => Some("PagerDutySecretKey".to_string()),
        _ => None,
    };
    let text = format!(
        r#"{{"slack": {{"webhook_url": {{"env": "SLACK_URL"}}}},
            "webhooks": {{"down": {{"env": "DOWN_URL"}}}},
            "pagerduty": {{"events_url": "{}", "services": {{"team": {{"env": "PD_KEY"}}}}}}}}"#,
        server.url("/v2/enqueue")
    );
    let config = AlertsConfig::parse("alerts.json", &text, &env).expect("config");
    let (handler, store) = handler(&config);
    let extra = json!({"alert": {"slack": "#ops", "webhook": ["down", "http://user:pw@127.0.0.1:1/x?key=InlineToken"], "pagerduty": "team"}});

    let error = handler
        .handle(&check(T0, Status::Bad, extra))
        .await
        .expect_err("every channel fails");
    let pending = store.overview().await.expect("overview").pending;
    let stored = pending[0].last_error.clone().unwrap_or_default();
    assert!(
        error.message.starts_with("4 alert deliveries failed: "),
        "{}",
        error.message
    );
    for text in [&error.message, &stored] {
        for secret in [
            "SlackSecretToken",
            "DownSecretToken",
            "PagerDutySecretKey",
            "InlineToken",
            "pw@",
        ] {
            assert!(!text.contains(secret), "{secret} leaked in: {text}");
        }
    }
    // The errors still say which target failed and why.
    assert!(
        error.message.contains("webhook down: cannot connect"),
        "{}",
        error.message
    );
    assert!(
        error.message.contains("slack #ops: HTTP 5"),
        "{}",
        error.message
    );
    assert!(
        error.message.contains("pagerduty team: HTTP 5"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn an_unconfigured_channel_is_an_error_not_a_silent_drop() {
    let (handler, _) = handler(&config("{}"));
    let extra = json!({"alert": {"email": "devops@nerds.com"}});
    let error = handler
        .handle(&check(T0, Status::Bad, extra.clone()))
        .await
        .expect_err("no SMTP configured");
    assert_eq!(
        error.message,
        "1 alert deliveries failed: email devops@nerds.com: the email channel is not configured in the alerts config (permanent, not retried)"
    );
    // Reported once: the engine's retry does not fail again and later checks are not held.
    handler
        .handle(&check(T0, Status::Bad, extra))
        .await
        .expect("given up");
}

#[tokio::test(start_paused = true)]
async fn a_webhook_that_never_answers_times_out() {
    // The kernel accepts the connection, nobody ever answers; Tokio's paused clock jumps to
    // the timeout instead of the test waiting for it.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", silent.local_addr().expect("addr"));
    let (handler, store) = handler(&config(r#"{"timeout_seconds": 3}"#));
    let event = check(T0, Status::Bad, json!({"alert": {"webhook": url}}));

    let started = tokio::time::Instant::now();
    let error = handler.handle(&event).await.expect_err("no answer");
    assert!(error.message.contains(": timed out"), "{}", error.message);
    assert!(started.elapsed() >= std::time::Duration::from_secs(3));
    assert_eq!(store.overview().await.expect("overview").pending.len(), 1);
}

#[tokio::test]
async fn a_permanent_failure_is_reported_once_and_does_not_hold_back_later_messages() {
    let server = HttpServer::start().await;
    server.respond_with(&[404]);
    let config = config(&format!(
        r#"{{"slack": {{"webhook_url": "{}"}}}}"#,
        server.url("/s")
    ));
    let (handler, store) = handler(&config);
    let extra = json!({"alert": {"slack": "#gone"}});
    let firing = check(T0, Status::Bad, extra.clone());

    let error = handler.handle(&firing).await.expect_err("404");
    assert_eq!(
        error.message,
        "1 alert deliveries failed: slack #gone: HTTP 404 Not Found (permanent, not retried)"
    );
    assert!(store.overview().await.expect("overview").pending.is_empty());
    // The engine's retry finds nothing owed; the resolution still goes out.
    handler.handle(&firing).await.expect("nothing owed");
    handler
        .handle(&check(T0 + 60, Status::Good, extra))
        .await
        .expect("resolved delivered");
    let kinds: Vec<Value> = server
        .requests()
        .iter()
        .map(|r| r.json()["text"].clone())
        .collect();
    assert_eq!(kinds.len(), 2);
    assert!(
        kinds[1].as_str().is_some_and(|t| t.contains("*RESOLVED*")),
        "{kinds:?}"
    );
}
