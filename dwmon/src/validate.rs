//! `dwmon check`: validates everything `once`/`run` would use, one line per finding.
//!
//! Checked: the config file, the checker files (an empty directory is a finding), the alerts
//! config, every checker's `"alert"` routing (its schema, and with an alerts config that each
//! channel and name is set up there), that every `__SOURCE__` is configured when sources are
//! given, and with `--connect` that each source answers a trivial query and the store opens.

use crate::args::{SourceSpec, SourceUrl};
use crate::cli::CheckArgs;
use crate::config::{Config, ConfigError};
use crate::sources::{add_source, Router};
use crate::{App, Error, Result};
use dwmon_alert::{AlertsConfig, RouteError, Routes, Target};
use dwmon_core::{Checker, FetchRequest, RowGetter, StoreView};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// A query every SQL source answers with no rows: the probe of `--connect`.
pub const PROBE_QUERY: &str =
    "SELECT 'probe' AS dwmon_unique_key, 0 AS dwmon_timestamp WHERE 1 = 0";

/// [`PROBE_QUERY`] for MySQL and MariaDB, whose older versions need `FROM DUAL` before a
/// `WHERE`.
pub const MYSQL_PROBE_QUERY: &str =
    "SELECT 'probe' AS dwmon_unique_key, 0 AS dwmon_timestamp FROM DUAL WHERE 1 = 0";

/// How long `--connect` waits for one source.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// What `check` found: problems, and what it checked (printed when there are no problems).
#[derive(Default)]
struct Findings {
    problems: Vec<String>,
    checked: Vec<String>,
}

