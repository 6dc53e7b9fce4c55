//! The demo's fake datastore (the seed's `fake_records.py`, redone in Rust): an SQLite file
//! with `model_executions` and `applications` tables, a week of back-filled history and
//! background writers inserting records at a realistic random rate in (possibly simulated)
//! time.
//!
//! - `model_executions`: a model running all day, about 4 executions a minute. At demo
//!   minute 5 the pipeline stalls for 5 minutes (so `new_executions` turns BAD within the
//!   first ten minutes), and afterwards it randomly stalls or bursts (a retry storm).
//! - `applications`: a business's sign-ups, busy on weekday office hours, quiet at night and
//!   at weekends — the shape `dwmon histogram` shows.

use crate::clock::SimClock;
use chrono::{Datelike, Timelike};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Creates the demo tables in the SQLite file at `path` (WAL mode, so the monitor reads while
/// the generator writes).
///
/// # Errors
/// Any SQLite error.
pub fn create_source(path: &Path) -> rusqlite::Result<Connection> {
    let connection = Connection::open(path)?;
    connection.busy_timeout(Duration::from_secs(5))?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.execute_batch(
        "CREATE TABLE IF NOT EXISTS model_executions (
             execution_id INTEGER PRIMARY KEY AUTOINCREMENT,
             model TEXT NOT NULL,
             ts INTEGER NOT NULL
         );
         CREATE INDEX IF NOT EXISTS model_executions_ts ON model_executions (ts);
         CREATE TABLE IF NOT EXISTS applications (
             application_id INTEGER PRIMARY KEY AUTOINCREMENT,
             applicant TEXT NOT NULL,
             created_at INTEGER NOT NULL
         );
         CREATE INDEX IF NOT EXISTS applications_created_at ON applications (created_at);",
    )?;
    Ok(connection)
}

/// Which table a stream of fake records goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// `model_executions (execution_id, model, ts)`.
    ModelExecutions,
    /// `applications (application_id, applicant, created_at)`.
    Applications,
}

const MODELS: [&str; 3] = ["churn", "fraud", "pricing"];

impl Table {
    fn insert(self, connection: &Connection, rng: &mut StdRng, ts: i64) -> rusqlite::Result<()> {
        match self {
            Table::ModelExecutions => connection.execute(
                "INSERT INTO model_executions (model, ts) VALUES (?1, ?2)",
                rusqlite::params![MODELS[rng.random_range(0..MODELS.len())], ts],
            ),
            Table::Applications => connection.execute(
                "INSERT INTO applications (applicant, created_at) VALUES (?1, ?2)",
                rusqlite::params![format!("applicant-{}", rng.random_range(1000..100_000)), ts],
            ),
        }
        .map(|_| ())
    }
}

/// The arrival rates (records per minute) of both tables over time.
#[derive(Debug, Clone)]
pub struct Rates {
    /// The demo's first minute: incidents are planned relative to it.
    pub start: i64,
    /// Execution-rate multipliers per demo minute (1 normal, 0 stalled, 3 burst).
    incidents: Vec<f64>,
    /// The zone of the applications' office hours.
    pub zone: chrono_tz::Tz,
}

impl Rates {
    /// Normal model executions per minute.
    pub const EXECUTIONS_PER_MINUTE: f64 = 4.0;

    /// Plans incidents for `minutes` demo minutes from `start`: a scripted 5-minute stall at
    /// minute 5, then random 3-minute stalls and 2-minute bursts.
    pub fn new(start: i64, minutes: usize, zone: chrono_tz::Tz, rng: &mut StdRng) -> Self {
        let mut incidents = vec![1.0; minutes];
        let mut set = |from: usize, len: usize, value: f64| {
            for slot in incidents.iter_mut().skip(from).take(len) {
                *slot = value;
            }
        };
        set(5, 5, 0.0);
        let mut minute = 14;
        while minute < minutes {
            let roll: f64 = rng.random();
            if roll < 0.03 {
                set(minute, 3, 0.0);
                minute += 10;
            } else if roll < 0.05 {
                set(minute, 2, 3.0);
                minute += 10;
            } else {
                minute += 1;
            }
        }
        Rates {
            start: crate::minute_floor(start),
            incidents,
            zone,
        }
    }

