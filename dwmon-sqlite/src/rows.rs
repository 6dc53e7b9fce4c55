//! First-seen insertion of a batch of rows into the `rows` table, tuned for bulk ingest.
//!
//! - The batch is sorted by key (stably, then de-duplicated keeping each key's first
//!   occurrence, as step 4 of a cycle in README "How a cycle works" requires) so inserts walk the `(checker_id, key)` B-tree in
//!   order instead of jumping around it.
//! - Rows go in with multi-row `INSERT OR IGNORE ... VALUES (..), (..), ...` statements of
//!   [`CHUNK`] rows: SQLite's per-statement cost is paid once per chunk, about twice the rate
//!   of a one-row-per-statement loop (measured: `cargo bench --bench store -- ingest`).
//! - For the cache of stored keys, every row's *stored* timestamp must be known. A chunk whose
//!   rows were all inserted stored the given timestamps; only a chunk with an ignored (already
//!   stored) key looks its rows up. Before that, a large batch first reads the stored rows of
//!   its timestamp range in one bounded index range scan, which finds already stored keys
//!   cheaply when the cache is cold (after a restart).

use crate::error::ResultExt;
use dwmon_core::{Row, StoreError};
use rusqlite::{params, Transaction};
use std::collections::HashMap;

/// Rows per multi-row `INSERT` (96 bound parameters).
pub(crate) const CHUNK: usize = 32;

/// Batches at least this large first look for already stored keys with a range scan.
const RANGE_SCAN_MIN: usize = 256;

/// What an insert did.
#[derive(Debug, Default)]
pub(crate) struct Inserted {
    /// Rows that were new.
    pub new: u64,
    /// `(stored timestamp, key hash)` of every row of the batch, when asked to learn.
    pub learned: Vec<(i64, u64)>,
}

fn chunk_sql() -> String {
    let values = vec!["(?, ?, ?)"; CHUNK].join(", ");
    format!("INSERT OR IGNORE INTO rows (checker_id, key, ts) VALUES {values}")
}

/// Inserts `batch` (row, key hash) first-seen for checker `id` inside `tx`. With `learn`,
/// also reports every row's stored timestamp for the cache.
pub(crate) fn insert_first_seen(
    tx: &Transaction<'_>,
    path: &str,
    id: i64,
    mut batch: Vec<(Row, u64)>,
    learn: bool,
) -> Result<Inserted, StoreError> {
    // Stable: among equal keys the first occurrence stays first and is the one kept.
    batch.sort_by(|a, b| a.0.key.cmp(&b.0.key));
    batch.dedup_by(|later, first| later.0.key == first.0.key);
    let mut out = Inserted {
        new: 0,
        learned: Vec::with_capacity(if learn { batch.len() } else { 0 }),
    };
    if learn && batch.len() >= RANGE_SCAN_MIN {
        batch = drop_known(tx, path, id, batch, &mut out.learned)?;
    }

    let sql = chunk_sql();
    let mut chunked = tx.prepare_cached(&sql).store_err(path)?;
    let mut single = tx
        .prepare_cached("INSERT OR IGNORE INTO rows (checker_id, key, ts) VALUES (?1, ?2, ?3)")
        .store_err(path)?;
    let mut stored_ts = tx
        .prepare_cached("SELECT ts FROM rows WHERE checker_id = ?1 AND key = ?2")
        .store_err(path)?;
    let mut chunks = batch.chunks_exact(CHUNK);
    for chunk in &mut chunks {
        let mut index = 1;
        for (row, _) in chunk {
            chunked.raw_bind_parameter(index, id).store_err(path)?;
            chunked
                .raw_bind_parameter(index + 1, &row.key)
                .store_err(path)?;
            chunked
                .raw_bind_parameter(index + 2, row.timestamp)
                .store_err(path)?;
            index += 3;
        }
        let inserted = chunked.raw_execute().store_err(path)?;
        out.new += inserted as u64;
        if !learn {
            continue;
        }
        if inserted == chunk.len() {
            out.learned
                .extend(chunk.iter().map(|(row, hash)| (row.timestamp, *hash)));
        } else {
            for (row, hash) in chunk {
                let ts: i64 = stored_ts
                    .query_row(params![id, row.key], |r| r.get(0))
                    .store_err(path)?;
                out.learned.push((ts, *hash));
            }
        }
    }
    for (row, hash) in chunks.remainder() {
        let inserted = single
            .execute(params![id, row.key, row.timestamp])
            .store_err(path)?;
        out.new += inserted as u64;
        if !learn {
            continue;
        }
        if inserted == 1 {
            out.learned.push((row.timestamp, *hash));
        } else {
            let ts: i64 = stored_ts
                .query_row(params![id, row.key], |r| r.get(0))
                .store_err(path)?;
            out.learned.push((ts, *hash));
        }
    }
    Ok(out)
}

/// Removes from `batch` (sorted, unique keys) the keys already stored with a timestamp inside
/// the batch's timestamp range, found by one index range scan reading at most four rows per
/// batch row; their stored timestamps go to `learned`.
fn drop_known(
    tx: &Transaction<'_>,
    path: &str,
    id: i64,
    batch: Vec<(Row, u64)>,
    learned: &mut Vec<(i64, u64)>,
) -> Result<Vec<(Row, u64)>, StoreError> {
    let (Some(lo), Some(hi)) = (
        batch.iter().map(|(row, _)| row.timestamp).min(),
        batch.iter().map(|(row, _)| row.timestamp).max(),
    ) else {
        return Ok(batch);
    };
    let limit = i64::try_from(batch.len().saturating_mul(4)).unwrap_or(i64::MAX);
    let mut scan = tx
        .prepare_cached(
            "SELECT key, ts FROM rows WHERE checker_id = ?1 AND ts >= ?2 AND ts <= ?3 LIMIT ?4",
        )
        .store_err(path)?;
    let stored: HashMap<String, i64> = scan
        .query_map(params![id, lo, hi, limit], |r| Ok((r.get(0)?, r.get(1)?)))
        .store_err(path)?
        .collect::<Result<_, _>>()
        .store_err(path)?;
    if stored.is_empty() {
        return Ok(batch);
    }
    let mut unknown = Vec::with_capacity(batch.len());
    for (row, hash) in batch {
        match stored.get(&row.key) {
            Some(&ts) => learned.push((ts, hash)),
            None => unknown.push((row, hash)),
        }
    }
    Ok(unknown)
}
