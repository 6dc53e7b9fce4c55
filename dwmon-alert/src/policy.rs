//! [`AlertPolicy`]: the pure state machine turning check records and error events into
//! [`Notification`]s. No I/O, no clock: `now` is a parameter.
//!
//! Per requirement:
//!
//! - OK -> FIRING on the FAILAFTER-th consecutive BAD check; FIRING -> OK on the
//!   RECOVERAFTER-th consecutive GOOD check.
//! - While not paused, notifications reconcile what was announced with the phase:
//!   FIRING and not announced -> `Firing`; FIRING, announced and `repeat` elapsed since the
//!   last message -> `Reminder`; OK and announced -> `Resolved`.
//! - While paused the phase still follows the checks but nothing is sent; when the pause
//!   ends, the next check sends whatever the truth then requires (so a resolution that
//!   happened during the pause is still announced, and a streak that started and ended inside
//!   it is never announced at all).
//!
//! Per checker (the source): the first error event of a streak -> `SourceError`; the first
//! check record of a minute after the latest error -> `SourceRecovered` (if the error was
//! announced).
//!
//! A check whose minute is not after the latest applied minute is a redelivery and changes
//! nothing, so the at-least-once outbox never produces duplicate notifications.

use crate::notification::{Notification, NotificationKind};
use crate::rule::{AlertRule, Severity};
use crate::state::{is_paused, AlertPhase, AlertState, Pause, SourceState};
use dwmon_core::{CheckRecord, ErrorEvent, Status};

/// The alerting policy of one checker: its reminder interval.
///
/// ```
/// use dwmon_alert::{AlertPolicy, AlertRule, AlertState, NotificationKind};
/// # let record = |minute: i64, status| dwmon_core::CheckRecord {
/// #     checker: "orders".into(), requirement_index: 0, requirement: String::new(),
/// #     minute, minute_local: String::new(), timezone: "UTC".into(), lookback_seconds: 60,
/// #     count: 0, min: 1, max: 10, status, extra: serde_json::json!({}),
/// #     monitor: None, runs: None,
/// # };
/// use dwmon_core::Status::{Bad, Good};
///
/// let policy = AlertPolicy::new(3600);
/// let rule = AlertRule { fail_after: 2, ..AlertRule::default() };
/// let mut state = AlertState::default();
/// let mut kinds = Vec::new();
/// for (minute, status) in [(0, Bad), (60, Bad), (120, Bad), (3720, Bad), (3780, Good)] {
///     if let Some(n) = policy.on_check(&mut state, &rule, &record(minute, status), None, minute) {
///         kinds.push(n.kind);
///     }
/// }
/// use NotificationKind::*;
/// assert_eq!(kinds, [Firing, Reminder, Resolved]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertPolicy {
    /// Seconds between reminders while firing; 0 = no reminders.
    pub repeat_seconds: u64,
}

impl Default for AlertPolicy {
    fn default() -> Self {
        AlertPolicy {
            repeat_seconds: AlertPolicy::DEFAULT_REPEAT_SECONDS,
        }
    }
}

impl AlertPolicy {
    /// The default reminder interval: 4 hours.
    pub const DEFAULT_REPEAT_SECONDS: u64 = 4 * 60 * 60;

    /// A policy reminding every `repeat_seconds` (0 = never).
    pub fn new(repeat_seconds: u64) -> Self {
        AlertPolicy { repeat_seconds }
    }

    /// Applies one check record of requirement `record.requirement_index` to its `state`.
    /// Returns the notification to send, if any.
    pub fn on_check(
        &self,
        state: &mut AlertState,
        rule: &AlertRule,
        record: &CheckRecord,
        pause: Option<&Pause>,
        now: i64,
    ) -> Option<Notification> {
        self.on_check_held(state, rule, record, pause, false, now)
    }

