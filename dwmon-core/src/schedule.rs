//! The pure schedule evaluator (README "Time zones and daylight saving time"): is a requirement due at a minute, in a zone?
//!
//! A *minute* is an epoch multiple of 60 (inputs are rounded down with
//! [`crate::minute_floor`]). A minute is due iff the **local wall-clock time** of that UTC
//! minute in the zone satisfies every field of the [`Schedule`] (minute, hour, day of month,
//! month and day of week, ANDed). Because the evaluator walks UTC minutes, daylight saving time
//! needs no special rule: local times skipped by a spring-forward never occur, so they never
//! match; local times repeated by a fall-back occur twice (once per UTC offset), so they match
//! twice.
//!
//! Entry points:
//! - [`matches()`] and [`due_minutes`]: simple one-shot functions.
//! - [`ZoneCursor`]: a reusable evaluator for one zone that caches the current UTC offset and
//!   the local date, so repeated tests cost a few nanoseconds instead of a time-zone lookup.
//!   Use it when testing many requirements or many minutes in the same zone; [`due_minutes`]
//!   walks its range with one.
//!
//! Everything here is pure: no clock, no I/O, "now" is always an argument.

use crate::requirement::{FieldSet, Schedule};
use chrono::{DateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use std::iter::FusedIterator;

const SECONDS_PER_DAY: i64 = 86_400;

/// The earliest minute the evaluator judges; earlier minutes never match.
///
/// chrono's representable range (about 262,000 years before 1970) less one day of margin so
/// that no UTC offset can push a local time out of range.
pub const FIRST_MINUTE: i64 = (DateTime::<Utc>::MIN_UTC.timestamp() / 60 + 1441) * 60;

/// The latest minute the evaluator judges; later minutes never match.
///
/// chrono's representable range (about 262,000 years after 1970) less one day of margin.
pub const LAST_MINUTE: i64 = (DateTime::<Utc>::MAX_UTC.timestamp() / 60 - 1441) * 60;

/// How far (seconds) a [`ZoneCursor`] probes around a minute when it (re)computes the span of
/// constant UTC offset. The offset is taken as constant between two probes that agree, i.e. we
/// rely on a zone never changing its offset *and changing it back* within this many seconds.
/// In chrono-tz 0.10.4's data consecutive transitions of a zone are at least 6.9 days apart
/// from 1800 to 2100 (a 15-minute scan of every zone; the ignored test
/// `transitions_are_further_apart_than_the_probe` re-checks it hourly), so two days is safe.
const PROBE_SECONDS: i64 = 2 * SECONDS_PER_DAY;

/// Whether `schedule` is due at `minute` (epoch seconds, rounded down to its minute) in `zone`.
///
/// Judged on the local wall-clock time of the minute in `zone` (README "Time zones and daylight saving time"). Minutes outside
/// [`FIRST_MINUTE`]..=[`LAST_MINUTE`] never match. Never panics.
///
/// This does one time-zone lookup per call; to test many minutes or requirements in one
/// zone, reuse a [`ZoneCursor`].
///
/// ```
/// use dwmon_core::{schedule::matches, FieldSet, Schedule};
/// let every_20_min = Schedule {
///     minutes: FieldSet(1 | 1 << 20 | 1 << 40),
///     hours: FieldSet::range(0, 23),
///     days: FieldSet::range(1, 31),
///     months: FieldSet::range(1, 12),
///     weekdays: FieldSet::range(0, 6),
/// };
/// // 2026-01-02 14:40 UTC is 09:40 in New York.
/// assert!(matches(&every_20_min, 1_767_364_800, chrono_tz::America::New_York));
/// assert!(!matches(&every_20_min, 1_767_364_860, chrono_tz::America::New_York));
/// ```
pub fn matches(schedule: &Schedule, minute: i64, zone: Tz) -> bool {
    if !(FIRST_MINUTE..=LAST_MINUTE + 59).contains(&minute) {
        return false;
    }
    let minute = crate::minute_floor(minute);
    let offset = utc_offset_at(zone, minute);
    LocalFields::from_local_seconds(minute + offset).matches(schedule)
}

/// The due minutes of `schedule` in `[from, to]` (both inclusive, rounded down to minutes),
/// ascending, in `zone`.
///
/// Exactly the minutes `m` of the range with [`matches()`]`(schedule, m, zone)`, but it skips
/// non-matching days, hours and minutes instead of testing every minute. An empty range
/// (`from > to`) yields nothing; the parts of the range outside
/// [`FIRST_MINUTE`]..=[`LAST_MINUTE`] yield nothing. Never panics.
///
/// ```
/// use dwmon_core::{schedule::due_minutes, FieldSet, Schedule};
/// let nine_oclock = Schedule {
///     minutes: FieldSet::range(0, 0),
///     hours: FieldSet::range(9, 9),
///     days: FieldSet::range(1, 31),
///     months: FieldSet::range(1, 12),
///     weekdays: FieldSet::range(0, 6),
/// };
/// // Two days from 2026-01-01 00:00 UTC: 09:00 Tokyo is 00:00 UTC.
/// let due: Vec<i64> = due_minutes(&nine_oclock, chrono_tz::Asia::Tokyo, 1_767_225_600, 1_767_398_340).collect();
/// assert_eq!(due, vec![1_767_225_600, 1_767_312_000]);
/// ```
pub fn due_minutes(schedule: &Schedule, zone: Tz, from: i64, to: i64) -> DueMinutes {
    ZoneCursor::new(zone).into_due_minutes(schedule, from, to)
}

/// The calendar fields of a local wall-clock minute, as a [`Schedule`] sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LocalFields {
    /// Proleptic Gregorian year (may be <= 0 far in the past).
    pub year: i64,
    /// Month, 1-12.
    pub month: u32,
    /// Day of the month, 1-31.
    pub day: u32,
    /// Day of the week, 0 = Sunday .. 6 = Saturday.
    pub weekday: u32,
    /// Hour, 0-23.
    pub hour: u32,
    /// Minute, 0-59.
    pub minute: u32,
}

