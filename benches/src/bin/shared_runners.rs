//! Several runners sharing one PostgreSQL store (README "Several runners on one PostgreSQL
//! database"): the wall time of a cycle until every checker's minute is recorded, with 1, 2
//! and 4 runners. Each runner is an engine with a store handle of its own (its own pool and
//! owner, `PostgresStoreOptions::with_owner`) on one schema; the runners of a round run their
//! cycles at once and share the checkers through their claims. Every fetch waits
//! `--latency-ms` before it answers, as a query to a remote database does, so fetching
//! dominates as in real use:
//!
//! ```text
//! cargo build --release -p dwmon-benches --bin shared_runners
//! target/release/shared_runners --store postgres://postgres@127.0.0.1:5432/test
//! ```
//!
//! Defaults: `--runners 1,2,4 --checkers 1000 --rows 1000 --rate 10 --latency-ms 100
//! --concurrency 8 --warm 2 --cycles 3` (1% of each fetch new per cycle; `--concurrency` is
//! each runner's `max_concurrent_checkers`). For each runner count: a fresh schema
//! (`dwmon_bench_runners_<pid>_<n>`, dropped after), a bootstrap cycle, `--warm` cycles for
//! the runners to settle their shares, then `--cycles` measured ones. Printed per cycle: the
//! wall time until all runners finished, the checks each runner recorded, whether every
//! checker's minute was recorded, and the CPU time of this process and of the PostgreSQL
//! backends serving it (the server must run on this machine to be counted).

use dwmon_benches::{
    admin_client, admin_sql, arg, backend_cpu_seconds, checkers, cpu_seconds, list_arg, median,
    with_param, CountingHandler, Delayed, SyntheticSource, START,
};
use dwmon_core::engine::EngineConfig;
use dwmon_core::{Engine, Store};
use dwmon_postgres_store::{PostgresStore, PostgresStoreOptions};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url: String = arg(
        "--store",
        "postgres://postgres@127.0.0.1:5432/test".to_string(),
    );
    let runner_counts: Vec<usize> = list_arg("--runners", &[1, 2, 4]);
    let count: usize = arg("--checkers", 1000);
    let rows: i64 = arg("--rows", 1000);
    let rate: i64 = arg("--rate", 10);
    let latency = Duration::from_millis(arg("--latency-ms", 100));
    let concurrency: usize = arg("--concurrency", 8);
    let warm: usize = arg("--warm", 2);
    let cycles: usize = arg("--cycles", 3).max(1);
    println!(
        "shared_runners: {count} checkers x {rows} rows/fetch ({:.1}% new per cycle), \
         {} ms per fetch, {concurrency} fetches at a time per runner, PostgreSQL store",
        100.0 * rate as f64 / rows as f64,
        latency.as_millis()
    );
    let mut curve = Vec::new();
    for &runners in &runner_counts {
        let result = measure(
            &url,
            runners.max(1),
            count,
            rows,
            rate,
            latency,
            concurrency,
            warm,
            cycles,
        )
        .await?;
        curve.push((runners, result));
    }
    println!("curve (median of {cycles} cycles):");
    let base = curve.first().map_or(f64::NAN, |(_, r)| r.0);
    for (runners, (wall, cpu, backend)) in &curve {
        println!(
            "  {runners} runner(s): {wall:.2} s wall ({:.2}x), cpu per cycle {cpu:.2} s \
             runners + {backend:.2} s PostgreSQL backends",
            base / wall
        );
    }
    Ok(())
}

/// One runner count: the medians of the measured cycles (wall, process CPU, backend CPU).
#[allow(clippy::too_many_arguments)]
async fn measure(
    url: &str,
    runners: usize,
    count: usize,
    rows: i64,
    rate: i64,
    latency: Duration,
    concurrency: usize,
    warm: usize,
    cycles: usize,
) -> Result<(f64, f64, f64), Box<dyn std::error::Error>> {
    let schema = format!("dwmon_bench_runners_{}_{runners}", std::process::id());
    admin_sql(
        url,
        &format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"),
    )
    .await?;
    let application = format!("dwmon_bench_{}", std::process::id());
    let schema_url = with_param(
        &with_param(url, "options", &format!("-csearch_path%3D{schema}")),
        "application_name",
        &application,
    );
    let admin = admin_client(&with_param(
        url,
        "options",
        &format!("-csearch_path%3D{schema}"),
    ))
    .await?;
    let source = Arc::new(SyntheticSource::new(rows, rate));
    let config = EngineConfig {
        max_concurrent_checkers: concurrency,
        ..EngineConfig::default()
    };
    let mut engines = Vec::new();
    for i in 0..runners {
        let options = PostgresStoreOptions::default().with_owner(format!("runner-{i}"));
        let store: Arc<dyn Store> =
            Arc::new(PostgresStore::connect_with(&schema_url, &options).await?);
        let delayed = Arc::new(Delayed {
            inner: source.clone(),
            latency,
        });
        let engine = Engine::new(delayed, store, Arc::new(CountingHandler::default()))
            .with_config(config.clone())
            .with_checkers(checkers(count, u64::try_from(rate).unwrap_or(1)));
        engines.push(Arc::new(engine));
    }
    println!("{runners} runner(s), schema {schema}:");
    let mut now = START + 5;
    let (mut walls, mut cpus, mut backends) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..1 + warm + cycles {
        source.set_now(now);
        let cpu_before = cpu_seconds().unwrap_or(f64::NAN);
        let backend_before = backend_cpu_seconds(&admin, &application).await?;
        let started = Instant::now();
        let tasks: Vec<_> = engines
            .iter()
            .map(|engine| {
                let engine = engine.clone();
                tokio::spawn(async move { engine.run_cycle(now).await })
            })
            .collect();
        let mut checks = Vec::new();
        let mut errors = 0;
        for task in tasks {
            let report = task.await?;
            checks.push(report.checks().count());
            errors += report.errors().count();
        }
        let wall = started.elapsed().as_secs_f64();
        let cpu = cpu_seconds().unwrap_or(f64::NAN) - cpu_before;
        let backend = backend_cpu_seconds(&admin, &application).await? - backend_before;
        let recorded: i64 = admin
            .query_one(
                "SELECT count(*) FROM dwmon_checkers
                 WHERE last_minute = (SELECT max(last_minute) FROM dwmon_checkers)",
                &[],
            )
            .await?
            .get(0);
        let kind = if round == 0 {
            "bootstrap".to_string()
        } else if round <= warm {
            format!("warm-up {}", round - 1)
        } else {
            format!("cycle {}", round - 1 - warm)
        };
        let shares: Vec<String> = checks.iter().map(usize::to_string).collect();
        println!(
            "  {kind}: {wall:.3} s, checks per runner {}, {recorded}/{count} checkers at the \
             newest minute, {errors} errors, cpu {cpu:.2} s runners + {backend:.2} s backends",
            shares.join("/"),
        );
        if round > warm {
            walls.push(wall);
            cpus.push(cpu);
            backends.push(backend);
        }
        now += 60;
    }
    drop(engines);
    drop(admin);
    admin_sql(url, &format!("DROP SCHEMA {schema} CASCADE")).await?;
    Ok((median(&mut walls), median(&mut cpus), median(&mut backends)))
}
