//! [`SqliteStore`]: the embedded default [`Store`].

use crate::error::{map_error, ResultExt};
use crate::rows;
use crate::schema;
use async_trait::async_trait;
use dwmon_core::seen_cache::SeenCache;
use dwmon_core::store::{
    Cause, CheckLog, CheckerClaim, Lease, LocalFences, Recorded, RequirementStatus, Retry,
    RowStore, Settlement, StoreView,
};
use dwmon_core::{
    CheckRecord, CheckerStatus, OutboxSummary, PendingDelivery, RecentLine, Row, Status,
    StatusHistory, StoreError,
};
use rusqlite::{
    params, Connection, ErrorCode, OpenFlags, OptionalExtension, Transaction, TransactionBehavior,
};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// How hard SQLite works to make a commit durable (`PRAGMA synchronous`, in WAL mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// `synchronous = NORMAL`: a commit is in the WAL (the OS has it) when it returns, and
    /// the WAL is fsynced at checkpoints, which the store runs at least every
    /// [`SqliteStoreOptions::checkpoint_interval`]. Survives any process crash (`kill -9`);
    /// a power loss or OS crash may roll back the commits of that last interval, never
    /// corrupt the file. dwmon then re-checks those minutes (they are still inside the
    /// horizon) and re-delivers with the same idempotency keys. The default: a cycle commits
    /// thousands of small transactions, and an fsync each would cost more than the whole
    /// cycle budget.
    #[default]
    Normal,
    /// `synchronous = FULL`: the WAL is fsynced at every commit, so a commit survives power
    /// loss too, at the price of one fsync per transaction.
    Full,
}

/// How to open a [`SqliteStore`]. `SqliteStoreOptions::default()` is what
/// [`SqliteStore::open`] uses.
#[derive(Debug, Clone)]
pub struct SqliteStoreOptions {
    /// How long a statement waits for another connection's lock before failing with
    /// [`StoreError::Busy`]. Default 5 s.
    pub busy_timeout: Duration,
    /// Commit durability. Default [`Durability::Normal`].
    pub durability: Durability,
    /// Open for reading only (status views): nothing is created or migrated, writes fail with
    /// [`StoreError::ReadOnly`].
    pub read_only: bool,
    /// Caps the database file at this many pages (`PRAGMA max_page_count`); writes beyond it
    /// fail with [`StoreError::Full`]. `None`: SQLite's default (effectively unlimited).
    pub max_page_count: Option<u64>,
    /// SQLite page cache per connection, KiB. Default 16 MiB: the steady-state and catch-up
    /// benchmarks run as fast as with 32 MiB, and `dwmon serve` stays under 64 MB through a
    /// 60 s flood of pings into a growing store.
    pub page_cache_kib: u64,
    /// Page size in bytes for a newly created store (a power of two, 512-65536); existing
    /// stores keep theirs. Default 4 KiB (SQLite's): measured at the scale of README "Performance", 16 KiB pages
    /// ingest a bulk of new rows about 20% faster but make the steady-state cycle about 60%
    /// slower (every small commit writes whole pages to the WAL).
    pub page_size: u32,
    /// With [`Durability::Normal`], a write checkpoints the WAL (fsyncing it) when the last
    /// checkpoint is older than this, bounding what a power loss can roll back. Default 10 s.
    pub checkpoint_interval: Duration,
    /// How many key hashes the in-process cache of stored keys may hold (about 9 bytes
    /// each); 0 disables it. Default 16 M (about 150 MiB at most). See the crate docs.
    pub seen_cache_capacity: u64,
}

impl Default for SqliteStoreOptions {
    fn default() -> Self {
        SqliteStoreOptions {
            busy_timeout: Duration::from_secs(5),
            durability: Durability::Normal,
            read_only: false,
            max_page_count: None,
            page_cache_kib: 16 * 1024,
            page_size: 4096,
            checkpoint_interval: Duration::from_secs(10),
            seen_cache_capacity: 16 * 1024 * 1024,
        }
    }
}

/// The connection and what is cached about it; only ever touched under [`Inner::conn`].
pub(crate) struct Conn {
    pub(crate) conn: Connection,
    /// Checker name -> id, for checkers known to be committed.
    ids: HashMap<String, i64>,
    /// `PRAGMA data_version` when last looked: a change means another connection committed.
    data_version: i64,
}

pub(crate) struct Inner {
    pub(crate) path: String,
    read_only: bool,
    conn: Mutex<Conn>,
    seen: Option<SeenCache>,
    /// Acknowledged deliveries not yet deleted from the outbox (see [`SqliteStore::flush`]).
    acks: Mutex<Vec<String>>,
    /// When to checkpoint next and how often (`None`: SQLite's own checkpoints suffice).
    next_checkpoint: Mutex<Option<(Instant, Duration)>>,
    /// Checker claims: a single-runner store grants every claim ([`LocalFences`]).
    fences: LocalFences,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let acks = std::mem::take(self.acks.get_mut().unwrap_or_else(PoisonError::into_inner));
        if acks.is_empty() {
            return;
        }
        let conn = &mut self
            .conn
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .conn;
        if let Err(error) = delete_acked(&self.path, conn, &acks) {
            tracing::warn!(store = %self.path, %error, "acknowledged deliveries stay in the outbox");
        }
    }
}

/// Buffered acknowledgements are written at the latest when this many are waiting.
const ACK_BUFFER: usize = 512;

/// Deletes acknowledged outbox entries in one transaction.
fn delete_acked(path: &str, conn: &mut Connection, acks: &[String]) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .store_err(path)?;
    delete_in(path, &tx, acks)?;
    tx.commit().store_err(path)
}

fn delete_in(path: &str, tx: &Transaction<'_>, acks: &[String]) -> Result<(), StoreError> {
    let mut delete = tx
        .prepare_cached("DELETE FROM outbox WHERE key = ?1")
        .store_err(path)?;
    for key in acks {
        delete.execute([key]).store_err(path)?;
    }
    Ok(())
}

/// Runs `job` in a write transaction. With `with_acks` (for jobs that always write), the
/// buffered acknowledgements are applied in the same transaction, so a cycle's acks ride along
/// with its next write instead of costing a commit each. On failure nothing is written and the
/// acknowledgements stay buffered.
pub(crate) fn write_tx<T>(
    inner: &Inner,
    conn: &mut Connection,
    with_acks: bool,
    job: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let path = inner.path.as_str();
    let acks = if with_acks {
        std::mem::take(&mut *lock(&inner.acks))
    } else {
        Vec::new()
    };
    let result = (|| {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .store_err(path)?;
        if !acks.is_empty() {
            delete_in(path, &tx, &acks)?;
        }
        let value = job(&tx)?;
        tx.commit().store_err(path)?;
        Ok(value)
    })();
    if result.is_err() && !acks.is_empty() {
        lock(&inner.acks).extend(acks);
    }
    if result.is_ok() {
        checkpoint_if_due(inner, conn);
    }
    result
}

/// Runs a passive WAL checkpoint (which fsyncs the WAL) when the interval has passed.
fn checkpoint_if_due(inner: &Inner, conn: &Connection) {
    let mut next = lock(&inner.next_checkpoint);
    let Some((at, interval)) = *next else {
        return;
    };
    let now = Instant::now();
    if now < at {
        return;
    }
    *next = Some((now + interval, interval));
    // A failed checkpoint is retried at the next interval; the data is already committed.
    if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
        tracing::warn!(store = %inner.path, %error, "WAL checkpoint failed");
    }
}

/// Writes buffered acknowledgements now, if any.
fn flush_acks(inner: &Inner, conn: &mut Connection) -> Result<(), StoreError> {
    if inner.read_only || lock(&inner.acks).is_empty() {
        return Ok(());
    }
    write_tx(inner, conn, true, |_| Ok(()))
}

