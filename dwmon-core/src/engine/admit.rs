//! Step 4's admission of fetched rows (see "Rows that are not stored" in [`super`]):
//! far-future rows are rejected, unreachable ones dropped, the rest stored first-seen.

use super::failure::Failure;
use super::{reachable_from, CycleContext};
use crate::checker_file::Checker;
use crate::purger::Cutoffs;
use crate::record::ErrorKind;
use crate::source::{Fetched, Row, RowSink, SourceError};
use async_trait::async_trait;
use std::collections::HashSet;

/// The rules of row admission for one checker's fetch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Rules {
    /// The cycle's `now`.
    pub(super) now: i64,
    /// Rows stamped after `now + max_future_seconds` are rejected as far-future.
    pub(super) max_future_seconds: i64,
    /// Rows before this epoch are dropped as unreachable, with the later occurrences of their
    /// keys (see "Rows that are not stored"); `None` on a checker's first cycle, which stores
    /// the whole fetched history.
    pub(super) keep_from: Option<i64>,
}

/// What admission makes of one fetched batch.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Admitted {
    /// The rows to store first-seen.
    pub(super) rows: Vec<Row>,
    /// Good rows the source returned (stored or dropped as unreachable).
    pub(super) good: u64,
    /// Rows rejected: by the source (bad values), or as far-future here.
    pub(super) rejected: u64,
    /// Texts of some rejected rows (at most the `room` given).
    pub(super) samples: Vec<String>,
}

/// Row admission (step 4), a pure function of one fetched batch: the source's rejected rows
/// and the far-future ones are rejected (with up to `room` sample texts, the source's first),
/// the unreachable ones and the later occurrences of their keys dropped (`dropped` carries
/// those keys to the fetch's later batches); the rest are to be stored.
pub(super) fn admit(
    batch: Fetched,
    rules: &Rules,
    dropped: &mut DroppedKeys,
    room: usize,
) -> Admitted {
    let Fetched {
        mut rows,
        rejected,
        rejected_samples,
    } = batch;
    let mut samples: Vec<String> = rejected_samples.into_iter().take(room).collect();
    let future_limit = rules.now.saturating_add(rules.max_future_seconds.max(0));
    let mut far_future: u64 = 0;
    rows.retain(|row| {
        if row.timestamp <= future_limit {
            return true;
        }
        far_future += 1;
        if samples.len() < room {
            samples.push(format!(
                "key {:?}: timestamp {} is {} s in the future (more than the {} s allowed)",
                crate::requirement::excerpt(&row.key),
                row.timestamp,
                row.timestamp.saturating_sub(rules.now),
                rules.max_future_seconds,
            ));
        }
        false
    });
    let good = rows.len() as u64;
    if let Some(keep_from) = rules.keep_from {
        skip_unreachable(&mut rows, keep_from, dropped);
    }
    Admitted {
        rows,
        good,
        rejected: rejected + far_future,
        samples,
    }
}

