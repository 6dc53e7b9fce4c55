//! Delivery per handler target (issue 15 item 2): a target that fails holds back neither the
//! other targets nor the checker's later records for them; each target still sees a checker's
//! records in order; a target failing past the give-up age is given up with one `ERROR` event.

use async_trait::async_trait;
use dwmon_core::engine::EngineConfig;
use dwmon_core::testutil::{checker, every_minute, ScriptedSource};
use dwmon_core::{
    CheckHandler, Engine, ErrorKind, Event, HandlerError, MemoryStore, Row, Status, StoreView,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Tue 2023-11-14 22:14:00 UTC, a minute.
const T: i64 = 1_700_000_040;
const MIN: i64 = 60;

/// A handler with two targets, `stdout` and `hook`; `hook` fails while `down` is set.
#[derive(Default)]
struct TwoTargets {
    down: AtomicBool,
    /// `hook` rejects records for good (a permanent error) while set.
    rejects: AtomicBool,
    /// Per target, the minutes it received, in arrival order.
    received: Mutex<BTreeMap<String, Vec<i64>>>,
    errors: Mutex<Vec<Event>>,
    gave_up: Mutex<Vec<(String, i64)>>,
}

impl TwoTargets {
    fn minutes(&self, target: &str) -> Vec<i64> {
        let received = self.received.lock().unwrap();
        received.get(target).cloned().unwrap_or_default()
    }
}

#[async_trait]
impl CheckHandler for TwoTargets {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        if let Event::Error(_) = event {
            self.errors.lock().unwrap().push(event.clone());
            return Ok(());
        }
        for target in ["stdout", "hook"] {
            self.deliver_to(target, event, 0).await?;
        }
        Ok(())
    }

    fn targets(&self, _event: &Event) -> Vec<String> {
        vec!["stdout".into(), "hook".into()]
    }

    async fn deliver_to(
        &self,
        target: &str,
        event: &Event,
        _failed_attempts: u32,
    ) -> Result<(), HandlerError> {
        let Event::Check(record) = event else {
            return Ok(());
        };
        if target == "hook" && self.down.load(Ordering::SeqCst) {
            return Err(HandlerError::new("hook answered 500"));
        }
        if target == "hook" && self.rejects.load(Ordering::SeqCst) {
            let cause = std::io::Error::other("422 Unprocessable Entity");
            return Err(HandlerError::permanent("hook rejected the record").with_source(cause));
        }
        let mut received = self.received.lock().unwrap();
        received
            .entry(target.to_string())
            .or_default()
            .push(record.minute);
        Ok(())
    }

    async fn gave_up(&self, target: &str, event: &Event) {
        if let Event::Check(record) = event {
            let mut gave_up = self.gave_up.lock().unwrap();
            gave_up.push((target.to_string(), record.minute));
        }
    }
}

fn engine(handler: Arc<TwoTargets>, store: Arc<MemoryStore>, config: EngineConfig) -> Engine {
    let source = Arc::new(ScriptedSource::new());
    source.set_rows("orders", vec![Row::new("o1", T - 30)]);
    Engine::new(source, store, handler)
        .with_config(config)
        .with_checkers(vec![checker("orders", vec![every_minute(0, 10, 60)])])
}

