//! [`SqliteSource`]: a [`RowGetter`] reading checkers' queries from SQLite database files,
//! strictly read-only.

use dwmon_core::convert::{self, ValueError, KEY_COLUMN, TIMESTAMP_COLUMN};
use dwmon_core::routing;
use dwmon_core::{FetchRequest, Fetched, Row, RowGetter, RowSink, SourceError};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode, InterruptHandle, OpenFlags};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A mistake in an [`SqliteSource`]'s configuration (found by the builder, before any fetch).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SqliteSourceError {
    /// A source name was empty or had surrounding whitespace.
    #[error("source name {0:?} is invalid: it must be non-empty, without surrounding whitespace")]
    InvalidName(String),
    /// The same source name was configured twice.
    #[error("source {0:?} is configured twice")]
    DuplicateName(String),
    /// `build()` was called without any source.
    #[error("no source configured: add one with .source(name, path)")]
    NoSources,
}

/// Reads rows from SQLite files, one file per named source (`__SOURCE__` picks the file).
///
/// - Files are opened with `SQLITE_OPEN_READ_ONLY` (and `PRAGMA query_only`): a checker's query
///   can never write or create the user's file; a missing file fails the fetch with
///   [`SourceError::Connection`] naming the path. A WAL database that no writer has open is
///   read as immutable, so SQLite does not leave `-wal`/`-shm` files (owned by dwmon's user)
///   beside it. While any fetch of this process has a file open, no other descriptor of it is
///   opened or closed (closing one would drop that fetch's POSIX locks), so concurrent
///   checkers on one file each read a consistent snapshot, whatever its journal mode.
/// - Each fetch opens the file afresh on tokio's blocking pool (never on the async executor),
///   so a file that appears, is replaced or was locked recovers by itself on the next cycle.
/// - Results are streamed ([`RowGetter::get_rows_batched`]): a fetch holds about two batches
///   of rows (the one the engine stores and the next one read ahead), whatever the result's
///   size.
/// - A busy timeout (default 5 s) waits out writers' locks; a query timeout (default 30 s)
///   interrupts a query that runs too long ([`SourceError::Timeout`]); it counts the time
///   spent reading rows, not the time the engine takes to store the batches.
/// - The result set must have the columns `dwmon_unique_key` and `dwmon_timestamp`; values are
///   converted by [`dwmon_core::convert`] (integers, floats floored, text epochs such as
///   `strftime('%s','now')`, UTC date-time texts such as `datetime('now')`). Unusable rows are
///   rejected and counted in [`Fetched`], never failing the fetch.
///
/// ```
/// use dwmon_sqlite::SqliteSource;
/// use std::time::Duration;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let source = SqliteSource::builder()
///     .source("default", "/var/lib/app/app.db")?
///     .source("billing", "sqlite:///var/lib/billing.db")?
///     .busy_timeout(Duration::from_secs(2))
///     .query_timeout(Duration::from_secs(20))
///     .build()?;
/// assert_eq!(source.names(), vec!["billing".to_string(), "default".to_string()]);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SqliteSource {
    sources: BTreeMap<String, PathBuf>,
    busy_timeout: Duration,
    query_timeout: Duration,
    /// Checkers whose fetch still runs on the blocking pool (perhaps past its timeout).
    in_flight: InFlight,
}

/// Builds an [`SqliteSource`]; see [`SqliteSource::builder`].
#[derive(Debug, Clone)]
pub struct SqliteSourceBuilder {
    sources: BTreeMap<String, PathBuf>,
    busy_timeout: Duration,
    query_timeout: Duration,
}

impl SqliteSource {
    /// Default busy timeout: how long a fetch waits for a writer's lock.
    pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
    /// Default query timeout.
    pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(30);

    /// A builder with no sources and the default timeouts.
    pub fn builder() -> SqliteSourceBuilder {
        SqliteSourceBuilder {
            sources: BTreeMap::new(),
            busy_timeout: Self::DEFAULT_BUSY_TIMEOUT,
            query_timeout: Self::DEFAULT_QUERY_TIMEOUT,
        }
    }

