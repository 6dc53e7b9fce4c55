//! [`Monitor`]: a check written in code over the windowed counts of several checkers (the
//! seed's Rearview monitors), e.g. "conversions / impressions over the last 3 minutes is at
//! least 10%".
//!
//! # How a monitor runs
//!
//! A monitor declares the checkers it reads, each with its own window ([`MonitorInput`]), and
//! when it is due ([`MonitorSchedule`]: the schedule options of a requirement line, plus its
//! alert options). Each cycle, after every checker has been checked, the engine judges the
//! monitor's due minutes: for a minute `m` it counts each input's stored rows with
//! `m - L <= ts < m` (the checkers' own first-seen rows, counted as their checks count them)
//! and hands the counts to [`Monitor::judge`], which says GOOD or BAD with a message and a
//! value ([`Verdict`]).
//!
//! - A minute is judged only once **every input checker has been checked at that minute or
//!   later** (so its rows up to `m` were fetched): give the input checkers schedules at least
//!   as frequent as the monitor's. Until then the minute waits; a minute that leaves the
//!   monitor's horizon (`10 * ceil(L / 60)` minutes for its longest window `L`) unjudged is
//!   recorded as `MISSED`. A monitor's first minute is the cycle's minute, as a checker's.
//! - Its checks are [`CheckRecord`]s of the checker name `monitor:NAME` ([`record_name`]),
//!   requirement index 0, `count`/`min`/`max` 0, `lookback_seconds` the longest window, and
//!   the verdict in [`CheckRecord::monitor`]. They are recorded in the check log, delivered
//!   through the outbox and the handler (printer, alerts) and shown by `dwmon status` like a
//!   checker's; their idempotency keys `monitor:NAME/0/minute` cannot collide with a
//!   checker's (a checker name has no `:`).
//! - An input checker that is not loaded, an invalid declaration (see [`validate`]) or a
//!   `judge` that panics is an `ERROR` event of kind [`ErrorKind::Monitor`] for the monitor.
//!
//! [`ErrorKind::Monitor`]: crate::ErrorKind::Monitor

use crate::checker_file::{is_valid_checker_name, MAX_NAME_LEN};
use crate::record::{CheckRecord, InputCount, Status};
use crate::requirement::{Requirement, RequirementError, Schedule};
use std::sync::Arc;

/// The prefix of a monitor's checker name in its records: `monitor:NAME`.
pub const RECORD_PREFIX: &str = "monitor:";

/// The checker name a monitor's records carry: `monitor:NAME`.
pub fn record_name(monitor: &str) -> String {
    format!("{RECORD_PREFIX}{monitor}")
}

/// Whether `checker` (a record's checker name) is a monitor's.
pub fn is_monitor_record(checker: &str) -> bool {
    checker.starts_with(RECORD_PREFIX)
}

/// One checker a monitor reads, with its window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorInput {
    /// The checker's name (its file stem).
    pub checker: String,
    /// The window `L`: the monitor at minute `m` gets the count of `m - L <= ts < m`.
    pub lookback_seconds: u64,
}

impl MonitorInput {
    /// Reads `checker` over the last `lookback_seconds`.
    pub fn new(checker: impl Into<String>, lookback_seconds: u64) -> Self {
        MonitorInput {
            checker: checker.into(),
            lookback_seconds,
        }
    }
}

/// When a monitor is due and how it alerts: a requirement line without its bounds and window,
/// i.e. the schedule options (`CHECKMINUTES`, `CHECKHOURS`, `CHECKDAYS`, `CHECKMONTHS`,
/// `CHECKWEEKDAYS`, `WEEKDAYS`, `WEEKENDS`) and the alert options (`SEVERITY…`,
/// `FAILAFTER`, `RECOVERAFTER`, `ALERTKEY`) of docs/FORMAT.md.
///
/// ```
/// use dwmon_core::monitor::MonitorSchedule;
/// let schedule = MonitorSchedule::parse("CHECKHOURS0-23 CHECKMINUTES*/5 WEEKDAYS WEEKENDS FAILAFTER2")?;
/// assert_eq!(schedule.text(), "CHECKHOURS0-23 CHECKMINUTES*/5 WEEKDAYS WEEKENDS FAILAFTER2");
/// assert!(MonitorSchedule::parse("CHECKHOURS0-23 CHECKMINUTES0 WEEKDAYS MINNUM1").is_err());
/// # Ok::<(), dwmon_core::RequirementError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorSchedule {
    text: String,
    requirement: Requirement,
}

