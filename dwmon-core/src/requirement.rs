//! The requirement grammar (docs/FORMAT.md, "Requirement lines"): one line of whitespace-separated options such as
//! `CHECKHOURS9-17 CHECKMINUTES*/20 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS180`.
//!
//! CONTRACT (other crates rely on these names): `FieldSet`, `Schedule` (pub fields),
//! `Requirement` (pub fields), `Requirement::parse`, `Requirement::horizon_minutes`,
//! `Display for Requirement` = canonical text, `RequirementError { column, .. }`.
//!
//! Besides the schedule and the count bounds, a line may carry alerting options (issue 7):
//! `SEVERITYWARNING` / `SEVERITYCRITICAL`, `FAILAFTER<n>` and `RECOVERAFTER<n>`; they do not
//! change what is checked, only how `dwmon-alert` reacts to the results.
//!
//! `DELAYSECONDS<n>` (optional, default 0) waits for late-arriving rows: minute `m` is judged
//! only by a cycle whose minute is at least `m + n`; the window counted is still
//! `[m - L, m)`.

use serde::{Deserialize, Serialize};

/// A set of small integers (0..=63): the allowed values of one schedule field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FieldSet(pub u64);

impl FieldSet {
    /// The set `lo..=hi`.
    pub fn range(lo: u32, hi: u32) -> Self {
        let mut s = FieldSet(0);
        for v in lo..=hi.min(63) {
            s.insert(v);
        }
        s
    }

    /// Whether `v` is in the set.
    #[inline]
    pub fn contains(self, v: u32) -> bool {
        v < 64 && (self.0 >> v) & 1 == 1
    }

    /// Adds `v` (ignored when >= 64).
    pub fn insert(&mut self, v: u32) {
        if v < 64 {
            self.0 |= 1 << v;
        }
    }

    /// The values, ascending.
    pub fn iter(self) -> impl Iterator<Item = u32> {
        (0..64).filter(move |v| self.contains(*v))
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// When a requirement is checked: one [`FieldSet`] per calendar field, all matched on the
/// local wall-clock time of the minute (AND of all fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Schedule {
    /// Minutes of the hour, 0-59.
    pub minutes: FieldSet,
    /// Hours of the day, 0-23.
    pub hours: FieldSet,
    /// Days of the month, 1-31.
    pub days: FieldSet,
    /// Months, 1-12.
    pub months: FieldSet,
    /// Days of the week, 0 = Sunday .. 6 = Saturday (union of WEEKDAYS, WEEKENDS, CHECKWEEKDAYS).
    pub weekdays: FieldSet,
}

/// How loud an alert about a requirement is: `SEVERITYWARNING` / `SEVERITYCRITICAL`.
///
/// Serialized as `"warning"` / `"critical"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth a look during working hours.
    Warning,
    /// Page someone (the default).
    #[default]
    Critical,
}

impl Severity {
    /// `warning` or `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One requirement line: a schedule, inclusive count bounds, a window length, and how to
/// alert on it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Requirement {
    /// When to check.
    pub schedule: Schedule,
    /// `MINNUM`.
    pub min: u64,
    /// `MAXNUM`.
    pub max: u64,
    /// `LOOKBACKSECONDS` (the window length `L`, >= 1).
    pub lookback_seconds: u64,
    /// `SEVERITYWARNING` / `SEVERITYCRITICAL` (default critical).
    pub severity: Severity,
    /// `FAILAFTER<n>`: alert on the n-th consecutive BAD check (1..=[`MAX_ALERT_AFTER`],
    /// default 1).
    pub fail_after: u32,
    /// `RECOVERAFTER<n>`: resolve on the n-th consecutive GOOD check
    /// (1..=[`MAX_ALERT_AFTER`], default 1).
    pub recover_after: u32,
    /// `DELAYSECONDS<n>` (0..=[`MAX_DELAY_SECONDS`], default 0): minute `m` is judged only
    /// by a cycle whose minute is at least `m + n`, so rows that land up to `n` seconds late
    /// are counted. See [`Requirement::delay_minutes`].
    pub delay_seconds: u64,
    /// `ALERTKEY<key>` (optional): the line's alert identity. Its alert state, incident and
    /// PagerDuty dedup key are `checker/<key>` instead of `checker/<index>`, so they never
    /// change when lines are added, removed, reordered or edited. 1 to
    /// [`MAX_ALERT_KEY_LEN`] characters of `A-Z a-z 0-9 . _ -`, unique within a file.
    pub alert_key: Option<String>,
    /// `PINGSSUCCESS` / `PINGSFAIL` / `PINGSSTART` / `PINGSLOG` (push checkers only; default
    /// success): the kind of ping counted.
    pub pings: crate::ping::PingKind,
    /// `MINDURATION<s>` (push checkers only; 0..=[`MAX_DURATION_SECONDS`]): a run (a finish
    /// paired with its start) in the window that took fewer seconds is BAD ("finished too
    /// fast"). See [`crate::runs`].
    pub min_duration: Option<u64>,
    /// `MAXDURATION<s>` (push checkers only; 0..=[`MAX_DURATION_SECONDS`], at least
    /// `MINDURATION`): a run in the window that took more seconds is BAD ("ran too long"),
    /// and so is a start left without a finish for more than this ("started, never
    /// finished"). See [`crate::runs`].
    pub max_duration: Option<u64>,
}

impl Requirement {
    /// A requirement with the default alerting options (critical, `FAILAFTER1`,
    /// `RECOVERAFTER1`).
    pub fn new(schedule: Schedule, min: u64, max: u64, lookback_seconds: u64) -> Self {
        Requirement {
            schedule,
            min,
            max,
            lookback_seconds,
            severity: Severity::Critical,
            fail_after: 1,
            recover_after: 1,
            delay_seconds: 0,
            alert_key: None,
            pings: crate::ping::PingKind::Success,
            min_duration: None,
            max_duration: None,
        }
    }