    /// One file as the source named `default`, with the default timeouts.
    pub fn new(path: impl AsRef<Path>) -> Self {
        let mut sources = BTreeMap::new();
        sources.insert("default".to_string(), strip_url_scheme(path.as_ref()));
        SqliteSource {
            sources,
            busy_timeout: Self::DEFAULT_BUSY_TIMEOUT,
            query_timeout: Self::DEFAULT_QUERY_TIMEOUT,
            in_flight: InFlight::default(),
        }
    }

    /// The configured source names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.sources.keys().cloned().collect()
    }

    /// The file a source name reads, if configured.
    pub fn path(&self, name: &str) -> Option<&Path> {
        self.sources.get(name).map(PathBuf::as_path)
    }
}

impl SqliteSourceBuilder {
    /// Adds a source: `__SOURCE__ name` reads the SQLite file at `path` (a plain path, or
    /// `sqlite://PATH` / `sqlite:PATH`). The file need not exist yet; a fetch while it is
    /// missing fails with a clear error.
    ///
    /// # Errors
    /// [`SqliteSourceError::InvalidName`] for an empty name, [`SqliteSourceError::DuplicateName`]
    /// when the name is already configured.
    pub fn source(
        mut self,
        name: impl Into<String>,
        path: impl AsRef<Path>,
    ) -> Result<Self, SqliteSourceError> {
        let name = name.into();
        if name.is_empty() || name.trim() != name {
            return Err(SqliteSourceError::InvalidName(name));
        }
        if self.sources.contains_key(&name) {
            return Err(SqliteSourceError::DuplicateName(name));
        }
        self.sources.insert(name, strip_url_scheme(path.as_ref()));
        Ok(self)
    }

    /// How long a fetch waits for another connection's lock before failing (default 5 s).
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// How long one fetch may take before it is interrupted (default 30 s).
    pub fn query_timeout(mut self, timeout: Duration) -> Self {
        self.query_timeout = timeout;
        self
    }

    /// The source.
    ///
    /// # Errors
    /// [`SqliteSourceError::NoSources`] when no source was added.
    pub fn build(self) -> Result<SqliteSource, SqliteSourceError> {
        if self.sources.is_empty() {
            return Err(SqliteSourceError::NoSources);
        }
        Ok(SqliteSource {
            sources: self.sources,
            busy_timeout: self.busy_timeout,
            query_timeout: self.query_timeout,
            in_flight: InFlight::default(),
        })
    }
}

/// `sqlite://PATH` and `sqlite:PATH` name the file `PATH`.
fn strip_url_scheme(path: &Path) -> PathBuf {
    match path.to_str() {
        Some(text) => {
            let stripped = text
                .strip_prefix("sqlite://")
                .or_else(|| text.strip_prefix("sqlite:"))
                .unwrap_or(text);
            PathBuf::from(stripped)
        }
        None => path.to_path_buf(),
    }
}

/// Lets the async side interrupt a query running on the blocking pool, even if the timeout
/// fires before the connection is open.
#[derive(Default)]
struct Cancel {
    handle: Option<InterruptHandle>,
    cancelled: bool,
}

impl Cancel {
    fn cancel(shared: &Mutex<Cancel>) {
        if let Ok(mut cancel) = shared.lock() {
            cancel.cancelled = true;
            if let Some(handle) = &cancel.handle {
                handle.interrupt();
            }
        }
    }

    /// Registers the connection; false when the fetch was already cancelled.
    fn register(shared: &Mutex<Cancel>, connection: &Connection) -> bool {
        match shared.lock() {
            Ok(mut cancel) => {
                cancel.handle = Some(connection.get_interrupt_handle());
                !cancel.cancelled
            }
            Err(_) => false,
        }
    }
}

/// What a non-regular file is, for the error message.
fn file_kind(file_type: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_block_device() || file_type.is_char_device() {
        "a device"
    } else {
        "neither a file nor a directory"
    }
}

/// How long a timed-out fetch is given to end after its interrupt.
const CANCEL_GRACE: Duration = Duration::from_secs(1);

/// The checkers with a fetch running on the blocking pool.
#[derive(Debug, Clone, Default)]
struct InFlight(Arc<Mutex<std::collections::HashSet<String>>>);

