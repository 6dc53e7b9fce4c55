//! Criterion benchmarks of the SQLite store (README "Performance").
//!
//! `cargo bench -p dwmon-benches --bench store`
//!
//! - `ingest`: bulk first-seen ingest of 10,000 new rows per iteration through
//!   `SqliteStore::insert_first_seen`, side by side with a bare prepared `INSERT OR IGNORE`
//!   loop in one transaction on the same table (same schema and pragmas). Target: the store
//!   at >= 80% of the bare loop's rate.
//! - `steady_insert`: a 10,000-row batch of which 99% is already stored, with and without the
//!   cache of stored keys.
//! - `count_windows`: 30 overlapping windows (a catch-up) counted with one range scan versus
//!   30 separate counts.

use criterion::{BenchmarkId, Criterion, Throughput};
use dwmon_benches::event_key;
use dwmon_core::{Row, RowStore};
use dwmon_sqlite::{SqliteStore, SqliteStoreOptions};
use std::time::{Duration, Instant};

const BATCH: i64 = 10_000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Rows with keys `first..first + BATCH`, one a second.
fn batch(first: i64) -> Vec<Row> {
    (first..first + BATCH)
        .map(|seq| Row::new(event_key(seq), 1_700_000_000 + seq))
        .collect()
}

fn uncached() -> SqliteStoreOptions {
    SqliteStoreOptions {
        seen_cache_capacity: 0,
        ..SqliteStoreOptions::default()
    }
}

fn ingest(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("ingest");
    group
        .throughput(Throughput::Elements(BATCH as u64))
        .sample_size(20)
        .measurement_time(Duration::from_secs(10));

    // The bare loop, on a store file's own `rows` table with the store's pragmas.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bare.sqlite");
    drop(SqliteStore::open(&path).expect("store"));
    let mut conn = rusqlite::Connection::open(&path).expect("open");
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -32768;",
    )
    .expect("pragmas");
    let mut next = 0;
    group.bench_function("bare_insert_or_ignore_loop", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let rows = batch(next);
                next += BATCH;
                let started = Instant::now();
                let tx = conn.transaction().expect("tx");
                {
                    let mut insert = tx
                        .prepare_cached(
                            "INSERT OR IGNORE INTO rows (checker_id, key, ts) VALUES (?1, ?2, ?3)",
                        )
                        .expect("prepare");
                    for row in &rows {
                        insert
                            .execute(rusqlite::params![1, row.key, row.timestamp])
                            .expect("insert");
                    }
                }
                tx.commit().expect("commit");
                total += started.elapsed();
            }
            total
        });
    });

    for (name, options) in [
        ("sqlite_store", SqliteStoreOptions::default()),
        ("sqlite_store_uncached", uncached()),
    ] {
        let path = dir.path().join(format!("{name}.sqlite"));
        let store = SqliteStore::open_with(&path, &options).expect("store");
        let mut next = 0;
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let rows = batch(next);
                    next += BATCH;
                    let started = Instant::now();
                    let new = rt
                        .block_on(store.insert_first_seen("ingest", &rows))
                        .expect("insert");
                    total += started.elapsed();
                    assert_eq!(new, BATCH as u64);
                }
                total
            });
        });
    }
    group.finish();
}

fn steady_insert(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("steady_insert");
    group
        .throughput(Throughput::Elements(BATCH as u64))
        .sample_size(20);
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, options) in [
        ("cached", SqliteStoreOptions::default()),
        ("uncached", uncached()),
    ] {
        let store = SqliteStore::open_with(dir.path().join(format!("{name}.sqlite")), &options)
            .expect("store");
        rt.block_on(store.insert_first_seen("steady", &batch(0)))
            .expect("warm-up");
        // Each iteration: the window moves by 1% (100 new rows, 9,900 seen).
        let mut first = 0;
        group.bench_function(BenchmarkId::new("99pct_seen", name), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    first += BATCH / 100;
                    let rows = batch(first);
                    let started = Instant::now();
                    rt.block_on(store.insert_first_seen("steady", &rows))
                        .expect("insert");
                    total += started.elapsed();
                }
                total
            });
        });
    }
    group.finish();
}

fn count_windows(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("count_windows");
    let store = SqliteStore::open_in_memory().expect("store");
    // One row a second for 3 hours.
    let rows: Vec<Row> = (0..3 * 3600)
        .map(|i| Row::new(format!("k{i}"), i))
        .collect();
    rt.block_on(store.insert_first_seen("c", &rows))
        .expect("fill");
    // A catch-up: 30 minutes, each with a 180 s window.
    let windows: Vec<(i64, i64)> = (0..30)
        .map(|m| {
            let minute = 7_200 + m * 60;
            (minute - 180, minute)
        })
        .collect();
    group.bench_function("30_windows_one_scan", |b| {
        b.iter(|| {
            rt.block_on(store.count_windows("c", &windows))
                .expect("count")
        });
    });
    group.bench_function("30_windows_30_counts", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut counts = Vec::with_capacity(windows.len());
                for &(from, to) in &windows {
                    counts.push(store.count("c", from, to).await?);
                }
                Ok::<_, dwmon_core::StoreError>(counts)
            })
            .expect("count")
        });
    });
    group.finish();
}

// What `criterion_group!`/`criterion_main!` expand to, without an undocumented public function.
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    ingest(&mut criterion);
    steady_insert(&mut criterion);
    count_windows(&mut criterion);
    criterion.final_summary();
}
