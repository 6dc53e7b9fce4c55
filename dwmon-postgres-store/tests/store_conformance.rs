//! `PostgresStore` runs the store conformance suite (`dwmon_core::store_conformance`): each
//! case on a schema of its own; a reopen is a new handle (another runner) on the same schema.

mod common;

use async_trait::async_trait;
use dwmon_core::store_conformance::{self, StoreFactory};
use dwmon_core::StoreError;
use dwmon_postgres_store::{PostgresStore, PostgresStoreOptions};
use std::sync::Mutex;

struct Postgres {
    url: String,
    schemas: Mutex<Vec<String>>,
}

#[async_trait]
impl StoreFactory for Postgres {
    type Store = PostgresStore;

    async fn create(&self) -> Result<Self::Store, StoreError> {
        let (url, schema) = common::fresh_schema(&self.url, "conformance").await;
        self.schemas.lock().unwrap().push(schema);
        PostgresStore::connect_with(&url, &PostgresStoreOptions::default().with_pool_size(4)).await
    }

    async fn reopen(&self, store: &Self::Store) -> Result<Self::Store, StoreError> {
        // As the same runner restarted (its claims are its own again at once); the location
        // is the URL as given (the test's URL has no password). Two runners of their own are
        // the subject of tests/runners.rs.
        let options = PostgresStoreOptions::default()
            .with_pool_size(4)
            .with_owner(store.owner());
        PostgresStore::connect_with(store.location(), &options).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_passes_the_store_conformance_suite(
) -> Result<(), Box<dyn std::error::Error>> {
    let Some(url) = common::server().await else {
        return Ok(());
    };
    let factory = Postgres {
        url: url.clone(),
        schemas: Mutex::new(Vec::new()),
    };
    let result = store_conformance::run_all(&factory).await;
    let schemas: Vec<String> = factory.schemas.lock().unwrap().drain(..).collect();
    for schema in schemas {
        common::drop_schema(&url, &schema).await;
    }
    result?;
    Ok(())
}
