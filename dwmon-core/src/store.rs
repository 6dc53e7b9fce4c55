//! The store seam: where dwmon keeps first-seen rows, the check log, the delivery outbox,
//! what status views read and the alert state, as four traits by concern — [`RowStore`],
//! [`CheckLog`], [`StoreView`] and [`AlertStateStore`] — and [`Store`], which every type
//! implementing all four is.
//!
//! A new store implements the four traits (docs/STORES.md in the repository is the guide,
//! `examples/custom-store` a store written from it) and runs the conformance suite
//! (`dwmon_core::store_conformance`, feature `test-suite`) in its tests; see
//! `dwmon-core/tests/store_conformance.rs` (`MemoryStore`) and
//! `dwmon-sqlite/tests/store_conformance.rs` (`SqliteStore`) for stores that pass it.

pub use crate::alert_state::AlertStateStore;

mod check_log;
mod error;
mod rows;
mod view;

pub use check_log::{
    CheckLog, CheckerClaim, Lease, LocalFences, PendingDelivery, Recorded, Retry, Settlement,
};
pub use error::{Cause, StoreError};
pub use rows::RowStore;
pub use view::{
    CheckerStatus, OutboxSummary, RecentLine, RequirementStatus, StatusHistory, StoreView,
};

/// Everything the engine, alerting and the status views need of a store: [`RowStore`] +
/// [`CheckLog`] + [`StoreView`] + [`AlertStateStore`]. Nothing to implement: every type with
/// the four traits is a `Store` (references, `Box` and `Arc` of one too), and `Arc<dyn Store>`
/// is what the engine holds; alerting takes the same store as its alert state store.
///
/// The engine's guarantees (README "How a cycle works") rest on what the four traits
/// promise: first-seen inserts keep the first timestamp of a key; `record` is atomic and
/// idempotent per `(checker, requirement_index, minute)` and enqueues each new record in the
/// outbox in the same transaction; outbox entries survive restarts until settled; alert
/// updates are atomic and their notifications stay pending until completed.
///
/// ```
/// use dwmon_core::alert_state::{AlertStateStore, Pause};
/// use dwmon_core::{MemoryStore, Row, Store};
/// use std::sync::Arc;
///
/// async fn stored_rows(store: &dyn Store, checker: &str) -> Result<u64, dwmon_core::StoreError> {
///     store.count(checker, i64::MIN, i64::MAX).await
/// }
///
/// # futures::executor::block_on(async {
/// let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
/// store.insert_first_seen("backups", &[Row::new("b1", 100)]).await?;
/// assert_eq!(stored_rows(store.as_ref(), "backups").await?, 1);
/// // The same store keeps the alert state.
/// let pause = Pause { since: 0, until: None, comment: None };
/// store.set_pause("backups", Some(&pause)).await?;
/// assert_eq!(store.pause("backups").await?, Some(pause));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub trait Store: RowStore + CheckLog + StoreView + AlertStateStore {}

impl<T: RowStore + CheckLog + StoreView + AlertStateStore + ?Sized> Store for T {}
