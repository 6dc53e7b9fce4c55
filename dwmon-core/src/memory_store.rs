//! [`MemoryStore`]: an in-memory [`Store`](crate::Store) for tests and for users who want no
//! persistence.
//!
//! Everything lives behind one mutex: first-seen keys in a hash map, their timestamps in a
//! sorted multiset (so a windowed count costs the distinct timestamps inside the window, never
//! the total stored), the check log, the outbox and the last error of each checker. The alert
//! state is a [`MemoryAlertStore`] of its own. Nothing survives the process, so the
//! crash-safety guarantees hold only within a process.

use crate::alert_state::MemoryAlertStore;
use crate::record::{CheckRecord, Status};
use crate::source::Row;
use crate::store::{
    CheckLog, CheckerClaim, CheckerStatus, Lease, LocalFences, OutboxSummary, PendingDelivery,
    Recorded, RequirementStatus, RowStore, Settlement, StoreError, StoreView,
};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

/// In-memory store: first-seen rows, check log, delivery outbox and alert state. Cheap to
/// create; share it with `Arc` between the engine, alerting and whatever inspects it.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    /// One process, one store: every claim is granted ([`LocalFences`]).
    fences: LocalFences,
    /// The alert state ([`AlertStateStore`](crate::alert_state::AlertStateStore)).
    alerts: MemoryAlertStore,
}

crate::delegate_alert_state_store!(MemoryStore => alerts);

/// Outbox order: checker, minute, requirement index (the order
/// [`CheckLog::claim_deliveries`] promises).
type OutboxKey = (String, i64, usize);

#[derive(Debug, Default)]
struct Inner {
    checkers: BTreeMap<String, CheckerData>,
    outbox: BTreeMap<OutboxKey, PendingDelivery>,
    /// Idempotency key -> outbox position.
    outbox_index: HashMap<String, OutboxKey>,
}

#[derive(Debug, Default)]
struct CheckerData {
    /// First-seen timestamp of each key.
    keys: HashMap<String, i64>,
    /// Multiset of the stored timestamps: timestamp -> how many keys have it.
    timestamps: BTreeMap<i64, u64>,
    /// The check log by `(minute, requirement_index)`.
    checks: BTreeMap<(i64, usize), CheckRecord>,
    last_error: Option<(i64, String)>,
    /// Deliveries given up, and the last give-up.
    given_up: u64,
    last_give_up: Option<(i64, String)>,
}

impl CheckerData {
    fn count(&self, from: i64, to: i64) -> u64 {
        if from >= to {
            return 0;
        }
        self.timestamps.range(from..to).map(|(_, n)| n).sum()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // breaks an invariant another call relies on, so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl RowStore for MemoryStore {
    async fn insert_first_seen(&self, checker: &str, rows: &[Row]) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        let data = inner.checkers.entry(checker.to_string()).or_default();
        let mut new = 0;
        for row in rows {
            if data.keys.contains_key(&row.key) {
                continue;
            }
            data.keys.insert(row.key.clone(), row.timestamp);
            *data.timestamps.entry(row.timestamp).or_default() += 1;
            new += 1;
        }
        Ok(new)
    }

    async fn count_windows(
        &self,
        checker: &str,
        windows: &[(i64, i64)],
    ) -> Result<Vec<u64>, StoreError> {
        let inner = self.lock();
        Ok(match inner.checkers.get(checker) {
            Some(data) => windows.iter().map(|&(f, t)| data.count(f, t)).collect(),
            None => vec![0; windows.len()],
        })
    }

    async fn row_timestamps(
        &self,
        checker: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let inner = self.lock();
        let Some(data) = inner.checkers.get(checker) else {
            return Ok(Vec::new());
        };
        if from >= to {
            return Ok(Vec::new());
        }
        Ok(data
            .timestamps
            .range(from..to)
            .flat_map(|(ts, n)| std::iter::repeat_n(*ts, *n as usize))
            .collect())
    }

    async fn purge(&self, checker: &str, older_than: i64) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        let Some(data) = inner.checkers.get_mut(checker) else {
            return Ok(0);
        };
        let old = data.timestamps.range(..older_than).map(|(_, n)| n).sum();
        if old > 0 {
            data.timestamps = data.timestamps.split_off(&older_than);
            data.keys.retain(|_, ts| *ts >= older_than);
        }
        Ok(old)
    }
}

