//! [`AlertHandler`]: the [`CheckHandler`] that runs the [`AlertPolicy`] over the engine's
//! events, persists the states, and fans notifications out to their channels.
//!
//! For each event of checker `c`:
//!
//! 1. Routes come from `c`'s `__EXTRA__` `"alert"` key (else the default routes); the rule
//!    of a check from [`AlertHandler::with_rules`] (default: read from the requirement text).
//! 2. The policy runs with `now` = the event's minute (so replays and catch-up cycles are
//!    deterministic, and a pause `--until T` covers exactly the checks of minutes before T).
//!    The new states and the resulting notifications (with their targets) are written to the
//!    [`AlertStateStore`] in one step, only if the states they were decided from are still
//!    the stored ones ([`AlertStateStore::apply_if_unchanged`]); otherwise (another runner
//!    judged one of `c`'s events meanwhile) the event is judged again on the new states, so
//!    a streak is announced once however several runners' work overlaps.
//! 3. Every pending notification of `c`, oldest first, is sent to each target that has not
//!    received it yet; the notifications are leased to this runner first
//!    ([`AlertStateStore::claim_pending`]; none while another runner sends them) and
//!    released after the send, then leased again for any enqueued meanwhile (by another
//!    runner that found them leased, or another task of this one, which waits): each goes
//!    out once, soon, and in order. Targets run concurrently, and a target
//!    that accepted a message is remembered and never sent it again. A target that fails keeps its later messages of
//!    `c` waiting, so nobody receives a `Resolved` before its `Firing`.
//! 4. If any target failed, the handler returns an error naming the failed targets (never
//!    secrets): the engine keeps the check in its outbox and retries it with backoff; the
//!    retry is a replay for the policy (same minute), so it only re-sends what is owed.
//!    A permanent failure ([`ChannelError::permanent`]: channel not configured, unknown
//!    name, HTTP 4xx, SMTP 5xx) is reported once and that target is given up for that
//!    message, so a misconfigured channel cannot hold back the checker's later
//!    notifications to every channel.
//!    Error events are not retried by the engine, but their notifications stay pending and
//!    go out with the next event of the checker.
//!
//! An error event of kind [`ErrorKind::CheckerFile`] (the checker's file failed to load, so
//! the event has no `__EXTRA__`) is routed by the checker's last good routing (the `"alert"`
//! value of its latest check, kept in its [`SourceState`]), so `SourceError` and the later
//! `SourceRecovered` go to the same place.
//!
//! Dependencies (docs/ALERTING.md): a checker whose `__EXTRA__` names a `"parent"` has its
//! `Firing`, `Reminder` and `SourceError` held while the parent's latest check is BAD (any
//! requirement, by the parent's stored [`AlertState`]s) or its source is failing; its
//! `Resolved` and `SourceRecovered` are always sent. The check of the parent that ends its
//! BAD / ERROR first announces every held alert of its children that is still FIRING
//! ([`AlertState::held`], stored, so a restart loses none), then its own notifications.
//!
//! Error events of kind [`ErrorKind::RejectedRows`] (the source returned some unusable rows,
//! the checks were still made) are not source errors: they neither start nor continue an
//! error streak.

use crate::channels::{ChannelError, Channels};
use crate::config::{AlertsConfig, ConfigError};
use crate::notification::Notification;
use crate::policy::AlertPolicy;
use crate::route::{Routes, Target};
use crate::rule::AlertRule;
use crate::state::{AlertState, SourceState};
use crate::store::{
    AlertStateStore, AlertStoreError, AlertUpdate, DecidedFrom, PendingNotification, PRUNE_TASK,
};
use async_trait::async_trait;
use dwmon_core::{CheckHandler, CheckRecord, ErrorEvent, ErrorKind, Event, HandlerError};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// Chooses the [`AlertRule`] of a check record.
pub type RuleFn = dyn Fn(&CheckRecord) -> AlertRule + Send + Sync;

/// Whether a routing target can ever be delivered (e.g. [`crate::AlertsConfig::check_target`]):
/// `Err` says why not.
pub type TargetCheckFn = dyn Fn(&Target) -> Result<(), String> + Send + Sync;

/// Alert handling failed for one event.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AlertError {
    /// The alert store failed; nothing was sent.
    #[error("{0}")]
    Store(#[from] AlertStoreError),
    /// Some targets did not accept their notifications (they stay pending).
    #[error("{} alert deliveries failed: {}", failures.len(), failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Delivery {
        /// One error per failed (notification, target).
        failures: Vec<ChannelError>,
    },
}

/// What one [`AlertHandler::handle_event`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertOutcome {
    /// Notifications the policy decided for this event.
    pub decided: Vec<Notification>,
    /// (idempotency key, target id) pairs delivered during this call.
    pub delivered: Vec<(String, String)>,
}

