//! `dwmon run`, end to end: simulated time (`--now T --speed N`), SIGTERM finishing the cycle
//! in flight, restart losing nothing, checker files re-read every cycle.
//!
//! These tests run a real process in (fast) simulated time; they wait for its output, never
//! for a fixed duration.

mod common;
use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

const TWO_TO_THREE: &str =
    "CHECKHOURS0-23 CHECKMINUTES0-59 WEEKDAYS WEEKENDS MINNUM2 MAXNUM3 LOOKBACKSECONDS60";
const M: i64 = 60;
/// Upper bound for any wait on the child (never reached when things work).
const PATIENCE: Duration = Duration::from_secs(30);

/// Spawns `dwmon run` with piped stdout/stderr, forwarding their lines to channels.
fn spawn_run(
    ws: &Workspace,
    source: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (Child, Receiver<String>, Receiver<String>) {
    let (checkers, store) = (ws.checkers_arg(), ws.store());
    let mut command = dwmon();
    command
        .args([
            "run",
            "--checkers",
            &checkers,
            "--store",
            &store,
            "--source",
            source,
            "--json",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("dwmon run starts");
    let forward = |reader: Box<dyn std::io::Read + Send>| {
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(reader).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        rx
    };
    let out = forward(Box::new(child.stdout.take().expect("stdout")));
    let err = forward(Box::new(child.stderr.take().expect("stderr")));
    (child, out, err)
}

/// Reads lines until one satisfies `want`; returns all lines read.
fn read_until(rx: &Receiver<String>, want: impl Fn(&str) -> bool) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let line = rx
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|_| panic!("no matching line; got {lines:?}"));
        let done = want(&line);
        lines.push(line);
        if done {
            return lines;
        }
    }
}

fn terminate(child: &Child) {
    signal(child, "TERM");
}

