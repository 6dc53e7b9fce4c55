//! `kill -9` of `dwmon serve` under ping load: every ping that got a 200 is in the store
//! afterwards (0 lost).
//!
//! Each round starts `dwmon serve` on the same store file, drives it with 8 keep-alive
//! clients on loopback (every ping has its own `key=`), SIGKILLs it at a seeded random instant
//! while pings are in flight, and keeps the keys that were answered 200. At the end every
//! such key must be a row of the store. Rounds: `DWMON_TEST_PING_KILLS` (default 5; the issue
//! asks for 50 or more once: `DWMON_TEST_PING_KILLS=50 cargo test -p dwmon --test
//! push_crash`); the seed: `DWMON_TEST_PING_KILL_SEED`.

#![cfg(unix)]

mod common;

use common::*;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// SplitMix64: seeded and reproducible.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The keys of `checker`'s stored rows, read straight from the file.
fn stored_keys(store: &str, checker: &str) -> HashSet<String> {
    let connection = rusqlite::Connection::open(store).expect("store opens");
    let mut statement = connection
        .prepare(
            "SELECT rows.key FROM rows JOIN checkers ON checkers.id = rows.checker_id \
             WHERE checkers.name = ?1",
        )
        .expect("query");
    let keys = statement
        .query_map([checker], |row| row.get::<_, String>(0))
        .expect("rows")
        .collect::<Result<HashSet<_>, _>>()
        .expect("keys");
    keys
}

#[test]
fn every_ping_answered_200_survives_kill_9_of_serve() {
    let kills = env_number("DWMON_TEST_PING_KILLS", 5);
    let seed = env_number("DWMON_TEST_PING_KILL_SEED", 0x9E57_0C4A);
    eprintln!("{kills} kills, seed {seed} (DWMON_TEST_PING_KILL_SEED replays)");
    let mut rng = Rng(seed);
    let ws = Workspace::new();
    ws.write_checker(
        "job",
        "__SOURCE__\npush\n__REQUIREMENTS__\n\
         CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM0 MAXNUM100000000 LOOKBACKSECONDS60\n",
    );
    let store = ws.store();
    let ping = token(&store, "ping:job");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut unanswered = 0u64;
    for round in 0..kills {
        let mut served = ws.serve(&["--ping-rate", "1000000", "--ping-burst", "1000000"]);
        let url = served.url(&format!("/ping/{ping}"));
        let stop = Arc::new(AtomicBool::new(false));
        let before = acked.lock().expect("lock").len();
        // Killed between 50 and 450 ms into the load.
        let delay = Duration::from_millis(50 + rng.below(400));
        let failed = runtime.block_on(async {
            let mut clients = Vec::new();
            for client in 0..8 {
                let (url, stop, acked) = (url.clone(), Arc::clone(&stop), Arc::clone(&acked));
                clients.push(tokio::spawn(async move {
                    let http = reqwest::Client::new();
                    let mut failed = 0u64;
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let key = format!("r{round}-c{client}-{i}");
                        i += 1;
                        match http.get(format!("{url}?key={key}")).send().await {
                            Ok(answer) if answer.status() == 200 => {
                                acked.lock().expect("lock").push(key);
                            }
                            // A 503 (the store was slow): not acknowledged, may be stored.
                            Ok(_) | Err(_) => failed += 1,
                        }
                    }
                    failed
                }));
            }
            tokio::time::sleep(delay).await;
            // SIGKILL, pings in flight.
            served.child.kill().expect("kill -9");
            served.child.wait().expect("reaped");
            // Clients fail fast against the dead port.
            tokio::time::sleep(Duration::from_millis(50)).await;
            stop.store(true, Ordering::Relaxed);
            let mut failed = 0;
            for client in clients {
                failed += client.await.expect("client");
            }
            failed
        });
        unanswered += failed;
        let now = acked.lock().expect("lock").len();
        assert!(
            now > before,
            "round {round}: no ping was answered 200 before the kill"
        );
    }
    let acked = acked.lock().expect("lock").clone();
    let stored = stored_keys(&store, "job");
    let lost: Vec<&String> = acked.iter().filter(|k| !stored.contains(*k)).collect();
    eprintln!(
        "{kills} kills: {} pings answered 200, {} stored, {} unanswered (killed in flight or \
         refused), {} lost",
        acked.len(),
        stored.len(),
        unanswered,
        lost.len()
    );
    assert!(
        lost.is_empty(),
        "{} acknowledged pings are not in the store, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
}
