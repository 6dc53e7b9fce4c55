//! Insight: the pure statistics behind `dwmon suggest` and `dwmon backtest` (README
//! "Insight").
//!
//! - [`windowed_counts`]: the count of every minute a requirement's schedule makes due in a
//!   range, with the production counting code: the windows are the engine's half-open
//!   `[m - L, m)` and the counts come from [`Store::count_windows`], the call a cycle makes.
//! - [`Seasonality`]: how due minutes are split into seasons (hour of week, weekday/weekend
//!   x hour, or one season) and [`Seasonality::choose`], which picks the finest one the
//!   history supports.
//! - [`SeasonStats`] and [`BoundsRule`]: quantile bounds with a margin, and mean ± 3σ for
//!   comparison ([`SeasonStats::sigma_bounds`], [`SeasonStats::sigma_meaningful`]).
//! - [`near_bad`]: whether a minute's window overlaps the window of a minute recorded BAD (such
//!   minutes are left out of the history a proposal is learned from).
//! - [`seasonal_lines`]: paste-ready requirement lines, one per distinct bound and group of
//!   days, using `CHECKHOURS` and `WEEKDAYS`/`WEEKENDS`/`CHECKWEEKDAYS`.
//!
//! Everything except [`windowed_counts`] (which only reads the store) is pure.

use crate::requirement::{FieldSet, Requirement, MAX_ALERT_KEY_LEN};
use crate::schedule::{self, LocalFields, ZoneCursor};
use crate::store::{Store, StoreError};
use chrono_tz::Tz;
use serde::Serialize;

/// `suggest` refuses to propose bounds from less history than this: 14 days, so every
/// weekday and weekend hour has been seen at least twice.
pub const MIN_HISTORY_SECONDS: i64 = 14 * 86_400;

/// `suggest` refuses to propose bounds from fewer counted due minutes than this.
pub const MIN_DUE_MINUTES: usize = 500;

/// History needed for hour-of-week seasons: 4 weeks (each hour of the week seen 4 times).
pub const HOUR_OF_WEEK_SECONDS: i64 = 28 * 86_400;

/// A season needs at least this many counted minutes for its quantiles; when some season of
/// a seasonality has fewer, the next coarser seasonality is used.
pub const MIN_SEASON_SAMPLES: usize = 20;

/// Windows per [`Store::count_windows`] call in [`windowed_counts`] (bounds memory on long
/// histories).
const COUNT_CHUNK: usize = 10_000;

/// The count of every minute `requirement` makes due in `[from, to]` (inclusive, in `zone`),
/// ascending: `(minute, count of stored rows with minute - L <= ts < minute)`, counted by
/// [`Store::count_windows`] exactly as a cycle counts them.
///
/// # Errors
/// Any store failure.
pub async fn windowed_counts(
    store: &dyn Store,
    checker: &str,
    requirement: &Requirement,
    zone: Tz,
    from: i64,
    to: i64,
) -> Result<Vec<(i64, u64)>, StoreError> {
    let lookback = i64::try_from(requirement.lookback_seconds).unwrap_or(i64::MAX);
    let minutes: Vec<i64> = schedule::due_minutes(&requirement.schedule, zone, from, to).collect();
    let mut out = Vec::with_capacity(minutes.len());
    for chunk in minutes.chunks(COUNT_CHUNK) {
        let windows: Vec<(i64, i64)> = chunk
            .iter()
            .map(|&m| (m.saturating_sub(lookback), m))
            .collect();
        let counts = store.count_windows(checker, &windows).await?;
        if counts.len() != windows.len() {
            return Err(StoreError::backend(format!(
                "asked for {} window counts, got {}",
                windows.len(),
                counts.len()
            )));
        }
        out.extend(chunk.iter().copied().zip(counts));
    }
    Ok(out)
}

/// Whether `minute`'s window overlaps the window of a minute in `bad` (sorted ascending):
/// some `b` with `|minute - b| < lookback_seconds`. An outage's BAD minutes are surrounded by
/// minutes whose windows hold part of the outage (the count falling, then refilling) and may
/// have passed the old bounds; learning from them would widen the new ones.
pub fn near_bad(bad: &[i64], minute: i64, lookback_seconds: u64) -> bool {
    let lookback = i64::try_from(lookback_seconds).unwrap_or(i64::MAX);
    let lo = minute.saturating_sub(lookback);
    let hi = minute.saturating_add(lookback);
    let first = bad.partition_point(|&b| b <= lo);
    bad.get(first).is_some_and(|&b| b < hi)
}

