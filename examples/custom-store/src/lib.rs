//! A dwmon store written from scratch against the store seam's documentation
//! (docs/STORES.md): [`BTreeStore`] keeps first-seen rows, the check log, the delivery outbox
//! and the alert state in `BTreeMap`s behind one mutex, and passes the store conformance
//! suite (`tests/store_conformance.rs`).
//!
//! It implements the four traits the blanket `Store` is made of:
//!
//! - [`RowStore`]: first-seen inserts, half-open window counts, timestamps, purges;
//! - [`CheckLog`]: last checked minutes, claims (single-runner: [`LocalFences`]), `record`
//!   with the outbox in the same critical section, `claim_deliveries`, `settle`;
//! - [`StoreView`]: the two required views (`status`, `checks_before`); the others use the
//!   trait's defaults;
//! - [`AlertStateStore`]: alert and source states, pauses, pending notifications and the
//!   history, derived with `dwmon_core::alert_state::transitions` / `pause_transition`.
//!
//! One mutex makes every operation atomic and every read a consistent snapshot. Nothing
//! survives the process: a "reopen" is a second handle on the same data ([`BTreeStore::handle`]).
//!
//! ```
//! use dwmon_core::{Row, RowStore, Store};
//! use dwmon_example_custom_store::BTreeStore;
//! use std::sync::Arc;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let store: Arc<dyn Store> = Arc::new(BTreeStore::new());
//! store.insert_first_seen("backups", &[Row::new("b1", 100)]).await?;
//! assert_eq!(store.count("backups", 60, 120).await?, 1);
//! # Ok::<(), dwmon_core::StoreError>(())
//! # }).unwrap();
//! ```

use async_trait::async_trait;
use dwmon_core::alert_state::{
    pause_transition, transitions, AlertOverview, AlertState, AlertStateEntry, AlertStateStore,
    AlertStoreError, AlertTransition, AlertUpdate, Pause, PendingNotification, SourceState,
    HISTORY_PER_CHECKER,
};
use dwmon_core::store::{
    CheckLog, CheckerClaim, CheckerStatus, Lease, LocalFences, PendingDelivery, Recorded,
    RequirementStatus, RowStore, Settlement, StoreError, StoreView,
};
use dwmon_core::{CheckRecord, Row};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

/// `(checker, minute, requirement_index)`: the check log's and the outbox's order.
type CheckKey = (String, i64, usize);

#[derive(Debug, Default)]
struct Data {
    /// Per checker: key -> first-seen timestamp.
    rows: BTreeMap<String, BTreeMap<String, i64>>,
    checks: BTreeMap<CheckKey, CheckRecord>,
    outbox: BTreeMap<CheckKey, PendingDelivery>,
    last_error: BTreeMap<String, (i64, String)>,
    /// Per checker: deliveries given up and the last give-up.
    given_up: BTreeMap<String, (u64, (i64, String))>,
    alerts: BTreeMap<(String, usize), AlertState>,
    sources: BTreeMap<String, SourceState>,
    pauses: BTreeMap<String, Pause>,
    /// In enqueue order.
    pending: Vec<PendingNotification>,
    /// Per checker, oldest first, at most `HISTORY_PER_CHECKER`.
    history: BTreeMap<String, VecDeque<AlertTransition>>,
}

impl Data {
    fn append_history(&mut self, entries: Vec<AlertTransition>) {
        for entry in entries {
            let history = self.history.entry(entry.checker.clone()).or_default();
            history.push_back(entry);
            while history.len() > HISTORY_PER_CHECKER {
                history.pop_front();
            }
        }
    }
}

/// A store over std collections; clones of a [`BTreeStore::handle`] share the data.
#[derive(Debug, Clone, Default)]
pub struct BTreeStore {
    data: Arc<Mutex<Data>>,
    /// One process: every claim is granted, with a fence shared by every handle.
    fences: Arc<LocalFences>,
}

impl BTreeStore {
    /// An empty store.
    pub fn new() -> Self {
        BTreeStore::default()
    }

    /// Another handle on the same data (what a restarted runner of a persistent store would
    /// open).
    pub fn handle(&self) -> Self {
        self.clone()
    }

