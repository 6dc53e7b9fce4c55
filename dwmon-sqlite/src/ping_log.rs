//! [`PingLog`] for [`SqliteStore`]: a batch of pings — their first-seen rows and their
//! history entries — in one transaction, so a ping answered `200` is both counted and
//! shown after any crash, and the history survives restarts.
//!
//! Table `pings(id, checker_id, kind, ts, exit_status, rid, duration, remote_addr,
//! user_agent, body)` with index `pings_by_checker(checker_id, id)`: the newest `keep`
//! entries of each checker (older ones are deleted in the transaction that adds new ones),
//! read newest first by one index range scan.
//!
//! Table `ping_runs(id, checker_id, start_ts, rid, finish_ts)`: one row per start, its
//! `finish_ts` set by the finish paired with it (the latest open start of the same `rid`,
//! found by the partial index `ping_runs_open`), in the transaction of the pings. Read by
//! start or finish time (`ping_runs_by_start`, `ping_runs_by_finish`) for the run duration
//! bounds; purged with the checker's rows ([`SqliteStore`]'s `RowStore::purge`). The
//! history's duration of a finish is its run's.

use crate::error::ResultExt;
use crate::rows;
use crate::store::{checker_id_for_write, to_i64, write_tx, SqliteStore};
use async_trait::async_trait;
use dwmon_core::ping::PingKind;
use dwmon_core::ping_log::{Ping, PingEntry, PingLog};
use dwmon_core::runs::Run;
use dwmon_core::StoreError;
use rusqlite::{params, OptionalExtension, Transaction};
use std::collections::BTreeMap;

/// The migration that adds the history table (see the module docs).
pub(crate) const MIGRATION_SQL: &str = "
    CREATE TABLE pings (
        id INTEGER PRIMARY KEY,
        checker_id INTEGER NOT NULL,
        kind TEXT NOT NULL,
        ts INTEGER NOT NULL,
        exit_status INTEGER,
        rid TEXT,
        duration INTEGER,
        remote_addr TEXT,
        user_agent TEXT,
        body TEXT NOT NULL
    );
    CREATE INDEX pings_by_checker ON pings (checker_id, id);
";

/// The migration that adds the runs table (see the module docs).
pub(crate) const RUNS_MIGRATION_SQL: &str = "
    CREATE TABLE ping_runs (
        id INTEGER PRIMARY KEY,
        checker_id INTEGER NOT NULL,
        start_ts INTEGER NOT NULL,
        rid TEXT,
        finish_ts INTEGER
    );
    CREATE INDEX ping_runs_open ON ping_runs (checker_id, rid, id) WHERE finish_ts IS NULL;
    CREATE INDEX ping_runs_by_start ON ping_runs (checker_id, start_ts);
    CREATE INDEX ping_runs_by_finish ON ping_runs (checker_id, finish_ts)
        WHERE finish_ts IS NOT NULL;
";

/// Deletes checker `id`'s runs that finished before `older_than`, or, still open, started
/// before it (with its rows: `RowStore::purge`). Returns how many.
pub(crate) fn purge_runs(
    tx: &Transaction<'_>,
    path: &str,
    id: i64,
    older_than: i64,
) -> Result<usize, StoreError> {
    let finished = tx
        .prepare_cached("DELETE FROM ping_runs WHERE checker_id = ?1 AND finish_ts < ?2")
        .store_err(path)?
        .execute(params![id, older_than])
        .store_err(path)?;
    let open = tx
        .prepare_cached(
            "DELETE FROM ping_runs
             WHERE checker_id = ?1 AND finish_ts IS NULL AND start_ts < ?2",
        )
        .store_err(path)?
        .execute(params![id, older_than])
        .store_err(path)?;
    Ok(finished + open)
}