    /// [`AlertPolicy::on_check`] for a checker whose parent is BAD or ERROR when `held`
    /// (docs/ALERTING.md, "Dependencies"): the state follows the check as always, but a
    /// `Firing` or `Reminder` is held back (the record is kept in [`AlertState::held`]);
    /// a `Resolved` of an alert that was announced is always sent.
    ///
    /// ```
    /// use dwmon_alert::{AlertPolicy, AlertRule, AlertState, NotificationKind};
    /// # let record = |minute: i64, status| dwmon_core::CheckRecord {
    /// #     checker: "orders".into(), requirement_index: 0, requirement: String::new(),
    /// #     minute, minute_local: String::new(), timezone: "UTC".into(), lookback_seconds: 60,
    /// #     count: 0, min: 1, max: 10, status, extra: serde_json::json!({"parent": "db"}),
    /// #     monitor: None, runs: None,
    /// # };
    /// use dwmon_core::Status::Bad;
    /// let policy = AlertPolicy::new(0);
    /// let mut state = AlertState::default();
    /// let held = policy.on_check_held(&mut state, &AlertRule::default(), &record(60, Bad), None, true, 60);
    /// assert!(held.is_none() && state.held.is_some());
    /// // The parent recovered with this line still firing: announced now.
    /// let released = policy.release(&mut state, None, 180).map(|n| n.kind);
    /// assert_eq!(released, Some(NotificationKind::Firing));
    /// ```
    pub fn on_check_held(
        &self,
        state: &mut AlertState,
        rule: &AlertRule,
        record: &CheckRecord,
        pause: Option<&Pause>,
        held: bool,
        now: i64,
    ) -> Option<Notification> {
        if state.last_minute.is_some_and(|last| record.minute <= last) {
            return None;
        }
        state.last_minute = Some(record.minute);
        if record.status == Status::Missed {
            // No count was made: nothing to judge, no streak starts or ends.
            return None;
        }
        state.last_count = Some(record.count);
        state.severity = rule.severity;
        match record.status {
            Status::Bad => {
                if state.consecutive_bad == 0 {
                    state.bad_since = Some(record.minute);
                }
                state.consecutive_bad = state.consecutive_bad.saturating_add(1);
                state.consecutive_good = 0;
                if state.phase == AlertPhase::Firing {
                    state.failed_checks = state.failed_checks.saturating_add(1);
                }
            }
            Status::Good => {
                state.consecutive_good = state.consecutive_good.saturating_add(1);
                state.consecutive_bad = 0;
                state.bad_since = None;
            }
            // Check records are never ERROR; one that is judges nothing.
            Status::Error | Status::Missed => return None,
        }
        match state.phase {
            AlertPhase::Ok if state.consecutive_bad >= rule.fail_threshold() => {
                state.phase = AlertPhase::Firing;
                state.firing_since = state.bad_since;
                // A new incident counts the streak that opened it (an unannounced earlier
                // one, recovered during a pause, is not reported).
                if !state.announced {
                    state.failed_checks = 0;
                }
                state.failed_checks = state.failed_checks.saturating_add(state.consecutive_bad);
            }
            AlertPhase::Firing if state.consecutive_good >= rule.recover_threshold() => {
                state.phase = AlertPhase::Ok;
                state.firing_since = None;
            }
            _ => {}
        }
        state.held = (held && state.phase == AlertPhase::Firing && !state.announced)
            .then(|| Box::new(record.clone()));
        if is_paused(pause, now) {
            return None;
        }
        if held && !(state.phase == AlertPhase::Ok && state.announced) {
            // Only a recovery of what paged goes out while the parent is down.
            return None;
        }
        self.announce(state, rule.severity, record, now)
    }

    /// Announces a held `Firing` ([`AlertState::held`]) once the parent recovered: when the
    /// requirement is still FIRING, not announced and not paused. Returns `None` otherwise
    /// (the held record is dropped when the streak ended while held: nobody was paged).
    pub fn release(
        &self,
        state: &mut AlertState,
        pause: Option<&Pause>,
        now: i64,
    ) -> Option<Notification> {
        if state.phase != AlertPhase::Firing || state.announced {
            state.held = None;
            return None;
        }
        if is_paused(pause, now) {
            return None;
        }
        let record = state.held.take()?;
        self.announce(state, state.severity, &record, now)
    }

