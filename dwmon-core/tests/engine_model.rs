//! Model check: for random event streams arriving over time, random requirements and random
//! cycle times with gaps (and fetches that fail now and then), the engine with the in-memory
//! store hands the handler exactly the checks a brute-force reading of the cycle rules (README "How a cycle works") produces.
//!
//! The model below is written from the documented rules alone: it walks every minute of every
//! horizon, matches schedules with chrono directly, stores rows in a plain map and counts by
//! scanning all of them. Besides those rules it implements the engine's one storage rule that is
//! observable: a checker's first cycle stores all fetched rows and purges nothing; after it,
//! fetched rows older than
//! `min_r(M_r - (H_r - 1) * 60 - L_r)` are not stored (a key whose first sighting is that old
//! and that later reappears with a newer timestamp is counted at the newer one).
//!
//! Requirements may carry `DELAYSECONDS` (as documented in docs/FORMAT.md): with `D_r` the
//! delay rounded up to whole minutes, requirement `r` judges minutes up to `M_r = M - D_r`,
//! continuing after `last_r = max(its own last checked minute, last - D_r)`.

use chrono::{Datelike, Timelike};
use dwmon_core::engine::EngineConfig;
use dwmon_core::testutil::{checker, RecordingHandler, ScriptedSource, Step};
use dwmon_core::{
    Checker, Engine, FieldSet, MemoryStore, Purger, Requirement, Row, Schedule, SourceError, Status,
};
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Instants a scenario starts near: an ordinary day, and shortly before New York's fall-back
/// (2023-11-05 06:00 UTC) and spring-forward (2023-03-12 07:00 UTC) transitions.
const STARTS: [i64; 3] = [1_700_000_040, 1_699_160_400, 1_678_590_000];

/// Zones a checker may use (None: the engine's default, UTC). Lord Howe shifts by 30 minutes.
const ZONES: [Option<chrono_tz::Tz>; 4] = [
    None,
    Some(chrono_tz::America::New_York),
    Some(chrono_tz::Australia::Lord_Howe),
    Some(chrono_tz::Asia::Kolkata),
];

/// Keeps what a check inside any horizon can reach, `max_r(D_r + H_r * 60 + L_r)` before the
/// current minute, plus a safety hour: like the default purger with an hour instead of a
/// day, so purging happens within the few hours a case spans, and purges every cycle. The
/// safety hour leaves rows that no window can reach in the store until they are purged,
/// which is what the engine's "not stored after the first cycle" rule is about.
struct TightPurger;

fn keep_seconds(c: &Checker) -> i64 {
    c.requirements
        .iter()
        .map(|r| delay(r) + r.horizon_minutes() * 60 + r.lookback_seconds as i64)
        .max()
        .unwrap_or(0)
        + 3600
}

/// `DELAYSECONDS` rounded up to whole minutes, in seconds.
fn delay(r: &Requirement) -> i64 {
    (r.delay_seconds as i64 + 59) / 60 * 60
}

impl Purger for TightPurger {
    fn cutoffs(&self, c: &Checker, now: i64) -> dwmon_core::Cutoffs {
        dwmon_core::Cutoffs {
            rows: Some(now.div_euclid(60) * 60 - keep_seconds(c)),
            checks: None,
        }
    }
}

/// One source event: a key that becomes visible at `arrival` with timestamp `ts`.
#[derive(Debug, Clone)]
struct SourceEvent {
    key: String,
    ts: i64,
    arrival: i64,
}

#[derive(Debug, Clone)]
struct Scenario {
    checkers: Vec<(Checker, Vec<SourceEvent>)>,
    /// Cycle times with, per checker, whether its fetch fails.
    cycles: Vec<(i64, Vec<bool>)>,
}

fn field(bits: u64, lo: u32, hi: u32) -> FieldSet {
    let set = FieldSet(bits & FieldSet::range(lo, hi).0);
    if set.is_empty() {
        FieldSet::range(lo, lo)
    } else {
        set
    }
}

