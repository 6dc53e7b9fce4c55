//! What the API, the status page and the badges show of each checker, built once per request
//! from the store's status view, the alert states and the runner's checker set.

use crate::ServerState;
use dwmon_alert::{AlertOverview, AlertPhase, Pause};
use dwmon_core::store::RequirementStatus;
use dwmon_core::{Checker, CheckerStatus, Status, StoreError};
use std::collections::HashMap;
use std::sync::Arc;

/// A checker's state at a glance, most urgent first when several apply: `PAUSED` (a person
/// said so), `FIRING` (an alert is open), `ERROR` (its source fails), `BAD`, `MISSED`, `GOOD`,
/// `PENDING` (never checked yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum State {
    /// Paused with `dwmon pause` or the page's button.
    Paused,
    /// An alert of one of its requirements is FIRING.
    Firing,
    /// Its source failed in the latest cycle that fetched it.
    Error,
    /// The last check of a requirement is BAD.
    Bad,
    /// The last check of a requirement was MISSED (left the horizon unchecked).
    Missed,
    /// Every requirement's last check is GOOD.
    Good,
    /// Not checked yet.
    Pending,
}

impl State {
    /// `GOOD`, `BAD`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            State::Paused => "PAUSED",
            State::Firing => "FIRING",
            State::Error => "ERROR",
            State::Bad => "BAD",
            State::Missed => "MISSED",
            State::Good => "GOOD",
            State::Pending => "PENDING",
        }
    }

    fn of_status(status: Status) -> State {
        match status {
            Status::Good => State::Good,
            Status::Bad => State::Bad,
            Status::Error => State::Error,
            Status::Missed => State::Missed,
        }
    }
}

/// One requirement line.
#[derive(Debug, Clone)]
pub struct RequirementView {
    /// Its index.
    pub index: usize,
    /// The line in canonical text, when the checker is loaded.
    pub requirement: Option<String>,
    /// `MINNUM` and `MAXNUM`, when the checker is loaded.
    pub bounds: Option<(u64, u64)>,
    /// The last check.
    pub last: Option<RequirementStatus>,
    /// Its alert is FIRING.
    pub firing: bool,
    /// Its next due minute after `now` (within 8 days), when the checker is loaded.
    pub next_due: Option<i64>,
}

/// One checker (or monitor).
#[derive(Debug, Clone)]
pub struct CheckerView {
    /// Its name.
    pub name: String,
    /// Its definition, when the runner has it loaded.
    pub checker: Option<Checker>,
    /// The zone its minutes are shown in.
    pub zone: chrono_tz::Tz,
    /// What the store knows (absent: never checked and nothing stored).
    pub status: Option<CheckerStatus>,
    /// Its requirement lines, by index.
    pub requirements: Vec<RequirementView>,
    /// Its pause, when active now.
    pub pause: Option<Pause>,
    /// Its source's latest fetch failed (alert state), or its last error is newer than its
    /// last check.
    pub failing: bool,
    /// The state at a glance.
    pub state: State,
}

impl CheckerView {
    /// The largest checked minute.
    pub fn last_minute(&self) -> Option<i64> {
        self.status.as_ref().and_then(|s| s.last_minute)
    }

    /// The earliest next due minute of its requirements.
    pub fn next_due(&self) -> Option<i64> {
        self.requirements.iter().filter_map(|r| r.next_due).min()
    }

    /// The last error `(minute, text)`.
    pub fn last_error(&self) -> Option<&(i64, String)> {
        self.status.as_ref().and_then(|s| s.last_error.as_ref())
    }
}

/// Every checker, by name, at `now`.
#[derive(Debug, Clone)]
pub struct Overview {
    /// The runner clock now.
    pub now: i64,
    /// The checkers, by name.
    pub checkers: Vec<CheckerView>,
}

impl Overview {
    /// The checker named `name`.
    pub fn get(&self, name: &str) -> Option<&CheckerView> {
        self.checkers
            .binary_search_by(|c| c.name.as_str().cmp(name))
            .ok()
            .and_then(|i| self.checkers.get(i))
    }

    /// The state of all checkers together: the most urgent one's (GOOD when there are none).
    pub fn state(&self) -> State {
        let order = [
            State::Firing,
            State::Error,
            State::Bad,
            State::Missed,
            State::Pending,
            State::Paused,
        ];
        order
            .into_iter()
            .find(|s| self.checkers.iter().any(|c| c.state == *s))
            .unwrap_or(State::Good)
    }
}