/// The options a monitor's schedule may not have: the monitor judges, not bounds.
const NOT_IN_A_MONITOR: [&str; 4] = ["MINNUM", "MAXNUM", "LOOKBACKSECONDS", "DELAYSECONDS"];

impl MonitorSchedule {
    /// Parses the schedule and alert options of a requirement line.
    ///
    /// # Errors
    /// A [`RequirementError`] with the column of the offending option: any error of the
    /// requirement grammar, or `MINNUM`, `MAXNUM`, `LOOKBACKSECONDS` or `DELAYSECONDS`
    /// (a monitor's windows are its inputs', its bounds are in its code).
    pub fn parse(text: &str) -> Result<Self, RequirementError> {
        let mut column = 1;
        for token in text.split_whitespace() {
            let at = text[column - 1..].find(token).map_or(0, |i| i + column - 1);
            column = at + token.len() + 1;
            if let Some(option) = NOT_IN_A_MONITOR.iter().find(|o| token.starts_with(**o)) {
                return Err(RequirementError {
                    column: text[..at].chars().count() + 1,
                    kind: crate::RequirementErrorKind::UnknownOption,
                    message: format!(
                        "{option} is not an option of a monitor's schedule; expected only \
                         schedule and alert options (the monitor's code judges its inputs' \
                         counts)"
                    ),
                });
            }
        }
        let line = format!("{text} MINNUM0 MAXNUM0 LOOKBACKSECONDS60");
        let end = text.trim_end().chars().count() + 1;
        let requirement = Requirement::parse(&line).map_err(|mut e| {
            // A missing option is reported after the line's end: the end of `text`.
            e.column = e.column.min(end);
            e
        })?;
        Ok(MonitorSchedule {
            text: text.split_whitespace().collect::<Vec<_>>().join(" "),
            requirement,
        })
    }

    /// Every minute of every day.
    pub fn every_minute() -> Self {
        // The literal is a valid schedule: parsing cannot fail.
        Self::parse("CHECKHOURS0-23 CHECKMINUTES0-59 WEEKDAYS WEEKENDS")
            .unwrap_or_else(|_| unreachable!("a valid literal schedule"))
    }

    /// The options as given (whitespace normalised): the `requirement` of the monitor's
    /// records, from which alerting reads `FAILAFTER`, `SEVERITY…` and the rest.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The minutes it matches.
    pub fn schedule(&self) -> &Schedule {
        &self.requirement.schedule
    }
}

/// The windowed counts a monitor judges at one minute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorCounts {
    /// The minute judged (epoch seconds, a multiple of 60).
    pub minute: i64,
    /// One count per declared input, in declaration order.
    pub inputs: Vec<InputCount>,
}

impl MonitorCounts {
    /// The count of the first input reading `checker` (0 if the monitor declared none).
    pub fn count(&self, checker: &str) -> u64 {
        self.get(checker).unwrap_or(0)
    }

    /// The count of the first input reading `checker`, if the monitor declared one.
    pub fn get(&self, checker: &str) -> Option<u64> {
        self.inputs
            .iter()
            .find(|i| i.checker == checker)
            .map(|i| i.count)
    }

    /// The count of `checker` over the window of `lookback_seconds` (for a monitor reading
    /// one checker over several windows).
    pub fn count_over(&self, checker: &str, lookback_seconds: u64) -> Option<u64> {
        self.inputs
            .iter()
            .find(|i| i.checker == checker && i.lookback_seconds == lookback_seconds)
            .map(|i| i.count)
    }
}

/// What a monitor says about one minute: GOOD or BAD, a message for people and optionally a
/// value (the rate, the ratio, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    status: Status,
    message: String,
    value: Option<f64>,
}

impl Verdict {
    /// All is well.
    pub fn good(message: impl Into<String>) -> Self {
        Verdict {
            status: Status::Good,
            message: message.into(),
            value: None,
        }
    }

    /// Something is wrong: alerting treats it as a BAD check.
    pub fn bad(message: impl Into<String>) -> Self {
        Verdict {
            status: Status::Bad,
            message: message.into(),
            value: None,
        }
    }

    /// GOOD when `good`, else BAD, with `message`.
    pub fn good_if(good: bool, message: impl Into<String>) -> Self {
        if good {
            Verdict::good(message)
        } else {
            Verdict::bad(message)
        }
    }

