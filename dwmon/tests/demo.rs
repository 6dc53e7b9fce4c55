//! `dwmon-demo`: a newcomer's first command shows GOOD and BAD checks and ends with a status.

use std::process::{Command, Stdio};

/// Whether the demo's command-source checker can run (it needs the `sqlite3` client).
fn sqlite3_installed() -> bool {
    let found = Command::new("sqlite3")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: the demo's command-source checker needs the sqlite3 client"
        );
    }
    found
}

#[test]
fn the_demo_shows_good_and_bad_checks_then_a_status_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keep = dir.path().join("demo");
    let out = Command::new(env!("CARGO_BIN_EXE_dwmon-demo"))
        .args([
            "--fast",
            "--minutes",
            "12",
            "--speed",
            "600",
            "--seed",
            "7",
            "--dir",
        ])
        .arg(&keep)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("the demo runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let checks: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("new_executions#0"))
        .collect();
    // One check a cycle (a cycle that fell behind on a busy machine catches up the minute).
    assert!(checks.len() >= 12, "{text}");
    assert!(checks.iter().any(|l| l.contains(" GOOD ")), "{text}");
    // The scripted stall at minute 5 makes the 3-minute window come up short.
    assert!(checks.iter().any(|l| l.contains(" BAD ")), "{text}");
    assert!(text.contains("12 cycles"), "{text}");
    assert!(
        text.contains("CHECKER") && text.contains("new_applications"),
        "{text}"
    );

    // The kept files work with the dwmon command.
    let store = keep.join("store.sqlite");
    let status = Command::new(env!("CARGO_BIN_EXE_dwmon"))
        .args(["status", "--json", "--store"])
        .arg(&store)
        .output()
        .expect("status runs");
    assert!(status.status.success());
    let histogram = Command::new(env!("CARGO_BIN_EXE_dwmon"))
        .args([
            "histogram",
            "--checker",
            "new_applications",
            "--since",
            "604800",
            "--store",
        ])
        .arg(&store)
        .output()
        .expect("histogram runs");
    assert!(
        histogram.status.success(),
        "{}",
        String::from_utf8_lossy(&histogram.stderr)
    );
    let histogram = String::from_utf8_lossy(&histogram.stdout);
    let total: u64 = histogram
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_default();
    assert!(
        total > 1000,
        "a week of back-filled applications: {histogram}"
    );
}

/// The story is the same on every run and for every seed: new_executions is BAD exactly while
/// the scripted stall empties its 3-minute window (demo minutes 7 to 11), new_applications is
/// never BAD, and after the demo exits the rows written ahead keep `dwmon once` GOOD (the
/// README tour's step 5) instead of BAD with count=0.
#[test]
fn the_demo_story_is_deterministic_and_the_tour_continues_after_it() {
    for seed in ["1", "2", "3"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let keep = dir.path().join("demo");
        let out = Command::new(env!("CARGO_BIN_EXE_dwmon-demo"))
            .args([
                "--minutes",
                "15",
                "--speed",
                "600",
                "--json",
                "--seed",
                seed,
                "--dir",
            ])
            .arg(&keep)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .output()
            .expect("the demo runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let checks: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
            .filter(|v: &serde_json::Value| v["requirement_index"].is_u64())
            .collect();
        let of = |name: &str| -> Vec<(i64, String)> {
            checks
                .iter()
                .filter(|c| c["checker"] == name)
                .map(|c| {
                    (
                        c["minute"].as_i64().unwrap(),
                        c["status"].as_str().unwrap().into(),
                    )
                })
                .collect()
        };
        let executions = of("new_executions");
        let first = executions.first().expect("checks").0;
        let bad: Vec<i64> = executions
            .iter()
            .filter(|(_, status)| status != "GOOD")
            .map(|(minute, _)| (minute - first) / 60)
            .collect();
        assert_eq!(bad, vec![7, 8, 9, 10, 11], "seed {seed}: {text}");
        // The same executions through the command source (the sqlite3 client) agree.
        if sqlite3_installed() {
            assert_eq!(
                of("executions_via_sqlite3"),
                executions,
                "seed {seed}: {text}"
            );
        }
        let applications = of("new_applications");
        assert!(!applications.is_empty(), "{text}");
        // The same applications through the demo's HTTP JSON API (the HTTP source) agree.
        assert_eq!(
            of("applications_via_http"),
            applications,
            "seed {seed}: {text}"
        );
        assert!(
            applications.iter().all(|(_, s)| s == "GOOD"),
            "seed {seed}: {text}"
        );

        // Twenty minutes after the demo's last minute, a cycle still sees rows arriving.
        let last = executions.last().expect("checks").0;
        let later = (last + 20 * 60).to_string();
        let source = format!("default=sqlite:{}", keep.join("source.sqlite").display());
        let once = Command::new(env!("CARGO_BIN_EXE_dwmon"))
            .args(["once", "--json", "--checkers"])
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/checkers"))
            .arg("--store")
            .arg(keep.join("store.sqlite"))
            .args(["--source", &source, "--now", &later, "--fail-on-bad"])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .output()
            .expect("once runs");
        let once_text = String::from_utf8_lossy(&once.stdout);
        assert!(
            once.status.success(),
            "seed {seed}: {once_text}{}",
            String::from_utf8_lossy(&once.stderr)
        );
        assert!(once_text.contains("\"new_executions\""), "{once_text}");
    }
}

#[test]
fn the_demo_with_json_keeps_stdout_to_json_lines() {
    let out = Command::new(env!("CARGO_BIN_EXE_dwmon-demo"))
        .args(["--minutes", "3", "--speed", "600", "--seed", "7", "--json"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("the demo runs");
    let (text, err) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{text}\n{err}");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?} in\n{text}")))
        .collect();
    assert!(lines.len() >= 3, "{text}");
    // The banner (with the stall hint for short runs) and the status table go to stderr.
    assert!(err.contains("dwmon demo"), "{err}");
    assert!(err.contains("--minutes 12 or more"), "{err}");
    assert!(err.contains("3 cycles") && err.contains("CHECKER"), "{err}");
}

#[test]
fn without_sqlite3_the_demo_says_how_to_see_a_command_source() {
    let empty = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_dwmon-demo"))
        .args(["--minutes", "2", "--speed", "600", "--seed", "7"])
        .env("PATH", empty.path())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("the demo runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("install the sqlite3 client"), "{text}");
    assert!(!text.contains("executions_via_sqlite3"), "{text}");
}

#[test]
fn the_demo_refuses_zero_minutes() {
    let out = Command::new(env!("CARGO_BIN_EXE_dwmon-demo"))
        .args(["--minutes", "0"])
        .stdin(Stdio::null())
        .output()
        .expect("the demo runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: "));
}
