//! Step 7 of a cycle: when purges run and the purge itself (a [`crate::Purger`] only says
//! how much to keep).
//!
//! # Purges are spread out
//!
//! Deleting every checker's expired rows every cycle would make a cycle after an outage
//! delete everything that expired during the outage for all checkers at once (millions of
//! rows). Instead, by default ([`PurgeTiming::HourlySlot`]), each checker is purged about once
//! an hour, at its own *slot* minute ([`purge_slot`]): when the minute of the hour of `now` (in
//! the checker's `__TIMEZONE__`, else UTC) equals the slot. The slot is picked
//! deterministically from a stable hash (FNV-1a) of the checker name among the minutes of the
//! hour the checker's schedules can match, so
//!
//! - the same checker always gets the same slot, in every process and on every machine;
//! - checkers that run every minute are spread evenly over the hour;
//! - a checker whose schedules match only some minutes of the hour (e.g. hourly at `:00`)
//!   gets one of those, so it is still purged whenever it runs at that minute. Its purges
//!   follow its schedule: a checker due once a day purges once a day.
//!
//! Limitations: only cycles where the checker has something to check purge, so a checker
//! whose fetch keeps failing at its slot purges less often (its rows are then kept a little
//! longer; nothing countable is ever deleted). For a checker without `__TIMEZONE__` the slot
//! is read in UTC; under a runner zone whose offset is not a whole number of hours (e.g.
//! Asia/Kolkata) a checker whose schedules match only some minutes of the hour may never hit
//! its slot: give such checkers a `__TIMEZONE__` or use [`PurgeTiming::EveryCycle`].

use super::failure::Failure;
use super::{CheckerOutcome, CycleContext};
use crate::checker_file::Checker;
use crate::purger::Cutoffs;

/// When the engine purges a checker ([`crate::EngineConfig::purge_timing`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PurgeTiming {
    /// About once an hour, at the checker's slot minute ([`purge_slot`]); the default.
    #[default]
    HourlySlot,
    /// Every cycle the checker has minutes to check.
    EveryCycle,
}

impl PurgeTiming {
    /// Whether `checker` is purged on the cycle at `now`.
    pub fn is_due(self, checker: &Checker, now: i64) -> bool {
        match self {
            PurgeTiming::EveryCycle => true,
            PurgeTiming::HourlySlot => {
                let zone = checker.zone(chrono_tz::UTC);
                let minute = chrono::DateTime::from_timestamp(crate::minute_floor(now), 0)
                    .map(|t| chrono::Timelike::minute(&t.with_timezone(&zone)));
                minute == Some(purge_slot(checker))
            }
        }
    }
}

/// The minute of the hour (0-59, in the checker's zone, else UTC) at which `checker` is
/// purged under [`PurgeTiming::HourlySlot`]: FNV-1a of its name picks one of the minutes its
/// schedules can match (any minute if they match none).
pub fn purge_slot(checker: &Checker) -> u32 {
    let all_minutes = crate::FieldSet::range(0, 59).0;
    let mut minutes = checker
        .requirements
        .iter()
        .fold(0, |set, r| set | r.schedule.minutes.0)
        & all_minutes;
    if minutes == 0 {
        minutes = all_minutes;
    }
    // The `hash % count`-th minute of the set, ascending.
    let count = u64::from(minutes.count_ones());
    for _ in 0..fnv1a(checker.name.as_bytes()) % count {
        minutes &= minutes - 1;
    }
    minutes.trailing_zeros()
}

impl CycleContext {
    /// What this cycle purges of `checker`, given its retention `cutoffs`: nothing unless a
    /// purge is due ([`crate::EngineConfig::purge_timing`]), and no rows on the checker's
    /// first cycle, which keeps its whole fetched history for the history views.
    pub(super) fn this_cycles_purge(
        &self,
        checker: &Checker,
        cutoffs: Cutoffs,
        first_cycle: bool,
    ) -> Cutoffs {
        if !self.config.purge_timing.is_due(checker, self.now) {
            return Cutoffs::KEEP_EVERYTHING;
        }
        Cutoffs {
            rows: cutoffs.rows.filter(|_| !first_cycle),
            checks: cutoffs.checks,
        }
    }

