//! [`AlertStateStore`]: where alert states, pauses and undelivered notifications live, so
//! alerting survives restarts. [`MemoryAlertStore`] is the in-memory implementation; the
//! SQLite one is [`SqliteAlertStore`](crate::SqliteAlertStore).

use crate::notification::Notification;
use crate::route::Target;
use crate::state::{AlertState, Pause, SourceState};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// An alert store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AlertStoreError {
    /// The store could not be opened or its tables created.
    #[error("cannot open alert store {path}: {message}")]
    Open {
        /// Store location.
        path: String,
        /// Why.
        message: String,
    },
    /// A stored value could not be read back.
    #[error("alert store: corrupt {what} for {key}: {message}")]
    Corrupt {
        /// Which kind of value (`alert state`, `pause`, ...).
        what: &'static str,
        /// Its key.
        key: String,
        /// Why.
        message: String,
    },
    /// Any other backend failure.
    #[error("alert store: {0}")]
    Backend(String),
}

/// A notification still owed to some of its targets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingNotification {
    /// The message (its `idempotency_key` identifies the entry).
    pub notification: Notification,
    /// Where it must go (fixed when it was decided).
    pub targets: Vec<Target>,
    /// [`Target::id`]s that already accepted it; they are not sent to again.
    pub delivered: Vec<String>,
    /// [`Target::id`]s given up after a permanent error (logged and reported once).
    #[serde(default)]
    pub abandoned: Vec<String>,
    /// Failed delivery rounds so far.
    pub attempts: u32,
    /// The last (secret-free) error, for status views.
    pub last_error: Option<String>,
}

impl PendingNotification {
    /// A new entry nobody has received yet.
    pub fn new(notification: Notification, targets: Vec<Target>) -> Self {
        PendingNotification {
            notification,
            targets,
            delivered: Vec::new(),
            abandoned: Vec::new(),
            attempts: 0,
            last_error: None,
        }
    }

    /// The targets still owed the message (neither delivered nor abandoned).
    pub fn remaining(&self) -> impl Iterator<Item = &Target> {
        self.targets.iter().filter(|t| {
            let id = t.id();
            !self.delivered.contains(&id) && !self.abandoned.contains(&id)
        })
    }
}

/// Everything one event changes, written atomically by [`AlertStateStore::apply`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AlertUpdate {
    /// The checker.
    pub checker: String,
    /// New state of one requirement, if it changed.
    pub alert: Option<(usize, AlertState)>,
    /// New source state, if it changed.
    pub source: Option<SourceState>,
    /// Notifications to enqueue (an entry whose key exists is kept as it is).
    pub notifications: Vec<PendingNotification>,
}

/// One requirement's alert state, for status views.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertStateEntry {
    /// Checker name.
    pub checker: String,
    /// Requirement index.
    pub requirement_index: usize,
    /// The state.
    pub state: AlertState,
}

/// Everything a status view shows about alerting (`serde_json` gives `status --json`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct AlertOverview {
    /// Per (checker, requirement), ordered.
    pub alerts: Vec<AlertStateEntry>,
    /// Per checker with a source state, ordered.
    pub sources: Vec<(String, SourceState)>,
    /// Paused checkers (expired pauses included; check [`Pause::is_active`]).
    pub pauses: Vec<(String, Pause)>,
    /// Notifications not yet delivered to all their targets.
    pub pending: Vec<PendingNotification>,
}

impl AlertOverview {
    /// Human-readable lines for a status view at `now`: every requirement that is firing or
    /// has a BAD streak, every broken source, every pause, and the undelivered count.
    ///
    /// ```
    /// use dwmon_alert::{AlertOverview, Pause};
    /// let overview = AlertOverview {
    ///     pauses: vec![("orders".into(), Pause { since: 0, until: Some(3600), comment: Some("migration".into()) })],
    ///     ..AlertOverview::default()
    /// };
    /// assert_eq!(overview.lines(60), ["orders: paused until 1970-01-01 01:00 UTC (migration)"]);
    /// ```
    pub fn lines(&self, now: i64) -> Vec<String> {
        let mut lines = Vec::new();
        for (checker, pause) in &self.pauses {
            let until = match (pause.until, pause.is_active(now)) {
                (_, false) => "paused, expired".to_string(),
                (Some(until), true) => format!("paused until {}", utc(until)),
                (None, true) => "paused".to_string(),
            };
            let comment = pause
                .comment
                .as_deref()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default();
            lines.push(format!("{checker}: {until}{comment}"));
        }
        for (checker, source) in &self.sources {
            if source.failing {
                lines.push(format!(
                    "{checker}: source ERROR since {}: {}",
                    source.since.map(utc).unwrap_or_default(),
                    source.last_error.as_deref().unwrap_or("unknown error")
                ));
            }
        }
        for entry in &self.alerts {
            let state = &entry.state;
            let head = format!("{} #{}", entry.checker, entry.requirement_index);
            match state.phase {
                crate::AlertPhase::Firing => lines.push(format!(
                    "{head}: FIRING ({}) since {}{}",
                    state.severity,
                    state.firing_since.map(utc).unwrap_or_default(),
                    match (state.announced, &state.held) {
                        (true, _) => String::new(),
                        (false, Some(held)) => format!(
                            ", held: parent {} is BAD or ERROR",
                            dwmon_core::checker_file::parent_of(&held.extra).unwrap_or("?")
                        ),
                        (false, None) => ", not announced (paused)".to_string(),
                    }
                )),
                crate::AlertPhase::Ok if state.consecutive_bad > 0 => lines.push(format!(
                    "{head}: OK, {} BAD in a row",
                    state.consecutive_bad
                )),
                crate::AlertPhase::Ok if state.announced => {
                    lines.push(format!("{head}: OK, resolution not announced yet (paused)"))
                }
                crate::AlertPhase::Ok => {}
            }
        }
        if !self.pending.is_empty() {
            lines.push(format!(
                "{} alert notifications waiting for delivery",
                self.pending.len()
            ));
        }
        lines
    }
}

