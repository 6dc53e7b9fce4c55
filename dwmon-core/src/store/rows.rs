//! [`RowStore`]: the first-seen rows of every checker, their windowed counts and purges.

use super::StoreError;
use crate::source::Row;
use async_trait::async_trait;
use std::sync::Arc;

/// First-seen rows: a checker's key is stored once, with the timestamp it had when first
/// seen, and counted in half-open windows `from <= timestamp < to`.
///
/// **Concurrency.** Calls may come from several tasks (and, for a shared store, several
/// runners) at once. An insert is atomic: a key inserted by two calls at once is stored once,
/// with the timestamp of the call that committed first. A count sees whole inserts only.
///
/// **Crash.** An insert that returned `Ok` is durable; one interrupted by a crash stored all
/// of its batch or none of it. The engine re-fetches after a crash, so a lost batch is
/// stored again (keys keep their first timestamp either way).
///
/// ```
/// use dwmon_core::{MemoryStore, Row, RowStore};
///
/// # futures::executor::block_on(async {
/// let store = MemoryStore::new();
/// let new = store
///     .insert_first_seen("backups", &[Row::new("b1", 100), Row::new("b1", 200), Row::new("b2", 160)])
///     .await?;
/// assert_eq!(new, 2);
/// assert_eq!(store.count("backups", 60, 180).await?, 2); // b1 keeps ts 100
/// assert_eq!(store.purge("backups", 160).await?, 1); // b1 (100) goes, b2 (160) stays
/// # Ok::<(), dwmon_core::StoreError>(())
/// # }).unwrap();
/// ```
#[async_trait]
pub trait RowStore: Send + Sync {
    /// Stores rows not seen before for `checker`; a key already stored keeps its timestamp and
    /// a key repeated in `rows` counts once (first occurrence). Returns how many were new.
    ///
    /// # Errors
    /// Any backend failure; nothing of the batch is stored then.
    async fn insert_first_seen(&self, checker: &str, rows: &[Row]) -> Result<u64, StoreError>;

    /// Counts stored rows of `checker` with `from <= timestamp < to`, for each window (a
    /// window with `from >= to` counts 0).
    ///
    /// # Errors
    /// Any backend failure.
    async fn count_windows(
        &self,
        checker: &str,
        windows: &[(i64, i64)],
    ) -> Result<Vec<u64>, StoreError>;

    /// Counts stored rows of `checker` with `from <= timestamp < to`.
    ///
    /// # Errors
    /// Any backend failure.
    async fn count(&self, checker: &str, from: i64, to: i64) -> Result<u64, StoreError> {
        Ok(self
            .count_windows(checker, &[(from, to)])
            .await?
            .first()
            .copied()
            .unwrap_or(0))
    }

    /// Timestamps of `checker`'s stored rows with `from <= timestamp < to`, ascending
    /// (for histograms and backtests).
    ///
    /// # Errors
    /// Any backend failure.
    async fn row_timestamps(
        &self,
        checker: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<i64>, StoreError>;

    /// Deletes `checker`'s rows with `timestamp < older_than`; returns how many. A purged
    /// key is new again if a later fetch returns it.
    ///
    /// # Errors
    /// Any backend failure.
    async fn purge(&self, checker: &str, older_than: i64) -> Result<u64, StoreError>;

    /// Tells the store how far back `checker`'s rows can still matter: after this cycle the
    /// engine hands [`RowStore::insert_first_seen`] no row of `checker` with
    /// `timestamp < from` (it drops them, see README "How a cycle works"), and no check counts
    /// one. `i64::MAX`: the checker is no longer loaded. The engine calls it every cycle for
    /// every loaded checker, before its fetch. A store that caches stored keys keeps only
    /// those that can still be looked up (the SQLite store); results never depend on it. The
    /// default does nothing.
    fn set_reachable_from(&self, checker: &str, from: i64) {
        let _ = (checker, from);
    }
}

macro_rules! forward_row_store {
    ($($ty:ty),*) => {$(
        #[async_trait]
        impl<T: RowStore + ?Sized> RowStore for $ty {
            async fn insert_first_seen(&self, checker: &str, rows: &[Row]) -> Result<u64, StoreError> {
                (**self).insert_first_seen(checker, rows).await
            }
            async fn count_windows(&self, checker: &str, windows: &[(i64, i64)]) -> Result<Vec<u64>, StoreError> {
                (**self).count_windows(checker, windows).await
            }
            async fn count(&self, checker: &str, from: i64, to: i64) -> Result<u64, StoreError> {
                (**self).count(checker, from, to).await
            }
            async fn row_timestamps(&self, checker: &str, from: i64, to: i64) -> Result<Vec<i64>, StoreError> {
                (**self).row_timestamps(checker, from, to).await
            }
            async fn purge(&self, checker: &str, older_than: i64) -> Result<u64, StoreError> {
                (**self).purge(checker, older_than).await
            }
            fn set_reachable_from(&self, checker: &str, from: i64) {
                (**self).set_reachable_from(checker, from);
            }
        }
    )*};
}

forward_row_store!(&T, Box<T>, Arc<T>);