    /// With a value (a NaN or an infinity is dropped: JSON has no such numbers).
    pub fn with_value(mut self, value: f64) -> Self {
        self.value = value.is_finite().then_some(value);
        self
    }

    /// `GOOD` or `BAD`.
    pub fn status(&self) -> Status {
        self.status
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The value, if any.
    pub fn value(&self) -> Option<f64> {
        self.value
    }
}

/// A check written in code over the windowed counts of several checkers; see the [module
/// docs](self) for when it runs and what it records. Register it with
/// [`Engine::with_monitors`](crate::Engine::with_monitors) or, in an organisation's binary,
/// `dwmon::App::monitor`.
///
/// The seed's Rearview example: alert when conversions / impressions drops below 10%.
///
/// ```
/// use dwmon_core::monitor::{Monitor, MonitorCounts, MonitorInput, MonitorSchedule, Verdict};
///
/// /// Conversions per impression over the last 3 minutes, at least 10%.
/// struct ConversionRate;
///
/// impl Monitor for ConversionRate {
///     fn name(&self) -> &str {
///         "conversion_rate"
///     }
///
///     fn inputs(&self) -> Vec<MonitorInput> {
///         vec![MonitorInput::new("impressions", 180), MonitorInput::new("conversions", 180)]
///     }
///
///     fn schedule(&self) -> MonitorSchedule {
///         MonitorSchedule::every_minute()
///     }
///
///     fn judge(&self, counts: &MonitorCounts) -> Verdict {
///         let impressions = counts.count("impressions");
///         let conversions = counts.count("conversions");
///         if impressions == 0 {
///             return Verdict::bad("no impressions in the last 3 minutes");
///         }
///         let rate = conversions as f64 / impressions as f64;
///         let message = format!("conversion rate {:.1}% ({conversions} of {impressions})", rate * 100.0);
///         Verdict::good_if(rate >= 0.10, message).with_value(rate)
///     }
/// }
///
/// let counts = MonitorCounts {
///     minute: 1_700_000_040,
///     inputs: vec![
///         dwmon_core::InputCount { checker: "impressions".into(), lookback_seconds: 180, count: 90 },
///         dwmon_core::InputCount { checker: "conversions".into(), lookback_seconds: 180, count: 6 },
///     ],
/// };
/// let verdict = ConversionRate.judge(&counts);
/// assert_eq!(verdict.status(), dwmon_core::Status::Bad);
/// assert_eq!(verdict.message(), "conversion rate 6.7% (6 of 90)");
/// dwmon_core::monitor::validate(&ConversionRate)?;
/// # Ok::<(), dwmon_core::monitor::MonitorError>(())
/// ```
pub trait Monitor: Send + Sync {
    /// The monitor's name: 1 to 100 characters `[A-Za-z0-9_.-]`, like a checker's. Its
    /// records are named `monitor:NAME`.
    fn name(&self) -> &str;

    /// The checkers it reads, each with its own window (at least one).
    fn inputs(&self) -> Vec<MonitorInput>;

    /// When it is due, and its alert options.
    fn schedule(&self) -> MonitorSchedule;

    /// Judges the counts of one due minute. Pure: no I/O, no clock (the minute is in
    /// `counts`), so a minute judged again after a restart gets the same verdict.
    fn judge(&self, counts: &MonitorCounts) -> Verdict;

    /// The JSON handed to handlers in each record's `extra`, like a checker's `__EXTRA__`
    /// (e.g. `{"alert": {"slack": "#growth"}}` routes its alerts). Default `{}`.
    fn extra(&self) -> serde_json::Value {
        serde_json::json!({})
    }

