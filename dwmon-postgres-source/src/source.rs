//! [`PostgresSource`]: named connection pools behind one [`RowGetter`].

use crate::error::{Error, Result};
use crate::tls;
use crate::value::{Raw, Reader};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod};
use dwmon_core::convert::{self, ValueError, KEY_COLUMN, TIMESTAMP_COLUMN};
use dwmon_core::routing;
use dwmon_core::{FetchRequest, Fetched, Row, RowGetter, RowSink, SourceError};
use futures::TryStreamExt;
use std::collections::BTreeMap;
use std::pin::pin;
use std::time::Duration;
use tokio::time::Instant;
use tokio_postgres::error::SqlState;
use tokio_postgres_rustls::MakeRustlsConnect;

/// Reads checkers' rows from PostgreSQL: one connection pool per named source, `__SOURCE__`
/// picks the pool.
///
/// Every fetch runs in its own transaction (`READ ONLY` unless [`PostgresSourceBuilder::read_only`]
/// says otherwise) with `SET LOCAL statement_timeout`, and is also bounded on the client side
/// from the moment it has a connection. Waiting for a pooled connection has its own bound
/// ([`PostgresSourceBuilder::pool_wait_timeout`]) and its own error ("waited N s for a
/// connection"), never reported as a query timeout. A server that is down or restarts
/// fails the fetch with [`SourceError::Connection`]; pooled connections are checked before
/// reuse and replaced, so the next cycle recovers by itself.
///
/// Results are streamed ([`RowGetter::get_rows_batched`]) through a portal, one page of
/// [`RowSink::batch_rows`] rows per batch, the next page asked for once the engine has stored
/// the previous one: a fetch holds one batch in memory, whatever the result's size. The
/// server's `statement_timeout` then bounds each page, the client timeout the whole fetch
/// (the time the engine takes to store batches counts against neither). Between pages the
/// backend is `idle in transaction`: a server `idle_in_transaction_session_timeout` shorter
/// than the store's time for one batch would end the fetch.
///
/// ```
/// use dwmon_postgres_source::PostgresSource;
/// use std::time::Duration;
///
/// # fn main() -> Result<(), dwmon_postgres_source::Error> {
/// let source = PostgresSource::builder()
///     .source("default", "postgres://dwmon@db.internal/app?sslmode=verify-full")?
///     .source("AWS", "postgres://reader:secret@warehouse:5432/dw?sslmode=require")?
///     .statement_timeout(Duration::from_secs(20))
///     .pool_size(2)
///     .build()?;
/// assert_eq!(source.names(), vec!["AWS".to_string(), "default".to_string()]);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PostgresSource {
    pools: BTreeMap<String, NamedPool>,
    settings: Settings,
}

#[derive(Clone)]
struct NamedPool {
    pool: Pool,
    tls: MakeRustlsConnect,
    /// The connection string with any password masked, for messages.
    shown: String,
}

impl std::fmt::Debug for NamedPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamedPool")
            .field("connection", &self.shown)
            .field("status", &self.pool.status())
            .finish()
    }
}

#[derive(Debug, Clone, Copy)]
struct Settings {
    statement_timeout: Duration,
    client_timeout: Option<Duration>,
    connect_timeout: Duration,
    pool_size: usize,
    pool_wait_timeout: Option<Duration>,
    read_only: bool,
}

impl Settings {
    /// The client-side bound on running a fetch once it has a connection: as set, else the
    /// statement timeout plus the connect timeout.
    fn client_timeout(&self) -> Duration {
        self.client_timeout
            .unwrap_or(self.statement_timeout + self.connect_timeout)
    }

    /// How long a fetch waits for a pooled connection (opening one included): as set, else
    /// the client timeout. Counted apart from the query's own timeout.
    fn pool_wait_timeout(&self) -> Duration {
        self.pool_wait_timeout
            .unwrap_or_else(|| self.client_timeout())
    }
}