/// Marks a checker's fetch as running until dropped (at the end of the blocking job).
struct Running {
    set: InFlight,
    checker: String,
}

impl InFlight {
    /// `None` when `checker` already has a fetch running.
    fn start(&self, checker: &str) -> Option<Running> {
        let mut set = self.0.lock().unwrap_or_else(|e| e.into_inner());
        set.insert(checker.to_string()).then(|| Running {
            set: self.clone(),
            checker: checker.to_string(),
        })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut set = self.set.0.lock().unwrap_or_else(|e| e.into_inner());
        set.remove(&self.checker);
    }
}

/// One fetch's inputs, owned so they can move to the blocking pool.
struct Job {
    source: String,
    path: PathBuf,
    checker: String,
    query: String,
    busy_timeout: Duration,
    timeout_millis: u64,
    /// Rows per batch handed to the sink.
    batch_rows: usize,
}

#[async_trait::async_trait]
impl RowGetter for SqliteSource {
    async fn get_rows(&self, request: &FetchRequest<'_>) -> Result<Fetched, SourceError> {
        dwmon_core::collect_rows(self, request).await
    }

    /// Streams the result: the query runs on tokio's blocking pool and hands over a batch of
    /// [`RowSink::batch_rows`] rows at a time, reading on only once the sink has the previous
    /// one (one batch is read ahead while the sink works). The query timeout counts the time
    /// spent reading, not the time the sink takes.
    async fn get_rows_batched(
        &self,
        request: &FetchRequest<'_>,
        sink: &mut dyn RowSink,
    ) -> Result<(), SourceError> {
        let path = routing::pick(&self.sources, request.source)?;
        let timeout_millis = u64::try_from(self.query_timeout.as_millis()).unwrap_or(u64::MAX);
        let job = Job {
            source: request.source.to_string(),
            path: path.clone(),
            checker: request.checker.to_string(),
            query: request.query.to_string(),
            busy_timeout: self.busy_timeout,
            timeout_millis,
            batch_rows: sink.batch_rows().max(1),
        };
        // A fetch cut by the timeout may still hold its thread (blocked inside SQLite or the
        // kernel); never start a second one beside it, so threads cannot pile up per cycle.
        let Some(running) = self.in_flight.start(request.checker) else {
            return Err(SourceError::Connection {
                source_name: request.source.to_string(),
                message: format!(
                    "the previous fetch of checker {} on SQLite database {} is still running \
                     (blocked past its timeout); not starting another",
                    request.checker,
                    path.display()
                ),
            });
        };
        let cancel = Arc::new(Mutex::new(Cancel::default()));
        let task_cancel = Arc::clone(&cancel);
        let (batches, mut received) = tokio::sync::mpsc::channel::<Fetched>(1);
        let mut task = tokio::task::spawn_blocking(move || {
            let _running = running;
            job.run(&task_cancel, &batches)
        });
        let mut deadline = tokio::time::Instant::now() + self.query_timeout;
        loop {
            match tokio::time::timeout_at(deadline, received.recv()).await {
                Ok(Some(batch)) => {
                    let started = tokio::time::Instant::now();
                    let accepted = sink.accept(batch).await;
                    // The sink's time is not the query's.
                    deadline += started.elapsed();
                    if let Err(error) = accepted {
                        Cancel::cancel(&cancel);
                        drop(received);
                        // Let the interrupted job end, so the checker's next fetch may start.
                        let _ = tokio::time::timeout(CANCEL_GRACE, &mut task).await;
                        return Err(error);
                    }
                }
                // Every batch is handed over: the job has ended or is ending.
                Ok(None) => break,
                Err(_elapsed) => {
                    Cancel::cancel(&cancel);
                    drop(received);
                    // An interrupted query ends at once; give it a moment to release the checker.
                    let _ = tokio::time::timeout(CANCEL_GRACE, &mut task).await;
                    return Err(SourceError::Timeout {
                        millis: timeout_millis,
                    });
                }
            }
        }
        match task.await {
            Ok(result) => result,
            Err(join_error) => Err(SourceError::Other(format!(
                "source {:?}: the SQLite query task failed: {join_error}",
                request.source
            ))),
        }
    }
}