    /// Whether the line judges run durations (`MINDURATION` or `MAXDURATION`).
    pub fn has_duration_bounds(&self) -> bool {
        self.min_duration.is_some() || self.max_duration.is_some()
    }

    /// This requirement with `DELAYSECONDS<delay_seconds>`.
    pub fn with_delay_seconds(mut self, delay_seconds: u64) -> Self {
        self.delay_seconds = delay_seconds;
        self
    }

    /// `DELAYSECONDS` rounded up to whole minutes: the cycle of minute `M` judges this
    /// requirement's minutes up to `M - 60 * delay_minutes()` (a minute `m` waits for the
    /// first cycle minute `>= m + DELAYSECONDS`).
    pub fn delay_minutes(&self) -> i64 {
        // At most MAX_DELAY_SECONDS / 60 for parsed requirements; clamp hand-built ones.
        i64::try_from(self.delay_seconds.div_ceil(60)).unwrap_or(i64::MAX / MINUTE_SECONDS)
    }

    /// The newest minute the cycle of minute `cycle_minute` judges for this requirement:
    /// `cycle_minute - 60 * delay_minutes()`.
    pub fn judged_up_to(&self, cycle_minute: i64) -> i64 {
        cycle_minute.saturating_sub(self.delay_minutes().saturating_mul(MINUTE_SECONDS))
    }

    /// The horizon `H = 10 * ceil(L / 60)` in minutes (README "How a cycle works"): how far back a cycle still
    /// checks missed minutes.
    pub fn horizon_minutes(&self) -> i64 {
        10 * (self.lookback_seconds.div_ceil(60) as i64)
    }
}

/// What kind of mistake a [`RequirementError`] reports, for callers that match on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RequirementErrorKind {
    /// A token that does not start with a known option name (options are case-sensitive).
    UnknownOption,
    /// An option given twice on one line.
    DuplicateOption,
    /// A required option (or every day-of-week option) is absent.
    MissingOption,
    /// An option that takes a value was given without one (e.g. `MINNUM 5` with a space).
    MissingValue,
    /// A flag (`WEEKDAYS`, `WEEKENDS`) followed by text.
    UnexpectedValue,
    /// A value that is not valid syntax for its option (stray characters, empty list item, ...).
    InvalidValue,
    /// A number outside its option's range, or too large to represent.
    OutOfRange,
    /// A range `a-b` with `a > b`.
    ReversedRange,
    /// A step `/0`.
    ZeroStep,
    /// `MAXNUM` smaller than `MINNUM`, or `MAXDURATION` smaller than `MINDURATION`.
    MaxBelowMin,
    /// Two options that exclude each other (`SEVERITYWARNING` with `SEVERITYCRITICAL`).
    ConflictingOptions,
}

/// A requirement line could not be parsed. `column` is 1-based within the line (counted in
/// characters) and points at the offending option; for a missing option it is the column just
/// after the last non-blank character of the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct RequirementError {
    /// 1-based column of the offending option.
    pub column: usize,
    /// What kind of mistake it is.
    pub kind: RequirementErrorKind,
    /// What was wrong and what was expected.
    pub message: String,
}

/// Largest accepted `MINNUM`/`MAXNUM`: counts are stored as SQL integers (i64).
pub const MAX_COUNT_BOUND: u64 = i64::MAX as u64;

/// Largest accepted `LOOKBACKSECONDS`: 366 days, which keeps every window and horizon
/// computation far from overflow.
pub const MAX_LOOKBACK_SECONDS: u64 = 366 * 24 * 60 * 60;

/// Largest accepted `DELAYSECONDS`: 7 days. Data later than that is a backfill rather than
/// lag, and the rows of every delayed window must be kept that much longer.
pub const MAX_DELAY_SECONDS: u64 = 7 * 24 * 60 * 60;

/// Largest accepted `MINDURATION` / `MAXDURATION`: 366 days, as [`MAX_LOOKBACK_SECONDS`].
pub const MAX_DURATION_SECONDS: u64 = MAX_LOOKBACK_SECONDS;

/// Seconds in a minute (as [`crate::MINUTE`]).
const MINUTE_SECONDS: i64 = 60;

/// Longest accepted `ALERTKEY` value, in characters.
pub const MAX_ALERT_KEY_LEN: usize = 64;

/// Largest accepted `FAILAFTER` / `RECOVERAFTER`: 10000 consecutive checks (a week of
/// every-minute checks), far beyond any useful damping and safe for any counter.
pub const MAX_ALERT_AFTER: u32 = 10_000;

/// The options of a requirement line. No name is a prefix of another, so a token's option is
/// the unique name it starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opt {
    CheckHours,
    CheckMinutes,
    CheckDays,
    CheckMonths,
    CheckWeekdays,
    Weekdays,
    Weekends,
    MinNum,
    MaxNum,
    LookbackSeconds,
    SeverityWarning,
    SeverityCritical,
    FailAfter,
    RecoverAfter,
    DelaySeconds,
    AlertKey,
    Pings,
    MinDuration,
    MaxDuration,
}

const OPTIONS: [(&str, Opt); 19] = [
    ("CHECKHOURS", Opt::CheckHours),
    ("CHECKMINUTES", Opt::CheckMinutes),
    ("CHECKDAYS", Opt::CheckDays),
    ("CHECKMONTHS", Opt::CheckMonths),
    ("CHECKWEEKDAYS", Opt::CheckWeekdays),
    ("WEEKDAYS", Opt::Weekdays),
    ("WEEKENDS", Opt::Weekends),
    ("MINNUM", Opt::MinNum),
    ("MAXNUM", Opt::MaxNum),
    ("LOOKBACKSECONDS", Opt::LookbackSeconds),
    ("DELAYSECONDS", Opt::DelaySeconds),
    ("SEVERITYWARNING", Opt::SeverityWarning),
    ("SEVERITYCRITICAL", Opt::SeverityCritical),
    ("FAILAFTER", Opt::FailAfter),
    ("RECOVERAFTER", Opt::RecoverAfter),
    ("ALERTKEY", Opt::AlertKey),
    ("PINGS", Opt::Pings),
    ("MINDURATION", Opt::MinDuration),
    ("MAXDURATION", Opt::MaxDuration),
];

