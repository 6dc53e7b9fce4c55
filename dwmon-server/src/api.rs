//! The JSON API under `/api/v1` (docs/openapi.json is its contract; docs/SERVER.md explains
//! it): checkers, one checker, its checks (cursor pagination, records as the CLI prints
//! them), its alert states and their history, its pings, pause/unpause, and the runner's
//! health.
//!
//! Every request needs a token (`Authorization: Bearer TOKEN`): a read token for `GET`, a
//! write token for pause/unpause. Errors are `{"error": {"code": "...", "message": "..."}}`.

use crate::auth::{self, Access};
use crate::view::{self, CheckerView, Overview};
use crate::ServerState;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use dwmon_alert::{AlertTransition, Pause};
use serde_json::{json, Value};

/// Checks per page when `limit` is not given.
pub const DEFAULT_PAGE: usize = 100;
/// The largest `limit` of a page of checks.
pub const MAX_PAGE: usize = 1000;
/// The longest pause comment kept (longer ones are refused).
pub const MAX_COMMENT_CHARS: usize = 500;

/// An API error: its HTTP status, a stable `code` and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code (`unauthorized`, `forbidden`, `not_found`,
    /// `bad_request`, `method_not_allowed`, `unavailable`).
    pub code: &'static str,
    /// What happened, for people.
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 503.
    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            [(header::CACHE_CONTROL, "no-store")],
            Json(json!({"error": {"code": self.code, "message": self.message}})),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"dwmon\""),
            );
        }
        response
    }
}

/// The access of a request (bearer token; the session cookie when `cookies`), at least
/// `needed`.
///
/// # Errors
/// 401 without a valid token where one is needed, 403 when the token grants less than
/// `needed`, 503 when the tokens cannot be read.
pub async fn require(
    state: &ServerState,
    headers: &HeaderMap,
    cookies: bool,
    needed: Access,
) -> Result<Access, ApiError> {
    let access = access(state, headers, cookies).await?;
    let has_token = matches!(auth::request_token(headers, cookies), Ok(Some(_)));
    match access {
        Some(access) if access >= needed => Ok(access),
        Some(access) if has_token => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "this token grants {} access; this needs {}",
                access.as_str(),
                needed.as_str()
            ),
        )),
        _ => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            format!(
                "this needs a {} token: Authorization: Bearer TOKEN",
                needed.as_str()
            ),
        )),
    }
}

/// The access of a request: its token's, else the anonymous access of the server
/// (`Some(Public)` in public mode). A token that is wrong is refused, never downgraded to
/// anonymous.
///
/// # Errors
/// 401 for a malformed `Authorization` header or an unknown token, 503 when the tokens
/// cannot be read.
pub async fn access(
    state: &ServerState,
    headers: &HeaderMap,
    cookies: bool,
) -> Result<Option<Access>, ApiError> {
    let unauthorized = |message: &str| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            message.to_string(),
        )
    };
    let token = auth::request_token(headers, cookies)
        .map_err(|()| unauthorized("the Authorization header is not \"Bearer TOKEN\""))?;
    let Some((token, _)) = token else {
        return Ok(state.anonymous);
    };
    let Some(authorizer) = &state.authorizer else {
        return Err(unauthorized(
            "this server has no tokens configured (see `dwmon token`)",
        ));
    };
    match authorizer.check(&token).await {
        Ok(Some(access)) => Ok(Some(access)),
        Ok(None) => Err(unauthorized("unknown or revoked token")),
        Err(e) => Err(ApiError::unavailable(e.to_string())),
    }
}

