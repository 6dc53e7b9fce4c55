//! [`AlertStateStore`] for [`SqliteStore`]: alert states, pauses and undelivered notifications
//! in the store's own file, on its one connection, under its migration chain (the `alert_*`
//! tables of schema version 4; see the crate docs).
//!
//! Every failure of SQLite keeps its typed [`StoreError`] (busy, full, read-only, ...) inside
//! [`AlertStoreError::Store`]; a stored value that does not parse is
//! [`AlertStoreError::Corrupt`].

use crate::error::map_error;
use crate::store::{write_tx, SqliteStore};
use async_trait::async_trait;
use dwmon_core::alert_state::{
    pause_transition, transitions, AlertOverview, AlertState, AlertStateEntry, AlertStateStore,
    AlertStoreError, AlertTransition, AlertUpdate, Pause, PendingNotification, SourceState,
    HISTORY_PER_CHECKER,
};
use dwmon_core::StoreError;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use std::collections::BTreeMap;

/// Maps `rusqlite::Result` to [`AlertStoreError::Store`] with the store path in hand.
trait AlertResultExt<T> {
    fn alert_err(self, path: &str) -> Result<T, AlertStoreError>;
}

impl<T> AlertResultExt<T> for rusqlite::Result<T> {
    fn alert_err(self, path: &str) -> Result<T, AlertStoreError> {
        self.map_err(|error| AlertStoreError::Store(map_error(path, error)))
    }
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

fn index_from_sql(index: i64, key: &str) -> Result<usize, AlertStoreError> {
    usize::try_from(index).map_err(|_| AlertStoreError::Corrupt {
        what: "requirement index",
        key: key.to_string(),
        message: format!("negative: {index}"),
    })
}

/// The JSON states of `checker`'s requirements, by index.
fn states_of(
    path: &str,
    conn: &Connection,
    checker: &str,
) -> Result<Vec<(usize, AlertState)>, AlertStoreError> {
    let mut statement = conn
        .prepare_cached(
            "SELECT requirement_index, state FROM alert_state WHERE checker = ?1
             ORDER BY requirement_index",
        )
        .alert_err(path)?;
    let rows = statement
        .query_map(params![checker], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })
        .alert_err(path)?;
    let mut states = Vec::new();
    for row in rows {
        let (index, text) = row.alert_err(path)?;
        let key = format!("{checker}/{index}");
        states.push((
            index_from_sql(index, &key)?,
            from_json("alert state", &key, &text)?,
        ));
    }
    Ok(states)
}

/// Appends `entries` to the history and trims each checker's to the newest
/// [`HISTORY_PER_CHECKER`], inside `tx`.
fn record_history(
    path: &str,
    tx: &Transaction<'_>,
    entries: &[AlertTransition],
) -> Result<(), AlertStoreError> {
    for entry in entries {
        tx.prepare_cached(
            "INSERT INTO alert_history (checker, at, idempotency_key, entry)
             VALUES (?1, ?2, ?3, ?4)",
        )
        .alert_err(path)?
        .execute(params![
            entry.checker,
            entry.at,
            entry.idempotency_key,
            to_json(entry)?
        ])
        .alert_err(path)?;
    }
    let keep = i64::try_from(HISTORY_PER_CHECKER).unwrap_or(i64::MAX);
    let mut checkers: Vec<&str> = entries.iter().map(|e| e.checker.as_str()).collect();
    checkers.dedup();
    for checker in checkers {
        tx.prepare_cached(
            "DELETE FROM alert_history WHERE checker = ?1 AND seq <= (
                 SELECT seq FROM alert_history WHERE checker = ?1
                 ORDER BY seq DESC LIMIT 1 OFFSET ?2)",
        )
        .alert_err(path)?
        .execute(params![checker, keep])
        .alert_err(path)?;
    }
    Ok(())
}

fn alert_state_in(
    path: &str,
    conn: &Connection,
    checker: &str,
    requirement_index: usize,
) -> Result<Option<AlertState>, AlertStoreError> {
    let text: Option<String> = conn
        .prepare_cached(
            "SELECT state FROM alert_state WHERE checker = ?1 AND requirement_index = ?2",
        )
        .alert_err(path)?
        .query_row(params![checker, index_to_sql(requirement_index)], |r| {
            r.get(0)
        })
        .optional()
        .alert_err(path)?;
    let key = format!("{checker}/{requirement_index}");
    text.map(|t| from_json("alert state", &key, &t)).transpose()
}

