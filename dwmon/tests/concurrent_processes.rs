//! Several `dwmon` processes on one store at the same minute (overlapping cron runs, `pause`
//! beside `once`): each waits for the others' locks instead of failing, and every due minute is
//! recorded exactly once.
//!
//! `DWMON_TEST_CONCURRENT_ROUNDS` (default 12) sets how many fresh stores are tried; each gets
//! three minutes of four concurrent `once --alerts` runs, plus a `pause` from the second minute.

mod common;
use common::*;
use std::process::{Child, Stdio};

const PROCESSES: usize = 4;
const MINUTES: i64 = 3;
const CHECKERS: [&str; 4] = ["a", "b", "c", "d"];
const EVERY_MINUTE: &str =
    "CHECKHOURS0-23 CHECKMINUTES0-59 WEEKDAYS WEEKENDS MINNUM0 MAXNUM9 LOOKBACKSECONDS60";

/// Starts `dwmon ARGS` behind a gate: it waits for a line on its stdin, so that all the
/// processes of a minute can be released at the same instant (spawning one by one would
/// stagger them by the cost of a fork and exec).
fn spawn(args: &[&str]) -> Child {
    let mut command = std::process::Command::new("sh");
    command
        .arg("-c")
        .arg("read gate && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_dwmon"))
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("DWMON_TZ")
        .env_remove("DWMON_CONFIG")
        .env_remove("DWMON_LOG_FORMAT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command.spawn().expect("sh starts")
}

/// Opens the gates: every child reads its line and becomes `dwmon`.
fn release(children: &mut [(String, Child)]) {
    use std::io::Write;
    for (_, child) in children.iter_mut() {
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin.write_all(b"go\n").expect("gate");
    }
}

#[test]
fn concurrent_processes_on_one_store_wait_and_record_each_minute_once() {
    let rounds: usize = std::env::var("DWMON_TEST_CONCURRENT_ROUNDS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(12);
    let mut failures = Vec::new();
    let mut runs = 0;
    for round in 0..rounds {
        let ws = Workspace::new();
        for name in CHECKERS {
            ws.events_checker(name, EVERY_MINUTE);
        }
        ws.insert(&[("a", T0 - 30)]);
        let alerts = ws.path().join("alerts.json");
        std::fs::write(&alerts, "{\"repeat_seconds\": 180}").expect("alerts config");
        let alerts = alerts.display().to_string();
        let (checkers, store, source) = (ws.checkers_arg(), ws.store(), ws.source_arg());
        for minute in 0..MINUTES {
            let now = (T0 + minute * 60 + 5).to_string();
            let once = [
                "once",
                "--checkers",
                &checkers,
                "--store",
                &store,
                "--source",
                &source,
                "--now",
                &now,
                "--json",
                "--alerts",
                &alerts,
            ];
            let mut children: Vec<(String, Child)> = (0..PROCESSES)
                .map(|_| ("once".to_string(), spawn(&once)))
                .collect();
            if minute > 0 {
                let checker = CHECKERS[round % CHECKERS.len()];
                children.push((
                    "pause".to_string(),
                    spawn(&["pause", checker, "--store", &store]),
                ));
            }
            release(&mut children);
            for (what, child) in children {
                let out = child.wait_with_output().expect("dwmon ends");
                runs += 1;
                if !out.status.success() {
                    failures.push(format!(
                        "round {round} minute {minute} {what}: {} {}",
                        out.status,
                        stderr(&out).trim()
                    ));
                }
            }
        }
        let connection = rusqlite::Connection::open(ws.store()).expect("store");
        let mut statement = connection
            .prepare(
                "SELECT c.name, k.minute, count(*) FROM checks k JOIN checkers c ON c.id = k.checker_id
                 GROUP BY c.name, k.minute ORDER BY c.name, k.minute",
            )
            .expect("query");
        let recorded: Vec<(String, i64, i64)> = statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("rows");
        let expected: Vec<(String, i64, i64)> = CHECKERS
            .iter()
            .flat_map(|name| (0..MINUTES).map(move |m| (name.to_string(), T0 + m * 60, 1)))
            .collect();
        assert_eq!(
            recorded, expected,
            "round {round}: each minute recorded once"
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {runs} processes failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("{runs} processes in {rounds} rounds, 0 failed");
}

/// Holds the store's write lock for a moment, as another process creating or writing the store
/// would, while a `dwmon once` starts: it waits for the lock (busy timeout) instead of failing
/// on its first write. Both while the store is being created and on an existing store.
#[test]
fn a_write_lock_held_by_another_process_is_waited_for() {
    let ws = Workspace::new();
    ws.events_checker("orders", EVERY_MINUTE);
    let alerts = ws.path().join("alerts.json");
    std::fs::write(&alerts, "{\"repeat_seconds\": 180}").expect("alerts config");
    let alerts = alerts.display().to_string();
    for (minute, what) in [(0, "a store being created"), (1, "an existing store")] {
        let holder = rusqlite::Connection::open(ws.store()).expect("store");
        holder.execute_batch("BEGIN IMMEDIATE").expect("write lock");
        let now = (T0 + minute * 60 + 5).to_string();
        let child = dwmon()
            .args([
                "once",
                "--checkers",
                &ws.checkers_arg(),
                "--store",
                &ws.store(),
                "--source",
                &ws.source_arg(),
                "--now",
                &now,
                "--json",
                "--alerts",
                &alerts,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("dwmon starts");
        // Not a timing assumption of the code under test: the lock is released after a while,
        // well inside the store's 5 s busy timeout, whether or not dwmon has reached it yet.
        std::thread::sleep(std::time::Duration::from_millis(400));
        holder.execute_batch("COMMIT").expect("release");
        let out = child.wait_with_output().expect("dwmon ends");
        assert_eq!(code(&out), 0, "{what}: {}", stderr(&out));
        assert_eq!(
            checks(&json_lines(&out)),
            vec![("orders".into(), T0 + minute * 60, "GOOD".into(), 0)],
            "{what}"
        );
    }
}