/// Builds a [`PostgresSource`]; see [`PostgresSource::builder`].
#[derive(Debug)]
pub struct PostgresSourceBuilder {
    sources: Vec<(String, String)>,
    settings: Settings,
}

impl PostgresSource {
    /// Default server-side statement timeout.
    pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);
    /// Default time allowed to open a connection.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default number of connections per source: the engine's default number of concurrent
    /// fetches per source ([`dwmon_core::EngineConfig::max_concurrent_checkers`]), so that a
    /// fetch never waits for a connection behind healthy ones.
    pub const DEFAULT_POOL_SIZE: usize = 8;

    /// A builder with no sources and the default settings.
    pub fn builder() -> PostgresSourceBuilder {
        PostgresSourceBuilder {
            sources: Vec::new(),
            settings: Settings {
                statement_timeout: Self::DEFAULT_STATEMENT_TIMEOUT,
                client_timeout: None,
                connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
                pool_size: Self::DEFAULT_POOL_SIZE,
                pool_wait_timeout: None,
                read_only: true,
            },
        }
    }

    /// One connection string as the source named `default`, with the default settings.
    ///
    /// # Errors
    /// As [`PostgresSourceBuilder::source`] and [`PostgresSourceBuilder::build`].
    pub fn new(connection: &str) -> Result<Self> {
        Self::builder().source("default", connection)?.build()
    }

    /// The configured source names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.pools.keys().cloned().collect()
    }

    /// Closes every pool: fetches from now on fail, connections are released.
    pub fn close(&self) {
        for named in self.pools.values() {
            named.pool.close();
        }
    }
}