/// The alerting [`CheckHandler`]; see the module docs for what it does per event.
///
/// ```
/// use std::sync::Arc;
/// use dwmon_alert::{AlertHandler, AlertsConfig, MemoryAlertStore};
///
/// let config = AlertsConfig::parse("alerts.json", r#"{"repeat_seconds": 3600}"#, &|_| None)?;
/// let handler = AlertHandler::from_config(Arc::new(MemoryAlertStore::new()), &config)?;
/// // Engine::new(source, store, Arc::new(handler))
/// # let _: &dyn dwmon_core::CheckHandler = &handler;
/// # Ok::<(), dwmon_alert::ConfigError>(())
/// ```
pub struct AlertHandler {
    store: Arc<dyn AlertStateStore>,
    channels: Channels,
    default_routes: Routes,
    default_repeat_seconds: u64,
    rules: Arc<RuleFn>,
    /// A checker reload not applied to the store yet ([`AlertHandler::lines_loaded`]).
    reload: std::sync::Mutex<Option<Reload>>,
    /// Held while a reload is applied, so no event is judged against states about to move.
    reloading: futures::lock::Mutex<()>,
    /// Rejects targets that can never be delivered ([`AlertHandler::with_target_check`]).
    target_check: Option<Arc<TargetCheckFn>>,
    /// Per checker, held while a task of this handler sends its notifications: another task
    /// (the sweep for orphans, a parent's release) waits for it (the store's lease keeps
    /// other runners out; a handler's tasks share one owner).
    flushing: std::sync::Mutex<HashMap<String, Arc<futures::lock::Mutex<()>>>>,
}

/// The requirement lines of a checker reload: what [`crate::reconcile`] and
/// [`AlertStateStore::prune`] need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reload {
    /// Checker name -> canonical text of each requirement line, by index (loaded checkers).
    pub lines: BTreeMap<String, Vec<String>>,
    /// Checker name -> number of requirement lines (`usize::MAX` for a file that failed to
    /// load: all its states are kept), for [`AlertStateStore::prune`].
    pub known: BTreeMap<String, usize>,
}

impl std::fmt::Debug for AlertHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertHandler")
            .field("channels", &self.channels)
            .field("default_routes", &self.default_routes)
            .field("default_repeat_seconds", &self.default_repeat_seconds)
            .finish_non_exhaustive()
    }
}

