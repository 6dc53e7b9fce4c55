//! The demo's fake datastore (the seed's `fake_records.py`, redone in Rust): an SQLite file
//! with `model_executions`, `applications`, `ad_impressions` and `ad_conversions` tables,
//! back-filled history and background writers inserting records as (possibly simulated) time
//! passes.
//!
//! - `model_executions`: a model running all day, 4 executions a minute. At demo minute 5 the
//!   pipeline stalls for 5 minutes (so `new_executions` turns BAD within the first ten
//!   minutes); from minute 15 on it randomly stalls or bursts (a retry storm).
//! - `applications`: a business's sign-ups, busy on weekday office hours, quiet at night and
//!   at weekends — the shape `dwmon histogram` shows — but never fewer than one per 5 minutes,
//!   so the sample checker's "at least one in 10 minutes" holds day and night.
//! - `ad_impressions` / `ad_conversions`: an ad server's 30 impressions and 6 conversions a
//!   minute (a 20% conversion rate). At demo minutes 8 and 9 the conversion tracking breaks
//!   (no conversions), so the [`ConversionRate`] monitor (conversions / impressions over 3
//!   minutes, at least 10%) is BAD at minutes 10 and 11, while each checker alone stays GOOD.
//!
//! Arrival times are random but *stratified*: at a rate of r a minute, time is cut into slots
//! of 60/r seconds (aligned to the epoch) and each slot holds exactly one arrival at a random
//! offset drawn from the seed and the slot. So every run tells the same story (the counts of
//! every window are fixed by the rates, only the seconds move), the back-filled history and the
//! live writers agree on every row, and rows can be written ahead of time
//! ([`Generator::stop_leaving`]).

use crate::clock::SimClock;
use chrono::{Datelike, Timelike};
use rand::rngs::StdRng;
use rand::Rng;
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
         CREATE INDEX IF NOT EXISTS applications_created_at ON applications (created_at);
         CREATE TABLE IF NOT EXISTS ad_impressions (
             impression_id INTEGER PRIMARY KEY AUTOINCREMENT,
             ts INTEGER NOT NULL
         );
         CREATE INDEX IF NOT EXISTS ad_impressions_ts ON ad_impressions (ts);
         CREATE TABLE IF NOT EXISTS ad_conversions (
             conversion_id INTEGER PRIMARY KEY AUTOINCREMENT,
             ts INTEGER NOT NULL
         );
         CREATE INDEX IF NOT EXISTS ad_conversions_ts ON ad_conversions (ts);",
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
    /// `ad_impressions (impression_id, ts)`.
    Impressions,
    /// `ad_conversions (conversion_id, ts)`.
    Conversions,
}

impl Table {
    /// Every table, in the order the writers start.
    pub const ALL: [Table; 4] = [
        Table::ModelExecutions,
        Table::Applications,
        Table::Impressions,
        Table::Conversions,
    ];
}

const MODELS: [&str; 3] = ["churn", "fraud", "pricing"];

impl Table {
    fn insert(self, connection: &Connection, ts: i64) -> rusqlite::Result<()> {
        // The row's other column, also fixed by the time: a run is repeatable row for row.
        let pick = splitmix64(ts as u64 ^ 0x5eed);
        match self {
            Table::ModelExecutions => connection.execute(
                "INSERT INTO model_executions (model, ts) VALUES (?1, ?2)",
                rusqlite::params![MODELS[(pick % MODELS.len() as u64) as usize], ts],
            ),
            Table::Applications => connection.execute(
                "INSERT INTO applications (applicant, created_at) VALUES (?1, ?2)",
                rusqlite::params![format!("applicant-{}", 1000 + pick % 99_000), ts],
            ),
            Table::Impressions => {
                connection.execute("INSERT INTO ad_impressions (ts) VALUES (?1)", [ts])
            }
            Table::Conversions => {
                connection.execute("INSERT INTO ad_conversions (ts) VALUES (?1)", [ts])
            }
        }
        .map(|_| ())
    }

    fn tag(self) -> u64 {
        match self {
            Table::ModelExecutions => 0x9e37_79b9_7f4a_7c15,
            Table::Applications => 0xc2b2_ae3d_27d4_eb4f,
            Table::Impressions => 0x1656_67b1_9e37_79f9,
            Table::Conversions => 0x27d4_eb2f_1656_67c5,
        }
    }
}

/// A 64-bit mix (SplitMix64's finaliser): the slot's random offset without any state.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
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
    /// Draws the arrivals' offsets within their slots.
    seed: u64,
}

impl Rates {
    /// Normal model executions per minute.
    pub const EXECUTIONS_PER_MINUTE: f64 = 4.0;

    /// Ad impressions per minute.
    pub const IMPRESSIONS_PER_MINUTE: f64 = 30.0;