    fn lock(&self) -> MutexGuard<'_, Data> {
        // Every operation finishes its changes before it can panic, so a poisoned lock still
        // holds consistent data.
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn check_key(record: &CheckRecord) -> CheckKey {
    (
        record.checker.clone(),
        record.minute,
        record.requirement_index,
    )
}

#[async_trait]
impl RowStore for BTreeStore {
    async fn insert_first_seen(&self, checker: &str, rows: &[Row]) -> Result<u64, StoreError> {
        let mut data = self.lock();
        let stored = data.rows.entry(checker.to_string()).or_default();
        let mut new = 0;
        for row in rows {
            if !stored.contains_key(&row.key) {
                stored.insert(row.key.clone(), row.timestamp);
                new += 1;
            }
        }
        Ok(new)
    }

    async fn count_windows(
        &self,
        checker: &str,
        windows: &[(i64, i64)],
    ) -> Result<Vec<u64>, StoreError> {
        let data = self.lock();
        let stamps = data.rows.get(checker);
        Ok(windows
            .iter()
            .map(|&(from, to)| {
                stamps.map_or(0, |s| {
                    s.values().filter(|&&ts| from <= ts && ts < to).count() as u64
                })
            })
            .collect())
    }

    async fn row_timestamps(
        &self,
        checker: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let data = self.lock();
        let mut stamps: Vec<i64> = data
            .rows
            .get(checker)
            .map(|s| {
                s.values()
                    .copied()
                    .filter(|&ts| from <= ts && ts < to)
                    .collect()
            })
            .unwrap_or_default();
        stamps.sort_unstable();
        Ok(stamps)
    }

    async fn purge(&self, checker: &str, older_than: i64) -> Result<u64, StoreError> {
        let mut data = self.lock();
        let Some(stored) = data.rows.get_mut(checker) else {
            return Ok(0);
        };
        let before = stored.len();
        stored.retain(|_, ts| *ts >= older_than);
        Ok((before - stored.len()) as u64)
    }
}

#[async_trait]
impl CheckLog for BTreeStore {
    async fn last_checked_minute(&self, checker: &str) -> Result<Option<i64>, StoreError> {
        let data = self.lock();
        Ok(data
            .checks
            .keys()
            .filter(|(c, _, _)| c == checker)
            .map(|(_, minute, _)| *minute)
            .max())
    }