/// The value domain and names of one cron field.
struct FieldSpec {
    option: &'static str,
    min: u32,
    max: u32,
    /// Names (matched case-insensitively) and their values.
    names: &'static [(&'static str, u32)],
    /// What a value looks like, for messages.
    expected: &'static str,
    /// Day of week: 7 is another name for Sunday (0), and `SUN` ending a range means 7.
    seven_is_sunday: bool,
}

const MONTH_NAMES: [(&str, u32); 12] = [
    ("JAN", 1),
    ("FEB", 2),
    ("MAR", 3),
    ("APR", 4),
    ("MAY", 5),
    ("JUN", 6),
    ("JUL", 7),
    ("AUG", 8),
    ("SEP", 9),
    ("OCT", 10),
    ("NOV", 11),
    ("DEC", 12),
];

const WEEKDAY_NAMES: [(&str, u32); 7] = [
    ("SUN", 0),
    ("MON", 1),
    ("TUE", 2),
    ("WED", 3),
    ("THU", 4),
    ("FRI", 5),
    ("SAT", 6),
];

const MINUTES: FieldSpec = FieldSpec {
    option: "CHECKMINUTES",
    min: 0,
    max: 59,
    names: &[],
    expected: "a minute from 0 to 59",
    seven_is_sunday: false,
};
const HOURS: FieldSpec = FieldSpec {
    option: "CHECKHOURS",
    min: 0,
    max: 23,
    names: &[],
    expected: "an hour from 0 to 23",
    seven_is_sunday: false,
};
const DAYS: FieldSpec = FieldSpec {
    option: "CHECKDAYS",
    min: 1,
    max: 31,
    names: &[],
    expected: "a day of the month from 1 to 31",
    seven_is_sunday: false,
};
const MONTHS: FieldSpec = FieldSpec {
    option: "CHECKMONTHS",
    min: 1,
    max: 12,
    names: &MONTH_NAMES,
    expected: "a month from 1 to 12 or JAN-DEC",
    seven_is_sunday: false,
};
const WEEKDAY_FIELD: FieldSpec = FieldSpec {
    option: "CHECKWEEKDAYS",
    min: 0,
    max: 7,
    names: &WEEKDAY_NAMES,
    expected: "a day of the week from 0 to 7 (0 and 7 = Sunday) or SUN-SAT",
    seven_is_sunday: true,
};

/// The day-of-week set of `WEEKDAYS` (Monday-Friday, bit 0 = Sunday).
const WEEKDAYS_SET: FieldSet = FieldSet(0b011_1110);
/// The day-of-week set of `WEEKENDS` (Saturday and Sunday).
const WEEKENDS_SET: FieldSet = FieldSet(0b100_0001);
/// Every day of the week.
const ALL_DAYS_SET: FieldSet = FieldSet(0b111_1111);

/// A parse failure inside one option's value; the caller adds the option's column.
type ValueError = (RequirementErrorKind, String);

impl FieldSpec {
    fn syntax_hint(&self) -> String {
        format!(
            "expected {}, `*`, a range `a-b`, a step `*/n`, `a-b/n` or `a/n`, or a comma list of these",
            self.expected
        )
    }

    /// Parses a whole cron field: comma-separated items.
    fn parse(&self, text: &str) -> Result<FieldSet, ValueError> {
        let mut set = FieldSet(0);
        for item in text.split(',') {
            self.parse_item(item, &mut set)?;
        }
        Ok(set)
    }

    /// Parses one list item (`*`, `a`, `a-b`, each optionally `/n`) into `set`.
    fn parse_item(&self, item: &str, set: &mut FieldSet) -> Result<(), ValueError> {
        use RequirementErrorKind::*;
        if item.is_empty() {
            return Err((
                InvalidValue,
                format!("{}: empty list item; {}", self.option, self.syntax_hint()),
            ));
        }
        let (base, step) = match item.split_once('/') {
            Some((base, step)) => (base, Some(self.parse_step(step)?)),
            None => (item, None),
        };
        let (lo, hi) = if base == "*" {
            (self.min, self.max)
        } else if let Some((a, b)) = base.split_once('-') {
            let lo = self.parse_value(a, false)?;
            let hi = self.parse_value(b, lo > 0)?;
            if lo > hi {
                return Err((
                    ReversedRange,
                    format!(
                        "{}: reversed range `{}`; expected the start <= the end",
                        self.option,
                        excerpt(base)
                    ),
                ));
            }
            (lo, hi)
        } else {
            let value = self.parse_value(base, false)?;
            // `a/n` means from `a` to the field's maximum in steps of `n`.
            (value, if step.is_some() { self.max } else { value })
        };
        let step = step.unwrap_or(1);
        let mut value = lo;
        while value <= hi {
            set.insert(if self.seven_is_sunday && value == 7 {
                0
            } else {
                value
            });
            value += step;
        }
        Ok(())
    }

    fn parse_step(&self, text: &str) -> Result<u32, ValueError> {
        use RequirementErrorKind::*;
        let span = self.max - self.min + 1;
        let step = parse_digits(text).ok_or_else(|| {
            (
                InvalidValue,
                format!(
                    "{}: invalid step `/{}`; expected a number from 1 to {span}",
                    self.option,
                    excerpt(text)
                ),
            )
        })?;
        match step {
            Some(0) => Err((
                ZeroStep,
                format!(
                    "{}: step must not be 0; expected a number from 1 to {span}",
                    self.option
                ),
            )),
            Some(step) if u64::from(span) >= step => Ok(step as u32),
            _ => Err((
                OutOfRange,
                format!(
                    "{}: step `/{}` is out of range; expected a number from 1 to {span}",
                    self.option,
                    excerpt(text)
                ),
            )),
        }
    }