    /// Ad conversions per minute outside the tracking outage (a 20% conversion rate).
    pub const CONVERSIONS_PER_MINUTE: f64 = 6.0;

    /// The demo minutes in which conversion tracking is broken (no conversions).
    pub const CONVERSION_OUTAGE_MINUTES: std::ops::Range<i64> = 8..10;

    /// The demo minute from which random incidents may happen: the default 15-minute run
    /// (minutes 0 to 14) follows the script alone.
    pub const RANDOM_FROM_MINUTE: usize = 15;

    /// Plans incidents for `minutes` demo minutes from `start`: a scripted 5-minute stall at
    /// minute 5, then from minute [`Self::RANDOM_FROM_MINUTE`] random 3-minute stalls and
    /// 2-minute bursts. `rng` also seeds the arrivals' offsets.
    pub fn new(start: i64, minutes: usize, zone: chrono_tz::Tz, rng: &mut StdRng) -> Self {
        let seed = rng.random();
        let mut incidents = vec![1.0; minutes];
        let mut set = |from: usize, len: usize, value: f64| {
            for slot in incidents.iter_mut().skip(from).take(len) {
                *slot = value;
            }
        };
        set(5, 5, 0.0);
        let mut minute = Self::RANDOM_FROM_MINUTE;
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
            seed,
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
            Table::Impressions => Self::IMPRESSIONS_PER_MINUTE,
            Table::Conversions => {
                let index = (t - self.start).div_euclid(60);
                if Self::CONVERSION_OUTAGE_MINUTES.contains(&index) {
                    0.0
                } else {
                    Self::CONVERSIONS_PER_MINUTE
                }
            }
            Table::Applications => {
                let Some(utc) = chrono::DateTime::from_timestamp(t, 0) else {
                    return 0.0;
                };
                let local = utc.with_timezone(&self.zone);
                let weekend = local.weekday().num_days_from_monday() >= 5;
                // Slots of 40, 120, 200 and 300 seconds: each divides an hour.
                match (weekend, local.hour()) {
                    (false, 9..=16) => 1.5,
                    (false, 7..=8 | 17..=21) => 0.5,
                    (true, 8..=21) => 0.3,
                    _ => 0.2,
                }
            }
        }
    }

    /// Arrival times of `table` in `[from, to)`, ascending: one per slot of `60 / rate`
    /// seconds (the rate at the slot's start), at an offset fixed by the seed and the slot.
    pub fn arrivals(&self, table: Table, from: i64, to: i64) -> Vec<i64> {
        let mut out = Vec::new();
        let mut t = from;
        while t < to {
            let rate = self.per_minute(table, t);
            if rate <= 0.0 {
                t = crate::minute_floor(t) + 60;
                continue;
            }
            let slot = ((60.0 / rate).round() as i64).max(1);
            let slot_start = t.div_euclid(slot) * slot;
            let draw = splitmix64(self.seed ^ table.tag() ^ slot_start as u64);
            let ts = slot_start + (draw % slot as u64) as i64;
            if (from..to).contains(&ts) {
                out.push(ts);
            }
            t = slot_start + slot;
        }
        out
    }
}

/// Days of applications [`backfill`] writes before the demo starts: five weeks, so
/// `dwmon suggest` has the 4 weeks of complete windows it needs for hour-of-week seasons.
pub const APPLICATION_HISTORY_DAYS: i64 = 35;

/// Inserts history before the demo starts: [`APPLICATION_HISTORY_DAYS`] of applications and
/// an hour of executions and of ads, so the first checks have data, the histogram has a shape
/// and `suggest` has history to learn from. Returns rows inserted.
///
/// # Errors
/// Any SQLite error.
pub fn backfill(connection: &mut Connection, rates: &Rates) -> rusqlite::Result<u64> {
    let start = rates.start;
    let mut inserted = 0;
    let tx = connection.transaction()?;
    for (table, from) in [
        (
            Table::Applications,
            start - APPLICATION_HISTORY_DAYS * 86_400,
        ),
        (Table::ModelExecutions, start - 3_600),
        (Table::Impressions, start - 3_600),
        (Table::Conversions, start - 3_600),
    ] {
        for ts in rates.arrivals(table, from, start) {
            table.insert(&tx, ts)?;
            inserted += 1;
        }
    }
    tx.commit()?;
    Ok(inserted)
}

/// Background writers inserting records as (simulated) time passes.
pub struct Generator {
    path: PathBuf,
    rates: Rates,
    stop: Arc<AtomicBool>,
    inserted: Arc<AtomicU64>,
    threads: Vec<(Table, std::thread::JoinHandle<rusqlite::Result<i64>>)>,
}

