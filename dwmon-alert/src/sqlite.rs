//! [`SqliteAlertStore`]: the [`AlertStateStore`] on SQLite, in its own `alert_*` tables
//! (created if missing), so it can live in the same file as the dwmon-sqlite store without
//! touching that crate's schema.
//!
//! Tables (schema version 1, kept in `alert_schema`):
//!
//! | table | key | content |
//! |---|---|---|
//! | `alert_state` | checker, requirement_index | phase, JSON [`AlertState`] |
//! | `alert_source` | checker | failing flag, JSON [`SourceState`] |
//! | `alert_pause` | checker | since, until, comment |
//! | `alert_outbox` | seq (enqueue order), unique idempotency_key | checker, JSON [`PendingNotification`] |

use crate::state::{AlertState, Pause, SourceState};
use crate::store::{
    AlertOverview, AlertStateEntry, AlertStateStore, AlertStoreError, AlertUpdate,
    PendingNotification,
};
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The schema version this build writes.
const SCHEMA_VERSION: i64 = 1;

/// How long a statement waits for another connection's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS alert_schema (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS alert_state (
    checker TEXT NOT NULL,
    requirement_index INTEGER NOT NULL,
    phase TEXT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (checker, requirement_index)
);
CREATE TABLE IF NOT EXISTS alert_source (
    checker TEXT PRIMARY KEY,
    failing INTEGER NOT NULL,
    state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alert_pause (
    checker TEXT PRIMARY KEY,
    since INTEGER NOT NULL,
    until INTEGER,
    comment TEXT
);
CREATE TABLE IF NOT EXISTS alert_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL UNIQUE,
    checker TEXT NOT NULL,
    entry TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alert_outbox_checker ON alert_outbox (checker, seq);
";

/// Alert states, pauses and pending notifications in an SQLite file (WAL mode, busy
/// timeout, parameterized SQL). Cheap to clone; clones share one connection.
///
/// ```
/// use dwmon_alert::{AlertStateStore, SqliteAlertStore};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = SqliteAlertStore::open_in_memory()?;
/// assert_eq!(store.pause("orders").await?, None);
/// # Ok::<(), dwmon_alert::AlertStoreError>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct SqliteAlertStore {
    connection: Arc<Mutex<Connection>>,
    path: String,
}

