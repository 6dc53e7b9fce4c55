//! [`PostgresStore`]: the handle, its pool, its options and the transaction every operation
//! runs in.

use crate::error::{is_retryable, ResultExt};
use crate::schema;
use crate::seen::SharedSeen;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use dwmon_core::store::Cause;
use dwmon_core::StoreError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio_postgres::types::{ToSql, Type};

/// How to open a [`PostgresStore`]; `PostgresStoreOptions::default()` is what
/// [`PostgresStore::connect`] uses.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PostgresStoreOptions {
    /// How long a runner's claim on a checker holds without being claimed again (every cycle
    /// claims its checkers again). A runner that dies is replaced once its claims run out, so
    /// this bounds how late a dead runner's checkers are checked; it must be longer than a
    /// cycle's fetches take (a slower fetch is refused by the fence, and its minutes are
    /// checked by the runner that took over). Measured on the database's clock. Default 120 s.
    pub lease: Duration,
    /// `statement_timeout` of every transaction (`set_config(.., true)`: transaction-local, so
    /// it never leaks to another client through PgBouncer). Default 30 s.
    pub statement_timeout: Duration,
    /// Connections in the pool. Default 8.
    pub pool_size: usize,
    /// How long connecting (and waiting for a pooled connection) may take. Default 10 s.
    pub connect_timeout: Duration,
    /// This runner's name in claims and leases; `None`: the host name, so a runner restarted
    /// on its host (or the next `dwmon once`) takes its claims back at once. Several runners on
    /// one host need a name each: handles with one name are one runner to the store (their
    /// claims are each other's, and the fence still refuses the older one's record).
    pub owner: Option<String>,
    /// Open an existing store only, and write nothing: no table is created or migrated, and
    /// every transaction is read-only (for status views, which must not create a store by
    /// looking at it). Opening a schema without a store of this version fails with
    /// [`StoreError::Open`] naming the schema. Default `false`.
    pub read_only: bool,
    /// How many key hashes the in-process cache of stored keys may hold (about 9 bytes each);
    /// 0 disables it. A checker's cached keys are used only while this runner holds its claim
    /// and nobody else has deleted its rows since (see the crate docs). Default 16 M (about
    /// 150 MiB at most).
    pub seen_cache_capacity: u64,
    /// Whether the frequent statements are prepared once per connection (named prepared
    /// statements, cached) instead of parsed and planned on every call. Turn it off behind a
    /// connection pooler in transaction mode that does not track prepared statements
    /// (PgBouncer before 1.21, or without `max_prepared_statements`): there a named statement
    /// may not exist on the server connection a transaction gets. Default `true`.
    pub prepared_statements: bool,
}

impl Default for PostgresStoreOptions {
    fn default() -> Self {
        PostgresStoreOptions {
            lease: Duration::from_secs(120),
            statement_timeout: Duration::from_secs(30),
            pool_size: 8,
            connect_timeout: Duration::from_secs(10),
            owner: None,
            read_only: false,
            seen_cache_capacity: 16 * 1024 * 1024,
            prepared_statements: true,
        }
    }
}

impl PostgresStoreOptions {
    /// These options with a lease of `lease`.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// These options with `owner` as the runner's name.
    pub fn with_owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// These options with a `statement_timeout` of `timeout`.
    pub fn with_statement_timeout(mut self, timeout: Duration) -> Self {
        self.statement_timeout = timeout;
        self
    }

    /// These options for an existing store, read only ([`PostgresStoreOptions::read_only`]).
    pub fn with_read_only(mut self) -> Self {
        self.read_only = true;
        self
    }

    /// These options with a cache of at most `keys` stored keys (0: none).
    pub fn with_seen_cache_capacity(mut self, keys: u64) -> Self {
        self.seen_cache_capacity = keys;
        self
    }

    /// These options with named prepared statements on or off
    /// ([`PostgresStoreOptions::prepared_statements`]).
    pub fn with_prepared_statements(mut self, prepared: bool) -> Self {
        self.prepared_statements = prepared;
        self
    }

    /// These options with `size` pooled connections.
    pub fn with_pool_size(mut self, size: usize) -> Self {
        self.pool_size = size;
        self
    }
}

