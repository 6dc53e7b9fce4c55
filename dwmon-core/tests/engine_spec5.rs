//! The engine against the cycle rules (README "How a cycle works") and delivery, one module per rule, with fixed
//! instants. Time-dependent behaviour (timeouts, the run loop) runs under Tokio's paused clock.

use dwmon_core::engine::{CycleReport, EngineConfig};
use dwmon_core::testutil::{
    checker, checker_from_lines, every_minute, every_nth_minute, requirement, FailingStore,
    RecordingHandler, ScriptedSource, Step,
};
use dwmon_core::{
    CheckLog, CheckRecord, Checker, Engine, ErrorKind, MemoryStore, Row, RowStore, SourceError,
    Status, StoreError, StoreView,
};
use std::sync::Arc;

/// Tue 2023-11-14 22:14:00 UTC, a minute.
const T: i64 = 1_700_000_040;
const MIN: i64 = 60;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// An engine over a scripted source, a memory store and a recording handler.
struct Rig {
    source: Arc<ScriptedSource>,
    store: Arc<MemoryStore>,
    handler: Arc<RecordingHandler>,
    engine: Engine,
}

fn rig(checkers: Vec<Checker>) -> Rig {
    rig_with(checkers, EngineConfig::default())
}

fn rig_with(checkers: Vec<Checker>, config: EngineConfig) -> Rig {
    let source = Arc::new(ScriptedSource::new());
    let store = Arc::new(MemoryStore::new());
    let handler = Arc::new(RecordingHandler::new());
    let engine = Engine::new(source.clone(), store.clone(), handler.clone())
        .with_config(config)
        .with_checkers(checkers);
    Rig {
        source,
        store,
        handler,
        engine,
    }
}

/// Checked minutes, relative to `T` in minutes.
fn rel_minutes(records: &[CheckRecord]) -> Vec<i64> {
    records.iter().map(|r| (r.minute - T) / MIN).collect()
}

fn checks_of(report: &CycleReport) -> Vec<CheckRecord> {
    report.checks().cloned().collect()
}

/// Rows `key{i}` at the given timestamps.
fn rows(timestamps: &[i64]) -> Vec<Row> {
    timestamps
        .iter()
        .enumerate()
        .map(|(i, ts)| Row::new(format!("key{i}"), *ts))
        .collect()
}

mod step1_2_candidates {
    use super::*;

    #[tokio::test]
    async fn a_last_checked_minute_after_now_is_an_error_every_cycle() -> TestResult {
        let r = rig(vec![checker("orders", vec![every_minute(0, 9, 60)])]);
        let future = T + 50 * 365 * 86_400;
        r.engine.run_cycle(future).await;
        for now in [T, T + MIN] {
            let report = r.engine.run_cycle(now).await;
            let outcome = report.outcome("orders").ok_or("no outcome")?;
            assert!(outcome.checks.is_empty());
            assert_eq!(outcome.errors.len(), 1, "{outcome:?}");
            let error = &outcome.errors[0];
            assert_eq!(error.kind, ErrorKind::ClockBehind);
            assert!(error.error.contains(&future.to_string()), "{}", error.error);
            assert!(
                error.error.contains("dwmon forget --after"),
                "{}",
                error.error
            );
        }
        assert_eq!(r.handler.errors().len(), 2);
        let status = r.store.status().await?;
        assert!(status[0].last_error.is_some(), "{status:?}");
        Ok(())
    }

    #[tokio::test]
    async fn steady_state_checks_each_minute_once() -> TestResult {
        let r = rig(vec![checker("orders", vec![every_minute(1, 1, 60)])]);
        // One event per minute, except in minute 2.
        let events: Vec<i64> = [-1, 0, 1, 3, 4].iter().map(|i| T + i * MIN + 10).collect();
        let mut counts = Vec::new();
        for i in 0..6 {
            let now = T + i * MIN + 5;
            let visible: Vec<i64> = events.iter().copied().filter(|ts| *ts <= now).collect();
            r.source.set_rows("orders", rows(&visible));
            let report = r.engine.run_cycle(now).await;
            let checks = checks_of(&report);
            assert_eq!(rel_minutes(&checks), vec![i], "cycle {i}");
            counts.push((checks[0].count, checks[0].status));
        }
        use Status::{Bad, Good};
        assert_eq!(
            counts,
            vec![
                (1, Good),
                (1, Good),
                (1, Good),
                (0, Bad),
                (1, Good),
                (1, Good)
            ]
        );
        assert_eq!(rel_minutes(&r.handler.checks()), vec![0, 1, 2, 3, 4, 5]);
        // A second cycle in the same minute finds nothing new to check and fetches nothing.
        let report = r.engine.run_cycle(T + 5 * MIN + 50).await;
        assert_eq!(report.checks().count(), 0);
        assert_eq!(r.source.call_count("orders"), 6);
        Ok(())
    }

    #[tokio::test]
    async fn first_cycle_ever_checks_only_the_current_minute() -> TestResult {
        // H = 50 minutes, but there is no history to catch up.
        let r = rig(vec![checker("orders", vec![every_minute(0, 9, 300)])]);
        let report = r.engine.run_cycle(T + 59).await;
        assert_eq!(rel_minutes(&checks_of(&report)), vec![0]);
        let report = r.engine.run_cycle(T + MIN + 1).await;
        assert_eq!(rel_minutes(&checks_of(&report)), vec![1]);
        Ok(())
    }

    #[tokio::test]
    async fn first_cycle_at_an_unscheduled_minute_fetches_nothing() -> TestResult {
        // T is 22:14; the requirement runs at :00 and :30.
        let r = rig(vec![checker(
            "orders",
            vec![requirement(every_nth_minute(30), 0, 9, 60)],
        )]);
        let report = r.engine.run_cycle(T).await;
        assert_eq!(report.checks().count(), 0);
        assert_eq!(report.outcome("orders").map(|o| o.candidates), Some(0));
        assert_eq!(r.source.call_count("orders"), 0);
        // Still the first check ever at 22:30: only 22:30 itself.
        let report = r.engine.run_cycle(T + 16 * MIN).await;
        assert_eq!(rel_minutes(&checks_of(&report)), vec![16]);
        Ok(())
    }

    #[tokio::test]
    async fn outage_of_37_minutes_inside_the_horizon_is_caught_up() -> TestResult {
        // L = 300 s: H = 50 minutes.
        let r = rig(vec![checker("orders", vec![every_minute(0, 9, 300)])]);
        r.engine.run_cycle(T + 5).await;
        // Minutes 1..=37 missed; the runner is back in minute 38.
        let report = r.engine.run_cycle(T + 38 * MIN + 5).await;
        assert_eq!(
            rel_minutes(&checks_of(&report)),
            (1..=38).collect::<Vec<_>>()
        );
        assert_eq!(
            rel_minutes(&r.handler.checks()),
            (0..=38).collect::<Vec<_>>()
        );
        Ok(())
    }

