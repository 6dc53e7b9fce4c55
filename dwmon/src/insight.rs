//! Insight (README "Insight"): what `dwmon backtest` and `dwmon suggest` compute, as pure
//! functions over windowed counts.
//!
//! - [`replay`]: judges counts with [`Status::judge`] (the cycle's rule) and feeds the
//!   resulting check records, in `(minute, requirement)` order, to the production
//!   [`AlertPolicy`] with each line's [`AlertRule`] (`FAILAFTER`, `RECOVERAFTER`, reminders),
//!   one alert state per line as in a live run. It reports BAD minutes, alert episodes and
//!   notifications.
//! - [`suggest`]: per-season quantile bounds ([`BoundsRule`]), mean ± 3σ for comparison, a
//!   one-line alternative, and the backtest of each over the same history.
//! - [`band_svg`]: the band chart of a replay (count per due minute, MINNUM/MAXNUM band,
//!   BAD minutes and episodes), a self-contained SVG.
//!
//! The counts come from [`dwmon_core::insight::windowed_counts`], i.e. the store's
//! `count_windows`, the call a cycle makes.

use chrono_tz::Tz;
use dwmon_alert::{AlertPolicy, AlertRule, AlertState, NotificationKind};
use dwmon_core::insight::{
    seasonal_lines, seasons_of, BoundsRule, SeasonStats, SeasonalLine, Seasonality,
};
use dwmon_core::svg::{escape, Anchor, Svg};
use dwmon_core::{CheckRecord, Requirement, Status};
use serde::Serialize;
use std::fmt::Write;

/// One check of a replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ReplayCheck {
    /// The due minute.
    pub minute: i64,
    /// Which line (index into the replayed requirements).
    pub requirement_index: usize,
    /// Rows in `[minute - L, minute)`.
    pub count: u64,
    /// `MINNUM`.
    pub min: u64,
    /// `MAXNUM`.
    pub max: u64,
    /// `GOOD` or `BAD`.
    pub status: Status,
}

/// One alert episode: a line firing until it resolved (or until the end of the replay).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Episode {
    /// The line.
    pub requirement_index: usize,
    /// The first BAD minute of the streak that fired.
    pub bad_since: i64,
    /// The minute whose check fired (the FAILAFTER-th BAD one).
    pub firing_at: i64,
    /// The minute whose check resolved it (the RECOVERAFTER-th GOOD one), if it did.
    pub resolved_at: Option<i64>,
    /// BAD checks of the line from `bad_since` to the resolution.
    pub bad_minutes: usize,
}

/// What a replay found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Replay {
    /// Every check, ascending `(minute, requirement_index)`.
    pub checks: Vec<ReplayCheck>,
    /// The episodes, by firing minute.
    pub episodes: Vec<Episode>,
    /// Firing, reminder and resolved notifications the alert policy sent.
    pub notifications: usize,
}

impl Replay {
    /// BAD checks.
    pub fn bad(&self) -> usize {
        self.checks
            .iter()
            .filter(|c| c.status == Status::Bad)
            .count()
    }
}