impl PostgresSourceBuilder {
    /// Adds a source: `__SOURCE__ name` reads from the database at `connection`, a
    /// `postgres://` URL or a libpq key/value string. TLS follows `sslmode` as libpq does:
    /// `disable`; `prefer` (the default: TLS when the server offers it); `require` (always TLS,
    /// certificate not checked); `verify-ca` (checked against `sslrootcert`, a PEM file, or
    /// Mozilla's roots); `verify-full` (and the host name must match).
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::DuplicateName`], [`Error::InvalidConnection`] (an
    /// unparsable string or unsupported `sslmode`; the password is never echoed).
    pub fn source(mut self, name: impl Into<String>, connection: &str) -> Result<Self> {
        let name = name.into();
        if name.is_empty() || name.trim() != name {
            return Err(Error::InvalidName(name));
        }
        if self.sources.iter().any(|(known, _)| *known == name) {
            return Err(Error::DuplicateName(name));
        }
        // Parse now so a typo is reported by the builder, not at the first fetch.
        let options = tls::split_options(&name, connection)?;
        parse_config(&name, &options.connection)?;
        self.sources.push((name, connection.to_string()));
        Ok(self)
    }

    /// Server-side limit for each query (`SET LOCAL statement_timeout`; default 30 s; zero
    /// means no server-side limit, as in PostgreSQL). A query hitting it fails with
    /// [`SourceError::Timeout`]. A streamed result is read in pages: the limit applies to
    /// producing each page (the first page includes planning and any sort); the client
    /// timeout bounds the whole result.
    pub fn statement_timeout(mut self, timeout: Duration) -> Self {
        self.settings.statement_timeout = timeout;
        self
    }

    /// Client-side limit for a whole fetch once it has a connection: the query and reading
    /// every page of rows, not the time the engine takes to store them (default: statement
    /// timeout + connect timeout). Guards against a server or network that stops answering
    /// and against a result too slow to read as a whole; the query is then cancelled and its
    /// connection dropped.
    pub fn client_timeout(mut self, timeout: Duration) -> Self {
        self.settings.client_timeout = Some(timeout);
        self
    }

    /// Limit for opening a connection when the connection string sets no `connect_timeout`
    /// (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.settings.connect_timeout = timeout;
        self
    }

    /// Connections per source (default [`PostgresSource::DEFAULT_POOL_SIZE`], 8). Size it to
    /// the engine's concurrent fetches per source (`max_concurrent_checkers`): a smaller pool
    /// makes fetches wait for a connection.
    pub fn pool_size(mut self, size: usize) -> Self {
        self.settings.pool_size = size;
        self
    }

    /// How long a fetch waits for a pooled connection before failing with "waited N s for a
    /// connection" (default: the client timeout). The wait never counts against the query's
    /// own timeouts.
    pub fn pool_wait_timeout(mut self, timeout: Duration) -> Self {
        self.settings.pool_wait_timeout = Some(timeout);
        self
    }

    /// Whether fetches run in a `READ ONLY` transaction (default true: a checker's query cannot
    /// write to the monitored database).
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.settings.read_only = read_only;
        self
    }

    /// The source. No connection is opened yet: the first fetch connects, so a database that
    /// is down at start-up only fails its checkers' cycles until it is back.
    ///
    /// # Errors
    /// [`Error::NoSources`], [`Error::InvalidSetting`] for a pool size of 0, [`Error::Tls`]
    /// when the TLS settings cannot be set up (e.g. an unreadable `sslrootcert`).
    pub fn build(self) -> Result<PostgresSource> {
        if self.sources.is_empty() {
            return Err(Error::NoSources);
        }
        if self.settings.pool_size == 0 {
            return Err(Error::InvalidSetting {
                setting: "pool_size",
                message: "must be at least 1".to_string(),
            });
        }
        let mut pools = BTreeMap::new();
        for (name, connection) in self.sources {
            let options = tls::split_options(&name, &connection)?;
            let mut config = parse_config(&name, &options.connection)?;
            if config.get_connect_timeout().is_none() {
                config.connect_timeout(self.settings.connect_timeout);
            }
            if config.get_application_name().is_none() {
                config.application_name("dwmon");
            }
            let tls = tls::connector(&name, &options)?;
            let manager = Manager::from_config(
                config,
                tls.clone(),
                ManagerConfig {
                    // Verified: a connection the server dropped (restart, pg_terminate_backend,
                    // idle timeout) is detected before reuse and replaced.
                    recycling_method: RecyclingMethod::Verified,
                },
            );
            let pool = Pool::builder(manager)
                .max_size(self.settings.pool_size)
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .create_timeout(Some(self.settings.connect_timeout))
                .recycle_timeout(Some(self.settings.connect_timeout))
                .build()
                .map_err(|e| Error::InvalidSetting {
                    setting: "pool",
                    message: e.to_string(),
                })?;
            let shown = mask_password(&connection);
            pools.insert(name, NamedPool { pool, tls, shown });
        }
        Ok(PostgresSource {
            pools,
            settings: self.settings,
        })
    }
}

/// Parses the connection string, then fills what it leaves out from libpq's variables
/// (`PGHOST`, `PGPORT`, `PGUSER`, `PGDATABASE`, `PGPASSWORD`, `PGPASSFILE` / `~/.pgpass`).
pub(crate) fn parse_config(name: &str, connection: &str) -> Result<tokio_postgres::Config> {
    let mut config =
        connection
            .parse::<tokio_postgres::Config>()
            .map_err(|e| Error::InvalidConnection {
                source_name: name.to_string(),
                message: connection_error_message(&e),
            })?;
    crate::pgenv::apply(&mut config, &|var| std::env::var(var).ok());
    Ok(config)
}

/// What is wrong with a connection string. tokio-postgres's own message is only "invalid
/// connection string"; the cause it carries names the option (`unknown option \`x\``,
/// `invalid value for option \`port\``) and never a value, so no password can show.
fn connection_error_message(error: &tokio_postgres::Error) -> String {
    use std::error::Error as _;
    match error.source() {
        Some(cause) => cause.to_string(),
        None => error.to_string(),
    }
}

/// `postgres://user:secret@host/db` -> `postgres://user:***@host/db`.
pub(crate) fn mask_password(connection: &str) -> String {
    let Some((scheme, rest)) = connection.split_once("://") else {
        return connection
            .split(' ')
            .map(|token| {
                if token.starts_with("password=") {
                    "password=***"
                } else {
                    token
                }
            })
            .collect::<Vec<_>>()
            .join(" ");
    };
    // tokio-postgres takes the credentials up to the first `@` and the password after their
    // first `:`; hide everything from there to the last `@`, so a password with an unencoded
    // `/`, `?` or `@` never shows.
    let (Some(first_at), Some(last_at)) = (rest.find('@'), rest.rfind('@')) else {
        return connection.to_string();
    };
    match rest[..first_at].split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***{}", &rest[last_at..]),
        None => connection.to_string(),
    }
}

