//! Dependencies (issue 14 item 5, docs/ALERTING.md "Dependencies"): while a checker's parent
//! is BAD or ERROR its notifications are held; a recovery of what paged is always sent; a
//! held alert still firing when the parent recovers is announced then — also across a
//! restart (the held state is in the SQLite alert store). Minutes are explicit.

mod common;

use common::{error_event, no_extra, record, RecordingNotifier, T0};
use dwmon_alert::{AlertHandler, AlertStateStore, ChannelKind, Channels};
use dwmon_core::{CheckHandler, Event, Status};
use dwmon_sqlite::SqliteStore;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const M: i64 = 60;

struct Run {
    handler: AlertHandler,
    sent: Arc<RecordingNotifier>,
}

fn open(path: &Path) -> Result<Run, Box<dyn std::error::Error>> {
    let sent = RecordingNotifier::new();
    let channels = Channels::new().with(ChannelKind::Log, sent.clone());
    let handler = AlertHandler::new(Arc::new(SqliteStore::open(path)?), channels)
        .with_default_routes(dwmon_alert::Routes {
            targets: vec![dwmon_alert::Target::new(ChannelKind::Log, "")],
            repeat_seconds: Some(0),
        });
    Ok(Run { handler, sent })
}

fn child() -> Value {
    json!({"parent": "db"})
}

impl Run {
    async fn db(&self, minute: i64, status: Status) -> TestResult {
        let event = Event::Check(record("db", 0, minute, status, no_extra()));
        Ok(self.handler.handle(&event).await?)
    }

    async fn orders(&self, minute: i64, status: Status) -> TestResult {
        let event = Event::Check(record("orders", 0, minute, status, child()));
        Ok(self.handler.handle(&event).await?)
    }

    /// `(checker kind @minute-offset)` of everything sent, e.g. `orders firing @2`.
    fn log(&self) -> Vec<String> {
        self.sent
            .notifications()
            .iter()
            .map(|n| format!("{} {} @{}", n.checker, n.kind, (n.at - T0) / M))
            .collect()
    }
}

#[tokio::test]
async fn a_child_held_while_its_parent_is_bad_is_announced_when_the_parent_recovers() -> TestResult
{
    let dir = tempfile::tempdir()?;
    let run = open(&dir.path().join("dwmon.sqlite"))?;
    run.db(T0, Status::Bad).await?;
    run.orders(T0, Status::Bad).await?;
    run.db(T0 + M, Status::Bad).await?;
    run.orders(T0 + M, Status::Bad).await?;
    assert_eq!(run.log(), ["db firing @0"], "the child is held, no page");
    let state = run.handler.store().alert_state("orders", 0).await?;
    assert!(state.is_some_and(|s| s.held.is_some()), "held state kept");

    // The parent recovers; the child is still firing: announced at the parent's minute,
    // before the child's own next check.
    run.db(T0 + 2 * M, Status::Good).await?;
    assert_eq!(
        run.log(),
        ["db firing @0", "orders firing @2", "db resolved @2"]
    );
    let firing = &run.sent.notifications()[1];
    assert_eq!(
        firing.since,
        Some(T0),
        "the incident started at the child's first BAD"
    );
    assert_eq!(firing.minute, T0 + M, "the latest held check");
    // Its next check is no second Firing; its recovery is sent.
    run.orders(T0 + 2 * M, Status::Bad).await?;
    run.orders(T0 + 3 * M, Status::Good).await?;
    assert_eq!(run.log()[3..], ["orders resolved @3"]);
    Ok(())
}

#[tokio::test]
async fn a_child_that_paged_before_its_parent_went_bad_still_resolves() -> TestResult {
    let dir = tempfile::tempdir()?;
    let run = open(&dir.path().join("dwmon.sqlite"))?;
    run.db(T0, Status::Good).await?;
    run.orders(T0, Status::Bad).await?;
    run.db(T0 + M, Status::Bad).await?;
    run.orders(T0 + M, Status::Bad).await?;
    run.orders(T0 + 2 * M, Status::Good).await?;
    assert_eq!(
        run.log(),
        ["orders firing @0", "db firing @1", "orders resolved @2"],
        "the recovery of what paged is sent while the parent is BAD"
    );
    run.db(T0 + 3 * M, Status::Good).await?;
    assert_eq!(
        run.log()[3..],
        ["db resolved @3"],
        "nothing more for the child"
    );
    Ok(())
}

