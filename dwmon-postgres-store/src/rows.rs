//! [`RowStore`] for [`PostgresStore`]: first-seen rows in bulk (`unnest` arrays, each key's
//! first occurrence, `INSERT .. ON CONFLICT DO NOTHING` in key order) after the cache of
//! stored keys took out the rows it knows (`seen.rs`), windowed counts and purges as index
//! range scans of one checker.

use crate::error::ResultExt;
use crate::store::{retryable, to_i64, to_u64, Access, Params, PostgresStore, ATTEMPTS};
use async_trait::async_trait;
use dwmon_core::{Row, RowStore, StoreError};
use tokio_postgres::types::{ToSql, Type};

/// Rows per insert statement: large enough that a batch costs few round trips, small enough
/// that one statement's arrays stay a few MB.
const CHUNK: usize = 20_000;

impl PostgresStore {
    /// Inserts `rows` first-seen for checker `id`; returns how many were new and, with
    /// `hashes` (the key hash of each row), the `(stored timestamp, hash)` of every row the
    /// transaction inserted or found stored, to be learned by the cache once committed.
    async fn try_insert(
        &self,
        id: i64,
        rows: &[&Row],
        hashes: Option<&[u64]>,
    ) -> Result<(u64, Vec<(i64, u64)>), StoreError> {
        let location = self.location();
        let chunks: Vec<(Vec<&str>, Vec<i64>)> = rows
            .chunks(CHUNK)
            .map(|chunk| {
                (
                    chunk.iter().map(|r| r.key.as_str()).collect(),
                    chunk.iter().map(|r| r.timestamp).collect(),
                )
            })
            .collect();
        let params: Vec<[(&(dyn ToSql + Sync), Type); 3]> = chunks
            .iter()
            .map(|(keys, stamps)| {
                [
                    (&id as &(dyn ToSql + Sync), Type::INT8),
                    (keys as &(dyn ToSql + Sync), Type::TEXT_ARRAY),
                    (stamps as &(dyn ToSql + Sync), Type::INT8_ARRAY),
                ]
            })
            .collect();
        let sql = if hashes.is_some() {
            INSERT_LEARNING
        } else {
            INSERT_COUNTING
        };
        let statements: Vec<(&str, &Params<'_>)> = params.iter().map(|p| (sql, &p[..])).collect();
        // Every chunk in one transaction of one round trip.
        let answers = self.pipelined(Access::Write, &statements).await?;
        let mut new = 0_i64;
        let mut learned = Vec::new();
        for (chunk_index, answer) in answers.iter().enumerate() {
            let Some(hashes) = hashes else {
                for row in answer {
                    new += row.try_get::<_, i64>(0).store_err(location)?;
                }
                continue;
            };
            let offset = chunk_index * CHUNK;
            for row in answer {
                let ordinal: i64 = row.try_get(0).store_err(location)?;
                let ts: i64 = row.try_get(1).store_err(location)?;
                let inserted: bool = row.try_get(2).store_err(location)?;
                new += i64::from(inserted);
                let index = usize::try_from(ordinal - 1)
                    .ok()
                    .and_then(|i| hashes.get(offset + i));
                if let Some(&hash) = index {
                    learned.push((ts, hash));
                }
            }
        }
        Ok((to_u64(new, "row count")?, learned))
    }

    /// [`PostgresStore::try_insert`], run again after a deadlock or serialization failure.
    async fn insert(
        &self,
        id: i64,
        rows: &[&Row],
        hashes: Option<&[u64]>,
    ) -> Result<(u64, Vec<(i64, u64)>), StoreError> {
        let mut attempt = 1;
        loop {
            match self.try_insert(id, rows, hashes).await {
                Err(e) if attempt < ATTEMPTS && retryable(&e) => attempt += 1,
                result => return result,
            }
        }
    }
}

/// Each key's first occurrence in the batch, inserted in key order (two inserts of
/// overlapping keys then lock them in the same order: no deadlock), and the checker's stored
/// row count moved by as many; answers how many were new.
const INSERT_COUNTING: &str = "WITH input AS (
         SELECT k, t, o FROM unnest($2::text[], $3::int8[]) WITH ORDINALITY AS u(k, t, o)
     ), first AS (
         SELECT DISTINCT ON (k) k, t FROM input ORDER BY k, o
     ), inserted AS (
         INSERT INTO dwmon_rows (checker_id, key, ts)
         SELECT $1, k, t FROM first ORDER BY k
         ON CONFLICT DO NOTHING RETURNING 1
     ), counted AS (
         UPDATE dwmon_checkers SET stored_rows = stored_rows + (SELECT count(*) FROM inserted)
         WHERE id = $1 AND EXISTS (SELECT 1 FROM inserted)
     )
     SELECT count(*) FROM inserted";

