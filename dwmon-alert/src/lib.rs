//! # dwmon-alert
//!
//! Alerting for dwmon (docs/ALERTING.md): tell the right people once when a requirement
//! starts failing, remind them while it keeps failing, and tell them once when it recovers —
//! across restarts.
//!
//! - [`AlertPolicy`]: the pure state machine (no I/O, no clock). Per (checker, requirement)
//!   an [`AlertState`] goes OK -> FIRING on the FAILAFTER-th consecutive BAD check and back
//!   on the RECOVERAFTER-th consecutive GOOD one ([`AlertRule`]); per checker a
//!   [`SourceState`] tracks error streaks. It yields [`Notification`]s: `Firing`, `Reminder`
//!   (every `repeat` while firing; default 4 h, 0 = off), `Resolved`, `SourceError` (once per
//!   streak) and `SourceRecovered`. A [`Pause`] suppresses notifications while the state
//!   keeps following the checks.
//! - [`AlertStateStore`]: persistence of states, pauses and undelivered notifications
//!   (defined in [`dwmon_core::alert_state`] and re-exported here); [`MemoryAlertStore`], and
//!   `dwmon_sqlite::SqliteStore`, which keeps them in the store file beside rows and checks.
//! - [`Routes`]: who hears about a checker, from the `"alert"` key of its `__EXTRA__`
//!   (schema in [`route`]).
//! - [`Channels`] / [`Notifier`]: stdout JSON lines, tracing log, generic webhook, Slack,
//!   PagerDuty Events API v2, email over SMTP; configured by an [`AlertsConfig`] JSON file
//!   (format in [`config`]) that also holds the secrets (never in checker files, never in
//!   logs or errors).
//! - [`AlertHandler`]: the [`dwmon_core::CheckHandler`] tying it together, and
//!   [`FanoutHandler`] to combine it with other handlers.
//!
//! ```no_run
//! use std::sync::Arc;
//! use dwmon_alert::{AlertHandler, AlertsConfig, FanoutHandler};
//! use dwmon_core::{CheckHandler, Engine};
//! use dwmon_sqlite::SqliteStore;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let source: Arc<dyn dwmon_core::RowGetter> = Arc::new(dwmon_core::testutil::ScriptedSource::new());
//! let config = AlertsConfig::load("alerts.json")?;
//! // One file for rows, checks and alert state: the same store is both.
//! let store = Arc::new(SqliteStore::open("dwmon.sqlite")?);
//! let alerts = AlertHandler::from_config(store.clone(), &config)?;
//! let printer = dwmon_core::handler_fn(|event| {
//!     println!("{}", serde_json::to_string(event).unwrap_or_default());
//!     Ok(())
//! });
//! let handler: Arc<dyn CheckHandler> =
//!     Arc::new(FanoutHandler::new(vec![Arc::new(printer), Arc::new(alerts)]));
//! let engine = Engine::new(source, store, handler);
//! # let _ = engine;
//! # Ok(())
//! # }
//! ```

pub mod channels;
pub mod config;
pub mod deliveries;
pub mod handler;
pub mod notification;
pub mod policy;
pub mod reconcile;
pub mod route;
pub mod rule;
pub mod state;
pub mod store;

pub use channels::{ChannelError, Channels, Notifier};
pub use config::{AlertsConfig, ConfigError, Secret, TlsCa};
pub use deliveries::{DeliveryCounts, DeliveryResult};
pub use handler::{AlertError, AlertHandler, AlertOutcome, FanoutHandler, TargetCheckFn};
pub use notification::{Notification, NotificationKind};
pub use policy::AlertPolicy;
pub use reconcile::reconcile;
pub use route::{ChannelKind, RouteError, Routes, Target};
pub use rule::{AlertRule, Severity};
pub use state::{AlertPhase, AlertState, Pause, SourceState};
pub use store::{
    AlertOverview, AlertStateEntry, AlertStateStore, AlertStoreError, AlertTransition, AlertUpdate,
    HistoryState, MemoryAlertStore, PendingNotification,
};
