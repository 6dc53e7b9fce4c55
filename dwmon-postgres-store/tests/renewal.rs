//! Claim renewal on a real PostgreSQL store (issue 11, "renew while fetching"): a renewal
//! extends the lease on the database's clock and keeps the fence, so the holder still
//! records; a stale holder's renewal is refused and its record stays refused; a runner whose
//! fetch outlives its lease keeps the checker when it renews, where without renewal another
//! runner takes the checker over; and a renewal is one round trip for the whole batch, under
//! the store's statement timeout.
//!
//! "The lease has run out" is set in the database (`until = now()`), not waited for: the
//! lease is a parameter, so no test sleeps through one.

mod common;

use async_trait::async_trait;
use dwmon_core::store::CheckerClaim;
use dwmon_core::testutil::{checker, every_minute, RecordingHandler, ScriptedSource};
use dwmon_core::{
    CheckLog, CheckRecord, Engine, EngineConfig, FetchRequest, Fetched, Row, RowGetter,
    SourceError, Status, Store, StoreError, StoreView,
};
use dwmon_postgres_store::PostgresStore;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const MIN: i64 = 60;

/// A minute 40 minutes before the database's clock (records may not be ahead of it).
async fn past_minute(store: &PostgresStore) -> Result<i64, StoreError> {
    Ok((store.database_millis().await? / 1000 / MIN - 40) * MIN)
}

fn record(checker: &str, minute: i64) -> CheckRecord {
    CheckRecord {
        checker: checker.into(),
        requirement_index: 0,
        requirement: "r".into(),
        minute,
        minute_local: String::new(),
        timezone: "UTC".into(),
        lookback_seconds: 60,
        count: 1,
        min: 1,
        max: 9,
        status: Status::Good,
        extra: serde_json::json!({}),
        monitor: None,
        runs: None,
    }
}

async fn claim(store: &PostgresStore, checker: &str) -> Result<Vec<CheckerClaim>, StoreError> {
    store.claim(&[checker.to_string()], 0).await
}

/// Ends the lease of `checker`'s claim now, on the database's clock, as if its length had
/// passed.
async fn run_out(client: &tokio_postgres::Client, schema: &str, checker: &str) {
    client
        .execute(
            &format!("UPDATE {schema}.dwmon_claims SET until = now() WHERE checker = $1"),
            &[&checker],
        )
        .await
        .expect("end the lease");
}

