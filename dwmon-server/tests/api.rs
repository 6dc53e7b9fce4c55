//! The JSON API over a real loopback socket, checked against docs/openapi.json: every answer
//! of every documented route is validated against the document's schema for its status, and
//! every documented operation is exercised. Token checks: no token, a malformed header, a
//! wrong token, a read token on a write.

mod support;

use dwmon_alert::{AlertStateStore, MemoryAlertStore};
use dwmon_core::store::{CheckerClaim, Lease, Recorded, Settlement};
use dwmon_core::testutil::{checker, every_minute, RecordingHandler, ScriptedSource};
use dwmon_core::{
    CheckLog, CheckRecord, CheckerStatus, Engine, MemoryStore, PendingDelivery, Row, RowStore,
    Store, StoreError, StoreView,
};
use dwmon_server::auth::{Access, StaticTokens};
use dwmon_server::events::{Events, EventsConfig};
use dwmon_server::push::{Push, PushConfig};
use dwmon_server::tokens::{MemoryTokenStore, Scope, TokenStore};
use dwmon_server::{api, RunnerStats, ServerBuilder};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// A minute boundary.
const T0: i64 = 1_700_000_040;
const READ: &str = "read-token-0123456789abcdef";
const WRITE: &str = "write-token-0123456789abcdef";

/// A small validator for the JSON Schema subset docs/openapi.json uses: `type` (one or a
/// list), `properties`, `required`, `additionalProperties: false`, `items`, `enum`, `anyOf`,
/// `minimum`/`maximum` and `$ref` into `#/components/schemas`.
struct Contract {
    doc: Value,
}

impl Contract {
    fn load() -> Self {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");
        let text = std::fs::read_to_string(path).expect("docs/openapi.json");
        Contract {
            doc: serde_json::from_str(&text).expect("docs/openapi.json is JSON"),
        }
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let name = reference
                    .strip_prefix("#/components/schemas/")
                    .unwrap_or_else(|| panic!("unsupported $ref {reference}"));
                self.resolve(&self.doc["components"]["schemas"][name])
            }
            None => schema,
        }
    }

    fn validate(&self, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
        let schema = self.resolve(schema);
        assert!(!schema.is_null(), "{at}: dangling schema reference");
        if let Some(options) = schema.get("anyOf").and_then(Value::as_array) {
            let errors: Vec<String> = options
                .iter()
                .filter_map(|s| self.validate(s, value, at).err())
                .collect();
            return if errors.len() < options.len() {
                Ok(())
            } else {
                Err(errors.join(" / "))
            };
        }
        if let Some(types) = schema.get("type") {
            let types: Vec<&str> = match types {
                Value::String(t) => vec![t.as_str()],
                Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                _ => panic!("{at}: bad type in schema"),
            };
            let ok = types.iter().any(|t| match *t {
                "object" => value.is_object(),
                "array" => value.is_array(),
                "string" => value.is_string(),
                "integer" => value.is_i64() || value.is_u64(),
                "number" => value.is_number(),
                "boolean" => value.is_boolean(),
                "null" => value.is_null(),
                other => panic!("{at}: unknown type {other}"),
            });
            if !ok {
                return Err(format!("{at}: {value} is not of type {types:?}"));
            }
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
            if !allowed.contains(value) {
                return Err(format!("{at}: {value} is not one of {allowed:?}"));
            }
        }
        if let (Some(min), Some(n)) = (
            schema.get("minimum").and_then(Value::as_f64),
            value.as_f64(),
        ) {
            if n < min {
                return Err(format!("{at}: {n} < minimum {min}"));
            }
        }
        if let Some(object) = value.as_object() {
            let properties = schema.get("properties").and_then(Value::as_object);
            for name in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !object.contains_key(name) {
                    return Err(format!(
                        "{at}: required property {name} is missing in {value}"
                    ));
                }
            }
            for (name, item) in object {
                match properties.and_then(|p| p.get(name)) {
                    Some(s) => self.validate(s, item, &format!("{at}.{name}"))?,
                    None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                        return Err(format!("{at}: property {name} is not in the schema"))
                    }
                    None => {}
                }
            }
        }
        if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
            for (i, item) in array.iter().enumerate() {
                self.validate(items, item, &format!("{at}[{i}]"))?;
            }
        }
        Ok(())
    }

    /// The document's path template matching `path` (`{name}` matches one segment).
    fn template(&self, path: &str) -> Option<String> {
        let wanted: Vec<&str> = path.split('/').collect();
        self.doc["paths"].as_object()?.keys().find_map(|template| {
            let parts: Vec<&str> = template.split('/').collect();
            let matches = parts.len() == wanted.len()
                && parts
                    .iter()
                    .zip(&wanted)
                    .all(|(p, w)| p == w || (p.starts_with('{') && !w.is_empty()));
            matches.then(|| template.clone())
        })
    }

    /// Checks one answer: a documented route answers only documented statuses, with a body
    /// matching the schema of that status. Undocumented routes must answer the error shape.
    fn check(&self, method: &str, path: &str, status: u16, body: &Value) -> Option<String> {
        let route = path.split('?').next().unwrap_or(path);
        let Some(template) = self.template(route) else {
            let error = json!({"$ref": "#/components/schemas/Error"});
            self.validate(&error, body, route)
                .unwrap_or_else(|e| panic!("{method} {path} -> {status}: {e}"));
            return None;
        };
        let operation = &self.doc["paths"][&template][method.to_lowercase()];
        if operation.is_null() {
            // A method the route does not take: 405 in the error shape.
            assert_eq!(status, 405, "{method} {path}");
            let error = json!({"$ref": "#/components/schemas/Error"});
            self.validate(&error, body, route)
                .unwrap_or_else(|e| panic!("{method} {path} -> {status}: {e}"));
            return None;
        }
        let schema =
            &operation["responses"][status.to_string()]["content"]["application/json"]["schema"];
        assert!(
            !schema.is_null(),
            "{method} {path} answered {status}, which docs/openapi.json does not document: {body}"
        );
        self.validate(schema, body, &format!("{method} {path} -> {status}"))
            .unwrap_or_else(|e| panic!("{e}"));
        Some(format!("{} {template} {status}", method.to_lowercase()))
    }

    /// Every documented `method path status`.
    fn operations(&self) -> BTreeSet<String> {
        let mut all = BTreeSet::new();
        for (path, item) in self.doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                for status in operation["responses"].as_object().unwrap().keys() {
                    all.insert(format!("{method} {path} {status}"));
                }
            }
        }
        all
    }
}

