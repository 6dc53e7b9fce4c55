//! Shared fixtures for dwmon benchmarks: a synthetic event stream, the checkers watching it,
//! a handler that only counts, and helpers for timing cycles and pre-filling a store.
//!
//! The workload of README "Performance": every checker's query returns the latest `rows_per_fetch` events
//! of a stream producing `events_per_minute` events a minute; advancing the clock by one
//! minute makes `events_per_minute / rows_per_fetch` of a fetch new (100 / 10,000 = 1%, so
//! 99% already seen).

use async_trait::async_trait;
use dwmon_core::{
    CheckHandler, Checker, Event, FetchRequest, Fetched, HandlerError, Row, RowGetter, SourceError,
};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A Monday, 2024-01-01 00:00 UTC: the benchmarks' epoch.
pub const START: i64 = 1_704_067_200;

/// The key of event `seq`: `ev` and the decimal number, like an integer primary key.
pub fn event_key(seq: i64) -> String {
    let mut digits = [0_u8; 20];
    let mut value = seq.unsigned_abs();
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    let mut key = String::with_capacity(2 + digits.len() - start);
    key.push_str("ev");
    key.extend(digits[start..].iter().map(|&d| char::from(d)));
    key
}

/// The event stream every checker watches: event `seq` happens at `seq * 60 /
/// events_per_minute` (epoch seconds); a fetch at `now` returns the latest `rows_per_fetch`
/// events up to `now`, oldest first. The clock is set by the driver ([`SyntheticSource::set_now`])
/// because a [`RowGetter`] is not told the time.
#[derive(Debug)]
pub struct SyntheticSource {
    now: AtomicI64,
    rows_per_fetch: i64,
    events_per_minute: i64,
    fetches: AtomicU64,
}

impl SyntheticSource {
    /// A stream of `events_per_minute`, fetched `rows_per_fetch` rows at a time.
    pub fn new(rows_per_fetch: i64, events_per_minute: i64) -> Self {
        SyntheticSource {
            now: AtomicI64::new(START),
            rows_per_fetch,
            events_per_minute: events_per_minute.max(1),
            fetches: AtomicU64::new(0),
        }
    }

    /// Sets the time the next fetches see.
    pub fn set_now(&self, now: i64) {
        self.now.store(now, Ordering::Relaxed);
    }

    /// How many fetches were served.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The sequence number of the last event at or before `now`.
    pub fn last_seq(&self, now: i64) -> i64 {
        now.div_euclid(60) * self.events_per_minute
            + now.rem_euclid(60) * self.events_per_minute / 60
    }

    /// The timestamp of event `seq`.
    pub fn timestamp(&self, seq: i64) -> i64 {
        seq.div_euclid(self.events_per_minute) * 60
            + seq.rem_euclid(self.events_per_minute) * 60 / self.events_per_minute
    }

    /// The rows a fetch at `now` returns.
    pub fn rows_at(&self, now: i64) -> Vec<Row> {
        let last = self.last_seq(now);
        (last - self.rows_per_fetch + 1..=last)
            .map(|seq| Row {
                key: event_key(seq),
                timestamp: self.timestamp(seq),
            })
            .collect()
    }
}

#[async_trait]
impl RowGetter for SyntheticSource {
    async fn get_rows(&self, _request: &FetchRequest<'_>) -> Result<Fetched, SourceError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        Ok(Fetched::from_rows(
            self.rows_at(self.now.load(Ordering::Relaxed)),
        ))
    }
}

/// A source that answers like `inner` after waiting `latency`: a remote query's time, so
/// fetching dominates a cycle as it does against real databases (the wait costs no CPU).
#[derive(Debug)]
pub struct Delayed<S> {
    /// The source answering.
    pub inner: Arc<S>,
    /// How long each fetch waits before it answers.
    pub latency: Duration,
}

#[async_trait]
impl<S: RowGetter + 'static> RowGetter for Delayed<S> {
    async fn get_rows(&self, request: &FetchRequest<'_>) -> Result<Fetched, SourceError> {
        tokio::time::sleep(self.latency).await;
        self.inner.get_rows(request).await
    }
}