/// The runner clock now: the stats' clock, else the wall clock.
pub fn now(state: &ServerState) -> i64 {
    state
        .stats
        .as_ref()
        .map_or_else(|| chrono::Utc::now().timestamp(), |s| s.now())
}

/// Reads the store's status view and the alert states and builds the [`Overview`] at the
/// runner's `now`. An unreadable alert store is logged and shown as no alert states.
///
/// # Errors
/// When the store cannot be read.
pub async fn load(state: &ServerState) -> Result<Overview, StoreError> {
    Ok(load_with_alerts(state).await?.0)
}

/// As [`load`], and also hands back the alert states it read (`None` without an alert
/// store, `Some(Err)` when they could not be read), for a caller that shows them in full.
///
/// # Errors
/// When the store cannot be read.
pub async fn load_with_alerts(
    state: &ServerState,
) -> Result<(Overview, Option<Result<AlertOverview, String>>), StoreError> {
    let now = now(state);
    let statuses = state.store.status().await?;
    let alerts = read_alerts(state).await;
    let (checkers, zone) = match &state.stats {
        Some(stats) => stats.checker_set(),
        None => (Arc::from(Vec::new()), chrono_tz::UTC),
    };
    let shown = alerts.as_ref().and_then(|a| a.as_ref().ok());
    let overview = build(now, &checkers, zone, statuses, shown);
    Ok((overview, alerts))
}

/// The view of the checker named `name` alone (`None`: no such checker), at the runner's
/// `now`: reads only that checker's status from the store, where [`load`] reads every
/// checker's. Shown checkers are the same as in [`load`]'s overview.
///
/// # Errors
/// When the store cannot be read.
pub async fn load_one(state: &ServerState, name: &str) -> Result<Option<CheckerView>, StoreError> {
    Ok(load_one_with_alerts(state, name).await?.0)
}

/// As [`load_one`], and also hands back the alert states it read, as
/// [`load_with_alerts`] does.
///
/// # Errors
/// When the store cannot be read.
pub async fn load_one_with_alerts(
    state: &ServerState,
    name: &str,
) -> Result<(Option<CheckerView>, Option<Result<AlertOverview, String>>), StoreError> {
    let now = now(state);
    let status = state.store.checker_status(name).await?;
    let alerts = read_alerts(state).await;
    let (checkers, zone) = match &state.stats {
        Some(stats) => stats.checker_set(),
        None => (Arc::from(Vec::new()), chrono_tz::UTC),
    };
    let shown = alerts.as_ref().and_then(|a| a.as_ref().ok());
    let loaded = checkers.iter().find(|c| c.name == name);
    let view = match (loaded, status) {
        (Some(checker), status) => Some(view(
            now,
            checker.name.clone(),
            Some(checker.clone()),
            checker.zone(zone),
            status,
            shown,
        )),
        (None, Some(status))
            if checkers.is_empty() || dwmon_core::monitor::is_monitor_record(name) =>
        {
            Some(view(now, name.to_string(), None, zone, Some(status), shown))
        }
        (None, _) => None,
    };
    Ok((view, alerts))
}

async fn read_alerts(state: &ServerState) -> Option<Result<AlertOverview, String>> {
    let alerts = match &state.alerts {
        Some(alerts) => Some(alerts.overview().await.map_err(|e| e.to_string())),
        None => None,
    };
    if let Some(Err(e)) = &alerts {
        tracing::warn!(error = %e, "cannot read the alert states");
    }
    alerts
}

/// Builds the [`Overview`]: the loaded checkers and, when none are loaded (a server without
/// runner), every checker the store knows; monitors (`monitor:NAME`) always from the store.
pub fn build(
    now: i64,
    checkers: &[Checker],
    default_zone: chrono_tz::Tz,
    statuses: Vec<CheckerStatus>,
    alerts: Option<&AlertOverview>,
) -> Overview {
    let mut by_name: HashMap<String, CheckerStatus> = statuses
        .into_iter()
        .map(|s| (s.checker.clone(), s))
        .collect();
    let mut views: Vec<CheckerView> = Vec::with_capacity(checkers.len().max(by_name.len()));
    for checker in checkers {
        let status = by_name.remove(&checker.name);
        views.push(view(
            now,
            checker.name.clone(),
            Some(checker.clone()),
            checker.zone(default_zone),
            status,
            alerts,
        ));
    }
    for (name, status) in by_name {
        if checkers.is_empty() || dwmon_core::monitor::is_monitor_record(&name) {
            views.push(view(now, name, None, default_zone, Some(status), alerts));
        }
    }
    views.sort_by(|a, b| a.name.cmp(&b.name));
    views.dedup_by(|a, b| a.name == b.name);
    host_templates(&mut views);
    Overview {
        now,
        checkers: views,
    }
}