struct Api {
    url: String,
    clock: Arc<AtomicI64>,
    alerts: Arc<MemoryAlertStore>,
    contract: Contract,
    seen: std::sync::Mutex<BTreeSet<String>>,
    client: reqwest::Client,
    /// A `ping:beat` token, for `/api/v1/events`.
    ping: String,
    /// A read token of the same token store (events refuse it).
    stored_read: String,
}

impl Api {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.url);
        let mut request = match method {
            "GET" => self.client.get(url),
            "POST" => self.client.post(url),
            "DELETE" => self.client.delete(url),
            _ => unreachable!(),
        };
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await.unwrap();
        let status = answer.status().as_u16();
        let content_type = answer
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let text = answer.text().await.unwrap();
        assert!(
            content_type.starts_with("application/json"),
            "{method} {path}: {content_type} {text}"
        );
        let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        if let Some(operation) = self.contract.check(method, path, status, &value) {
            self.seen.lock().unwrap().insert(operation);
        }
        (status, value)
    }

    /// `POST /api/v1/events` with a raw body, checked against the contract.
    async fn events(&self, token: Option<&str>, body: &str) -> (u16, Value) {
        let mut request = self
            .client
            .post(format!("{}/api/v1/events", self.url))
            .body(body.to_string());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let answer = request.send().await.unwrap();
        let status = answer.status().as_u16();
        let value: Value = answer.json().await.unwrap();
        if let Some(operation) = self
            .contract
            .check("POST", "/api/v1/events", status, &value)
        {
            self.seen.lock().unwrap().insert(operation);
        }
        (status, value)
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        self.call("GET", path, token, None).await
    }
}

