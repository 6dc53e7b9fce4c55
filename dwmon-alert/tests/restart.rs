//! Restart in the middle (issue 7): a FIRING state persisted in the SQLite store file
//! survives reopening the file and later resolves with exactly one `Resolved`.

mod common;

use common::{no_extra, record, RecordingNotifier, T0};
use dwmon_alert::{AlertHandler, AlertPhase, AlertStateStore, ChannelKind, Channels, Pause};
use dwmon_core::{CheckHandler, Event, Status};
use dwmon_sqlite::SqliteStore;
use std::sync::Arc;

fn handler(store: SqliteStore, notifier: Arc<RecordingNotifier>) -> AlertHandler {
    let channels = Channels::new().with(ChannelKind::Log, notifier);
    AlertHandler::new(Arc::new(store), channels).with_default_routes(dwmon_alert::Routes {
        targets: vec![dwmon_alert::Target::new(ChannelKind::Log, "")],
        repeat_seconds: None,
    })
}

fn check(minute: i64, status: Status) -> Event {
    Event::Check(record("orders", 0, minute, status, no_extra()))
}

#[tokio::test]
async fn firing_survives_a_restart_and_resolves_exactly_once(
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("dwmon.sqlite");

    let before = RecordingNotifier::new();
    {
        let first = handler(SqliteStore::open(&path)?, before.clone());
        first.handle(&check(T0, Status::Bad)).await?;
        first.handle(&check(T0 + 60, Status::Bad)).await?;
    } // "process" ends
    assert_eq!(before.kinds(), ["firing"]);

    let reopened = SqliteStore::open(&path)?;
    let state = reopened
        .alert_state("orders", 0)
        .await?
        .ok_or("state lost")?;
    assert_eq!(
        (state.phase, state.announced, state.last_minute),
        (AlertPhase::Firing, true, Some(T0 + 60))
    );

    let after = RecordingNotifier::new();
    let second = handler(reopened, after.clone());
    // The engine may redeliver the last check after a crash: a replay, nothing new.
    second.handle(&check(T0 + 60, Status::Bad)).await?;
    second.handle(&check(T0 + 120, Status::Bad)).await?;
    second.handle(&check(T0 + 180, Status::Good)).await?;
    second.handle(&check(T0 + 180, Status::Good)).await?;
    second.handle(&check(T0 + 240, Status::Good)).await?;
    assert_eq!(after.kinds(), ["resolved"]);
    assert_eq!(after.sent()[0].2, format!("orders/0/{}/resolved", T0 + 180));
    Ok(())
}

#[tokio::test]
async fn undelivered_notifications_survive_a_restart() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("dwmon.sqlite");
    {
        let failing = RecordingNotifier::new();
        failing.fail_next(1);
        let first = handler(SqliteStore::open(&path)?, failing.clone());
        assert!(first.handle(&check(T0, Status::Bad)).await.is_err());
        assert!(failing.kinds().is_empty());
    }
    let store = SqliteStore::open(&path)?;
    let overview = store.overview().await?;
    assert_eq!(overview.pending.len(), 1);
    assert_eq!(overview.pending[0].attempts, 1);

    let notifier = RecordingNotifier::new();
    let second = handler(store, notifier.clone());
    // The engine's outbox redelivers the check after the restart.
    second.handle(&check(T0, Status::Bad)).await?;
    assert_eq!(notifier.kinds(), ["firing"]);
    assert!(second.store().overview().await?.pending.is_empty());
    Ok(())
}