#[tokio::test]
async fn a_failing_target_holds_back_neither_the_other_target_nor_later_records() {
    let handler = Arc::new(TwoTargets::default());
    let store = Arc::new(MemoryStore::new());
    let engine = engine(handler.clone(), store.clone(), EngineConfig::default());
    handler.down.store(true, Ordering::SeqCst);
    let minutes: Vec<i64> = (0..30).map(|i| T + i * MIN).collect();
    for (i, &minute) in minutes.iter().enumerate() {
        let report = engine.run_cycle(minute + 5).await;
        assert_eq!(report.checks().count(), 1);
        assert_eq!(
            handler.minutes("stdout"),
            minutes[..=i],
            "stdout gets each record in its own cycle"
        );
    }
    assert!(handler.minutes("hook").is_empty());
    let status = store.status().await.unwrap();
    assert_eq!(status[0].pending_deliveries, 30, "all owed to the hook");

    // The hook is back: the retry after the backoff brings it everything, in order, and
    // stdout nothing twice.
    handler.down.store(false, Ordering::SeqCst);
    let later = T + 120 * MIN;
    engine.run_cycle(later + 5).await;
    let hook = handler.minutes("hook");
    assert_eq!(hook[..30], minutes[..], "in order, none lost");
    assert!(hook.windows(2).all(|w| w[0] < w[1]), "{hook:?}");
    let stdout = handler.minutes("stdout");
    assert!(
        stdout.windows(2).all(|w| w[0] < w[1]),
        "once each: {stdout:?}"
    );
    assert_eq!(store.status().await.unwrap()[0].pending_deliveries, 0);
    assert!(handler.errors.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_target_failing_past_the_give_up_age_is_given_up_with_one_error_event() {
    let handler = Arc::new(TwoTargets::default());
    let store = Arc::new(MemoryStore::new());
    let config = EngineConfig {
        delivery_give_up_seconds: 3600,
        ..EngineConfig::default()
    };
    let engine = engine(handler.clone(), store.clone(), config);
    handler.down.store(true, Ordering::SeqCst);
    // Every minute for an hour and a half: the first record's retry after an hour fails
    // again and gives the hook up (for everything it is owed), once.
    let mut give_up_cycles = Vec::new();
    for i in 0..90 {
        let report = engine.run_cycle(T + i * MIN + 5).await;
        let outcome = report.outcome("orders").unwrap();
        if outcome.given_up > 0 {
            give_up_cycles.push((i, outcome.given_up));
        }
    }
    assert_eq!(give_up_cycles.len(), 1, "{give_up_cycles:?}");
    let (cycle, count) = give_up_cycles[0];
    assert!(cycle >= 60, "not before the give-up age: {cycle}");
    assert_eq!(count, u64::try_from(cycle + 1).unwrap(), "everything owed");
    assert_eq!(*handler.gave_up.lock().unwrap(), [("hook".to_string(), T)]);

    let errors = handler.errors.lock().unwrap().clone();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let Event::Error(error) = &errors[0] else {
        panic!("an error event")
    };
    assert_eq!(error.kind, ErrorKind::DeliveryGivenUp);
    assert_eq!(error.status, Status::Error);
    assert_eq!(error.extra, serde_json::json!({}), "default route");
    assert!(error.error.contains("orders"), "{}", error.error);
    assert!(error.error.contains("\"hook\""), "{}", error.error);
    assert!(error.error.contains("hook answered 500"), "{}", error.error);

    let status = store.status().await.unwrap();
    assert_eq!(status[0].given_up_deliveries, count);
    let (minute, text) = status[0].last_give_up.clone().unwrap();
    assert_eq!(minute, T + cycle * MIN);
    assert_eq!(text, error.error);
    // Given-up records are settled; the later ones are owed to the hook afresh.
    assert_eq!(
        status[0].pending_deliveries,
        u64::try_from(89 - cycle).unwrap()
    );
    assert_eq!(handler.minutes("stdout").len(), 90);
}

#[tokio::test]
async fn a_permanent_error_gives_the_delivery_up_at_once_and_keeps_its_cause() {
    let handler = Arc::new(TwoTargets::default());
    let store = Arc::new(MemoryStore::new());
    let engine = engine(handler.clone(), store.clone(), EngineConfig::default());
    handler.rejects.store(true, Ordering::SeqCst);
    let report = engine.run_cycle(T + 5).await;
    let outcome = report.outcome("orders").unwrap();
    assert_eq!(outcome.given_up, 1, "given up at the first failure");
    assert_eq!(outcome.delivery_failures, 0, "not kept for a retry");
    assert_eq!(*handler.gave_up.lock().unwrap(), [("hook".to_string(), T)]);
    assert_eq!(handler.minutes("stdout"), [T], "the other target got it");

    let errors = handler.errors.lock().unwrap().clone();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let Event::Error(error) = &errors[0] else {
        panic!("an error event")
    };
    assert_eq!(error.kind, ErrorKind::DeliveryGivenUp);
    assert!(error.error.contains("\"hook\""), "{}", error.error);
    assert!(error.error.contains("permanent"), "{}", error.error);
    assert!(
        error
            .error
            .contains("hook rejected the record: 422 Unprocessable Entity"),
        "the message and its cause: {}",
        error.error
    );
    let status = store.status().await.unwrap();
    assert_eq!(status[0].pending_deliveries, 0, "nothing left to retry");
    assert_eq!(status[0].given_up_deliveries, 1);
    assert_eq!(
        status[0].last_give_up.clone().unwrap(),
        (T, error.error.clone())
    );

    // The hook takes records again: the given-up one is never sent, the next one is.
    handler.rejects.store(false, Ordering::SeqCst);
    for i in 1..4 {
        engine.run_cycle(T + i * MIN + 5).await;
    }
    assert_eq!(handler.minutes("hook"), [T + MIN, T + 2 * MIN, T + 3 * MIN]);
    assert_eq!(handler.gave_up.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_handler_without_targets_keeps_its_records_in_order() {
    // The default (one target): a failing record holds back the checker's later ones.
    let store = Arc::new(MemoryStore::new());
    let handler = Arc::new(dwmon_core::testutil::RecordingHandler::new());
    let source = Arc::new(ScriptedSource::new());
    let config = EngineConfig {
        retry_base_seconds: 120,
        ..EngineConfig::default()
    };
    let engine = Engine::new(source, store.clone(), handler.clone())
        .with_config(config)
        .with_checkers(vec![checker("orders", vec![every_minute(0, 10, 60)])]);
    handler.fail_next(1);
    engine.run_cycle(T + 5).await;
    engine.run_cycle(T + MIN + 5).await;
    assert!(handler.checks().is_empty());
    assert_eq!(store.status().await.unwrap()[0].pending_deliveries, 2);
    engine.run_cycle(T + 2 * MIN + 5).await;
    let minutes: Vec<i64> = handler.checks().iter().map(|c| c.minute).collect();
    assert_eq!(minutes, [T, T + MIN, T + 2 * MIN]);
}
