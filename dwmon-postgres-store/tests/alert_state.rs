//! `PostgresStore` as an `AlertStateStore`: the same round trips as `MemoryAlertStore` and
//! the SQLite store (dwmon-sqlite/tests/alert_state.rs), and one notification per key when two
//! runners enqueue it.

mod common;

use dwmon_core::alert_state::{
    AlertStateStore, AlertUpdate, ChannelKind, MemoryAlertStore, PendingNotification, Target,
};
use dwmon_core::testutil::{alert_state_round_trips, firing_notification, firing_state};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_and_postgres_alert_stores_behave_alike() -> TestResult {
    alert_state_round_trips(&MemoryAlertStore::new()).await?;
    let Some(url) = common::server().await else {
        return Ok(());
    };
    let (schema_url, schema) = common::fresh_schema(&url, "alert").await;
    let store = common::store(&schema_url, "one", 120).await;
    let result = alert_state_round_trips(&store).await;
    common::drop_schema(&url, &schema).await;
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runners_enqueueing_one_notification_store_it_once() -> TestResult {
    let Some(url) = common::server().await else {
        return Ok(());
    };
    let (schema_url, schema) = common::fresh_schema(&url, "alert_two").await;
    let one = common::store(&schema_url, "one", 120).await;
    let two = common::store(&schema_url, "two", 120).await;
    let target = Target::new(ChannelKind::Log, "");
    let entry = PendingNotification::new(firing_notification("orders", 60)?, vec![target]);
    let update = AlertUpdate {
        checker: "orders".into(),
        alert: Some((1, firing_state(60))),
        notifications: vec![entry.clone()],
        at: Some(60),
        ..AlertUpdate::default()
    };
    let (a, b) = futures::join!(one.apply(&update), two.apply(&update));
    a?;
    b?;
    let pending = one.pending("orders").await?;
    let history = two.history("orders", 10).await?;
    common::drop_schema(&url, &schema).await;
    assert_eq!(pending, [entry]);
    assert_eq!(history.len(), 1, "one firing in the history: {history:?}");
    Ok(())
}
