//! `dwmon suggest` and `dwmon backtest` (README "Insight"): read a checker's file and stored
//! history, count the windows of its due minutes with the cycle's counting
//! ([`windowed_counts`], i.e. the store's `count_windows`), and hand them to the pure
//! functions of [`crate::insight`].

use crate::args::local_rfc3339;
use crate::cli::{BacktestArgs, SuggestArgs};
use crate::commands::{load_checkers, open_store};
use crate::insight::{self, Replay, SeasonRow, Suggestion, Summary};
use crate::{App, Error, Result};
use chrono_tz::Tz;
use dwmon_alert::AlertPolicy;
use dwmon_core::insight::{
    windowed_counts, BoundsRule, MIN_DUE_MINUTES, MIN_HISTORY_SECONDS, SIGMA_MEANINGLESS_BELOW,
};
use dwmon_core::{minute_floor, Checker, Requirement, Status};
use serde::Serialize;
use std::collections::HashSet;
use std::path::Path;
use std::process::ExitCode;

/// `println!` that ignores a closed stdout (e.g. `| head`).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

const DAY: i64 = 86_400;

/// The longest range `backtest` replays (and `suggest --days` accepts): 10 years, about 5
/// million minutes per line.
const MAX_DAYS: i64 = 3660;

/// The smallest minute at or after `t`.
fn minute_ceil(t: i64) -> i64 {
    minute_floor(t.saturating_add(59))
}

/// The checker `name` from the checker directory, or a usage error saying why not.
fn find_checker(dir: &Path, name: &str) -> Result<Checker> {
    let report = load_checkers(dir)?;
    let file = format!("{name}{}", dwmon_core::checker_file::EXTENSION);
    if let Some(error) = report.errors.iter().find(|e| e.file == file) {
        return Err(Error::Usage(format!("checker {name} is invalid: {error}")));
    }
    let known: Vec<String> = report.checkers.iter().map(|c| c.name.clone()).collect();
    report
        .checkers
        .into_iter()
        .find(|c| c.name == name)
        .ok_or_else(|| {
            Error::Usage(format!(
                "no valid checker named {name:?} in {} (known: {})",
                dir.display(),
                known.join(", ")
            ))
        })
}

/// What the store knows about a checker's history.
struct Stored {
    /// The oldest stored row: where the complete row history begins.
    first_row: Option<i64>,
    /// The last checked minute: rows are complete up to it.
    last_checked: Option<i64>,
    /// The last checked minute of each line of the checker file, by index (a DELAYSECONDS
    /// line is judged later than the others).
    line_last: std::collections::HashMap<usize, i64>,
    /// `(requirement_index, minute)` of every check recorded BAD.
    bad: HashSet<(usize, i64)>,
    /// The windows `[m - L, m)` of the checks recorded BAD (any line), merged.
    bad_windows: Intervals,
    /// The checker's pause `[since, until)`, if it has one (the store keeps only the
    /// current pause, not past ones).
    pause: Intervals,
}

impl Stored {
    async fn read(
        app: &App,
        opened: &crate::commands::OpenStore,
        store_path: Option<&Path>,
        checker: &str,
    ) -> Result<Stored> {
        let store = opened.store.as_ref();
        let statuses = store.status().await?;
        let Some(status) = statuses.iter().find(|s| s.checker == checker) else {
            let known: Vec<&str> = statuses.iter().map(|s| s.checker.as_str()).collect();
            return Err(Error::Usage(format!(
                "the store has no checker named {checker:?} (known: {}); it needs a run of \
                 `dwmon once` or `dwmon run` first",
                known.join(", ")
            )));
        };
        let records = store.recent_checks(checker, usize::MAX).await?;
        let mut bad = HashSet::new();
        let mut windows = Vec::new();
        for record in records.iter().filter(|r| r.status == Status::Bad) {
            bad.insert((record.requirement_index, record.minute));
            let lookback = i64::try_from(record.lookback_seconds).unwrap_or(i64::MAX);
            windows.push((record.minute.saturating_sub(lookback), record.minute));
        }
        let mut pause = Vec::new();
        if let Some(alerts) = crate::alerts::alert_store_read_only(app, opened, store_path)? {
            if let Some(p) = alerts.pause(checker).await? {
                pause.push((p.since, p.until.unwrap_or(i64::MAX)));
            }
        }
        Ok(Stored {
            first_row: status.oldest_row,
            last_checked: status.last_minute,
            line_last: status
                .requirements
                .iter()
                .map(|r| (r.requirement_index, r.minute))
                .collect(),
            bad,
            bad_windows: Intervals::new(windows),
            pause: Intervals::new(pause),
        })
    }

