//! A read-only handle ([`PostgresStoreOptions::read_only`]) opens an existing store only and
//! writes nothing: on a schema without a store it refuses, naming the schema, and creates no
//! table.

mod common;

use dwmon_core::store::StoreView;
use dwmon_postgres_store::{PostgresStore, PostgresStoreOptions};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// How many tables `schema` has.
async fn tables(
    admin: &tokio_postgres::Client,
    schema: &str,
) -> Result<i64, tokio_postgres::Error> {
    let row = admin
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1",
            &[&schema],
        )
        .await?;
    Ok(row.get(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_handle_refuses_an_empty_schema_and_writes_nothing() -> TestResult {
    let Some(url) = common::server().await else {
        return Ok(());
    };
    let (schema_url, schema) = common::fresh_schema(&url, "read_only").await;
    let options = PostgresStoreOptions::default().with_read_only();
    let reader = PostgresStore::connect_with(&schema_url, &options).await;
    let admin = common::admin(&url).await;
    let refused = reader.err().map(|e| e.to_string()).unwrap_or_default();
    let before = tables(&admin, &schema).await?;
    assert!(
        refused.contains(&format!("no dwmon store in schema {schema}")),
        "{refused}"
    );
    assert_eq!(before, 0, "the read-only open created tables");
    let probe = PostgresStore::open_lazily(&schema_url, &options)?;
    assert_eq!(probe.stored_version().await?, (schema.clone(), None));

    // Once a runner created it, the reader reads it, and cannot write.
    let writer = common::store(&schema_url, "writer", 120).await;
    let reader = PostgresStore::connect_with(&schema_url, &options).await?;
    assert!(reader.status().await?.is_empty());
    assert_eq!(
        reader.stored_version().await?,
        (schema.clone(), Some(PostgresStore::schema_version()))
    );
    let write = dwmon_core::alert_state::AlertStateStore::set_pause(&reader, "orders", None).await;
    drop(writer);
    common::drop_schema(&url, &schema).await;
    assert!(write.is_err(), "a read-only handle wrote");
    Ok(())
}
