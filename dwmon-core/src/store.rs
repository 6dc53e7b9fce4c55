//! [`Store`]: where dwmon keeps first-seen rows, the check log and the delivery outbox.

use crate::record::{CheckRecord, Status};
use crate::source::Row;
use async_trait::async_trait;
use std::sync::Arc;

/// The underlying error of a [`StoreError`], kept whole (the driver's error, e.g. a
/// `rusqlite::Error`) so callers can inspect it through [`std::error::Error::source`] and
/// `downcast_ref`. Shared, so a `StoreError` stays `Clone`.
#[derive(Clone)]
pub struct Cause(Arc<dyn std::error::Error + Send + Sync + 'static>);

impl Cause {
    /// Keeps `error` as the cause.
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Cause(Arc::new(error))
    }

    /// A cause that is only a text: for failures a store detects itself (a value that does
    /// not fit, a vanished row), where no driver error exists.
    pub fn text(text: impl Into<String>) -> Self {
        Cause::new(ErrorText(text.into()))
    }
}

// Deref (rather than `impl Error for Cause`) makes `source()` return the driver's error
// itself, not a wrapper around it.
impl std::ops::Deref for Cause {
    type Target = dyn std::error::Error + Send + Sync + 'static;
    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl std::fmt::Debug for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&*self.0, f)
    }
}

/// The error of a [`Cause::text`].
#[derive(Debug, Clone, PartialEq, Eq)]
struct ErrorText(String);

impl std::fmt::Display for ErrorText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ErrorText {}

/// A store operation failed. Every variant says what to fix; the ones an operator acts on
/// differently (busy: wait or find the other process; full: free space; read-only: fix
/// permissions) are variants of their own, and each keeps its cause as
/// [`source`](std::error::Error::source). The message repeats the cause's text, so a
/// one-line report (the CLI, a check's `ERROR` event) says everything.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store could not be opened or created.
    #[error("cannot open store {path}: {source}")]
    Open {
        /// Store location.
        path: String,
        /// Why.
        #[source]
        source: Cause,
    },
    /// The file exists but is not a dwmon store (or not a database at all).
    #[error("{path} is not a dwmon store: {source}")]
    NotAStore {
        /// Store location.
        path: String,
        /// Why.
        #[source]
        source: Cause,
    },
    /// The store was written by a newer dwmon.
    #[error("store {path} has schema version {found}, but this dwmon supports at most {supported}; upgrade dwmon")]
    SchemaTooNew {
        /// Store location.
        path: String,
        /// Version found in the store.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
    /// The store cannot be written (read-only file or directory).
    #[error("store {path} is read-only: {source}")]
    ReadOnly {
        /// Store location.
        path: String,
        /// Why.
        #[source]
        source: Cause,
    },
    /// The disk (or the store's size limit) is full; nothing of the operation was written.
    #[error("store {path} is full: {source}")]
    Full {
        /// Store location.
        path: String,
        /// Why.
        #[source]
        source: Cause,
    },
    /// The store stayed locked by another process longer than the busy timeout.
    #[error("store {path} is busy: {source}")]
    Busy {
        /// Store location.
        path: String,
        /// Why.
        #[source]
        source: Cause,
    },
    /// Any other backend failure: `context` says where (often the store location), the
    /// source what.
    #[error("store error: {}{source}", context_prefix(context))]
    Backend {
        /// Where it happened (e.g. the store path); may be empty.
        context: String,
        /// What happened.
        #[source]
        source: Cause,
    },
}

fn context_prefix(context: &str) -> String {
    if context.is_empty() {
        String::new()
    } else {
        format!("{context}: ")
    }
}

impl StoreError {
    /// A [`StoreError::Backend`] with only a text (no driver error to keep).
    pub fn backend(message: impl Into<String>) -> Self {
        StoreError::Backend {
            context: String::new(),
            source: Cause::text(message),
        }
    }

    /// A [`StoreError::Backend`] keeping `error` as its source, with `context` (e.g. the
    /// store location) in front of its message.
    pub fn other(
        context: impl Into<String>,
        error: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StoreError::Backend {
            context: context.into(),
            source: Cause::new(error),
        }
    }

