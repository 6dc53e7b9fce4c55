//! What a cycle produces: check records and error events (README "How a cycle works"), as handed to a
//! [`CheckHandler`](crate::CheckHandler) and printed by the CLI as JSON lines.

use serde::{Deserialize, Serialize};

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    /// `MINNUM <= count <= MAXNUM`.
    Good,
    /// The count is outside the bounds.
    Bad,
    /// The checker could not be evaluated (fetch failed, rows rejected, bad file, ...).
    Error,
    /// A due minute that left the horizon unchecked (a long outage, a starved checker): no
    /// count was made (the record's `count` is 0 and means nothing). Neither GOOD nor BAD;
    /// alerting ignores it (it neither resolves nor starts a streak).
    Missed,
}

impl Status {
    /// `GOOD`, `BAD`, `ERROR` or `MISSED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Good => "GOOD",
            Status::Bad => "BAD",
            Status::Error => "ERROR",
            Status::Missed => "MISSED",
        }
    }

    /// Judges a count against inclusive bounds: the pure rule of step 5 of a cycle (README "How a cycle works").
    pub fn judge(count: u64, min: u64, max: u64) -> Status {
        if min <= count && count <= max {
            Status::Good
        } else {
            Status::Bad
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "GOOD" => Ok(Status::Good),
            "BAD" => Ok(Status::Bad),
            "ERROR" => Ok(Status::Error),
            "MISSED" => Ok(Status::Missed),
            other => Err(format!("unknown status {other:?}")),
        }
    }
}

/// One check of one requirement at one minute (README "How a cycle works"). Field names are fixed: they are the
/// JSON the CLI prints and the body handlers send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRecord {
    /// Checker name (file stem).
    pub checker: String,
    /// 0-based index of the requirement line within the checker.
    pub requirement_index: usize,
    /// The requirement in canonical text.
    pub requirement: String,
    /// The checked minute, epoch seconds (a multiple of 60).
    pub minute: i64,
    /// The minute as RFC 3339 with offset in the checker's zone.
    pub minute_local: String,
    /// IANA zone name used for the schedule.
    pub timezone: String,
    /// The window length `L`.
    pub lookback_seconds: u64,
    /// Stored rows with `minute - L <= ts < minute`.
    pub count: u64,
    /// `MINNUM`.
    pub min: u64,
    /// `MAXNUM`.
    pub max: u64,
    /// `GOOD` or `BAD`.
    pub status: Status,
    /// The checker's `__EXTRA__` JSON, untouched (a monitor's [`Monitor::extra`]).
    ///
    /// [`Monitor::extra`]: crate::Monitor::extra
    pub extra: serde_json::Value,
    /// What a monitor said (its message, value and the counts it read); absent in the check
    /// of a checker. A monitor's record is named `monitor:NAME` and has `count`, `min` and
    /// `max` 0 (see [`crate::monitor`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor: Option<MonitorReport>,
    /// Why the requirement's `MINDURATION` / `MAXDURATION` made the check BAD (push
    /// checkers): the first run that broke a bound, its duration, and how many did. Absent
    /// when no run broke a bound (the status is then the count's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runs: Option<crate::runs::RunsReport>,
}

/// The part of a monitor's [`CheckRecord`] that a checker's check does not have.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MonitorReport {
    /// The monitor's message, for people (e.g. `conversion rate 6.7% < 10%`).
    pub message: String,
    /// The monitor's value, if it gave one (e.g. the rate); always finite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// The windowed counts the monitor judged, in the order it declared its inputs.
    pub inputs: Vec<InputCount>,
}

impl PartialEq for MonitorReport {
    fn eq(&self, other: &Self) -> bool {
        self.message == other.message
            && self.value.map(f64::to_bits) == other.value.map(f64::to_bits)
            && self.inputs == other.inputs
    }
}

// Equality compares the value's bits, so it is reflexive (values are finite anyway).
impl Eq for MonitorReport {}

