//! Retention of the check log through the engine: records older than the configured time are
//! purged at the checker's purge slot, the newest record of every requirement stays, pending
//! deliveries are untouched, and the next cycle continues where it left off.

use dwmon_core::retention::{Keep, Retention, RetentionPurger};
use dwmon_core::testutil::{
    checker, every_minute, every_nth_minute, requirement, RecordingHandler, ScriptedSource,
};
use dwmon_core::{CheckLog, Engine, MemoryStore, StoreView};
use std::sync::Arc;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// 2024-01-01 00:00 UTC.
const HOUR: i64 = 1_704_067_200;
const MIN: i64 = 60;

#[tokio::test]
async fn the_check_log_keeps_the_configured_time_and_the_newest_record() -> TestResult {
    // Requirement 0 every minute, requirement 1 every 30 minutes.
    let c = checker(
        "orders",
        vec![
            every_minute(0, 9, 60),
            requirement(every_nth_minute(30), 0, 9, 60),
        ],
    );
    let slot = i64::from(dwmon_core::engine::purge_slot(&c));
    let source = Arc::new(ScriptedSource::new());
    let store = Arc::new(MemoryStore::new());
    let engine = Engine::new(
        source.clone(),
        store.clone(),
        Arc::new(RecordingHandler::new()),
    )
    .with_purger(Arc::new(RetentionPurger::new(Retention {
        rows: None,
        checks: Some(Keep::For(3600)),
    })))
    .with_checkers(vec![c]);
    source.set_rows("orders", Vec::new());
    let mut purged = Vec::new();
    for minute in 0..3 * 60 {
        let report = engine.run_cycle(HOUR + minute * MIN).await;
        let outcome = report.outcome("orders").ok_or("no outcome")?;
        if outcome.purged_checks > 0 {
            purged.push((minute, outcome.purged_checks));
        }
    }
    // The first slot with records more than an hour old, then once an hour at the slot.
    let first = if slot > 0 { slot + 60 } else { 120 };
    let expected: Vec<i64> = (first..180).step_by(60).collect();
    assert_eq!(purged.iter().map(|p| p.0).collect::<Vec<_>>(), expected);
    // Each purge deletes an hour's worth (60 + 2 records) but the first, which deletes the
    // minutes before its cutoff.
    assert_eq!(
        purged.last().ok_or("no purge")?.1,
        if purged.len() > 1 { 62 } else { purged[0].1 }
    );
    let status = store.status().await?;
    let now = HOUR + 179 * MIN;
    let last_purge = HOUR + purged.last().ok_or("no purge")?.0 * MIN;
    // Requirement 0's records before the last purge's cutoff are gone.
    assert!(
        status[0].oldest_check.ok_or("no checks")? >= last_purge - 3600,
        "{status:?}"
    );
    assert_eq!(status[0].last_minute, Some(now));
    // Requirement 1 (every 30 minutes) keeps at least its newest record.
    assert!(status[0]
        .requirements
        .iter()
        .any(|r| r.requirement_index == 1));
    // The next cycle continues: exactly the next minute.
    let report = engine.run_cycle(now + MIN).await;
    let minutes: Vec<(usize, i64)> = report
        .checks()
        .map(|c| (c.requirement_index, c.minute))
        .collect();
    assert_eq!(minutes, vec![(0, now + MIN), (1, now + MIN)]);
    Ok(())
}

