//! `dwmon suggest` and `dwmon backtest` end to end on the real binary: histories written by
//! `dwmon once` runs into a real SQLite store, then read back by the insight commands.

mod common;
use common::*;

use dwmon::StoreView;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

const M: i64 = 60;
const H: i64 = 3600;
const DAY: i64 = 86_400;

/// Inserts `(key, ts)` rows in one transaction (the histories here have 100k+ rows).
fn insert_all(ws: &Workspace, rows: &[(String, i64)]) {
    let mut source =
        rusqlite::Connection::open(ws.path().join("source.sqlite")).expect("source opens");
    let tx = source.transaction().expect("transaction");
    {
        let mut insert = tx
            .prepare("INSERT INTO events (key, ts) VALUES (?1, ?2)")
            .expect("prepare");
        for (key, ts) in rows {
            insert.execute(rusqlite::params![key, ts]).expect("insert");
        }
    }
    tx.commit().expect("commit");
}

/// `dwmon once` at `now` keeping every row (so the history stays for `suggest`).
fn once_keeping(ws: &Workspace, now: i64) {
    let out = ws.once(now, &["--keep-rows", "forever"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

/// One JSON document on stdout.
fn json(output: &std::process::Output) -> Value {
    serde_json::from_str(stdout(output).trim()).unwrap_or_else(|e| {
        panic!(
            "{e}: stdout {:?} stderr {:?}",
            stdout(output),
            stderr(output)
        )
    })
}

/// `dwmon suggest|backtest --checkers .. --store .. --checker NAME REST..`.
fn insight(ws: &Workspace, command: &str, checker: &str, rest: &[&str]) -> std::process::Output {
    let (checkers, store) = (ws.checkers_arg(), ws.store());
    let mut args = vec![
        command,
        "--checkers",
        &checkers,
        "--store",
        &store,
        "--checker",
        checker,
    ];
    args.extend_from_slice(rest);
    run(&args)
}

#[test]
fn suggest_says_a_short_history_is_too_short_and_exits_1() {
    let ws = Workspace::new();
    ws.events_checker(
        "orders",
        "CHECKHOURS0-23 CHECKMINUTES*/5 WEEKDAYS WEEKENDS MINNUM1 MAXNUM100 LOOKBACKSECONDS600",
    );
    // Three days of one event a minute.
    let from = T0 - 3 * DAY;
    let rows: Vec<(String, i64)> = (0..3 * 1440)
        .map(|i| (format!("e{i}"), from + i * M + 7))
        .collect();
    insert_all(&ws, &rows);
    once_keeping(&ws, T0);

    let out = insight(&ws, "suggest", "orders", &[]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("history too short"), "{text}");
    // It says how much history it had: the first row, the days and the due minutes.
    assert!(
        text.contains("first stored row 2026-11-20T09:00:07+00:00"),
        "{text}"
    );
    assert!(text.contains("(3.0 days), 862 due"), "{text}");
    assert!(!text.contains("paste-ready"), "{text}");

    let out = insight(&ws, "suggest", "orders", &["--json"]);
    assert_eq!(code(&out), 1);
    let answer = json(&out);
    assert!(answer["too_short"]
        .as_str()
        .is_some_and(|s| s.contains("14")));
    assert!(answer["suggestion"].is_null());
    assert_eq!(answer["history"]["first_row"], from + 7);
    assert_eq!(answer["history"]["due_minutes"], 862);

    // Unknown checkers and requirement indices are usage errors (exit 2), not panics.
    let out = insight(&ws, "suggest", "nope", &[]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("no valid checker named \"nope\""));
    let out = insight(&ws, "suggest", "orders", &["--requirement", "3"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("has 1 requirement line"),
        "{}",
        stderr(&out)
    );
    let out = insight(
        &ws,
        "backtest",
        "orders",
        &["--from", "1", "--to", "2000000000"],
    );
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("more than 3660 days"),
        "{}",
        stderr(&out)
    );
    let out = insight(
        &ws,
        "backtest",
        "orders",
        &["--from", "2026-11-24T00:00:00Z"],
    );
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("nothing to replay"),
        "{}",
        stderr(&out)
    );
    let out = insight(
        &ws,
        "backtest",
        "orders",
        &["--incident", "2026-11-24T00:00:00Z"],
    );
    assert_eq!(code(&out), 2);
    let out = insight(&ws, "backtest", "orders", &["--requirement", "MINNUM5"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("--requirement \"MINNUM5\""),
        "{}",
        stderr(&out)
    );
}

/// Events a minute at `t` (UTC): busy weekday office hours, quieter evenings, quiet nights
/// and weekends.
fn rate(t: i64) -> f64 {
    let day = (t.div_euclid(DAY) + 4).rem_euclid(7); // 0 = Sunday
    let hour = t.rem_euclid(DAY) / H;
    match (day == 0 || day == 6, hour) {
        (false, 9..=16) => 6.0,
        (false, 7..=8 | 17..=21) => 3.0,
        (true, 10..=19) => 2.0,
        _ => 1.5,
    }
}

/// A seeded Poisson stream with the rates of [`rate`] in `[from, to)`, none inside `gap`.
fn poisson(seed: u64, from: i64, to: i64, gap: (i64, i64)) -> Vec<(String, i64)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::new();
    let mut t = from as f64;
    while t < to as f64 {
        let hour_end = ((t as i64).div_euclid(H) + 1) * H;
        let u: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
        let next = t - u.ln() / (rate(t as i64) / 60.0);
        if next >= hour_end as f64 {
            t = hour_end as f64;
            continue;
        }
        t = next;
        let ts = t as i64;
        if ts < to && !(gap.0..gap.1).contains(&ts) {
            out.push((format!("e{}", out.len()), ts));
        }
    }
    out
}

/// 30 days of seasonal events with a one-hour outage that live `once` runs recorded BAD:
/// `suggest` states its seasonality and history, leaves the outage (and the minutes whose
/// windows touch it) out, so the outage hour's bounds are those of normal weeks; the
/// proposal's backtest catches the outage within minutes and the lines it prints are
/// accepted back by `backtest`.
#[test]
fn suggest_learns_seasonal_bounds_around_a_recorded_outage_and_backtest_replays_them() {
    let ws = Workspace::new();
    let line =
        "CHECKHOURS0-23 CHECKMINUTES*/5 WEEKDAYS WEEKENDS MINNUM1 MAXNUM100000 LOOKBACKSECONDS600";
    ws.events_checker("orders", line);
    // The history ends on Monday 2026-11-23 at 13:00 UTC, after an outage from 10:30 to
    // 11:30 in which nothing arrived.
    let end = T0 + 4 * H;
    let start = end - 30 * DAY;
    let outage = (T0 + 90 * M, T0 + 150 * M);
    let rows = poisson(1, start, end, outage);
    // Live runs: the first stores the history before the outage, the next ones (every 30
    // minutes, inside the 100-minute horizon) check every due minute through it, each seeing
    // only the rows that have arrived by then.
    let mut inserted = 0;
    let mut now = outage.0 - 10 * M;
    while now <= end {
        let upto = rows.partition_point(|r| r.1 < now);
        insert_all(&ws, &rows[inserted..upto]);
        inserted = upto;
        once_keeping(&ws, now);
        now = if now == end {
            end + 1
        } else {
            (now + 30 * M).min(end)
        };
    }

    let out = insight(&ws, "suggest", "orders", &["--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let answer = json(&out);
    let history = &answer["history"];
    assert_eq!(history["first_row"], rows[0].1);
    assert_eq!(history["days"], 28.0);
    assert_eq!(history["due_minutes"], 28 * 288);
    // The outage's minutes with a count of 0 (recorded BAD), and those whose windows reach
    // into it, are left out.
    assert!(history["left_out_bad"].as_u64() >= Some(10), "{history}");
    assert!(
        history["left_out_near_bad"].as_u64() >= Some(2),
        "{history}"
    );
    let suggestion = &answer["suggestion"];
    assert_eq!(suggestion["seasonality"], "hour_of_week");
    let season = |label: &str| {
        suggestion["seasons"]
            .as_array()
            .and_then(|s| s.iter().find(|r| r["label"] == label))
            .cloned()
            .unwrap_or_else(|| panic!("no season {label}"))
    };
    for label in ["Mon 10h", "Mon 11h"] {
        let row = season(label);
        // Without the outage the smallest count of that hour is far from 0, and the lower
        // bound stays well above it.
        assert!(row["stats"]["min"].as_u64() > Some(20), "{label}: {row}");
        assert!(row["bounds"][0].as_u64() >= Some(10), "{label}: {row}");
    }
    let lines: Vec<String> = suggestion["quantiles"]["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| l.as_str().expect("text").to_string())
        .collect();
    assert!(lines.len() > 3, "one line per season group: {lines:?}");
    // In sample (outage left out) the proposal raises at most one false episode.
    assert!(suggestion["quantiles"]["backtest"]["episodes"].as_u64() <= Some(1));

    // The human output says the same, with paste-ready lines.
    let text = stdout(&insight(&ws, "suggest", "orders", &[]));
    assert!(
        text.contains("seasonality: hour of week (168 seasons) (at least 4 weeks of history)"),
        "{text}"
    );
    assert!(text.contains("paste-ready lines"), "{text}");
    for l in &lines {
        assert!(text.lines().any(|t| t == l), "{l} in {text}");
    }

    // Backtest the proposal over the same 28 days, the outage as the incident.
    let svg = ws.path().join("band.svg");
    let incident = format!("{}..{}", outage.0, outage.1);
    let (svg_arg, from) = (svg.display().to_string(), (end - 28 * DAY + M).to_string());
    let mut rest = vec![
        "--json",
        "--from",
        &from,
        "--incident",
        &incident,
        "--svg",
        &svg_arg,
    ];
    for l in &lines {
        rest.extend(["--requirement", l.as_str()]);
    }
    let out = insight(&ws, "backtest", "orders", &rest);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let bt = json(&out);
    assert_eq!(bt["history"]["due_minutes"], 28 * 288);
    let incident = &bt["incident"];
    assert!(
        incident["minutes_to_first_alert"].as_f64() <= Some(10.0),
        "{incident}"
    );
    assert!(incident["bad_inside"].as_u64() >= Some(10), "{incident}");
    // The outage minutes (whose whole window lies in the outage) are caught: >= 95 % BAD.
    let outage_checks: Vec<&Value> = bt["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| {
            c["minute"]
                .as_i64()
                .is_some_and(|m| m - 600 >= outage.0 && m <= outage.1)
        })
        .collect();
    let caught = outage_checks
        .iter()
        .filter(|c| c["status"] == "BAD")
        .count();
    assert!(
        outage_checks.len() >= 10 && caught * 100 >= outage_checks.len() * 95,
        "caught {caught} of {:?}",
        outage_checks
    );
    // Apart from the outage, at most one false episode in 28 days.
    let episodes = bt["episodes"].as_array().expect("episodes");
    let outside = episodes
        .iter()
        .filter(|e| {
            e["firing_at"]
                .as_i64()
                .is_some_and(|t| t < outage.0 || t > outage.1 + 10 * M)
        })
        .count();
    assert!(outside <= 1, "{episodes:?}");
    let picture = std::fs::read_to_string(&svg).expect("the SVG was written");
    assert!(picture.starts_with("<svg") && picture.trim_end().ends_with("</svg>"));
    assert!(picture.contains("dwmon backtest: orders"));
}

/// The acceptance test: a backtest over the minutes a live run already checked equals
/// the recorded checks minute for minute (count and status of every line), FAILAFTER and a
/// second line with its own schedule and window included.
#[test]
fn backtest_equals_live_minute_for_minute() {
    let ws = Workspace::new();
    let lines = [
        "CHECKHOURS0-23 CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM3 MAXNUM8 LOOKBACKSECONDS300 FAILAFTER2",
        "CHECKHOURS0-23 CHECKMINUTES*/10 WEEKDAYS WEEKENDS MINNUM15 MAXNUM60 LOOKBACKSECONDS1800",
        "CHECKHOURS0-23 CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM2 MAXNUM10 LOOKBACKSECONDS300 DELAYSECONDS120",
    ];
    ws.write_checker(
        "orders",
        &format!(
            "__QUERY__\nSELECT key AS dwmon_unique_key, ts AS dwmon_timestamp FROM events\n\
             __REQUIREMENTS__\n{}\n",
            lines.join("\n")
        ),
    );
    // About one event a minute from an hour before T0, with a 12-minute gap and a burst.
    let mut rng = StdRng::seed_from_u64(5);
    let mut rows = Vec::new();
    let mut t = T0 - H;
    while t < T0 + 3 * H {
        t += rng.random_range(20..100);
        let gap = (T0 + 40 * M..T0 + 52 * M).contains(&t);
        if !gap {
            rows.push((format!("e{t}"), t));
        }
        if (T0 + 100 * M..T0 + 104 * M).contains(&t) {
            rows.push((format!("b{t}"), t + 1));
        }
    }
    rows.sort_by_key(|r| r.1);
    let mut inserted = 0;
    let mut now = T0;
    while now <= T0 + 3 * H {
        let upto = rows.partition_point(|r| r.1 < now);
        insert_all(&ws, &rows[inserted..upto]);
        inserted = upto;
        let out = ws.once(now + 17, &[]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        now += 15 * M;
    }
    let last = now - 15 * M;

    // What the live runs recorded, through the store API.
    let store = dwmon::sqlite::SqliteStore::open_read_only(ws.store()).expect("store");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut live: Vec<(i64, u64, u64, String)> = runtime
        .block_on(store.recent_checks("orders", usize::MAX))
        .expect("checks")
        .into_iter()
        // The delayed line's first cycle judged a minute before T0.
        .filter(|r| r.minute >= T0)
        .map(|r| {
            (
                r.minute,
                r.requirement_index as u64,
                r.count,
                format!("{:?}", r.status).to_uppercase(),
            )
        })
        .collect();
    live.sort();
    // Every due minute from T0 to the last run; the delayed line 2 minutes behind.
    assert_eq!(live.len(), 181 + 19 + 179);
    assert!(live.iter().any(|c| c.3 == "BAD") && live.iter().any(|c| c.3 == "GOOD"));

    // Without --to each line ends at its own last judged minute (the delayed one earlier).
    let from = T0.to_string();
    let out = insight(&ws, "backtest", "orders", &["--json", "--from", &from]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let bt = json(&out);
    let mut replayed: Vec<(i64, u64, u64, String)> = bt["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| {
            (
                c["minute"].as_i64().unwrap_or_default(),
                c["requirement_index"].as_u64().unwrap_or_default(),
                c["count"].as_u64().unwrap_or_default(),
                c["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    replayed.sort();
    assert_eq!(replayed, live);
    // FAILAFTER2: the gap fires one episode of line 0 at its second BAD minute.
    let episodes = bt["episodes"].as_array().expect("episodes");
    let gap_episode = episodes
        .iter()
        .find(|e| e["requirement_index"] == 0 && e["bad_since"].as_i64() > Some(T0 + 40 * M))
        .expect("the gap fires");
    assert_eq!(
        gap_episode["firing_at"].as_i64(),
        gap_episode["bad_since"].as_i64().map(|t| t + M)
    );

    // The human report says how much history it replayed and what it found.
    let text = stdout(&insight(
        &ws,
        "backtest",
        "orders",
        &["--from", &from, "--to", &last.to_string()],
    ));
    assert!(text.contains("first stored row"), "{text}");
    assert!(text.contains("(0.1 days), 381 due"), "{text}");
    assert!(text.contains("episode #0: BAD from"), "{text}");
}
