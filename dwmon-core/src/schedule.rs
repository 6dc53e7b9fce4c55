//! The pure schedule evaluator (SPEC 4): is a requirement due at a minute, in a zone?
//!
//! CONTRACT: `matches(&Schedule, minute, Tz) -> bool`, `due_minutes(&Schedule, Tz, from, to)`
//! iterating due minutes in `[from, to]` ascending.

use crate::requirement::Schedule;
use chrono_tz::Tz;

/// Whether `schedule` is due at `minute` (epoch seconds; the minute containing it) in `zone`.
pub fn matches(schedule: &Schedule, minute: i64, zone: Tz) -> bool {
    // Straightforward reference implementation; the fast path replaces it.
    use chrono::{Datelike, Timelike};
    let Some(utc) = chrono::DateTime::from_timestamp(crate::minute_floor(minute), 0) else {
        return false;
    };
    let local = utc.with_timezone(&zone);
    schedule.minutes.contains(local.minute())
        && schedule.hours.contains(local.hour())
        && schedule.days.contains(local.day())
        && schedule.months.contains(local.month())
        && schedule.weekdays.contains(local.weekday().num_days_from_sunday())
}

/// The due minutes in `[from, to]` (both inclusive, rounded to minutes), ascending.
pub fn due_minutes(schedule: &Schedule, zone: Tz, from: i64, to: i64) -> impl Iterator<Item = i64> + '_ {
    let from = crate::minute_floor(from);
    let to = crate::minute_floor(to);
    (0..)
        .map(move |i| from + i * 60)
        .take_while(move |m| *m <= to)
        .filter(move |m| matches(schedule, *m, zone))
}