/// How due minutes are split into seasons, each with its own bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Seasonality {
    /// One season per hour of the week (168): needs [`HOUR_OF_WEEK_SECONDS`] of history.
    HourOfWeek,
    /// Weekday (Mon-Fri) or weekend (Sat, Sun) x hour of the day (48 seasons).
    DayTypeHour,
    /// A single season: every due minute together.
    Flat,
}

/// Short weekday names, 0 = Sunday (as the schedule's weekday numbers).
const DAY_NAMES: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

impl Seasonality {
    /// How many seasons there are.
    pub fn len(self) -> usize {
        match self {
            Seasonality::HourOfWeek => 168,
            Seasonality::DayTypeHour => 48,
            Seasonality::Flat => 1,
        }
    }

    /// Always false (there is at least one season); for clippy's `len` convention.
    pub fn is_empty(self) -> bool {
        false
    }

    /// The season of a local minute.
    pub fn season(self, fields: &LocalFields) -> usize {
        let hour = fields.hour as usize;
        match self {
            Seasonality::HourOfWeek => fields.weekday as usize * 24 + hour,
            Seasonality::DayTypeHour => usize::from(is_weekend(fields.weekday)) * 24 + hour,
            Seasonality::Flat => 0,
        }
    }

    /// The days of the week (0 = Sunday) of `season`.
    pub fn days(self, season: usize) -> FieldSet {
        match self {
            Seasonality::HourOfWeek => FieldSet::range(season as u32 / 24, season as u32 / 24),
            Seasonality::DayTypeHour if season >= 24 => WEEKEND,
            Seasonality::DayTypeHour => WEEKDAY,
            Seasonality::Flat => FieldSet::range(0, 6),
        }
    }

    /// The hours of the day of `season`.
    pub fn hours(self, season: usize) -> FieldSet {
        match self {
            Seasonality::Flat => FieldSet::range(0, 23),
            _ => FieldSet::range(season as u32 % 24, season as u32 % 24),
        }
    }

    /// A label for `season`: `Mon 09h`, `weekdays 09h`, `all`.
    pub fn label(self, season: usize) -> String {
        match self {
            Seasonality::HourOfWeek => {
                format!("{} {:02}h", DAY_NAMES[season / 24 % 7], season % 24)
            }
            Seasonality::DayTypeHour => {
                let kind = if season >= 24 { "weekends" } else { "weekdays" };
                format!("{kind} {:02}h", season % 24)
            }
            Seasonality::Flat => "all".to_string(),
        }
    }

    /// What the seasons are, for a person.
    pub fn describe(self) -> &'static str {
        match self {
            Seasonality::HourOfWeek => "hour of week (168 seasons)",
            Seasonality::DayTypeHour => "weekday/weekend x hour (48 seasons)",
            Seasonality::Flat => "none (one season)",
        }
    }

    /// The finest seasonality the history supports: hour of week with at least
    /// [`HOUR_OF_WEEK_SECONDS`] of history, else weekday/weekend x hour; a seasonality is
    /// skipped when a season that occurs has fewer than [`MIN_SEASON_SAMPLES`] minutes
    /// (`samples(s)` gives the minutes per season of `s`; seasons with none are not due and
    /// do not count). Returns the choice and why.
    pub fn choose(
        history_seconds: i64,
        samples: impl Fn(Seasonality) -> Vec<usize>,
    ) -> (Seasonality, String) {
        let thin = |s: Seasonality| samples(s).iter().any(|&n| n > 0 && n < MIN_SEASON_SAMPLES);
        let weeks = history_seconds >= HOUR_OF_WEEK_SECONDS;
        if weeks && !thin(Seasonality::HourOfWeek) {
            return (
                Seasonality::HourOfWeek,
                "at least 4 weeks of history".to_string(),
            );
        }
        let why = if weeks {
            format!("4 weeks of history, but some hour of the week has fewer than {MIN_SEASON_SAMPLES} due minutes")
        } else {
            "less than 4 weeks of history".to_string()
        };
        if !thin(Seasonality::DayTypeHour) {
            return (Seasonality::DayTypeHour, why);
        }
        (
            Seasonality::Flat,
            format!("{why}, and some weekday/weekend hour has fewer than {MIN_SEASON_SAMPLES} due minutes"),
        )
    }
}

