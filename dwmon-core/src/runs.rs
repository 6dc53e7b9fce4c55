//! Run durations (docs/FORMAT.md, "Run durations"): a push checker's *runs* — a start
//! paired with the finish (success or failure) that ends it — judged against a requirement's
//! `MINDURATION` / `MAXDURATION`.
//!
//! Pure: [`judge_runs`] takes the runs a [`PingLog`](crate::ping_log::PingLog) stored
//! ([`PingLog::runs`](crate::ping_log::PingLog::runs)) and the checked minute; it reads no
//! clock and no store.
//!
//! For the check of minute `m` with window length `L` (the half-open window
//! `m - L <= t < m`, as for counts):
//!
//! - a **finished run** is judged when its finish time is in the window: it is BAD when it
//!   took fewer than `MINDURATION` seconds ([`RunProblem::TooFast`]) or more than
//!   `MAXDURATION` ([`RunProblem::TooLong`]); exactly `MINDURATION` or `MAXDURATION` is fine;
//! - a **start without a finish before `m`** is overdue once more than `MAXDURATION` seconds
//!   have passed; it is judged (BAD, [`RunProblem::NeverFinished`]) when the moment it became
//!   overdue, `start + MAXDURATION`, is in the window: `m - L <= start + MAXDURATION < m`.
//!   So an abandoned run is BAD for `L` seconds of checks, as a finished run that ran too
//!   long is; a finish arriving later makes it a finished run, judged by its finish time.

use serde::{Deserialize, Serialize};

/// One run as a ping log stores it: a start, and the finish paired with it, if any.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Run {
    /// When the start was received (epoch seconds).
    pub start: i64,
    /// The `rid=` of the start (and of its finish).
    pub rid: Option<String>,
    /// When the finish that ended it was received; `None` while it is open.
    pub finish: Option<i64>,
}

impl Run {
    /// A run started at `start` without a `rid`, finished at `finish`.
    pub fn new(start: i64, finish: Option<i64>) -> Self {
        Run {
            start,
            rid: None,
            finish,
        }
    }

    /// Seconds from start to finish (`None` while open).
    pub fn duration(&self) -> Option<i64> {
        self.finish.map(|f| f.saturating_sub(self.start))
    }
}

/// Why a run made a check BAD. Serialized as `too_fast`, `too_long`, `never_finished`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunProblem {
    /// It finished in fewer than `MINDURATION` seconds.
    TooFast,
    /// It finished after more than `MAXDURATION` seconds.
    TooLong,
    /// It started and has had no finish for more than `MAXDURATION` seconds.
    NeverFinished,
}

impl RunProblem {
    /// For people: `finished too fast`, `ran too long`, `started, never finished`.
    pub fn describe(self) -> &'static str {
        match self {
            RunProblem::TooFast => "finished too fast",
            RunProblem::TooLong => "ran too long",
            RunProblem::NeverFinished => "started, never finished",
        }
    }
}

/// One run that broke a bound.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BadRun {
    /// What was wrong.
    pub problem: RunProblem,
    /// When it started (epoch seconds).
    pub start: i64,
    /// When it finished (`None`: [`RunProblem::NeverFinished`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish: Option<i64>,
    /// Its `rid=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rid: Option<String>,
    /// Seconds from start to finish; for a run that never finished, from start to the
    /// checked minute.
    pub duration_seconds: i64,
}

/// Why the run-duration bounds made a check BAD: part of its
/// [`CheckRecord`](crate::CheckRecord) (`runs`), and of the alert about it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RunsReport {
    /// How many runs judged in the window broke a bound.
    pub bad_runs: u64,
    /// The first of them (the earliest finish, or the earliest moment a start became
    /// overdue).
    pub run: BadRun,
    /// For people, e.g. `run rid=nightly-7 started at 2026-12-04T01:00:00Z finished after
    /// 3 s, under MINDURATION10 (finished too fast)`.
    pub message: String,
}

