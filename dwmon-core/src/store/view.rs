//! [`StoreView`]: what status views (the CLI's `status`, the status page, the API) read.

use super::StoreError;
use crate::record::{CheckRecord, Status};
use async_trait::async_trait;
use std::sync::Arc;

/// The last check of one requirement, for status views.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequirementStatus {
    /// Requirement index.
    pub requirement_index: usize,
    /// Minute of its last check.
    pub minute: i64,
    /// Count at that check.
    pub count: u64,
    /// Status of that check.
    pub status: Status,
}

/// What a status view shows for one checker.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckerStatus {
    /// Checker name.
    pub checker: String,
    /// Largest checked minute, if any.
    pub last_minute: Option<i64>,
    /// Last check per requirement, by index.
    pub requirements: Vec<RequirementStatus>,
    /// Deliveries not yet acknowledged.
    pub pending_deliveries: u64,
    /// Last error `(minute, message)`, if any.
    pub last_error: Option<(i64, String)>,
    /// Number of first-seen rows stored.
    pub stored_rows: u64,
    /// The timestamp of the oldest stored row: how far back the row history goes.
    pub oldest_row: Option<i64>,
    /// The minute of the oldest check record: how far back the check history goes.
    pub oldest_check: Option<i64>,
    /// Deliveries given up (a `(record, target)` pair each) since the store was created.
    pub given_up_deliveries: u64,
    /// The last give-up `(minute, message)`, if any.
    pub last_give_up: Option<(i64, String)>,
}

/// One requirement line's recent checks: its index and the `(minute, status)` of its checks,
/// newest first.
pub type RecentLine = (usize, Vec<(i64, Status)>);

/// One checker's recent check statuses and status counts, for views of many checkers at
/// once ([`StoreView::status_histories`]: the status page's bars of the last checks and uptime).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatusHistory {
    /// Checker name.
    pub checker: String,
    /// Per requirement line, ascending by index: the `(minute, status)` of its most recent
    /// checks, newest first, at most the asked number.
    pub recent: Vec<RecentLine>,
    /// As [`StoreView::status_counts`] for the asked `since` (empty when none was asked).
    pub counts: Vec<(usize, Status, Vec<u64>)>,
}

/// The delivery outbox at a glance, for health views and metrics ([`StoreView::outbox_summary`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboxSummary {
    /// Outbox entries not yet acknowledged.
    pub pending: u64,
    /// The checked minute of the oldest entry, if the store knows it.
    pub oldest_minute: Option<i64>,
}

/// Read-only views of a store for people: the state of every checker, its check history and
/// the outbox at a glance. The engine never calls them.
///
/// Two methods are required ([`status`](StoreView::status) and
/// [`checks_before`](StoreView::checks_before)); the rest have defaults built on them that a
/// store overrides with one query each where it matters.
///
/// **Concurrency.** Each call reads one consistent snapshot (no half-recorded batch), but two
/// calls may see different snapshots. **Crash.** Nothing to lose: views write nothing.
///
/// ```
/// use dwmon_core::store::{CheckLog, StoreView};
/// use dwmon_core::MemoryStore;
///
/// # futures::executor::block_on(async {
/// let store = MemoryStore::new();
/// store.set_last_error("backups", Some((120, "fetch failed"))).await?;
/// let status = store.status().await?;
/// assert_eq!(status[0].checker, "backups");
/// assert_eq!(status[0].last_error, Some((120, "fetch failed".to_string())));
/// assert!(store.recent_statuses("backups", 10).await?.is_empty());
/// # Ok::<(), dwmon_core::StoreError>(())
/// # }).unwrap();
/// ```
#[async_trait]
pub trait StoreView: Send + Sync {
    /// One [`CheckerStatus`] per checker the store knows, by name. A push checker's ping-kind
    /// series (`NAME~fail`, ..., [`crate::ping::series`]) are not checkers: their rows count
    /// in `NAME`'s entry ([`crate::ping::fold_series`] does it).
    ///
    /// # Errors
    /// Any backend failure.
    async fn status(&self) -> Result<Vec<CheckerStatus>, StoreError>;

    /// `checker`'s checks older than `before` = `(minute, requirement_index)`, newest first,
    /// at most `limit`: the next page after a page that ended with `before`.
    /// `(i64::MAX, usize::MAX)` starts at the newest check.
    ///
    /// # Errors
    /// Any backend failure.
    async fn checks_before(
        &self,
        checker: &str,
        before: (i64, usize),
        limit: usize,
    ) -> Result<Vec<CheckRecord>, StoreError>;

