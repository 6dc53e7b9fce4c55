//! Events in the dmon/numbat shape: `POST /api/v1/events` (docs/SERVER.md, "Events"), and
//! the same JSON over UDP ([`crate::udp`]).
//!
//! A body is one JSON event or NDJSON (one event per line):
//!
//! ```json
//! {"host": "web1", "service": "backup", "state": "ok", "description": "nightly run",
//!  "time": 1800000000, "ttl": 120, "metric": 4.2, "tags": ["nightly"], "key": "run-7"}
//! ```
//!
//! `service` names a push checker; `state` picks the [`PingKind`] the event is stored as
//! ([`EventState::kind`]); `key` is the row key (the same key counts once); `time` (epoch
//! seconds, or RFC 3339) is the row's timestamp, refused when far in the future or too old
//! ([`EventsConfig`]). Each line is judged on its own: the bad ones are answered with their
//! line number and why, the good ones are committed through the ping routes' group commit
//! ([`Push`]) before any answer, and the answer is `200` (all stored), `207` (some stored)
//! or `400` (none).

use crate::hosts::HostRegistry;
use crate::push::{valid_parameter, Push, MAX_BODY_LIMIT, MAX_PARAMETER_LEN};
use crate::tokens::{Scope, TokenInfo};
use crate::ServerState;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use dwmon_core::ping::{host_check_name, series, PingKind};
use dwmon_core::ping_log::{Ping, PingEntry};
use dwmon_core::{Checker, Row, Store};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// Longest `host`, in bytes.
pub const MAX_HOST_LEN: usize = 100;

/// The tag of a graceful-shutdown event: for a per-host checker it removes the host's
/// sub-check (docs/FORMAT.md, "Per-host heartbeats").
pub const SHUTDOWN_TAG: &str = "shutdown";

/// Most `tags` of one event.
pub const MAX_TAGS: usize = 50;

/// Longest tag, in bytes.
pub const MAX_TAG_LEN: usize = 200;

/// Limits of the events routes.
#[derive(Debug, Clone)]
pub struct EventsConfig {
    /// Largest body, in bytes (default and at most [`MAX_BODY_LIMIT`], 1 MiB); a larger
    /// `Content-Length` is refused with 413 before the body is read.
    pub body_limit: usize,
    /// An event `time` more than this many seconds after the runner clock is refused
    /// (default 300: clock skew, not a milliseconds timestamp or a placeholder date).
    pub max_future_seconds: i64,
    /// An event `time` more than this many seconds before the runner clock is refused
    /// (default 86,400: a replayed buffer of a day is fine, `0` or a year ago is a mistake).
    pub max_past_seconds: i64,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            body_limit: MAX_BODY_LIMIT,
            max_future_seconds: 300,
            max_past_seconds: 86_400,
        }
    }
}

/// An event's `state` (Nagios levels, as dmon and numbat have them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EventState {
    /// All is well (the default when `state` is absent).
    #[default]
    Ok,
    /// Degraded, but not failed.
    Warning,
    /// Failed.
    Critical,
    /// The sender cannot tell.
    Unknown,
}

impl EventState {
    /// Every state.
    pub const ALL: [EventState; 4] = [
        EventState::Ok,
        EventState::Warning,
        EventState::Critical,
        EventState::Unknown,
    ];

    /// `ok`, `warning`, `critical` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventState::Ok => "ok",
            EventState::Warning => "warning",
            EventState::Critical => "critical",
            EventState::Unknown => "unknown",
        }
    }

    /// The state named `text`.
    pub fn parse(text: &str) -> Option<EventState> {
        EventState::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The ping kind an event of this state is stored as: only `ok` affirms a run
    /// (success), only `critical` is a failure; `warning` and `unknown` are messages
    /// without a verdict (log), countable with `PINGSLOG` and shown in the history with
    /// their state.
    ///
    /// ```
    /// use dwmon_core::ping::PingKind;
    /// use dwmon_server::events::EventState;
    /// assert_eq!(EventState::Ok.kind(), PingKind::Success);
    /// assert_eq!(EventState::Critical.kind(), PingKind::Fail);
    /// assert_eq!(EventState::Warning.kind(), PingKind::Log);
    /// ```
    pub fn kind(self) -> PingKind {
        match self {
            EventState::Ok => PingKind::Success,
            EventState::Critical => PingKind::Fail,
            EventState::Warning | EventState::Unknown => PingKind::Log,
        }
    }
}