impl LocalFields {
    /// The fields of the local time `local_seconds` (seconds since 1970-01-01 00:00 *local*,
    /// i.e. a UTC epoch plus the zone's UTC offset); seconds are dropped.
    ///
    /// Pure arithmetic (Howard Hinnant's `civil_from_days`), valid for every `i64` whose day
    /// count fits, which includes everything chrono can represent.
    pub fn from_local_seconds(local_seconds: i64) -> Self {
        let days = local_seconds.div_euclid(SECONDS_PER_DAY);
        let second_of_day = local_seconds.rem_euclid(SECONDS_PER_DAY) as u32;
        let date = LocalDate::from_days(days);
        LocalFields {
            year: date.year,
            month: date.month,
            day: date.day,
            weekday: date.weekday,
            hour: second_of_day / 3600,
            minute: second_of_day % 3600 / 60,
        }
    }

    /// Whether these fields satisfy every field of `schedule` (AND).
    #[inline]
    pub fn matches(&self, schedule: &Schedule) -> bool {
        schedule.minutes.contains(self.minute)
            && schedule.hours.contains(self.hour)
            && schedule.days.contains(self.day)
            && schedule.months.contains(self.month)
            && schedule.weekdays.contains(self.weekday)
    }
}

/// A local calendar date (the day-level part of [`LocalFields`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LocalDate {
    year: i64,
    month: u32,
    day: u32,
    weekday: u32,
}

