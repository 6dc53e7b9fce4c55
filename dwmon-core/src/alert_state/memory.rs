//! [`MemoryAlertStore`]: the [`AlertStateStore`] in memory.

use super::{
    pause_transition, transitions, AlertOverview, AlertState, AlertStateEntry, AlertStateStore,
    AlertStoreError, AlertTransition, AlertUpdate, Pause, PendingNotification, SourceState,
    HISTORY_PER_CHECKER,
};
use async_trait::async_trait;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
struct Memory {
    alerts: BTreeMap<(String, usize), AlertState>,
    sources: BTreeMap<String, SourceState>,
    pauses: BTreeMap<String, Pause>,
    /// In enqueue order.
    pending: Vec<PendingNotification>,
    /// Per checker, oldest first, at most [`HISTORY_PER_CHECKER`].
    history: BTreeMap<String, VecDeque<AlertTransition>>,
}

impl Memory {
    fn record(&mut self, entries: Vec<AlertTransition>) {
        for entry in entries {
            let history = self.history.entry(entry.checker.clone()).or_default();
            history.push_back(entry);
            while history.len() > HISTORY_PER_CHECKER {
                history.pop_front();
            }
        }
    }
}

/// An [`AlertStateStore`] in memory (tests, one-shot runs). Clones share the same data.
#[derive(Debug, Clone, Default)]
pub struct MemoryAlertStore {
    inner: Arc<Mutex<Memory>>,
}

impl MemoryAlertStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryAlertStore::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl AlertStateStore for MemoryAlertStore {
    async fn alert_state(
        &self,
        checker: &str,
        requirement_index: usize,
    ) -> Result<Option<AlertState>, AlertStoreError> {
        let key = (checker.to_string(), requirement_index);
        Ok(self.lock().alerts.get(&key).cloned())
    }

    async fn source_state(&self, checker: &str) -> Result<Option<SourceState>, AlertStoreError> {
        Ok(self.lock().sources.get(checker).cloned())
    }

    async fn alert_states(
        &self,
        checker: &str,
    ) -> Result<Vec<(usize, AlertState)>, AlertStoreError> {
        Ok(self
            .lock()
            .alerts
            .iter()
            .filter(|((c, _), _)| c == checker)
            .map(|((_, index), state)| (*index, state.clone()))
            .collect())
    }

