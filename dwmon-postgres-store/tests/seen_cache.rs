//! The PostgreSQL store's cache of stored keys on a shared database: used only under this
//! runner's own consecutive claims, forgotten when another runner held the checker in between
//! or when anyone deleted its rows (a purge, an operator by hand), so a key that is gone is
//! stored (and counted) again when it is fetched again.

mod common;

use dwmon_core::store::CheckLog;
use dwmon_core::{Row, RowStore};
use dwmon_postgres_store::PostgresStore;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Rows `k0..kN` at timestamps 0, 60, 120, ...
fn rows(n: i64) -> Vec<Row> {
    (0..n).map(|i| Row::new(format!("k{i}"), i * 60)).collect()
}

async fn claim(store: &PostgresStore, checker: &str) -> Result<usize, dwmon_core::StoreError> {
    Ok(store.claim(&[checker.to_owned()], 0).await?.len())
}

/// Ends every lease of the schema's claims, as if their runners had died long ago.
async fn expire_claims(admin: &tokio_postgres::Client, schema: &str) -> TestResult {
    admin
        .batch_execute(&format!(
            "UPDATE {schema}.dwmon_claims SET until = now() - interval '1 second'"
        ))
        .await?;
    Ok(())
}

#[tokio::test]
async fn the_steady_state_answers_from_the_cache_under_this_runners_claim() -> TestResult {
    let Some(url) = common::server().await else {
        return Ok(());
    };
    let (schema_url, schema) = common::fresh_schema(&url, "seen_steady").await;
    let store = common::store(&schema_url, "one", 120).await;
    let batch = rows(100);
    // Without a claim the cache is not used (nor filled).
    assert_eq!(store.insert_first_seen("x", &batch[..50]).await?, 50);
    assert_eq!(store.cached_keys(), 0);
    assert_eq!(claim(&store, "x").await?, 1);
    assert_eq!(store.insert_first_seen("x", &batch).await?, 50);
    assert_eq!(
        store.cached_keys(),
        100,
        "inserted and found keys are learned"
    );
    assert_eq!(claim(&store, "x").await?, 1);
    assert_eq!(store.insert_first_seen("x", &batch).await?, 0);
    // Proof that the cache answers: a row deleted behind the trigger's back (which no
    // real deletion can do) is not stored again while the claim and the epoch stand.
    let admin = common::admin(&url).await;
    admin
        .batch_execute(&format!(
            "ALTER TABLE {schema}.dwmon_rows DISABLE TRIGGER dwmon_rows_deleted;
             DELETE FROM {schema}.dwmon_rows WHERE key = 'k1';
             ALTER TABLE {schema}.dwmon_rows ENABLE TRIGGER dwmon_rows_deleted"
        ))
        .await?;
    assert_eq!(claim(&store, "x").await?, 1);
    assert_eq!(store.insert_first_seen("x", &batch).await?, 0);
    // A deletion by hand bumps the rows epoch: the next claim forgets the checker's keys,
    // and both deleted keys are stored again.
    admin
        .batch_execute(&format!("DELETE FROM {schema}.dwmon_rows WHERE key = 'k2'"))
        .await?;
    assert_eq!(claim(&store, "x").await?, 1);
    assert_eq!(store.cached_keys(), 0);
    assert_eq!(store.insert_first_seen("x", &batch).await?, 2);
    assert_eq!(store.count_windows("x", &[(0, 6000)]).await?, vec![100]);
    common::drop_schema(&url, &schema).await;
    Ok(())
}

#[tokio::test]
async fn another_runners_claim_in_between_forgets_the_keys() -> TestResult {
    let Some(url) = common::server().await else {
        return Ok(());
    };
    let (schema_url, schema) = common::fresh_schema(&url, "seen_takeover").await;
    let one = common::store(&schema_url, "one", 120).await;
    let two = common::store(&schema_url, "two", 120).await;
    let admin = common::admin(&url).await;
    let batch = rows(20);
    assert_eq!(claim(&one, "x").await?, 1);
    assert_eq!(one.insert_first_seen("x", &batch).await?, 20);
    assert_eq!(one.cached_keys(), 20);
    // Runner one stalls; two takes the checker over and does nothing to its rows.
    expire_claims(&admin, &schema).await?;
    assert_eq!(claim(&two, "x").await?, 1);
    expire_claims(&admin, &schema).await?;
    assert_eq!(claim(&one, "x").await?, 1);
    assert_eq!(
        one.cached_keys(),
        0,
        "the fence moved by two: keys forgotten"
    );
    assert_eq!(one.insert_first_seen("x", &batch).await?, 0);
    assert_eq!(one.cached_keys(), 20, "relearned from the server");
    // Two takes over again and purges the oldest rows; one, back, stores them again.
    expire_claims(&admin, &schema).await?;
    assert_eq!(claim(&two, "x").await?, 1);
    assert_eq!(two.purge("x", 600).await?, 10);
    expire_claims(&admin, &schema).await?;
    assert_eq!(claim(&one, "x").await?, 1);
    assert_eq!(one.insert_first_seen("x", &batch).await?, 10);
    assert_eq!(one.count_windows("x", &[(0, 1200)]).await?, vec![20]);
    // Not granted (two holds it): one's keys of it go.
    expire_claims(&admin, &schema).await?;
    assert_eq!(claim(&two, "x").await?, 1);
    assert_eq!(claim(&one, "x").await?, 0);
    assert_eq!(one.cached_keys(), 0);
    common::drop_schema(&url, &schema).await;
    Ok(())
}

#[tokio::test]
async fn an_own_purge_keeps_the_newer_keys_cached() -> TestResult {
    let Some(url) = common::server().await else {
        return Ok(());
    };
    let (schema_url, schema) = common::fresh_schema(&url, "seen_purge").await;
    let store = common::store(&schema_url, "one", 120).await;
    // 0, 60, ..., 2340: buckets of 600 s hold 10 rows each.
    let batch = rows(40);
    assert_eq!(claim(&store, "x").await?, 1);
    assert_eq!(store.insert_first_seen("x", &batch).await?, 40);
    assert_eq!(store.purge("x", 1200).await?, 20);
    assert_eq!(store.cached_keys(), 20, "the purged buckets only");
    assert_eq!(claim(&store, "x").await?, 1);
    assert_eq!(
        store.cached_keys(),
        20,
        "own purge: still valid at the next claim"
    );
    // The purged rows fetched again are new; the others are answered from the cache.
    assert_eq!(store.insert_first_seen("x", &batch).await?, 20);
    assert_eq!(store.count_windows("x", &[(0, 2400)]).await?, vec![40]);
    common::drop_schema(&url, &schema).await;
    Ok(())
}

#[tokio::test]
async fn a_store_without_a_cache_stores_every_batch_itself() -> TestResult {
    let Some(url) = common::server().await else {
        return Ok(());
    };
    let (schema_url, schema) = common::fresh_schema(&url, "seen_off").await;
    let options = dwmon_postgres_store::PostgresStoreOptions::default()
        .with_owner("one")
        .with_seen_cache_capacity(0);
    let store = PostgresStore::connect_with(&schema_url, &options).await?;
    assert_eq!(claim(&store, "x").await?, 1);
    assert_eq!(store.insert_first_seen("x", &rows(10)).await?, 10);
    assert_eq!(store.cached_keys(), 0);
    assert_eq!(store.insert_first_seen("x", &rows(12)).await?, 2);
    common::drop_schema(&url, &schema).await;
    Ok(())
}