pub(crate) struct Inner {
    pub(crate) pool: Pool,
    /// The connection string with its password masked: what errors and logs show.
    pub(crate) location: String,
    pub(crate) owner: String,
    pub(crate) lease_seconds: f64,
    pub(crate) timeout_ms: String,
    /// [`PostgresStoreOptions::read_only`].
    pub(crate) read_only: bool,
    /// Checker name -> id, for checkers known to be committed.
    pub(crate) ids: Mutex<HashMap<String, i64>>,
    /// Outbox key -> the lease fence this handle got for it from `claim_deliveries`.
    pub(crate) delivery_fences: Mutex<HashMap<String, i64>>,
    /// The cache of stored keys, with the claims it is valid under (`None`: disabled).
    pub(crate) seen: Option<SharedSeen>,
    /// [`PostgresStoreOptions::prepared_statements`].
    pub(crate) prepared: bool,
    /// Set once the tables are created or migrated ([`PostgresStore::ready`]).
    pub(crate) migrated: tokio::sync::OnceCell<()>,
}

/// The PostgreSQL [`Store`](dwmon_core::Store): first-seen rows, the check log, the delivery
/// outbox, checker claims with fencing tokens and the alert state, in the schema the
/// connection's `search_path` names first. Several runners (processes, or handles) share one
/// store; see the crate docs for what each guarantees. Cheap to clone (clones share the pool).
///
/// ```no_run
/// # async fn open() -> Result<(), dwmon_core::StoreError> {
/// use dwmon_postgres_store::PostgresStore;
/// let store = PostgresStore::connect("postgres://dwmon@db/ops?options=-csearch_path%3Ddwmon").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("location", &self.inner.location)
            .field("owner", &self.inner.owner)
            .finish_non_exhaustive()
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn to_i64(value: impl TryInto<i64>, what: &str) -> Result<i64, StoreError> {
    value
        .try_into()
        .map_err(|_| StoreError::backend(format!("{what} does not fit a 64-bit integer")))
}

pub(crate) fn to_u64(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::backend(format!("{what} is negative: {value}")))
}

/// Whether `error` is a deadlock or serialization failure (the transaction may run again).
pub(crate) fn retryable(error: &StoreError) -> bool {
    std::error::Error::source(error)
        .and_then(|source| source.downcast_ref::<tokio_postgres::Error>())
        .is_some_and(is_retryable)
}

/// A statement's parameters with their types (`query_typed`).
pub(crate) type Params<'a> = [(&'a (dyn ToSql + Sync), Type)];

/// What a [`PostgresStore::pipelined`] transaction does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    Write,
}

/// How many times a transaction rolled back by a deadlock or serialization failure is run.
pub(crate) const ATTEMPTS: usize = 4;

/// The host name: a runner restarted on the same host takes its claims back at once. Two
/// runners on one host need owners of their own ([`PostgresStoreOptions::owner`]).
fn default_owner() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "runner".to_owned())
}

impl PostgresStore {
    /// Connects with default options, creating or migrating the store's tables.
    ///
    /// # Errors
    /// As [`PostgresStore::connect_with`].
    pub async fn connect(connection: &str) -> Result<Self, StoreError> {
        Self::connect_with(connection, &PostgresStoreOptions::default()).await
    }

    /// Connects to `connection` (a `postgres://` URL or `key=value` string; the password
    /// may come from `PGPASSWORD` or the password file instead), then creates or migrates
    /// the store in the connection's schema.
    ///
    /// # Errors
    /// [`StoreError::Open`] when the string is invalid, the server cannot be reached or the
    /// schema does not exist; [`StoreError::SchemaTooNew`]; [`StoreError::NotAStore`] for a
    /// schema holding `dwmon_` tables of no known version.
    pub async fn connect_with(
        connection: &str,
        options: &PostgresStoreOptions,
    ) -> Result<Self, StoreError> {
        let store = Self::open_lazily(connection, options)?;
        store.ready().await?;
        Ok(store)
    }