/// The `/api/v1` routes.
pub fn router() -> Router<ServerState> {
    Router::new()
        .route("/api/v1/status", get(status))
        .route("/api/v1/checkers", get(checkers))
        .route("/api/v1/checkers/{name}", get(checker))
        .route("/api/v1/checkers/{name}/checks", get(checks))
        .route("/api/v1/checkers/{name}/alerts", get(alerts))
        .route("/api/v1/checkers/{name}/alerts/history", get(alert_history))
        .route("/api/v1/checkers/{name}/pings", get(pings))
        .route("/api/v1/checkers/{name}/pause", post(pause))
        .route("/api/v1/checkers/{name}/unpause", post(unpause))
        .route("/api/v1", get(not_found).post(not_found))
        .route("/api/v1/{*rest}", get(not_found).post(not_found))
        .method_not_allowed_fallback(method_not_allowed)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such API route (see docs/openapi.json)")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take this method",
    )
}

/// What an API handler answers: its response, or an error in the API's JSON shape.
type ApiResult = Result<Response, ApiError>;

/// `body` as JSON that no cache keeps (every read of the API is live).
fn no_store(body: Value) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

fn store_error(e: impl std::fmt::Display) -> ApiError {
    ApiError::unavailable(format!("cannot read the store: {e}"))
}

/// RFC 3339 in `zone` (`2026-11-22T10:04:00-05:00`).
pub fn local(t: i64, zone: chrono_tz::Tz) -> String {
    match chrono::DateTime::from_timestamp(t, 0) {
        Some(t) => t
            .with_timezone(&zone)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
        None => t.to_string(),
    }
}

fn pause_json(pause: &Pause) -> Value {
    json!({"since": pause.since, "until": pause.until, "comment": pause.comment})
}

/// A checker as the API shows it; with `detail` also its query and `__EXTRA__`.
pub fn checker_json(c: &CheckerView, detail: bool) -> Value {
    let zone = c.zone;
    let requirements: Vec<Value> = c
        .requirements
        .iter()
        .map(|r| {
            json!({
                "requirement_index": r.index,
                "requirement": r.requirement,
                "min": r.bounds.map(|b| b.0),
                "max": r.bounds.map(|b| b.1),
                "status": r.last.as_ref().map(|l| l.status),
                "count": r.last.as_ref().map(|l| l.count),
                "minute": r.last.as_ref().map(|l| l.minute),
                "minute_local": r.last.as_ref().map(|l| local(l.minute, zone)),
                "firing": r.firing,
                "next_due": r.next_due,
            })
        })
        .collect();
    let mut value = json!({
        "name": c.name,
        "state": c.state,
        "timezone": zone.name(),
        "source": c.checker.as_ref().map(|k| k.source.as_str()),
        "last_minute": c.last_minute(),
        "last_minute_local": c.last_minute().map(|m| local(m, zone)),
        "next_due": c.next_due(),
        "next_due_local": c.next_due().map(|m| local(m, zone)),
        "requirements": requirements,
        "paused": c.pause.as_ref().map(pause_json),
        "last_error": c.last_error().map(|(minute, error)| json!({
            "minute": minute,
            "minute_local": local(*minute, zone),
            "error": error,
        })),
        "pending_deliveries": c.status.as_ref().map_or(0, |s| s.pending_deliveries),
        "stored_rows": c.status.as_ref().map_or(0, |s| s.stored_rows),
    });
    if detail {
        if let Some(object) = value.as_object_mut() {
            object.insert(
                "query".into(),
                json!(c.checker.as_ref().map(|k| k.query.as_str())),
            );
            object.insert(
                "extra".into(),
                c.checker.as_ref().map_or(Value::Null, |k| k.extra.clone()),
            );
        }
    }
    value
}

async fn overview(state: &ServerState) -> Result<Overview, ApiError> {
    view::load(state).await.map_err(store_error)
}

/// The checker named `name` (only its status is read from the store).
async fn one(state: &ServerState, name: &str) -> Result<CheckerView, ApiError> {
    view::load_one(state, name)
        .await
        .map_err(store_error)?
        .ok_or_else(|| no_such_checker(name))
}

fn no_such_checker(name: &str) -> ApiError {
    ApiError::not_found(format!("no checker named {name:?}"))
}

