//! Push checkers over HTTP: `HEAD|GET|POST /ping/...` (docs/SERVER.md, "Pings").
//!
//! A ping is verified (token, checker, method, body size, rate), handed to one writer task
//! that commits the pings of all concurrent requests together (one
//! [`PingLog::record_pings`]: each ping's row in its kind's series,
//! [`dwmon_core::ping::series`], and its history entry — one transaction in the SQLite
//! store), and answered `200` only after its row and entry are committed. A full queue or a commit that takes longer than
//! [`PushConfig::commit_timeout`] answers `503` with `Retry-After`: never a 200 for a ping
//! that is not stored.

use crate::stats::RunnerStats;
use crate::tokens::{Scope, TokenStore};
use crate::ServerState;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use dwmon_core::ping::PingKind;
use dwmon_core::ping_log::{Ping, PingEntry, PingLog};
use dwmon_core::{Checker, Row, StoreError};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// The largest body limit: 1 MiB.
pub const MAX_BODY_LIMIT: usize = 1 << 20;

/// Rows queued for the writer at most (a ping queues one, an events request one per event;
/// about 100 bytes each); a full queue answers 503.
pub const QUEUE_CAPACITY: usize = 20_000;

/// Longest `key=` and `rid=` values, in bytes.
pub const MAX_PARAMETER_LEN: usize = 200;

/// Limits of the ping routes.
#[derive(Debug, Clone)]
pub struct PushConfig {
    /// Bodies up to this many bytes are kept (default 10,000; at most [`MAX_BODY_LIMIT`]);
    /// a larger body is refused with 413.
    pub body_limit: usize,
    /// Pings per second each token may send on average (default 100); more get 429.
    pub rate_per_second: f64,
    /// Pings a token may send at once above the average (default 1,000).
    pub burst: f64,
    /// How long a ping waits for its commit before 503 (default 2 s).
    pub commit_timeout: Duration,
    /// Ping requests handled at once, from their first byte to their answer (default
    /// 1,024); more get 503 with `Retry-After` at once, before their token or body is read.
    /// It bounds the memory bodies take: at most `max_in_flight x body_limit`.
    pub max_in_flight: usize,
    /// Pings kept per checker in the history ([`Push::history`]; default 100).
    pub history: usize,
    /// How long a client may take to send its body before 408 (default 10 s).
    pub body_timeout: Duration,
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            body_limit: 10_000,
            rate_per_second: 100.0,
            burst: 1_000.0,
            commit_timeout: Duration::from_secs(2),
            max_in_flight: 1_024,
            history: 100,
            body_timeout: Duration::from_secs(10),
        }
    }
}

/// One received ping, as [`Push::history`] shows it.
pub type PingRecord = PingEntry;

struct Job {
    ping: Ping,
    reply: oneshot::Sender<Result<(), String>>,
}

struct Bucket {
    tokens: f64,
    at: tokio::time::Instant,
}