    #[tokio::test]
    async fn outage_of_37_minutes_beyond_the_horizon_checks_only_the_horizon() -> TestResult {
        // L = 60 s: H = 10 minutes, so minutes 1..=28 cannot be checked any more: they are
        // recorded as MISSED (no count), never silently dropped.
        let r = rig(vec![checker("orders", vec![every_minute(0, 9, 60)])]);
        r.engine.run_cycle(T + 5).await;
        let report = r.engine.run_cycle(T + 38 * MIN + 5).await;
        let checks = checks_of(&report);
        let (missed, counted): (Vec<CheckRecord>, Vec<CheckRecord>) =
            checks.into_iter().partition(|c| c.status == Status::Missed);
        assert_eq!(rel_minutes(&counted), (29..=38).collect::<Vec<_>>());
        assert_eq!(rel_minutes(&missed), (1..=28).collect::<Vec<_>>());
        assert!(missed.iter().all(|c| c.count == 0));
        // Delivered in minute order, MISSED first, and never checked again.
        assert_eq!(
            rel_minutes(&r.handler.checks()),
            (0..=38).collect::<Vec<_>>()
        );
        let report = r.engine.run_cycle(T + 39 * MIN + 5).await;
        assert_eq!(rel_minutes(&checks_of(&report)), vec![39]);
        Ok(())
    }

    #[tokio::test]
    async fn two_requirements_with_different_schedules_lose_no_minute() -> TestResult {
        // Requirement 0: every minute, L = 60 (H = 10). Requirement 1: every 5 minutes,
        // L = 300 (H = 50). T is 22:14.
        let r = rig(vec![checker(
            "orders",
            vec![
                every_minute(0, 9, 60),
                requirement(every_nth_minute(5), 0, 9, 300),
            ],
        )]);
        r.engine.run_cycle(T).await; // 22:14: only requirement 0
        r.engine.run_cycle(T + MIN).await; // 22:15: both
                                           // Down 22:16..22:22, back at 22:23: 22:20 of requirement 1 is not lost.
        let report = r.engine.run_cycle(T + 9 * MIN).await;
        let got: Vec<(i64, usize)> = report
            .checks()
            .map(|c| ((c.minute - T) / MIN, c.requirement_index))
            .collect();
        assert_eq!(
            got,
            vec![
                (2, 0),
                (3, 0),
                (4, 0),
                (5, 0),
                (6, 0),
                (6, 1),
                (7, 0),
                (8, 0),
                (9, 0)
            ]
        );
        // The handler saw everything in ascending (minute, requirement) order.
        let delivered: Vec<(i64, usize)> = r
            .handler
            .checks()
            .iter()
            .map(|c| ((c.minute - T) / MIN, c.requirement_index))
            .collect();
        let mut sorted = delivered.clone();
        sorted.sort_unstable();
        assert_eq!(delivered, sorted);
        assert_eq!(delivered.len(), 1 + 2 + got.len());
        Ok(())
    }

    #[tokio::test]
    async fn raising_the_lookback_does_not_recheck_old_minutes() -> TestResult {
        let r = rig(vec![checker("orders", vec![every_minute(1, 9, 60)])]);
        for i in 0..5 {
            r.engine.run_cycle(T + i * MIN).await;
        }
        assert_eq!(r.handler.checks().len(), 5);
        // LOOKBACKSECONDS60 -> 3600 makes H = 600 minutes, but only minutes after the last
        // checked one are candidates.
        r.engine
            .set_checkers(vec![checker("orders", vec![every_minute(1, 9, 3600)])]);
        let report = r.engine.run_cycle(T + 5 * MIN).await;
        assert_eq!(rel_minutes(&checks_of(&report)), vec![5]);
        assert_eq!(
            report.checks().next().map(|c| c.lookback_seconds),
            Some(3600)
        );
        Ok(())
    }

    #[tokio::test]
    async fn schedules_match_in_the_checkers_zone() -> TestResult {
        // 2023-11-15 09:00 in New York (EST, UTC-5) is 14:00 UTC.
        let at_nine = 1_700_056_800;
        let mut ny = checker_from_lines(
            "ny",
            &["CHECKHOURS9-9 CHECKMINUTES0-0 WEEKDAYS WEEKENDS MINNUM0 MAXNUM5 LOOKBACKSECONDS60"],
        )?;
        ny.timezone = Some(chrono_tz::America::New_York);
        ny.extra = serde_json::json!({"team": "ops"});
        let r = rig(vec![ny]);
        let report = r.engine.run_cycle(at_nine + 30).await;
        let check = report.checks().next().cloned().ok_or("no check")?;
        assert_eq!(check.minute, at_nine);
        assert_eq!(check.minute_local, "2023-11-15T09:00:00-05:00");
        assert_eq!(check.timezone, "America/New_York");
        // `requirement` is the canonical text: it parses back to the same requirement.
        let engine_checker = r.engine.checkers()[0].clone();
        assert_eq!(
            check.requirement,
            engine_checker.requirements[0].to_string()
        );
        assert_eq!(
            dwmon_core::Requirement::parse(&check.requirement)?,
            engine_checker.requirements[0]
        );
        assert_eq!(check.extra, serde_json::json!({"team": "ops"}));
        assert_eq!(check.idempotency_key(), format!("ny/0/{at_nine}"));
        // The same minute in UTC is not due.
        let r = rig(vec![checker_from_lines(
            "utc",
            &["CHECKHOURS9-9 CHECKMINUTES0-0 WEEKDAYS WEEKENDS MINNUM0 MAXNUM5 LOOKBACKSECONDS60"],
        )?]);
        assert_eq!(r.engine.run_cycle(at_nine).await.checks().count(), 0);
        Ok(())
    }
}

/// `DELAYSECONDS`: minute `m` is judged by the first cycle whose minute is at least
/// `m + DELAYSECONDS`, with the same window `[m - L, m)`.
mod delayed_judging {
    use super::*;

    /// `(minute relative to T, requirement_index, status)` of `records`.
    fn judged(records: &[CheckRecord]) -> Vec<(i64, usize, Status)> {
        records
            .iter()
            .map(|c| ((c.minute - T) / MIN, c.requirement_index, c.status))
            .collect()
    }

