//! The persisted alert state: per (checker, requirement) an [`AlertState`], per checker a
//! [`SourceState`] and an optional [`Pause`]. Defined in [`dwmon_core::alert_state`] and
//! re-exported here under their old paths.

pub use dwmon_core::alert_state::{is_paused, AlertPhase, AlertState, Pause, SourceState};
