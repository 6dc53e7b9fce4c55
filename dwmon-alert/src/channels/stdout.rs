//! The stdout channel: one JSON line per notification.

use super::{ChannelError, Notifier};
use crate::notification::Notification;
use crate::route::ChannelKind;
use async_trait::async_trait;
use std::io::Write;
use std::sync::Mutex;

/// Writes each notification as one JSON line (the [`Notification`] JSON) to stdout or any
/// writer.
pub struct StdoutNotifier {
    out: Mutex<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for StdoutNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StdoutNotifier").finish_non_exhaustive()
    }
}

impl StdoutNotifier {
    /// Writes to the process's stdout.
    pub fn stdout() -> Self {
        StdoutNotifier::to_writer(std::io::stdout())
    }

    /// Writes to `out` (tests, files).
    pub fn to_writer(out: impl Write + Send + 'static) -> Self {
        StdoutNotifier {
            out: Mutex::new(Box::new(out)),
        }
    }
}

#[async_trait]
impl Notifier for StdoutNotifier {
    async fn notify(&self, notification: &Notification, address: &str) -> Result<(), ChannelError> {
        let line = serde_json::to_string(notification)
            .map_err(|e| ChannelError::new(ChannelKind::Stdout, address, e.to_string()))?;
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(|e| ChannelError::new(ChannelKind::Stdout, address, e.to_string()))
    }
}