/// One windowed count a monitor read: `count` rows of `checker` with
/// `minute - lookback_seconds <= ts < minute`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputCount {
    /// The checker read.
    pub checker: String,
    /// The window length.
    pub lookback_seconds: u64,
    /// The count.
    pub count: u64,
}

impl CheckRecord {
    /// The stable idempotency key `checker/requirement_index/minute` (README "How a cycle
    /// works"); for a monitor `monitor:NAME/0/minute`, which no checker's key can equal (a
    /// checker name has no `:`).
    pub fn idempotency_key(&self) -> String {
        format!(
            "{}/{}/{}",
            self.checker, self.requirement_index, self.minute
        )
    }
}

/// What went wrong in an [`ErrorEvent`], so handlers can tell a broken source from a data
/// problem (serialized in snake case: `"fetch"`, `"rejected_rows"`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The rows could not be fetched (source down, query failed, timeout, unknown source).
    /// Also the kind of events serialized before kinds existed.
    #[default]
    Fetch,
    /// The store failed (reading, storing rows, counting, recording, purging).
    Store,
    /// The source returned rows that could not be used; the checks of this cycle were still
    /// made with the good rows and recorded.
    RejectedRows,
    /// The checker file could not be loaded, or its name is taken by another checker.
    CheckerFile,
    /// A bug: checking the checker panicked.
    Internal,
    /// The store's last checked minute of the checker is after this cycle's minute (the
    /// clock went back, a VM snapshot was restored, or a run used a future `--now`): no
    /// minute is checked until the clock passes it or the future records are removed.
    ClockBehind,
    /// A monitor could not be judged: it is declared wrongly, reads a checker that is not
    /// loaded, or its `judge` panicked (see [`crate::monitor`]).
    Monitor,
    /// Check records could not be delivered to a handler target (an alert channel) for
    /// longer than the give-up age (`EngineConfig::delivery_give_up_seconds`, default 24 h):
    /// the engine gave them up for that target. The event carries no `__EXTRA__` (`{}`), so
    /// it goes to the default route, not to the target that failed.
    DeliveryGivenUp,
}

/// A checker that could not be evaluated this cycle (status always `ERROR`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorEvent {
    /// Checker name.
    pub checker: String,
    /// The cycle minute at which the error happened.
    pub minute: i64,
    /// The minute as RFC 3339 in the checker's zone (UTC when unknown).
    pub minute_local: String,
    /// IANA zone name.
    pub timezone: String,
    /// Always [`Status::Error`].
    pub status: Status,
    /// What went wrong, for a person.
    pub error: String,
    /// The checker's `__EXTRA__` JSON (`{}` when the file could not be read).
    pub extra: serde_json::Value,
    /// What kind of problem it is (absent in older serialized events: [`ErrorKind::Fetch`]).
    #[serde(default)]
    pub kind: ErrorKind,
}

impl ErrorEvent {
    /// Key identifying this event: `checker/error/minute`.
    pub fn idempotency_key(&self) -> String {
        format!("{}/error/{}", self.checker, self.minute)
    }
}

/// What a [`CheckHandler`](crate::CheckHandler) receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Event {
    /// A recorded check.
    Check(CheckRecord),
    /// A checker that could not be evaluated.
    Error(ErrorEvent),
}

impl Event {
    /// The checker this event is about.
    pub fn checker(&self) -> &str {
        match self {
            Event::Check(c) => &c.checker,
            Event::Error(e) => &e.checker,
        }
    }

    /// The event's status.
    pub fn status(&self) -> Status {
        match self {
            Event::Check(c) => c.status,
            Event::Error(e) => e.status,
        }
    }

    /// Stable idempotency key (see [`CheckRecord::idempotency_key`]).
    pub fn idempotency_key(&self) -> String {
        match self {
            Event::Check(c) => c.idempotency_key(),
            Event::Error(e) => e.idempotency_key(),
        }
    }
}