fn minutes_strategy() -> impl Strategy<Value = FieldSet> {
    prop_oneof![
        // `*/n` shifted by an offset: sparse and regular.
        (1u32..=30, 0u32..30).prop_map(|(n, offset)| {
            let mut set = FieldSet::default();
            for m in (offset % n..60).step_by(n as usize) {
                set.insert(m);
            }
            set
        }),
        // Any subset: dense and irregular.
        any::<u64>().prop_map(|bits| field(bits, 0, 59)),
        Just(FieldSet::range(0, 59)),
    ]
}

fn requirement_strategy() -> impl Strategy<Value = Requirement> {
    let lookback = prop_oneof![1u64..=180, Just(60), Just(300), Just(3600), 1u64..=7200];
    let hours = prop_oneof![
        Just(FieldSet::range(0, 23)),
        any::<u32>().prop_map(|b| field(u64::from(b) | 0x3F_FFC0, 0, 23)),
    ];
    // Mostly no delay; some whole and some odd numbers of minutes, up to a long one.
    let delay = prop_oneof![
        3 => Just(0u64),
        1 => 1u64..=600,
        1 => Just(300u64),
        1 => 0u64..=7_200,
    ];
    (minutes_strategy(), hours, 0u64..4, 0u64..6, lookback, delay).prop_map(
        |(minutes, hours, min, extra, lookback_seconds, delay_seconds)| {
            let schedule = Schedule {
                minutes,
                hours,
                days: FieldSet::range(1, 31),
                months: FieldSet::range(1, 12),
                weekdays: FieldSet::range(0, 6),
            };
            Requirement::new(schedule, min, min + extra, lookback_seconds)
                .with_delay_seconds(delay_seconds)
        },
    )
}

fn events_strategy(t: i64) -> impl Strategy<Value = Vec<SourceEvent>> {
    // Few keys, so keys repeat with different timestamps within and across batches.
    // Skews: mostly late arrivals of old events; some recent ones, countable where they land.
    let skew = prop_oneof![-3_600i64..=120, -300i64..=60];
    let event =
        (0u8..12, -7_200i64..30_000, skew).prop_map(move |(key, arrival, skew)| SourceEvent {
            key: format!("k{key}"),
            ts: t + arrival + skew,
            arrival: t + arrival,
        });
    proptest::collection::vec(event, 0..40)
}

fn scenario_strategy() -> impl Strategy<Value = Scenario> {
    proptest::sample::select(STARTS.to_vec()).prop_flat_map(scenario_from)
}

fn scenario_from(t: i64) -> impl Strategy<Value = Scenario> {
    let checker_spec = (
        proptest::collection::vec(requirement_strategy(), 1..=3),
        events_strategy(t),
        proptest::sample::select(ZONES.to_vec()),
    );
    let gap = prop_oneof![1i64..=90, 60i64..=3_000];
    (
        proptest::collection::vec(checker_spec, 1..=2),
        0i64..60,
        proptest::collection::vec((gap, proptest::collection::vec(any::<u8>(), 2)), 1..=20),
    )
        .prop_map(move |(specs, start, gaps)| {
            let checkers = specs
                .into_iter()
                .enumerate()
                .map(|(i, (reqs, events, zone))| {
                    let mut c = checker(&format!("c{i}"), reqs);
                    c.timezone = zone;
                    (c, events)
                })
                .collect();
            let mut now = t + start;
            let cycles = gaps
                .into_iter()
                .map(|(gap, fails)| {
                    now += gap;
                    // About one fetch in eight fails.
                    (now, fails.iter().map(|b| b % 8 == 0).collect())
                })
                .collect();
            Scenario { checkers, cycles }
        })
}

/// The rows a query returns at `now`: the events that have arrived, in arrival order of
/// generation (the model and the engine see the same order).
fn visible(events: &[SourceEvent], now: i64) -> Vec<Row> {
    events
        .iter()
        .filter(|e| e.arrival <= now)
        .map(|e| Row::new(e.key.clone(), e.ts))
        .collect()
}