    /// Parses a number or a name. `ends_range_after_sunday` (the end of a range whose start
    /// is not Sunday) makes the name `SUN` mean 7, so that `SAT-SUN` or `MON-SUN` ends on
    /// Sunday instead of being reversed.
    fn parse_value(&self, text: &str, ends_range_after_sunday: bool) -> Result<u32, ValueError> {
        use RequirementErrorKind::*;
        match parse_digits(text) {
            Some(Some(value)) if (u64::from(self.min)..=u64::from(self.max)).contains(&value) => {
                Ok(value as u32)
            }
            Some(_) => Err((
                OutOfRange,
                format!(
                    "{}: `{}` is out of range; expected {}",
                    self.option,
                    excerpt(text),
                    self.expected
                ),
            )),
            None => {
                let named = self
                    .names
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(text))
                    .map(|&(_, value)| value);
                match named {
                    Some(0) if ends_range_after_sunday && self.seven_is_sunday => Ok(7),
                    Some(value) => Ok(value),
                    None => Err((
                        InvalidValue,
                        format!(
                            "{}: invalid value `{}`; {}",
                            self.option,
                            excerpt(text),
                            self.syntax_hint()
                        ),
                    )),
                }
            }
        }
    }
}

/// The longest piece of input quoted in an error message, in characters.
const EXCERPT_CHARS: usize = 40;

/// `text` for quoting in an error message: itself when short, else its first characters and
/// how long it was, so a runaway line (a megabyte without spaces) gives a one-line error.
pub(crate) fn excerpt(text: &str) -> std::borrow::Cow<'_, str> {
    // Control characters echoed raw from a file could drive the reader's terminal.
    if text.chars().any(char::is_control) {
        let escaped: String = text
            .chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect();
        return std::borrow::Cow::Owned(excerpt(&escaped).into_owned());
    }
    match text.char_indices().nth(EXCERPT_CHARS) {
        None => std::borrow::Cow::Borrowed(text),
        Some((end, _)) => std::borrow::Cow::Owned(format!(
            "{}... ({} characters)",
            &text[..end],
            text.chars().count()
        )),
    }
}

/// `None` when `text` is not a non-empty run of ASCII digits; `Some(None)` when it is but
/// does not fit in a u64.
fn parse_digits(text: &str) -> Option<Option<u64>> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse::<u64>().ok())
}

/// Parses a `MINNUM`/`MAXNUM`/`LOOKBACKSECONDS` integer in `min..=max`.
fn parse_integer(option: &str, text: &str, min: u64, max: u64) -> Result<u64, ValueError> {
    let expected = format!("expected an integer from {min} to {max}");
    match parse_digits(text) {
        Some(Some(value)) if (min..=max).contains(&value) => Ok(value),
        Some(_) => Err((
            RequirementErrorKind::OutOfRange,
            format!("{option}: `{}` is out of range; {expected}", excerpt(text)),
        )),
        None => Err((
            RequirementErrorKind::InvalidValue,
            format!("{option}: invalid value `{}`; {expected}", excerpt(text)),
        )),
    }
}

/// Parses a `FAILAFTER`/`RECOVERAFTER` count in `1..=MAX_ALERT_AFTER`.
fn parse_streak(option: &str, text: &str) -> Result<u32, ValueError> {
    let value = parse_integer(option, text, 1, u64::from(MAX_ALERT_AFTER))?;
    // In range, so it fits.
    Ok(u32::try_from(value).unwrap_or(MAX_ALERT_AFTER))
}

/// The whitespace-separated tokens of `line` with their 1-based character columns.
fn tokens(line: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut rest = line;
    let mut column = 1;
    std::iter::from_fn(move || {
        let skipped = rest.chars().take_while(|c| c.is_whitespace()).count();
        column += skipped;
        let start = rest
            .char_indices()
            .nth(skipped)
            .map_or(rest.len(), |(i, _)| i);
        rest = &rest[start..];
        if rest.is_empty() {
            return None;
        }
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (token, tail) = rest.split_at(end);
        let token_column = column;
        column += token.chars().count();
        rest = tail;
        Some((token_column, token))
    })
}

/// Everything a line set, before the required-option checks.
#[derive(Default)]
struct Options {
    columns: [Option<usize>; OPTIONS.len()],
    minutes: Option<FieldSet>,
    hours: Option<FieldSet>,
    days: Option<FieldSet>,
    months: Option<FieldSet>,
    weekdays: FieldSet,
    min: Option<u64>,
    max: Option<u64>,
    lookback_seconds: Option<u64>,
    severity: Option<Severity>,
    fail_after: Option<u32>,
    recover_after: Option<u32>,
    delay_seconds: Option<u64>,
    alert_key: Option<String>,
    pings: Option<crate::ping::PingKind>,
    min_duration: Option<u64>,
    max_duration: Option<u64>,
}