impl Generator {
    /// Starts one writer thread per table, writing to the SQLite file at `path` every arrival
    /// from `rates.start` on (the end of [`backfill`]), each minute a minute before `clock` reaches it.
    pub fn start(path: PathBuf, rates: Rates, clock: SimClock) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let inserted = Arc::new(AtomicU64::new(0));
        let threads = Table::ALL
            .into_iter()
            .map(|table| {
                let (path, rates, stop, inserted) = (
                    path.clone(),
                    rates.clone(),
                    Arc::clone(&stop),
                    Arc::clone(&inserted),
                );
                let thread = std::thread::spawn(move || {
                    write_stream(&path, table, &rates, clock, &stop, &inserted).inspect_err(|e| {
                        eprintln!("demo generator ({table:?}) stopped: {e}");
                    })
                });
                (table, thread)
            })
            .collect();
        Generator {
            path,
            rates,
            stop,
            inserted,
            threads,
        }
    }

    /// Rows inserted so far.
    pub fn inserted(&self) -> u64 {
        self.inserted.load(Ordering::Relaxed)
    }

    /// Stops the writers, then writes the next `ahead` seconds of every table at once, so
    /// commands run after the demo (`dwmon once` a few minutes later) still see rows arriving.
    /// Returns the rows inserted in all.
    ///
    /// # Errors
    /// Any SQLite error writing the rows ahead.
    pub fn stop_leaving(self, ahead: i64) -> rusqlite::Result<u64> {
        self.stop.store(true, Ordering::Relaxed);
        let mut reached = Vec::new();
        for (table, thread) in self.threads {
            // A writer that failed has said so; nothing is written ahead for it.
            if let Ok(Ok(until)) = thread.join() {
                reached.push((table, until));
            }
        }
        let mut connection = Connection::open(&self.path)?;
        connection.busy_timeout(Duration::from_secs(5))?;
        let tx = connection.transaction()?;
        let mut ahead_rows = 0;
        for (table, until) in reached {
            for ts in self
                .rates
                .arrivals(table, until, until.saturating_add(ahead))
            {
                table.insert(&tx, ts)?;
                ahead_rows += 1;
            }
        }
        tx.commit()?;
        Ok(self.inserted.load(Ordering::Relaxed) + ahead_rows)
    }
}

/// Writes `table`'s arrivals from `rates.start` a minute at a time, [`WRITE_AHEAD_SECONDS`]
/// before each minute starts, until `stop`.
/// Returns the time up to which every arrival is written.
fn write_stream(
    path: &Path,
    table: Table,
    rates: &Rates,
    clock: SimClock,
    stop: &AtomicBool,
    inserted: &AtomicU64,
) -> rusqlite::Result<i64> {
    let mut connection = Connection::open(path)?;
    connection.busy_timeout(Duration::from_secs(5))?;
    // Sleeps in small steps so `stop` is seen promptly; false once stopped.
    let wait_until = |t: i64| loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let wait = clock.real_duration_until(t as f64);
        if wait.is_zero() {
            return true;
        }
        std::thread::sleep(wait.min(Duration::from_millis(100)));
    };
    let mut written_until = rates.start;
    loop {
        // Each minute's rows are written WRITE_AHEAD_SECONDS before the minute starts, in one
        // transaction: the cycle judging a minute then always finds every row before it, however
        // late a busy machine runs this thread (at --speed 600 a simulated second is 2 ms).
        let next_minute = crate::minute_floor(written_until) + 60;
        if !wait_until(next_minute - 60 - WRITE_AHEAD_SECONDS) {
            return Ok(written_until);
        }
        let tx = connection.transaction()?;
        let mut rows = 0;
        for ts in rates.arrivals(table, written_until, next_minute) {
            table.insert(&tx, ts)?;
            rows += 1;
        }
        tx.commit()?;
        inserted.fetch_add(rows, Ordering::Relaxed);
        written_until = next_minute;
    }
}

/// The demo's monitor, the seed's Rearview example: conversions / impressions over the last
/// 3 minutes (the `impressions` and `conversions` checkers) must be at least 10%.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConversionRate;

impl dwmon_core::Monitor for ConversionRate {
    fn name(&self) -> &str {
        "conversion_rate"
    }

    fn inputs(&self) -> Vec<dwmon_core::MonitorInput> {
        vec![
            dwmon_core::MonitorInput::new("impressions", 180),
            dwmon_core::MonitorInput::new("conversions", 180),
        ]
    }

    fn schedule(&self) -> dwmon_core::MonitorSchedule {
        dwmon_core::MonitorSchedule::every_minute()
    }

    fn judge(&self, counts: &dwmon_core::MonitorCounts) -> dwmon_core::Verdict {
        let impressions = counts.count("impressions");
        let conversions = counts.count("conversions");
        if impressions == 0 {
            return dwmon_core::Verdict::bad("no impressions in the last 3 minutes");
        }
        let rate = conversions as f64 / impressions as f64;
        let message = format!(
            "conversion rate {:.1}% ({conversions} of {impressions} impressions), want at least 10%",
            rate * 100.0
        );
        dwmon_core::Verdict::good_if(rate >= 0.10, message).with_value(rate)
    }
}

