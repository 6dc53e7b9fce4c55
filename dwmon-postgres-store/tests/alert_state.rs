//! `PostgresStore` as an `AlertStateStore`: the same round trips as `MemoryAlertStore` and
//! the SQLite store (dwmon-sqlite/tests/alert_state.rs), and one notification per key when two
//! runners enqueue it.

mod common;

use dwmon_core::alert_state::{
    AlertPhase, AlertState, AlertStateStore, AlertUpdate, ChannelKind, HistoryState,
    MemoryAlertStore, Notification, Pause, PendingNotification, SourceState, Target,
};
use std::collections::BTreeMap;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn notification(checker: &str, minute: i64) -> Result<Notification, serde_json::Error> {
    serde_json::from_value(serde_json::json!({
        "version": 1, "idempotency_key": format!("{checker}/1/{minute}/firing"), "kind": "firing",
        "requirement_index": 1,
        "incident_key": format!("{checker}/0"), "event_key": format!("{checker}/0/{minute}"),
        "checker": checker, "severity": "critical", "at": minute, "minute": minute,
        "minute_local": "1970-01-01T00:01:00+00:00", "timezone": "UTC"
    }))
}

fn firing(minute: i64) -> AlertState {
    AlertState {
        phase: AlertPhase::Firing,
        consecutive_bad: 1,
        last_minute: Some(minute),
        firing_since: Some(minute),
        announced: true,
        ..AlertState::default()
    }
}

/// What every `AlertStateStore` must do; run on memory and on SQLite.
async fn round_trips(store: &dyn AlertStateStore) -> TestResult {
    assert_eq!(store.alert_state("orders", 0).await?, None);
    assert_eq!(store.pause("orders").await?, None);
    let target = Target::new(ChannelKind::Log, "");
    let mut entry = PendingNotification::new(notification("orders", 60)?, vec![target.clone()]);
    let update = AlertUpdate {
        checker: "orders".into(),
        alert: Some((1, firing(60))),
        source: Some(SourceState {
            failing: true,
            since: Some(0),
            last_error: Some("timeout".into()),
            ..SourceState::default()
        }),
        notifications: vec![entry.clone()],
        at: Some(60),
    };
    store.apply(&update).await?;
    assert_eq!(store.alert_state("orders", 1).await?, Some(firing(60)));
    assert_eq!(store.alert_states("orders").await?, [(1, firing(60))]);
    assert!(store
        .source_state("orders")
        .await?
        .is_some_and(|s| s.failing));
    // A second enqueue of the same key keeps the first entry and its progress.
    entry.delivered.push(target.id());
    entry.attempts = 2;
    entry.last_error = Some("down".into());
    store.save_progress(&entry).await?;
    store.apply(&update).await?;
    assert_eq!(store.pending("orders").await?, [entry.clone()]);
    assert!(store.pending("other").await?.is_empty());
    // The history: the requirement's change with its notification and the source's, once
    // (the replayed enqueue above added nothing).
    let history: Vec<_> = store
        .history("orders", 10)
        .await?
        .into_iter()
        .map(|e| (e.at, e.requirement_index, e.from, e.to, e.idempotency_key))
        .collect();
    assert_eq!(
        history,
        [
            (
                60,
                None,
                HistoryState::SourceOk,
                HistoryState::SourceError,
                None
            ),
            (
                60,
                Some(1),
                HistoryState::Ok,
                HistoryState::Firing,
                Some("orders/1/60/firing".to_string())
            ),
        ],
        "newest first"
    );
    assert_eq!(store.history("orders", 1).await?.len(), 1);
    assert!(store.history("other", 10).await?.is_empty());
    store.complete(&entry.notification.idempotency_key).await?;
    assert!(store.pending("orders").await?.is_empty());

    let pause = Pause {
        since: 0,
        until: Some(3600),
        comment: Some("migration".into()),
    };
    store.set_pause("orders", Some(&pause)).await?;
    assert_eq!(store.pause("orders").await?, Some(pause.clone()));
    let overview = store.overview().await?;
    assert_eq!(overview.alerts.len(), 1);
    assert_eq!(overview.sources.len(), 1);
    assert_eq!(overview.pauses, [("orders".to_string(), pause)]);
    store.set_pause("orders", None).await?;
    assert_eq!(store.pause("orders").await?, None);
    let newest = store.history("orders", 1).await?;
    assert_eq!(
        newest
            .iter()
            .map(|e| (e.at, e.from, e.to))
            .collect::<Vec<_>>(),
        [(0, HistoryState::Active, HistoryState::Paused)]
    );

    for (checker, index) in [("orders", 0), ("orders", 2), ("gone", 0)] {
        store
            .apply(&AlertUpdate {
                checker: checker.into(),
                alert: Some((index, AlertState::default())),
                ..AlertUpdate::default()
            })
            .await?;
    }
    let known = BTreeMap::from([("orders".to_string(), 2)]);
    assert_eq!(store.prune(&known).await?, 2, "orders #2 and gone #0");
    let left: Vec<usize> = store
        .alert_states("orders")
        .await?
        .into_iter()
        .map(|(i, _)| i)
        .collect();
    assert_eq!(left, [0, 1]);
    assert_eq!(store.source_state("gone").await?, None);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_and_postgres_alert_stores_behave_alike() -> TestResult {
    round_trips(&MemoryAlertStore::new()).await?;
    let Some(url) = common::server().await else {
        return Ok(());
    };
    let (schema_url, schema) = common::fresh_schema(&url, "alert").await;
    let store = common::store(&schema_url, "one", 120).await;
    let result = round_trips(&store).await;
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
    let entry = PendingNotification::new(notification("orders", 60)?, vec![target]);
    let update = AlertUpdate {
        checker: "orders".into(),
        alert: Some((1, firing(60))),
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
