//! A runner dies (README "Several runners on one PostgreSQL database"): two runner processes
//! (A and B) on one PostgreSQL schema, each running cycles on the database's clock like
//! `dwmon run` (one right away, then one shortly after each minute boundary); once they have
//! run a cycle (and share the checkers, if they do), the one that is fetching is killed with
//! SIGKILL in the middle of its cycle. Measured: the time from the kill until the other has
//! claimed all of the dead runner's checkers and until it has recorded every minute the dead
//! one missed; then every checker's log is checked for a gap or a duplicate minute.
//!
//! ```text
//! cargo build --release -p dwmon-benches --bin takeover
//! target/release/takeover --store postgres://postgres@127.0.0.1:5432/test --lease 20
//! target/release/takeover --store postgres://postgres@127.0.0.1:5432/test   # the default lease, 120 s
//! ```
//!
//! A dead runner's checkers are free once its claims ran out and it no longer counts among
//! the live runners (its heartbeat older than a lease); the next cycle of a live runner then
//! claims them and checks the missed minutes. So the takeover takes about the lease plus the
//! time to that cycle (at most a minute). Options: `--checkers 20`, `--latency-ms 500` (each
//! fetch's wait, so the kill lands while the runner fetches). The schema (`dwmon_bench_takeover_<pid>`)
//! is dropped at the end. `--role runner` is the child process (not for direct use).

use dwmon_benches::SyntheticSource;
use dwmon_benches::{admin_client, admin_sql, arg, checkers, with_param, CountingHandler, Delayed};
use dwmon_core::engine::{Clock, EngineConfig};
use dwmon_core::{Engine, FetchRequest, Fetched, RowGetter, SourceError, Store};
use dwmon_postgres_store::{DatabaseClock, PostgresStore, PostgresStoreOptions};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if arg("--role", String::new()) == "runner" {
        return runner().await;
    }
    let url: String = arg(
        "--store",
        "postgres://postgres@127.0.0.1:5432/test".to_string(),
    );
    let lease: u64 = arg("--lease", 120);
    let count: usize = arg("--checkers", 20);
    let latency: u64 = arg("--latency-ms", 500);
    let schema = format!("dwmon_bench_takeover_{}", std::process::id());
    admin_sql(&url, &format!("CREATE SCHEMA {schema}")).await?;
    let schema_url = with_param(&url, "options", &format!("-csearch_path%3D{schema}"));
    // Create the tables before the runners start.
    PostgresStore::connect(&schema_url).await?;
    let admin = admin_client(&schema_url).await?;
    println!(
        "takeover: 2 runner processes, {count} checkers, lease {lease} s, {latency} ms per \
         fetch, schema {schema}"
    );
    let exe = std::env::current_exe()?;
    let spawn = |owner: &str| {
        tokio::process::Command::new(&exe)
            .args(["--role", "runner", "--owner", owner, "--store", &schema_url])
            .args([
                "--lease",
                &lease.to_string(),
                "--checkers",
                &count.to_string(),
            ])
            .args(["--latency-ms", &latency.to_string()])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
    };
    let mut children = vec![("A", spawn("A")?), ("B", spawn("B")?)];
    let started = Instant::now();
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    for (owner, child) in &mut children {
        let mut out = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
        let (owner, tx) = (owner.to_string(), lines_tx.clone());
        tokio::spawn(async move {
            while let Ok(Some(line)) = out.next_line().await {
                let _ = tx.send((owner.clone(), line));
            }
        });
    }
    // Kill a runner at its first fetch of a cycle once both runners hold checkers (they
    // share them from their second or third cycle on). With a lease shorter than a minute
    // they never see each other alive (the first to claim takes every checker): then at
    // the second cycle.
    let mut cycles: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let (victim, shared) = loop {
        let Some((owner, line)) = lines.recv().await else {
            return Err("the runners ended".into());
        };
        let Some(cycle) = line.strip_prefix("fetch ") else {
            continue;
        };
        let seen = cycles.entry(owner.clone()).or_default();
        if !seen.insert(cycle.to_string()) {
            continue;
        }
        let owners: i64 = admin
            .query_one(
                "SELECT count(DISTINCT owner) FROM dwmon_claims WHERE until > now()",
                &[],
            )
            .await?
            .get(0);
        if seen.len() >= 2 && (owners == 2 || lease < 60) || seen.len() >= 4 {
            break (owner, owners == 2);
        }
    };
    let survivor = if victim == "A" { "B" } else { "A" };
    for (owner, child) in &mut children {
        if *owner == victim {
            child.start_kill()?;
            child.wait().await?;
        }
    }
    let killed_at = database_seconds(&admin).await?;
    let waited = started.elapsed().as_secs_f64();
    let held: Vec<String> = admin
        .query(
            "SELECT checker FROM dwmon_claims WHERE owner = $1 ORDER BY checker",
            &[&victim],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let at_kill = last_minutes(&admin).await?;
    println!(
        "runner {victim} killed (SIGKILL) while fetching, {waited:.0} s after the start, \
         holding {} of {count} checkers ({})",
        held.len(),
        if shared {
            "the runners shared them"
        } else {
            "the other held none: the runners did not see each other alive"
        }
    );
    // Poll until the survivor holds the victim's checkers, then until it has caught up with
    // them.
    let (mut claimed_after, mut caught_up_after, mut missed) = (None, None, 0);
    let killed_minute = (killed_at / 60.0).floor() as i64 * 60;
    let deadline = Instant::now() + Duration::from_secs(lease + 240);
    while caught_up_after.is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = database_seconds(&admin).await?;
        let owned_by_b: i64 = admin
            .query_one(
                "SELECT count(*) FROM dwmon_claims WHERE checker = ANY($1) AND owner = $2",
                &[&held, &survivor],
            )
            .await?
            .get(0);
        if claimed_after.is_none() && owned_by_b == held.len() as i64 {
            claimed_after = Some(now - killed_at);
        }
        // The minute the victim was checking when it died, and every one since.
        let last = last_minutes(&admin).await?;
        let behind = held
            .iter()
            .filter(|c| last.get(*c).copied().unwrap_or(0) < killed_minute)
            .count();
        if claimed_after.is_some() && behind == 0 {
            caught_up_after = Some(now - killed_at);
            missed = held
                .iter()
                .map(|c| {
                    let after = at_kill.get(c).copied().unwrap_or(killed_minute - 60);
                    (last.get(c).copied().unwrap_or(0) - after) / 60
                })
                .sum();
        }
    }
    for (_, child) in &mut children {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
    // Every checker's log: one record per minute from its first to its last, none twice.
    let logs = admin
        .query(
            "SELECT c.name, k.minute, count(*) FROM dwmon_checks k
             JOIN dwmon_checkers c ON c.id = k.checker_id
             GROUP BY c.name, k.minute ORDER BY c.name, k.minute",
            &[],
        )
        .await?;
    let mut by_checker: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    for row in &logs {
        by_checker
            .entry(row.get(0))
            .or_default()
            .push((row.get(1), row.get(2)));
    }
    let duplicates: usize = by_checker
        .values()
        .map(|log| log.iter().filter(|(_, n)| *n > 1).count())
        .sum();
    let mut gaps = BTreeSet::new();
    for (name, log) in &by_checker {
        for pair in log.windows(2) {
            if pair[1].0 - pair[0].0 != 60 {
                gaps.insert(format!("{name}: {} -> {}", pair[0].0, pair[1].0));
            }
        }
    }
    drop(admin);
    admin_sql(&url, &format!("DROP SCHEMA {schema} CASCADE")).await?;
    let show = |t: Option<f64>| {
        t.map_or("not within the deadline".to_string(), |s| {
            format!("{s:.1} s")
        })
    };
    println!(
        "{survivor} claimed all of {victim}'s checkers {} after the kill; recorded every \
         minute {victim} missed {} after it (bound: lease + 60 s = {} s)",
        show(claimed_after),
        show(caught_up_after),
        lease + 60
    );
    println!(
        "minutes {victim} missed, checked by {survivor}: {missed} over {} checkers; {} \
         checkers' logs: {} gaps, {duplicates} duplicate minutes{}",
        held.len(),
        by_checker.len(),
        gaps.len(),
        if gaps.is_empty() {
            String::new()
        } else {
            format!(" ({gaps:?})")
        }
    );
    if caught_up_after.is_none() || !gaps.is_empty() || duplicates > 0 || by_checker.len() < count {
        return Err("the takeover failed".into());
    }
    Ok(())
}

