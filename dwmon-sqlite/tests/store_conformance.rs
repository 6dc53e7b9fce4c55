//! `SqliteStore` runs the store conformance suite (`dwmon_core::store_conformance`): each
//! case on a new file, reopened from its path.

use async_trait::async_trait;
use dwmon_core::store_conformance::{self, StoreFactory};
use dwmon_core::StoreError;
use dwmon_sqlite::SqliteStore;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Sqlite {
    dir: tempfile::TempDir,
    files: AtomicUsize,
}

#[async_trait]
impl StoreFactory for Sqlite {
    type Store = SqliteStore;

    async fn create(&self) -> Result<Self::Store, StoreError> {
        let n = self.files.fetch_add(1, Ordering::SeqCst);
        SqliteStore::open(self.dir.path().join(format!("store-{n}.sqlite")))
    }

    async fn reopen(&self, store: &Self::Store) -> Result<Self::Store, StoreError> {
        SqliteStore::open(store.path())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_passes_the_store_conformance_suite() -> Result<(), Box<dyn std::error::Error>>
{
    let factory = Sqlite {
        dir: tempfile::tempdir()?,
        files: AtomicUsize::new(0),
    };
    store_conformance::run_all(&factory).await?;
    Ok(())
}

#[tokio::test]
async fn an_in_memory_sqlite_store_passes_it_too() -> Result<(), Box<dyn std::error::Error>> {
    struct InMemory;
    #[async_trait]
    impl StoreFactory for InMemory {
        type Store = std::sync::Arc<SqliteStore>;
        async fn create(&self) -> Result<Self::Store, StoreError> {
            Ok(std::sync::Arc::new(SqliteStore::open_in_memory()?))
        }
        async fn reopen(&self, store: &Self::Store) -> Result<Self::Store, StoreError> {
            Ok(store.clone())
        }
    }
    store_conformance::run_all(&InMemory).await?;
    Ok(())
}