/// Schedule matching straight from the local calendar fields (docs/FORMAT.md, "Requirement lines").
fn model_matches(s: &Schedule, minute: i64, zone: chrono_tz::Tz) -> bool {
    let Some(t) = chrono::DateTime::from_timestamp(minute, 0) else {
        return false;
    };
    let t = t.with_timezone(&zone);
    s.minutes.contains(t.minute())
        && s.hours.contains(t.hour())
        && s.days.contains(t.day())
        && s.months.contains(t.month())
        && s.weekdays.contains(t.weekday().num_days_from_sunday())
}

/// One check as the model sees it: (minute, requirement_index, count, status).
type ModelCheck = (i64, usize, u64, Status);

#[derive(Default)]
struct ModelChecker {
    stored: HashMap<String, i64>,
    last: Option<i64>,
    /// Each requirement's own last checked minute.
    own_last: HashMap<usize, i64>,
    checks: Vec<ModelCheck>,
    errors: usize,
}

impl ModelChecker {
    /// steps 1-7 of a cycle (README "How a cycle works") for one checker, literally.
    fn cycle(&mut self, c: &Checker, events: &[SourceEvent], now: i64, fetch_fails: bool) {
        let m_now = now.div_euclid(60) * 60;
        let mut candidates = Vec::new();
        let mut missed = Vec::new();
        for (index, r) in c.requirements.iter().enumerate() {
            let lookback = r.lookback_seconds as i64;
            let horizon = 10 * ((lookback + 59) / 60);
            let up_to = m_now - delay(r);
            let last_r = self.last.map(|last| {
                let floor = last - delay(r);
                self.own_last
                    .get(&index)
                    .map_or(floor, |own| floor.max(*own))
            });
            // Due minutes after the last check that have left the horizon: MISSED.
            if let Some(last) = last_r {
                let zone = c.timezone.unwrap_or(chrono_tz::UTC);
                let mut m = last + 60;
                while m < up_to - (horizon - 1) * 60 {
                    if model_matches(&r.schedule, m, zone) {
                        missed.push((m, index));
                    }
                    m += 60;
                }
            }
            let mut m = up_to - (horizon - 1) * 60;
            while m <= up_to {
                let after_last = match last_r {
                    None => m == up_to,
                    Some(last) => m > last,
                };
                if after_last && model_matches(&r.schedule, m, c.timezone.unwrap_or(chrono_tz::UTC))
                {
                    candidates.push((m, index));
                }
                m += 60;
            }
        }
        if candidates.is_empty() && missed.is_empty() {
            return;
        }
        if fetch_fails {
            self.errors += 1;
            return;
        }
        // After the first cycle, rows older than the oldest window any requirement can still
        // reach are not stored (engine.rs, "Rows that are not stored"); the first occurrence
        // of a key in the batch decides, even when it is dropped.
        let reachable_from = c
            .requirements
            .iter()
            .map(|r| {
                let lookback = r.lookback_seconds as i64;
                m_now - delay(r) - (10 * ((lookback + 59) / 60) - 1) * 60 - lookback
            })
            .min()
            .unwrap_or(i64::MIN);
        let first_cycle = self.last.is_none();
        let mut in_batch = HashSet::new();
        for row in visible(events, now) {
            if !in_batch.insert(row.key.clone()) {
                continue;
            }
            if self.last.is_some() && row.timestamp < reachable_from {
                continue;
            }
            self.stored.entry(row.key).or_insert(row.timestamp);
        }
        let mut checks: Vec<ModelCheck> = missed
            .into_iter()
            .map(|(m, index)| (m, index, 0, Status::Missed))
            .collect();
        candidates.sort_unstable();
        for (m, index) in candidates {
            let r = &c.requirements[index];
            let from = m - r.lookback_seconds as i64;
            let count = self
                .stored
                .values()
                .filter(|ts| from <= **ts && **ts < m)
                .count() as u64;
            let status = if r.min <= count && count <= r.max {
                Status::Good
            } else {
                Status::Bad
            };
            checks.push((m, index, count, status));
        }
        checks.sort_unstable_by_key(|c| (c.0, c.1));
        for check in checks {
            self.last = Some(self.last.map_or(check.0, |l| l.max(check.0)));
            let own = self.own_last.entry(check.1).or_insert(check.0);
            *own = (*own).max(check.0);
            self.checks.push(check);
        }
        // The first cycle keeps its fetched history (no purge).
        if !first_cycle {
            let cutoff = m_now - keep_seconds(c);
            self.stored.retain(|_, ts| *ts >= cutoff);
        }
    }
}

