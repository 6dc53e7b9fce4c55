//! [`Target`]: one destination of a notification, a [`ChannelKind`] and an address within the
//! channel. Which targets hear about a checker is decided by `dwmon_alert::Routes`.

use serde::{Deserialize, Serialize};

/// A kind of notification channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// JSON lines on stdout.
    Stdout,
    /// The tracing log.
    Log,
    /// Email over SMTP.
    Email,
    /// Slack incoming webhook.
    Slack,
    /// PagerDuty Events API v2.
    Pagerduty,
    /// Generic JSON webhook.
    Webhook,
}

impl ChannelKind {
    /// The channel's name as used in routes and error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Stdout => "stdout",
            ChannelKind::Log => "log",
            ChannelKind::Email => "email",
            ChannelKind::Slack => "slack",
            ChannelKind::Pagerduty => "pagerduty",
            ChannelKind::Webhook => "webhook",
        }
    }
}

impl std::fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One destination: a channel and its address within the channel (email address, Slack
/// channel, PagerDuty service name, webhook URL or name; empty for stdout and log).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Target {
    /// Which channel.
    pub channel: ChannelKind,
    /// The address within the channel.
    pub address: String,
}

impl Target {
    /// A target.
    pub fn new(channel: ChannelKind, address: impl Into<String>) -> Self {
        Target {
            channel,
            address: address.into(),
        }
    }

    /// `channel:address`, the identity used to remember per-target delivery.
    pub fn id(&self) -> String {
        format!("{}:{}", self.channel, self.address)
    }

    /// A description safe for logs and error messages: webhook URLs are cut to their origin
    /// (their paths and queries often embed tokens).
    pub fn display_safe(&self) -> String {
        match self.channel {
            ChannelKind::Stdout | ChannelKind::Log => self.channel.to_string(),
            ChannelKind::Webhook => format!("webhook {}", url_origin(&self.address)),
            _ => format!("{} {}", self.channel, self.address),
        }
    }
}

/// `scheme://host[:port]` of a URL, or the text itself when it is not a URL (a name).
pub fn url_origin(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            // Drop any `user:password@`.
            let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
            format!("{scheme}://{host}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_display_hides_webhook_paths_and_credentials() {
        let target = Target::new(
            ChannelKind::Webhook,
            "https://user:pw@hooks.example.com:8443/services/T000/SECRET?x=1",
        );
        assert_eq!(
            target.display_safe(),
            "webhook https://hooks.example.com:8443"
        );
    }
}
