//! [`MysqlSource`]: named MySQL / MariaDB connection pools behind one [`RowGetter`].

use crate::connection::{self, SslMode};
use crate::error::{Error, Result};
use crate::value::Kind;
use dwmon_core::convert::{self, ValueError, KEY_COLUMN, TIMESTAMP_COLUMN};
use dwmon_core::routing;
use dwmon_core::{Batcher, FetchRequest, Fetched, Row, RowGetter, RowSink, SourceError};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, DriverError, Pool, PoolConstraints, PoolOpts, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

/// MariaDB's error for a statement stopped by `max_statement_time`.
const ER_STATEMENT_TIMEOUT: u16 = 1969;
/// MySQL's error for a statement stopped by `max_execution_time`.
const ER_QUERY_TIMEOUT: u16 = 3024;
/// Server errors that mean the connection is gone or refused, not that the query is wrong:
/// too many connections, server shutdown, connection killed, user over its connection limit.
const CONNECTION_ERRORS: [u16; 4] = [1040, 1053, 1927, 1203];
/// How long a pooled connection may stay idle before it is closed (checkers fetch every
/// minute, so a busy source keeps its connections; an unused one releases them).
const IDLE_CONNECTION_TTL: Duration = Duration::from_secs(300);
/// How long the clean-up after a client-side timeout (`KILL QUERY`, closing the connection)
/// may take in the background.
const ABANDON_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads checkers' rows from MySQL or MariaDB: one connection pool per named source,
/// `__SOURCE__` picks the pool.
///
/// Every fetch runs in its own `START TRANSACTION READ ONLY` (the session is also set `READ
/// ONLY`, so statements that commit implicitly cannot write either) with a server-side
/// statement timeout (`max_execution_time` on MySQL, `max_statement_time` on MariaDB, chosen
/// from the server's version string) and the session time zone `+00:00`; the whole fetch is
/// also bounded on the client side. A server that is down fails the fetch with
/// [`SourceError::Connection`]; connections the server dropped (a restart) are discarded and
/// replaced, so the next fetch succeeds by itself.
///
/// Results are streamed ([`RowGetter::get_rows_batched`]): rows are converted as the driver
/// reads them and handed to the engine in batches of [`RowSink::batch_rows`], the driver
/// reading on only once the engine has stored the previous batch, so a fetch holds one batch
/// in memory whatever the result's size. The client timeout counts reading, not the engine's
/// time to store; the server's statement timeout covers the whole result, storing included
/// (the server is still sending).
///
/// ```
/// use dwmon_mysql_source::MysqlSource;
/// use std::time::Duration;
///
/// # fn main() -> Result<(), dwmon_mysql_source::Error> {
/// let source = MysqlSource::builder()
///     .source("default", "mysql://dwmon@db.internal/app?ssl-mode=VERIFY_IDENTITY")?
///     .source("shop", "mariadb://reader:secret@shop-db:3306/shop?ssl-mode=REQUIRED")?
///     .statement_timeout(Duration::from_secs(20))
///     .pool_size(2)
///     .build()?;
/// assert_eq!(source.names(), vec!["default".to_string(), "shop".to_string()]);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct MysqlSource {
    pools: BTreeMap<String, NamedPool>,
    settings: Settings,
}

#[derive(Clone)]
struct NamedPool {
    /// Connections as `ssl-mode` says.
    pool: Pool,
    /// `ssl-mode=PREFERRED`: plain connections, used once the server is seen to offer no TLS.
    plain: Option<Pool>,
    use_plain: Arc<AtomicBool>,
    /// MySQL or MariaDB, learnt at the first fetch.
    flavour: Arc<OnceLock<Flavour>>,
    /// The URL with any password masked, for messages.
    shown: String,
}

impl std::fmt::Debug for NamedPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamedPool")
            .field("connection", &self.shown)
            .field("flavour", &self.flavour.get())
            .finish_non_exhaustive()
    }
}

/// Which server, for the name of its statement timeout variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavour {
    MySql,
    MariaDb,
}

impl Flavour {
    /// From `SELECT VERSION()`: `10.11.6-MariaDB-0+deb12u1` or `8.4.3`.
    fn from_version(version: &str) -> Flavour {
        if version.to_ascii_lowercase().contains("mariadb") {
            Flavour::MariaDb
        } else {
            Flavour::MySql
        }
    }

