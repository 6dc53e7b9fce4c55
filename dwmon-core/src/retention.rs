//! Retention the user controls: how long a checker's stored first-seen rows and its check
//! records are kept, as a runner-wide default ([`RetentionPurger`], `--keep-rows` /
//! `--keep-checks` on the command line) and per checker in `__EXTRA__`:
//!
//! ```text
//! __EXTRA__
//! {"retention": {"rows": "35d", "checks": "90d"}}
//! ```
//!
//! Durations are a positive number with a unit `s`, `m`, `h`, `d` or `w` (`90m`, `35d`,
//! `2w`), bare seconds (`3600`), or `forever`. Rows are never deleted while a check could still
//! count them (the window-safe minimum of [`DefaultPurger::cutoff`] always wins), so `rows`
//! only ever keeps more; by default rows are kept for that minimum and check records for
//! [`DEFAULT_CHECK_LOG_SECONDS`] (35 days). The newest check record of every requirement is
//! never deleted: it is what `status` shows and where the next cycle continues.

use crate::checker_file::Checker;
use crate::purger::{Cutoffs, DefaultPurger, Purger};

/// How long check records are kept unless configured: 35 days, so a month of history (and the
/// month before's last days) stays for `status`, backtests and audits.
pub const DEFAULT_CHECK_LOG_SECONDS: i64 = 35 * 86_400;

/// The longest finite duration accepted: 100 years.
pub const MAX_SECONDS: i64 = 100 * 366 * 86_400;

/// How long something is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// This many seconds before the current minute.
    For(i64),
    /// Never deleted.
    Forever,
}

impl std::fmt::Display for Keep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Keep::Forever => f.write_str("forever"),
            Keep::For(seconds) => {
                for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60)] {
                    if seconds % size == 0 {
                        return write!(f, "{}{unit}", seconds / size);
                    }
                }
                write!(f, "{seconds}s")
            }
        }
    }
}

/// Parses a duration: `90s`, `15m`, `12h`, `35d`, `2w`, bare seconds, or `forever`.
///
/// # Errors
/// A message saying what is accepted.
///
/// ```
/// use dwmon_core::retention::{parse_keep, Keep};
/// assert_eq!(parse_keep("35d"), Ok(Keep::For(35 * 86_400)));
/// assert_eq!(parse_keep("forever"), Ok(Keep::Forever));
/// assert!(parse_keep("0d").is_err());
/// ```
pub fn parse_keep(text: &str) -> Result<Keep, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("forever") {
        return Ok(Keep::Forever);
    }
    let expected = "expected a positive duration such as 90m, 12h, 35d or 2w (or seconds, \
                    or forever)";
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let size = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(format!("{text:?}: unknown unit; {expected}")),
    };
    let seconds = number
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(size))
        .filter(|&s| s > 0)
        .ok_or_else(|| format!("{text:?}: {expected}"))?;
    if seconds > MAX_SECONDS {
        return Err(format!(
            "{text:?} is longer than 100 years; use forever to keep everything"
        ));
    }
    Ok(Keep::For(seconds))
}

/// What to keep; `None` fields fall back to the runner's default, then to the built-in one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention {
    /// Stored first-seen rows (never less than the window-safe minimum).
    pub rows: Option<Keep>,
    /// Check records (the newest per requirement is always kept).
    pub checks: Option<Keep>,
}

impl Retention {
    /// The `"retention"` object of a checker's `__EXTRA__`, if any.
    ///
    /// # Errors
    /// A message naming the bad key or value.
    pub fn from_extra(extra: &serde_json::Value) -> Result<Retention, String> {
        let Some(value) = extra.get("retention") else {
            return Ok(Retention::default());
        };
        let Some(object) = value.as_object() else {
            return Err(format!(
                "\"retention\" must be an object like {{\"rows\": \"35d\", \"checks\": \"90d\"}}, \
                 not {value}"
            ));
        };
        let mut retention = Retention::default();
        for (key, value) in object {
            let keep = match value {
                serde_json::Value::String(text) => parse_keep(text),
                serde_json::Value::Number(n) => n
                    .as_i64()
                    .ok_or_else(|| format!("{n} is not whole seconds"))
                    .and_then(|s| parse_keep(&s.to_string())),
                other => Err(format!("{other} is not a duration")),
            }
            .map_err(|e| format!("\"retention\".{key:?}: {e}"))?;
            match key.as_str() {
                "rows" => retention.rows = Some(keep),
                "checks" => retention.checks = Some(keep),
                _ => {
                    return Err(format!(
                        "\"retention\" has an unknown key {key:?}; the keys are \"rows\" and \
                         \"checks\""
                    ))
                }
            }
        }
        Ok(retention)
    }

