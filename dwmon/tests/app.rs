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
    fn cutoffs(&self, _: &Checker, _: i64) -> dwmon::Cutoffs {
        *self.0.lock().unwrap() += 1;
        dwmon::Cutoffs::KEEP_EVERYTHING
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
    // A usage error prints clap's message on stderr: run it in a child process (the stock
    // binary is `App::new().run_cli()`) so a green test run prints no error text.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dwmon"))
        .arg("frobnicate")
        .output()
        .expect("the dwmon binary runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unrecognized subcommand"));
    // `--version` goes to stdout, which the test harness does not capture for clap: a child
    // process again.
    let version = std::process::Command::new(env!("CARGO_BIN_EXE_dwmon"))
        .arg("--version")
        .output()
        .expect("the dwmon binary runs");
    assert_eq!(version.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("dwmon "));
}

/// An in-house pager standing in for the PagerDuty channel.
struct Pager(Arc<Mutex<Vec<(String, String)>>>);

#[async_trait]
impl dwmon::alert::Notifier for Pager {
    async fn notify(
        &self,
        notification: &dwmon::alert::Notification,
        address: &str,
    ) -> Result<(), dwmon::alert::ChannelError> {
        self.0
            .lock()
            .unwrap()
            .push((notification.kind.to_string(), address.to_string()));
        Ok(())
    }
}

#[test]
fn an_app_alerts_through_its_own_channel_and_alert_store() {
    let dir = tempfile::tempdir().unwrap();
    // Expects 5 to 9 rows; Warehouse has 2: BAD, which pages the team's pager service.
    std::fs::write(
        dir.path().join("orders.dwmon"),
        "__QUERY__\nSELECT id, ts FROM orders\n__SOURCE__\nwarehouse\n__REQUIREMENTS__\n\
         CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM5 MAXNUM9 LOOKBACKSECONDS60 SEVERITYWARNING\n\
         __EXTRA__\n{\"alert\": {\"pagerduty\": \"data-team\"}}\n",
    )
    .unwrap();
    let paged = Arc::new(Mutex::new(Vec::new()));
    let alert_store = dwmon::alert::MemoryAlertStore::new();
    let app = App::new()
        .row_getter(Warehouse)
        .store(MemoryStore::new())
        .alerts(dwmon::alert::AlertsConfig::default())
        .alert_store(alert_store.clone())
        .alert_channel(
            dwmon::alert::ChannelKind::Pagerduty,
            Pager(Arc::clone(&paged)),
        )
        .print_events(false);
    let checkers = dir.path().display().to_string();
    let code = app.run_with_args([
        "dwmon",
        "once",
        "--checkers",
        &checkers,
        "--now",
        &T0.to_string(),
    ]);
    assert_eq!(code, ExitCode::SUCCESS);
    assert_eq!(
        *paged.lock().unwrap(),
        [("firing".to_string(), "data-team".to_string())]
    );
    let overview = block_on(dwmon::alert::AlertStateStore::overview(&alert_store));
    assert_eq!(overview.alerts.len(), 1);
    assert_eq!(overview.alerts[0].state.severity, dwmon::Severity::Warning);
}

/// Runs a future to completion on a fresh current-thread runtime.
fn block_on<F: std::future::Future<Output = Result<T, E>>, T, E: std::fmt::Debug>(future: F) -> T {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(future)
        .unwrap()
}

/// Counts the fetches in flight at once and the most seen. A fetch waits until `wanted`
/// fetches have been in flight together (or every one of `total` has started), so the most
/// seen is the engine's limit whatever the scheduling: exactly `wanted` when the limit is
/// `wanted`, more when the engine lets more through.
struct Crowd {
    wanted: usize,
    total: usize,
    state: Mutex<(usize, usize, usize)>, // in flight, most, started
    changed: tokio::sync::Notify,
}

impl Crowd {
    fn new(wanted: usize, total: usize) -> Self {
        Crowd {
            wanted,
            total,
            state: Mutex::new((0, 0, 0)),
            changed: tokio::sync::Notify::new(),
        }
    }

    fn most(&self) -> usize {
        self.state.lock().unwrap().1
    }
}

#[async_trait]
impl RowGetter for Crowd {
    async fn get_rows(&self, _request: &FetchRequest<'_>) -> Result<Fetched, SourceError> {
        {
            let mut state = self.state.lock().unwrap();
            state.0 += 1;
            state.1 = state.1.max(state.0);
            state.2 += 1;
        }
        self.changed.notify_waiters();
        loop {
            let changed = self.changed.notified();
            {
                let state = self.state.lock().unwrap();
                if state.1 >= self.wanted || state.2 >= self.total {
                    break;
                }
            }
            changed.await;
        }
        // Give fetches past the limit (if the engine let them through) the time to start.
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        self.state.lock().unwrap().0 -= 1;
        self.changed.notify_waiters();
        Ok(Fetched::from_rows(Vec::new()))
    }
}