fn utc(epoch: i64) -> String {
    chrono::DateTime::from_timestamp(epoch, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| epoch.to_string())
}

/// Persistence for alerting: alert and source states, pause flags and the notifications not
/// yet delivered to every target. Object-safe (`Arc<dyn AlertStateStore>`).
///
/// ```
/// use dwmon_alert::{AlertStateStore, MemoryAlertStore, Pause};
/// # futures::executor::block_on(async {
/// let store = MemoryAlertStore::new();
/// let pause = Pause { since: 0, until: Some(3600), comment: Some("migration".into()) };
/// store.set_pause("orders", Some(&pause)).await?;
/// assert_eq!(store.pause("orders").await?, Some(pause));
/// # Ok::<(), dwmon_alert::AlertStoreError>(())
/// # }).unwrap();
/// ```
#[async_trait]
pub trait AlertStateStore: Send + Sync {
    /// The state of requirement `requirement_index` of `checker`, if one was saved.
    ///
    /// # Errors
    /// Backend failure or an unreadable stored value.
    async fn alert_state(
        &self,
        checker: &str,
        requirement_index: usize,
    ) -> Result<Option<AlertState>, AlertStoreError>;

    /// The source state of `checker`, if one was saved.
    ///
    /// # Errors
    /// Backend failure or an unreadable stored value.
    async fn source_state(&self, checker: &str) -> Result<Option<SourceState>, AlertStoreError>;

    /// Saves the states of `update` and enqueues its notifications, all or nothing.
    ///
    /// # Errors
    /// Backend failure; then nothing was written.
    async fn apply(&self, update: &AlertUpdate) -> Result<(), AlertStoreError>;

    /// `checker`'s notifications not yet delivered to every target, oldest first.
    ///
    /// # Errors
    /// Backend failure or an unreadable stored value.
    async fn pending(&self, checker: &str) -> Result<Vec<PendingNotification>, AlertStoreError>;

    /// Overwrites the delivery progress (`delivered`, `abandoned`, `attempts`, `last_error`)
    /// of the pending
    /// entry with the same idempotency key.
    ///
    /// # Errors
    /// Backend failure.
    async fn save_progress(&self, pending: &PendingNotification) -> Result<(), AlertStoreError>;

    /// Removes a notification every target received.
    ///
    /// # Errors
    /// Backend failure.
    async fn complete(&self, idempotency_key: &str) -> Result<(), AlertStoreError>;

    /// `checker`'s pause, if set (possibly expired).
    ///
    /// # Errors
    /// Backend failure or an unreadable stored value.
    async fn pause(&self, checker: &str) -> Result<Option<Pause>, AlertStoreError>;

    /// Sets (`Some`) or lifts (`None`) `checker`'s pause.
    ///
    /// # Errors
    /// Backend failure.
    async fn set_pause(&self, checker: &str, pause: Option<&Pause>) -> Result<(), AlertStoreError>;

    /// Every alert state, source state, pause and pending notification.
    ///
    /// # Errors
    /// Backend failure or an unreadable stored value.
    async fn overview(&self) -> Result<AlertOverview, AlertStoreError>;

    /// Forgets the alert and source states of checkers not in `known` (checker name ->
    /// number of requirements) and of requirement indices `>= count`, so that a deleted
    /// checker or requirement line does not stay FIRING forever in status views. Pauses and
    /// pending notifications are kept. Returns how many alert states were removed.
    ///
    /// # Errors
    /// Backend failure; then nothing was removed.
    async fn prune(&self, known: &BTreeMap<String, usize>) -> Result<u64, AlertStoreError>;

