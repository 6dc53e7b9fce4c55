//! The world of the SIGKILL crash-safety test (README "How a cycle works"), shared by the test
//! (`tests/crash_safety.rs`) and its child process (`src/bin/crash_child.rs`).
//!
//! Everything is a pure function of time: each checker watches a deterministic event stream,
//! so the test can compute every check's correct count (the model) without the store.

use async_trait::async_trait;
use dwmon_core::{
    CheckHandler, Checker, Event, FetchRequest, Fetched, HandlerError, Row, RowGetter, SourceError,
};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

/// Monday 2024-01-01 00:00 UTC: the first cycle minute.
pub const START: i64 = 1_704_067_200;

/// Seconds past the minute at which the child runs each cycle (`now` is mid-minute).
pub const CYCLE_OFFSET: i64 = 7;

/// How many of its latest events a fetch returns (a `LIMIT` in a real query).
pub const FETCH_LIMIT: i64 = 90;

/// The checkers: several requirements, schedules and windows, GOOD and BAD outcomes.
pub const CHECKERS: [(&str, &str); 3] = [
    (
        "alpha",
        "CHECKHOURS0-23 CHECKMINUTES0-59 WEEKDAYS WEEKENDS MINNUM5 MAXNUM6 LOOKBACKSECONDS120",
    ),
    (
        "beta",
        "CHECKHOURS0-23 CHECKMINUTES*/2 WEEKDAYS WEEKENDS MINNUM9 MAXNUM11 LOOKBACKSECONDS300\n\
         CHECKHOURS0-23 CHECKMINUTES*/5 WEEKDAYS WEEKENDS MINNUM0 MAXNUM1 LOOKBACKSECONDS60",
    ),
    (
        "gamma",
        "CHECKHOURS0-23 CHECKMINUTES*/3 WEEKDAYS WEEKENDS MINNUM3 MAXNUM4 LOOKBACKSECONDS180",
    ),
];

/// The parsed checkers.
///
/// # Panics
/// If the fixed texts above do not parse (a bug in the test itself).
pub fn checkers() -> Vec<Checker> {
    CHECKERS
        .iter()
        .map(|(name, requirements)| {
            let text = format!("__QUERY__\nevents of {name}\n__REQUIREMENTS__\n{requirements}\n");
            dwmon_core::parse_checker(&format!("{name}.dwmon"), &text)
                .unwrap_or_else(|e| panic!("crash-test checker {name} does not parse: {e}"))
        })
        .collect()
}

/// A checker's event stream: event `j` happens at `START - 3600 + offset + j * period`.
#[derive(Debug, Clone, Copy)]
pub struct Stream {
    period: i64,
    offset: i64,
}

impl Stream {
    /// The stream watched by `checker`.
    pub fn of(checker: &str) -> Stream {
        match checker {
            "alpha" => Stream {
                period: 20,
                offset: 0,
            },
            "beta" => Stream {
                period: 30,
                offset: 7,
            },
            _ => Stream {
                period: 45,
                offset: 13,
            },
        }
    }

    fn ts(self, j: i64) -> i64 {
        START - 3600 + self.offset + j * self.period
    }

    /// The events at or before `now`: their count.
    fn happened(self, now: i64) -> i64 {
        let since = now - (START - 3600 + self.offset);
        if since < 0 {
            0
        } else {
            since / self.period + 1
        }
    }

    /// What a fetch at `now` returns: the latest [`FETCH_LIMIT`] events, newest first.
    pub fn rows_at(self, checker: &str, now: i64) -> Vec<Row> {
        let last = self.happened(now);
        (last.saturating_sub(FETCH_LIMIT)..last)
            .rev()
            .map(|j| Row::new(format!("{checker}-{j}"), self.ts(j)))
            .collect()
    }

    /// The model: how many events happened in `from <= ts < to`.
    pub fn count(self, from: i64, to: i64) -> u64 {
        (self.happened(to - 1) - self.happened(from - 1)).max(0) as u64
    }
}

/// A [`RowGetter`] serving each checker's stream at the time the child sets.
#[derive(Debug, Default)]
pub struct StreamSource {
    now: AtomicI64,
}

impl StreamSource {
    /// Sets the time the next fetches see.
    pub fn set_now(&self, now: i64) {
        self.now.store(now, Ordering::SeqCst);
    }
}

#[async_trait]
impl RowGetter for StreamSource {
    async fn get_rows(&self, request: &FetchRequest<'_>) -> Result<Fetched, SourceError> {
        let now = self.now.load(Ordering::SeqCst);
        Ok(Fetched::from_rows(
            Stream::of(request.checker).rows_at(request.checker, now),
        ))
    }
}

/// A handler that appends one line per delivery to a file and syncs it before returning:
/// `check KEY STATUS COUNT`, or `error CHECKER TEXT` for error events.
#[derive(Debug)]
pub struct AppendHandler {
    file: Mutex<std::fs::File>,
}

impl AppendHandler {
    /// Appends to `path` (created if missing).
    ///
    /// # Errors
    /// If the file cannot be opened.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(AppendHandler {
            file: Mutex::new(file),
        })
    }
}

#[async_trait]
impl CheckHandler for AppendHandler {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        let line = match event {
            Event::Check(c) => format!("check {} {} {}\n", c.idempotency_key(), c.status, c.count),
            Event::Error(e) => format!("error {} {}\n", e.checker, e.error.replace('\n', " ")),
        };
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        // One write(2) per line with O_APPEND: a kill leaves whole lines or a torn last one.
        file.write_all(line.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(|e| HandlerError::new(format!("cannot append delivery: {e}")))
    }
}

/// One delivered check, as read back from the handler's file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The idempotency key.
    pub key: String,
    /// `GOOD` or `BAD`.
    pub status: String,
    /// The count.
    pub count: u64,
}

/// Parses the handler's file: the deliveries and the error lines. A torn last line (killed
/// mid-write) is ignored: the check it was for was not acknowledged and is delivered again.
pub fn parse_deliveries(text: &str) -> (Vec<Delivery>, Vec<String>) {
    let complete = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => "",
    };
    let mut deliveries = Vec::new();
    let mut errors = Vec::new();
    for line in complete.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        match fields.as_slice() {
            ["check", key, status, count] => match count.parse() {
                Ok(count) => deliveries.push(Delivery {
                    key: (*key).to_owned(),
                    status: (*status).to_owned(),
                    count,
                }),
                Err(_) => errors.push(format!("unreadable delivery line {line:?}")),
            },
            _ => errors.push(line.to_owned()),
        }
    }
    (deliveries, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_counts_half_open_windows() {
        let alpha = Stream::of("alpha");
        // alpha: one event every 20 s from START - 3600.
        assert_eq!(alpha.count(START, START + 60), 3);
        assert_eq!(alpha.count(START, START + 20), 1);
        assert_eq!(alpha.count(START + 1, START + 21), 1);
        let rows = alpha.rows_at("alpha", START);
        assert_eq!(rows.len() as i64, FETCH_LIMIT);
        assert_eq!(rows[0].timestamp, START);
        assert!(rows.iter().all(|r| r.timestamp <= START));
    }

    #[test]
    fn torn_last_lines_are_ignored() {
        let (d, e) = parse_deliveries("check a/0/60 GOOD 3\ncheck a/0/120 BA");
        assert_eq!(d.len(), 1);
        assert!(e.is_empty());
        assert_eq!(checkers().len(), 3);
    }
}