    /// Step 7, after the checks are delivered: the check log, then the rows (a push checker's
    /// ping series of the other kinds first). Each failure is reported; the other purges run
    /// all the same.
    pub(super) async fn purge(
        &self,
        checker: &Checker,
        purge: Cutoffs,
        outcome: &mut CheckerOutcome,
    ) {
        if let Some(cutoff) = purge.checks {
            let purged = self
                .store
                .purge_checks(&checker.name, cutoff)
                .await
                .map_err(|e| {
                    Failure::store(format!("cannot purge check records before {cutoff}"), e)
                });
            outcome.purged_checks = self
                .ok_or_report(checker, outcome, purged)
                .await
                .unwrap_or(0);
        }
        let Some(cutoff) = purge.rows else {
            return;
        };
        if checker.is_push() {
            for kind in &crate::ping::PingKind::ALL[1..] {
                let series = crate::ping::series(&checker.name, *kind);
                let purged = self.store.purge(&series, cutoff).await.map_err(|e| {
                    Failure::store(
                        format!("cannot purge rows of {series} older than {cutoff}"),
                        e,
                    )
                });
                self.ok_or_report(checker, outcome, purged).await;
            }
        }
        let purged = self
            .store
            .purge(&checker.name, cutoff)
            .await
            .map_err(|e| Failure::store(format!("cannot purge rows older than {cutoff}"), e));
        outcome.purged_rows = self
            .ok_or_report(checker, outcome, purged)
            .await
            .unwrap_or(0);
    }
}

/// 64-bit FNV-1a: a tiny hash that is the same in every process (std's hasher is seeded
/// randomly per process, which would move the slots on every restart).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{checker, every_minute, requirement};
    use crate::FieldSet;

    /// 2024-01-01 00:00 UTC.
    const HOUR_START: i64 = 1_704_067_200;

    fn purge_minutes(c: &Checker, from: i64, minutes: i64) -> Vec<i64> {
        (0..minutes)
            .map(|i| from + i * 60)
            .filter(|&m| PurgeTiming::HourlySlot.is_due(c, m + 7))
            .collect()
    }

    #[test]
    fn fnv1a_matches_the_reference_values() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn a_checker_always_gets_the_same_slot_and_purges_once_an_hour() {
        let c = checker("orders", vec![every_minute(1, 10, 300)]);
        let slot = purge_slot(&c);
        assert_eq!(slot, purge_slot(&c.clone()));
        assert!(slot < 60);
        let purges = purge_minutes(&c, HOUR_START, 3 * 60);
        assert_eq!(
            purges,
            (0..3)
                .map(|h| HOUR_START + h * 3600 + i64::from(slot) * 60)
                .collect::<Vec<_>>()
        );
        assert!((0..180).all(|i| PurgeTiming::EveryCycle.is_due(&c, HOUR_START + i * 60)));
    }

    #[test]
    fn slots_spread_across_checkers() {
        let mut per_slot = [0_u32; 60];
        for i in 0..6000 {
            let c = checker(&format!("c{i:04}"), vec![every_minute(1, 10, 180)]);
            per_slot[purge_slot(&c) as usize] += 1;
        }
        // 100 expected per minute of the hour; no minute is empty or crowded.
        assert!(
            per_slot.iter().all(|&n| (50..=150).contains(&n)),
            "{per_slot:?}"
        );
    }

    #[test]
    fn a_sparse_schedule_gets_a_slot_it_runs_at() {
        let mut minutes = FieldSet::default();
        minutes.insert(0);
        minutes.insert(30);
        for i in 0..50 {
            let c = checker(
                &format!("half-hourly{i}"),
                vec![requirement(minutes, 1, 2, 60)],
            );
            assert!([0, 30].contains(&purge_slot(&c)));
        }
        let mut zoned = checker("x", vec![requirement(FieldSet::range(7, 7), 1, 2, 60)]);
        zoned.timezone = Some(chrono_tz::Asia::Kolkata);
        assert_eq!(purge_slot(&zoned), 7);
        // 07 past the hour in Kolkata (UTC+05:30) is 37 past the hour in UTC.
        assert_eq!(
            purge_minutes(&zoned, HOUR_START, 60),
            vec![HOUR_START + 37 * 60]
        );
    }
}