    /// Whether another process held the store locked past the busy timeout (retrying
    /// later may succeed).
    pub fn is_busy(&self) -> bool {
        matches!(self, StoreError::Busy { .. })
    }

    /// Whether the disk or the store's size limit is full.
    pub fn is_full(&self) -> bool {
        matches!(self, StoreError::Full { .. })
    }

    /// Whether the store cannot be written.
    pub fn is_read_only(&self) -> bool {
        matches!(self, StoreError::ReadOnly { .. })
    }
}

/// A check record waiting in the outbox to be delivered to the handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingDelivery {
    /// `checker/requirement_index/minute`.
    pub key: String,
    /// The record to deliver.
    pub record: CheckRecord,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Earliest epoch at which to try again.
    pub next_attempt_at: i64,
    /// The last handler error, if any.
    pub last_error: Option<String>,
    /// The handler targets ([`CheckHandler::targets`](crate::CheckHandler::targets)) that
    /// already took the record; they are not sent it again.
    pub delivered_to: Vec<String>,
    /// The `now` of the cycle that first tried to deliver the record (`None`: not tried
    /// yet); the give-up age is measured from it.
    pub first_attempt_at: Option<i64>,
}

impl PendingDelivery {
    /// A fresh entry for `record`, due at its minute, not tried yet.
    pub fn new(record: CheckRecord) -> Self {
        PendingDelivery {
            key: record.idempotency_key(),
            next_attempt_at: record.minute,
            record,
            attempts: 0,
            last_error: None,
            delivered_to: Vec::new(),
            first_attempt_at: None,
        }
    }
}

/// The progress of a partly delivered outbox entry, for [`Store::save_delivery_progress`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryProgress {
    /// Every target that has the record so far.
    pub delivered_to: Vec<String>,
    /// When the record was first tried (kept if the entry already has one).
    pub first_attempt_at: i64,
    /// A failed round: `(next_attempt_at, error)`; the entry's attempts go up by one.
    /// `None`: the round only skipped targets waiting behind an earlier record.
    pub failure: Option<(i64, String)>,
}

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
/// once ([`Store::status_histories`]: the status page's bars of the last checks and uptime).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatusHistory {
    /// Checker name.
    pub checker: String,
    /// Per requirement line, ascending by index: the `(minute, status)` of its most recent
    /// checks, newest first, at most the asked number.
    pub recent: Vec<RecentLine>,
    /// As [`Store::status_counts`] for the asked `since` (empty when none was asked).
    pub counts: Vec<(usize, Status, Vec<u64>)>,
}

/// The delivery outbox at a glance, for health views and metrics ([`Store::outbox_summary`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboxSummary {
    /// Outbox entries not yet acknowledged.
    pub pending: u64,
    /// The checked minute of the oldest entry, if the store knows it.
    pub oldest_minute: Option<i64>,
}

/// Persistence for one or more runners: first-seen rows, the check log, the delivery outbox.
///
/// The engine's guarantees (README "How a cycle works") rest on three properties every implementation
/// must have: first-seen inserts keep the first timestamp of a key; `record_checks` is atomic
/// and idempotent per `(checker, requirement_index, minute)` and enqueues each new record in
/// the outbox in the same transaction; outbox entries survive restarts until acknowledged.
///
/// ```
/// use dwmon_core::{MemoryStore, Row, Store};
///
/// # futures::executor::block_on(async {
/// let store = MemoryStore::new();
/// let new = store
///     .insert_first_seen("backups", &[Row::new("b1", 100), Row::new("b1", 200), Row::new("b2", 160)])
///     .await?;
/// assert_eq!(new, 2);
/// assert_eq!(store.count("backups", 60, 180).await?, 2); // b1 keeps ts 100
/// # Ok::<(), dwmon_core::StoreError>(())
/// # }).unwrap();
/// ```
#[async_trait]
pub trait Store: Send + Sync {
    /// Stores rows not seen before for `checker`; a key already stored keeps its timestamp and
    /// a key repeated in `rows` counts once (first occurrence). Returns how many were new.
    ///
    /// # Errors
    /// Any backend failure; nothing of the batch is stored then.
    async fn insert_first_seen(&self, checker: &str, rows: &[Row]) -> Result<u64, StoreError>;