/// Seconds from the database's clock to the end of `checker`'s lease.
async fn lease_left(client: &tokio_postgres::Client, schema: &str, checker: &str) -> f64 {
    let row = client
        .query_one(
            &format!(
                "SELECT extract(epoch FROM until - now())::float8 FROM {schema}.dwmon_claims
                 WHERE checker = $1"
            ),
            &[&checker],
        )
        .await
        .expect("read the lease");
    row.get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_extends_the_lease_and_keeps_the_fence() -> TestResult {
    let Some(url) = common::server().await else {
        return Ok(());
    };
    let (schema_url, schema) = common::fresh_schema(&url, "renew").await;
    let holder = common::store(&schema_url, "holder", 120).await;
    let other = common::store(&schema_url, "other", 120).await;
    let admin = common::admin(&url).await;
    let minute = past_minute(&holder).await?;
    let claims = claim(&holder, "orders").await?;
    run_out(&admin, &schema, "orders").await;
    let left_before = lease_left(&admin, &schema, "orders").await;
    let renewed = holder.renew(&claims).await?;
    let left_after = lease_left(&admin, &schema, "orders").await;
    let taken = claim(&other, "orders").await?;
    let recorded = holder
        .record(&renewed[0], &[record("orders", minute)])
        .await;
    let nothing = holder.renew(&[]).await?;
    common::drop_schema(&url, &schema).await;

    assert_eq!(renewed.len(), 1, "{renewed:?}");
    assert_eq!(renewed[0].fence, claims[0].fence, "the fence stays");
    assert!(
        renewed[0].until >= claims[0].until,
        "{} < {}",
        renewed[0].until,
        claims[0].until
    );
    assert!(left_before <= 0.0, "the lease had run out: {left_before}");
    assert!(
        (110.0..=121.0).contains(&left_after),
        "renewed to a lease from now: {left_after} s left"
    );
    assert!(
        taken.is_empty(),
        "a renewed claim is not taken over: {taken:?}"
    );
    assert_eq!(recorded?.inserted.len(), 1, "the renewed claim records");
    assert!(nothing.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_holder_cannot_renew_and_its_record_stays_refused() -> TestResult {
    let Some(url) = common::server().await else {
        return Ok(());
    };
    let (schema_url, schema) = common::fresh_schema(&url, "renew_stale").await;
    // A lease of 0 s: the stale holder's claim ends at once and the new owner takes it.
    let stale = common::store(&schema_url, "stale", 0).await;
    let owner = common::store(&schema_url, "owner", 120).await;
    let admin = common::admin(&url).await;
    let minute = past_minute(&stale).await?;
    let old = claim(&stale, "orders").await?;
    let new = claim(&owner, "orders").await?;
    let left_before = lease_left(&admin, &schema, "orders").await;
    let refused = stale.renew(&old).await?;
    let left_after = lease_left(&admin, &schema, "orders").await;
    let stale_record = stale.record(&old[0], &[record("orders", minute)]).await;
    let renewed = owner.renew(&new).await?;
    let owner_record = owner.record(&renewed[0], &[record("orders", minute)]).await;
    let log = owner
        .checks_before("orders", (i64::MAX, usize::MAX), 10)
        .await?;
    common::drop_schema(&url, &schema).await;

    assert_eq!(new.len(), 1, "the new owner took the checker over");
    assert!(new[0].fence > old[0].fence);
    assert!(
        refused.is_empty(),
        "the stale holder's renewal is refused: {refused:?}"
    );
    assert!(
        (left_after - left_before).abs() < 5.0,
        "and leaves the new owner's lease alone: {left_before} -> {left_after}"
    );
    assert!(
        matches!(stale_record, Err(StoreError::StaleClaim { .. })),
        "{stale_record:?}"
    );
    assert_eq!(renewed.len(), 1);
    assert_eq!(renewed[0].fence, new[0].fence);
    assert_eq!(owner_record?.inserted.len(), 1);
    assert_eq!(log.len(), 1, "one record of the minute");
    Ok(())
}

/// The slow runner's source: during its fetch the lease runs out, then (if the runner renews)
/// the fetch waits until the lease was renewed past it; then another runner runs a cycle.
struct OutlivedFetch {
    admin: tokio_postgres::Client,
    schema: String,
    renews: bool,
    other: Mutex<Option<(Arc<Engine>, i64)>>,
    rows: Vec<Row>,
}

#[async_trait]
impl RowGetter for OutlivedFetch {
    async fn get_rows(&self, _request: &FetchRequest<'_>) -> Result<Fetched, SourceError> {
        run_out(&self.admin, &self.schema, "orders").await;
        if self.renews {
            // The renewal runs every 50 ms; waiting for it is waiting for an event, bounded.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while lease_left(&self.admin, &self.schema, "orders").await < 60.0 {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no renewal within 30 s"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let other = self.other.lock().map(|mut o| o.take()).unwrap_or_default();
        if let Some((engine, now)) = other {
            engine.run_cycle(now).await;
        }
        Ok(Fetched::from_rows(self.rows.clone()))
    }
}

/// One cycle of a slow runner whose fetch outlives its lease while another runner runs a
/// cycle: the minutes each recorded (slow, other) and the rows counted in the log.
async fn outlived_fetch(renews: bool) -> Result<Option<(usize, usize, Vec<u64>)>, StoreError> {
    let Some(url) = common::server().await else {
        return Ok(None);
    };
    let test = if renews {
        "outlived_renewed"
    } else {
        "outlived"
    };
    let (schema_url, schema) = common::fresh_schema(&url, test).await;
    let slow_store = common::store(&schema_url, "slow", 120).await;
    let other_store = common::store(&schema_url, "other", 120).await;
    let minute = past_minute(&slow_store).await?;
    let names = [checker("orders", vec![every_minute(1, 5, 60)])];
    let theirs = Arc::new(ScriptedSource::new());
    theirs.set_rows(
        "orders",
        vec![Row::new("a", minute - 30), Row::new("b", minute - 20)],
    );
    let (slow_handler, other_handler) = (
        Arc::new(RecordingHandler::new()),
        Arc::new(RecordingHandler::new()),
    );
    let other_store: Arc<dyn Store> = Arc::new(other_store);
    let other = Arc::new(
        Engine::new(theirs, other_store, other_handler.clone()).with_checkers(names.to_vec()),
    );
    let source = Arc::new(OutlivedFetch {
        admin: common::admin(&url).await,
        schema: schema.clone(),
        renews,
        other: Mutex::new(Some((other, minute + 5))),
        rows: vec![Row::new("c", minute - 10)],
    });
    let config = EngineConfig {
        claim_renew_interval: if renews {
            Duration::from_millis(50)
        } else {
            Duration::ZERO
        },
        ..EngineConfig::default()
    };
    let slow_arc: Arc<dyn Store> = Arc::new(slow_store.clone());
    let slow = Engine::new(source, slow_arc, slow_handler.clone())
        .with_config(config)
        .with_checkers(names.to_vec());
    let report = slow.run_cycle(minute + 5).await;
    let log = slow_store
        .checks_before("orders", (i64::MAX, usize::MAX), 10)
        .await?;
    common::drop_schema(&url, &schema).await;
    let errors: Vec<_> = report.errors().map(|e| e.error.clone()).collect();
    assert!(errors.is_empty(), "no errors: {errors:?}");
    Ok(Some((
        slow_handler.checks().len(),
        other_handler.checks().len(),
        log.iter().map(|r| r.count).collect(),
    )))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_that_outlives_its_lease_but_renews_keeps_its_claim_and_records() -> TestResult {
    let Some((slow, other, counts)) = outlived_fetch(true).await? else {
        return Ok(());
    };
    assert_eq!(other, 0, "the other runner found the checker still claimed");
    assert_eq!(slow, 1, "the slow runner recorded and delivered its check");
    assert_eq!(counts, [1], "the slow runner's count (row c), once");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_renewal_the_outlived_fetch_loses_the_checker() -> TestResult {
    let Some((slow, other, counts)) = outlived_fetch(false).await? else {
        return Ok(());
    };
    assert_eq!(slow, 0, "the stale runner's record was refused");
    assert_eq!(other, 1, "the other runner took the checker over");
    assert_eq!(counts, [2], "the other runner's count (rows a and b), once");
    Ok(())
}

// Current-thread: the client writes a whole pipeline before the proxy reads it, so the count
// is exact.
#[tokio::test(flavor = "current_thread")]
async fn a_renewal_is_one_round_trip_however_many_claims() -> TestResult {
    let Some(url) = common::server().await else {
        return Ok(());
    };
    let (schema_url, schema) = common::fresh_schema(&url, "renew_trips").await;
    let proxy = common::proxy::start(&schema_url).await;
    let store = common::single_connection(&proxy.url, "solo", Duration::from_secs(30)).await;
    let mut counted = Vec::new();
    for count in [1, 1000] {
        let names: Vec<String> = (0..count).map(|i| format!("c{i:04}")).collect();
        let claims = store.claim(&names, 0).await?;
        let (trips, statements) = (proxy.counts.round_trips(), proxy.counts.statements());
        let started = std::time::Instant::now();
        let renewed = store.renew(&claims).await?;
        // A figure for the report (`--nocapture`), not an assertion.
        eprintln!("renewing {count} claims: {:?}", started.elapsed());
        counted.push((
            count,
            proxy.counts.round_trips() - trips,
            proxy.counts.statements() - statements,
            renewed.len(),
        ));
    }
    common::drop_schema(&url, &schema).await;

    for &(count, round_trips, statements, renewed) in &counted {
        assert_eq!(renewed, count, "all {count} claims held: {counted:?}");
        // One pipeline, and the pool's check that the connection is alive.
        assert!(round_trips <= 2, "renewing {count}: {counted:?}");
        // BEGIN, set_config, the renewal, COMMIT.
        assert_eq!(statements, 4, "statements of a renewal: {counted:?}");
    }
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn a_renewal_that_times_out_leaves_no_transaction_open() -> TestResult {
    let Some(url) = common::server().await else {
        return Ok(());
    };
    let (schema_url, schema) = common::fresh_schema(&url, "renew_fails").await;
    let store = common::single_connection(&schema_url, "solo", Duration::from_millis(300)).await;
    let claims = claim(&store, "orders").await?;
    // Another session holds the claims table: the renewal's statement times out.
    let admin = common::admin(&schema_url).await;
    admin
        .batch_execute("BEGIN; LOCK TABLE dwmon_claims IN ACCESS EXCLUSIVE MODE")
        .await?;
    let failed = store.renew(&claims).await;
    admin.batch_execute("ROLLBACK").await?;
    // The same (only) pooled connection renews again: it was left outside any transaction.
    let again = store.renew(&claims).await;
    common::drop_schema(&url, &schema).await;

    assert!(
        matches!(failed, Err(StoreError::Busy { .. })),
        "the locked renewal times out: {failed:?}"
    );
    assert_eq!(again?.len(), 1, "the next renewal on the connection works");
    Ok(())
}
