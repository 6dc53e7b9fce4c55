//! `DELAYSECONDS` end to end: `dwmon once --now` stepping over successive minutes against a
//! real SQLite source whose rows land 5 minutes after their timestamps.

mod common;
use common::*;

const M: i64 = 60;
const LINE: &str =
    "CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM1 MAXNUM100 LOOKBACKSECONDS60";

/// `(requirement_index, minute relative to T0, status, count)` of each check line.
fn judged(out: &std::process::Output) -> Vec<(u64, i64, String, u64)> {
    json_lines(out)
        .iter()
        .filter_map(|l| {
            Some((
                l.get("requirement_index")?.as_u64()?,
                (l["minute"].as_i64()? - T0) / M,
                l["status"].as_str()?.to_string(),
                l["count"].as_u64()?,
            ))
        })
        .collect()
}

/// One checker, the same requirement twice: without and with `DELAYSECONDS300`.
fn late_workspace() -> Workspace {
    let ws = Workspace::new();
    ws.write_checker(
        "etl",
        &format!(
            "__QUERY__\nSELECT key AS dwmon_unique_key, ts AS dwmon_timestamp FROM events\n\
             __REQUIREMENTS__\n{LINE}\n{LINE} DELAYSECONDS300\n"
        ),
    );
    ws
}

/// The row of minute `k` (relative to T0): stamped 10 s into it, so it counts for the check
/// of minute `k + 1`.
fn row(k: i64) -> (String, i64) {
    (format!("row{k}"), T0 + k * M + 10)
}

fn insert_rows(ws: &Workspace, ks: impl IntoIterator<Item = i64>) {
    let rows: Vec<(String, i64)> = ks.into_iter().map(row).collect();
    let refs: Vec<(&str, i64)> = rows.iter().map(|(k, t)| (k.as_str(), *t)).collect();
    ws.insert(&refs);
}

#[test]
fn rows_five_minutes_late_are_good_with_delayseconds300_and_bad_without() {
    let ws = late_workspace();
    // History that had already landed before the first cycle.
    insert_rows(&ws, -20..=-6);
    let mut cycles = 0;
    for i in 0..12 {
        if (6..8).contains(&i) {
            // The runner is down for two minutes; rows keep landing 5 minutes late.
            insert_rows(&ws, [i - 5]);
            continue;
        }
        // The row of minute i - 5 lands now (5 minutes after its timestamp), just before
        // this cycle runs 15 s into minute i.
        insert_rows(&ws, [i - 5]);
        let out = ws.once(T0 + i * M + 15, &["--fail-on-bad"]);
        assert_eq!(
            code(&out),
            1,
            "the undelayed requirement is BAD: {}",
            stderr(&out)
        );
        let got = judged(&out);
        let caught_up: Vec<i64> = if i == 8 { vec![6, 7, 8] } else { vec![i] };
        // Requirement 1 (DELAYSECONDS300) judges minute i - 5: its row landed in time.
        let mut expected: Vec<(u64, i64, String, u64)> = caught_up
            .iter()
            .flat_map(|&m| {
                [
                    (1, m - 5, "GOOD".to_string(), 1),
                    (0, m, "BAD".to_string(), 0),
                ]
            })
            .collect();
        expected.sort_by_key(|c| (c.1, c.0));
        assert_eq!(got, expected, "cycle at minute {i}");
        cycles += 1;
    }
    assert_eq!(cycles, 10);

    // Every minute of each requirement was judged exactly once: the log holds minutes 0..=11
    // of requirement 0 and -5..=6 of requirement 1.
    let out = ws.once(T0 + 11 * M + 40, &[]);
    assert_eq!((code(&out), stdout(&out)), (0, String::new()));
    let db = rusqlite::Connection::open(ws.store()).expect("store");
    let per_requirement: Vec<(i64, i64, i64, i64)> = db
        .prepare(
            "SELECT requirement_index, count(*), min(minute), max(minute) FROM checks
             GROUP BY requirement_index ORDER BY requirement_index",
        )
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect()
        })
        .expect("check log");
    assert_eq!(
        per_requirement,
        vec![(0, 12, T0, T0 + 11 * M), (1, 12, T0 - 5 * M, T0 + 6 * M)]
    );
}

#[test]
fn check_and_schedule_know_delayseconds() {
    let ws = late_workspace();
    let out = run(&["check", "--checkers", &ws.checkers_arg()]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));

    // `schedule` says when a delayed minute is judged.
    let out = run(&[
        "schedule",
        "--checkers",
        &ws.checkers_arg(),
        "--from",
        &T0.to_string(),
        "--to",
        &T0.to_string(),
    ]);
    assert_eq!(
        stdout(&out),
        "2026-11-23T09:00:00+00:00  etl  0\n\
         2026-11-23T09:00:00+00:00  etl  1  judged 2026-11-23T09:05:00+00:00\n"
    );
    let out = run(&[
        "schedule",
        "--checkers",
        &ws.checkers_arg(),
        "--from",
        &T0.to_string(),
        "--to",
        &T0.to_string(),
        "--json",
    ]);
    let lines = json_lines(&out);
    assert_eq!(lines[0].get("judged_at"), None);
    assert_eq!(lines[1]["judged_at"], T0 + 5 * M);
    assert_eq!(lines[1]["judged_at_local"], "2026-11-23T09:05:00+00:00");

    // A typo or a repeated DELAYSECONDS is an error with the line and column.
    ws.write_checker(
        "etl",
        &format!("__QUERY__\nSELECT 1\n__REQUIREMENTS__\n{LINE} DELAYSECONDS300 DELAYSECONDS60\n"),
    );
    ws.write_checker(
        "typo",
        &format!("__QUERY__\nSELECT 1\n__REQUIREMENTS__\n{LINE} DELAYSECONDS5m\n"),
    );
    let out = run(&["check", "--checkers", &ws.checkers_arg()]);
    assert_eq!(code(&out), 1);
    let text = stdout(&out) + &stderr(&out);
    assert!(
        text.contains(
            "etl.dwmon:4:97: DELAYSECONDS given twice (first at column 81); \
             each option may appear at most once"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "typo.dwmon:4:81: DELAYSECONDS: invalid value `5m`; expected an integer from 0 to 604800"
        ),
        "{text}"
    );
}