    #[tokio::test]
    async fn rows_five_minutes_late_are_counted_with_delayseconds300() -> TestResult {
        let line =
            "CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM1 MAXNUM100 LOOKBACKSECONDS60";
        let c = checker_from_lines("etl", &[line, &format!("{line} DELAYSECONDS300")])?;
        let r = rig(vec![c]);
        // One row per minute m, stamped m - 30 s (inside m's window) but visible 5 minutes
        // later, as an ETL batch or a lagging replica delivers it.
        let stamps: Vec<i64> = (-10..20).map(|i| T + i * MIN - 30).collect();
        for i in 0..15 {
            let now = T + i * MIN + 5;
            let visible: Vec<i64> = stamps
                .iter()
                .copied()
                .filter(|ts| ts + 300 <= now)
                .collect();
            r.source.set_rows("etl", rows(&visible));
            let report = r.engine.run_cycle(now).await;
            assert_eq!(
                judged(&checks_of(&report)),
                vec![(i - 5, 1, Status::Good), (i, 0, Status::Bad)],
                "cycle {i}"
            );
        }
        // Each minute judged once per requirement; the delayed one judged 5 minutes later.
        let all = r.handler.checks();
        assert_eq!(all.len(), 30);
        assert!(all
            .iter()
            .filter(|c| c.requirement_index == 1)
            .all(|c| c.count == 1 && c.requirement.ends_with("DELAYSECONDS300")));
        Ok(())
    }

    #[tokio::test]
    async fn the_first_cycle_judges_each_requirement_at_its_own_delayed_minute() -> TestResult {
        let c = checker(
            "c",
            vec![
                every_minute(0, 9, 60),
                every_minute(0, 9, 60).with_delay_seconds(300),
                every_minute(0, 9, 60).with_delay_seconds(61), // 2 minutes
            ],
        );
        let r = rig(vec![c]);
        let report = r.engine.run_cycle(T + 59).await;
        let got: Vec<(i64, usize)> = judged(&checks_of(&report))
            .into_iter()
            .map(|(m, i, _)| (m, i))
            .collect();
        assert_eq!(got, vec![(-5, 1), (-2, 2), (0, 0)]);
        Ok(())
    }

    #[tokio::test]
    async fn mixed_delays_never_skip_or_repeat_a_minute_across_restarts_and_outages() -> TestResult
    {
        // H = 10 minutes for requirements 0 and 1, 50 for requirement 2.
        let reqs = vec![
            every_minute(0, 9, 60),
            every_minute(0, 9, 60).with_delay_seconds(300),
            every_minute(0, 9, 300).with_delay_seconds(90),
        ];
        let store = Arc::new(MemoryStore::new());
        let handler = Arc::new(RecordingHandler::new());
        let engine = |store: &Arc<MemoryStore>| {
            Engine::new(
                Arc::new(ScriptedSource::new()),
                store.clone(),
                handler.clone(),
            )
            .with_checkers(vec![checker("c", reqs.clone())])
        };
        let first = engine(&store);
        for i in 0..3 {
            first.run_cycle(T + i * MIN + 2).await;
        }
        // A restart: a new engine on the same store, twice in one minute.
        let second = engine(&store);
        second.run_cycle(T + 3 * MIN + 2).await;
        second.run_cycle(T + 3 * MIN + 40).await;
        // An outage of 25 minutes: past requirement 0's and 1's horizon, inside 2's.
        let report = second.run_cycle(T + 29 * MIN + 2).await;
        let missed: Vec<(i64, usize)> = judged(&checks_of(&report))
            .into_iter()
            .filter(|c| c.2 == Status::Missed)
            .map(|(m, i, _)| (m, i))
            .collect();
        let expected_missed: Vec<(i64, usize)> = (4..=19)
            .map(|m| (m, 0))
            .chain((-1..=14).map(|m| (m, 1)))
            .collect();
        let mut sorted_missed = expected_missed;
        sorted_missed.sort_unstable();
        assert_eq!(missed, sorted_missed);
        second.run_cycle(T + 30 * MIN + 2).await;

        // Per requirement: every minute from its first to its last exactly once, up to the
        // last cycle's minute less its delay.
        let all = handler.checks();
        for (index, delay, first_minute) in [(0, 0, 0), (1, 5, -5), (2, 2, -2)] {
            let minutes: Vec<i64> = all
                .iter()
                .filter(|c| c.requirement_index == index)
                .map(|c| (c.minute - T) / MIN)
                .collect();
            let expected: Vec<i64> = (first_minute..=30 - delay).collect();
            assert_eq!(minutes, expected, "requirement {index}");
        }
        // Requirement 2 (H = 50) caught the outage up without MISSED records.
        assert!(all
            .iter()
            .filter(|c| c.requirement_index == 2)
            .all(|c| c.status != Status::Missed));
        // Each requirement's checks reach the handler in ascending minutes (checked above);
        // a delayed minute comes after later minutes of undelayed requirements.
        Ok(())
    }

    #[tokio::test]
    async fn a_longer_delay_pauses_and_a_shorter_one_catches_up() -> TestResult {
        let plain = every_minute(0, 9, 300); // H = 50
        let r = rig(vec![checker("c", vec![plain.clone()])]);
        for i in 0..3 {
            r.engine.run_cycle(T + i * MIN).await;
        }
        // DELAYSECONDS600 added: minutes up to 2 are judged, so nothing until minute 13.
        r.engine.set_checkers(vec![checker(
            "c",
            vec![plain.clone().with_delay_seconds(600)],
        )]);
        for i in 3..13 {
            let report = r.engine.run_cycle(T + i * MIN).await;
            assert_eq!(report.checks().count(), 0, "cycle {i}");
        }
        let report = r.engine.run_cycle(T + 13 * MIN).await;
        assert_eq!(rel_minutes(&checks_of(&report)), vec![3]);
        // The delay removed again: minutes 4..=14 are caught up at once, none twice.
        r.engine.set_checkers(vec![checker("c", vec![plain])]);
        let report = r.engine.run_cycle(T + 14 * MIN).await;
        assert_eq!(
            rel_minutes(&checks_of(&report)),
            (4..=14).collect::<Vec<_>>()
        );
        assert_eq!(
            rel_minutes(&r.handler.checks()),
            (0..=14).collect::<Vec<_>>()
        );
        Ok(())
    }

    #[tokio::test]
    async fn a_store_failure_reading_per_requirement_minutes_is_an_error() -> TestResult {
        let store = Arc::new(FailingStore::new());
        let handler = Arc::new(RecordingHandler::new());
        let engine = Engine::new(
            Arc::new(ScriptedSource::new()),
            store.clone(),
            handler.clone(),
        )
        .with_checkers(vec![checker(
            "c",
            vec![every_minute(0, 9, 60).with_delay_seconds(120)],
        )]);
        engine.run_cycle(T).await;
        store.set_failing("c", true);
        let report = engine.run_cycle(T + MIN).await;
        assert_eq!(report.checks().count(), 0);
        assert!(report.errors().any(|e| e.kind == ErrorKind::Store));
        store.set_failing("c", false);
        let report = engine.run_cycle(T + 2 * MIN).await;
        assert_eq!(rel_minutes(&checks_of(&report)), vec![-1, 0]);
        Ok(())
    }
}

