//! [`PendingNotification`]: a notification still owed to some of its targets (the alert
//! outbox entry).

use super::{Notification, Target};
use serde::{Deserialize, Serialize};

/// A notification still owed to some of its targets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingNotification {
    /// The message (its `idempotency_key` identifies the entry).
    pub notification: Notification,
    /// Where it must go (fixed when it was decided).
    pub targets: Vec<Target>,
    /// [`Target::id`]s that already accepted it; they are not sent to again.
    pub delivered: Vec<String>,
    /// [`Target::id`]s given up after a permanent error (logged and reported once).
    #[serde(default)]
    pub abandoned: Vec<String>,
    /// Failed delivery rounds so far.
    pub attempts: u32,
    /// The last (secret-free) error, for status views.
    pub last_error: Option<String>,
}

impl PendingNotification {
    /// A new entry nobody has received yet.
    pub fn new(notification: Notification, targets: Vec<Target>) -> Self {
        PendingNotification {
            notification,
            targets,
            delivered: Vec::new(),
            abandoned: Vec::new(),
            attempts: 0,
            last_error: None,
        }
    }

    /// The targets still owed the message (neither delivered nor abandoned).
    pub fn remaining(&self) -> impl Iterator<Item = &Target> {
        self.targets.iter().filter(|t| {
            let id = t.id();
            !self.delivered.contains(&id) && !self.abandoned.contains(&id)
        })
    }
}