/// One parsed, validated event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The host it is about (`[A-Za-z0-9_.-]`, at most [`MAX_HOST_LEN`] bytes).
    pub host: Option<String>,
    /// The push checker it is for.
    pub service: String,
    /// Its level.
    pub state: EventState,
    /// Free text.
    pub description: Option<String>,
    /// When it happened (epoch seconds; the runner clock when absent): the row timestamp.
    pub time: i64,
    /// How long it is valid, in seconds (kept in the history; the requirement's
    /// `LOOKBACKSECONDS` is what judges).
    pub ttl: Option<f64>,
    /// A measured value (kept in the history).
    pub metric: Option<f64>,
    /// Labels; `shutdown` marks a graceful shutdown.
    pub tags: Vec<String>,
    /// The row key: the same key counts once.
    pub key: Option<String>,
    /// The token, for transports without headers (UDP); refused over HTTP.
    pub token: Option<String>,
}

impl Event {
    /// The ping kind it is stored as ([`EventState::kind`]).
    pub fn kind(&self) -> PingKind {
        self.state.kind()
    }
}

/// Why one event line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// Not a JSON object with the event fields.
    #[error("not an event: {message}")]
    Json {
        /// serde's description (field, type, position in the line).
        message: String,
    },
    /// A field has a value outside what it may hold.
    #[error("{field}: {message}")]
    Field {
        /// The field's name.
        field: &'static str,
        /// What was wrong and what is expected.
        message: String,
    },
}

