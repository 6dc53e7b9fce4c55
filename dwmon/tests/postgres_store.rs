//! `--store postgres://...` end to end: `once`, `run`, `status`, `pause` and `unpause` on a
//! PostgreSQL store in a schema of its own, on the server named by `DWMON_TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432/test`). Under `CI=true`, or when the variable
//! is set, an unreachable server fails the test; otherwise it prints `SKIPPED:` and returns.

mod common;
use common::*;

mod pg;
use pg::{server, Schema};

#[test]
fn once_run_status_and_pause_use_a_postgres_store() {
    let Some(server) = server() else { return };
    let schema = Schema::new(&server, "commands");
    let store = schema.url(None);
    let ws = Workspace::new();
    ws.events_checker(
        "events",
        "CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM1 MAXNUM5 LOOKBACKSECONDS60",
    );
    ws.insert(&[("a", T0 - 30), ("b", T0 - 20)]);
    let (checkers, source) = (ws.checkers_arg(), ws.source_arg());
    let now = T0.to_string();
    let base = [
        "--checkers",
        checkers.as_str(),
        "--store",
        store.as_str(),
        "--source",
        source.as_str(),
    ];
    let mut once = vec!["once"];
    once.extend(base);
    once.extend(["--now", &now, "--json"]);
    let out = run(&once);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        checks(&json_lines(&out)),
        vec![("events".into(), T0, "GOOD".into(), 2)]
    );
    // The same minute again: recorded once, nothing new to deliver.
    let out = run(&once);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(checks(&json_lines(&out)).is_empty(), "{}", stdout(&out));

    let out = run(&["status", "--store", &store, "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["checker"], "events");
    assert_eq!(lines[0]["last_minute"], T0, "{:?}", lines[0]);

    let out = run(&[
        "pause",
        "events",
        "--store",
        &store,
        "--comment",
        "migration",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = run(&["status", "--store", &store]);
    assert!(stdout(&out).contains("paused"), "{}", stdout(&out));
    let out = run(&["unpause", "events", "--store", &store]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("events: unpaused"),
        "{}",
        stdout(&out)
    );

    // `run` with a password in the URL: the start line masks it.
    let secret = schema.url(Some("hunter2-secret"));
    let next = (T0 + 60).to_string();
    let out = run(&[
        "run",
        "--checkers",
        &checkers,
        "--store",
        &secret,
        "--source",
        &source,
        "--now",
        &next,
        "--cycles",
        "1",
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let (printed, logged) = (stdout(&out), stderr(&out));
    assert!(
        !printed.contains("hunter2") && !logged.contains("hunter2"),
        "{logged}"
    );
    assert!(
        logged.contains("postgres:***@"),
        "the start line names the store: {logged}"
    );
    assert_eq!(
        checks(&json_lines(&out)),
        vec![("events".into(), T0 + 60, "BAD".into(), 0)],
        "{printed}"
    );
}

#[test]
fn a_postgres_store_that_cannot_be_reached_fails_the_command() {
    let ws = Workspace::new();
    ws.events_checker(
        "events",
        "CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM0 MAXNUM1 LOOKBACKSECONDS60",
    );
    let store = "postgres://postgres:hunter2@127.0.0.1:9/test?connect_timeout=2";
    let (checkers, source) = (ws.checkers_arg(), ws.source_arg());
    let out = run(&[
        "once",
        "--checkers",
        &checkers,
        "--store",
        store,
        "--source",
        &source,
    ]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("postgres:***@127.0.0.1:9"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("hunter2"), "{}", stderr(&out));
}

#[test]
fn a_fetch_timeout_as_long_as_the_lease_is_refused() {
    let ws = Workspace::new();
    let (checkers, source) = (ws.checkers_arg(), ws.source_arg());
    let out = run(&[
        "once",
        "--checkers",
        &checkers,
        "--store",
        "postgres://postgres@127.0.0.1:9/test",
        "--source",
        &source,
        "--fetch-timeout",
        "2m",
        "--store-lease",
        "2m",
    ]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("must be shorter than --store-lease"),
        "{}",
        stderr(&out)
    );
}

fn get(url: &str) -> (u16, String) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let answer = reqwest::get(url).await.expect("the server answers");
        let status = answer.status().as_u16();
        (status, answer.text().await.expect("a body"))
    })
}

#[test]
fn serve_on_a_postgres_store_serves_its_views_and_exports_the_clock_skew() {
    let Some(server) = server() else { return };
    let schema = Schema::new(&server, "skew");
    let store = schema.url(None);
    let ws = Workspace::new();
    ws.events_checker(
        "events",
        "CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM0 MAXNUM5 LOOKBACKSECONDS60",
    );
    let (checkers, source) = (ws.checkers_arg(), ws.source_arg());
    let served = serve(
        &[
            "--checkers",
            &checkers,
            "--store",
            &store,
            "--source",
            &source,
        ],
        &[],
    );
    let (status, body) = get(&served.url("/metrics"));
    let _ = served.terminate();
    assert_eq!(status, 200);
    assert!(body.lines().any(|l| l == "dwmon_store_up 1"), "{body}");
    let skew: f64 = body
        .lines()
        .find_map(|l| l.strip_prefix("dwmon_clock_skew_seconds "))
        .unwrap_or_else(|| panic!("no dwmon_clock_skew_seconds in:\n{body}"))
        .parse()
        .expect("a number");
    // The database runs on this machine: its clock is this host's.
    assert!(skew.abs() < 5.0, "skew {skew}");
    assert!(
        body.contains("# TYPE dwmon_clock_skew_seconds gauge"),
        "{body}"
    );
}

#[test]
fn a_renewal_interval_as_long_as_the_lease_is_refused() {
    let ws = Workspace::new();
    let (checkers, source) = (ws.checkers_arg(), ws.source_arg());
    let once = |extra: &[&str]| {
        let mut args = vec![
            "once",
            "--checkers",
            &checkers,
            "--store",
            "postgres://postgres@127.0.0.1:9/test",
            "--source",
            &source,
            "--fetch-timeout",
            "10s",
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    let out = once(&["--store-lease", "30s", "--store-renew", "30s"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--store-renew (30s) must be shorter than --store-lease (30s)"),
        "{}",
        stderr(&out)
    );
    // The default renewal is a third of the lease: accepted, the run gets as far as the
    // (unreachable) database.
    let out = once(&["--store-lease", "30s"]);
    assert!(
        !stderr(&out).contains("must be shorter"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("127.0.0.1:9"), "{}", stderr(&out));
}

#[test]
fn check_connect_opens_a_postgres_store_and_reports_one_that_does_not_answer() {
    let Some(server) = server() else { return };
    let schema = Schema::new(&server, "check");
    let store = schema.url(Some("hunter2-secret"));
    let ws = Workspace::new();
    ws.events_checker(
        "events",
        "CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM0 MAXNUM1 LOOKBACKSECONDS60",
    );
    let (checkers, source) = (ws.checkers_arg(), ws.source_arg());
    let check = |store: &str| {
        run(&[
            "check",
            "--checkers",
            &checkers,
            "--source",
            &source,
            "--store",
            store,
            "--connect",
        ])
    };
    let out = check(&store);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains(": answers"), "{}", stdout(&out));
    let down = check("postgres://postgres:hunter2-secret@127.0.0.1:9/test?connect_timeout=2");
    assert_eq!(code(&down), 1, "{}{}", stdout(&down), stderr(&down));
    let all = format!(
        "{}{}{}{}",
        stdout(&out),
        stderr(&out),
        stdout(&down),
        stderr(&down)
    );
    assert!(!all.contains("hunter2"), "{all}");
    assert!(all.contains("postgres:***@127.0.0.1:9"), "{all}");
}

/// A read-only command pointed at a schema without a store refuses, naming the schema, and
/// creates nothing there (it used to create the tables); `check --connect` says there is no
/// store yet, and `once` then creates it.
#[test]
fn status_on_an_empty_schema_refuses_and_creates_nothing() {
    let Some(server) = server() else { return };
    let schema = Schema::new(&server, "empty");
    let store = schema.url(None);
    let tables = || {
        pg::query(
            &server,
            &format!(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = '{}'",
                schema.name
            ),
        )
    };
    let ws = Workspace::new();
    ws.events_checker(
        "events",
        "CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM0 MAXNUM1 LOOKBACKSECONDS60",
    );
    let checkers = ws.checkers_arg();
    let read_only: [&[&str]; 3] = [
        &["status", "--store", &store],
        &["status", "--store", &store, "--json"],
        &["histogram", "--store", &store, "--checker", "events"],
    ];
    for args in read_only {
        let out = run(args);
        assert_ne!(code(&out), 0, "{args:?}: {}", stdout(&out));
        let text = stderr(&out);
        assert!(
            text.contains(&format!("no dwmon store in schema {}", schema.name)),
            "{args:?}: {text}"
        );
        assert!(text.contains("dwmon run"), "{args:?}: {text}");
        assert_eq!(
            tables(),
            Vec::<Vec<Option<String>>>::new(),
            "{args:?} wrote"
        );
    }
    let source = ws.source_arg();
    let out = run(&[
        "check",
        "--checkers",
        &checkers,
        "--source",
        &source,
        "--store",
        &store,
        "--connect",
    ]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("answers; no dwmon store in schema"),
        "{}",
        stdout(&out)
    );
    assert!(tables().is_empty(), "check --connect wrote");
    let now = T0.to_string();
    let out = run(&[
        "once",
        "--checkers",
        &checkers,
        "--store",
        &store,
        "--source",
        &source,
        "--now",
        &now,
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = run(&["status", "--store", &store, "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json_lines(&out).len(), 1, "{}", stdout(&out));
}
