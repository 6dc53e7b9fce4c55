//! Every transaction of the store runs under its `statement_timeout`: a statement stuck
//! behind another session's lock fails as `StoreError::Busy` once the timeout passes, for
//! writes and for reads.

mod common;

use dwmon_core::store::CheckLog;
use dwmon_core::{Row, RowStore, StoreError};
use dwmon_postgres_store::{PostgresStore, PostgresStoreOptions};
use std::time::{Duration, Instant};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[tokio::test]
async fn a_statement_stuck_behind_a_lock_fails_busy_after_the_timeout() -> TestResult {
    let Some(url) = common::server().await else {
        return Ok(());
    };
    let (schema_url, schema) = common::fresh_schema(&url, "timeouts").await;
    let options = PostgresStoreOptions::default()
        .with_owner("one")
        .with_statement_timeout(Duration::from_millis(300));
    let store = PostgresStore::connect_with(&schema_url, &options).await?;
    store.claim(&["x".to_owned()], 0).await?;
    store.insert_first_seen("x", &[Row::new("a", 1)]).await?;
    // Another session holds every row of the store's tables.
    // Another session holds the store's tables, for 10 s (so a store without the timeout
    // fails this test instead of hanging it).
    let admin = common::admin(&url).await;
    admin
        .batch_execute(&format!(
            "BEGIN; LOCK TABLE {schema}.dwmon_rows, {schema}.dwmon_claims IN ACCESS EXCLUSIVE MODE"
        ))
        .await?;
    let holder = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(10)).await;
        admin.batch_execute("ROLLBACK").await
    });
    let started = Instant::now();
    let write = store.insert_first_seen("x", &[Row::new("b", 2)]).await;
    let read = store.count_windows("x", &[(0, 10)]).await;
    let claim = store.claim(&["x".to_owned()], 0).await;
    let waited = started.elapsed();
    for (what, result) in [
        ("insert", write.map(|_| ())),
        ("count", read.map(|_| ())),
        ("claim", claim.map(|_| ())),
    ] {
        assert!(
            matches!(result, Err(StoreError::Busy { .. })),
            "{what}: {result:?}"
        );
    }
    // Three statements timed out, each after about 300 ms (the claim is tried again on
    // deadlocks only), and none waited for the lock holder.
    assert!(waited < Duration::from_secs(5), "waited {waited:?}");
    holder.await??;
    assert_eq!(store.count_windows("x", &[(0, 10)]).await?, vec![1]);
    common::drop_schema(&url, &schema).await;
    Ok(())
}