impl SqliteAlertStore {
    /// Opens (creating if needed) the alert tables in the SQLite file at `path`; usually the
    /// same file as the dwmon store.
    ///
    /// # Errors
    /// [`AlertStoreError::Open`] when the file cannot be opened, is not a database, or was
    /// written by a newer dwmon.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, AlertStoreError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let connection = Connection::open(path).map_err(|e| open_error(&shown, e))?;
        Self::init(connection, shown)
    }

    /// Opens the alert tables of an existing SQLite file without writing to it (status
    /// views). `Ok(None)` when the file has no alert tables (alerting never ran on it).
    /// Writing through the returned store fails.
    ///
    /// # Errors
    /// [`AlertStoreError::Open`] when the file cannot be opened, is not a database, or was
    /// written by a newer dwmon.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Option<Self>, AlertStoreError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        // The same read-only open as the dwmon store's, so `status` also works on a store on a
        // read-only filesystem (read as an immutable snapshot there).
        let connection =
            dwmon_sqlite::open_read_only_connection(path).map_err(|e| open_error(&shown, e))?;
        connection
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| open_error(&shown, e))?;
        let tables: i64 = connection
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'alert_schema'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| open_error(&shown, e))?;
        if tables == 0 {
            return Ok(None);
        }
        let version: Option<i64> = connection
            .query_row("SELECT MAX(version) FROM alert_schema", [], |r| r.get(0))
            .map_err(|e| open_error(&shown, e))?;
        if let Some(v) = version.filter(|v| *v > SCHEMA_VERSION) {
            return Err(AlertStoreError::Open {
                path: shown,
                message: format!(
                    "alert tables have schema version {v}, this dwmon supports at most {SCHEMA_VERSION}; upgrade dwmon"
                ),
            });
        }
        Ok(Some(SqliteAlertStore {
            connection: Arc::new(Mutex::new(connection)),
            path: shown,
        }))
    }

    /// A private in-memory store (tests).
    ///
    /// # Errors
    /// [`AlertStoreError::Open`] when SQLite cannot create the tables.
    pub fn open_in_memory() -> Result<Self, AlertStoreError> {
        let connection = Connection::open_in_memory().map_err(|e| open_error(":memory:", e))?;
        Self::init(connection, ":memory:".into())
    }

    fn init(mut connection: Connection, path: String) -> Result<Self, AlertStoreError> {
        connection
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| open_error(&path, e))?;
        // WAL lets status readers run while the runner writes; in-memory files answer
        // "memory", which is fine.
        // Beside another process creating the same file, the switch retries instead of
        // failing on its lock upgrade.
        dwmon_sqlite::use_wal_journal(&connection, BUSY_TIMEOUT)
            .map_err(|e| open_error(&path, e))?;
        // With WAL, NORMAL is durable against application crashes (kill -9) and only risks
        // the last commits on power loss, like the dwmon store.
        connection
            .execute_batch("PRAGMA synchronous = NORMAL;")
            .map_err(|e| open_error(&path, e))?;
        // One write transaction, locked up front: a read-then-write transaction would fail at
        // once (without waiting) when another process writes the file at the same time.
        let tx = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| open_error(&path, e))?;
        tx.execute_batch(SCHEMA).map_err(|e| open_error(&path, e))?;
        let version: Option<i64> = tx
            .query_row("SELECT MAX(version) FROM alert_schema", [], |r| r.get(0))
            .map_err(|e| open_error(&path, e))?;
        match version {
            None => {
                tx.execute(
                    "INSERT INTO alert_schema (version) VALUES (?1)",
                    [SCHEMA_VERSION],
                )
                .map_err(|e| open_error(&path, e))?;
            }
            Some(v) if v > SCHEMA_VERSION => {
                return Err(AlertStoreError::Open {
                    path,
                    message: format!(
                        "alert tables have schema version {v}, this dwmon supports at most {SCHEMA_VERSION}; upgrade dwmon"
                    ),
                });
            }
            Some(_) => {}
        }
        tx.commit().map_err(|e| open_error(&path, e))?;
        Ok(SqliteAlertStore {
            connection: Arc::new(Mutex::new(connection)),
            path,
        })
    }

    /// Runs `f` on the connection in a blocking task.
    async fn with<T, F>(&self, f: F) -> Result<T, AlertStoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, AlertStoreError> + Send + 'static,
    {
        let connection = self.connection.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = connection.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| AlertStoreError::Backend(format!("store task failed: {e}")))?
    }

    /// Where the store lives (`:memory:` for an in-memory one).
    pub fn path(&self) -> &str {
        &self.path
    }
}

fn open_error(path: &str, e: rusqlite::Error) -> AlertStoreError {
    AlertStoreError::Open {
        path: path.to_string(),
        message: e.to_string(),
    }
}

