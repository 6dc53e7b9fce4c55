//! Round trips to the server, counted by a proxy in front of it: a cycle's claim of all of a
//! runner's checkers is one pipeline (plus the pool's check of the connection), however many
//! checkers it claims, so claiming costs at most 3 round trips per checker-cycle together with
//! the fence check in the record transaction (README "Several runners on one PostgreSQL
//! database").

mod common;

use common::proxy;
use dwmon_core::store::CheckLog;
use std::time::Duration;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn names(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("c{i:04}")).collect()
}

// Current-thread: the client writes a whole pipeline before the proxy reads it, so the count
// is exact.
#[tokio::test(flavor = "current_thread")]
async fn a_claim_is_one_round_trip_however_many_checkers() -> TestResult {
    let Some(url) = common::server().await else {
        return Ok(());
    };
    let (schema_url, schema) = common::fresh_schema(&url, "round_trips").await;
    let proxy = proxy::start(&schema_url).await;
    let store = common::single_connection(&proxy.url, "solo", Duration::from_secs(30)).await;
    let mut counted = Vec::new();
    for count in [1, 100, 1000] {
        let names = names(count);
        // The first claim of new checkers also creates their claim rows: count both.
        for _ in 0..2 {
            let (trips, statements) = (proxy.counts.round_trips(), proxy.counts.statements());
            let claims = store.claim(&names, 0).await?;
            counted.push((
                count,
                proxy.counts.round_trips() - trips,
                proxy.counts.statements() - statements,
                claims.len(),
            ));
        }
    }
    common::drop_schema(&url, &schema).await;

    for &(count, round_trips, statements, granted) in &counted {
        assert_eq!(granted, count, "a lone runner claims all {count} checkers");
        // One pipeline, and the pool's check that the connection is alive.
        assert!(
            round_trips <= 2,
            "claiming {count} checkers took {round_trips} round trips: {counted:?}"
        );
        // BEGIN, set_config, the new claim rows, the claim, COMMIT.
        assert_eq!(statements, 5, "statements of a claim: {counted:?}");
    }
    // With the fence check, one statement in the transaction that records the checker, a
    // cycle of a runner with a single checker costs at most 2 + 1 round trips for claiming.
    let claim = counted.iter().map(|c| c.1).max().unwrap_or(0);
    let fence_check = 1;
    assert!(claim + fence_check <= 3);
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn a_failed_claim_pipeline_leaves_no_transaction_open() -> TestResult {
    let Some(url) = common::server().await else {
        return Ok(());
    };
    let (schema_url, schema) = common::fresh_schema(&url, "claim_fails").await;
    let store = common::single_connection(&schema_url, "solo", Duration::from_millis(300)).await;
    let names = names(3);
    store.claim(&names, 0).await?;
    // Another session holds the runners table: the claim's statement times out.
    let admin = common::admin(&schema_url).await;
    admin
        .batch_execute("BEGIN; LOCK TABLE dwmon_runners IN ACCESS EXCLUSIVE MODE")
        .await?;
    let failed = store.claim(&names, 0).await;
    admin.batch_execute("ROLLBACK").await?;
    // The same (only) pooled connection claims again: it was left outside any transaction.
    let again = store.claim(&names, 0).await;
    let status = store.database_millis().await;
    common::drop_schema(&url, &schema).await;

    assert!(failed.is_err(), "the locked claim fails: {failed:?}");
    assert_eq!(again?.len(), 3, "the next claim on the connection works");
    assert!(status.is_ok());
    Ok(())
}