/// The database's clock, epoch seconds.
async fn database_seconds(admin: &tokio_postgres::Client) -> Result<f64, tokio_postgres::Error> {
    Ok(admin
        .query_one("SELECT extract(epoch FROM clock_timestamp())::float8", &[])
        .await?
        .get(0))
}

async fn last_minutes(
    admin: &tokio_postgres::Client,
) -> Result<BTreeMap<String, i64>, tokio_postgres::Error> {
    Ok(admin
        .query(
            "SELECT name, last_minute FROM dwmon_checkers WHERE last_minute IS NOT NULL",
            &[],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// Prints `fetch CYCLE` when a fetch starts, so the driver can kill the runner mid-cycle.
struct Announcing {
    inner: Delayed<SyntheticSource>,
    clock: Arc<DatabaseClock>,
}

#[async_trait::async_trait]
impl RowGetter for Announcing {
    async fn get_rows(&self, request: &FetchRequest<'_>) -> Result<Fetched, SourceError> {
        let now = self.clock.now();
        self.inner.inner.set_now(now);
        {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "fetch {}", now / 60);
            let _ = out.flush();
        }
        self.inner.get_rows(request).await
    }
}

/// The child: one runner on the database's clock until it is killed.
async fn runner() -> Result<(), Box<dyn std::error::Error>> {
    let url: String = arg("--store", String::new());
    let owner: String = arg("--owner", String::new());
    let lease: u64 = arg("--lease", 120);
    let count: usize = arg("--checkers", 20);
    let latency: u64 = arg("--latency-ms", 500);
    let options = PostgresStoreOptions::default()
        .with_owner(owner)
        .with_lease(Duration::from_secs(lease));
    let store = PostgresStore::connect_with(&url, &options).await?;
    let clock = Arc::new(DatabaseClock::new(store.clone()).await?);
    let source = Arc::new(Announcing {
        inner: Delayed {
            inner: Arc::new(SyntheticSource::new(100, 10)),
            latency: Duration::from_millis(latency),
        },
        clock: clock.clone(),
    });
    let config = EngineConfig {
        // Fetches must end within the lease.
        fetch_timeout: Duration::from_secs(lease.saturating_sub(1).max(1)),
        ..EngineConfig::default()
    };
    let store: Arc<dyn Store> = Arc::new(store);
    let engine = Engine::new(source, store, Arc::new(CountingHandler::default()))
        .with_config(config)
        .with_checkers(checkers(count, 10));
    engine.run(clock.as_ref(), std::future::pending()).await;
    Ok(())
}
