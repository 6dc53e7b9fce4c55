//! Alerting in the command line: `once`/`run --alerts FILE` run an
//! [`AlertHandler`](dwmon_alert::AlertHandler) next to the stdout printer, `pause`/`unpause`
//! set the alert store's pause flag, and `status` shows the alert states.
//!
//! The alert states live in the `--store` file, in the tables of the same
//! [`SqliteStore`] that holds rows and checks (one connection, one migration chain), so one
//! file holds everything a restart needs.

use crate::cli::CycleArgs;
use crate::commands::OpenStore;
use crate::{App, Error, Result};
use dwmon_alert::handler::Reload;
use dwmon_alert::{AlertHandler, AlertStateStore, AlertsConfig, Channels};
use dwmon_core::LoadReport;
use dwmon_sqlite::SqliteStore;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tracing::{info, warn};

/// The alerts config of a cycle command: `--alerts FILE`, else the one given to
/// [`App::alerts`]; `None` = no alerting.
fn alerts_config(app: &App, args: &CycleArgs) -> Result<Option<(String, AlertsConfig)>> {
    if let Some(path) = &args.alerts {
        let config = AlertsConfig::load(path)?;
        return Ok(Some((path.display().to_string(), config)));
    }
    Ok(app
        .alerts
        .clone()
        .map(|config| ("alerts config".to_string(), config)))
}

/// The alert store for a command that writes it: the application's own, else the
/// `--store` file's (`opened`, the same store the command uses for checks), else — beside an
/// application's own [`Store`](dwmon_core::Store) — the SQLite store file `path`.
pub(crate) fn alert_store_for(
    app: &App,
    opened: &OpenStore,
    path: Option<&Path>,
    command: &str,
) -> Result<Arc<dyn AlertStateStore>> {
    if let Some(store) = app.alert_store.as_ref().or(opened.alerts.as_ref()) {
        return Ok(Arc::clone(store));
    }
    let path = path.ok_or_else(|| {
        Error::Usage(format!(
            "{command} needs --store FILE: alert states and pauses are kept in the store file"
        ))
    })?;
    Ok(Arc::new(SqliteStore::open(path)?))
}

/// The alert store for a status view, opened without writing: the application's own, else
/// the `--store` file's (`opened`), else the SQLite store file `path` if it exists; `None`
/// without any.
pub(crate) fn alert_store_read_only(
    app: &App,
    opened: &OpenStore,
    path: Option<&Path>,
) -> Result<Option<Arc<dyn AlertStateStore>>> {
    if let Some(store) = app.alert_store.as_ref().or(opened.alerts.as_ref()) {
        return Ok(Some(Arc::clone(store)));
    }
    match path {
        Some(path) if path.exists() => Ok(Some(Arc::new(SqliteStore::open_read_only(path)?))),
        _ => Ok(None),
    }
}

/// The alert handler of `once`/`run`, or `None` without `--alerts` (and without
/// [`App::alerts`]). Call after the dwmon store was opened (it creates the file).
///
/// When the command prints events to stdout and the config sets no `default_alert`, checkers
/// without an `"alert"` key are reported to the log (stderr) instead of as JSON lines on
/// stdout, so stdout keeps one kind of line.
pub(crate) fn alert_handler(
    app: &App,
    args: &CycleArgs,
    opened: &OpenStore,
) -> Result<Option<Arc<AlertHandler>>> {
    let Some((path, mut config)) = alerts_config(app, args)? else {
        return Ok(None);
    };
    if config.default_alert.is_none() && app.print_events {
        config.default_alert = Some(serde_json::json!({"log": true}));
    }
    // A configured URL that can never work is refused now, not retried forever later.
    let problems = config.url_problems();
    if !problems.is_empty() {
        return Err(crate::Error::Usage(format!(
            "alerts config {}: {}",
            path,
            problems.join("; ")
        )));
    }
    let store = alert_store_for(app, opened, args.store.as_deref(), "--alerts")?;
    let mut channels = Channels::from_config(&config)?;
    for (kind, notifier) in &app.alert_channels {
        channels = channels.with(*kind, Arc::clone(notifier));
    }
    // Channels the program brings itself decide their own addresses.
    let own: Vec<dwmon_alert::ChannelKind> = app.alert_channels.iter().map(|(k, _)| *k).collect();
    let checked = config.clone();
    let handler = AlertHandler::new(store, channels)
        .with_default_routes(config.default_routes(&path)?)
        .with_repeat_seconds(config.repeat_seconds())
        .with_target_check(move |target| {
            if own.contains(&target.channel) {
                Ok(())
            } else {
                checked.check_target(target)
            }
        });
    info!(config = %path, "alerting on");
    Ok(Some(Arc::new(handler)))
}

/// Checker name -> number of requirements, for [`AlertStateStore::prune`]. A checker file
/// that failed to load keeps all its states (it may come back as it was).
pub(crate) fn known_checkers(report: &LoadReport) -> BTreeMap<String, usize> {
    let mut known: BTreeMap<String, usize> = report
        .checkers
        .iter()
        .map(|c| (c.name.clone(), c.requirements.len()))
        .collect();
    for error in &report.errors {
        if let Some(stem) = Path::new(&error.file).file_stem() {
            known.insert(stem.to_string_lossy().into_owned(), usize::MAX);
        }
    }
    known
}

/// The requirement lines of a load, for [`AlertHandler::lines_loaded`].
pub(crate) fn reload_of(report: &LoadReport) -> Reload {
    Reload {
        lines: report
            .checkers
            .iter()
            .map(|c| {
                let texts = c.requirements.iter().map(|r| r.canonical()).collect();
                (c.name.clone(), texts)
            })
            .collect(),
        known: known_checkers(report),
    }
}

/// Moves the alert states to their lines' indices and forgets those of checkers and
/// requirement lines that no longer exist.
pub(crate) async fn reconcile(handler: &AlertHandler, report: &LoadReport) {
    handler.lines_loaded(reload_of(report));
    match handler.apply_reload().await {
        Ok((0, 0)) => {}
        Ok((moved, removed)) => info!(
            moved,
            removed, "alert states follow the requirement lines; removed lines forgotten"
        ),
        Err(e) => warn!(error = %e, "cannot reconcile alert states"),
    }
}

/// A wrapper for `run`'s checker loader: after each reload whose requirement lines differ
/// from the previous ones, hands them to the alert handler, which moves and prunes the
/// alert states before it judges the next event.
pub(crate) struct PruneOnReload {
    handler: Arc<AlertHandler>,
    last: Mutex<Option<Reload>>,
}

impl PruneOnReload {
    /// Reconciles `handler`'s states on changes.
    pub(crate) fn new(handler: Arc<AlertHandler>) -> Self {
        PruneOnReload {
            handler,
            last: Mutex::new(None),
        }
    }

    /// Called with each freshly loaded report.
    pub(crate) fn loaded(&self, report: &LoadReport) {
        let reload = reload_of(report);
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.as_ref() == Some(&reload) {
            return;
        }
        *last = Some(reload.clone());
        self.handler.lines_loaded(reload);
    }
}