impl Options {
    fn apply(&mut self, option: Opt, name: &str, value: &str) -> Result<(), ValueError> {
        use RequirementErrorKind::*;
        let is_flag = matches!(
            option,
            Opt::Weekdays | Opt::Weekends | Opt::SeverityWarning | Opt::SeverityCritical
        );
        if is_flag && !value.is_empty() {
            return Err((
                UnexpectedValue,
                format!(
                    "{name} takes no value, found `{name}{}`; expected `{name}` alone",
                    excerpt(value)
                ),
            ));
        }
        if !is_flag && value.is_empty() {
            let example = match option {
                Opt::CheckHours => "CHECKHOURS9-17",
                Opt::CheckMinutes => "CHECKMINUTES*/20",
                Opt::CheckDays => "CHECKDAYS1-15",
                Opt::CheckMonths => "CHECKMONTHSJAN-MAR",
                Opt::CheckWeekdays => "CHECKWEEKDAYSMON-FRI",
                Opt::MinNum => "MINNUM5",
                Opt::MaxNum => "MAXNUM20",
                Opt::FailAfter => "FAILAFTER3",
                Opt::RecoverAfter => "RECOVERAFTER2",
                Opt::DelaySeconds => "DELAYSECONDS300",
                Opt::AlertKey => "ALERTKEYpayments-hourly",
                Opt::Pings => "PINGSFAIL",
                Opt::MinDuration => "MINDURATION10",
                Opt::MaxDuration => "MAXDURATION3600",
                _ => "LOOKBACKSECONDS180",
            };
            return Err((
                MissingValue,
                format!("{name} needs a value right after it, with no space, e.g. `{example}`"),
            ));
        }
        match option {
            Opt::CheckHours => self.hours = Some(HOURS.parse(value)?),
            Opt::CheckMinutes => self.minutes = Some(MINUTES.parse(value)?),
            Opt::CheckDays => self.days = Some(DAYS.parse(value)?),
            Opt::CheckMonths => self.months = Some(MONTHS.parse(value)?),
            Opt::CheckWeekdays => self.weekdays.0 |= WEEKDAY_FIELD.parse(value)?.0,
            Opt::Weekdays => self.weekdays.0 |= WEEKDAYS_SET.0,
            Opt::Weekends => self.weekdays.0 |= WEEKENDS_SET.0,
            Opt::MinNum => self.min = Some(parse_integer(name, value, 0, MAX_COUNT_BOUND)?),
            Opt::MaxNum => self.max = Some(parse_integer(name, value, 0, MAX_COUNT_BOUND)?),
            Opt::LookbackSeconds => {
                self.lookback_seconds = Some(parse_integer(name, value, 1, MAX_LOOKBACK_SECONDS)?);
            }
            Opt::SeverityWarning => self.severity = Some(Severity::Warning),
            Opt::SeverityCritical => self.severity = Some(Severity::Critical),
            Opt::FailAfter => self.fail_after = Some(parse_streak(name, value)?),
            Opt::RecoverAfter => self.recover_after = Some(parse_streak(name, value)?),
            Opt::DelaySeconds => {
                self.delay_seconds = Some(parse_integer(name, value, 0, MAX_DELAY_SECONDS)?);
            }
            Opt::AlertKey => self.alert_key = Some(parse_alert_key(value)?),
            Opt::MinDuration => {
                self.min_duration = Some(parse_integer(name, value, 0, MAX_DURATION_SECONDS)?);
            }
            Opt::MaxDuration => {
                self.max_duration = Some(parse_integer(name, value, 0, MAX_DURATION_SECONDS)?);
            }
            Opt::Pings => {
                let kind = crate::ping::PingKind::parse(&value.to_ascii_lowercase())
                    .filter(|_| value.bytes().all(|b| b.is_ascii_uppercase()));
                self.pings = Some(kind.ok_or_else(|| {
                    (
                        RequirementErrorKind::InvalidValue,
                        format!(
                            "PINGS: unknown ping kind `{}`; expected PINGSSUCCESS, PINGSFAIL, \
                             PINGSSTART or PINGSLOG",
                            excerpt(value)
                        ),
                    )
                })?);
            }
        }
        Ok(())
    }
}

impl Requirement {
    /// Parses one requirement line, e.g.
    /// `CHECKHOURS9-17 CHECKMINUTES*/20 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS180`.
    ///
    /// ```
    /// use dwmon_core::Requirement;
    ///
    /// let r = Requirement::parse("CHECKHOURS9-9 CHECKMINUTES*/20 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS180")?;
    /// assert!(r.schedule.minutes.contains(40));
    /// assert_eq!((r.min, r.max, r.lookback_seconds), (5, 20, 180));
    /// let err = Requirement::parse("CHECKHOURS0-23 CHECKMINUTES0-59 WEEKDAYS MINNUM5 MAXNUM2 LOOKBACKSECONDS60")
    ///     .unwrap_err();
    /// assert_eq!(err.to_string(), "column 50: MAXNUM must be >= MINNUM (5 > 2)");
    /// # Ok::<(), dwmon_core::RequirementError>(())
    /// ```
    ///
    /// # Errors
    /// A [`RequirementError`] naming the column of the offending option and what was expected.
    pub fn parse(line: &str) -> Result<Requirement, RequirementError> {
        let mut options = Options::default();
        for (column, token) in tokens(line) {
            let fail = |kind, message| RequirementError {
                column,
                kind,
                message,
            };
            let Some(&(name, option)) = OPTIONS.iter().find(|(name, _)| token.starts_with(name))
            else {
                return Err(fail(
                    RequirementErrorKind::UnknownOption,
                    unknown_option_message(token),
                ));
            };
            let slot = &mut options.columns[option as usize];
            if let Some(first) = *slot {
                return Err(fail(
                    RequirementErrorKind::DuplicateOption,
                    format!("{name} given twice (first at column {first}); each option may appear at most once"),
                ));
            }
            *slot = Some(column);
            let other_severity = match option {
                Opt::SeverityWarning => Some(("SEVERITYCRITICAL", Opt::SeverityCritical)),
                Opt::SeverityCritical => Some(("SEVERITYWARNING", Opt::SeverityWarning)),
                _ => None,
            };
            if let Some((other, first)) = other_severity
                .and_then(|(other, opt)| Some((other, options.columns[opt as usize]?)))
            {
                return Err(fail(
                    RequirementErrorKind::ConflictingOptions,
                    format!("{name} conflicts with {other} (at column {first}); give at most one severity"),
                ));
            }
            options
                .apply(option, name, &token[name.len()..])
                .map_err(|(kind, message)| fail(kind, message))?;
        }

        let end_column = line.trim_end().chars().count() + 1;
        let missing = |what: &str| RequirementError {
            column: end_column,
            kind: RequirementErrorKind::MissingOption,
            message: format!("missing {what}"),
        };
        let (Some(hours), Some(minutes)) = (options.hours, options.minutes) else {
            let name = if options.hours.is_none() {
                "CHECKHOURS"
            } else {
                "CHECKMINUTES"
            };
            return Err(missing(&format!(
                "{name}; every requirement needs CHECKHOURS and CHECKMINUTES"
            )));
        };
        if options.weekdays.is_empty() {
            return Err(missing(
                "a day-of-week option; expected at least one of WEEKDAYS, WEEKENDS, CHECKWEEKDAYS",
            ));
        }
        let (Some(min), Some(max), Some(lookback_seconds)) =
            (options.min, options.max, options.lookback_seconds)
        else {
            let name = match (options.min, options.max) {
                (None, _) => "MINNUM",
                (_, None) => "MAXNUM",
                _ => "LOOKBACKSECONDS",
            };
            return Err(missing(&format!(
                "{name}; every requirement needs MINNUM, MAXNUM and LOOKBACKSECONDS"
            )));
        };
        if max < min {
            return Err(RequirementError {
                column: options.columns[Opt::MaxNum as usize].unwrap_or(end_column),
                kind: RequirementErrorKind::MaxBelowMin,
                message: format!("MAXNUM must be >= MINNUM ({min} > {max})"),
            });
        }
        if let (Some(shortest), Some(longest)) = (options.min_duration, options.max_duration) {
            if longest < shortest {
                return Err(RequirementError {
                    column: options.columns[Opt::MaxDuration as usize].unwrap_or(end_column),
                    kind: RequirementErrorKind::MaxBelowMin,
                    message: format!("MAXDURATION must be >= MINDURATION ({shortest} > {longest})"),
                });
            }
        }
        Ok(Requirement {
            schedule: Schedule {
                minutes,
                hours,
                days: options.days.unwrap_or(FieldSet::range(DAYS.min, DAYS.max)),
                months: options
                    .months
                    .unwrap_or(FieldSet::range(MONTHS.min, MONTHS.max)),
                weekdays: options.weekdays,
            },
            min,
            max,
            lookback_seconds,
            severity: options.severity.unwrap_or_default(),
            fail_after: options.fail_after.unwrap_or(1),
            recover_after: options.recover_after.unwrap_or(1),
            delay_seconds: options.delay_seconds.unwrap_or(0),
            alert_key: options.alert_key,
            pings: options.pings.unwrap_or_default(),
            min_duration: options.min_duration,
            max_duration: options.max_duration,
        })
    }