#[async_trait]
impl CheckLog for MemoryStore {
    async fn last_checked_minute(&self, checker: &str) -> Result<Option<i64>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .checkers
            .get(checker)
            .and_then(|d| d.checks.keys().next_back().map(|(m, _)| *m)))
    }

    async fn last_checked_minutes(&self, checker: &str) -> Result<Vec<(usize, i64)>, StoreError> {
        let inner = self.lock();
        let mut last: std::collections::BTreeMap<usize, i64> = Default::default();
        if let Some(data) = inner.checkers.get(checker) {
            // Keys ascend by minute, so the last insert per index is its largest minute.
            for &(minute, index) in data.checks.keys() {
                last.insert(index, minute);
            }
        }
        Ok(last.into_iter().collect())
    }

    async fn claim(&self, checkers: &[String], now: i64) -> Result<Vec<CheckerClaim>, StoreError> {
        Ok(self.fences.claim(checkers, now))
    }

    async fn renew(&self, claims: &[CheckerClaim]) -> Result<Vec<CheckerClaim>, StoreError> {
        Ok(self.fences.renew(claims))
    }

    async fn record(
        &self,
        claim: &CheckerClaim,
        records: &[CheckRecord],
    ) -> Result<Recorded, StoreError> {
        if let Some(other) = records.iter().find(|r| r.checker != claim.checker) {
            return Err(StoreError::backend(format!(
                "record {} passed to record for checker {:?}",
                other.idempotency_key(),
                claim.checker
            )));
        }
        let mut guard = self.lock();
        // Checked under the store's lock, so no claim can slip in between check and write.
        self.fences.check(claim)?;
        let inner = &mut *guard;
        let data = inner.checkers.entry(claim.checker.clone()).or_default();
        let mut recorded = Recorded::default();
        for record in records {
            let log_key = (record.minute, record.requirement_index);
            if let Some(stored) = data.checks.get(&log_key) {
                recorded.existing.push(stored.clone());
                continue;
            }
            data.checks.insert(log_key, record.clone());
            let key = record.idempotency_key();
            let position = (
                record.checker.clone(),
                record.minute,
                record.requirement_index,
            );
            inner.outbox_index.insert(key.clone(), position.clone());
            inner.outbox.insert(
                position,
                // Due at once: the minute checked is never after the cycle's `now`.
                PendingDelivery::new(record.clone()),
            );
            recorded.inserted.push(record.clone());
        }
        Ok(recorded)
    }

    async fn claim_deliveries(
        &self,
        limit: usize,
        _lease: Lease,
    ) -> Result<Vec<PendingDelivery>, StoreError> {
        let inner = self.lock();
        Ok(inner.outbox.values().take(limit).cloned().collect())
    }

    async fn settle(&self, key: &str, settlement: &Settlement) -> Result<(), StoreError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        match settlement {
            Settlement::Delivered | Settlement::GaveUp(_) => {
                if let Some(position) = inner.outbox_index.remove(key) {
                    inner.outbox.remove(&position);
                }
            }
            Settlement::RetryAt(retry) => {
                if let Some(entry) = inner
                    .outbox_index
                    .get(key)
                    .and_then(|position| inner.outbox.get_mut(position))
                {
                    entry.delivered_to.clone_from(&retry.delivered_to);
                    entry.first_attempt_at =
                        entry.first_attempt_at.or(Some(retry.first_attempt_at));
                    entry.next_attempt_at = retry.at;
                    if let Some(error) = &retry.error {
                        entry.attempts = entry.attempts.saturating_add(1);
                        entry.last_error = Some(error.clone());
                    }
                }
            }
        }
        Ok(())
    }

    async fn record_give_up(
        &self,
        checker: &str,
        count: u64,
        minute: i64,
        message: &str,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let data = inner.checkers.entry(checker.to_string()).or_default();
        data.given_up = data.given_up.saturating_add(count);
        data.last_give_up = Some((minute, message.to_string()));
        Ok(())
    }

    async fn set_last_error(
        &self,
        checker: &str,
        error: Option<(i64, &str)>,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let data = inner.checkers.entry(checker.to_string()).or_default();
        data.last_error = error.map(|(m, e)| (m, e.to_string()));
        Ok(())
    }

    async fn purge_checks(&self, checker: &str, older_than: i64) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        let Some(data) = inner.checkers.get_mut(checker) else {
            return Ok(0);
        };
        let mut newest: HashMap<usize, i64> = HashMap::new();
        for &(minute, index) in data.checks.keys() {
            newest.insert(index, minute);
        }
        let before = data.checks.len();
        data.checks.retain(|&(minute, index), _| {
            minute >= older_than || newest.get(&index) == Some(&minute)
        });
        Ok((before - data.checks.len()) as u64)
    }
}

#[async_trait]
impl StoreView for MemoryStore {
    async fn outbox_summary(&self) -> Result<OutboxSummary, StoreError> {
        let inner = self.lock();
        Ok(OutboxSummary {
            pending: inner.outbox.len() as u64,
            oldest_minute: inner.outbox.keys().map(|(_, minute, _)| *minute).min(),
        })
    }

