//! Criterion benchmarks of whole cycles (`Engine::run_cycle`) (README "Performance").
//!
//! `cargo bench -p dwmon-benches --bench cycle`
//!
//! - `steady/{sqlite,memory}`: 100 checkers x 1,000 rows a fetch, 99% seen, one requirement
//!   each; each iteration is the next minute's cycle.
//! - `catch_up/sqlite`: 100 checkers back after a 24 h outage (30 due minutes each, a fetch
//!   of 1,000 new rows), each iteration on a fresh copy of the pre-outage store.
//!
//! The full-size figures (1,000 checkers x 10,000 rows) come from the whole-process
//! drivers `steady_state` and `catch_up` (see `benches/src/bin`).

use criterion::{BenchmarkId, Criterion};
use dwmon_benches::{Fixture, START};
use dwmon_core::{MemoryStore, Store};
use dwmon_sqlite::SqliteStore;
use std::sync::Arc;
use std::time::{Duration, Instant};

const CHECKERS: usize = 100;
const ROWS: i64 = 1_000;
const RATE: i64 = 10;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn steady(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("steady");
    group.sample_size(20);
    let dir = tempfile::tempdir().expect("tempdir");
    let stores: Vec<(&str, Arc<dyn Store>)> = vec![
        (
            "sqlite",
            Arc::new(SqliteStore::open(dir.path().join("steady.sqlite")).expect("store")),
        ),
        ("memory", Arc::new(MemoryStore::new())),
    ];
    for (name, store) in stores {
        let fixture = Fixture::new(store, CHECKERS, ROWS, RATE);
        let mut now = START + 5;
        rt.block_on(fixture.cycle(now));
        let id = BenchmarkId::new(format!("{CHECKERS}x{ROWS}"), name);
        group.bench_function(id, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    now += 60;
                    total += rt.block_on(fixture.cycle(now)).0;
                }
                total
            });
        });
    }
    group.finish();
}

fn catch_up(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("catch_up");
    group.sample_size(10);
    let dir = tempfile::tempdir().expect("tempdir");
    let before = dir.path().join("before.sqlite");
    {
        let store = SqliteStore::open(&before).expect("store");
        let fixture = Fixture::new(Arc::new(store), CHECKERS, ROWS, RATE);
        rt.block_on(fixture.cycle(START + 5));
    }
    let outage = START + 5 + 24 * 3600;
    let mut copy = 0;
    group.bench_function(
        BenchmarkId::new(format!("{CHECKERS}x{ROWS}"), "sqlite"),
        |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    copy += 1;
                    let path = dir.path().join(format!("copy{copy}.sqlite"));
                    std::fs::copy(&before, &path).expect("copy store");
                    let store = SqliteStore::open(&path).expect("store");
                    let fixture = Fixture::new(Arc::new(store), CHECKERS, ROWS, RATE);
                    let started = Instant::now();
                    let (_, report) = rt.block_on(fixture.cycle(outage));
                    total += started.elapsed();
                    assert_eq!(report.checks().count(), 30 * CHECKERS);
                    drop(fixture);
                    std::fs::remove_file(&path).ok();
                }
                total
            });
        },
    );
    group.finish();
}

// What `criterion_group!`/`criterion_main!` expand to, without an undocumented public function.
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    steady(&mut criterion);
    catch_up(&mut criterion);
    criterion.final_summary();
}
