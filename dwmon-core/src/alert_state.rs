//! Alert state: what alerting (the `dwmon-alert` crate) persists so that it survives
//! restarts — per (checker, requirement) an [`AlertState`], per checker a [`SourceState`] and
//! an optional [`Pause`], and the [`Notification`]s not yet delivered to every [`Target`].
//!
//! [`AlertStateStore`] is the persistence trait; [`MemoryAlertStore`] keeps it in memory and
//! `dwmon_sqlite::SqliteStore` in the same SQLite file as rows and checks. The types live in
//! core (not in `dwmon-alert`) so that a store crate can implement the trait without depending
//! on the alerting crate; `dwmon-alert` re-exports all of them under their old paths.

mod history;
mod memory;
mod notification;
mod overview;
mod pending;
mod state;
mod target;

pub use history::{
    pause_transition, transitions, AlertTransition, HistoryState, HISTORY_PER_CHECKER,
};
pub use memory::MemoryAlertStore;
pub use notification::{Notification, NotificationKind};
pub use overview::{AlertOverview, AlertStateEntry};
pub use pending::PendingNotification;
pub use state::{is_paused, AlertPhase, AlertState, Pause, SourceState};
pub use target::{url_origin, ChannelKind, Target};

use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The [maintenance task](AlertStateStore::claim_maintenance) of forgetting the alert states
/// of removed checkers and lines ([`AlertStateStore::prune`]) after a reload.
pub const PRUNE_TASK: &str = "alert-prune";

/// An alert store operation failed.
#[derive(Debug, Clone, thiserror::Error)]
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
    /// The underlying store failed: its variant says what to fix (busy, full, read-only,
    /// not a store, ...).
    #[error(transparent)]
    Store(#[from] crate::StoreError),
    /// Any other backend failure.
    #[error("alert store: {0}")]
    Backend(String),
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
    /// When the policy decided the update (its `now`, epoch seconds). `Some`: the store
    /// appends the [`transitions`] it makes to the history, in the same transaction. `None`:
    /// bookkeeping that changes nothing a person was or would be told (moving states to the
    /// lines they follow), recorded nowhere.
    pub at: Option<i64>,
}

/// The stored states an [`AlertUpdate`] was decided from, for
/// [`AlertStateStore::apply_if_unchanged`]: the update is written only if they are still the
/// stored ones, so that two runners judging one checker's events at once cannot both act on
/// the same old state (both announce one streak, or one overwrite the other's change).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DecidedFrom {
    /// The requirement whose state was read, and that state (`None`: none was stored).
    pub alert: Option<(usize, Option<AlertState>)>,
    /// The checker's source state read (`Some(None)`: none was stored); `None`: not read.
    pub source: Option<Option<SourceState>>,
}

