//! Notification channels: the [`Notifier`] trait, one implementation per channel, and
//! [`Channels`], which routes a [`Notification`] to the notifier of each [`Target`].

mod email;
mod log;
mod pagerduty;
mod slack;
mod stdout;
mod webhook;

pub use email::EmailNotifier;
pub use log::LogNotifier;
pub use pagerduty::{pagerduty_body, PagerDutyNotifier};
pub use slack::{slack_body, SlackNotifier};
pub use stdout::StdoutNotifier;
pub use webhook::WebhookNotifier;

use crate::config::{redact, AlertsConfig, ConfigError};
use crate::deliveries::{DeliveryCounts, DeliveryResult};
use crate::notification::Notification;
use crate::route::{ChannelKind, Target};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A channel could not deliver a notification. The message never contains secrets (webhook
/// URLs are cut to their origin, known secret values are redacted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {}{}", .target, .message, if *.permanent { " (permanent, not retried)" } else { "" })]
pub struct ChannelError {
    /// The channel.
    pub channel: ChannelKind,
    /// The target, safe for display ([`Target::display_safe`]).
    pub target: String,
    /// What went wrong.
    pub message: String,
    /// Retrying cannot help (channel not configured, unknown service name, invalid address,
    /// HTTP 4xx such as 400/401/403/404, SMTP 5xx): the target is given up for this message
    /// instead of holding back the checker's later notifications.
    pub permanent: bool,
}

impl ChannelError {
    /// A transient error of `channel` for `address` (webhook URLs are cut to their origin).
    pub fn new(channel: ChannelKind, address: &str, message: impl Into<String>) -> Self {
        ChannelError {
            channel,
            target: Target::new(channel, address).display_safe(),
            message: message.into(),
            permanent: false,
        }
    }

    /// A permanent error: retrying the same message cannot succeed.
    pub fn permanent(channel: ChannelKind, address: &str, message: impl Into<String>) -> Self {
        ChannelError {
            permanent: true,
            ..ChannelError::new(channel, address, message)
        }
    }
}

/// Sends notifications over one channel.
///
/// `address` is the target's address within the channel (an email address, a Slack channel,
/// a PagerDuty service name, a webhook URL or name; empty for stdout and log). Implement it to
/// add a channel or to replace one in tests:
///
/// ```
/// use async_trait::async_trait;
/// use dwmon_alert::{ChannelError, Notification, Notifier};
///
/// struct Sms;
///
/// #[async_trait]
/// impl Notifier for Sms {
///     async fn notify(&self, notification: &Notification, address: &str) -> Result<(), ChannelError> {
///         println!("SMS to {address}: {}", notification.summary());
///         Ok(())
///     }
/// }
/// # let _: &dyn Notifier = &Sms;
/// ```
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Delivers `notification` to `address`.
    ///
    /// # Errors
    /// A [`ChannelError`] (without secrets) when the message was not accepted; it is retried.
    async fn notify(&self, notification: &Notification, address: &str) -> Result<(), ChannelError>;
}

#[async_trait]
impl<T: Notifier + ?Sized> Notifier for Arc<T> {
    async fn notify(&self, notification: &Notification, address: &str) -> Result<(), ChannelError> {
        (**self).notify(notification, address).await
    }
}

#[async_trait]
impl<T: Notifier + ?Sized> Notifier for Box<T> {
    async fn notify(&self, notification: &Notification, address: &str) -> Result<(), ChannelError> {
        (**self).notify(notification, address).await
    }
}

/// The notifier of each channel kind, plus the secrets to redact from their errors.
///
/// ```
/// use dwmon_alert::{AlertsConfig, Channels, ChannelKind};
/// let channels = Channels::from_config(&AlertsConfig::default())?;
/// assert!(channels.has(ChannelKind::Stdout) && channels.has(ChannelKind::Log));
/// assert!(!channels.has(ChannelKind::Email)); // no SMTP configured
/// # Ok::<(), dwmon_alert::ConfigError>(())
/// ```
#[derive(Clone, Default)]
pub struct Channels {
    notifiers: BTreeMap<ChannelKind, Arc<dyn Notifier>>,
    secrets: Vec<String>,
    counts: Arc<DeliveryCounts>,
}