/// A per-host checker is never checked itself: its state is the most urgent of its hosts'
/// sub-checks (`NAME@HOST`), GOOD while it has none (no host has announced itself, so none
/// is missing).
fn host_templates(views: &mut [CheckerView]) {
    let urgency = |s: State| match s {
        State::Firing => 0,
        State::Error => 1,
        State::Bad => 2,
        State::Missed => 3,
        State::Pending => 4,
        State::Paused => 5,
        State::Good => 6,
    };
    let states: Vec<(String, State)> = views
        .iter()
        .filter_map(|v| {
            v.checker
                .as_ref()?
                .host()
                .map(|(t, _)| (t.to_string(), v.state))
        })
        .collect();
    for view in views.iter_mut() {
        if view.checker.as_ref().is_some_and(Checker::per_host) && view.pause.is_none() {
            view.state = states
                .iter()
                .filter(|(t, _)| *t == view.name)
                .map(|(_, s)| *s)
                .min_by_key(|s| urgency(*s))
                .unwrap_or(State::Good);
        }
    }
}

fn view(
    now: i64,
    name: String,
    checker: Option<Checker>,
    zone: chrono_tz::Tz,
    status: Option<CheckerStatus>,
    alerts: Option<&AlertOverview>,
) -> CheckerView {
    let firing = |index: usize| {
        alerts.is_some_and(|a| {
            a.alerts.iter().any(|e| {
                e.checker == name
                    && e.requirement_index == index
                    && e.state.phase == AlertPhase::Firing
            })
        })
    };
    let last_of = |index: usize| {
        status.as_ref().and_then(|s| {
            s.requirements
                .iter()
                .find(|r| r.requirement_index == index)
                .cloned()
        })
    };
    let requirements: Vec<RequirementView> = match &checker {
        Some(checker) => checker
            .requirements
            .iter()
            .enumerate()
            .map(|(index, r)| RequirementView {
                index,
                requirement: Some(r.canonical()),
                bounds: Some((r.min, r.max)),
                last: last_of(index),
                firing: firing(index),
                next_due: dwmon_core::due_minutes(
                    &r.schedule,
                    zone,
                    dwmon_core::minute_floor(now) + dwmon_core::MINUTE,
                    now.saturating_add(8 * 86_400),
                )
                .next(),
            })
            .collect(),
        None => status
            .iter()
            .flat_map(|s| s.requirements.iter())
            .map(|r| RequirementView {
                index: r.requirement_index,
                requirement: None,
                bounds: None,
                last: Some(r.clone()),
                firing: firing(r.requirement_index),
                next_due: None,
            })
            .collect(),
    };
    let pause = alerts.and_then(|a| {
        a.pauses
            .iter()
            .find(|(c, p)| *c == name && p.is_active(now))
            .map(|(_, p)| p.clone())
    });
    let source_failing =
        alerts.is_some_and(|a| a.sources.iter().any(|(c, s)| *c == name && s.failing));
    let error_after_check = status
        .as_ref()
        .is_some_and(|s| match (&s.last_error, s.last_minute) {
            (Some((minute, _)), Some(last)) => *minute > last,
            (Some(_), None) => true,
            _ => false,
        });
    let failing = source_failing || error_after_check;
    let worst = requirements
        .iter()
        .filter_map(|r| r.last.as_ref().map(|l| State::of_status(l.status)))
        .min_by_key(|s| match s {
            State::Error => 0,
            State::Bad => 1,
            State::Missed => 2,
            _ => 3,
        });
    let state = if pause.is_some() {
        State::Paused
    } else if requirements.iter().any(|r| r.firing) {
        State::Firing
    } else if failing {
        State::Error
    } else {
        worst.unwrap_or(State::Pending)
    };
    CheckerView {
        name,
        checker,
        zone,
        status,
        requirements,
        pause,
        failing,
        state,
    }
}