/// Three cycles (minutes T0, T0+60, T0+120) over `orders` (GOOD, 1..10) and `payments`
/// (BAD, 5..100, two requirement lines); the API over them with read and write tokens.
async fn api() -> Api {
    let source = Arc::new(ScriptedSource::new());
    let store = Arc::new(MemoryStore::new());
    let handler = Arc::new(RecordingHandler::new());
    let mut orders = checker("orders", vec![every_minute(1, 10, 3600)]);
    orders.query = "SELECT id, created_at FROM orders".into();
    orders.extra = json!({"team": "shop"});
    let engine = Engine::new(source.clone(), store.clone(), handler).with_checkers(vec![
        orders,
        checker(
            "payments",
            vec![every_minute(5, 100, 60), every_minute(0, 100, 60)],
        ),
    ]);
    source.set_rows("orders", vec![Row::new("o1", T0 - 30)]);
    let clock = Arc::new(AtomicI64::new(T0 + 5));
    let stats = {
        let clock = Arc::clone(&clock);
        Arc::new(RunnerStats::new(Arc::new(move || {
            clock.load(Ordering::SeqCst)
        })))
    };
    stats.set_checkers(engine.checkers(), chrono_tz::UTC);
    for minute in [T0, T0 + 60, T0 + 120] {
        clock.store(minute + 5, Ordering::SeqCst);
        let report = engine.run_cycle(minute + 5).await;
        stats.record_cycle(&report);
    }
    let alerts = Arc::new(MemoryAlertStore::new());
    let store: Arc<dyn Store> = store;
    let tokens = Arc::new(MemoryTokenStore::new());
    let ping = tokens
        .create(Scope::parse("ping:beat").unwrap(), "", T0)
        .await
        .unwrap()
        .token
        .expose()
        .to_string();
    let stored_read = tokens
        .create(Scope::Read, "", T0)
        .await
        .unwrap()
        .token
        .expose()
        .to_string();
    // The events' own view of the runner: one push checker, `beat`.
    let push_stats = Arc::new(RunnerStats::new(Arc::new(|| T0 + 125)));
    let mut beat = checker("beat", vec![every_minute(1, 10, 60)]);
    beat.source = "push".into();
    push_stats.set_checkers(vec![beat].into(), chrono_tz::UTC);
    let push = Push::new(
        Arc::new(dwmon_core::ping_log::MemoryPingLog::new(Arc::clone(&store))),
        tokens,
        push_stats,
        PushConfig {
            rate_per_second: 0.01,
            burst: 4.0,
            ..PushConfig::default()
        },
    );
    let events = Events::new(
        push,
        Arc::clone(&store),
        Arc::new(dwmon_server::hosts::HostRegistry::in_memory()),
        EventsConfig {
            body_limit: 1000,
            ..EventsConfig::default()
        },
    );
    let router = ServerBuilder::new(store)
        .stats(stats)
        .alerts(alerts.clone())
        .authorizer(Arc::new(StaticTokens::new([
            (READ, Access::Read),
            (WRITE, Access::Write),
        ])))
        .merge(api::router())
        .merge(events.router())
        .build();
    let url = support::serve_url(router).await;
    Api {
        ping,
        stored_read,
        url,
        clock,
        alerts,
        contract: Contract::load(),
        seen: Default::default(),
        client: reqwest::Client::new(),
    }
}