/// The ping routes' state: the ping log (the cycle's own, writable store), the tokens, the
/// runner's checker set and clock, and limits.
pub struct Push {
    log: Arc<dyn PingLog>,
    tokens: Arc<dyn TokenStore>,
    stats: Arc<RunnerStats>,
    config: PushConfig,
    writer: mpsc::Sender<Job>,
    in_flight: tokio::sync::Semaphore,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl std::fmt::Debug for Push {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Push")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Push {
    /// Ping routes committing to `log` (the cycle's own, writable store: an
    /// `Arc<SqliteStore>`, or a [`MemoryPingLog`](dwmon_core::ping_log::MemoryPingLog) over
    /// another store), checking `tokens`, with the checkers and clock of `stats`. Starts the
    /// writer task: call inside a tokio runtime.
    pub fn new(
        log: Arc<dyn PingLog>,
        tokens: Arc<dyn TokenStore>,
        stats: Arc<RunnerStats>,
        mut config: PushConfig,
    ) -> Arc<Push> {
        config.body_limit = config.body_limit.min(MAX_BODY_LIMIT);
        config.max_in_flight = config.max_in_flight.max(1);
        config.history = config.history.max(1);
        let (writer, jobs) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(write_pings(Arc::clone(&log), config.history, jobs));
        Arc::new(Push {
            log,
            tokens,
            stats,
            in_flight: tokio::sync::Semaphore::new(config.max_in_flight),
            config,
            writer,
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// The last `limit` pings of `checker`, newest first (at most [`PushConfig::history`]
    /// are kept), read from the ping log: with the SQLite store they survive restarts.
    ///
    /// # Errors
    /// When the ping log cannot be read.
    pub async fn history(&self, checker: &str, limit: usize) -> Result<Vec<PingEntry>, StoreError> {
        self.log.recent_pings(checker, limit).await
    }

    /// The routes `/ping/...`, to merge into a [`ServerBuilder`](crate::ServerBuilder).
    pub fn router(self: &Arc<Self>) -> Router<ServerState> {
        Router::new()
            .route("/ping/{*rest}", any(ping))
            .with_state(Arc::clone(self))
    }

    fn allow(&self, token_id: &str) -> Result<(), u64> {
        self.allow_n(token_id, 1.0)
    }

    /// Takes `cost` pings from `token_id`'s bucket (at most the burst, so a batch of events
    /// can always pass once the bucket is full), else the seconds to wait.
    pub(crate) fn allow_n(&self, token_id: &str, cost: f64) -> Result<(), u64> {
        let now = tokio::time::Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let (rate, burst) = (
            self.config.rate_per_second.max(0.001),
            self.config.burst.max(1.0),
        );
        if !buckets.contains_key(token_id) {
            buckets.insert(
                token_id.to_string(),
                Bucket {
                    tokens: burst,
                    at: now,
                },
            );
        }
        let Some(bucket) = buckets.get_mut(token_id) else {
            return Ok(());
        };
        let elapsed = now.duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.at = now;
        let cost = cost.clamp(1.0, burst);
        if bucket.tokens >= cost {
            bucket.tokens -= cost;
            Ok(())
        } else {
            Err(((cost - bucket.tokens) / rate).ceil().max(1.0) as u64)
        }
    }

    /// Queues `ping` for the writer (the group commit of every concurrent ping); the
    /// receiver answers once its row and history entry are committed. `None` when the
    /// queue is full.
    pub(crate) fn enqueue(&self, ping: Ping) -> Option<oneshot::Receiver<Result<(), String>>> {
        let (reply, committed) = oneshot::channel();
        self.writer
            .try_send(Job { ping, reply })
            .ok()
            .map(|()| committed)
    }

    /// The limits these routes were built with.
    pub(crate) fn config(&self) -> &PushConfig {
        &self.config
    }

    /// The tokens pings are checked against.
    pub(crate) fn tokens(&self) -> &Arc<dyn TokenStore> {
        &self.tokens
    }

    /// The runner's checkers and clock.
    pub(crate) fn stats(&self) -> &Arc<RunnerStats> {
        &self.stats
    }
}

/// The writer task: takes every queued ping and commits them together (one
/// [`PingLog::record_pings`]), then answers each.
async fn write_pings(log: Arc<dyn PingLog>, keep: usize, mut jobs: mpsc::Receiver<Job>) {
    let mut batch = Vec::new();
    while jobs.recv_many(&mut batch, 10_000).await > 0 {
        let (pings, replies): (Vec<Ping>, Vec<_>) =
            batch.drain(..).map(|job| (job.ping, job.reply)).unzip();
        let result = log
            .record_pings(&pings, keep)
            .await
            .map_err(|e| e.to_string());
        for reply in replies {
            let _ = reply.send(result.clone());
        }
    }
}

/// A parsed ping path (after the token).
struct Target<'a> {
    checker: Option<&'a str>,
    suffix: Option<&'a str>,
}

fn answer(push: &Push, status: StatusCode, text: &str) -> Response {
    let mut response = (status, format!("{text}\n")).into_response();
    response
        .headers_mut()
        .insert("ping-body-limit", HeaderValue::from(push.config.body_limit));
    response
}

fn with_header(mut response: Response, name: header::HeaderName, value: String) -> Response {
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(name, value);
    }
    response
}

fn parse_suffix(suffix: Option<&str>) -> Result<(PingKind, Option<u8>), String> {
    match suffix {
        None => Ok((PingKind::Success, None)),
        Some("start") => Ok((PingKind::Start, None)),
        Some("fail") => Ok((PingKind::Fail, None)),
        Some("log") => Ok((PingKind::Log, None)),
        Some(text) => match text.parse::<u8>() {
            Ok(0) if text == "0" => Ok((PingKind::Success, Some(0))),
            Ok(code) if text == code.to_string() => Ok((PingKind::Fail, Some(code))),
            _ => Err(format!(
                "bad ping suffix `{}`: expected start, fail, log or an exit status 0-255",
                text.chars().take(40).collect::<String>()
            )),
        },
    }
}

pub(crate) fn valid_parameter(value: &str) -> bool {
    !value.is_empty() && value.len() <= MAX_PARAMETER_LEN && !value.chars().any(char::is_control)
}

async fn ping(State(push): State<Arc<Push>>, request: Request) -> Response {
    let (response, kind) = handle(&push, request).await;
    let label = match response.status().as_u16() {
        200 => "ok",
        400 => "bad_request",
        404 => "not_found",
        405 => "method_not_allowed",
        409 => "conflict",
        408 => "timeout",
        413 => "too_large",
        429 => "rate_limited",
        _ => "unavailable",
    };
    push.stats
        .count_ping(kind.map_or("unknown", PingKind::as_str), label);
    response
}

async fn handle(push: &Push, request: Request) -> (Response, Option<PingKind>) {
    // Bounded before anything is read: a flood gets quick 503s, never a pile of waiting sockets.
    let Ok(_permit) = push.in_flight.try_acquire() else {
        let r = answer(
            push,
            StatusCode::SERVICE_UNAVAILABLE,
            "too many pings in flight; try again",
        );
        return (with_header(r, header::RETRY_AFTER, "1".into()), None);
    };
    let (request, body) = request.into_parts();
    let method = &request.method;
    if ![Method::GET, Method::HEAD, Method::POST].contains(method) {
        let r = answer(
            push,
            StatusCode::METHOD_NOT_ALLOWED,
            "pings are HEAD, GET or POST",
        );
        return (
            with_header(r, header::ALLOW, "GET, HEAD, POST".into()),
            None,
        );
    }
    let path = request.uri.path();
    // At most three segments (token, checker, suffix) make a ping URL.
    let mut parts: [&str; 3] = [""; 3];
    let mut count = 0;
    for segment in path.trim_start_matches("/ping/").split('/') {
        if count == parts.len() {
            count += 1;
            break;
        }
        parts[count] = segment;
        count += 1;
    }
    let too_many = count > parts.len();
    let parts = &parts[..count.min(parts.len())];
    let token_text = parts.first().copied().unwrap_or_default();
    let info = match push.tokens.verify(token_text).await {
        Ok(Some(info)) => info,
        Ok(None) => return (answer(push, StatusCode::NOT_FOUND, "unknown token"), None),
        Err(_) => {
            let r = answer(
                push,
                StatusCode::SERVICE_UNAVAILABLE,
                "the tokens cannot be read",
            );
            return (with_header(r, header::RETRY_AFTER, "2".into()), None);
        }
    };
    let target = match (&info.scope, parts) {
        _ if too_many => None,
        (Scope::Ping { checker: Some(_) }, [_]) => Some(Target {
            checker: None,
            suffix: None,
        }),
        (Scope::Ping { checker: Some(_) }, [_, suffix]) => Some(Target {
            checker: None,
            suffix: Some(suffix),
        }),
        (Scope::Ping { checker: None }, [_, checker]) => Some(Target {
            checker: Some(checker),
            suffix: None,
        }),
        (Scope::Ping { checker: None }, [_, checker, suffix]) => Some(Target {
            checker: Some(checker),
            suffix: Some(suffix),
        }),
        _ => None,
    };
    let Some(target) = target else {
        return (
            answer(push, StatusCode::NOT_FOUND, "no such ping URL"),
            None,
        );
    };
    let (kind, exit_status) = match parse_suffix(target.suffix) {
        Ok(parsed) => parsed,
        Err(message) => return (answer(push, StatusCode::BAD_REQUEST, &message), None),
    };
    let (checkers, _) = push.stats.checker_set();
    let checker: &Checker = match (&info.scope, target.checker) {
        (
            Scope::Ping {
                checker: Some(name),
            },
            _,
        ) => match checkers.iter().find(|c| c.is_push() && &c.name == name) {
            Some(c) => c,
            None => {
                let text = format!("no push checker named {name:?} (is its file loaded?)");
                return (answer(push, StatusCode::NOT_FOUND, &text), Some(kind));
            }
        },
        (_, Some(slug)) => {
            let exact = checkers.iter().find(|c| c.is_push() && c.name == slug);
            let mut folded = checkers
                .iter()
                .filter(|c| c.is_push() && c.name.eq_ignore_ascii_case(slug));
            match (exact, folded.next(), folded.next()) {
                (Some(c), _, _) => c,
                (None, Some(c), None) => c,
                (None, None, _) => {
                    return (
                        answer(push, StatusCode::NOT_FOUND, "no push checker by that name"),
                        Some(kind),
                    )
                }
                (None, Some(_), Some(_)) => {
                    return (
                        answer(
                            push,
                            StatusCode::CONFLICT,
                            "several push checkers match this name when case is ignored; use the exact name",
                        ),
                        Some(kind),
                    )
                }
            }
        }
        _ => {
            return (
                answer(push, StatusCode::NOT_FOUND, "no such ping URL"),
                None,
            )
        }
    };
    if checker.post_only() && method != Method::POST {
        let r = answer(
            push,
            StatusCode::METHOD_NOT_ALLOWED,
            "this checker takes POST pings only",
        );
        return (with_header(r, header::ALLOW, "POST".into()), Some(kind));
    }
    if checker.per_host() {
        // Its rows are its hosts' (events with a host): a ping would never be counted.
        let text = format!(
            "{:?} keeps one sub-check per host: send events with a host (POST /api/v1/events)",
            checker.name
        );
        return (answer(push, StatusCode::BAD_REQUEST, &text), Some(kind));
    }
    let mut key = None;
    let mut rid = None;
    if let Some(query) = request.uri.query() {
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let slot = match name.as_ref() {
                "key" => &mut key,
                "rid" => &mut rid,
                _ => continue,
            };
            if !valid_parameter(&value) {
                let text = format!(
                    "bad {name}=: expected 1 to {MAX_PARAMETER_LEN} bytes without control characters"
                );
                return (answer(push, StatusCode::BAD_REQUEST, &text), Some(kind));
            }
            *slot = Some(value.into_owned());
        }
    }
    let limit = push.config.body_limit;
    let declared = request
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        let text = format!("the body is larger than the limit of {limit} bytes");
        return (
            answer(push, StatusCode::PAYLOAD_TOO_LARGE, &text),
            Some(kind),
        );
    }
    if let Err(retry) = push.allow(&info.id) {
        let r = answer(
            push,
            StatusCode::TOO_MANY_REQUESTS,
            "too many pings for this token",
        );
        return (
            with_header(r, header::RETRY_AFTER, retry.to_string()),
            Some(kind),
        );
    }
    let remote_addr = request
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let user_agent = request
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(200).collect());
    let body: Body = body;
    let body =
        match tokio::time::timeout(push.config.body_timeout, axum::body::to_bytes(body, limit))
            .await
        {
            Ok(Ok(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
            Ok(Err(_)) => {
                let text = format!("the body is larger than the limit of {limit} bytes");
                return (
                    answer(push, StatusCode::PAYLOAD_TOO_LARGE, &text),
                    Some(kind),
                );
            }
            Err(_) => {
                return (
                    answer(
                        push,
                        StatusCode::REQUEST_TIMEOUT,
                        "the body did not arrive in time",
                    ),
                    Some(kind),
                )
            }
        };
    let time = push.stats.now();
    let row_key = key.unwrap_or_else(|| {
        use rand::RngCore;
        format!("~{time}-{:016x}", rand::rng().next_u64())
    });
    let (reply, committed) = oneshot::channel();
    let job = Job {
        ping: Ping {
            row: Row {
                key: row_key,
                timestamp: time,
            },
            entry: PingEntry {
                checker: checker.name.clone(),
                kind,
                time,
                exit_status,
                rid,
                duration_seconds: None,
                remote_addr,
                user_agent,
                body,
            },
        },
        reply,
    };
    let unavailable = |text: &str| {
        let r = answer(push, StatusCode::SERVICE_UNAVAILABLE, text);
        with_header(r, header::RETRY_AFTER, "2".into())
    };
    if push.writer.try_send(job).is_err() {
        return (
            unavailable("too many pings in flight; try again"),
            Some(kind),
        );
    }
    match tokio::time::timeout(push.config.commit_timeout, committed).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(_))) | Ok(Err(_)) => {
            return (
                unavailable("the store cannot commit the ping; try again"),
                Some(kind),
            )
        }
        Err(_) => {
            return (
                unavailable("the store did not commit the ping in time; try again"),
                Some(kind),
            )
        }
    }
    (answer(push, StatusCode::OK, "OK"), Some(kind))
}