fn field(field: &'static str, message: impl Into<String>) -> EventError {
    EventError::Field {
        field,
        message: message.into(),
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent {
    host: Option<String>,
    service: Option<String>,
    state: Option<String>,
    description: Option<String>,
    time: Option<Value>,
    ttl: Option<f64>,
    metric: Option<f64>,
    tags: Option<Vec<String>>,
    key: Option<String>,
    token: Option<String>,
}

/// Whether `name` can be a host: 1 to [`MAX_HOST_LEN`] bytes of `A-Z a-z 0-9 _ . -`.
pub fn valid_host(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_HOST_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// Parses and validates one event (one JSON object) at runner time `now`.
///
/// ```
/// use dwmon_server::events::{parse_event, EventState, EventsConfig};
/// let now = 1_800_000_000;
/// let event = parse_event(br#"{"service": "backup", "state": "critical"}"#, now, &EventsConfig::default())?;
/// assert_eq!((event.service.as_str(), event.state, event.time), ("backup", EventState::Critical, now));
/// assert!(parse_event(br#"{"service": "backup", "time": 1800000000000}"#, now, &EventsConfig::default()).is_err());
/// # Ok::<(), dwmon_server::events::EventError>(())
/// ```
///
/// # Errors
/// [`EventError`] naming the field and what it should be: not an object, an unknown field, no
/// `service`, a bad `state`, `host`, `key` or tag, a `time` that is not epoch seconds or RFC
/// 3339, or that is far in the future or too old.
pub fn parse_event(line: &[u8], now: i64, config: &EventsConfig) -> Result<Event, EventError> {
    let raw: RawEvent = serde_json::from_slice(line).map_err(|e| EventError::Json {
        message: e.to_string(),
    })?;
    let service = raw
        .service
        .ok_or_else(|| field("service", "missing: the name of the push checker"))?;
    if !dwmon_core::checker_file::is_valid_checker_name(&service) {
        return Err(field(
            "service",
            format!(
                "{:?} is not a checker name (1 to 100 characters from A-Z a-z 0-9 _ . -)",
                excerpt(&service)
            ),
        ));
    }
    let state = match raw.state.as_deref() {
        None => EventState::Ok,
        Some(text) => EventState::parse(text).ok_or_else(|| {
            field(
                "state",
                format!(
                    "{:?}: expected ok, warning, critical or unknown",
                    excerpt(text)
                ),
            )
        })?,
    };
    if let Some(host) = &raw.host {
        if !valid_host(host) {
            return Err(field(
                "host",
                format!(
                    "{:?}: expected 1 to {MAX_HOST_LEN} characters from A-Z a-z 0-9 _ . -",
                    excerpt(host)
                ),
            ));
        }
    }
    if let Some(key) = &raw.key {
        if !valid_parameter(key) {
            return Err(field(
                "key",
                format!("expected 1 to {MAX_PARAMETER_LEN} bytes without control characters"),
            ));
        }
    }
    let tags = raw.tags.unwrap_or_default();
    if tags.len() > MAX_TAGS {
        return Err(field("tags", format!("at most {MAX_TAGS} tags")));
    }
    if tags
        .iter()
        .any(|t| t.is_empty() || t.len() > MAX_TAG_LEN || t.chars().any(char::is_control))
    {
        return Err(field(
            "tags",
            format!("each tag is 1 to {MAX_TAG_LEN} bytes without control characters"),
        ));
    }
    if let Some(ttl) = raw.ttl {
        if !ttl.is_finite() || ttl < 0.0 {
            return Err(field("ttl", "expected a number of seconds, 0 or more"));
        }
    }
    let time = match &raw.time {
        None | Some(Value::Null) => now,
        Some(value) => event_time(value, now, config)?,
    };
    Ok(Event {
        host: raw.host,
        service,
        state,
        description: raw.description,
        time,
        ttl: raw.ttl,
        metric: raw.metric,
        tags,
        key: raw.key,
        token: raw.token,
    })
}

/// `time` as epoch seconds (a number, fractions dropped, or an RFC 3339 string), within
/// `[now - max_past_seconds, now + max_future_seconds]`.
fn event_time(value: &Value, now: i64, config: &EventsConfig) -> Result<i64, EventError> {
    let seconds = match value {
        Value::Number(n) => {
            let seconds = n.as_f64().filter(|s| s.is_finite()).ok_or_else(|| {
                field("time", "expected epoch seconds (a number) or RFC 3339 text")
            })?;
            // Beyond ±2^62 the float cannot be a real time; the range check below says so.
            seconds.floor().clamp(-(2f64.powi(62)), 2f64.powi(62)) as i64
        }
        Value::String(text) => chrono::DateTime::parse_from_rfc3339(text)
            .map_err(|e| {
                field(
                    "time",
                    format!(
                        "{:?} is not RFC 3339 ({e}); expected e.g. 2026-12-03T14:00:00Z or epoch seconds",
                        excerpt(text)
                    ),
                )
            })?
            .timestamp(),
        _ => {
            return Err(field(
                "time",
                "expected epoch seconds (a number) or RFC 3339 text",
            ))
        }
    };
    let latest = now.saturating_add(config.max_future_seconds.max(0));
    let earliest = now.saturating_sub(config.max_past_seconds.max(0));
    if seconds > latest {
        let hint = if seconds / 1000 <= latest && seconds / 1000 >= earliest {
            " (milliseconds? send epoch seconds)"
        } else {
            ""
        };
        return Err(field(
            "time",
            format!(
                "{seconds} is more than {} seconds after the server's clock ({now}){hint}",
                config.max_future_seconds
            ),
        ));
    }
    if seconds < earliest {
        return Err(field(
            "time",
            format!(
                "{seconds} is more than {} seconds before the server's clock ({now})",
                config.max_past_seconds
            ),
        ));
    }
    Ok(seconds)
}

/// At most 40 characters of `text`, for messages.
fn excerpt(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

/// The lines of a body: the whole body when it is one JSON value (a pretty-printed event),
/// else each non-blank line, numbered from 1.
pub fn event_lines(body: &[u8]) -> Vec<(usize, &[u8])> {
    let trimmed = body.trim_ascii();
    if trimmed.is_empty() {
        return Vec::new();
    }
    if serde_json::from_slice::<serde::de::IgnoredAny>(trimmed).is_ok() {
        let first = body
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(0);
        let line = 1 + body[..first].iter().filter(|&&b| b == b'\n').count();
        return vec![(line, trimmed)];
    }
    body.split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim_ascii()))
        .filter(|(_, line)| !line.is_empty())
        .collect()
}

/// One refused line of a body.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LineError {
    /// Its line number (from 1).
    pub line: usize,
    /// Why it was refused.
    pub error: String,
}

/// What became of a body's events, once the good ones are committed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Outcome {
    /// Events stored (committed).
    pub accepted: usize,
    /// Lines refused.
    pub rejected: usize,
    /// Why each refused line was refused, in line order.
    pub errors: Vec<LineError>,
}

