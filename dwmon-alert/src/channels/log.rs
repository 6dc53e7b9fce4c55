//! The log channel: notifications as tracing events.

use super::{ChannelError, Notifier};
use crate::notification::Notification;
use async_trait::async_trait;

/// Logs each notification through `tracing`: problems (firing, reminder, source error) at
/// WARN, recoveries at INFO, with the idempotency key as a field.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogNotifier;

#[async_trait]
impl Notifier for LogNotifier {
    async fn notify(
        &self,
        notification: &Notification,
        _address: &str,
    ) -> Result<(), ChannelError> {
        let key = notification.idempotency_key.as_str();
        let checker = notification.checker.as_str();
        if notification.kind.is_problem() {
            tracing::warn!(checker, idempotency_key = key, "{}", notification.summary());
        } else {
            tracing::info!(checker, idempotency_key = key, "{}", notification.summary());
        }
        Ok(())
    }
}
