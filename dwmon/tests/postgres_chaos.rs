//! Chaos on a shared PostgreSQL store: 4 `dwmon run` processes over simulated minutes on one
//! schema, random `kill -9` of runners (restarted at once or after a while), random
//! `pg_terminate_backend` of their connections and restarts of the PostgreSQL server itself
//! (`pg_ctl stop -m fast` or `-m immediate`, a crash, then start), seeded and reproducible.
//! The server is a throwaway cluster the test starts ([`pg::cluster`]), never the machine's
//! shared one; the test needs the server binaries (`initdb`, `pg_ctl`), not
//! `DWMON_TEST_POSTGRES_URL`. The runners ride through the restarts: nobody restarts them
//! for it, their pools reconnect and the minutes they could not record are caught up.
//!
//! Afterwards: no minute missing and none twice between the first and the last recorded
//! minute of each checker, every count equal to an independent model of the rows, every
//! recorded check delivered (on some runner's stdout) at least once, always in its recorded
//! version, an empty outbox, and every runner that was not killed still running (only a
//! process that was still connecting when the server stopped may exit, with an error, as at
//! any start without its store; the test starts it again as a supervisor would).
//!
//! Size: `DWMON_CHAOS=large` runs 240 simulated minutes with 200 kills and 8 server restarts
//! (default: 40 minutes, 12 kills, 2 restarts: one fast, one immediate);
//! `DWMON_CHAOS_SEED=N` picks another seed (default 1).

mod common;
use common::*;

mod pg;
use pg::cluster::{Cluster, Stop};
use pg::{execute, query, Schema};

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// xorshift64*: a seeded generator, so a failing run is reproduced with its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const RUNNERS: usize = 4;
const CHECKERS: usize = 4;
/// Simulated seconds per real second.
const SPEED: i64 = 120;
const LOOKBACK: i64 = 600;

/// The last lines of `log`, for a failure message.
fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Everything the runners printed, one JSON line each.
type Printed = Arc<Mutex<Vec<String>>>;

/// One runner name and its current `dwmon run` process.
struct Runner {
    child: Option<Child>,
    name: String,
    /// Processes started under this name so far.
    spawns: u32,
    /// The current process's stderr.
    log: PathBuf,
    /// Server stops before the current process started.
    stops_before: usize,
}

impl Runner {
    fn new(name: String) -> Self {
        Runner {
            child: None,
            name,
            spawns: 0,
            log: PathBuf::new(),
            stops_before: 0,
        }
    }

    /// Starts a `dwmon run` process with `args`, its stdout lines going to `printed` and its
    /// stderr to a log of its own in `dir`.
    fn spawn(&mut self, args: &[String], printed: &Printed, dir: &Path, stops: usize) {
        self.spawns += 1;
        self.log = dir.join(format!("{}-{}.log", self.name, self.spawns));
        self.stops_before = stops;
        let mut child = dwmon()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(File::create(&self.log).expect("runner log"))
            .spawn()
            .expect("spawn dwmon run");
        let stdout = child.stdout.take().expect("stdout");
        let printed = Arc::clone(printed);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                printed.lock().unwrap().push(line);
            }
        });
        self.child = Some(child);
    }

    /// `kill -9`, if running.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
        }
    }

    /// Whether the current process exited by itself, which only the restart of a server it was
    /// still connecting to excuses: a runner that has run a cycle rides through anything the
    /// store does (its failures are a cycle's errors), and it never panics. `stops` is the
    /// number of server stops so far.
    ///
    /// # Panics
    /// When it exited otherwise.
    fn exited_while_starting(&mut self, stops: usize, context: &str) -> bool {
        let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) else {
            return false;
        };
        self.child = None;
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let ran_a_cycle = log
            .lines()
            .any(|l| l.contains(" checkers, ") && l.contains(" delivered, "));
        let tail = tail(&log);
        assert!(
            status.code().is_some_and(|c| c != 101) && !ran_a_cycle && stops > self.stops_before,
            "runner {} exited by itself ({status}; {context}):\n{tail}",
            self.name
        );
        true
    }
}

/// A failing test leaves no runner behind.
impl Drop for Runner {
    fn drop(&mut self) {
        self.kill();
    }
}

