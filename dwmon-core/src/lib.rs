//! # dwmon-core
//!
//! The heart of dwmon: checker files ([`checker_file`]), the requirement grammar
//! ([`requirement`]), the pure schedule evaluator ([`schedule`]), the extension traits
//! ([`RowGetter`], [`CheckHandler`], [`Purger`], [`Store`]), the alert state stores keep
//! ([`alert_state`]), the cycle engine ([`engine`]) and monitors written in code over several
//! checkers ([`monitor`]).
//!
//! Time is always a parameter: nothing in this crate reads the wall clock except
//! [`engine::SystemClock`], which only the run loop uses.

pub mod alert_state;
pub mod checker_file;
#[cfg(feature = "test-suite")]
pub mod conformance;
pub mod convert;
pub mod engine;
pub mod fanout;
pub mod handler;
pub mod insight;
pub mod memory_store;
pub mod monitor;
pub mod ping;
pub mod ping_log;
pub mod purger;
pub mod record;
pub mod requirement;
pub mod retention;
pub mod routing;
pub mod runs;
pub mod schedule;
pub mod seen_cache;
pub mod source;
pub mod store;
#[cfg(feature = "test-suite")]
pub mod store_conformance;
pub mod svg;
#[cfg(any(test, feature = "test-util"))]
pub mod testutil;

pub use checker_file::{
    load_dir, parse_checker, parse_checker_bytes, Checker, CheckerFileError, CheckerFileErrorKind,
    LoadReport,
};
pub use engine::{Clock, CycleReport, Engine, EngineConfig, PurgeTiming, SystemClock};
pub use fanout::FanoutHandler;
pub use handler::{handler_fn, CheckHandler, HandlerError};
pub use memory_store::MemoryStore;
pub use monitor::{Monitor, MonitorCounts, MonitorInput, MonitorSchedule, Verdict};
pub use purger::{Cutoffs, DefaultPurger, Purger};
pub use record::{CheckRecord, ErrorEvent, ErrorKind, Event, InputCount, MonitorReport, Status};
pub use requirement::{
    FieldSet, Requirement, RequirementError, RequirementErrorKind, Schedule, Severity,
};
pub use schedule::{due_minutes, matches, ZoneCursor};
pub use source::{
    collect_rows, Batcher, FetchRequest, Fetched, Row, RowGetter, RowSink, SourceError,
};
pub use store::{
    CheckLog, CheckerClaim, CheckerStatus, OutboxSummary, PendingDelivery, RecentLine, Recorded,
    RowStore, Settlement, StatusHistory, Store, StoreError, StoreView,
};

/// Seconds in a minute; a *minute* is an epoch multiple of this.
pub const MINUTE: i64 = 60;

/// The minute containing `t`: `floor(t / 60) * 60` (correct for negative epochs too;
/// saturates at the ends of the `i64` range instead of overflowing).
pub fn minute_floor(t: i64) -> i64 {
    t.div_euclid(MINUTE).saturating_mul(MINUTE)
}

#[cfg(test)]
mod tests {
    use super::minute_floor;

    #[test]
    fn minute_floor_rounds_down_and_never_overflows() {
        assert_eq!(minute_floor(119), 60);
        assert_eq!(minute_floor(120), 120);
        assert_eq!(minute_floor(-1), -60);
        assert_eq!(minute_floor(i64::MAX), i64::MAX - i64::MAX % 60);
        assert_eq!(minute_floor(i64::MIN), i64::MIN);
    }
}