fn wait(child: &mut Child) -> i32 {
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status
                .code()
                .unwrap_or_else(|| panic!("killed by a signal: {status:?}"));
        }
        assert!(started.elapsed() < PATIENCE, "dwmon run did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn parse(lines: &[String]) -> Vec<serde_json::Value> {
    lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn run_checks_every_simulated_minute_and_stops_after_cycles() {
    let ws = Workspace::new();
    ws.events_checker("events", TWO_TO_THREE);
    ws.insert(&[
        ("a", T0 - 30),
        ("b", T0 - 20),
        ("c", T0 + 10),
        ("d", T0 + 20),
        ("e", T0 + 70),
    ]);
    let source = ws.source_arg();
    let now = T0.to_string();
    let out = ws.cycle(
        "run",
        &source,
        &["--json", "--now", &now, "--speed", "600", "--cycles", "4"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let got = checks(&json_lines(&out));
    let summary: Vec<(i64, &str, u64)> = got
        .iter()
        .map(|c| ((c.1 - T0) / M, c.2.as_str(), c.3))
        .collect();
    // A cycle that falls behind on a busy machine catches up, so 4 cycles check at least 4
    // minutes.
    assert_eq!(
        summary[..4],
        [(0, "GOOD", 2), (1, "GOOD", 2), (2, "BAD", 1), (3, "BAD", 0)]
    );
}

/// The `--source` of the slow-fetch tests: the checker's `__QUERY__` is a script.
const SCRIPTED: &str = "default=command:csv";

/// A checker `events` whose rows come from a script (through [`SCRIPTED`]): it prints the
/// CSV file `rows.csv`; while the file `delay` holds a number of seconds, it first writes a
/// line to the FIFO `started` (blocking until the test reads it) and then sleeps that long.
fn slow_events_checker(ws: &Workspace, rows: &[(&str, i64)]) {
    let dir = ws.dir.path();
    let script = dir.join("slow.sh");
    std::fs::write(
        &script,
        "dir=$(dirname \"$0\")\n\
         if [ -e \"$dir/delay\" ]; then\n\
           echo started > \"$dir/started\"\n\
           sleep \"$(cat \"$dir/delay\")\"\n\
         fi\n\
         cat \"$dir/rows.csv\"\n",
    )
    .expect("script");
    write_rows(ws, rows);
    ws.write_checker(
        "events",
        &format!(
            "__QUERY__\nsh {}\n__REQUIREMENTS__\n{TWO_TO_THREE}\n",
            script.display()
        ),
    );
}

/// Sets the rows the script of [`slow_events_checker`] prints.
fn write_rows(ws: &Workspace, rows: &[(&str, i64)]) {
    let mut csv = String::from("dwmon_unique_key,dwmon_timestamp\n");
    for (key, ts) in rows {
        csv.push_str(&format!("{key},{ts}\n"));
    }
    std::fs::write(ws.dir.path().join("rows.csv"), csv).expect("rows");
}

/// `dwmon ARGS` with the scripted source on `ws`, to completion.
fn scripted(ws: &Workspace, subcommand: &str, rest: &[&str]) -> std::process::Output {
    let mut args = vec!["--allow-command-sources"];
    args.extend_from_slice(rest);
    ws.cycle(subcommand, SCRIPTED, &args)
}

/// `dwmon run` from `T0` on a checker with two events before it, each fetch taking
/// `delay_seconds` (a real slow source: a script that sleeps); returns once the first fetch
/// has started.
fn start_with_slow_fetches(
    delay_seconds: &str,
) -> (Workspace, Child, Receiver<String>, Receiver<String>) {
    let ws = Workspace::new();
    slow_events_checker(&ws, &[("a", T0 - 30), ("b", T0 - 20)]);
    let dir = ws.dir.path().to_path_buf();
    let fifo = dir.join("started");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    std::fs::write(dir.join("delay"), delay_seconds).expect("delay");
    let now = T0.to_string();
    let (child, out, err) = spawn_run(
        &ws,
        SCRIPTED,
        &["--now", &now, "--speed", "60", "--allow-command-sources"],
        &[],
    );
    // The script's first write to the FIFO completes when it is read: the fetch has started.
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let _ = tx.send(std::fs::read_to_string(fifo));
    });
    let started = rx.recv_timeout(PATIENCE).expect("the first fetch starts");
    assert_eq!(started.expect("read the FIFO").trim(), "started");
    // Later fetches are quick and leave the FIFO alone.
    std::fs::remove_file(dir.join("delay")).expect("no more delays");
    (ws, child, out, err)
}

#[test]
fn sigterm_mid_cycle_finishes_the_cycle_and_a_restart_loses_nothing() {
    // The first fetch takes 2 s: SIGTERM arrives while the first cycle is fetching.
    let (ws, mut child, out, err) = start_with_slow_fetches("2");
    terminate(&child);
    assert_eq!(wait(&mut child), 0, "a graceful stop exits 0");
    let first: Vec<String> = out.iter().collect(); // until the pipe closes
    let first = checks(&parse(&first));
    assert_eq!(
        first,
        vec![("events".into(), T0, "GOOD".into(), 2)],
        "the cycle in flight was finished"
    );
    let logs: Vec<String> = err.iter().collect();
    assert!(logs.iter().any(|l| l.contains("SIGTERM")), "{logs:?}");

    // Down for 5 minutes, then restarted: the missed minutes are caught up, none twice.
    write_rows(
        &ws,
        &[
            ("a", T0 - 30),
            ("b", T0 - 20),
            ("c", T0 + 70),
            ("d", T0 + 80),
            ("e", T0 + 250),
        ],
    );
    let store = ws.store();
    let restart = (T0 + 5 * M + 1).to_string();
    let out = scripted(
        &ws,
        "run",
        &[
            "--json", "--now", &restart, "--speed", "600", "--cycles", "2",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let second = checks(&json_lines(&out));
    let all: Vec<i64> = first
        .iter()
        .chain(&second)
        .map(|c| (c.1 - T0) / M)
        .collect();
    let last = all.last().copied().unwrap_or_default();
    assert!(last >= 6, "{all:?}");
    assert_eq!(
        all,
        (0..=last).collect::<Vec<_>>(),
        "every minute checked exactly once"
    );
    let counts: Vec<u64> = second.iter().map(|c| c.3).collect();
    assert_eq!(counts[..5], [0, 2, 0, 0, 1]);

    // Nothing left undelivered.
    let status = run(&["status", "--store", &store, "--json"]);
    let status = json_lines(&status);
    assert_eq!(status.len(), 1);
    assert_eq!(status[0]["pending_deliveries"], 0);
    assert_eq!(status[0]["last_minute"], T0 + last * M);
}

fn signal(child: &Child, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

#[test]
fn a_second_sigint_stops_at_once_and_a_restart_delivers_what_is_owed() {
    // A source that hangs for 25 s (past PATIENCE): the first Ctrl-C would wait for it.
    let (ws, mut child, out, err) = start_with_slow_fetches("25");
    signal(&child, "INT");
    // The first signal is announced without -v, saying how to stop at once.
    read_until(&err, |l| {
        l.contains("SIGINT received") && l.contains("again")
    });
    signal(&child, "INT");
    assert_eq!(wait(&mut child), 130, "a forced stop exits 130");
    assert!(out.iter().next().is_none(), "nothing was checked");

    // Nothing was recorded for the interrupted minute, so the next run checks it.
    let now = (T0 + 30).to_string();
    let out = scripted(&ws, "once", &["--now", &now, "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        checks(&json_lines(&out)),
        vec![("events".into(), T0, "GOOD".into(), 2)]
    );
}

#[test]
fn checker_files_are_reread_every_cycle() {
    let ws = Workspace::new();
    ws.events_checker("events", TWO_TO_THREE);
    ws.events_checker("other", TWO_TO_THREE);
    let now = T0.to_string();
    let (mut child, out, _err) = spawn_run(
        &ws,
        &ws.source_arg(),
        &["--now", &now, "--speed", "60"],
        &[],
    );

    // First cycle under the original files.
    let first = parse(&read_until(&out, |l| l.contains("\"other\"")));
    assert!(first.iter().all(|l| l["min"] == 2), "{first:?}");

    // Edit one file, break another, add a third: all take effect without a restart.
    ws.events_checker(
        "events",
        "CHECKHOURS0-23 CHECKMINUTES0-59 WEEKDAYS WEEKENDS MINNUM0 MAXNUM9 LOOKBACKSECONDS60",
    );
    ws.events_checker(
        "other",
        "CHECKHOURS0-23 CHECKMINUTES0-59 MINNUM2 MAXNUM3 LOOKBACKSECONDS60",
    );
    ws.events_checker("added", TWO_TO_THREE);
    // Lines of one cycle come in any order (checkers run concurrently): read until the cycle
    // that first saw `added` has reported `events` and `other` too.
    let mut later = Vec::new();
    let later_cycle = loop {
        let line = out
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|_| panic!("no complete cycle; got {later:?}"));
        later.push(serde_json::from_str::<serde_json::Value>(&line).expect("a JSON line"));
        let Some(minute) = later
            .iter()
            .find(|l| l["checker"] == "added")
            .map(|l| l["minute"].clone())
        else {
            continue;
        };
        let cycle: Vec<serde_json::Value> = later
            .iter()
            .filter(|l| l["minute"] == minute)
            .cloned()
            .collect();
        if ["events", "other"]
            .iter()
            .all(|name| cycle.iter().any(|l| l["checker"] == *name))
        {
            break cycle;
        }
    };
    terminate(&child);
    assert_eq!(wait(&mut child), 0);

    let events = later_cycle
        .iter()
        .find(|l| l["checker"] == "events")
        .expect("events checked");
    assert_eq!(
        (
            events["min"].as_u64(),
            events["max"].as_u64(),
            events["status"].as_str()
        ),
        (Some(0), Some(9), Some("GOOD"))
    );
    let other: Vec<&serde_json::Value> = later_cycle
        .iter()
        .filter(|l| l["checker"] == "other")
        .collect();
    assert_eq!(
        other.len(),
        1,
        "the invalid file's last good version is not used: {other:?}"
    );
    assert_eq!(other[0]["status"], "ERROR");
}

#[test]
fn run_operational_failures_exit_2() {
    let ws = Workspace::new();
    ws.events_checker("events", TWO_TO_THREE);
    let (checkers, store, source) = (ws.checkers_arg(), ws.store(), ws.source_arg());
    let missing = ws.path().join("nope").display().to_string();
    for args in [
        vec![
            "run",
            "--checkers",
            &missing,
            "--store",
            &store,
            "--source",
            &source,
        ],
        vec!["run", "--checkers", &checkers, "--store", &store],
        vec![
            "run",
            "--checkers",
            &checkers,
            "--store",
            &checkers,
            "--source",
            &source,
        ],
        vec![
            "run",
            "--checkers",
            &checkers,
            "--source",
            &source,
            "--now",
            "soon",
        ],
    ] {
        let out = run(&args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(stdout(&out).is_empty(), "{args:?}");
    }
}

#[test]
fn kill_9_at_a_random_point_then_restart_every_minute_reaches_the_handler() {
    let ws = Workspace::new();
    ws.events_checker("events", TWO_TO_THREE);
    ws.insert(&[("a", T0 - 30), ("b", T0 - 20), ("c", T0 + 200)]);
    // Ten simulated minutes a second: the kill lands wherever the runner happens to be.
    let now = T0.to_string();
    let (mut child, out, _err) = spawn_run(
        &ws,
        &ws.source_arg(),
        &["--now", &now, "--speed", "600"],
        &[],
    );
    let mut printed = parse(&read_until(&out, |l| {
        l.contains(&format!("{}", T0 + 3 * M))
    }));
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    // Everything it printed before dying (the pipe closes when it dies).
    printed.extend(parse(&out.iter().collect::<Vec<_>>()));

    // Restart: pending deliveries are delivered, missed minutes caught up.
    let out = ws.once(T0 + 9 * M, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    printed.extend(json_lines(&out));
    let mut minutes: Vec<i64> = checks(&printed).iter().map(|c| (c.1 - T0) / M).collect();
    minutes.sort_unstable();
    minutes.dedup(); // at least once: a check handled just before the kill may come again
    assert_eq!(minutes, (0..=9).collect::<Vec<_>>());

    let status = json_lines(&run(&["status", "--store", &ws.store(), "--json"]));
    assert_eq!(status[0]["pending_deliveries"], 0);
    assert_eq!(status[0]["last_minute"], T0 + 9 * M);
}

/// `run` says at start what it watches (checkers, skipped files, sources with passwords
/// masked, store, alerts, clock), and `--log-format json` makes every stderr line a JSON
/// object while stdout keeps the check lines.
#[test]
fn run_states_what_it_watches_in_text_or_json_logs() {
    let ws = Workspace::new();
    ws.events_checker("a", TWO_TO_THREE);
    ws.events_checker("b", TWO_TO_THREE);
    ws.write_checker("broken", "__REQUIREMENTS__\nMINNUM1\n");
    let now = T0.to_string();
    let (checkers, store, source) = (ws.checkers_arg(), ws.store(), ws.source_arg());
    let base = [
        "run",
        "--checkers",
        &checkers,
        "--store",
        &store,
        "--source",
        &source,
        "--source",
        "wh=postgres://dwmon:hunter2@127.0.0.1:1/db",
        "--now",
        &now,
        "--speed",
        "600",
        "--cycles",
        "1",
    ];
    let text = dwmon().args(base).output().expect("dwmon runs");
    assert_eq!(code(&text), 0, "{}", stderr(&text));
    let err = stderr(&text);
    let line = err
        .lines()
        .find(|l| l.contains("run: watching"))
        .unwrap_or_else(|| panic!("no start-up line in {err:?}"));
    assert!(
        line.contains("watching 2 checkers (1 invalid file skipped)"),
        "{line}"
    );
    assert!(line.contains(&format!("in {checkers}")), "{line}");
    assert!(line.contains(&format!("store: {store}")), "{line}");
    assert!(
        line.contains("wh=postgres://dwmon:***@127.0.0.1:1/db"),
        "{line}"
    );
    assert!(line.contains("alerts: off"), "{line}");
    assert!(
        line.contains("simulated from 2026-11-23T09:00:00+00:00 at 600x"),
        "{line}"
    );
    assert!(!err.contains("hunter2"), "{err}");
    assert!(
        !err.contains('\u{1b}'),
        "no ANSI escapes off a terminal: {err:?}"
    );

    // A fresh store, so the same minutes are checked again.
    let fresh = ws.path().join("second.sqlite").display().to_string();
    let mut json_args = base;
    json_args[4] = &fresh;
    let json = dwmon()
        .args(json_args)
        .args(["--log-format", "json"])
        .output()
        .expect("dwmon runs");
    assert_eq!(code(&json), 0, "{}", stderr(&json));
    let err = stderr(&json);
    let objects: Vec<serde_json::Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?} is not JSON: {e}")))
        .collect();
    let start = objects
        .iter()
        .find(|o| {
            o["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("run: watching"))
        })
        .unwrap_or_else(|| panic!("no start-up object in {err}"));
    assert_eq!(start["level"], "INFO");
    assert!(start["timestamp"].is_string(), "{start}");
    assert!(!err.contains("hunter2"), "{err}");
    // The check lines stay on stdout, as without the option.
    assert_eq!(stdout(&json).lines().count(), stdout(&text).lines().count());
    assert!(stdout(&json).contains("a#0"), "{}", stdout(&json));
}

/// Retention end to end: `--keep-checks` and a checker's own `__EXTRA__` retention purge the
/// check log at the checker's purge slot, and `status` shows how far back each history goes.
#[test]
fn retention_from_the_flag_and_from_extra_bounds_the_check_log() {
    let ws = Workspace::new();
    ws.events_checker("plain", TWO_TO_THREE);
    let own = format!(
        "__QUERY__\nSELECT key AS dwmon_unique_key, ts AS dwmon_timestamp FROM events\n\
         __REQUIREMENTS__\n{TWO_TO_THREE}\n__EXTRA__\n{{\"retention\": {{\"checks\": \"forever\"}}}}\n"
    );
    ws.write_checker("own", &own);
    let (checkers, store) = (ws.checkers_arg(), ws.store());
    // `once` minute by minute (a fast simulated clock could skip a purge slot on a busy
    // machine): at T0, then after 100 minutes (the gap is recorded as MISSED), then an hour
    // more, which holds each checker's purge slot once.
    for minute in std::iter::once(0).chain(100..=160) {
        let out = ws.once(T0 + minute * M, &["--keep-checks", "1h"]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }
    let status = run(&["status", "--json", "--store", &store]);
    let lines = json_lines(&status);
    let of = |name: &str| {
        lines
            .iter()
            .find(|l| l["checker"] == name)
            .unwrap_or_else(|| panic!("no {name} in {lines:?}"))
            .clone()
    };
    let (plain, own) = (of("plain"), of("own"));
    assert_eq!(plain["last_minute"].as_i64(), Some(T0 + 160 * M), "{plain}");
    // Purged at its slot (minute 100 to 159 of the run) to the hour before it.
    let oldest = plain["oldest_check"].as_i64().expect("oldest");
    assert!(oldest >= T0 + 40 * M, "{plain}");
    // The checker keeping its checks forever still has its first minute.
    assert_eq!(own["oldest_check"].as_i64(), Some(T0), "{own}");
    assert!(own["oldest_check_local"].is_string(), "{own}");

    // A malformed retention is an error of the file, at its line.
    ws.write_checker(
        "bad",
        &format!(
            "__QUERY__\nSELECT 1\n__REQUIREMENTS__\n{TWO_TO_THREE}\n__EXTRA__\n\
             {{\"retention\": {{\"rows\": \"35x\"}}}}\n"
        ),
    );
    let check = run(&["check", "--checkers", &checkers]);
    assert_eq!(code(&check), 1);
    assert!(
        stdout(&check).contains("bad.dwmon:6:2: \"retention\".\"rows\": \"35x\": unknown unit"),
        "{}",
        stdout(&check)
    );
    let bad_flag = ws.once(T0 + 161 * M, &["--keep-rows", "0d"]);
    assert_eq!(code(&bad_flag), 2, "{}", stderr(&bad_flag));
    assert!(
        stderr(&bad_flag).contains("positive duration"),
        "{}",
        stderr(&bad_flag)
    );
}

/// A `command:` source's URL holds only its format and options; the command line, which may
/// carry secrets (`PGPASSWORD=...`, `--password=...`, `user:pass@` URLs), lives in the
/// checker's `__QUERY__` and never reaches the start line or any other log line, whether the
/// command works or fails.
#[test]
fn run_never_logs_a_command_sources_command_line() {
    let ws = Workspace::new();
    let secrets = "PGPASSWORD=hunter2 --password=hunter2 postgres://u:hunter2@db/x";
    ws.write_checker(
        "works",
        &format!(
            "__QUERY__\nsh -c 'printf \"dwmon_unique_key,dwmon_timestamp\\n\"' {secrets}\n\
             __REQUIREMENTS__\n{TWO_TO_THREE}\n"
        ),
    );
    ws.write_checker(
        "fails",
        &format!("__QUERY__\nsh -c 'exit 3' {secrets}\n__REQUIREMENTS__\n{TWO_TO_THREE}\n"),
    );
    // Shell habit: an assignment before the program. No shell runs, so the first word is
    // taken as the program, which is not found.
    ws.write_checker(
        "habit",
        &format!(
            "__QUERY__\nPGPASSWORD=hunter2 psql {secrets}\n__REQUIREMENTS__\n{TWO_TO_THREE}\n"
        ),
    );
    let now = T0.to_string();
    let out = ws.cycle(
        "run",
        "default=command:csv?timeout=5",
        &[
            "--allow-command-sources",
            "--now",
            &now,
            "--speed",
            "600",
            "--cycles",
            "1",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    let start = err
        .lines()
        .find(|l| l.contains("run: watching"))
        .unwrap_or_else(|| panic!("no start-up line in {err:?}"));
    assert!(
        start.contains("sources: default=command:csv?timeout=5;"),
        "{start}"
    );
    assert!(err.contains("fails"), "the failing fetch is logged: {err}");
    assert!(!err.contains("hunter2"), "{err}");
    assert!(!stdout(&out).contains("hunter2"), "{}", stdout(&out));
    let status = run(&["status", "--store", &ws.store(), "--json"]);
    assert!(!stdout(&status).contains("hunter2"), "{}", stdout(&status));
}
