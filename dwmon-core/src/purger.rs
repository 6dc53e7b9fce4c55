//! [`Purger`]: retention of stored first-seen rows.

use crate::checker_file::Checker;
use std::sync::Arc;

/// Decides how long a checker's stored first-seen rows are kept.
///
/// Called once per checked checker per cycle, after its checks are recorded. Returning
/// `Some(t)` deletes the checker's rows with `timestamp < t`; `None` deletes nothing.
///
/// ```
/// use dwmon_core::{Checker, DefaultPurger, Purger};
///
/// /// Keeps a week of rows, but never less than the safe minimum.
/// struct KeepAWeek;
///
/// impl Purger for KeepAWeek {
///     fn delete_older_than(&self, checker: &Checker, now: i64) -> Option<i64> {
///         let week = now - 7 * 86_400;
///         let safe = DefaultPurger.delete_older_than(checker, now)?;
///         Some(week.min(safe))
///     }
/// }
/// # let _: &dyn Purger = &KeepAWeek;
/// ```
pub trait Purger: Send + Sync {
    /// The epoch before which `checker`'s rows may be deleted, or `None` to keep everything.
    fn delete_older_than(&self, checker: &Checker, now: i64) -> Option<i64>;
}

impl<T: Purger + ?Sized> Purger for &T {
    fn delete_older_than(&self, checker: &Checker, now: i64) -> Option<i64> {
        (**self).delete_older_than(checker, now)
    }
}

impl<T: Purger + ?Sized> Purger for Box<T> {
    fn delete_older_than(&self, checker: &Checker, now: i64) -> Option<i64> {
        (**self).delete_older_than(checker, now)
    }
}

impl<T: Purger + ?Sized> Purger for Arc<T> {
    fn delete_older_than(&self, checker: &Checker, now: i64) -> Option<i64> {
        (**self).delete_older_than(checker, now)
    }
}

/// The SPEC-safe default: never deletes a row that a check inside any requirement's horizon
/// could still count. Keeps `max_r(H_r * 60 + L_r)` seconds before the current minute, plus
/// one safety day.
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
            .map(|r| r.horizon_minutes() * 60 + r.lookback_seconds as i64)
            .max()
            .unwrap_or(0)
            .saturating_add(Self::SAFETY_SECONDS)
    }
}

impl Purger for DefaultPurger {
    fn delete_older_than(&self, checker: &Checker, now: i64) -> Option<i64> {
        Some(crate::minute_floor(now).saturating_sub(Self::keep_seconds(checker)))
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
