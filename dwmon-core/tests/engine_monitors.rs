//! Monitors in the engine's cycle (dwmon_core::monitor): judged after the checkers over their
//! stored rows, recorded as `monitor:NAME`, delivered in order through the outbox, caught up
//! inside their horizon, at fixed instants.

use dwmon_core::monitor::{Monitor, MonitorCounts, MonitorInput, MonitorSchedule, Verdict};
use dwmon_core::testutil::{
    checker, every_minute, every_nth_minute, requirement, RecordingHandler, ScriptedSource,
};
use dwmon_core::{CheckLog, Checker, Engine, ErrorKind, MemoryStore, Row, Status, StoreView};
use std::sync::Arc;

/// Tue 2023-11-14 22:14:00 UTC, a minute.
const T: i64 = 1_700_000_040;
const MIN: i64 = 60;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The seed's Rearview monitor: conversions / impressions over 3 minutes, at least 10%.
struct ConversionRate;

impl Monitor for ConversionRate {
    fn name(&self) -> &str {
        "conversion_rate"
    }

    fn inputs(&self) -> Vec<MonitorInput> {
        vec![
            MonitorInput::new("impressions", 180),
            MonitorInput::new("conversions", 180),
        ]
    }

    fn schedule(&self) -> MonitorSchedule {
        MonitorSchedule::every_minute()
    }

    fn judge(&self, counts: &MonitorCounts) -> Verdict {
        let impressions = counts.count("impressions");
        let conversions = counts.count("conversions");
        if impressions == 0 {
            return Verdict::bad("no impressions");
        }
        let rate = conversions as f64 / impressions as f64;
        Verdict::good_if(rate >= 0.10, format!("rate {:.3}", rate)).with_value(rate)
    }

    fn extra(&self) -> serde_json::Value {
        serde_json::json!({"alert": {"slack": "#growth"}})
    }
}

/// `n` rows of `prefix` spread over the minute before `minute`.
fn rows(prefix: &str, minute: i64, n: i64) -> Vec<Row> {
    (0..n)
        .map(|i| {
            Row::new(
                format!("{prefix}-{minute}-{i}"),
                minute - MIN + i * 60 / n.max(1),
            )
        })
        .collect()
}

struct Rig {
    source: Arc<ScriptedSource>,
    store: Arc<MemoryStore>,
    handler: Arc<RecordingHandler>,
    engine: Engine,
}

fn rig(checkers: Vec<Checker>, monitors: Vec<Arc<dyn Monitor>>) -> Rig {
    let source = Arc::new(ScriptedSource::new());
    let store = Arc::new(MemoryStore::new());
    let handler = Arc::new(RecordingHandler::new());
    let engine = Engine::new(source.clone(), store.clone(), handler.clone())
        .with_checkers(checkers)
        .with_monitors(monitors);
    Rig {
        source,
        store,
        handler,
        engine,
    }
}

fn ad_checkers() -> Vec<Checker> {
    vec![
        checker("impressions", vec![every_minute(1, 1_000_000, 180)]),
        checker("conversions", vec![every_minute(0, 1_000_000, 180)]),
    ]
}

/// Rows of both checkers for the ten minutes before `minute`, at 30 impressions a minute
/// and `conversions` a minute (accumulating: a source returns its history).
fn feed(rig: &Rig, minute: i64, conversions_per_minute: &[(i64, i64)]) {
    let mut impressions = Vec::new();
    let mut conversions = Vec::new();
    for back in 0..10 {
        let m = minute - back * MIN;
        impressions.extend(rows("imp", m, 30));
        let n = conversions_per_minute
            .iter()
            .find(|(at, _)| *at == m)
            .map_or(6, |(_, n)| *n);
        conversions.extend(rows("conv", m, n));
    }
    rig.source.set_rows("impressions", impressions);
    rig.source.set_rows("conversions", conversions);
}

fn monitor_checks(rig: &Rig) -> Vec<dwmon_core::CheckRecord> {
    rig.handler
        .checks()
        .into_iter()
        .filter(|c| c.checker == "monitor:conversion_rate")
        .collect()
}

mod judging {
    use super::*;