    async fn status(&self) -> Result<Vec<CheckerStatus>, StoreError> {
        let inner = self.lock();
        let mut pending: BTreeMap<&str, u64> = BTreeMap::new();
        for (checker, _, _) in inner.outbox.keys() {
            *pending.entry(checker.as_str()).or_default() += 1;
        }
        let mut out: BTreeMap<&str, CheckerStatus> = BTreeMap::new();
        for (name, data) in &inner.checkers {
            let mut last_per_requirement: BTreeMap<usize, &CheckRecord> = BTreeMap::new();
            for record in data.checks.values() {
                // Values iterate by ascending minute, so the last one written wins.
                last_per_requirement.insert(record.requirement_index, record);
            }
            out.insert(
                name,
                CheckerStatus {
                    checker: name.clone(),
                    last_minute: data.checks.keys().next_back().map(|(m, _)| *m),
                    requirements: last_per_requirement
                        .into_values()
                        .map(|r| RequirementStatus {
                            requirement_index: r.requirement_index,
                            minute: r.minute,
                            count: r.count,
                            status: r.status,
                        })
                        .collect(),
                    pending_deliveries: 0,
                    last_error: data.last_error.clone(),
                    stored_rows: data.keys.len() as u64,
                    oldest_row: data.timestamps.keys().next().copied(),
                    oldest_check: data.checks.keys().next().map(|(m, _)| *m),
                    given_up_deliveries: data.given_up,
                    last_give_up: data.last_give_up.clone(),
                },
            );
        }
        for (name, n) in pending {
            out.entry(name)
                .or_insert_with(|| CheckerStatus {
                    checker: name.to_string(),
                    ..CheckerStatus::default()
                })
                .pending_deliveries = n;
        }
        Ok(crate::ping::fold_series(out.into_values().collect()))
    }

    async fn last_good_minutes(
        &self,
        checkers: &[String],
    ) -> Result<Vec<(String, usize, i64)>, StoreError> {
        let inner = self.lock();
        let mut out = Vec::new();
        for checker in checkers {
            let Some(data) = inner.checkers.get(checker) else {
                continue;
            };
            let mut lines: BTreeMap<usize, i64> = BTreeMap::new();
            // By ascending minute: the last GOOD one written per line wins.
            for record in data.checks.values().filter(|r| r.status == Status::Good) {
                lines.insert(record.requirement_index, record.minute);
            }
            out.extend(
                lines
                    .into_iter()
                    .map(|(index, minute)| (checker.clone(), index, minute)),
            );
        }
        Ok(out)
    }

    async fn checks_before(
        &self,
        checker: &str,
        before: (i64, usize),
        limit: usize,
    ) -> Result<Vec<CheckRecord>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .checkers
            .get(checker)
            .map(|d| {
                d.checks
                    .range(..before)
                    .rev()
                    .take(limit)
                    .map(|(_, r)| r.clone())
                    .collect()
            })
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Status;

    fn record(checker: &str, requirement_index: usize, minute: i64) -> CheckRecord {
        CheckRecord {
            checker: checker.into(),
            requirement_index,
            requirement: "r".into(),
            minute,
            minute_local: String::new(),
            timezone: "UTC".into(),
            lookback_seconds: 60,
            count: 1,
            min: 0,
            max: 5,
            status: Status::Good,
            extra: serde_json::json!({}),
            monitor: None,
            runs: None,
        }
    }

    #[tokio::test]
    async fn first_seen_keeps_first_timestamp_within_and_across_batches() -> Result<(), StoreError>
    {
        let store = MemoryStore::new();
        let rows = [Row::new("a", 100), Row::new("a", 50), Row::new("b", 120)];
        assert_eq!(store.insert_first_seen("c", &rows).await?, 2);
        assert_eq!(store.insert_first_seen("c", &[Row::new("b", 10)]).await?, 0);
        assert_eq!(store.row_timestamps("c", 0, 1000).await?, vec![100, 120]);
        // Other checkers are independent.
        assert_eq!(store.insert_first_seen("d", &[Row::new("a", 10)]).await?, 1);
        Ok(())
    }

    #[tokio::test]
    async fn windows_are_half_open() -> Result<(), StoreError> {
        let store = MemoryStore::new();
        let rows = [Row::new("a", 60), Row::new("b", 119), Row::new("c", 120)];
        store.insert_first_seen("c", &rows).await?;
        let counts = store
            .count_windows("c", &[(60, 120), (120, 180), (0, 60), (100, 50)])
            .await?;
        assert_eq!(counts, vec![2, 1, 0, 0]);
        assert_eq!(store.count("missing", 0, 1000).await?, 0);
        Ok(())
    }

    async fn record_checks(
        store: &MemoryStore,
        records: &[CheckRecord],
    ) -> Result<Recorded, StoreError> {
        let claims = store.claim(&[records[0].checker.clone()], 0).await?;
        store.record(&claims[0], records).await
    }