#[tokio::test]
async fn every_route_answers_as_docs_openapi_json_says() {
    let api = api().await;
    let now = T0 + 125;

    let (status, health) = api.get("/api/v1/status", Some(READ)).await;
    assert_eq!(status, 200);
    assert_eq!(health["cycles"], 3);
    assert_eq!(health["last_cycle"]["minute"], T0 + 120);
    assert_eq!(health["lag_seconds"], 0);
    assert_eq!(health["store_ok"], true);
    assert_eq!(health["outbox"]["pending"], 0);

    let (status, list) = api.get("/api/v1/checkers", Some(READ)).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = list["checkers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["orders", "payments"]);
    assert_eq!(list["state"], "BAD");
    assert_eq!(list["checkers"][0]["state"], "GOOD");
    assert_eq!(list["checkers"][1]["state"], "BAD");
    assert_eq!(list["checkers"][1]["requirements"][0]["min"], 5);
    assert_eq!(list["checkers"][1]["requirements"][0]["status"], "BAD");
    assert_eq!(list["checkers"][1]["requirements"][1]["status"], "GOOD");
    assert_eq!(list["checkers"][0]["next_due"], T0 + 180);
    assert!(
        list["checkers"][0].get("query").is_none(),
        "the list has no queries"
    );

    let (status, orders) = api.get("/api/v1/checkers/orders", Some(WRITE)).await;
    assert_eq!(status, 200);
    assert_eq!(orders["query"], "SELECT id, created_at FROM orders");
    assert_eq!(orders["extra"], json!({"team": "shop"}));
    assert_eq!(orders["last_minute"], T0 + 120);
    assert_eq!(orders["last_minute_local"], "2023-11-14T22:16:00+00:00");
    assert_eq!(api.get("/api/v1/checkers/nope", Some(READ)).await.0, 404);

    // Pages of 2 over payments' 6 checks (3 minutes x 2 lines), newest first.
    let mut seen = Vec::new();
    let mut path = "/api/v1/checkers/payments/checks?limit=2".to_string();
    loop {
        let (status, page) = api.get(&path, Some(READ)).await;
        assert_eq!(status, 200, "{page}");
        let checks = page["checks"].as_array().unwrap();
        assert!(checks.len() <= 2);
        seen.extend(checks.iter().map(|c| {
            (
                c["minute"].as_i64().unwrap(),
                c["requirement_index"].as_u64().unwrap(),
            )
        }));
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                path = format!("/api/v1/checkers/payments/checks?limit=2&cursor={cursor}")
            }
            None => break,
        }
    }
    let expected: Vec<(i64, u64)> = [T0 + 120, T0 + 60, T0]
        .iter()
        .flat_map(|m| [(*m, 1), (*m, 0)])
        .collect();
    assert_eq!(seen, expected);
    let (_, first) = api.get("/api/v1/checkers/orders/checks", Some(READ)).await;
    assert_eq!(first["checks"][0]["count"], 1);
    assert_eq!(first["checks"][0]["status"], "GOOD");
    assert_eq!(first["next_cursor"], Value::Null);
    for bad in [
        "limit=0",
        "limit=1001",
        "limit=x",
        "cursor=abc",
        "cursor=1.-1",
    ] {
        let (status, body) = api
            .get(&format!("/api/v1/checkers/orders/checks?{bad}"), Some(READ))
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("bad_request")),
            "{bad}"
        );
    }
    assert_eq!(
        api.get("/api/v1/checkers/nope/checks", Some(READ)).await.0,
        404
    );

    let (status, alerts) = api
        .get("/api/v1/checkers/payments/alerts", Some(READ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(alerts["alerting"], true);
    assert_eq!(
        api.get("/api/v1/checkers/nope/alerts", Some(READ)).await.0,
        404
    );
    let (status, pings) = api.get("/api/v1/checkers/orders/pings", Some(READ)).await;
    assert_eq!((status, pings), (200, json!({"pings": []})));
    for bad in ["limit=0", "limit=1001", "limit=x"] {
        let path = format!("/api/v1/checkers/orders/pings?{bad}");
        assert_eq!(api.get(&path, Some(READ)).await.0, 400, "{bad}");
    }
    assert_eq!(
        api.get("/api/v1/checkers/nope/pings", Some(READ)).await.0,
        404
    );

    // Pause and unpause need a write token.
    let comment = "\"><img src=x onerror=alert(1)> <script>alert(2)</script>";
    let body = json!({"until": now + 3600, "comment": comment});
    let (status, refused) = api
        .call(
            "POST",
            "/api/v1/checkers/orders/pause",
            Some(READ),
            Some(body.clone()),
        )
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    assert_eq!(api.alerts.pause("orders").await.unwrap(), None);
    let (status, paused) = api
        .call(
            "POST",
            "/api/v1/checkers/orders/pause",
            Some(WRITE),
            Some(body),
        )
        .await;
    assert_eq!(status, 200, "{paused}");
    assert_eq!(paused["paused"]["until"], now + 3600);
    assert_eq!(
        paused["paused"]["comment"], comment,
        "kept as text; pages escape it"
    );
    let saved = api.alerts.pause("orders").await.unwrap().unwrap();
    assert_eq!((saved.since, saved.until), (now, Some(now + 3600)));
    let (_, orders) = api.get("/api/v1/checkers/orders", Some(READ)).await;
    assert_eq!(orders["state"], "PAUSED");
    for (body, why) in [
        (json!({"until": now}), "until not in the future"),
        (json!({"until": "tomorrow"}), "until not a number"),
        (json!({"hours": 2}), "an unknown field"),
        (json!({"comment": "x".repeat(501)}), "a comment too long"),
    ] {
        let (status, _) = api
            .call(
                "POST",
                "/api/v1/checkers/payments/pause",
                Some(WRITE),
                Some(body),
            )
            .await;
        assert_eq!(status, 400, "{why}");
    }
    let (status, _) = api
        .call(
            "POST",
            "/api/v1/checkers/nope/pause",
            Some(WRITE),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 404);
    // No body at all: paused until unpaused.
    let (status, paused) = api
        .call("POST", "/api/v1/checkers/payments/pause", Some(WRITE), None)
        .await;
    assert_eq!((status, &paused["paused"]["until"]), (200, &Value::Null));

    let (status, _) = api
        .call("POST", "/api/v1/checkers/orders/unpause", Some(READ), None)
        .await;
    assert_eq!(status, 403);
    let (status, answer) = api
        .call("POST", "/api/v1/checkers/orders/unpause", Some(WRITE), None)
        .await;
    assert_eq!((status, &answer["was_paused"]), (200, &json!(true)));
    assert_eq!(api.alerts.pause("orders").await.unwrap(), None);
    let (_, answer) = api
        .call("POST", "/api/v1/checkers/orders/unpause", Some(WRITE), None)
        .await;
    assert_eq!(answer["was_paused"], false);
    assert_eq!(
        api.call("POST", "/api/v1/checkers/nope/unpause", Some(WRITE), None)
            .await
            .0,
        404
    );

    alert_history_checks(&api, now, comment).await;

    // The runner stalls: the lag shows it.
    api.clock.store(T0 + 180 + 300, Ordering::SeqCst);
    let (_, health) = api.get("/api/v1/status", Some(READ)).await;
    assert_eq!(health["lag_seconds"], 300);

    // Unknown routes and methods answer the error shape too.
    let (status, body) = api.get("/api/v1/nope", Some(READ)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, body) = api.get("/api/v1/checkers/orders/pause", Some(WRITE)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (405, Some("method_not_allowed"))
    );

    token_checks(&api).await;
    events_checks(&api).await;

    // Every documented success, 400, 401, 403 and 404 answer was seen (503 needs a broken
    // store: a_store_that_cannot_be_read_answers_503).
    let seen = api.seen.lock().unwrap().clone();
    let missing: Vec<String> = api
        .contract
        .operations()
        .into_iter()
        .filter(|op| !op.ends_with(" 503") && !seen.contains(op))
        .collect();
    assert!(
        missing.is_empty(),
        "documented but never exercised: {missing:#?}"
    );
}

/// `GET .../alerts/history`: orders went pending at T0+60 and FIRING (notified) at T0+120,
/// and was paused and unpaused at `now`; pages of one walk it newest first, and an entry
/// recorded meanwhile neither shifts nor hides the rest.
async fn alert_history_checks(api: &Api, now: i64, comment: &str) {
    let notification: dwmon_alert::Notification = serde_json::from_value(json!({
        "version": 1, "idempotency_key": format!("orders/0/{}/firing", T0 + 120),
        "kind": "firing", "requirement_index": 0, "incident_key": "orders/0",
        "event_key": format!("orders/0/{}", T0 + 120), "checker": "orders",
        "severity": "critical", "at": T0 + 120, "minute": T0 + 120,
        "minute_local": "2023-11-14T22:16:00+00:00", "timezone": "UTC"
    }))
    .unwrap();
    let state = |phase, bad| dwmon_alert::AlertState {
        phase,
        consecutive_bad: bad,
        ..dwmon_alert::AlertState::default()
    };
    for (at, alert, notifications) in [
        (T0 + 60, state(dwmon_alert::AlertPhase::Ok, 1), vec![]),
        (
            T0 + 120,
            state(dwmon_alert::AlertPhase::Firing, 2),
            vec![dwmon_alert::PendingNotification::new(notification, vec![])],
        ),
    ] {
        let update = dwmon_alert::AlertUpdate {
            checker: "orders".into(),
            alert: Some((0, alert)),
            notifications,
            at: Some(at),
            ..Default::default()
        };
        api.alerts.apply(&update).await.unwrap();
    }
    let path = "/api/v1/checkers/orders/alerts/history";
    let (status, all) = api.get(path, Some(READ)).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["alerting"], true);
    assert_eq!(all["next_cursor"], Value::Null);
    let lines: Vec<(i64, &str, &str)> = all["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["at"].as_i64().unwrap(),
                e["from"].as_str().unwrap(),
                e["to"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            (now, "paused", "active"),
            (now, "active", "paused"),
            (T0 + 120, "pending", "firing"),
            (T0 + 60, "ok", "pending"),
        ]
    );
    let history = &all["history"];
    assert_eq!(history[0]["reason"], "unpaused from the API");
    assert_eq!(
        history[1]["reason"], comment,
        "kept as text; pages escape it"
    );
    assert_eq!(history[2]["notification"], "firing");
    assert_eq!(history[2]["requirement_index"], 0);
    assert_eq!(history[2]["at_local"], "2023-11-14T22:16:00+00:00");
    assert_eq!(history[0]["requirement_index"], Value::Null);

    // Pages of one; a change recorded after the first page does not move the cursor.
    let mut walked = Vec::new();
    let mut next = format!("{path}?limit=1");
    loop {
        let (status, page) = api.get(&next, Some(READ)).await;
        assert_eq!(status, 200, "{page}");
        assert!(page["history"].as_array().unwrap().len() <= 1);
        walked.extend(page["history"].as_array().unwrap().iter().cloned());
        if walked.len() == 1 {
            let update = dwmon_alert::AlertUpdate {
                checker: "orders".into(),
                alert: Some((0, state(dwmon_alert::AlertPhase::Ok, 0))),
                at: Some(now + 60),
                ..Default::default()
            };
            api.alerts.apply(&update).await.unwrap();
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => next = format!("{path}?limit=1&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(&Value::Array(walked), history);
    for bad in ["limit=0", "limit=1001", "cursor=abc", "cursor=1.x"] {
        let (status, body) = api.get(&format!("{path}?{bad}"), Some(READ)).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("bad_request")),
            "{bad}"
        );
    }
    let (status, _) = api
        .get("/api/v1/checkers/nope/alerts/history", Some(READ))
        .await;
    assert_eq!(status, 404);
}

/// `POST /api/v1/events`: every documented answer but 503 (tests/events.rs has it).
async fn events_checks(api: &Api) {
    let ping = Some(api.ping.as_str());
    let good = r#"{"service": "beat", "state": "ok"}"#;
    assert_eq!(api.events(ping, good).await.0, 200);
    let (status, answer) = api
        .events(
            ping,
            &format!("{good}\n{{\"service\": \"beat\", \"state\": \"OK\"}}"),
        )
        .await;
    assert_eq!((status, &answer["errors"][0]["line"]), (207, &json!(2)));
    assert_eq!(api.events(ping, "nonsense").await.0, 400);
    assert_eq!(api.events(None, good).await.0, 401);
    assert_eq!(api.events(Some(&api.stored_read), good).await.0, 403);
    assert_eq!(api.events(ping, &"x".repeat(1001)).await.0, 413);
    // The bucket of 4 is spent after 2 + 2 events.
    assert_eq!(api.events(ping, &format!("{good}\n{good}")).await.0, 200);
    let (status, answer) = api.events(ping, good).await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (429, &json!("rate_limited"))
    );
}