    /// `self`, with unset fields taken from `fallback`.
    pub fn or(self, fallback: Retention) -> Retention {
        Retention {
            rows: self.rows.or(fallback.rows),
            checks: self.checks.or(fallback.checks),
        }
    }
}

/// The [`Purger`] of user-controlled retention: a runner-wide default [`Retention`], overridden
/// per checker by `__EXTRA__` `"retention"`. It says how much is kept; the engine purges at
/// each checker's spread-out slot minute (about once an hour, [`crate::PurgeTiming`]).
/// [`DefaultPurger`] is this purger with no runner-wide default.
///
/// ```
/// use dwmon_core::retention::{Keep, Retention, RetentionPurger};
/// use dwmon_core::Purger;
///
/// let purger = RetentionPurger::new(Retention {
///     rows: Some(Keep::For(35 * 86_400)),
///     checks: Some(Keep::Forever),
/// });
/// # let c = dwmon_core::testutil::checker("c", vec![dwmon_core::testutil::every_minute(0, 1, 60)]);
/// # let now = 1_704_067_200;
/// # assert_eq!(purger.cutoffs(&c, now).rows, Some(now - 35 * 86_400));
/// # assert_eq!(purger.cutoffs(&c, now).checks, None);
/// let _: &dyn Purger = &purger;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct RetentionPurger {
    default: Retention,
}

impl RetentionPurger {
    /// A purger keeping `default` for checkers that say nothing in `__EXTRA__`.
    pub fn new(default: Retention) -> Self {
        RetentionPurger { default }
    }

    /// What is kept for `checker`: its `__EXTRA__` retention (a malformed one is ignored here;
    /// checker files with one are refused at load), then the default.
    pub fn effective(&self, checker: &Checker) -> Retention {
        Retention::from_extra(&checker.extra)
            .unwrap_or_default()
            .or(self.default)
    }

    /// The rows cutoff at `now`, or `None` to keep every row.
    pub fn rows_cutoff(&self, checker: &Checker, now: i64) -> Option<i64> {
        let safe = DefaultPurger::cutoff(checker, now);
        match self.effective(checker).rows {
            None => Some(safe),
            Some(Keep::Forever) => None,
            Some(Keep::For(seconds)) => {
                Some(safe.min(crate::minute_floor(now).saturating_sub(seconds)))
            }
        }
    }

    /// The check-log cutoff at `now`, or `None` to keep every record.
    pub fn checks_cutoff(&self, checker: &Checker, now: i64) -> Option<i64> {
        match self
            .effective(checker)
            .checks
            .unwrap_or(Keep::For(DEFAULT_CHECK_LOG_SECONDS))
        {
            Keep::Forever => None,
            Keep::For(seconds) => Some(crate::minute_floor(now).saturating_sub(seconds)),
        }
    }
}