impl LocalDate {
    /// The date `days` days after 1970-01-01 (Howard Hinnant's `civil_from_days`).
    fn from_days(days: i64) -> Self {
        let z = days + 719_468; // shift the epoch to 0000-03-01
        let era = z.div_euclid(146_097);
        let day_of_era = z.rem_euclid(146_097) as u32; // [0, 146096]
        let year_of_era =
            (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let shifted_month = (5 * day_of_year + 2) / 153; // 0 = March .. 11 = February
        let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
        let month = if shifted_month < 10 {
            shifted_month + 3
        } else {
            shifted_month - 9
        };
        let year = i64::from(year_of_era) + era * 400 + i64::from(month <= 2);
        // 1970-01-01 was a Thursday (4).
        let weekday = (days + 4).rem_euclid(7) as u32;
        LocalDate {
            year,
            month,
            day,
            weekday,
        }
    }

    #[inline]
    fn matches(&self, schedule: &Schedule) -> bool {
        has(schedule.days, self.day)
            && has(schedule.months, self.month)
            && has(schedule.weekdays, self.weekday)
    }
}

/// A reusable, fast schedule evaluator for one time zone.
///
/// It caches the zone's current UTC offset together with the span of UTC seconds over which
/// that offset holds (found with chrono-tz by probing and bisecting), and the calendar date of
/// the last local day it saw. While minutes stay inside the cached span — the usual case when
/// testing many requirements at one minute, or walking a range of minutes — a test is a few
/// integer operations and bit tests, with no time-zone lookup.
///
/// Results are exactly those of [`matches()`]. The methods take `&mut self` only to update the
/// cache; a cursor has no other state, so one cursor can serve any number of schedules.
///
/// ```
/// use dwmon_core::{schedule::ZoneCursor, FieldSet, Schedule};
/// let two_am = Schedule {
///     minutes: FieldSet::range(0, 59),
///     hours: FieldSet::range(2, 2),
///     days: FieldSet::range(1, 31),
///     months: FieldSet::range(1, 12),
///     weekdays: FieldSet::range(0, 6),
/// };
/// let mut cursor = ZoneCursor::new(chrono_tz::America::New_York);
/// // 2026-03-08 07:00 UTC is 03:00 EDT: 02:xx was skipped that night, so nothing is due.
/// assert_eq!(cursor.next_due(&two_am, 1_772_920_800, 1_772_953_200), None);
/// // The next night it is due at 02:00 EDT = 06:00 UTC.
/// assert_eq!(cursor.next_due(&two_am, 1_772_953_200, 1_773_100_000), Some(1_773_036_000));
/// ```
#[derive(Debug, Clone)]
pub struct ZoneCursor {
    zone: Tz,
    /// `offset` (seconds east of UTC) holds for the minutes in `[span_start, span_end)`; both
    /// bounds are minutes, so a raw epoch second is in the span iff its minute is.
    span_start: i64,
    span_end: i64,
    offset: i64,
    /// The local second (a multiple of 86 400) at which the cached day `date` starts.
    day_start: i64,
    date: LocalDate,
}

/// What [`ZoneCursor::step`] found at a minute.
enum Step {
    /// The minute is due.
    Due,
    /// The minute is not due, and neither is any minute before this one.
    SkipTo(i64),
}

impl ZoneCursor {
    /// A cursor for `zone` with an empty cache (the first test does the time-zone lookup).
    pub fn new(zone: Tz) -> Self {
        ZoneCursor {
            zone,
            span_start: 0,
            span_end: 0,
            offset: 0,
            day_start: 0,
            date: LocalDate::from_days(0),
        }
    }

    /// The zone this cursor evaluates in.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// Whether `schedule` is due at `minute` (rounded down to its minute) in this zone;
    /// identical to [`matches()`]`(schedule, minute, self.zone())`, but fast on repeated use.
    #[inline]
    pub fn matches(&mut self, schedule: &Schedule, minute: i64) -> bool {
        let Some(second_of_day) = self.locate(minute) else {
            return false;
        };
        let minute_of_day = second_of_day / 60;
        has(schedule.minutes, minute_of_day % 60)
            && has(schedule.hours, minute_of_day / 60)
            && self.date.matches(schedule)
    }

    /// The local calendar fields of `minute` (rounded down to its minute) in this zone, or
    /// `None` outside [`FIRST_MINUTE`]..=[`LAST_MINUTE`].
    pub fn local_fields(&mut self, minute: i64) -> Option<LocalFields> {
        let second_of_day = self.locate(minute)?;
        Some(LocalFields {
            year: self.date.year,
            month: self.date.month,
            day: self.date.day,
            weekday: self.date.weekday,
            hour: second_of_day / 3600,
            minute: second_of_day % 3600 / 60,
        })
    }

    /// The zone's UTC offset (seconds east of UTC) at `minute`, or `None` outside
    /// [`FIRST_MINUTE`]..=[`LAST_MINUTE`].
    pub fn utc_offset(&mut self, minute: i64) -> Option<i32> {
        self.locate(minute)?;
        // chrono offsets are below one day, so this always fits.
        i32::try_from(self.offset).ok()
    }

    /// The first due minute of `schedule` in `[from, to]` (inclusive, rounded down to
    /// minutes), or `None`. Skips non-matching days, hours and minutes.
    pub fn next_due(&mut self, schedule: &Schedule, from: i64, to: i64) -> Option<i64> {
        let (from, to) = due_range(schedule, from, to);
        self.next_due_within(schedule, from, to)
    }