    #[tokio::test]
    async fn a_monitor_judges_the_windowed_counts_of_its_checkers() -> TestResult {
        let rig = rig(ad_checkers(), vec![Arc::new(ConversionRate)]);
        feed(&rig, T, &[]);
        let report = rig.engine.run_cycle(T + 5).await;
        let checks = monitor_checks(&rig);
        assert_eq!(checks.len(), 1, "{:?}", rig.handler.events());
        let check = &checks[0];
        assert_eq!(check.minute, T);
        assert_eq!(check.status, Status::Good);
        assert_eq!(
            check.idempotency_key(),
            format!("monitor:conversion_rate/0/{T}")
        );
        assert_eq!(check.lookback_seconds, 180);
        assert_eq!(
            check.extra,
            serde_json::json!({"alert": {"slack": "#growth"}})
        );
        let verdict = check.monitor.as_ref().expect("a monitor's verdict");
        assert_eq!(verdict.message, "rate 0.200");
        assert_eq!(verdict.value, Some(0.2));
        let counts: Vec<(String, u64)> = verdict
            .inputs
            .iter()
            .map(|i| (i.checker.clone(), i.count))
            .collect();
        assert_eq!(
            counts,
            vec![("impressions".into(), 90), ("conversions".into(), 18)]
        );
        // Judged after the checkers: its record is the last one handed over.
        let last = rig.handler.checks().last().cloned().expect("checks");
        assert_eq!(last.checker, "monitor:conversion_rate");
        // Recorded in the check log under its own name.
        assert_eq!(
            rig.store
                .last_checked_minute("monitor:conversion_rate")
                .await?,
            Some(T)
        );
        assert!(report.outcome("monitor:conversion_rate").is_some());
        Ok(())
    }

    #[tokio::test]
    async fn a_drop_in_the_rate_is_bad_and_its_recovery_good() -> TestResult {
        let rig = rig(ad_checkers(), vec![Arc::new(ConversionRate)]);
        // Conversions stop in minutes T+1 and T+2 (rows before T+2, T+3).
        let drop = [(T + 2 * MIN, 0), (T + 3 * MIN, 0)];
        let mut statuses = Vec::new();
        for step in 0..6 {
            let minute = T + step * MIN;
            feed(&rig, minute, &drop);
            rig.engine.run_cycle(minute + 5).await;
        }
        for check in monitor_checks(&rig) {
            statuses.push(((check.minute - T) / MIN, check.status));
        }
        use Status::{Bad, Good};
        assert_eq!(
            statuses,
            vec![
                (0, Good),
                (1, Good),
                (2, Good),
                (3, Bad),
                (4, Bad),
                (5, Good)
            ]
        );
        Ok(())
    }

    #[tokio::test]
    async fn a_cycle_run_twice_records_and_delivers_a_minute_once() -> TestResult {
        let rig = rig(ad_checkers(), vec![Arc::new(ConversionRate)]);
        feed(&rig, T, &[]);
        rig.engine.run_cycle(T + 5).await;
        rig.engine.run_cycle(T + 30).await;
        assert_eq!(monitor_checks(&rig).len(), 1);
        Ok(())
    }
}

mod readiness {
    use super::*;

    #[tokio::test]
    async fn minutes_wait_until_every_input_was_checked_at_them() -> TestResult {
        // Conversions are checked every 5 minutes only: the monitor judges in batches.
        let checkers = vec![
            checker("impressions", vec![every_minute(1, 1_000_000, 180)]),
            checker(
                "conversions",
                vec![requirement(every_nth_minute(5), 0, 1_000_000, 180)],
            ),
        ];
        let rig = rig(checkers, vec![Arc::new(ConversionRate)]);
        // T is 22:14; 22:15 is the first five-minute mark.
        let mark = T + MIN;
        for step in 0..7 {
            let minute = T + step * MIN;
            feed(&rig, minute, &[]);
            rig.engine.run_cycle(minute + 5).await;
            let judged: Vec<i64> = monitor_checks(&rig).iter().map(|c| c.minute).collect();
            let expected: Vec<i64> = if minute < mark {
                vec![]
            } else if minute < mark + 5 * MIN {
                vec![mark]
            } else {
                (0..=5).map(|i| mark + i * MIN).collect()
            };
            assert_eq!(judged, expected, "after the cycle of {minute}");
        }
        // Every minute judged with the rows of its own windows, never stale ones.
        for check in monitor_checks(&rig) {
            assert_eq!(check.status, Status::Good, "{check:?}");
            assert_eq!(check.monitor.expect("verdict").inputs[1].count, 18);
        }
        Ok(())
    }

    #[tokio::test]
    async fn minutes_that_leave_the_horizon_unjudged_are_missed() -> TestResult {
        let rig = rig(ad_checkers(), vec![Arc::new(ConversionRate)]);
        feed(&rig, T, &[]);
        rig.engine.run_cycle(T + 5).await;
        // Two hours later (horizon 30 minutes for the 3-minute windows).
        let later = T + 120 * MIN;
        feed(&rig, later, &[]);
        rig.engine.run_cycle(later + 5).await;
        let checks = monitor_checks(&rig);
        let missed = checks.iter().filter(|c| c.status == Status::Missed).count();
        let judged: Vec<i64> = checks
            .iter()
            .filter(|c| c.status != Status::Missed)
            .map(|c| c.minute)
            .collect();
        assert_eq!(missed, 120 - 30);
        assert_eq!(judged.len(), 1 + 30);
        assert_eq!(judged.last(), Some(&later));
        assert!(checks.windows(2).all(|w| w[0].minute < w[1].minute));
        Ok(())
    }
}