#[async_trait::async_trait]
impl RowGetter for PostgresSource {
    async fn get_rows(&self, request: &FetchRequest<'_>) -> Result<Fetched, SourceError> {
        dwmon_core::collect_rows(self, request).await
    }

    /// Streams the result through a portal: each batch is one page of at most
    /// [`RowSink::batch_rows`] rows (`Execute` with a row limit), asked for only once the sink
    /// has taken the previous one, so a fetch holds one page whatever the result's size.
    /// The client timeout counts the time spent on the server and reading, not the sink's.
    async fn get_rows_batched(
        &self,
        request: &FetchRequest<'_>,
        sink: &mut dyn RowSink,
    ) -> Result<(), SourceError> {
        let named = routing::pick(&self.pools, request.source)?;
        let client_timeout = self.settings.client_timeout();
        let mut client = self.connection(request.source, named).await?;
        let mut fetch = Fetch {
            request,
            statement_timeout: self.settings.statement_timeout,
            read_only: self.settings.read_only,
            // The query's time starts once it has a connection.
            deadline: Instant::now() + client_timeout,
        };
        match fetch.run(&mut client, sink).await {
            Ok(()) => Ok(()),
            Err(Stop::Failed(error)) => Err(error),
            Err(Stop::TimedOut) => {
                // The server may still be running the query: cancel it, and never hand this
                // connection (mid-transaction, mid-result) to another fetch.
                let cancel = client.cancel_token();
                let tls = named.tls.clone();
                tokio::spawn(async move {
                    if let Err(error) = cancel.cancel_query(tls).await {
                        tracing::warn!(%error, "could not cancel a timed-out dwmon query");
                    }
                });
                drop(Object::take(client));
                Err(SourceError::Timeout {
                    millis: millis(client_timeout),
                })
            }
        }
    }
}