mod step4_first_seen {
    use super::*;

    #[tokio::test]
    async fn duplicate_keys_keep_their_first_timestamp() -> TestResult {
        let r = rig(vec![checker("orders", vec![every_minute(0, 9, 60)])]);
        // Within a batch the first occurrence wins: a stays at T-30, not T-100.
        r.source.set_rows(
            "orders",
            vec![
                Row::new("a", T - 30),
                Row::new("b", T - 20),
                Row::new("a", T - 100),
            ],
        );
        let report = r.engine.run_cycle(T).await;
        assert_eq!(report.outcome("orders").map(|o| o.new_rows), Some(2));
        assert_eq!(checks_of(&report)[0].count, 2);
        // Across batches the stored timestamp wins: a is not moved into [T, T+60).
        r.source
            .set_rows("orders", vec![Row::new("a", T + 30), Row::new("c", T + 40)]);
        let report = r.engine.run_cycle(T + MIN).await;
        assert_eq!(report.outcome("orders").map(|o| o.new_rows), Some(1));
        assert_eq!(checks_of(&report)[0].count, 1);
        assert_eq!(
            r.store.row_timestamps("orders", 0, i64::MAX).await?,
            vec![T - 30, T - 20, T + 40]
        );
        Ok(())
    }
}

mod step5_windows {
    use super::*;

    #[tokio::test]
    async fn an_event_at_m_belongs_to_the_next_window_and_one_at_m_minus_l_counts() -> TestResult {
        let r = rig(vec![checker("orders", vec![every_minute(1, 1, 60)])]);
        r.source.set_rows(
            "orders",
            vec![
                Row::new("too_old", T - 61),
                Row::new("at_m_minus_l", T - 60),
                Row::new("at_m", T),
            ],
        );
        let first = r.engine.run_cycle(T).await;
        let second = r.engine.run_cycle(T + MIN).await;
        let counts: Vec<u64> = first
            .checks()
            .chain(second.checks())
            .map(|c| c.count)
            .collect();
        assert_eq!(counts, vec![1, 1]);
        Ok(())
    }

    #[tokio::test]
    async fn bounds_are_inclusive() -> TestResult {
        let r = rig(vec![checker(
            "orders",
            vec![
                every_minute(2, 3, 60),
                every_minute(3, 4, 60),
                every_minute(4, 9, 60),
            ],
        )]);
        r.source.set_rows("orders", rows(&[T - 50, T - 40, T - 30]));
        let report = r.engine.run_cycle(T).await;
        let statuses: Vec<Status> = report.checks().map(|c| c.status).collect();
        assert_eq!(statuses, vec![Status::Good, Status::Good, Status::Bad]);
        Ok(())
    }
}

mod step6_delivery {
    use super::*;

    #[tokio::test]
    async fn a_handler_failing_twice_gets_the_same_key_again_with_backoff() -> TestResult {
        let config = EngineConfig {
            retry_base_seconds: 90,
            ..EngineConfig::default()
        };
        let r = rig_with(
            vec![checker("orders", vec![every_minute(0, 9, 60)])],
            config,
        );
        let key = |i: i64| format!("orders/0/{}", T + i * MIN);
        r.handler.fail_next(2);

        // Minute 0: first attempt fails; retry due at T+5+90.
        r.engine.run_cycle(T + 5).await;
        assert_eq!(r.handler.attempts(), vec![key(0)]);
        let pending = dwmon_core::testutil::pending_deliveries(&*r.store, i64::MAX, 10).await?;
        assert_eq!(
            (pending[0].attempts, pending[0].next_attempt_at),
            (1, T + 95)
        );

        // Minute 1: not due yet, and minute 1's check waits behind it (order per checker).
        let report = r.engine.run_cycle(T + MIN + 5).await;
        assert_eq!(report.checks().count(), 1);
        assert_eq!(r.handler.attempts(), vec![key(0)]);

        // Minute 2: retried, fails again; the next delay doubles to 180 s.
        r.engine.run_cycle(T + 2 * MIN + 5).await;
        assert_eq!(r.handler.attempts(), vec![key(0), key(0)]);
        let pending = dwmon_core::testutil::pending_deliveries(&*r.store, i64::MAX, 10).await?;
        assert_eq!(
            (pending[0].attempts, pending[0].next_attempt_at),
            (2, T + 125 + 180)
        );

        // Minutes 3 and 4: waiting. Minute 5 (T+305): delivered, then the rest in order.
        r.engine.run_cycle(T + 3 * MIN + 5).await;
        r.engine.run_cycle(T + 4 * MIN + 5).await;
        assert_eq!(r.handler.attempts().len(), 2);
        let report = r.engine.run_cycle(T + 5 * MIN + 5).await;
        assert_eq!(
            r.handler.attempts(),
            vec![
                key(0),
                key(0),
                key(0),
                key(1),
                key(2),
                key(3),
                key(4),
                key(5)
            ]
        );
        assert_eq!(rel_minutes(&r.handler.checks()), vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(report.outcome("orders").map(|o| o.delivered), Some(6));
        assert!(
            dwmon_core::testutil::pending_deliveries(&*r.store, i64::MAX, 10)
                .await?
                .is_empty()
        );
        Ok(())
    }

    #[tokio::test]
    async fn default_backoff_retries_on_the_next_cycles() -> TestResult {
        let r = rig(vec![checker("orders", vec![every_minute(0, 9, 60)])]);
        r.handler.fail_next(2);
        for i in 0..3 {
            r.engine.run_cycle(T + i * MIN + 5).await;
        }
        // 30 s then 60 s of backoff: retried at minutes 1 and 2, delivered at minute 2.
        let k0 = format!("orders/0/{T}");
        assert_eq!(r.handler.attempts()[..3], [k0.clone(), k0.clone(), k0]);
        assert_eq!(rel_minutes(&r.handler.checks()), vec![0, 1, 2]);
        Ok(())
    }

    #[tokio::test]
    async fn one_checkers_failed_delivery_does_not_hold_back_another() -> TestResult {
        let r = rig(vec![
            checker("a", vec![every_minute(0, 9, 60)]),
            checker("b", vec![every_minute(0, 9, 60)]),
        ]);
        let config = EngineConfig {
            max_concurrent_checkers: 1,
            ..EngineConfig::default()
        };
        let r = Rig {
            engine: Engine::new(r.source.clone(), r.store.clone(), r.handler.clone())
                .with_config(config)
                .with_checkers(r.engine.checkers().to_vec()),
            ..r
        };
        r.handler.fail_next(1); // a's delivery (a runs first with one permit)
        let report = r.engine.run_cycle(T).await;
        assert_eq!(report.outcome("a").map(|o| o.delivery_failures), Some(1));
        assert_eq!(report.outcome("b").map(|o| o.delivered), Some(1));
        Ok(())
    }

    #[tokio::test]
    async fn pending_deliveries_of_a_removed_checker_are_still_delivered() -> TestResult {
        let r = rig(vec![checker("gone", vec![every_minute(0, 9, 60)])]);
        r.handler.fail_next(1);
        r.engine.run_cycle(T).await;
        r.engine.set_checkers(Vec::new());
        let report = r.engine.run_cycle(T + MIN).await;
        assert_eq!(report.outcome("gone").map(|o| o.delivered), Some(1));
        assert_eq!(rel_minutes(&r.handler.checks()), vec![0]);
        Ok(())
    }

    #[tokio::test]
    async fn a_truncated_outbox_read_keeps_later_checks_queued_in_order() -> TestResult {
        let config = EngineConfig {
            outbox_batch_limit: 2,
            ..EngineConfig::default()
        };
        let r = rig_with(
            vec![checker("orders", vec![every_minute(0, 9, 300)])],
            config,
        );
        r.engine.run_cycle(T).await;
        r.handler.fail_next(1);
        // 5 minutes recorded at once; the first delivery fails, the rest wait.
        let report = r.engine.run_cycle(T + 5 * MIN).await;
        assert_eq!(report.checks().count(), 5);
        // The outbox holds 5 > limit entries: each cycle delivers what it read.
        let mut cycles = 0;
        while !dwmon_core::testutil::pending_deliveries(&*r.store, i64::MAX, 10)
            .await?
            .is_empty()
        {
            cycles += 1;
            assert!(cycles < 10, "outbox never drains");
            r.engine.run_cycle(T + (5 + cycles) * MIN).await;
        }
        let delivered = rel_minutes(&r.handler.checks());
        let mut sorted = delivered.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(delivered, sorted, "in order, each once");
        assert_eq!(delivered.first(), Some(&0));
        assert_eq!(delivered.last(), Some(&(5 + cycles)));
        Ok(())
    }
}

mod errors {
    use super::*;