/// Monday to Friday (bit 0 = Sunday).
const WEEKDAY: FieldSet = FieldSet(0b011_1110);
/// Saturday and Sunday.
const WEEKEND: FieldSet = FieldSet(0b100_0001);

fn is_weekend(weekday: u32) -> bool {
    weekday == 0 || weekday == 6
}

/// The season of every minute of `minutes` under `seasonality`, in `zone`.
pub fn seasons_of(minutes: &[i64], zone: Tz, seasonality: Seasonality) -> Vec<usize> {
    let mut cursor = ZoneCursor::new(zone);
    minutes
        .iter()
        .map(|&m| {
            cursor
                .local_fields(m)
                .map_or(0, |fields| seasonality.season(&fields))
        })
        .collect()
}

/// The nearest-rank quantile `p` (0..=1) of ascending `sorted`: the smallest value with at
/// least `p` of the values at or below it (`sorted[ceil(p n) - 1]`, the first value for
/// `p = 0`). `None` when empty.
pub fn quantile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    let rank = (p.clamp(0.0, 1.0) * n as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, n) - 1])
}

/// The statistics of one season's counts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeasonStats {
    /// Counted minutes.
    pub samples: usize,
    /// Smallest count.
    pub min: u64,
    /// Largest count.
    pub max: u64,
    /// The low quantile ([`BoundsRule::low_quantile`]).
    pub low: u64,
    /// The median.
    pub median: u64,
    /// The high quantile ([`BoundsRule::high_quantile`]).
    pub high: u64,
    /// Mean count.
    pub mean: f64,
    /// Standard deviation (population).
    pub sd: f64,
}

/// Below this σ, mean ± 3σ spans less than one row on each side: with integer counts it
/// collapses to (about) the mean and says nothing about the spread.
pub const SIGMA_MEANINGLESS_BELOW: f64 = 1.0 / 3.0;