/// Why a whole body was refused (nothing of it is stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The token's rate is spent: retry after this many seconds (429).
    RateLimited(u64),
    /// The store did not commit in time, or the queue is full (503).
    Unavailable(String),
}

/// Where a body came from.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// The token of the `Authorization` header (HTTP); `None` over UDP, where each event
    /// carries its own `token`.
    pub token: Option<TokenInfo>,
    /// The client address.
    pub remote_addr: Option<String>,
    /// The `User-Agent` header.
    pub user_agent: Option<String>,
}

/// What an accepted line does to the hosts of a per-host checker.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostChange {
    /// A heartbeat: the host's sub-check exists from now on.
    Add { checker: String, host: String },
    /// A graceful shutdown: the host's sub-check, rows and check log go.
    Remove { checker: String, host: String },
}

/// An accepted line, ready to commit.
struct Planned {
    line: usize,
    /// What the line says.
    kind: PingKind,
    /// The row and history entry of the checker (or host sub-check); `None` for a
    /// shutdown: nothing to count or show.
    ping: Option<Ping>,
    token_id: String,
    host: Option<HostChange>,
}

/// The events routes' state: the ping routes' writer, tokens, checkers and clock, the store
/// (to prune removed hosts) and the hosts of per-host checkers.
pub struct Events {
    push: Arc<Push>,
    store: Arc<dyn Store>,
    hosts: Arc<HostRegistry>,
    config: EventsConfig,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Events {
    /// Events committed through `push` (its writer, tokens, checkers, clock and rate), with
    /// the hosts of per-host checkers in `hosts`; `store` is the one `push` writes to (a
    /// removed host's rows and checks are deleted from it).
    pub fn new(
        push: Arc<Push>,
        store: Arc<dyn Store>,
        hosts: Arc<HostRegistry>,
        mut config: EventsConfig,
    ) -> Arc<Events> {
        config.body_limit = config.body_limit.min(MAX_BODY_LIMIT);
        Arc::new(Events {
            push,
            store,
            hosts,
            config,
        })
    }

    /// The hosts of per-host checkers.
    pub fn hosts(&self) -> &Arc<HostRegistry> {
        &self.hosts
    }

    /// The runner's statistics (events count in its ping metrics).
    pub(crate) fn stats(&self) -> &Arc<crate::RunnerStats> {
        self.push.stats()
    }

    /// The limits.
    pub fn config(&self) -> &EventsConfig {
        &self.config
    }

    /// The route `POST /api/v1/events`, to merge into a [`ServerBuilder`](crate::ServerBuilder).
    pub fn router(self: &Arc<Self>) -> Router<ServerState> {
        Router::new()
            .route("/api/v1/events", post(http_events))
            .with_state(Arc::clone(self))
    }

    /// Judges each line of `body`, commits the good ones together and says what became of
    /// each. Lines refused are listed; a refusal of the whole body stores nothing that is
    /// acknowledged.
    ///
    /// # Errors
    /// [`Refusal`] when the token's rate is spent or the store does not commit in time.
    pub async fn submit(&self, body: &[u8], origin: &Origin) -> Result<Outcome, Refusal> {
        let now = self.push.stats().now();
        let (checkers, _) = self.push.stats().checker_set();
        let mut errors = Vec::new();
        let mut planned = Vec::new();
        let mut tokens: HashMap<String, Option<TokenInfo>> = HashMap::new();
        for (line, text) in event_lines(body) {
            let event = match parse_event(text, now, &self.config) {
                Ok(event) => event,
                Err(e) => {
                    errors.push(LineError {
                        line,
                        error: e.to_string(),
                    });
                    continue;
                }
            };
            match self
                .plan(line, text, event, &checkers, origin, &mut tokens)
                .await
            {
                Ok(plan) => planned.push(plan),
                Err(error) => errors.push(LineError { line, error }),
            }
        }
        let mut cost: HashMap<&str, f64> = HashMap::new();
        for plan in &planned {
            *cost.entry(plan.token_id.as_str()).or_default() += 1.0;
        }
        for (token_id, n) in cost {
            self.push
                .allow_n(token_id, n)
                .map_err(Refusal::RateLimited)?;
        }
        self.change_hosts(&planned, now).await?;
        self.commit(&planned).await?;
        for plan in &planned {
            self.push.stats().count_ping(plan.kind.as_str(), "ok");
        }
        let accepted = planned.len();
        if accepted == 0 && errors.is_empty() {
            errors.push(LineError {
                line: 1,
                error: "no events: the body is empty".into(),
            });
        }
        errors.sort_by_key(|e| e.line);
        Ok(Outcome {
            accepted,
            rejected: errors.len(),
            errors,
        })
    }

    /// Authorises one event and finds its checker: the row to store, or why not.
    async fn plan(
        &self,
        line: usize,
        text: &[u8],
        event: Event,
        checkers: &[Checker],
        origin: &Origin,
        tokens: &mut HashMap<String, Option<TokenInfo>>,
    ) -> Result<Planned, String> {
        let token = match (&origin.token, &event.token) {
            (Some(_), Some(_)) => {
                return Err(
                    "token: send the token in the Authorization header, not in the event".into(),
                )
            }
            (Some(token), None) => token.clone(),
            (None, None) => return Err("token: missing (UDP events carry a \"token\")".into()),
            (None, Some(presented)) => {
                if !tokens.contains_key(presented) {
                    let info = self
                        .push
                        .tokens()
                        .verify(presented)
                        .await
                        .map_err(|e| format!("token: cannot be checked: {e}"))?;
                    tokens.insert(presented.clone(), info);
                }
                tokens
                    .get(presented)
                    .cloned()
                    .flatten()
                    .ok_or("token: unknown or revoked")?
            }
        };
        match &token.scope {
            Scope::Ping { checker: None } => {}
            Scope::Ping {
                checker: Some(name),
            } if *name == event.service => {}
            Scope::Ping {
                checker: Some(name),
            } => {
                return Err(format!(
                    "service: this token sends events for {name:?} only, not {:?}",
                    event.service
                ))
            }
            other => {
                return Err(format!(
                    "token: a {other} token cannot send events; use a ping token"
                ))
            }
        }
        let checker = checkers
            .iter()
            .find(|c| c.is_push() && c.name == event.service)
            .ok_or_else(|| {
                format!(
                    "service: no push checker named {:?} (is its file loaded?)",
                    event.service
                )
            })?;
        let (name, host) = match (checker.per_host(), &event.host) {
            (false, _) => (checker.name.clone(), None),
            (true, None) => {
                return Err(format!(
                    "host: missing: {:?} keeps one sub-check per host",
                    checker.name
                ))
            }
            (true, Some(host)) => {
                let (checker, host) = (checker.name.clone(), host.clone());
                let name = host_check_name(&checker, &host);
                if event.tags.iter().any(|t| t == SHUTDOWN_TAG) {
                    (name, Some(HostChange::Remove { checker, host }))
                } else {
                    (name, Some(HostChange::Add { checker, host }))
                }
            }
        };
        let kind = event.kind();
        let key = event.key.clone().unwrap_or_else(|| {
            use rand::RngCore;
            format!("~{}-{:016x}", event.time, rand::rng().next_u64())
        });
        let keep = text.len().min(self.push.config().body_limit);
        let body = String::from_utf8_lossy(&text[..keep]).into_owned();
        let shutdown = matches!(host, Some(HostChange::Remove { .. }));
        Ok(Planned {
            line,
            kind,
            ping: (!shutdown).then(|| Ping {
                row: Row {
                    key,
                    timestamp: event.time,
                },
                entry: PingEntry {
                    remote_addr: origin.remote_addr.clone(),
                    user_agent: origin.user_agent.clone(),
                    body,
                    ..PingEntry::new(name, kind, event.time)
                },
            }),
            token_id: token.id,
            host,
        })
    }

    /// Applies the lines' host changes in line order, before their rows are committed: a
    /// new host is registered (and any check log of an earlier life of its sub-check
    /// dropped, so it starts afresh instead of catching up minutes it was gone), a host
    /// that shuts down is removed with its rows and check log.
    async fn change_hosts(&self, planned: &[Planned], now: i64) -> Result<(), Refusal> {
        let unavailable = |e: String| Refusal::Unavailable(format!("hosts: {e}; try again"));
        for change in planned.iter().filter_map(|p| p.host.as_ref()) {
            match change {
                HostChange::Add { checker, host } => {
                    if self.hosts.contains(checker, host) {
                        continue;
                    }
                    let name = host_check_name(checker, host);
                    self.store
                        .purge_checks(&name, i64::MAX)
                        .await
                        .map_err(|e| unavailable(e.to_string()))?;
                    self.hosts
                        .add(checker, host, now)
                        .map_err(|e| unavailable(e.to_string()))?;
                    tracing::info!(checker = %checker, host = %host, "new host");
                }
                HostChange::Remove { checker, host } => {
                    if !self
                        .hosts
                        .remove(checker, host)
                        .map_err(|e| unavailable(e.to_string()))?
                    {
                        continue;
                    }
                    let name = host_check_name(checker, host);
                    for kind in PingKind::ALL {
                        self.store
                            .purge(&series(&name, kind), i64::MAX)
                            .await
                            .map_err(|e| unavailable(e.to_string()))?;
                    }
                    self.store
                        .purge_checks(&name, i64::MAX)
                        .await
                        .map_err(|e| unavailable(e.to_string()))?;
                    tracing::info!(checker = %checker, host = %host, "host shut down");
                }
            }
        }
        Ok(())
    }

    /// Queues every planned row for the group commit and waits (at most the commit timeout)
    /// until all are committed.
    async fn commit(&self, planned: &[Planned]) -> Result<(), Refusal> {
        let mut waiting = Vec::with_capacity(planned.len());
        for plan in planned {
            let Some(ping) = &plan.ping else { continue };
            match self.push.enqueue(ping.clone()) {
                Some(committed) => waiting.push(committed),
                None => {
                    return Err(Refusal::Unavailable(format!(
                        "too many pings in flight (line {}); try again",
                        plan.line
                    )))
                }
            }
        }
        let all = async {
            for committed in waiting {
                match committed.await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) | Err(_) => return Err(()),
                }
            }
            Ok(())
        };
        match tokio::time::timeout(self.push.config().commit_timeout, all).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(())) => Err(Refusal::Unavailable(
                "the store cannot commit the events; try again".into(),
            )),
            Err(_) => Err(Refusal::Unavailable(
                "the store did not commit the events in time; try again".into(),
            )),
        }
    }
}