/// No token, a malformed header, a wrong token, and a read token on a write, on every route.
async fn token_checks(api: &Api) {
    let reads = [
        "/api/v1/status",
        "/api/v1/checkers",
        "/api/v1/checkers/orders",
        "/api/v1/checkers/orders/checks",
        "/api/v1/checkers/orders/alerts",
        "/api/v1/checkers/orders/alerts/history",
        "/api/v1/checkers/orders/pings",
    ];
    let writes = [
        "/api/v1/checkers/orders/pause",
        "/api/v1/checkers/orders/unpause",
    ];
    for (method, path) in reads
        .iter()
        .map(|p| ("GET", *p))
        .chain(writes.iter().map(|p| ("POST", *p)))
    {
        let (status, body) = api.call(method, path, None, None).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (401, Some("unauthorized")),
            "{path}"
        );
        let (status, _) = api.call(method, path, Some("not-a-token"), None).await;
        assert_eq!(status, 401, "wrong token on {path}");
        let url = format!("{}{path}", api.url);
        let request = match method {
            "GET" => api.client.get(url),
            _ => api.client.post(url),
        };
        let answer = request
            .header("authorization", format!("Basic {READ}"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 401, "malformed header on {path}");
        assert_eq!(
            answer
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok()),
            Some("Bearer realm=\"dwmon\"")
        );
        if method == "POST" {
            let (status, _) = api.call(method, path, Some(READ), None).await;
            assert_eq!(status, 403, "read token on {path}");
        }
    }
    assert!(api.alerts.pause("orders").await.unwrap().is_none());
}

