//! Schedule evaluator throughput (README "Performance": >= 50 M (requirement, minute) eligibility tests per
//! second on one core).
//!
//! Run: `cargo bench -p dwmon-benches --bench evaluator` (add `-- --quick` for a short run).
//! Criterion reports `thrpt` in elements/s, one element = one (requirement, minute) test.

use chrono_tz::Tz;
use criterion::{BenchmarkId, Criterion, Throughput};
use dwmon_core::schedule::{due_minutes, matches, ZoneCursor};
use dwmon_core::{Requirement, Schedule};
use std::hint::black_box;

/// 2026-10-29 00:00 UTC: the week that follows contains New York's fall-back (2026-11-01).
const WEEK_START: i64 = 1_793_232_000;
const MINUTES_PER_DAY: i64 = 1_440;
const MINUTES_PER_WEEK: i64 = 7 * MINUTES_PER_DAY;

/// Requirement lines as operators write them: the seed's lines and the cron extension.
const LINES: [&str; 10] = [
    "CHECKHOURS9-9 CHECKMINUTES*/20 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS180",
    "CHECKHOURS0-23 CHECKMINUTES0-59 WEEKENDS WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS180",
    "CHECKHOURS9-9 CHECKMINUTES0-0 WEEKENDS WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS180",
    "CHECKHOURS13-13 CHECKMINUTES0-0 WEEKENDS WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS180",
    "CHECKHOURS8-18 CHECKMINUTES*/5 WEEKDAYS MINNUM1 MAXNUM100 LOOKBACKSECONDS300",
    "CHECKHOURS*/2 CHECKMINUTES15,45 WEEKENDS MINNUM0 MAXNUM3 LOOKBACKSECONDS3600",
    "CHECKHOURS2 CHECKMINUTES30 CHECKDAYS1 CHECKMONTHS* WEEKDAYS WEEKENDS MINNUM1 MAXNUM1 LOOKBACKSECONDS90000",
    "CHECKHOURS0-23 CHECKMINUTES*/10 CHECKMONTHSJAN-MAR,OCT-DEC CHECKWEEKDAYSMON-FRI MINNUM0 MAXNUM10 LOOKBACKSECONDS600",
    "CHECKHOURS9-17 CHECKMINUTES0,20,40 CHECKDAYS13 CHECKWEEKDAYSFRI MINNUM0 MAXNUM0 LOOKBACKSECONDS60",
    "CHECKHOURS1 CHECKMINUTES0-59 WEEKDAYS WEEKENDS MINNUM0 MAXNUM5 LOOKBACKSECONDS60",
];

fn schedules() -> Vec<Schedule> {
    LINES
        .iter()
        .map(|line| {
            Requirement::parse(line)
                .unwrap_or_else(|e| panic!("bench line `{line}`: {e}"))
                .schedule
        })
        .collect()
}

/// The engine's pattern: one cursor per zone, every requirement tested at every minute.
fn count_due(cursor: &mut ZoneCursor, schedules: &[Schedule], from: i64, minutes: i64) -> u64 {
    let mut due = 0;
    for i in 0..minutes {
        let minute = from + i * 60;
        for schedule in schedules {
            due += u64::from(cursor.matches(schedule, minute));
        }
    }
    due
}

fn eligibility(c: &mut Criterion) {
    let all = schedules();
    let mut group = c.benchmark_group("eligibility");
    for (zone_label, zone) in [("UTC", Tz::UTC), ("New_York", Tz::America__New_York)] {
        for (label, requirements) in [
            ("seed_every_20min_weekdays", &all[0..1]),
            ("every_minute", &all[1..2]),
            ("ten_requirements", &all[..]),
        ] {
            let tests = MINUTES_PER_WEEK * requirements.len() as i64;
            group.throughput(Throughput::Elements(tests as u64));
            group.bench_with_input(
                BenchmarkId::new(zone_label, format!("{label}/week")),
                &requirements,
                |b, requirements| {
                    let mut cursor = ZoneCursor::new(zone);
                    b.iter(|| {
                        count_due(
                            &mut cursor,
                            black_box(requirements),
                            black_box(WEEK_START),
                            MINUTES_PER_WEEK,
                        )
                    })
                },
            );
        }
    }
    // The one-shot `matches` (a chrono-tz lookup per call), for comparison.
    group.throughput(Throughput::Elements(MINUTES_PER_DAY as u64));
    group.bench_function("New_York/one_shot_matches/day", |b| {
        b.iter(|| {
            (0..MINUTES_PER_DAY)
                .filter(|i| {
                    matches(
                        black_box(&all[0]),
                        WEEK_START + i * 60,
                        Tz::America__New_York,
                    )
                })
                .count()
        })
    });
    group.finish();
}

/// `due_minutes` skips non-matching days/hours/minutes; throughput counts every minute of
/// the range as if it had been tested.
fn due_minutes_range(c: &mut Criterion) {
    let all = schedules();
    let mut group = c.benchmark_group("due_minutes");
    group.throughput(Throughput::Elements(MINUTES_PER_WEEK as u64));
    for (zone_label, zone) in [("UTC", Tz::UTC), ("New_York", Tz::America__New_York)] {
        for (label, schedule) in [
            ("seed_every_20min_weekdays", all[0]),
            ("every_minute", all[1]),
        ] {
            group.bench_with_input(
                BenchmarkId::new(zone_label, format!("{label}/week")),
                &schedule,
                |b, schedule| {
                    b.iter(|| {
                        due_minutes(
                            black_box(schedule),
                            zone,
                            black_box(WEEK_START),
                            WEEK_START + (MINUTES_PER_WEEK - 1) * 60,
                        )
                        .count()
                    })
                },
            );
        }
    }
    group.finish();
}

// What `criterion_group!`/`criterion_main!` expand to, written out so no undocumented public
// function is generated (the workspace warns on missing docs).
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    eligibility(&mut criterion);
    due_minutes_range(&mut criterion);
    criterion.final_summary();
}