/// How long before its minute starts the live writers write that minute's rows.
const WRITE_AHEAD_SECONDS: i64 = 60;

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

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
    fn conversions_stop_at_demo_minutes_eight_and_nine() {
        let mut rng = StdRng::seed_from_u64(7);
        let rates = Rates::new(START, 20, chrono_tz::UTC, &mut rng);
        let per_minute = |table, minute: i64| {
            rates
                .arrivals(table, START + minute * 60, START + minute * 60 + 60)
                .len()
        };
        let conversions: Vec<usize> = (0..12).map(|m| per_minute(Table::Conversions, m)).collect();
        assert_eq!(conversions, [6, 6, 6, 6, 6, 6, 6, 6, 0, 0, 6, 6]);
        assert!((0..12).all(|m| per_minute(Table::Impressions, m) == 30));
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
        let arrivals = rates.arrivals(Table::ModelExecutions, START, START + 600);
        assert!(arrivals.iter().all(|t| (START..START + 600).contains(t)));
        assert!(arrivals.windows(2).all(|w| w[0] < w[1]), "{arrivals:?}");
        // Stratified: 10 minutes at 4 a minute is exactly 40, not 40 on average.
        assert_eq!(arrivals.len(), 40);
        // Not on a grid: the offsets within the 15-second slots vary.
        let offsets: std::collections::BTreeSet<i64> =
            arrivals.iter().map(|t| t.rem_euclid(15)).collect();
        assert!(offsets.len() > 5, "{offsets:?}");
    }

    #[test]
    fn the_sample_checkers_windows_hold_for_any_seed() {
        for seed in 0..20 {
            let mut rng = StdRng::seed_from_u64(seed);
            let rates = Rates::new(START, 0, chrono_tz::America::New_York, &mut rng);
            // A week of applications: every 10-minute window holds at least one
            // (new_applications, MINNUM1 LOOKBACKSECONDS600), night and weekend included.
            let week = rates.arrivals(Table::Applications, START - 7 * 86_400, START);
            let mut window_start = START - 7 * 86_400;
            for ts in week.iter().copied().chain([START]) {
                assert!(ts - window_start <= 600, "seed {seed}: gap before {ts}");
                window_start = ts;
            }
            // Executions outside incidents: every minute's 3-minute window holds exactly 12
            // (new_executions, MINNUM5 MAXNUM20 LOOKBACKSECONDS180).
            let hour = rates.arrivals(Table::ModelExecutions, START - 3600, START);
            for m in (START - 3600 + 180..=START).step_by(60) {
                let count = hour.iter().filter(|t| (m - 180..m).contains(*t)).count();
                assert_eq!(count, 12, "seed {seed} minute {m}");
            }
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_rows() {
        let plan = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            Rates::new(START, 60, chrono_tz::UTC, &mut rng)
        };
        let (a, b, c) = (plan(5), plan(5), plan(6));
        let rows = |rates: &Rates| rates.arrivals(Table::Applications, START - 86_400, START);
        assert_eq!(rows(&a), rows(&b));
        assert_ne!(rows(&a), rows(&c));
        // Splitting a range does not change its rows (the live writers go minute by minute).
        let whole = a.arrivals(Table::ModelExecutions, START, START + 3600);
        let mut parts = a.arrivals(Table::ModelExecutions, START, START + 1234);
        parts.extend(a.arrivals(Table::ModelExecutions, START + 1234, START + 3600));
        assert_eq!(whole, parts);
    }

    #[test]
    fn backfill_writes_the_tables() -> rusqlite::Result<()> {
        let dir =
            tempfile::tempdir().map_err(|e| rusqlite::Error::InvalidPath(e.to_string().into()))?;
        let mut connection = create_source(&dir.path().join("source.sqlite"))?;
        let mut rng = StdRng::seed_from_u64(3);
        let rates = Rates::new(START, 20, chrono_tz::UTC, &mut rng);
        let inserted = backfill(&mut connection, &rates)?;
        let count = |table: &str| -> rusqlite::Result<u64> {
            connection.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        };
        assert_eq!(
            count("applications")?
                + count("model_executions")?
                + count("ad_impressions")?
                + count("ad_conversions")?,
            inserted
        );
        // An hour of ads at 30 impressions and 6 conversions a minute, exactly.
        assert_eq!(count("ad_impressions")?, 60 * 30);
        assert_eq!(count("ad_conversions")?, 60 * 6);
        assert!(count("model_executions")? > 100);
        assert!(count("applications")? > 1000);
        Ok(())
    }
}
