//! The store seam: where dwmon keeps first-seen rows, the check log, the delivery outbox and
//! what status views read, as three traits by concern — [`RowStore`], [`CheckLog`],
//! [`StoreView`] — and [`Store`], which every type implementing all three is.
//!
//! A new store implements the three traits and runs the conformance suite
//! (`dwmon_core::store_conformance`, feature `test-suite`) in its tests; see
//! `dwmon-core/tests/store_conformance.rs` (`MemoryStore`) and
//! `dwmon-sqlite/tests/store_conformance.rs` (`SqliteStore`) for stores that pass it.

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

/// Everything the engine and the status views need of a store: [`RowStore`] + [`CheckLog`] +
/// [`StoreView`]. Nothing to implement: every type with the three traits is a `Store`
/// (references, `Box` and `Arc` of one too), and `Arc<dyn Store>` is what the engine holds.
///
/// The engine's guarantees (README "How a cycle works") rest on what the three traits
/// promise: first-seen inserts keep the first timestamp of a key; `record` is atomic and
/// idempotent per `(checker, requirement_index, minute)` and enqueues each new record in the
/// outbox in the same transaction; outbox entries survive restarts until settled.
///
/// ```
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
/// # Ok::<(), dwmon_core::StoreError>(())
/// # }).unwrap();
/// ```
pub trait Store: RowStore + CheckLog + StoreView {}

impl<T: RowStore + CheckLog + StoreView + ?Sized> Store for T {}