/// The SQLite [`Store`](dwmon_core::Store): one file holding first-seen rows, the check log and the delivery
/// outbox. Cheap to clone (clones share one connection). See the crate docs for the schema,
/// durability and the cache of seen keys.
///
/// ```
/// use dwmon_core::{Row, RowStore};
/// use dwmon_sqlite::SqliteStore;
///
/// # fn main() -> Result<(), dwmon_core::StoreError> {
/// let dir = tempfile::tempdir().unwrap();
/// let store = SqliteStore::open(dir.path().join("dwmon.sqlite"))?;
/// # block_on(async {
/// store.insert_first_seen("backups", &[Row::new("b1", 100), Row::new("b2", 160)]).await?;
/// assert_eq!(store.count("backups", 60, 180).await?, 2);
/// # Ok::<(), dwmon_core::StoreError>(())
/// # })?;
/// # Ok(())
/// # }
/// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

/// What an insert attempt found.
enum InsertOutcome {
    /// Done; this many rows were new.
    Inserted(u64),
    /// Another connection changed the store since the cache was consulted; the cache has
    /// been cleared and the batch must be redone without it.
    Stale,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn to_i64(value: impl TryInto<i64>, what: &str) -> Result<i64, StoreError> {
    value
        .try_into()
        .map_err(|_| StoreError::backend(format!("{what} does not fit a 64-bit integer")))
}

fn to_u64(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::backend(format!("{what} is negative: {value}")))
}

impl SqliteStore {
    /// Opens (creating it if needed) the store at `path` with default options, migrating an
    /// older schema.
    ///
    /// # Errors
    /// [`StoreError::Open`] if the file cannot be opened or created, [`StoreError::NotAStore`]
    /// for a file that is not a dwmon store, [`StoreError::SchemaTooNew`],
    /// [`StoreError::ReadOnly`] for a file that cannot be written.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, &SqliteStoreOptions::default())
    }

    /// Opens the store at `path` for status views: read-only, nothing created or migrated.
    ///
    /// # Errors
    /// As [`SqliteStore::open`]; also [`StoreError::Open`] if the file does not exist.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let options = SqliteStoreOptions {
            read_only: true,
            ..SqliteStoreOptions::default()
        };
        let shown = path.as_ref().display().to_string();
        let conn = open_read_only_connection(path.as_ref()).map_err(|e| open_error(&shown, e))?;
        Self::setup(conn, shown, &options)
    }

    /// Opens the store at `path` with `options`.
    ///
    /// # Errors
    /// As [`SqliteStore::open`].
    pub fn open_with(
        path: impl AsRef<Path>,
        options: &SqliteStoreOptions,
    ) -> Result<Self, StoreError> {
        let path_text = path.as_ref().display().to_string();
        let flags = if options.read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        let conn = Connection::open_with_flags(path.as_ref(), flags)
            .map_err(|error| open_error(&path_text, error))?;
        let small = std::fs::metadata(path.as_ref())
            .is_ok_and(|metadata| metadata.len() < Self::QUICK_CHECK_MAX_BYTES);
        if !options.read_only && small {
            conn.busy_timeout(options.busy_timeout)
                .store_err(&path_text)?;
            let problems =
                check_pages(&conn, "quick_check").map_err(|error| open_error(&path_text, error))?;
            if !problems.is_empty() {
                return Err(StoreError::Open {
                    source: Cause::text(format!(
                        "the file is damaged (PRAGMA quick_check: {}); `dwmon doctor --store \
                         {path_text}` lists the damage. Restore a backup, or move the file \
                         away to start a new store",
                        problems.join("; ")
                    )),
                    path: path_text,
                });
            }
        }
        Self::setup(conn, path_text, options)
    }

    /// Stores smaller than this are checked with `PRAGMA quick_check` (which reads every page)
    /// when opened for writing, so a damaged file is refused with a clear error instead of
    /// being used (a 46 MiB file took 0.2 s, its full integrity check 0.9 s); larger stores are
    /// checked on demand with [`SqliteStore::integrity_check`] (`dwmon doctor`).
    pub const QUICK_CHECK_MAX_BYTES: u64 = 64 * 1024 * 1024;

    /// Checks every page, index and constraint of the store file at `path` (`PRAGMA
    /// integrity_check`, read-only, any size) and returns the problems found: empty when the
    /// file is sound. At most 100 problems are listed.
    ///
    /// # Errors
    /// [`StoreError::Open`] when the file cannot be opened, [`StoreError::NotAStore`] for a
    /// file that is not an SQLite database, [`StoreError::Busy`] when it stays locked.
    pub fn integrity_check(path: impl AsRef<Path>) -> Result<Vec<String>, StoreError> {
        let shown = path.as_ref().display().to_string();
        let conn = open_read_only_connection(path.as_ref()).map_err(|e| open_error(&shown, e))?;
        conn.busy_timeout(SqliteStoreOptions::default().busy_timeout)
            .store_err(&shown)?;
        check_pages(&conn, "integrity_check").map_err(|e| open_error(&shown, e))
    }

    /// A private in-memory store (for tests and throw-away runs).
    ///
    /// # Errors
    /// Only if SQLite cannot allocate the database.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::open_in_memory_with(&SqliteStoreOptions::default())
    }

    /// A private in-memory store with `options` (`read_only` is ignored).
    ///
    /// # Errors
    /// Only if SQLite cannot allocate the database.
    pub fn open_in_memory_with(options: &SqliteStoreOptions) -> Result<Self, StoreError> {
        let path = ":memory:".to_owned();
        let conn = Connection::open_in_memory().store_err(&path)?;
        let options = SqliteStoreOptions {
            read_only: false,
            ..options.clone()
        };
        Self::setup(conn, path, &options)
    }

    fn setup(
        mut conn: Connection,
        path: String,
        options: &SqliteStoreOptions,
    ) -> Result<Self, StoreError> {
        conn.busy_timeout(options.busy_timeout).store_err(&path)?;
        conn.set_prepared_statement_cache_capacity(32);
        if !options.read_only && conn.is_readonly("main").store_err(&path)? {
            return Err(StoreError::ReadOnly {
                path,
                source: Cause::text("the file or its directory is not writable"),
            });
        }
        if !options.read_only {
            // Only takes effect while the database is still empty.
            conn.pragma_update(None, "page_size", options.page_size)
                .store_err(&path)?;
            // Also the first read of the file: a non-database fails here with NotAStore.
            let mode = use_wal_journal(&conn, options.busy_timeout).store_err(&path)?;
            if mode != "wal" && mode != "memory" {
                tracing::warn!(store = %path, mode, "WAL journal not available");
            }
            let synchronous = match options.durability {
                Durability::Normal => "NORMAL",
                Durability::Full => "FULL",
            };
            conn.pragma_update(None, "synchronous", synchronous)
                .store_err(&path)?;
        }
        let cache_kib = to_i64(options.page_cache_kib, "page_cache_kib")?;
        conn.pragma_update(None, "cache_size", -cache_kib)
            .store_err(&path)?;
        conn.pragma_update(None, "temp_store", "MEMORY")
            .store_err(&path)?;
        if let Some(pages) = options.max_page_count {
            let pages = to_i64(pages, "max_page_count")?;
            conn.pragma_update(None, "max_page_count", pages)
                .store_err(&path)?;
        }
        schema::migrate(&mut conn, &path, schema::MIGRATIONS, options.read_only)?;
        let data_version = data_version(&conn).store_err(&path)?;
        let interval = options.checkpoint_interval;
        let checkpoints = (options.durability == Durability::Normal && !options.read_only)
            .then(|| (Instant::now() + interval, interval));
        let seen = (options.seen_cache_capacity > 0 && !options.read_only)
            .then(|| SeenCache::new(options.seen_cache_capacity));
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path,
                read_only: options.read_only,
                acks: Mutex::new(Vec::new()),
                fences: LocalFences::new(),
                next_checkpoint: Mutex::new(checkpoints),
                conn: Mutex::new(Conn {
                    conn,
                    ids: HashMap::new(),
                    data_version,
                }),
                seen,
            }),
        })
    }

    /// Where the store lives (`:memory:` for an in-memory one).
    pub fn path(&self) -> &str {
        &self.inner.path
    }

    /// The schema version this build reads and writes.
    pub fn schema_version() -> i64 {
        schema::SCHEMA_VERSION
    }

    /// Writes acknowledged deliveries to the file now.
    ///
    /// [`CheckLog::settle`] of a delivered entry only notes an acknowledgement; it is deleted from the outbox
    /// together with the store's next insert or record of checks (in practice another
    /// checker's, a moment later), when 512 are waiting, before the outbox is read, or
    /// when the store is dropped. A crash before that re-delivers the check after the restart
    /// under the same idempotency key, which at-least-once delivery (README "How a cycle works") allows; in
    /// exchange a cycle does not pay one commit per delivery.
    ///
    /// # Errors
    /// Any backend failure; the acknowledgements then stay buffered.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.run(|inner, state| flush_acks(inner, &mut state.conn))
            .await
    }

    /// Removes every check record (and its outbox entry) of a minute after `after`, for all
    /// checkers: the way out after a clock in the future (a run with a future `--now`, an
    /// NTP step back, a restored snapshot) left records that stop every later cycle.
    /// Returns how many check records were removed.
    ///
    /// # Errors
    /// Any backend failure (nothing is removed then).
    pub async fn forget_after(&self, after: i64) -> Result<u64, StoreError> {
        self.run(move |inner, state| {
            let path = inner.path.as_str();
            write_tx(inner, &mut state.conn, true, |tx| {
                tx.execute("DELETE FROM outbox WHERE minute > ?1", [after])
                    .store_err(path)?;
                let removed = tx
                    .execute("DELETE FROM checks WHERE minute > ?1", [after])
                    .store_err(path)?;
                Ok(removed as u64)
            })
        })
        .await
    }

    /// How many key hashes the cache of stored keys holds (0 when disabled).
    pub fn cached_keys(&self) -> u64 {
        self.inner.seen.as_ref().map_or(0, SeenCache::len)
    }

    /// Runs `job` with the connection on tokio's blocking pool (inline when called outside a
    /// tokio runtime), so SQLite I/O never stalls the async executor.
    pub(crate) async fn run<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner, &mut Conn) -> Result<T, StoreError> + Send + 'static,
    {
        self.run_as(job).await
    }

    /// [`SqliteStore::run`] for jobs with an error type of their own (the alert state's).
    pub(crate) async fn run_as<T, E, F>(&self, job: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Inner, &mut Conn) -> Result<T, E> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let work = move || {
            let mut conn = lock(&inner.conn);
            job(&inner, &mut conn)
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => runtime.spawn_blocking(work).await.map_err(|error| {
                E::from(StoreError::other(
                    format!("{}: store task failed", self.inner.path),
                    error,
                ))
            })?,
            Err(_) => work(),
        }
    }

    /// Inserts `batch` (row, key hash) first-seen; see [`RowStore::insert_first_seen`].
    async fn insert_batch(
        &self,
        checker: &str,
        batch: Vec<(Row, u64)>,
        check_version: bool,
    ) -> Result<InsertOutcome, StoreError> {
        let checker = checker.to_owned();
        self.run(move |inner, state| {
            let path = inner.path.as_str();
            let id = checker_id_for_write(state, path, &checker)?;
            let data_version = &mut state.data_version;
            let inserted = write_tx(inner, &mut state.conn, true, |tx| {
                if cache_changed(inner, tx, data_version)? && check_version {
                    return Ok(None);
                }
                let learn = inner.seen.is_some();
                let inserted = rows::insert_first_seen(tx, path, id, batch, learn)?;
                if inserted.new > 0 {
                    tx.prepare_cached(
                        "UPDATE checkers SET stored_rows = stored_rows + ?1 WHERE id = ?2",
                    )
                    .store_err(path)?
                    .execute(params![to_i64(inserted.new, "row count")?, id])
                    .store_err(path)?;
                }
                Ok(Some(inserted))
            })?;
            let Some(mut inserted) = inserted else {
                return Ok(InsertOutcome::Stale);
            };
            if let Some(seen) = &inner.seen {
                seen.learn(&checker, &mut inserted.learned);
            }
            let new = inserted.new;
            Ok(InsertOutcome::Inserted(new))
        })
        .await
    }

    /// [`SqliteStore::insert_batch`] without the staleness check.
    async fn insert_unchecked(
        &self,
        checker: &str,
        batch: Vec<(Row, u64)>,
    ) -> Result<u64, StoreError> {
        match self.insert_batch(checker, batch, false).await? {
            InsertOutcome::Inserted(new) => Ok(new),
            InsertOutcome::Stale => Err(StoreError::backend(format!(
                "{}: store reported stale on an unchecked insert",
                self.inner.path
            ))),
        }
    }

    /// Runs a read-only query job for `checker`, or returns `default` if the store has never
    /// heard of it.
    /// Keeps an outbox entry after a delivery round, with its progress.
    async fn keep_delivery(&self, key: &str, retry: Retry) -> Result<(), StoreError> {
        let key = key.to_owned();
        let delivered = serde_json::to_string(&retry.delivered_to)
            .map_err(|e| StoreError::other("cannot serialise delivered_to", e))?;
        let first = retry.first_attempt_at;
        let next_attempt_at = retry.at;
        self.run(move |inner, state| {
            let path = inner.path.as_str();
            write_tx(inner, &mut state.conn, true, |tx| {
                match &retry.error {
                    Some(error) => tx
                        .prepare_cached(
                            "UPDATE outbox SET delivered_to = ?2,
                             first_attempt_at = coalesce(first_attempt_at, ?3),
                             attempts = attempts + 1, next_attempt_at = ?4, last_error = ?5
                             WHERE key = ?1",
                        )
                        .store_err(path)?
                        .execute(params![key, delivered, first, next_attempt_at, error])
                        .store_err(path)?,
                    None => tx
                        .prepare_cached(
                            "UPDATE outbox SET delivered_to = ?2,
                             first_attempt_at = coalesce(first_attempt_at, ?3), next_attempt_at = ?4
                             WHERE key = ?1",
                        )
                        .store_err(path)?
                        .execute(params![key, delivered, first, next_attempt_at])
                        .store_err(path)?,
                };
                Ok(())
            })
        })
        .await
    }

    pub(crate) async fn with_checker<T, F>(
        &self,
        checker: &str,
        default: T,
        job: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &str, i64) -> Result<T, StoreError> + Send + 'static,
    {
        let checker = checker.to_owned();
        self.run(
            move |inner, state| match checker_id(state, &inner.path, &checker)? {
                Some(id) => job(&state.conn, &inner.path, id),
                None => Ok(default),
            },
        )
        .await
    }
}

