//! [`Purger`]: retention of stored first-seen rows and check records.

use crate::checker_file::Checker;
use crate::retention::RetentionPurger;
use std::sync::Arc;

/// Decides how long a checker's stored first-seen rows are kept.
///
/// Called once per cycle for each checker that has minutes to check, once its first batch
/// of rows is fetched (on a checker's first cycle: once the whole fetch is); the purge itself runs after its checks are recorded and delivered. Returning
/// `Some(t)` deletes the checker's rows with `timestamp < t`; `None` deletes nothing this
/// cycle. Fetched rows older than the cutoff and every window of the cycle are not stored.
///
/// ```
/// use dwmon_core::{Checker, DefaultPurger, Purger};
///
/// /// Keeps a week of rows, but never less than the safe minimum.
/// struct KeepAWeek;
///
/// impl Purger for KeepAWeek {
///     fn delete_older_than(&self, checker: &Checker, now: i64) -> Option<i64> {
///         // Purge when the default purger would: once an hour, at the checker's own minute.
///         DefaultPurger.delete_older_than(checker, now)?;
///         self.retention_cutoff(checker, now)
///     }
///
///     fn retention_cutoff(&self, checker: &Checker, now: i64) -> Option<i64> {
///         Some((now - 7 * 86_400).min(DefaultPurger::cutoff(checker, now)))
///     }
/// }
/// # let c = dwmon_core::testutil::checker("c", vec![dwmon_core::testutil::every_minute(0, 1, 60)]);
/// # let slot = i64::from(DefaultPurger::slot(&c));
/// # assert_eq!(KeepAWeek.delete_older_than(&c, 1_704_067_200 + slot * 60), Some(1_704_067_200 + slot * 60 - 7 * 86_400));
/// # assert_eq!(KeepAWeek.delete_older_than(&c, 1_704_067_200 + (slot + 1) % 60 * 60), None);
/// # let _: &dyn Purger = &KeepAWeek;
/// ```
pub trait Purger: Send + Sync {
    /// The epoch before which `checker`'s rows may be deleted, or `None` to keep everything.
    fn delete_older_than(&self, checker: &Checker, now: i64) -> Option<i64>;

    /// The epoch before which `checker`'s rows are not worth storing at `now`, whether or not
    /// this cycle purges: a purger that purges only now and then (like [`DefaultPurger`])
    /// returns its retention cutoff here on every call, and the engine then drops such
    /// fetched rows (outside this cycle's windows) instead of storing them for a later purge.
    /// A checker's first cycle ignores it and keeps the whole fetched history for the history
    /// views. The default, `None`, makes the engine rely on this cycle's
    /// [`Purger::delete_older_than`] answer alone (and keeps it to one call per cycle).
    fn retention_cutoff(&self, _checker: &Checker, _now: i64) -> Option<i64> {
        None
    }

    /// The minute before which `checker`'s check records may be deleted at this cycle, or
    /// `None` to delete none now. Asked after the cycle's checks are recorded and delivered;
    /// the store always keeps the newest record of each requirement (what `status` shows and
    /// where the next cycle continues), and pending deliveries are not affected. The default
    /// keeps every record; [`DefaultPurger`] keeps 35 days
    /// ([`crate::retention::DEFAULT_CHECK_LOG_SECONDS`]).
    fn check_log_cutoff(&self, _checker: &Checker, _now: i64) -> Option<i64> {
        None
    }
}

impl<T: Purger + ?Sized> Purger for &T {
    fn delete_older_than(&self, checker: &Checker, now: i64) -> Option<i64> {
        (**self).delete_older_than(checker, now)
    }

    fn retention_cutoff(&self, checker: &Checker, now: i64) -> Option<i64> {
        (**self).retention_cutoff(checker, now)
    }

    fn check_log_cutoff(&self, checker: &Checker, now: i64) -> Option<i64> {
        (**self).check_log_cutoff(checker, now)
    }
}

impl<T: Purger + ?Sized> Purger for Box<T> {
    fn delete_older_than(&self, checker: &Checker, now: i64) -> Option<i64> {
        (**self).delete_older_than(checker, now)
    }

    fn retention_cutoff(&self, checker: &Checker, now: i64) -> Option<i64> {
        (**self).retention_cutoff(checker, now)
    }

    fn check_log_cutoff(&self, checker: &Checker, now: i64) -> Option<i64> {
        (**self).check_log_cutoff(checker, now)
    }
}