    /// The first minute whose whole window `[m - lookback, m)` lies in the stored history.
    fn complete_from(&self, lookback: u64) -> Option<i64> {
        let lookback = i64::try_from(lookback).unwrap_or(i64::MAX);
        self.first_row
            .map(|first| minute_ceil(first.saturating_add(lookback)))
    }
}

/// Disjoint half-open intervals, ascending.
struct Intervals(Vec<(i64, i64)>);

impl Intervals {
    fn new(mut intervals: Vec<(i64, i64)>) -> Intervals {
        intervals.retain(|(a, b)| a < b);
        intervals.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(intervals.len());
        for (a, b) in intervals {
            match merged.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        Intervals(merged)
    }

    /// Whether `[start, end)` overlaps one of the intervals.
    fn overlaps(&self, start: i64, end: i64) -> bool {
        // The last interval starting before `end` reaches furthest of those that could.
        let i = self.0.partition_point(|&(a, _)| a < end);
        i > 0 && self.0[i - 1].1 > start
    }
}

/// How much history a command had, and what it left out.
#[derive(Debug, Clone, Serialize)]
struct History {
    /// The oldest stored row (epoch seconds).
    first_row: Option<i64>,
    /// The checker's last checked minute.
    last_checked: Option<i64>,
    /// First and last minute counted.
    from: i64,
    /// Last minute counted.
    to: i64,
    /// `(to - from + 60) / 86400`.
    days: f64,
    /// Minutes the schedule made due in `[from, to]`.
    due_minutes: usize,
    /// Due minutes learned from (suggest) or replayed (backtest).
    used_minutes: usize,
    /// Left out: minutes recorded BAD for the line.
    left_out_bad: usize,
    /// Left out: minutes whose window overlaps the window of a minute recorded BAD.
    left_out_near_bad: usize,
    /// Left out: minutes whose window overlaps the checker's pause.
    left_out_paused: usize,
}

impl History {
    fn new(stored: &Stored, from: i64, to: i64) -> History {
        History {
            first_row: stored.first_row,
            last_checked: stored.last_checked,
            from,
            to,
            days: (to - from + 60).max(0) as f64 / DAY as f64,
            due_minutes: 0,
            used_minutes: 0,
            left_out_bad: 0,
            left_out_near_bad: 0,
            left_out_paused: 0,
        }
    }

    fn seconds(&self) -> i64 {
        (self.to - self.from + 60).max(0)
    }

    /// One line for a person.
    fn describe(&self, zone: Tz, left_out: bool) -> String {
        let first = self
            .first_row
            .map_or("none".to_string(), |t| local_rfc3339(t, zone));
        let mut line = format!(
            "history: first stored row {first}; minutes {} to {} ({:.1} days), {} due",
            local_rfc3339(self.from, zone),
            local_rfc3339(self.to, zone),
            self.days,
            self.due_minutes
        );
        if left_out {
            line.push_str(&format!(
                ", {} used (left out: {} BAD, {} near a BAD window, {} paused)",
                self.used_minutes, self.left_out_bad, self.left_out_near_bad, self.left_out_paused
            ));
        }
        line
    }
}

/// The last minute of history: `--to`, else the last checked minute (rows are complete up
/// to it), else the current minute.
fn history_end(to: Option<i64>, stored: &Stored) -> i64 {
    to.map(minute_floor)
        .or(stored.last_checked)
        .unwrap_or_else(|| minute_floor(chrono::Utc::now().timestamp()))
}

/// The last minute of history for line `index` of the checker file: `--to`, else that line's
/// own last checked minute (earlier than the others' for a DELAYSECONDS line), else
/// [`history_end`].
fn line_end(to: Option<i64>, stored: &Stored, index: Option<usize>) -> i64 {
    let end = history_end(to, stored);
    match (to, index.and_then(|i| stored.line_last.get(&i))) {
        (None, Some(&last)) => last.min(end),
        _ => end,
    }
}

/// One requirement's answer in `suggest --json`.
#[derive(Serialize)]
struct SuggestJson<'a> {
    checker: &'a str,
    requirement_index: usize,
    requirement: String,
    zone: &'a str,
    history: History,
    /// Why nothing is proposed, when the history is too short.
    too_short: Option<String>,
    suggestion: Option<Suggestion>,
}