/// A fetch that never ends.
struct Hung;

#[async_trait]
impl RowGetter for Hung {
    async fn get_rows(&self, _request: &FetchRequest<'_>) -> Result<Fetched, SourceError> {
        std::future::pending().await
    }
}

/// Runs `once` on `checkers` copies of one checker with `app`, `extra` flags after the rest.
fn once_with(app: App, checkers: usize, extra: &[&str]) -> Vec<Event> {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..checkers {
        std::fs::write(
            dir.path().join(format!("c{i}.dwmon")),
            "__QUERY__\nq\n__SOURCE__\nwarehouse\n__REQUIREMENTS__\n\
             CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM0 MAXNUM3 LOOKBACKSECONDS60\n",
        )
        .unwrap();
    }
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let app = app
        .store(MemoryStore::new())
        .handler(dwmon::handler_fn(move |event: &Event| {
            sink.lock().unwrap().push(event.clone());
            Ok(())
        }))
        .print_events(false);
    let checkers = dir.path().display().to_string();
    let now = T0.to_string();
    let mut args = vec!["dwmon", "once", "--checkers", &checkers, "--now", &now];
    args.extend_from_slice(extra);
    assert_eq!(app.run_with_args(args), ExitCode::SUCCESS);
    let events = events.lock().unwrap().clone();
    events
}

#[test]
fn engine_config_sets_the_concurrency_and_the_flag_overrides_it() {
    // `wanted`: the limit the engine should apply to six checkers of one source.
    let most = |wanted: usize, config: Option<dwmon::EngineConfig>, extra: &[&str]| {
        let crowd = Arc::new(Crowd::new(wanted, 6));
        let mut app = App::new().row_getter(Arc::clone(&crowd));
        if let Some(config) = config {
            app = app.engine_config(config);
        }
        let events = once_with(app, 6, extra);
        assert_eq!(events.len(), 6, "{events:?}");
        crowd.most()
    };
    let two = dwmon::EngineConfig {
        max_concurrent_checkers: 2,
        ..dwmon::EngineConfig::default()
    };
    assert_eq!(
        most(6, None, &[]),
        6,
        "the default (8) fetches all six at once"
    );
    assert_eq!(
        most(2, Some(two.clone()), &[]),
        2,
        "the App's engine config"
    );
    assert_eq!(
        most(1, Some(two), &["--concurrency", "1"]),
        1,
        "the flag wins"
    );
    assert_eq!(most(3, None, &["--concurrency", "3"]), 3, "the flag alone");
}

#[test]
fn engine_config_sets_the_fetch_timeout() {
    let config = dwmon::EngineConfig {
        fetch_timeout: std::time::Duration::from_millis(50),
        ..dwmon::EngineConfig::default()
    };
    let events = once_with(App::new().row_getter(Hung).engine_config(config), 1, &[]);
    match events.as_slice() {
        [Event::Error(error)] => {
            assert!(error.error.contains("timed out after 50 ms"), "{error:?}")
        }
        other => panic!("expected one ERROR event, got {other:?}"),
    }
}

/// The App's own store keeps the alert state too: alerting needs no `--store` file and no
/// separate alert store, and `pause` writes the same store.
#[test]
fn an_apps_own_store_keeps_its_alert_state() {
    use dwmon::alert::AlertStateStore;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("orders.dwmon"),
        "__QUERY__\nSELECT id, ts FROM orders\n__SOURCE__\nwarehouse\n__REQUIREMENTS__\n\
         CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM5 MAXNUM9 LOOKBACKSECONDS60\n",
    )
    .unwrap();
    let store = Arc::new(MemoryStore::new());
    let app = App::new()
        .row_getter(Warehouse)
        .store(Arc::clone(&store))
        .alerts(dwmon::alert::AlertsConfig::default())
        .print_events(false);
    let checkers = dir.path().display().to_string();
    let now = T0.to_string();
    let code = app
        .clone()
        .run_with_args(["dwmon", "once", "--checkers", &checkers, "--now", &now]);
    assert_eq!(code, ExitCode::SUCCESS);
    let states = block(store.alert_states("orders")).unwrap();
    assert_eq!(states.len(), 1, "{states:?}");
    assert_eq!(states[0].1.consecutive_bad, 1, "{states:?}");
    let code = app.run_with_args(["dwmon", "pause", "orders", "--now", &now]);
    assert_eq!(code, ExitCode::SUCCESS);
    assert!(block(store.pause("orders")).unwrap().is_some());
}

fn block<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(future)
}
