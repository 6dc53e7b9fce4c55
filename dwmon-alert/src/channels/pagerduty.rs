//! The PagerDuty channel: Events API v2.

use super::{post_json, ChannelError, Notifier};
use crate::config::{PagerDutyConfig, Secret};
use crate::notification::{Notification, NotificationKind};
use crate::route::ChannelKind;
use crate::rule::Severity;
use async_trait::async_trait;
use serde_json::{json, Value};

/// Sends PagerDuty Events API v2 events. The address is a service name from the alerts
/// config's `pagerduty.services` (which holds the routing key). Body: [`pagerduty_body`].
#[derive(Debug, Clone)]
pub struct PagerDutyNotifier {
    client: reqwest::Client,
    config: PagerDutyConfig,
}

impl PagerDutyNotifier {
    /// A notifier using `client` (which carries the timeout).
    pub fn new(client: reqwest::Client, config: PagerDutyConfig) -> Self {
        PagerDutyNotifier { client, config }
    }
}

/// The Events API v2 body. `Firing`, `SourceError` and `DeliveryGivenUp` (dedup key
/// `checker/delivery`, resolved by hand) trigger, `Resolved` and
/// `SourceRecovered` resolve, always with `dedup_key` = the incident key
/// (`checker/requirement_index` or `checker/source`), so PagerDuty deduplicates. `Reminder`
/// maps to `None`: PagerDuty escalates open incidents itself.
pub fn pagerduty_body(notification: &Notification, routing_key: &str) -> Option<Value> {
    let n = notification;
    let action = match n.kind {
        NotificationKind::Firing
        | NotificationKind::SourceError
        | NotificationKind::DeliveryGivenUp => "trigger",
        NotificationKind::Resolved | NotificationKind::SourceRecovered => "resolve",
        NotificationKind::Reminder => return None,
    };
    let mut body = json!({
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": n.incident_key,
    });
    if action == "trigger" {
        // The documented mapping: a notification's severity (source errors are critical).
        let severity = match n.severity {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        };
        let timestamp = chrono::DateTime::from_timestamp(n.minute, 0)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default();
        body["payload"] = json!({
            "summary": n.summary(),
            "source": "dwmon",
            "severity": severity,
            "timestamp": timestamp,
            "component": n.checker,
            "group": n.incident_key,
            "class": n.kind.as_str(),
            "custom_details": {
                "idempotency_key": n.idempotency_key,
                "requirement": n.requirement,
                "count": n.count,
                "min": n.min,
                "max": n.max,
                "lookback_seconds": n.lookback_seconds,
                "minute_local": n.minute_local,
                "error": n.error,
            },
        });
    }
    Some(body)
}

#[async_trait]
impl Notifier for PagerDutyNotifier {
    async fn notify(&self, notification: &Notification, address: &str) -> Result<(), ChannelError> {
        let error =
            |message: String| ChannelError::permanent(ChannelKind::Pagerduty, address, message);
        let routing_key = self
            .config
            .services
            .get(address)
            .map(Secret::expose)
            .ok_or_else(|| {
                error(format!(
                    "no PagerDuty service named {address:?} in the alerts config"
                ))
            })?;
        let Some(body) = pagerduty_body(notification, routing_key) else {
            return Ok(());
        };
        let url = self
            .config
            .events_url
            .as_deref()
            .unwrap_or(PagerDutyConfig::DEFAULT_EVENTS_URL);
        post_json(
            &self.client,
            url,
            &body,
            &notification.idempotency_key,
            (ChannelKind::Pagerduty, address),
        )
        .await
    }
}