fn backend(e: rusqlite::Error) -> AlertStoreError {
    AlertStoreError::Backend(e.to_string())
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, AlertStoreError> {
    serde_json::to_string(value).map_err(|e| AlertStoreError::Backend(e.to_string()))
}

fn from_json<T: serde::de::DeserializeOwned>(
    what: &'static str,
    key: &str,
    text: &str,
) -> Result<T, AlertStoreError> {
    serde_json::from_str(text).map_err(|e| AlertStoreError::Corrupt {
        what,
        key: key.to_string(),
        message: e.to_string(),
    })
}

fn index_to_sql(index: usize) -> i64 {
    i64::try_from(index).unwrap_or(i64::MAX)
}

#[async_trait]
impl AlertStateStore for SqliteAlertStore {
    async fn alert_state(
        &self,
        checker: &str,
        requirement_index: usize,
    ) -> Result<Option<AlertState>, AlertStoreError> {
        let checker = checker.to_string();
        self.with(move |c| {
            let text: Option<String> = c
                .query_row(
                    "SELECT state FROM alert_state WHERE checker = ?1 AND requirement_index = ?2",
                    params![checker, index_to_sql(requirement_index)],
                    |r| r.get(0),
                )
                .optional()
                .map_err(backend)?;
            let key = format!("{checker}/{requirement_index}");
            text.map(|t| from_json("alert state", &key, &t)).transpose()
        })
        .await
    }

    async fn alert_states(
        &self,
        checker: &str,
    ) -> Result<Vec<(usize, AlertState)>, AlertStoreError> {
        let checker = checker.to_string();
        self.with(move |c| {
            let mut statement = c
                .prepare_cached(
                    "SELECT requirement_index, state FROM alert_state WHERE checker = ?1
                     ORDER BY requirement_index",
                )
                .map_err(backend)?;
            let rows = statement
                .query_map(params![checker], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(backend)?;
            let mut states = Vec::new();
            for row in rows {
                let (index, text) = row.map_err(backend)?;
                let key = format!("{checker}/{index}");
                let index = usize::try_from(index).map_err(|_| AlertStoreError::Corrupt {
                    what: "requirement index",
                    key: key.clone(),
                    message: "negative".into(),
                })?;
                states.push((index, from_json("alert state", &key, &text)?));
            }
            Ok(states)
        })
        .await
    }

    async fn source_state(&self, checker: &str) -> Result<Option<SourceState>, AlertStoreError> {
        let checker = checker.to_string();
        self.with(move |c| {
            let text: Option<String> = c
                .query_row(
                    "SELECT state FROM alert_source WHERE checker = ?1",
                    [&checker],
                    |r| r.get(0),
                )
                .optional()
                .map_err(backend)?;
            text.map(|t| from_json("source state", &checker, &t))
                .transpose()
        })
        .await
    }

    async fn apply(&self, update: &AlertUpdate) -> Result<(), AlertStoreError> {
        let update = update.clone();
        self.with(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            if let Some((index, state)) = &update.alert {
                tx.execute(
                    "INSERT INTO alert_state (checker, requirement_index, phase, state)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (checker, requirement_index)
                     DO UPDATE SET phase = excluded.phase, state = excluded.state",
                    params![
                        update.checker,
                        index_to_sql(*index),
                        state.phase.as_str(),
                        to_json(state)?
                    ],
                )
                .map_err(backend)?;
            }
            if let Some(state) = &update.source {
                tx.execute(
                    "INSERT INTO alert_source (checker, failing, state) VALUES (?1, ?2, ?3)
                     ON CONFLICT (checker) DO UPDATE SET failing = excluded.failing, state = excluded.state",
                    params![update.checker, state.failing, to_json(state)?],
                )
                .map_err(backend)?;
            }
            for entry in &update.notifications {
                tx.execute(
                    "INSERT INTO alert_outbox (idempotency_key, checker, entry) VALUES (?1, ?2, ?3)
                     ON CONFLICT (idempotency_key) DO NOTHING",
                    params![
                        entry.notification.idempotency_key,
                        entry.notification.checker,
                        to_json(entry)?
                    ],
                )
                .map_err(backend)?;
            }
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn pending(&self, checker: &str) -> Result<Vec<PendingNotification>, AlertStoreError> {
        let checker = checker.to_string();
        self.with(move |c| {
            let mut statement = c
                .prepare(
                    "SELECT idempotency_key, entry FROM alert_outbox WHERE checker = ?1 ORDER BY seq",
                )
                .map_err(backend)?;
            let rows = statement
                .query_map([&checker], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(backend)?;
            let mut entries = Vec::new();
            for row in rows {
                let (key, text) = row.map_err(backend)?;
                entries.push(from_json("pending notification", &key, &text)?);
            }
            Ok(entries)
        })
        .await
    }

    async fn save_progress(&self, pending: &PendingNotification) -> Result<(), AlertStoreError> {
        let key = pending.notification.idempotency_key.clone();
        let text = to_json(pending)?;
        self.with(move |c| {
            c.execute(
                "UPDATE alert_outbox SET entry = ?2 WHERE idempotency_key = ?1",
                params![key, text],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn complete(&self, idempotency_key: &str) -> Result<(), AlertStoreError> {
        let key = idempotency_key.to_string();
        self.with(move |c| {
            c.execute(
                "DELETE FROM alert_outbox WHERE idempotency_key = ?1",
                [&key],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn pause(&self, checker: &str) -> Result<Option<Pause>, AlertStoreError> {
        let checker = checker.to_string();
        self.with(move |c| {
            c.query_row(
                "SELECT since, until, comment FROM alert_pause WHERE checker = ?1",
                [&checker],
                |r| {
                    Ok(Pause {
                        since: r.get(0)?,
                        until: r.get(1)?,
                        comment: r.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn set_pause(&self, checker: &str, pause: Option<&Pause>) -> Result<(), AlertStoreError> {
        let checker = checker.to_string();
        let pause = pause.cloned();
        self.with(move |c| {
            match pause {
                Some(p) => c.execute(
                    "INSERT INTO alert_pause (checker, since, until, comment) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (checker) DO UPDATE SET
                         since = excluded.since, until = excluded.until, comment = excluded.comment",
                    params![checker, p.since, p.until, p.comment],
                ),
                None => c.execute("DELETE FROM alert_pause WHERE checker = ?1", [&checker]),
            }
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn prune(&self, known: &BTreeMap<String, usize>) -> Result<u64, AlertStoreError> {
        let known: Vec<(String, i64)> = known
            .iter()
            .map(|(checker, count)| (checker.clone(), index_to_sql(*count)))
            .collect();
        self.with(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            tx.execute_batch(
                "CREATE TEMP TABLE IF NOT EXISTS alert_known (checker TEXT PRIMARY KEY, requirements INTEGER NOT NULL);
                 DELETE FROM temp.alert_known;",
            )
            .map_err(backend)?;
            {
                let mut insert = tx
                    .prepare("INSERT INTO temp.alert_known (checker, requirements) VALUES (?1, ?2)")
                    .map_err(backend)?;
                for (checker, count) in &known {
                    insert.execute(params![checker, count]).map_err(backend)?;
                }
            }
            let removed = tx
                .execute(
                    "DELETE FROM alert_state WHERE NOT EXISTS (
                         SELECT 1 FROM temp.alert_known k
                         WHERE k.checker = alert_state.checker
                           AND alert_state.requirement_index < k.requirements)",
                    [],
                )
                .map_err(backend)?;
            tx.execute(
                "DELETE FROM alert_source WHERE checker NOT IN (SELECT checker FROM temp.alert_known)",
                [],
            )
            .map_err(backend)?;
            tx.execute("DELETE FROM temp.alert_known", []).map_err(backend)?;
            tx.commit().map_err(backend)?;
            Ok(removed as u64)
        })
        .await
    }

    async fn overview(&self) -> Result<AlertOverview, AlertStoreError> {
        self.with(|c| {
            let mut overview = AlertOverview::default();
            let mut statement = c
                .prepare(
                    "SELECT checker, requirement_index, state FROM alert_state
                     ORDER BY checker, requirement_index",
                )
                .map_err(backend)?;
            let rows = statement
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })
                .map_err(backend)?;
            for row in rows {
                let (checker, index, text) = row.map_err(backend)?;
                let key = format!("{checker}/{index}");
                overview.alerts.push(AlertStateEntry {
                    state: from_json("alert state", &key, &text)?,
                    requirement_index: usize::try_from(index).map_err(|_| {
                        AlertStoreError::Corrupt {
                            what: "requirement index",
                            key: key.clone(),
                            message: "negative".into(),
                        }
                    })?,
                    checker,
                });
            }
            let mut statement = c
                .prepare("SELECT checker, state FROM alert_source ORDER BY checker")
                .map_err(backend)?;
            let rows = statement
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(backend)?;
            for row in rows {
                let (checker, text) = row.map_err(backend)?;
                let state = from_json("source state", &checker, &text)?;
                overview.sources.push((checker, state));
            }
            let mut statement = c
                .prepare("SELECT checker, since, until, comment FROM alert_pause ORDER BY checker")
                .map_err(backend)?;
            let rows = statement
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        Pause {
                            since: r.get(1)?,
                            until: r.get(2)?,
                            comment: r.get(3)?,
                        },
                    ))
                })
                .map_err(backend)?;
            for row in rows {
                overview.pauses.push(row.map_err(backend)?);
            }
            let mut statement = c
                .prepare("SELECT idempotency_key, entry FROM alert_outbox ORDER BY seq")
                .map_err(backend)?;
            let rows = statement
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(backend)?;
            for row in rows {
                let (key, text) = row.map_err(backend)?;
                overview
                    .pending
                    .push(from_json("pending notification", &key, &text)?);
            }
            Ok(overview)
        })
        .await
    }
}
