//! The engine judges push checkers' runs (`MINDURATION` / `MAXDURATION`, docs/FORMAT.md
//! "Run durations") from the ping log it is given: the check is BAD and its record says
//! which run, with the count bounds still applied. Fixed instants, no clock.

use dwmon_core::ping::PingKind;
use dwmon_core::ping_log::{MemoryPingLog, Ping, PingEntry, PingLog};
use dwmon_core::runs::RunProblem;
use dwmon_core::testutil::{RecordingHandler, ScriptedSource};
use dwmon_core::{parse_checker, CheckRecord, Engine, ErrorKind, MemoryStore, Row, Status};
use std::sync::Arc;

/// Tue 2023-11-14 22:14:00 UTC, a minute.
const T: i64 = 1_700_000_040;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn push_checker(requirement: &str) -> Result<dwmon_core::Checker, Box<dyn std::error::Error>> {
    Ok(parse_checker(
        "job.dwmon",
        &format!("__SOURCE__\npush\n__REQUIREMENTS__\n{requirement}\n"),
    )?)
}

struct Rig {
    log: Arc<MemoryPingLog>,
    handler: Arc<RecordingHandler>,
    engine: Engine,
}

fn rig(requirement: &str) -> Result<Rig, Box<dyn std::error::Error>> {
    let store = Arc::new(MemoryStore::new());
    let log = Arc::new(MemoryPingLog::new(store.clone()));
    let handler = Arc::new(RecordingHandler::new());
    let engine = Engine::new(Arc::new(ScriptedSource::new()), store, handler.clone())
        .with_ping_log(log.clone())
        .with_checkers(vec![push_checker(requirement)?]);
    Ok(Rig {
        log,
        handler,
        engine,
    })
}

impl Rig {
    /// Commits pings `(kind, time, rid)` one by one, as the server would.
    async fn ping(&self, pings: &[(PingKind, i64, Option<&str>)]) -> TestResult {
        for (i, &(kind, time, rid)) in pings.iter().enumerate() {
            let ping = Ping {
                row: Row::new(format!("k{time}-{i}"), time),
                entry: PingEntry {
                    rid: rid.map(str::to_string),
                    ..PingEntry::new("job", kind, time)
                },
            };
            self.log.record_pings(&[ping], 100).await?;
        }
        Ok(())
    }

    async fn check(&self, now: i64) -> Vec<CheckRecord> {
        self.engine.run_cycle(now).await.checks().cloned().collect()
    }
}

const EVERY_MINUTE: &str = "CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS";

#[tokio::test]
async fn a_run_that_finished_too_fast_is_bad_and_named() -> TestResult {
    let rig = rig(&format!(
        "{EVERY_MINUTE} MINNUM1 MAXNUM10 LOOKBACKSECONDS600 MINDURATION30"
    ))?;
    rig.ping(&[
        (PingKind::Start, T - 300, Some("r1")),
        (PingKind::Success, T - 290, Some("r1")),
    ])
    .await?;
    let checks = rig.check(T).await;
    assert_eq!(checks.len(), 1);
    let check = &checks[0];
    // The count (one success) is within its bounds; the run is not.
    assert_eq!((check.count, check.status), (1, Status::Bad));
    let runs = check.runs.as_ref().expect("the record says why");
    assert_eq!(
        (
            runs.run.problem,
            runs.run.duration_seconds,
            runs.run.rid.as_deref()
        ),
        (RunProblem::TooFast, 10, Some("r1"))
    );
    assert!(
        runs.message.contains("run rid=r1") && runs.message.contains("under MINDURATION30"),
        "{}",
        runs.message
    );
    // The record as JSON carries it too (the CLI prints it, handlers send it).
    let json = serde_json::to_value(check)?;
    assert_eq!(json["runs"]["run"]["problem"], "too_fast");
    Ok(())
}