impl<T: Purger + ?Sized> Purger for Arc<T> {
    fn delete_older_than(&self, checker: &Checker, now: i64) -> Option<i64> {
        (**self).delete_older_than(checker, now)
    }

    fn retention_cutoff(&self, checker: &Checker, now: i64) -> Option<i64> {
        (**self).retention_cutoff(checker, now)
    }

    fn check_log_cutoff(&self, checker: &Checker, now: i64) -> Option<i64> {
        (**self).check_log_cutoff(checker, now)
    }
}

/// The window-safe default: never deletes a row that a check inside any requirement's horizon
/// could still count. Keeps `max_r(D_r + H_r * 60 + L_r)` seconds before the current minute
/// (`D_r` = the requirement's `DELAYSECONDS` in whole minutes, whose windows lag behind the
/// clock by that much), plus one safety day ([`DefaultPurger::cutoff`]).
///
/// # Purges are spread out
///
/// Deleting every checker's expired rows every cycle would make a cycle after an outage
/// delete everything that expired during the outage for all checkers at once (millions of
/// rows). Instead each checker purges about once an hour, at its own *slot* minute
/// ([`DefaultPurger::slot`]): [`Purger::delete_older_than`] returns the cutoff only when the
/// minute of the hour of `now` (in the checker's `__TIMEZONE__`, else UTC) equals the slot,
/// and `None` otherwise. The slot is picked deterministically from a stable hash (FNV-1a) of
/// the checker name among the minutes of the hour the checker's schedules can match, so
///
/// - the same checker always gets the same slot, in every process and on every machine;
/// - checkers that run every minute are spread evenly over the hour;
/// - a checker whose schedules match only some minutes of the hour (e.g. hourly at `:00`)
///   gets one of those, so it is still purged whenever it runs at that minute. Its purges
///   follow its schedule: a checker due once a day purges once a day.
///
/// Limitations: the engine asks the purger only on cycles where the checker has something to
/// check, so a checker whose fetch keeps failing at its slot purges less often (its rows are
/// then kept a little longer; nothing countable is ever deleted). For a checker without
/// `__TIMEZONE__` the purger reads the minute of the hour in UTC; under a runner zone whose
/// offset is not a whole number of hours (e.g. Asia/Kolkata) a checker whose schedules match
/// only some minutes of the hour may never hit its slot: give such checkers a
/// `__TIMEZONE__` or use a purger that purges every cycle.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultPurger;

impl DefaultPurger {
    /// The safety margin added to the longest reachable window.
    pub const SAFETY_SECONDS: i64 = 86_400;

    /// Seconds before the current minute that must be kept for `checker`.
    pub fn keep_seconds(checker: &Checker) -> i64 {
        checker
            .requirements
            .iter()
            .map(|r| {
                (r.delay_minutes() + r.horizon_minutes()).saturating_mul(60)
                    + r.lookback_seconds as i64
            })
            .max()
            .unwrap_or(0)
            .saturating_add(Self::SAFETY_SECONDS)
    }

    /// The retention cutoff at `now`: rows older than this may be deleted.
    pub fn cutoff(checker: &Checker, now: i64) -> i64 {
        crate::minute_floor(now).saturating_sub(Self::keep_seconds(checker))
    }

    /// The minute of the hour (0-59, in the checker's zone, else UTC) at which `checker` is
    /// purged: FNV-1a of its name picks one of the minutes its schedules can match (any
    /// minute if they match none).
    pub fn slot(checker: &Checker) -> u32 {
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

    /// Whether `checker` is purged on the cycle at `now` (its slot minute).
    pub fn is_purge_minute(checker: &Checker, now: i64) -> bool {
        let zone = checker.zone(chrono_tz::UTC);
        let minute = chrono::DateTime::from_timestamp(crate::minute_floor(now), 0)
            .map(|t| chrono::Timelike::minute(&t.with_timezone(&zone)));
        minute == Some(Self::slot(checker))
    }
}

/// 64-bit FNV-1a: a tiny hash that is the same in every process (std's hasher is seeded
/// randomly per process, which would move the slots on every restart).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// [`RetentionPurger`] without a runner-wide default: the window-safe minimum for rows unless
/// the checker's `__EXTRA__` `"retention"` keeps more, 35 days of check records.
impl Purger for DefaultPurger {
    fn delete_older_than(&self, checker: &Checker, now: i64) -> Option<i64> {
        RetentionPurger::default().delete_older_than(checker, now)
    }