impl AlertHandler {
    /// A handler over `store` and `channels`, with default routes `{"stdout": true}`, reminders
    /// every 4 h, and rules read from each record's requirement text.
    pub fn new(store: Arc<dyn AlertStateStore>, channels: Channels) -> Self {
        AlertHandler {
            store,
            channels,
            default_routes: Routes {
                targets: vec![crate::Target::new(crate::ChannelKind::Stdout, "")],
                repeat_seconds: None,
            },
            default_repeat_seconds: AlertPolicy::DEFAULT_REPEAT_SECONDS,
            rules: Arc::new(|record: &CheckRecord| {
                AlertRule::from_requirement_text(&record.requirement)
            }),
            reload: std::sync::Mutex::new(None),
            reloading: futures::lock::Mutex::new(()),
            target_check: None,
            flushing: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Tells the handler the checkers' requirement lines changed (a reload). Before the next
    /// event is judged, the alert states move to their lines' new indices
    /// ([`crate::reconcile`]) and the states of removed checkers and lines are forgotten
    /// ([`AlertStateStore::prune`]); see [`AlertHandler::apply_reload`].
    pub fn lines_loaded(&self, reload: Reload) {
        *self.reload.lock().unwrap_or_else(|e| e.into_inner()) = Some(reload);
    }

    /// Applies the reload given to [`AlertHandler::lines_loaded`], if any (also done by the
    /// next event). Returns (states moved, states forgotten). The states of removed checkers
    /// and lines are forgotten only by the runner granted the [`PRUNE_TASK`]
    /// ([`AlertStateStore::claim_maintenance`]); the others only move states.
    ///
    /// # Errors
    /// The store's; then the reload is tried again with the next event.
    pub async fn apply_reload(&self) -> Result<(u64, u64), AlertStoreError> {
        let _guard = self.reloading.lock().await;
        let Some(reload) = self.reload.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return Ok((0, 0));
        };
        let result = async {
            // Idempotent: every runner moves the states it judges by.
            let moved = crate::reconcile(self.store.as_ref(), &reload.lines).await?;
            // One runner at a time forgets (runners on one store load the same checkers).
            let removed = if self.store.claim_maintenance(PRUNE_TASK).await? {
                self.store.prune(&reload.known).await?
            } else {
                tracing::debug!("another runner prunes the alert states");
                0
            };
            Ok((moved, removed))
        }
        .await;
        if result.is_err() {
            let mut pending = self.reload.lock().unwrap_or_else(|e| e.into_inner());
            if pending.is_none() {
                *pending = Some(reload);
            }
        }
        result
    }

    /// A handler with the channels, default routes and repeat interval of `config`.
    ///
    /// # Errors
    /// A channel that cannot be set up, or an invalid `default_alert`.
    pub fn from_config(
        store: Arc<dyn AlertStateStore>,
        config: &AlertsConfig,
    ) -> Result<Self, ConfigError> {
        Ok(AlertHandler::new(store, Channels::from_config(config)?)
            .with_default_routes(config.default_routes("alerts config")?)
            .with_repeat_seconds(config.repeat_seconds()))
    }

    /// Checks each target of a checker's routing before anything is queued for it: a target
    /// that can never be delivered (a webhook `htps://...` or with port 99999, a Slack channel
    /// without a webhook URL, an unknown PagerDuty service, email without SMTP) is skipped
    /// with an error in the log instead of being retried forever; a checker left without any
    /// deliverable target uses the default routes.
    pub fn with_target_check(
        mut self,
        check: impl Fn(&Target) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.target_check = Some(Arc::new(check));
        self
    }

    /// Routes of checkers without an `"alert"` key (or with one that names no target).
    pub fn with_default_routes(mut self, routes: Routes) -> Self {
        self.default_routes = routes;
        self
    }

    /// Reminder interval of checkers that do not set one (0 = off).
    pub fn with_repeat_seconds(mut self, seconds: u64) -> Self {
        self.default_repeat_seconds = seconds;
        self
    }

    /// How to find a record's [`AlertRule`] (default: [`AlertRule::from_requirement_text`],
    /// the record's canonical requirement parsed like the checker file's line). Override it
    /// to alert differently from what the lines say, e.g. with [`AlertRule::from_requirement`]
    /// on a requirement table of the organisation's own.
    pub fn with_rules(
        mut self,
        rules: impl Fn(&CheckRecord) -> AlertRule + Send + Sync + 'static,
    ) -> Self {
        self.rules = Arc::new(rules);
        self
    }

    /// The alert store (for pause/unpause and status views).
    pub fn store(&self) -> &Arc<dyn AlertStateStore> {
        &self.store
    }

    /// Notification deliveries by channel and result since the start (for `/metrics`): what
    /// its channels sent, and the targets given up with an outbox entry.
    pub fn delivery_counts(&self) -> Arc<crate::DeliveryCounts> {
        self.channels.delivery_counts()
    }

    /// Routes and repeat interval for a checker's `extra`. An invalid `"alert"` key is logged
    /// and the default routes are used, so a typo never silences a checker.
    fn routes(&self, checker: &str, extra: &serde_json::Value) -> (Routes, u64) {
        self.routes_logged(checker, extra, true)
    }

    /// [`AlertHandler::routes`]; `log` = whether to log the problems of the routing (once
    /// per event, not once per target).
    fn routes_logged(&self, checker: &str, extra: &serde_json::Value, log: bool) -> (Routes, u64) {
        let routes = match Routes::from_extra(extra) {
            Ok(Some(routes)) => routes,
            Ok(None) => self.default_routes.clone(),
            Err(e) => {
                if log {
                    tracing::warn!(checker, error = %e, "invalid alert routes; using the default routes");
                }
                self.default_routes.clone()
            }
        };
        let repeat = routes.repeat_seconds.unwrap_or(self.default_repeat_seconds);
        let mut routes = routes;
        if let Some(check) = &self.target_check {
            routes.targets.retain(|target| match check(target) {
                Ok(()) => true,
                Err(_) if !log => false,
                Err(problem) => {
                    tracing::error!(
                        checker,
                        %problem,
                        "alert target can never be delivered; skipped (fix the checker's \
                         \"alert\" routing or the alerts config; `dwmon check` lists these)"
                    );
                    false
                }
            });
        }
        if routes.targets.is_empty() {
            return (self.default_routes.clone(), repeat);
        }
        (routes, repeat)
    }

    /// Runs the policy for `event`, persists the result, then delivers every pending
    /// notification of the event's checker.
    ///
    /// # Errors
    /// [`AlertError::Store`] when states cannot be read or written (nothing was sent);
    /// [`AlertError::Delivery`] when some targets failed (the rest were delivered).
    pub async fn handle_event(&self, event: &Event) -> Result<AlertOutcome, AlertError> {
        match self.apply_reload().await {
            Ok((0, 0)) => {}
            Ok((moved, removed)) => tracing::info!(
                moved,
                removed,
                "alert states follow the reloaded requirement lines"
            ),
            Err(e) => tracing::warn!(error = %e, "cannot move alert states after a reload"),
        }
        let decided = match event {
            Event::Check(record) => self.observe_check(record).await?,
            Event::Error(error) => self.observe_error(error).await?,
        };
        let delivered = self.flush(event.checker()).await?;
        Ok(AlertOutcome { decided, delivered })
    }

    /// Judges `record` against the stored states and writes the result, deciding again when
    /// another runner changed the states in between (see [`AlertStateStore::apply_if_unchanged`]).
    async fn observe_check(&self, record: &CheckRecord) -> Result<Vec<Notification>, AlertError> {
        for _ in 0..DECIDE_ATTEMPTS {
            if let Some(decided) = self.try_observe_check(record).await? {
                return Ok(decided);
            }
        }
        Err(changing(&record.checker))
    }

    /// One try of [`AlertHandler::observe_check`]: `None` when the states changed under it.
    async fn try_observe_check(
        &self,
        record: &CheckRecord,
    ) -> Result<Option<Vec<Notification>>, AlertError> {
        let checker = record.checker.as_str();
        let (routes, repeat) = self.routes(checker, &record.extra);
        let policy = AlertPolicy::new(repeat);
        let rule = (self.rules)(record);
        let pause = self.store.pause(checker).await?;
        let now = record.minute;

        let (slot, before) = self.state_of(record).await?;
        let mut state = before.clone().unwrap_or_default();
        if state.announced && state.incident_key.is_none() {
            // Saved before incident keys were kept: it was opened at its stored index.
            state.incident_key = Some(format!("{checker}/{slot}"));
        }
        state.requirement = Some(record.requirement.clone());
        let held = self.held_by_parent(&record.extra).await?;
        let firing = policy.on_check_held(&mut state, &rule, record, pause.as_ref(), held, now);

        let source_before = self.store.source_state(checker).await?;
        let mut source = source_before.clone().unwrap_or_default();
        let recovered = policy.on_source_ok(&mut source, record, pause.as_ref(), now);
        source.last_routing = record.extra.get(ROUTING_KEY).cloned();

        // This checker may be a parent: when this check ends its BAD / ERROR, the Firing
        // held for its children go out first (a crash in between replays this check, which
        // finds them announced).
        let states = self.store.alert_states(checker).await?;
        let bad_elsewhere = states
            .iter()
            .any(|(index, s)| *index != slot && s.consecutive_bad > 0);
        let was_down = source_before.as_ref().is_some_and(|s| s.failing)
            || bad_elsewhere
            || before.as_ref().is_some_and(|s| s.consecutive_bad > 0);
        let is_down = source.failing || bad_elsewhere || state.consecutive_bad > 0;
        if was_down && !is_down {
            self.release_children(checker, now).await?;
        }

        let decided: Vec<Notification> = recovered.into_iter().chain(firing).collect();
        let decided_from = DecidedFrom {
            alert: Some((slot, before.clone())),
            source: Some(source_before.clone()),
        };
        let alert = changed(before, state).map(|s| (slot, s));
        let source = changed(source_before, source);
        let written = self
            .apply(
                checker,
                alert,
                source,
                &decided,
                &routes,
                now,
                &decided_from,
            )
            .await?;
        Ok(written.then_some(decided))
    }

    /// Whether a checker with this `__EXTRA__` has its notifications held: it names a
    /// `"parent"` whose latest check is BAD (any requirement) or whose latest cycle ended in
    /// an error (docs/ALERTING.md, "Dependencies").
    async fn held_by_parent(&self, extra: &serde_json::Value) -> Result<bool, AlertStoreError> {
        let Some(parent) = dwmon_core::checker_file::parent_of(extra) else {
            return Ok(false);
        };
        if self
            .store
            .source_state(parent)
            .await?
            .is_some_and(|s| s.failing)
        {
            return Ok(true);
        }
        let states = self.store.alert_states(parent).await?;
        Ok(states.iter().any(|(_, s)| s.consecutive_bad > 0))
    }

    /// `parent` recovered: every child requirement whose `Firing` was held for it and that
    /// is still FIRING is announced now ([`AlertPolicy::release`]), then delivered (a target
    /// that fails keeps it pending for the child's next event). Returns the notifications.
    async fn release_children(
        &self,
        parent: &str,
        now: i64,
    ) -> Result<Vec<Notification>, AlertStoreError> {
        let overview = self.store.overview().await?;
        let mut released = Vec::new();
        let mut children: Vec<String> = Vec::new();
        for entry in overview.alerts {
            let Some(record) = entry.state.held.as_deref() else {
                continue;
            };
            if dwmon_core::checker_file::parent_of(&record.extra) != Some(parent) {
                continue;
            }
            let child = entry.checker.clone();
            let (routes, repeat) = self.routes(&child, &record.extra);
            let pause = self.store.pause(&child).await?;
            let mut state = entry.state.clone();
            if let Some(held) = state.held.as_mut() {
                // The line may have moved since it was held (a reload): it is this one now.
                held.requirement_index = entry.requirement_index;
            }
            let decided: Vec<Notification> = AlertPolicy::new(repeat)
                .release(&mut state, pause.as_ref(), now)
                .into_iter()
                .collect();
            let decided_from = DecidedFrom {
                alert: Some((entry.requirement_index, Some(entry.state.clone()))),
                source: None,
            };
            let alert = changed(Some(entry.state), state).map(|s| (entry.requirement_index, s));
            if alert.is_none() && decided.is_empty() {
                continue;
            }
            let update = AlertUpdate {
                checker: child.clone(),
                alert,
                source: None,
                notifications: decided
                    .iter()
                    .map(|n| PendingNotification::new(n.clone(), routes.targets.clone()))
                    .collect(),
                at: Some(now),
            };
            if !self
                .store
                .apply_if_unchanged(&update, &decided_from)
                .await?
            {
                // The child's own runner changed it meanwhile: its next check announces
                // what is still held.
                tracing::debug!(checker = %child, parent, "held alert changed; left to its checks");
                continue;
            }
            if !decided.is_empty() && !children.contains(&child) {
                children.push(child);
            }
            released.extend(decided);
        }
        for child in children {
            tracing::info!(checker = %child, parent, "parent recovered: held alerts announced");
            if let Err(e) = self.flush(&child).await {
                tracing::warn!(checker = %child, error = %e, "held alerts stay pending");
            }
        }
        Ok(released)
    }

    /// The stored state `record` belongs to and its index: the one at the record's index,
    /// unless that one follows another line (by [`crate::reconcile::line_identity`]) and a
    /// state of the record's line is stored elsewhere — a record queued before its line
    /// moved.
    async fn state_of(
        &self,
        record: &CheckRecord,
    ) -> Result<(usize, Option<AlertState>), AlertStoreError> {
        use crate::reconcile::line_identity;
        let index = record.requirement_index;
        let at_index = self.store.alert_state(&record.checker, index).await?;
        let identity = line_identity(&record.requirement);
        let elsewhere = at_index
            .as_ref()
            .and_then(|s| s.requirement.as_deref())
            .is_some_and(|text| line_identity(text) != identity);
        if elsewhere {
            let overview = self.store.overview().await?;
            if let Some(entry) = overview.alerts.into_iter().find(|e| {
                e.checker == record.checker
                    && e.state.requirement.as_deref().map(line_identity).as_ref() == Some(&identity)
            }) {
                return Ok((entry.requirement_index, Some(entry.state)));
            }
        }
        Ok((index, at_index))
    }

    /// Judges an error event; decides again when the states changed in between, as
    /// [`AlertHandler::observe_check`].
    async fn observe_error(&self, event: &ErrorEvent) -> Result<Vec<Notification>, AlertError> {
        for _ in 0..DECIDE_ATTEMPTS {
            if let Some(decided) = self.try_observe_error(event).await? {
                return Ok(decided);
            }
        }
        Err(changing(&event.checker))
    }

    /// One try of [`AlertHandler::observe_error`]: `None` when the states changed under it.
    async fn try_observe_error(
        &self,
        event: &ErrorEvent,
    ) -> Result<Option<Vec<Notification>>, AlertError> {
        let checker = event.checker.as_str();
        if event.kind == ErrorKind::RejectedRows {
            // The checks of that cycle were made (with the good rows) and alert as usual; a
            // data-quality report is not a broken source, and counting it as one would flip
            // SourceError / SourceRecovered every cycle.
            tracing::debug!(checker, error = %event.error, "rejected rows: not a source error");
            return Ok(Some(Vec::new()));
        }
        if event.kind == ErrorKind::DeliveryGivenUp {
            // The engine gave up a target of this checker: tell the default route (the
            // checker's own route may be what failed); the source is fine.
            let (routes, repeat) = self.routes(checker, &serde_json::json!({}));
            let pause = self.store.pause(checker).await?;
            let decided: Vec<Notification> = AlertPolicy::new(repeat)
                .on_delivery_given_up(event, pause.as_ref(), event.minute)
                .into_iter()
                .collect();
            // No state is read: the notification's key (its event's) keeps it one.
            let anything = DecidedFrom::default();
            self.apply(
                checker,
                None,
                None,
                &decided,
                &routes,
                event.minute,
                &anything,
            )
            .await?;
            return Ok(Some(decided));
        }
        let before = self.store.source_state(checker).await?;
        let mut source = before.clone().unwrap_or_default();
        let (routes, repeat) = self.routes(checker, &error_extra(event, &source));
        let policy = AlertPolicy::new(repeat);
        let pause = self.store.pause(checker).await?;
        let held = self.held_by_parent(&event.extra).await?;
        let decided: Vec<Notification> = policy
            .on_error_held(&mut source, event, pause.as_ref(), held, event.minute)
            .into_iter()
            .collect();
        let decided_from = DecidedFrom {
            alert: None,
            source: Some(before.clone()),
        };
        let source = changed(before, source);
        let written = self
            .apply(
                checker,
                None,
                source,
                &decided,
                &routes,
                event.minute,
                &decided_from,
            )
            .await?;
        Ok(written.then_some(decided))
    }

    /// Writes what changed and the decided notifications (with their targets) in one step,
    /// if the states they were decided from are still stored (`Ok(false)`: they changed,
    /// nothing was written).
    #[allow(clippy::too_many_arguments)]
    async fn apply(
        &self,
        checker: &str,
        alert: Option<(usize, AlertState)>,
        source: Option<SourceState>,
        decided: &[Notification],
        routes: &Routes,
        now: i64,
        decided_from: &DecidedFrom,
    ) -> Result<bool, AlertError> {
        if alert.is_none() && source.is_none() && decided.is_empty() {
            return Ok(true);
        }
        let update = AlertUpdate {
            checker: checker.to_string(),
            alert,
            source,
            notifications: decided
                .iter()
                .map(|n| PendingNotification::new(n.clone(), routes.targets.clone()))
                .collect(),
            at: Some(now),
        };
        Ok(self.store.apply_if_unchanged(&update, decided_from).await?)
    }

    /// Re-sends the notifications a runner was sending when it died (leased, never released,
    /// the lease ended: [`AlertStateStore::orphaned_pending`]), under their keys, without
    /// waiting for their checkers' next events. `dwmon run` calls it every minute. Returns
    /// the (idempotency key, target id) pairs delivered; a failed target is logged and stays
    /// pending.
    ///
    /// # Errors
    /// [`AlertError::Store`] when the orphans cannot be read.
    pub async fn retry_orphaned(&self) -> Result<Vec<(String, String)>, AlertError> {
        let mut delivered = Vec::new();
        for checker in self.store.orphaned_pending().await? {
            tracing::info!(checker = %checker, "re-sending the notifications of a runner that died");
            match self.flush(&checker).await {
                Ok(sent) => delivered.extend(sent),
                Err(e) => {
                    tracing::warn!(checker = %checker, error = %e, "notifications stay pending")
                }
            }
        }
        Ok(delivered)
    }

    /// Delivers `checker`'s pending notifications (oldest first) to the targets still owed
    /// them. Returns the (idempotency key, target id) pairs delivered.
    ///
    /// # Errors
    /// [`AlertError::Delivery`] listing the failed targets; [`AlertError::Store`].
    pub async fn flush(&self, checker: &str) -> Result<Vec<(String, String)>, AlertError> {
        self.flush_where(checker, &|_| true).await
    }

    /// [`AlertHandler::flush`] for the targets `only` accepts.
    async fn flush_where(
        &self,
        checker: &str,
        only: &(dyn Fn(&Target) -> bool + Send + Sync),
    ) -> Result<Vec<(String, String)>, AlertError> {
        let lock = Arc::clone(
            self.flushing
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(checker.to_string())
                .or_default(),
        );
        let _flushing = lock.lock().await;
        let mut round = Round::default();
        for _ in 0..FLUSH_ROUNDS {
            // Leased to this runner: another runner sending them meanwhile gets none, and
            // sends what this one enqueued too (its next round, after its release, sees it).
            let leased = self.store.claim_pending(checker).await?;
            let fresh: Vec<PendingNotification> = leased
                .into_iter()
                .filter(|p| !round.seen.contains(&p.notification.idempotency_key))
                .collect();
            if fresh.is_empty() {
                if !round.seen.is_empty() {
                    self.release(checker).await;
                }
                break;
            }
            round
                .seen
                .extend(fresh.iter().map(|p| p.notification.idempotency_key.clone()));
            let sent = self.send_leased(checker, fresh, only, &mut round).await;
            self.release(checker).await;
            sent?;
        }
        if round.failures.is_empty() {
            Ok(round.delivered)
        } else {
            Err(AlertError::Delivery {
                failures: round.failures,
            })
        }
    }

    /// Ends this runner's lease on `checker`'s notifications (it ends on its own otherwise).
    async fn release(&self, checker: &str) {
        if let Err(e) = self.store.release_pending(checker).await {
            tracing::debug!(checker, error = %e, "cannot release the notifications' lease");
        }
    }

    /// Sends the leased notifications of `checker` (see [`AlertHandler::flush_where`]),
    /// recording in `round` what was delivered and what failed.
    ///
    /// # Errors
    /// [`AlertError::Store`] when progress cannot be saved.
    async fn send_leased(
        &self,
        checker: &str,
        leased: Vec<PendingNotification>,
        only: &(dyn Fn(&Target) -> bool + Send + Sync),
        round: &mut Round,
    ) -> Result<(), AlertError> {
        let Round {
            delivered,
            failures,
            blocked,
            ..
        } = round;
        for mut pending in leased {
            let due: Vec<crate::Target> = pending
                .remaining()
                .filter(|t| only(t) && !blocked.contains(&t.id()))
                .cloned()
                .collect();
            let notification = &pending.notification;
            let results = futures::future::join_all(
                due.iter()
                    .map(|target| self.channels.send(notification, target)),
            )
            .await;
            let mut errors = Vec::new();
            for (target, result) in due.iter().zip(results) {
                match result {
                    Ok(()) => {
                        pending.delivered.push(target.id());
                        delivered.push((notification.idempotency_key.clone(), target.id()));
                    }
                    Err(e) if e.permanent => {
                        // Retrying cannot help; holding the checker's later messages back
                        // would only silence it. Report it this once and give the target up.
                        tracing::error!(
                            checker,
                            idempotency_key = %notification.idempotency_key,
                            error = %e,
                            "alert delivery failed permanently; not retried"
                        );
                        pending.abandoned.push(target.id());
                        errors.push(e);
                    }
                    Err(e) => {
                        tracing::warn!(
                            checker,
                            idempotency_key = %notification.idempotency_key,
                            error = %e,
                            "alert delivery failed; will retry"
                        );
                        blocked.insert(target.id());
                        errors.push(e);
                    }
                }
            }
            let key = pending.notification.idempotency_key.clone();
            if pending.remaining().next().is_none() {
                self.store.complete(&key).await?;
            } else if !due.is_empty() {
                if !errors.is_empty() {
                    pending.attempts = pending.attempts.saturating_add(1);
                    pending.last_error = Some(
                        errors
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("; "),
                    );
                }
                self.store.save_progress(&pending).await?;
            }
            failures.extend(errors);
        }
        Ok(())
    }
}

/// How many times one flush leases a checker's notifications again for those enqueued while
/// it sent (by this runner's other tasks or another runner, which left them to it).
const FLUSH_ROUNDS: usize = 4;

/// What one flush did over its rounds.
#[derive(Default)]
struct Round {
    /// Idempotency keys leased so far (each is sent once per flush).
    seen: HashSet<String>,
    /// (idempotency key, target id) pairs delivered.
    delivered: Vec<(String, String)>,
    /// One error per failed (notification, target).
    failures: Vec<ChannelError>,
    /// Targets that failed: their later messages wait, to keep them in order.
    blocked: HashSet<String>,
}

/// The `__EXTRA__` key holding a checker's alert routes.
const ROUTING_KEY: &str = "alert";

/// How many times an event is judged again when other runners keep changing its checker's
/// states under it.
const DECIDE_ATTEMPTS: usize = 8;

/// The error of an event whose checker's states kept changing under it (it is retried).
fn changing(checker: &str) -> AlertError {
    AlertError::Store(AlertStoreError::Backend(format!(
        "alert state of {checker:?} kept changing while it was judged (other runners); \
         will retry"
    )))
}

/// The extra that routes `event`: its own, except for a checker file that failed to load
/// (its event has no `__EXTRA__`), which keeps the last good routing of `source`, so that
/// `SourceError` and the later `SourceRecovered` go to the same place.
fn error_extra(event: &ErrorEvent, source: &SourceState) -> serde_json::Value {
    match (&source.last_routing, event.extra.get(ROUTING_KEY)) {
        (Some(routing), None) if event.kind == ErrorKind::CheckerFile => {
            serde_json::json!({ ROUTING_KEY: routing })
        }
        _ => event.extra.clone(),
    }
}

/// `Some(new)` when it differs from what was stored.
fn changed<T: PartialEq + Default>(before: Option<T>, after: T) -> Option<T> {
    match before {
        Some(before) if before == after => None,
        None if after == T::default() => None,
        _ => Some(after),
    }
}

/// The name of `target` among a check record's delivery targets
/// ([`CheckHandler::targets`]): [`Target::id`], except that a webhook given by URL is named by
/// its origin and a hash of the URL (its path and query often embed a token, and the name is
/// stored and shown), e.g. `webhook:https://hooks.example.com#1a2b3c4d`.
pub fn target_name(target: &Target) -> String {
    if target.channel == crate::ChannelKind::Webhook && target.address.contains("://") {
        let origin = crate::route::url_origin(&target.address);
        format!("webhook:{origin}#{:08x}", fnv1a32(&target.address))
    } else {
        target.id()
    }
}

/// FNV-1a, 32 bits: a hash that stays the same across builds and platforms.
fn fnv1a32(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

/// Per target: the policy runs for every delivery (a replay of a check already judged
/// changes nothing), then the checker's pending notifications go to that target alone, so a
/// target that is down holds back no other one. The first target of a record also retries the
/// notifications owed to targets that are no longer in its routing (failures only logged).
#[async_trait]
impl CheckHandler for AlertHandler {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        self.handle_event(event)
            .await
            .map(|_| ())
            .map_err(|e| HandlerError::new(e.to_string()))
    }

    fn targets(&self, event: &Event) -> Vec<String> {
        match event {
            Event::Check(record) => {
                let (routes, _) = self.routes_logged(&record.checker, &record.extra, false);
                let mut names: Vec<String> = routes.targets.iter().map(target_name).collect();
                names.dedup();
                names
            }
            Event::Error(_) => Vec::new(),
        }
    }

    async fn deliver_to(
        &self,
        target: &str,
        event: &Event,
        failed_attempts: u32,
    ) -> Result<(), HandlerError> {
        let Event::Check(record) = event else {
            return self.handle(event).await;
        };
        let _ = failed_attempts;
        let failed = |e: AlertError| HandlerError::new(e.to_string());
        if let Err(e) = self.apply_reload().await {
            tracing::warn!(error = %e, "cannot move alert states after a reload");
        }
        let checker = record.checker.as_str();
        let (routes, _) = self.routes_logged(checker, &record.extra, true);
        let first = routes.targets.first().map(target_name);
        self.observe_check(record).await.map_err(failed)?;
        if first.as_deref() == Some(target) {
            let routed: Vec<String> = routes.targets.iter().map(target_name).collect();
            let orphan = move |t: &Target| !routed.contains(&target_name(t));
            if let Err(e) = self.flush_where(checker, &orphan).await {
                tracing::warn!(checker, error = %e, "notifications to targets no longer routed");
            }
        }
        let wanted = target.to_string();
        self.flush_where(checker, &move |t: &Target| target_name(t) == wanted)
            .await
            .map(|_| ())
            .map_err(failed)
    }

    async fn gave_up(&self, target: &str, event: &Event) {
        let checker = event.checker();
        let pending = match self.store.pending(checker).await {
            Ok(pending) => pending,
            Err(e) => {
                tracing::warn!(checker, error = %e, "cannot drop the notifications given up");
                return;
            }
        };
        let counts = self.channels.delivery_counts();
        for mut entry in pending {
            let owed: Vec<&Target> = entry
                .remaining()
                .filter(|t| target_name(t) == target)
                .collect();
            for t in &owed {
                counts.count(t.channel, crate::DeliveryResult::GaveUp);
            }
            let owed: Vec<String> = owed.into_iter().map(Target::id).collect();
            if owed.is_empty() {
                continue;
            }
            entry.abandoned.extend(owed);
            let key = entry.notification.idempotency_key.clone();
            let saved = if entry.remaining().next().is_none() {
                self.store.complete(&key).await
            } else {
                self.store.save_progress(&entry).await
            };
            if let Err(e) = saved {
                tracing::warn!(checker, error = %e, "cannot drop a notification given up");
            }
        }
    }
}

/// Moved next to [`CheckHandler`], to `dwmon_core`; still reachable here.
pub use dwmon_core::FanoutHandler;

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Event {
        Event::Check(CheckRecord {
            checker: "orders".into(),
            requirement_index: 0,
            requirement:
                "CHECKHOURS0-23 CHECKMINUTES0-59 WEEKDAYS MINNUM1 MAXNUM9 LOOKBACKSECONDS60".into(),
            minute: 60,
            minute_local: "1970-01-01T00:01:00+00:00".into(),
            timezone: "UTC".into(),
            lookback_seconds: 60,
            count: 0,
            min: 1,
            max: 9,
            status: dwmon_core::Status::Bad,
            extra: serde_json::json!({}),
            monitor: None,
            runs: None,
        })
    }