/// Replays `(minute, line, count)` (any order) for `lines`: judge, then the production alert
/// policy. `now` of each check is its minute (a live cycle handles minute `m` at `m`).
pub fn replay(
    checker: &str,
    lines: &[Requirement],
    inputs: &[(i64, usize, u64)],
    policy: AlertPolicy,
) -> Replay {
    let mut inputs = inputs.to_vec();
    inputs.sort_unstable();
    let rules: Vec<AlertRule> = lines.iter().map(AlertRule::from_requirement).collect();
    let texts: Vec<String> = lines.iter().map(Requirement::to_string).collect();
    let mut states = vec![AlertState::default(); lines.len()];
    let mut open: Vec<Option<usize>> = vec![None; lines.len()];
    let mut out = Replay::default();
    for &(minute, index, count) in &inputs {
        let Some(line) = lines.get(index) else {
            continue;
        };
        let status = Status::judge(count, line.min, line.max);
        out.checks.push(ReplayCheck {
            minute,
            requirement_index: index,
            count,
            min: line.min,
            max: line.max,
            status,
        });
        let record = CheckRecord {
            checker: checker.to_string(),
            requirement_index: index,
            requirement: texts[index].clone(),
            minute,
            minute_local: String::new(),
            timezone: String::new(),
            lookback_seconds: line.lookback_seconds,
            count,
            min: line.min,
            max: line.max,
            status,
            extra: serde_json::Value::Null,
            monitor: None,
            runs: None,
        };
        let Some(n) = policy.on_check(&mut states[index], &rules[index], &record, None, minute)
        else {
            continue;
        };
        out.notifications += 1;
        match n.kind {
            NotificationKind::Firing => {
                open[index] = Some(out.episodes.len());
                out.episodes.push(Episode {
                    requirement_index: index,
                    bad_since: n.since.unwrap_or(minute),
                    firing_at: minute,
                    resolved_at: None,
                    bad_minutes: 0,
                });
            }
            NotificationKind::Resolved => {
                if let Some(e) = open[index].take() {
                    out.episodes[e].resolved_at = Some(minute);
                }
            }
            _ => {}
        }
    }
    for episode in &mut out.episodes {
        let end = episode.resolved_at.unwrap_or(i64::MAX);
        episode.bad_minutes = out
            .checks
            .iter()
            .filter(|c| {
                c.requirement_index == episode.requirement_index
                    && c.status == Status::Bad
                    && (episode.bad_since..=end).contains(&c.minute)
            })
            .count();
    }
    out
}

/// A replay's figures over a history of `history_seconds`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Checks judged.
    pub checks: usize,
    /// BAD checks.
    pub bad_minutes: usize,
    /// BAD checks as a fraction of all.
    pub bad_fraction: f64,
    /// Alert episodes.
    pub episodes: usize,
    /// Episodes per 30 days of history.
    pub episodes_per_30_days: f64,
    /// Notifications (firing, reminder, resolved) per week of history.
    pub notifications_per_week: f64,
}

impl Summary {
    /// The figures of `replay` over `history_seconds`.
    pub fn of(replay: &Replay, history_seconds: i64) -> Summary {
        let days = (history_seconds.max(60) as f64) / 86_400.0;
        let checks = replay.checks.len();
        let bad = replay.bad();
        Summary {
            checks,
            bad_minutes: bad,
            bad_fraction: if checks == 0 {
                0.0
            } else {
                bad as f64 / checks as f64
            },
            episodes: replay.episodes.len(),
            episodes_per_30_days: replay.episodes.len() as f64 * 30.0 / days,
            notifications_per_week: replay.notifications as f64 * 7.0 / days,
        }
    }
}

/// One season of a suggestion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeasonRow {
    /// Season number (see [`Seasonality`]).
    pub season: usize,
    /// `Mon 09h`, `weekdays 09h`, `all`.
    pub label: String,
    /// The statistics of its counts.
    pub stats: SeasonStats,
    /// The proposed `(MINNUM, MAXNUM)`.
    pub bounds: (u64, u64),
    /// `floor(mean - 3σ)`, `ceil(mean + 3σ)`.
    pub sigma_bounds: (u64, u64),
    /// False when σ is so small that mean ± 3σ is just the mean.
    pub sigma_meaningful: bool,
}

/// A proposal: paste-ready lines and their backtest over the history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Proposal {
    /// The requirement lines, canonical text.
    pub lines: Vec<String>,
    /// The backtest of these lines over the counted history (in-sample).
    pub backtest: Summary,
}

/// What `suggest` proposes for one requirement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suggestion {
    /// The seasons used.
    pub seasonality: Seasonality,
    /// Why that seasonality.
    pub seasonality_reason: String,
    /// The bound formula.
    pub rule: String,
    /// The seasons that occur, in order.
    pub seasons: Vec<SeasonRow>,
    /// Quantile bounds per season (the proposal).
    pub quantiles: Proposal,
    /// Mean ± 3σ per season (for comparison).
    pub sigma: Proposal,
    /// Quantile bounds with one season (one line).
    pub one_line: Proposal,
    /// The requirement as it is.
    pub current: Proposal,
}

