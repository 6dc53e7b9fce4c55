//! [`CheckLog`]: the check log, the claims that say which runner checks a checker, and the
//! delivery outbox.

use super::StoreError;
use crate::record::CheckRecord;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A runner's claim on a checker for one cycle, from [`CheckLog::claim`]. Its `fence` goes
/// up with every claim of the checker; [`CheckLog::record`] refuses a claim whose fence is no
/// longer the latest, so a slow or paused runner never records under a claim another runner
/// has taken over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckerClaim {
    /// The checker (or monitor record name, `monitor:NAME`).
    pub checker: String,
    /// The fencing token.
    pub fence: u64,
    /// Until when (epoch seconds) the claim holds without renewal; `i64::MAX` for a
    /// single-runner store, whose claims never expire.
    pub until: i64,
}

/// Claims for a single-runner store (the in-memory and SQLite stores): every claim is granted
/// at once, with a fence one higher than the last claim of that checker through this value;
/// [`LocalFences::check`] refuses a record under an older fence. Fences live in memory, so
/// they fence the tasks of one process, not two processes on one file (their records are
/// still exactly once per `(checker, requirement_index, minute)`, see [`CheckLog::record`]).
#[derive(Debug, Default)]
pub struct LocalFences {
    fences: Mutex<HashMap<String, u64>>,
}

impl LocalFences {
    /// No claims yet.
    pub fn new() -> Self {
        LocalFences::default()
    }

    /// Grants a claim on each of `checkers` (a name given twice is claimed once).
    pub fn claim(&self, checkers: &[String], _now: i64) -> Vec<CheckerClaim> {
        let mut fences = self.fences.lock().unwrap_or_else(|e| e.into_inner());
        let mut claims: Vec<CheckerClaim> = Vec::with_capacity(checkers.len());
        for checker in checkers {
            if claims.iter().any(|c| c.checker == *checker) {
                continue;
            }
            let fence = fences.entry(checker.clone()).or_default();
            *fence = fence.saturating_add(1);
            claims.push(CheckerClaim {
                checker: checker.clone(),
                fence: *fence,
                until: i64::MAX,
            });
        }
        claims
    }

    /// The claims of `claims` that are still the latest of their checker (their `until`
    /// stays: these claims never expire), in the order given; the others are lost.
    pub fn renew(&self, claims: &[CheckerClaim]) -> Vec<CheckerClaim> {
        claims
            .iter()
            .filter(|claim| self.check(claim).is_ok())
            .cloned()
            .collect()
    }

    /// `Ok` if `claim` is the latest claim of its checker.
    ///
    /// # Errors
    /// [`StoreError::StaleClaim`] when the checker was claimed again since (or never through
    /// this value).
    pub fn check(&self, claim: &CheckerClaim) -> Result<(), StoreError> {
        let fences = self.fences.lock().unwrap_or_else(|e| e.into_inner());
        let current = fences.get(&claim.checker).copied().unwrap_or(0);
        if current == claim.fence && current > 0 {
            Ok(())
        } else {
            Err(StoreError::StaleClaim {
                checker: claim.checker.clone(),
                fence: claim.fence,
                current,
            })
        }
    }
}

/// What [`CheckLog::record`] stored: the records as they are in the log now.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Recorded {
    /// The records this call inserted (and enqueued for delivery), in the order given.
    pub inserted: Vec<CheckRecord>,
    /// For each given record whose `(checker, requirement_index, minute)` was already in the
    /// log: the stored version (another runner, or an earlier cycle, recorded it first; its
    /// delivery is that recording's). In the order given.
    pub existing: Vec<CheckRecord>,
}

impl Recorded {
    /// Every record as stored, inserted or existing, ascending `(minute, requirement_index)`.
    pub fn stored(&self) -> Vec<CheckRecord> {
        let mut all: Vec<CheckRecord> = self
            .inserted
            .iter()
            .chain(&self.existing)
            .cloned()
            .collect();
        all.sort_by_key(|r| (r.minute, r.requirement_index));
        all
    }
}

