//! dwmon's HTTP server parts, as one axum [`Router`] an organisation binary can mount.
//!
//! `dwmon serve` runs the cycle loop and this server in one process. The parts (push checkers,
//! the status page, the JSON API, `/metrics`) are routers of their own, added to a
//! [`ServerBuilder`]; every part reads and writes through the same [`Store`] the cycle uses, and
//! readers never block the runner.
//!
//! ```no_run
//! use std::sync::Arc;
//! use dwmon_core::{MemoryStore, Store};
//! use dwmon_server::ServerBuilder;
//!
//! # async fn example() -> std::io::Result<()> {
//! let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
//! let router = ServerBuilder::new(store).build();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! dwmon_server::serve(listener, router, std::future::pending()).await
//! # }
//! ```

pub mod api;
pub mod auth;
pub mod badge;
pub mod events;
pub mod hosts;
pub mod idle;
pub mod metrics;
pub mod page;
pub mod push;
pub mod stats;
pub mod tokens;
pub mod udp;
pub mod uptime;
pub mod view;

pub use stats::RunnerStats;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use dwmon_core::Store;
use std::future::Future;
use std::sync::Arc;

/// What every route handler can reach: the store the cycle uses, the runner's statistics
/// and the alert states.
#[derive(Clone)]
pub struct ServerState {
    /// The store shared with the cycle loop (for SQLite: a reader of the same file, so a
    /// request never waits for the cycle's writes).
    pub store: Arc<dyn Store>,
    /// What the runner publishes each cycle; `None` for a server without a runner.
    pub stats: Option<Arc<RunnerStats>>,
    /// Alert states and pauses; `None` when alerting is off.
    pub alerts: Option<Arc<dyn dwmon_alert::AlertStateStore>>,
    /// Checks API and page tokens; `None`: no token is accepted.
    pub authorizer: Option<Arc<dyn auth::Authorizer>>,
    /// The access of a request without a token: `None` (refused) by default,
    /// `Some(Access::Public)` in public mode (the status page and badges show names and
    /// states only).
    pub anonymous: Option<auth::Access>,
    /// Push and API tokens ([`tokens`]): ping routes check ping tokens against them. Empty
    /// (no token valid) unless set with [`ServerBuilder::tokens`].
    pub tokens: Arc<dyn tokens::TokenStore>,
    /// The status page's uptime figures, computed in the background.
    pub uptime: Arc<uptime::Cache>,
    /// The ping routes, whose recent pings the API and the checker page show; `None`
    /// without push checkers' routes ([`ServerBuilder::push`]).
    pub push: Option<Arc<push::Push>>,
}

impl std::fmt::Debug for ServerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerState").finish_non_exhaustive()
    }
}

/// Builds the server's [`Router`] from its parts.
///
/// `/healthz` is always there: `200 ok` while the process serves requests (a liveness probe;
/// runner health with lag and outbox depth belongs to the API's `/api/v1/status`).
pub struct ServerBuilder {
    state: ServerState,
    router: Router<ServerState>,
}

impl std::fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder").finish_non_exhaustive()
    }
}

