//! Push checkers end to end: `dwmon serve`, a token, real `curl` pings, GOOD, BAD, recovery.

mod common;

use common::*;
use std::process::Command;
use std::time::{Duration, Instant};

/// `curl -s -o /dev/null -w %{http_code} ARGS URL`: the HTTP status.
fn curl(args: &[&str], url: &str) -> u16 {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .args(args)
        .arg(url)
        .output()
        .expect("curl runs");
    String::from_utf8_lossy(&out.stdout).parse().unwrap_or(0)
}

/// The checks of `checker`, newest first, from the API.
fn checks(served: &Served, read: &str, checker: &str) -> Vec<serde_json::Value> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let url = served.url(&format!("/api/v1/checkers/{checker}/checks?limit=1000"));
        let body: serde_json::Value = reqwest::Client::new()
            .get(url)
            .bearer_auth(read)
            .send()
            .await
            .expect("the API answers")
            .json()
            .await
            .expect("JSON");
        body["checks"].as_array().cloned().unwrap_or_default()
    })
}

/// Waits (up to 60 s) for a check of `checker` after `after` that satisfies `good`.
fn wait_for(
    served: &Served,
    read: &str,
    checker: &str,
    after: i64,
    what: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let found = checks(served, read, checker);
        if let Some(check) = found
            .iter()
            .find(|c| c["minute"].as_i64().is_some_and(|m| m > after) && what(c))
        {
            return check.clone();
        }
        assert!(Instant::now() < deadline, "no such check: {found:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_canary_goes_good_then_bad_when_pings_stop_then_recovers() {
    let ws = Workspace::new();
    ws.write_checker(
        "backup",
        "__SOURCE__\npush\n__REQUIREMENTS__\n\
         CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM1 MAXNUM1 LOOKBACKSECONDS120\n\
         CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM0 MAXNUM0 LOOKBACKSECONDS120 PINGSFAIL\n",
    );
    let now = T0.to_string();
    // 30 simulated seconds per real second: a minute every 2 s.
    let (served, tokens) =
        ws.serve_with_tokens(&["ping:backup", "read"], &["--now", &now, "--speed", "30"]);
    let (ping, read) = (&tokens[0], &tokens[1]);
    let url = served.url(&format!("/ping/{ping}"));
    // `curl --retry` with a key: five sends count once (MAXNUM1 stays GOOD).
    for _ in 0..5 {
        assert_eq!(curl(&["--retry", "3"], &format!("{url}?key=run-1")), 200);
    }
    let first = wait_for(&served, read, "backup", T0, |c| {
        c["requirement_index"] == 0 && c["count"] == 1
    });
    assert_eq!(first["status"], "GOOD", "{first}");
    // No pings: two minutes later the window is empty, BAD.
    let minute = first["minute"].as_i64().unwrap();
    let bad = wait_for(&served, read, "backup", minute, |c| {
        c["requirement_index"] == 0 && c["count"] == 0
    });
    assert_eq!(bad["status"], "BAD", "{bad}");
    // A shell wrapper: `false; curl .../$?` reports exit status 1 as a fail; `true; ...` a success.
    let wrapped = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "false; curl -fsS -o /dev/null {url}/$?; true; curl -fsS -o /dev/null -X POST --data-binary 'all good' {url}/$?"
        ))
        .status()
        .expect("sh runs");
    assert!(wrapped.success());
    let failed = wait_for(
        &served,
        read,
        "backup",
        bad["minute"].as_i64().unwrap(),
        |c| c["requirement_index"] == 1 && c["count"] == 1,
    );
    assert_eq!(
        failed["status"], "BAD",
        "the fail is counted by PINGSFAIL: {failed}"
    );
    let recovered = wait_for(
        &served,
        read,
        "backup",
        bad["minute"].as_i64().unwrap(),
        |c| c["requirement_index"] == 0 && c["count"] == 1,
    );
    assert_eq!(recovered["status"], "GOOD", "{recovered}");
    assert_eq!(served.terminate(), 0);
}

