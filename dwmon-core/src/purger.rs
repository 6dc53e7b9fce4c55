//! [`Purger`]: how much of a checker's history is kept.

use crate::checker_file::Checker;
use crate::retention::RetentionPurger;
use std::sync::Arc;

/// How much of one checker's history to keep at one cycle: the retention cutoff of its stored
/// rows and of its check records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cutoffs {
    /// Stored first-seen rows with `timestamp < rows` may be deleted; `None` keeps every row.
    pub rows: Option<i64>,
    /// Check records of minutes before `checks` may be deleted (the store always keeps the
    /// newest record of each requirement, and deliveries still owed are not affected);
    /// `None` keeps every record.
    pub checks: Option<i64>,
}

impl Cutoffs {
    /// Keeps every row and every check record.
    pub const KEEP_EVERYTHING: Cutoffs = Cutoffs {
        rows: None,
        checks: None,
    };
}

/// Decides how much of a checker's history is kept: its retention [`Cutoffs`] at `now`.
///
/// A purger says only how much to keep; the engine decides when purges run
/// ([`crate::engine::PurgeTiming`]: by default once an hour per checker, at a minute of its
/// own, [`crate::engine::purge_slot`]). The engine asks once per cycle for each checker that
/// has minutes to check (at its first fetched batch, or after the fetch), and
///
/// - drops fetched rows older than the rows cutoff and every window of the cycle instead of
///   storing them (a checker's first cycle stores its whole fetched history, for the history
///   views);
/// - at a purge, after the checks are recorded and delivered, deletes the rows before the
///   rows cutoff (not on a checker's first cycle) and the check records before the checks
///   cutoff.
///
/// A purger must be a pure function of its arguments (it may be asked at any cycle).
///
/// ```
/// use dwmon_core::{Checker, Cutoffs, DefaultPurger, Purger};
///
/// /// Keeps a week of rows, but never less than the safe minimum, and every check record.
/// struct KeepAWeek;
///
/// impl Purger for KeepAWeek {
///     fn cutoffs(&self, checker: &Checker, now: i64) -> Cutoffs {
///         Cutoffs {
///             rows: Some((now - 7 * 86_400).min(DefaultPurger::cutoff(checker, now))),
///             checks: None,
///         }
///     }
/// }
/// # let c = dwmon_core::testutil::checker("c", vec![dwmon_core::testutil::every_minute(0, 1, 60)]);
/// # let now = 1_704_067_200;
/// # assert_eq!(KeepAWeek.cutoffs(&c, now).rows, Some(now - 7 * 86_400));
/// # let _: &dyn Purger = &KeepAWeek;
/// ```
pub trait Purger: Send + Sync {
    /// The retention cutoffs of `checker` at `now`.
    fn cutoffs(&self, checker: &Checker, now: i64) -> Cutoffs;
}

impl<T: Purger + ?Sized> Purger for &T {
    fn cutoffs(&self, checker: &Checker, now: i64) -> Cutoffs {
        (**self).cutoffs(checker, now)
    }
}

impl<T: Purger + ?Sized> Purger for Box<T> {
    fn cutoffs(&self, checker: &Checker, now: i64) -> Cutoffs {
        (**self).cutoffs(checker, now)
    }
}

impl<T: Purger + ?Sized> Purger for Arc<T> {
    fn cutoffs(&self, checker: &Checker, now: i64) -> Cutoffs {
        (**self).cutoffs(checker, now)
    }
}

/// The window-safe default: never deletes a row that a check inside any requirement's horizon
/// could still count, nor a push checker's run it could still judge. Keeps
/// `max_r(D_r + H_r * 60 + L_r + MAXDURATION_r)` seconds before the current minute
/// (`D_r` = the requirement's `DELAYSECONDS` in whole minutes, whose windows lag behind the
/// clock by that much), plus one safety day ([`DefaultPurger::cutoff`]), unless the checker's
/// `__EXTRA__` `"retention"` keeps more; and 35 days of check records
/// ([`crate::retention::DEFAULT_CHECK_LOG_SECONDS`]). It is [`RetentionPurger`] without a
/// runner-wide default.
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
                // An open start is judged until MAXDURATION + L after it (crate::runs).
                let longest = i64::try_from(r.max_duration.unwrap_or(0)).unwrap_or(i64::MAX);
                (r.delay_minutes() + r.horizon_minutes())
                    .saturating_mul(60)
                    .saturating_add(r.lookback_seconds as i64)
                    .saturating_add(longest)
            })
            .max()
            .unwrap_or(0)
            .saturating_add(Self::SAFETY_SECONDS)
    }

    /// The window-safe rows cutoff at `now`: rows older than this may be deleted.
    pub fn cutoff(checker: &Checker, now: i64) -> i64 {
        crate::minute_floor(now).saturating_sub(Self::keep_seconds(checker))
    }
}

impl Purger for DefaultPurger {
    fn cutoffs(&self, checker: &Checker, now: i64) -> Cutoffs {
        RetentionPurger::default().cutoffs(checker, now)
    }
}

/// A purger that never deletes anything.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeepEverything;

impl Purger for KeepEverything {
    fn cutoffs(&self, _checker: &Checker, _now: i64) -> Cutoffs {
        Cutoffs::KEEP_EVERYTHING
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{checker, every_minute};

    /// 2024-01-01 00:00 UTC.
    const HOUR_START: i64 = 1_704_067_200;

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
                let cutoff = DefaultPurger.cutoffs(&c, now).rows;
                assert_eq!(cutoff, Some(DefaultPurger::cutoff(&c, now)));
                assert_eq!(
                    earliest_window - DefaultPurger::cutoff(&c, now),
                    DefaultPurger::SAFETY_SECONDS + 60
                );
            }
        }
    }

    #[test]
    fn wrappers_forward_the_cutoffs() {
        let c = checker("c", vec![every_minute(0, 1, 60)]);
        let now = HOUR_START + 7 * 60;
        let expected = DefaultPurger.cutoffs(&c, now);
        assert_eq!(expected.rows, Some(DefaultPurger::cutoff(&c, now)));
        let boxed: Box<dyn Purger> = Box::new(DefaultPurger);
        let shared: Arc<dyn Purger> = Arc::new(DefaultPurger);
        assert_eq!(boxed.cutoffs(&c, now), expected);
        assert_eq!(shared.cutoffs(&c, now), expected);
        fn through<P: Purger>(purger: P, c: &Checker, now: i64) -> Cutoffs {
            purger.cutoffs(c, now)
        }
        let borrowed: &DefaultPurger = &DefaultPurger;
        assert_eq!(through(borrowed, &c, now), expected);
        assert_eq!(KeepEverything.cutoffs(&c, now), Cutoffs::KEEP_EVERYTHING);
    }
}
