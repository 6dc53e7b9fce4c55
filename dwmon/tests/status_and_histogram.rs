//! `dwmon status` and `dwmon histogram`, end to end.

mod common;
use common::*;

const TWO_TO_THREE: &str =
    "CHECKHOURS0-23 CHECKMINUTES0-59 WEEKDAYS WEEKENDS MINNUM2 MAXNUM3 LOOKBACKSECONDS60";

/// A store with checks of `events` (GOOD then BAD) and of a checker whose source fails.
fn populated() -> Workspace {
    let ws = Workspace::new();
    ws.events_checker("events", TWO_TO_THREE);
    ws.write_checker(
        "broken_source",
        "__QUERY__\nSELECT nothing FROM nowhere\n__REQUIREMENTS__\n\
         CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM0 MAXNUM1 LOOKBACKSECONDS60\n",
    );
    // Monday 08:59:10 and 08:59:30 UTC, and one at 07:15.
    ws.insert(&[("a", T0 - 50), ("b", T0 - 30), ("c", T0 - 6300)]);
    assert_eq!(code(&ws.once(T0, &[])), 0);
    assert_eq!(code(&ws.once(T0 + 60, &[])), 0);
    ws
}

#[test]
fn status_shows_last_check_statuses_and_errors() {
    let ws = populated();
    let store = ws.store();
    let out = run(&["status", "--store", &store]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("CHECKER"));
    let broken = lines
        .iter()
        .find(|l| l.starts_with("broken_source"))
        .expect("broken_source line");
    assert!(
        broken.contains("never") && broken.contains("fetch failed"),
        "{broken}"
    );
    let events = lines
        .iter()
        .find(|l| l.starts_with("events"))
        .expect("events line");
    assert!(
        events.contains("2026-11-23T09:01:00+00:00") && events.contains("#0:BAD(0)"),
        "{events}"
    );

    let out = run(&["status", "--store", &store, "--json"]);
    let lines = json_lines(&out);
    let events = lines
        .iter()
        .find(|l| l["checker"] == "events")
        .expect("events");
    assert_eq!(events["last_minute"], T0 + 60);
    assert_eq!(events["requirements"][0]["status"], "BAD");
    assert_eq!(events["pending_deliveries"], 0);
    assert_eq!(events["stored_rows"], 3);
    let broken = lines
        .iter()
        .find(|l| l["checker"] == "broken_source")
        .expect("broken");
    assert!(broken["last_error"]["error"]
        .as_str()
        .unwrap_or_default()
        .contains("fetch failed"));
}

#[test]
fn status_of_a_missing_store_exits_2_and_creates_nothing() {
    let ws = Workspace::new();
    let store = ws.store();
    let out = run(&["status", "--store", &store]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).starts_with("error: store "),
        "{}",
        stderr(&out)
    );
    assert!(!std::path::Path::new(&store).exists());
}