    /// Counts stored rows of `checker` with `from <= timestamp < to`, for each window.
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

    /// The largest minute of any check recorded for `checker`.
    ///
    /// # Errors
    /// Any backend failure.
    async fn last_checked_minute(&self, checker: &str) -> Result<Option<i64>, StoreError>;

    /// The largest minute recorded for each requirement index of `checker`, ascending by
    /// index (an index never checked is absent). The engine asks for it only for checkers
    /// with a `DELAYSECONDS` requirement, whose requirements are judged up to different
    /// minutes. The default reads [`Store::status`]; a store overrides it with a direct
    /// query.
    ///
    /// # Errors
    /// Any backend failure.
    async fn last_checked_minutes(&self, checker: &str) -> Result<Vec<(usize, i64)>, StoreError> {
        let status = self.status().await?;
        Ok(status
            .into_iter()
            .find(|s| s.checker == checker)
            .map(|s| {
                s.requirements
                    .iter()
                    .map(|r| (r.requirement_index, r.minute))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Records a cycle's checks for one checker atomically and enqueues each new one for
    /// delivery. A record whose `(checker, requirement_index, minute)` exists is skipped.
    /// Returns how many were new.
    ///
    /// # Errors
    /// Any backend failure; then nothing was recorded.
    async fn record_checks(
        &self,
        checker: &str,
        records: &[CheckRecord],
    ) -> Result<u64, StoreError>;

    /// Outbox entries due at `now` (`next_attempt_at <= now`), ordered by checker, minute,
    /// requirement index; at most `limit`.
    ///
    /// # Errors
    /// Any backend failure.
    async fn pending_deliveries(
        &self,
        now: i64,
        limit: usize,
    ) -> Result<Vec<PendingDelivery>, StoreError>;

    /// Removes a delivered entry from the outbox.
    ///
    /// # Errors
    /// Any backend failure.
    async fn ack_delivery(&self, key: &str) -> Result<(), StoreError>;

    /// Keeps an entry pending after a failed attempt: increments its attempts and sets when to
    /// try again.
    ///
    /// # Errors
    /// Any backend failure.
    async fn defer_delivery(
        &self,
        key: &str,
        next_attempt_at: i64,
        error: &str,
    ) -> Result<(), StoreError>;

    /// Saves a partly delivered entry's progress: which targets have it, when it was first
    /// tried, and a failed round (attempts + 1, next attempt, last error).
    ///
    /// The default only records a failure through [`Store::defer_delivery`] (a store
    /// without per-target progress delivers the record to every target again: at least
    /// once).
    ///
    /// # Errors
    /// Any backend failure.
    async fn save_delivery_progress(
        &self,
        key: &str,
        progress: &DeliveryProgress,
    ) -> Result<(), StoreError> {
        match &progress.failure {
            Some((next_attempt_at, error)) => {
                self.defer_delivery(key, *next_attempt_at, error).await
            }
            None => Ok(()),
        }
    }

    /// Counts `count` deliveries of `checker` given up at `minute` and remembers `message`
    /// as its last give-up, for status views. The default forgets it.
    ///
    /// # Errors
    /// Any backend failure.
    async fn record_give_up(
        &self,
        checker: &str,
        count: u64,
        minute: i64,
        message: &str,
    ) -> Result<(), StoreError> {
        let _ = (checker, count, minute, message);
        Ok(())
    }

    /// Tells the store how far back `checker`'s rows can still matter: after this cycle the
    /// engine hands [`Store::insert_first_seen`] no row of `checker` with `timestamp < from`
    /// (it drops them, see README "How a cycle works"), and no check counts one. `i64::MAX`:
    /// the checker is no longer loaded. The engine calls it every cycle for every loaded
    /// checker, before its fetch. A store that caches stored keys keeps only those that can
    /// still be looked up (the SQLite store); results never depend on it. The default does
    /// nothing.
    fn set_reachable_from(&self, checker: &str, from: i64) {
        let _ = (checker, from);
    }

    /// Deletes `checker`'s rows with `timestamp < older_than`; returns how many.
    ///
    /// # Errors
    /// Any backend failure.
    async fn purge(&self, checker: &str, older_than: i64) -> Result<u64, StoreError>;

    /// Deletes `checker`'s check records with `minute < older_than`, except the newest record
    /// of each requirement (it is what `status` shows and where the next cycle continues);
    /// returns how many. Outbox entries are not affected: a pending delivery is still made.
    ///
    /// The default deletes nothing, so a store without it keeps its whole check log.
    ///
    /// # Errors
    /// Any backend failure.
    async fn purge_checks(&self, _checker: &str, _older_than: i64) -> Result<u64, StoreError> {
        Ok(0)
    }

    /// Remembers the latest error of a checker for status views (`None` clears it).
    ///
    /// # Errors
    /// Any backend failure.
    async fn set_last_error(
        &self,
        checker: &str,
        error: Option<(i64, &str)>,
    ) -> Result<(), StoreError>;

    /// How many outbox entries are waiting and the minute of the oldest. The default sums
    /// [`Store::status`]'s pending deliveries and knows no oldest minute; a store overrides it
    /// with one query.
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

    /// One [`CheckerStatus`] per checker the store knows, by name. A push checker's ping-kind
    /// series (`NAME~fail`, ..., [`crate::ping::series`]) are not checkers: their rows count
    /// in `NAME`'s entry ([`crate::ping::fold_series`] does it).
    ///
    /// # Errors
    /// Any backend failure.
    async fn status(&self) -> Result<Vec<CheckerStatus>, StoreError>;

    /// The most recent checks of `checker`, newest first, at most `limit`.
    ///
    /// # Errors
    /// Any backend failure.
    async fn recent_checks(
        &self,
        checker: &str,
        limit: usize,
    ) -> Result<Vec<CheckRecord>, StoreError>;

    /// The `(requirement_index, minute, status)` of `checker`'s most recent checks, newest
    /// first, at most `limit`: [`Store::recent_checks`] without the records (the status
    /// page's bar of recent checks for every checker). The default reads
    /// [`Store::recent_checks`]; a store overrides it with a query that skips the records.
    ///
    /// # Errors
    /// Any backend failure.
    async fn recent_statuses(
        &self,
        checker: &str,
        limit: usize,
    ) -> Result<Vec<(usize, i64, Status)>, StoreError> {
        Ok(self
            .recent_checks(checker, limit)
            .await?
            .into_iter()
            .map(|r| (r.requirement_index, r.minute, r.status))
            .collect())
    }

    /// How many of `checker`'s checks since each of `since` (minute `>=` it) had each status,
    /// per requirement line: `(requirement_index, status, counts)` with one count per entry
    /// of `since`, in its order (the status page's uptime over 24 h / 7 d / 30 d). The
    /// default reads the whole check log through [`Store::recent_checks`]; a store
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
        for record in self.recent_checks(checker, usize::MAX).await? {
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

    /// [`Store::recent_statuses`] (the last `per_line` checks of each requirement line)
    /// and [`Store::status_counts`] (for `since`; nothing counted when it is empty) of every
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

    /// The [`CheckerStatus`] of `checker` alone (`None`: the store does not know it), for
    /// views of one checker. The default reads [`Store::status`] of all checkers; a store
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

    /// `checker`'s checks older than `before` = `(minute, requirement_index)` in the order of
    /// [`Store::recent_checks`] (newest first), at most `limit`: the next page after a
    /// page that ended with `before`. The default reads the whole check log through
    /// [`Store::recent_checks`]; a store overrides it with an index seek.
    ///
    /// # Errors
    /// Any backend failure.
    async fn checks_before(
        &self,
        checker: &str,
        before: (i64, usize),
        limit: usize,
    ) -> Result<Vec<CheckRecord>, StoreError> {
        Ok(self
            .recent_checks(checker, usize::MAX)
            .await?
            .into_iter()
            .filter(|r| (r.minute, r.requirement_index) < before)
            .take(limit)
            .collect())
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
}

macro_rules! forward_store {
    ($($ty:ty),*) => {$(
        #[async_trait]
        impl<T: Store + ?Sized> Store for $ty {
            async fn insert_first_seen(&self, checker: &str, rows: &[Row]) -> Result<u64, StoreError> {
                (**self).insert_first_seen(checker, rows).await
            }
            async fn count_windows(&self, checker: &str, windows: &[(i64, i64)]) -> Result<Vec<u64>, StoreError> {
                (**self).count_windows(checker, windows).await
            }
            async fn count(&self, checker: &str, from: i64, to: i64) -> Result<u64, StoreError> {
                (**self).count(checker, from, to).await
            }
            async fn last_checked_minute(&self, checker: &str) -> Result<Option<i64>, StoreError> {
                (**self).last_checked_minute(checker).await
            }
            async fn last_checked_minutes(&self, checker: &str) -> Result<Vec<(usize, i64)>, StoreError> {
                (**self).last_checked_minutes(checker).await
            }
            async fn record_checks(&self, checker: &str, records: &[CheckRecord]) -> Result<u64, StoreError> {
                (**self).record_checks(checker, records).await
            }
            async fn pending_deliveries(&self, now: i64, limit: usize) -> Result<Vec<PendingDelivery>, StoreError> {
                (**self).pending_deliveries(now, limit).await
            }
            async fn ack_delivery(&self, key: &str) -> Result<(), StoreError> {
                (**self).ack_delivery(key).await
            }
            async fn defer_delivery(&self, key: &str, next_attempt_at: i64, error: &str) -> Result<(), StoreError> {
                (**self).defer_delivery(key, next_attempt_at, error).await
            }
            async fn save_delivery_progress(&self, key: &str, progress: &DeliveryProgress) -> Result<(), StoreError> {
                (**self).save_delivery_progress(key, progress).await
            }
            async fn record_give_up(&self, checker: &str, count: u64, minute: i64, message: &str) -> Result<(), StoreError> {
                (**self).record_give_up(checker, count, minute, message).await
            }
            fn set_reachable_from(&self, checker: &str, from: i64) {
                (**self).set_reachable_from(checker, from);
            }
            async fn purge(&self, checker: &str, older_than: i64) -> Result<u64, StoreError> {
                (**self).purge(checker, older_than).await
            }
            async fn purge_checks(&self, checker: &str, older_than: i64) -> Result<u64, StoreError> {
                (**self).purge_checks(checker, older_than).await
            }
            async fn set_last_error(&self, checker: &str, error: Option<(i64, &str)>) -> Result<(), StoreError> {
                (**self).set_last_error(checker, error).await
            }
            async fn outbox_summary(&self) -> Result<OutboxSummary, StoreError> {
                (**self).outbox_summary().await
            }
            async fn status(&self) -> Result<Vec<CheckerStatus>, StoreError> {
                (**self).status().await
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
            async fn checks_before(&self, checker: &str, before: (i64, usize), limit: usize) -> Result<Vec<CheckRecord>, StoreError> {
                (**self).checks_before(checker, before, limit).await
            }
            async fn row_timestamps(&self, checker: &str, from: i64, to: i64) -> Result<Vec<i64>, StoreError> {
                (**self).row_timestamps(checker, from, to).await
            }
        }
    )*};
}

forward_store!(&T, Box<T>, Arc<T>);

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn a_store_error_keeps_its_cause_and_says_it() {
        let io = std::io::Error::new(std::io::ErrorKind::StorageFull, "no space left");
        let full = StoreError::Full {
            path: "s.db".into(),
            source: Cause::new(io),
        };
        assert_eq!(full.to_string(), "store s.db is full: no space left");
        assert!(full.is_full() && !full.is_busy() && !full.is_read_only());
        let source = full.source().expect("a source");
        let io = source
            .downcast_ref::<std::io::Error>()
            .expect("the io::Error");
        assert_eq!(io.kind(), std::io::ErrorKind::StorageFull);

        let other = StoreError::other("s.db", std::fmt::Error);
        assert_eq!(
            other.to_string(),
            "store error: s.db: an error occurred when formatting an argument"
        );
        assert!(other.source().is_some_and(|s| s.is::<std::fmt::Error>()));
        assert_eq!(
            StoreError::backend("row vanished").to_string(),
            "store error: row vanished"
        );
    }
}
