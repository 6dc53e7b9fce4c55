//! [`Notification`]: what the alert policy (`dwmon_alert::AlertPolicy`) decides to tell people.
//!
//! Its JSON form is the body of the generic webhook and the line the stdout channel prints
//! (documented field by field on [`Notification`]).

use crate::Severity;
use serde::{Deserialize, Serialize};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// A requirement started failing (its FAILAFTER-th consecutive BAD check).
    Firing,
    /// A requirement is still failing; sent every repeat interval.
    Reminder,
    /// A requirement that was announced as firing recovered (RECOVERAFTER consecutive GOOD).
    Resolved,
    /// The checker cannot be evaluated (fetch failed, ...); once per error streak.
    SourceError,
    /// The checker can be evaluated again after a [`NotificationKind::SourceError`].
    SourceRecovered,
    /// Some of the checker's check records could not be delivered to a target for longer
    /// than the give-up age and were given up for it (an `ERROR` event of kind
    /// `delivery_given_up`); sent to the default route, once per give-up.
    DeliveryGivenUp,
}

impl NotificationKind {
    /// `firing`, `reminder`, `resolved`, `source_error`, `source_recovered` or
    /// `delivery_given_up`.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::Firing => "firing",
            NotificationKind::Reminder => "reminder",
            NotificationKind::Resolved => "resolved",
            NotificationKind::SourceError => "source_error",
            NotificationKind::SourceRecovered => "source_recovered",
            NotificationKind::DeliveryGivenUp => "delivery_given_up",
        }
    }

    /// True for the kinds that announce a problem (firing, reminder, source error, delivery
    /// given up).
    pub fn is_problem(self) -> bool {
        matches!(
            self,
            NotificationKind::Firing
                | NotificationKind::Reminder
                | NotificationKind::SourceError
                | NotificationKind::DeliveryGivenUp
        )
    }
}

impl std::fmt::Display for NotificationKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One message to send. Serialized (JSON) it is the webhook body and the stdout line:
///
/// ```json
/// {"version":1,"idempotency_key":"orders/0/1700000040/firing","kind":"firing",
///  "incident_key":"orders/0","event_key":"orders/0/1700000040","checker":"orders",
///  "severity":"critical","at":1700000040,"minute":1700000040,
///  "minute_local":"2023-11-14T22:14:00+00:00","timezone":"UTC","since":1700000040,
///  "requirement_index":0,"requirement":"CHECKHOURS0-23 ...","count":0,"min":1,"max":10,
///  "lookback_seconds":60}
/// ```
///
/// Requirement fields are absent for source notifications, which carry `error` instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Version of this JSON shape (1).
    pub version: u32,
    /// Unique per message, stable across retries: `<event_key>/<kind>`. Receivers
    /// deduplicate on it (also sent as the `Idempotency-Key` HTTP header).
    pub idempotency_key: String,
    /// What happened.
    pub kind: NotificationKind,
    /// Identifies the incident across its firing, reminders and resolution:
    /// `checker/requirement_index`, or `checker/source` for source errors (PagerDuty's
    /// `dedup_key`).
    pub incident_key: String,
    /// Idempotency key of the check record or error event that caused this message
    /// (`checker/requirement_index/minute` or `checker/error/minute`).
    pub event_key: String,
    /// Checker name.
    pub checker: String,
    /// The requirement's severity (source errors are `critical`).
    pub severity: Severity,
    /// The policy's `now` when the message was decided (epoch seconds).
    pub at: i64,
    /// The checked minute of the causing event (epoch seconds).
    pub minute: i64,
    /// That minute as RFC 3339 in the checker's zone.
    pub minute_local: String,
    /// The checker's IANA zone.
    pub timezone: String,
    /// When the incident began (first BAD check of the firing streak, or first error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<i64>,
    /// Requirement index (requirement notifications only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requirement_index: Option<usize>,
    /// Requirement text (requirement notifications only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requirement: Option<String>,
    /// The count of the causing check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// `MINNUM`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<u64>,
    /// `MAXNUM`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u64>,
    /// The window length in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookback_seconds: Option<u64>,
    /// The error text (source notifications only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A monitor's message, value and counts (notifications of a monitor's checks only; the
    /// checker is then `monitor:NAME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor: Option<crate::MonitorReport>,
    /// Why the run-duration bounds made the check BAD (the check's
    /// [`CheckRecord::runs`](crate::CheckRecord::runs)), for a check's notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runs: Option<crate::runs::RunsReport>,
    /// How many checks failed during the incident a `resolved` ends: the BAD checks of the
    /// streak that fired and every BAD check until the recovery (`resolved` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_checks: Option<u64>,
}

impl Notification {
    /// One readable line: `FIRING [critical] orders #0: count 0 not in 1..=10 over the last
    /// 60 s at 2023-11-14T22:14:00+00:00 (UTC)`; a `resolved` ends with how many checks
    /// failed (`... (UTC) after 3 failed checks`).
    pub fn summary(&self) -> String {
        let line = self.summary_line();
        match self.failed_checks {
            Some(1) => format!("{line} after 1 failed check"),
            Some(n) => format!("{line} after {n} failed checks"),
            None => line,
        }
    }

    fn summary_line(&self) -> String {
        let head = format!(
            "{} [{}] {}",
            self.kind.as_str().to_uppercase(),
            self.severity,
            self.checker
        );
        let when = format!("at {} ({})", self.minute_local, self.timezone);
        match self.kind {
            NotificationKind::SourceError => format!(
                "{head}: cannot be checked: {} {when}",
                self.error.as_deref().unwrap_or("unknown error")
            ),
            NotificationKind::SourceRecovered => format!("{head}: can be checked again {when}"),
            NotificationKind::Firing | NotificationKind::Reminder | NotificationKind::Resolved
                if self.monitor.is_some() =>
            {
                let message = self.monitor.as_ref().map_or("", |m| m.message.as_str());
                format!("{head}: {message} {when}")
            }
            NotificationKind::DeliveryGivenUp => format!(
                "{head}: {} {when}",
                self.error.as_deref().unwrap_or("deliveries given up")
            ),
            NotificationKind::Firing | NotificationKind::Reminder | NotificationKind::Resolved => {
                let index = self.requirement_index.unwrap_or(0);
                let verb = if self.kind == NotificationKind::Resolved {
                    "in"
                } else {
                    "not in"
                };
                let counted = format!(
                    "count {} {verb} {}..={} over the last {} s",
                    self.count.unwrap_or(0),
                    self.min.unwrap_or(0),
                    self.max.unwrap_or(0),
                    self.lookback_seconds.unwrap_or(0),
                );
                match &self.runs {
                    // The count may be fine: the runs say what is wrong.
                    Some(runs) => format!("{head} #{index}: {}; {counted} {when}", runs.message),
                    None => format!("{head} #{index}: {counted} {when}"),
                }
            }
        }
    }
}