/// The runs the check of `minute` judges with the bounds `min_duration` / `max_duration`
/// over `lookback_seconds` (see the module docs); `None` when none broke a bound (or there
/// are no bounds). `runs` may hold more runs than the window's, in any order.
///
/// ```
/// use dwmon_core::runs::{judge_runs, Run, RunProblem};
/// let runs = [Run::new(1_000, Some(1_003)), Run::new(1_100, Some(1_130))];
/// // MINDURATION10 over the last 600 s, checked at 1_200: the first run took 3 s.
/// let report = judge_runs(&runs, 1_200, 600, Some(10), None).expect("too fast");
/// assert_eq!((report.bad_runs, report.run.problem), (1, RunProblem::TooFast));
/// assert_eq!(report.run.duration_seconds, 3);
/// ```
pub fn judge_runs(
    runs: &[Run],
    minute: i64,
    lookback_seconds: u64,
    min_duration: Option<u64>,
    max_duration: Option<u64>,
) -> Option<RunsReport> {
    if min_duration.is_none() && max_duration.is_none() {
        return None;
    }
    let from = minute.saturating_sub(i64::try_from(lookback_seconds).unwrap_or(i64::MAX));
    let in_window = |t: i64| from <= t && t < minute;
    let shortest = min_duration.map(|s| i64::try_from(s).unwrap_or(i64::MAX));
    let longest = max_duration.map(|s| i64::try_from(s).unwrap_or(i64::MAX));
    // (the moment it was judged by, the bad run)
    let mut bad: Vec<(i64, BadRun)> = Vec::new();
    for run in runs {
        let finished = run.finish.filter(|&f| f < minute);
        let (at, problem, duration) = match finished {
            Some(finish) => {
                if !in_window(finish) {
                    continue;
                }
                let duration = finish.saturating_sub(run.start);
                let problem = if shortest.is_some_and(|s| duration < s) {
                    RunProblem::TooFast
                } else if longest.is_some_and(|l| duration > l) {
                    RunProblem::TooLong
                } else {
                    continue;
                };
                (finish, problem, duration)
            }
            None => {
                let Some(longest) = longest else {
                    continue;
                };
                let overdue = run.start.saturating_add(longest);
                if !in_window(overdue) {
                    continue;
                }
                (
                    overdue,
                    RunProblem::NeverFinished,
                    minute.saturating_sub(run.start),
                )
            }
        };
        bad.push((
            at,
            BadRun {
                problem,
                start: run.start,
                finish: finished,
                rid: run.rid.clone(),
                duration_seconds: duration,
            },
        ));
    }
    let bad_runs = u64::try_from(bad.len()).unwrap_or(u64::MAX);
    let (_, run) = bad.into_iter().min_by_key(|(at, run)| (*at, run.start))?;
    let message = describe(&run, bad_runs, min_duration, max_duration);
    Some(RunsReport {
        bad_runs,
        run,
        message,
    })
}

/// The [`RunsReport::message`] of `run`, the first of `bad_runs`.
fn describe(
    run: &BadRun,
    bad_runs: u64,
    min_duration: Option<u64>,
    max_duration: Option<u64>,
) -> String {
    let name = match &run.rid {
        Some(rid) => format!("run rid={}", crate::requirement::excerpt(rid)),
        None => "run".to_string(),
    };
    let started = rfc3339(run.start);
    let what = match run.problem {
        RunProblem::TooFast => format!(
            "finished after {} s, under MINDURATION{}",
            run.duration_seconds,
            min_duration.unwrap_or(0)
        ),
        RunProblem::TooLong => format!(
            "finished after {} s, over MAXDURATION{}",
            run.duration_seconds,
            max_duration.unwrap_or(0)
        ),
        RunProblem::NeverFinished => format!(
            "has not finished after {} s, over MAXDURATION{}",
            run.duration_seconds,
            max_duration.unwrap_or(0)
        ),
    };
    let others = match bad_runs {
        0 | 1 => String::new(),
        2 => "; 1 more run broke a bound".to_string(),
        n => format!("; {} more runs broke a bound", n - 1),
    };
    format!(
        "{name} started at {started} {what} ({}){others}",
        run.problem.describe()
    )
}