    async fn apply(&self, update: &AlertUpdate) -> Result<(), AlertStoreError> {
        let mut memory = self.lock();
        let alert_before = update
            .alert
            .as_ref()
            .and_then(|(index, _)| memory.alerts.get(&(update.checker.clone(), *index)));
        let source_before = memory.sources.get(&update.checker);
        // A notification already in the history (a replayed event) is not recorded twice.
        let history = memory.history.get(&update.checker);
        let recorded = |key: &str| {
            history.is_some_and(|h| h.iter().any(|e| e.idempotency_key.as_deref() == Some(key)))
        };
        let fresh = AlertUpdate {
            notifications: update
                .notifications
                .iter()
                .filter(|p| !recorded(&p.notification.idempotency_key))
                .cloned()
                .collect(),
            ..update.clone()
        };
        let entries = transitions(&fresh, alert_before, source_before);
        memory.record(entries);
        if let Some((index, state)) = &update.alert {
            memory
                .alerts
                .insert((update.checker.clone(), *index), state.clone());
        }
        if let Some(state) = &update.source {
            memory.sources.insert(update.checker.clone(), state.clone());
        }
        for entry in &update.notifications {
            let key = &entry.notification.idempotency_key;
            if !memory
                .pending
                .iter()
                .any(|p| &p.notification.idempotency_key == key)
            {
                memory.pending.push(entry.clone());
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
        let mut memory = self.lock();
        let key = &pending.notification.idempotency_key;
        if let Some(entry) = memory
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
        let mut memory = self.lock();
        if let Some(after) = pause {
            let entry = pause_transition(
                checker,
                memory.pauses.get(checker),
                Some(after),
                after.since,
            );
            memory.record(entry.into_iter().collect());
        }
        match pause {
            Some(pause) => memory.pauses.insert(checker.to_string(), pause.clone()),
            None => memory.pauses.remove(checker),
        };
        Ok(())
    }

    async fn lift_pause(
        &self,
        checker: &str,
        at: i64,
        reason: Option<&str>,
    ) -> Result<Option<Pause>, AlertStoreError> {
        let mut memory = self.lock();
        let lifted = memory.pauses.remove(checker);
        if let Some(mut entry) = pause_transition(checker, lifted.as_ref(), None, at) {
            entry.reason = reason.map(str::to_string);
            memory.record(vec![entry]);
        }
        Ok(lifted)
    }

    async fn overview(&self) -> Result<AlertOverview, AlertStoreError> {
        let memory = self.lock();
        Ok(AlertOverview {
            alerts: memory
                .alerts
                .iter()
                .map(|((checker, index), state)| AlertStateEntry {
                    checker: checker.clone(),
                    requirement_index: *index,
                    state: state.clone(),
                })
                .collect(),
            sources: memory
                .sources
                .iter()
                .map(|(c, s)| (c.clone(), s.clone()))
                .collect(),
            pauses: memory
                .pauses
                .iter()
                .map(|(c, p)| (c.clone(), p.clone()))
                .collect(),
            pending: memory.pending.clone(),
        })
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

    async fn prune(&self, known: &BTreeMap<String, usize>) -> Result<u64, AlertStoreError> {
        let mut memory = self.lock();
        let before = memory.alerts.len();
        memory
            .alerts
            .retain(|(checker, index), _| known.get(checker).is_some_and(|n| index < n));
        memory
            .sources
            .retain(|checker, _| known.contains_key(checker));
        Ok((before - memory.alerts.len()) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert_state::{AlertState, ChannelKind, Notification, SourceState, Target};

    #[tokio::test]
    async fn memory_store_keeps_the_first_enqueue_and_forgets_completed(
    ) -> Result<(), AlertStoreError> {
        let store = MemoryAlertStore::new();
        let notification: Notification = serde_json::from_value(serde_json::json!({
            "version": 1, "idempotency_key": "c/0/60/firing", "kind": "firing",
            "incident_key": "c/0", "event_key": "c/0/60", "checker": "c",
            "severity": "critical", "at": 60, "minute": 60,
            "minute_local": "1970-01-01T00:01:00+00:00", "timezone": "UTC"
        }))
        .map_err(|e| AlertStoreError::Backend(e.to_string()))?;
        let target = Target::new(ChannelKind::Log, "");
        let mut entry = PendingNotification::new(notification, vec![target.clone()]);
        let update = AlertUpdate {
            checker: "c".into(),
            notifications: vec![entry.clone()],
            ..AlertUpdate::default()
        };
        store.apply(&update).await?;
        entry.delivered.push(target.id());
        store.save_progress(&entry).await?;
        store.apply(&update).await?; // same key again: kept as it is
        let pending = store.pending("c").await?;
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].delivered, [target.id()]);
        assert_eq!(pending[0].remaining().count(), 0);
        store.complete("c/0/60/firing").await?;
        assert!(store.pending("c").await?.is_empty());
        Ok(())
    }

    #[tokio::test]
    async fn prune_forgets_deleted_checkers_and_requirements() -> Result<(), AlertStoreError> {
        let store = MemoryAlertStore::new();
        for (checker, index) in [("a", 0), ("a", 1), ("a", 2), ("gone", 0)] {
            let update = AlertUpdate {
                checker: checker.into(),
                alert: Some((index, AlertState::default())),
                source: Some(SourceState::default()),
                ..AlertUpdate::default()
            };
            store.apply(&update).await?;
        }
        let known = BTreeMap::from([("a".to_string(), 2)]);
        assert_eq!(store.prune(&known).await?, 2);
        let overview = store.overview().await?;
        let left: Vec<(String, usize)> = overview
            .alerts
            .iter()
            .map(|e| (e.checker.clone(), e.requirement_index))
            .collect();
        assert_eq!(left, [("a".to_string(), 0), ("a".to_string(), 1)]);
        assert_eq!(overview.sources.len(), 1);
        Ok(())
    }
}