#[tokio::test]
async fn a_streak_that_ends_while_held_is_never_announced() -> TestResult {
    let dir = tempfile::tempdir()?;
    let run = open(&dir.path().join("dwmon.sqlite"))?;
    run.db(T0, Status::Bad).await?;
    run.orders(T0, Status::Bad).await?;
    run.orders(T0 + M, Status::Good).await?;
    run.db(T0 + 2 * M, Status::Good).await?;
    run.orders(T0 + 2 * M, Status::Good).await?;
    assert_eq!(run.log(), ["db firing @0", "db resolved @2"]);
    Ok(())
}

#[tokio::test]
async fn a_parent_in_error_holds_its_children_and_its_next_check_releases_them() -> TestResult {
    let dir = tempfile::tempdir()?;
    let run = open(&dir.path().join("dwmon.sqlite"))?;
    run.db(T0, Status::Good).await?;
    let error = Event::Error(error_event("db", T0 + M, no_extra()));
    run.handler.handle(&error).await?;
    run.orders(T0 + M, Status::Bad).await?;
    // The child's own source error is held too.
    let child_error = Event::Error(error_event("orders", T0 + 2 * M, child()));
    run.handler.handle(&child_error).await?;
    assert_eq!(run.log(), ["db source_error @1"]);
    run.db(T0 + 3 * M, Status::Good).await?;
    assert_eq!(
        run.log(),
        [
            "db source_error @1",
            "orders firing @3",
            "db source_recovered @3"
        ]
    );
    Ok(())
}

#[tokio::test]
async fn the_parent_is_bad_when_any_of_its_requirements_is() -> TestResult {
    let dir = tempfile::tempdir()?;
    let run = open(&dir.path().join("dwmon.sqlite"))?;
    let db = |index, minute, status| Event::Check(record("db", index, minute, status, no_extra()));
    run.handler.handle(&db(0, T0, Status::Good)).await?;
    run.handler.handle(&db(1, T0, Status::Bad)).await?;
    run.orders(T0, Status::Bad).await?;
    run.handler.handle(&db(0, T0 + M, Status::Good)).await?;
    assert_eq!(run.log(), ["db firing @0"], "requirement 1 is still BAD");
    run.handler.handle(&db(1, T0 + M, Status::Good)).await?;
    assert_eq!(
        run.log(),
        ["db firing @0", "orders firing @1", "db resolved @1"]
    );
    Ok(())
}

#[tokio::test]
async fn a_restart_between_parent_bad_and_recovery_keeps_the_held_alert() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("dwmon.sqlite");
    {
        let run = open(&path)?;
        run.db(T0, Status::Bad).await?;
        run.orders(T0, Status::Bad).await?;
        assert_eq!(run.log(), ["db firing @0"]);
    } // the process dies here
    let run = open(&path)?;
    // The engine may redeliver the last checks after a crash: replays, nothing new.
    run.orders(T0, Status::Bad).await?;
    run.db(T0 + M, Status::Good).await?;
    assert_eq!(run.log(), ["orders firing @1", "db resolved @1"]);
    run.db(T0 + M, Status::Good).await?;
    run.orders(T0 + M, Status::Bad).await?;
    assert_eq!(run.log().len(), 2, "announced once: {:?}", run.log());
    Ok(())
}

#[tokio::test]
async fn a_monitor_naming_a_parent_checker_is_held_like_a_checker() -> TestResult {
    let dir = tempfile::tempdir()?;
    let run = open(&dir.path().join("dwmon.sqlite"))?;
    let monitor = |minute, status| {
        let mut r = record("monitor:conversion_rate", 0, minute, status, child());
        r.requirement = "monitor conversion_rate".into();
        Event::Check(r)
    };
    run.db(T0, Status::Bad).await?;
    run.handler.handle(&monitor(T0, Status::Bad)).await?;
    assert_eq!(run.log(), ["db firing @0"]);
    run.db(T0 + M, Status::Good).await?;
    assert_eq!(
        run.log(),
        [
            "db firing @0",
            "monitor:conversion_rate firing @1",
            "db resolved @1"
        ]
    );
    Ok(())
}