impl ServerBuilder {
    /// A server over `store` with only `/healthz`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        ServerBuilder {
            state: ServerState {
                store,
                stats: None,
                alerts: None,
                authorizer: None,
                anonymous: None,
                tokens: Arc::new(tokens::MemoryTokenStore::new()),
                uptime: Arc::default(),
                push: None,
            },
            router: Router::new().route("/healthz", get(healthz)),
        }
    }

    /// Reads the runner's statistics from `stats` (cycle times, fetch durations, checks by
    /// status), for `/metrics` and runner health.
    pub fn stats(mut self, stats: Arc<RunnerStats>) -> Self {
        self.state.stats = Some(stats);
        self
    }

    /// Reads alert states and pauses from `alerts` (FIRING and PAUSED in views and metrics).
    pub fn alerts(mut self, alerts: Arc<dyn dwmon_alert::AlertStateStore>) -> Self {
        self.state.alerts = Some(alerts);
        self
    }

    /// Checks bearer tokens (and the status page's session) with `authorizer`.
    pub fn authorizer(mut self, authorizer: Arc<dyn auth::Authorizer>) -> Self {
        self.state.authorizer = Some(authorizer);
        self
    }

    /// Checks ping tokens against `tokens`, and API tokens too unless an
    /// [`authorizer`](ServerBuilder::authorizer) was set (then that one decides).
    pub fn tokens(mut self, tokens: Arc<dyn tokens::TokenStore>) -> Self {
        if self.state.authorizer.is_none() {
            self.state.authorizer = Some(Arc::new(tokens::StoredTokens(Arc::clone(&tokens))));
        }
        self.state.tokens = tokens;
        self
    }

    /// Public mode: requests without a token may see the status page and badges with names
    /// and states only (never queries, sources, `__EXTRA__`, error texts or ping bodies).
    pub fn public(mut self, public: bool) -> Self {
        self.state.anonymous = public.then_some(auth::Access::Public);
        self
    }

    /// Adds the ping routes of `push` (`/ping/...`) and shows its recent pings in the API and
    /// on the checker pages.
    pub fn push(mut self, push: Arc<push::Push>) -> Self {
        self.router = self.router.merge(push.router());
        self.state.push = Some(push);
        self
    }

    /// The state every part's handlers receive.
    pub fn state(&self) -> &ServerState {
        &self.state
    }

    /// Adds a part: its routes are merged into the server's (route paths must not overlap).
    pub fn merge(mut self, part: Router<ServerState>) -> Self {
        self.router = self.router.merge(part);
        self
    }

    /// The finished router, ready for [`serve`] or for nesting in an organisation's own app.
    pub fn build(self) -> Router {
        self.router.with_state(self.state)
    }
}

async fn healthz() -> impl IntoResponse {
    (
        StatusCode::OK,
        [(header::CACHE_CONTROL, "no-cache")],
        "ok\n",
    )
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets requests in flight finish.
///
/// # Errors
/// When accepting connections fails for good.
///
/// A connection idle (no byte either way) for [`idle::DEFAULT_IDLE_TIMEOUT`] is closed; see
/// [`serve_with_idle_timeout`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_idle_timeout(listener, router, shutdown, idle::DEFAULT_IDLE_TIMEOUT).await
}

/// [`serve`], closing each connection that moves no byte in either direction for
/// `idle_timeout` (idle keep-alive sockets cannot pile up; see [`idle`]).
///
/// # Errors
/// When accepting connections fails for good.
pub async fn serve_with_idle_timeout(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    idle_timeout: std::time::Duration,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // `tap_io` keeps the client's address available to handlers (`ConnectInfo`).
    let listener = idle::IdleListener::new(listener, idle_timeout).tap_io(|_| {});
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use dwmon_core::MemoryStore;

    #[tokio::test]
    async fn healthz_answers_ok_on_a_real_socket_and_stops_on_shutdown() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let router = ServerBuilder::new(Arc::new(MemoryStore::new())).build();
        let server = tokio::spawn(serve(listener, router, async {
            let _ = stopped.await;
        }));
        let answer = reqwest::get(format!("http://{addr}/healthz"))
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.text().await.unwrap(), "ok\n");
        let missing = reqwest::get(format!("http://{addr}/nope")).await.unwrap();
        assert_eq!(missing.status(), 404);
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn an_idle_keep_alive_connection_is_closed_on_a_real_socket() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = ServerBuilder::new(Arc::new(MemoryStore::new())).build();
        let idle = std::time::Duration::from_millis(300);
        let server = tokio::spawn(serve_with_idle_timeout(
            listener,
            router,
            std::future::pending(),
            idle,
        ));
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        // Two requests on one keep-alive connection: it stays open while used.
        for _ in 0..2 {
            client
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap();
            let mut answer = Vec::new();
            while !answer.ends_with(b"ok\n") {
                let mut chunk = [0_u8; 512];
                let n = client.read(&mut chunk).await.unwrap();
                assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&answer));
                answer.extend_from_slice(&chunk[..n]);
            }
            assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
        }
        // Then idle: the server closes it (EOF or reset), after the timeout and not much
        // later (bounded, so a server that never closes fails instead of hanging).
        let started = std::time::Instant::now();
        let mut rest = [0_u8; 64];
        let read = tokio::time::timeout(std::time::Duration::from_secs(20), client.read(&mut rest))
            .await
            .expect("the idle connection is closed");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        assert!(started.elapsed() >= idle / 2, "{:?}", started.elapsed());
        server.abort();
    }
}