#[test]
fn four_runners_killed_at_random_record_every_minute_once_and_lose_nothing() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let server = cluster.url();
    let large = std::env::var("DWMON_CHAOS").is_ok_and(|v| v == "large");
    let (minutes, kills, restarts) = if large {
        (240_i64, 200_u64, 8_usize)
    } else {
        (40, 12, 2)
    };
    let seed: u64 = std::env::var("DWMON_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let schema = Schema::new(&server, "chaos");
    let app = format!("chaos_{}", std::process::id());
    let store = format!("{}&application_name={app}", schema.url(None));

    // The kills after which the server restarts (never the first: every runner is up).
    let mut restart_at = BTreeSet::new();
    while restart_at.len() < restarts {
        restart_at.insert(1 + rng.below(kills - 1));
    }
    // Simulated time starts far enough in the past that every minute is before the
    // database's clock (the store refuses records ahead of it), with room for the restarts'
    // seconds (simulated time runs on through them).
    let database_now: i64 = query(&server, "SELECT floor(extract(epoch FROM now()))::bigint")[0][0]
        .as_deref()
        .and_then(|t| t.parse().ok())
        .expect("database time");
    let start = (database_now / 60 - minutes - 30 - 10 * i64::try_from(restarts).unwrap()) * 60;

    let ws = Workspace::new();
    let mut rows: Vec<(String, i64)> = Vec::new();
    for i in 0..(minutes * 4) {
        let ts = start - LOOKBACK
            + i64::try_from(rng.below(u64::try_from((minutes + 10) * 60 + LOOKBACK).unwrap()))
                .unwrap();
        rows.push((format!("k{i}"), ts));
    }
    let pairs: Vec<(&str, i64)> = rows.iter().map(|(k, t)| (k.as_str(), *t)).collect();
    ws.insert(&pairs);
    for c in 0..CHECKERS {
        ws.events_checker(
            &format!("c{c}"),
            &format!("CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM1 MAXNUM1000 LOOKBACKSECONDS{LOOKBACK}"),
        );
    }
    let (checkers, source) = (ws.checkers_arg(), ws.source_arg());
    let origin = Instant::now();
    let sim_now = || start + i64::try_from(origin.elapsed().as_secs()).unwrap_or(0) * SPEED;
    let args = |name: &str, now: i64| -> Vec<String> {
        [
            "run",
            "--checkers",
            &checkers,
            "--store",
            &store,
            "--source",
            &source,
            "--json",
            // A heartbeat line on stderr each cycle: whether a process got past its start.
            "-v",
            "--store-lease",
            "3s",
            "--fetch-timeout",
            "1s",
            "--runner",
            name,
            "--now",
            &now.to_string(),
            "--speed",
            &SPEED.to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let printed: Printed = Arc::new(Mutex::new(Vec::new()));
    let mut runners: Vec<Runner> = (0..RUNNERS).map(|i| Runner::new(format!("r{i}"))).collect();
    for runner in &mut runners {
        runner.spawn(&args(&runner.name, sim_now()), &printed, ws.dir.path(), 0);
    }
    let real = Duration::from_secs(u64::try_from(minutes * 60 / SPEED).unwrap());
    let pause = real / u32::try_from(kills + 1).unwrap();
    let mut terminations = 0;
    // How each server restart stopped it, how long it stayed down, how long it all took and
    // how long after it every runner had claimed again.
    let mut restarted: Vec<(Stop, Duration, Duration, Duration)> = Vec::new();
    // Runner processes that exited by themselves because the server went away while they
    // were connecting, started again as a supervisor would.
    let mut startup_failures = 0;
    for step in 0..kills {
        // Real time passing is what the runners' simulated minutes are made of.
        std::thread::sleep(pause);
        let context = format!("seed {seed}, kill {step}, restarts {restarted:?}");
        for runner in &mut runners {
            if runner.exited_while_starting(restarted.len(), &context) {
                startup_failures += 1;
            }
        }
        runners[usize::try_from(rng.below(RUNNERS as u64)).unwrap()].kill();
        if rng.below(4) == 0 {
            // A connection of some runner dies under it.
            execute(
                &server,
                &format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE application_name = '{app}' AND pid <> pg_backend_pid()"
                ),
            );
            terminations += 1;
        }
        if restart_at.contains(&step) {
            // The server goes away under every runner's pool, stays away for a while (at
            // times longer than the lease) and comes back on its port.
            let stop = match (restarts, restarted.first()) {
                // The default size has one of each.
                (2, Some((Stop::Fast, ..))) => Stop::Immediate,
                (2, Some(_)) => Stop::Fast,
                _ if rng.below(2) == 0 => Stop::Fast,
                _ => Stop::Immediate,
            };
            let down = Duration::from_millis(rng.below(4000));
            let begun = Instant::now();
            cluster.stop(stop);
            std::thread::sleep(down);
            cluster.start_again();
            let took = begun.elapsed();
            let back = query(&server, "SELECT now()::text")[0][0].clone().unwrap();
            restarted.push((stop, down, took, Duration::ZERO));
            // Every runner that was running through it claims its checkers again (its
            // heartbeat in the same transaction): none is left behind with a broken pool.
            let back_at = Instant::now();
            let mut waiting: BTreeSet<String> = runners
                .iter()
                .filter(|r| r.child.is_some())
                .map(|r| r.name.clone())
                .collect();
            loop {
                let context = format!("seed {seed}, kill {step}, restarts {restarted:?}");
                for runner in &mut runners {
                    if waiting.contains(&runner.name)
                        && runner.exited_while_starting(restarted.len(), &context)
                    {
                        startup_failures += 1;
                        waiting.remove(&runner.name);
                    }
                }
                let claimed = query(
                    &schema.url(None),
                    &format!("SELECT owner FROM dwmon_runners WHERE seen > '{back}'::timestamptz"),
                );
                waiting.retain(|name| !claimed.iter().any(|r| r[0].as_ref() == Some(name)));
                let Some(late) = waiting.first() else { break };
                let late = runners.iter().find(|r| &r.name == late).unwrap();
                assert!(
                    back_at.elapsed() < Duration::from_secs(30),
                    "runner {} has not claimed since the server came back 30 s ago ({context}):\n{}",
                    late.name,
                    tail(&std::fs::read_to_string(&late.log).unwrap_or_default())
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            restarted.last_mut().unwrap().3 = back_at.elapsed();
        }
        // Most come back at once (the same runner name takes its claims back); the others
        // stay away until the next kill, and their checkers wait for the lease to end.
        for runner in runners.iter_mut().filter(|r| r.child.is_none()) {
            if rng.below(3) != 0 {
                let args = args(&runner.name, sim_now());
                runner.spawn(&args, &printed, ws.dir.path(), restarted.len());
            }
        }
    }
    std::thread::sleep(pause);
    let context = format!("seed {seed}, the end, restarts {restarted:?}");
    for runner in &mut runners {
        if runner.exited_while_starting(restarted.len(), &context) {
            startup_failures += 1;
        }
        runner.kill();
    }
    // Each runner once more at the time reached: what is left in its outbox leases goes out.
    let end = sim_now();
    for runner in &runners {
        let out = run(&[
            "once",
            "--checkers",
            &checkers,
            "--store",
            &store,
            "--source",
            &source,
            "--json",
            "--runner",
            &runner.name,
            "--now",
            &end.to_string(),
        ]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        printed
            .lock()
            .unwrap()
            .extend(stdout(&out).lines().map(str::to_string));
    }

    let log = query(
        &schema.url(None),
        "SELECT c.name, k.minute, k.count, k.status FROM dwmon_checks k
         JOIN dwmon_checkers c ON c.id = k.checker_id ORDER BY c.name, k.minute",
    );
    let pending = query(&schema.url(None), "SELECT count(*) FROM dwmon_outbox");
    let mut by_checker: BTreeMap<String, Vec<(i64, u64, String)>> = BTreeMap::new();
    for row in &log {
        let field = |i: usize| row[i].clone().unwrap_or_default();
        by_checker.entry(field(0)).or_default().push((
            field(1).parse().unwrap(),
            field(2).parse().unwrap(),
            field(3),
        ));
    }
    let mut delivered: BTreeMap<(String, i64), BTreeSet<u64>> = BTreeMap::new();
    for line in printed.lock().unwrap().iter() {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let (Some(checker), Some(minute), Some(count)) = (
            value["checker"].as_str(),
            value["minute"].as_i64(),
            value["count"].as_u64(),
        ) else {
            continue;
        };
        if value["status"] == "ERROR" {
            continue;
        }
        delivered
            .entry((checker.to_string(), minute))
            .or_default()
            .insert(count);
    }
    let model = |minute: i64| -> u64 {
        rows.iter()
            .filter(|(_, ts)| *ts >= minute - LOOKBACK && *ts < minute)
            .count() as u64
    };
    let context = format!(
        "seed {seed}, {kills} kills, {terminations} connection terminations, server restarts \
         (stop, down, in all, all runners claimed again after) {restarted:?}, {startup_failures} runners that exited while \
         connecting"
    );
    eprintln!("chaos: {context}");
    assert_eq!(
        by_checker.len(),
        CHECKERS,
        "every checker was checked ({context})"
    );
    for (checker, records) in &by_checker {
        let first = records[0].0;
        let last = records[records.len() - 1].0;
        let want: Vec<i64> = (0..=(last - first) / 60).map(|i| first + i * 60).collect();
        let got: Vec<i64> = records.iter().map(|r| r.0).collect();
        assert_eq!(
            got, want,
            "{checker}: every minute once, none missing ({context})"
        );
        assert!(
            last >= end - 3 * 60 && first <= start + 3 * 60,
            "{checker}: checked from {first} to {last}, the run went from {start} to {end} ({context})"
        );
        for (minute, count, status) in records {
            assert_ne!(
                status, "MISSED",
                "{checker} {minute}: no minute left the horizon"
            );
            assert_eq!(
                *count,
                model(*minute),
                "{checker} {minute}: the count ({context})"
            );
            let copies = delivered.get(&(checker.clone(), *minute));
            assert_eq!(
                copies,
                Some(&BTreeSet::from([*count])),
                "{checker} {minute}: delivered, always as recorded ({context})"
            );
        }
    }
    assert_eq!(
        pending[0][0].as_deref(),
        Some("0"),
        "the outbox is empty ({context})"
    );
}