    /// Records per minute of `table` at epoch second `t`.
    pub fn per_minute(&self, table: Table, t: i64) -> f64 {
        match table {
            Table::ModelExecutions => {
                let index = (t - self.start).div_euclid(60);
                let factor = usize::try_from(index)
                    .ok()
                    .and_then(|i| self.incidents.get(i).copied())
                    .unwrap_or(1.0);
                Self::EXECUTIONS_PER_MINUTE * factor
            }
            Table::Applications => {
                let Some(utc) = chrono::DateTime::from_timestamp(t, 0) else {
                    return 0.0;
                };
                let local = utc.with_timezone(&self.zone);
                let weekend = local.weekday().num_days_from_monday() >= 5;
                match (weekend, local.hour()) {
                    (false, 9..=16) => 1.5,
                    (false, 7..=8 | 17..=21) => 0.5,
                    (true, 8..=21) => 0.3,
                    (false, _) => 0.1,
                    (true, _) => 0.05,
                }
            }
        }
    }

    /// Arrival times of `table` in `[from, to)`: a Poisson process with the minute's rate.
    pub fn arrivals(&self, table: Table, from: i64, to: i64, rng: &mut StdRng) -> Vec<i64> {
        let mut out = Vec::new();
        let mut minute = crate::minute_floor(from);
        while minute < to {
            let rate = self.per_minute(table, minute) / 60.0;
            if rate > 0.0 {
                let mut t = minute as f64;
                loop {
                    t += exponential(rng, rate);
                    if t >= (minute + 60) as f64 {
                        break;
                    }
                    let ts = t.floor() as i64;
                    if (from..to).contains(&ts) {
                        out.push(ts);
                    }
                }
            }
            minute += 60;
        }
        out
    }
}

/// An exponential gap with `rate` events per second.
fn exponential(rng: &mut StdRng, rate: f64) -> f64 {
    let u: f64 = rng.random();
    -(1.0 - u).ln() / rate
}

/// Inserts history before the demo starts: a week of applications and an hour of executions,
/// so the first checks have data and the histogram has a shape. Returns rows inserted.
///
/// # Errors
/// Any SQLite error.
pub fn backfill(
    connection: &mut Connection,
    rates: &Rates,
    rng: &mut StdRng,
) -> rusqlite::Result<u64> {
    let start = rates.start;
    let mut inserted = 0;
    let tx = connection.transaction()?;
    for (table, from) in [
        (Table::Applications, start - 7 * 86_400),
        (Table::ModelExecutions, start - 3_600),
    ] {
        for ts in rates.arrivals(table, from, start, rng) {
            table.insert(&tx, rng, ts)?;
            inserted += 1;
        }
    }
    tx.commit()?;
    Ok(inserted)
}

/// Background writers inserting records as (simulated) time passes.
pub struct Generator {
    stop: Arc<AtomicBool>,
    inserted: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Generator {
    /// Starts one writer thread per table, writing to the SQLite file at `path` with
    /// timestamps read from `clock`.
    pub fn start(path: PathBuf, rates: Rates, clock: SimClock, seed: u64) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let inserted = Arc::new(AtomicU64::new(0));
        let threads = [Table::ModelExecutions, Table::Applications]
            .into_iter()
            .enumerate()
            .map(|(i, table)| {
                let (path, rates, stop, inserted) = (
                    path.clone(),
                    rates.clone(),
                    Arc::clone(&stop),
                    Arc::clone(&inserted),
                );
                let seed = seed.wrapping_add(i as u64 + 1);
                std::thread::spawn(move || {
                    if let Err(e) =
                        write_stream(&path, table, &rates, clock, seed, &stop, &inserted)
                    {
                        eprintln!("demo generator ({table:?}) stopped: {e}");
                    }
                })
            })
            .collect();
        Generator {
            stop,
            inserted,
            threads,
        }
    }

    /// Rows inserted so far.
    pub fn inserted(&self) -> u64 {
        self.inserted.load(Ordering::Relaxed)
    }

    /// Stops the writers and waits for them.
    pub fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            let _ = thread.join();
        }
        self.inserted.load(Ordering::Relaxed)
    }
}