fn data_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "data_version", |row| row.get(0))
}

/// Whether another connection committed since `known` was read; if so the cache of stored
/// keys is cleared (it may hold keys that connection deleted) and `known` updated.
fn cache_changed(inner: &Inner, conn: &Connection, known: &mut i64) -> Result<bool, StoreError> {
    let Some(seen) = &inner.seen else {
        return Ok(false);
    };
    let version = data_version(conn).store_err(&inner.path)?;
    if version == *known {
        return Ok(false);
    }
    tracing::debug!(store = %inner.path, "store changed by another connection");
    *known = version;
    seen.clear();
    Ok(true)
}

/// The id of `checker`, if the store knows it.
fn checker_id(state: &mut Conn, path: &str, checker: &str) -> Result<Option<i64>, StoreError> {
    if let Some(&id) = state.ids.get(checker) {
        return Ok(Some(id));
    }
    let id: Option<i64> = state
        .conn
        .prepare_cached("SELECT id FROM checkers WHERE name = ?1")
        .store_err(path)?
        .query_row([checker], |row| row.get(0))
        .optional()
        .store_err(path)?;
    if let Some(id) = id {
        state.ids.insert(checker.to_owned(), id);
    }
    Ok(id)
}

/// The id of `checker`, registering it (in its own small commit) if new.
pub(crate) fn checker_id_for_write(
    state: &mut Conn,
    path: &str,
    checker: &str,
) -> Result<i64, StoreError> {
    if let Some(id) = checker_id(state, path, checker)? {
        return Ok(id);
    }
    state
        .conn
        .prepare_cached("INSERT OR IGNORE INTO checkers (name) VALUES (?1)")
        .store_err(path)?
        .execute([checker])
        .store_err(path)?;
    checker_id(state, path, checker)?.ok_or_else(|| {
        StoreError::backend(format!("{path}: checker {checker:?} vanished after insert"))
    })
}

