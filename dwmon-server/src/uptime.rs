//! Uptime over 24 h, 7 d and 30 d: the share of GOOD checks among GOOD and BAD ones (ERROR
//! and MISSED minutes have no count to judge and are left out).
//!
//! A checker's page counts its own checks on each request (one aggregate query). The
//! overview shows every checker, and 30 days of per-minute checks of 1,000 checkers are 43
//! million records: it shows figures computed in the background instead, at most
//! [`REFRESH_SECONDS`] old, counted with [`Store::status_histories`] a hundred checkers a
//! read; the first view after the start shows none until they are ready.
//!
//! [`Store::status_histories`]: dwmon_core::StoreView::status_histories

use crate::view::{CheckerView, Overview};
use crate::ServerState;
use dwmon_core::Status;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The windows, in seconds: 24 h, 7 d, 30 d.
pub const WINDOWS: [i64; 3] = [86_400, 7 * 86_400, 30 * 86_400];

/// The overview's figures are recomputed when older than this.
pub const REFRESH_SECONDS: i64 = 300;

/// Checkers counted per store read by the background refresh.
const CHUNK: usize = 100;

/// What the overview's footer says about the figures.
pub const NOTE: &str = " (the overview's figures are refreshed every 5 minutes)";

/// Uptime per requirement line: a percentage per window of [`WINDOWS`] (`None`: no GOOD or
/// BAD check in it).
pub type Figures = [Option<f64>; 3];

/// Figures by `(checker, requirement_index)`.
pub type Table = HashMap<(String, usize), Figures>;

/// The overview's figures and when they were computed.
#[derive(Debug, Default)]
pub struct Cache {
    figures: Mutex<Option<(i64, Arc<Table>)>>,
    refreshing: AtomicBool,
}

/// The figures of counts `(requirement_index, status, counts per window)`.
fn figures(counts: &[(usize, Status, Vec<u64>)]) -> HashMap<usize, Figures> {
    let mut tally: HashMap<usize, [(u64, u64); 3]> = HashMap::new();
    for (index, status, per_window) in counts {
        let entry = tally.entry(*index).or_default();
        for (slot, n) in entry.iter_mut().zip(per_window) {
            match status {
                Status::Good => {
                    slot.0 += n;
                    slot.1 += n;
                }
                Status::Bad => slot.1 += n,
                Status::Error | Status::Missed => {}
            }
        }
    }
    tally
        .into_iter()
        .map(|(index, windows)| {
            let mut out = [None; 3];
            for (slot, (good, judged)) in out.iter_mut().zip(windows) {
                if judged > 0 {
                    *slot = Some(100.0 * good as f64 / judged as f64);
                }
            }
            (index, out)
        })
        .collect()
}

fn since(now: i64) -> Vec<i64> {
    WINDOWS.iter().map(|w| now.saturating_sub(*w)).collect()
}

/// The figures of one checker at `now`, counted now.
pub async fn one(state: &ServerState, c: &CheckerView, now: i64) -> HashMap<usize, Figures> {
    match state.store.status_counts(&c.name, &since(now)).await {
        Ok(counts) => figures(&counts),
        Err(e) => {
            tracing::warn!(checker = %c.name, error = %e, "cannot count the uptime");
            HashMap::new()
        }
    }
}

/// The figures of the checkers `names` at `now`, counted now: a few reads of many checkers
/// each, not one per checker (each read is one store transaction, and between them the
/// page's own reads get their turn). A read that fails is logged and its checkers have no
/// figures.
pub async fn count(state: &ServerState, names: &[String], now: i64) -> Table {
    let mut all = HashMap::new();
    let windows = since(now);
    for chunk in names.chunks(CHUNK) {
        match state.store.status_histories(chunk, 0, &windows).await {
            Ok(histories) => {
                for history in histories {
                    for (index, f) in figures(&history.counts) {
                        all.insert((history.checker.clone(), index), f);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot count the uptime"),
        }
    }
    all
}

/// The overview's figures: the cached ones, and a background refresh when they are missing
/// or older than [`REFRESH_SECONDS`].
pub async fn overview(state: &ServerState, overview: &Overview) -> Arc<Table> {
    let now = overview.now;
    let cached = state
        .uptime
        .figures
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let fresh = cached
        .as_ref()
        .is_some_and(|(at, _)| now.saturating_sub(*at) < REFRESH_SECONDS && *at <= now);
    if !fresh && !state.uptime.refreshing.swap(true, Ordering::SeqCst) {
        let state = state.clone();
        let names: Vec<String> = overview.checkers.iter().map(|c| c.name.clone()).collect();
        tokio::spawn(async move {
            let all = count(&state, &names, now).await;
            *state
                .uptime
                .figures
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some((now, Arc::new(all)));
            state.uptime.refreshing.store(false, Ordering::SeqCst);
        });
    }
    cached.map(|(_, f)| f).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_is_good_among_judged_checks_per_window() {
        let counts = vec![
            (0, Status::Good, vec![3, 9, 99]),
            (0, Status::Bad, vec![1, 1, 1]),
            (0, Status::Missed, vec![5, 5, 5]),
            (1, Status::Error, vec![2, 2, 2]),
        ];
        let f = figures(&counts);
        assert_eq!(f[&0], [Some(75.0), Some(90.0), Some(99.0)]);
        assert_eq!(f[&1], [None, None, None], "no GOOD or BAD check: no figure");
    }
}