/// `dwmon check`.
pub(crate) async fn check(
    app: &App,
    args: &CheckArgs,
    config: Option<std::result::Result<Config, ConfigError>>,
) -> Result<ExitCode> {
    let mut findings = Findings::default();
    match &config {
        Some(Err(e)) => findings.problems.push(e.to_string()),
        Some(Ok(config)) => findings
            .checked
            .push(format!("config {} OK", config.path.display())),
        None => {}
    }
    let checkers = match &args.checkers {
        Some(dir) => check_checkers(dir, &mut findings)?,
        None => {
            // A config file that failed to load may well have named the directory.
            if !matches!(config, Some(Err(_))) {
                findings.problems.push(
                    "no checker directory: pass --checkers DIR or set `checkers` in the \
                     --config file"
                        .into(),
                );
            }
            Vec::new()
        }
    };
    check_monitors(app, &checkers, &mut findings);
    check_alerts(app, args, &checkers, &mut findings);
    check_source_names(app, args, &checkers, &mut findings);
    #[cfg(feature = "http")]
    check_http_queries(args, &checkers, &mut findings);
    if args.connect {
        connect(app, args, &checkers, &mut findings).await;
    }
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    if findings.problems.is_empty() {
        for line in &findings.checked {
            let _ = writeln!(out, "{line}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    for line in &findings.problems {
        let _ = writeln!(out, "{line}");
    }
    Ok(ExitCode::from(1))
}

/// Loads the checker directory; an unreadable one is an operational error (exit 2), an
/// empty one and every invalid file are findings.
fn check_checkers(dir: &Path, findings: &mut Findings) -> Result<Vec<Checker>> {
    let report = dwmon_core::load_dir(dir).map_err(|source| Error::CheckerDir {
        path: dir.to_path_buf(),
        source,
    })?;
    // Validating nothing is a finding: the path or the file extension is usually wrong.
    if report.checkers.is_empty() && report.errors.is_empty() {
        findings.problems.push(format!(
            "{}: no *{} files (checker files are NAME{} directly in the directory)",
            dir.display(),
            dwmon_core::checker_file::EXTENSION,
            dwmon_core::checker_file::EXTENSION,
        ));
    }
    findings
        .problems
        .extend(report.errors.iter().map(ToString::to_string));
    // First, so that `N checkers OK` stays the first line.
    findings
        .checked
        .insert(0, format!("{} checkers OK", report.checkers.len()));
    Ok(report.checkers)
}

/// The program's monitors ([`App::monitor`]): declared rightly, each name once, reading
/// checkers of the directory.
fn check_monitors(app: &App, checkers: &[Checker], findings: &mut Findings) {
    if app.monitors.is_empty() {
        return;
    }
    let before = findings.problems.len();
    if let Err(e) = dwmon_core::monitor::validate_all(&app.monitors) {
        findings.problems.push(e.to_string());
    }
    for monitor in &app.monitors {
        for input in monitor.inputs() {
            if !checkers.iter().any(|c| c.name == input.checker) {
                findings.problems.push(
                    dwmon_core::monitor::MonitorError::UnknownInput {
                        monitor: monitor.name().to_string(),
                        checker: input.checker.clone(),
                        hint: " (no such checker file in the checker directory)".into(),
                    }
                    .to_string(),
                );
            }
        }
    }
    if findings.problems.len() == before {
        findings
            .checked
            .push(format!("{} monitors OK", app.monitors.len()));
    }
}

/// A checker file's name and text, for positions in messages.
struct CheckerText {
    file: String,
    text: String,
}

impl CheckerText {
    fn of(checker: &Checker) -> Self {
        CheckerText {
            file: format!("{}{}", checker.name, dwmon_core::checker_file::EXTENSION),
            text: checker
                .path
                .as_deref()
                .and_then(|path| std::fs::read_to_string(path).ok())
                .unwrap_or_default(),
        }
    }

    /// Byte offset just after the `marker` section line (`__EXTRA__`, `__SOURCE__`).
    fn section(&self, marker: &str) -> Option<usize> {
        let mut offset = 0;
        for line in self.text.split_inclusive('\n') {
            offset += line.len();
            if line.trim() == marker {
                return Some(offset);
            }
        }
        None
    }

    /// `FILE:LINE:COL` of `line`, `column` of the (trimmed) `__QUERY__` text `query`.
    #[cfg(feature = "http")]
    fn query_position(&self, query: &str, line: usize, column: usize) -> String {
        let first = query.lines().next().unwrap_or_default();
        let start = self.section("__QUERY__").and_then(|from| {
            let found = self.text.get(from..)?.find(first)?;
            Some(from + found)
        });
        let Some(start) = start else {
            return self.file.clone();
        };
        let before = self.text.get(..start).unwrap_or_default();
        let first_line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let indent = before.get(line_start..).map_or(0, |s| s.chars().count());
        // Only the query's first line lost its leading blanks to trimming.
        let column = if line == 1 { indent + column } else { column };
        format!("{}:{}:{column}", self.file, first_line + line - 1)
    }

    /// `FILE:LINE:COL` of the first `needle` at or after `from`, else of `from`, else `FILE`.
    fn position(&self, from: Option<usize>, needle: Option<&str>) -> String {
        let Some(from) = from else {
            return self.file.clone();
        };
        let found = needle
            .and_then(|needle| self.text.get(from..)?.find(needle).map(|i| from + i))
            .unwrap_or(from);
        let before = self.text.get(..found).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
        format!("{}:{line}:{column}", self.file)
    }
}

/// The alerts config (`--alerts`, else the application's), each checker's routing, and the
/// default routing.
fn check_alerts(app: &App, args: &CheckArgs, checkers: &[Checker], findings: &mut Findings) {
    let config = match &args.alerts {
        Some(path) => match AlertsConfig::load(path) {
            Ok(config) => Some((path.display().to_string(), config)),
            Err(e) => {
                findings.problems.push(e.to_string());
                None
            }
        },
        None => app
            .alerts
            .clone()
            .map(|config| ("alerts config".to_string(), config)),
    };
    if let Some((path, config)) = &config {
        let before = findings.problems.len();
        if let Err(e) = dwmon_alert::Channels::from_config(config) {
            findings.problems.push(format!("{path}: {e}"));
        }
        for problem in config.url_problems() {
            findings.problems.push(format!("{path}: {problem}"));
        }
        // AlertsConfig::load checked default_alert's schema; check its targets here.
        if let Ok(routes) = config.default_routes(path) {
            for target in &routes.targets {
                if let Some(message) = target_problem(app, config, target) {
                    findings
                        .problems
                        .push(format!("{path}: default_alert: {message}"));
                }
            }
        }
        if findings.problems.len() == before {
            findings.checked.push(format!("alerts config {path} OK"));
        }
    }
    let mut routed = 0;
    for checker in checkers {
        let text = CheckerText::of(checker);
        let extra = text.section("__EXTRA__");
        let alert = text.position(extra, Some("\"alert\""));
        match Routes::from_extra(&checker.extra) {
            Ok(None) => {}
            Err(e) => {
                let key = match &e {
                    RouteError::UnknownKey { key } | RouteError::Invalid { key, .. } => {
                        format!("\"{key}\"")
                    }
                    _ => "\"alert\"".to_string(),
                };
                let at = text.position(
                    extra.and_then(|from| {
                        text.text
                            .get(from..)?
                            .find("\"alert\"")
                            .map(|i| from + i + 7)
                    }),
                    Some(&key),
                );
                findings.problems.push(format!("{at}: {e}"));
            }
            Ok(Some(routes)) => {
                routed += 1;
                let Some((_, config)) = &config else {
                    continue;
                };
                for target in &routes.targets {
                    if let Some(message) = target_problem(app, config, target) {
                        let at = if alert.contains(':') {
                            text.position(
                                extra.and_then(|from| {
                                    text.text.get(from..)?.find("\"alert\"").map(|i| from + i)
                                }),
                                Some(&format!("\"{}\"", target.address)),
                            )
                        } else {
                            alert.clone()
                        };
                        findings
                            .problems
                            .push(format!("{at}: __EXTRA__ \"alert\": {message}"));
                    }
                }
            }
        }
    }
    if routed > 0 && config.is_some() {
        findings.checked.push(format!(
            "alert routing of {routed} checkers OK against the alerts config"
        ));
    }
}

/// Why `target` cannot be delivered, unless the application brings its own notifier for
/// its channel (then any address may be meaningful to it).
fn target_problem(app: &App, config: &AlertsConfig, target: &Target) -> Option<String> {
    if app.alert_channels.iter().any(|(k, _)| *k == target.channel) {
        return None;
    }
    config.check_target(target).err()
}

/// Every checker read by an HTTP source (`--source NAME=http`) has a valid request spec.
#[cfg(feature = "http")]
fn check_http_queries(args: &CheckArgs, checkers: &[Checker], findings: &mut Findings) {
    let http: Vec<&str> = args
        .sources
        .iter()
        .filter(|spec| matches!(spec.url, SourceUrl::Http(_)))
        .map(|spec| spec.name.as_str())
        .collect();
    for checker in checkers
        .iter()
        .filter(|c| http.contains(&c.source.as_str()))
    {
        if let Err(e) = dwmon_http_source::check_query(&checker.query) {
            let at = CheckerText::of(checker).query_position(&checker.query, e.line, e.column);
            findings.problems.push(format!(
                "{at}: __QUERY__ (HTTP request spec): {}",
                e.message
            ));
        }
    }
}

/// With sources given (and no application RowGetter to fall back to), every `__SOURCE__`
/// must be one of them.
fn check_source_names(app: &App, args: &CheckArgs, checkers: &[Checker], findings: &mut Findings) {
    for (i, spec) in args.sources.iter().enumerate() {
        if args.sources[..i].iter().any(|s| s.name == spec.name) {
            findings.problems.push(format!(
                "--source {} is given more than once; each source name needs exactly one URL",
                spec.name
            ));
        }
    }
    if args.sources.is_empty() || app.row_getter.is_some() {
        return;
    }
    let names: Vec<&str> = args.sources.iter().map(|s| s.name.as_str()).collect();
    for checker in checkers {
        if checker.is_push() || names.contains(&checker.source.as_str()) {
            continue;
        }
        let text = CheckerText::of(checker);
        let at = match text.section("__SOURCE__") {
            Some(from) => text.position(Some(from), Some(&checker.source)),
            None => text.file.clone(),
        };
        findings.problems.push(format!(
            "{at}: __SOURCE__ {:?} is not a configured source (configured: {})",
            checker.source,
            names.join(", ")
        ));
    }
}

/// `--connect`: each source answers, the store opens.
async fn connect(app: &App, args: &CheckArgs, checkers: &[Checker], findings: &mut Findings) {
    if args.sources.is_empty() && app.row_getter.is_none() {
        findings.problems.push(
            "--connect: no source configured (pass --source NAME=URL or set [sources] in the \
             --config file)"
                .into(),
        );
    }
    for spec in &args.sources {
        match probe(spec, checkers).await {
            Ok(what) => findings
                .checked
                .push(format!("source {}: {what}", spec.name)),
            // Source errors usually name the source already.
            Err(message) if message.contains(&format!("{:?}", spec.name)) => {
                findings.problems.push(message)
            }
            Err(message) => findings
                .problems
                .push(format!("source {}: {message}", spec.name)),
        }
    }
    match (&app.store, &args.store) {
        (Some(store), _) => match store.status().await {
            Ok(_) => findings.checked.push("store: answers".into()),
            Err(e) => findings.problems.push(format!("store: {e}")),
        },
        (None, Some(path)) if crate::commands::postgres_store_url(Some(path)).is_some() => {
            let shown = crate::commands::shown_store(path);
            match postgres_store_problem(app, path).await {
                Ok(what) => findings.checked.push(format!("store {shown}: {what}")),
                Err(message) => findings.problems.push(format!("store {shown}: {message}")),
            }
        }
        (None, Some(path)) => match store_problem(path) {
            Ok(what) => findings
                .checked
                .push(format!("store {}: {what}", path.display())),
            Err(message) => findings
                .problems
                .push(format!("store {}: {message}", path.display())),
        },
        (None, None) => findings.problems.push(
            "--connect: no store (pass --store FILE or set `store` in the --config file)".into(),
        ),
    }
}

/// Asks one source for rows: SQL sources answer [`PROBE_QUERY`]; command sources are not
/// run; other kinds run the query of the first checker that reads them.
async fn probe(spec: &SourceSpec, checkers: &[Checker]) -> std::result::Result<String, String> {
    if let SourceUrl::Command(_) = &spec.url {
        // Probing would run the programs checker files name: only `once`/`run` do that,
        // and only when allowed.
        return Ok("not probed (a command source runs its checkers' programs)".to_string());
    }
    let router = add_source(Router::new(), spec).map_err(|e| e.to_string())?;
    let extra = serde_json::json!({});
    #[allow(unreachable_patterns)] // other source kinds may be added
    let (query, what) = match &spec.url {
        SourceUrl::Sqlite(_) | SourceUrl::Postgres(_) => (PROBE_QUERY, "answers".to_string()),
        SourceUrl::Mysql(_) => (MYSQL_PROBE_QUERY, "answers".to_string()),
        _ => match checkers.iter().find(|c| c.source == spec.name) {
            Some(checker) => (
                checker.query.as_str(),
                format!("answers the query of {}", checker.name),
            ),
            None => return Ok("not probed (no checker reads it)".to_string()),
        },
    };
    let request = FetchRequest {
        checker: "dwmon-check",
        query,
        source: &spec.name,
        extra: &extra,
    };
    let result = tokio::time::timeout(PROBE_TIMEOUT, router.get_rows(&request)).await;
    match result {
        Err(_) => Err(format!(
            "no answer within {} seconds",
            PROBE_TIMEOUT.as_secs()
        )),
        Ok(Err(e)) => Err(crate::status::one_line(&e.to_string())),
        Ok(Ok(_)) => Ok(what),
    }
}

/// A PostgreSQL store must connect and answer a status read; a schema without a store yet is
/// fine (`once`/`run` create it; `check` writes nothing).
async fn postgres_store_problem(app: &App, path: &Path) -> std::result::Result<String, String> {
    let opened = crate::commands::open_store(app, Some(path), true).map_err(|e| e.to_string())?;
    #[cfg(feature = "postgres-store")]
    if let Some(store) = &opened.postgres {
        let (schema, version) = store.stored_version().await.map_err(|e| e.to_string())?;
        if version.is_none() {
            return Ok(format!(
                "answers; no dwmon store in schema {schema} yet (once/run create it)"
            ));
        }
    }
    opened.ready().await.map_err(|e| e.to_string())?;
    opened
        .store
        .status()
        .await
        .map(|_| "answers".to_string())
        .map_err(|e| e.to_string())
}

/// An existing store must open as a dwmon store; a missing one needs an existing directory
/// (`once`/`run` create the file).
fn store_problem(path: &Path) -> std::result::Result<String, String> {
    if path.exists() {
        return dwmon_sqlite::SqliteStore::open_read_only(path)
            .map(|_| "opens".to_string())
            .map_err(|e| e.to_string());
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if dir.is_dir() {
        Ok("does not exist yet (once/run create it)".to_string())
    } else {
        Err(format!(
            "directory {} does not exist, so the store cannot be created",
            dir.display()
        ))
    }
}
