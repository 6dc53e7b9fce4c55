//! What claiming costs a runner on the PostgreSQL store (README "Several runners on one
//! PostgreSQL database"): for 1, 100 and 1,000 checkers, the time of a cycle's claim call,
//! the round trips and statements it sends (counted by a TCP proxy in front of the server,
//! `dwmon-postgres-store/tests/common/proxy.rs`), and the fence check the recording
//! transaction adds per checker, so the claim overhead per checker-cycle:
//!
//! ```text
//! cargo build --release -p dwmon-benches --bin claims
//! target/release/claims --store postgres://postgres@127.0.0.1:5432/test
//! ```
//!
//! The store runs in a schema of its own (`dwmon_bench_claims_<pid>`, dropped at the end),
//! counted through the proxy without TLS and timed over a handle of the same runner straight
//! to the server. `--checkers 1,100,1000` and `--repeat 50` (claims timed
//! per size) change the sizes.

#[path = "../../../dwmon-postgres-store/tests/common/proxy.rs"]
mod proxy;

use dwmon_benches::{admin_client, admin_sql, arg, list_arg, median, with_param};
use dwmon_core::store::{CheckLog, CheckerClaim};
use dwmon_core::{CheckRecord, Status};
use dwmon_postgres_store::{PostgresStore, PostgresStoreOptions};
use std::time::Instant;

fn ms(seconds: f64) -> String {
    format!("{:.3} ms", seconds * 1000.0)
}

// Current-thread: the client writes a whole pipeline before the proxy reads it, so the proxy
// counts round trips exactly.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url: String = arg(
        "--store",
        "postgres://postgres@127.0.0.1:5432/test".to_string(),
    );
    let sizes: Vec<usize> = list_arg("--checkers", &[1, 100, 1000]);
    let repeat: usize = arg("--repeat", 50_usize).max(1);
    let schema = format!("dwmon_bench_claims_{}", std::process::id());
    admin_sql(&url, &format!("CREATE SCHEMA {schema}")).await?;
    let schema_url = with_param(&url, "options", &format!("-csearch_path%3D{schema}"));
    let proxy = proxy::start(&schema_url).await;
    let options = PostgresStoreOptions::default().with_owner("bench");
    let store = PostgresStore::connect_with(&proxy.url, &options).await?;
    // The same runner straight to the server, for the times (the proxy adds its own hops).
    let direct = PostgresStore::connect_with(&schema_url, &options).await?;
    let admin = admin_client(&with_param(&schema_url, "sslmode", "disable")).await?;
    println!(
        "claims: one runner, claim calls timed {repeat} times per size, through a counting \
         proxy (schema {schema})"
    );

    // One round trip on its own, for scale.
    let mut trip = Vec::new();
    for _ in 0..repeat {
        let started = Instant::now();
        admin.query_typed("SELECT 1", &[]).await?;
        trip.push(started.elapsed().as_secs_f64());
    }
    let round_trip = median(&mut trip);
    println!(
        "one round trip (SELECT 1 on its own connection): {}",
        ms(round_trip)
    );

    let mut fence = 0.0;
    for &count in &sizes {
        let names: Vec<String> = (0..count).map(|i| format!("c{i:04}")).collect();
        let first = Instant::now();
        store.claim(&names, 0).await?;
        let first = first.elapsed().as_secs_f64();
        let mut times = Vec::new();
        let (mut trips, mut statements) = (0, 0);
        let mut claims: Vec<CheckerClaim> = Vec::new();
        for _ in 0..repeat {
            let (t, s) = (proxy.counts.round_trips(), proxy.counts.statements());
            let started = Instant::now();
            claims = store.claim(&names, 0).await?;
            times.push(started.elapsed().as_secs_f64());
            trips += proxy.counts.round_trips() - t;
            statements += proxy.counts.statements() - s;
        }
        assert_eq!(claims.len(), count, "a lone runner claims every checker");
        let per_call = trips as f64 / repeat as f64;
        let proxied = median(&mut times);
        times.clear();
        for _ in 0..repeat {
            let started = Instant::now();
            direct.claim(&names, 0).await?;
            times.push(started.elapsed().as_secs_f64());
        }
        let time = median(&mut times);
        // The fence check: the statement the recording transaction runs first (it locks the
        // claim row and reads its fence), timed on its own inside a transaction.
        let mut checks = Vec::new();
        for claim in claims.iter().take(repeat) {
            admin.batch_execute("BEGIN").await?;
            let started = Instant::now();
            admin
                .query_typed(
                    "SELECT fence, floor(extract(epoch FROM now()))::bigint FROM dwmon_claims
                     WHERE checker = $1 FOR UPDATE",
                    &[(&claim.checker, tokio_postgres::types::Type::TEXT)],
                )
                .await?;
            checks.push(started.elapsed().as_secs_f64());
            admin.batch_execute("ROLLBACK").await?;
        }
        fence = median(&mut checks);
        println!(
            "{count:>5} checkers: claim {} ({} per checker; through the proxy {}; first claim, \
             creating the rows: {}), {per_call:.1} round trips and {:.1} statements per claim \
             call; \
             claim overhead per checker-cycle {:.2} round trips, {} (the claim's share + the \
             fence check, 1 round trip, {})",
            ms(time),
            ms(time / count as f64),
            ms(proxied),
            ms(first),
            statements as f64 / repeat as f64,
            per_call / count as f64 + 1.0,
            ms(time / count as f64 + fence),
            ms(fence),
        );
    }

    // The record transaction of one checker, whose first statement is the fence check.
    let claim = store
        .claim(&["c0000".to_string()], 0)
        .await?
        .pop()
        .ok_or("no claim")?;
    let record = CheckRecord {
        checker: "c0000".to_string(),
        requirement_index: 0,
        requirement: "CHECKHOURS0-23 CHECKMINUTES0-59 WEEKDAYS WEEKENDS MINNUM1 MAXNUM5 \
                      LOOKBACKSECONDS60"
            .to_string(),
        minute: dwmon_benches::START,
        minute_local: "2024-01-01T00:00:00+00:00".to_string(),
        timezone: "UTC".to_string(),
        lookback_seconds: 60,
        count: 1,
        min: 1,
        max: 5,
        status: Status::Good,
        extra: serde_json::Value::Null,
        monitor: None,
        runs: None,
    };
    store.record(&claim, std::slice::from_ref(&record)).await?;
    let mut record = record;
    record.minute += 60;
    let (t, s) = (proxy.counts.round_trips(), proxy.counts.statements());
    let started = Instant::now();
    store.record(&claim, std::slice::from_ref(&record)).await?;
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "record of one check: {} round trips, {} statements, {} (the fence check is one of \
         each: {} measured alone)",
        proxy.counts.round_trips() - t,
        proxy.counts.statements() - s,
        ms(elapsed),
        ms(fence),
    );
    drop(store);
    drop(direct);
    admin_sql(&url, &format!("DROP SCHEMA {schema} CASCADE")).await?;
    Ok(())
}