/// `dwmon suggest`.
pub(crate) async fn suggest(app: &App, args: &SuggestArgs) -> Result<ExitCode> {
    let dir = crate::config::checkers_dir(&args.checkers)?;
    let checker = find_checker(dir, &args.checker)?;
    let indices: Vec<usize> = match args.requirement {
        Some(n) if n < checker.requirements.len() => vec![n],
        Some(n) => {
            return Err(Error::Usage(format!(
                "--requirement {n}: checker {} has {} requirement line{} (0 to {})",
                checker.name,
                checker.requirements.len(),
                if checker.requirements.len() == 1 {
                    ""
                } else {
                    "s"
                },
                checker.requirements.len().saturating_sub(1)
            )))
        }
        None => (0..checker.requirements.len()).collect(),
    };
    let opened = open_store(app, args.store.as_deref(), true)?;
    let store = std::sync::Arc::clone(&opened.store);
    let stored = Stored::read(app, &opened, args.store.as_deref(), &checker.name).await?;
    let zone = checker.zone(args.zone.zone());
    let policy = AlertPolicy::new(args.repeat_seconds);
    let rule = BoundsRule::default();
    let mut exit = ExitCode::SUCCESS;
    for (n, &index) in indices.iter().enumerate() {
        let requirement = &checker.requirements[index];
        let to = line_end(args.to, &stored, Some(index));
        let wanted = to.saturating_sub(i64::from(args.days) * DAY) + 60;
        let from = stored
            .complete_from(requirement.lookback_seconds)
            .map_or(to + 60, |complete| wanted.max(complete));
        let mut history = History::new(&stored, from, to);
        let counts = if from <= to {
            windowed_counts(store.as_ref(), &checker.name, requirement, zone, from, to).await?
        } else {
            Vec::new()
        };
        let lookback = i64::try_from(requirement.lookback_seconds).unwrap_or(i64::MAX);
        history.due_minutes = counts.len();
        let mut used = Vec::with_capacity(counts.len());
        for &(minute, count) in &counts {
            let window = (minute.saturating_sub(lookback), minute);
            if stored.bad.contains(&(index, minute)) {
                history.left_out_bad += 1;
            } else if stored.pause.overlaps(window.0, window.1) {
                history.left_out_paused += 1;
            } else if stored.bad_windows.overlaps(window.0, window.1) {
                history.left_out_near_bad += 1;
            } else {
                used.push((minute, count));
            }
        }
        history.used_minutes = used.len();
        let too_short = too_short(&history, stored.first_row, zone);
        let suggestion = too_short.is_none().then(|| {
            insight::suggest(
                &checker.name,
                zone,
                requirement,
                &used,
                history.seconds(),
                &rule,
                policy,
            )
        });
        if too_short.is_some() {
            exit = ExitCode::from(1);
        }
        if args.json {
            let line = SuggestJson {
                checker: &checker.name,
                requirement_index: index,
                requirement: requirement.to_string(),
                zone: zone.name(),
                history,
                too_short,
                suggestion,
            };
            outln!("{}", serde_json::to_string(&line).unwrap_or_default());
            continue;
        }
        if n > 0 {
            outln!();
        }
        outln!("{}#{index}  {requirement}", checker.name);
        outln!("  {}", history.describe(zone, true));
        match (&too_short, &suggestion) {
            (Some(why), _) => outln!("  history too short, nothing proposed: {why}"),
            (None, Some(s)) => print_suggestion(s),
            (None, None) => {}
        }
    }
    Ok(exit)
}

/// Why the history is too short to propose bounds from, if it is.
fn too_short(history: &History, first_row: Option<i64>, zone: Tz) -> Option<String> {
    let keep = "keep rows longer with --keep-rows 35d on `run` (or {\"retention\": {\"rows\": \
                \"35d\"}} in the checker's __EXTRA__) and try again later";
    let Some(first_row) = first_row else {
        return Some("the store holds no rows of this checker".to_string());
    };
    if history.seconds() < MIN_HISTORY_SECONDS {
        return Some(format!(
            "{:.1} days of complete windows (the oldest stored row is from {}), at least {} \
             are needed; {keep}",
            history.days,
            local_rfc3339(first_row, zone),
            MIN_HISTORY_SECONDS / DAY
        ));
    }
    if history.used_minutes < MIN_DUE_MINUTES {
        return Some(format!(
            "{} usable due minutes, at least {MIN_DUE_MINUTES} are needed (a sparse schedule \
             needs more days: --days)",
            history.used_minutes
        ));
    }
    None
}