/// How long claimed outbox entries stay with the claiming runner: [`CheckLog::claim_deliveries`]
/// hides them from other claimers until `until`, unless settled first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// The cycle's `now`: entries leased by another runner until after it are not handed out.
    pub now: i64,
    /// The lease's end.
    pub until: i64,
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

impl Lease {
    /// A lease from `now` for `seconds`.
    pub fn new(now: i64, seconds: i64) -> Self {
        Lease {
            now,
            until: now.saturating_add(seconds),
        }
    }
}

/// How one delivery round of an outbox entry ended, for [`CheckLog::settle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// Every handler target has the record: the entry leaves the outbox.
    Delivered,
    /// Some target still needs it: the entry stays, with this progress.
    RetryAt(Retry),
    /// Every target that still needed it was given up (it failed past the give-up age): the
    /// entry leaves the outbox; the error says why (status views count give-ups through
    /// [`CheckLog::record_give_up`]).
    GaveUp(String),
}

/// An entry kept in the outbox ([`Settlement::RetryAt`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    /// Earliest epoch at which to try again.
    pub at: i64,
    /// The round's failure; `Some` adds one to the entry's attempts and becomes its last
    /// error. `None`: the round only skipped targets waiting behind an earlier record (the
    /// attempts and last error stay).
    pub error: Option<String>,
    /// Every target that has the record so far.
    pub delivered_to: Vec<String>,
    /// When the record was first tried (an entry that has one keeps it).
    pub first_attempt_at: i64,
}

/// The check log and the delivery outbox: which minutes of a checker were checked, with what
/// result, and which of those records a handler has not taken yet.
///
/// A cycle goes: [`claim`](CheckLog::claim) the due checkers → for each, read
/// [`last_checked_minute`](CheckLog::last_checked_minute), check, [`record`](CheckLog::record)
/// under the claim, [`renew`](CheckLog::renew)ing the claims while checks take long → [`claim_deliveries`](CheckLog::claim_deliveries) and
/// [`settle`](CheckLog::settle) each after handing it to the handler.
///
/// **Concurrency.** `record` is atomic and idempotent per `(checker, requirement_index,
/// minute)`: of two calls recording one minute at once, exactly one inserts it, and the other
/// gets the stored version back in [`Recorded::existing`]. Each inserted record enters the
/// outbox in the same transaction. A multi-runner store grants a checker's claim to one runner
/// at a time and refuses `record` under a stale claim ([`StoreError::StaleClaim`]); a
/// single-runner store grants every claim (see [`LocalFences`]). Claimed outbox entries are
/// hidden from other claimers until their lease ends.
///
/// **Crash.** A recorded batch is durable once `record` returns `Ok`; a crash before that
/// recorded none of it (the next cycle checks those minutes again). An outbox entry stays
/// until settled `Delivered` or `GaveUp`, across restarts: a crash between the handler taking
/// a record and `settle` means one more delivery with the same idempotency key (at least
/// once), never a lost one. A claim or lease held by a runner that died ends with its lease.
///
/// ```
/// use dwmon_core::store::{CheckLog, Lease, Settlement};
/// use dwmon_core::{CheckRecord, MemoryStore, Status};
///
/// # futures::executor::block_on(async {
/// let store = MemoryStore::new();
/// let record = CheckRecord {
///     checker: "backups".into(), requirement_index: 0, requirement: "r".into(), minute: 120,
///     minute_local: String::new(), timezone: "UTC".into(), lookback_seconds: 60, count: 1,
///     min: 1, max: 9, status: Status::Good, extra: serde_json::json!({}), monitor: None,
///     runs: None,
/// };
/// let claims = store.claim(&["backups".to_string()], 130).await?;
/// let recorded = store.record(&claims[0], &[record.clone()]).await?;
/// assert_eq!(recorded.inserted, vec![record.clone()]);
/// // Recording the same minute again inserts nothing and returns the stored version.
/// let again = store.record(&claims[0], &[record.clone()]).await?;
/// assert_eq!(again.existing, vec![record]);
///
/// let due = store.claim_deliveries(10, Lease { now: 130, until: 430 }).await?;
/// assert_eq!(due[0].key, "backups/0/120");
/// store.settle(&due[0].key, &Settlement::Delivered).await?;
/// assert!(store.claim_deliveries(10, Lease { now: 130, until: 430 }).await?.is_empty());
/// # Ok::<(), dwmon_core::StoreError>(())
/// # }).unwrap();
/// ```
#[async_trait]
pub trait CheckLog: Send + Sync {
    /// The largest minute of any check recorded for `checker`.
    ///
    /// # Errors
    /// Any backend failure.
    async fn last_checked_minute(&self, checker: &str) -> Result<Option<i64>, StoreError>;