/// A stored record: its JSON without `extra` when `extra` (the checker's `__EXTRA__`, stored
/// once in `extras`) is given, else the whole record as written before schema version 2.
fn parse_record(
    path: &str,
    key: &str,
    json: &str,
    extra: Option<&str>,
) -> Result<CheckRecord, StoreError> {
    let unreadable = |error: serde_json::Error| {
        StoreError::other(
            format!("{path}: stored check {key} has an unreadable record"),
            error,
        )
    };
    let Some(extra) = extra else {
        return serde_json::from_str(json).map_err(unreadable);
    };
    let mut value: serde_json::Value = serde_json::from_str(json).map_err(unreadable)?;
    let extra: serde_json::Value = serde_json::from_str(extra).map_err(unreadable)?;
    if let Some(object) = value.as_object_mut() {
        object.insert("extra".into(), extra);
    }
    serde_json::from_value(value).map_err(unreadable)
}

/// A record's JSON without its `extra`, and the extra's own JSON.
fn split_record(record: &CheckRecord) -> Result<(String, String), serde_json::Error> {
    let mut value = serde_json::to_value(record)?;
    let extra = value
        .as_object_mut()
        .and_then(|object| object.remove("extra"))
        .unwrap_or(serde_json::Value::Null);
    Ok((
        serde_json::to_string(&value)?,
        serde_json::to_string(&extra)?,
    ))
}

/// The id of `checker_id`'s extra with this JSON in `extras`, inserted if it is new.
fn extra_id(
    tx: &rusqlite::Transaction<'_>,
    path: &str,
    checker_id: i64,
    json: &str,
) -> Result<i64, StoreError> {
    // FNV-1a finds the candidates; the JSON itself decides.
    let hash = json.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    }) as i64;
    let found: Option<i64> = tx
        .prepare_cached("SELECT id FROM extras WHERE checker_id = ?1 AND hash = ?2 AND json = ?3")
        .store_err(path)?
        .query_row(params![checker_id, hash, json], |row| row.get(0))
        .optional()
        .store_err(path)?;
    if let Some(id) = found {
        return Ok(id);
    }
    tx.prepare_cached("INSERT INTO extras (checker_id, hash, json) VALUES (?1, ?2, ?3)")
        .store_err(path)?
        .execute(params![checker_id, hash, json])
        .store_err(path)?;
    Ok(tx.last_insert_rowid())
}

fn parse_status(path: &str, text: &str) -> Result<Status, StoreError> {
    text.parse()
        .map_err(|error: String| StoreError::backend(format!("{path}: {error}")))
}

/// The status in column `index` of `row`, read in place (no `String` per check: the status
/// views read tens of thousands of them).
fn status_column(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Status> {
    let text = row.get_ref(index)?.as_str()?;
    text.parse().map_err(|error: String| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, error.into())
    })
}

/// Counts `sorted` timestamps inside each half-open window.
fn count_sorted(sorted: &[i64], windows: &[(i64, i64)]) -> Vec<u64> {
    windows
        .iter()
        .map(|&(from, to)| {
            let lo = sorted.partition_point(|&t| t < from);
            let hi = sorted.partition_point(|&t| t < to);
            hi.saturating_sub(lo) as u64
        })
        .collect()
}

#[async_trait]
impl RowStore for SqliteStore {
    async fn insert_first_seen(&self, checker: &str, rows: &[Row]) -> Result<u64, StoreError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let Some(seen) = &self.inner.seen else {
            let batch = rows.iter().map(|row| (row.clone(), 0)).collect();
            return self.insert_unchecked(checker, batch).await;
        };
        // Cheap in-memory filtering on the caller's thread; only misses are copied to the
        // blocking pool.
        let misses = seen.misses(checker, rows);
        let stale = if misses.indices.is_empty() {
            // All cached: right unless another connection wrote meanwhile.
            self.run(|inner, state| {
                let Conn {
                    conn, data_version, ..
                } = state;
                cache_changed(inner, conn, data_version)
            })
            .await?
        } else {
            let batch = misses
                .indices
                .iter()
                .map(|&i| (rows[i].clone(), misses.hashes[i]))
                .collect();
            match self.insert_batch(checker, batch, true).await? {
                InsertOutcome::Inserted(new) => return Ok(new),
                InsertOutcome::Stale => true,
            }
        };
        if !stale {
            return Ok(0);
        }
        // Another connection changed the store and the cache was cleared: redo it all.
        let batch = rows
            .iter()
            .zip(misses.hashes)
            .map(|(row, hash)| (row.clone(), hash))
            .collect();
        self.insert_unchecked(checker, batch).await
    }

    /// Evicts the checker's cached keys before `from` and stops caching such keys (see the
    /// crate docs, "The cache of stored keys").
    fn set_reachable_from(&self, checker: &str, from: i64) {
        if let Some(seen) = &self.inner.seen {
            seen.set_reachable_from(checker, from);
        }
    }

    async fn count_windows(
        &self,
        checker: &str,
        windows: &[(i64, i64)],
    ) -> Result<Vec<u64>, StoreError> {
        let windows = windows.to_vec();
        let zeros = vec![0; windows.len()];
        self.with_checker(checker, zeros, move |conn, path, id| {
            let nonempty: Vec<(i64, i64)> =
                windows.iter().copied().filter(|(f, t)| f < t).collect();
            let (Some(lo), Some(hi)) = (
                nonempty.iter().map(|w| w.0).min(),
                nonempty.iter().map(|w| w.1).max(),
            ) else {
                return Ok(vec![0; windows.len()]);
            };
            let total: i128 = nonempty
                .iter()
                .map(|(f, t)| i128::from(*t) - i128::from(*f))
                .sum();
            if nonempty.len() > 1 && total >= i128::from(hi) - i128::from(lo) {
                // Overlapping windows (a catch-up): one indexed range scan, counted in memory.
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT ts FROM rows WHERE checker_id = ?1 AND ts >= ?2 AND ts < ?3
                         ORDER BY ts",
                    )
                    .store_err(path)?;
                let sorted = stmt
                    .query_map(params![id, lo, hi], |row| row.get::<_, i64>(0))
                    .store_err(path)?
                    .collect::<Result<Vec<i64>, _>>()
                    .store_err(path)?;
                return Ok(count_sorted(&sorted, &windows));
            }
            let mut stmt = conn
                .prepare_cached(
                    "SELECT count(*) FROM rows WHERE checker_id = ?1 AND ts >= ?2 AND ts < ?3",
                )
                .store_err(path)?;
            windows
                .iter()
                .map(|&(from, to)| {
                    if from >= to {
                        return Ok(0);
                    }
                    let n: i64 = stmt
                        .query_row(params![id, from, to], |row| row.get(0))
                        .store_err(path)?;
                    to_u64(n, "count")
                })
                .collect()
        })
        .await
    }

    async fn purge(&self, checker: &str, older_than: i64) -> Result<u64, StoreError> {
        let checker = checker.to_owned();
        self.run(move |inner, state| {
            let path = inner.path.as_str();
            let Some(id) = checker_id(state, path, &checker)? else {
                return Ok(0);
            };
            // No acks here: a purge usually deletes nothing, and then commits no page at all.
            let deleted = write_tx(inner, &mut state.conn, false, |tx| {
                let deleted = tx
                    .prepare_cached("DELETE FROM rows WHERE checker_id = ?1 AND ts < ?2")
                    .store_err(path)?
                    .execute(params![id, older_than])
                    .store_err(path)?;
                if deleted > 0 {
                    tx.prepare_cached(
                        "UPDATE checkers SET stored_rows = max(stored_rows - ?1, 0) WHERE id = ?2",
                    )
                    .store_err(path)?
                    .execute(params![to_i64(deleted, "row count")?, id])
                    .store_err(path)?;
                }
                // A push checker's runs go with its rows (not counted as rows).
                crate::ping_log::purge_runs(tx, path, id, older_than)?;
                Ok(deleted)
            })?;
            if deleted > 0 {
                if let Some(seen) = &inner.seen {
                    seen.forget_older_than(&checker, older_than);
                }
            }
            Ok(deleted as u64)
        })
        .await
    }

    async fn row_timestamps(
        &self,
        checker: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<i64>, StoreError> {
        self.with_checker(checker, Vec::new(), move |conn, path, id| {
            conn.prepare_cached(
                "SELECT ts FROM rows WHERE checker_id = ?1 AND ts >= ?2 AND ts < ?3 ORDER BY ts",
            )
            .store_err(path)?
            .query_map(params![id, from, to], |row| row.get(0))
            .store_err(path)?
            .collect::<Result<Vec<i64>, _>>()
            .store_err(path)
        })
        .await
    }
}

