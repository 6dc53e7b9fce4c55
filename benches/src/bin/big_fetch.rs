//! Whole-process memory benchmark of one huge fetch: a checker whose query returns
//! `--rows` rows (default 2,000,000) from a real source, SQLite (the default), PostgreSQL or
//! MySQL/MariaDB.
//!
//! ```text
//! cargo build --release -p dwmon-benches --bin big_fetch
//! target/release/big_fetch --rows 2000000                     # an SQLite source file
//! target/release/big_fetch --rows 2000000 --source postgres   # DWMON_TEST_POSTGRES_URL
//! target/release/big_fetch --rows 2000000 --source mysql      # DWMON_TEST_MYSQL_URL
//! ```
//!
//! Setup (not measured): `--rows` events a second apart ending at `T0`, in an SQLite file, or
//! in a table the benchmark creates on the server (`postgres://postgres@127.0.0.1:5432/test`
//! unless `DWMON_TEST_POSTGRES_URL` says otherwise: schema `dwmon_big_fetch`;
//! `mysql://root@127.0.0.1:3306/test` unless `DWMON_TEST_MYSQL_URL`: database
//! `dwmon_big_fetch`; both dropped at the end). Then two cycles on an SQLite store: the
//! checker's first (every row is new and stored) and the next minute's (every row seen
//! before). Prints each cycle's time and the peak RSS.

use dwmon_benches::{arg, describe, peak_rss_mib, CountingHandler, START};
use dwmon_core::{parse_checker, Engine, RowGetter};
use dwmon_sqlite::{SqliteSource, SqliteStore};
use mysql_async::prelude::Queryable;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The schema (PostgreSQL) or database (MySQL) the benchmark creates and drops.
const NAME: &str = "dwmon_big_fetch";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows: i64 = arg("--rows", 2_000_000);
    let kind: String = arg("--source", "sqlite".to_string());
    let dir = tempfile::tempdir()?;
    if kind == "mysql" && rows > 10_000_000 {
        return Err("--source mysql makes at most 10,000,000 rows".into());
    }
    let (source, cleanup): (Arc<dyn RowGetter>, Cleanup) = match kind.as_str() {
        "sqlite" => (sqlite_source(dir.path(), rows)?, Cleanup::None),
        "postgres" => postgres_source(rows).await?,
        "mysql" => mysql_source(rows).await?,
        other => {
            return Err(format!("--source {other}: expected sqlite, postgres or mysql").into())
        }
    };
    let table = if kind == "sqlite" {
        "events".to_string()
    } else {
        format!("{NAME}.events")
    };
    let setup_rss = peak_rss_mib().unwrap_or(f64::NAN);
    let checker = parse_checker(
        "events.dwmon",
        &format!(
            "__QUERY__\n\
             SELECT id AS dwmon_unique_key, ts AS dwmon_timestamp FROM {table}\n\
             __REQUIREMENTS__\n\
             CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM1 MAXNUM1000000 LOOKBACKSECONDS600\n"
        ),
    )?;
    let store = Arc::new(SqliteStore::open(dir.path().join("store.sqlite"))?);
    // A whole-process measurement, not a timeout test: a slow machine must not fail it.
    let config = dwmon_core::EngineConfig {
        fetch_timeout: Duration::from_secs(600),
        ..dwmon_core::EngineConfig::default()
    };
    let engine = Engine::new(source, store, Arc::new(CountingHandler::default()))
        .with_config(config)
        .with_checkers(vec![checker]);
    let mut failed = false;
    for (name, now) in [
        ("first cycle (all new)", START),
        ("next cycle (all seen)", START + 60),
    ] {
        let started = Instant::now();
        let report = engine.run_cycle(now).await;
        failed |= report.errors().count() > 0;
        println!(
            "{kind} {name}: {:.2} s ({}), peak RSS so far {:.0} MiB",
            started.elapsed().as_secs_f64(),
            describe(&report),
            peak_rss_mib().unwrap_or(f64::NAN)
        );
    }
    println!(
        "{kind}: peak RSS {:.0} MiB (setup alone {setup_rss:.0} MiB)",
        peak_rss_mib().unwrap_or(f64::NAN)
    );
    cleanup.run().await?;
    if failed {
        return Err("a cycle reported errors".into());
    }
    Ok(())
}