fn error(events: &Events, status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"error": {"code": code, "message": message}});
    finish(events, (status, Json(body)).into_response())
}

fn finish(events: &Events, mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        "ping-body-limit",
        HeaderValue::from(events.config.body_limit),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn retry_after(mut response: Response, seconds: u64) -> Response {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

async fn http_events(State(events): State<Arc<Events>>, request: Request) -> Response {
    let unauthorized = |message: &str| {
        let mut r = error(&events, StatusCode::UNAUTHORIZED, "unauthorized", message);
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"dwmon\""),
        );
        r
    };
    let presented = match crate::auth::request_token(request.headers(), false) {
        Ok(Some((token, _))) => token,
        Ok(None) => return unauthorized("this needs a ping token: Authorization: Bearer TOKEN"),
        Err(()) => return unauthorized("the Authorization header is not \"Bearer TOKEN\""),
    };
    let token = match events.push.tokens().verify(&presented).await {
        Ok(Some(info)) => info,
        Ok(None) => return unauthorized("unknown or revoked token"),
        Err(e) => {
            let r = error(
                &events,
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                &format!("the tokens cannot be read: {e}"),
            );
            return retry_after(r, 2);
        }
    };
    if !matches!(token.scope, Scope::Ping { .. }) {
        let message = format!(
            "a {} token cannot send events; use a ping token (ping or ping:CHECKER)",
            token.scope
        );
        return error(&events, StatusCode::FORBIDDEN, "forbidden", &message);
    }
    let limit = events.config.body_limit;
    let too_large = || {
        let message = format!("the body is larger than the limit of {limit} bytes");
        error(
            &events,
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            &message,
        )
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large();
    }
    let origin = Origin {
        token: Some(token),
        remote_addr: request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string()),
        user_agent: request
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(200).collect()),
    };
    let body: Body = request.into_body();
    let Ok(body) = axum::body::to_bytes(body, limit).await else {
        return too_large();
    };
    match events.submit(&body, &origin).await {
        Ok(outcome) => {
            let status = match (outcome.accepted, outcome.rejected) {
                (_, 0) => StatusCode::OK,
                (0, _) => StatusCode::BAD_REQUEST,
                _ => StatusCode::MULTI_STATUS,
            };
            finish(&events, (status, Json(outcome)).into_response())
        }
        Err(Refusal::RateLimited(seconds)) => {
            let r = error(
                &events,
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many events for this token",
            );
            retry_after(r, seconds)
        }
        Err(Refusal::Unavailable(message)) => {
            let r = error(
                &events,
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                &message,
            );
            retry_after(r, 2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn parse(text: &str) -> Result<Event, EventError> {
        parse_event(text.as_bytes(), NOW, &EventsConfig::default())
    }

    #[test]
    fn states_map_to_ping_kinds() {
        let kinds: Vec<(&str, PingKind)> = EventState::ALL
            .iter()
            .map(|s| (s.as_str(), s.kind()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("ok", PingKind::Success),
                ("warning", PingKind::Log),
                ("critical", PingKind::Fail),
                ("unknown", PingKind::Log),
            ]
        );
    }

    #[test]
    fn a_full_event_parses_and_defaults_fill_the_rest() -> Result<(), EventError> {
        let event = parse(
            r#"{"host": "web-1.example.com", "service": "backup", "state": "warning",
                "description": "slow", "time": 1799999990.7, "ttl": 120, "metric": 4.5,
                "tags": ["nightly"], "key": "run-7"}"#,
        )?;
        assert_eq!(event.host.as_deref(), Some("web-1.example.com"));
        assert_eq!(event.state, EventState::Warning);
        assert_eq!(event.time, 1_799_999_990);
        assert_eq!((event.ttl, event.metric), (Some(120.0), Some(4.5)));
        assert_eq!(event.tags, ["nightly"]);
        assert_eq!(event.key.as_deref(), Some("run-7"));
        let minimal = parse(r#"{"service": "backup", "time": null}"#)?;
        assert_eq!((minimal.state, minimal.time), (EventState::Ok, NOW));
        let rfc = parse(r#"{"service": "backup", "time": "2027-01-15T08:00:00Z"}"#)?;
        assert_eq!(rfc.time, NOW);
        Ok(())
    }

    #[test]
    fn bad_fields_are_named() {
        for (text, field) in [
            (r#"{"state": "ok"}"#, "service"),
            (r#"{"service": "a b"}"#, "service"),
            (r#"{"service": "b", "state": "OK"}"#, "state"),
            (r#"{"service": "b", "host": "web 1"}"#, "host"),
            (r#"{"service": "b", "host": ""}"#, "host"),
            (r#"{"service": "b", "key": ""}"#, "key"),
            (r#"{"service": "b", "tags": [""]}"#, "tags"),
            (r#"{"service": "b", "ttl": -1}"#, "ttl"),
            (r#"{"service": "b", "time": true}"#, "time"),
            (r#"{"service": "b", "time": "yesterday"}"#, "time"),
            (r#"{"service": "b", "time": 1800000301}"#, "time"),
            (r#"{"service": "b", "time": 1799913599}"#, "time"),
            (r#"{"service": "b", "time": 0}"#, "time"),
            (r#"{"service": "b", "time": 1e300}"#, "time"),
            (r#"{"service": "b", "time": -1e300}"#, "time"),
        ] {
            match parse(text) {
                Err(EventError::Field { field: got, .. }) => assert_eq!(got, field, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        for text in [
            r#"{"service": "b", "status": "ok"}"#,
            r#"["service"]"#,
            "{",
            r#"{"service": 7}"#,
        ] {
            assert!(
                matches!(parse(text), Err(EventError::Json { .. })),
                "{text}"
            );
        }
    }

    #[test]
    fn a_milliseconds_time_gets_a_hint() {
        let error = parse(r#"{"service": "b", "time": 1800000000000}"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("milliseconds?"), "{error}");
    }

    proptest::proptest! {
        #[test]
        fn garbage_never_panics_and_accepted_times_are_in_range(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
            time in proptest::prelude::any::<f64>(),
            now in -(1i64 << 40)..(1i64 << 40),
        ) {
            let config = EventsConfig::default();
            for (_, line) in event_lines(&body) {
                let _ = parse_event(line, now, &config);
            }
            let event = format!(r#"{{"service": "b", "time": {}}}"#, serde_json::json!(time));
            if let Ok(event) = parse_event(event.as_bytes(), now, &config) {
                proptest::prop_assert!(event.time <= now + config.max_future_seconds);
                proptest::prop_assert!(event.time >= now - config.max_past_seconds);
            }
        }
    }

    #[test]
    fn bodies_split_into_numbered_lines() {
        assert_eq!(event_lines(b"  \n "), Vec::<(usize, &[u8])>::new());
        let pretty = b"\n{\n  \"service\": \"b\"\n}\n";
        assert_eq!(event_lines(pretty), [(2, &pretty[1..21])]);
        let ndjson = b"{\"service\":\"a\"}\r\n\n{bad\n{\"service\":\"b\"}";
        let lines: Vec<usize> = event_lines(ndjson).iter().map(|l| l.0).collect();
        assert_eq!(lines, [1, 3, 4]);
        assert_eq!(event_lines(ndjson)[0].1, b"{\"service\":\"a\"}");
    }
}
