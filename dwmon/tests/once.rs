//! `dwmon once --now` across scripted sequences of times: the cycle rules (README "How a cycle works") end to end on a real SQLite
//! source and store.

mod common;
use common::*;

/// Every minute, 2 to 3 events in the last minute; horizon 10 minutes.
const TWO_TO_THREE: &str =
    "CHECKHOURS0-23 CHECKMINUTES0-59 WEEKDAYS WEEKENDS MINNUM2 MAXNUM3 LOOKBACKSECONDS60";
const M: i64 = 60;

fn minutes(checks: &[(String, i64, String, u64)]) -> Vec<i64> {
    checks.iter().map(|c| (c.1 - T0) / M).collect()
}

#[test]
fn steady_state_one_check_per_minute_good_and_bad() {
    let ws = Workspace::new();
    ws.events_checker("events", TWO_TO_THREE);
    ws.insert(&[("a", T0 - 50), ("b", T0 - 30), ("old", T0 - 600)]);

    // First cycle ever: only the current minute is checked.
    let out = ws.once(T0 + 5, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let lines = json_lines(&out);
    assert_eq!(
        checks(&lines),
        vec![("events".into(), T0, "GOOD".into(), 2)]
    );
    let line = &lines[0];
    assert_eq!(line["minute_local"], "2026-11-23T09:00:00+00:00");
    assert_eq!(line["timezone"], "UTC");
    assert_eq!(
        (line["min"].as_u64(), line["max"].as_u64()),
        (Some(2), Some(3))
    );
    assert_eq!(line["lookback_seconds"], 60);
    assert_eq!(line["extra"], serde_json::json!({}));

    // The next minute: an event exactly at T0 belongs to [T0, T0+60); only one -> BAD.
    ws.insert(&[("c", T0)]);
    let out = ws.once(T0 + M + 5, &[]);
    assert_eq!(code(&out), 0, "BAD is not a failure without --fail-on-bad");
    assert_eq!(
        checks(&json_lines(&out)),
        vec![("events".into(), T0 + M, "BAD".into(), 1)]
    );

    // Same minute again: nothing to do, nothing printed.
    let out = ws.once(T0 + M + 30, &["--fail-on-bad"]);
    assert_eq!(code(&out), 0);
    assert_eq!(stdout(&out), "");

    // --fail-on-bad exits 1 when a check is BAD.
    let out = ws.once(T0 + 2 * M + 5, &["--fail-on-bad"]);
    assert_eq!(
        checks(&json_lines(&out)),
        vec![("events".into(), T0 + 2 * M, "BAD".into(), 0)]
    );
    assert_eq!(code(&out), 1);
}

#[test]
fn outage_and_catch_up_with_late_arriving_rows() {
    let ws = Workspace::new();
    ws.events_checker("events", TWO_TO_THREE);
    ws.insert(&[("a", T0 - 40), ("b", T0 - 20)]);
    assert_eq!(checks(&json_lines(&ws.once(T0, &[]))).len(), 1);

    // A 4-minute outage. Meanwhile rows kept being written, some of them late (their
    // timestamps are in minutes no cycle has checked yet); all count in their own window.
    ws.insert(&[
        ("c", T0 + 10),
        ("d", T0 + 70),
        ("e", T0 + 80),
        ("f", T0 + 130),
        ("g", T0 + 150),
        ("h", T0 + 170),
    ]);
    let out = ws.once(T0 + 4 * M + 5, &[]);
    let caught_up = checks(&json_lines(&out));
    assert_eq!(
        minutes(&caught_up),
        vec![1, 2, 3, 4],
        "missed minutes are checked, ascending, once"
    );
    let counts: Vec<u64> = caught_up.iter().map(|c| c.3).collect();
    assert_eq!(counts, vec![1, 2, 3, 0]);
    let statuses: Vec<&str> = caught_up.iter().map(|c| c.2.as_str()).collect();
    assert_eq!(statuses, vec!["BAD", "GOOD", "GOOD", "BAD"]);

    // A row arriving after its minute was checked is stored with its own timestamp; the
    // checked minute is not re-checked, and the next window does not count it.
    ws.insert(&[
        ("late", T0 + 3 * M + 30),
        ("i", T0 + 4 * M + 10),
        ("j", T0 + 4 * M + 20),
    ]);
    let out = ws.once(T0 + 5 * M, &[]);
    assert_eq!(
        checks(&json_lines(&out)),
        vec![("events".into(), T0 + 5 * M, "GOOD".into(), 2)]
    );

    // An outage longer than the horizon (10 minutes for a 60 s window): only the last 10
    // minutes are caught up; the 15 before them are recorded as MISSED.
    let out = ws.once(T0 + 30 * M + 5, &[]);
    let (missed, caught_up): (Vec<_>, Vec<_>) = checks(&json_lines(&out))
        .into_iter()
        .partition(|c| c.2 == "MISSED");
    assert_eq!(minutes(&caught_up), (21..=30).collect::<Vec<_>>());
    assert_eq!(minutes(&missed), (6..=20).collect::<Vec<_>>());
}

#[test]
fn a_known_key_keeps_its_first_timestamp() {
    let ws = Workspace::new();
    ws.events_checker("events", TWO_TO_THREE);
    ws.insert(&[("a", T0 - 50), ("b", T0 - 40)]);
    assert_eq!(checks(&json_lines(&ws.once(T0, &[])))[0].3, 2);
    // The same keys re-appear with new timestamps (e.g. an updated_at column): not new.
    ws.insert(&[("a", T0 + 10), ("b", T0 + 20), ("c", T0 + 30)]);
    assert_eq!(checks(&json_lines(&ws.once(T0 + M, &[])))[0].3, 1);
}

#[test]
fn an_edited_checker_file_takes_effect_at_the_next_cycle() {
    let ws = Workspace::new();
    ws.events_checker("events", TWO_TO_THREE);
    ws.insert(&[("a", T0 - 50)]);
    let first = json_lines(&ws.once(T0, &[]));
    assert_eq!(first[0]["status"], "BAD");

    ws.events_checker(
        "events",
        "CHECKHOURS0-23 CHECKMINUTES0-59 WEEKDAYS WEEKENDS MINNUM0 MAXNUM3 LOOKBACKSECONDS120",
    );
    ws.insert(&[("b", T0 + 10)]);
    let second = json_lines(&ws.once(T0 + M, &[]));
    assert_eq!(second.len(), 1);
    assert_eq!(second[0]["status"], "GOOD");
    assert_eq!(second[0]["min"], 0);
    assert_eq!(
        second[0]["count"], 2,
        "the new 120 s window counts both rows"
    );
}

#[test]
fn an_invalid_checker_is_reported_while_the_others_continue() {
    let ws = Workspace::new();
    ws.events_checker("events", TWO_TO_THREE);
    ws.events_checker("other", TWO_TO_THREE);
    ws.insert(&[("a", T0 - 50), ("b", T0 - 40)]);
    assert_eq!(checks(&json_lines(&ws.once(T0, &[]))).len(), 2);

    // `other` turns invalid: reported as ERROR, its last good version is not used.
    ws.events_checker(
        "other",
        "CHECKHOURS0-23 CHECKMINUTES0-59 MINNUM2 MAXNUM3 LOOKBACKSECONDS60",
    );
    let out = ws.once(T0 + M, &[]);
    assert_eq!(code(&out), 0);
    let lines = json_lines(&out);
    assert_eq!(
        checks(&lines),
        vec![("events".into(), T0 + M, "BAD".into(), 0)]
    );
    let errors: Vec<&serde_json::Value> = lines.iter().filter(|l| l["status"] == "ERROR").collect();
    assert_eq!(errors.len(), 1, "{lines:?}");
    assert_eq!(errors[0]["checker"], "other");
    assert!(
        errors[0]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("other.dwmon:4:"),
        "{:?}",
        errors[0]
    );

    // --fail-on-bad counts ERROR too.
    let out = ws.once(T0 + 2 * M, &["--fail-on-bad"]);
    assert_eq!(code(&out), 1);

    // Fixed: it resumes (catching up the minutes it missed, within its horizon).
    ws.events_checker("other", TWO_TO_THREE);
    let out = ws.once(T0 + 3 * M, &[]);
    let resumed: Vec<i64> = checks(&json_lines(&out))
        .into_iter()
        .filter(|c| c.0 == "other")
        .map(|c| (c.1 - T0) / M)
        .collect();
    assert_eq!(resumed, vec![1, 2, 3]);
}

#[test]
fn a_failing_source_is_an_error_event_not_a_silent_check() {
    let ws = Workspace::new();
    ws.events_checker("events", TWO_TO_THREE);
    let missing = format!(
        "default=sqlite:{}",
        ws.path().join("missing.sqlite").display()
    );
    let (checkers, store) = (ws.checkers_arg(), ws.store());
    let args = [
        "once",
        "--checkers",
        &checkers,
        "--store",
        &store,
        "--source",
        &missing,
        "--now",
        "1795424400",
        "--json",
    ];
    let out = run(&args);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["status"], "ERROR");
    assert_eq!(lines[0]["checker"], "events");
    // A __SOURCE__ nobody configured is an ERROR event naming the known sources.
    ws.write_checker(
        "elsewhere",
        "__QUERY__\nSELECT 1\n__REQUIREMENTS__\nCHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM0 MAXNUM1 LOOKBACKSECONDS60\n__SOURCE__\nwarehouse\n",
    );
    let out = ws.once(T0 + M, &["--fail-on-bad"]);
    assert_eq!(code(&out), 1);
    let lines = json_lines(&out);
    let error = lines
        .iter()
        .find(|l| l["checker"] == "elsewhere")
        .expect("an event for elsewhere");
    assert_eq!(error["status"], "ERROR");
    assert!(
        error["error"]
            .as_str()
            .unwrap_or_default()
            .contains("warehouse"),
        "{error}"
    );
}