    /// The zone its schedule matches in (default: the runner's).
    fn timezone(&self) -> Option<chrono_tz::Tz> {
        None
    }
}

macro_rules! forward_monitor {
    ($($ty:ty),*) => {$(
        impl<T: Monitor + ?Sized> Monitor for $ty {
            fn name(&self) -> &str {
                (**self).name()
            }
            fn inputs(&self) -> Vec<MonitorInput> {
                (**self).inputs()
            }
            fn schedule(&self) -> MonitorSchedule {
                (**self).schedule()
            }
            fn judge(&self, counts: &MonitorCounts) -> Verdict {
                (**self).judge(counts)
            }
            fn extra(&self) -> serde_json::Value {
                (**self).extra()
            }
            fn timezone(&self) -> Option<chrono_tz::Tz> {
                (**self).timezone()
            }
        }
    )*};
}

forward_monitor!(&T, Box<T>, Arc<T>);

/// A monitor that cannot run; the message says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MonitorError {
    /// The name is not 1 to 100 characters `[A-Za-z0-9_.-]`.
    #[error("invalid monitor name {name:?}: expected 1 to {MAX_NAME_LEN} characters from A-Z a-z 0-9 _ . -")]
    InvalidName {
        /// The name given.
        name: String,
    },
    /// Two monitors have the same name.
    #[error("monitor {name}: the name is taken by another monitor")]
    DuplicateName {
        /// The name.
        name: String,
    },
    /// The monitor declares no input.
    #[error("monitor {monitor}: declares no input checker; expected at least one")]
    NoInputs {
        /// The monitor.
        monitor: String,
    },
    /// An input is not a checker name or its window is out of range.
    #[error("monitor {monitor}: input {checker:?}: {message}")]
    InvalidInput {
        /// The monitor.
        monitor: String,
        /// The input's checker name.
        checker: String,
        /// What is wrong.
        message: String,
    },
    /// An input checker is not loaded.
    #[error("monitor {monitor}: reads checker {checker}, which is not loaded{hint}")]
    UnknownInput {
        /// The monitor.
        monitor: String,
        /// The checker it reads.
        checker: String,
        /// ` (its file failed to load: ...)` or empty.
        hint: String,
    },
}

/// Checks a monitor's declaration: a valid name, at least one input, valid input checker
/// names and windows of 1 s to 366 days.
///
/// # Errors
/// The first problem found.
pub fn validate(monitor: &dyn Monitor) -> Result<(), MonitorError> {
    let name = monitor.name();
    if !is_valid_checker_name(name) {
        return Err(MonitorError::InvalidName {
            name: crate::requirement::excerpt(name).into_owned(),
        });
    }
    let inputs = monitor.inputs();
    if inputs.is_empty() {
        return Err(MonitorError::NoInputs {
            monitor: name.to_string(),
        });
    }
    for input in &inputs {
        let problem = if !is_valid_checker_name(&input.checker) {
            Some("not a checker name (1 to 100 characters from A-Z a-z 0-9 _ . -)".to_string())
        } else if !(1..=crate::requirement::MAX_LOOKBACK_SECONDS).contains(&input.lookback_seconds)
        {
            Some(format!(
                "window of {} s; expected 1 to {} s",
                input.lookback_seconds,
                crate::requirement::MAX_LOOKBACK_SECONDS
            ))
        } else {
            None
        };
        if let Some(message) = problem {
            return Err(MonitorError::InvalidInput {
                monitor: name.to_string(),
                checker: crate::requirement::excerpt(&input.checker).into_owned(),
                message,
            });
        }
    }
    Ok(())
}

/// [`validate`] for a set of monitors, plus unique names.
///
/// # Errors
/// The first problem found.
pub fn validate_all(monitors: &[Arc<dyn Monitor>]) -> Result<(), MonitorError> {
    let mut seen = std::collections::HashSet::new();
    for monitor in monitors {
        validate(monitor.as_ref())?;
        if !seen.insert(monitor.name().to_string()) {
            return Err(MonitorError::DuplicateName {
                name: monitor.name().to_string(),
            });
        }
    }
    Ok(())
}

/// The longest window of `inputs` (at least 1 s).
pub fn longest_window(inputs: &[MonitorInput]) -> u64 {
    inputs
        .iter()
        .map(|i| i.lookback_seconds)
        .max()
        .unwrap_or(1)
        .max(1)
}