/// What to drop on the server once measured.
enum Cleanup {
    None,
    Postgres(tokio_postgres::Client),
    Mysql(mysql_async::Conn),
}

impl Cleanup {
    async fn run(self) -> Result<(), Box<dyn std::error::Error>> {
        match self {
            Cleanup::None => {}
            Cleanup::Postgres(client) => {
                client
                    .batch_execute(&format!("DROP SCHEMA {NAME} CASCADE"))
                    .await?;
            }
            Cleanup::Mysql(mut conn) => {
                conn.query_drop(format!("DROP DATABASE {NAME}")).await?;
                conn.disconnect().await?;
            }
        }
        Ok(())
    }
}

fn sqlite_source(dir: &Path, rows: i64) -> Result<Arc<dyn RowGetter>, Box<dyn std::error::Error>> {
    let source_path = dir.join("source.sqlite");
    let mut conn = rusqlite::Connection::open(&source_path)?;
    conn.execute_batch("CREATE TABLE events (id INTEGER PRIMARY KEY, ts INTEGER NOT NULL)")?;
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare("INSERT INTO events (id, ts) VALUES (?1, ?2)")?;
        for i in 0..rows {
            insert.execute(rusqlite::params![i, START - rows + i])?;
        }
    }
    tx.commit()?;
    Ok(Arc::new(SqliteSource::new(&source_path)))
}

fn env_url(var: &str, default: &str) -> String {
    std::env::var(var)
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| default.to_string())
}

async fn postgres_source(
    rows: i64,
) -> Result<(Arc<dyn RowGetter>, Cleanup), Box<dyn std::error::Error>> {
    let url = env_url(
        "DWMON_TEST_POSTGRES_URL",
        "postgres://postgres@127.0.0.1:5432/test",
    );
    let (client, connection) = url
        .parse::<tokio_postgres::Config>()?
        .connect(tokio_postgres::NoTls)
        .await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let first = START - rows;
    client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {NAME} CASCADE; CREATE SCHEMA {NAME};
             CREATE TABLE {NAME}.events (id bigint PRIMARY KEY, ts bigint NOT NULL);
             INSERT INTO {NAME}.events SELECT i, {first} + i FROM generate_series(0, {rows} - 1) AS i;
             ANALYZE {NAME}.events;"
        ))
        .await?;
    let source = dwmon_postgres_source::PostgresSource::builder()
        .source("default", &url)?
        .statement_timeout(Duration::from_secs(600))
        .build()?;
    Ok((Arc::new(source), Cleanup::Postgres(client)))
}

async fn mysql_source(
    rows: i64,
) -> Result<(Arc<dyn RowGetter>, Cleanup), Box<dyn std::error::Error>> {
    let url = env_url("DWMON_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test");
    let mut conn = mysql_async::Conn::from_url(url.as_str()).await?;
    let first = START - rows;
    // Rows from a cross join of digits: portable across MySQL and MariaDB versions.
    conn.query_drop(format!(
        "DROP DATABASE IF EXISTS {NAME}; CREATE DATABASE {NAME};
         CREATE TABLE {NAME}.digits (d INT NOT NULL);
         INSERT INTO {NAME}.digits VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9);
         CREATE TABLE {NAME}.events (id BIGINT PRIMARY KEY, ts BIGINT NOT NULL);
         INSERT INTO {NAME}.events
           SELECT n, {first} + n FROM (
             SELECT a.d + 10 * b.d + 100 * c.d + 1000 * e.d + 10000 * f.d + 100000 * g.d
                    + 1000000 * h.d AS n
             FROM {NAME}.digits a, {NAME}.digits b, {NAME}.digits c, {NAME}.digits e,
                  {NAME}.digits f, {NAME}.digits g, {NAME}.digits h
           ) AS s WHERE n < {rows};"
    ))
    .await?;
    let source = dwmon_mysql_source::MysqlSource::builder()
        .source("default", &url)?
        .statement_timeout(Duration::from_secs(600))
        .build()?;
    Ok((Arc::new(source), Cleanup::Mysql(conn)))
}