async fn status(State(state): State<ServerState>, headers: HeaderMap) -> ApiResult {
    require(&state, &headers, false, Access::Read).await?;
    let snapshot = state.stats.as_ref().map(|s| s.snapshot());
    let now = view::now(&state);
    let outbox = state.store.outbox_summary().await;
    let store_error = outbox.as_ref().err().map(ToString::to_string);
    let outbox = outbox.ok();
    let body = json!({
        "now": now,
        "runner": snapshot.is_some(),
        "started_at": snapshot.as_ref().map(|s| s.started_at),
        "cycles": snapshot.as_ref().map_or(0, |s| s.cycles),
        "last_cycle": snapshot.as_ref().and_then(|s| s.last_cycle).map(|c| json!({
            "now": c.now,
            "minute": c.minute,
            "finished_at": c.finished_at,
            "duration_seconds": c.duration.as_secs_f64(),
        })),
        "lag_seconds": snapshot.as_ref().map(|s| s.lag_at(now)),
        "checkers": snapshot.as_ref().map_or(0, |s| s.checkers.len()),
        "outbox": outbox.map(|o| json!({
            "pending": o.pending,
            "oldest_minute": o.oldest_minute,
            "oldest_age_seconds": o.oldest_minute.map(|m| now.saturating_sub(m).max(0)),
        })),
        "store_ok": store_error.is_none(),
        "store_error": store_error,
    });
    Ok(no_store(body))
}

async fn checkers(State(state): State<ServerState>, headers: HeaderMap) -> ApiResult {
    require(&state, &headers, false, Access::Read).await?;
    let overview = overview(&state).await?;
    let list: Vec<Value> = overview
        .checkers
        .iter()
        .map(|c| checker_json(c, false))
        .collect();
    let body = json!({"now": overview.now, "state": overview.state(), "checkers": list});
    Ok(no_store(body))
}

async fn checker(
    State(state): State<ServerState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult {
    require(&state, &headers, false, Access::Read).await?;
    let c = one(&state, &name).await?;
    Ok(no_store(checker_json(&c, true)))
}

/// The query of `GET .../checks`.
#[derive(Debug, serde::Deserialize)]
struct PageQuery {
    limit: Option<String>,
    cursor: Option<String>,
}

/// The `limit=` of a page: 1 to [`MAX_PAGE`], `default` when absent.
fn parse_limit(text: Option<&str>, default: usize) -> Result<usize, ApiError> {
    match text.map(str::parse::<usize>) {
        None => Ok(default),
        Some(Ok(n)) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::bad_request(format!(
            "limit must be 1 to {MAX_PAGE}"
        ))),
    }
}

/// Parses a cursor `MINUTE.INDEX` (as returned in `next_cursor`).
fn parse_cursor(text: &str) -> Option<(i64, usize)> {
    let (minute, index) = text.split_once('.')?;
    Some((minute.parse().ok()?, index.parse().ok()?))
}

