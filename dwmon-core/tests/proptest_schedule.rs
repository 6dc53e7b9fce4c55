//! Property tests for the schedule evaluator (README "Time zones and daylight saving time"): the fast paths agree with a brute-force
//! oracle written directly from the field sets and chrono-tz's own UTC -> local conversion.
//!
//! 256 cases per property by default; a heavier run: `PROPTEST_CASES=20000 cargo test -p
//! dwmon-core --test proptest_schedule`.

use chrono::{DateTime, Datelike, Offset, TimeZone, Timelike};
use chrono_tz::Tz;
use dwmon_core::schedule::{due_minutes, matches, ZoneCursor};
use dwmon_core::{FieldSet, Schedule};
use proptest::prelude::*;

/// Zones with and without DST, southern-hemisphere DST, half-hour and 45-minute offsets, the
/// 30-minute DST of Lord Howe, a date-line jump (Apia 2011) and Morocco's Ramadan suspensions.
const ZONES: [Tz; 12] = [
    Tz::UTC,
    Tz::America__New_York,
    Tz::Europe__London,
    Tz::Asia__Tokyo,
    Tz::Asia__Kathmandu,
    Tz::Australia__Lord_Howe,
    Tz::America__St_Johns,
    Tz::Pacific__Chatham,
    Tz::America__Sao_Paulo,
    Tz::Pacific__Apia,
    Tz::Africa__Casablanca,
    Tz::Asia__Kolkata,
];

/// 1970-01-01 .. 2100-01-01 (seconds).
const EPOCH_2100: i64 = 4_102_444_800;

/// The oracle: convert with chrono-tz, then test each field of the set literally.
fn oracle(schedule: &Schedule, t: i64, zone: Tz) -> bool {
    let minute = t.div_euclid(60) * 60;
    let Some(utc) = DateTime::from_timestamp(minute, 0) else {
        return false;
    };
    let local = utc.with_timezone(&zone);
    schedule.minutes.contains(local.minute())
        && schedule.hours.contains(local.hour())
        && schedule.days.contains(local.day())
        && schedule.months.contains(local.month())
        && schedule
            .weekdays
            .contains(local.weekday().num_days_from_sunday())
}

fn offset_at(zone: Tz, t: i64) -> i32 {
    let utc = DateTime::from_timestamp(t, 0).expect("test instants are in range");
    zone.offset_from_utc_datetime(&utc.naive_utc())
        .fix()
        .local_minus_utc()
}

/// The first offset change of `zone` after `t` within a year (to aim ranges at DST edges).
fn next_transition(zone: Tz, t: i64) -> Option<i64> {
    let start = offset_at(zone, t);
    let mut hi = (1..=366)
        .map(|d| t + d * 86_400)
        .find(|&s| offset_at(zone, s) != start)?;
    let mut lo = hi - 86_400;
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if offset_at(zone, mid) == start {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(hi)
}

/// One field: everything, a random subset of its range, a single value, or raw bits
/// (including values outside the range, which must simply never match).
fn field(lo: u32, hi: u32) -> impl Strategy<Value = FieldSet> {
    let full = FieldSet::range(lo, hi);
    prop_oneof![
        3 => Just(full),
        3 => any::<u64>().prop_map(move |bits| FieldSet(bits & full.0)),
        2 => (lo..=hi).prop_map(|v| FieldSet(1 << v)),
        1 => any::<u64>().prop_map(FieldSet),
    ]
}

fn schedule() -> impl Strategy<Value = Schedule> {
    (
        field(0, 59),
        field(0, 23),
        field(1, 31),
        field(1, 12),
        field(0, 6),
    )
        .prop_map(|(minutes, hours, days, months, weekdays)| Schedule {
            minutes,
            hours,
            days,
            months,
            weekdays,
        })
}

fn zone() -> impl Strategy<Value = Tz> {
    (0..ZONES.len()).prop_map(|i| ZONES[i])
}

/// A start instant: uniform in 1970..2100, or just before one of the zone's transitions.
fn start(zone: Tz) -> impl Strategy<Value = i64> {
    (0..EPOCH_2100, any::<bool>(), 0..2_880i64).prop_map(move |(t, aim, before)| {
        match aim.then(|| next_transition(zone, t)).flatten() {
            Some(transition) => transition - before * 60,
            None => t,
        }
    })
}

proptest! {
    #[test]
    fn matches_agrees_with_the_oracle(
        schedule in schedule(),
        zone in zone(),
        t in 0..EPOCH_2100,
    ) {
        prop_assert_eq!(matches(&schedule, t, zone), oracle(&schedule, t, zone));
    }

    #[test]
    fn matches_agrees_with_the_oracle_far_from_now(
        schedule in schedule(),
        zone in zone(),
        t in -20_000_000_000i64..20_000_000_000,
    ) {
        prop_assert_eq!(matches(&schedule, t, zone), oracle(&schedule, t, zone));
    }

    #[test]
    fn a_reused_cursor_agrees_with_the_oracle(
        schedules in prop::collection::vec(schedule(), 1..4),
        (zone, base) in zone().prop_flat_map(|z| (Just(z), start(z))),
        steps in prop::collection::vec(-3_000i64..3_000, 1..60),
    ) {
        // Wander back and forth around `base` so the cursor's cache both hits and misses.
        let mut cursor = ZoneCursor::new(zone);
        let mut t = base;
        for step in steps {
            t += step * 60 + step.rem_euclid(7);
            for schedule in &schedules {
                prop_assert_eq!(cursor.matches(schedule, t), oracle(schedule, t, zone), "t={}", t);
            }
            let fields = cursor.local_fields(t).expect("in range");
            let local = DateTime::from_timestamp(t, 0).expect("in range").with_timezone(&zone);
            prop_assert_eq!(
                (fields.year, fields.month, fields.day, fields.hour, fields.minute),
                (i64::from(local.year()), local.month(), local.day(), local.hour(), local.minute())
            );
            prop_assert_eq!(cursor.utc_offset(t), Some(offset_at(zone, t)));
        }
    }

    #[test]
    fn due_minutes_equals_filtering_every_minute(
        schedule in schedule(),
        (zone, from) in zone().prop_flat_map(|z| (Just(z), start(z))),
        length in 0..2_880i64,
        jitter in 0..60i64,
    ) {
        let to = from + length * 60 + jitter;
        let first = from.div_euclid(60) * 60;
        let expected: Vec<i64> = (0..)
            .map(|i| first + i * 60)
            .take_while(|m| *m <= to)
            .filter(|m| oracle(&schedule, *m, zone))
            .collect();
        let actual: Vec<i64> = due_minutes(&schedule, zone, from, to).collect();
        prop_assert_eq!(actual, expected);
    }

    #[test]
    fn next_due_is_the_first_due_minute(
        schedule in schedule(),
        (zone, from) in zone().prop_flat_map(|z| (Just(z), start(z))),
        length in 0..2_880i64,
    ) {
        let to = from + length * 60;
        let mut cursor = ZoneCursor::new(zone);
        prop_assert_eq!(
            cursor.next_due(&schedule, from, to),
            due_minutes(&schedule, zone, from, to).next()
        );
    }
}