/// CPU time (user + system) the PostgreSQL backends serving connections whose
/// `application_name` is `application` have used so far, seconds, read from `/proc` (the
/// server must run on this machine). Backends that ended are not counted, so read it while
/// the connections are open.
///
/// # Errors
/// When `pg_stat_activity` cannot be read.
pub async fn backend_cpu_seconds(
    admin: &tokio_postgres::Client,
    application: &str,
) -> Result<f64, tokio_postgres::Error> {
    let rows = admin
        .query(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
            &[&application],
        )
        .await?;
    let mut total = 0.0;
    for row in rows {
        let pid: i32 = row.get(0);
        if let Some(seconds) = process_cpu_seconds(&format!("/proc/{pid}/stat")) {
            total += seconds;
        }
    }
    Ok(total)
}

/// User + system CPU time of the process whose `/proc/PID/stat` is at `stat_path`, seconds.
fn process_cpu_seconds(stat_path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(stat_path).ok()?;
    // Fields after the command name (which may hold spaces) start at state (field 3).
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // USER_HZ is 100 on every Linux platform dwmon runs on.
    Some((utime + stime) / 100.0)
}

/// Runs `sql` on the PostgreSQL server at `url` over a connection of its own.
///
/// # Errors
/// When the server cannot be reached or the statement fails.
pub async fn admin_sql(url: &str, sql: &str) -> Result<(), tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    let driver = tokio::spawn(connection);
    client.batch_execute(sql).await?;
    drop(client);
    let _ = driver.await;
    Ok(())
}

/// A connection to `url` for a driver's own queries (its connection task spawned).
///
/// # Errors
/// When the server cannot be reached.
pub async fn admin_client(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// `url` with `key=value` added to its query string.
pub fn with_param(url: &str, key: &str, value: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{key}={value}")
}

/// Reads `--name a,b,c` from the command line, or `default`.
pub fn list_arg<T: std::str::FromStr + Clone>(name: &str, default: &[T]) -> Vec<T> {
    let text: String = arg(name, String::new());
    if text.is_empty() {
        return default.to_vec();
    }
    text.split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect()
}

/// A handler that counts what it receives and does nothing else.
#[derive(Debug, Default)]
pub struct CountingHandler {
    checks: AtomicU64,
    errors: AtomicU64,
}

impl CountingHandler {
    /// Check records received.
    pub fn checks(&self) -> u64 {
        self.checks.load(Ordering::Relaxed)
    }

    /// Error events received.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl CheckHandler for CountingHandler {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        match event {
            Event::Check(_) => self.checks.fetch_add(1, Ordering::Relaxed),
            Event::Error(_) => self.errors.fetch_add(1, Ordering::Relaxed),
        };
        Ok(())
    }
}

/// `count` checkers `c0000`, `c0001`, ... each with one every-minute requirement over a
/// 180 s window whose bounds fit `events_per_minute` (so the checks are GOOD).
///
/// # Panics
/// Never for the fixed text used (the parse is checked by the benches' own test).
pub fn checkers(count: usize, events_per_minute: u64) -> Vec<Checker> {
    let expected = events_per_minute * 3;
    (0..count)
        .map(|i| {
            let text = format!(
                "__QUERY__\nSELECT id AS dwmon_unique_key, ts AS dwmon_timestamp FROM events\n\
                 __REQUIREMENTS__\n\
                 CHECKHOURS0-23 CHECKMINUTES0-59 WEEKDAYS WEEKENDS MINNUM{} MAXNUM{} LOOKBACKSECONDS180\n",
                expected.saturating_sub(expected / 10),
                expected + expected / 10,
            );
            dwmon_core::parse_checker(&format!("c{i:04}.dwmon"), &text)
                .unwrap_or_else(|e| panic!("benchmark checker does not parse: {e}"))
        })
        .collect()
}