    /// A store on `connection` that connects (and creates or migrates its tables) on first
    /// use, for callers that cannot wait here; [`PostgresStore::ready`] connects at once.
    ///
    /// # Errors
    /// [`StoreError::Open`] when the connection string or the options are invalid.
    pub fn open_lazily(
        connection: &str,
        options: &PostgresStoreOptions,
    ) -> Result<Self, StoreError> {
        let location = dwmon_postgres_source::connection::mask_password(connection);
        let open = |source: Cause| StoreError::Open {
            path: location.clone(),
            source,
        };
        let (mut config, tls) =
            dwmon_postgres_source::connection::client_config("store", connection)
                .map_err(|e| open(Cause::new(e)))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        if config.get_application_name().is_none() {
            config.application_name("dwmon store");
        }
        if options.pool_size == 0 {
            return Err(open(Cause::text("pool_size must be at least 1")));
        }
        let manager = Manager::from_config(
            config,
            tls,
            ManagerConfig {
                // A connection the server dropped (restart, pg_terminate_backend) is noticed
                // before reuse and replaced.
                recycling_method: RecyclingMethod::Verified,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .create_timeout(Some(options.connect_timeout))
            .wait_timeout(Some(options.connect_timeout))
            .recycle_timeout(Some(options.connect_timeout))
            .build()
            .map_err(|e| open(Cause::new(e)))?;
        let timeout_ms = options.statement_timeout.as_millis().max(1).to_string();
        let store = PostgresStore {
            inner: Arc::new(Inner {
                pool,
                location: location.clone(),
                owner: options.owner.clone().unwrap_or_else(default_owner),
                lease_seconds: options.lease.as_secs_f64(),
                timeout_ms,
                read_only: options.read_only,
                ids: Mutex::new(HashMap::new()),
                delivery_fences: Mutex::new(HashMap::new()),
                seen: (options.seen_cache_capacity > 0)
                    .then(|| SharedSeen::new(options.seen_cache_capacity)),
                prepared: options.prepared_statements,
                migrated: tokio::sync::OnceCell::new(),
            }),
        };
        Ok(store)
    }

    /// Connects and creates or migrates the store's tables, if not done yet (every other
    /// operation does it first too).
    ///
    /// # Errors
    /// [`StoreError::Open`] when the server cannot be reached or the schema does not exist;
    /// [`StoreError::SchemaTooNew`]; [`StoreError::NotAStore`] for a schema holding `dwmon_`
    /// tables of no known version.
    pub async fn ready(&self) -> Result<(), StoreError> {
        self.inner
            .migrated
            .get_or_try_init(|| async {
                let location = self.location();
                let mut client = self.pooled().await.map_err(|e| match e {
                    StoreError::Backend { source, .. } => StoreError::Open {
                        path: location.to_owned(),
                        source,
                    },
                    other => other,
                })?;
                if self.inner.read_only {
                    return schema::check_existing(&mut client, location, &self.inner.timeout_ms)
                        .await;
                }
                schema::migrate(
                    &mut client,
                    location,
                    schema::MIGRATIONS,
                    &self.inner.timeout_ms,
                )
                .await
                .map(|_| ())
            })
            .await
            .copied()
    }

    /// The schema the connection's `search_path` names and the version of the dwmon store in
    /// it (`None`: no store there yet), read without creating anything.
    ///
    /// # Errors
    /// [`StoreError::Open`] when the server cannot be reached or the schema does not exist.
    pub async fn stored_version(&self) -> Result<(String, Option<i64>), StoreError> {
        let location = self.location();
        let mut client = self.pooled().await.map_err(|e| match e {
            StoreError::Backend { source, .. } => StoreError::Open {
                path: location.to_owned(),
                source,
            },
            other => other,
        })?;
        schema::stored_version(&mut client, location, &self.inner.timeout_ms).await
    }

    /// The connection string with its password masked.
    pub fn location(&self) -> &str {
        &self.inner.location
    }

    /// This handle's name in claims and leases.
    pub fn owner(&self) -> &str {
        &self.inner.owner
    }

    /// How many stored keys the in-process cache holds now.
    pub fn cached_keys(&self) -> u64 {
        self.inner.seen.as_ref().map_or(0, |s| s.cache.len())
    }

    /// The schema version this build reads and writes.
    pub fn schema_version() -> i64 {
        schema::SCHEMA_VERSION
    }

    /// The database's clock (`clock_timestamp()`), epoch milliseconds: the one clock several
    /// runners agree on ([`DatabaseClock`](crate::DatabaseClock) follows it).
    ///
    /// # Errors
    /// Any backend failure.
    pub async fn database_millis(&self) -> Result<i64, StoreError> {
        let mut client = self.client().await?;
        let tx = self.begin(&mut client).await?;
        let millis: i64 = tx
            .query_typed_one(
                "SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint",
                &[],
            )
            .await
            .store_err(self.location())?
            .try_get(0)
            .store_err(self.location())?;
        tx.commit().await.store_err(self.location())?;
        Ok(millis)
    }

    /// A pooled connection to a store whose tables are ready.
    pub(crate) async fn client(&self) -> Result<Object, StoreError> {
        self.ready().await?;
        self.pooled().await
    }

    /// A pooled connection.
    async fn pooled(&self) -> Result<Object, StoreError> {
        self.inner.pool.get().await.map_err(|error| match error {
            deadpool_postgres::PoolError::Backend(e) => crate::error::map_error(self.location(), e),
            other => StoreError::other(self.location(), other),
        })
    }

    /// Begins a read-write transaction with the store's statement timeout (read-only for a
    /// [read-only](PostgresStoreOptions::read_only) handle: it writes nothing).
    pub(crate) async fn begin<'a>(
        &self,
        client: &'a mut Object,
    ) -> Result<deadpool_postgres::Transaction<'a>, StoreError> {
        let tx = client
            .build_transaction()
            .read_only(self.inner.read_only)
            .start()
            .await
            .store_err(self.location())?;
        self.set_timeout(&tx).await?;
        Ok(tx)
    }

