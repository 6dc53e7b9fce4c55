//! # dwmon-alert
//!
//! Alerting for dwmon (SPEC 9.4): the pure [`AlertPolicy`] state machine (FAILAFTER /
//! RECOVERAFTER damping, reminders, pause), its persistence ([`AlertStateStore`], in memory
//! or in SQLite next to the dwmon store), per-checker routing from `__EXTRA__` ([`Routes`]),
//! and notification channels.

pub mod channels;
pub mod config;
pub mod handler;
pub mod notification;
pub mod policy;
pub mod route;
pub mod rule;
pub mod sqlite;
pub mod state;
pub mod store;

pub use channels::{ChannelError, Channels, Notifier};
pub use config::{AlertsConfig, ConfigError, Secret};
pub use handler::{AlertError, AlertHandler, AlertOutcome, FanoutHandler};
pub use notification::{Notification, NotificationKind};
pub use policy::AlertPolicy;
pub use route::{ChannelKind, RouteError, Routes, Target};
pub use rule::{AlertRule, Severity};
pub use sqlite::SqliteAlertStore;
pub use state::{AlertPhase, AlertState, Pause, SourceState};
pub use store::{
    AlertOverview, AlertStateEntry, AlertStateStore, AlertStoreError, AlertUpdate,
    MemoryAlertStore, PendingNotification,
};
