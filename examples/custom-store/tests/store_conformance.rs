//! `BTreeStore` runs the store conformance suite: the one call every store makes.

use async_trait::async_trait;
use dwmon_core::store_conformance::{self, StoreFactory};
use dwmon_core::StoreError;
use dwmon_example_custom_store::BTreeStore;

struct Factory;

#[async_trait]
impl StoreFactory for Factory {
    type Store = BTreeStore;

    async fn create(&self) -> Result<BTreeStore, StoreError> {
        Ok(BTreeStore::new())
    }

    async fn reopen(&self, store: &BTreeStore) -> Result<BTreeStore, StoreError> {
        // The data lives as long as a handle on it: a second handle shares it.
        Ok(store.handle())
    }
}

#[tokio::test]
async fn the_btree_store_passes_the_store_conformance_suite(
) -> Result<(), store_conformance::Failure> {
    store_conformance::run_all(&Factory).await
}