    fn retention_cutoff(&self, checker: &Checker, now: i64) -> Option<i64> {
        RetentionPurger::default().retention_cutoff(checker, now)
    }

    fn check_log_cutoff(&self, checker: &Checker, now: i64) -> Option<i64> {
        RetentionPurger::default().check_log_cutoff(checker, now)
    }
}

/// A purger that never deletes anything.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeepEverything;

impl Purger for KeepEverything {
    fn delete_older_than(&self, _checker: &Checker, _now: i64) -> Option<i64> {
        None
    }
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
            .filter(|&m| DefaultPurger.delete_older_than(c, m + 7).is_some())
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
        let slot = DefaultPurger::slot(&c);
        assert_eq!(slot, DefaultPurger::slot(&c.clone()));
        assert!(slot < 60);
        let purges = purge_minutes(&c, HOUR_START, 3 * 60);
        assert_eq!(
            purges,
            (0..3)
                .map(|h| HOUR_START + h * 3600 + i64::from(slot) * 60)
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn slots_spread_across_checkers() {
        let mut per_slot = [0_u32; 60];
        for i in 0..6000 {
            let c = checker(&format!("c{i:04}"), vec![every_minute(1, 10, 180)]);
            per_slot[DefaultPurger::slot(&c) as usize] += 1;
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
            assert!([0, 30].contains(&DefaultPurger::slot(&c)));
        }
        let mut zoned = checker("x", vec![requirement(FieldSet::range(7, 7), 1, 2, 60)]);
        zoned.timezone = Some(chrono_tz::Asia::Kolkata);
        assert_eq!(DefaultPurger::slot(&zoned), 7);
        // 07 past the hour in Kolkata (UTC+05:30) is 37 past the hour in UTC.
        assert_eq!(
            purge_minutes(&zoned, HOUR_START, 60),
            vec![HOUR_START + 37 * 60]
        );
    }

    #[test]
    fn never_deletes_a_countable_row() {
        let cases = [1_u64, 59, 60, 180, 3600, 86_400, 7 * 86_400]
            .into_iter()
            .flat_map(|lookback| [(lookback, 0), (lookback, 300), (lookback, 7 * 86_400)]);
        for (lookback, delay) in cases {
            let c = checker(
                "c",
                vec![
                    every_minute(0, 1, 60),
                    every_minute(0, 1, lookback).with_delay_seconds(delay),
                ],
            );
            for now in [HOUR_START, HOUR_START + 59, HOUR_START + 3 * 3600 + 1234] {
                let minute = crate::minute_floor(now);
                let earliest_window = c
                    .requirements
                    .iter()
                    .map(|r| {
                        r.judged_up_to(minute)
                            - (r.horizon_minutes() - 1) * 60
                            - r.lookback_seconds as i64
                    })
                    .min()
                    .unwrap_or(minute);
                let cutoff = DefaultPurger.retention_cutoff(&c, now);
                assert_eq!(cutoff, Some(DefaultPurger::cutoff(&c, now)));
                assert_eq!(
                    earliest_window - DefaultPurger::cutoff(&c, now),
                    DefaultPurger::SAFETY_SECONDS + 60
                );
                if let Some(purge) = DefaultPurger.delete_older_than(&c, now) {
                    assert_eq!(Some(purge), cutoff);
                }
            }
        }
    }

    #[test]
    fn wrappers_forward_the_retention_cutoff() {
        let c = checker("c", vec![every_minute(0, 1, 60)]);
        let now = HOUR_START + i64::from(DefaultPurger::slot(&c) + 1) * 60;
        let boxed: Box<dyn Purger> = Box::new(DefaultPurger);
        let shared: Arc<dyn Purger> = Arc::new(DefaultPurger);
        assert_eq!(boxed.delete_older_than(&c, now), None);
        assert_eq!(
            boxed.retention_cutoff(&c, now),
            Some(DefaultPurger::cutoff(&c, now))
        );
        assert_eq!(
            shared.retention_cutoff(&c, now),
            Some(DefaultPurger::cutoff(&c, now))
        );
        let borrowed: &DefaultPurger = &DefaultPurger;
        fn through<P: Purger>(purger: P, c: &Checker, now: i64) -> Option<i64> {
            purger.retention_cutoff(c, now)
        }
        assert_eq!(
            through(borrowed, &c, now),
            Some(DefaultPurger::cutoff(&c, now))
        );
        assert_eq!(KeepEverything.retention_cutoff(&c, now), None);
    }
}