fn write_stream(
    path: &Path,
    table: Table,
    rates: &Rates,
    clock: SimClock,
    seed: u64,
    stop: &AtomicBool,
    inserted: &AtomicU64,
) -> rusqlite::Result<()> {
    let connection = Connection::open(path)?;
    connection.busy_timeout(Duration::from_secs(5))?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut t = clock.now_f64();
    while !stop.load(Ordering::Relaxed) {
        // The next arrival at this minute's rate; crossing into the next minute restarts the
        // draw there (exact for a Poisson process, which has no memory).
        let rate = rates.per_minute(table, t.floor() as i64) / 60.0;
        let next_minute = ((t / 60.0).floor() + 1.0) * 60.0;
        let next = if rate > 0.0 {
            t + exponential(&mut rng, rate)
        } else {
            f64::INFINITY
        };
        let (target, arrives) = if next < next_minute {
            (next, true)
        } else {
            (next_minute, false)
        };
        // Sleep in small steps so `stop` is seen promptly.
        loop {
            let wait = clock.real_duration_until(target);
            if wait.is_zero() || stop.load(Ordering::Relaxed) {
                break;
            }
            std::thread::sleep(wait.min(Duration::from_millis(100)));
        }
        if arrives && !stop.load(Ordering::Relaxed) {
            table.insert(&connection, &mut rng, target.floor() as i64)?;
            inserted.fetch_add(1, Ordering::Relaxed);
        }
        t = target;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: i64 = 1_795_424_400; // Monday 2026-11-23 09:00 UTC

    #[test]
    fn executions_stall_at_demo_minute_five() {
        let mut rng = StdRng::seed_from_u64(7);
        let rates = Rates::new(START, 60, chrono_tz::UTC, &mut rng);
        assert_eq!(
            rates.per_minute(Table::ModelExecutions, START + 4 * 60),
            4.0
        );
        for minute in 5..10 {
            assert_eq!(
                rates.per_minute(Table::ModelExecutions, START + minute * 60 + 30),
                0.0
            );
        }
        assert_eq!(
            rates.per_minute(Table::ModelExecutions, START + 10 * 60),
            4.0
        );
        // Beyond the plan: normal.
        assert_eq!(
            rates.per_minute(Table::ModelExecutions, START + 86_400),
            4.0
        );
    }

    #[test]
    fn applications_follow_office_hours() {
        let mut rng = StdRng::seed_from_u64(7);
        let rates = Rates::new(START, 0, chrono_tz::UTC, &mut rng);
        let monday_10 = START + 3600;
        let monday_03 = START - 6 * 3600;
        let saturday_12 = START + 5 * 86_400 + 3 * 3600;
        assert!(
            rates.per_minute(Table::Applications, monday_10)
                > rates.per_minute(Table::Applications, saturday_12)
        );
        assert!(
            rates.per_minute(Table::Applications, saturday_12)
                > rates.per_minute(Table::Applications, monday_03)
        );
    }

    #[test]
    fn arrivals_stay_in_range_and_match_the_rate() {
        let mut rng = StdRng::seed_from_u64(11);
        let rates = Rates::new(START, 0, chrono_tz::UTC, &mut rng);
        let arrivals = rates.arrivals(Table::ModelExecutions, START, START + 600, &mut rng);
        assert!(arrivals.iter().all(|t| (START..START + 600).contains(t)));
        // 10 minutes at 4 a minute: 40 expected; a Poisson(40) is in 20..=60 virtually always.
        assert!((20..=60).contains(&arrivals.len()), "{}", arrivals.len());
    }

    #[test]
    fn backfill_writes_the_tables() -> rusqlite::Result<()> {
        let dir =
            tempfile::tempdir().map_err(|e| rusqlite::Error::InvalidPath(e.to_string().into()))?;
        let mut connection = create_source(&dir.path().join("source.sqlite"))?;
        let mut rng = StdRng::seed_from_u64(3);
        let rates = Rates::new(START, 20, chrono_tz::UTC, &mut rng);
        let inserted = backfill(&mut connection, &rates, &mut rng)?;
        let count = |table: &str| -> rusqlite::Result<u64> {
            connection.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        };
        assert_eq!(
            count("applications")? + count("model_executions")?,
            inserted
        );
        assert!(count("model_executions")? > 100);
        assert!(count("applications")? > 1000);
        Ok(())
    }
}