/// Proposes bounds for `requirement` from the counted minutes `counts` (already without the
/// left-out ones) of `history_seconds` of history in `zone`.
pub fn suggest(
    checker: &str,
    zone: Tz,
    requirement: &Requirement,
    counts: &[(i64, u64)],
    history_seconds: i64,
    rule: &BoundsRule,
    policy: AlertPolicy,
) -> Suggestion {
    let minutes: Vec<i64> = counts.iter().map(|c| c.0).collect();
    let per_season = |s: Seasonality| -> Vec<Vec<u64>> {
        let mut out = vec![Vec::new(); s.len()];
        for (season, &(_, count)) in seasons_of(&minutes, zone, s).into_iter().zip(counts) {
            out[season].push(count);
        }
        out
    };
    let (seasonality, reason) = Seasonality::choose(history_seconds, |s| {
        per_season(s).iter().map(Vec::len).collect()
    });
    let groups = per_season(seasonality);
    let all_stats: Vec<Option<SeasonStats>> = groups
        .iter()
        .map(|counts| SeasonStats::of(counts, rule))
        .collect();
    let pooled = rule.pooled(&all_stats.iter().flatten().cloned().collect::<Vec<_>>());
    let seasons: Vec<SeasonRow> = all_stats
        .into_iter()
        .enumerate()
        .filter_map(|(season, stats)| {
            let stats = stats?;
            Some(SeasonRow {
                season,
                label: seasonality.label(season),
                bounds: rule.bounds(&stats, pooled),
                sigma_bounds: stats.sigma_bounds(),
                sigma_meaningful: stats.sigma_meaningful(),
                stats,
            })
        })
        .collect();
    let season_of = seasons_of(&minutes, zone, seasonality);
    let propose = |pick: &dyn Fn(&SeasonRow) -> (u64, u64)| {
        let mut bounds = vec![None; seasonality.len()];
        for row in &seasons {
            bounds[row.season] = Some(pick(row));
        }
        let lines = seasonal_lines(requirement, seasonality, &bounds);
        proposal(checker, &lines, counts, &season_of, history_seconds, policy)
    };
    let quantiles = propose(&|row| row.bounds);
    let sigma = propose(&|row| row.sigma_bounds);
    let flat = SeasonStats::of(&counts.iter().map(|c| c.1).collect::<Vec<_>>(), rule);
    let one_line = {
        let mut line = requirement.clone();
        if let Some(stats) = &flat {
            (line.min, line.max) = rule.bounds(stats, rule.spreads(stats));
        }
        let lines = [SeasonalLine {
            requirement: line,
            seasons: (0..seasonality.len()).collect(),
        }];
        proposal(checker, &lines, counts, &season_of, history_seconds, policy)
    };
    let current = {
        let lines = [SeasonalLine {
            requirement: requirement.clone(),
            seasons: (0..seasonality.len()).collect(),
        }];
        proposal(checker, &lines, counts, &season_of, history_seconds, policy)
    };
    Suggestion {
        seasonality,
        seasonality_reason: reason,
        rule: rule.describe(),
        seasons,
        quantiles,
        sigma,
        one_line,
        current,
    }
}

/// The backtest of seasonal `lines` over `counts` (each minute judged by the line covering
/// its season).
fn proposal(
    checker: &str,
    lines: &[SeasonalLine],
    counts: &[(i64, u64)],
    season_of: &[usize],
    history_seconds: i64,
    policy: AlertPolicy,
) -> Proposal {
    let mut line_of = vec![usize::MAX; 168];
    for (i, line) in lines.iter().enumerate() {
        for &s in &line.seasons {
            if let Some(slot) = line_of.get_mut(s) {
                *slot = i;
            }
        }
    }
    let inputs: Vec<(i64, usize, u64)> = counts
        .iter()
        .zip(season_of)
        .filter_map(|(&(m, c), &s)| {
            let line = *line_of.get(s)?;
            (line != usize::MAX).then_some((m, line, c))
        })
        .collect();
    let requirements: Vec<Requirement> = lines.iter().map(|l| l.requirement.clone()).collect();
    let replay = replay(checker, &requirements, &inputs, policy);
    Proposal {
        lines: requirements.iter().map(Requirement::to_string).collect(),
        backtest: Summary::of(&replay, history_seconds),
    }
}

/// One pixel column of the band chart: lowest and highest count, lowest MINNUM, highest
/// MAXNUM, and whether any check in it was BAD.
type Column = (u64, u64, u64, u64, bool);