/// Pairs `entry` with checker `id`'s runs inside `tx`: a start opens a run, a finish ends
/// the latest open run of its `rid`. Answers the finish's duration.
fn pair(
    tx: &Transaction<'_>,
    path: &str,
    id: i64,
    entry: &PingEntry,
) -> Result<Option<i64>, StoreError> {
    if entry.kind == PingKind::Start {
        tx.prepare_cached("INSERT INTO ping_runs (checker_id, start_ts, rid) VALUES (?1, ?2, ?3)")
            .store_err(path)?
            .execute(params![id, entry.time, entry.rid])
            .store_err(path)?;
        return Ok(None);
    }
    if !entry.is_finish() {
        return Ok(None);
    }
    let open: Option<(i64, i64)> = tx
        .prepare_cached(
            "SELECT id, start_ts FROM ping_runs
             WHERE checker_id = ?1 AND rid IS ?2 AND finish_ts IS NULL
             ORDER BY id DESC LIMIT 1",
        )
        .store_err(path)?
        .query_row(params![id, entry.rid], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .store_err(path)?;
    let Some((run, start)) = open else {
        return Ok(None);
    };
    tx.prepare_cached("UPDATE ping_runs SET finish_ts = ?1 WHERE id = ?2")
        .store_err(path)?
        .execute(params![entry.time, run])
        .store_err(path)?;
    Ok(Some(entry.time.saturating_sub(start)))
}

fn kind_from(path: &str, text: &str) -> Result<PingKind, StoreError> {
    PingKind::parse(text)
        .ok_or_else(|| StoreError::backend(format!("{path}: unknown ping kind {text:?} stored")))
}

/// The newest `limit` entries of checker `id` (named `checker`), newest first.
fn newest(
    tx: &rusqlite::Connection,
    path: &str,
    id: i64,
    checker: &str,
    limit: usize,
) -> Result<Vec<PingEntry>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut statement = tx
        .prepare_cached(
            "SELECT kind, ts, exit_status, rid, duration, remote_addr, user_agent, body
             FROM pings WHERE checker_id = ?1 ORDER BY id DESC LIMIT ?2",
        )
        .store_err(path)?;
    let raw = statement
        .query_map(params![id, limit], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<i64>>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, Option<String>>(6)?,
                r.get::<_, String>(7)?,
            ))
        })
        .store_err(path)?
        .collect::<Result<Vec<_>, _>>()
        .store_err(path)?;
    raw.into_iter()
        .map(
            |(kind, time, exit_status, rid, duration, remote_addr, user_agent, body)| {
                Ok(PingEntry {
                    checker: checker.to_string(),
                    kind: kind_from(path, &kind)?,
                    time,
                    exit_status: exit_status.and_then(|s| u8::try_from(s).ok()),
                    rid,
                    duration_seconds: duration,
                    remote_addr,
                    user_agent,
                    body,
                })
            },
        )
        .collect()
}