    /// The most recent checks of `checker`, newest first, at most `limit`:
    /// [`StoreView::checks_before`] from the newest check.
    ///
    /// # Errors
    /// Any backend failure.
    async fn recent_checks(
        &self,
        checker: &str,
        limit: usize,
    ) -> Result<Vec<CheckRecord>, StoreError> {
        self.checks_before(checker, (i64::MAX, usize::MAX), limit)
            .await
    }

    /// The `(requirement_index, minute, status)` of `checker`'s most recent checks, newest
    /// first, at most `limit` (the status page's bar of recent checks). The default reads
    /// [`StoreView::checks_before`]; a store overrides it with a query that skips the
    /// records.
    ///
    /// # Errors
    /// Any backend failure.
    async fn recent_statuses(
        &self,
        checker: &str,
        limit: usize,
    ) -> Result<Vec<(usize, i64, Status)>, StoreError> {
        Ok(self
            .checks_before(checker, (i64::MAX, usize::MAX), limit)
            .await?
            .into_iter()
            .map(|r| (r.requirement_index, r.minute, r.status))
            .collect())
    }

    /// How many of `checker`'s checks since each of `since` (minute `>=` it) had each status,
    /// per requirement line: `(requirement_index, status, counts)` with one count per entry
    /// of `since`, in its order (the status page's uptime over 24 h / 7 d / 30 d). The
    /// default reads the whole check log through [`StoreView::checks_before`]; a store
    /// overrides it with one aggregate query.
    ///
    /// # Errors
    /// Any backend failure.
    async fn status_counts(
        &self,
        checker: &str,
        since: &[i64],
    ) -> Result<Vec<(usize, Status, Vec<u64>)>, StoreError> {
        let mut out: Vec<(usize, Status, Vec<u64>)> = Vec::new();
        let all = self
            .checks_before(checker, (i64::MAX, usize::MAX), usize::MAX)
            .await?;
        for record in all {
            let key = (record.requirement_index, record.status);
            let position = match out.iter().position(|(i, s, _)| (*i, *s) == key) {
                Some(position) => position,
                None => {
                    out.push((key.0, key.1, vec![0; since.len()]));
                    out.len() - 1
                }
            };
            for (count, from) in out[position].2.iter_mut().zip(since) {
                if record.minute >= *from {
                    *count += 1;
                }
            }
        }
        out.retain(|(_, _, counts)| counts.iter().any(|n| *n > 0));
        out.sort_by_key(|(i, s, _)| (*i, s.as_str()));
        Ok(out)
    }

    /// [`StoreView::recent_statuses`] (the last `per_line` checks of each requirement line)
    /// and [`StoreView::status_counts`] (for `since`; nothing counted when it is empty) of every
    /// checker in `checkers`, in their order, read together: the status page's overview
    /// shows them for every checker. A checker the store does not know has an empty
    /// history. The default asks per checker; a store overrides it with one read that never
    /// holds up the cycle's writes.
    ///
    /// # Errors
    /// Any backend failure.
    async fn status_histories(
        &self,
        checkers: &[String],
        per_line: usize,
        since: &[i64],
    ) -> Result<Vec<StatusHistory>, StoreError> {
        let mut out = Vec::with_capacity(checkers.len());
        for checker in checkers {
            let mut recent: Vec<RecentLine> = Vec::new();
            if per_line > 0 {
                for (index, minute, status) in self.recent_statuses(checker, usize::MAX).await? {
                    let position = match recent.iter().position(|(i, _)| *i == index) {
                        Some(position) => position,
                        None => {
                            recent.push((index, Vec::new()));
                            recent.len() - 1
                        }
                    };
                    let line = &mut recent[position].1;
                    if line.len() < per_line {
                        line.push((minute, status));
                    }
                }
                recent.sort_by_key(|(index, _)| *index);
            }
            let counts = if since.is_empty() {
                Vec::new()
            } else {
                self.status_counts(checker, since).await?
            };
            out.push(StatusHistory {
                checker: checker.clone(),
                recent,
                counts,
            });
        }
        Ok(out)
    }