impl Purger for RetentionPurger {
    fn cutoffs(&self, checker: &Checker, now: i64) -> Cutoffs {
        Cutoffs {
            rows: self.rows_cutoff(checker, now),
            checks: self.checks_cutoff(checker, now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{checker, every_minute};

    const HOUR_START: i64 = 1_704_067_200;

    fn with_extra(extra: serde_json::Value) -> Checker {
        let mut c = checker("c", vec![every_minute(0, 1, 60)]);
        c.extra = extra;
        c
    }

    fn slot_now(c: &Checker) -> i64 {
        HOUR_START + i64::from(crate::engine::purge_slot(c)) * 60
    }

    #[test]
    fn durations_parse_with_units_and_refuse_nonsense() {
        assert_eq!(parse_keep("90s"), Ok(Keep::For(90)));
        assert_eq!(parse_keep("15m"), Ok(Keep::For(900)));
        assert_eq!(parse_keep(" 12h "), Ok(Keep::For(43_200)));
        assert_eq!(parse_keep("2w"), Ok(Keep::For(1_209_600)));
        assert_eq!(parse_keep("3600"), Ok(Keep::For(3600)));
        assert_eq!(parse_keep("FOREVER"), Ok(Keep::Forever));
        for bad in [
            "",
            "0",
            "-5d",
            "5 d",
            "5y",
            "d",
            "1.5d",
            "999999999999999999w",
        ] {
            assert!(parse_keep(bad).is_err(), "{bad:?}");
        }
        assert!(parse_keep("200w").is_ok());
        assert!(parse_keep("6000w").unwrap_err().contains("100 years"));
        assert_eq!(Keep::For(35 * 86_400).to_string(), "35d");
        assert_eq!(Keep::For(7200).to_string(), "2h");
        assert_eq!(Keep::For(90).to_string(), "90s");
    }

    #[test]
    fn extra_retention_is_read_and_checked() {
        let r = Retention::from_extra(
            &serde_json::json!({"retention": {"rows": "35d", "checks": 7200}}),
        );
        assert_eq!(
            r,
            Ok(Retention {
                rows: Some(Keep::For(35 * 86_400)),
                checks: Some(Keep::For(7200))
            })
        );
        assert_eq!(
            Retention::from_extra(&serde_json::json!({"team": "x"})),
            Ok(Retention::default())
        );
        let typo = Retention::from_extra(&serde_json::json!({"retention": {"row": "1d"}}));
        assert!(typo.unwrap_err().contains("unknown key \"row\""));
        let bad = Retention::from_extra(&serde_json::json!({"retention": {"rows": "soon"}}));
        assert!(bad.unwrap_err().contains("\"rows\""));
        assert!(Retention::from_extra(&serde_json::json!({"retention": "35d"})).is_err());
        assert!(
            Retention::from_extra(&serde_json::json!({"retention": {"checks": true}})).is_err()
        );
    }

    #[test]
    fn rows_are_never_cut_inside_the_window_safe_minimum() {
        let now = HOUR_START;
        let safe = DefaultPurger::cutoff(&with_extra(serde_json::json!({})), now);
        let purger = RetentionPurger::default();
        assert_eq!(
            purger.rows_cutoff(&with_extra(serde_json::json!({})), now),
            Some(safe)
        );
        // Asking for less than the minimum keeps the minimum; more keeps more.
        let short = with_extra(serde_json::json!({"retention": {"rows": "1m"}}));
        assert_eq!(purger.rows_cutoff(&short, now), Some(safe));
        let long = with_extra(serde_json::json!({"retention": {"rows": "35d"}}));
        assert_eq!(purger.rows_cutoff(&long, now), Some(now - 35 * 86_400));
        let forever = with_extra(serde_json::json!({"retention": {"rows": "forever"}}));
        assert_eq!(purger.rows_cutoff(&forever, now), None);
    }

    #[test]
    fn the_checker_overrides_the_runner_default_field_by_field() {
        let purger = RetentionPurger::new(Retention {
            rows: Some(Keep::For(14 * 86_400)),
            checks: Some(Keep::For(86_400)),
        });
        let plain = with_extra(serde_json::json!({}));
        let now = slot_now(&plain);
        assert_eq!(
            purger.cutoffs(&plain, now),
            Cutoffs {
                rows: Some(now - 14 * 86_400),
                checks: Some(now - 86_400)
            }
        );
        let own = with_extra(serde_json::json!({"retention": {"checks": "forever"}}));
        let now = slot_now(&own);
        assert_eq!(
            purger.cutoffs(&own, now),
            Cutoffs {
                rows: Some(now - 14 * 86_400),
                checks: None
            }
        );
    }

    #[test]
    fn the_default_keeps_35_days_of_checks_and_the_window_safe_rows() {
        let c = with_extra(serde_json::json!({}));
        // The same answer at every minute: when to purge is the engine's decision.
        for now in [slot_now(&c), slot_now(&c) + 60] {
            assert_eq!(
                DefaultPurger.cutoffs(&c, now),
                Cutoffs {
                    rows: Some(DefaultPurger::cutoff(&c, now)),
                    checks: Some(crate::minute_floor(now) - DEFAULT_CHECK_LOG_SECONDS)
                }
            );
        }
    }
}