    /// The canonical text of this requirement (the same as its `Display`): options in the
    /// order `CHECKHOURS CHECKMINUTES [CHECKDAYS] [CHECKMONTHS] day-of-week MINNUM MAXNUM
    /// LOOKBACKSECONDS [DELAYSECONDS<n>] [SEVERITYWARNING] [FAILAFTER<n>] [RECOVERAFTER<n>]
    /// [ALERTKEY<key>] [PINGS<KIND>] [MINDURATION<s>] [MAXDURATION<s>]`,
    /// with compact fields; the optional options appear only when they differ from the
    /// defaults, so lines without them print exactly as before. For every parsed requirement `r`,
    /// `Requirement::parse(&r.canonical()) == Ok(r)`.
    pub fn canonical(&self) -> String {
        self.to_string()
    }
}

/// An `ALERTKEY` value: 1 to [`MAX_ALERT_KEY_LEN`] characters of `A-Z a-z 0-9 . _ -`.
fn parse_alert_key(value: &str) -> Result<String, ValueError> {
    use RequirementErrorKind::*;
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err((
            InvalidValue,
            format!(
                "ALERTKEY: `{}` is not allowed in a key (`{}`); expected letters, digits, `.`, `_` or `-`",
                bad.escape_default(),
                excerpt(value)
            ),
        ));
    }
    let length = value.chars().count();
    if length > MAX_ALERT_KEY_LEN {
        return Err((
            OutOfRange,
            format!(
                "ALERTKEY: the key has {length} characters; expected at most {MAX_ALERT_KEY_LEN}"
            ),
        ));
    }
    Ok(value.to_string())
}

fn unknown_option_message(token: &str) -> String {
    let upper = token.to_ascii_uppercase();
    if let Some((name, _)) = OPTIONS.iter().find(|(name, _)| upper.starts_with(name)) {
        return format!(
            "unknown option `{}`; options are case-sensitive: did you mean {name}?",
            excerpt(token)
        );
    }
    let names: Vec<&str> = OPTIONS.iter().map(|(name, _)| *name).collect();
    format!(
        "unexpected `{}`; expected an option ({}), with its value attached without a space",
        excerpt(token),
        names.join(", ")
    )
}

/// Compact cron text for `set` over `lo..=hi`: one run `a-b` (also `a-a`, the seed's form for a
/// single value), `*/n`, an arithmetic progression `a-b/n`, or a comma list of `a` and `a-b`.
fn format_field(set: FieldSet, lo: u32, hi: u32) -> String {
    let values: Vec<u32> = set.iter().filter(|v| (lo..=hi).contains(v)).collect();
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for &value in &values {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == value => *end = value,
            _ => runs.push((value, value)),
        }
    }
    if let [(a, b)] = runs[..] {
        return format!("{a}-{b}");
    }
    if let [first, second, ..] = values[..] {
        let step = second - first;
        let last = values[values.len() - 1];
        if values.windows(2).all(|w| w[1] - w[0] == step) {
            if first == lo && last + step > hi {
                return format!("*/{step}");
            }
            if values.len() >= 3 {
                return format!("{first}-{last}/{step}");
            }
        }
    }
    let items: Vec<String> = runs
        .iter()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect();
    items.join(",")
}

