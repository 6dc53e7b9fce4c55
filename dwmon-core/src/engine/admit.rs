//! Step 4's admission of fetched rows (see "Rows that are not stored" in [`super`]):
//! far-future rows are rejected, unreachable ones dropped, the rest stored first-seen.

use super::{reachable_from, CycleContext};
use crate::checker_file::Checker;
use crate::source::{Fetched, RowSink, SourceError};
use async_trait::async_trait;
use std::collections::HashSet;

/// Step 4's admission of fetched rows, one batch at a time ([`RowSink`] of the engine):
/// far-future rows are rejected, rows no window can reach are dropped (after a checker's
/// first cycle, see "Rows that are not stored"), and the rest go to
/// [`Store::insert_first_seen`](crate::Store::insert_first_seen) before the source reads on. What it counts adds up to what one
/// whole-result batch would give: a key's first occurrence in the result decides, across
/// batches too (the store keeps a stored key's first timestamp; [`DroppedKeys`] remembers the
/// dropped ones).
pub(super) struct Admit<'a> {
    context: &'a CycleContext,
    checker: &'a Checker,
    windows: &'a [(i64, i64)],
    /// Not the checker's first cycle: rows no window can reach are dropped.
    drop_unreachable: bool,
    /// The purger's answer and the resulting keep-from epoch, once asked (at the first batch
    /// after a first cycle, else after the fetch).
    purge: Option<(Option<i64>, i64)>,
    dropped: DroppedKeys,
    future_limit: i64,
    pub(super) batches: u64,
    pub(super) rows_fetched: u64,
    pub(super) new_rows: u64,
    pub(super) rejected: u64,
    pub(super) rejected_samples: Vec<String>,
    /// The store failed on a batch: the fetch was stopped, and this is the error to report.
    pub(super) store_error: Option<crate::store::StoreError>,
}

impl<'a> Admit<'a> {
    pub(super) fn new(
        context: &'a CycleContext,
        checker: &'a Checker,
        drop_unreachable: bool,
        windows: &'a [(i64, i64)],
    ) -> Self {
        Admit {
            context,
            checker,
            windows,
            drop_unreachable,
            purge: None,
            dropped: DroppedKeys::default(),
            future_limit: context
                .now
                .saturating_add(context.config.max_future_seconds.max(0)),
            batches: 0,
            rows_fetched: 0,
            new_rows: 0,
            rejected: 0,
            rejected_samples: Vec::new(),
            store_error: None,
        }
    }

    /// This cycle's purge cutoff (the purger is asked once per cycle; the first cycle never
    /// purges) and the epoch before which fetched rows are not stored.
    fn purge(&mut self) -> (Option<i64>, i64) {
        if let Some(purge) = self.purge {
            return purge;
        }
        let context = self.context;
        let purge_before = context
            .purger
            .delete_older_than(self.checker, context.now)
            .filter(|_| self.drop_unreachable);
        let keep_from = if self.drop_unreachable {
            context.keep_from(self.checker, self.windows, purge_before)
        } else {
            i64::MIN
        };
        *self.purge.insert((purge_before, keep_from))
    }

    pub(super) fn purge_before(&mut self) -> Option<i64> {
        self.purge().0
    }
}