fn print_suggestion(s: &Suggestion) {
    outln!(
        "  seasonality: {} ({})",
        s.seasonality.describe(),
        s.seasonality_reason
    );
    outln!("  bounds: {}", s.rule);
    outln!(
        "  {:<13} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>8} {:>7}  {:>13}  {:>13}",
        "season",
        "n",
        "min",
        "low",
        "median",
        "high",
        "max",
        "mean",
        "sd",
        "proposed",
        "mean±3σ"
    );
    for row in &s.seasons {
        print_season(row);
    }
    let flat = s.seasons.iter().filter(|r| !r.sigma_meaningful).count();
    if flat > 0 {
        outln!(
            "  mean ± 3σ is meaningless for {flat} season{} (σ < {SIGMA_MEANINGLESS_BELOW:.2}: \
             the counts hardly vary, so the band is the mean itself); shown as `-`",
            if flat == 1 { "" } else { "s" }
        );
    }
    outln!("  backtest over the used minutes (BAD minutes are false alarms there):");
    for (name, p) in [
        ("proposed (quantiles per season)", &s.quantiles),
        ("mean ± 3σ per season", &s.sigma),
        ("one line (quantiles, all seasons)", &s.one_line),
        ("current line", &s.current),
    ] {
        outln!(
            "    {name:<34} {:>3} line{}  {}",
            p.lines.len(),
            if p.lines.len() == 1 { " " } else { "s" },
            summary_text(&p.backtest)
        );
    }
    outln!("  paste-ready lines (proposed):");
    for line in &s.quantiles.lines {
        outln!("{line}");
    }
}

fn print_season(row: &SeasonRow) {
    let st = &row.stats;
    let sigma = if row.sigma_meaningful {
        format!("{}..{}", row.sigma_bounds.0, row.sigma_bounds.1)
    } else {
        "-".to_string()
    };
    outln!(
        "  {:<13} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>8.1} {:>7.2}  {:>13}  {:>13}",
        row.label,
        st.samples,
        st.min,
        st.low,
        st.median,
        st.high,
        st.max,
        st.mean,
        st.sd,
        format!("{}..{}", row.bounds.0, row.bounds.1),
        sigma
    );
}

fn summary_text(s: &Summary) -> String {
    format!(
        "BAD minutes {} of {} ({:.2}%), episodes {} ({:.1} per 30 days), {:.1} notifications/week",
        s.bad_minutes,
        s.checks,
        s.bad_fraction * 100.0,
        s.episodes,
        s.episodes_per_30_days,
        s.notifications_per_week
    )
}

/// The time to first alert of a known incident.
#[derive(Debug, Clone, Serialize)]
struct Incident {
    start: i64,
    end: i64,
    /// Due checks with a minute in `[start, end]`, and how many were BAD.
    checks_inside: usize,
    /// BAD checks with a minute in `[start, end]`.
    bad_inside: usize,
    /// An episode that fired before the incident and was still open at its start.
    already_firing_since: Option<i64>,
    /// The first episode firing at or after `start`.
    first_alert: Option<i64>,
    /// `first_alert - start`, in minutes.
    minutes_to_first_alert: Option<f64>,
}

impl Incident {
    fn of(replay: &Replay, (start, end): (i64, i64)) -> Incident {
        let inside = replay
            .checks
            .iter()
            .filter(|c| (start..=end).contains(&c.minute));
        let (mut checks_inside, mut bad_inside) = (0, 0);
        for c in inside {
            checks_inside += 1;
            bad_inside += usize::from(c.status == Status::Bad);
        }
        let already_firing_since = replay
            .episodes
            .iter()
            .find(|e| e.firing_at < start && e.resolved_at.is_none_or(|r| r > start))
            .map(|e| e.firing_at);
        let first_alert = replay
            .episodes
            .iter()
            .map(|e| e.firing_at)
            .filter(|&t| t >= start)
            .min();
        Incident {
            start,
            end,
            checks_inside,
            bad_inside,
            already_firing_since,
            first_alert,
            minutes_to_first_alert: first_alert.map(|t| (t - start) as f64 / 60.0),
        }
    }
}