#[test]
fn readable_output_without_json() {
    let ws = Workspace::new();
    ws.events_checker("events", TWO_TO_THREE);
    ws.insert(&[("a", T0 - 50), ("b", T0 - 30)]);
    let source = ws.source_arg();
    let out = ws.cycle("once", &source, &["--now", "2026-11-23T09:00:10Z"]);
    assert_eq!(code(&out), 0);
    assert_eq!(
        stdout(&out),
        "2026-11-23T09:00:00+00:00  GOOD  events#0  count=2 want 2 to 3 in last 60s\n"
    );
}

#[test]
fn operational_failures_exit_2() {
    let ws = Workspace::new();
    ws.events_checker("events", TWO_TO_THREE);
    let (checkers, source) = (ws.checkers_arg(), ws.source_arg());
    let missing_dir = ws.path().join("nope").display().to_string();
    let not_a_store = ws.path().join("not-a-store");
    std::fs::write(
        &not_a_store,
        "this is not a database, just text that is long enough to be read",
    )
    .expect("write");
    let not_a_store = not_a_store.display().to_string();
    let store = ws.store();
    for args in [
        vec![
            "once",
            "--checkers",
            &missing_dir,
            "--store",
            &store,
            "--source",
            &source,
        ],
        vec![
            "once",
            "--checkers",
            &checkers,
            "--store",
            &not_a_store,
            "--source",
            &source,
        ],
        vec![
            "once",
            "--checkers",
            &checkers,
            "--store",
            &checkers,
            "--source",
            &source,
        ],
        vec!["once", "--checkers", &checkers, "--store", &store],
        vec!["once", "--checkers", &checkers, "--source", &source],
        vec![
            "once",
            "--checkers",
            &checkers,
            "--store",
            &store,
            "--source",
            "default=oracle://x",
        ],
    ] {
        let out = run(&args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{err}");
        assert!(
            err.lines().any(|l| l.starts_with("error")),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn once_with_nothing_due_is_silent_for_scripts() {
    // (At a terminal it says so on stderr; piped, as under cron, it prints nothing.)
    let ws = Workspace::new();
    ws.events_checker(
        "hourly",
        "CHECKHOURS0-23 CHECKMINUTES0 WEEKDAYS WEEKENDS MINNUM0 MAXNUM5 LOOKBACKSECONDS60",
    );
    let out = ws.once(T0 + 60, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}

#[test]
fn once_exits_2_when_the_store_fails_during_the_cycle() {
    let ws = Workspace::new();
    ws.events_checker("events", TWO_TO_THREE);
    ws.insert(&[("a", T0 - 30)]);
    assert_eq!(code(&ws.once(T0, &[])), 0);
    // Damage the store under dwmon (as a full disk or a lock held too long would fail it).
    let store = rusqlite::Connection::open(ws.store()).expect("open store");
    store.execute_batch("DROP TABLE rows").expect("drop");
    drop(store);
    let out = ws.once(T0 + M, &[]);
    assert_eq!(code(&out), 2, "{}", stdout(&out));
    let err = stderr(&out);
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: cycle failed: checker events: store: "),
        "{err}"
    );
    // The ERROR event itself is still printed for scripts reading stdout.
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["kind"], "store");
}

#[test]
fn a_store_checked_in_the_future_is_loud_until_forget_removes_the_future_records() {
    let ws = Workspace::new();
    ws.events_checker("events", TWO_TO_THREE);
    assert_eq!(code(&ws.once(T0 - M, &[])), 0);
    // 2099-01-01: far ahead of the clock on an existing store.
    let future = 4_070_908_800;
    let out = ws.once(future, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("warning: --now") && stderr(&out).contains("dwmon forget"),
        "{}",
        stderr(&out)
    );

    for now in [T0, T0 + M] {
        let out = ws.once(now, &["--fail-on-bad"]);
        assert_eq!(code(&out), 1, "{}", stderr(&out));
        let lines = json_lines(&out);
        assert!(checks(&lines).is_empty(), "{lines:?}");
        let error = lines
            .iter()
            .find(|l| l["status"] == "ERROR")
            .expect("an ERROR line");
        assert_eq!(error["kind"], "clock_behind");
        assert!(
            error["error"]
                .as_str()
                .unwrap_or_default()
                .contains("2099-01-01T00:00:00"),
            "{error}"
        );
    }
    let out = run(&["status", "--store", &ws.store(), "--json"]);
    let status = json_lines(&out);
    assert!(
        status[0]["last_error"]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("after this cycle's minute"),
        "{status:?}"
    );

    let after = (T0 + M).to_string();
    let out = run(&["forget", "--store", &ws.store(), "--after", &after]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // The future cycle caught up its whole 10-minute horizon and recorded the newest 10,000
    // minutes before it as MISSED.
    assert!(
        stdout(&out).contains("removed 10010 check records"),
        "{}",
        stdout(&out)
    );
    // Checking resumes after the last real minute (T0 - 1 min).
    let out = ws.once(T0 + 2 * M, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(minutes(&checks(&json_lines(&out))), vec![0, 1, 2]);
}

#[test]
fn the_key_cache_capacity_is_settable_and_0_disables_it() {
    let ws = Workspace::new();
    ws.events_checker("events", TWO_TO_THREE);
    ws.insert(&[("a", T0 - 50), ("b", T0 - 30)]);
    for (now, capacity) in [(T0, "0"), (T0 + M, "1000")] {
        let out = ws.once(now, &["--seen-cache-keys", capacity]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert_eq!(checks(&json_lines(&out)).len(), 1);
    }
    let out = ws.once(T0 + 2 * M, &["--seen-cache-keys", "many"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
}

#[test]
fn the_store_page_cache_is_settable_and_0_is_refused() {
    let ws = Workspace::new();
    ws.events_checker("events", TWO_TO_THREE);
    ws.insert(&[("a", T0 - 50), ("b", T0 - 30)]);
    let out = ws.once(T0, &["--store-cache-mib", "1"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(checks(&json_lines(&out)).len(), 1);
    for bad in ["0", "lots", "100000"] {
        let out = ws.once(T0 + M, &["--store-cache-mib", bad]);
        assert_eq!(code(&out), 2, "{bad}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("--store-cache-mib"),
            "{}",
            stderr(&out)
        );
    }
    // Nothing was recorded by the refused runs: the next minute is still due.
    let out = ws.once(T0 + M, &["--store-cache-mib", "64"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(checks(&json_lines(&out)).len(), 1);
}