    /// A channel that fails for now, every time.
    struct Down;

    #[async_trait]
    impl crate::Notifier for Down {
        async fn notify(&self, _: &Notification, address: &str) -> Result<(), ChannelError> {
            Err(ChannelError::new(crate::ChannelKind::Slack, address, "503"))
        }
    }

    #[tokio::test]
    async fn retries_and_a_target_given_up_are_counted_by_channel(
    ) -> Result<(), Box<dyn std::error::Error>> {
        use crate::{ChannelKind, DeliveryResult};
        let channels = Channels::new().with(ChannelKind::Slack, Down);
        let handler = AlertHandler::new(Arc::new(crate::MemoryAlertStore::new()), channels)
            .with_default_routes(Routes {
                targets: vec![crate::Target::new(ChannelKind::Slack, "#ops")],
                repeat_seconds: None,
            });
        let event = record();
        assert!(handler.handle(&event).await.is_err(), "slack is down");
        let slot = |result: DeliveryResult| {
            let position = DeliveryResult::ALL.iter().position(|r| *r == result);
            handler
                .delivery_counts()
                .snapshot()
                .iter()
                .find(|(kind, _)| *kind == ChannelKind::Slack)
                .and_then(|(_, counts)| position.map(|p| counts[p]))
        };
        assert_eq!(slot(DeliveryResult::Retry), Some(1));
        assert_eq!(slot(DeliveryResult::GaveUp), Some(0));
        // The outbox gives the target up: the notification it was owed counts as given up.
        handler.gave_up("slack:#ops", &event).await;
        assert_eq!(slot(DeliveryResult::GaveUp), Some(1));
        assert!(handler.store().pending("orders").await?.is_empty());
        Ok(())
    }

