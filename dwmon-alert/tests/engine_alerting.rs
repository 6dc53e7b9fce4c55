//! Issue 7 "done when", end to end through the engine: a checker that goes BAD pages once,
//! reminds every repeat interval, and sends exactly one resolution when it recovers — across
//! a restart of the runner (alert state in an SQLite file, check store kept).

mod common;

use common::{RecordingNotifier, T0};
use dwmon_alert::{AlertHandler, ChannelKind, Channels};
use dwmon_core::testutil::{checker, every_minute, ScriptedSource};
use dwmon_core::{Engine, MemoryStore, Row};
use dwmon_sqlite::SqliteStore;
use serde_json::json;
use std::path::Path;
use std::sync::Arc;

fn engine(
    path: &Path,
    source: Arc<ScriptedSource>,
    store: Arc<MemoryStore>,
    notifier: Arc<RecordingNotifier>,
) -> Result<Engine, Box<dyn std::error::Error>> {
    let mut orders = checker("orders", vec![every_minute(1, 10, 60)]);
    orders.extra = json!({"alert": {"log": true, "repeat_seconds": 600}});
    let channels = Channels::new().with(ChannelKind::Log, notifier);
    let alerts = AlertHandler::new(Arc::new(SqliteStore::open(path)?), channels);
    Ok(Engine::new(source, store, Arc::new(alerts)).with_checkers(vec![orders]))
}

#[tokio::test]
async fn pages_once_reminds_and_resolves_once_across_a_restart(
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("dwmon.sqlite");
    let source = Arc::new(ScriptedSource::new());
    let store = Arc::new(MemoryStore::new());

    // Minutes 0..=15 without rows: BAD every minute.
    let before = RecordingNotifier::new();
    {
        let engine = engine(&path, source.clone(), store.clone(), before.clone())?;
        for k in 0..=15 {
            engine.run_cycle(T0 + k * 60 + 5).await;
        }
    } // the runner stops
    let keys =
        |n: &RecordingNotifier| -> Vec<String> { n.sent().into_iter().map(|s| s.2).collect() };
    assert_eq!(
        keys(&before),
        [
            format!("orders/0/{T0}/firing"),
            format!("orders/0/{}/reminder", T0 + 600),
        ]
    );

    // A new runner on the same files: still firing, the next reminder 10 minutes after the
    // last one, then rows arrive and it resolves exactly once.
    let after = RecordingNotifier::new();
    let engine = engine(&path, source.clone(), store, after.clone())?;
    for k in 16..=21 {
        engine.run_cycle(T0 + k * 60 + 5).await;
    }
    for k in 22..=25 {
        source.set_rows("orders", vec![Row::new(format!("o{k}"), T0 + k * 60 - 30)]);
        engine.run_cycle(T0 + k * 60 + 5).await;
    }
    assert_eq!(
        keys(&after),
        [
            format!("orders/0/{}/reminder", T0 + 1200),
            format!("orders/0/{}/resolved", T0 + 22 * 60),
        ]
    );
    Ok(())
}