#[test]
fn ping_routes_answer_the_documented_statuses() {
    let ws = Workspace::new();
    ws.write_checker(
        "job",
        "__SOURCE__\npush\n__REQUIREMENTS__\n\
         CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM1 MAXNUM100 LOOKBACKSECONDS3600\n",
    );
    ws.write_checker(
        "posted",
        "__SOURCE__\npush\n__REQUIREMENTS__\n\
         CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM1 MAXNUM100 LOOKBACKSECONDS3600\n\
         __EXTRA__\n{\"post_only\": true}\n",
    );
    let (served, tokens) = ws.serve_with_tokens(
        &["ping:job", "ping:posted", "ping", "read", "ping:nosuch"],
        &[],
    );
    let [job, posted, key, read, gone] = &tokens[..] else {
        unreachable!("five scopes, five tokens")
    };
    let u = |path: &str| served.url(path);
    let big = "x".repeat(10_001);
    let cases: Vec<(Vec<&str>, String, u16)> = vec![
        (vec![], u(&format!("/ping/{job}")), 200),
        (vec!["-I"], u(&format!("/ping/{job}")), 200),
        (vec!["-X", "POST"], u(&format!("/ping/{job}/start")), 200),
        (vec![], u(&format!("/ping/{job}/fail")), 200),
        (vec![], u(&format!("/ping/{job}/log")), 200),
        (vec![], u(&format!("/ping/{job}/0")), 200),
        (vec![], u(&format!("/ping/{job}/255")), 200),
        (vec![], u(&format!("/ping/{job}/256")), 400),
        (vec![], u(&format!("/ping/{job}/-1")), 400),
        (vec![], u(&format!("/ping/{job}/stop")), 400),
        (vec![], u(&format!("/ping/{job}?rid=")), 400),
        (
            vec![],
            u(&format!("/ping/{job}?key={}", "k".repeat(201))),
            400,
        ),
        (vec!["-X", "PUT"], u(&format!("/ping/{job}")), 405),
        (vec!["-X", "DELETE"], u(&format!("/ping/{job}")), 405),
        (
            vec![],
            u("/ping/dw_0123456789_0123456789abcdef0123456789abcdef"),
            404,
        ),
        (vec![], u("/ping/nonsense"), 404),
        (vec![], u(&format!("/ping/{read}")), 404),
        (vec![], u(&format!("/ping/{gone}")), 404),
        (vec![], u(&format!("/ping/{job}/start/extra")), 404),
        (vec![], u(&format!("/ping/{key}/job")), 200),
        (vec![], u(&format!("/ping/{key}/JOB/fail")), 200),
        (vec![], u(&format!("/ping/{key}/nosuch")), 404),
        (vec![], u(&format!("/ping/{key}")), 404),
        (vec![], u(&format!("/ping/{posted}")), 405),
        (vec!["-I"], u(&format!("/ping/{posted}")), 405),
        (vec!["-X", "POST"], u(&format!("/ping/{posted}")), 200),
        (
            vec!["--data-binary", big.as_str()],
            u(&format!("/ping/{job}")),
            413,
        ),
    ];
    for (args, url, expected) in &cases {
        assert_eq!(curl(args, url), *expected, "curl {args:?} {url}");
    }
    // Every answer says the body limit.
    let out = Command::new("curl")
        .args(["-s", "-D", "-", "-o", "/dev/null"])
        .arg(u(&format!("/ping/{job}/999")))
        .output()
        .unwrap();
    let headers = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    assert!(headers.contains("ping-body-limit: 10000"), "{headers}");
    assert_eq!(served.terminate(), 0);
}

#[test]
fn events_over_curl_are_stored_and_bad_lines_named() {
    let ws = Workspace::new();
    ws.write_checker(
        "backup",
        "__SOURCE__\npush\n__REQUIREMENTS__\n\
         CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM1 MAXNUM100 LOOKBACKSECONDS3600\n",
    );
    let now = T0.to_string();
    // 30 simulated seconds per real second: the next minute's check comes within 2 s.
    let (served, tokens) =
        ws.serve_with_tokens(&["ping:backup", "read"], &["--now", &now, "--speed", "30"]);
    let (ping, read) = (&tokens[0], &tokens[1]);
    let body = "{\"service\": \"backup\", \"state\": \"ok\", \"key\": \"b-1\"}\n\
                {\"service\": \"backup\", \"state\": \"bad\"}\n";
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", "-H"])
        .arg(format!("Authorization: Bearer {ping}"))
        .args(["--data-binary", body])
        .arg(served.url("/api/v1/events"))
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (json, status) = text.rsplit_once('\n').unwrap();
    assert_eq!(status, "207", "{text}");
    let answer: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(answer["accepted"], 1);
    assert_eq!(answer["errors"][0]["line"], 2);
    // The stored event is counted at the next minute's check.
    let check = wait_for(&served, read, "backup", T0, |c| c["count"] == 1);
    assert_eq!(check["status"], "GOOD", "{check}");
    assert_eq!(served.terminate(), 0);
}