    const LEASE: Lease = Lease {
        now: 1000,
        until: 1300,
    };

    #[tokio::test]
    async fn record_is_idempotent_and_fills_the_outbox() -> Result<(), StoreError> {
        let store = MemoryStore::new();
        let records = [
            record("c", 0, 120),
            record("c", 1, 120),
            record("c", 0, 180),
        ];
        assert_eq!(record_checks(&store, &records).await?.inserted.len(), 3);
        let again = record_checks(&store, &records[..1]).await?;
        assert!(again.inserted.is_empty());
        assert_eq!(again.existing, records[..1]);
        assert_eq!(store.last_checked_minute("c").await?, Some(180));
        assert_eq!(
            store.last_checked_minutes("c").await?,
            vec![(0, 180), (1, 120)]
        );
        assert_eq!(store.last_checked_minutes("other").await?, vec![]);
        let pending = store.claim_deliveries(10, LEASE).await?;
        let keys: Vec<_> = pending.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["c/0/120", "c/1/120", "c/0/180"]);

        let retry = crate::store::Retry {
            at: 500,
            error: Some("down".into()),
            delivered_to: Vec::new(),
            first_attempt_at: 400,
        };
        store.settle("c/0/120", &Settlement::RetryAt(retry)).await?;
        store.settle("c/1/120", &Settlement::Delivered).await?;
        let all = store.claim_deliveries(10, LEASE).await?;
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].attempts, 1);
        assert_eq!(all[0].next_attempt_at, 500);
        assert_eq!(all[0].last_error.as_deref(), Some("down"));
        assert_eq!(store.claim_deliveries(1, LEASE).await?.len(), 1);
        Ok(())
    }

    #[tokio::test]
    async fn purge_deletes_only_older_rows() -> Result<(), StoreError> {
        let store = MemoryStore::new();
        let rows = [Row::new("a", 10), Row::new("b", 10), Row::new("c", 20)];
        store.insert_first_seen("c", &rows).await?;
        assert_eq!(store.purge("c", 20).await?, 2);
        assert_eq!(store.row_timestamps("c", 0, 100).await?, vec![20]);
        // A purged key is new again.
        assert_eq!(store.insert_first_seen("c", &[Row::new("a", 30)]).await?, 1);
        Ok(())
    }

    #[tokio::test]
    async fn status_shows_last_check_per_requirement_errors_and_pending() -> Result<(), StoreError>
    {
        let store = MemoryStore::new();
        store.insert_first_seen("c", &[Row::new("a", 10)]).await?;
        record_checks(&store, &[record("c", 0, 120), record("c", 1, 60)]).await?;
        store.settle("c/0/120", &Settlement::Delivered).await?;
        store.set_last_error("c", Some((120, "boom"))).await?;
        let status = store.status().await?;
        assert_eq!(status.len(), 1);
        let s = &status[0];
        assert_eq!(s.last_minute, Some(120));
        assert_eq!(s.requirements.len(), 2);
        assert_eq!(s.requirements[1].minute, 60);
        assert_eq!(s.pending_deliveries, 1);
        assert_eq!(s.last_error, Some((120, "boom".to_string())));
        assert_eq!(s.stored_rows, 1);
        let recent = store.checks_before("c", (i64::MAX, usize::MAX), 1).await?;
        assert_eq!(recent[0].minute, 120);
        store.set_last_error("c", None).await?;
        assert_eq!(store.status().await?[0].last_error, None);
        Ok(())
    }

    #[tokio::test]
    async fn a_hundred_thousand_rows_insert_count_and_purge() -> Result<(), StoreError> {
        let store = MemoryStore::new();
        let rows: Vec<Row> = (0..100_000)
            .map(|i| Row::new(format!("k{i}"), i64::from(i) * 7))
            .collect();
        assert_eq!(store.insert_first_seen("c", &rows).await?, 100_000);
        assert_eq!(store.insert_first_seen("c", &rows).await?, 0);
        let windows: Vec<(i64, i64)> = (0..1000).map(|m| (m * 60, m * 60 + 180)).collect();
        let counts = store.count_windows("c", &windows).await?;
        // ts = 7i: [60m, 60m + 180) holds ceil((60m + 180) / 7) - ceil(60m / 7) rows.
        let expected: Vec<u64> = windows
            .iter()
            .map(|&(f, t)| ((t + 6) / 7 - (f + 6) / 7) as u64)
            .collect();
        assert_eq!(counts, expected);
        assert_eq!(store.purge("c", 350_000).await?, 50_000);
        assert_eq!(store.count("c", 0, i64::MAX).await?, 50_000);
        Ok(())
    }
}