mod delivery {
    use super::*;

    #[tokio::test]
    async fn a_failed_delivery_is_retried_before_the_next_minute() -> TestResult {
        let rig = rig(ad_checkers(), vec![Arc::new(ConversionRate)]);
        feed(&rig, T, &[]);
        rig.engine.run_cycle(T + 5).await;
        // Both checkers' and the monitor's next deliveries fail once.
        rig.handler.fail_next(3);
        feed(&rig, T + MIN, &[]);
        rig.engine.run_cycle(T + MIN + 5).await;
        assert_eq!(monitor_checks(&rig).len(), 1);
        // Still pending in the outbox under its own key.
        let pending = rig
            .store
            .claim_deliveries(100, dwmon_core::store::Lease::new(0, 0))
            .await?;
        assert!(pending
            .iter()
            .any(|p| p.key == format!("monitor:conversion_rate/0/{}", T + MIN)));
        // After the backoff, the retried minute comes first, then the new one.
        let later = T + 2 * MIN + 40;
        feed(&rig, T + 2 * MIN, &[]);
        rig.engine.run_cycle(later).await;
        let minutes: Vec<i64> = monitor_checks(&rig).iter().map(|c| c.minute).collect();
        assert_eq!(minutes, vec![T, T + MIN, T + 2 * MIN]);
        assert!(rig
            .store
            .claim_deliveries(100, dwmon_core::store::Lease::new(0, 0))
            .await?
            .is_empty());
        Ok(())
    }
}

mod errors {
    use super::*;

    struct Reads(&'static str);

    impl Monitor for Reads {
        fn name(&self) -> &str {
            "reads"
        }
        fn inputs(&self) -> Vec<MonitorInput> {
            vec![MonitorInput::new(self.0, 60)]
        }
        fn schedule(&self) -> MonitorSchedule {
            MonitorSchedule::every_minute()
        }
        fn judge(&self, counts: &MonitorCounts) -> Verdict {
            if counts.count(self.0) > 100 {
                panic!("a bug in the monitor");
            }
            Verdict::good("fine")
        }
    }

    #[tokio::test]
    async fn an_unknown_input_is_an_error_of_the_monitor_only() -> TestResult {
        let rig = rig(ad_checkers(), vec![Arc::new(Reads("nope"))]);
        feed(&rig, T, &[]);
        let report = rig.engine.run_cycle(T + 5).await;
        let errors = rig.handler.errors();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].checker, "monitor:reads");
        assert_eq!(errors[0].kind, ErrorKind::Monitor);
        assert!(
            errors[0].error.contains("checker nope"),
            "{}",
            errors[0].error
        );
        assert_eq!(
            report
                .checks()
                .filter(|c| c.checker == "impressions")
                .count(),
            1
        );
        let status = rig.store.status().await?;
        let mine = status.iter().find(|s| s.checker == "monitor:reads");
        assert!(mine.and_then(|s| s.last_error.as_ref()).is_some());
        Ok(())
    }

    #[tokio::test]
    async fn a_panicking_judge_records_nothing_and_is_an_error() -> TestResult {
        let rig = rig(ad_checkers(), vec![Arc::new(Reads("impressions"))]);
        rig.source.set_rows("impressions", rows("imp", T, 200));
        rig.source.set_rows("conversions", rows("conv", T, 1));
        rig.engine.run_cycle(T + 5).await;
        let errors = rig.handler.errors();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].kind, ErrorKind::Monitor);
        assert!(errors[0].error.contains("panicked"), "{}", errors[0].error);
        assert_eq!(rig.store.last_checked_minute("monitor:reads").await?, None);
        Ok(())
    }

    #[tokio::test]
    async fn two_monitors_of_one_name_run_the_first_only() -> TestResult {
        let rig = rig(
            ad_checkers(),
            vec![
                Arc::new(Reads("impressions")),
                Arc::new(Reads("conversions")),
            ],
        );
        feed(&rig, T, &[]);
        rig.engine.run_cycle(T + 5).await;
        let errors = rig.handler.errors();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].error.contains("taken"), "{}", errors[0].error);
        let checks: Vec<_> = rig
            .handler
            .checks()
            .into_iter()
            .filter(|c| c.checker == "monitor:reads")
            .collect();
        assert_eq!(checks.len(), 1);
        Ok(())
    }
}