#[async_trait]
impl CheckLog for SqliteStore {
    async fn last_checked_minute(&self, checker: &str) -> Result<Option<i64>, StoreError> {
        self.with_checker(checker, None, |conn, path, id| {
            conn.prepare_cached("SELECT max(minute) FROM checks WHERE checker_id = ?1")
                .store_err(path)?
                .query_row([id], |row| row.get(0))
                .store_err(path)
        })
        .await
    }

    async fn last_checked_minutes(&self, checker: &str) -> Result<Vec<(usize, i64)>, StoreError> {
        self.with_checker(checker, Vec::new(), |conn, path, id| {
            let mut next_index = conn
                .prepare_cached(
                    "SELECT min(requirement_index) FROM checks
                     WHERE checker_id = ?1 AND requirement_index > ?2",
                )
                .store_err(path)?;
            let mut latest = conn
                .prepare_cached(
                    "SELECT max(minute) FROM checks
                     WHERE checker_id = ?1 AND requirement_index = ?2",
                )
                .store_err(path)?;
            // Skip-scan the distinct requirement indexes of the primary key
            // (checker_id, requirement_index, minute): one B-tree descent each.
            let mut out = Vec::new();
            let mut after = -1_i64;
            while let Some(index) = next_index
                .query_row(params![id, after], |row| row.get::<_, Option<i64>>(0))
                .store_err(path)?
            {
                let minute: Option<i64> = latest
                    .query_row(params![id, index], |row| row.get(0))
                    .store_err(path)?;
                if let (Ok(requirement_index), Some(minute)) = (usize::try_from(index), minute) {
                    out.push((requirement_index, minute));
                }
                after = index;
            }
            Ok(out)
        })
        .await
    }

    async fn claim(&self, checkers: &[String], now: i64) -> Result<Vec<CheckerClaim>, StoreError> {
        Ok(self.inner.fences.claim(checkers, now))
    }

    async fn renew(&self, claims: &[CheckerClaim]) -> Result<Vec<CheckerClaim>, StoreError> {
        Ok(self.inner.fences.renew(claims))
    }

    async fn record(
        &self,
        claim: &CheckerClaim,
        records: &[CheckRecord],
    ) -> Result<Recorded, StoreError> {
        let checker = claim.checker.as_str();
        if let Some(other) = records.iter().find(|r| r.checker != checker) {
            return Err(StoreError::backend(format!(
                "record {} passed to record for checker {checker:?}",
                other.idempotency_key()
            )));
        }
        self.inner.fences.check(claim)?;
        if records.is_empty() {
            return Ok(Recorded::default());
        }
        let mut rows = Vec::with_capacity(records.len());
        // Usually one extra for the whole batch: serialised and looked up once.
        let mut extras: Vec<String> = Vec::new();
        for record in records {
            let (json, extra) = split_record(record).map_err(|error| {
                StoreError::other(
                    format!("cannot serialise check {}", record.idempotency_key()),
                    error,
                )
            })?;
            let extra_index = match extras.iter().position(|e| *e == extra) {
                Some(i) => i,
                None => {
                    extras.push(extra);
                    extras.len() - 1
                }
            };
            rows.push((
                record.idempotency_key(),
                to_i64(record.requirement_index, "requirement_index")?,
                record.minute,
                to_i64(record.count, "count")?,
                record.status.as_str(),
                json,
                extra_index,
            ));
        }
        let checker = checker.to_owned();
        let records = records.to_vec();
        self.run(move |inner, state| {
            let path = inner.path.as_str();
            let id = checker_id_for_write(state, path, &checker)?;
            write_tx(inner, &mut state.conn, true, |tx| {
                let extra_ids = extras
                    .iter()
                    .map(|json| extra_id(tx, path, id, json))
                    .collect::<Result<Vec<i64>, StoreError>>()?;
                let mut recorded = Recorded::default();
                let mut check = tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO checks
                         (checker_id, requirement_index, minute, count, status, record, extra_id)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    )
                    .store_err(path)?;
                let mut outbox = tx
                    .prepare_cached(
                        "INSERT OR REPLACE INTO outbox
                         (key, checker_id, requirement_index, minute, record, attempts,
                          next_attempt_at, last_error, extra_id)
                         VALUES (?1, ?2, ?3, ?4, ?5, 0, ?4, NULL, ?6)",
                    )
                    .store_err(path)?;
                let mut stored = tx
                    .prepare_cached(
                        "SELECT k.record, e.json FROM checks k LEFT JOIN extras e ON e.id = k.extra_id
                         WHERE k.checker_id = ?1 AND k.requirement_index = ?2 AND k.minute = ?3",
                    )
                    .store_err(path)?;
                for (row, record) in rows.iter().zip(records) {
                    let (key, index, minute, count, status, json, extra) = row;
                    let extra = extra_ids[*extra];
                    let inserted = check
                        .execute(params![id, index, minute, count, status, json, extra])
                        .store_err(path)?;
                    if inserted == 1 {
                        outbox
                            .execute(params![key, id, index, minute, json, extra])
                            .store_err(path)?;
                        recorded.inserted.push(record);
                    } else {
                        // Another runner (or connection) recorded the minute first.
                        let (json, extra): (String, Option<String>) = stored
                            .query_row(params![id, index, minute], |r| Ok((r.get(0)?, r.get(1)?)))
                            .store_err(path)?;
                        recorded
                            .existing
                            .push(parse_record(path, key, &json, extra.as_deref())?);
                    }
                }
                Ok(recorded)
            })
        })
        .await
    }

    async fn claim_deliveries(
        &self,
        limit: usize,
        // One runner per file: nobody else claims, so the lease needs no bookkeeping.
        _lease: Lease,
    ) -> Result<Vec<PendingDelivery>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(move |inner, state| {
            let path = inner.path.as_str();
            flush_acks(inner, &mut state.conn)?;
            let mut stmt = state
                .conn
                .prepare_cached(
                    "SELECT o.key, o.record, o.attempts, o.next_attempt_at, o.last_error, e.json,
                            o.delivered_to, o.first_attempt_at
                     FROM outbox o JOIN checkers c ON c.id = o.checker_id
                     LEFT JOIN extras e ON e.id = o.extra_id
                     ORDER BY c.name, o.minute, o.requirement_index
                     LIMIT ?1",
                )
                .store_err(path)?;
            let raw = stmt
                .query_map(params![limit], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, i64>(2)?,
                        row.get::<_, i64>(3)?,
                        row.get::<_, Option<String>>(4)?,
                        row.get::<_, Option<String>>(5)?,
                        row.get::<_, Option<String>>(6)?,
                        row.get::<_, Option<i64>>(7)?,
                    ))
                })
                .store_err(path)?
                .collect::<Result<Vec<_>, _>>()
                .store_err(path)?;
            raw.into_iter()
                .map(
                    |(key, json, attempts, next_attempt_at, last_error, extra, to, first)| {
                        let delivered_to = match to {
                            None => Vec::new(),
                            Some(text) => serde_json::from_str(&text).map_err(|e| {
                                StoreError::other(
                                    format!("{path}: outbox entry {key}: unreadable delivered_to"),
                                    e,
                                )
                            })?,
                        };
                        Ok(PendingDelivery {
                            record: parse_record(path, &key, &json, extra.as_deref())?,
                            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                            key,
                            next_attempt_at,
                            last_error,
                            delivered_to,
                            first_attempt_at: first,
                        })
                    },
                )
                .collect()
        })
        .await
    }

    async fn settle(&self, key: &str, settlement: &Settlement) -> Result<(), StoreError> {
        if let Settlement::RetryAt(retry) = settlement {
            return self.keep_delivery(key, retry.clone()).await;
        }
        if self.inner.read_only {
            return Err(StoreError::ReadOnly {
                path: self.inner.path.clone(),
                source: Cause::text("opened read-only"),
            });
        }
        let waiting = {
            let mut acks = lock(&self.inner.acks);
            acks.push(key.to_owned());
            acks.len()
        };
        if waiting >= ACK_BUFFER {
            self.flush().await?;
        }
        Ok(())
    }

    async fn record_give_up(
        &self,
        checker: &str,
        count: u64,
        minute: i64,
        message: &str,
    ) -> Result<(), StoreError> {
        let checker = checker.to_owned();
        let message = message.to_owned();
        let count = to_i64(count, "given-up count")?;
        self.run(move |inner, state| {
            let path = inner.path.as_str();
            let id = checker_id_for_write(state, path, &checker)?;
            write_tx(inner, &mut state.conn, true, |tx| {
                tx.prepare_cached(
                    "UPDATE checkers SET given_up = given_up + ?2, last_give_up_minute = ?3,
                     last_give_up = ?4 WHERE id = ?1",
                )
                .store_err(path)?
                .execute(params![id, count, minute, message])
                .store_err(path)?;
                Ok(())
            })
        })
        .await
    }

    async fn purge_checks(&self, checker: &str, older_than: i64) -> Result<u64, StoreError> {
        let checker = checker.to_owned();
        self.run(move |inner, state| {
            let path = inner.path.as_str();
            let Some(id) = checker_id(state, path, &checker)? else {
                return Ok(0);
            };
            let deleted = write_tx(inner, &mut state.conn, false, |tx| {
                // The newest record of each requirement stays (max(minute) is one primary-key
                // seek per row), so status and the next cycle's starting point never move.
                tx.prepare_cached(
                    "DELETE FROM checks
                     WHERE checker_id = ?1 AND minute < ?2
                       AND minute < (SELECT max(c.minute) FROM checks c
                                     WHERE c.checker_id = checks.checker_id
                                       AND c.requirement_index = checks.requirement_index)",
                )
                .store_err(path)?
                .execute(params![id, older_than])
                .store_err(path)
            })?;
            Ok(deleted as u64)
        })
        .await
    }

    async fn set_last_error(
        &self,
        checker: &str,
        error: Option<(i64, &str)>,
    ) -> Result<(), StoreError> {
        let checker = checker.to_owned();
        let error = error.map(|(minute, text)| (minute, text.to_owned()));
        self.run(move |inner, state| {
            let path = inner.path.as_str();
            let id = checker_id_for_write(state, path, &checker)?;
            let (minute, text) = error.unzip();
            write_tx(inner, &mut state.conn, true, |tx| {
                tx.prepare_cached(
                    "UPDATE checkers SET last_error_minute = ?2, last_error = ?3 WHERE id = ?1",
                )
                .store_err(path)?
                .execute(params![id, minute, text])
                .store_err(path)?;
                Ok(())
            })
        })
        .await
    }
}