impl std::fmt::Debug for Channels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channels")
            .field("channels", &self.notifiers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Channels {
    /// No channel at all (add them with [`Channels::with`]).
    pub fn new() -> Self {
        Channels::default()
    }

    /// Every channel the config enables: stdout, log and webhook always; Slack, PagerDuty and
    /// email when their section is present.
    ///
    /// `tls_ca_file`, when set, is read here and trusted by the HTTP client and by SMTP in
    /// addition to the bundled roots.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] when a channel cannot be set up (bad SMTP sender or host, HTTP
    /// client failure); [`ConfigError::TlsCa`] when `tls_ca_file` is unusable.
    pub fn from_config(config: &AlertsConfig) -> Result<Self, ConfigError> {
        let tls_ca = config.tls_ca()?;
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout())
            .user_agent(concat!("dwmon/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &tls_ca {
            for certificate in ca.http_certificates()? {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let client = builder.build().map_err(|e| match &tls_ca {
            // The roots are parsed here: a PEM block that is not an X.509 certificate.
            Some(ca) => ca.error(format!("unusable certificate: {}", error_chain(&e))),
            None => ConfigError::Invalid {
                path: "alerts config".into(),
                field: "http client".into(),
                message: error_chain(&e),
            },
        })?;
        let mut channels = Channels::new()
            .with(ChannelKind::Stdout, StdoutNotifier::stdout())
            .with(ChannelKind::Log, LogNotifier)
            .with(
                ChannelKind::Webhook,
                WebhookNotifier::new(client.clone(), config.webhooks.clone()),
            );
        if let Some(slack) = &config.slack {
            let notifier =
                SlackNotifier::new(client.clone(), slack.clone(), config.link_template.clone());
            channels = channels.with(ChannelKind::Slack, notifier);
        }
        if let Some(pagerduty) = &config.pagerduty {
            channels = channels.with(
                ChannelKind::Pagerduty,
                PagerDutyNotifier::new(client, pagerduty.clone()),
            );
        }
        if let Some(smtp) = &config.smtp {
            let notifier = EmailNotifier::new(
                smtp,
                config.timeout(),
                config.link_template.clone(),
                tls_ca.as_ref(),
            )?;
            channels = channels.with(ChannelKind::Email, notifier);
        }
        channels.secrets = config.secret_values();
        Ok(channels)
    }

    /// Sets (or replaces) the notifier of `kind`.
    pub fn with(mut self, kind: ChannelKind, notifier: impl Notifier + 'static) -> Self {
        self.notifiers.insert(kind, Arc::new(notifier));
        self.counts.add_channel(kind);
        self
    }

    /// The deliveries [`Channels::send`] counted (shared: clones of these channels count
    /// into the same).
    pub fn delivery_counts(&self) -> Arc<DeliveryCounts> {
        Arc::clone(&self.counts)
    }

    /// Adds secret values to redact from channel errors.
    pub fn with_secrets(mut self, secrets: impl IntoIterator<Item = String>) -> Self {
        self.secrets
            .extend(secrets.into_iter().filter(|s| !s.is_empty()));
        self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        self.secrets.dedup();
        self
    }

    /// Whether a notifier is set for `kind`.
    pub fn has(&self, kind: ChannelKind) -> bool {
        self.notifiers.contains_key(&kind)
    }

    /// Sends `notification` to `target` through its channel's notifier, and counts the
    /// result in [`Channels::delivery_counts`]: delivered, retry (a transient error) or
    /// gave up (a permanent one, or a channel without a notifier).
    ///
    /// # Errors
    /// The channel's error (secrets redacted), or a "not configured" error.
    pub async fn send(
        &self,
        notification: &Notification,
        target: &Target,
    ) -> Result<(), ChannelError> {
        let Some(notifier) = self.notifiers.get(&target.channel) else {
            self.counts.count(target.channel, DeliveryResult::GaveUp);
            return Err(ChannelError::permanent(
                target.channel,
                &target.address,
                format!(
                    "the {} channel is not configured in the alerts config",
                    target.channel
                ),
            ));
        };
        let result = notifier
            .notify(notification, &target.address)
            .await
            .map_err(|e| ChannelError {
                target: redact(&e.target, &self.secrets),
                message: redact(&e.message, &self.secrets),
                ..e
            });
        let counted = match &result {
            Ok(()) => DeliveryResult::Delivered,
            Err(e) if e.permanent => DeliveryResult::GaveUp,
            Err(_) => DeliveryResult::Retry,
        };
        self.counts.count(target.channel, counted);
        result
    }
}

/// POSTs `body` as JSON with an `Idempotency-Key` header; 2xx is success. Errors name
/// `channel` and `address`; 4xx answers other than 408 and 429 are permanent.
pub(crate) async fn post_json(
    client: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
    idempotency_key: &str,
    (channel, address): (ChannelKind, &str),
) -> Result<(), ChannelError> {
    let response = client
        .post(url)
        .header("Idempotency-Key", idempotency_key)
        .json(body)
        .send()
        .await
        // `without_url`: the URL may embed a token.
        .map_err(|e| ChannelError::new(channel, address, describe_http_error(e.without_url())))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let message = format!("HTTP {status}");
    let retryable = status.is_server_error()
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS;
    if retryable {
        Err(ChannelError::new(channel, address, message))
    } else {
        Err(ChannelError::permanent(channel, address, message))
    }
}

fn describe_http_error(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    // The source chain says why (refused, DNS, TLS) without the URL.
    match std::error::Error::source(&e) {
        Some(cause) => format!("{kind}: {}", error_chain(cause)),
        None => kind.to_string(),
    }
}

/// `error: cause: cause...` (reqwest and lettre put the useful part in the source chain).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// Renders a link template: `{checker}`, `{requirement_index}`, `{minute}`, `{incident_key}`.
pub fn render_link(template: &str, notification: &Notification) -> String {
    template
        .replace("{checker}", &notification.checker)
        .replace(
            "{requirement_index}",
            &notification
                .requirement_index
                .map(|i| i.to_string())
                .unwrap_or_default(),
        )
        .replace("{minute}", &notification.minute.to_string())
        .replace("{incident_key}", &notification.incident_key)
}

/// `2023-11-14 23:14 +01:00 (Europe/Berlin)` from the notification's local minute.
pub fn local_time(notification: &Notification) -> String {
    match chrono::DateTime::parse_from_rfc3339(&notification.minute_local) {
        Ok(t) => format!(
            "{} ({})",
            t.format("%Y-%m-%d %H:%M %:z"),
            notification.timezone
        ),
        Err(_) => format!("{} ({})", notification.minute_local, notification.timezone),
    }
}