impl PostgresSource {
    /// A pooled connection of `named`, waiting at most the pool wait timeout.
    async fn connection(&self, source: &str, named: &NamedPool) -> Result<Object, SourceError> {
        let wait = self.settings.pool_wait_timeout();
        match tokio::time::timeout(wait, named.pool.get()).await {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(error)) => Err(pool_error(source, named, &error)),
            Err(_elapsed) => Err(SourceError::Connection {
                source_name: source.to_string(),
                message: format!(
                    "waited {} s for a connection to {} (pool size {}, all busy); raise the \
                     pool size or lower the concurrency of this source",
                    wait.as_secs_f64(),
                    named.shown,
                    self.settings.pool_size
                ),
            }),
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// One fetch on one pooled connection.
struct Fetch<'r, 'q> {
    request: &'r FetchRequest<'q>,
    statement_timeout: Duration,
    read_only: bool,
    /// The client-side bound: pushed back by the time the sink takes, which is not the
    /// query's.
    deadline: Instant,
}

/// Why a fetch stopped before its end.
enum Stop {
    /// The client deadline passed: the connection is in an unknown state.
    TimedOut,
    /// The query failed, or the sink refused a batch (its error, unchanged). The connection
    /// is usable: dropping the transaction rolls it back before any reuse.
    Failed(SourceError),
}

impl Fetch<'_, '_> {
    /// Runs the query in a transaction and hands its rows to `sink` page by page.
    ///
    /// A portal (rather than one `Execute` for the whole result, read as it comes) because
    /// the server then works only when asked for the next page: between pages the backend is
    /// idle in the transaction, so the server-side `statement_timeout` counts each page's
    /// work and never the time the store takes, and nothing waits in socket buffers. The
    /// portal lives inside the fetch's transaction, which keeps one server connection for
    /// the whole fetch, through pgbouncer's transaction pooling too.
    async fn run(&mut self, client: &mut Object, sink: &mut dyn RowSink) -> Result<(), Stop> {
        let transaction = self
            .within(client.build_transaction().read_only(self.read_only).start())
            .await?;
        // SET cannot take a bind parameter; the value is an integer we format ourselves.
        let set_timeout = format!(
            "SET LOCAL statement_timeout = {}",
            millis(self.statement_timeout)
        );
        self.within(transaction.batch_execute(&set_timeout)).await?;
        let statement = self.within(transaction.prepare(self.request.query)).await?;
        let (key_index, key_reader, timestamp_index, timestamp_reader) =
            self.columns(statement.columns()).map_err(Stop::Failed)?;
        let portal = self
            .within(transaction.bind_raw(&statement, std::iter::empty::<i32>()))
            .await?;
        let page_rows = i32::try_from(sink.batch_rows().max(1)).unwrap_or(i32::MAX);
        let mut row_number: u64 = 0;
        loop {
            let page = async {
                let rows = transaction.query_portal_raw(&portal, page_rows).await?;
                let mut rows = pin!(rows);
                let mut batch = Fetched::default();
                while let Some(row) = rows.try_next().await? {
                    row_number += 1;
                    let key = row.try_get::<_, Option<Raw<'_>>>(key_index);
                    let timestamp = row.try_get::<_, Option<Raw<'_>>>(timestamp_index);
                    let (key, timestamp) = match (key, timestamp) {
                        (Ok(key), Ok(timestamp)) => (key, timestamp),
                        (Err(error), _) | (_, Err(error)) => {
                            batch.reject(format!("row {row_number}: {error}"));
                            continue;
                        }
                    };
                    match convert_row(row_number, key_reader, key, timestamp_reader, timestamp) {
                        Ok(row) => batch.rows.push(row),
                        Err(reason) => batch.reject(reason),
                    }
                }
                // A suspended portal has more rows; a completed one says how many it had.
                let complete = rows.rows_affected().is_some();
                Ok::<_, tokio_postgres::Error>((batch, complete))
            };
            let (batch, complete) = self.within(page).await?;
            if !batch.rows.is_empty() || batch.rejected > 0 {
                let started = Instant::now();
                let accepted = sink.accept(batch).await;
                self.deadline += started.elapsed();
                accepted.map_err(Stop::Failed)?;
            }
            if complete {
                break;
            }
        }
        // Nothing was written (or may be); ending with ROLLBACK keeps it that way. The rows
        // are complete by now: a failing ROLLBACK (connection lost) does not spoil them, and
        // the pool replaces the connection.
        match tokio::time::timeout_at(self.deadline, transaction.rollback()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => {
                tracing::debug!(%error, source = self.request.source, "ROLLBACK after a fetch failed");
                Ok(())
            }
            Err(_elapsed) => Err(Stop::TimedOut),
        }
    }

    /// One step on the server, bounded by the client deadline.
    async fn within<T>(
        &self,
        step: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, Stop> {
        match tokio::time::timeout_at(self.deadline, step).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(Stop::Failed(self.error(&error))),
            Err(_elapsed) => Err(Stop::TimedOut),
        }
    }

    /// Finds the two columns and their readers from the prepared statement (so an empty
    /// result still gets its columns checked).
    fn columns(
        &self,
        columns: &[tokio_postgres::Column],
    ) -> Result<(usize, Reader, usize, Reader), SourceError> {
        let names: Vec<&str> = columns.iter().map(tokio_postgres::Column::name).collect();
        let (key_index, timestamp_index) =
            convert::find_columns(&names).ok_or_else(|| SourceError::MissingColumns {
                checker: self.request.checker.to_string(),
                found: names.iter().map(|n| n.to_string()).collect(),
            })?;
        let unsupported = |column: &str, ty: &tokio_postgres::types::Type, wanted: &str| {
            SourceError::Query {
                source_name: self.request.source.to_string(),
                message: format!(
                    "checker {:?}: column {column} has type {}, which dwmon cannot read as {wanted}; cast it in the query (e.g. {column}::{})",
                    self.request.checker,
                    ty.name(),
                    if column == KEY_COLUMN { "text" } else { "timestamptz" },
                ),
            }
        };
        let key_type = columns[key_index].type_();
        let key_reader =
            Reader::for_type(key_type).ok_or_else(|| unsupported(KEY_COLUMN, key_type, "a key"))?;
        let timestamp_type = columns[timestamp_index].type_();
        let timestamp_reader = Reader::for_type(timestamp_type)
            .filter(|reader| reader.reads_timestamps())
            .ok_or_else(|| unsupported(TIMESTAMP_COLUMN, timestamp_type, "a timestamp"))?;
        Ok((key_index, key_reader, timestamp_index, timestamp_reader))
    }

    fn error(&self, error: &tokio_postgres::Error) -> SourceError {
        query_error(self.request.source, self.statement_timeout, error)
    }
}

/// A converted row, or the reason it is rejected.
fn convert_row(
    row_number: u64,
    key_reader: Reader,
    key: Option<Raw<'_>>,
    timestamp_reader: Reader,
    timestamp: Option<Raw<'_>>,
) -> Result<Row, String> {
    let key = match key {
        None => {
            return Err(convert::rejection(
                row_number,
                KEY_COLUMN,
                None,
                &ValueError::Null,
            ))
        }
        Some(Raw(raw)) => key_reader
            .key(raw)
            .map_err(|message| format!("row {row_number}: {KEY_COLUMN} {message}"))?,
    };
    let timestamp = match timestamp {
        None => Err((ValueError::Null, None)),
        Some(Raw(raw)) => timestamp_reader
            .timestamp(raw)
            .map_err(|(error, shown)| (error, Some(shown))),
    };
    match timestamp {
        Ok(seconds) => Ok(Row::new(key, seconds)),
        Err((error, shown)) => Err(convert::rejection(
            row_number,
            TIMESTAMP_COLUMN,
            shown.as_deref(),
            &error,
        )),
    }
}

/// A driver error as a [`SourceError`]: the server cancelling the statement is a timeout, a
/// lost or refused connection is a connection error, anything else the query's fault.
fn query_error(
    source: &str,
    statement_timeout: Duration,
    error: &tokio_postgres::Error,
) -> SourceError {
    let connection = |message: String| SourceError::Connection {
        source_name: source.to_string(),
        message,
    };
    match error.as_db_error() {
        Some(db) if *db.code() == SqlState::QUERY_CANCELED => SourceError::Timeout {
            millis: millis(statement_timeout),
        },
        Some(db)
            if db.code().code().starts_with("08")
                || [
                    SqlState::ADMIN_SHUTDOWN,
                    SqlState::CRASH_SHUTDOWN,
                    SqlState::CANNOT_CONNECT_NOW,
                ]
                .contains(db.code()) =>
        {
            connection(describe(error))
        }
        Some(_) => SourceError::Query {
            source_name: source.to_string(),
            message: describe(error),
        },
        None => connection(describe(error)),
    }
}

fn pool_error(source: &str, named: &NamedPool, error: &PoolError) -> SourceError {
    let message = match error {
        PoolError::Backend(error) => describe(error),
        PoolError::Timeout(kind) => format!("timed out ({kind:?}) connecting"),
        other => other.to_string(),
    };
    SourceError::Connection {
        source_name: source.to_string(),
        message: format!("{message} ({})", named.shown),
    }
}

/// The error and its causes in one line, e.g. `error connecting to server: Connection refused
/// (os error 111)` or `db error: ERROR: relation "x" does not exist`.
fn describe(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        let mut text = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
        if let Some(detail) = db.detail() {
            text.push_str(&format!(" (detail: {detail})"));
        }
        if let Some(hint) = db.hint() {
            text.push_str(&format!(" (hint: {hint})"));
        }
        return text;
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
    fn passwords_are_masked() {
        assert_eq!(
            mask_password("postgres://u:secret@h:5432/d?sslmode=require"),
            "postgres://u:***@h:5432/d?sslmode=require"
        );
        assert_eq!(mask_password("postgres://u@h/d"), "postgres://u@h/d");
        for url in ["postgres://u:s/e?c@h/d", "postgres://u:se@cret@h/d"] {
            assert_eq!(mask_password(url), "postgres://u:***@h/d");
        }
        assert_eq!(
            mask_password("host=h password=secret user=u"),
            "host=h password=*** user=u"
        );
    }

    #[test]
    fn builder_errors() {
        assert_eq!(
            PostgresSource::builder().build().unwrap_err(),
            Error::NoSources
        );
        assert_eq!(
            PostgresSource::builder()
                .source(" x", "postgres://h/d")
                .unwrap_err(),
            Error::InvalidName(" x".into())
        );
        let duplicate = PostgresSource::builder()
            .source("a", "postgres://h/d")
            .and_then(|b| b.source("a", "postgres://h/e"));
        assert_eq!(duplicate.unwrap_err(), Error::DuplicateName("a".into()));
        let invalid = PostgresSource::builder()
            .source("a", "postgres://h/d?nonsense=1")
            .unwrap_err();
        assert!(
            matches!(invalid, Error::InvalidConnection { .. }),
            "{invalid:?}"
        );
        let zero = PostgresSource::builder()
            .source("a", "postgres://h/d")
            .map(|b| b.pool_size(0))
            .and_then(PostgresSourceBuilder::build)
            .unwrap_err();
        assert!(matches!(
            zero,
            Error::InvalidSetting {
                setting: "pool_size",
                ..
            }
        ));
    }

    #[test]
    fn an_invalid_connection_string_says_what_is_wrong_without_the_password() {
        let cases = [
            ("postgres://u:hunter2@h/d?nonsense=1", "nonsense"),
            ("postgres://u:hunter2@h:99999/d", "port"),
            ("host=h password=hunter2 sslmode=sometimes", "sslmode"),
            (
                "postgres://u:hunter2@h/d?connect_timeout=soon",
                "connect_timeout",
            ),
        ];
        for (connection, named) in cases {
            let error = PostgresSource::builder()
                .source("a", connection)
                .unwrap_err()
                .to_string();
            assert!(error.contains(named), "{connection}: {error}");
            assert!(!error.contains("hunter2"), "{connection}: {error}");
            assert!(
                !error.ends_with("invalid connection string: invalid connection string"),
                "{error}"
            );
        }
    }

    #[test]
    fn client_timeout_defaults_to_statement_plus_connect() {
        let settings = Settings {
            statement_timeout: Duration::from_secs(30),
            client_timeout: None,
            connect_timeout: Duration::from_secs(10),
            pool_size: 1,
            pool_wait_timeout: None,
            read_only: true,
        };
        assert_eq!(settings.client_timeout(), Duration::from_secs(40));
        assert_eq!(settings.pool_wait_timeout(), Duration::from_secs(40));
        let explicit = Settings {
            client_timeout: Some(Duration::from_secs(3)),
            ..settings
        };
        assert_eq!(explicit.client_timeout(), Duration::from_secs(3));
    }
}