/// The band chart of a replay: the count of every due minute (blue; the range of counts
/// when several minutes share a pixel column), the MINNUM..MAXNUM band (green), BAD minutes
/// (red ticks under the plot) and alert episodes (red shading from the first BAD minute to
/// the resolution). Self-contained SVG, every text escaped.
pub fn band_svg(title: &str, subtitle: &str, replay: &Replay, zone: Tz) -> String {
    const W: f64 = 960.0;
    const H: f64 = 300.0;
    const LEFT: f64 = 56.0;
    const TOP: f64 = 52.0;
    const RIGHT: f64 = 16.0;
    const BOTTOM: f64 = 56.0;
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let mut svg = Svg::new(W, H);
    svg.heading(LEFT, title, subtitle);
    let checks = &replay.checks;
    let (Some(first), Some(last)) = (checks.first(), checks.last()) else {
        svg.text(LEFT, TOP + 20.0, Anchor::Start, "no due minutes");
        return svg.finish();
    };
    let (t0, t1) = (first.minute, last.minute.max(first.minute + 60));
    let count_max = checks.iter().map(|c| c.count).max().unwrap_or(0);
    let band_max = checks.iter().map(|c| c.max).max().unwrap_or(0);
    // A MAXNUM far above every count (a "no upper bound" line) would flatten the picture.
    let y_max = count_max
        .max(band_max.min(count_max.saturating_mul(2)))
        .max(1) as f64;
    let x = |t: i64| LEFT + (t - t0) as f64 / (t1 - t0) as f64 * plot_w;
    let y = |v: f64| TOP + plot_h - v.min(y_max) / y_max * plot_h;
    // Pixel columns: min/max of count and band per column.
    let columns = (plot_w as usize).min(checks.len()).max(1);
    let col = |t: i64| (((t - t0) as f64 / (t1 - t0) as f64) * (columns - 1) as f64) as usize;
    let mut cells: Vec<Option<Column>> = vec![None; columns];
    for c in checks {
        let cell = &mut cells[col(c.minute)];
        let bad = c.status == Status::Bad;
        *cell = Some(match *cell {
            None => (c.count, c.count, c.min, c.max, bad),
            Some((lo, hi, bmin, bmax, b)) => (
                lo.min(c.count),
                hi.max(c.count),
                bmin.min(c.min),
                bmax.max(c.max),
                b || bad,
            ),
        });
    }
    let cx = |i: usize| LEFT + i as f64 / (columns - 1).max(1) as f64 * plot_w;
    // Episodes first (underneath).
    for e in &replay.episodes {
        let x0 = x(e.bad_since);
        let x1 = x(e.resolved_at.unwrap_or(t1)).max(x0 + 1.0);
        let _ = writeln!(
            svg,
            r##"<rect x="{x0:.1}" y="{TOP}" width="{:.1}" height="{plot_h}" fill="#d62728" fill-opacity="0.15"><title>episode: BAD from {} fired {} {}</title></rect>"##,
            x1 - x0,
            escape(&dwmon_time(e.bad_since, zone)),
            escape(&dwmon_time(e.firing_at, zone)),
            escape(&e.resolved_at.map_or("unresolved".to_string(), |r| format!(
                "resolved {}",
                dwmon_time(r, zone)
            ))),
        );
    }
    // The band as a polygon: MAXNUM left to right, MINNUM right to left.
    let mut upper = Vec::new();
    let mut lower = Vec::new();
    for (i, cell) in cells.iter().enumerate() {
        if let Some((_, _, bmin, bmax, _)) = cell {
            upper.push(format!("{:.1},{:.1}", cx(i), y(*bmax as f64)));
            lower.push(format!("{:.1},{:.1}", cx(i), y(*bmin as f64)));
        }
    }
    lower.reverse();
    let _ = writeln!(
        svg,
        r##"<polygon points="{} {}" fill="#2ca02c" fill-opacity="0.18" stroke="#2ca02c" stroke-width="0.8"/>"##,
        upper.join(" "),
        lower.join(" ")
    );
    // Counts: a vertical stroke per column from its lowest to its highest count.
    let mut path = String::new();
    for (i, cell) in cells.iter().enumerate() {
        if let Some((lo, hi, ..)) = cell {
            let (ylo, yhi) = (y(*lo as f64), y(*hi as f64));
            let _ = write!(
                path,
                "M{:.1} {:.1}V{:.1}",
                cx(i),
                ylo + 0.5,
                (yhi - 0.5).min(ylo - 0.5)
            );
        }
    }
    let _ = writeln!(
        svg,
        r##"<path d="{path}" stroke="#1f77b4" stroke-width="1.2" fill="none"/>"##
    );
    // BAD ticks.
    for (i, cell) in cells.iter().enumerate() {
        if let Some((.., true)) = cell {
            let _ = writeln!(
                svg,
                r##"<rect x="{:.1}" y="{}" width="1.5" height="6" fill="#d62728"/>"##,
                cx(i) - 0.75,
                TOP + plot_h + 2.0
            );
        }
    }
    // Axes and labels.
    let _ = writeln!(
        svg,
        r##"<path d="M{LEFT} {TOP}V{}H{}" stroke="#444444" fill="none"/>"##,
        TOP + plot_h,
        LEFT + plot_w
    );
    for v in [0.0, y_max / 2.0, y_max] {
        svg.text(LEFT - 6.0, y(v) + 4.0, Anchor::End, &v.round().to_string());
    }
    for k in 0..=4 {
        let t = t0 + (t1 - t0) * k / 4;
        svg.text(
            x(t),
            TOP + plot_h + 22.0,
            Anchor::Middle,
            &dwmon_time(t, zone),
        );
    }
    let _ = writeln!(
        svg,
        r##"<text x="{LEFT}" y="{}"><tspan fill="#1f77b4">■ count</tspan>  <tspan fill="#2ca02c">■ MINNUM..MAXNUM</tspan>  <tspan fill="#d62728">▮ BAD minute   ■ alert episode</tspan>  ({})</text>"##,
        H - 10.0,
        escape(zone.name())
    );
    svg.finish()
}