#[async_trait]
impl StoreView for SqliteStore {
    async fn outbox_summary(&self) -> Result<OutboxSummary, StoreError> {
        self.run(|inner, state| {
            let path = inner.path.as_str();
            flush_acks(inner, &mut state.conn)?;
            let (pending, oldest): (i64, Option<i64>) = state
                .conn
                .prepare_cached("SELECT count(*), min(minute) FROM outbox")
                .store_err(path)?
                .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))
                .store_err(path)?;
            Ok(OutboxSummary {
                pending: to_u64(pending, "pending deliveries")?,
                oldest_minute: oldest,
            })
        })
        .await
    }

    async fn status(&self) -> Result<Vec<CheckerStatus>, StoreError> {
        self.run(|inner, state| {
            let path = inner.path.as_str();
            flush_acks(inner, &mut state.conn)?;
            // One read transaction: a consistent snapshot that never blocks the writer (WAL).
            let tx = state.conn.transaction().store_err(path)?;
            let checkers = tx
                .prepare_cached(&format!(
                    "SELECT {CHECKER_COLUMNS} FROM checkers ORDER BY name"
                ))
                .store_err(path)?
                .query_map([], checker_row)
                .store_err(path)?
                .collect::<Result<Vec<_>, _>>()
                .store_err(path)?;
            // One pass over the outbox (which may be long while a handler is down).
            let pending_by_checker: HashMap<i64, i64> = tx
                .prepare_cached("SELECT checker_id, count(*) FROM outbox GROUP BY checker_id")
                .store_err(path)?
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                .store_err(path)?
                .collect::<Result<_, _>>()
                .store_err(path)?;
            let mut statuses = Vec::with_capacity(checkers.len());
            for row in checkers {
                let pending = pending_by_checker.get(&row.0).copied().unwrap_or(0);
                statuses.push(checker_status_of(&tx, path, row, pending)?);
            }
            tx.commit().store_err(path)?;
            Ok(dwmon_core::ping::fold_series(statuses))
        })
        .await
    }

    async fn recent_statuses(
        &self,
        checker: &str,
        limit: usize,
    ) -> Result<Vec<(usize, i64, Status)>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with_checker(checker, Vec::new(), move |conn, path, id| {
            let raw = conn
                .prepare_cached(
                    "SELECT requirement_index, minute, status FROM checks
                     WHERE checker_id = ?1
                     ORDER BY minute DESC, requirement_index DESC LIMIT ?2",
                )
                .store_err(path)?
                .query_map(params![id, limit], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, String>(2)?,
                    ))
                })
                .store_err(path)?
                .collect::<Result<Vec<_>, _>>()
                .store_err(path)?;
            raw.into_iter()
                .map(|(index, minute, status)| {
                    Ok((
                        usize::try_from(index).unwrap_or(usize::MAX),
                        minute,
                        parse_status(path, &status)?,
                    ))
                })
                .collect()
        })
        .await
    }

    async fn status_counts(
        &self,
        checker: &str,
        since: &[i64],
    ) -> Result<Vec<(usize, Status, Vec<u64>)>, StoreError> {
        let since = since.to_vec();
        self.with_checker(checker, Vec::new(), move |conn, path, id| {
            status_counts_in(conn, path, id, &since)
        })
        .await
    }

    async fn status_histories(
        &self,
        checkers: &[String],
        per_line: usize,
        since: &[i64],
    ) -> Result<Vec<StatusHistory>, StoreError> {
        let (checkers, since) = (checkers.to_vec(), since.to_vec());
        self.run(move |inner, state| {
            let path = inner.path.as_str();
            // One read transaction: one consistent snapshot, and in WAL mode a reader never
            // waits for the cycle's writes (nor they for it).
            let tx = state.conn.transaction().store_err(path)?;
            let ids: HashMap<String, i64> = tx
                .prepare_cached("SELECT name, id FROM checkers")
                .store_err(path)?
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                .store_err(path)?
                .collect::<Result<_, _>>()
                .store_err(path)?;
            let mut out = Vec::with_capacity(checkers.len());
            for checker in checkers {
                let mut history = StatusHistory::default();
                if let Some(&id) = ids.get(&checker) {
                    if per_line > 0 {
                        history.recent = recent_by_line(&tx, path, id, per_line)?;
                    }
                    history.counts = status_counts_in(&tx, path, id, &since)?;
                }
                history.checker = checker;
                out.push(history);
            }
            tx.commit().store_err(path)?;
            Ok(out)
        })
        .await
    }

    async fn last_good_minutes(
        &self,
        checkers: &[String],
    ) -> Result<Vec<(String, usize, i64)>, StoreError> {
        let checkers = checkers.to_vec();
        self.run(move |inner, state| {
            let path = inner.path.as_str();
            // One read transaction (a consistent snapshot that never waits for the cycle's
            // writes); per line one seek down the index from its newest check.
            let tx = state.conn.transaction().store_err(path)?;
            let ids: HashMap<String, i64> = tx
                .prepare_cached("SELECT name, id FROM checkers")
                .store_err(path)?
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                .store_err(path)?
                .collect::<Result<_, _>>()
                .store_err(path)?;
            let mut out = Vec::new();
            {
                let mut newest_good = tx
                    .prepare_cached(
                        "SELECT minute FROM checks
                         WHERE checker_id = ?1 AND requirement_index = ?2 AND status = ?3
                         ORDER BY minute DESC LIMIT 1",
                    )
                    .store_err(path)?;
                for checker in checkers {
                    let Some(&id) = ids.get(&checker) else {
                        continue;
                    };
                    for index in requirement_indexes(&tx, path, id)? {
                        let minute = newest_good
                            .query_row(params![id, index, Status::Good.as_str()], |row| {
                                row.get::<_, i64>(0)
                            })
                            .optional()
                            .store_err(path)?;
                        if let Some(minute) = minute {
                            let index = usize::try_from(index).unwrap_or(usize::MAX);
                            out.push((checker.clone(), index, minute));
                        }
                    }
                }
            }
            tx.commit().store_err(path)?;
            Ok(out)
        })
        .await
    }

    async fn checker_status(&self, checker: &str) -> Result<Option<CheckerStatus>, StoreError> {
        let checker = checker.to_owned();
        self.run(move |inner, state| {
            let path = inner.path.as_str();
            flush_acks(inner, &mut state.conn)?;
            let tx = state.conn.transaction().store_err(path)?;
            // The checker and its ping-kind series, folded as `status` folds them.
            let mut statuses = Vec::new();
            let mut select = tx
                .prepare_cached(&format!(
                    "SELECT {CHECKER_COLUMNS} FROM checkers WHERE name = ?1"
                ))
                .store_err(path)?;
            let mut pending = tx
                .prepare_cached("SELECT count(*) FROM outbox WHERE checker_id = ?1")
                .store_err(path)?;
            let mut names: Vec<String> = dwmon_core::ping::PingKind::ALL
                .iter()
                .map(|kind| dwmon_core::ping::series(&checker, *kind))
                .collect();
            names.sort();
            names.dedup();
            for name in &names {
                let Some(row) = select
                    .query_row([name], checker_row)
                    .optional()
                    .store_err(path)?
                else {
                    continue;
                };
                let waiting: i64 = pending.query_row([row.0], |r| r.get(0)).store_err(path)?;
                statuses.push(checker_status_of(&tx, path, row, waiting)?);
            }
            drop((select, pending));
            tx.commit().store_err(path)?;
            Ok(dwmon_core::ping::fold_series(statuses)
                .into_iter()
                .find(|s| s.checker == checker))
        })
        .await
    }

    async fn checks_before(
        &self,
        checker: &str,
        before: (i64, usize),
        limit: usize,
    ) -> Result<Vec<CheckRecord>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let (minute, index) = (before.0, i64::try_from(before.1).unwrap_or(i64::MAX));
        self.with_checker(checker, Vec::new(), move |conn, path, id| {
            let raw = conn
                .prepare_cached(
                    "SELECT k.requirement_index, k.minute, k.record, e.json
                     FROM checks k LEFT JOIN extras e ON e.id = k.extra_id
                     WHERE k.checker_id = ?1
                       AND (k.minute < ?3 OR (k.minute = ?3 AND k.requirement_index < ?4))
                     ORDER BY k.minute DESC, k.requirement_index DESC LIMIT ?2",
                )
                .store_err(path)?
                .query_map(params![id, limit, minute, index], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, Option<String>>(3)?,
                    ))
                })
                .store_err(path)?
                .collect::<Result<Vec<_>, _>>()
                .store_err(path)?;
            raw.into_iter()
                .map(|(index, minute, json, extra)| {
                    parse_record(path, &format!("{index}/{minute}"), &json, extra.as_deref())
                })
                .collect()
        })
        .await
    }
}