#[tokio::test]
async fn pauses_persist_and_expire() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("dwmon.sqlite");
    let pause = Pause {
        since: T0,
        until: Some(T0 + 120),
        comment: Some("migration".into()),
    };
    SqliteStore::open(&path)?
        .set_pause("orders", Some(&pause))
        .await?;

    let store = SqliteStore::open(&path)?;
    assert_eq!(store.pause("orders").await?, Some(pause));
    let notifier = RecordingNotifier::new();
    let handler = handler(store, notifier.clone());
    handler.handle(&check(T0, Status::Bad)).await?;
    handler.handle(&check(T0 + 60, Status::Bad)).await?;
    assert!(notifier.kinds().is_empty(), "paused");
    handler.handle(&check(T0 + 120, Status::Bad)).await?;
    assert_eq!(
        notifier.kinds(),
        ["firing"],
        "the pause expired at T0 + 120"
    );

    handler.store().set_pause("orders", None).await?;
    assert_eq!(handler.store().pause("orders").await?, None);
    let overview = handler.store().overview().await?;
    assert_eq!(overview.alerts.len(), 1);
    assert_eq!(overview.alerts[0].state.phase, AlertPhase::Firing);
    Ok(())
}

#[tokio::test]
async fn alert_tables_live_beside_the_store_tables_in_the_same_file(
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("dwmon.sqlite");
    let store = SqliteStore::open(&path)?;
    let rows = [dwmon_core::Row::new("a", T0)];
    dwmon_core::RowStore::insert_first_seen(&store, "orders", &rows).await?;
    store
        .set_pause(
            "orders",
            Some(&Pause {
                since: 0,
                until: None,
                comment: None,
            }),
        )
        .await?;
    let other = rusqlite::Connection::open(&path)?;
    let rows: i64 = other.query_row("SELECT COUNT(*) FROM rows", [], |r| r.get(0))?;
    assert_eq!(rows, 1);
    let names: Vec<String> = other
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'alert%' ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    assert_eq!(
        names,
        [
            "alert_history",
            "alert_outbox",
            "alert_pause",
            "alert_source",
            "alert_state"
        ]
    );
    Ok(())
}

#[tokio::test]
async fn prune_on_sqlite_forgets_deleted_requirements() -> Result<(), Box<dyn std::error::Error>> {
    let store = SqliteStore::open_in_memory()?;
    let notifier = RecordingNotifier::new();
    let handler = handler(store.clone(), notifier);
    for (checker, index) in [("orders", 0), ("orders", 1), ("gone", 0)] {
        let event = Event::Check(record(checker, index, T0, Status::Bad, no_extra()));
        handler.handle(&event).await?;
    }
    let known = std::collections::BTreeMap::from([("orders".to_string(), 1)]);
    assert_eq!(store.prune(&known).await?, 2);
    let left: Vec<(String, usize)> = store
        .overview()
        .await?
        .alerts
        .into_iter()
        .map(|e| (e.checker, e.requirement_index))
        .collect();
    assert_eq!(left, [("orders".to_string(), 0)]);
    Ok(())
}

#[tokio::test]
async fn the_alert_history_follows_the_checks_through_the_handler(
) -> Result<(), Box<dyn std::error::Error>> {
    use dwmon_alert::{HistoryState, NotificationKind};
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("dwmon.sqlite");
    {
        let first = handler(SqliteStore::open(&path)?, RecordingNotifier::new());
        first.handle(&check(T0, Status::Bad)).await?;
        first.handle(&check(T0 + 60, Status::Bad)).await?; // a reminder-free repeat
        first.handle(&check(T0 + 120, Status::Good)).await?;
        first.handle(&check(T0 + 120, Status::Good)).await?; // a replay adds nothing
    }
    let history = SqliteStore::open(&path)?.history("orders", 10).await?;
    let rows: Vec<_> = history
        .iter()
        .map(|e| (e.at, e.from, e.to, e.notification))
        .collect();
    assert_eq!(
        rows,
        [
            (
                T0 + 120,
                HistoryState::Firing,
                HistoryState::Ok,
                Some(NotificationKind::Resolved)
            ),
            (
                T0,
                HistoryState::Ok,
                HistoryState::Firing,
                Some(NotificationKind::Firing)
            ),
        ]
    );
    assert!(history.iter().all(|e| e
        .idempotency_key
        .as_deref()
        .is_some_and(|k| k.starts_with("orders/0/"))));
    Ok(())
}