/// Everything a benchmark driver needs around an engine.
pub struct Fixture {
    /// The event stream.
    pub source: Arc<SyntheticSource>,
    /// The counting handler.
    pub handler: Arc<CountingHandler>,
    /// The engine under test.
    pub engine: dwmon_core::Engine,
}

impl Fixture {
    /// An engine over `store` with `checkers` checkers watching a synthetic stream.
    pub fn new(
        store: Arc<dyn dwmon_core::Store>,
        checkers: usize,
        rows_per_fetch: i64,
        events_per_minute: i64,
    ) -> Self {
        let source = Arc::new(SyntheticSource::new(rows_per_fetch, events_per_minute));
        let handler = Arc::new(CountingHandler::default());
        let engine = dwmon_core::Engine::new(source.clone(), store, handler.clone()).with_checkers(
            self::checkers(checkers, u64::try_from(events_per_minute).unwrap_or(1)),
        );
        Fixture {
            source,
            handler,
            engine,
        }
    }

    /// Runs one cycle at `now`, returning its wall time and report.
    pub async fn cycle(&self, now: i64) -> (Duration, dwmon_core::engine::CycleReport) {
        self.source.set_now(now);
        let started = Instant::now();
        let report = self.engine.run_cycle(now).await;
        (started.elapsed(), report)
    }
}

/// A one-line summary of a cycle report for driver output.
pub fn describe(report: &dwmon_core::engine::CycleReport) -> String {
    let checks = report.checks().count();
    let errors = report.errors().count();
    let fetched: u64 = report.checkers.iter().map(|c| c.rows_fetched).sum();
    let new: u64 = report.checkers.iter().map(|c| c.new_rows).sum();
    let delivered: u64 = report.checkers.iter().map(|c| c.delivered).sum();
    let purged: u64 = report.checkers.iter().map(|c| c.purged_rows).sum();
    format!(
        "fetched {fetched} rows, {new} new, {checks} checks, {delivered} delivered, \
         {purged} purged, {errors} errors"
    )
}

/// Median of `values` (sorted in place).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Reads `--name value` from the command line, or `default`.
pub fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU time (user + system, all threads) this process has used so far, seconds (Linux
/// `/proc/self/stat`, 10 ms resolution). Unlike wall time it hardly depends on what else the
/// machine runs, so a long run's drift shows in it even on a loaded machine.
pub fn cpu_seconds() -> Option<f64> {
    process_cpu_seconds("/proc/self/stat")
}

/// `min / median / max` of `values`, e.g. `1.10 / 1.17 / 1.24`.
pub fn spread(values: &[f64]) -> String {
    let mut sorted = values.to_vec();
    let med = median(&mut sorted);
    format!(
        "{:.2} / {med:.2} / {:.2}",
        sorted.first().copied().unwrap_or(f64::NAN),
        sorted.last().copied().unwrap_or(f64::NAN)
    )
}

/// Peak resident set size of this process so far (Linux `VmHWM`), MiB.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_minute_later_one_percent_is_new() {
        let source = SyntheticSource::new(10_000, 100);
        let a = source.rows_at(START);
        let b = source.rows_at(START + 60);
        assert_eq!(a.len(), 10_000);
        let seen: std::collections::HashSet<&str> = a.iter().map(|r| r.key.as_str()).collect();
        let new = b.iter().filter(|r| !seen.contains(r.key.as_str())).count();
        assert_eq!(new, 100);
        assert!(b.iter().all(|r| r.timestamp <= START + 60));
        assert_eq!(event_key(0), "ev0");
        assert_eq!(event_key(1234567), "ev1234567");
    }

    #[test]
    fn cpu_time_is_read_and_spread_is_min_median_max() {
        assert!(cpu_seconds().is_some_and(|s| s >= 0.0));
        assert_eq!(spread(&[3.0, 1.0, 2.0]), "1.00 / 2.00 / 3.00");
    }

    #[test]
    fn checkers_parse() {
        let checkers = checkers(3, 100);
        assert_eq!(checkers[2].name, "c0002");
        assert_eq!(checkers[0].requirements.len(), 1);
    }
}