    #[tokio::test]
    async fn a_record_queued_before_its_line_moved_finds_its_lines_state(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let store = Arc::new(crate::MemoryAlertStore::new());
        let handler = AlertHandler::new(
            store.clone(),
            Channels::from_config(&AlertsConfig::default())?,
        )
        .with_default_routes(Routes {
            targets: vec![crate::Target::new(crate::ChannelKind::Log, "")],
            repeat_seconds: None,
        });
        let Event::Check(mut first) = record() else {
            unreachable!("record() is a check")
        };
        first.minute = 0;
        let outcome = handler.handle_event(&Event::Check(first.clone())).await?;
        assert_eq!(outcome.decided.len(), 1, "fires as orders/0");
        // A line was added above: the state moved to index 1.
        let lines = BTreeMap::from([(
            "orders".to_string(),
            vec!["OTHER".to_string(), first.requirement.clone()],
        )]);
        handler.lines_loaded(Reload {
            known: BTreeMap::from([("orders".to_string(), 2)]),
            lines,
        });
        // The retried record of minute 60 still says index 0; it must not fire again.
        let mut queued = first.clone();
        queued.minute = 60;
        let outcome = handler.handle_event(&Event::Check(queued)).await?;
        assert!(outcome.decided.is_empty(), "{:?}", outcome.decided);
        let moved = store.alert_state("orders", 1).await?.expect("moved state");
        assert_eq!(moved.last_minute, Some(60));
        assert_eq!(moved.incident_key.as_deref(), Some("orders/0"));
        assert_eq!(
            store.alert_state("orders", 0).await?.map(|s| s.announced),
            Some(false)
        );
        Ok(())
    }
}