/// An error opening the file: a typed one where SQLite says what is wrong, else `Open`.
fn open_error(path: &str, error: rusqlite::Error) -> StoreError {
    match map_error(path, error) {
        StoreError::Backend { source, .. } => StoreError::Open {
            path: path.to_owned(),
            source,
        },
        other => other,
    }
}

/// Runs `PRAGMA quick_check` or `PRAGMA integrity_check`: the problems found (none when
/// sound). Damage bad enough that SQLite cannot even walk the file is one problem too.
fn check_pages(conn: &Connection, pragma: &str) -> rusqlite::Result<Vec<String>> {
    let result = (|| {
        let mut statement = conn.prepare(&format!("PRAGMA {pragma}(100)"))?;
        let lines = statement.query_map([], |row| row.get::<_, String>(0))?;
        lines.collect::<rusqlite::Result<Vec<String>>>()
    })();
    match result {
        Ok(lines) if lines == ["ok"] => Ok(Vec::new()),
        Ok(lines) => Ok(lines),
        Err(error) if error.sqlite_error_code() == Some(ErrorCode::DatabaseCorrupt) => {
            Ok(vec![error.to_string()])
        }
        Err(error) => Err(error),
    }
}

/// Puts the database in WAL mode (if it is not already) and returns the journal mode now in use
/// (`wal`, or `memory` for an in-memory database).
///
/// Switching a new file to WAL reads its header, then writes it. SQLite never waits for a
/// write lock in a connection that is already reading (two such connections would wait for
/// each other), so beside another process creating the same file the switch fails at once
/// with `SQLITE_BUSY` although a busy timeout is set. It is retried here until `busy_timeout`
/// has passed; once the other process has switched the file, the retry finds WAL and writes
/// nothing.
///
/// # Errors
/// SQLite's error: a file that is not a database, or still busy after `busy_timeout`.
pub fn use_wal_journal(
    connection: &Connection,
    busy_timeout: Duration,
) -> rusqlite::Result<String> {
    let deadline = Instant::now() + busy_timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        let current: String =
            connection.pragma_query_value(None, "journal_mode", |row| row.get(0))?;
        if current.eq_ignore_ascii_case("wal") || current.eq_ignore_ascii_case("memory") {
            return Ok(current.to_ascii_lowercase());
        }
        match connection.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0)) {
            Err(error)
                if error.sqlite_error_code() == Some(ErrorCode::DatabaseBusy)
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            result => return result,
        }
    }
}

/// A `checkers` row: id, name, stored rows, last error minute and text, and (given up,
/// last give-up minute, last give-up text).
type CheckerRow = (
    i64,
    String,
    i64,
    Option<i64>,
    Option<String>,
    (i64, Option<i64>, Option<String>),
);

const CHECKER_COLUMNS: &str = "id, name, stored_rows, last_error_minute, last_error, given_up,
     last_give_up_minute, last_give_up";

fn checker_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<CheckerRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        (row.get(5)?, row.get(6)?, row.get(7)?),
    ))
}

/// The requirement indexes checker `id` has checks of, ascending: a skip-scan of the
/// primary key, O(lines * log checks).
fn requirement_indexes(conn: &Connection, path: &str, id: i64) -> Result<Vec<i64>, StoreError> {
    let mut next_index = conn
        .prepare_cached(
            "SELECT min(requirement_index) FROM checks
             WHERE checker_id = ?1 AND requirement_index > ?2",
        )
        .store_err(path)?;
    let mut indexes = Vec::new();
    let mut after = -1_i64;
    while let Some(index) = next_index
        .query_row(params![id, after], |row| row.get::<_, Option<i64>>(0))
        .store_err(path)?
    {
        indexes.push(index);
        after = index;
    }
    Ok(indexes)
}