impl Job {
    /// Runs the query, sending its rows in batches of `batch_rows`; stops early (without an
    /// error of its own) when the receiver is gone.
    fn run(
        &self,
        cancel: &Mutex<Cancel>,
        batches: &tokio::sync::mpsc::Sender<Fetched>,
    ) -> Result<(), SourceError> {
        let opened = self.open()?;
        let connection = &opened.connection;
        if !Cancel::register(cancel, connection) {
            return Err(self.timeout());
        }
        let mut statement = connection
            .prepare(&self.query)
            .map_err(|e| self.query_error(&e))?;
        let names: Vec<String> = statement
            .column_names()
            .into_iter()
            .map(str::to_string)
            .collect();
        let (key_index, timestamp_index) =
            convert::find_columns(&names).ok_or_else(|| SourceError::MissingColumns {
                checker: self.checker.clone(),
                found: names.clone(),
            })?;
        let mut rows = statement.query([]).map_err(|e| self.query_error(&e))?;
        let mut batch = Fetched::default();
        let mut row_number: u64 = 0;
        while let Some(row) = rows.next().map_err(|e| self.query_error(&e))? {
            row_number += 1;
            let key = row.get_ref(key_index).map_err(|e| self.query_error(&e))?;
            let timestamp = row
                .get_ref(timestamp_index)
                .map_err(|e| self.query_error(&e))?;
            match convert_row(row_number, key, timestamp) {
                Ok(row) => {
                    if batch.rows.is_empty() {
                        batch.rows.reserve_exact(self.batch_rows);
                    }
                    batch.rows.push(row);
                }
                Err(reason) => batch.reject(reason),
            }
            if batch.rows.len() >= self.batch_rows
                && batches.blocking_send(std::mem::take(&mut batch)).is_err()
            {
                return Ok(());
            }
        }
        // The last batch, possibly empty: an empty result is one empty batch.
        let _ = batches.blocking_send(batch);
        Ok(())
    }

    fn open(&self) -> Result<SourceConnection, SourceError> {
        let connection_error = |message: String| SourceError::Connection {
            source_name: self.source.clone(),
            message,
        };
        // stat, never open, first: open() of a FIFO or device blocks (possibly forever, holding
        // a blocking-pool thread), and a directory is no database.
        let metadata = match std::fs::metadata(&self.path) {
            Ok(metadata) if metadata.is_file() => metadata,
            Ok(metadata) => {
                return Err(connection_error(format!(
                    "SQLite database {} is not a regular file (it is {})",
                    self.path.display(),
                    file_kind(&metadata.file_type())
                )))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(connection_error(format!(
                    "SQLite database {} does not exist (sources are opened read-only and never create files)",
                    self.path.display()
                )))
            }
            Err(e) => {
                return Err(connection_error(format!(
                    "cannot reach SQLite database {}: {e}",
                    self.path.display()
                )))
            }
        };
        let (file_use, immutable) = FileUse::start(&metadata, &self.path);
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let opened = if immutable {
            // Opening an idle WAL database read-only would make SQLite create its -wal and
            // -shm files beside the user's file, owned by us, which can lock the owning
            // application out. With no writer around, reading it as immutable creates
            // nothing; a writer starting during this one read could at worst fail it.
            Connection::open_with_flags(
                immutable_uri(&self.path),
                flags | OpenFlags::SQLITE_OPEN_URI,
            )
        } else {
            Connection::open_with_flags(&self.path, flags)
        };
        let connection = opened.map_err(|e| {
            connection_error(format!(
                "cannot open SQLite database {} read-only: {e}",
                self.path.display()
            ))
        })?;
        connection
            .busy_timeout(self.busy_timeout)
            .and_then(|()| connection.pragma_update(None, "query_only", true))
            .map_err(|e| {
                connection_error(format!(
                    "cannot configure SQLite database {}: {e}",
                    self.path.display()
                ))
            })?;
        Ok(SourceConnection {
            connection,
            _file_use: file_use,
        })
    }

    fn timeout(&self) -> SourceError {
        SourceError::Timeout {
            millis: self.timeout_millis,
        }
    }