    /// The due minutes of `schedule` in `[from, to]`, ascending, evaluated with this cursor
    /// (see [`due_minutes`]).
    pub fn into_due_minutes(self, schedule: &Schedule, from: i64, to: i64) -> DueMinutes {
        let (next, to) = due_range(schedule, from, to);
        DueMinutes {
            schedule: *schedule,
            cursor: self,
            next,
            to,
        }
    }

    /// [`Self::next_due`] for a range already normalised by [`due_range`].
    fn next_due_within(&mut self, schedule: &Schedule, from: i64, to: i64) -> Option<i64> {
        let mut minute = from;
        while minute <= to {
            match self.step(schedule, minute) {
                Step::Due => return Some(minute),
                Step::SkipTo(next) => minute = next,
            }
        }
        None
    }

    /// Moves the caches to the minute containing `t` and returns its local second of the day
    /// (the date is then in `self.date`); `None` outside the supported range.
    #[inline]
    fn locate(&mut self, t: i64) -> Option<u32> {
        // The span lies within the supported range, so a hit needs no range check.
        if t < self.span_start || t >= self.span_end {
            if !(FIRST_MINUTE..=LAST_MINUTE + 59).contains(&t) {
                return None;
            }
            self.refresh_span(crate::minute_floor(t));
        }
        let local = t - t.rem_euclid(60) + self.offset;
        let second_of_day = local - self.day_start;
        if (0..SECONDS_PER_DAY).contains(&second_of_day) {
            Some(second_of_day as u32)
        } else {
            Some(self.change_day(local))
        }
    }

    /// Caches the date of the local day containing `local`; returns the second of that day.
    #[inline(never)]
    fn change_day(&mut self, local: i64) -> u32 {
        let day_number = local.div_euclid(SECONDS_PER_DAY);
        self.day_start = day_number * SECONDS_PER_DAY;
        self.date = LocalDate::from_days(day_number);
        (local - self.day_start) as u32
    }

