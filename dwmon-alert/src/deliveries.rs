//! [`DeliveryCounts`]: notification deliveries by channel and result, counted where they
//! happen ([`Channels::send`](crate::Channels::send) and the give-up of an outbox entry), for
//! `/metrics` (`dwmon_notification_deliveries_total{channel, result}`).

use crate::route::ChannelKind;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// What one attempt to deliver a notification to one target came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeliveryResult {
    /// The channel took it.
    Delivered,
    /// It failed in a way that may pass (timeout, 5xx, 429): it is tried again later.
    Retry,
    /// It will never be delivered to this target: a permanent failure (4xx, invalid
    /// address, channel not configured) or the outbox gave the target up.
    GaveUp,
}

impl DeliveryResult {
    /// Every result, in the order of [`DeliveryCounts::snapshot`]'s arrays.
    pub const ALL: [DeliveryResult; 3] = [
        DeliveryResult::Delivered,
        DeliveryResult::Retry,
        DeliveryResult::GaveUp,
    ];

    /// `delivered`, `retry` or `gave_up`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryResult::Delivered => "delivered",
            DeliveryResult::Retry => "retry",
            DeliveryResult::GaveUp => "gave_up",
        }
    }

    fn slot(self) -> usize {
        match self {
            DeliveryResult::Delivered => 0,
            DeliveryResult::Retry => 1,
            DeliveryResult::GaveUp => 2,
        }
    }
}

/// Notification deliveries since the process started, per channel and [`DeliveryResult`].
/// Shared (`Arc`) between the [`Channels`](crate::Channels) that count and the server that
/// reads them; one short mutex, never held across an await.
///
/// Every channel a [`Channels`](crate::Channels) has a notifier for is listed from the
/// start, with zeros, so a rate over the counter exists before the first delivery.
///
/// ```
/// use dwmon_alert::{ChannelKind, DeliveryCounts, DeliveryResult};
/// let counts = DeliveryCounts::default();
/// counts.add_channel(ChannelKind::Slack);
/// counts.count(ChannelKind::Slack, DeliveryResult::Retry);
/// counts.count(ChannelKind::Slack, DeliveryResult::Delivered);
/// assert_eq!(counts.snapshot(), [(ChannelKind::Slack, [1, 1, 0])]);
/// ```
#[derive(Debug, Default)]
pub struct DeliveryCounts {
    counts: Mutex<BTreeMap<ChannelKind, [u64; 3]>>,
}

impl DeliveryCounts {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<ChannelKind, [u64; 3]>> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lists `channel` (with zeros if it has no count yet).
    pub fn add_channel(&self, channel: ChannelKind) {
        self.lock().entry(channel).or_default();
    }

    /// Counts one delivery of `result` through `channel`.
    pub fn count(&self, channel: ChannelKind, result: DeliveryResult) {
        let mut counts = self.lock();
        let slot = &mut counts.entry(channel).or_default()[result.slot()];
        *slot = slot.saturating_add(1);
    }

    /// Per channel (by name), the counts in the order of [`DeliveryResult::ALL`].
    pub fn snapshot(&self) -> Vec<(ChannelKind, [u64; 3])> {
        self.lock().iter().map(|(k, v)| (*k, *v)).collect()
    }
}
