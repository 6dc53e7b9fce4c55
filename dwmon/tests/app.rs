//! [`dwmon::App`]: an organisation's binary gets the same command line with its own traits.

use dwmon::{
    async_trait, App, Checker, Event, FetchRequest, Fetched, MemoryStore, Purger, Row, RowGetter,
    SourceError,
};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

const T0: i64 = 1_795_424_400;

/// Two rows in the minute before T0, whatever the source name.
struct Warehouse;

#[async_trait]
impl RowGetter for Warehouse {
    async fn get_rows(&self, request: &FetchRequest<'_>) -> Result<Fetched, SourceError> {
        assert_eq!(request.source, "warehouse");
        Ok(Fetched::from_rows(vec![
            Row::new("a", T0 - 40),
            Row::new("b", T0 - 20),
        ]))
    }
}

struct NeverPurge(Arc<Mutex<u32>>);

impl Purger for NeverPurge {
    fn delete_older_than(&self, _: &Checker, _: i64) -> Option<i64> {
        *self.0.lock().unwrap() += 1;
        None
    }
}

#[test]
fn an_app_with_its_own_getter_store_handler_and_purger_needs_no_source_or_store_flags() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("orders.dwmon"),
        "__QUERY__\nSELECT id, ts FROM orders\n__SOURCE__\nwarehouse\n__REQUIREMENTS__\n\
         CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM2 MAXNUM3 LOOKBACKSECONDS60\n",
    )
    .unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let purges = Arc::new(Mutex::new(0));
    let app = App::new()
        .name("acme-dwmon")
        .row_getter(Warehouse)
        .store(MemoryStore::new())
        .purger(NeverPurge(Arc::clone(&purges)))
        .handler(dwmon::handler_fn(move |event: &Event| {
            sink.lock().unwrap().push(event.clone());
            Ok(())
        }))
        .print_events(false);
    let checkers = dir.path().display().to_string();
    let code = app.run_with_args([
        "acme-dwmon",
        "once",
        "--checkers",
        &checkers,
        "--now",
        &T0.to_string(),
        "--fail-on-bad",
    ]);
    assert_eq!(code, ExitCode::SUCCESS);
    let events = events.lock().unwrap();
    assert_eq!(events.len(), 1);
    match &events[0] {
        Event::Check(check) => assert_eq!((check.checker.as_str(), check.count), ("orders", 2)),
        other => panic!("expected a check, got {other:?}"),
    }
    assert_eq!(*purges.lock().unwrap(), 1, "the app's purger was asked");
}

#[test]
fn usage_errors_and_help_return_clap_exit_codes() {
    assert_eq!(
        App::new().run_with_args(["dwmon", "frobnicate"]),
        ExitCode::from(2)
    );
    assert_eq!(
        App::new().run_with_args(["dwmon", "--version"]),
        ExitCode::SUCCESS
    );
}
