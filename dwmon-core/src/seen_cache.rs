//! An in-process cache of the keys a store knows to be stored, so a steady-state cycle
//! (the same rows fetched again and again, a few new ones) barely touches the database.
//!
//! A checker's query typically returns the same rows cycle after cycle with a few new ones
//! (10,000 rows, 99% seen before). Asking the database about each of them costs a lookup per
//! row; [`SeenCache`] answers "certainly stored" for most of them from memory, so only the
//! misses go to the database. The SQLite store and the PostgreSQL store use it; a store of
//! your own can too.
//!
//! # Correctness
//!
//! Invariant, which the store using the cache must keep: a hash `h` is in bucket `b` of
//! checker `c` only if `c` has a committed stored row whose key hashes to `h` and whose
//! *stored* timestamp lies in bucket `b`.
//!
//! - A lookup uses the fetched row's timestamp to pick the bucket. A hit therefore means the
//!   key is stored, so the first-seen insert would have been a no-op: skipping it is exact. A
//!   miss (including a key whose timestamp changed since it was stored) falls back to the
//!   database.
//! - Entries are added ([`SeenCache::learn`]) only after the transaction that stored (or
//!   found) the row committed, with the timestamp the database actually holds.
//! - A purge of `ts < t` is followed by [`SeenCache::forget_older_than`]: every bucket that
//!   starts before `t` is dropped whole (entries of a straddling bucket that survived only
//!   become misses).
//! - When rows may have been deleted by someone else (another connection to an SQLite file,
//!   another runner on a shared PostgreSQL store), the store calls [`SeenCache::clear`] or
//!   [`SeenCache::forget`] before the next lookup.
//!
//! The one residual risk is a 64-bit hash collision: a new key whose hash equals that of a
//! stored key in the same checker and bucket would be taken as seen and not counted. Hashes
//! are SipHash-1-3 with random keys chosen per process, so input cannot provoke collisions;
//! by chance the probability is about `n / 2^64` per new key for `n` cached keys in the
//! bucket (10^4 keys: 5 * 10^-16 per new key, i.e. about one miscount in 10^5 years at
//! 10^5 new keys a minute). The stores can disable the cache (capacity 0) if even that is
//! too much.
//!
//! # Memory
//!
//! Each bucket is a sorted `Vec<u64>` with a small directory by the hashes' top bits: about
//! 9 bytes per cached key (10^7 keys = 90 MB), and a lookup reads one directory entry and
//! about four hashes. Only keys a later fetch can still look up are cached: the engine tells
//! the store, every cycle, from which timestamp on a checker's rows can still be handed over
//! ([`RowStore::set_reachable_from`](crate::RowStore::set_reachable_from): its horizon plus
//! its longest window; rows older than that are dropped before they reach the store). Keys
//! older than that are not learned (a first cycle's history is stored but not cached), and
//! buckets wholly before it are dropped, so a checker holds at most its reachable window
//! plus one bucket ([`BUCKET_SECONDS`]) of keys whether or not it fetches anything; a checker
//! no longer loaded holds none. The total is also capped by the configured capacity; beyond
//! it, keys are simply not cached. Evicting never changes a result: a miss asks the database.
//!
//! ```
//! use dwmon_core::seen_cache::SeenCache;
//! use dwmon_core::Row;
//!
//! let cache = SeenCache::new(1_000);
//! let rows = [Row::new("b1", 100), Row::new("b2", 160)];
//! assert_eq!(cache.misses("backups", &rows).indices, [0, 1]);
//! // ... the store inserted both and committed; it learns their stored timestamps:
//! let mut stored: Vec<(i64, u64)> = rows.iter().map(|r| (r.timestamp, cache.hash(&r.key))).collect();
//! cache.learn("backups", &mut stored);
//! assert!(cache.misses("backups", &rows).indices.is_empty());
//! ```

use crate::Row;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Width of a timestamp bucket, seconds: how far past a checker's reachable window its
/// cached keys may reach (eviction drops whole buckets).
pub const BUCKET_SECONDS: i64 = 600;