impl std::fmt::Display for Requirement {
    /// Writes the canonical text (see [`Requirement::canonical`]).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.schedule;
        write!(
            f,
            "CHECKHOURS{} CHECKMINUTES{}",
            format_field(s.hours, HOURS.min, HOURS.max),
            format_field(s.minutes, MINUTES.min, MINUTES.max)
        )?;
        if s.days != FieldSet::range(DAYS.min, DAYS.max) {
            write!(f, " CHECKDAYS{}", format_field(s.days, DAYS.min, DAYS.max))?;
        }
        if s.months != FieldSet::range(MONTHS.min, MONTHS.max) {
            write!(
                f,
                " CHECKMONTHS{}",
                format_field(s.months, MONTHS.min, MONTHS.max)
            )?;
        }
        let weekdays = FieldSet(s.weekdays.0 & ALL_DAYS_SET.0);
        match weekdays {
            ALL_DAYS_SET => write!(f, " WEEKENDS WEEKDAYS")?,
            WEEKDAYS_SET => write!(f, " WEEKDAYS")?,
            WEEKENDS_SET => write!(f, " WEEKENDS")?,
            _ => write!(f, " CHECKWEEKDAYS{}", format_field(weekdays, 0, 6))?,
        }
        write!(
            f,
            " MINNUM{} MAXNUM{} LOOKBACKSECONDS{}",
            self.min, self.max, self.lookback_seconds
        )?;
        if self.delay_seconds != 0 {
            write!(f, " DELAYSECONDS{}", self.delay_seconds)?;
        }
        if self.severity != Severity::Critical {
            write!(
                f,
                " SEVERITY{}",
                self.severity.as_str().to_ascii_uppercase()
            )?;
        }
        if self.fail_after != 1 {
            write!(f, " FAILAFTER{}", self.fail_after)?;
        }
        if self.recover_after != 1 {
            write!(f, " RECOVERAFTER{}", self.recover_after)?;
        }
        if let Some(key) = &self.alert_key {
            write!(f, " ALERTKEY{key}")?;
        }
        if self.pings != crate::ping::PingKind::Success {
            write!(f, " PINGS{}", self.pings.as_str().to_ascii_uppercase())?;
        }
        if let Some(seconds) = self.min_duration {
            write!(f, " MINDURATION{seconds}")?;
        }
        if let Some(seconds) = self.max_duration {
            write!(f, " MAXDURATION{seconds}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_in_errors_are_escaped() {
        let error = Requirement::parse("CHECKHOURS1\u{1b}[31m CHECKMINUTES0").unwrap_err();
        let message = error.to_string();
        assert!(!message.chars().any(char::is_control), "{message:?}");
        assert!(message.contains("\\u{1b}"), "{message:?}");
    }

    const SEED: &str =
        "CHECKHOURS0-23 CHECKMINUTES0-59 WEEKENDS WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS180";

    #[test]
    fn errors_quote_at_most_an_excerpt_of_a_runaway_token() {
        let runaway = "Z".repeat(1_000_000);
        for line in [
            format!("{SEED} {runaway}"),
            format!("CHECKHOURS{runaway} CHECKMINUTES0 WEEKDAYS MINNUM1 MAXNUM2 LOOKBACKSECONDS60"),
            format!(
                "CHECKHOURS1-{} CHECKMINUTES0 WEEKDAYS MINNUM1 MAXNUM2 LOOKBACKSECONDS60",
                "9".repeat(100_000)
            ),
            format!(
                "CHECKHOURS0 CHECKMINUTES*/{runaway} WEEKDAYS MINNUM1 MAXNUM2 LOOKBACKSECONDS60"
            ),
            format!(
                "CHECKHOURS0 CHECKMINUTES0 WEEKDAYS{runaway} MINNUM1 MAXNUM2 LOOKBACKSECONDS60"
            ),
            format!("CHECKHOURS0 CHECKMINUTES0 WEEKDAYS MINNUM{runaway} MAXNUM2 LOOKBACKSECONDS60"),
            format!("checkhours{runaway}"),
        ] {
            let error = Requirement::parse(&line).expect_err("invalid");
            let message = error.to_string();
            assert!(
                message.len() < 400,
                "{} bytes: {}",
                message.len(),
                &message[..400]
            );
            assert!(message.contains("characters)"), "{message}");
        }
        // Short tokens are quoted whole, as before.
        assert_eq!(excerpt("CHECKHOURZ9"), "CHECKHOURZ9");
        let multibyte = "é".repeat(50);
        assert_eq!(
            excerpt(&multibyte),
            format!("{}... (50 characters)", "é".repeat(40))
        );
    }

    #[test]
    fn seed_line_parses_and_prints_back() -> Result<(), RequirementError> {
        let r = Requirement::parse(SEED)?;
        assert_eq!(r.schedule.hours, FieldSet::range(0, 23));
        assert_eq!(r.schedule.minutes, FieldSet::range(0, 59));
        assert_eq!(r.schedule.days, FieldSet::range(1, 31));
        assert_eq!(r.schedule.months, FieldSet::range(1, 12));
        assert_eq!(r.schedule.weekdays, FieldSet::range(0, 6));
        assert_eq!((r.min, r.max, r.lookback_seconds), (5, 20, 180));
        assert_eq!(r.to_string(), SEED);
        assert_eq!(r.horizon_minutes(), 30);
        Ok(())
    }

    #[test]
    fn fields_parse_cron_syntax() -> Result<(), RequirementError> {
        let field = |spec: &FieldSpec, text: &str| spec.parse(text).map_err(|(_, m)| m);
        let set = |values: &[u32]| {
            let mut s = FieldSet(0);
            values.iter().for_each(|v| s.insert(*v));
            s
        };
        assert_eq!(field(&MINUTES, "*/20"), Ok(set(&[0, 20, 40])));
        assert_eq!(field(&MINUTES, "10-30/10"), Ok(set(&[10, 20, 30])));
        assert_eq!(field(&MINUTES, "50/5"), Ok(set(&[50, 55])));
        assert_eq!(field(&HOURS, "1,3-4,22"), Ok(set(&[1, 3, 4, 22])));
        assert_eq!(field(&DAYS, "*/10"), Ok(set(&[1, 11, 21, 31])));
        assert_eq!(field(&MONTHS, "jan-Mar,DEC"), Ok(set(&[1, 2, 3, 12])));
        assert_eq!(field(&WEEKDAY_FIELD, "SAT-SUN"), Ok(set(&[0, 6])));
        assert_eq!(field(&WEEKDAY_FIELD, "mon-sun"), Ok(FieldSet::range(0, 6)));
        assert_eq!(field(&WEEKDAY_FIELD, "7"), Ok(set(&[0])));
        assert_eq!(field(&WEEKDAY_FIELD, "5-7"), Ok(set(&[0, 5, 6])));
        assert_eq!(field(&WEEKDAY_FIELD, "*/2"), Ok(set(&[0, 2, 4, 6])));
        Ok(())
    }

    #[test]
    fn field_errors_have_kinds() {
        use RequirementErrorKind::*;
        let cases: [(&FieldSpec, &str, RequirementErrorKind); 10] = [
            (&MINUTES, "60", OutOfRange),
            (&MINUTES, "99999999999999999999999", OutOfRange),
            (&MINUTES, "5-2", ReversedRange),
            (&MINUTES, "*/0", ZeroStep),
            (&MINUTES, "*/61", OutOfRange),
            (&MINUTES, "1,,2", InvalidValue),
            (&MINUTES, "x", InvalidValue),
            (&DAYS, "0", OutOfRange),
            (&MONTHS, "JANUARY", InvalidValue),
            (&WEEKDAY_FIELD, "SUN-SUN-SUN", InvalidValue),
        ];
        for (spec, text, kind) in cases {
            assert_eq!(spec.parse(text).map_err(|(k, _)| k), Err(kind), "{text}");
        }
    }

    #[test]
    fn tokens_report_character_columns() {
        let found: Vec<(usize, &str)> = tokens("  ä b\tcc ").collect();
        assert_eq!(found, vec![(3, "ä"), (5, "b"), (7, "cc")]);
    }

    #[test]
    fn format_field_is_compact() {
        let parse = |text: &str| MINUTES.parse(text).unwrap_or_default();
        assert_eq!(format_field(parse("*/20"), 0, 59), "*/20");
        assert_eq!(format_field(parse("0-59/20"), 0, 59), "*/20");
        assert_eq!(format_field(parse("7"), 0, 59), "7-7");
        assert_eq!(format_field(parse("5-45/20"), 0, 59), "5-45/20");
        assert_eq!(format_field(parse("5,35"), 0, 59), "5,35");
        assert_eq!(format_field(parse("1-3,7,9-10"), 0, 59), "1-3,7,9-10");
    }

    #[test]
    fn alert_keys_are_bounded_typed_and_canonical() -> Result<(), RequirementError> {
        let r = Requirement::parse(&format!("ALERTKEYpayments-hourly.v2_a {SEED}"))?;
        assert_eq!(r.alert_key.as_deref(), Some("payments-hourly.v2_a"));
        assert_eq!(
            r.canonical(),
            format!(
                "{} ALERTKEYpayments-hourly.v2_a",
                Requirement::parse(SEED)?.canonical()
            )
        );
        assert_eq!(Requirement::parse(&r.canonical())?, r);
        assert_eq!(Requirement::parse(SEED)?.alert_key, None);
        let longest = "k".repeat(MAX_ALERT_KEY_LEN);
        assert!(Requirement::parse(&format!("{SEED} ALERTKEY{longest}")).is_ok());
        for (line, kind) in [
            (
                format!("{SEED} ALERTKEY"),
                RequirementErrorKind::MissingValue,
            ),
            (
                format!("{SEED} ALERTKEYa/b"),
                RequirementErrorKind::InvalidValue,
            ),
            (
                format!("{SEED} ALERTKEY{longest}k"),
                RequirementErrorKind::OutOfRange,
            ),
            (
                format!("{SEED} ALERTKEYa ALERTKEYb"),
                RequirementErrorKind::DuplicateOption,
            ),
        ] {
            let err = Requirement::parse(&line).expect_err("an error");
            assert_eq!(err.kind, kind, "{line}: {err}");
        }
        Ok(())
    }

    #[test]
    fn delay_seconds_defaults_to_zero_and_rounds_up_to_minutes() -> Result<(), RequirementError> {
        let plain = Requirement::parse(SEED)?;
        assert_eq!((plain.delay_seconds, plain.delay_minutes()), (0, 0));
        assert_eq!(plain.judged_up_to(600), 600);
        // `(DELAYSECONDS value, whole minutes waited)`.
        for (seconds, minutes) in [(0, 0), (1, 1), (59, 1), (60, 1), (61, 2), (300, 5)] {
            let r = Requirement::parse(&format!("{SEED} DELAYSECONDS{seconds}"))?;
            assert_eq!(r.delay_seconds, seconds);
            assert_eq!(r.delay_minutes(), minutes, "{seconds}");
            assert_eq!(r.judged_up_to(6_000), 6_000 - 60 * minutes, "{seconds}");
        }
        let widest = Requirement::parse(&format!("{SEED} DELAYSECONDS{MAX_DELAY_SECONDS}"))?;
        assert_eq!(widest.delay_minutes(), 7 * 24 * 60);
        // Hand-built requirements beyond the grammar's range never overflow.
        let huge = Requirement::new(plain.schedule, 0, 1, 60).with_delay_seconds(u64::MAX);
        assert_eq!(huge.judged_up_to(i64::MIN + 5), i64::MIN);
        Ok(())
    }

    #[test]
    fn max_below_min_names_both_values() {
        let err = Requirement::parse(
            "CHECKHOURS0-23 CHECKMINUTES0-59 WEEKDAYS MINNUM5 MAXNUM2 LOOKBACKSECONDS60",
        );
        assert_eq!(
            err,
            Err(RequirementError {
                column: 50,
                kind: RequirementErrorKind::MaxBelowMin,
                message: "MAXNUM must be >= MINNUM (5 > 2)".to_owned(),
            })
        );
    }
}
