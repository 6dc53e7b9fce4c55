//! A long catch-up is made in chunks: at most about `max_checks_per_cycle` checks of a checker
//! per cycle, oldest first, each chunk recorded, every due minute of every requirement exactly
//! once, and the current minute reached once the backlog is worked off.

use dwmon_core::engine::{oldest_chunk, EngineConfig};
use dwmon_core::testutil::{
    checker, every_minute, every_nth_minute, requirement, RecordingHandler, ScriptedSource,
};
use dwmon_core::{Engine, MemoryStore, Status};
use std::collections::BTreeSet;
use std::sync::Arc;

/// 2024-01-01 00:00 UTC.
const T: i64 = 1_704_067_200;
const MIN: i64 = 60;
const DAY: u64 = 86_400;

#[test]
fn a_chunk_ends_at_a_whole_minute() {
    let mut c = vec![(60, 0), (120, 0), (120, 1), (120, 2), (180, 0)];
    oldest_chunk(&mut c, 2);
    assert_eq!(c, vec![(60, 0), (120, 0), (120, 1), (120, 2)]);
    let mut c = vec![(60, 0), (120, 0)];
    oldest_chunk(&mut c, 5);
    assert_eq!(c.len(), 2);
    let mut c = vec![(60, 0), (120, 0)];
    oldest_chunk(&mut c, 0);
    assert_eq!(c, vec![(60, 0)]);
}

#[tokio::test]
async fn a_three_day_backlog_of_a_long_window_is_caught_up_in_chunks_exactly_once() {
    // 366-day windows: the horizon is years, so three days away leave 4,320 due minutes.
    let c = checker(
        "yearly",
        vec![
            every_minute(0, 1_000_000, 366 * DAY),
            requirement(every_nth_minute(15), 0, 1_000_000, 366 * DAY),
        ],
    );
    let source = Arc::new(ScriptedSource::new());
    source.set_rows("yearly", Vec::new());
    let handler = Arc::new(RecordingHandler::new());
    let engine = Engine::new(source, Arc::new(MemoryStore::new()), handler.clone())
        .with_config(EngineConfig {
            max_checks_per_cycle: 1000,
            ..EngineConfig::default()
        })
        .with_checkers(vec![c]);
    engine.run_cycle(T).await;
    let back = T + 3 * 1440 * MIN;
    let mut per_cycle = Vec::new();
    for cycle in 0..10 {
        let report = engine.run_cycle(back + cycle * MIN).await;
        per_cycle.push(report.checks().count());
    }
    // About 1,000 a cycle (a chunk ends at a whole minute), then one minute per cycle.
    assert!(
        per_cycle[..4].iter().all(|&n| (1000..=1001).contains(&n)),
        "{per_cycle:?}"
    );
    assert!(per_cycle[5..].iter().all(|&n| n <= 2), "{per_cycle:?}");
    let checks = handler.checks();
    assert!(checks.iter().all(|c| c.status == Status::Good));
    for index in 0..2 {
        let minutes: Vec<i64> = checks
            .iter()
            .filter(|c| c.requirement_index == index)
            .map(|c| c.minute)
            .collect();
        let unique: BTreeSet<i64> = minutes.iter().copied().collect();
        assert_eq!(
            unique.len(),
            minutes.len(),
            "requirement {index}: a minute twice"
        );
        let step = if index == 0 { MIN } else { 15 * MIN };
        let expected: BTreeSet<i64> = (T..=back + 9 * MIN).step_by(step as usize).collect();
        assert_eq!(unique, expected, "requirement {index}");
    }
}