#[test]
fn histogram_counts_rows_by_weekday_and_hour_in_the_zone() {
    let ws = populated();
    let store = ws.store();
    let now = (T0 + 60).to_string();
    let out = run(&[
        "histogram",
        "--store",
        &store,
        "--checker",
        "events",
        "--now",
        &now,
        "--since",
        "86400",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    let monday: Vec<u64> = text
        .lines()
        .find(|l| l.starts_with("Mon"))
        .expect("a Mon row")
        .split_whitespace()
        .skip(1)
        .map(|n| n.parse().expect("a count"))
        .collect();
    assert_eq!(monday.len(), 25, "24 hours and a total");
    assert_eq!((monday[7], monday[8], monday[24]), (1, 2, 3), "{text}");
    assert!(text.starts_with("events: 3 stored rows"), "{text}");

    // Same rows in New York (UTC-5): 02:15 and 03:59.
    let svg = ws.path().join("events.svg");
    let svg_arg = svg.display().to_string();
    let out = run(&[
        "histogram",
        "--store",
        &store,
        "--checker",
        "events",
        "--now",
        &now,
        "--tz",
        "America/New_York",
        "--svg",
        &svg_arg,
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let monday = stdout(&out)
        .lines()
        .find(|l| l.starts_with("Mon"))
        .map(str::to_string)
        .unwrap_or_default();
    let cells: Vec<&str> = monday.split_whitespace().collect();
    assert_eq!((cells[3], cells[4]), ("1", "2"), "{monday}");
    let picture = std::fs::read_to_string(&svg).expect("the SVG was written");
    assert!(picture.starts_with("<svg") && picture.trim_end().ends_with("</svg>"));
    assert_eq!(picture.matches("<rect x=").count(), 7 * 24);

    // --since leaves out older rows.
    let out = run(&[
        "histogram",
        "--store",
        &store,
        "--checker",
        "events",
        "--now",
        &now,
        "--since",
        "600",
    ]);
    assert!(
        stdout(&out).starts_with("events: 2 stored rows"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn histogram_failures_exit_2() {
    let ws = populated();
    let store = ws.store();
    let out = run(&["histogram", "--store", &store, "--checker", "nobody"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("no checker named \"nobody\""),
        "{}",
        stderr(&out)
    );
    let missing = ws.path().join("missing.sqlite").display().to_string();
    let out = run(&["histogram", "--store", &missing, "--checker", "events"]);
    assert_eq!(code(&out), 2);
}

#[test]
fn histogram_says_when_the_store_holds_less_history_than_asked() {
    let ws = Workspace::new();
    ws.events_checker(
        "ev",
        "CHECKHOURS0-23 CHECKMINUTES0-59 WEEKDAYS WEEKENDS MINNUM0 MAXNUM9 LOOKBACKSECONDS60",
    );
    // (The default purger keeps about a day: older rows are not even stored.)
    ws.insert(&[("a", T0 - 30), ("b", T0 - 43_200)]);
    assert_eq!(code(&ws.once(T0, &[])), 0);
    let (store, now) = (ws.store(), T0.to_string());
    let histogram = |since: &str| {
        run(&[
            "histogram",
            "--store",
            &store,
            "--checker",
            "ev",
            "--since",
            since,
            "--now",
            &now,
        ])
    };
    // Four weeks asked, half a day stored: a note on stderr, the table unchanged.
    let out = histogram("2419200");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("ev: 2 stored rows from "),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).starts_with("note: the oldest stored row is from 2026-11-22T21:00:00+00:00: the counts cover 0.5 of the 28.0 days"),
        "{}",
        stderr(&out)
    );
    // Asking for what is there: no note.
    let out = histogram("86400");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}

#[cfg(unix)]
#[test]
fn status_reads_a_store_on_a_read_only_directory() {
    // A copy of the store on read-only media (a backup, a snapshot), alert tables included.
    let ws = populated();
    let alerts = ws.path().join("alerts.json");
    std::fs::write(&alerts, "{}").expect("alerts config");
    let alerts_arg = alerts.display().to_string();
    assert_eq!(code(&ws.once(T0 + 120, &["--alerts", &alerts_arg])), 0);
    let read_only = ws.path().join("read-only");
    std::fs::create_dir(&read_only).expect("dir");
    let copy = read_only.join("store.sqlite");
    std::fs::copy(ws.store(), &copy).expect("copy store");
    let locked = std::process::Command::new("chattr")
        .arg("+i")
        .arg(&read_only)
        .status()
        .is_ok_and(|s| s.success())
        && std::fs::write(read_only.join("probe"), b"").is_err();
    if !locked {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: status_reads_a_store_on_a_read_only_directory needs `chattr +i`"
        );
        return;
    }
    let out = run(&["status", "--store", &copy.display().to_string()]);
    let _ = std::process::Command::new("chattr")
        .arg("-i")
        .arg(&read_only)
        .status();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("ALERTS"), "{}", stdout(&out));
    assert!(
        stdout(&out).lines().any(|l| l.starts_with("events")),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_new_checkers_histogram_covers_the_week_of_history_its_first_cycle_fetched() {
    let ws = Workspace::new();
    ws.events_checker("events", TWO_TO_THREE);
    let keys: Vec<String> = (0..1000).map(|i| format!("k{i}")).collect();
    let rows: Vec<(&str, i64)> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| (key.as_str(), T0 - 1 - i as i64 * 604))
        .collect();
    ws.insert(&rows);
    assert_eq!(code(&ws.once(T0, &[])), 0);
    let now = T0.to_string();
    let out = run(&[
        "histogram",
        "--store",
        &ws.store(),
        "--checker",
        "events",
        "--now",
        &now,
        "--since",
        "604800",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("events: 1000 stored rows"), "{text}");
    assert!(!stderr(&out).contains("younger"), "{}", stderr(&out));
}

/// Issue 10 item 5: a retention setting reaches the stock CLI. With `--keep-rows 35d`, rows
/// older than a day outlive the hourly purge and `histogram` shows them; a checker asking
/// for less in its `__EXTRA__` (so the window-safe minimum, about a day) is trimmed by the
/// same runs, which proves a purge ran.
#[test]
fn keep_rows_keeps_more_than_a_day_of_history_for_histogram() {
    let ws = Workspace::new();
    ws.events_checker("kept", TWO_TO_THREE);
    ws.write_checker(
        "trimmed",
        &format!(
            "__QUERY__\nSELECT key AS dwmon_unique_key, ts AS dwmon_timestamp FROM events\n\
             __REQUIREMENTS__\n{TWO_TO_THREE}\n__EXTRA__\n{{\"retention\": {{\"rows\": \"1m\"}}}}\n"
        ),
    );
    // One row an hour for three days before T0.
    let keys: Vec<String> = (0..72).map(|i| format!("h{i}")).collect();
    let rows: Vec<(&str, i64)> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| (key.as_str(), T0 - 1 - i as i64 * 3600))
        .collect();
    ws.insert(&rows);
    // The first cycle stores the whole history; the next hour of cycles holds each
    // checker's purge slot once.
    for minute in 0..=60 {
        let out = ws.once(T0 + minute * 60, &["--keep-rows", "35d"]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }
    let (store, now) = (ws.store(), (T0 + 3600).to_string());
    let histogram = |checker: &str| {
        let out = run(&[
            "histogram",
            "--store",
            &store,
            "--checker",
            checker,
            "--now",
            &now,
            "--since",
            "604800",
        ]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        stdout(&out)
    };
    let kept = histogram("kept");
    assert!(kept.starts_with("kept: 72 stored rows"), "{kept}");
    let trimmed = histogram("trimmed");
    let stored: u64 = trimmed
        .strip_prefix("trimmed: ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{trimmed}"));
    assert!(
        (24..=27).contains(&stored),
        "about a day of rows: {trimmed}"
    );
    let status = run(&["status", "--json", "--store", &store]);
    let lines = json_lines(&status);
    let oldest = |name: &str| {
        lines
            .iter()
            .find(|l| l["checker"] == name)
            .and_then(|l| l["oldest_row"].as_i64())
            .unwrap_or_else(|| panic!("no {name} in {lines:?}"))
    };
    assert_eq!(oldest("kept"), T0 - 1 - 71 * 3600);
    assert!(oldest("trimmed") > T0 - 2 * 86_400);
}