    /// The largest minute recorded for each requirement index of `checker`, ascending by
    /// index (an index never checked is absent). The engine asks for it only for checkers
    /// with a `DELAYSECONDS` requirement, whose requirements are judged up to different
    /// minutes.
    ///
    /// # Errors
    /// Any backend failure.
    async fn last_checked_minutes(&self, checker: &str) -> Result<Vec<(usize, i64)>, StoreError>;

    /// Claims `checkers` for this runner's cycle at `now`; returns the claims granted (a
    /// checker another runner holds is left out: that runner checks it). A single-runner
    /// store grants them all ([`LocalFences`]).
    ///
    /// # Errors
    /// Any backend failure; no claim was granted then.
    async fn claim(&self, checkers: &[String], now: i64) -> Result<Vec<CheckerClaim>, StoreError>;

    /// Renews this runner's `claims` while their checkers are still being fetched: each
    /// claim's lease is extended (to the store's lease length from now) if the checker is
    /// still this runner's under that claim's fence. The fence stays the same, so a renewed
    /// claim still records. Returns the claims still held, with their new `until`, in the
    /// order given; a claim left out is lost (another runner claimed the checker since), and
    /// [`record`](CheckLog::record) under it fails with [`StoreError::StaleClaim`]. A claim
    /// returned can still turn out stale when recording: the fence decides.
    ///
    /// The engine calls it every [`EngineConfig::claim_renew_interval`](crate::EngineConfig::claim_renew_interval)
    /// for the claims whose checkers are still at work, and only for claims that expire
    /// (`until < i64::MAX`). The default, for stores whose claims never expire, returns
    /// `claims` unchanged; a single-runner store with [`LocalFences`] returns
    /// [`LocalFences::renew`].
    ///
    /// # Errors
    /// Any backend failure; the leases are as they were (the engine tries again at its next
    /// renewal).
    async fn renew(&self, claims: &[CheckerClaim]) -> Result<Vec<CheckerClaim>, StoreError> {
        Ok(claims.to_vec())
    }

    /// Records one checker's checks atomically under `claim` and enqueues each new one for
    /// delivery; a record whose `(checker, requirement_index, minute)` exists is not written
    /// again, and its stored version is returned in [`Recorded::existing`]. Every record must
    /// be of `claim.checker`.
    ///
    /// # Errors
    /// [`StoreError::StaleClaim`] when the checker was claimed again since `claim` was
    /// granted; a record of another checker; any backend failure. Nothing was recorded then.
    async fn record(
        &self,
        claim: &CheckerClaim,
        records: &[CheckRecord],
    ) -> Result<Recorded, StoreError>;

    /// Outbox entries to deliver, ordered by checker, minute, requirement index; at most
    /// `limit`. Entries not yet due (`next_attempt_at > lease.now`) are included: the engine
    /// needs them to keep each target's records in order. The entries are leased to the
    /// caller until `lease.until` (a single-runner store may ignore the lease).
    ///
    /// # Errors
    /// Any backend failure.
    async fn claim_deliveries(
        &self,
        limit: usize,
        lease: Lease,
    ) -> Result<Vec<PendingDelivery>, StoreError>;

    /// Ends a delivery round of the outbox entry `key`: removes it (`Delivered`, `GaveUp`) or
    /// keeps it with its progress (`RetryAt`). An unknown key is no error (another runner
    /// settled it).
    ///
    /// # Errors
    /// Any backend failure; the entry is delivered again then (at least once).
    async fn settle(&self, key: &str, settlement: &Settlement) -> Result<(), StoreError>;

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