    /// The notification the state owes the outside world after `record`, if any, and the
    /// state's record of it (announced, last notified, incident key).
    fn announce(
        &self,
        state: &mut AlertState,
        severity: Severity,
        record: &CheckRecord,
        now: i64,
    ) -> Option<Notification> {
        state.held = None;
        let kind = match (state.phase, state.announced) {
            (AlertPhase::Firing, false) => NotificationKind::Firing,
            (AlertPhase::Firing, true) if self.reminder_due(state.last_notified, now) => {
                NotificationKind::Reminder
            }
            (AlertPhase::Ok, true) => NotificationKind::Resolved,
            _ => return None,
        };
        let since = match kind {
            NotificationKind::Resolved => None,
            _ => state.firing_since,
        };
        let incident_key = state
            .incident_key
            .clone()
            .unwrap_or_else(|| incident_key(record));
        let failed_checks = match kind {
            NotificationKind::Resolved => Some(u64::from(std::mem::take(&mut state.failed_checks))),
            _ => None,
        };
        if kind == NotificationKind::Resolved {
            state.announced = false;
            state.last_notified = None;
            state.incident_key = None;
        } else {
            state.announced = true;
            state.last_notified = Some(now);
            state.incident_key = Some(incident_key.clone());
        }
        let mut notification = check_notification(kind, severity, record, since, now);
        notification.incident_key = incident_key;
        notification.failed_checks = failed_checks;
        Some(notification)
    }

    /// Applies an error event to the checker's source `state`. Returns `SourceError` for the
    /// first error of a streak (when not paused and not yet announced).
    pub fn on_error(
        &self,
        state: &mut SourceState,
        event: &ErrorEvent,
        pause: Option<&Pause>,
        now: i64,
    ) -> Option<Notification> {
        self.on_error_held(state, event, pause, false, now)
    }

    /// [`AlertPolicy::on_error`] for a checker whose parent is BAD or ERROR when `held`: the
    /// streak is followed but not announced; the checker's next error once nothing holds it
    /// announces it (a `SourceRecovered` is sent only for a streak that was announced).
    pub fn on_error_held(
        &self,
        state: &mut SourceState,
        event: &ErrorEvent,
        pause: Option<&Pause>,
        held: bool,
        now: i64,
    ) -> Option<Notification> {
        if state
            .last_error_minute
            .is_some_and(|last| event.minute < last)
        {
            return None;
        }
        state.last_error_minute = Some(event.minute);
        state.last_error = Some(event.error.clone());
        if !state.failing {
            state.failing = true;
            state.since = Some(event.minute);
        }
        if is_paused(pause, now) || state.announced || held {
            return None;
        }
        state.announced = true;
        let origin = Origin {
            checker: &event.checker,
            event_key: event.idempotency_key(),
            minute: event.minute,
            minute_local: &event.minute_local,
            timezone: &event.timezone,
        };
        Some(source_notification(
            NotificationKind::SourceError,
            origin,
            state.since,
            Some(event.error.clone()),
            now,
        ))
    }

    /// Applies a successful check to the checker's source `state`: a check of a minute after
    /// the latest error ends the streak. Returns `SourceRecovered` when an announced streak
    /// is over (and the checker is not paused).
    pub fn on_source_ok(
        &self,
        state: &mut SourceState,
        record: &CheckRecord,
        pause: Option<&Pause>,
        now: i64,
    ) -> Option<Notification> {
        if state.failing && error_before(state.last_error_minute, record.minute) {
            state.failing = false;
            state.since = None;
        }
        if state.failing || !state.announced || is_paused(pause, now) {
            return None;
        }
        state.announced = false;
        let origin = Origin {
            checker: &record.checker,
            event_key: record.idempotency_key(),
            minute: record.minute,
            minute_local: &record.minute_local,
            timezone: &record.timezone,
        };
        Some(source_notification(
            NotificationKind::SourceRecovered,
            origin,
            None,
            state.last_error.clone(),
            now,
        ))
    }