/// `dwmon backtest --json`.
#[derive(Serialize)]
struct BacktestJson<'a> {
    checker: &'a str,
    zone: &'a str,
    lines: Vec<String>,
    history: History,
    summary: Summary,
    episodes: &'a [insight::Episode],
    incident: Option<Incident>,
    checks: &'a [insight::ReplayCheck],
}

/// The lines `backtest` replays: `--requirement` texts or indices, else the checker's own;
/// each with its index in the checker file when it is one of its lines.
fn backtest_lines(
    checker: &Checker,
    given: &[String],
) -> Result<Vec<(Option<usize>, Requirement)>> {
    if given.is_empty() {
        return Ok(checker
            .requirements
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, r)| (Some(i), r))
            .collect());
    }
    given
        .iter()
        .map(|text| {
            if let Ok(n) = text.trim().parse::<usize>() {
                return checker
                    .requirements
                    .get(n)
                    .cloned()
                    .map(|r| (Some(n), r))
                    .ok_or_else(|| {
                        Error::Usage(format!(
                            "--requirement {n}: checker {} has {} requirement lines",
                            checker.name,
                            checker.requirements.len()
                        ))
                    });
            }
            Requirement::parse(text)
                .map(|r| (None, r))
                .map_err(|e| Error::Usage(format!("--requirement {text:?}: {e}")))
        })
        .collect()
}