    async fn last_checked_minutes(&self, checker: &str) -> Result<Vec<(usize, i64)>, StoreError> {
        let data = self.lock();
        let mut last: BTreeMap<usize, i64> = BTreeMap::new();
        for (_, minute, index) in data.checks.keys().filter(|(c, _, _)| c == checker) {
            let entry = last.entry(*index).or_insert(*minute);
            *entry = (*entry).max(*minute);
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
                "a record of checker {:?} under a claim of {:?}",
                other.checker, claim.checker
            )));
        }
        // The fence is checked before anything is written: a record under a claim this
        // process superseded writes nothing.
        let mut data = self.lock();
        self.fences.check(claim)?;
        let mut recorded = Recorded::default();
        for record in records {
            let key = check_key(record);
            match data.checks.get(&key) {
                Some(stored) => recorded.existing.push(stored.clone()),
                None => {
                    data.checks.insert(key.clone(), record.clone());
                    data.outbox
                        .insert(key, PendingDelivery::new(record.clone()));
                    recorded.inserted.push(record.clone());
                }
            }
        }
        Ok(recorded)
    }

    async fn claim_deliveries(
        &self,
        limit: usize,
        _lease: Lease,
    ) -> Result<Vec<PendingDelivery>, StoreError> {
        // One runner: nobody else claims, so the lease needs no bookkeeping.
        let data = self.lock();
        Ok(data.outbox.values().take(limit).cloned().collect())
    }

    async fn settle(&self, key: &str, settlement: &Settlement) -> Result<(), StoreError> {
        let mut data = self.lock();
        let Some(position) = data
            .outbox
            .iter()
            .find(|(_, entry)| entry.key == key)
            .map(|(position, _)| position.clone())
        else {
            return Ok(()); // settled already
        };
        match settlement {
            Settlement::Delivered | Settlement::GaveUp(_) => {
                data.outbox.remove(&position);
            }
            Settlement::RetryAt(retry) => {
                if let Some(entry) = data.outbox.get_mut(&position) {
                    entry.next_attempt_at = retry.at;
                    if let Some(error) = &retry.error {
                        entry.attempts = entry.attempts.saturating_add(1);
                        entry.last_error = Some(error.clone());
                    }
                    entry.delivered_to.clone_from(&retry.delivered_to);
                    entry.first_attempt_at =
                        Some(entry.first_attempt_at.unwrap_or(retry.first_attempt_at));
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
        let mut data = self.lock();
        let entry = data
            .given_up
            .entry(checker.to_string())
            .or_insert((0, (minute, String::new())));
        entry.0 = entry.0.saturating_add(count);
        entry.1 = (minute, message.to_string());
        Ok(())
    }

    async fn set_last_error(
        &self,
        checker: &str,
        error: Option<(i64, &str)>,
    ) -> Result<(), StoreError> {
        let mut data = self.lock();
        match error {
            Some((minute, message)) => {
                data.last_error
                    .insert(checker.to_string(), (minute, message.to_string()));
            }
            None => {
                data.last_error.remove(checker);
            }
        }
        Ok(())
    }

    async fn purge_checks(&self, checker: &str, older_than: i64) -> Result<u64, StoreError> {
        let mut data = self.lock();
        // The newest record of each requirement stays.
        let mut newest: BTreeMap<usize, i64> = BTreeMap::new();
        for (_, minute, index) in data.checks.keys().filter(|(c, _, _)| c == checker) {
            let entry = newest.entry(*index).or_insert(*minute);
            *entry = (*entry).max(*minute);
        }
        let before = data.checks.len();
        data.checks.retain(|(c, minute, index), _| {
            c != checker || *minute >= older_than || newest.get(index) == Some(minute)
        });
        Ok((before - data.checks.len()) as u64)
    }
}

#[async_trait]
impl StoreView for BTreeStore {
    async fn status(&self) -> Result<Vec<CheckerStatus>, StoreError> {
        let data = self.lock();
        let names: BTreeSet<&String> = data
            .rows
            .keys()
            .chain(data.checks.keys().map(|(c, _, _)| c))
            .chain(data.last_error.keys())
            .chain(data.given_up.keys())
            .collect();
        let statuses = names
            .into_iter()
            .map(|checker| {
                let checks: Vec<&CheckRecord> = data
                    .checks
                    .iter()
                    .filter(|((c, _, _), _)| c == checker)
                    .map(|(_, r)| r)
                    .collect();
                let mut last: BTreeMap<usize, &CheckRecord> = BTreeMap::new();
                for record in &checks {
                    last.insert(record.requirement_index, record); // ascending minutes
                }
                let rows = data.rows.get(checker);
                let given_up = data.given_up.get(checker);
                CheckerStatus {
                    checker: checker.clone(),
                    last_minute: checks.iter().map(|r| r.minute).max(),
                    requirements: last
                        .values()
                        .map(|r| RequirementStatus {
                            requirement_index: r.requirement_index,
                            minute: r.minute,
                            count: r.count,
                            status: r.status,
                        })
                        .collect(),
                    pending_deliveries: data.outbox.keys().filter(|(c, _, _)| c == checker).count()
                        as u64,
                    last_error: data.last_error.get(checker).cloned(),
                    stored_rows: rows.map_or(0, |r| r.len() as u64),
                    oldest_row: rows.and_then(|r| r.values().min().copied()),
                    oldest_check: checks.iter().map(|r| r.minute).min(),
                    given_up_deliveries: given_up.map_or(0, |g| g.0),
                    last_give_up: given_up.map(|g| g.1.clone()),
                }
            })
            .collect();
        // Push checkers' ping-kind series (`NAME~fail`, ...) count in their checker.
        Ok(dwmon_core::ping::fold_series(statuses))
    }

    async fn checks_before(
        &self,
        checker: &str,
        before: (i64, usize),
        limit: usize,
    ) -> Result<Vec<CheckRecord>, StoreError> {
        let data = self.lock();
        Ok(data
            .checks
            .iter()
            .rev()
            .filter(|((c, minute, index), _)| c == checker && (*minute, *index) < before)
            .take(limit)
            .map(|(_, r)| r.clone())
            .collect())
    }
}

#[async_trait]
impl AlertStateStore for BTreeStore {
    async fn alert_state(
        &self,
        checker: &str,
        requirement_index: usize,
    ) -> Result<Option<AlertState>, AlertStoreError> {
        let data = self.lock();
        Ok(data
            .alerts
            .get(&(checker.to_string(), requirement_index))
            .cloned())
    }

    async fn source_state(&self, checker: &str) -> Result<Option<SourceState>, AlertStoreError> {
        Ok(self.lock().sources.get(checker).cloned())
    }

    async fn apply(&self, update: &AlertUpdate) -> Result<(), AlertStoreError> {
        let mut data = self.lock();
        // History first, from the states the update replaces; a notification already in the
        // history (a replayed event) is not recorded again.
        let known = |key: &str| {
            data.history
                .get(&update.checker)
                .is_some_and(|h| h.iter().any(|e| e.idempotency_key.as_deref() == Some(key)))
        };
        let fresh = AlertUpdate {
            notifications: update
                .notifications
                .iter()
                .filter(|p| !known(&p.notification.idempotency_key))
                .cloned()
                .collect(),
            ..update.clone()
        };
        let alert_before = update
            .alert
            .as_ref()
            .and_then(|(index, _)| data.alerts.get(&(update.checker.clone(), *index)));
        let entries = transitions(&fresh, alert_before, data.sources.get(&update.checker));
        data.append_history(entries);
        if let Some((index, state)) = &update.alert {
            data.alerts
                .insert((update.checker.clone(), *index), state.clone());
        }
        if let Some(state) = &update.source {
            data.sources.insert(update.checker.clone(), state.clone());
        }
        for entry in &update.notifications {
            let key = &entry.notification.idempotency_key;
            if !data
                .pending
                .iter()
                .any(|p| &p.notification.idempotency_key == key)
            {
                data.pending.push(entry.clone());
            }
        }
        Ok(())
    }

    async fn pending(&self, checker: &str) -> Result<Vec<PendingNotification>, AlertStoreError> {
        Ok(self
            .lock()
            .pending
            .iter()
            .filter(|p| p.notification.checker == checker)
            .cloned()
            .collect())
    }

    async fn save_progress(&self, pending: &PendingNotification) -> Result<(), AlertStoreError> {
        let mut data = self.lock();
        let key = &pending.notification.idempotency_key;
        if let Some(entry) = data
            .pending
            .iter_mut()
            .find(|p| &p.notification.idempotency_key == key)
        {
            entry.delivered.clone_from(&pending.delivered);
            entry.abandoned.clone_from(&pending.abandoned);
            entry.attempts = pending.attempts;
            entry.last_error.clone_from(&pending.last_error);
        }
        Ok(())
    }

    async fn complete(&self, idempotency_key: &str) -> Result<(), AlertStoreError> {
        self.lock()
            .pending
            .retain(|p| p.notification.idempotency_key != idempotency_key);
        Ok(())
    }

    async fn pause(&self, checker: &str) -> Result<Option<Pause>, AlertStoreError> {
        Ok(self.lock().pauses.get(checker).cloned())
    }

    async fn set_pause(&self, checker: &str, pause: Option<&Pause>) -> Result<(), AlertStoreError> {
        let mut data = self.lock();
        if let Some(after) = pause {
            let entry =
                pause_transition(checker, data.pauses.get(checker), Some(after), after.since);
            data.append_history(entry.into_iter().collect());
            data.pauses.insert(checker.to_string(), after.clone());
        } else {
            data.pauses.remove(checker);
        }
        Ok(())
    }

    async fn lift_pause(
        &self,
        checker: &str,
        at: i64,
        reason: Option<&str>,
    ) -> Result<Option<Pause>, AlertStoreError> {
        let mut data = self.lock();
        let lifted = data.pauses.remove(checker);
        if let Some(mut entry) = pause_transition(checker, lifted.as_ref(), None, at) {
            entry.reason = reason.map(str::to_string);
            data.append_history(vec![entry]);
        }
        Ok(lifted)
    }

    async fn overview(&self) -> Result<AlertOverview, AlertStoreError> {
        let data = self.lock();
        Ok(AlertOverview {
            alerts: data
                .alerts
                .iter()
                .map(|((checker, index), state)| AlertStateEntry {
                    checker: checker.clone(),
                    requirement_index: *index,
                    state: state.clone(),
                })
                .collect(),
            sources: data
                .sources
                .iter()
                .map(|(c, s)| (c.clone(), s.clone()))
                .collect(),
            pauses: data
                .pauses
                .iter()
                .map(|(c, p)| (c.clone(), p.clone()))
                .collect(),
            pending: data.pending.clone(),
        })
    }

    async fn prune(&self, known: &BTreeMap<String, usize>) -> Result<u64, AlertStoreError> {
        let mut data = self.lock();
        let before = data.alerts.len();
        data.alerts
            .retain(|(checker, index), _| known.get(checker).is_some_and(|n| index < n));
        data.sources
            .retain(|checker, _| known.contains_key(checker));
        Ok((before - data.alerts.len()) as u64)
    }

    async fn history(
        &self,
        checker: &str,
        limit: usize,
    ) -> Result<Vec<AlertTransition>, AlertStoreError> {
        Ok(self
            .lock()
            .history
            .get(checker)
            .map(|h| h.iter().rev().take(limit).cloned().collect())
            .unwrap_or_default())
    }
}