    /// Recomputes the offset at minute `t` and the span of minutes around it where the offset
    /// is constant. `t` must be within [`FIRST_MINUTE`]..=[`LAST_MINUTE`].
    #[cold]
    #[inline(never)]
    fn refresh_span(&mut self, t: i64) {
        let zone = self.zone;
        let offset = utc_offset_at(zone, t);
        let same = |s: i64| utc_offset_at(zone, s) == offset;

        let ahead = (t + PROBE_SECONDS).min(LAST_MINUTE + 59);
        let end = if same(ahead) {
            ahead + 1
        } else {
            // Invariant: same(lo), !same(hi); the first differing second is the span end.
            let (mut lo, mut hi) = (t, ahead);
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if same(mid) {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            hi
        };

        let behind = (t - PROBE_SECONDS).max(FIRST_MINUTE);
        let start = if same(behind) {
            behind
        } else {
            // Invariant: !same(lo), same(hi); the last differing second precedes the span.
            let (mut lo, mut hi) = (behind, t);
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if same(mid) {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            hi
        };
        // Keep the minutes whose first second is in [start, end): `t` is one of them.
        self.span_start = ceil_minute(start);
        self.span_end = ceil_minute(end);
        self.offset = offset;
    }

    /// Tests `minute` (a minute within range) and, when it is not due, finds the next
    /// minute that could be: the start of the next matching minute/hour/day, never beyond the
    /// current offset span (where local time might jump).
    #[inline]
    fn step(&mut self, schedule: &Schedule, minute: i64) -> Step {
        let Some(second_of_day) = self.locate(minute) else {
            return Step::SkipTo(LAST_MINUTE + 60);
        };
        let (hour, minute_of_hour) = (second_of_day / 3600, second_of_day % 3600 / 60);
        let day_start = self.day_start;
        let next_day = day_start + SECONDS_PER_DAY;

        let target_local = if !self.date.matches(schedule) {
            next_day
        } else if !has(schedule.hours, hour) {
            match next_at_or_after(schedule.hours, hour + 1, 24) {
                Some(h) => day_start + i64::from(h) * 3600,
                None => next_day,
            }
        } else if !has(schedule.minutes, minute_of_hour) {
            let hour_start = day_start + i64::from(hour) * 3600;
            match next_at_or_after(schedule.minutes, minute_of_hour + 1, 60) {
                Some(m) => hour_start + i64::from(m) * 60,
                None => hour_start + 3600,
            }
        } else {
            return Step::Due;
        };
        // The first UTC minute whose local time reaches `target_local`, but not past the end
        // of the span (the offset may change there, so the next step re-evaluates it).
        let target = ceil_minute(target_local - self.offset).min(self.span_end);
        Step::SkipTo(target.max(minute + 60))
    }
}

/// Iterator over the due minutes of a schedule in a range, ascending; see [`due_minutes`].
#[derive(Debug, Clone)]
pub struct DueMinutes {
    schedule: Schedule,
    cursor: ZoneCursor,
    /// The next minute to consider (normalised by [`due_range`]).
    next: i64,
    /// The last minute of the range (inclusive).
    to: i64,
}

impl Iterator for DueMinutes {
    type Item = i64;

    #[inline]
    fn next(&mut self) -> Option<i64> {
        if self.next > self.to {
            return None;
        }
        match self
            .cursor
            .next_due_within(&self.schedule, self.next, self.to)
        {
            Some(minute) => {
                // `minute` <= LAST_MINUTE, far from overflow.
                self.next = minute + 60;
                Some(minute)
            }
            None => {
                self.next = self.to + 60;
                None
            }
        }
    }
}

impl FusedIterator for DueMinutes {}

/// `[from, to]` rounded down to minutes (a range like 10:00:59..=10:00:01 holds the minute
/// 10:00) and cut to the supported range; empty (`from > to`) when nothing can be due.
fn due_range(schedule: &Schedule, from: i64, to: i64) -> (i64, i64) {
    if is_never(schedule) {
        return (LAST_MINUTE + 60, LAST_MINUTE);
    }
    // Clamping first keeps the rounding from overflowing.
    let from = crate::minute_floor(from.clamp(FIRST_MINUTE, LAST_MINUTE + 60));
    let to = crate::minute_floor(to.clamp(FIRST_MINUTE - 60, LAST_MINUTE));
    (from, to)
}

/// Whether `value` is in `set`; `value` must be below 64 (every calendar field is).
#[inline(always)]
fn has(set: FieldSet, value: u32) -> bool {
    debug_assert!(value < 64);
    (set.0 >> (value & 63)) & 1 == 1
}

/// The UTC offset (seconds east) of `zone` at UTC second `t`, which must be in chrono's range
/// (every caller passes a value within [`FIRST_MINUTE`]..=[`LAST_MINUTE`] + 59).
fn utc_offset_at(zone: Tz, t: i64) -> i64 {
    DateTime::from_timestamp(t, 0).map_or(0, |utc| {
        i64::from(
            zone.offset_from_utc_datetime(&utc.naive_utc())
                .fix()
                .local_minus_utc(),
        )
    })
}

/// The smallest minute >= `t`.
fn ceil_minute(t: i64) -> i64 {
    -crate::minute_floor(-t)
}

/// The smallest value in `set` within `from..limit`, if any.
fn next_at_or_after(set: FieldSet, from: u32, limit: u32) -> Option<u32> {
    if from >= limit {
        return None;
    }
    let window = (!0u64 << from) & ((1u64 << limit) - 1);
    let hits = set.0 & window;
    (hits != 0).then(|| hits.trailing_zeros())
}

/// Whether no minute can ever match `schedule` (some field has no value in its range).
fn is_never(schedule: &Schedule) -> bool {
    const MINUTES: u64 = (1 << 60) - 1;
    const HOURS: u64 = (1 << 24) - 1;
    const DAYS: u64 = ((1 << 32) - 1) & !1;
    const MONTHS: u64 = ((1 << 13) - 1) & !1;
    const WEEKDAYS: u64 = (1 << 7) - 1;
    schedule.minutes.0 & MINUTES == 0
        || schedule.hours.0 & HOURS == 0
        || schedule.days.0 & DAYS == 0
        || schedule.months.0 & MONTHS == 0
        || schedule.weekdays.0 & WEEKDAYS == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, NaiveDate};

    fn every_minute() -> Schedule {
        Schedule {
            minutes: FieldSet::range(0, 59),
            hours: FieldSet::range(0, 23),
            days: FieldSet::range(1, 31),
            months: FieldSet::range(1, 12),
            weekdays: FieldSet::range(0, 6),
        }
    }

    #[test]
    fn civil_from_days_agrees_with_chrono() {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        for days in (-800_000..800_000).step_by(37).chain([-1, 0, 1, 59, 789]) {
            let date = epoch + chrono::Duration::days(days);
            let ours = LocalDate::from_days(days);
            assert_eq!(
                (ours.year, ours.month, ours.day, ours.weekday),
                (
                    i64::from(date.year()),
                    date.month(),
                    date.day(),
                    date.weekday().num_days_from_sunday()
                ),
                "days {days}"
            );
        }
    }

    #[test]
    fn extreme_minutes_never_match_and_never_panic() {
        let all = every_minute();
        for m in [
            i64::MIN,
            i64::MIN + 1,
            FIRST_MINUTE - 1,
            LAST_MINUTE + 60,
            i64::MAX,
        ] {
            assert!(!matches(&all, m, Tz::UTC));
            assert!(!ZoneCursor::new(Tz::Asia__Kathmandu).matches(&all, m));
        }
        assert!(matches(&all, FIRST_MINUTE, Tz::Pacific__Kiritimati));
        assert!(matches(&all, LAST_MINUTE + 59, Tz::Pacific__Kiritimati));
        assert_eq!(
            due_minutes(&all, Tz::UTC, i64::MAX - 10, i64::MAX).count(),
            0
        );
        assert_eq!(
            due_minutes(&all, Tz::UTC, i64::MIN, i64::MIN + 10).count(),
            0
        );
        assert_eq!(
            due_minutes(&all, Tz::UTC, LAST_MINUTE - 60, i64::MAX).collect::<Vec<_>>(),
            vec![LAST_MINUTE - 60, LAST_MINUTE]
        );
        assert_eq!(
            due_minutes(&all, Tz::UTC, i64::MIN, FIRST_MINUTE + 60).collect::<Vec<_>>(),
            vec![FIRST_MINUTE, FIRST_MINUTE + 60]
        );
        let mut it = due_minutes(&all, Tz::UTC, i64::MAX, i64::MAX);
        assert_eq!((it.next(), it.next()), (None, None));
    }

    /// Guards [`PROBE_SECONDS`] against new tz data. Slow: run with
    /// `cargo test -p dwmon-core --release --lib -- --ignored`.
    #[test]
    #[ignore = "scans every zone hourly from 1900 to 2100; run in release"]
    fn transitions_are_further_apart_than_the_probe() {
        const HOUR: i64 = 3600;
        for zone in chrono_tz::TZ_VARIANTS {
            let mut previous_change = None;
            let mut offset = utc_offset_at(zone, -2_208_988_800);
            for t in (-2_208_988_800..4_102_444_800).step_by(HOUR as usize) {
                let now = utc_offset_at(zone, t);
                if now != offset {
                    if let Some(before) = previous_change {
                        assert!(
                            t - before > PROBE_SECONDS + 2 * HOUR,
                            "{zone}: offset changes at {before} and {t}"
                        );
                    }
                    previous_change = Some(t);
                    offset = now;
                }
            }
        }
    }

    #[test]
    fn next_at_or_after_respects_the_limit() {
        let set = FieldSet(1 << 3 | 1 << 59 | 1 << 61);
        assert_eq!(next_at_or_after(set, 0, 60), Some(3));
        assert_eq!(next_at_or_after(set, 4, 60), Some(59));
        assert_eq!(next_at_or_after(set, 60, 60), None);
        assert_eq!(next_at_or_after(set, 4, 24), None);
    }

    #[test]
    fn cursor_offset_spans_hold_across_a_transition() {
        // 2026-03-08 07:00 UTC: New York goes from -5 h to -4 h.
        let mut cursor = ZoneCursor::new(Tz::America__New_York);
        let t = 1_772_953_200;
        assert_eq!(cursor.utc_offset(t - 60), Some(-5 * 3600));
        assert_eq!(
            (cursor.span_start, cursor.span_end),
            (t - 60 - PROBE_SECONDS, t)
        );
        assert_eq!(cursor.utc_offset(t), Some(-4 * 3600));
        assert_eq!(
            (cursor.span_start, cursor.span_end),
            (t, t + PROBE_SECONDS + 60)
        );
    }
}
