//! Shared by the tests: a fresh schema per store on the test server
//! (`DWMON_TEST_POSTGRES_URL`), so tests run in parallel on one database.
#![allow(dead_code)]

pub mod proxy;

use dwmon_postgres_store::{PostgresStore, PostgresStoreOptions};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The test server's URL; `None` (the test is skipped) when it is unset or unreachable,
/// unless `CI=true`, where an unreachable server fails the test.
pub async fn server() -> Option<String> {
    let url = std::env::var("DWMON_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string());
    match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
        Ok(_) => Some(url),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI=true and the test PostgreSQL server at {url} is unreachable: {e}")
        }
        Err(e) => {
            eprintln!("skipped: no PostgreSQL at {url}: {e}");
            None
        }
    }
}

/// A connection to `url` for the test's own statements.
pub async fn admin(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
}

static SCHEMAS: AtomicUsize = AtomicUsize::new(0);

/// A new empty schema on `url`, and the URL whose `search_path` names it.
pub async fn fresh_schema(url: &str, test: &str) -> (String, String) {
    let n = SCHEMAS.fetch_add(1, Ordering::SeqCst);
    let schema = format!("t_{test}_{}_{n}", std::process::id());
    let client = admin(url).await;
    client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
        ))
        .await
        .expect("create schema");
    let separator = if url.contains('?') { '&' } else { '?' };
    (
        format!("{url}{separator}options=-csearch_path%3D{schema}"),
        schema,
    )
}

/// Drops `schema` (its tables with it).
pub async fn drop_schema(url: &str, schema: &str) {
    let client = admin(url).await;
    let _ = client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .await;
}

/// A store on `schema_url` with `owner` and a `lease_seconds` lease.
pub async fn store(schema_url: &str, owner: &str, lease_seconds: u64) -> PostgresStore {
    let options = PostgresStoreOptions::default()
        .with_owner(owner)
        .with_lease(std::time::Duration::from_secs(lease_seconds))
        .with_pool_size(4);
    PostgresStore::connect_with(schema_url, &options)
        .await
        .expect("connect the store")
}

/// A store on `url` with one pooled connection, so every call reuses it (and the pool checks
/// it each time): what the round-trip counts through the proxy assume.
pub async fn single_connection(
    url: &str,
    owner: &str,
    timeout: std::time::Duration,
) -> PostgresStore {
    let options = PostgresStoreOptions::default()
        .with_owner(owner)
        .with_pool_size(1)
        .with_statement_timeout(timeout);
    PostgresStore::connect_with(url, &options)
        .await
        .expect("connect the store")
}