/// `2026-11-23 09:00` in `zone`.
fn dwmon_time(t: i64, zone: Tz) -> String {
    chrono::DateTime::from_timestamp(t, 0).map_or(t.to_string(), |d| {
        d.with_timezone(&zone).format("%Y-%m-%d %H:%M").to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// 2026-11-09T00:00:00Z, a Monday.
    const MONDAY: i64 = 1_794_182_400;
    const DAY: i64 = 86_400;
    const LINE: &str =
        "CHECKHOURS0-23 CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM1 MAXNUM100000 LOOKBACKSECONDS600";

    /// Rows a minute at local (UTC) time `t`: busy weekday office hours, quieter evenings,
    /// quiet nights and weekends (2 to 12 a minute, so every 10-minute window expects 20+).
    fn rate(t: i64) -> f64 {
        let day = (t.div_euclid(DAY) + 4).rem_euclid(7); // 0 = Sunday
        let hour = t.rem_euclid(DAY) / 3600;
        let weekend = day == 0 || day == 6;
        match (weekend, hour) {
            (false, 9..=16) => 12.0,
            (false, 7..=8 | 17..=21) => 6.0,
            (true, 10..=19) => 4.0,
            _ => 2.0,
        }
    }

    /// A Poisson stream with the hour-of-week rates of [`rate`], seeded: arrival timestamps
    /// in `[from, to)`, none inside the `outages`.
    fn stream(seed: u64, from: i64, to: i64, outages: &[(i64, i64)]) -> Vec<i64> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut out = Vec::new();
        let mut t = from as f64;
        while t < to as f64 {
            // Exponential gaps at the rate of the current hour; restart at the hour's end
            // (memoryless, so piecewise-constant rates are exact).
            let hour_end = ((t as i64).div_euclid(3600) + 1) * 3600;
            let per_second = rate(t as i64) / 60.0;
            let u: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
            let next = t - u.ln() / per_second;
            if next >= hour_end as f64 {
                t = hour_end as f64;
                continue;
            }
            t = next;
            let ts = t as i64;
            if ts < to && !outages.iter().any(|&(a, b)| (a..b).contains(&ts)) {
                out.push(ts);
            }
        }
        out
    }

    /// `(minute, count in [m - L, m))` for every minute in `[from, to]`, from sorted rows
    /// (the store's counting, in memory).
    fn counts(rows: &[i64], from: i64, to: i64, lookback: i64) -> Vec<(i64, u64)> {
        (from / 60..=to / 60)
            .map(|m| {
                let m = m * 60;
                let lo = rows.partition_point(|&t| t < m - lookback);
                let hi = rows.partition_point(|&t| t < m);
                (m, (hi - lo) as u64)
            })
            .collect()
    }

    fn lines(s: &Suggestion) -> Vec<Requirement> {
        s.quantiles
            .lines
            .iter()
            .map(|l| Requirement::parse(l).unwrap())
            .collect()
    }

    /// Judges `counts` with the seasonal `lines` (each minute by the line whose schedule
    /// matches it).
    fn judge(lines: &[Requirement], counts: &[(i64, u64)]) -> Replay {
        let inputs: Vec<(i64, usize, u64)> = counts
            .iter()
            .filter_map(|&(m, c)| {
                let i = lines
                    .iter()
                    .position(|l| dwmon_core::schedule::matches(&l.schedule, m, chrono_tz::UTC))?;
                Some((m, i, c))
            })
            .collect();
        replay("t", lines, &inputs, AlertPolicy::default())
    }

    /// 28 days of history, a fresh 30 days of normal data, and outages; the suggested
    /// bounds must catch >= 95 % of the outage minutes (those whose window lies in an
    /// outage) with at most one false episode in the 30 normal days.
    #[test]
    fn seasonal_bounds_catch_outages_with_few_false_alarms() {
        let requirement = Requirement::parse(LINE).unwrap();
        let history_to = MONDAY + 28 * DAY;
        let rows = stream(7, MONDAY - 600, history_to, &[]);
        let history = counts(&rows, MONDAY, history_to - 60, 600);
        let s = suggest(
            "t",
            chrono_tz::UTC,
            &requirement,
            &history,
            28 * DAY,
            &BoundsRule::default(),
            AlertPolicy::default(),
        );
        assert_eq!(s.seasonality, Seasonality::HourOfWeek);
        let proposed = lines(&s);
        assert!(
            proposed.len() > 3,
            "seasonal lines: {:?}",
            s.quantiles.lines
        );

        // Out of sample: the next 30 days with another seed.
        let (from, to) = (history_to, history_to + 30 * DAY);
        let normal = stream(8, from - 600, to, &[]);
        let normal_replay = judge(&proposed, &counts(&normal, from, to - 60, 600));
        assert!(
            normal_replay.episodes.len() <= 1,
            "false episodes in 30 normal days: {:?}",
            normal_replay.episodes
        );

        // Outages of 2 hours at different times of the week.
        let outages: Vec<(i64, i64)> = [3, 50, 130, 250, 400, 560, 650]
            .iter()
            .map(|h| (from + h * 3600 + 1800, from + h * 3600 + 1800 + 7200))
            .collect();
        let broken = stream(9, from - 600, to, &outages);
        let replay = judge(&proposed, &counts(&broken, from, to - 60, 600));
        let inside: Vec<&ReplayCheck> = replay
            .checks
            .iter()
            .filter(|c| {
                outages
                    .iter()
                    .any(|&(a, b)| c.minute - 600 >= a && c.minute <= b)
            })
            .collect();
        let caught = inside.iter().filter(|c| c.status == Status::Bad).count();
        assert!(
            caught * 100 >= inside.len() * 95,
            "caught {caught} of {} outage minutes",
            inside.len()
        );
        // The 3σ comparison is reported for every season.
        assert_eq!(s.seasons.len(), 168);
        assert!(s.seasons.iter().all(|r| r.sigma_meaningful));
    }

    /// An outage the live requirement recorded BAD is left out (with the minutes whose
    /// windows overlap it) before suggesting: the bounds stay those of normal data, and
    /// still catch a repeat of the outage. Kept in, it widens them to accept it.
    #[test]
    fn a_recorded_outage_does_not_widen_the_bounds() {
        let requirement = Requirement::parse(LINE).unwrap();
        let to = MONDAY + 14 * DAY;
        // Tuesday 10:30-12:30 and Saturday 12:30-14:30.
        let outages = [
            (
                MONDAY + DAY + 10 * 3600 + 1800,
                MONDAY + DAY + 12 * 3600 + 1800,
            ),
            (
                MONDAY + 5 * DAY + 12 * 3600 + 1800,
                MONDAY + 5 * DAY + 14 * 3600 + 1800,
            ),
        ];
        let rows = stream(11, MONDAY - 600, to, &outages);
        let all = counts(&rows, MONDAY, to - 60, 600);
        // What the live requirement (MINNUM1) recorded BAD.
        let bad: Vec<i64> = all.iter().filter(|c| c.1 == 0).map(|c| c.0).collect();
        assert!(!bad.is_empty());
        let kept: Vec<(i64, u64)> = all
            .iter()
            .copied()
            .filter(|c| !dwmon_core::insight::near_bad(&bad, c.0, 600))
            .collect();
        let suggest_from = |counts: &[(i64, u64)]| {
            suggest(
                "t",
                chrono_tz::UTC,
                &requirement,
                counts,
                14 * DAY,
                &BoundsRule::default(),
                AlertPolicy::default(),
            )
        };
        let clean = suggest_from(&kept);
        assert_eq!(clean.seasonality, Seasonality::DayTypeHour);
        let naive = suggest_from(&all);
        let min_of = |s: &Suggestion, label: &str| {
            s.seasons
                .iter()
                .find(|r| r.label == label)
                .map(|r| r.bounds.0)
                .unwrap()
        };
        for label in ["weekdays 11h", "weekends 13h"] {
            assert!(min_of(&clean, label) >= 5, "{label}: {clean:?}");
            assert_eq!(min_of(&naive, label), 0, "{label} learned the outage");
        }
        // A repeat of the outage a week later is caught by the clean bounds.
        let (from, later) = (to, to + 7 * DAY);
        let repeat = [(from + DAY + 10 * 3600 + 1800, from + DAY + 12 * 3600 + 1800)];
        let rows = stream(12, from - 600, later, &repeat);
        let replay = judge(&lines(&clean), &counts(&rows, from, later - 60, 600));
        let inside: Vec<&ReplayCheck> = replay
            .checks
            .iter()
            .filter(|c| c.minute - 600 >= repeat[0].0 && c.minute <= repeat[0].1)
            .collect();
        assert!(inside.iter().all(|c| c.status == Status::Bad));
    }

    #[test]
    fn replay_applies_failafter_and_recoverafter_like_the_alert_policy() {
        let line = Requirement::parse(&LINE.replace("MINNUM1", "MINNUM5 FAILAFTER3 RECOVERAFTER2"))
            .unwrap();
        // counts: 2 BAD, GOOD, 3 BAD (fires at the third), GOOD, BAD, 2 GOOD (resolves).
        let counts = [0, 0, 9, 0, 0, 0, 9, 0, 9, 9, 9];
        let inputs: Vec<(i64, usize, u64)> = counts
            .iter()
            .enumerate()
            .map(|(i, &c)| (MONDAY + 60 * i as i64, 0, c))
            .collect();
        let r = replay("t", &[line], &inputs, AlertPolicy::new(0));
        assert_eq!(r.bad(), 6);
        assert_eq!(
            r.episodes,
            [Episode {
                requirement_index: 0,
                bad_since: MONDAY + 180,
                firing_at: MONDAY + 300,
                resolved_at: Some(MONDAY + 540),
                bad_minutes: 4,
            }]
        );
        assert_eq!(r.notifications, 2);
    }

    #[test]
    fn the_band_chart_is_self_contained_and_escaped() {
        let line = Requirement::parse(&LINE.replace("MINNUM1", "MINNUM5")).unwrap();
        let inputs: Vec<(i64, usize, u64)> = (0..100)
            .map(|i| {
                (
                    MONDAY + 60 * i,
                    0,
                    if (40..50).contains(&i) { 0 } else { 9 },
                )
            })
            .collect();
        let r = replay("t", &[line], &inputs, AlertPolicy::default());
        let svg = band_svg("a<b & \"c\"", "sub", &r, chrono_tz::UTC);
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("a&lt;b &amp; &quot;c&quot;"));
        assert!(!svg.contains("href"));
        assert_eq!(svg.matches("fill-opacity=\"0.15\"").count(), 1);
        assert!(svg.matches("height=\"6\"").count() >= 10);
    }
}
