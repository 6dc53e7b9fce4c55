//! `dwmon serve`, end to end: the cycle loop and the HTTP server in one process.

mod common;

use common::*;

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
fn serve_runs_the_cycles_and_answers_http_until_sigterm() {
    let ws = Workspace::new();
    ws.events_checker(
        "events",
        "CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM1 MAXNUM10 LOOKBACKSECONDS60",
    );
    ws.insert(&[("a", T0 - 30)]);
    let (store, source, now) = (ws.store(), ws.source_arg(), T0.to_string());
    let served = ws.serve(&["--source", &source, "--now", &now]);
    assert_eq!(get(&served.url("/healthz")), (200, "ok\n".to_string()));
    assert_eq!(get(&served.url("/no-such-page")).0, 404);
    // The runner records beside the server: the first cycle's check reaches the store.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let status = json_lines(&run(&["status", "--store", &store, "--json"]));
        if status.first().is_some_and(|s| s["last_minute"] == T0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no check recorded: {status:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(served.terminate(), 0, "a graceful stop exits 0");
}

#[test]
fn a_port_in_use_fails_at_start_with_exit_2() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let ws = Workspace::new();
    ws.events_checker(
        "events",
        "CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM1 MAXNUM10 LOOKBACKSECONDS60",
    );
    let (checkers, store, source) = (ws.checkers_arg(), ws.store(), ws.source_arg());
    let out = run(&[
        "serve",
        "--listen",
        &addr,
        "--checkers",
        &checkers,
        "--store",
        &store,
        "--source",
        &source,
    ]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("cannot listen on {addr}")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_config_file_sets_the_listen_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let ws = Workspace::new();
    ws.events_checker(
        "events",
        "CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM1 MAXNUM10 LOOKBACKSECONDS60",
    );
    let config = ws.path().join("dwmon.toml");
    std::fs::write(
        &config,
        format!(
            "checkers = \"checkers\"\nstore = \"store.sqlite\"\n[sources]\ndefault = \"sqlite:source.sqlite\"\n\
             [server]\nlisten = \"{addr}\"\n"
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    // The address in the file is the taken one: the failure proves the file was read.
    let out = run(&["serve", "--config", &config]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("cannot listen on {addr}")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn serve_exposes_the_runners_metrics_and_logs_a_heartbeat_per_cycle() {
    let ws = Workspace::new();
    ws.events_checker(
        "events",
        "CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM1 MAXNUM10 LOOKBACKSECONDS60",
    );
    ws.insert(&[("a", T0 - 30)]);
    let (source, now) = (ws.source_arg(), T0.to_string());
    let served = ws.serve(&["--source", &source, "--now", &now]);
    // The heartbeat: one info line per cycle with its totals and duration.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let heartbeat = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = served.stderr.recv_timeout(left).expect("a heartbeat line");
        if line.contains(&format!("minute {T0}: ")) {
            break line;
        }
    };
    assert!(
        heartbeat.contains("1 checkers, 1 checks (0 bad), 0 errors, 1 new rows")
            && heartbeat.contains(" s"),
        "{heartbeat}"
    );
    // The cycle is published right after its heartbeat line.
    let body = loop {
        let (status, body) = get(&served.url("/metrics"));
        assert_eq!(status, 200);
        if !body.contains("dwmon_cycles_total 0") {
            break body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no cycle published:\n{body}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    for line in [
        r#"dwmon_requirement_state{checker="events",requirement="0",state="good"} 1"#.to_string(),
        r#"dwmon_requirement_rows{checker="events",requirement="0"} 1"#.into(),
        r#"dwmon_requirement_min{checker="events",requirement="0"} 1"#.into(),
        r#"dwmon_requirement_max{checker="events",requirement="0"} 10"#.into(),
        format!(
            r#"dwmon_requirement_last_checked_timestamp_seconds{{checker="events",requirement="0"}} {T0}"#
        ),
        r#"dwmon_checks_total{status="good"} 1"#.into(),
        r#"dwmon_fetch_duration_seconds_count{source="default"} 1"#.into(),
        "dwmon_cycles_total 1".into(),
        "dwmon_store_up 1".into(),
    ] {
        assert!(body.lines().any(|l| l == line), "no {line:?} in:\n{body}");
    }
    assert_eq!(served.terminate(), 0);
}

fn call(method: &str, url: &str, token: Option<&str>) -> (u16, serde_json::Value) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let mut request = match method {
            "POST" => client
                .post(url)
                .json(&serde_json::json!({"comment": "from the API"})),
            _ => client.get(url),
        };
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let answer = request.send().await.expect("the server answers");
        let status = answer.status().as_u16();
        (status, answer.json().await.expect("a JSON body"))
    })
}

#[test]
fn serve_answers_the_api_with_tokens_and_pauses_in_the_store_file() {
    let ws = Workspace::new();
    ws.events_checker(
        "events",
        "CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM1 MAXNUM10 LOOKBACKSECONDS60",
    );
    ws.insert(&[("a", T0 - 30)]);
    let (store, source, now) = (ws.store(), ws.source_arg(), T0.to_string());
    let (served, tokens) =
        ws.serve_with_tokens(&["read", "write"], &["--source", &source, "--now", &now]);
    let (read, write) = (&tokens[0], &tokens[1]);
    let checker = served.url("/api/v1/checkers/events");
    assert_eq!(call("GET", &checker, None).0, 401);
    assert_eq!(call("GET", &checker, Some("wrong")).0, 401);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (status, body) = call("GET", &checker, Some(read));
        assert_eq!(status, 200, "{body}");
        if body["last_minute"] == T0 {
            assert_eq!(body["state"], "GOOD", "{body}");
            assert_eq!(body["requirements"][0]["count"], 1, "{body}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no check: {body}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let pause = served.url("/api/v1/checkers/events/pause");
    assert_eq!(call("POST", &pause, Some(read)).0, 403);
    let (status, body) = call("POST", &pause, Some(write));
    assert_eq!(status, 200, "{body}");
    // The pause is in the store file, where `dwmon status` (another process) reads it.
    let status = json_lines(&run(&[
        "status", "--store", &store, "--json", "--now", &now,
    ]));
    assert_eq!(
        status[0]["alerts"]["paused"]["comment"], "from the API",
        "{status:?}"
    );
    assert_eq!(status[0]["alerts"]["paused"]["active"], true, "{status:?}");
    let (_, body) = call("GET", &served.url("/api/v1/status"), Some(read));
    assert_eq!(body["store_ok"], true, "{body}");
    assert_eq!(served.terminate(), 0);
}