async fn checks(
    State(state): State<ServerState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult {
    require(&state, &headers, false, Access::Read).await?;
    let Ok(Query(query)) = query else {
        return Err(ApiError::bad_request(
            "query parameters: limit=N&cursor=CURSOR",
        ));
    };
    let limit = parse_limit(query.limit.as_deref(), DEFAULT_PAGE)?;
    let cursor = match query.cursor.as_deref().map(parse_cursor) {
        None => None,
        Some(Some(cursor)) => Some(cursor),
        Some(None) => {
            return Err(ApiError::bad_request(
                "cursor must be a next_cursor value of an earlier page",
            ))
        }
    };
    one(&state, &name).await?;
    // One more than asked tells whether there is a next page.
    let fetched = match cursor {
        None => state.store.recent_checks(&name, limit + 1).await,
        Some(before) => state.store.checks_before(&name, before, limit + 1).await,
    };
    let mut records = fetched.map_err(store_error)?;
    let more = records.len() > limit;
    records.truncate(limit);
    let next_cursor = more
        .then(|| records.last())
        .flatten()
        .map(|r| format!("{}.{}", r.minute, r.requirement_index));
    let body = json!({"checks": records, "next_cursor": next_cursor});
    Ok(no_store(body))
}

async fn alerts(
    State(state): State<ServerState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult {
    require(&state, &headers, false, Access::Read).await?;
    let (c, alert_overview) = view::load_one_with_alerts(&state, &name)
        .await
        .map_err(store_error)?;
    c.ok_or_else(|| no_such_checker(&name))?;
    let alert_overview = alert_overview
        .transpose()
        .map_err(|e| ApiError::unavailable(format!("cannot read the alert states: {e}")))?;
    let now = view::now(&state);
    let body = match alert_overview {
        None => {
            json!({"alerting": false, "requirements": [], "source": null, "pause": null, "pending_notifications": 0})
        }
        Some(o) => {
            let requirements: Vec<Value> = o
                .alerts
                .iter()
                .filter(|e| e.checker == name)
                .map(|e| {
                    let s = &e.state;
                    json!({
                        "requirement_index": e.requirement_index,
                        "phase": match s.phase {
                            dwmon_alert::AlertPhase::Firing => "FIRING",
                            dwmon_alert::AlertPhase::Ok => "OK",
                        },
                        "severity": s.severity.as_str(),
                        "consecutive_bad": s.consecutive_bad,
                        "consecutive_good": s.consecutive_good,
                        "bad_since": s.bad_since,
                        "firing_since": s.firing_since,
                        "last_minute": s.last_minute,
                        "last_notified": s.last_notified,
                    })
                })
                .collect();
            let source = o.sources.iter().find(|(c, _)| *c == name).map(|(_, s)| {
                json!({"failing": s.failing, "since": s.since, "last_error_minute": s.last_error_minute, "last_error": s.last_error})
            });
            let pause = o
                .pauses
                .iter()
                .find(|(c, p)| *c == name && p.is_active(now))
                .map(|(_, p)| pause_json(p));
            let pending = o
                .pending
                .iter()
                .filter(|p| p.notification.checker == name)
                .count();
            json!({
                "alerting": true,
                "requirements": requirements,
                "source": source,
                "pause": pause,
                "pending_notifications": pending,
            })
        }
    };
    Ok(no_store(body))
}

/// History entries per page of `GET .../alerts/history` when `limit` is not given.
pub const DEFAULT_HISTORY: usize = 100;

/// A page of `checker`'s alert state history, newest first: at most `limit` entries after
/// `cursor` (`(at, seen)`: skip the entries newer than `at` and the first `seen` of those at
/// `at`), and the cursor of the next page (`None` on the last).
///
/// Entries are ordered by time, newest first (the store's order within one second), so a
/// cursor keeps its place however many entries are recorded meanwhile; an entry recorded in
/// the very second of the cursor may be repeated, never skipped. Empty without an alert
/// store.
///
/// # Errors
/// When the alert store cannot be read.
pub async fn alert_history_page(
    state: &ServerState,
    checker: &str,
    cursor: Option<(i64, usize)>,
    limit: usize,
) -> Result<(Vec<AlertTransition>, Option<(i64, usize)>), dwmon_alert::AlertStoreError> {
    let Some(alerts) = &state.alerts else {
        return Ok((Vec::new(), None));
    };
    // The store keeps at most HISTORY_PER_CHECKER entries: a page reads them all.
    let mut entries = alerts
        .history(checker, dwmon_core::alert_state::HISTORY_PER_CHECKER)
        .await?;
    entries.sort_by_key(|e| std::cmp::Reverse(e.at));
    let start = match cursor {
        None => 0,
        Some((at, seen)) => {
            let newer = entries.partition_point(|e| e.at > at);
            let same = entries[newer..].partition_point(|e| e.at == at);
            newer + seen.min(same)
        }
    };
    let end = start.saturating_add(limit).min(entries.len());
    let next = (end < entries.len() && end > start).then(|| {
        let at = entries[end - 1].at;
        let first = entries.partition_point(|e| e.at > at);
        (at, end - first)
    });
    entries.truncate(end);
    entries.drain(..start);
    Ok((entries, next))
}

async fn alert_history(
    State(state): State<ServerState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult {
    require(&state, &headers, false, Access::Read).await?;
    let Ok(Query(query)) = query else {
        return Err(ApiError::bad_request(
            "query parameters: limit=N&cursor=CURSOR",
        ));
    };
    let limit = parse_limit(query.limit.as_deref(), DEFAULT_HISTORY)?;
    let cursor = match query.cursor.as_deref().map(parse_history_cursor) {
        None => None,
        Some(Some(cursor)) => Some(cursor),
        Some(None) => {
            return Err(ApiError::bad_request(
                "cursor must be a next_cursor value of an earlier page",
            ))
        }
    };
    let c = one(&state, &name).await?;
    let (entries, next) = alert_history_page(&state, &name, cursor, limit)
        .await
        .map_err(|e| ApiError::unavailable(format!("cannot read the alert history: {e}")))?;
    let history: Vec<Value> = entries
        .iter()
        .map(|e| {
            json!({
                "at": e.at,
                "at_local": local(e.at, c.zone),
                "requirement_index": e.requirement_index,
                "from": e.from,
                "to": e.to,
                "notification": e.notification.map(|k| k.as_str()),
                "idempotency_key": e.idempotency_key,
                "reason": e.reason,
            })
        })
        .collect();
    let body = json!({
        "alerting": state.alerts.is_some(),
        "history": history,
        "next_cursor": next.map(|(at, seen)| format!("{at}.{seen}")),
    });
    Ok(no_store(body))
}

/// Parses a history cursor `AT.SEEN` (as returned in `next_cursor`).
fn parse_history_cursor(text: &str) -> Option<(i64, usize)> {
    let (at, seen) = text.split_once('.')?;
    Some((at.parse().ok()?, seen.parse().ok()?))
}

/// Pings per answer of `GET .../pings` when `limit` is not given.
pub const DEFAULT_PINGS: usize = 50;

/// The last `limit` pings of `checker`, newest first (none without ping routes), from the
/// ping log ([`crate::push::Push::history`]).
///
/// # Errors
/// When the ping log cannot be read.
pub async fn recent_pings(
    state: &ServerState,
    checker: &str,
    limit: usize,
) -> Result<Vec<crate::push::PingRecord>, dwmon_core::StoreError> {
    match &state.push {
        Some(push) => push.history(checker, limit).await,
        None => Ok(Vec::new()),
    }
}

/// The query of `GET .../pings`.
#[derive(Debug, serde::Deserialize)]
struct PingsQuery {
    limit: Option<String>,
}

async fn pings(
    State(state): State<ServerState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    query: Result<Query<PingsQuery>, QueryRejection>,
) -> ApiResult {
    require(&state, &headers, false, Access::Read).await?;
    let Ok(Query(query)) = query else {
        return Err(ApiError::bad_request("query parameters: limit=N"));
    };
    let limit = parse_limit(query.limit.as_deref(), DEFAULT_PINGS)?;
    let c = one(&state, &name).await?;
    let zone = c.zone;
    let pings: Vec<Value> = recent_pings(&state, &name, limit)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?
        .into_iter()
        .map(|p| {
            let mut value = json!(p);
            if let Some(object) = value.as_object_mut() {
                // The URL names the checker already.
                object.remove("checker");
                object.insert("time_local".into(), json!(local(p.time, zone)));
            }
            value
        })
        .collect();
    Ok(no_store(json!({"pings": pings})))
}

/// The body of `POST .../pause`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PauseRequest {
    /// The pause ends by itself then (Unix time; absent: until unpaused).
    pub until: Option<i64>,
    /// Why, for the status views (one line, at most [`MAX_COMMENT_CHARS`]).
    pub comment: Option<String>,
}

/// Pauses `name` at `now` with `request`, through the server's alert store.
///
/// # Errors
/// 400 for an `until` not in the future or a comment too long, 404 for an unknown checker,
/// 503 without an alert store or when it cannot be written.
pub async fn set_pause(
    state: &ServerState,
    name: &str,
    request: PauseRequest,
) -> Result<Pause, ApiError> {
    one(state, name).await?;
    let now = view::now(state);
    if let Some(until) = request.until.filter(|u| *u <= now) {
        return Err(ApiError::bad_request(format!(
            "until ({until}) is not in the future (now is {now})"
        )));
    }
    let comment = request
        .comment
        .map(|c| {
            c.chars()
                .map(|ch| if ch.is_control() { ' ' } else { ch })
                .collect::<String>()
                .trim()
                .to_string()
        })
        .filter(|c| !c.is_empty());
    if comment
        .as_ref()
        .is_some_and(|c| c.chars().count() > MAX_COMMENT_CHARS)
    {
        return Err(ApiError::bad_request(format!(
            "comment is longer than {MAX_COMMENT_CHARS} characters"
        )));
    }
    let alerts = state
        .alerts
        .as_ref()
        .ok_or_else(|| ApiError::unavailable("pausing needs the alert store of a --store file"))?;
    let pause = Pause {
        since: now,
        until: request.until,
        comment,
    };
    alerts
        .set_pause(name, Some(&pause))
        .await
        .map_err(|e| ApiError::unavailable(format!("cannot save the pause: {e}")))?;
    tracing::info!(checker = name, "paused from the API");
    Ok(pause)
}

/// Lifts `name`'s pause at the runner's clock, recorded in the alert history with `by` (who
/// lifted it: `unpaused from the API`, `... from the status page`); `Ok(false)` when it was
/// not paused.
///
/// # Errors
/// 404 for an unknown checker, 503 without an alert store or when it cannot be written.
pub async fn lift_pause(state: &ServerState, name: &str, by: &str) -> Result<bool, ApiError> {
    one(state, name).await?;
    let alerts = state.alerts.as_ref().ok_or_else(|| {
        ApiError::unavailable("unpausing needs the alert store of a --store file")
    })?;
    let lifted = alerts
        .lift_pause(name, view::now(state), Some(by))
        .await
        .map_err(|e| ApiError::unavailable(format!("cannot lift the pause: {e}")))?;
    if lifted.is_some() {
        tracing::info!(checker = name, by, "unpaused");
    }
    Ok(lifted.is_some())
}

async fn pause(
    State(state): State<ServerState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Result<Json<PauseRequest>, JsonRejection>,
) -> ApiResult {
    require(&state, &headers, false, Access::Write).await?;
    let request = match body {
        Ok(Json(request)) => request,
        Err(JsonRejection::MissingJsonContentType(_))
            if headers.get(header::CONTENT_LENGTH).is_none_or(|l| l == "0") =>
        {
            PauseRequest::default()
        }
        Err(e) => {
            return Err(ApiError::bad_request(format!(
            "the body must be JSON {{\"until\": UNIX_TIME, \"comment\": TEXT}}, both optional: {e}"
        )))
        }
    };
    let pause = set_pause(&state, &name, request).await?;
    Ok(Json(json!({"name": name, "paused": pause_json(&pause)})).into_response())
}

async fn unpause(
    State(state): State<ServerState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult {
    require(&state, &headers, false, Access::Write).await?;
    let was_paused = lift_pause(&state, &name, "unpaused from the API").await?;
    Ok(Json(json!({"name": name, "was_paused": was_paused})).into_response())
}