/// `t` as RFC 3339 UTC (`2026-12-04T01:00:00Z`), or the bare number when out of range.
fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).map_or_else(
        || t.to_string(),
        |d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: i64 = 1_800_000_000; // a minute
    const L: u64 = 600;

    fn run(start: i64, finish: Option<i64>) -> Run {
        Run::new(M + start, finish.map(|f| M + f))
    }

    /// `(runs as (start, finish) offsets from M, MINDURATION, MAXDURATION, expected
    /// (problem, start offset, duration) of the first bad run and how many)`.
    type Case = (
        &'static [(i64, Option<i64>)],
        Option<u64>,
        Option<u64>,
        Option<(RunProblem, i64, i64, u64)>,
    );

    #[test]
    fn runs_are_judged_in_the_half_open_window() {
        use RunProblem::*;
        let cases: &[Case] = &[
            // No bounds: nothing is judged.
            (&[(-100, Some(-99))], None, None, None),
            // Too fast, exactly MINDURATION, longer.
            (
                &[(-100, Some(-91))],
                Some(10),
                None,
                Some((TooFast, -100, 9, 1)),
            ),
            (&[(-100, Some(-90))], Some(10), None, None),
            (&[(-100, Some(-50))], Some(10), None, None),
            // Too slow, exactly MAXDURATION.
            (
                &[(-400, Some(-99))],
                None,
                Some(300),
                Some((TooLong, -400, 301, 1)),
            ),
            (&[(-400, Some(-100))], None, Some(300), None),
            // MINDURATION0 never finds a run too fast; MAXDURATION0 allows 0 s only.
            (&[(-5, Some(-5))], Some(0), Some(0), None),
            (
                &[(-5, Some(-4))],
                Some(0),
                Some(0),
                Some((TooLong, -5, 1, 1)),
            ),
            // The window is by finish time, half-open: a finish at m - L is in it, one at
            // m is not (it is the next minutes' business).
            (
                &[(-605, Some(-600))],
                Some(10),
                None,
                Some((TooFast, -605, 5, 1)),
            ),
            (&[(-606, Some(-601))], Some(10), None, None),
            (&[(-5, Some(0))], Some(10), None, None),
            // A run straddling the window's start: judged by its finish, with its whole
            // duration.
            (
                &[(-900, Some(-10))],
                None,
                Some(300),
                Some((TooLong, -900, 890, 1)),
            ),
            // A finish at m or later does not end the run for this check: still open.
            (
                &[(-301, Some(0))],
                None,
                Some(300),
                Some((NeverFinished, -301, 301, 1)),
            ),
            // Open starts: overdue once more than MAXDURATION passed.
            (&[(-300, None)], None, Some(300), None),
            (
                &[(-301, None)],
                None,
                Some(300),
                Some((NeverFinished, -301, 301, 1)),
            ),
            // ... and judged while the moment it became overdue is in the window.
            (
                &[(-900, None)],
                None,
                Some(300),
                Some((NeverFinished, -900, 900, 1)),
            ),
            (&[(-901, None)], None, Some(300), None),
            // Without MAXDURATION an open start is never judged.
            (&[(-5_000, None)], Some(10), None, None),
            // Several bad runs: the earliest is named, all are counted.
            (
                &[(-50, Some(-49)), (-500, Some(-498)), (-30, Some(-20))],
                Some(5),
                None,
                Some((TooFast, -500, 2, 2)),
            ),
            (
                &[(-200, Some(-199)), (-400, None), (-350, Some(-10))],
                Some(5),
                Some(300),
                Some((TooFast, -200, 1, 3)),
            ),
        ];
        for (runs, min, max, expected) in cases {
            let runs: Vec<Run> = runs.iter().map(|&(s, f)| run(s, f)).collect();
            let got = judge_runs(&runs, M, L, *min, *max).map(|r| {
                (
                    r.run.problem,
                    r.run.start - M,
                    r.run.duration_seconds,
                    r.bad_runs,
                )
            });
            assert_eq!(got, *expected, "{runs:?} MIN {min:?} MAX {max:?}");
        }
    }

    #[test]
    fn the_report_names_the_run_its_duration_and_the_bound() {
        let runs = [
            Run {
                rid: Some("nightly-7".into()),
                ..run(-100, Some(-97))
            },
            run(-60, Some(-59)),
        ];
        let report = judge_runs(&runs, M, L, Some(10), None).expect("bad");
        assert_eq!(
            report.message,
            "run rid=nightly-7 started at 2027-01-15T07:58:20Z finished after 3 s, under \
             MINDURATION10 (finished too fast); 1 more run broke a bound"
        );
        assert_eq!(report.run.finish, Some(M - 97));
        let open = judge_runs(&[run(-400, None)], M, L, None, Some(300)).expect("bad");
        assert_eq!(
            open.message,
            "run started at 2027-01-15T07:53:20Z has not finished after 400 s, over \
             MAXDURATION300 (started, never finished)"
        );
        let json = serde_json::to_value(&open).expect("serializes");
        assert_eq!(json["run"]["problem"], "never_finished");
        assert!(json["run"].get("finish").is_none());
    }

    #[test]
    fn extreme_values_never_overflow() {
        let runs = [
            Run::new(i64::MIN, Some(i64::MAX - 1)),
            Run::new(i64::MAX, None),
        ];
        let _ = judge_runs(&runs, i64::MAX, u64::MAX, Some(u64::MAX), Some(u64::MAX));
        let _ = judge_runs(&runs, i64::MIN, 0, Some(0), Some(0));
    }
}