/// `curl` an event body to `/api/v1/events`; the HTTP status.
fn send_events(served: &Served, token: &str, body: &str) -> u16 {
    curl(
        &[
            "-H",
            &format!("Authorization: Bearer {token}"),
            "--data-binary",
            body,
        ],
        &served.url("/api/v1/events"),
    )
}

/// The names of the checkers the API lists.
fn checker_names(served: &Served, read: &str) -> Vec<String> {
    checker_states(served, read)
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

/// The `(name, state)` of each checker the API lists.
fn checker_states(served: &Served, read: &str) -> Vec<(String, String)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let body: serde_json::Value = reqwest::Client::new()
            .get(served.url("/api/v1/checkers"))
            .bearer_auth(read)
            .send()
            .await
            .expect("the API answers")
            .json()
            .await
            .expect("JSON");
        body["checkers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let text = |field: &str| c[field].as_str().unwrap().to_string();
                (text("name"), text("state"))
            })
            .collect()
    })
}

#[test]
fn a_host_whose_heartbeats_stop_is_bad_alone_and_a_shutdown_removes_it() {
    let ws = Workspace::new();
    ws.write_checker(
        "beat",
        "__SOURCE__\npush\n__REQUIREMENTS__\n\
         CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM1 MAXNUM1000 LOOKBACKSECONDS120\n\
         __EXTRA__\n{\"per_host\": true}\n",
    );
    let now = T0.to_string();
    let args = ["--now", now.as_str(), "--speed", "30"];
    let (served, tokens) = ws.serve_with_tokens(&["ping:beat", "read"], &args);
    let (ping, read) = (&tokens[0], &tokens[1]);
    let both = "{\"service\": \"beat\", \"host\": \"web1\"}\n{\"service\": \"beat\", \"host\": \"web2\"}\n";
    assert_eq!(send_events(&served, ping, both), 200);
    let first = wait_for(&served, read, "beat@web2", T0, |c| c["count"] == 1);
    assert_eq!(first["status"], "GOOD", "{first}");
    // web1 beats on (every ~15 simulated seconds); web2 is silent.
    let web1 = "{\"service\": \"beat\", \"host\": \"web1\"}";
    let mut bad = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    while bad.is_none() {
        assert!(Instant::now() < deadline, "web2 never went BAD");
        assert_eq!(send_events(&served, ping, web1), 200);
        std::thread::sleep(Duration::from_millis(500));
        bad = checks(&served, read, "beat@web2")
            .into_iter()
            .find(|c| c["status"] == "BAD");
    }
    let bad = bad.unwrap();
    assert_eq!(bad["count"], 0);
    assert_eq!(bad["extra"]["host"], "web2", "the BAD check names its host");
    let minute = bad["minute"].clone();
    let web1_then = wait_for(&served, read, "beat@web1", T0, |c| c["minute"] == minute);
    assert_eq!(web1_then["status"], "GOOD", "web1 stays GOOD: {web1_then}");
    assert_eq!(
        checker_names(&served, read),
        ["beat", "beat@web1", "beat@web2"]
    );
    let states = checker_states(&served, read);
    let state = |name: &str| states.iter().find(|s| s.0 == name).map(|s| s.1.as_str());
    assert_eq!(state("beat@web2"), Some("BAD"));
    assert_eq!(
        state("beat"),
        Some("BAD"),
        "the template shows its worst host"
    );
    assert_eq!(served.terminate(), 0);

    // The hosts survive a restart; a graceful shutdown removes web2.
    let served = ws.serve(&args);
    assert_eq!(
        checker_names(&served, read),
        ["beat", "beat@web1", "beat@web2"]
    );
    let shutdown = "{\"service\": \"beat\", \"host\": \"web2\", \"tags\": [\"shutdown\"]}";
    assert_eq!(send_events(&served, ping, shutdown), 200);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let names = checker_names(&served, read);
        if names == ["beat", "beat@web1"] {
            break;
        }
        assert!(Instant::now() < deadline, "web2 was not removed: {names:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(served.terminate(), 0);
}

#[test]
fn serve_takes_events_over_udp() {
    let ws = Workspace::new();
    ws.write_checker(
        "backup",
        "__SOURCE__\npush\n__REQUIREMENTS__\n\
         CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM1 MAXNUM100 LOOKBACKSECONDS3600\n",
    );
    // A free port (another process could take it before serve does; unlikely on loopback).
    let udp = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let now = T0.to_string();
    let (served, tokens) = ws.serve_with_tokens(
        &["ping:backup", "read"],
        &["--now", &now, "--speed", "30", "--udp", &udp],
    );
    let (ping, read) = (&tokens[0], &tokens[1]);
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let event = format!("{{\"service\": \"backup\", \"token\": \"{ping}\", \"key\": \"u-1\"}}");
    // Lossy by design: resend until a check counts it (the key makes it count once).
    let deadline = Instant::now() + Duration::from_secs(60);
    let check = loop {
        client.send_to(event.as_bytes(), &udp).unwrap();
        if let Some(check) = checks(&served, read, "backup")
            .into_iter()
            .find(|c| c["count"] == 1)
        {
            break check;
        }
        assert!(Instant::now() < deadline, "the UDP event was never counted");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(check["status"], "GOOD", "{check}");
    assert_eq!(served.terminate(), 0);
}

#[test]
fn serve_validates_the_ping_limits_and_documents_them() {
    let help = stdout(&run(&["serve", "--help"]));
    for flag in [
        "--ping-body-limit",
        "--ping-rate",
        "--ping-burst",
        "--ping-max-in-flight",
    ] {
        assert!(help.contains(flag), "{flag} in --help: {help}");
    }
    for (flag, value, says) in [
        ("--ping-body-limit", "1048577", "0..=1048576"),
        ("--ping-body-limit", "lots", "--ping-body-limit"),
        ("--ping-rate", "0", "not a ping rate"),
        ("--ping-rate", "inf", "not a ping rate"),
        ("--ping-burst", "0", "1.."),
        ("--ping-max-in-flight", "0", "1..=1000000"),
    ] {
        let out = run(&["serve", flag, value, "--checkers", "/nonexistent"]);
        assert_eq!(code(&out), 2, "{flag} {value}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(says),
            "{flag} {value}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn serve_answers_with_the_configured_body_limit() {
    let ws = Workspace::new();
    ws.write_checker(
        "job",
        "__SOURCE__\npush\n__REQUIREMENTS__\n\
         CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM1 MAXNUM100 LOOKBACKSECONDS3600\n",
    );
    let (served, tokens) = ws.serve_with_tokens(&["ping:job"], &["--ping-body-limit", "20"]);
    let job = &tokens[0];
    let url = served.url(&format!("/ping/{job}"));
    assert_eq!(curl(&["--data-binary", "twenty bytes exactly"], &url), 200);
    assert_eq!(curl(&["--data-binary", "twenty-one bytes, one"], &url), 413);
    let out = Command::new("curl")
        .args(["-s", "-D", "-", "-o", "/dev/null"])
        .arg(&url)
        .output()
        .unwrap();
    let headers = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    assert!(headers.contains("ping-body-limit: 20"), "{headers}");
    assert_eq!(served.terminate(), 0);
}

#[test]
fn the_ping_history_survives_a_kill_and_restart_of_serve() {
    let ws = Workspace::new();
    ws.write_checker(
        "nightly",
        "__SOURCE__\npush\n__REQUIREMENTS__\n\
         CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM0 MAXNUM100 LOOKBACKSECONDS3600\n",
    );
    let store = ws.store();
    let ping = token(&store, "ping:nightly");
    // A clock that all but stands still: the pings' times are exact.
    let serve_at = |now: i64| {
        let now = now.to_string();
        ws.serve(&["--now", &now, "--speed", "0.001"])
    };
    let mut first = serve_at(T0);
    let url = first.url(&format!("/ping/{ping}"));
    assert_eq!(
        curl(&["-A", "backup.sh/1"], &format!("{url}/start?rid=r1")),
        200
    );
    assert_eq!(curl(&[], &format!("{url}/start?rid=r2")), 200);
    assert_eq!(
        curl(&["--data-binary", "r2 done"], &format!("{url}?rid=r2")),
        200
    );
    // kill -9: what was answered 200 is committed, history included.
    first.child.kill().expect("SIGKILL");
    first.child.wait().expect("reaped");

    // The restarted server pairs the finish of r1 with its start from before the restart.
    let second = serve_at(T0 + 600);
    let url = second.url(&format!("/ping/{ping}"));
    assert_eq!(curl(&[], &format!("{url}/fail?rid=r1")), 200);
    assert_eq!(second.terminate(), 0);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let history = runtime.block_on(async {
        use dwmon_core::ping_log::PingLog;
        let store = dwmon_sqlite::SqliteStore::open(&store).expect("the store opens");
        store.recent_pings("nightly", 10).await.expect("history")
    });
    let got: Vec<(&str, i64, Option<&str>, Option<i64>)> = history
        .iter()
        .map(|e| {
            (
                e.kind.as_str(),
                e.time,
                e.rid.as_deref(),
                e.duration_seconds,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("fail", T0 + 600, Some("r1"), Some(600)),
            ("success", T0, Some("r2"), Some(0)),
            ("start", T0, Some("r2"), None),
            ("start", T0, Some("r1"), None),
        ]
    );
    assert_eq!(history[1].body, "r2 done");
    assert_eq!(history[3].user_agent.as_deref(), Some("backup.sh/1"));
    assert_eq!(history[3].remote_addr.as_deref(), Some("127.0.0.1"));

    // `dwmon status` lists the push checker once, never its ping-kind series.
    let out = run(&["status", "--store", &store, "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let names: Vec<String> = json_lines(&out)
        .iter()
        .map(|s| s["checker"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(names, ["nightly"], "{}", stdout(&out));
}

#[test]
fn run_durations_through_serve_and_after_a_restart() {
    let ws = Workspace::new();
    ws.write_checker(
        "nightly",
        "__SOURCE__\npush\n__REQUIREMENTS__\n\
         CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM0 MAXNUM100 LOOKBACKSECONDS3600 MINDURATION60\n\
         CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM0 MAXNUM100 LOOKBACKSECONDS3600 MAXDURATION30\n",
    );
    let (checkers, store) = (ws.checkers_arg(), ws.store());
    let ping = token(&store, "ping:nightly");
    let read = token(&store, "read");
    let now = T0.to_string();
    // 30 simulated seconds per real second; the pings below are a few real milliseconds
    // apart, so run a takes about 0 s (under MINDURATION60) and run b, never finished,
    // passes MAXDURATION30 within about a real second.
    let served = serve(
        &[
            "--checkers",
            &checkers,
            "--store",
            &store,
            "--now",
            &now,
            "--speed",
            "30",
        ],
        &[],
    );
    let url = served.url(&format!("/ping/{ping}"));
    assert_eq!(curl(&[], &format!("{url}/start?rid=a")), 200);
    assert_eq!(curl(&[], &format!("{url}/start?rid=b")), 200);
    assert_eq!(curl(&["-X", "POST"], &format!("{url}?rid=a")), 200);
    let fast = wait_for(&served, &read, "nightly", T0 - 60, |c| {
        c["requirement_index"] == 0 && c["runs"].is_object()
    });
    assert_eq!(fast["status"], "BAD", "{fast}");
    assert_eq!(fast["count"], 1, "the success is counted too: {fast}");
    let run = &fast["runs"]["run"];
    assert_eq!(
        (&run["problem"], &run["rid"]),
        (&"too_fast".into(), &"a".into()),
        "{fast}"
    );
    assert!(
        run["duration_seconds"].as_i64().is_some_and(|d| d < 60),
        "{fast}"
    );
    let message = fast["runs"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("run rid=a") && message.contains("under MINDURATION60"),
        "{message}"
    );
    let open = wait_for(&served, &read, "nightly", T0 - 60, |c| {
        c["requirement_index"] == 1 && c["runs"].is_object()
    });
    assert_eq!(open["status"], "BAD", "{open}");
    assert_eq!(open["runs"]["run"]["problem"], "never_finished", "{open}");
    assert_eq!(open["runs"]["run"]["rid"], "b", "{open}");
    assert_eq!(
        open["runs"]["bad_runs"], 1,
        "run a (0 s) is within MAXDURATION30: {open}"
    );
    assert_eq!(served.terminate(), 0);

    // A new process, at a fixed minute half an hour on: the runs come from the store file.
    let later = T0 + 1_800;
    let output = ws.once(later, &[]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let lines = json_lines(&output);
    let at = |index: u64| {
        lines
            .iter()
            .find(|l| l["minute"] == later && l["requirement_index"] == index)
            .unwrap_or_else(|| panic!("no check of requirement {index} at {later}: {lines:?}"))
    };
    assert_eq!(
        (&at(0)["status"], &at(0)["runs"]["run"]["problem"]),
        (&"BAD".into(), &"too_fast".into())
    );
    assert_eq!(
        (&at(1)["status"], &at(1)["runs"]["run"]["problem"]),
        (&"BAD".into(), &"never_finished".into())
    );
    let open_for = at(1)["runs"]["run"]["duration_seconds"]
        .as_i64()
        .unwrap_or(0);
    assert!(open_for > 1_700, "open since about T0: {open_for}");
}