    /// `SET` assignment of the server-side statement timeout (0 = none, on both servers).
    fn timeout_assignment(self, timeout: Duration) -> String {
        let millis = millis(timeout);
        match self {
            Flavour::MySql => format!("SESSION max_execution_time = {millis}"),
            Flavour::MariaDb => format!(
                "SESSION max_statement_time = {}.{:03}",
                millis / 1000,
                millis % 1000
            ),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Settings {
    statement_timeout: Duration,
    client_timeout: Option<Duration>,
    connect_timeout: Duration,
    pool_size: usize,
    read_only: bool,
}

impl Settings {
    /// The client-side bound on running a fetch once it has a connection: as set, else the
    /// statement timeout plus the connect timeout.
    fn client_timeout(&self) -> Duration {
        self.client_timeout
            .unwrap_or(self.statement_timeout + self.connect_timeout)
    }
}

/// Builds a [`MysqlSource`]; see [`MysqlSource::builder`].
#[derive(Debug)]
pub struct MysqlSourceBuilder {
    sources: Vec<(String, String)>,
    settings: Settings,
}

impl MysqlSource {
    /// Default server-side statement timeout.
    pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);
    /// Default time allowed to get a connection (opening one included).
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default number of connections per source: the engine's default number of concurrent
    /// fetches per source ([`dwmon_core::EngineConfig::max_concurrent_checkers`]).
    pub const DEFAULT_POOL_SIZE: usize = 8;

    /// A builder with no sources and the default settings.
    pub fn builder() -> MysqlSourceBuilder {
        MysqlSourceBuilder {
            sources: Vec::new(),
            settings: Settings {
                statement_timeout: Self::DEFAULT_STATEMENT_TIMEOUT,
                client_timeout: None,
                connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
                pool_size: Self::DEFAULT_POOL_SIZE,
                read_only: true,
            },
        }
    }

    /// One URL as the source named `default`, with the default settings.
    ///
    /// # Errors
    /// As [`MysqlSourceBuilder::source`] and [`MysqlSourceBuilder::build`].
    pub fn new(connection: &str) -> Result<Self> {
        Self::builder().source("default", connection)?.build()
    }

    /// The configured source names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.pools.keys().cloned().collect()
    }
}

impl MysqlSourceBuilder {
    /// Adds a source: `__SOURCE__ name` reads from the server at `connection`,
    /// `mysql://user:password@host:port/database?ssl-mode=...` (or `mariadb://`). Without a
    /// password in the URL, `MYSQL_PWD` is used when set. TLS follows `ssl-mode` as the MySQL
    /// client does: `DISABLED`; `PREFERRED` (the default: TLS when the server offers it,
    /// certificate not checked); `REQUIRED` (always TLS, certificate not checked);
    /// `VERIFY_CA` (checked against `ssl-ca`, a PEM file, or Mozilla's roots; a driver
    /// limitation makes it check the host name too); `VERIFY_IDENTITY` (and the host name must
    /// match). Other URL parameters are mysql_async's.
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::DuplicateName`], [`Error::InvalidConnection`] (an
    /// unparsable URL or unsupported `ssl-mode`; the password is never echoed).
    pub fn source(mut self, name: impl Into<String>, connection: &str) -> Result<Self> {
        let name = name.into();
        if name.is_empty() || name.trim() != name {
            return Err(Error::InvalidName(name));
        }
        if self.sources.iter().any(|(known, _)| *known == name) {
            return Err(Error::DuplicateName(name));
        }
        // Parse now so a typo is reported by the builder, not at the first fetch.
        connection::parse(&name, connection, &|_| None)?;
        self.sources.push((name, connection.to_string()));
        Ok(self)
    }

    /// Server-side limit for each query (`max_execution_time` on MySQL, `max_statement_time`
    /// on MariaDB; default 30 s; zero means no server-side limit). A query hitting it fails
    /// with [`SourceError::Timeout`]. (MySQL applies it to `SELECT`s only, and its `SLEEP()`
    /// returns early instead of failing.) A streamed result is counted as a whole, the time
    /// the engine takes to store its batches included: the server is still sending.
    pub fn statement_timeout(mut self, timeout: Duration) -> Self {
        self.settings.statement_timeout = timeout;
        self
    }

    /// Client-side limit for a fetch once it has a connection: setting up the session, the
    /// query and reading the rows, not the time the engine takes to store them (default:
    /// statement timeout + connect timeout). Guards
    /// against a server or network that stops answering; the query is then killed and its
    /// connection closed.
    pub fn client_timeout(mut self, timeout: Duration) -> Self {
        self.settings.client_timeout = Some(timeout);
        self
    }

    /// Limit for getting a connection, waiting for a pooled one or opening one (default
    /// 10 s). Counted apart from the query's own timeouts.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.settings.connect_timeout = timeout;
        self
    }

    /// Connections per source (default [`MysqlSource::DEFAULT_POOL_SIZE`], 8).
    pub fn pool_size(mut self, size: usize) -> Self {
        self.settings.pool_size = size;
        self
    }

    /// Whether fetches run read-only (default true: a checker's query cannot write to the
    /// monitored database).
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.settings.read_only = read_only;
        self
    }

    /// The source. No connection is opened yet: the first fetch connects, so a database that
    /// is down at start-up only fails its checkers' cycles until it is back.
    ///
    /// # Errors
    /// [`Error::NoSources`], [`Error::InvalidSetting`] for a pool size of 0, [`Error::Tls`]
    /// when `ssl-ca` names a file that cannot be read.
    pub fn build(self) -> Result<MysqlSource> {
        if self.sources.is_empty() {
            return Err(Error::NoSources);
        }
        let constraints = PoolConstraints::new(0, self.settings.pool_size)
            .filter(|_| self.settings.pool_size > 0)
            .ok_or_else(|| Error::InvalidSetting {
                setting: "pool_size",
                message: "must be at least 1".to_string(),
            })?;
        let env = |var: &str| std::env::var(var).ok();
        let mut pools = BTreeMap::new();
        for (name, url) in self.sources {
            let connection = connection::parse(&name, &url, &env)?;
            if let Some(ca) = &connection.ssl_ca {
                if connection.ssl_mode != SslMode::Disabled {
                    std::fs::metadata(ca).map_err(|e| Error::Tls {
                        source_name: name.clone(),
                        message: format!("ssl-ca {}: {e}", ca.display()),
                    })?;
                }
            }
            if connection.ssl_mode != SslMode::Disabled {
                // mysql_async builds its TLS config from rustls's process default: ring, the
                // only provider compiled in (no-op when the program installed one already).
                let _ = rustls::crypto::ring::default_provider().install_default();
            }
            let pool_of = |with_tls: bool| {
                Pool::new(
                    connection
                        .opts(with_tls)
                        .pool_opts(
                            PoolOpts::default()
                                .with_constraints(constraints)
                                // Without an idle TTL mysql_async keeps no idle connection
                                // above the minimum (0): every fetch would connect anew.
                                .with_inactive_connection_ttl(IDLE_CONNECTION_TTL),
                        )
                        // TCP to the host named, never silently a local socket instead.
                        .prefer_socket(false)
                        .connect_attribute("program_name", "dwmon"),
                )
            };
            let pool = pool_of(true);
            let plain = (connection.ssl_mode == SslMode::Preferred).then(|| pool_of(false));
            pools.insert(
                name,
                NamedPool {
                    pool,
                    plain,
                    use_plain: Arc::new(AtomicBool::new(false)),
                    flavour: Arc::new(OnceLock::new()),
                    shown: connection.shown.clone(),
                },
            );
        }
        Ok(MysqlSource {
            pools,
            settings: self.settings,
        })
    }
}

/// How a fetch attempt failed.
enum Failure {
    /// The connection was found dead before the query ran (e.g. the server restarted since
    /// it was pooled): another connection may be tried.
    Stale(SourceError),
    /// The fetch failed; the connection is clean (any result read to its end).
    Fetch(SourceError),
    /// The sink refused a batch (its error, unchanged) while the result was being read: the
    /// rest of the result is never read, the connection is abandoned.
    Refused(SourceError),
    /// The client deadline passed: the connection is abandoned.
    TimedOut,
}

/// A fetch's client-side deadline, pushed back by the time the sink takes (storing a batch
/// is not the query's time).
struct Deadline(Mutex<Instant>);

impl Deadline {
    fn at(&self) -> Instant {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn extend(&self, by: Duration) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) += by;
    }
}

/// The engine's sink, its time taken off the query's ([`Deadline::extend`]).
struct TimedSink<'a> {
    sink: &'a mut dyn RowSink,
    deadline: &'a Deadline,
}

#[async_trait::async_trait]
impl RowSink for TimedSink<'_> {
    fn batch_rows(&self) -> usize {
        self.sink.batch_rows()
    }

    async fn accept(&mut self, batch: Fetched) -> Result<(), SourceError> {
        let started = Instant::now();
        let accepted = self.sink.accept(batch).await;
        self.deadline.extend(started.elapsed());
        accepted
    }
}

#[async_trait::async_trait]
impl RowGetter for MysqlSource {
    async fn get_rows(&self, request: &FetchRequest<'_>) -> Result<Fetched, SourceError> {
        dwmon_core::collect_rows(self, request).await
    }

    /// Streams the result: rows are read from the server as the driver receives them and
    /// handed over in batches of [`RowSink::batch_rows`], reading on only once the sink has
    /// taken the previous batch. The client timeout counts the time spent on the server and
    /// reading, not the sink's.
    async fn get_rows_batched(
        &self,
        request: &FetchRequest<'_>,
        sink: &mut dyn RowSink,
    ) -> Result<(), SourceError> {
        let named = routing::pick(&self.pools, request.source)?;
        let client_timeout = self.settings.client_timeout();
        let fetch = Fetch {
            request,
            named,
            settings: &self.settings,
        };
        let mut deadline = None;
        // After a restart every pooled connection is dead: each is tried (and discarded)
        // before the query runs, then a fresh one is opened.
        for _attempt in 0..=self.settings.pool_size {
            let (mut conn, pool) = self.connection(request.source, named).await?;
            // The query's time starts once it has a connection.
            let deadline: &Deadline = deadline
                .get_or_insert_with(|| Deadline(Mutex::new(Instant::now() + client_timeout)));
            match fetch.run(&mut conn, sink, deadline).await {
                Ok(()) => return Ok(()),
                Err(Failure::Fetch(error)) => return Err(error),
                Err(Failure::Stale(error)) => {
                    tracing::debug!(%error, source = request.source, "discarding a dead pooled connection");
                    continue;
                }
                Err(Failure::Refused(error)) => {
                    abandon(conn, pool);
                    return Err(error);
                }
                Err(Failure::TimedOut) => {
                    abandon(conn, pool);
                    return Err(SourceError::Timeout {
                        millis: millis(client_timeout),
                    });
                }
            }
        }
        Err(SourceError::Connection {
            source_name: request.source.to_string(),
            message: format!(
                "every connection to {} failed before the query ran",
                named.shown
            ),
        })
    }
}

impl MysqlSource {
    /// A connection of `named` and the pool it belongs to, within the connect timeout.
    async fn connection(
        &self,
        source: &str,
        named: &NamedPool,
    ) -> Result<(Conn, Pool), SourceError> {
        let wait = self.settings.connect_timeout;
        let get = async {
            if !named.use_plain.load(Ordering::Relaxed) {
                match named.pool.get_conn().await {
                    Err(mysql_async::Error::Driver(DriverError::NoClientSslFlagFromServer))
                        if named.plain.is_some() =>
                    {
                        tracing::info!(
                            source,
                            "the server offers no TLS; ssl-mode=PREFERRED connects without"
                        );
                        named.use_plain.store(true, Ordering::Relaxed);
                    }
                    other => return other.map(|conn| (conn, named.pool.clone())),
                }
            }
            let plain = named.plain.as_ref().unwrap_or(&named.pool);
            plain.get_conn().await.map(|conn| (conn, plain.clone()))
        };
        let connection_error = |message: String| SourceError::Connection {
            source_name: source.to_string(),
            message: format!("{message} ({})", named.shown),
        };
        match tokio::time::timeout(wait, get).await {
            Ok(Ok(got)) => Ok(got),
            Ok(Err(mysql_async::Error::Driver(DriverError::NoClientSslFlagFromServer))) => {
                Err(connection_error(
                    "the server does not offer TLS, which ssl-mode requires".to_string(),
                ))
            }
            Ok(Err(error)) => Err(connection_error(describe(&error))),
            Err(_elapsed) => Err(connection_error(format!(
                "no connection within {} s (connecting, or waiting for one of the pool's {} \
                 connections)",
                wait.as_secs_f64(),
                self.settings.pool_size
            ))),
        }
    }
}

/// A connection whose fetch timed out on the client side, or whose sink refused a batch: the
/// server may still be running the query, or sending rows nobody will read. Kill it from
/// another connection and close this one (never reused: it may be mid-result), in the
/// background.
fn abandon(conn: Conn, pool: Pool) {
    let id = conn.id();
    tokio::spawn(async move {
        let kill = async {
            let mut other = pool.get_conn().await?;
            other.query_drop(format!("KILL QUERY {id}")).await
        };
        match tokio::time::timeout(ABANDON_TIMEOUT, kill).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "could not kill a timed-out dwmon query"),
            Err(_) => tracing::warn!("could not kill a timed-out dwmon query in time"),
        }
        // Dropped unfinished, the connection is marked disconnected and the pool discards it.
        let _ = tokio::time::timeout(ABANDON_TIMEOUT, conn.disconnect()).await;
    });
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// One fetch on one pooled connection.
struct Fetch<'a, 'r, 'q> {
    request: &'r FetchRequest<'q>,
    named: &'a NamedPool,
    settings: &'a Settings,
}

impl Fetch<'_, '_, '_> {
    async fn run(
        &self,
        conn: &mut Conn,
        sink: &mut dyn RowSink,
        deadline: &Deadline,
    ) -> Result<(), Failure> {
        // Nothing has run yet: a dead connection here is stale, another one may be tried.
        let stale = |error: mysql_async::Error| {
            let source_error = self.error(&error);
            let dropped_by_server = matches!(
                &error,
                mysql_async::Error::Server(server) if CONNECTION_ERRORS.contains(&server.code)
            );
            if error.is_fatal() || dropped_by_server {
                Failure::Stale(source_error)
            } else {
                Failure::Fetch(source_error)
            }
        };
        let flavour = match self.named.flavour.get() {
            Some(flavour) => *flavour,
            None => {
                let version: Option<String> =
                    tokio::time::timeout_at(deadline.at(), conn.query_first("SELECT VERSION()"))
                        .await
                        .map_err(|_elapsed| Failure::TimedOut)?
                        .map_err(stale)?;
                let flavour = Flavour::from_version(version.as_deref().unwrap_or(""));
                *self.named.flavour.get_or_init(|| flavour)
            }
        };
        // One round trip. The session is read-only too: a statement that commits implicitly
        // (DDL) ends the transaction, and must not then run read-write. The values are
        // formatted by us (SET takes no bind parameters).
        let access = if self.settings.read_only {
            "READ ONLY"
        } else {
            "READ WRITE"
        };
        let setup = format!(
            "SET SESSION time_zone = '+00:00', {}; SET SESSION TRANSACTION {access}; \
             START TRANSACTION {access}",
            flavour.timeout_assignment(self.settings.statement_timeout)
        );
        tokio::time::timeout_at(deadline.at(), conn.query_drop(setup))
            .await
            .map_err(|_elapsed| Failure::TimedOut)?
            .map_err(stale)?;
        self.rows(conn, sink, deadline).await?;
        // Nothing was written (or may be); ending with ROLLBACK keeps it that way. The rows
        // are complete by now: a failing ROLLBACK (connection lost) does not spoil them, and
        // the pool discards the connection.
        match self.within(deadline, conn.query_drop("ROLLBACK")).await {
            Ok(()) => Ok(()),
            Err(Failure::TimedOut) => Err(Failure::TimedOut),
            Err(error) => {
                if let Failure::Fetch(error) = error {
                    tracing::debug!(%error, source = self.request.source, "ROLLBACK after a fetch failed");
                }
                Ok(())
            }
        }
    }

    /// Runs the query as a prepared statement (so it is one statement: no `COMMIT; ...`),
    /// converts its rows as they arrive and hands them to `sink` in batches ([`Batcher`]).
    ///
    /// The server sends the whole result unasked; while the sink stores a batch the driver
    /// reads nothing, so the server waits on a full socket (memory stays at one batch plus
    /// the socket buffers). The server-side statement timeout therefore counts the time the
    /// sink takes too, and the server's `net_write_timeout` (default 60 s) must exceed the
    /// time one batch takes to store.
    async fn rows(
        &self,
        conn: &mut Conn,
        sink: &mut dyn RowSink,
        deadline: &Deadline,
    ) -> Result<(), Failure> {
        let mut result = self
            .within(deadline, conn.exec_iter(self.request.query, ()))
            .await?;
        let columns = result.columns().unwrap_or_else(|| Arc::from(Vec::new()));
        let (key_index, key_kind, timestamp_index, timestamp_kind) =
            self.columns(&columns).map_err(Failure::Fetch)?;
        let mut timed = TimedSink { sink, deadline };
        let mut batches = Batcher::new(&mut timed);
        let mut row_number: u64 = 0;
        while let Some(row) = self.within(deadline, result.next()).await? {
            row_number += 1;
            let key = row.as_ref(key_index).unwrap_or(&Value::NULL);
            let timestamp = row.as_ref(timestamp_index).unwrap_or(&Value::NULL);
            match convert_row(row_number, key_kind, key, timestamp_kind, timestamp) {
                Ok(row) => batches.push(row).await.map_err(Failure::Refused)?,
                Err(reason) => batches.reject(reason),
            }
        }
        self.within(deadline, result.drop_result()).await?;
        // The result is read to its end: a refused last batch leaves a clean connection.
        batches.finish().await.map_err(Failure::Fetch)
    }

    /// One step on the server, bounded by the client deadline.
    async fn within<T>(
        &self,
        deadline: &Deadline,
        step: impl std::future::Future<Output = Result<T, mysql_async::Error>>,
    ) -> Result<T, Failure> {
        match tokio::time::timeout_at(deadline.at(), step).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(Failure::Fetch(self.error(&error))),
            Err(_elapsed) => Err(Failure::TimedOut),
        }
    }

    /// Finds the two columns and their kinds (from the result's metadata, so an empty result
    /// still gets its columns checked).
    fn columns(
        &self,
        columns: &[mysql_async::Column],
    ) -> Result<(usize, Kind, usize, Kind), SourceError> {
        let names: Vec<String> = columns.iter().map(|c| c.name_str().into_owned()).collect();
        let (key_index, timestamp_index) =
            convert::find_columns(&names).ok_or_else(|| SourceError::MissingColumns {
                checker: self.request.checker.to_string(),
                found: names.clone(),
            })?;
        let unsupported = |column: &str, index: usize, wanted: &str| SourceError::Query {
            source_name: self.request.source.to_string(),
            message: format!(
                "checker {:?}: column {column} has type {:?}, which dwmon cannot read as {wanted}; \
                 cast it in the query (e.g. CAST({column} AS {}))",
                self.request.checker,
                columns[index].column_type(),
                if column == KEY_COLUMN { "CHAR" } else { "DATETIME" },
            ),
        };
        let key_kind = Kind::for_column(&columns[key_index])
            .ok_or_else(|| unsupported(KEY_COLUMN, key_index, "a key"))?;
        let timestamp_kind = Kind::for_column(&columns[timestamp_index])
            .filter(|kind| kind.reads_timestamps())
            .ok_or_else(|| unsupported(TIMESTAMP_COLUMN, timestamp_index, "a timestamp"))?;
        Ok((key_index, key_kind, timestamp_index, timestamp_kind))
    }

    fn error(&self, error: &mysql_async::Error) -> SourceError {
        query_error(self.request.source, self.settings.statement_timeout, error)
    }
}

/// A converted row, or the reason it is rejected.
fn convert_row(
    row_number: u64,
    key_kind: Kind,
    key: &Value,
    timestamp_kind: Kind,
    timestamp: &Value,
) -> Result<Row, String> {
    if *key == Value::NULL {
        return Err(convert::rejection(
            row_number,
            KEY_COLUMN,
            None,
            &ValueError::Null,
        ));
    }
    let key = key_kind
        .key(key)
        .map_err(|message| format!("row {row_number}: {KEY_COLUMN} {message}"))?;
    match timestamp_kind.timestamp(timestamp) {
        Ok(seconds) => Ok(Row::new(key, seconds)),
        Err((error, shown)) => Err(convert::rejection(
            row_number,
            TIMESTAMP_COLUMN,
            shown.as_deref(),
            &error,
        )),
    }
}

/// A driver error as a [`SourceError`]: the server stopping the statement at its timeout is a
/// timeout, a lost or refused connection is a connection error, anything else the query's
/// fault.
fn query_error(
    source: &str,
    statement_timeout: Duration,
    error: &mysql_async::Error,
) -> SourceError {
    match error {
        mysql_async::Error::Server(server)
            if server.code == ER_STATEMENT_TIMEOUT || server.code == ER_QUERY_TIMEOUT =>
        {
            SourceError::Timeout {
                millis: millis(statement_timeout),
            }
        }
        mysql_async::Error::Server(server) if !CONNECTION_ERRORS.contains(&server.code) => {
            SourceError::Query {
                source_name: source.to_string(),
                message: describe(error),
            }
        }
        _ => SourceError::Connection {
            source_name: source.to_string(),
            message: describe(error),
        },
    }
}

/// The error and its causes in one line, e.g. `ERROR 1146 (42S02): Table 'x.y' doesn't
/// exist` or `Input/output error: Connection refused (os error 111)`.
fn describe(error: &mysql_async::Error) -> String {
    if let mysql_async::Error::Server(server) = error {
        return server.to_string();
    }
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        cause = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flavour_comes_from_the_version_string() {
        assert_eq!(
            Flavour::from_version("10.11.6-MariaDB-0+deb12u1"),
            Flavour::MariaDb
        );
        assert_eq!(Flavour::from_version("8.4.3"), Flavour::MySql);
        assert_eq!(
            Flavour::MariaDb.timeout_assignment(Duration::from_millis(1500)),
            "SESSION max_statement_time = 1.500"
        );
        assert_eq!(
            Flavour::MySql.timeout_assignment(Duration::from_millis(1500)),
            "SESSION max_execution_time = 1500"
        );
    }

    #[test]
    fn builder_errors() {
        assert_eq!(
            MysqlSource::builder().build().unwrap_err(),
            Error::NoSources
        );
        assert_eq!(
            MysqlSource::builder()
                .source(" x", "mysql://h/d")
                .unwrap_err(),
            Error::InvalidName(" x".into())
        );
        let duplicate = MysqlSource::builder()
            .source("a", "mysql://h/d")
            .and_then(|b| b.source("a", "mysql://h/e"));
        assert_eq!(duplicate.unwrap_err(), Error::DuplicateName("a".into()));
        let zero = MysqlSource::builder()
            .source("a", "mysql://h/d")
            .map(|b| b.pool_size(0))
            .and_then(MysqlSourceBuilder::build)
            .unwrap_err();
        assert!(matches!(
            zero,
            Error::InvalidSetting {
                setting: "pool_size",
                ..
            }
        ));
        let missing_ca = MysqlSource::builder()
            .source(
                "a",
                "mysql://h/d?ssl-mode=VERIFY_CA&ssl-ca=/nonexistent/ca.pem",
            )
            .and_then(MysqlSourceBuilder::build)
            .unwrap_err();
        assert!(matches!(missing_ca, Error::Tls { .. }), "{missing_ca:?}");
    }

    #[test]
    fn client_timeout_defaults_to_statement_plus_connect() {
        let settings = Settings {
            statement_timeout: Duration::from_secs(30),
            client_timeout: None,
            connect_timeout: Duration::from_secs(10),
            pool_size: 1,
            read_only: true,
        };
        assert_eq!(settings.client_timeout(), Duration::from_secs(40));
        let explicit = Settings {
            client_timeout: Some(Duration::from_secs(3)),
            ..settings
        };
        assert_eq!(explicit.client_timeout(), Duration::from_secs(3));
    }

    #[test]
    fn server_errors_are_mapped() {
        let server = |code| {
            mysql_async::Error::Server(mysql_async::ServerError {
                code,
                message: "m".into(),
                state: "HY000".into(),
            })
        };
        let timeout = Duration::from_millis(500);
        assert_eq!(
            query_error("s", timeout, &server(1969)),
            SourceError::Timeout { millis: 500 }
        );
        assert_eq!(
            query_error("s", timeout, &server(3024)),
            SourceError::Timeout { millis: 500 }
        );
        assert!(matches!(
            query_error("s", timeout, &server(1146)),
            SourceError::Query { .. }
        ));
        assert!(matches!(
            query_error("s", timeout, &server(1053)),
            SourceError::Connection { .. }
        ));
    }
}