#[tokio::test]
async fn good_runs_and_count_bounds_together() -> TestResult {
    let rig = rig(&format!(
        "{EVERY_MINUTE} MINNUM2 MAXNUM10 LOOKBACKSECONDS600 MINDURATION10 MAXDURATION60"
    ))?;
    // Exactly MINDURATION and exactly MAXDURATION are fine.
    rig.ping(&[
        (PingKind::Start, T - 500, None),
        (PingKind::Success, T - 490, None),
        (PingKind::Start, T - 200, None),
        (PingKind::Fail, T - 140, None),
    ])
    .await?;
    let checks = rig.check(T).await;
    // One success counted, MINNUM2: BAD by the count alone, no runs report.
    assert_eq!((checks[0].count, checks[0].status), (1, Status::Bad));
    assert_eq!(checks[0].runs, None);
    rig.ping(&[(PingKind::Success, T + 10, None)]).await?;
    let checks = rig.check(T + 60).await;
    assert_eq!((checks[0].count, checks[0].status), (2, Status::Good));
    assert_eq!(checks[0].runs, None);
    Ok(())
}

#[tokio::test]
async fn a_start_without_a_finish_turns_bad_after_maxduration() -> TestResult {
    let rig = rig(&format!(
        "{EVERY_MINUTE} MINNUM0 MAXNUM10 LOOKBACKSECONDS300 MAXDURATION120"
    ))?;
    rig.ping(&[(PingKind::Start, T - 100, Some("long"))])
        .await?;
    // 100 s open at T: fine. 160 s at T + 60: overdue (started, never finished).
    let at_t = rig.check(T).await;
    assert_eq!(at_t[0].status, Status::Good);
    let later = rig.check(T + 60).await;
    assert_eq!(later[0].status, Status::Bad);
    let runs = later[0].runs.as_ref().expect("why");
    assert_eq!(
        (runs.run.problem, runs.run.duration_seconds),
        (RunProblem::NeverFinished, 160)
    );
    // It finishes at T + 70: a run of 170 s, judged by its finish: ran too long.
    rig.ping(&[(PingKind::Success, T + 70, Some("long"))])
        .await?;
    let finished = rig.check(T + 120).await;
    let runs = finished[0].runs.as_ref().expect("why");
    assert_eq!(
        (
            finished[0].status,
            runs.run.problem,
            runs.run.duration_seconds
        ),
        (Status::Bad, RunProblem::TooLong, 170)
    );
    // Once the finish has left the 300 s window, the check is GOOD again.
    let clear = rig.check(T + 420).await;
    assert_eq!(
        clear.last().map(|c| (c.minute, c.status)),
        Some((T + 420, Status::Good))
    );
    Ok(())
}

#[tokio::test]
async fn the_handler_gets_the_record_naming_the_run() -> TestResult {
    let rig = rig(&format!(
        "{EVERY_MINUTE} MINNUM0 MAXNUM10 LOOKBACKSECONDS300 MAXDURATION60"
    ))?;
    rig.ping(&[
        (PingKind::Start, T - 200, None),
        (PingKind::Success, T - 50, None),
    ])
    .await?;
    let checks = rig.check(T).await;
    let message = &checks[0].runs.as_ref().expect("why").message;
    assert!(
        message.contains("finished after 150 s, over MAXDURATION60 (ran too long)"),
        "{message}"
    );
    assert!(rig.handler.checks()[0].runs.is_some());
    Ok(())
}

#[tokio::test]
async fn without_a_ping_log_duration_bounds_are_an_error() -> TestResult {
    let handler = Arc::new(RecordingHandler::new());
    let engine = Engine::new(
        Arc::new(ScriptedSource::new()),
        Arc::new(MemoryStore::new()),
        handler.clone(),
    )
    .with_checkers(vec![push_checker(&format!(
        "{EVERY_MINUTE} MINNUM0 MAXNUM10 LOOKBACKSECONDS300 MAXDURATION60"
    ))?]);
    let report = engine.run_cycle(T).await;
    assert_eq!(report.checks().count(), 0);
    let errors = handler.errors();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].kind, ErrorKind::Store);
    assert!(
        errors[0].error.contains("no ping log"),
        "{}",
        errors[0].error
    );
    // A push checker without duration bounds needs no ping log.
    let plain = Engine::new(
        Arc::new(ScriptedSource::new()),
        Arc::new(MemoryStore::new()),
        Arc::new(RecordingHandler::new()),
    )
    .with_checkers(vec![push_checker(&format!(
        "{EVERY_MINUTE} MINNUM0 MAXNUM10 LOOKBACKSECONDS300"
    ))?]);
    assert_eq!(plain.run_cycle(T).await.checks().count(), 1);
    Ok(())
}