/// [`INSERT_COUNTING`], answering `(ordinal in the batch, stored timestamp, inserted?)` for
/// every distinct key: the inserted ones with their timestamp, the ones already stored with
/// theirs (the main query's snapshot does not see this statement's inserts).
const INSERT_LEARNING: &str = "WITH input AS (
         SELECT k, t, o FROM unnest($2::text[], $3::int8[]) WITH ORDINALITY AS u(k, t, o)
     ), first AS (
         SELECT DISTINCT ON (k) k, t, o FROM input ORDER BY k, o
     ), inserted AS (
         INSERT INTO dwmon_rows (checker_id, key, ts)
         SELECT $1, k, t FROM first ORDER BY k
         ON CONFLICT DO NOTHING RETURNING key, ts
     ), counted AS (
         UPDATE dwmon_checkers SET stored_rows = stored_rows + (SELECT count(*) FROM inserted)
         WHERE id = $1 AND EXISTS (SELECT 1 FROM inserted)
     )
     SELECT f.o, i.ts, true FROM inserted i JOIN first f ON f.k = i.key
     UNION ALL
     SELECT f.o, r.ts, false FROM first f
     JOIN dwmon_rows r ON r.checker_id = $1 AND r.key = f.k";

#[async_trait]
impl RowStore for PostgresStore {
    async fn insert_first_seen(&self, checker: &str, rows: &[Row]) -> Result<u64, StoreError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let seen = self.inner.seen.as_ref().filter(|s| s.usable(checker));
        let Some(seen) = seen else {
            let id = self.checker_id_for_write(checker).await?;
            let rows: Vec<&Row> = rows.iter().collect();
            return Ok(self.insert(id, &rows, None).await?.0);
        };
        // Only the rows the cache cannot vouch for go to the server.
        let misses = seen.cache.misses(checker, rows);
        if misses.indices.is_empty() {
            return Ok(0);
        }
        let id = self.checker_id_for_write(checker).await?;
        let batch: Vec<&Row> = misses.indices.iter().map(|&i| &rows[i]).collect();
        let hashes: Vec<u64> = misses.indices.iter().map(|&i| misses.hashes[i]).collect();
        let (new, mut learned) = self.insert(id, &batch, Some(&hashes)).await?;
        seen.cache.learn(checker, &mut learned);
        Ok(new)
    }

    /// Evicts the checker's cached keys before `from` and stops caching such keys (see
    /// `dwmon_core::seen_cache`).
    fn set_reachable_from(&self, checker: &str, from: i64) {
        if let Some(seen) = &self.inner.seen {
            seen.cache.set_reachable_from(checker, from);
        }
    }

    async fn count_windows(
        &self,
        checker: &str,
        windows: &[(i64, i64)],
    ) -> Result<Vec<u64>, StoreError> {
        let froms: Vec<i64> = windows.iter().map(|w| w.0).collect();
        let tos: Vec<i64> = windows.iter().map(|w| w.1).collect();
        // One statement: an index range count per window (0 for a checker never stored).
        let rows = self
            .one_statement(
                Access::Read,
                "SELECT w.o, CASE WHEN w.f < w.t THEN
                     (SELECT count(*) FROM dwmon_rows r
                      WHERE r.checker_id = (SELECT id FROM dwmon_checkers WHERE name = $1)
                        AND r.ts >= w.f AND r.ts < w.t)
                   ELSE 0 END
                 FROM unnest($2::int8[], $3::int8[]) WITH ORDINALITY AS w(f, t, o)
                 ORDER BY w.o",
                &[
                    (&checker, Type::TEXT),
                    (&froms, Type::INT8_ARRAY),
                    (&tos, Type::INT8_ARRAY),
                ],
            )
            .await?;
        rows.iter()
            .map(|row| to_u64(row.try_get(1).store_err(self.location())?, "count"))
            .collect()
    }

    async fn row_timestamps(
        &self,
        checker: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let location = self.location();
        let mut client = self.client().await?;
        let tx = self.begin_read(&mut client).await?;
        let Some(id) = self.checker_id(&tx, checker).await? else {
            return Ok(Vec::new());
        };
        let rows = tx
            .query_typed(
                "SELECT ts FROM dwmon_rows WHERE checker_id = $1 AND ts >= $2 AND ts < $3
                 ORDER BY ts",
                &[(&id, Type::INT8), (&from, Type::INT8), (&to, Type::INT8)],
            )
            .await
            .store_err(location)?;
        tx.commit().await.store_err(location)?;
        rows.iter()
            .map(|row| row.try_get(0).store_err(location))
            .collect()
    }

    async fn purge(&self, checker: &str, older_than: i64) -> Result<u64, StoreError> {
        let location = self.location();
        let mut client = self.client().await?;
        let tx = self.begin(&mut client).await?;
        let Some(id) = self.checker_id(&tx, checker).await? else {
            return Ok(0);
        };
        let deleted = tx
            .execute_typed(
                "DELETE FROM dwmon_rows WHERE checker_id = $1 AND ts < $2",
                &[(&id, Type::INT8), (&older_than, Type::INT8)],
            )
            .await
            .store_err(location)?;
        let mut epoch = None;
        if deleted > 0 {
            let n = to_i64(deleted, "row count")?;
            // The rows epoch after this purge's trigger bumped it.
            let row = tx
                .query_typed_one(
                    "UPDATE dwmon_checkers SET stored_rows = greatest(stored_rows - $2, 0)
                     WHERE id = $1 RETURNING rows_epoch",
                    &[(&id, Type::INT8), (&n, Type::INT8)],
                )
                .await
                .store_err(location)?;
            epoch = Some(row.try_get::<_, i64>(0).store_err(location)?);
        }
        tx.commit().await.store_err(location)?;
        if let (Some(seen), Some(epoch)) = (&self.inner.seen, epoch) {
            seen.purged(checker, older_than, epoch);
        }
        Ok(deleted)
    }
}