#[tokio::test]
async fn a_store_that_cannot_be_read_answers_503_in_the_error_shape() {
    let store: Arc<dyn Store> = Arc::new(BrokenStore::default());
    let router = ServerBuilder::new(store)
        .authorizer(Arc::new(StaticTokens::new([(READ, Access::Read)])))
        .merge(api::router())
        .build();
    let url = support::serve_url(router).await;
    let contract = Contract::load();
    for path in ["/api/v1/checkers", "/api/v1/checkers/orders"] {
        let answer = reqwest::Client::new()
            .get(format!("{url}{path}"))
            .bearer_auth(READ)
            .send()
            .await
            .unwrap();
        let status = answer.status().as_u16();
        let body: Value = answer.json().await.unwrap();
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (503, Some("unavailable"))
        );
        contract.check("GET", path, status, &body);
    }
}

#[tokio::test]
async fn without_an_authorizer_every_token_is_refused() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let router = ServerBuilder::new(store)
        .public(true)
        .merge(api::router())
        .build();
    let url = support::serve_url(router).await;
    let client = reqwest::Client::new();
    // Public mode opens the page and badges, not the API.
    let anonymous = client
        .get(format!("{url}/api/v1/checkers"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let token = client
        .get(format!("{url}/api/v1/checkers"))
        .bearer_auth(READ)
        .send()
        .await
        .unwrap();
    assert_eq!(token.status().as_u16(), 401);
}

/// A store whose every read fails, as a locked or vanished file would (its alert state, kept
/// apart, works).
#[derive(Default)]
struct BrokenStore {
    alerts: MemoryAlertStore,
}

dwmon_core::delegate_alert_state_store!(BrokenStore => alerts);

fn broken<T>() -> Result<T, StoreError> {
    Err(StoreError::backend("disk on fire"))
}

#[async_trait::async_trait]
impl RowStore for BrokenStore {
    async fn insert_first_seen(&self, _: &str, _: &[Row]) -> Result<u64, StoreError> {
        broken()
    }
    async fn count_windows(&self, _: &str, _: &[(i64, i64)]) -> Result<Vec<u64>, StoreError> {
        broken()
    }
    async fn row_timestamps(&self, _: &str, _: i64, _: i64) -> Result<Vec<i64>, StoreError> {
        broken()
    }
    async fn purge(&self, _: &str, _: i64) -> Result<u64, StoreError> {
        broken()
    }
}

#[async_trait::async_trait]
impl CheckLog for BrokenStore {
    async fn last_checked_minute(&self, _: &str) -> Result<Option<i64>, StoreError> {
        broken()
    }
    async fn last_checked_minutes(&self, _: &str) -> Result<Vec<(usize, i64)>, StoreError> {
        broken()
    }
    async fn claim(&self, _: &[String], _: i64) -> Result<Vec<CheckerClaim>, StoreError> {
        broken()
    }
    async fn record(&self, _: &CheckerClaim, _: &[CheckRecord]) -> Result<Recorded, StoreError> {
        broken()
    }
    async fn claim_deliveries(
        &self,
        _: usize,
        _: Lease,
    ) -> Result<Vec<PendingDelivery>, StoreError> {
        broken()
    }
    async fn settle(&self, _: &str, _: &Settlement) -> Result<(), StoreError> {
        broken()
    }
    async fn set_last_error(&self, _: &str, _: Option<(i64, &str)>) -> Result<(), StoreError> {
        broken()
    }
}

#[async_trait::async_trait]
impl StoreView for BrokenStore {
    async fn status(&self) -> Result<Vec<CheckerStatus>, StoreError> {
        broken()
    }
    async fn checks_before(
        &self,
        _: &str,
        _: (i64, usize),
        _: usize,
    ) -> Result<Vec<CheckRecord>, StoreError> {
        broken()
    }
}

/// A push checker's pings, sent over HTTP to the same server, come back from
/// `/api/v1/checkers/{name}/pings` newest first, with their bodies as sent.
#[tokio::test]
async fn a_push_checkers_pings_answer_as_docs_openapi_json_says() {
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
    let clock = Arc::new(AtomicI64::new(T0 + 5));
    let stats = {
        let clock = Arc::clone(&clock);
        Arc::new(RunnerStats::new(Arc::new(move || {
            clock.load(Ordering::SeqCst)
        })))
    };
    let job = dwmon_core::checker_file::parse_checker(
        "job.dwmon",
        "__SOURCE__\npush\n__REQUIREMENTS__\n\
         CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM1 MAXNUM9 LOOKBACKSECONDS60\n",
    )
    .unwrap();
    stats.set_checkers(vec![job].into(), chrono_tz::UTC);
    let push = Push::new(
        Arc::new(dwmon_core::ping_log::MemoryPingLog::new(Arc::clone(&store))),
        tokens.clone(),
        Arc::clone(&stats),
        PushConfig::default(),
    );
    let router = ServerBuilder::new(store)
        .stats(stats)
        .authorizer(Arc::new(StaticTokens::new([(READ, Access::Read)])))
        .tokens(tokens)
        .push(push)
        .merge(api::router())
        .build();
    let url = support::serve_url(router).await;
    let api = Api {
        url: url.clone(),
        clock: Arc::clone(&clock),
        alerts: Arc::new(MemoryAlertStore::new()),
        contract: Contract::load(),
        seen: Default::default(),
        client: reqwest::Client::new(),
        ping: ping.clone(),
        stored_read: String::new(),
    };
    let (status, empty) = api.get("/api/v1/checkers/job/pings", Some(READ)).await;
    assert_eq!((status, empty), (200, json!({"pings": []})));
    let client = reqwest::Client::new();
    let hostile = "done <script>alert(1)</script> \"><img src=x onerror=alert(2)>";
    for (at, path, body) in [
        (T0 + 10, format!("/ping/{ping}/start?rid=r1"), ""),
        (T0 + 40, format!("/ping/{ping}?rid=r1"), hostile),
        (T0 + 50, format!("/ping/{ping}/3"), "exit 3"),
    ] {
        clock.store(at, Ordering::SeqCst);
        let answer = client
            .post(format!("{url}{path}"))
            .header("user-agent", "cron/1")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{path}");
    }
    let (status, pings) = api.get("/api/v1/checkers/job/pings", Some(READ)).await;
    assert_eq!(status, 200);
    let pings = pings["pings"].as_array().unwrap();
    let kinds: Vec<&str> = pings.iter().map(|p| p["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["fail", "success", "start"], "newest first");
    assert_eq!(pings[0]["exit_status"], 3);
    assert_eq!(
        pings[1]["body"], hostile,
        "the body as sent (JSON escapes it)"
    );
    assert_eq!(pings[1]["rid"], "r1");
    assert_eq!(pings[1]["duration_seconds"], 30);
    assert_eq!(pings[1]["time"], T0 + 40);
    assert_eq!(pings[1]["time_local"], "2023-11-14T22:14:40+00:00");
    assert_eq!(pings[1]["user_agent"], "cron/1");
    let (_, one) = api
        .get("/api/v1/checkers/job/pings?limit=1", Some(READ))
        .await;
    assert_eq!(one["pings"].as_array().unwrap().len(), 1);
    assert_eq!(api.get("/api/v1/checkers/job/pings", None).await.0, 401);
}

/// An unpause is a change a person made at a time: it is in the alert history at the
/// runner's clock, after the pause it lifts.
#[tokio::test]
async fn an_unpause_from_the_api_is_in_the_alert_history() {
    use dwmon_alert::HistoryState;
    let api = api().await;
    let body = json!({"comment": "deploy"});
    let (status, _) = api
        .call(
            "POST",
            "/api/v1/checkers/orders/pause",
            Some(WRITE),
            Some(body),
        )
        .await;
    assert_eq!(status, 200);
    api.clock.store(T0 + 150, Ordering::SeqCst);
    let (status, answer) = api
        .call("POST", "/api/v1/checkers/orders/unpause", Some(WRITE), None)
        .await;
    assert_eq!((status, &answer["was_paused"]), (200, &json!(true)));
    let history = api.alerts.history("orders", 10).await.unwrap();
    let rows: Vec<(i64, HistoryState, HistoryState)> =
        history.iter().map(|e| (e.at, e.from, e.to)).collect();
    assert_eq!(
        rows,
        [
            (T0 + 150, HistoryState::Paused, HistoryState::Active),
            (T0 + 125, HistoryState::Active, HistoryState::Paused),
        ],
        "newest first"
    );
}
