//! Steps 1-2 of a cycle: how far each requirement has been judged, the candidate minutes,
//! the chunk of a long catch-up, and the minutes that left the horizon (`MISSED`).

use crate::checker_file::Checker;
use crate::{minute_floor, schedule, MINUTE};
use chrono_tz::Tz;
use tracing::warn;

/// The minute each requirement of `checker` has been judged up to, by index (`None` on a
/// checker's first cycle, when `last` is `None`), from the checker's last checked minute
/// `last` and each requirement's own (`own`, from [`Store::last_checked_minutes`](crate::Store::last_checked_minutes)):
/// `last_r = max(own_r, last - D_r)` with `D_r` the requirement's `DELAYSECONDS` in whole
/// minutes.
///
/// Without delays this is `last` for every requirement (an own minute is never after it),
/// as without the option. With delays, requirements are judged up to different minutes: one with
/// `DELAYSECONDS300` at the cycle of 10:10 judges up to 10:05 while one without judges up
/// to 10:10, so each continues from its own last check. `last - D_r` is a floor that never
/// skips a minute: the cycle that recorded `last` ran at a minute `>= last`, so it judged
/// every requirement `r` up to at least `last - D_r`. It starts a requirement without a
/// check of its own (added to the checker, or not due at the checker's first cycle) where
/// the checker is, as a requirement added to a checker always did.
pub fn requirement_progress(
    checker: &Checker,
    last: Option<i64>,
    own: &[(usize, i64)],
) -> Vec<Option<i64>> {
    checker
        .requirements
        .iter()
        .enumerate()
        .map(|(index, requirement)| {
            let last = last?;
            let floor = requirement.judged_up_to(last);
            let own = own
                .iter()
                .filter(|(i, _)| *i == index)
                .map(|(_, m)| *m)
                .max();
            Some(own.map_or(floor, |own| own.max(floor)))
        })
        .collect()
}

/// Step 2 of a cycle (README "How a cycle works"): the candidate `(minute, requirement_index)` pairs of `checker` for the cycle
/// minute `minute`, ascending, given each requirement's progress (from
/// [`requirement_progress`]; a missing or `None` entry means a first cycle). Requirement `r`
/// judges minutes up to [`Requirement::judged_up_to`]`(minute)`, i.e. `minute` less its
/// `DELAYSECONDS`.
///
/// [`Requirement::judged_up_to`]: crate::Requirement::judged_up_to
pub fn candidates(
    checker: &Checker,
    zone: Tz,
    minute: i64,
    progress: &[Option<i64>],
) -> Vec<(i64, usize)> {
    let mut out = Vec::new();
    for (index, requirement) in checker.requirements.iter().enumerate() {
        let up_to = requirement.judged_up_to(minute);
        let from = match progress.get(index).copied().flatten() {
            None => up_to,
            Some(last) => {
                let horizon = requirement.horizon_minutes();
                let earliest =
                    up_to.saturating_sub(horizon.saturating_sub(1).saturating_mul(MINUTE));
                earliest.max(minute_floor(last).saturating_add(MINUTE))
            }
        };
        if from > up_to {
            continue;
        }
        out.extend(
            schedule::due_minutes(&requirement.schedule, zone, from, up_to).map(|m| (m, index)),
        );
    }
    out.sort_unstable();
    out
}

/// Keeps the oldest `limit` candidates (sorted by minute), extended to the end of the last
/// minute kept, so no requirement due at that minute waits for a later cycle while another one
/// moves the checker's last checked minute past it.
pub fn oldest_chunk(candidates: &mut Vec<(i64, usize)>, limit: usize) {
    let limit = limit.max(1);
    if candidates.len() <= limit {
        return;
    }
    let last_minute = candidates[limit - 1].0;
    let end = candidates[limit..]
        .iter()
        .position(|&(m, _)| m != last_minute)
        .map_or(candidates.len(), |i| limit + i);
    candidates.truncate(end);
}

/// At most this many `MISSED` records per checker and cycle (the newest): a year-long gap of
/// an every-minute checker would otherwise make half a million records in one cycle.
pub const MAX_MISSED_PER_CYCLE: usize = 10_000;

/// The due `(minute, requirement_index)` pairs that have left the horizon unchecked: after
/// the requirement's last checked minute (its entry of `progress`, see
/// [`requirement_progress`]) and before its oldest candidate minute, ascending (at most the
/// newest [`MAX_MISSED_PER_CYCLE`]). Empty on a first cycle.
pub fn missed_minutes(
    checker: &Checker,
    zone: Tz,
    minute: i64,
    progress: &[Option<i64>],
) -> Vec<(i64, usize)> {
    let mut out = Vec::new();
    for (index, requirement) in checker.requirements.iter().enumerate() {
        let Some(last) = progress.get(index).copied().flatten() else {
            continue;
        };
        let horizon = requirement.horizon_minutes();
        let earliest = requirement
            .judged_up_to(minute)
            .saturating_sub(horizon.saturating_sub(1).saturating_mul(MINUTE));
        let from = minute_floor(last).saturating_add(MINUTE);
        let to = earliest.saturating_sub(MINUTE);
        if from > to {
            continue;
        }
        // Keep only the newest, so a gap of years costs no memory.
        let mut newest = std::collections::VecDeque::with_capacity(MAX_MISSED_PER_CYCLE);
        let mut skipped: u64 = 0;
        for m in schedule::due_minutes(&requirement.schedule, zone, from, to) {
            if newest.len() == MAX_MISSED_PER_CYCLE {
                newest.pop_front();
                skipped += 1;
            }
            newest.push_back(m);
        }
        if skipped > 0 {
            warn!(checker = %checker.name, requirement = index, skipped,
                "more due minutes left the horizon unchecked than are recorded as MISSED");
        }
        out.extend(newest.into_iter().map(|m| (m, index)));
    }
    out.sort_unstable();
    let excess = out.len().saturating_sub(MAX_MISSED_PER_CYCLE);
    out.drain(..excess);
    out
}