/// Step 4's sink ([`RowSink`] of the engine): each fetched batch is admitted ([`admit`]) and
/// its rows go to [`Store::insert_first_seen`](crate::Store::insert_first_seen) before the
/// source reads on. What it counts adds up to what one whole-result batch would give: a key's
/// first occurrence in the result decides, across batches too (the store keeps a stored key's
/// first timestamp; [`DroppedKeys`] remembers the dropped ones).
pub(super) struct Admit<'a> {
    context: &'a CycleContext,
    checker: &'a Checker,
    windows: &'a [(i64, i64)],
    /// Not the checker's first cycle: rows no window can reach are dropped.
    drop_unreachable: bool,
    /// The purger's cutoffs and the resulting keep-from epoch, once asked (at the first
    /// batch after a first cycle, else after the fetch).
    purge: Option<(Cutoffs, i64)>,
    dropped: DroppedKeys,
    pub(super) batches: u64,
    pub(super) rows_fetched: u64,
    pub(super) new_rows: u64,
    pub(super) rejected: u64,
    rejected_samples: Vec<String>,
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
            batches: 0,
            rows_fetched: 0,
            new_rows: 0,
            rejected: 0,
            rejected_samples: Vec::new(),
            store_error: None,
        }
    }

    /// The checker's retention cutoffs (the purger is asked once per cycle) and the epoch
    /// before which fetched rows are not stored.
    fn purge(&mut self) -> (Cutoffs, i64) {
        if let Some(purge) = self.purge {
            return purge;
        }
        let context = self.context;
        let cutoffs = context.purger.cutoffs(self.checker, context.now);
        let keep_from = if self.drop_unreachable {
            context.keep_from(self.checker, self.windows, cutoffs.rows)
        } else {
            i64::MIN
        };
        *self.purge.insert((cutoffs, keep_from))
    }

    /// After the fetch: what this cycle purges ([`CycleContext::this_cycles_purge`]), and
    /// the rejected rows as a failure to report once the checks are recorded.
    pub(super) fn finish(mut self) -> (Cutoffs, Option<Failure>) {
        let first_cycle = !self.drop_unreachable;
        let purge = self
            .context
            .this_cycles_purge(self.checker, self.purge().0, first_cycle);
        if self.rejected == 0 {
            return (purge, None);
        }
        let mut text = format!(
            "{} rows rejected (checks used the {} good rows)",
            self.rejected, self.rows_fetched
        );
        if !self.rejected_samples.is_empty() {
            text.push_str(": ");
            text.push_str(&self.rejected_samples.join("; "));
        }
        (purge, Some(Failure::new(ErrorKind::RejectedRows, text)))
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
        self.batches += 1;
        let keep_from = if self.drop_unreachable {
            Some(self.purge().1)
        } else {
            None
        };
        let rules = Rules {
            now: self.context.now,
            max_future_seconds: self.context.config.max_future_seconds,
            keep_from,
        };
        let room = Fetched::MAX_SAMPLES.saturating_sub(self.rejected_samples.len());
        let admitted = admit(batch, &rules, &mut self.dropped, room);
        self.rejected += admitted.rejected;
        self.rejected_samples.extend(admitted.samples);
        self.rows_fetched += admitted.good;
        if admitted.rows.is_empty() {
            return Ok(());
        }
        let stored = self
            .context
            .store
            .insert_first_seen(&self.checker.name, &admitted.rows)
            .await;
        match stored {
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
        rows_cutoff: Option<i64>,
    ) -> i64 {
        let oldest_window = windows.iter().map(|w| w.0).min().unwrap_or(i64::MIN);
        let purgeable = rows_cutoff.map_or(i64::MIN, |cutoff| cutoff.min(oldest_window));
        purgeable.max(reachable_from(checker, self.minute))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000_000;

    fn batch(rows: &[(&str, i64)], rejected: u64, samples: &[&str]) -> Fetched {
        Fetched {
            rows: rows.iter().map(|&(k, t)| Row::new(k, t)).collect(),
            rejected,
            rejected_samples: samples.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Row admission, step 4 of SPEC 5 and "Rows that are not stored": one case a row.
    #[test]
    fn admission_rejects_far_future_rows_and_drops_unreachable_ones() {
        let first_cycle = Rules {
            now: NOW,
            max_future_seconds: 100,
            keep_from: None,
        };
        let later_cycle = Rules {
            keep_from: Some(NOW - 500),
            ..first_cycle
        };
        struct Case {
            name: &'static str,
            rules: Rules,
            batch: Fetched,
            room: usize,
            stored: Vec<(&'static str, i64)>,
            good: u64,
            rejected: u64,
            samples: usize,
        }
        let cases = [
            Case {
                name: "first cycle: the whole history is stored",
                rules: first_cycle,
                batch: batch(&[("a", 0), ("b", NOW - 1)], 0, &[]),
                room: 5,
                stored: vec![("a", 0), ("b", NOW - 1)],
                good: 2,
                rejected: 0,
                samples: 0,
            },
            Case {
                name: "up to now + max_future_seconds is fine, one second more is far-future",
                rules: first_cycle,
                batch: batch(&[("edge", NOW + 100), ("late", NOW + 101)], 0, &[]),
                room: 5,
                stored: vec![("edge", NOW + 100)],
                good: 1,
                rejected: 1,
                samples: 1,
            },
            Case {
                name: "the source's rejected rows are counted, its samples first",
                rules: first_cycle,
                batch: batch(&[("late", NOW + 999)], 3, &["null key", "bad ts"]),
                room: 2,
                stored: vec![],
                good: 0,
                rejected: 4,
                samples: 2,
            },
            Case {
                name: "later cycle: unreachable rows and later occurrences of their keys drop",
                rules: later_cycle,
                batch: batch(
                    &[("old", NOW - 501), ("old", NOW), ("edge", NOW - 500)],
                    0,
                    &[],
                ),
                room: 5,
                stored: vec![("edge", NOW - 500)],
                good: 3,
                rejected: 0,
                samples: 0,
            },
            Case {
                name: "a far-future row is rejected, not dropped, after the first cycle too",
                rules: later_cycle,
                batch: batch(&[("late", NOW + 101), ("old", 1)], 0, &[]),
                room: 0,
                stored: vec![],
                good: 1,
                rejected: 1,
                samples: 0,
            },
        ];
        for case in cases {
            let admitted = admit(
                case.batch,
                &case.rules,
                &mut DroppedKeys::default(),
                case.room,
            );
            let stored: Vec<Row> = case.stored.iter().map(|&(k, t)| Row::new(k, t)).collect();
            assert_eq!(admitted.rows, stored, "{}", case.name);
            assert_eq!(admitted.good, case.good, "{}", case.name);
            assert_eq!(admitted.rejected, case.rejected, "{}", case.name);
            assert_eq!(admitted.samples.len(), case.samples, "{}", case.name);
        }
        let far = admit(
            batch(&[("late", NOW + 101)], 0, &[]),
            &first_cycle,
            &mut DroppedKeys::default(),
            1,
        );
        assert_eq!(
            far.samples,
            ["key \"late\": timestamp 1000101 is 101 s in the future (more than the 100 s allowed)"]
        );
    }

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