fn run_engine(scenario: &Scenario) -> Result<(Vec<Vec<ModelCheck>>, Vec<usize>), String> {
    let source = Arc::new(ScriptedSource::new());
    let handler = Arc::new(RecordingHandler::new());
    let checkers: Vec<Checker> = scenario.checkers.iter().map(|(c, _)| c.clone()).collect();
    let engine = Engine::new(
        source.clone(),
        Arc::new(MemoryStore::new()),
        handler.clone(),
    )
    .with_config(EngineConfig {
        purge_timing: dwmon_core::PurgeTiming::EveryCycle,
        ..EngineConfig::default()
    })
    .with_purger(Arc::new(TightPurger))
    .with_checkers(checkers);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        for (now, fails) in &scenario.cycles {
            for (i, (c, events)) in scenario.checkers.iter().enumerate() {
                let step = if fails[i] {
                    Step::Fail(SourceError::Other("scripted".into()))
                } else {
                    Step::Rows(visible(events, *now))
                };
                source.set(&c.name, step);
            }
            engine.run_cycle(*now).await;
        }
    });
    let mut checks = vec![Vec::new(); scenario.checkers.len()];
    for check in handler.checks() {
        let i = scenario
            .checkers
            .iter()
            .position(|(c, _)| c.name == check.checker)
            .ok_or("check for an unknown checker")?;
        checks[i].push((
            check.minute,
            check.requirement_index,
            check.count,
            check.status,
        ));
    }
    let errors = scenario
        .checkers
        .iter()
        .map(|(c, _)| {
            handler
                .errors()
                .iter()
                .filter(|e| e.checker == c.name)
                .count()
        })
        .collect();
    Ok((checks, errors))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn engine_records_equal_the_spec_model(scenario in scenario_strategy()) {
        let (engine_checks, engine_errors) =
            run_engine(&scenario).map_err(TestCaseError::fail)?;
        for (i, (c, events)) in scenario.checkers.iter().enumerate() {
            let mut model = ModelChecker::default();
            for (now, fails) in &scenario.cycles {
                model.cycle(c, events, *now, fails[i]);
            }
            prop_assert_eq!(&engine_checks[i], &model.checks, "checker {}", c.name);
            prop_assert_eq!(engine_errors[i], model.errors, "errors of {}", c.name);
            let last_now = scenario.cycles.last().map_or(0, |(now, _)| *now);
            no_minute_skipped_or_repeated(c, &engine_checks[i], last_now)
                .map_err(TestCaseError::fail)?;
        }
    }
}

/// Independently of how progress is computed: each requirement's checks come in strictly
/// ascending minutes (none judged twice), every due minute between its first and last
/// check was recorded (judged or MISSED: none skipped), and none is later than the last
/// cycle's minute less the requirement's delay.
fn no_minute_skipped_or_repeated(
    c: &Checker,
    checks: &[ModelCheck],
    last_now: i64,
) -> Result<(), String> {
    let zone = c.timezone.unwrap_or(chrono_tz::UTC);
    for (index, r) in c.requirements.iter().enumerate() {
        let minutes: Vec<i64> = checks
            .iter()
            .filter(|check| check.1 == index)
            .map(|check| check.0)
            .collect();
        if let Some(pair) = minutes.windows(2).find(|w| w[0] >= w[1]) {
            return Err(format!("{}/{index}: {} then {}", c.name, pair[0], pair[1]));
        }
        let (Some(&first), Some(&last)) = (minutes.first(), minutes.last()) else {
            continue;
        };
        let mut m = first;
        while m <= last {
            if model_matches(&r.schedule, m, zone) && minutes.binary_search(&m).is_err() {
                return Err(format!("{}/{index}: due minute {m} skipped", c.name));
            }
            m += 60;
        }
        if last > last_now.div_euclid(60) * 60 - delay(r) {
            return Err(format!(
                "{}/{index}: {last} judged before its delay",
                c.name
            ));
        }
    }
    Ok(())
}