/// Persistence for alerting: alert and source states, pause flags and the notifications not
/// yet delivered to every target. Object-safe (`Arc<dyn AlertStateStore>`). It is part of the
/// store seam: every [`Store`](crate::Store) is an `AlertStateStore` too, so one store keeps
/// rows, checks, deliveries and alert state (a store can also keep its alert state in a
/// [`MemoryAlertStore`] field, see [`delegate_alert_state_store!`](crate::delegate_alert_state_store)).
///
/// **Concurrency.** Each call is atomic: [`apply`](AlertStateStore::apply) writes its states,
/// its notifications and the history entries it makes all together or not at all, and a read
/// sees whole updates only. Enqueuing a notification whose idempotency key is already pending
/// keeps the pending entry (with its delivery progress) as it is, so two runners applying the
/// same event enqueue it once; a replayed notification adds no history entry. States are
/// last-writer-wins with [`apply`](AlertStateStore::apply); the alerting policy writes with
/// [`apply_if_unchanged`](AlertStateStore::apply_if_unchanged), so that of several runners
/// judging one checker at once each decides on the states the others wrote (an
/// [`AlertState::last_minute`] at or after an event's minute makes it a replay), and sends
/// what [`claim_pending`](AlertStateStore::claim_pending) leases it.
///
/// **Crash.** A call that returned `Ok` is durable in a persistent store (the in-memory
/// stores keep it for the life of the process); one interrupted by a crash wrote nothing. A
/// pending notification stays until [`complete`](AlertStateStore::complete)d, across
/// restarts, with the progress last saved by [`save_progress`](AlertStateStore::save_progress):
/// a crash between a channel accepting it and `save_progress` means one more delivery to that
/// target under the same idempotency key, never a lost one.
///
/// ```
/// use dwmon_core::alert_state::{AlertStateStore, MemoryAlertStore, Pause};
/// # futures::executor::block_on(async {
/// let store = MemoryAlertStore::new();
/// let pause = Pause { since: 0, until: Some(3600), comment: Some("migration".into()) };
/// store.set_pause("orders", Some(&pause)).await?;
/// assert_eq!(store.pause("orders").await?, Some(pause));
/// # Ok::<(), dwmon_core::alert_state::AlertStoreError>(())
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

    /// [`apply`](AlertStateStore::apply), only if the stored states are still those of
    /// `decided_from` (compared in the transaction that writes, under the same lock): `Ok(true)`
    /// when written, `Ok(false)` (nothing written) when another writer changed them since they
    /// were read; the caller reads them again and decides anew.
    ///
    /// The default reads the states, compares and applies, in three calls: enough for a store
    /// one process writes ([`MemoryAlertStore`], SQLite). A store several runners share
    /// (`dwmon_postgres_store::PostgresStore`) compares inside its transaction.
    ///
    /// # Errors
    /// Backend failure; then nothing was written.
    async fn apply_if_unchanged(
        &self,
        update: &AlertUpdate,
        decided_from: &DecidedFrom,
    ) -> Result<bool, AlertStoreError> {
        if let Some((index, expected)) = &decided_from.alert {
            if self.alert_state(&update.checker, *index).await? != *expected {
                return Ok(false);
            }
        }
        if let Some(expected) = &decided_from.source {
            if self.source_state(&update.checker).await? != *expected {
                return Ok(false);
            }
        }
        self.apply(update).await?;
        Ok(true)
    }

    /// `checker`'s pending notifications that this runner may send now, oldest first, leased
    /// to it: a store shared by several runners hands a checker's notifications to one runner
    /// at a time (until the lease ends on the store's clock, or
    /// [`release_pending`](AlertStateStore::release_pending)), and returns none while another
    /// runner holds them, so no notification is sent by two runners at once. A runner that dies
    /// holding them is replaced once its lease ends: the next runner re-sends under the same
    /// idempotency key. [`save_progress`](AlertStateStore::save_progress) of a leased entry is
    /// written only under the lease it was handed out with.
    ///
    /// The default is [`pending`](AlertStateStore::pending) (one process, nothing to share).
    ///
    /// # Errors
    /// Backend failure or an unreadable stored value.
    async fn claim_pending(
        &self,
        checker: &str,
    ) -> Result<Vec<PendingNotification>, AlertStoreError> {
        self.pending(checker).await
    }

    /// Ends this runner's lease on `checker`'s pending notifications (those still pending
    /// after a send), so another runner may retry them at once. The default does nothing.
    ///
    /// # Errors
    /// Backend failure (the lease then ends on its own).
    async fn release_pending(&self, checker: &str) -> Result<(), AlertStoreError> {
        let _ = checker;
        Ok(())
    }

    /// The checkers with pending notifications a runner leased and never released (it died
    /// while sending, or was cut off), whose lease has ended: what
    /// `dwmon_alert::AlertHandler::retry_orphaned` re-sends under their keys without waiting
    /// for the checker's next event. The default has none (one process: its pending
    /// notifications go out with the checker's next event).
    ///
    /// # Errors
    /// Backend failure.
    async fn orphaned_pending(&self) -> Result<Vec<String>, AlertStoreError> {
        Ok(Vec::new())
    }

    /// Whether this runner does the maintenance `task` (e.g. [`PRUNE_TASK`]) now: a store
    /// shared by several runners grants it to one runner at a time (a claim with a lease, on
    /// the store's clock, renewed by the runner that holds it each time it asks), so that work
    /// every runner would otherwise repeat is done by one, with no leader to elect; a runner
    /// that dies is replaced once its lease ends. The default grants it (one process).
    ///
    /// # Errors
    /// Backend failure (then the task is not done now).
    async fn claim_maintenance(&self, task: &str) -> Result<bool, AlertStoreError> {
        let _ = task;
        Ok(true)
    }

    /// `checker`'s pause, if set (possibly expired).
    ///
    /// # Errors
    /// Backend failure or an unreadable stored value.
    async fn pause(&self, checker: &str) -> Result<Option<Pause>, AlertStoreError>;

    /// Sets (`Some`) or lifts (`None`) `checker`'s pause. A pause set is recorded in the
    /// [history](AlertStateStore::history) at its `since`; lifting with `None` has no instant
    /// and records nothing: lift a pause with [`AlertStateStore::lift_pause`], which does.
    ///
    /// # Errors
    /// Backend failure.
    async fn set_pause(&self, checker: &str, pause: Option<&Pause>) -> Result<(), AlertStoreError>;

    /// Lifts `checker`'s pause at `at` (epoch seconds) and returns the pause it lifted
    /// (`None`: there was none, and nothing changed). The change (paused → active) is appended
    /// to the [history](AlertStateStore::history) at `at` with `reason` (who lifted it, why),
    /// in the same transaction as the removal, so that two people unpausing at once record
    /// one change.
    ///
    /// The default reads the pause and lifts it with `set_pause(checker, None)`, recording
    /// nothing (for a store that keeps no history). [`MemoryAlertStore`] and
    /// `dwmon_sqlite::SqliteStore` record it.
    ///
    /// ```
    /// use dwmon_core::alert_state::{AlertStateStore, HistoryState, MemoryAlertStore, Pause};
    /// # futures::executor::block_on(async {
    /// let store = MemoryAlertStore::new();
    /// let pause = Pause { since: 60, until: None, comment: Some("deploy".into()) };
    /// store.set_pause("orders", Some(&pause)).await?;
    /// assert_eq!(store.lift_pause("orders", 600, Some("dwmon unpause")).await?, Some(pause));
    /// assert_eq!(store.lift_pause("orders", 660, None).await?, None);
    /// let newest = &store.history("orders", 1).await?[0];
    /// assert_eq!((newest.at, newest.to), (600, HistoryState::Active));
    /// assert_eq!(newest.reason.as_deref(), Some("dwmon unpause"));
    /// # Ok::<(), dwmon_core::alert_state::AlertStoreError>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// Backend failure; then nothing changed.
    async fn lift_pause(
        &self,
        checker: &str,
        at: i64,
        reason: Option<&str>,
    ) -> Result<Option<Pause>, AlertStoreError> {
        let _ = (at, reason);
        let pause = self.pause(checker).await?;
        if pause.is_some() {
            self.set_pause(checker, None).await?;
        }
        Ok(pause)
    }

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

    /// `checker`'s alert state history, newest first, at most `limit` entries: what
    /// [`AlertStateStore::apply`] changed (OK → pending → firing → OK per requirement, source
    /// errors and recoveries) with the notification sent with each change (firing, reminder,
    /// resolved, ...) and its idempotency key, and the pauses set by
    /// [`AlertStateStore::set_pause`] (at the pause's `since`) and lifted by
    /// [`AlertStateStore::lift_pause`] (at its `at`). Entries are derived by [`transitions`] /
    /// [`pause_transition`] and appended in the transaction of the change, at most
    /// [`HISTORY_PER_CHECKER`] per checker (the oldest are dropped).
    ///
    /// The default keeps no history and returns an empty list: a store that keeps none (a
    /// test double) need not implement it. [`MemoryAlertStore`] and `dwmon_sqlite::SqliteStore`
    /// keep it.
    ///
    /// # Errors
    /// Backend failure or an unreadable stored entry.
    async fn history(
        &self,
        checker: &str,
        limit: usize,
    ) -> Result<Vec<AlertTransition>, AlertStoreError> {
        let _ = (checker, limit);
        Ok(Vec::new())
    }

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
            async fn apply_if_unchanged(&self, update: &AlertUpdate, decided_from: &DecidedFrom) -> Result<bool, AlertStoreError> {
                (**self).apply_if_unchanged(update, decided_from).await
            }
            async fn claim_pending(&self, checker: &str) -> Result<Vec<PendingNotification>, AlertStoreError> {
                (**self).claim_pending(checker).await
            }
            async fn release_pending(&self, checker: &str) -> Result<(), AlertStoreError> {
                (**self).release_pending(checker).await
            }
            async fn claim_maintenance(&self, task: &str) -> Result<bool, AlertStoreError> {
                (**self).claim_maintenance(task).await
            }
            async fn orphaned_pending(&self) -> Result<Vec<String>, AlertStoreError> {
                (**self).orphaned_pending().await
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
            async fn lift_pause(&self, checker: &str, at: i64, reason: Option<&str>) -> Result<Option<Pause>, AlertStoreError> {
                (**self).lift_pause(checker, at, reason).await
            }
            async fn overview(&self) -> Result<AlertOverview, AlertStoreError> {
                (**self).overview().await
            }
            async fn prune(&self, known: &BTreeMap<String, usize>) -> Result<u64, AlertStoreError> {
                (**self).prune(known).await
            }
            async fn history(&self, checker: &str, limit: usize) -> Result<Vec<AlertTransition>, AlertStoreError> {
                (**self).history(checker, limit).await
            }
        }
    )*};
}