    /// The minute of the latest GOOD check of each requirement line of the checkers in
    /// `checkers`: `(checker, requirement_index, minute)`, by checker in the order given,
    /// then ascending by index. Lines never judged GOOD and checkers the store does not know
    /// are left out. `/metrics` reads it for every checker at once (its last GOOD time must
    /// be right after a restart). The default reads each checker's whole check log through
    /// [`StoreView::checks_before`]; a store overrides it with one read that seeks the newest
    /// GOOD check of each line.
    ///
    /// ```
    /// use dwmon_core::store::StoreView;
    /// # use dwmon_core::MemoryStore;
    /// # async fn example(store: &MemoryStore) -> Result<(), dwmon_core::StoreError> {
    /// for (checker, index, minute) in store.last_good_minutes(&["orders".into()]).await? {
    ///     println!("{checker} #{index} last GOOD at {minute}");
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// Any backend failure.
    async fn last_good_minutes(
        &self,
        checkers: &[String],
    ) -> Result<Vec<(String, usize, i64)>, StoreError> {
        let mut out = Vec::new();
        for checker in checkers {
            let mut lines: std::collections::BTreeMap<usize, i64> =
                std::collections::BTreeMap::new();
            let all = self
                .checks_before(checker, (i64::MAX, usize::MAX), usize::MAX)
                .await?;
            for record in all.iter().filter(|r| r.status == Status::Good) {
                let minute = lines
                    .entry(record.requirement_index)
                    .or_insert(record.minute);
                *minute = (*minute).max(record.minute);
            }
            out.extend(
                lines
                    .into_iter()
                    .map(|(index, minute)| (checker.clone(), index, minute)),
            );
        }
        Ok(out)
    }

    /// The [`CheckerStatus`] of `checker` alone (`None`: the store does not know it), for
    /// views of one checker. The default reads [`StoreView::status`] of all checkers; a store
    /// overrides it with a read of that checker only.
    ///
    /// # Errors
    /// Any backend failure.
    async fn checker_status(&self, checker: &str) -> Result<Option<CheckerStatus>, StoreError> {
        Ok(self
            .status()
            .await?
            .into_iter()
            .find(|s| s.checker == checker))
    }

    /// How many outbox entries are waiting and the minute of the oldest. The default sums
    /// [`StoreView::status`]'s pending deliveries and knows no oldest minute; a store
    /// overrides it with one query.
    ///
    /// # Errors
    /// Any backend failure.
    async fn outbox_summary(&self) -> Result<OutboxSummary, StoreError> {
        let pending = self
            .status()
            .await?
            .iter()
            .map(|s| s.pending_deliveries)
            .sum();
        Ok(OutboxSummary {
            pending,
            oldest_minute: None,
        })
    }
}

macro_rules! forward_store_view {
    ($($ty:ty),*) => {$(
        #[async_trait]
        impl<T: StoreView + ?Sized> StoreView for $ty {
            async fn status(&self) -> Result<Vec<CheckerStatus>, StoreError> {
                (**self).status().await
            }
            async fn checks_before(&self, checker: &str, before: (i64, usize), limit: usize) -> Result<Vec<CheckRecord>, StoreError> {
                (**self).checks_before(checker, before, limit).await
            }
            async fn recent_checks(&self, checker: &str, limit: usize) -> Result<Vec<CheckRecord>, StoreError> {
                (**self).recent_checks(checker, limit).await
            }
            async fn recent_statuses(&self, checker: &str, limit: usize) -> Result<Vec<(usize, i64, Status)>, StoreError> {
                (**self).recent_statuses(checker, limit).await
            }
            async fn status_counts(&self, checker: &str, since: &[i64]) -> Result<Vec<(usize, Status, Vec<u64>)>, StoreError> {
                (**self).status_counts(checker, since).await
            }
            async fn status_histories(&self, checkers: &[String], per_line: usize, since: &[i64]) -> Result<Vec<StatusHistory>, StoreError> {
                (**self).status_histories(checkers, per_line, since).await
            }
            async fn checker_status(&self, checker: &str) -> Result<Option<CheckerStatus>, StoreError> {
                (**self).checker_status(checker).await
            }
            async fn last_good_minutes(&self, checkers: &[String]) -> Result<Vec<(String, usize, i64)>, StoreError> {
                (**self).last_good_minutes(checkers).await
            }
            async fn outbox_summary(&self) -> Result<OutboxSummary, StoreError> {
                (**self).outbox_summary().await
            }
        }
    )*};
}

forward_store_view!(&T, Box<T>, Arc<T>);