/// The bucket of a stored timestamp.
fn bucket_of(ts: i64) -> i64 {
    ts.div_euclid(BUCKET_SECONDS)
}

/// Locks a mutex, ignoring poisoning (the protected data is always left consistent).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The cached keys of one timestamp bucket: sorted unique hashes plus a directory by their
/// top bits, so a lookup is one directory read and a scan of about four hashes.
#[derive(Debug, Default)]
struct Bucket {
    hashes: Vec<u64>,
    /// `directory[i]` is the index of the first hash whose top `bits` bits are `>= i`;
    /// `2^bits + 1` entries.
    directory: Vec<u32>,
    bits: u32,
}

impl Bucket {
    fn slot(&self, hash: u64) -> usize {
        if self.bits == 0 {
            0
        } else {
            (hash >> (64 - self.bits)) as usize
        }
    }

    fn contains(&self, hash: u64) -> bool {
        let slot = self.slot(hash);
        match (self.directory.get(slot), self.directory.get(slot + 1)) {
            (Some(&lo), Some(&hi)) => self.hashes[lo as usize..hi as usize].contains(&hash),
            _ => false,
        }
    }

    /// Adds `hashes` (any order); returns how many were new.
    fn insert(&mut self, hashes: impl Iterator<Item = u64>) -> usize {
        let before = self.hashes.len();
        let mut added: Vec<u64> = hashes.collect();
        added.sort_unstable();
        self.hashes.reserve_exact(added.len());
        self.hashes.extend(added);
        // Two sorted runs: the stable sort merges them in linear time.
        self.hashes.sort();
        self.hashes.dedup();
        self.hashes.shrink_to_fit();
        self.rebuild_directory();
        self.hashes.len() - before
    }

    fn rebuild_directory(&mut self) {
        let n = self.hashes.len();
        // About four hashes per slot: half a byte to a byte of directory per key.
        self.bits = if n < 8 {
            0
        } else {
            (usize::BITS - 1 - (n / 4).leading_zeros()).min(24)
        };
        let slots = 1_usize << self.bits;
        self.directory.clear();
        self.directory.reserve_exact(slots + 1);
        let mut index = 0;
        for slot in 0..slots {
            while index < n && self.slot(self.hashes[index]) < slot {
                index += 1;
            }
            self.directory
                .push(u32::try_from(index).unwrap_or(u32::MAX));
        }
        self.directory.push(u32::try_from(n).unwrap_or(u32::MAX));
    }
}

/// One checker's cached keys: timestamp bucket -> keys.
#[derive(Debug)]
struct CheckerSeen {
    buckets: BTreeMap<i64, Bucket>,
    /// No key with a stored timestamp before this can be looked up again
    /// ([`SeenCache::set_reachable_from`]); such keys are not learned.
    reachable_from: i64,
}

impl Default for CheckerSeen {
    fn default() -> Self {
        CheckerSeen {
            buckets: BTreeMap::new(),
            reachable_from: i64::MIN,
        }
    }
}

impl CheckerSeen {
    /// Drops the buckets starting before `bucket`; returns how many keys they held.
    fn drop_buckets_before(&mut self, bucket: i64) -> u64 {
        let kept = self.buckets.split_off(&bucket);
        let dropped = std::mem::replace(&mut self.buckets, kept);
        dropped.values().map(|b| b.hashes.len() as u64).sum()
    }
}

/// Which rows of a batch the cache could not vouch for.
#[derive(Debug)]
pub struct Misses {
    /// Indices into the batch, ascending (so first occurrences stay first).
    pub indices: Vec<usize>,
    /// The key hash of every row of the batch, by index.
    pub hashes: Vec<u64>,
}

/// Keys known to be stored, per checker. See the module docs for the invariant.
#[derive(Debug)]
pub struct SeenCache {
    hasher: RandomState,
    capacity: u64,
    entries: AtomicU64,
    checkers: Mutex<HashMap<String, Arc<Mutex<CheckerSeen>>>>,
}

