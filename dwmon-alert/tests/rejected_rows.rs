//! Rejected rows are a data-quality report, not a broken source: through the engine, a
//! checker whose source keeps returning some unusable rows gets its checks alerted as usual
//! and no SourceError / SourceRecovered flip every cycle; a real fetch failure still gives
//! exactly one of each.

mod common;

use common::{RecordingNotifier, T0};
use dwmon_alert::{AlertHandler, ChannelKind, Channels, MemoryAlertStore};
use dwmon_core::testutil::{checker, every_minute, ScriptedSource, Step};
use dwmon_core::{Engine, ErrorKind, Fetched, MemoryStore, Row, SourceError};
use serde_json::json;
use std::sync::Arc;

fn engine(source: Arc<ScriptedSource>, notifier: Arc<RecordingNotifier>) -> Engine {
    let mut orders = checker("orders", vec![every_minute(1, 10, 60)]);
    orders.extra = json!({"alert": {"log": true}});
    let channels = Channels::new().with(ChannelKind::Log, notifier);
    let alerts = AlertHandler::new(Arc::new(MemoryAlertStore::new()), channels);
    Engine::new(source, Arc::new(MemoryStore::new()), Arc::new(alerts)).with_checkers(vec![orders])
}

/// One good row in the window of minute `k`, plus one rejected row.
fn partly_rejected(k: i64) -> Step {
    Step::Fetched(Fetched {
        rows: vec![Row::new(format!("o{k}"), T0 + k * 60 - 30)],
        rejected: 1,
        rejected_samples: vec!["row 2: dwmon_timestamp is NULL".into()],
    })
}

#[tokio::test]
async fn rejected_rows_do_not_flip_the_source_state() {
    let source = Arc::new(ScriptedSource::new());
    let notifier = RecordingNotifier::new();
    let engine = engine(source.clone(), notifier.clone());
    let mut rejected_events = 0;
    for k in 0..6 {
        source.set("orders", partly_rejected(k));
        let report = engine.run_cycle(T0 + k * 60 + 5).await;
        assert!(report
            .checks()
            .all(|c| c.status == dwmon_core::Status::Good));
        for error in report.errors() {
            assert_eq!(error.kind, ErrorKind::RejectedRows, "{error:?}");
            rejected_events += 1;
        }
    }
    assert_eq!(rejected_events, 6, "each cycle reports its rejected rows");
    assert_eq!(notifier.kinds(), Vec::<String>::new());

    // The good rows stop: the checks go BAD and fire, rejected rows or not.
    source.set(
        "orders",
        Step::Fetched(Fetched {
            rows: Vec::new(),
            rejected: 1,
            rejected_samples: Vec::new(),
        }),
    );
    engine.run_cycle(T0 + 6 * 60 + 5).await;
    assert_eq!(notifier.kinds(), ["firing"]);
}

#[tokio::test]
async fn a_fetch_failure_is_one_source_error_and_one_recovery() {
    let source = Arc::new(ScriptedSource::new());
    let notifier = RecordingNotifier::new();
    let engine = engine(source.clone(), notifier.clone());
    for k in 0..5 {
        let step = if (1..=3).contains(&k) {
            Step::Fail(SourceError::Connection {
                source_name: "default".into(),
                message: "connection refused".into(),
            })
        } else {
            // Every row so far, so the minutes caught up after the outage are GOOD too.
            Step::Rows(
                (0..=k)
                    .map(|j| Row::new(format!("o{j}"), T0 + j * 60 - 30))
                    .collect(),
            )
        };
        source.set("orders", step);
        let report = engine.run_cycle(T0 + k * 60 + 5).await;
        for error in report.errors() {
            assert_eq!(error.kind, ErrorKind::Fetch, "{error:?}");
        }
    }
    assert_eq!(notifier.kinds(), ["source_error", "source_recovered"]);
}