/// `dwmon backtest`.
pub(crate) async fn backtest(app: &App, args: &BacktestArgs) -> Result<ExitCode> {
    let dir = crate::config::checkers_dir(&args.checkers)?;
    let checker = find_checker(dir, &args.checker)?;
    let given = backtest_lines(&checker, &args.requirements)?;
    let lines: Vec<Requirement> = given.iter().map(|(_, r)| r.clone()).collect();
    let opened = open_store(app, args.store.as_deref(), true)?;
    let store = std::sync::Arc::clone(&opened.store);
    let stored = Stored::read(app, &opened, args.store.as_deref(), &checker.name).await?;
    let zone = checker.zone(args.zone.zone());
    let to = history_end(args.to, &stored);
    let longest = lines.iter().map(|l| l.lookback_seconds).max().unwrap_or(0);
    let complete = stored.complete_from(longest);
    let from = match args.from {
        Some(from) => minute_ceil(from),
        None => {
            let wanted = to.saturating_sub(28 * DAY) + 60;
            complete.map_or(wanted, |c| wanted.max(c))
        }
    };
    if from > to {
        return Err(Error::Usage(format!(
            "nothing to replay: the first minute {} is after the last {} (the store's history \
             of {} {})",
            local_rfc3339(from, zone),
            local_rfc3339(to, zone),
            checker.name,
            stored
                .first_row
                .map_or("has no rows".to_string(), |t| format!(
                    "begins at {}",
                    local_rfc3339(t, zone)
                ))
        )));
    }
    if to - from > MAX_DAYS * DAY {
        return Err(Error::Usage(format!(
            "--from {} to {} is more than {MAX_DAYS} days; replay a shorter range",
            local_rfc3339(from, zone),
            local_rfc3339(to, zone)
        )));
    }
    if let Some(c) = complete.filter(|&c| c > from) {
        eprintln!(
            "note: minutes before {} have windows reaching before the oldest stored row; \
             their counts may be too low",
            local_rfc3339(c, zone)
        );
    }
    let mut inputs = Vec::new();
    for (index, (file_index, line)) in given.iter().enumerate() {
        // A line of the file ends at its own last checked minute (a DELAYSECONDS line is
        // judged later), so a default backtest covers exactly what live runs judged.
        let line_to = line_end(args.to, &stored, *file_index).min(to);
        if line_to < from {
            continue;
        }
        let counts =
            windowed_counts(store.as_ref(), &checker.name, line, zone, from, line_to).await?;
        inputs.extend(counts.into_iter().map(|(m, c)| (m, index, c)));
    }
    let replay = insight::replay(
        &checker.name,
        &lines,
        &inputs,
        AlertPolicy::new(args.repeat_seconds),
    );
    let mut history = History::new(&stored, from, to);
    history.due_minutes = replay.checks.len();
    history.used_minutes = replay.checks.len();
    let summary = Summary::of(&replay, history.seconds());
    let incident = args.incident.map(|i| Incident::of(&replay, i));
    if let Some(path) = &args.svg {
        let subtitle = format!(
            "{} line{}, {} to {} ({}): {} BAD minutes, {} alert episodes",
            lines.len(),
            if lines.len() == 1 { "" } else { "s" },
            local_rfc3339(from, zone),
            local_rfc3339(to, zone),
            zone.name(),
            summary.bad_minutes,
            summary.episodes
        );
        let title = format!("dwmon backtest: {}", checker.name);
        let svg = insight::band_svg(&title, &subtitle, &replay, zone);
        std::fs::write(path, svg).map_err(|source| Error::Write {
            path: path.clone(),
            source,
        })?;
        eprintln!("wrote {}", path.display());
    }
    if args.json {
        let out = BacktestJson {
            checker: &checker.name,
            zone: zone.name(),
            lines: lines.iter().map(Requirement::to_string).collect(),
            history,
            summary,
            episodes: &replay.episodes,
            incident,
            checks: &replay.checks,
        };
        outln!("{}", serde_json::to_string(&out).unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
    }
    outln!("backtest {}:", checker.name);
    for (index, line) in lines.iter().enumerate() {
        outln!("  #{index}  {line}");
    }
    outln!("  {}", history.describe(zone, false));
    outln!("  {}", summary_text(&summary));
    let show = |t: i64| local_rfc3339(t, zone);
    for e in &replay.episodes {
        outln!(
            "  episode #{}: BAD from {}, fired {}, {} ({} BAD minutes)",
            e.requirement_index,
            show(e.bad_since),
            show(e.firing_at),
            e.resolved_at
                .map_or("not resolved by the end".to_string(), |r| format!(
                    "resolved {}",
                    show(r)
                )),
            e.bad_minutes
        );
    }
    if let Some(i) = &incident {
        let alert = match (i.already_firing_since, i.first_alert) {
            (Some(since), _) => format!("already firing since {}", show(since)),
            (None, Some(t)) => format!(
                "first alert at {}, {:.0} minutes after its start{}",
                show(t),
                (t - i.start) as f64 / 60.0,
                if t > i.end { " (after its end)" } else { "" }
            ),
            (None, None) => "no alert".to_string(),
        };
        outln!(
            "  incident {}..{}: {alert}; {} of its {} due checks BAD",
            show(i.start),
            show(i.end),
            i.bad_inside,
            i.checks_inside
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_merge_and_find_overlaps_of_half_open_windows() {
        let set = Intervals::new(vec![(100, 200), (150, 260), (400, 460), (500, 500)]);
        assert_eq!(set.0, [(100, 260), (400, 460)]);
        assert!(set.overlaps(0, 101));
        assert!(!set.overlaps(0, 100)); // [0, 100) ends where the first begins
        assert!(!set.overlaps(260, 400));
        assert!(set.overlaps(259, 260));
        assert!(set.overlaps(300, 1000));
        assert!(!set.overlaps(460, 1000));
        assert!(!Intervals::new(Vec::new()).overlaps(i64::MIN, i64::MAX));
    }

    #[test]
    fn minute_ceil_rounds_up_to_whole_minutes() {
        assert_eq!(minute_ceil(120), 120);
        assert_eq!(minute_ceil(121), 180);
        assert_eq!(minute_ceil(-1), 0);
    }

    fn checks(pairs: &[(i64, Status)]) -> Replay {
        Replay {
            checks: pairs
                .iter()
                .map(|&(minute, status)| insight::ReplayCheck {
                    minute,
                    requirement_index: 0,
                    count: 0,
                    min: 1,
                    max: 9,
                    status,
                })
                .collect(),
            ..Replay::default()
        }
    }

    #[test]
    fn an_incident_reports_the_first_alert_after_its_start() {
        let mut replay = checks(&[
            (60, Status::Good),
            (120, Status::Bad),
            (180, Status::Bad),
            (240, Status::Good),
        ]);
        replay.episodes.push(insight::Episode {
            requirement_index: 0,
            bad_since: 120,
            firing_at: 180,
            resolved_at: Some(240),
            bad_minutes: 2,
        });
        let i = Incident::of(&replay, (100, 200));
        assert_eq!((i.checks_inside, i.bad_inside), (2, 2));
        assert_eq!(i.first_alert, Some(180));
        assert_eq!(i.minutes_to_first_alert, Some(80.0 / 60.0));
        assert_eq!(i.already_firing_since, None);
        // Starting after the firing but before the resolution: already firing.
        let i = Incident::of(&replay, (200, 230));
        assert_eq!(i.already_firing_since, Some(180));
        assert_eq!(i.first_alert, None);
    }
}