#[async_trait]
impl RowSink for Admit<'_> {
    fn batch_rows(&self) -> usize {
        crate::source::DEFAULT_BATCH_ROWS
    }

    async fn accept(&mut self, batch: Fetched) -> Result<(), SourceError> {
        if self.store_error.is_some() {
            return Err(stopped_by_store());
        }
        let Fetched {
            mut rows,
            rejected,
            rejected_samples,
        } = batch;
        self.batches += 1;
        self.rejected += rejected;
        let room = Fetched::MAX_SAMPLES.saturating_sub(self.rejected_samples.len());
        self.rejected_samples
            .extend(rejected_samples.into_iter().take(room));
        let (now, future_limit) = (self.context.now, self.future_limit);
        let max_future = self.context.config.max_future_seconds;
        let room = Fetched::MAX_SAMPLES.saturating_sub(self.rejected_samples.len());
        let mut far_future: u64 = 0;
        let mut samples = Vec::new();
        rows.retain(|row| {
            if row.timestamp <= future_limit {
                return true;
            }
            far_future += 1;
            if samples.len() < room {
                samples.push(format!(
                    "key {:?}: timestamp {} is {} s in the future (more than the {max_future} s allowed)",
                    crate::requirement::excerpt(&row.key),
                    row.timestamp,
                    row.timestamp.saturating_sub(now),
                ));
            }
            false
        });
        self.rejected += far_future;
        self.rejected_samples.extend(samples);
        self.rows_fetched += rows.len() as u64;
        if self.drop_unreachable {
            let (_, keep_from) = self.purge();
            skip_unreachable(&mut rows, keep_from, &mut self.dropped);
        }
        if rows.is_empty() {
            return Ok(());
        }
        match self
            .context
            .store
            .insert_first_seen(&self.checker.name, &rows)
            .await
        {
            Ok(new) => {
                self.new_rows += new;
                Ok(())
            }
            Err(e) => {
                self.store_error = Some(e);
                Err(stopped_by_store())
            }
        }
    }
}

/// What the engine's sink answers a source when the store refused a batch.
fn stopped_by_store() -> SourceError {
    SourceError::Other("fetch stopped: the store could not take the rows".to_string())
}

/// The keys of rows dropped as unreachable earlier in one fetch (their first occurrence
/// decides, so a later occurrence is dropped too). The last batch's dropped keys are kept as
/// they are and hashed only when another batch comes, so a fetch of one batch (most fetches)
/// never hashes them for this. Older batches' keys are kept as 64-bit SipHash hashes (random
/// keys per fetch), 8-16 bytes a key instead of the key itself: a hash collision would drop
/// one reachable row whose key hashes like an earlier batch's dropped one (about `n / 2^64`
/// per row after `n` dropped keys), the same residual risk as the store's cache of seen keys;
/// inside a batch the check is exact.
#[derive(Default)]
pub(super) struct DroppedKeys {
    hasher: std::hash::RandomState,
    /// Dropped keys of the batches before the last one, hashed.
    earlier: HashSet<u64>,
    /// Dropped keys of the last batch.
    last: Vec<String>,
}

impl DroppedKeys {
    fn hash(&self, key: &str) -> u64 {
        std::hash::BuildHasher::hash_one(&self.hasher, key)
    }

    /// Moves the last batch's keys into `earlier` (a new batch has come).
    fn settle(&mut self) {
        if self.last.is_empty() {
            return;
        }
        let last = std::mem::take(&mut self.last);
        self.earlier.reserve(last.len());
        for key in &last {
            let hash = self.hash(key);
            self.earlier.insert(hash);
        }
    }
}

/// Drops the rows with `timestamp < keep_from`, and the later occurrences of their keys: the
/// first occurrence of a key decides its timestamp (step 4 of a cycle, README "How a cycle
/// works"), even when it is dropped, also when it came in an earlier batch of the fetch
/// (`dropped`, updated here). Repeats among the kept rows are left to the store (first one
/// wins).
///
/// This runs on every row of every fetch after a checker's first cycle, so it hashes each row
/// once, with a fast hash (foldhash): the dropped rows' hashes go in a table, and a kept row
/// whose hash is there is compared by key with the dropped row, so a collision costs time,
/// never a row.
pub(super) fn skip_unreachable(
    rows: &mut Vec<crate::source::Row>,
    keep_from: i64,
    dropped: &mut DroppedKeys,
) {
    dropped.settle();
    let old = rows.iter().filter(|row| row.timestamp < keep_from).count();
    if old == 0 && dropped.earlier.is_empty() {
        return;
    }
    let fast = foldhash::fast::RandomState::default();
    // Fast hash of a dropped key -> the index of its first dropped row.
    let mut first_dropped: std::collections::HashMap<u64, usize, foldhash::fast::RandomState> =
        std::collections::HashMap::with_capacity_and_hasher(old, fast.clone());
    for (index, row) in rows.iter().enumerate() {
        if row.timestamp < keep_from {
            let hash = std::hash::BuildHasher::hash_one(&fast, row.key.as_str());
            first_dropped.entry(hash).or_insert(index);
        }
    }
    let mut keep: Vec<bool> = Vec::with_capacity(rows.len());
    for (index, row) in rows.iter().enumerate() {
        if row.timestamp < keep_from {
            keep.push(false);
            continue;
        }
        let dropped_here = !first_dropped.is_empty()
            && first_dropped
                .get(&std::hash::BuildHasher::hash_one(&fast, row.key.as_str()))
                .is_some_and(|&first| {
                    first < index
                        && (rows[first].key == row.key
                            // A collision of the fast hash: look for the key itself.
                            || rows[..index]
                                .iter()
                                .any(|r| r.timestamp < keep_from && r.key == row.key))
                });
        let dropped_before =
            !dropped.earlier.is_empty() && dropped.earlier.contains(&dropped.hash(&row.key));
        keep.push(!(dropped_here || dropped_before));
    }
    let mut index = 0;
    rows.retain_mut(|row| {
        let kept = keep[index];
        if row.timestamp < keep_from {
            dropped.last.push(std::mem::take(&mut row.key));
        }
        index += 1;
        kept
    });
}