    #[tokio::test]
    async fn fetch_failure_records_nothing_and_minutes_are_retried() -> TestResult {
        let r = rig(vec![checker("orders", vec![every_minute(0, 9, 300)])]);
        r.engine.run_cycle(T).await;
        r.source.set(
            "orders",
            Step::Fail(SourceError::Connection {
                source_name: "default".into(),
                message: "db down".into(),
            }),
        );
        for i in 1..=2 {
            let report = r.engine.run_cycle(T + i * MIN).await;
            assert_eq!(report.checks().count(), 0);
            let error = report.errors().next().ok_or("no error event")?;
            assert_eq!(error.status, Status::Error);
            assert!(error.error.contains("db down"), "{}", error.error);
        }
        let status = r.store.status().await?;
        assert_eq!(
            status[0].last_error.as_ref().map(|e| e.0),
            Some(T + 2 * MIN)
        );

        r.source.set_rows("orders", Vec::new());
        let report = r.engine.run_cycle(T + 3 * MIN).await;
        assert_eq!(rel_minutes(&checks_of(&report)), vec![1, 2, 3]);
        assert_eq!(report.errors().count(), 0);
        assert_eq!(r.store.status().await?[0].last_error, None);
        // The handler got both ERROR events and every check, never a silent GOOD/BAD.
        assert_eq!(r.handler.errors().len(), 2);
        assert_eq!(rel_minutes(&r.handler.checks()), vec![0, 1, 2, 3]);
        Ok(())
    }

    #[tokio::test]
    async fn a_failing_checker_does_not_stop_the_others() -> TestResult {
        let source = Arc::new(ScriptedSource::new());
        let store = Arc::new(FailingStore::new());
        let handler = Arc::new(RecordingHandler::new());
        let engine =
            Engine::new(source.clone(), store.clone(), handler.clone()).with_checkers(vec![
                checker("bad_source", vec![every_minute(0, 9, 60)]),
                checker("bad_store", vec![every_minute(0, 9, 60)]),
                checker("good", vec![every_minute(0, 9, 60)]),
            ]);
        // One good cycle first, so the failed minute is retried later (not a first cycle).
        engine.run_cycle(T - MIN).await;
        handler.clear();
        source.set("bad_source", Step::Fail(SourceError::Other("boom".into())));
        store.set_failing("bad_store", true);
        let report = engine.run_cycle(T).await;
        let checked: Vec<&str> = report.checks().map(|c| c.checker.as_str()).collect();
        assert_eq!(checked, vec!["good"]);
        let errored: Vec<&str> = report.errors().map(|e| e.checker.as_str()).collect();
        assert_eq!(errored, vec!["bad_source", "bad_store"]);
        let handled: Vec<String> = handler.errors().into_iter().map(|e| e.checker).collect();
        assert_eq!(handled.len(), 2);
        assert_eq!(handler.checks().len(), 1);
        // Once the store works again, the minute is checked.
        store.set_failing("bad_store", false);
        let report = engine.run_cycle(T + MIN).await;
        assert_eq!(
            report.outcome("bad_store").map(|o| o.checks.len()),
            Some(2),
            "minute 0 and 1"
        );
        Ok(())
    }

    #[tokio::test]
    async fn rejected_rows_are_reported_and_good_rows_still_checked() -> TestResult {
        let r = rig(vec![checker("orders", vec![every_minute(1, 9, 60)])]);
        let mut fetched = dwmon_core::Fetched::from_rows(rows(&[T - 10, T - 20]));
        fetched.reject("row 3: dwmon_unique_key is NULL");
        fetched.reject("row 7: dwmon_timestamp \"soon\" is not an integer");
        fetched.reject("row 9: dwmon_timestamp is negative");
        r.source.set("orders", Step::Fetched(fetched));
        let report = r.engine.run_cycle(T).await;
        assert_eq!(checks_of(&report)[0].count, 2);
        let outcome = report.outcome("orders").ok_or("no outcome")?;
        assert_eq!(outcome.rejected_rows, 3);
        let error = &r.handler.errors()[0];
        assert!(
            error.error.starts_with("3 rows rejected"),
            "{}",
            error.error
        );
        assert!(error.error.contains("row 7"), "{}", error.error);
        assert_eq!(r.handler.checks().len(), 1);
        Ok(())
    }