    /// The alert states of `checker`'s requirements, by ascending index (what decides
    /// whether a parent is BAD: docs/ALERTING.md, "Dependencies"). The default reads the
    /// [`AlertStateStore::overview`]; stores override it with a lookup by checker.
    ///
    /// # Errors
    /// Backend failure or an unreadable stored value.
    async fn alert_states(
        &self,
        checker: &str,
    ) -> Result<Vec<(usize, AlertState)>, AlertStoreError> {
        Ok(self
            .overview()
            .await?
            .alerts
            .into_iter()
            .filter(|e| e.checker == checker)
            .map(|e| (e.requirement_index, e.state))
            .collect())
    }
}

macro_rules! forward_alert_store {
    ($($ty:ty),*) => {$(
        #[async_trait]
        impl<T: AlertStateStore + ?Sized> AlertStateStore for $ty {
            async fn alert_state(&self, checker: &str, requirement_index: usize) -> Result<Option<AlertState>, AlertStoreError> {
                (**self).alert_state(checker, requirement_index).await
            }
            async fn source_state(&self, checker: &str) -> Result<Option<SourceState>, AlertStoreError> {
                (**self).source_state(checker).await
            }
            async fn alert_states(&self, checker: &str) -> Result<Vec<(usize, AlertState)>, AlertStoreError> {
                (**self).alert_states(checker).await
            }
            async fn apply(&self, update: &AlertUpdate) -> Result<(), AlertStoreError> {
                (**self).apply(update).await
            }
            async fn pending(&self, checker: &str) -> Result<Vec<PendingNotification>, AlertStoreError> {
                (**self).pending(checker).await
            }
            async fn save_progress(&self, pending: &PendingNotification) -> Result<(), AlertStoreError> {
                (**self).save_progress(pending).await
            }
            async fn complete(&self, idempotency_key: &str) -> Result<(), AlertStoreError> {
                (**self).complete(idempotency_key).await
            }
            async fn pause(&self, checker: &str) -> Result<Option<Pause>, AlertStoreError> {
                (**self).pause(checker).await
            }
            async fn set_pause(&self, checker: &str, pause: Option<&Pause>) -> Result<(), AlertStoreError> {
                (**self).set_pause(checker, pause).await
            }
            async fn overview(&self) -> Result<AlertOverview, AlertStoreError> {
                (**self).overview().await
            }
            async fn prune(&self, known: &BTreeMap<String, usize>) -> Result<u64, AlertStoreError> {
                (**self).prune(known).await
            }
        }
    )*};
}

forward_alert_store!(&T, Box<T>, Arc<T>);

#[derive(Debug, Default)]
struct Memory {
    alerts: BTreeMap<(String, usize), AlertState>,
    sources: BTreeMap<String, SourceState>,
    pauses: BTreeMap<String, Pause>,
    /// In enqueue order.
    pending: Vec<PendingNotification>,
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
        match pause {
            Some(pause) => memory.pauses.insert(checker.to_string(), pause.clone()),
            None => memory.pauses.remove(checker),
        };
        Ok(())
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
    use crate::{AlertPhase, Severity};

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
        let target = Target::new(crate::ChannelKind::Log, "");
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

    #[test]
    fn overview_lines_show_what_needs_attention() {
        let overview = AlertOverview {
            alerts: vec![
                AlertStateEntry {
                    checker: "orders".into(),
                    requirement_index: 0,
                    state: AlertState {
                        phase: AlertPhase::Firing,
                        firing_since: Some(0),
                        announced: true,
                        severity: Severity::Warning,
                        ..AlertState::default()
                    },
                },
                AlertStateEntry {
                    checker: "orders".into(),
                    requirement_index: 1,
                    state: AlertState {
                        consecutive_bad: 2,
                        ..AlertState::default()
                    },
                },
                AlertStateEntry {
                    checker: "quiet".into(),
                    requirement_index: 0,
                    state: AlertState::default(),
                },
            ],
            sources: vec![(
                "backups".into(),
                SourceState {
                    failing: true,
                    since: Some(120),
                    last_error: Some("fetch failed: timeout".into()),
                    ..SourceState::default()
                },
            )],
            pauses: vec![(
                "legacy".into(),
                Pause {
                    since: 0,
                    until: Some(60),
                    comment: None,
                },
            )],
            pending: Vec::new(),
        };
        assert_eq!(
            overview.lines(600),
            [
                "legacy: paused, expired",
                "backups: source ERROR since 1970-01-01 00:02 UTC: fetch failed: timeout",
                "orders #0: FIRING (warning) since 1970-01-01 00:00 UTC",
                "orders #1: OK, 2 BAD in a row",
            ]
        );
    }
}