    fn query_error(&self, error: &rusqlite::Error) -> SourceError {
        match error.sqlite_error_code() {
            Some(ErrorCode::OperationInterrupted) => self.timeout(),
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => SourceError::Query {
                source_name: self.source.clone(),
                message: format!(
                    "{error} (still locked after the {} ms busy timeout)",
                    self.busy_timeout.as_millis()
                ),
            },
            _ => SourceError::Query {
                source_name: self.source.clone(),
                message: format!(
                    "{} ({}): {}",
                    self.checker,
                    self.path.display(),
                    describe_query_error(error)
                ),
            },
        }
    }
}

/// A query error for people: rusqlite's syntax errors quote the whole SQL text ("... in
/// SELECT ... at offset 7"), which may span many lines and megabytes; keep the message and the
/// offset only. The query is in the checker file for anyone who needs it.
fn describe_query_error(error: &rusqlite::Error) -> String {
    match error {
        rusqlite::Error::SqlInputError { msg, offset, .. } => {
            format!("{msg} (at character offset {offset} of the query)")
        }
        other => other.to_string(),
    }
}

/// A fetch's connection, counted as a use of its file until it is closed.
struct SourceConnection {
    // Fields drop in order: the connection closes (releasing its locks) before the use ends.
    connection: Connection,
    _file_use: FileUse,
}

/// A file by device and inode, so that two paths of one file are one file.
type FileId = (u64, u64);

/// For each source file that connections of this process have open: how many, and whether
/// they read it as an immutable (idle WAL) database.
///
/// POSIX locks belong to the process, and closing *any* descriptor of a file drops all of them
/// ("How To Corrupt An SQLite Database File", 2.2.1). Reading the header with a plain `open`
/// and `close` beside another fetch's connection would therefore silently unlock that reader
/// and let a writer change pages under it (torn counts, "database disk image is malformed").
/// So the header is read only while no connection of this process uses the file; the fetches
/// that start while one does reuse its decision.
static OPEN_FILES: Mutex<BTreeMap<FileId, OpenFile>> = Mutex::new(BTreeMap::new());

struct OpenFile {
    connections: usize,
    immutable: bool,
}

/// One connection's use of a source file; see [`OPEN_FILES`].
struct FileUse(FileId);

impl FileUse {
    /// Counts a connection about to open `path` and says whether to read it as immutable.
    fn start(metadata: &std::fs::Metadata, path: &Path) -> (FileUse, bool) {
        use std::os::unix::fs::MetadataExt;
        let id = (metadata.dev(), metadata.ino());
        let mut files = OPEN_FILES.lock().unwrap_or_else(|e| e.into_inner());
        let file = files.entry(id).or_insert_with(|| OpenFile {
            connections: 0,
            // No connection of ours has the file open, so no lock of ours can be lost.
            immutable: is_idle_wal_database(path),
        });
        file.connections += 1;
        (FileUse(id), file.immutable)
    }
}

impl Drop for FileUse {
    fn drop(&mut self) {
        let mut files = OPEN_FILES.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(file) = files.get_mut(&self.0) {
            file.connections -= 1;
            if file.connections == 0 {
                files.remove(&self.0);
            }
        }
    }
}

/// A database in WAL mode (header bytes 18-19 = 2) whose `-wal` and `-shm` files do not exist:
/// no connection has it open and every commit is in the main file. Opens and closes the file:
/// call it only while no connection of this process has the file open ([`OPEN_FILES`]).
fn is_idle_wal_database(path: &Path) -> bool {
    let mut header = [0u8; 20];
    let wal_mode = std::fs::File::open(path)
        .and_then(|mut file| std::io::Read::read_exact(&mut file, &mut header))
        .is_ok_and(|()| {
            header.starts_with(b"SQLite format 3\0") && header[18] == 2 && header[19] == 2
        });
    let side_file = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    wal_mode && !side_file("-wal").exists() && !side_file("-shm").exists()
}