impl CycleContext {
    /// Which fetched rows are worth storing after the first cycle (see "Rows that are not
    /// stored" in the module docs): none before every window of this cycle and the purger's
    /// retention cutoff (they could not be counted now and the purge deletes them), and none
    /// before the oldest window any requirement can still reach (later candidates are after
    /// the last checked minute, so nothing can ever count them).
    pub(super) fn keep_from(
        &self,
        checker: &Checker,
        windows: &[(i64, i64)],
        purge_before: Option<i64>,
    ) -> i64 {
        let oldest_window = windows.iter().map(|w| w.0).min().unwrap_or(i64::MIN);
        let purgeable = self
            .purger
            .retention_cutoff(checker, self.now)
            .or(purge_before)
            .map_or(i64::MIN, |cutoff| cutoff.min(oldest_window));
        purgeable.max(reachable_from(checker, self.minute))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Row;

    #[test]
    fn skipping_unreachable_rows_respects_first_occurrence() {
        let mut rows = vec![
            Row::new("old_first", 10),
            Row::new("new", 200),
            Row::new("old_first", 300), // a later occurrence never replaces the first
            Row::new("new", 5),
            Row::new("old", 99),
            Row::new("edge", 100),
        ];
        let mut dropped = DroppedKeys::default();
        skip_unreachable(&mut rows, 100, &mut dropped);
        assert_eq!(rows, vec![Row::new("new", 200), Row::new("edge", 100)]);

        // A later batch of the same fetch: keys dropped before stay dropped.
        let mut rows = vec![Row::new("old", 150), Row::new("fresh", 150)];
        skip_unreachable(&mut rows, 100, &mut dropped);
        assert_eq!(rows, vec![Row::new("fresh", 150)]);

        // Nothing old: the batch is left alone, duplicates included.
        let mut rows = vec![Row::new("a", 100), Row::new("a", 200)];
        skip_unreachable(&mut rows, 100, &mut DroppedKeys::default());
        assert_eq!(rows.len(), 2);
    }

    proptest::proptest! {
        /// Batch by batch, a row is dropped exactly when it is old or an earlier row of the
        /// whole fetch with its key was old (brute-force oracle).
        #[test]
        fn skipping_unreachable_rows_agrees_with_an_oracle(
            spec in proptest::collection::vec((0_u8..12, 0_i64..200), 0..80),
            batch in 1_usize..30,
        ) {
            let rows: Vec<Row> = spec.iter().map(|&(k, t)| Row::new(format!("k{k}"), t)).collect();
            let expected: Vec<Row> = rows
                .iter()
                .enumerate()
                .filter(|&(i, row)| {
                    row.timestamp >= 100
                        && !rows[..i].iter().any(|r| r.timestamp < 100 && r.key == row.key)
                })
                .map(|(_, row)| row.clone())
                .collect();
            let mut dropped = DroppedKeys::default();
            let mut kept = Vec::new();
            for chunk in rows.chunks(batch) {
                let mut chunk = chunk.to_vec();
                skip_unreachable(&mut chunk, 100, &mut dropped);
                kept.extend(chunk);
            }
            proptest::prop_assert_eq!(kept, expected);
        }
    }
}