#[tokio::test]
async fn the_store_keeps_the_newest_record_of_each_requirement() -> TestResult {
    let c = checker(
        "orders",
        vec![
            every_minute(0, 9, 60),
            requirement(every_nth_minute(30), 0, 9, 60),
        ],
    );
    let source = Arc::new(ScriptedSource::new());
    let store = Arc::new(MemoryStore::new());
    let engine = Engine::new(
        source.clone(),
        store.clone(),
        Arc::new(RecordingHandler::new()),
    )
    .with_purger(Arc::new(dwmon_core::purger::KeepEverything))
    .with_checkers(vec![c]);
    source.set_rows("orders", Vec::new());
    for minute in 0..40 {
        engine.run_cycle(HOUR + minute * MIN).await;
    }
    // Everything before the last minute: requirement 0 keeps minute 39, requirement 1 keeps 30.
    let deleted = store.purge_checks("orders", HOUR + 39 * MIN + 1).await?;
    assert_eq!(deleted, 40 + 2 - 2);
    let status = store.status().await?;
    assert_eq!(status[0].oldest_check, Some(HOUR + 30 * MIN));
    let kept: Vec<(usize, i64)> = status[0]
        .requirements
        .iter()
        .map(|r| (r.requirement_index, (r.minute - HOUR) / MIN))
        .collect();
    assert_eq!(kept, vec![(0, 39), (1, 30)]);
    assert_eq!(store.purge_checks("orders", HOUR + 3600).await?, 0);
    assert_eq!(store.purge_checks("unknown", HOUR).await?, 0);
    Ok(())
}

/// A purge that fails (rows or check records) is an ERROR event *and* the checker's last
/// error, so `status` shows it; the next cycle without trouble clears it.
#[tokio::test]
async fn a_failed_purge_is_the_checkers_last_error() -> TestResult {
    use dwmon_core::testutil::FailingStore;
    let c = checker("orders", vec![every_minute(0, 9, 60)]);
    let slot = HOUR + i64::from(dwmon_core::engine::purge_slot(&c)) * MIN;
    let source = Arc::new(ScriptedSource::new());
    source.set_rows("orders", Vec::new());
    let store = Arc::new(FailingStore::new());
    let engine = Engine::new(source, store.clone(), Arc::new(RecordingHandler::new()))
        .with_checkers(vec![c]);
    engine.run_cycle(slot - MIN).await;
    store.set_failing_purges("orders", true);
    let report = engine.run_cycle(slot).await;
    let errors: Vec<_> = report.errors().collect();
    assert_eq!(errors.len(), 2, "rows and check records: {errors:?}");
    assert!(errors
        .iter()
        .all(|e| e.kind == dwmon_core::ErrorKind::Store));
    let status = store.status().await?;
    let (minute, text) = status[0].last_error.clone().ok_or("no last error")?;
    assert_eq!(minute, slot);
    assert!(text.contains("cannot purge"), "{text}");
    store.set_failing_purges("orders", false);
    engine.run_cycle(slot + MIN).await;
    assert_eq!(store.status().await?[0].last_error, None);
    Ok(())
}

/// A push checker's ping series (fail, start, log pings) are purged with its rows; a purge of
/// one that fails is a failure like the others: an ERROR event and the checker's last error,
/// so `status` shows it, not a log line only.
#[tokio::test]
async fn a_failed_purge_of_a_ping_series_is_the_checkers_last_error() -> TestResult {
    use dwmon_core::testutil::FailingStore;
    let mut c = checker("beat", vec![every_minute(0, 9, 60)]);
    c.source = dwmon_core::ping::PUSH_SOURCE.to_string();
    let slot = HOUR + i64::from(dwmon_core::engine::purge_slot(&c)) * MIN;
    let store = Arc::new(FailingStore::new());
    let engine = Engine::new(
        Arc::new(ScriptedSource::new()),
        store.clone(),
        Arc::new(RecordingHandler::new()),
    )
    .with_checkers(vec![c]);
    engine.run_cycle(slot - MIN).await;
    let fail_series = dwmon_core::ping::series("beat", dwmon_core::ping::PingKind::Fail);
    store.set_failing_purges(&fail_series, true);
    let report = engine.run_cycle(slot).await;
    let errors: Vec<_> = report.errors().collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].kind, dwmon_core::ErrorKind::Store);
    assert!(
        errors[0].error.contains("cannot purge"),
        "{}",
        errors[0].error
    );
    let status = store.status().await?;
    let (minute, text) = status[0].last_error.clone().ok_or("no last error")?;
    assert_eq!(minute, slot);
    assert!(text.contains(&fail_series), "{text}");
    Ok(())
}