forward_alert_store!(&T, Box<T>, Arc<T>);

#[doc(hidden)]
pub use async_trait::async_trait as __async_trait;

/// Implements [`AlertStateStore`] for a type by forwarding every operation to one of its
/// fields (a [`MemoryAlertStore`], or any other `AlertStateStore`): for a store that keeps
/// its alert state in another store, and for wrappers (test doubles, decorators) of a
/// [`Store`](crate::Store) that change only its rows or check log.
///
/// ```
/// use dwmon_core::alert_state::{AlertStateStore, MemoryAlertStore, Pause};
///
/// struct Wrapper {
///     alerts: MemoryAlertStore,
/// }
///
/// dwmon_core::delegate_alert_state_store!(Wrapper => alerts);
///
/// # futures::executor::block_on(async {
/// let wrapper = Wrapper { alerts: MemoryAlertStore::new() };
/// wrapper.set_pause("orders", Some(&Pause { since: 0, until: None, comment: None })).await?;
/// assert!(wrapper.alerts.pause("orders").await?.is_some());
/// # Ok::<(), dwmon_core::alert_state::AlertStoreError>(())
/// # }).unwrap();
/// ```
#[macro_export]
macro_rules! delegate_alert_state_store {
    ($ty:ty => $field:tt) => {
        #[$crate::alert_state::__async_trait]
        impl $crate::alert_state::AlertStateStore for $ty {
            async fn alert_state(
                &self,
                checker: &str,
                requirement_index: usize,
            ) -> ::std::result::Result<
                ::std::option::Option<$crate::alert_state::AlertState>,
                $crate::alert_state::AlertStoreError,
            > {
                $crate::alert_state::AlertStateStore::alert_state(
                    &self.$field,
                    checker,
                    requirement_index,
                )
                .await
            }
            async fn source_state(
                &self,
                checker: &str,
            ) -> ::std::result::Result<
                ::std::option::Option<$crate::alert_state::SourceState>,
                $crate::alert_state::AlertStoreError,
            > {
                $crate::alert_state::AlertStateStore::source_state(&self.$field, checker).await
            }
            async fn alert_states(
                &self,
                checker: &str,
            ) -> ::std::result::Result<
                ::std::vec::Vec<(usize, $crate::alert_state::AlertState)>,
                $crate::alert_state::AlertStoreError,
            > {
                $crate::alert_state::AlertStateStore::alert_states(&self.$field, checker).await
            }
            async fn apply(
                &self,
                update: &$crate::alert_state::AlertUpdate,
            ) -> ::std::result::Result<(), $crate::alert_state::AlertStoreError> {
                $crate::alert_state::AlertStateStore::apply(&self.$field, update).await
            }
            async fn pending(
                &self,
                checker: &str,
            ) -> ::std::result::Result<
                ::std::vec::Vec<$crate::alert_state::PendingNotification>,
                $crate::alert_state::AlertStoreError,
            > {
                $crate::alert_state::AlertStateStore::pending(&self.$field, checker).await
            }
            async fn apply_if_unchanged(
                &self,
                update: &$crate::alert_state::AlertUpdate,
                decided_from: &$crate::alert_state::DecidedFrom,
            ) -> ::std::result::Result<bool, $crate::alert_state::AlertStoreError> {
                $crate::alert_state::AlertStateStore::apply_if_unchanged(
                    &self.$field,
                    update,
                    decided_from,
                )
                .await
            }
            async fn claim_pending(
                &self,
                checker: &str,
            ) -> ::std::result::Result<
                ::std::vec::Vec<$crate::alert_state::PendingNotification>,
                $crate::alert_state::AlertStoreError,
            > {
                $crate::alert_state::AlertStateStore::claim_pending(&self.$field, checker).await
            }
            async fn release_pending(
                &self,
                checker: &str,
            ) -> ::std::result::Result<(), $crate::alert_state::AlertStoreError> {
                $crate::alert_state::AlertStateStore::release_pending(&self.$field, checker).await
            }
            async fn claim_maintenance(
                &self,
                task: &str,
            ) -> ::std::result::Result<bool, $crate::alert_state::AlertStoreError> {
                $crate::alert_state::AlertStateStore::claim_maintenance(&self.$field, task).await
            }
            async fn orphaned_pending(
                &self,
            ) -> ::std::result::Result<
                ::std::vec::Vec<::std::string::String>,
                $crate::alert_state::AlertStoreError,
            > {
                $crate::alert_state::AlertStateStore::orphaned_pending(&self.$field).await
            }
            async fn save_progress(
                &self,
                pending: &$crate::alert_state::PendingNotification,
            ) -> ::std::result::Result<(), $crate::alert_state::AlertStoreError> {
                $crate::alert_state::AlertStateStore::save_progress(&self.$field, pending).await
            }
            async fn complete(
                &self,
                idempotency_key: &str,
            ) -> ::std::result::Result<(), $crate::alert_state::AlertStoreError> {
                $crate::alert_state::AlertStateStore::complete(&self.$field, idempotency_key).await
            }
            async fn pause(
                &self,
                checker: &str,
            ) -> ::std::result::Result<
                ::std::option::Option<$crate::alert_state::Pause>,
                $crate::alert_state::AlertStoreError,
            > {
                $crate::alert_state::AlertStateStore::pause(&self.$field, checker).await
            }
            async fn set_pause(
                &self,
                checker: &str,
                pause: ::std::option::Option<&$crate::alert_state::Pause>,
            ) -> ::std::result::Result<(), $crate::alert_state::AlertStoreError> {
                $crate::alert_state::AlertStateStore::set_pause(&self.$field, checker, pause).await
            }
            async fn lift_pause(
                &self,
                checker: &str,
                at: i64,
                reason: ::std::option::Option<&str>,
            ) -> ::std::result::Result<
                ::std::option::Option<$crate::alert_state::Pause>,
                $crate::alert_state::AlertStoreError,
            > {
                $crate::alert_state::AlertStateStore::lift_pause(&self.$field, checker, at, reason)
                    .await
            }
            async fn overview(
                &self,
            ) -> ::std::result::Result<
                $crate::alert_state::AlertOverview,
                $crate::alert_state::AlertStoreError,
            > {
                $crate::alert_state::AlertStateStore::overview(&self.$field).await
            }
            async fn prune(
                &self,
                known: &::std::collections::BTreeMap<::std::string::String, usize>,
            ) -> ::std::result::Result<u64, $crate::alert_state::AlertStoreError> {
                $crate::alert_state::AlertStateStore::prune(&self.$field, known).await
            }
            async fn history(
                &self,
                checker: &str,
                limit: usize,
            ) -> ::std::result::Result<
                ::std::vec::Vec<$crate::alert_state::AlertTransition>,
                $crate::alert_state::AlertStoreError,
            > {
                $crate::alert_state::AlertStateStore::history(&self.$field, checker, limit).await
            }
        }
    };
}