fn source_state_in(
    path: &str,
    conn: &Connection,
    checker: &str,
) -> Result<Option<SourceState>, AlertStoreError> {
    let text: Option<String> = conn
        .prepare_cached("SELECT state FROM alert_source WHERE checker = ?1")
        .alert_err(path)?
        .query_row([checker], |r| r.get(0))
        .optional()
        .alert_err(path)?;
    text.map(|t| from_json("source state", checker, &t))
        .transpose()
}

fn pause_in(
    path: &str,
    conn: &Connection,
    checker: &str,
) -> Result<Option<Pause>, AlertStoreError> {
    conn.prepare_cached("SELECT since, until, comment FROM alert_pause WHERE checker = ?1")
        .alert_err(path)?
        .query_row([checker], |r| {
            Ok(Pause {
                since: r.get(0)?,
                until: r.get(1)?,
                comment: r.get(2)?,
            })
        })
        .optional()
        .alert_err(path)
}

/// Writes the states and notifications of `update`, and the history they make, inside `tx`.
fn apply_in(path: &str, tx: &Transaction<'_>, update: &AlertUpdate) -> Result<(), AlertStoreError> {
    if update.at.is_some() {
        let alert_before = match &update.alert {
            Some((index, _)) => alert_state_in(path, tx, &update.checker, *index)?,
            None => None,
        };
        let source_before = match &update.source {
            Some(_) => source_state_in(path, tx, &update.checker)?,
            None => None,
        };
        // A notification already in the history (a replayed event) is not recorded twice.
        let mut fresh = update.clone();
        let mut seen = tx
            .prepare_cached("SELECT 1 FROM alert_history WHERE idempotency_key = ?1")
            .alert_err(path)?;
        let mut kept = Vec::new();
        for pending in fresh.notifications {
            let key = &pending.notification.idempotency_key;
            if !seen.exists([key]).alert_err(path)? {
                kept.push(pending);
            }
        }
        fresh.notifications = kept;
        let entries = transitions(&fresh, alert_before.as_ref(), source_before.as_ref());
        record_history(path, tx, &entries)?;
    }
    if let Some((index, state)) = &update.alert {
        tx.prepare_cached(
            "INSERT INTO alert_state (checker, requirement_index, phase, state)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (checker, requirement_index)
             DO UPDATE SET phase = excluded.phase, state = excluded.state",
        )
        .alert_err(path)?
        .execute(params![
            update.checker,
            index_to_sql(*index),
            state.phase.as_str(),
            to_json(state)?
        ])
        .alert_err(path)?;
    }
    if let Some(state) = &update.source {
        tx.prepare_cached(
            "INSERT INTO alert_source (checker, failing, state) VALUES (?1, ?2, ?3)
             ON CONFLICT (checker) DO UPDATE SET failing = excluded.failing, state = excluded.state",
        )
        .alert_err(path)?
        .execute(params![update.checker, state.failing, to_json(state)?])
        .alert_err(path)?;
    }
    for entry in &update.notifications {
        tx.prepare_cached(
            "INSERT INTO alert_outbox (idempotency_key, checker, entry) VALUES (?1, ?2, ?3)
             ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .alert_err(path)?
        .execute(params![
            entry.notification.idempotency_key,
            entry.notification.checker,
            to_json(entry)?
        ])
        .alert_err(path)?;
    }
    Ok(())
}

/// Forgets the states of checkers and requirement indices not in `known`, inside `tx`.
fn prune_in(
    path: &str,
    tx: &Transaction<'_>,
    known: &[(String, i64)],
) -> Result<u64, AlertStoreError> {
    tx.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS alert_known (checker TEXT PRIMARY KEY, requirements INTEGER NOT NULL);
         DELETE FROM temp.alert_known;",
    )
    .alert_err(path)?;
    {
        let mut insert = tx
            .prepare("INSERT INTO temp.alert_known (checker, requirements) VALUES (?1, ?2)")
            .alert_err(path)?;
        for (checker, count) in known {
            insert.execute(params![checker, count]).alert_err(path)?;
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
        .alert_err(path)?;
    tx.execute(
        "DELETE FROM alert_source WHERE checker NOT IN (SELECT checker FROM temp.alert_known)",
        [],
    )
    .alert_err(path)?;
    tx.execute("DELETE FROM temp.alert_known", [])
        .alert_err(path)?;
    Ok(removed as u64)
}

fn overview_of(path: &str, conn: &Connection) -> Result<AlertOverview, AlertStoreError> {
    let mut overview = AlertOverview::default();
    let mut statement = conn
        .prepare(
            "SELECT checker, requirement_index, state FROM alert_state
             ORDER BY checker, requirement_index",
        )
        .alert_err(path)?;
    let rows = statement
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .alert_err(path)?;
    for row in rows {
        let (checker, index, text) = row.alert_err(path)?;
        let key = format!("{checker}/{index}");
        overview.alerts.push(AlertStateEntry {
            state: from_json("alert state", &key, &text)?,
            requirement_index: index_from_sql(index, &key)?,
            checker,
        });
    }
    let mut statement = conn
        .prepare("SELECT checker, state FROM alert_source ORDER BY checker")
        .alert_err(path)?;
    let rows = statement
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .alert_err(path)?;
    for row in rows {
        let (checker, text) = row.alert_err(path)?;
        let state = from_json("source state", &checker, &text)?;
        overview.sources.push((checker, state));
    }
    let mut statement = conn
        .prepare("SELECT checker, since, until, comment FROM alert_pause ORDER BY checker")
        .alert_err(path)?;
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
        .alert_err(path)?;
    for row in rows {
        overview.pauses.push(row.alert_err(path)?);
    }
    overview.pending = pending_of(path, conn, None)?;
    Ok(overview)
}

/// The pending notifications of `checker` (all checkers for `None`), in enqueue order.
fn pending_of(
    path: &str,
    conn: &Connection,
    checker: Option<&str>,
) -> Result<Vec<PendingNotification>, AlertStoreError> {
    let mut statement = conn
        .prepare_cached(
            "SELECT idempotency_key, entry FROM alert_outbox
             WHERE ?1 IS NULL OR checker = ?1 ORDER BY seq",
        )
        .alert_err(path)?;
    let rows = statement
        .query_map([checker], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .alert_err(path)?;
    let mut entries = Vec::new();
    for row in rows {
        let (key, text) = row.alert_err(path)?;
        entries.push(from_json("pending notification", &key, &text)?);
    }
    Ok(entries)
}

impl SqliteStore {
    /// Runs a read of the alert tables.
    async fn alert_read<T, F>(&self, job: F) -> Result<T, AlertStoreError>
    where
        T: Send + 'static,
        F: FnOnce(&str, &Connection) -> Result<T, AlertStoreError> + Send + 'static,
    {
        self.run_as(move |inner, state| job(&inner.path, &state.conn))
            .await
    }

    /// Runs a write of the alert tables in one `BEGIN IMMEDIATE` transaction (with the
    /// buffered delivery acknowledgements, as every write of the store).
    async fn alert_write<T, F>(&self, job: F) -> Result<T, AlertStoreError>
    where
        T: Send + 'static,
        F: FnOnce(&str, &Transaction<'_>) -> Result<T, AlertStoreError> + Send + 'static,
    {
        self.run_as(move |inner, state| {
            // The job's own error rolls the transaction back and is returned as it is.
            let mut failure = None;
            let written = write_tx(inner, &mut state.conn, true, |tx| {
                job(&inner.path, tx).map_err(|error| {
                    failure = Some(error);
                    StoreError::other(inner.path.clone(), std::io::Error::other("rolled back"))
                })
            });
            match (written, failure) {
                (_, Some(error)) => Err(error),
                (Ok(value), None) => Ok(value),
                (Err(error), None) => Err(AlertStoreError::Store(error)),
            }
        })
        .await
    }
}

#[async_trait]
impl AlertStateStore for SqliteStore {
    async fn alert_state(
        &self,
        checker: &str,
        requirement_index: usize,
    ) -> Result<Option<AlertState>, AlertStoreError> {
        let checker = checker.to_string();
        self.alert_read(move |path, c| alert_state_in(path, c, &checker, requirement_index))
            .await
    }

    async fn alert_states(
        &self,
        checker: &str,
    ) -> Result<Vec<(usize, AlertState)>, AlertStoreError> {
        let checker = checker.to_string();
        self.alert_read(move |path, c| states_of(path, c, &checker))
            .await
    }

    async fn source_state(&self, checker: &str) -> Result<Option<SourceState>, AlertStoreError> {
        let checker = checker.to_string();
        self.alert_read(move |path, c| source_state_in(path, c, &checker))
            .await
    }

    async fn apply(&self, update: &AlertUpdate) -> Result<(), AlertStoreError> {
        let update = update.clone();
        self.alert_write(move |path, tx| apply_in(path, tx, &update))
            .await
    }

    async fn pending(&self, checker: &str) -> Result<Vec<PendingNotification>, AlertStoreError> {
        let checker = checker.to_string();
        self.alert_read(move |path, c| pending_of(path, c, Some(&checker)))
            .await
    }

    async fn save_progress(&self, pending: &PendingNotification) -> Result<(), AlertStoreError> {
        let key = pending.notification.idempotency_key.clone();
        let text = to_json(pending)?;
        self.alert_write(move |path, tx| {
            tx.prepare_cached("UPDATE alert_outbox SET entry = ?2 WHERE idempotency_key = ?1")
                .alert_err(path)?
                .execute(params![key, text])
                .alert_err(path)?;
            Ok(())
        })
        .await
    }

    async fn complete(&self, idempotency_key: &str) -> Result<(), AlertStoreError> {
        let key = idempotency_key.to_string();
        self.alert_write(move |path, tx| {
            tx.prepare_cached("DELETE FROM alert_outbox WHERE idempotency_key = ?1")
                .alert_err(path)?
                .execute([&key])
                .alert_err(path)?;
            Ok(())
        })
        .await
    }

    async fn pause(&self, checker: &str) -> Result<Option<Pause>, AlertStoreError> {
        let checker = checker.to_string();
        self.alert_read(move |path, c| pause_in(path, c, &checker))
            .await
    }

    async fn set_pause(&self, checker: &str, pause: Option<&Pause>) -> Result<(), AlertStoreError> {
        let checker = checker.to_string();
        let pause = pause.cloned();
        self.alert_write(move |path, tx| {
            if let Some(after) = &pause {
                let before = pause_in(path, tx, &checker)?;
                let entry = pause_transition(&checker, before.as_ref(), Some(after), after.since);
                record_history(path, tx, &entry.into_iter().collect::<Vec<_>>())?;
            }
            match pause {
                Some(p) => tx.execute(
                    "INSERT INTO alert_pause (checker, since, until, comment) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (checker) DO UPDATE SET
                         since = excluded.since, until = excluded.until, comment = excluded.comment",
                    params![checker, p.since, p.until, p.comment],
                ),
                None => tx.execute("DELETE FROM alert_pause WHERE checker = ?1", [&checker]),
            }
            .alert_err(path)?;
            Ok(())
        })
        .await
    }

    async fn lift_pause(
        &self,
        checker: &str,
        at: i64,
        reason: Option<&str>,
    ) -> Result<Option<Pause>, AlertStoreError> {
        let checker = checker.to_string();
        let reason = reason.map(str::to_string);
        self.alert_write(move |path, tx| {
            let lifted = pause_in(path, tx, &checker)?;
            if let Some(mut entry) = pause_transition(&checker, lifted.as_ref(), None, at) {
                entry.reason = reason;
                record_history(path, tx, &[entry])?;
                tx.execute("DELETE FROM alert_pause WHERE checker = ?1", [&checker])
                    .alert_err(path)?;
            }
            Ok(lifted)
        })
        .await
    }

    async fn overview(&self) -> Result<AlertOverview, AlertStoreError> {
        self.alert_read(overview_of).await
    }

    async fn history(
        &self,
        checker: &str,
        limit: usize,
    ) -> Result<Vec<AlertTransition>, AlertStoreError> {
        let checker = checker.to_string();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.alert_read(move |path, c| {
            let mut statement = c
                .prepare_cached(
                    "SELECT seq, entry FROM alert_history WHERE checker = ?1
                     ORDER BY seq DESC LIMIT ?2",
                )
                .alert_err(path)?;
            let rows = statement
                .query_map(params![checker, limit], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                })
                .alert_err(path)?;
            let mut entries = Vec::new();
            for row in rows {
                let (seq, text) = row.alert_err(path)?;
                entries.push(from_json(
                    "alert history entry",
                    &format!("{checker}#{seq}"),
                    &text,
                )?);
            }
            Ok(entries)
        })
        .await
    }

    async fn prune(&self, known: &BTreeMap<String, usize>) -> Result<u64, AlertStoreError> {
        let known: Vec<(String, i64)> = known
            .iter()
            .map(|(checker, count)| (checker.clone(), index_to_sql(*count)))
            .collect();
        self.alert_write(move |path, tx| prune_in(path, tx, &known))
            .await
    }
}
