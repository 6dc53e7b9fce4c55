//! `dwmon check` and `dwmon schedule`, end to end.

mod common;
use common::*;

const EVERY_MINUTE: &str =
    "CHECKHOURS0-23 CHECKMINUTES0-59 WEEKDAYS WEEKENDS MINNUM1 MAXNUM5 LOOKBACKSECONDS60";

#[test]
fn check_counts_valid_checkers() {
    let ws = Workspace::new();
    ws.events_checker("a", EVERY_MINUTE);
    ws.events_checker("b", EVERY_MINUTE);
    let out = run(&["check", "--checkers", &ws.checkers_arg()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "2 checkers OK\n");
}

#[test]
fn check_accepts_the_repository_samples() {
    let samples = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/checkers");
    let out = run(&["check", "--checkers", samples]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert_eq!(stdout(&out), "2 checkers OK\n");
}

#[test]
fn check_prints_file_line_column_per_error_and_exits_1() {
    let ws = Workspace::new();
    ws.events_checker("good", EVERY_MINUTE);
    ws.events_checker(
        "bounds",
        "CHECKHOURS0-23 CHECKMINUTES0-59 WEEKDAYS MINNUM5 MAXNUM2 LOOKBACKSECONDS60",
    );
    ws.write_checker("nosections", "hello\n");
    let out = run(&["check", "--checkers", &ws.checkers_arg()]);
    assert_eq!(code(&out), 1);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    for line in &lines {
        // FILE:LINE:COL: message
        let parts: Vec<&str> = line.splitn(4, ':').collect();
        assert_eq!(parts.len(), 4, "{line}");
        assert!(parts[0].ends_with(".dwmon"), "{line}");
        assert!(
            parts[1].parse::<usize>().is_ok() && parts[2].parse::<usize>().is_ok(),
            "{line}"
        );
    }
    assert!(
        lines.iter().any(|l| l.starts_with("bounds.dwmon:4:")),
        "{text}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("nosections.dwmon:1:")),
        "{text}"
    );
}

#[test]
fn check_on_a_missing_directory_exits_2_with_one_line() {
    let ws = Workspace::new();
    let missing = ws.path().join("nope").display().to_string();
    let out = run(&["check", "--checkers", &missing]);
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: cannot read checker directory"),
        "{err}"
    );
}

fn schedule_workspace() -> Workspace {
    let ws = Workspace::new();
    ws.events_checker(
        "quarter",
        "CHECKHOURS9-9 CHECKMINUTES*/15 WEEKDAYS MINNUM1 MAXNUM5 LOOKBACKSECONDS60\n\
         CHECKHOURS9 CHECKMINUTES30 WEEKDAYS MINNUM1 MAXNUM5 LOOKBACKSECONDS60",
    );
    ws.write_checker(
        "newyork",
        "__QUERY__\nSELECT 1\n__REQUIREMENTS__\n\
         CHECKHOURS4 CHECKMINUTES0 WEEKDAYS MINNUM1 MAXNUM5 LOOKBACKSECONDS60\n\
         __TIMEZONE__\nAmerica/New_York\n",
    );
    ws
}

#[test]
fn schedule_lists_due_checks_ascending() {
    let ws = schedule_workspace();
    let out = run(&[
        "schedule",
        "--checkers",
        &ws.checkers_arg(),
        "--from",
        "2026-11-23T09:00:00Z",
        "--to",
        "2026-11-23T09:30:00Z",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "2026-11-23T04:00:00-05:00  newyork  0\n\
         2026-11-23T09:00:00+00:00  quarter  0\n\
         2026-11-23T09:15:00+00:00  quarter  0\n\
         2026-11-23T09:30:00+00:00  quarter  0\n\
         2026-11-23T09:30:00+00:00  quarter  1\n"
    );
}

#[test]
fn schedule_json_filter_and_zone() {
    let ws = schedule_workspace();
    let out = run(&[
        "schedule",
        "--checkers",
        &ws.checkers_arg(),
        "--from",
        &T0.to_string(),
        "--to",
        "2026-11-23T09:20:00Z",
        "--checker",
        "quarter",
        "--tz",
        "Europe/Paris",
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let lines = json_lines(&out);
    // In Paris 09:xx UTC is 10:xx: hour 9 never matches in this range.
    assert!(lines.is_empty(), "{lines:?}");

    let out = run(&[
        "schedule",
        "--checkers",
        &ws.checkers_arg(),
        "--from",
        "2026-11-23T08:00:00Z",
        "--to",
        "2026-11-23T08:15:00Z",
        "--checker",
        "quarter",
        "--tz",
        "Europe/Paris",
        "--json",
    ]);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2);
    assert_eq!(
        lines[0],
        serde_json::json!({
            "checker": "quarter",
            "requirement_index": 0,
            "minute": T0 - 3600,
            "minute_local": "2026-11-23T09:00:00+01:00",
        })
    );
    let keys: Vec<&String> = lines[0]
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    assert_eq!(keys.len(), 4);
}

#[test]
fn schedule_usage_errors_exit_2() {
    let ws = schedule_workspace();
    let dir = ws.checkers_arg();
    for args in [
        vec![
            "schedule",
            "--checkers",
            &dir,
            "--from",
            "2026-11-23T10:00:00Z",
            "--to",
            "2026-11-23T09:00:00Z",
        ],
        vec![
            "schedule",
            "--checkers",
            &dir,
            "--from",
            "yesterday",
            "--to",
            "2026-11-23T09:00:00Z",
        ],
        vec![
            "schedule",
            "--checkers",
            &dir,
            "--from",
            "0",
            "--to",
            "60",
            "--checker",
            "nobody",
        ],
        vec![
            "schedule",
            "--checkers",
            &dir,
            "--from",
            "0",
            "--to",
            "60",
            "--tz",
            "Mars/Base",
        ],
    ] {
        let out = run(&args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("error"), "{args:?}");
    }
}

#[test]
fn every_subcommand_has_help_with_an_example() {
    for sub in [
        "check",
        "schedule",
        "once",
        "run",
        "status",
        "histogram",
        "pause",
        "unpause",
    ] {
        let out = run(&[sub, "--help"]);
        assert_eq!(code(&out), 0, "{sub}");
        assert!(stdout(&out).contains("Example"), "{sub}: {}", stdout(&out));
    }
}

#[test]
fn schedule_streams_a_century_and_stops_when_stdout_closes() {
    use std::io::BufRead;
    let ws = Workspace::new();
    ws.events_checker("a", EVERY_MINUTE);
    ws.events_checker("b", EVERY_MINUTE);
    // 100 years of every-minute checks for two checkers: ~10^8 lines. Collecting them
    // before printing took gigabytes; streamed, the first lines come at once and the
    // process ends as soon as the reader goes away.
    let mut child = dwmon()
        .args([
            "schedule",
            "--checkers",
            &ws.checkers_arg(),
            "--from",
            "2000-01-01T00:00:00Z",
            "--to",
            "2100-01-01T00:00:00Z",
            "--json",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn dwmon schedule");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = std::io::BufReader::new(stdout).lines();
    let first: Vec<String> = lines.by_ref().take(3).map(|l| l.expect("line")).collect();
    drop(lines); // closes the pipe, like `| head -3`
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(child.wait_with_output());
    });
    let output = done_rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("dwmon schedule ends soon after its stdout is closed")
        .expect("wait for dwmon schedule");
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(stderr(&output).is_empty(), "{}", stderr(&output));
    let minutes: Vec<(String, i64)> = first
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json line");
            (
                v["checker"].as_str().unwrap_or_default().to_string(),
                v["minute"].as_i64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        minutes,
        vec![
            ("a".to_string(), 946_684_800),
            ("b".to_string(), 946_684_800),
            ("a".to_string(), 946_684_860),
        ]
    );
}

#[test]
fn completions_and_the_man_page_come_from_the_clap_definitions() {
    let bash = run(&["completions", "bash"]);
    assert_eq!(code(&bash), 0, "{}", stderr(&bash));
    assert!(stdout(&bash).contains("histogram"), "{}", stdout(&bash));
    let man = run(&["man"]);
    assert_eq!(code(&man), 0, "{}", stderr(&man));
    assert!(stdout(&man).contains(".TH"), "{}", stdout(&man));
    assert!(stdout(&man).contains("dwmon"));
    assert_eq!(code(&run(&["completions", "tcsh"])), 2);
}