    #[tokio::test]
    async fn far_future_rows_are_rejected_not_stored() -> TestResult {
        // a far-future timestamp is bad input. Within a day of `now` is tolerated
        // (clock skew); beyond it the row is rejected, counted and never stored, so it cannot
        // surface in a later window either.
        let r = rig(vec![checker("orders", vec![every_minute(0, 9, 60)])]);
        let day = 86_400;
        r.source.set(
            "orders",
            Step::Rows(vec![
                dwmon_core::Row::new("now", T - 5),
                dwmon_core::Row::new("skewed", T + 3_600),
                dwmon_core::Row::new("future", T + day + 1),
                dwmon_core::Row::new("millis", (T - 5) * 1000),
            ]),
        );
        let report = r.engine.run_cycle(T).await;
        let outcome = report.outcome("orders").ok_or("no outcome")?;
        assert_eq!(outcome.rejected_rows, 2);
        assert_eq!(outcome.new_rows, 2, "now and skewed are stored");
        let error = &r.handler.errors()[0];
        assert_eq!(error.kind, dwmon_core::ErrorKind::RejectedRows);
        assert!(
            error.error.starts_with("2 rows rejected"),
            "{}",
            error.error
        );
        assert!(error.error.contains("\"future\""), "{}", error.error);
        // The skewed row counts once its window reaches it; the rejected one never does.
        assert_eq!(r.store.count("orders", T, T + 2 * day).await?, 1);
        Ok(())
    }

    #[tokio::test]
    async fn bad_checker_files_are_reported_every_cycle_and_skipped() -> TestResult {
        let r = rig(vec![checker("good", vec![every_minute(0, 9, 60)])]);
        let text = "__QUERY__\nSELECT 1\n__REQUIREMENTS__\n\
                    CHECKHOURS0-23 CHECKMINUTES0-59 WEEKDAYS MINNUM5 MAXNUM2 LOOKBACKSECONDS60\n";
        let load_error = dwmon_core::parse_checker("broken.dwmon", text)
            .err()
            .ok_or("the file should not parse")?;
        r.engine.set_load_errors(vec![load_error.clone()]);
        let report = r.engine.run_cycle(T).await;
        assert_eq!(report.checks().count(), 1);
        let error = report.errors().next().ok_or("no error")?;
        assert_eq!(error.checker, "broken");
        assert!(
            error.error.contains(&load_error.to_string()),
            "{}",
            error.error
        );
        assert!(error.error.contains("broken.dwmon:4:"), "{}", error.error);
        assert_eq!(r.handler.errors().len(), 1);
        Ok(())
    }

    #[tokio::test]
    async fn a_file_that_stops_loading_keeps_its_last_good_extra() -> TestResult {
        let mut orders = checker("orders", vec![every_minute(0, 9, 60)]);
        orders.extra = serde_json::json!({"alert": {"webhook": "https://hooks.example/o"}});
        let r = rig(vec![orders.clone()]);
        r.engine.run_cycle(T).await;
        let text = "__QUERY__\nSELECT 1\n__REQUIREMENTS__\nNOT A LINE\n";
        let load_error = dwmon_core::parse_checker("orders.dwmon", text)
            .err()
            .ok_or("the file should not parse")?;
        let never = dwmon_core::parse_checker("never.dwmon", text)
            .err()
            .ok_or("the file should not parse")?;
        r.engine.set_load_report(dwmon_core::LoadReport {
            checkers: Vec::new(),
            errors: vec![load_error.clone(), never],
        });
        r.engine.run_cycle(T + 60).await;
        let errors = r.handler.errors();
        let extra_of = |name: &str| {
            errors
                .iter()
                .find(|e| e.checker == name)
                .map(|e| e.extra.clone())
        };
        assert_eq!(extra_of("orders"), Some(orders.extra.clone()));
        assert_eq!(extra_of("never"), Some(serde_json::json!({})));
        // Gone for good (neither loaded nor failing): forgotten, so a new file of that name
        // starts without it.
        r.engine.set_load_report(dwmon_core::LoadReport::default());
        r.engine.set_load_errors(vec![load_error]);
        r.engine.run_cycle(T + 120).await;
        let last = r.handler.errors().last().cloned().ok_or("no error")?;
        assert_eq!(last.extra, serde_json::json!({}));
        Ok(())
    }

    #[tokio::test]
    async fn duplicate_checker_names_run_once_and_are_reported() -> TestResult {
        let r = rig(vec![
            checker("twice", vec![every_minute(0, 9, 60)]),
            checker("twice", vec![every_minute(0, 9, 60)]),
        ]);
        let report = r.engine.run_cycle(T).await;
        assert_eq!(report.checks().count(), 1);
        assert!(report.errors().any(|e| e.error.contains("duplicate")));
        Ok(())
    }
}

/// Rows no window can reach are not stored after a checker's first cycle (engine.rs, "Rows
/// that are not stored").
mod unreachable_rows {
    use super::*;
    use dwmon_core::purger::KeepEverything;

    #[tokio::test]
    async fn the_first_cycle_keeps_history_later_cycles_drop_rows_no_window_can_reach() -> TestResult
    {
        // LOOKBACK 60 s: horizon 10 minutes, so a cycle at M reaches back to M - 9 min - 60 s.
        let r = rig(vec![checker("orders", vec![every_minute(0, 9, 60)])]);
        let history = vec![
            Row::new("a", T - 7200),
            Row::new("b", T - 700),
            Row::new("c", T - 30),
        ];
        r.source.set_rows("orders", history.clone());
        let report = r.engine.run_cycle(T).await;
        assert_eq!(report.outcome("orders").ok_or("no outcome")?.new_rows, 3);

        // Next cycle at T + 1 min reaches back to T - 540: `d` (T - 700) can never be counted.
        let mut next = history.clone();
        next.extend([Row::new("d", T - 700), Row::new("e", T + 30)]);
        r.source.set_rows("orders", next);
        let report = r.engine.run_cycle(T + MIN).await;
        let outcome = report.outcome("orders").ok_or("no outcome")?;
        assert_eq!(outcome.rows_fetched, 5);
        assert_eq!(outcome.new_rows, 1, "only e");
        assert_eq!(
            r.store.row_timestamps("orders", i64::MIN, i64::MAX).await?,
            vec![T - 7200, T - 700, T - 30, T + 30]
        );

        // The one observable difference from storing everything: `d` reappears first in the
        // batch with a newer timestamp and is counted there (stored at T - 700 it would not).
        let mut later = vec![Row::new("d", T + 90)];
        later.extend(history);
        r.source.set_rows("orders", later);
        let report = r.engine.run_cycle(T + 2 * MIN).await;
        let outcome = report.outcome("orders").ok_or("no outcome")?;
        assert_eq!(outcome.new_rows, 1);
        assert_eq!(outcome.checks.len(), 1);
        assert_eq!(
            outcome.checks[0].count, 1,
            "d at T + 90 in [T + 60, T + 120)"
        );
        Ok(())
    }

