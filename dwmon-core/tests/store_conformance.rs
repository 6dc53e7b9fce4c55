//! `MemoryStore` runs the store conformance suite (`dwmon_core::store_conformance`).

use async_trait::async_trait;
use dwmon_core::store_conformance::{self, StoreFactory};
use dwmon_core::{MemoryStore, StoreError};
use std::sync::Arc;

struct Memory;

#[async_trait]
impl StoreFactory for Memory {
    type Store = Arc<MemoryStore>;

    async fn create(&self) -> Result<Self::Store, StoreError> {
        Ok(Arc::new(MemoryStore::new()))
    }

    async fn reopen(&self, store: &Self::Store) -> Result<Self::Store, StoreError> {
        // Nothing outlives the process: a second handle shares the same store.
        Ok(store.clone())
    }
}

#[tokio::test]
async fn memory_store_passes_the_store_conformance_suite() -> Result<(), store_conformance::Failure>
{
    store_conformance::run_all(&Memory).await
}

#[tokio::test]
async fn memory_ping_log_passes_the_ping_log_case() -> Result<(), store_conformance::Failure> {
    let log = dwmon_core::ping_log::MemoryPingLog::new(Arc::new(MemoryStore::new()));
    store_conformance::ping_log_runs(&log).await
}
