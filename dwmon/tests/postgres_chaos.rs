//! Chaos on a shared PostgreSQL store: 4 `dwmon run` processes over simulated minutes on one
//! schema, random `kill -9` of runners (restarted at once or after a while) and random
//! `pg_terminate_backend` of their connections, seeded and reproducible. Afterwards: no minute
//! missing and none twice between the first and the last recorded minute of each checker,
//! every count equal to an independent model of the rows, every recorded check delivered (on
//! some runner's stdout) at least once, always in its recorded version, and an empty outbox.
//!
//! Size: `DWMON_CHAOS=large` runs 240 simulated minutes with 200 kills (default: 40 minutes,
//! 12 kills); `DWMON_CHAOS_SEED=N` picks another seed (default 1). The PostgreSQL server's own
//! restart is not exercised here: the machine's server is shared.

mod common;
use common::*;

mod pg;
use pg::{execute, query, server, Schema};

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
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

struct Runner {
    child: Option<Child>,
    name: String,
}

/// Everything the runners printed, one JSON line each.
type Printed = Arc<Mutex<Vec<String>>>;

fn spawn(args: &[String], printed: &Printed) -> Child {
    let mut child = dwmon()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn dwmon run");
    let stdout = child.stdout.take().expect("stdout");
    let printed = Arc::clone(printed);
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            printed.lock().unwrap().push(line);
        }
    });
    child
}

#[test]
fn four_runners_killed_at_random_record_every_minute_once_and_lose_nothing() {
    let Some(server) = server() else { return };
    let large = std::env::var("DWMON_CHAOS").is_ok_and(|v| v == "large");
    let (minutes, kills) = if large { (240_i64, 200_u64) } else { (40, 12) };
    let seed: u64 = std::env::var("DWMON_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let schema = Schema::new(&server, "chaos");
    let app = format!("chaos_{}", std::process::id());
    let store = format!("{}&application_name={app}", schema.url(None));

    // Simulated time starts far enough in the past that every minute is before the
    // database's clock (the store refuses records ahead of it).
    let database_now: i64 = query(&server, "SELECT floor(extract(epoch FROM now()))::bigint")[0][0]
        .as_deref()
        .and_then(|t| t.parse().ok())
        .expect("database time");
    let start = (database_now / 60 - minutes - 30) * 60;

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
    let mut runners: Vec<Runner> = (0..RUNNERS)
        .map(|i| {
            let name = format!("r{i}");
            let child = spawn(&args(&name, sim_now()), &printed);
            Runner {
                child: Some(child),
                name,
            }
        })
        .collect();
    let real = Duration::from_secs(u64::try_from(minutes * 60 / SPEED).unwrap());
    let pause = real / u32::try_from(kills + 1).unwrap();
    let mut terminations = 0;
    for _ in 0..kills {
        // Real time passing is what the runners' simulated minutes are made of.
        std::thread::sleep(pause);
        let victim = &mut runners[usize::try_from(rng.below(RUNNERS as u64)).unwrap()];
        if let Some(mut child) = victim.child.take() {
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
        }
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
        // Most come back at once (the same runner name takes its claims back); the others
        // stay away until the next kill, and their checkers wait for the lease to end.
        for runner in runners.iter_mut().filter(|r| r.child.is_none()) {
            if rng.below(3) != 0 {
                runner.child = Some(spawn(&args(&runner.name, sim_now()), &printed));
            }
        }
    }
    std::thread::sleep(pause);
    for runner in &mut runners {
        if let Some(mut child) = runner.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
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
    let context = format!("seed {seed}, {kills} kills, {terminations} connection terminations");
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
