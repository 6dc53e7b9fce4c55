//! # dwmon-core
//!
//! The heart of dwmon: checker files ([`checker_file`]), the requirement grammar
//! ([`requirement`]), the pure schedule evaluator ([`schedule`]), the extension traits
//! ([`RowGetter`], [`CheckHandler`], [`Purger`], [`Store`]) and the cycle engine ([`engine`]).
//!
//! Time is always a parameter: nothing in this crate reads the wall clock except
//! [`engine::SystemClock`], which only the run loop uses.

pub mod checker_file;
pub mod convert;
pub mod engine;
pub mod handler;
pub mod memory_store;
pub mod purger;
pub mod record;
pub mod requirement;
pub mod routing;
pub mod schedule;
pub mod source;
pub mod store;
pub mod testutil;

pub use checker_file::{load_dir, parse_checker, Checker, CheckerFileError, LoadReport};
pub use engine::{Engine, EngineConfig};
pub use handler::{handler_fn, CheckHandler, HandlerError};
pub use memory_store::MemoryStore;
pub use purger::{DefaultPurger, Purger};
pub use record::{CheckRecord, ErrorEvent, Event, Status};
pub use requirement::{FieldSet, Requirement, RequirementError, Schedule};
pub use source::{FetchRequest, Fetched, Row, RowGetter, SourceError};
pub use store::{CheckerStatus, PendingDelivery, Store, StoreError};

/// Seconds in a minute; a *minute* is an epoch multiple of this.
pub const MINUTE: i64 = 60;

/// The minute containing `t`: `floor(t / 60) * 60` (correct for negative epochs too).
pub fn minute_floor(t: i64) -> i64 {
    t.div_euclid(MINUTE) * MINUTE
}
