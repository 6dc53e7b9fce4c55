//! The Slack channel: a readable message through an incoming webhook.

use super::{local_time, post_json, render_link, ChannelError, Notifier};
use crate::config::{Secret, SlackConfig};
use crate::notification::{Notification, NotificationKind};
use crate::route::ChannelKind;
use async_trait::async_trait;
use serde_json::{json, Value};

/// Posts to a Slack incoming webhook. The address is a channel name (`#data`): its own
/// webhook URL from `slack.channels` if configured, else `slack.webhook_url` with
/// `"channel"` set in the payload. The body is [`slack_body`].
#[derive(Debug, Clone)]
pub struct SlackNotifier {
    client: reqwest::Client,
    config: SlackConfig,
    link_template: Option<String>,
}

impl SlackNotifier {
    /// A notifier using `client` (which carries the timeout).
    pub fn new(
        client: reqwest::Client,
        config: SlackConfig,
        link_template: Option<String>,
    ) -> Self {
        SlackNotifier {
            client,
            config,
            link_template,
        }
    }
}

/// The Slack payload: `{"text": ..., "channel": ...}` (`channel` only when given), e.g.
///
/// ```text
/// :rotating_light: *FIRING* (critical) `orders` requirement #0
/// count 0, expected 1..=10 in the 60 s before 2023-11-14 22:14 +00:00 (UTC)
/// failing since 2023-11-14 22:12 UTC
/// <https://grafana.example.com/d/dwmon?var-checker=orders|details>
/// key: orders/0/1700000040/firing
/// ```
pub fn slack_body(notification: &Notification, channel: Option<&str>, link: Option<&str>) -> Value {
    let n = notification;
    let (icon, title) = match n.kind {
        NotificationKind::Firing => (":rotating_light:", "FIRING"),
        NotificationKind::Reminder => (":bell:", "STILL FIRING"),
        NotificationKind::Resolved => (":white_check_mark:", "RESOLVED"),
        NotificationKind::SourceError => (":warning:", "SOURCE ERROR"),
        NotificationKind::SourceRecovered => (":white_check_mark:", "SOURCE RECOVERED"),
        NotificationKind::DeliveryGivenUp => (":warning:", "DELIVERY GIVEN UP"),
    };
    let mut lines = Vec::new();
    match n.requirement_index {
        Some(index) => lines.push(format!(
            "{icon} *{title}* ({}) `{}` requirement #{index}",
            n.severity, n.checker
        )),
        None => lines.push(format!("{icon} *{title}* ({}) `{}`", n.severity, n.checker)),
    }
    let when = local_time(n);
    match (n.count, n.min, n.max, n.lookback_seconds) {
        (Some(count), Some(min), Some(max), Some(lookback)) => lines.push(format!(
            "count {count}, expected {min}..={max} in the {lookback} s before {when}"
        )),
        _ => lines.push(format!("at {when}")),
    }
    if let Some(runs) = &n.runs {
        lines.push(runs.message.clone());
    }
    if let Some(error) = &n.error {
        lines.push(format!("error: {error}"));
    }
    if let Some(since) = n.since.and_then(|s| chrono::DateTime::from_timestamp(s, 0)) {
        let label = if n.kind == NotificationKind::SourceError {
            "failing since"
        } else {
            "firing since"
        };
        lines.push(format!("{label} {}", since.format("%Y-%m-%d %H:%M UTC")));
    }
    if let Some(failed) = n.failed_checks {
        lines.push(format!("failed checks: {failed}"));
    }
    if let Some(link) = link {
        lines.push(format!("<{link}|details>"));
    }
    lines.push(format!("key: {}", n.idempotency_key));
    let mut body = json!({ "text": lines.join("\n") });
    if let Some(channel) = channel {
        body["channel"] = Value::String(channel.to_string());
    }
    body
}

#[async_trait]
impl Notifier for SlackNotifier {
    async fn notify(&self, notification: &Notification, address: &str) -> Result<(), ChannelError> {
        let error = |message: String| ChannelError::permanent(ChannelKind::Slack, address, message);
        let (url, channel) = match self.config.channels.get(address) {
            Some(url) => (url.expose(), None),
            None => {
                let url = self
                    .config
                    .webhook_url
                    .as_ref()
                    .map(Secret::expose)
                    .ok_or_else(|| {
                        error("no webhook URL for this channel and no slack.webhook_url".into())
                    })?;
                (url, (!address.is_empty()).then_some(address))
            }
        };
        let link = self
            .link_template
            .as_deref()
            .map(|t| render_link(t, notification));
        let body = slack_body(notification, channel, link.as_deref());
        post_json(
            &self.client,
            url,
            &body,
            &notification.idempotency_key,
            (ChannelKind::Slack, address),
        )
        .await
    }
}