    /// Runs `statements` (in order) as one transaction in one round trip: `BEGIN` (read-only
    /// for [`Access::Read`] or a read-only handle), the statement timeout, the statements and
    /// `COMMIT` are queued on the connection together and answered in order. A failed
    /// statement aborts the transaction and its `COMMIT` rolls back; the first error is
    /// returned. For transactions whose statements do not depend on each other's answers.
    /// With [`PostgresStoreOptions::prepared_statements`] each statement is prepared once per
    /// connection (a round trip each, the first time only).
    pub(crate) async fn pipelined(
        &self,
        access: Access,
        statements: &[(&str, &Params<'_>)],
    ) -> Result<Vec<Vec<tokio_postgres::Row>>, StoreError> {
        self.pipeline(access, self.inner.prepared, statements).await
    }

    /// [`PostgresStore::pipelined`] with its statements parsed on the call, never prepared:
    /// for transactions of once a cycle (claims, renewals), where a prepared statement per
    /// pooled connection saves next to nothing.
    pub(crate) async fn pipelined_unprepared(
        &self,
        access: Access,
        statements: &[(&str, &Params<'_>)],
    ) -> Result<Vec<Vec<tokio_postgres::Row>>, StoreError> {
        self.pipeline(access, false, statements).await
    }

    async fn pipeline(
        &self,
        access: Access,
        prepare: bool,
        statements: &[(&str, &Params<'_>)],
    ) -> Result<Vec<Vec<tokio_postgres::Row>>, StoreError> {
        use futures::future::{maybe_done, BoxFuture, FutureExt};
        let location = self.location();
        let client = self.client().await?;
        let begin = if access == Access::Read || self.inner.read_only {
            "BEGIN READ ONLY"
        } else {
            "BEGIN"
        };
        // Declared before the requests that borrow them.
        let values: Vec<Vec<&(dyn ToSql + Sync)>> = statements
            .iter()
            .map(|(_, params)| params.iter().map(|(v, _)| *v).collect())
            .collect();
        let mut prepared = Vec::with_capacity(statements.len());
        let connection: &tokio_postgres::Client = &client;
        type Answer<'a> = futures::future::MaybeDone<
            BoxFuture<'a, Result<Vec<tokio_postgres::Row>, tokio_postgres::Error>>,
        >;
        // tokio-postgres queues a request on its future's first poll: one poll each, in
        // order, sends them in this order before any answer is awaited.
        fn send(parts: &mut [Answer<'_>]) {
            let mut context = std::task::Context::from_waker(futures::task::noop_waker_ref());
            for part in parts {
                let _ = part.poll_unpin(&mut context);
            }
        }
        let timeout: [(&(dyn ToSql + Sync), Type); 1] = [(&self.inner.timeout_ms, Type::TEXT)];
        let mut parts: Vec<Answer<'_>> = Vec::with_capacity(statements.len() + 3);
        parts.push(maybe_done(
            connection
                .batch_execute(begin)
                .map(|r| r.map(|()| Vec::new()))
                .boxed(),
        ));
        parts.push(maybe_done(
            connection
                .query_typed("SELECT set_config('statement_timeout', $1, true)", &timeout)
                .boxed(),
        ));
        send(&mut parts);
        // Prepared once per connection, inside the transaction (so under its timeout): a
        // round trip each the first time, none once cached.
        for (sql, params) in statements {
            prepared.push(if prepare {
                let types: Vec<Type> = params.iter().map(|(_, t)| t.clone()).collect();
                match client.prepare_typed_cached(sql, &types).await {
                    Ok(statement) => Some(statement),
                    Err(error) => {
                        // The transaction is open: end it before the connection goes back.
                        let _ = connection.batch_execute("ROLLBACK").await;
                        return Err(error).store_err(location);
                    }
                }
            } else {
                None
            });
        }
        let first = parts.len();
        for (((sql, params), prepared), values) in statements.iter().zip(&prepared).zip(&values) {
            parts.push(maybe_done(match prepared {
                Some(statement) => connection.query(statement, values).boxed(),
                None => connection.query_typed(sql, params).boxed(),
            }));
        }
        parts.push(maybe_done(
            connection
                .batch_execute("COMMIT")
                .map(|r| r.map(|()| Vec::new()))
                .boxed(),
        ));
        send(&mut parts[first..]);
        let mut answers = Vec::with_capacity(parts.len());
        for mut part in parts {
            (&mut part).await;
            let answer = std::pin::Pin::new(&mut part).take_output();
            answers.push(answer.unwrap_or_else(|| Ok(Vec::new())));
        }
        // BEGIN, the timeout, the statements, COMMIT: the first error wins.
        let commit = answers.pop().unwrap_or_else(|| Ok(Vec::new()));
        let mut answers = answers.into_iter();
        for _ in 0..2 {
            answers.next().transpose().store_err(location)?;
        }
        let answers = answers.collect::<Result<Vec<_>, _>>().store_err(location)?;
        commit.store_err(location)?;
        Ok(answers)
    }

    /// [`PostgresStore::pipelined`] of one statement: its rows.
    pub(crate) async fn one_statement(
        &self,
        access: Access,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        let mut answers = self.pipelined(access, &[(sql, params)]).await?;
        Ok(answers.pop().unwrap_or_default())
    }

    /// Begins a read-only transaction seeing one snapshot (repeatable read).
    pub(crate) async fn begin_read<'a>(
        &self,
        client: &'a mut Object,
    ) -> Result<deadpool_postgres::Transaction<'a>, StoreError> {
        let tx = client
            .build_transaction()
            .read_only(true)
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .start()
            .await
            .store_err(self.location())?;
        self.set_timeout(&tx).await?;
        Ok(tx)
    }

    /// Sets the transaction's `statement_timeout` without a round trip of its own: the
    /// statement is sent at once (tokio-postgres queues it on the first poll) and its answer
    /// is not awaited, so it reaches the server ahead of the transaction's next statement,
    /// in whose round trip its answer arrives (and is dropped). Should it fail, the
    /// transaction is aborted and that next statement fails.
    async fn set_timeout(&self, tx: &tokio_postgres::Transaction<'_>) -> Result<(), StoreError> {
        use futures::FutureExt;
        let sent = tx
            .query_typed(
                "SELECT set_config('statement_timeout', $1, true)",
                &[(&self.inner.timeout_ms, Type::TEXT)],
            )
            .now_or_never();
        if let Some(Err(error)) = sent {
            return Err(error).store_err(self.location());
        }
        Ok(())
    }

    /// The id of `checker`, if the store knows it.
    pub(crate) async fn checker_id(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        checker: &str,
    ) -> Result<Option<i64>, StoreError> {
        if let Some(&id) = lock(&self.inner.ids).get(checker) {
            return Ok(Some(id));
        }
        let row = tx
            .query_typed_opt(
                "SELECT id FROM dwmon_checkers WHERE name = $1",
                &[(&checker, Type::TEXT)],
            )
            .await
            .store_err(self.location())?;
        let id: Option<i64> = row
            .map(|r| r.try_get(0))
            .transpose()
            .store_err(self.location())?;
        if let Some(id) = id {
            lock(&self.inner.ids).insert(checker.to_owned(), id);
        }
        Ok(id)
    }

    /// The id of `checker`, registered (in its own small transaction) if new.
    pub(crate) async fn checker_id_for_write(&self, checker: &str) -> Result<i64, StoreError> {
        if let Some(&id) = lock(&self.inner.ids).get(checker) {
            return Ok(id);
        }
        let mut client = self.client().await?;
        let tx = self.begin(&mut client).await?;
        tx.query_typed(
            "INSERT INTO dwmon_checkers (name) VALUES ($1) ON CONFLICT (name) DO NOTHING",
            &[(&checker, Type::TEXT)],
        )
        .await
        .store_err(self.location())?;
        let id = self.checker_id(&tx, checker).await?;
        tx.commit().await.store_err(self.location())?;
        id.ok_or_else(|| {
            StoreError::backend(format!(
                "{}: checker {checker:?} vanished after insert",
                self.location()
            ))
        })
    }
}