impl SeasonStats {
    /// The statistics of `counts` (any order) with `rule`'s quantiles; `None` when empty.
    pub fn of(counts: &[u64], rule: &BoundsRule) -> Option<SeasonStats> {
        let mut sorted = counts.to_vec();
        sorted.sort_unstable();
        let n = sorted.len() as f64;
        let mean = sorted.iter().map(|&c| c as f64).sum::<f64>() / n;
        let var = sorted
            .iter()
            .map(|&c| (c as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        Some(SeasonStats {
            samples: sorted.len(),
            min: *sorted.first()?,
            max: *sorted.last()?,
            low: quantile(&sorted, rule.low_quantile)?,
            median: quantile(&sorted, 0.5)?,
            high: quantile(&sorted, rule.high_quantile)?,
            mean,
            sd: var.sqrt(),
        })
    }

    /// `floor(mean - 3σ)` (at least 0) and `ceil(mean + 3σ)`.
    pub fn sigma_bounds(&self) -> (u64, u64) {
        let lo = (self.mean - 3.0 * self.sd).floor().max(0.0) as u64;
        let hi = (self.mean + 3.0 * self.sd).ceil().max(0.0) as u64;
        (lo, hi.max(lo))
    }

    /// Whether mean ± 3σ means anything: false when σ < [`SIGMA_MEANINGLESS_BELOW`] (the
    /// counts (nearly) never vary, so the band is the mean itself).
    pub fn sigma_meaningful(&self) -> bool {
        self.sd >= SIGMA_MEANINGLESS_BELOW
    }
}

/// How `suggest` turns a season's counts into `MINNUM`/`MAXNUM`: quantiles widened by a
/// margin on a square-root scale.
///
/// With `s = sqrt`, `lo = s(q_low)`, `med = s(median)`, `hi = s(q_high)`:
/// `MINNUM = floor(max(0, lo - margin * (med - lo))^2)`,
/// `MAXNUM = ceil((hi + margin * (hi - med))^2)`.
///
/// - Quantiles rather than mean ± kσ: counts are skewed and bounded below by 0 (a Poisson
///   count with mean 4 has a "mean - 3σ" of -2), and quantiles are not dragged by the few
///   extreme minutes an incident leaves in the history.
/// - The 5 % / 95 % quantiles (not 0.5 % / 99.5 %): a season of hour-of-week has about 240
///   counted minutes in 4 weeks, whose 0.5 % quantile is the second-smallest value, a noisy
///   estimate; the 5 % quantile (the 12th) is stable. The margin then extrapolates to the
///   far tail.
/// - The margin: a requirement checked every minute is judged 43 200 times a month, so a
///   bound crossed by normal data once a month must sit at a tail probability near 1e-5,
///   about 4.3σ. For normal-ish data, `median - 3.25 x (median - q5)` is `median - 5.3σ`;
///   the extra beyond 4.3σ pays for the noise of quantiles estimated from minutes whose
///   overlapping windows make them far from independent (240 minutes of one hour of the
///   week are only about 24 independent 10-minute windows).
/// - Shrinkage: each season's spread is averaged with the median spread of all seasons,
///   which halves the noise of a single season's quantiles without hiding a season that
///   really is more variable.
/// - The square-root scale: it stabilises the variance of counts (for Poisson counts
///   `sqrt(X)` has σ ≈ 1/2 whatever the mean), so the same margin fits a quiet night hour
///   and a busy afternoon one, and the lower bound of a low count stays above 0 where an
///   outage (a count of 0) is still unusual.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BoundsRule {
    /// The low quantile (default 0.05 = 5 %).
    pub low_quantile: f64,
    /// The high quantile (default 0.95 = 95 %).
    pub high_quantile: f64,
    /// The margin, as a multiple of the median-to-quantile distance on the square-root
    /// scale (default 2.25).
    pub margin: f64,
}

impl Default for BoundsRule {
    fn default() -> Self {
        BoundsRule {
            low_quantile: 0.05,
            high_quantile: 0.95,
            margin: 2.25,
        }
    }
}

impl BoundsRule {
    /// The season's spreads below and above the median on the square-root scale:
    /// `(s(median) - s(q_low), s(q_high) - s(median))`.
    pub fn spreads(&self, stats: &SeasonStats) -> (f64, f64) {
        let s = |v: u64| (v as f64).sqrt();
        (
            (s(stats.median) - s(stats.low)).max(0.0),
            (s(stats.high) - s(stats.median)).max(0.0),
        )
    }

    /// The median spreads over all `seasons` (see [`BoundsRule::spreads`]); `(0, 0)` for none.
    pub fn pooled(&self, seasons: &[SeasonStats]) -> (f64, f64) {
        let median = |mut v: Vec<f64>| {
            if v.is_empty() {
                return 0.0;
            }
            v.sort_by(f64::total_cmp);
            v[(v.len() - 1) / 2]
        };
        let spreads: Vec<(f64, f64)> = seasons.iter().map(|st| self.spreads(st)).collect();
        (
            median(spreads.iter().map(|d| d.0).collect()),
            median(spreads.iter().map(|d| d.1).collect()),
        )
    }

    /// `(MINNUM, MAXNUM)` for a season with `stats`, its spreads shrunk halfway to `pooled`
    /// (from [`BoundsRule::pooled`]; pass the season's own spreads to use them alone).
    pub fn bounds(&self, stats: &SeasonStats, pooled: (f64, f64)) -> (u64, u64) {
        let median = (stats.median as f64).sqrt();
        let (own_low, own_high) = self.spreads(stats);
        let low = (own_low + pooled.0) / 2.0;
        let high = (own_high + pooled.1) / 2.0;
        let lo = (median - (1.0 + self.margin) * low).max(0.0);
        let hi = median + (1.0 + self.margin) * high;
        // A hair of tolerance so an exact square (e.g. 3.0^2 = 9) is not floored to 8.
        let lo = (lo * lo + 1e-9).floor() as u64;
        let hi = (hi * hi - 1e-9).ceil().max(0.0) as u64;
        (lo, hi.max(lo))
    }