impl SeenCache {
    /// An empty cache holding at most `capacity` keys in total.
    pub fn new(capacity: u64) -> Self {
        SeenCache {
            hasher: RandomState::new(),
            capacity,
            entries: AtomicU64::new(0),
            checkers: Mutex::new(HashMap::new()),
        }
    }

    /// The cache key of a row key.
    pub fn hash(&self, key: &str) -> u64 {
        self.hasher.hash_one(key)
    }

    /// How many keys are cached.
    pub fn len(&self) -> u64 {
        self.entries.load(Ordering::Relaxed)
    }

    /// Whether no key is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn checker(&self, name: &str) -> Arc<Mutex<CheckerSeen>> {
        let mut checkers = lock(&self.checkers);
        if let Some(seen) = checkers.get(name) {
            return Arc::clone(seen);
        }
        let seen = Arc::new(Mutex::new(CheckerSeen::default()));
        checkers.insert(name.to_owned(), Arc::clone(&seen));
        seen
    }

    /// The rows of `rows` not certainly stored for `checker`.
    pub fn misses(&self, checker: &str, rows: &[Row]) -> Misses {
        let hashes: Vec<u64> = rows.iter().map(|row| self.hash(&row.key)).collect();
        let seen = self.checker(checker);
        let seen = lock(&seen);
        // Rows usually come in timestamp order: remember the last bucket looked up.
        let mut current: Option<(i64, Option<&Bucket>)> = None;
        let mut indices = Vec::new();
        for (index, (row, &hash)) in rows.iter().zip(&hashes).enumerate() {
            let bucket = bucket_of(row.timestamp);
            let cached = match current {
                Some((b, cached)) if b == bucket => cached,
                _ => {
                    let cached = seen.buckets.get(&bucket);
                    current = Some((bucket, cached));
                    cached
                }
            };
            if !cached.is_some_and(|c| c.contains(hash)) {
                indices.push(index);
            }
        }
        Misses { indices, hashes }
    }

    /// Records that `checker` has committed rows `(stored timestamp, key hash)`; rows before
    /// the checker's reachable window are left out (they can never be looked up again).
    pub fn learn(&self, checker: &str, learned: &mut Vec<(i64, u64)>) {
        if learned.is_empty() {
            return;
        }
        let seen = self.checker(checker);
        let mut seen = lock(&seen);
        let reachable_from = seen.reachable_from;
        learned.retain(|&(ts, _)| ts >= reachable_from);
        for item in learned.iter_mut() {
            item.0 = bucket_of(item.0);
        }
        learned.sort_unstable();
        let mut learned: &[(i64, u64)] = learned;
        while let Some(&(bucket, _)) = learned.first() {
            let group_len = learned.partition_point(|l| l.0 == bucket);
            let (group, rest) = learned.split_at(group_len);
            learned = rest;
            let room = self.capacity.saturating_sub(self.len());
            let take = group.len().min(usize::try_from(room).unwrap_or(usize::MAX));
            if take == 0 {
                break;
            }
            let added = seen
                .buckets
                .entry(bucket)
                .or_default()
                .insert(group[..take].iter().map(|&(_, hash)| hash));
            self.entries.fetch_add(added as u64, Ordering::Relaxed);
        }
    }

    /// Eviction by age: no later fetch can hand `checker` a row with a timestamp before
    /// `from`, so its keys before `from` are forgotten (whole buckets: those of the bucket
    /// holding `from` stay until it is passed) and no longer learned. `i64::MAX` forgets the
    /// checker (no longer loaded).
    pub fn set_reachable_from(&self, checker: &str, from: i64) {
        if from == i64::MAX {
            let removed = lock(&self.checkers).remove(checker);
            if let Some(seen) = removed {
                let removed = lock(&seen).drop_buckets_before(i64::MAX);
                self.entries.fetch_sub(removed, Ordering::Relaxed);
            }
            return;
        }
        let seen = self.checker(checker);
        let mut seen = lock(&seen);
        seen.reachable_from = from;
        let removed = seen.drop_buckets_before(bucket_of(from));
        self.entries.fetch_sub(removed, Ordering::Relaxed);
    }

    /// Forgets `checker`'s keys that may have been purged (`ts < older_than`).
    pub fn forget_older_than(&self, checker: &str, older_than: i64) {
        let seen = self.checker(checker);
        let mut seen = lock(&seen);
        // Buckets starting before `older_than` hold (possibly only some) purged keys.
        let keep_from = older_than.div_euclid(BUCKET_SECONDS)
            + i64::from(older_than.rem_euclid(BUCKET_SECONDS) != 0);
        let removed = seen.drop_buckets_before(keep_from);
        self.entries.fetch_sub(removed, Ordering::Relaxed);
    }

    /// Forgets `checker`'s keys (someone else may have deleted some of its rows); its
    /// reachable window stays.
    pub fn forget(&self, checker: &str) {
        let seen = lock(&self.checkers).get(checker).cloned();
        if let Some(seen) = seen {
            let removed = lock(&seen).drop_buckets_before(i64::MAX);
            self.entries.fetch_sub(removed, Ordering::Relaxed);
        }
    }

    /// Forgets every key (another connection changed the store); the checkers' reachable
    /// windows stay.
    pub fn clear(&self) {
        let checkers = lock(&self.checkers);
        for seen in checkers.values() {
            let removed = lock(seen).drop_buckets_before(i64::MAX);
            self.entries.fetch_sub(removed, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(spec: &[(&str, i64)]) -> Vec<Row> {
        spec.iter().map(|&(k, t)| Row::new(k, t)).collect()
    }

    fn learn_rows(cache: &SeenCache, checker: &str, rows: &[Row]) {
        let mut learned: Vec<(i64, u64)> = rows
            .iter()
            .map(|r| (r.timestamp, cache.hash(&r.key)))
            .collect();
        cache.learn(checker, &mut learned);
    }

    #[test]
    fn unknown_keys_miss_and_learned_keys_hit() {
        let cache = SeenCache::new(100);
        let batch = rows(&[("a", 10), ("b", 20), ("c", 2 * BUCKET_SECONDS)]);
        assert_eq!(cache.misses("x", &batch).indices, vec![0, 1, 2]);
        learn_rows(&cache, "x", &batch[..2]);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.misses("x", &batch).indices, vec![2]);
        // Other checkers are separate.
        assert_eq!(cache.misses("y", &batch).indices, vec![0, 1, 2]);
    }

    #[test]
    fn a_key_fetched_with_another_bucket_misses() {
        let cache = SeenCache::new(100);
        learn_rows(&cache, "x", &rows(&[("a", 10)]));
        assert_eq!(
            cache.misses("x", &rows(&[("a", 10)])).indices,
            Vec::<usize>::new()
        );
        assert_eq!(
            cache.misses("x", &rows(&[("a", BUCKET_SECONDS)])).indices,
            vec![0]
        );
    }

    #[test]
    fn forgetting_drops_every_bucket_that_may_hold_purged_keys() {
        let cache = SeenCache::new(100);
        const B: i64 = BUCKET_SECONDS;
        let batch = rows(&[("a", 0), ("b", B - 1), ("c", B), ("d", 2 * B + 100)]);
        learn_rows(&cache, "x", &batch);
        cache.forget_older_than("x", B);
        assert_eq!(cache.misses("x", &batch).indices, vec![0, 1]);
        // B + 1 straddles bucket 1: c (ts B) was purged, so bucket 1 goes.
        cache.forget_older_than("x", B + 1);
        assert_eq!(cache.misses("x", &batch).indices, vec![0, 1, 2]);
        assert_eq!(cache.len(), 1);
        cache.clear();
        assert_eq!(cache.len(), 0);
        assert_eq!(cache.misses("x", &batch).indices, vec![0, 1, 2, 3]);
    }

    #[test]
    fn keys_before_the_reachable_window_are_forgotten_and_not_learned() {
        const B: i64 = BUCKET_SECONDS;
        let cache = SeenCache::new(100);
        let batch = rows(&[("a", 0), ("b", B + 1), ("c", 2 * B + 5), ("d", 3 * B)]);
        learn_rows(&cache, "x", &batch);
        assert_eq!(cache.len(), 4);
        // Whole buckets before the one holding `from` go (a and b); c's bucket stays.
        cache.set_reachable_from("x", 2 * B + 10);
        assert_eq!(cache.misses("x", &batch).indices, vec![0, 1]);
        assert_eq!(cache.len(), 2);
        // Rows before `from` are not learned again, even in the bucket that stays.
        cache.set_reachable_from("x", 2 * B + 10);
        learn_rows(
            &cache,
            "x",
            &rows(&[("e", 2 * B + 9), ("f", 2 * B + 10), ("g", 5)]),
        );
        assert_eq!(cache.len(), 3);
        assert_eq!(
            cache
                .misses("x", &rows(&[("e", 2 * B + 9), ("f", 2 * B + 10)]))
                .indices,
            vec![0]
        );
        // Clearing keeps the window; `i64::MAX` forgets the checker.
        cache.clear();
        learn_rows(&cache, "x", &rows(&[("a", 0), ("d", 3 * B)]));
        assert_eq!(cache.len(), 1);
        learn_rows(&cache, "y", &rows(&[("a", 0)]));
        cache.set_reachable_from("x", i64::MAX);
        assert_eq!(cache.len(), 1);
        assert_eq!(
            cache.misses("y", &rows(&[("a", 0)])).indices,
            Vec::<usize>::new()
        );
    }

    #[test]
    fn forgetting_a_checker_keeps_the_others_and_its_window() {
        const B: i64 = BUCKET_SECONDS;
        let cache = SeenCache::new(100);
        let batch = rows(&[("a", 0), ("b", 3 * B)]);
        cache.set_reachable_from("x", 2 * B);
        learn_rows(&cache, "x", &batch);
        learn_rows(&cache, "y", &batch);
        assert_eq!(cache.len(), 3);
        cache.forget("x");
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.misses("x", &batch).indices, vec![0, 1]);
        assert!(cache.misses("y", &batch).indices.is_empty());
        // The window stays: "a" is still not learned.
        learn_rows(&cache, "x", &batch);
        assert_eq!(cache.misses("x", &batch).indices, vec![0]);
        cache.forget("unknown");
        assert_eq!(cache.len(), 3);
    }

    #[test]
    fn big_buckets_find_exactly_their_keys() {
        let cache = SeenCache::new(1_000_000);
        let stored: Vec<Row> = (0..5_000).map(|i| Row::new(format!("k{i}"), 100)).collect();
        learn_rows(&cache, "x", &stored[..2_500]);
        learn_rows(&cache, "x", &stored[2_500..]);
        assert_eq!(cache.len(), 5_000);
        assert!(cache.misses("x", &stored).indices.is_empty());
        let other: Vec<Row> = (0..5_000).map(|i| Row::new(format!("o{i}"), 100)).collect();
        assert_eq!(cache.misses("x", &other).indices.len(), 5_000);
    }

    #[test]
    fn capacity_bounds_the_cache() {
        let cache = SeenCache::new(2);
        let batch = rows(&[("a", 0), ("b", 0), ("c", 0)]);
        learn_rows(&cache, "x", &batch);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.misses("x", &batch).indices.len(), 1);
        learn_rows(&cache, "x", &batch);
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn duplicates_inside_a_batch_are_all_hits_or_all_misses() {
        let cache = SeenCache::new(100);
        let batch = rows(&[("a", 0), ("a", 0), ("b", 0), ("b", 0)]);
        learn_rows(&cache, "x", &batch[..1]);
        assert_eq!(cache.misses("x", &batch).indices, vec![2, 3]);
        assert_eq!(cache.len(), 1);
    }
}
