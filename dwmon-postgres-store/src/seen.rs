//! The cache of stored keys for [`PostgresStore`](crate::PostgresStore): the steady state
//! (the same rows fetched again, a few new ones) sends only the new rows to the server.
//!
//! The cache itself is [`dwmon_core::seen_cache::SeenCache`] (see there for the invariant
//! and the hash-collision bound). What a shared database adds is that someone else may delete
//! a checker's rows: another runner that held the checker for a while and purged it, or an
//! operator by hand. Two tokens tell this runner that its keys of a checker may be stale:
//!
//! - the **claim fence** (`dwmon_claims.fence`): every claim bumps it by one, so a claim whose
//!   fence is not this runner's previous one plus one means another runner held the checker in
//!   between;
//! - the **rows epoch** (`dwmon_checkers.rows_epoch`), bumped by a trigger by every statement
//!   that deletes, updates or truncates rows of the checker, whoever runs it.
//!
//! The cache of a checker is used only while this runner holds its claim and both tokens are
//! as it left them: each claim compares them and forgets the checker's keys on any change; the
//! runner's own purges move the epoch by exactly one and forget only what they purged. A
//! deletion by someone else between this runner's claim and its insert (within one cycle) is
//! seen at the next claim; until then a deleted key that is fetched again is taken as stored.

use dwmon_core::seen_cache::SeenCache;
use std::collections::HashMap;
use std::sync::Mutex;

/// The tokens under which a checker's cached keys are valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Valid {
    fence: i64,
    epoch: i64,
}

/// A [`SeenCache`] with, per checker, the claim fence and rows epoch it is valid under.
#[derive(Debug)]
pub(crate) struct SharedSeen {
    pub(crate) cache: SeenCache,
    valid: Mutex<HashMap<String, Valid>>,
}

impl SharedSeen {
    pub(crate) fn new(capacity: u64) -> Self {
        SharedSeen {
            cache: SeenCache::new(capacity),
            valid: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `checker`'s cached keys may be used (this runner holds its claim).
    pub(crate) fn usable(&self, checker: &str) -> bool {
        crate::store::lock(&self.valid).contains_key(checker)
    }

    /// A claim of `checker` with `fence` was granted; its rows epoch is `epoch`. Keeps the
    /// cached keys if nobody else held the checker or changed its rows since the last claim.
    pub(crate) fn claimed(&self, checker: &str, fence: i64, epoch: i64) {
        let mut valid = crate::store::lock(&self.valid);
        let now = Valid { fence, epoch };
        let kept = valid.insert(checker.to_owned(), now).is_some_and(|before| {
            before.fence.checked_add(1) == Some(fence) && before.epoch == epoch
        });
        if !kept {
            self.cache.forget(checker);
        }
    }

    /// `checker` was not granted to this runner: its keys go (another runner may purge).
    pub(crate) fn not_claimed(&self, checker: &str) {
        if crate::store::lock(&self.valid).remove(checker).is_some() {
            self.cache.forget(checker);
        }
    }

    /// No claim could be taken: nothing cached may be used until the next claim.
    pub(crate) fn invalidate(&self) {
        crate::store::lock(&self.valid).clear();
        self.cache.clear();
    }

    /// This runner purged `checker`'s rows older than `older_than` in a transaction that left
    /// the rows epoch at `epoch`: its own purge moved it by one, anything more is someone else's.
    pub(crate) fn purged(&self, checker: &str, older_than: i64, epoch: i64) {
        let mut valid = crate::store::lock(&self.valid);
        match valid.get_mut(checker) {
            Some(v) if v.epoch.checked_add(1) == Some(epoch) => {
                v.epoch = epoch;
                self.cache.forget_older_than(checker, older_than);
            }
            Some(_) => {
                valid.remove(checker);
                self.cache.forget(checker);
            }
            None => self.cache.forget(checker),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dwmon_core::Row;

    fn learn(seen: &SharedSeen, checker: &str, rows: &[Row]) {
        let mut learned: Vec<(i64, u64)> = rows
            .iter()
            .map(|r| (r.timestamp, seen.cache.hash(&r.key)))
            .collect();
        seen.cache.learn(checker, &mut learned);
    }

    fn cached(seen: &SharedSeen, checker: &str, rows: &[Row]) -> usize {
        rows.len() - seen.cache.misses(checker, rows).indices.len()
    }

    #[test]
    fn keys_stay_only_under_this_runners_consecutive_claims() {
        let seen = SharedSeen::new(1_000);
        let rows = [Row::new("a", 100), Row::new("b", 200)];
        assert!(!seen.usable("x"));
        seen.claimed("x", 7, 0);
        assert!(seen.usable("x"));
        learn(&seen, "x", &rows);
        // The next claim is ours: the fence moved by one, the epoch did not.
        seen.claimed("x", 8, 0);
        assert_eq!(cached(&seen, "x", &rows), 2);
        // Another runner held it in between (fence 9 was theirs).
        seen.claimed("x", 10, 0);
        assert_eq!(cached(&seen, "x", &rows), 0);
        learn(&seen, "x", &rows);
        // Someone deleted rows (the epoch moved) though the claim is ours.
        seen.claimed("x", 11, 1);
        assert_eq!(cached(&seen, "x", &rows), 0);
        learn(&seen, "x", &rows);
        // Not granted: the keys go, and the cache may not be used.
        seen.not_claimed("x");
        assert!(!seen.usable("x"));
        assert_eq!(cached(&seen, "x", &rows), 0);
        // A failed claim: nothing is usable until the next one.
        seen.claimed("x", 20, 1);
        seen.invalidate();
        assert!(!seen.usable("x"));
    }

    #[test]
    fn an_own_purge_forgets_what_it_purged_and_another_change_forgets_all() {
        const B: i64 = dwmon_core::seen_cache::BUCKET_SECONDS;
        let seen = SharedSeen::new(1_000);
        let rows = [Row::new("old", 10), Row::new("new", 3 * B)];
        seen.claimed("x", 1, 5);
        learn(&seen, "x", &rows);
        seen.purged("x", B, 6);
        assert_eq!(seen.cache.misses("x", &rows).indices, vec![0]);
        // The claim after it sees the epoch the purge left: still valid.
        seen.claimed("x", 2, 6);
        assert_eq!(seen.cache.misses("x", &rows).indices, vec![0]);
        // A purge whose epoch moved by two: someone else deleted too.
        seen.purged("x", B, 8);
        assert_eq!(seen.cache.misses("x", &rows).indices, vec![0, 1]);
        assert!(!seen.usable("x"));
    }
}