/// The [`CheckerStatus`] of the checker in `row` with `pending` outbox entries, read in the
/// caller's transaction.
fn checker_status_of(
    conn: &Connection,
    path: &str,
    row: CheckerRow,
    pending: i64,
) -> Result<CheckerStatus, StoreError> {
    let (id, name, stored_rows, error_minute, error, give_up) = row;
    let (given_up, give_up_minute, give_up_text) = give_up;
    let last_minute: Option<i64> = conn
        .prepare_cached("SELECT max(minute) FROM checks WHERE checker_id = ?1")
        .store_err(path)?
        .query_row([id], |row| row.get(0))
        .store_err(path)?;
    let mut latest = conn
        .prepare_cached(
            "SELECT minute, count, status FROM checks
             WHERE checker_id = ?1 AND requirement_index = ?2
             ORDER BY minute DESC LIMIT 1",
        )
        .store_err(path)?;
    let mut requirements = Vec::new();
    for index in requirement_indexes(conn, path, id)? {
        let (minute, count, status): (i64, i64, String) = latest
            .query_row(params![id, index], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .store_err(path)?;
        requirements.push(RequirementStatus {
            requirement_index: usize::try_from(index).unwrap_or(usize::MAX),
            minute,
            count: to_u64(count, "count")?,
            status: parse_status(path, &status)?,
        });
    }
    // Both are one index seek: rows_by_time and checks_by_minute.
    let oldest_row: Option<i64> = conn
        .prepare_cached("SELECT min(ts) FROM rows WHERE checker_id = ?1")
        .store_err(path)?
        .query_row([id], |row| row.get(0))
        .store_err(path)?;
    let oldest_check: Option<i64> = conn
        .prepare_cached("SELECT min(minute) FROM checks WHERE checker_id = ?1")
        .store_err(path)?
        .query_row([id], |row| row.get(0))
        .store_err(path)?;
    Ok(CheckerStatus {
        checker: name,
        last_minute,
        requirements,
        pending_deliveries: to_u64(pending, "pending deliveries")?,
        last_error: error_minute.zip(error),
        stored_rows: to_u64(stored_rows, "stored rows")?,
        oldest_row,
        oldest_check,
        given_up_deliveries: to_u64(given_up, "given-up deliveries")?,
        last_give_up: give_up_minute.zip(give_up_text),
    })
}

/// The `(requirement_index, status, counts)` of checker `id`'s checks since each of
/// `since` (one pass over the index range of the oldest; a sum per window).
fn status_counts_in(
    conn: &Connection,
    path: &str,
    id: i64,
    since: &[i64],
) -> Result<Vec<(usize, Status, Vec<u64>)>, StoreError> {
    let Some(&oldest) = since.iter().min() else {
        return Ok(Vec::new());
    };
    let sums: Vec<String> = (0..since.len())
        .map(|i| format!("sum(minute >= ?{})", i + 3))
        .collect();
    let sql = status_counts_sql(&sums.join(", "));
    let mut parameters: Vec<i64> = vec![id, oldest];
    parameters.extend(since);
    let mut statement = conn.prepare_cached(&sql).store_err(path)?;
    let rows = statement
        .query_map(rusqlite::params_from_iter(parameters), |row| {
            let mut counts = Vec::with_capacity(since.len());
            for i in 0..since.len() {
                counts.push(row.get::<_, i64>(i + 2)?);
            }
            Ok((
                usize::try_from(row.get::<_, i64>(0)?).unwrap_or(usize::MAX),
                status_column(row, 1)?,
                counts
                    .into_iter()
                    .map(|n| u64::try_from(n).unwrap_or(0))
                    .collect(),
            ))
        })
        .store_err(path)?
        .collect::<Result<Vec<_>, _>>()
        .store_err(path)?;
    Ok(rows)
}

/// The uptime counts' statement with the window sums `sums` (`sum(minute >= ?3), ...`):
/// grouped by line and status, an index-only scan of `checks_by_minute`.
fn status_counts_sql(sums: &str) -> String {
    format!(
        "SELECT requirement_index, status, {sums} FROM checks
         WHERE checker_id = ?1 AND minute >= ?2
         GROUP BY requirement_index, status ORDER BY requirement_index, status"
    )
}

/// The last checks of one requirement line, newest first: an index-only scan of
/// `checks_by_line` (the records themselves are never read).
const RECENT_BY_LINE: &str = "SELECT minute, status FROM checks
     WHERE checker_id = ?1 AND requirement_index = ?2
     ORDER BY minute DESC LIMIT ?3";

/// The `(minute, status)` of the last `limit` checks of each requirement line of checker
/// `id`, ascending by index (index seeks on the primary key).
fn recent_by_line(
    conn: &Connection,
    path: &str,
    id: i64,
    limit: usize,
) -> Result<Vec<RecentLine>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut statement = conn.prepare_cached(RECENT_BY_LINE).store_err(path)?;
    let mut out = Vec::new();
    for index in requirement_indexes(conn, path, id)? {
        let line = statement
            .query_map(params![id, index, limit], |row| {
                Ok((row.get::<_, i64>(0)?, status_column(row, 1)?))
            })
            .store_err(path)?
            .collect::<Result<Vec<_>, _>>()
            .store_err(path)?;
        out.push((usize::try_from(index).unwrap_or(usize::MAX), line));
    }
    Ok(out)
}

/// Opens an SQLite file read-only for a status view, also where no writer can run: on a
/// read-only filesystem or directory a WAL database cannot get the `-shm` file a normal reader
/// needs, so it is read as an immutable snapshot (`file:PATH?immutable=1`) instead.
///
/// # Errors
/// SQLite's error when the file cannot be opened either way.
pub fn open_read_only_connection(path: &Path) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags)?;
    // Opening is lazy: the first read is what needs the `-shm` file.
    match connection.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(())) {
        Err(_) if path.is_file() && !directory_is_writable(path) => open_immutable(path),
        _ => Ok(connection),
    }
}

fn open_immutable(path: &Path) -> rusqlite::Result<Connection> {
    Connection::open_with_flags(
        immutable_uri(path),
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
}

/// Whether a new file could be created next to `path` (false on read-only filesystems and
/// directories, including immutable ones).
fn directory_is_writable(path: &Path) -> bool {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let probe = dir.join(format!(".dwmon-write-probe-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            true
        }
        Err(_) => false,
    }
}

/// `file:PATH?immutable=1`, with the characters URIs reserve escaped.
fn immutable_uri(path: &Path) -> String {
    let mut uri = String::from("file:");
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => uri.push_str("%25"),
            '?' => uri.push_str("%3f"),
            '#' => uri.push_str("%23"),
            c => uri.push(c),
        }
    }
    uri.push_str("?immutable=1");
    uri
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_counts_are_half_open() {
        let ts = [10, 20, 20, 30];
        assert_eq!(
            count_sorted(&ts, &[(10, 20), (20, 31), (0, 10), (30, 30)]),
            vec![1, 3, 0, 0]
        );
    }

    /// The query plans of the status views' statements, in a store file with some checks
    /// (the planner's choice depends on the schema, not on statistics here).
    fn plans(sql: &str, parameters: usize) -> Vec<String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.sqlite");
        drop(SqliteStore::open(&path).expect("open"));
        let conn = Connection::open(&path).expect("connection");
        let mut plan = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("explain");
        let values = vec![0_i64; parameters];
        plan.query_map(rusqlite::params_from_iter(values), |row| {
            row.get::<_, String>(3)
        })
        .expect("plan")
        .collect::<Result<_, _>>()
        .expect("plan rows")
    }

    #[test]
    fn status_views_never_read_the_check_records() {
        let recent = plans(RECENT_BY_LINE, 3);
        assert!(
            recent[0].contains("USING COVERING INDEX checks_by_line"),
            "{recent:?}"
        );
        let counts = plans(
            &status_counts_sql("sum(minute >= ?3), sum(minute >= ?4)"),
            4,
        );
        assert!(
            counts
                .iter()
                .any(|step| step.contains("USING COVERING INDEX checks_by_minute")),
            "{counts:?}"
        );
    }
}