/// Step 2 of a cycle for a monitor: its candidate minutes and the due minutes that left its
/// horizon unjudged (`MISSED`), both ascending, at the cycle minute `minute`.
///
/// `last` is the monitor's last judged minute (`None`: its first cycle, when only `minute`
/// itself can be a candidate); `ready` is the earliest of its input checkers' last checked
/// minutes (`None` while one has never been checked): no minute after it is judged yet. The
/// horizon is `10 * ceil(L / 60)` minutes for the longest window `L`, as a requirement's.
///
/// ```
/// use dwmon_core::monitor::{due_minutes, MonitorSchedule};
/// let every = MonitorSchedule::every_minute();
/// let m = 1_700_000_040;
/// // The inputs were checked up to m - 60 only: m waits.
/// let (candidates, missed) = due_minutes(&every, 180, chrono_tz::UTC, m, Some(m - 180), Some(m - 60));
/// assert_eq!(candidates, vec![m - 120, m - 60]);
/// assert!(missed.is_empty());
/// ```
pub fn due_minutes(
    schedule: &MonitorSchedule,
    longest_window: u64,
    zone: chrono_tz::Tz,
    minute: i64,
    last: Option<i64>,
    ready: Option<i64>,
) -> (Vec<i64>, Vec<i64>) {
    use crate::{minute_floor, MINUTE};
    let Some(ready) = ready else {
        return (Vec::new(), Vec::new());
    };
    let up_to = minute.min(minute_floor(ready));
    let schedule_of = schedule.schedule();
    let Some(last) = last else {
        let due = up_to == minute && crate::schedule::matches(schedule_of, minute, zone);
        return (if due { vec![minute] } else { Vec::new() }, Vec::new());
    };
    let horizon = stand_in_requirement(schedule, longest_window).horizon_minutes();
    let earliest = minute.saturating_sub(horizon.saturating_sub(1).saturating_mul(MINUTE));
    let after_last = minute_floor(last).saturating_add(MINUTE);
    let from = earliest.max(after_last);
    let candidates = if from <= up_to {
        crate::schedule::due_minutes(schedule_of, zone, from, up_to).collect()
    } else {
        Vec::new()
    };
    let missed_to = earliest.saturating_sub(MINUTE);
    let mut missed: Vec<i64> = Vec::new();
    if after_last <= missed_to {
        let mut newest = std::collections::VecDeque::new();
        for m in crate::schedule::due_minutes(schedule_of, zone, after_last, missed_to) {
            if newest.len() == crate::engine::MAX_MISSED_PER_CYCLE {
                newest.pop_front();
            }
            newest.push_back(m);
        }
        missed = newest.into_iter().collect();
    }
    (candidates, missed)
}

/// The monitor's stand-in [`Requirement`]: its schedule with its longest window, for the
/// horizon and the check-log retention (a monitor has no bounds).
pub(crate) fn stand_in_requirement(schedule: &MonitorSchedule, longest: u64) -> Requirement {
    let mut requirement = schedule.requirement.clone();
    requirement.lookback_seconds = longest;
    requirement
}

/// The record a verdict makes.
pub(crate) fn verdict_record(
    monitor: &dyn Monitor,
    schedule: &MonitorSchedule,
    zone: chrono_tz::Tz,
    counts: MonitorCounts,
    verdict: Option<Verdict>,
) -> CheckRecord {
    let longest = counts
        .inputs
        .iter()
        .map(|i| i.lookback_seconds)
        .max()
        .unwrap_or(0);
    let (status, report) = match verdict {
        Some(verdict) => (
            // A verdict is GOOD or BAD by construction.
            verdict.status,
            Some(crate::record::MonitorReport {
                message: verdict.message,
                value: verdict.value,
                inputs: counts.inputs,
            }),
        ),
        None => (Status::Missed, None),
    };
    CheckRecord {
        checker: record_name(monitor.name()),
        requirement_index: 0,
        requirement: schedule.text().to_string(),
        minute: counts.minute,
        minute_local: crate::engine::local_rfc3339(counts.minute, zone),
        timezone: zone.name().to_string(),
        lookback_seconds: longest,
        count: 0,
        min: 0,
        max: 0,
        status,
        extra: monitor.extra(),
        monitor: report,
        runs: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_refuses_bounds_and_windows_at_their_column() {
        let error = MonitorSchedule::parse("CHECKHOURS0-23 CHECKMINUTES0 WEEKDAYS MINNUM1")
            .expect_err("MINNUM");
        assert_eq!(error.column, 39);
        assert!(error.message.contains("MINNUM"), "{}", error.message);
        let error = MonitorSchedule::parse("CHECKHOURS0-23 CHECKMINUTES0").expect_err("no days");
        assert!(error.message.contains("WEEKDAYS"), "{}", error.message);
        let error = MonitorSchedule::parse("CHECKHOURS0-23 CHECKMINUTES0 WEEKDAYS FOO1")
            .expect_err("unknown option");
        assert_eq!(error.column, 39);
    }

    #[test]
    fn records_of_monitors_never_share_a_checker_name() {
        assert_eq!(record_name("rate"), "monitor:rate");
        assert!(is_monitor_record("monitor:rate"));
        assert!(!is_valid_checker_name("monitor:rate"));
    }
}