    #[tokio::test]
    async fn the_rule_holds_whatever_the_purger_and_a_batch_key_is_decided_by_its_first_row(
    ) -> TestResult {
        let r = rig(vec![checker("orders", vec![every_minute(0, 9, 60)])]);
        let engine = Engine::new(r.source.clone(), r.store.clone(), r.handler.clone())
            .with_purger(Arc::new(KeepEverything))
            .with_checkers(r.engine.checkers().to_vec());
        // First cycle: even a year-old row is kept when the purger keeps everything.
        r.source
            .set_rows("orders", vec![Row::new("ancient", T - 365 * 86_400)]);
        engine.run_cycle(T).await;
        // Later: `x` first appears too old (T - 600 < T + 60 - 600), then newer in the same
        // batch: the first occurrence decides, so `x` is not stored at all.
        r.source.set_rows(
            "orders",
            vec![
                Row::new("x", T - 600),
                Row::new("x", T + 30),
                Row::new("edge", T + MIN - 600),
            ],
        );
        let report = engine.run_cycle(T + MIN).await;
        assert_eq!(report.outcome("orders").ok_or("no outcome")?.new_rows, 1);
        assert_eq!(
            r.store.row_timestamps("orders", i64::MIN, i64::MAX).await?,
            vec![T - 365 * 86_400, T + MIN - 600]
        );
        Ok(())
    }
}

mod step7_purge {
    use super::*;
    use dwmon_core::{DefaultPurger, Purger};

    /// Deletes rows older than 10 minutes before now.
    struct TenMinutes;
    impl Purger for TenMinutes {
        fn cutoffs(&self, _checker: &Checker, now: i64) -> dwmon_core::Cutoffs {
            dwmon_core::Cutoffs {
                rows: Some(now - 600),
                checks: None,
            }
        }
    }

    #[tokio::test]
    async fn purge_deletes_old_rows_and_unreachable_rows_are_never_stored() -> TestResult {
        let r = rig(vec![checker("orders", vec![every_minute(0, 9, 60)])]);
        let engine = Engine::new(r.source.clone(), r.store.clone(), r.handler.clone())
            .with_purger(Arc::new(TenMinutes))
            .with_config(dwmon_core::EngineConfig {
                purge_timing: dwmon_core::PurgeTiming::EveryCycle,
                ..Default::default()
            })
            .with_checkers(r.engine.checkers().to_vec());
        // After the checker's first cycle (which keeps its fetched history, see below).
        r.source.set_rows("orders", Vec::new());
        engine.run_cycle(T - MIN).await;
        r.store
            .insert_first_seen("orders", &[Row::new("ancient", T - 3600)])
            .await?;
        r.source
            .set_rows("orders", rows(&[T - 7200, T - 300, T - 30]));
        let report = engine.run_cycle(T).await;
        let outcome = report.outcome("orders").ok_or("no outcome")?;
        assert_eq!(outcome.rows_fetched, 3);
        assert_eq!(outcome.new_rows, 2, "the row at T-7200 is skipped");
        assert_eq!(outcome.purged_rows, 1, "the stored row at T-3600");
        assert_eq!(
            r.store.row_timestamps("orders", i64::MIN, i64::MAX).await?,
            vec![T - 300, T - 30]
        );
        Ok(())
    }

    #[tokio::test]
    async fn the_default_purger_purges_a_checker_once_an_hour_at_its_slot() -> TestResult {
        let c = checker("orders", vec![every_minute(0, 9, 60)]);
        let slot = i64::from(dwmon_core::engine::purge_slot(&c));
        let r = rig(vec![c]);
        let hour = T - T.rem_euclid(3600);
        let mut purged_at = Vec::new();
        for minute in 0..120 {
            let now = hour + minute * MIN;
            // An expired row appears before every cycle; only the slot's cycles delete it.
            r.store
                .insert_first_seen(
                    "orders",
                    &[Row::new(format!("old{minute}"), T - 3 * 86_400)],
                )
                .await?;
            r.source.set_rows("orders", Vec::new());
            let report = r.engine.run_cycle(now).await;
            let outcome = report.outcome("orders").ok_or("no outcome")?;
            if outcome.purged_rows > 0 {
                purged_at.push((minute, outcome.purged_rows));
            }
        }
        // The first purge deletes the rows left by the minutes before it.
        assert_eq!(purged_at, vec![(slot, slot as u64 + 1), (slot + 60, 60)]);
        Ok(())
    }

    #[tokio::test]
    async fn the_first_cycle_keeps_a_week_of_history_even_at_its_purge_slot() -> TestResult {
        let c = checker("orders", vec![every_minute(0, 9, 60)]);
        let hour = T - T.rem_euclid(3600);
        let slot_minute = hour + i64::from(dwmon_core::engine::purge_slot(&c)) * MIN;
        let r = rig(vec![c]);
        // 1,000 rows spread over the week before the first cycle.
        let week: Vec<i64> = (0..1000).map(|i| slot_minute - 1 - i * 604).collect();
        r.source.set_rows("orders", rows(&week));
        let report = r.engine.run_cycle(slot_minute + 5).await;
        let outcome = report.outcome("orders").ok_or("no outcome")?;
        assert_eq!((outcome.new_rows, outcome.purged_rows), (1000, 0));
        assert_eq!(
            r.store
                .row_timestamps("orders", slot_minute - 7 * 86_400, slot_minute)
                .await?
                .len(),
            1000
        );
        Ok(())
    }

    /// The earliest window start any candidate of `c` can have at `now`.
    fn earliest_window(c: &Checker, now: i64) -> i64 {
        let m = dwmon_core::minute_floor(now);
        c.requirements
            .iter()
            .map(|r| r.judged_up_to(m) - (r.horizon_minutes() - 1) * 60 - r.lookback_seconds as i64)
            .min()
            .unwrap_or(m)
    }