    /// An `ERROR` event of kind `delivery_given_up`: one
    /// [`NotificationKind::DeliveryGivenUp`] (incident key `checker/delivery`) unless the
    /// checker is paused. It neither starts nor ends a source error streak.
    pub fn on_delivery_given_up(
        &self,
        event: &ErrorEvent,
        pause: Option<&Pause>,
        now: i64,
    ) -> Option<Notification> {
        if is_paused(pause, now) {
            return None;
        }
        let origin = Origin {
            checker: &event.checker,
            event_key: event.idempotency_key(),
            minute: event.minute,
            minute_local: &event.minute_local,
            timezone: &event.timezone,
        };
        let mut notification = source_notification(
            NotificationKind::DeliveryGivenUp,
            origin,
            None,
            Some(event.error.clone()),
            now,
        );
        notification.incident_key = format!("{}/delivery", event.checker);
        Some(notification)
    }

    fn reminder_due(&self, last_notified: Option<i64>, now: i64) -> bool {
        if self.repeat_seconds == 0 {
            return false;
        }
        let repeat = i64::try_from(self.repeat_seconds).unwrap_or(i64::MAX);
        match last_notified {
            None => true,
            Some(last) => now.saturating_sub(last) >= repeat,
        }
    }
}

/// The incident key a requirement's alert opens with: `checker/<ALERTKEY>` for a line with
/// that option, else `checker/<requirement_index>`. Once opened, an incident keeps its key
/// (stored in the [`AlertState`]) until it is resolved, wherever its line moves.
pub fn incident_key(record: &CheckRecord) -> String {
    match alert_key(&record.requirement) {
        Some(key) => format!("{}/{key}", record.checker),
        None => format!("{}/{}", record.checker, record.requirement_index),
    }
}

/// The `ALERTKEY` of a canonical requirement text, if it has one.
pub fn alert_key(requirement: &str) -> Option<String> {
    requirement
        .split_whitespace()
        .find_map(|token| token.strip_prefix("ALERTKEY"))
        .filter(|key| !key.is_empty())
        .map(str::to_string)
}

/// `checker/source`: the incident key of a checker's source errors.
pub fn source_incident_key(checker: &str) -> String {
    format!("{checker}/source")
}

/// True when no error was seen or the latest error is before `minute`.
fn error_before(last_error_minute: Option<i64>, minute: i64) -> bool {
    match last_error_minute {
        None => true,
        Some(last) => last < minute,
    }
}

/// The event a source notification is about.
struct Origin<'a> {
    checker: &'a str,
    event_key: String,
    minute: i64,
    minute_local: &'a str,
    timezone: &'a str,
}

fn source_notification(
    kind: NotificationKind,
    origin: Origin<'_>,
    since: Option<i64>,
    error: Option<String>,
    now: i64,
) -> Notification {
    Notification {
        version: 1,
        idempotency_key: format!("{}/{kind}", origin.event_key),
        kind,
        incident_key: source_incident_key(origin.checker),
        event_key: origin.event_key,
        checker: origin.checker.to_string(),
        severity: Severity::Critical,
        at: now,
        minute: origin.minute,
        minute_local: origin.minute_local.to_string(),
        timezone: origin.timezone.to_string(),
        since,
        requirement_index: None,
        requirement: None,
        count: None,
        min: None,
        max: None,
        lookback_seconds: None,
        error,
        monitor: None,
        runs: None,
        failed_checks: None,
    }
}

fn check_notification(
    kind: NotificationKind,
    severity: Severity,
    record: &CheckRecord,
    since: Option<i64>,
    now: i64,
) -> Notification {
    let event_key = record.idempotency_key();
    Notification {
        version: 1,
        idempotency_key: format!("{event_key}/{kind}"),
        kind,
        incident_key: format!("{}/{}", record.checker, record.requirement_index),
        event_key,
        checker: record.checker.clone(),
        severity,
        at: now,
        minute: record.minute,
        minute_local: record.minute_local.clone(),
        timezone: record.timezone.clone(),
        since,
        requirement_index: Some(record.requirement_index),
        requirement: Some(record.requirement.clone()),
        count: Some(record.count),
        min: Some(record.min),
        max: Some(record.max),
        lookback_seconds: Some(record.lookback_seconds),
        error: None,
        monitor: record.monitor.clone(),
        runs: record.runs.clone(),
        failed_checks: None,
    }
}