    /// The formula, for a person.
    pub fn describe(&self) -> String {
        let pct = |p: f64| format!("{}%", (p * 1000.0).round() / 10.0);
        format!(
            "on the square-root scale s, per season: spread below = s(median) - s(q{lo}), above = \
             s(q{hi}) - s(median), each averaged with the median spread of all seasons; \
             MINNUM = floor((s(median) - {k} x below)^2), MAXNUM = ceil((s(median) + {k} x above)^2)",
            lo = pct(self.low_quantile),
            hi = pct(self.high_quantile),
            k = 1.0 + self.margin
        )
    }
}

/// The bounds of each hour of one day (`None`: not due).
type HourProfile = [Option<(u64, u64)>; 24];

/// One paste-ready line of a seasonal proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeasonalLine {
    /// The requirement: the original with its hours, days of the week and bounds replaced.
    pub requirement: Requirement,
    /// The seasons it covers.
    pub seasons: Vec<usize>,
}

/// Paste-ready lines for per-season `bounds` (`None` for a season without due minutes):
/// `original` with `CHECKHOURS` and the day-of-week options narrowed to the seasons that
/// share a bound, one line per group of days with the same hour profile and per distinct
/// bound. A single line when every season has the same bounds. Every other option
/// (`CHECKMINUTES`, `LOOKBACKSECONDS`, `FAILAFTER`, ...) is kept; an `ALERTKEY` gets a
/// `.N` suffix per line so the keys stay unique in the file.
pub fn seasonal_lines(
    original: &Requirement,
    seasonality: Seasonality,
    bounds: &[Option<(u64, u64)>],
) -> Vec<SeasonalLine> {
    let mut distinct: Vec<(u64, u64)> = bounds.iter().flatten().copied().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() == 1 {
        let (min, max) = distinct[0];
        let mut requirement = original.clone();
        requirement.min = min;
        requirement.max = max;
        let seasons = (0..bounds.len()).filter(|&s| bounds[s].is_some()).collect();
        return vec![SeasonalLine {
            requirement,
            seasons,
        }];
    }
    // Per day of the week (0 = Sunday): the bounds of each hour, and their seasons.
    let mut profiles: Vec<[Option<(u64, u64)>; 24]> = vec![[None; 24]; 7];
    let mut season_at = [[usize::MAX; 24]; 7];
    for (season, b) in bounds.iter().enumerate() {
        let Some(b) = b else { continue };
        for day in seasonality.days(season).iter().filter(|&d| d < 7) {
            for hour in seasonality.hours(season).iter().filter(|&h| h < 24) {
                profiles[day as usize][hour as usize] = Some(*b);
                season_at[day as usize][hour as usize] = season;
            }
        }
    }
    // Days with the same profile share lines (Monday first, so weekdays come first).
    let mut groups: Vec<(FieldSet, HourProfile)> = Vec::new();
    for day in [1, 2, 3, 4, 5, 6, 0] {
        let profile = profiles[day];
        if profile.iter().all(Option::is_none) {
            continue;
        }
        match groups.iter_mut().find(|(_, p)| *p == profile) {
            Some((days, _)) => days.insert(day as u32),
            None => groups.push((FieldSet::range(day as u32, day as u32), profile)),
        }
    }
    let mut lines = Vec::new();
    for (days, profile) in groups {
        let mut seen: Vec<(u64, u64)> = Vec::new();
        for b in profile.iter().flatten() {
            if seen.contains(b) {
                continue;
            }
            seen.push(*b);
            let mut hours = FieldSet(0);
            let mut seasons = Vec::new();
            for (hour, p) in profile.iter().enumerate() {
                if *p == Some(*b) {
                    hours.insert(hour as u32);
                    for day in days.iter() {
                        seasons.push(season_at[day as usize][hour]);
                    }
                }
            }
            seasons.sort_unstable();
            seasons.dedup();
            let mut requirement = original.clone();
            requirement.schedule.hours = FieldSet(original.schedule.hours.0 & hours.0);
            requirement.schedule.weekdays = days;
            requirement.min = b.0;
            requirement.max = b.1;
            lines.push(SeasonalLine {
                requirement,
                seasons,
            });
        }
    }
    if let Some(key) = &original.alert_key {
        for (i, line) in lines.iter_mut().enumerate() {
            let suffix = format!(".{i}");
            let keep = MAX_ALERT_KEY_LEN.saturating_sub(suffix.len());
            line.requirement.alert_key = Some(format!(
                "{}{suffix}",
                key.chars().take(keep).collect::<String>()
            ));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MemoryStore, Row, RowStore};

    const SEED: &str =
        "CHECKHOURS0-23 CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM1 MAXNUM100 LOOKBACKSECONDS600";
    /// 2026-11-23T00:00:00Z, a Monday.
    const MONDAY: i64 = 1_795_392_000;

    #[test]
    fn quantiles_are_nearest_rank() {
        let sorted: Vec<u64> = (1..=200).collect();
        assert_eq!(quantile(&sorted, 0.005), Some(1));
        assert_eq!(quantile(&sorted, 0.01), Some(2));
        assert_eq!(quantile(&sorted, 0.5), Some(100));
        assert_eq!(quantile(&sorted, 0.995), Some(199));
        assert_eq!(quantile(&sorted, 1.0), Some(200));
        assert_eq!(quantile(&sorted, 0.0), Some(1));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn bounds_widen_the_quantiles_by_the_margin() {
        let rule = BoundsRule {
            margin: 2.5,
            ..BoundsRule::default()
        };
        let stats = SeasonStats {
            samples: 100,
            min: 5,
            max: 40,
            low: 16,
            median: 25,
            high: 36,
            mean: 25.0,
            sd: 5.0,
        };
        // sqrt: 4, 5, 6: spreads 1 and 1 -> (5 - 3.5)^2 = 2.25 and (5 + 3.5)^2 = 72.25.
        let own = rule.spreads(&stats);
        assert_eq!(own, (1.0, 1.0));
        assert_eq!(rule.bounds(&stats, own), (2, 73));
        // Shrunk halfway to a pooled spread of 0.5 each: 0.75 -> (5 - 2.625)^2, (5 + 2.625)^2.
        assert_eq!(rule.bounds(&stats, (0.5, 0.5)), (5, 59));
        assert_eq!(rule.pooled(std::slice::from_ref(&stats)), own);
        assert_eq!(stats.sigma_bounds(), (10, 40));
        assert!(stats.sigma_meaningful());
        let constant = SeasonStats::of(&[1; 50], &rule).unwrap();
        assert_eq!(rule.bounds(&constant, (0.0, 0.0)), (1, 1));
        assert_eq!(constant.sigma_bounds(), (1, 1));
        assert!(!constant.sigma_meaningful());
        // Low counts: the lower bound stops at 0.
        let low = SeasonStats::of(&[0, 1, 1, 2, 2, 3], &rule).unwrap();
        assert_eq!(rule.bounds(&low, rule.spreads(&low)).0, 0);
    }

    #[test]
    fn near_bad_means_overlapping_windows() {
        let bad = [6000, 9000];
        assert!(near_bad(&bad, 6000, 600));
        assert!(near_bad(&bad, 5460, 600));
        assert!(!near_bad(&bad, 5400, 600));
        assert!(near_bad(&bad, 6540, 600));
        assert!(!near_bad(&bad, 6600, 600));
        assert!(!near_bad(&[], 6000, 600));
    }

    #[test]
    fn seasons_follow_local_weekday_and_hour() {
        let minutes = [MONDAY + 9 * 3600, MONDAY + 5 * 86_400 + 3600];
        assert_eq!(
            seasons_of(&minutes, chrono_tz::UTC, Seasonality::HourOfWeek),
            [24 + 9, 6 * 24 + 1]
        );
        assert_eq!(
            seasons_of(&minutes, chrono_tz::UTC, Seasonality::DayTypeHour),
            [9, 24 + 1]
        );
        // 09:00 UTC is 04:00 in New York.
        assert_eq!(
            seasons_of(
                &minutes[..1],
                chrono_tz::America::New_York,
                Seasonality::HourOfWeek
            ),
            [24 + 4]
        );
        assert_eq!(Seasonality::HourOfWeek.label(24 + 9), "Mon 09h");
        assert_eq!(Seasonality::DayTypeHour.label(24 + 1), "weekends 01h");
    }

    #[test]
    fn the_finest_supported_seasonality_is_chosen() {
        let enough = |s: Seasonality| vec![MIN_SEASON_SAMPLES; s.len()];
        assert_eq!(
            Seasonality::choose(HOUR_OF_WEEK_SECONDS, enough).0,
            Seasonality::HourOfWeek
        );
        assert_eq!(
            Seasonality::choose(HOUR_OF_WEEK_SECONDS - 60, enough).0,
            Seasonality::DayTypeHour
        );
        let thin = |s: Seasonality| match s {
            Seasonality::Flat => vec![600],
            _ => vec![3; s.len()],
        };
        assert_eq!(
            Seasonality::choose(HOUR_OF_WEEK_SECONDS, thin).0,
            Seasonality::Flat
        );
        // Seasons that are never due do not make a seasonality thin.
        let office = |s: Seasonality| {
            let mut v = vec![0; s.len()];
            v[9] = 100;
            v
        };
        assert_eq!(
            Seasonality::choose(HOUR_OF_WEEK_SECONDS, office).0,
            Seasonality::HourOfWeek
        );
    }

    #[test]
    fn lines_group_days_and_hours_with_equal_bounds() {
        let original = Requirement::parse(SEED).unwrap();
        let mut bounds = vec![None; 48];
        for (hour, b) in bounds.iter_mut().enumerate().take(24) {
            *b = Some(if (9..17).contains(&hour) {
                (20, 80)
            } else {
                (2, 30)
            });
        }
        for b in bounds.iter_mut().skip(24) {
            *b = Some((1, 10));
        }
        let lines = seasonal_lines(&original, Seasonality::DayTypeHour, &bounds);
        let texts: Vec<String> = lines.iter().map(|l| l.requirement.to_string()).collect();
        assert_eq!(
            texts,
            [
                "CHECKHOURS0-8,17-23 CHECKMINUTES0-59 WEEKDAYS MINNUM2 MAXNUM30 LOOKBACKSECONDS600",
                "CHECKHOURS9-16 CHECKMINUTES0-59 WEEKDAYS MINNUM20 MAXNUM80 LOOKBACKSECONDS600",
                "CHECKHOURS0-23 CHECKMINUTES0-59 WEEKENDS MINNUM1 MAXNUM10 LOOKBACKSECONDS600",
            ]
        );
        for text in &texts {
            assert!(Requirement::parse(text).is_ok(), "{text}");
        }
        assert_eq!(lines[2].seasons, (24..48).collect::<Vec<_>>());
        // Equal bounds everywhere: the original line with new bounds.
        let same = seasonal_lines(&original, Seasonality::DayTypeHour, &vec![Some((3, 9)); 48]);
        assert_eq!(same.len(), 1);
        assert_eq!(same[0].requirement.schedule, original.schedule);
        assert_eq!((same[0].requirement.min, same[0].requirement.max), (3, 9));
    }

    #[test]
    fn alert_keys_stay_unique() {
        let original = Requirement::parse(&format!("{SEED} ALERTKEYorders")).unwrap();
        let mut bounds = vec![Some((1, 2)); 48];
        bounds[30] = Some((5, 6));
        let lines = seasonal_lines(&original, Seasonality::DayTypeHour, &bounds);
        let keys: Vec<_> = lines
            .iter()
            .map(|l| l.requirement.alert_key.clone().unwrap())
            .collect();
        assert_eq!(keys, ["orders.0", "orders.1", "orders.2"]);
    }

    #[test]
    fn windowed_counts_are_the_engines_half_open_windows() {
        let store = MemoryStore::new();
        let rows = [
            Row::new("a", MONDAY + 60),
            Row::new("b", MONDAY + 119),
            Row::new("c", MONDAY + 120),
        ];
        futures::executor::block_on(async {
            store.insert_first_seen("c", &rows).await.unwrap();
            let r = Requirement::parse(&SEED.replace("600", "60")).unwrap();
            let counts = windowed_counts(&store, "c", &r, chrono_tz::UTC, MONDAY, MONDAY + 180)
                .await
                .unwrap();
            assert_eq!(
                counts,
                [
                    (MONDAY, 0),
                    (MONDAY + 60, 0),
                    (MONDAY + 120, 2),
                    (MONDAY + 180, 1)
                ]
            );
        });
    }
}