    /// Remembers the latest error of a checker for status views (`None` clears it).
    ///
    /// # Errors
    /// Any backend failure.
    async fn set_last_error(
        &self,
        checker: &str,
        error: Option<(i64, &str)>,
    ) -> Result<(), StoreError>;

    /// Deletes `checker`'s check records with `minute < older_than`, except the newest record
    /// of each requirement (it is what status views show and where the next cycle
    /// continues); returns how many. Outbox entries are not affected: a pending delivery is
    /// still made. The default deletes nothing (the whole check log is kept).
    ///
    /// # Errors
    /// Any backend failure.
    async fn purge_checks(&self, checker: &str, older_than: i64) -> Result<u64, StoreError> {
        let _ = (checker, older_than);
        Ok(0)
    }
}

macro_rules! forward_check_log {
    ($($ty:ty),*) => {$(
        #[async_trait]
        impl<T: CheckLog + ?Sized> CheckLog for $ty {
            async fn last_checked_minute(&self, checker: &str) -> Result<Option<i64>, StoreError> {
                (**self).last_checked_minute(checker).await
            }
            async fn last_checked_minutes(&self, checker: &str) -> Result<Vec<(usize, i64)>, StoreError> {
                (**self).last_checked_minutes(checker).await
            }
            async fn claim(&self, checkers: &[String], now: i64) -> Result<Vec<CheckerClaim>, StoreError> {
                (**self).claim(checkers, now).await
            }
            async fn renew(&self, claims: &[CheckerClaim]) -> Result<Vec<CheckerClaim>, StoreError> {
                (**self).renew(claims).await
            }
            async fn record(&self, claim: &CheckerClaim, records: &[CheckRecord]) -> Result<Recorded, StoreError> {
                (**self).record(claim, records).await
            }
            async fn claim_deliveries(&self, limit: usize, lease: Lease) -> Result<Vec<PendingDelivery>, StoreError> {
                (**self).claim_deliveries(limit, lease).await
            }
            async fn settle(&self, key: &str, settlement: &Settlement) -> Result<(), StoreError> {
                (**self).settle(key, settlement).await
            }
            async fn record_give_up(&self, checker: &str, count: u64, minute: i64, message: &str) -> Result<(), StoreError> {
                (**self).record_give_up(checker, count, minute, message).await
            }
            async fn set_last_error(&self, checker: &str, error: Option<(i64, &str)>) -> Result<(), StoreError> {
                (**self).set_last_error(checker, error).await
            }
            async fn purge_checks(&self, checker: &str, older_than: i64) -> Result<u64, StoreError> {
                (**self).purge_checks(checker, older_than).await
            }
        }
    )*};
}

forward_check_log!(&T, Box<T>, Arc<T>);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_fences_refuse_all_but_the_latest_claim() {
        let fences = LocalFences::new();
        let names = ["a".to_string(), "a".to_string(), "b".to_string()];
        let first = fences.claim(&names, 0);
        assert_eq!(first.len(), 2, "a name given twice is claimed once");
        assert!(fences.check(&first[0]).is_ok());
        let second = fences.claim(&names[..1], 60);
        assert!(second[0].fence > first[0].fence);
        assert!(matches!(
            fences.check(&first[0]),
            Err(StoreError::StaleClaim { fence, current, .. }) if fence == first[0].fence && current == second[0].fence
        ));
        assert!(fences.check(&second[0]).is_ok());
        assert!(fences.check(&first[1]).is_ok(), "b was not claimed again");
        assert_eq!(
            fences.renew(&[first[0].clone(), first[1].clone(), second[0].clone()]),
            vec![first[1].clone(), second[0].clone()],
            "the superseded claim of a is lost; renewing keeps the fence"
        );
        let never = CheckerClaim {
            checker: "c".into(),
            fence: 0,
            until: i64::MAX,
        };
        assert!(fences.check(&never).is_err());
    }
}
