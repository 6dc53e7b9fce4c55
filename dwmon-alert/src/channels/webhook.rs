//! The generic webhook channel: HTTP POST of the [`Notification`] JSON.

use super::{post_json, ChannelError, Notifier};
use crate::config::Secret;
use crate::notification::Notification;
use crate::route::ChannelKind;
use async_trait::async_trait;
use std::collections::BTreeMap;

/// POSTs the [`Notification`] JSON (see its docs for the body) with the headers
/// `Content-Type: application/json` and `Idempotency-Key: <idempotency_key>`. Any 2xx answer
/// is success; anything else (or a timeout) is an error and the message is retried.
///
/// The address is an `http(s)://` URL, or the name of a webhook in the alerts config's
/// `webhooks` map.
#[derive(Debug, Clone)]
pub struct WebhookNotifier {
    client: reqwest::Client,
    named: BTreeMap<String, Secret>,
}

impl WebhookNotifier {
    /// A notifier using `client` (which carries the timeout) and the named webhooks.
    pub fn new(client: reqwest::Client, named: BTreeMap<String, Secret>) -> Self {
        WebhookNotifier { client, named }
    }
}

#[async_trait]
impl Notifier for WebhookNotifier {
    async fn notify(&self, notification: &Notification, address: &str) -> Result<(), ChannelError> {
        let error =
            |message: String| ChannelError::permanent(ChannelKind::Webhook, address, message);
        let url = if address.starts_with("http://") || address.starts_with("https://") {
            address
        } else {
            self.named.get(address).map(Secret::expose).ok_or_else(|| {
                error(format!("no webhook named {address:?} in the alerts config"))
            })?
        };
        let body = serde_json::to_value(notification).map_err(|e| error(e.to_string()))?;
        post_json(
            &self.client,
            url,
            &body,
            &notification.idempotency_key,
            (ChannelKind::Webhook, address),
        )
        .await
    }
}
