//! Checkers with a parent (`"parent"` in `__EXTRA__`) are checked after their parent in each
//! cycle, so the alerting judges a child's check after the parent's of the same minute.

use dwmon_core::testutil::{checker, every_minute, RecordingHandler, ScriptedSource, Step};
use dwmon_core::{Checker, Engine, EngineConfig, Event, MemoryStore};
use std::sync::Arc;
use std::time::Duration;

/// Tue 2023-11-14 22:14:00 UTC, a minute.
const T: i64 = 1_700_000_040;

fn with_parent(name: &str, parent: &str) -> Checker {
    let mut c = checker(name, vec![every_minute(0, 10, 60)]);
    c.extra = serde_json::json!({ "parent": parent });
    c
}

fn order(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| format!("{} {}", e.checker(), e.status()))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_child_is_checked_after_its_slow_parent() {
    let source = Arc::new(ScriptedSource::new());
    // The parent's query hangs until the fetch timeout; its children answer at once.
    source.set("z_db", Step::Hang);
    let handler = Arc::new(RecordingHandler::new());
    let engine = Engine::new(
        source.clone(),
        Arc::new(MemoryStore::new()),
        handler.clone(),
    )
    .with_config(EngineConfig {
        fetch_timeout: Duration::from_secs(5),
        ..EngineConfig::default()
    })
    .with_checkers(vec![
        with_parent("a_grandchild", "m_child"),
        with_parent("m_child", "z_db"),
        checker("other", vec![every_minute(0, 10, 60)]),
        checker("z_db", vec![every_minute(0, 10, 60)]),
    ]);
    engine.run_cycle(T).await;
    let events = handler.events();
    let seen = order(&events);
    let at = |name: &str| {
        seen.iter()
            .position(|s| s.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no event of {name} in {seen:?}"))
    };
    assert_eq!(seen[at("z_db")], "z_db ERROR", "{seen:?}");
    assert!(at("z_db") < at("m_child"), "{seen:?}");
    assert!(at("m_child") < at("a_grandchild"), "{seen:?}");
    // A checker without a parent does not wait for anybody.
    assert!(at("other") < at("z_db"), "{seen:?}");
    assert_eq!(source.call_count("a_grandchild"), 1);
}

#[tokio::test]
async fn a_parent_cycle_given_in_code_still_runs_every_checker() {
    let source = Arc::new(ScriptedSource::new());
    let handler = Arc::new(RecordingHandler::new());
    let engine =
        Engine::new(source, Arc::new(MemoryStore::new()), handler.clone()).with_checkers(vec![
            with_parent("a", "b"),
            with_parent("b", "a"),
            with_parent("c", "gone"),
        ]);
    engine.run_cycle(T).await;
    let mut seen = order(&handler.events());
    seen.sort();
    assert_eq!(seen, ["a GOOD", "b GOOD", "c GOOD"]);
}
