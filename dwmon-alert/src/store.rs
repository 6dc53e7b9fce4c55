//! [`AlertStateStore`]: where alert states, pauses and undelivered notifications live, so
//! alerting survives restarts. The trait, its types and [`MemoryAlertStore`] live in
//! [`dwmon_core::alert_state`] (so store crates implement it without depending on this
//! crate); they are re-exported here under their old paths.

pub use dwmon_core::alert_state::{
    AlertOverview, AlertStateEntry, AlertStateStore, AlertStoreError, AlertTransition, AlertUpdate,
    DecidedFrom, HistoryState, MemoryAlertStore, PendingNotification, PRUNE_TASK,
};
