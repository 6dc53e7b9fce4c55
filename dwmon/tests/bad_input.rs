//! Bad input a newcomer can type: every case is one clear `error:` line on stderr, exit 2
//! (operational/usage) or 1 (findings), never a panic or a silent no-op.

mod common;
use common::*;

const EVERY_MINUTE: &str =
    "CHECKHOURS0-23 CHECKMINUTES0-59 WEEKDAYS WEEKENDS MINNUM1 MAXNUM5 LOOKBACKSECONDS60";

/// Asserts exit 2 with a single `error: ...` line (clap's usage errors add a blank line and a
/// `For more information` hint, which is fine) containing `needle`.
fn assert_usage_error(output: &std::process::Output, needle: &str) {
    let err = stderr(output);
    assert_eq!(code(output), 2, "{err}");
    let first = err.lines().next().unwrap_or_default();
    assert!(first.starts_with("error: "), "{err}");
    assert!(first.contains(needle), "{needle:?} not in {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(stdout(output).is_empty(), "{}", stdout(output));
}

#[test]
fn times_outside_what_rfc3339_can_write_are_refused() {
    let ws = Workspace::new();
    ws.events_checker("a", EVERY_MINUTE);
    // Used to run a silent cycle that checked nothing (or, within chrono's range, would
    // record a check in year 200000 and block every later check of the store).
    for now in ["99999999999999999", "9223372036854775807", "253402300800"] {
        let out = ws.cycle("once", &ws.source_arg(), &["--now", now]);
        assert_usage_error(&out, "out of range");
    }
    // A millisecond timestamp gets a hint.
    let out = ws.cycle("once", &ws.source_arg(), &["--now", "1795424400000"]);
    assert_usage_error(&out, "milliseconds");
    let out = run(&[
        "schedule",
        "--checkers",
        &ws.checkers_arg(),
        "--from",
        "0",
        "--to",
        "99999999999999",
    ]);
    assert_usage_error(&out, "out of range");
}

#[test]
fn negative_epoch_times_are_values_not_flags() {
    let ws = Workspace::new();
    ws.events_checker("a", EVERY_MINUTE);
    let out = run(&[
        "schedule",
        "--checkers",
        &ws.checkers_arg(),
        "--from",
        "-120",
        "--to",
        "-60",
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let minutes: Vec<i64> = json_lines(&out)
        .iter()
        .filter_map(|l| l["minute"].as_i64())
        .collect();
    assert_eq!(minutes, vec![-120, -60]);
}

#[test]
fn a_source_name_given_twice_is_a_usage_error() {
    let ws = Workspace::new();
    ws.events_checker("a", EVERY_MINUTE);
    let other = format!(
        "default=sqlite:{}",
        ws.path().join("other.sqlite").display()
    );
    let out = ws.cycle(
        "once",
        &ws.source_arg(),
        &["--source", &other, "--now", &T0.to_string()],
    );
    assert_usage_error(&out, "--source default is given more than once");
    assert!(
        !ws.path().join("store.sqlite").exists(),
        "nothing is created on a usage error"
    );
}

#[test]
fn simulation_flags_are_validated() {
    let ws = Workspace::new();
    ws.events_checker("a", EVERY_MINUTE);
    // NaN, 0 and inf used to fall back to real time silently (inf then waited a real minute
    // per cycle).
    for speed in ["0", "NaN", "inf", "-5"] {
        let out = ws.cycle(
            "run",
            &ws.source_arg(),
            &["--now", &T0.to_string(), "--speed", speed, "--cycles", "1"],
        );
        assert_usage_error(&out, "--speed");
    }
    let out = ws.cycle(
        "run",
        &ws.source_arg(),
        &["--now", &T0.to_string(), "--speed", "60", "--cycles", "0"],
    );
    assert_usage_error(&out, "--cycles");
}

#[test]
fn histogram_since_longer_than_the_epoch_starts_at_1970() {
    let ws = Workspace::new();
    ws.events_checker("a", EVERY_MINUTE);
    ws.insert(&[("k1", T0 - 30)]);
    assert_eq!(code(&ws.once(T0, &[])), 0);
    let out = run(&[
        "histogram",
        "--store",
        &ws.store(),
        "--checker",
        "a",
        "--since",
        "18446744073709551615",
        "--now",
        &T0.to_string(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let first = stdout(&out).lines().next().unwrap_or_default().to_string();
    assert!(
        first.starts_with("a: 1 stored rows from 1970-01-01T00:00:00+00:00 to "),
        "{first}"
    );
}

#[test]
fn check_reports_unreadable_and_garbage_files_one_line_each() {
    let ws = Workspace::new();
    ws.events_checker("good", EVERY_MINUTE);
    std::fs::create_dir(ws.checkers().join("dir.dwmon")).expect("mkdir");
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(ws.checkers().join("garbage.dwmon"), garbage).expect("write");
    let runaway = format!(
        "__QUERY__\nSELECT 1\n__REQUIREMENTS__\n{EVERY_MINUTE} {}\n",
        "Z".repeat(1_000_000)
    );
    std::fs::write(ws.checkers().join("runaway.dwmon"), runaway).expect("write");
    let out = run(&["check", "--checkers", &ws.checkers_arg()]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("dir.dwmon:1:1: "), "{text}");
    assert!(lines[1].starts_with("garbage.dwmon:"), "{text}");
    assert!(lines[2].starts_with("runaway.dwmon:4:"), "{}", &text[..200]);
    assert!(
        text.len() < 1000,
        "errors quote excerpts: {} bytes",
        text.len()
    );
}

#[test]
fn a_file_that_is_not_a_dwmon_store_exits_2() {
    let ws = Workspace::new();
    ws.events_checker("a", EVERY_MINUTE);
    let once_with_store = |store: &std::path::Path| {
        let store = store.display().to_string();
        run(&[
            "once",
            "--checkers",
            &ws.checkers_arg(),
            "--store",
            &store,
            "--source",
            &ws.source_arg(),
            "--now",
            &T0.to_string(),
        ])
    };
    let not_sqlite = ws.path().join("notes.txt");
    std::fs::write(&not_sqlite, "just some text\n").expect("write");
    assert_usage_error(&once_with_store(&not_sqlite), "not a dwmon store");
    let path = not_sqlite.display().to_string();
    assert_usage_error(&run(&["status", "--store", &path]), "not a dwmon store");
    // The source database is not a store either: dwmon refuses to write into it.
    let source = ws.path().join("source.sqlite");
    assert_usage_error(&once_with_store(&source), "not a dwmon store");
    let missing_dir = ws.path().join("no/such/dir/store.sqlite");
    assert_usage_error(&once_with_store(&missing_dir), "cannot open store");
}

#[test]
fn a_source_error_quoting_a_multi_line_query_stays_on_one_line() {
    let ws = Workspace::new();
    ws.write_checker(
        "broken",
        &format!(
            "__QUERY__\nSELECT key AS dwmon_unique_key,\n  ts AS dwmon_timestamp\nFROM events\n\
             WHERE ts >> ;{}\n__REQUIREMENTS__\n{EVERY_MINUTE}\n",
            "\n".repeat(3) + &"-- padding\n".repeat(10_000)
        ),
    );
    let out = ws.cycle("once", &ws.source_arg(), &["--now", &T0.to_string()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains(" ERROR broken  "), "{text}");
    assert!(text.len() < 1000, "{} bytes", text.len());
    // JSON keeps the full message (one line, as JSON escapes newlines).
    let out = ws.once(T0 + 60, &[]);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "{}", stdout(&out));
    assert_eq!(lines[0]["status"], "ERROR");
    // The status table shows it on one line too.
    let status = run(&["status", "--store", &ws.store()]);
    assert_eq!(code(&status), 0, "{}", stderr(&status));
    assert_eq!(stdout(&status).lines().count(), 2, "{}", stdout(&status));
}

#[test]
fn logs_to_a_pipe_carry_no_ansi_escape_codes() {
    let ws = Workspace::new();
    ws.events_checker("orders", EVERY_MINUTE);
    let out = ws.once(T0, &["-v"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let log = stderr(&out);
    assert!(log.contains("INFO"), "{log}");
    assert!(!log.contains('\u{1b}'), "{log:?}");
}

#[test]
fn check_on_a_directory_without_checker_files_is_a_finding() {
    let ws = Workspace::new();
    std::fs::write(ws.checkers().join("orders.txt"), "__QUERY__\n").expect("write");
    let out = run(&["check", "--checkers", &ws.checkers_arg()]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stdout(&out).contains(": no *.dwmon files"),
        "{}",
        stdout(&out)
    );
    // once/run still start on an empty directory (checkers may be added while they run),
    // with a warning.
    let once = ws.once(T0, &[]);
    assert_eq!(code(&once), 0, "{}", stderr(&once));
    assert!(
        stderr(&once).contains("warning: no *.dwmon files in "),
        "{}",
        stderr(&once)
    );
}

#[test]
fn pause_refuses_names_no_checker_can_have_and_keeps_comments_on_one_line() {
    let ws = Workspace::new();
    ws.events_checker("orders", EVERY_MINUTE);
    assert_eq!(code(&ws.once(T0, &[])), 0);
    let store = ws.store();
    for name in ["", "../../etc", "a b", &"x".repeat(101)] {
        let out = run(&["pause", name, "--store", &store, "--force"]);
        assert_usage_error(&out, "is not a checker name");
    }
    let out = run(&[
        "pause",
        "orders",
        "--store",
        &store,
        "--comment",
        "line1\nline2\u{1b}[31m red",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "orders: paused (line1 line2 [31m red)\n");
    let status = stdout(&run(&["status", "--store", &store]));
    assert!(!status.contains('\u{1b}'), "{status:?}");
    // Only the real checker is listed.
    let names: Vec<&str> = status
        .lines()
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names, ["orders"], "{status}");
}

/// clap echoes a value it rejects (`invalid value '...'`): a mistyped `--source` URL is
/// still never shown with its password.
#[test]
fn a_mistyped_source_url_is_never_echoed_with_its_password() {
    for value in [
        "wh=postgress://dwmon:hunter2@db/prod",
        "postgres://dwmon:hunter2@db/prod",
    ] {
        let out = run(&["once", "--checkers", ".", "--source", value]);
        assert_eq!(code(&out), 2, "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("invalid value"), "{err}");
        assert!(err.contains("dwmon:***@db"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
}