    #[test]
    fn default_purger_keeps_every_row_a_check_inside_the_horizon_can_count() {
        for lookbacks in [
            vec![1],
            vec![59],
            vec![60],
            vec![61],
            vec![3600],
            vec![90_000],
            vec![60, 86_400],
            vec![7 * 86_400, 120],
        ] {
            let plain = lookbacks.iter().map(|l| every_minute(0, 1, *l));
            // Delayed windows lag behind the clock: they must be kept that much longer.
            let delayed = lookbacks
                .iter()
                .map(|l| every_minute(0, 1, *l).with_delay_seconds(7 * 86_400));
            let reqs = plain.chain(delayed.take(1)).collect();
            let c = checker("c", reqs);
            for now in [T, T + 1, T + 59, 0, -61] {
                let cutoff = DefaultPurger
                    .cutoffs(&c, now)
                    .rows
                    .expect("the default purger always has a rows cutoff");
                // Rows at `cutoff` and later are kept; every reachable window starts later,
                // with at least the safety day to spare.
                assert!(cutoff <= earliest_window(&c, now), "{lookbacks:?} at {now}");
                assert!(
                    earliest_window(&c, now) - cutoff >= DefaultPurger::SAFETY_SECONDS,
                    "{lookbacks:?}"
                );
            }
        }
    }
}

mod concurrency {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_hanging_fetch_is_cut_by_the_timeout_while_others_complete() -> TestResult {
        let r = rig(vec![
            checker("fast", vec![every_minute(0, 9, 60)]),
            checker("hangs", vec![every_minute(0, 9, 60)]),
        ]);
        r.source.set("hangs", Step::Hang);
        let engine = Arc::new(r.engine);
        let started = tokio::time::Instant::now();
        let cycle = tokio::spawn({
            let engine = engine.clone();
            async move { engine.run_cycle(T).await }
        });
        // One (virtual) second in: the fast checker is recorded and delivered already.
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!cycle.is_finished());
        assert_eq!(rel_minutes(&r.handler.checks()), vec![0]);
        assert_eq!(r.store.last_checked_minute("fast").await?, Some(T));

        let report = cycle.await?;
        assert_eq!(started.elapsed(), Duration::from_secs(60));
        let hangs = report.outcome("hangs").ok_or("no outcome")?;
        assert!(hangs.checks.is_empty());
        assert!(hangs.errors[0].error.contains("timed out after 60000 ms"));
        assert_eq!(hangs.fetch_duration, Some(Duration::from_secs(60)));
        assert_eq!(r.store.last_checked_minute("hangs").await?, None);
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn at_most_the_configured_number_of_fetches_run_at_once() -> TestResult {
        let config = EngineConfig {
            max_concurrent_checkers: 2,
            fetch_timeout: Duration::from_secs(10),
            ..EngineConfig::default()
        };
        let names = ["a", "b", "c", "d"];
        let r = rig_with(
            names
                .iter()
                .map(|n| checker(n, vec![every_minute(0, 9, 60)]))
                .collect(),
            config,
        );
        for n in names {
            r.source.set(n, Step::Hang);
        }
        let started = tokio::time::Instant::now();
        let report = r.engine.run_cycle(T).await;
        // Four 10 s timeouts, two at a time.
        assert_eq!(started.elapsed(), Duration::from_secs(20));
        assert_eq!(report.errors().count(), 4);
        Ok(())
    }
}

mod per_source_limits {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn hung_queries_of_one_source_never_take_another_sources_slots() -> TestResult {
        let config = EngineConfig {
            max_concurrent_checkers: 2,
            fetch_timeout: Duration::from_secs(10),
            ..EngineConfig::default()
        };
        let mut checkers: Vec<Checker> = ["a", "b", "c", "d"]
            .iter()
            .map(|n| {
                let mut c = checker(n, vec![every_minute(0, 9, 60)]);
                c.source = "warehouse".into();
                c
            })
            .collect();
        checkers.push(checker("healthy", vec![every_minute(0, 9, 60)]));
        let r = rig_with(checkers, config);
        for n in ["a", "b", "c", "d"] {
            r.source.set(n, Step::Hang);
        }
        let engine = Arc::new(r.engine);
        let started = tokio::time::Instant::now();
        let cycle = tokio::spawn({
            let engine = engine.clone();
            async move { engine.run_cycle(T).await }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(r.store.last_checked_minute("healthy").await?, Some(T));
        let report = cycle.await?;
        // The warehouse's four 10 s timeouts still run two at a time.
        assert_eq!(started.elapsed(), Duration::from_secs(20));
        assert_eq!(report.errors().count(), 4);
        Ok(())
    }
}

mod run_loop {
    use super::*;
    use dwmon_core::engine::Clock;
    use dwmon_core::testutil::TokioClock;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn wakes_after_each_minute_boundary_until_shutdown() -> TestResult {
        let r = rig(vec![checker("orders", vec![every_minute(0, 9, 60)])]);
        let clock = TokioClock::new(T + 30);
        let mut nows = Vec::new();
        let shutdown = tokio::time::sleep(Duration::from_secs(200)); // at T + 230
        r.engine
            .run_with(&clock, shutdown, |report| nows.push(report.now))
            .await;
        assert_eq!(nows, vec![T + 30, T + 62, T + 122, T + 182]);
        assert_eq!(rel_minutes(&r.handler.checks()), vec![0, 1, 2, 3]);
        assert_eq!(clock.now(), T + 230);
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_finishes_the_cycle_in_flight() -> TestResult {
        let r = rig(vec![
            checker("hangs", vec![every_minute(0, 9, 60)]),
            checker("fast", vec![every_minute(0, 9, 60)]),
        ]);
        r.source.set("hangs", Step::Hang);
        let clock = TokioClock::new(T);
        let mut reports = Vec::new();
        let shutdown = tokio::time::sleep(Duration::from_secs(5));
        r.engine
            .run_with(&clock, shutdown, |report| reports.push(report.clone()))
            .await;
        assert_eq!(reports.len(), 1);
        assert_eq!(
            clock.now(),
            T + 60,
            "the hanging fetch ran into its timeout"
        );
        assert_eq!(reports[0].errors().count(), 1);
        assert_eq!(rel_minutes(&r.handler.checks()), vec![0]);
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn the_loader_runs_before_each_cycle() -> TestResult {
        let r = rig(Vec::new());
        let loads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let engine =
            Engine::new(r.source.clone(), r.store.clone(), r.handler.clone()).with_loader({
                let loads = loads.clone();
                move || {
                    let n = loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    // The file appears at the second load.
                    let checkers = if n == 0 {
                        Vec::new()
                    } else {
                        vec![checker("late", vec![every_minute(0, 9, 60)])]
                    };
                    Ok(dwmon_core::LoadReport {
                        checkers,
                        errors: Vec::new(),
                    })
                }
            });
        let clock = TokioClock::new(T);
        engine
            .run(&clock, tokio::time::sleep(Duration::from_secs(100)))
            .await;
        assert_eq!(loads.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert_eq!(rel_minutes(&r.handler.checks()), vec![1]);
        Ok(())
    }
}

#[tokio::test]
async fn store_errors_are_typed() -> TestResult {
    // Sanity check of the test helper used above.
    let store = FailingStore::new();
    store.set_failing("x", true);
    let err = store.last_checked_minute("x").await.err();
    assert!(matches!(err, Some(StoreError::Backend { .. })));
    Ok(())
}