/// `file:PATH?mode=ro&immutable=1`, with the characters URIs reserve escaped.
fn immutable_uri(path: &Path) -> String {
    let mut uri = String::from("file:");
    for character in path.to_string_lossy().chars() {
        match character {
            '%' => uri.push_str("%25"),
            '?' => uri.push_str("%3f"),
            '#' => uri.push_str("%23"),
            other => uri.push(other),
        }
    }
    uri.push_str("?mode=ro&immutable=1");
    uri
}

/// One result row as a [`Row`], or the reason it is rejected.
fn convert_row(row_number: u64, key: ValueRef<'_>, timestamp: ValueRef<'_>) -> Result<Row, String> {
    let key = match key {
        ValueRef::Null => {
            return Err(convert::rejection(
                row_number,
                KEY_COLUMN,
                None,
                &ValueError::Null,
            ))
        }
        ValueRef::Integer(value) => value.to_string(),
        ValueRef::Real(value) => convert::key_from_f64(value),
        ValueRef::Text(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        ValueRef::Blob(bytes) => hex(bytes),
    };
    let converted = match timestamp {
        ValueRef::Null => Err(ValueError::Null),
        ValueRef::Integer(value) => convert::epoch_from_i64(value),
        ValueRef::Real(value) => convert::epoch_from_f64(value),
        ValueRef::Text(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => convert::epoch_from_text(text),
            Err(_) => Err(ValueError::Unparsable),
        },
        ValueRef::Blob(_) => Err(ValueError::WrongType("BLOB".to_string())),
    };
    match converted {
        Ok(seconds) => Ok(Row::new(key, seconds)),
        Err(error) => Err(convert::rejection(
            row_number,
            TIMESTAMP_COLUMN,
            shown(timestamp).as_deref(),
            &error,
        )),
    }
}

/// How a value appears in a rejection reason (`None` for NULL).
fn shown(value: ValueRef<'_>) -> Option<String> {
    match value {
        ValueRef::Null => None,
        ValueRef::Integer(value) => Some(value.to_string()),
        ValueRef::Real(value) => Some(value.to_string()),
        ValueRef::Text(bytes) => Some(format!("'{}'", String::from_utf8_lossy(bytes))),
        ValueRef::Blob(bytes) => Some(format!("BLOB of {} bytes", bytes.len())),
    }
}

/// Lowercase hex: the text form of a BLOB key.
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut text, byte| {
            let _ = write!(text, "{byte:02x}");
            text
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checker_gets_no_second_fetch_while_its_first_runs() {
        let in_flight = InFlight::default();
        let first = in_flight.start("orders").expect("first fetch");
        assert!(in_flight.start("orders").is_none());
        assert!(
            in_flight.start("payments").is_some(),
            "others are not held up"
        );
        drop(first);
        assert!(in_flight.start("orders").is_some());
    }

    #[test]
    fn builder_rejects_bad_configuration() {
        assert_eq!(
            SqliteSource::builder().build().unwrap_err(),
            SqliteSourceError::NoSources
        );
        assert_eq!(
            SqliteSource::builder().source("", "a.db").unwrap_err(),
            SqliteSourceError::InvalidName(String::new())
        );
        let duplicate = SqliteSource::builder()
            .source("a", "a.db")
            .and_then(|b| b.source("a", "b.db"));
        assert_eq!(
            duplicate.unwrap_err(),
            SqliteSourceError::DuplicateName("a".into())
        );
    }

    #[test]
    fn url_schemes_name_plain_paths() {
        let source = SqliteSource::new("sqlite:///tmp/x.db");
        assert_eq!(source.path("default"), Some(Path::new("/tmp/x.db")));
        assert_eq!(
            SqliteSource::new("sqlite:rel.db").path("default"),
            Some(Path::new("rel.db"))
        );
        assert_eq!(
            SqliteSource::new("plain.db").path("default"),
            Some(Path::new("plain.db"))
        );
    }

    #[test]
    fn immutable_uris_escape_reserved_characters() {
        assert_eq!(
            immutable_uri(Path::new("/data/a?b#c%d.db")),
            "file:/data/a%3fb%23c%25d.db?mode=ro&immutable=1"
        );
    }

    #[test]
    fn blob_keys_are_hex() {
        assert_eq!(hex(&[0x00, 0xab, 0x10]), "00ab10");
    }
}