/// Adds `entry` to checker `id`'s history and runs inside `tx`, with its run duration; a
/// start opens a run only when `new_start` (its row was new).
fn insert_entry(
    tx: &Transaction<'_>,
    path: &str,
    id: i64,
    entry: &PingEntry,
    new_start: bool,
) -> Result<(), StoreError> {
    let duration = if entry.kind == PingKind::Start && !new_start {
        None
    } else {
        pair(tx, path, id, entry)?
    };
    tx.prepare_cached(
        "INSERT INTO pings (checker_id, kind, ts, exit_status, rid, duration, remote_addr,
                            user_agent, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .store_err(path)?
    .execute(params![
        id,
        entry.kind.as_str(),
        entry.time,
        entry.exit_status.map(i64::from),
        entry.rid,
        duration,
        entry.remote_addr,
        entry.user_agent,
        entry.body,
    ])
    .store_err(path)?;
    Ok(())
}

#[async_trait]
impl PingLog for SqliteStore {
    async fn record_pings(&self, pings: &[Ping], keep: usize) -> Result<(), StoreError> {
        if pings.is_empty() {
            return Ok(());
        }
        let keep = keep.max(1);
        let pings = pings.to_vec();
        self.run(move |inner, state| {
            let path = inner.path.as_str();
            // Ids first (a new name is registered in its own small commit, as for rows).
            let mut rows_by_series: BTreeMap<String, (i64, Vec<(dwmon_core::Row, u64)>)> =
                BTreeMap::new();
            let mut checker_ids: BTreeMap<String, i64> = BTreeMap::new();
            for ping in &pings {
                let series = ping.series();
                if !rows_by_series.contains_key(&series) {
                    let id = checker_id_for_write(state, path, &series)?;
                    rows_by_series.insert(series.clone(), (id, Vec::new()));
                }
                if let Some((_, rows)) = rows_by_series.get_mut(&series) {
                    // Push rows bypass the cache of stored keys (never learned, so never
                    // wrongly skipped): the hash is not used.
                    rows.push((ping.row.clone(), 0));
                }
                if !checker_ids.contains_key(&ping.entry.checker) {
                    let id = checker_id_for_write(state, path, &ping.entry.checker)?;
                    checker_ids.insert(ping.entry.checker.clone(), id);
                }
            }
            write_tx(inner, &mut state.conn, true, |tx| {
                // Whether each start's row is new (read before the rows are inserted): a
                // start retried with its key opens no second run.
                let mut starts_seen: std::collections::HashSet<(i64, &str)> =
                    std::collections::HashSet::new();
                let mut new_starts = Vec::with_capacity(pings.len());
                for ping in &pings {
                    if ping.entry.kind != PingKind::Start {
                        new_starts.push(false);
                        continue;
                    }
                    let series_id = rows_by_series[&ping.series()].0;
                    let stored = tx
                        .prepare_cached("SELECT 1 FROM rows WHERE checker_id = ?1 AND key = ?2")
                        .store_err(path)?
                        .query_row(params![series_id, ping.row.key], |_| Ok(()))
                        .optional()
                        .store_err(path)?
                        .is_some();
                    new_starts.push(!stored && starts_seen.insert((series_id, &ping.row.key)));
                }
                for (id, batch) in rows_by_series.into_values() {
                    let inserted = rows::insert_first_seen(tx, path, id, batch, false)?;
                    if inserted.new > 0 {
                        tx.prepare_cached(
                            "UPDATE checkers SET stored_rows = stored_rows + ?1 WHERE id = ?2",
                        )
                        .store_err(path)?
                        .execute(params![to_i64(inserted.new, "row count")?, id])
                        .store_err(path)?;
                    }
                }
                // Each finish is paired by one lookup of the open runs' partial index (no
                // read of the history), each start is one insert.
                for (ping, new_start) in pings.iter().zip(new_starts) {
                    let id = checker_ids[&ping.entry.checker];
                    insert_entry(tx, path, id, &ping.entry, new_start)?;
                }
                let offset = to_i64(keep, "history length")?;
                let mut trim = tx
                    .prepare_cached(
                        "DELETE FROM pings WHERE checker_id = ?1 AND id <= (
                             SELECT id FROM pings WHERE checker_id = ?1
                             ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                    )
                    .store_err(path)?;
                for id in checker_ids.values() {
                    trim.execute(params![id, offset]).store_err(path)?;
                }
                Ok(())
            })
        })
        .await
    }

    async fn recent_pings(
        &self,
        checker: &str,
        limit: usize,
    ) -> Result<Vec<PingEntry>, StoreError> {
        let name = checker.to_string();
        self.with_checker(checker, Vec::new(), move |conn, path, id| {
            newest(conn, path, id, &name, limit)
        })
        .await
    }

    async fn runs(&self, checker: &str, from: i64, to: i64) -> Result<Vec<Run>, StoreError> {
        self.with_checker(checker, Vec::new(), move |conn, path, id| {
            let mut statement = conn
                .prepare_cached(
                    "SELECT start_ts, rid, finish_ts FROM ping_runs
                     WHERE checker_id = ?1
                       AND ((start_ts >= ?2 AND start_ts < ?3)
                            OR (finish_ts >= ?2 AND finish_ts < ?3))
                     ORDER BY id",
                )
                .store_err(path)?;
            let runs = statement
                .query_map(params![id, from, to], |r| {
                    Ok(Run {
                        start: r.get(0)?,
                        rid: r.get(1)?,
                        finish: r.get(2)?,
                    })
                })
                .store_err(path)?
                .collect::<Result<Vec<_>, _>>()
                .store_err(path)?;
            Ok(runs)
        })
        .await
    }
}
