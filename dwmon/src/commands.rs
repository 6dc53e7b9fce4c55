//! The bodies of the subcommands.

use crate::alerts;
use crate::args::{local_rfc3339, SourceSpec, SourceUrl};
use crate::cli::{
    CycleArgs, DoctorArgs, ForgetArgs, HistogramArgs, OnceArgs, PauseArgs, RunArgs, ScheduleArgs,
    ServeArgs, StatusArgs, UnpauseArgs,
};
use crate::clock::SimClock;
use crate::histogram::Histogram;
use crate::printer::{Format, PrintingHandler};
use crate::sources::{add_command_source, add_source_pooled, Router};
use crate::{App, Error, Result};
use dwmon_alert::{AlertHandler, AlertOverview, AlertStateStore, FanoutHandler, Pause};
use dwmon_core::engine::{Clock, SystemClock};
use dwmon_core::retention::{Keep, Retention, RetentionPurger};
use dwmon_core::{
    CheckHandler, Engine, EngineConfig, LoadReport, RowGetter, RowStore, Status, Store, StoreView,
};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use tracing::{info, warn};

/// `println!` that ignores a closed stdout (e.g. `| head`) instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `print!` that ignores a closed stdout.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

/// Loads a checker directory; a missing or unreadable directory is an operational error.
/// A directory without any `*.dwmon` file is allowed (checkers may be added while `run`
/// runs) but gets a warning on stderr: it is usually a wrong path or file extension.
pub(crate) fn load_checkers(dir: &Path) -> Result<LoadReport> {
    let report = dwmon_core::load_dir(dir).map_err(|source| Error::CheckerDir {
        path: dir.to_path_buf(),
        source,
    })?;
    if report.checkers.is_empty() && report.errors.is_empty() {
        eprintln!(
            "warning: no *{} files in {} (checker files are NAME{} directly in the directory)",
            dwmon_core::checker_file::EXTENSION,
            dir.display(),
            dwmon_core::checker_file::EXTENSION,
        );
    }
    Ok(report)
}

/// The JSON line of a due check, fields in the documented order.
#[derive(serde::Serialize)]
struct DueJson<'a> {
    checker: &'a str,
    requirement_index: usize,
    minute: i64,
    minute_local: &'a str,
    /// For a `DELAYSECONDS` requirement: the first cycle minute that judges `minute`.
    #[serde(skip_serializing_if = "Option::is_none")]
    judged_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    judged_at_local: Option<String>,
}

/// One (checker, requirement)'s due minutes, merged with the others by [`schedule`].
struct DueStream<'a> {
    checker: &'a str,
    requirement_index: usize,
    zone: chrono_tz::Tz,
    /// `DELAYSECONDS` in whole minutes, as seconds: a minute is judged this much later.
    delay: i64,
    minutes: dwmon_core::schedule::DueMinutes,
}

/// `dwmon schedule`.
///
/// Streams: each (checker, requirement) yields its due minutes lazily and a heap merges them
/// in (minute, checker, requirement index) order, so memory stays constant however long the
/// range, and a closed stdout (`| head`) stops the work at once.
pub(crate) fn schedule(args: &ScheduleArgs) -> Result<ExitCode> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    use std::io::Write;

    if args.to < args.from {
        return Err(Error::Usage(format!(
            "--to ({}) is before --from ({})",
            local_rfc3339(args.to, chrono_tz::UTC),
            local_rfc3339(args.from, chrono_tz::UTC)
        )));
    }
    let dir = crate::config::checkers_dir(&args.checkers)?;
    let report = load_checkers(dir)?;
    for error in &report.errors {
        eprintln!("warning: skipping invalid checker: {error}");
    }
    let mut checkers: Vec<_> = report
        .checkers
        .iter()
        .filter(|c| args.checker.as_deref().is_none_or(|name| c.name == name))
        .collect();
    if let (Some(name), true) = (&args.checker, checkers.is_empty()) {
        let known: Vec<&str> = report.checkers.iter().map(|c| c.name.as_str()).collect();
        return Err(Error::Usage(format!(
            "no valid checker named {name:?} in {} (known: {})",
            dir.display(),
            known.join(", ")
        )));
    }
    // Streams are numbered in (checker name, requirement index) order, so ties on a minute
    // come out in that order.
    checkers.sort_by(|a, b| a.name.cmp(&b.name));
    let mut streams = Vec::new();
    for checker in checkers {
        let zone = checker.zone(args.zone.zone());
        for (index, requirement) in checker.requirements.iter().enumerate() {
            streams.push(DueStream {
                checker: &checker.name,
                requirement_index: index,
                zone,
                delay: requirement.delay_minutes().saturating_mul(60),
                minutes: dwmon_core::schedule::due_minutes(
                    &requirement.schedule,
                    zone,
                    args.from,
                    args.to,
                ),
            });
        }
    }
    let mut heap = BinaryHeap::with_capacity(streams.len());
    for (id, stream) in streams.iter_mut().enumerate() {
        if let Some(minute) = stream.minutes.next() {
            heap.push(Reverse((minute, id)));
        }
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    while let Some(Reverse((minute, id))) = heap.pop() {
        let Some(stream) = streams.get_mut(id) else {
            continue;
        };
        let minute_local = local_rfc3339(minute, stream.zone);
        let judged_at = (stream.delay > 0).then(|| minute.saturating_add(stream.delay));
        let judged_at_local = judged_at.map(|t| local_rfc3339(t, stream.zone));
        let written = if args.json {
            let line = serde_json::to_string(&DueJson {
                checker: stream.checker,
                requirement_index: stream.requirement_index,
                minute,
                minute_local: &minute_local,
                judged_at,
                judged_at_local,
            })
            .unwrap_or_default();
            writeln!(out, "{line}")
        } else if let Some(judged) = judged_at_local {
            writeln!(
                out,
                "{minute_local}  {}  {}  judged {judged}",
                stream.checker, stream.requirement_index
            )
        } else {
            writeln!(
                out,
                "{minute_local}  {}  {}",
                stream.checker, stream.requirement_index
            )
        };
        if written.is_err() {
            return Ok(ExitCode::SUCCESS); // stdout closed (e.g. `| head`)
        }
        if let Some(next) = stream.minutes.next() {
            heap.push(Reverse((next, id)));
        }
    }
    let _ = out.flush();
    Ok(ExitCode::SUCCESS)
}

/// Opens (creating if needed) the SQLite store at `path`.
pub(crate) fn open_sqlite_store(path: &Path) -> Result<Arc<dyn Store>> {
    Ok(Arc::new(dwmon_sqlite::SqliteStore::open(path)?))
}

/// A command's store. Opened from `--store FILE`, one [`SqliteStore`](dwmon_sqlite::SqliteStore)
/// (one connection) is both the store and the alert state store.
#[derive(Clone)]
pub(crate) struct OpenStore {
    /// Rows, checks and the outbox.
    pub(crate) store: Arc<dyn Store>,
    /// The alert state: the same file's, or the application's own store (unless
    /// [`App::alert_store`] is set, which wins: see [`crate::alerts`]).
    pub(crate) alerts: Option<Arc<dyn AlertStateStore>>,
    /// Where `dwmon serve` commits pings: the SQLite store itself (a ping's row and history
    /// entry in one transaction, the history durable), or a
    /// [`MemoryPingLog`](dwmon_core::ping_log::MemoryPingLog) over the application's store.
    pub(crate) ping_log: Arc<dyn dwmon_core::ping_log::PingLog>,
    /// The PostgreSQL store of `--store postgres://...`, whose clock the cycles use.
    #[cfg(feature = "postgres-store")]
    pub(crate) postgres: Option<dwmon_postgres_store::PostgresStore>,
}

impl OpenStore {
    fn sqlite(store: dwmon_sqlite::SqliteStore) -> Self {
        let store = Arc::new(store);
        OpenStore {
            alerts: Some(Arc::clone(&store) as Arc<dyn AlertStateStore>),
            ping_log: Arc::clone(&store) as Arc<dyn dwmon_core::ping_log::PingLog>,
            store,
            #[cfg(feature = "postgres-store")]
            postgres: None,
        }
    }

    /// A PostgreSQL store: rows, checks, outbox and alert state in its schema; push pings'
    /// history in memory.
    #[cfg(feature = "postgres-store")]
    fn postgres(store: dwmon_postgres_store::PostgresStore) -> Self {
        let shared = Arc::new(store.clone());
        OpenStore {
            alerts: Some(Arc::clone(&shared) as Arc<dyn AlertStateStore>),
            ping_log: Arc::new(dwmon_core::ping_log::MemoryPingLog::new(
                Arc::clone(&shared) as Arc<dyn Store>,
            )),
            store: shared,
            postgres: Some(store),
        }
    }

    /// Connects a PostgreSQL store now (an unreachable server or a missing schema fails the
    /// command here, not every checker's cycle); nothing to do for other stores.
    pub(crate) async fn ready(&self) -> Result<()> {
        #[cfg(feature = "postgres-store")]
        if let Some(store) = &self.postgres {
            store.ready().await?;
        }
        Ok(())
    }

    /// The time a cycle of this store runs at when no `--now` is given: the database's clock
    /// for a PostgreSQL store (all runners agree on the minute), else this host's.
    pub(crate) async fn now(&self) -> Result<i64> {
        #[cfg(feature = "postgres-store")]
        if let Some(store) = &self.postgres {
            return Ok(store.database_millis().await?.div_euclid(1000));
        }
        Ok(wall_clock())
    }

    /// The clock of `dwmon run` without `--now`/`--speed`: the database's for a PostgreSQL
    /// store, with a reader of its measured skew (database minus host, milliseconds;
    /// measured again every cycle), else the system clock.
    async fn clock(&self) -> Result<(Arc<dyn Clock>, Option<dwmon_server::stats::SkewFn>)> {
        #[cfg(feature = "postgres-store")]
        if let Some(store) = &self.postgres {
            let clock = Arc::new(dwmon_postgres_store::DatabaseClock::new(store.clone()).await?);
            let skew: dwmon_server::stats::SkewFn = {
                let clock = Arc::clone(&clock);
                Arc::new(move || clock.skew_millis())
            };
            return Ok((clock, Some(skew)));
        }
        Ok((Arc::new(SystemClock), None))
    }
}

/// `--store-lease` when not given (the PostgreSQL store's own default).
const DEFAULT_STORE_LEASE_SECONDS: u64 = 120;

/// `--store-lease`, or its default.
fn store_lease(cycle: &CycleArgs) -> std::time::Duration {
    cycle
        .store_lease
        .unwrap_or(std::time::Duration::from_secs(DEFAULT_STORE_LEASE_SECONDS))
}

/// `--store-renew`, or a third of the lease (at least a second), for a PostgreSQL `--store`;
/// `None` for other stores.
fn store_renew(app: &App, cycle: &CycleArgs) -> Option<std::time::Duration> {
    if app.store.is_some() || postgres_store_url(cycle.store.as_deref()).is_none() {
        return None;
    }
    Some(
        cycle
            .store_renew
            .unwrap_or_else(|| (store_lease(cycle) / 3).max(std::time::Duration::from_secs(1))),
    )
}

/// `--store` as a PostgreSQL store URL (`postgres://` or `postgresql://`), if it is one.
pub(crate) fn postgres_store_url(path: Option<&Path>) -> Option<&str> {
    let text = path?.to_str()?;
    (text.starts_with("postgres://") || text.starts_with("postgresql://")).then_some(text)
}

/// `--store` as shown in logs: a PostgreSQL URL with its password masked.
pub(crate) fn shown_store(path: &Path) -> String {
    match postgres_store_url(Some(path)) {
        Some(url) => crate::args::mask_url(url),
        None => path.display().to_string(),
    }
}

/// How `once`/`run`/`serve` and the status views open a PostgreSQL store.
#[derive(Debug, Default, Clone, Copy)]
struct PostgresOpen<'a> {
    /// `--store-lease`.
    lease: Option<std::time::Duration>,
    /// `--runner`.
    runner: Option<&'a str>,
    /// An existing store only, nothing written (status views: a schema without a store is
    /// refused, not given one).
    read_only: bool,
    /// `--seen-cache-keys`.
    seen_cache_keys: Option<u64>,
    /// `--store-pooler`: no named prepared statements.
    pooler: bool,
}

/// Opens the PostgreSQL store `url` (connecting on first use, see [`OpenStore::ready`]).
#[cfg(feature = "postgres-store")]
fn open_postgres_store(url: &str, open: PostgresOpen<'_>) -> Result<OpenStore> {
    let mut options = dwmon_postgres_store::PostgresStoreOptions::default()
        .with_prepared_statements(!open.pooler);
    if open.read_only {
        options = options.with_read_only();
    }
    if let Some(keys) = open.seen_cache_keys {
        options = options.with_seen_cache_capacity(keys);
    }
    if let Some(lease) = open.lease {
        options = options.with_lease(lease);
    }
    if let Some(runner) = open.runner {
        options = options.with_owner(runner);
    }
    Ok(OpenStore::postgres(
        dwmon_postgres_store::PostgresStore::open_lazily(url, &options)?,
    ))
}

#[cfg(not(feature = "postgres-store"))]
fn open_postgres_store(url: &str, _open: PostgresOpen<'_>) -> Result<OpenStore> {
    Err(Error::Usage(format!(
        "--store {}: this program was built without the PostgreSQL store (the \
         `postgres-store` feature of the dwmon crate)",
        crate::args::mask_url(url)
    )))
}

/// The store of `once`/`run`/`serve`: the application's own, else `--store FILE` opened with
/// the cache sizes of `--seen-cache-keys` and `--store-cache-mib`.
fn cycle_store(app: &App, cycle: &CycleArgs) -> Result<OpenStore> {
    if let (None, Some(url)) = (&app.store, postgres_store_url(cycle.store.as_deref())) {
        let lease = store_lease(cycle);
        let config = engine_config(app, cycle);
        let fetch = config.fetch_timeout;
        if fetch >= lease {
            return Err(Error::Usage(format!(
                "--fetch-timeout ({}s) must be shorter than --store-lease ({}s): a fetch that \
                 outlives its claim is refused and its work is lost",
                fetch.as_secs(),
                lease.as_secs()
            )));
        }
        let renew = config.claim_renew_interval;
        if renew >= lease {
            return Err(Error::Usage(format!(
                "--store-renew ({}s) must be shorter than --store-lease ({}s): a claim must be \
                 renewed before its lease ends",
                renew.as_secs(),
                lease.as_secs()
            )));
        }
        let open = PostgresOpen {
            lease: Some(lease),
            runner: cycle.runner.as_deref(),
            seen_cache_keys: cycle.seen_cache_keys,
            pooler: cycle.store_pooler,
            ..PostgresOpen::default()
        };
        return open_postgres_store(url, open);
    }
    let tuned = cycle.seen_cache_keys.is_some() || cycle.store_cache_mib.is_some();
    let (true, None, Some(path)) = (tuned, &app.store, cycle.store.as_deref()) else {
        return open_store(app, cycle.store.as_deref(), false);
    };
    let defaults = dwmon_sqlite::SqliteStoreOptions::default();
    let options = dwmon_sqlite::SqliteStoreOptions {
        seen_cache_capacity: cycle
            .seen_cache_keys
            .unwrap_or(defaults.seen_cache_capacity),
        page_cache_kib: cycle
            .store_cache_mib
            .map_or(defaults.page_cache_kib, |mib| mib * 1024),
        ..defaults
    };
    Ok(OpenStore::sqlite(dwmon_sqlite::SqliteStore::open_with(
        path, &options,
    )?))
}

/// The store for a command: the application's own, else `--store FILE` (for status views:
/// read-only, and it must exist).
pub(crate) fn store_for(app: &App, path: Option<&Path>, read_only: bool) -> Result<Arc<dyn Store>> {
    Ok(open_store(app, path, read_only)?.store)
}

/// [`store_for`], keeping the file's alert state side too.
pub(crate) fn open_store(app: &App, path: Option<&Path>, read_only: bool) -> Result<OpenStore> {
    if let Some(store) = &app.store {
        let ping_log = match &app.ping_log {
            Some(log) => Arc::clone(log),
            None => Arc::new(dwmon_core::ping_log::MemoryPingLog::new(Arc::clone(store))),
        };
        return Ok(OpenStore {
            store: Arc::clone(store),
            // Every Store keeps alert state too (App::alert_store, if set, still wins).
            alerts: Some(Arc::new(Arc::clone(store)) as Arc<dyn AlertStateStore>),
            ping_log,
            #[cfg(feature = "postgres-store")]
            postgres: None,
        });
    }
    let path = path.ok_or(Error::NoStore)?;
    if let Some(url) = postgres_store_url(Some(path)) {
        let open = PostgresOpen {
            read_only,
            ..PostgresOpen::default()
        };
        return open_postgres_store(url, open);
    }
    if !read_only {
        return Ok(OpenStore::sqlite(dwmon_sqlite::SqliteStore::open(path)?));
    }
    if !path.exists() {
        return Err(Error::StoreMissing {
            path: path.to_path_buf(),
        });
    }
    Ok(OpenStore::sqlite(
        dwmon_sqlite::SqliteStore::open_read_only(path)?,
    ))
}

/// The RowGetter for `once`/`run`: `--source` routes, then the application's own getter.
fn row_getter_for(app: &App, args: &CycleArgs, loaded: &LoadReport) -> Result<Arc<dyn RowGetter>> {
    let mut router = Router::new();
    for (i, spec) in args.sources.iter().enumerate() {
        if args.sources[..i].iter().any(|s| s.name == spec.name) {
            return Err(Error::Usage(format!(
                "--source {} is given more than once; each source name needs exactly one URL",
                spec.name
            )));
        }
        router = match spec.url {
            SourceUrl::Command(_) => add_command_source(router, spec, args.allow_command_sources)?,
            _ => add_source_pooled(
                router,
                spec,
                engine_config(app, args).max_concurrent_checkers,
            )?,
        };
    }
    if let Some(getter) = &app.row_getter {
        router = router.fallback(Arc::clone(getter));
    }
    // Push checkers need no source: their rows arrive over HTTP.
    let push_only = !loaded.checkers.is_empty() && loaded.checkers.iter().all(|c| c.is_push());
    if router.is_empty() && !push_only {
        return Err(Error::NoSources);
    }
    Ok(Arc::new(router))
}

fn printing_handler(app: &App, json: bool) -> PrintingHandler {
    let format = if json { Format::Json } else { Format::Human };
    let handler = PrintingHandler::new(format, app.handler.clone()).colored_if_terminal();
    if app.print_events {
        handler
    } else {
        handler.quiet()
    }
}

/// The handler of `once` and `run`: the printer (with the App's handler behind it), and the
/// alert handler next to it when alerting is on.
fn cycle_handler(
    app: &App,
    args: &CycleArgs,
    alerts: Option<&Arc<AlertHandler>>,
) -> Arc<dyn CheckHandler> {
    let printer: Arc<dyn CheckHandler> = Arc::new(printing_handler(app, args.json));
    match alerts {
        None => printer,
        Some(alerts) => {
            let alerts: Arc<dyn CheckHandler> = Arc::clone(alerts) as Arc<dyn CheckHandler>;
            Arc::new(FanoutHandler::named(vec![
                ("stdout".to_string(), printer),
                ("alerts".to_string(), alerts),
            ]))
        }
    }
}

/// The engine settings of `once`, `run` and `serve`: the App's ([`App::engine_config`]), with
/// what the command line or config file gives (`--tz`, `--delivery-give-up`,
/// `--fetch-timeout`, `--concurrency`, `--store-renew`) over them.
fn engine_config(app: &App, args: &CycleArgs) -> EngineConfig {
    let base = app.engine_config.clone();
    EngineConfig {
        default_zone: args.zone.tz.unwrap_or(base.default_zone),
        delivery_give_up_seconds: match args.delivery_give_up {
            None => base.delivery_give_up_seconds,
            Some(Keep::For(seconds)) => seconds,
            // 0: never give up.
            Some(Keep::Forever) => 0,
        },
        fetch_timeout: args.fetch_timeout.unwrap_or(base.fetch_timeout),
        max_concurrent_checkers: args.concurrency.unwrap_or(base.max_concurrent_checkers),
        claim_renew_interval: store_renew(app, args).unwrap_or(base.claim_renew_interval),
        ..base
    }
}

/// The engine `once` and `run` share: the App's purger and engine settings, the command
/// line's over them, and the store's ping log for push checkers' runs.
fn engine_for(
    app: &App,
    args: &CycleArgs,
    opened: &OpenStore,
    getter: Arc<dyn RowGetter>,
    handler: Arc<dyn CheckHandler>,
) -> Result<Engine> {
    let config = engine_config(app, args);
    dwmon_core::monitor::validate_all(&app.monitors).map_err(|e| Error::Usage(e.to_string()))?;
    Ok(Engine::new(getter, Arc::clone(&opened.store), handler)
        .with_ping_log(Arc::clone(&opened.ping_log))
        .with_config(config)
        .with_purger(purger_for(app, args)?)
        .with_monitors(app.monitors.clone()))
}

/// The App's purger, or with `--keep-rows`/`--keep-checks` a [`RetentionPurger`] with them as
/// the default (refused when the program brings its own purger: it decides retention).
fn purger_for(app: &App, args: &CycleArgs) -> Result<Arc<dyn dwmon_core::Purger>> {
    if args.keep_rows.is_none() && args.keep_checks.is_none() {
        return Ok(Arc::clone(&app.purger));
    }
    if app.custom_purger {
        return Err(Error::Usage(
            "--keep-rows/--keep-checks: this program's own purger decides retention".into(),
        ));
    }
    Ok(Arc::new(RetentionPurger::new(Retention {
        rows: args.keep_rows,
        checks: args.keep_checks,
    })))
}

fn wall_clock() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A `--now` more than a day ahead of the wall clock on an existing store records future
/// minutes there, after which every cycle at the real time reports `clock_behind` until
/// `dwmon forget --after` removes them: say so on stderr (the run goes ahead; replays and
/// tests may mean it).
fn warn_if_far_ahead(now: Option<i64>, store: Option<&Path>) {
    let wall = wall_clock();
    let Some(now) = now.filter(|&now| now > wall.saturating_add(86_400)) else {
        return;
    };
    if store.is_some_and(Path::exists) {
        eprintln!(
            "warning: --now {} is more than a day ahead of the clock ({}); checks recorded in \
             this existing store at future minutes stop later cycles at the real time until \
             `dwmon forget --after {}` removes them",
            local_rfc3339(now, chrono_tz::UTC),
            local_rfc3339(wall, chrono_tz::UTC),
            dwmon_core::minute_floor(wall)
        );
    }
}

/// `dwmon forget`.
pub(crate) async fn forget(args: &ForgetArgs) -> Result<ExitCode> {
    let path = args.store.as_deref().ok_or(Error::NoStore)?;
    if !path.exists() {
        return Err(Error::StoreMissing {
            path: path.to_path_buf(),
        });
    }
    let store = dwmon_sqlite::SqliteStore::open(path)?;
    let removed = store.forget_after(args.after).await?;
    outln!(
        "removed {removed} check records after {}",
        local_rfc3339(args.after, chrono_tz::UTC)
    );
    Ok(ExitCode::SUCCESS)
}

/// `dwmon doctor`: the full integrity check of a store file.
pub(crate) fn doctor(args: &DoctorArgs) -> Result<ExitCode> {
    let path = args.store.as_deref().ok_or(Error::NoStore)?;
    if !path.exists() {
        return Err(Error::StoreMissing {
            path: path.to_path_buf(),
        });
    }
    let problems = dwmon_sqlite::SqliteStore::integrity_check(path)?;
    if problems.is_empty() {
        outln!(
            "store {}: ok (every page, index and constraint checked)",
            path.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    outln!("store {} is damaged:", path.display());
    for problem in &problems {
        outln!("  {problem}");
    }
    outln!("restore a backup, or move the file away to start a new store");
    Ok(ExitCode::from(1))
}

/// The hosts of per-host push checkers: in the `--store` file for `serve` (which receives
/// heartbeats) and when a loaded checker is per-host, else in memory (so `once` and `run`
/// add no table to a store that has no use for it).
fn host_registry(
    cycle: &CycleArgs,
    loaded: &LoadReport,
    serving: bool,
) -> Result<Arc<dwmon_server::hosts::HostRegistry>> {
    let wanted = serving || loaded.checkers.iter().any(|c| c.per_host());
    Ok(Arc::new(match cycle.store.as_deref() {
        // Hosts of a PostgreSQL store's runners are known for the process's life only.
        Some(path) if postgres_store_url(Some(path)).is_some() => {
            dwmon_server::hosts::HostRegistry::in_memory()
        }
        Some(path) if wanted => dwmon_server::hosts::HostRegistry::open(path)
            .map_err(|e| Error::Cycle(e.to_string()))?,
        _ => dwmon_server::hosts::HostRegistry::in_memory(),
    }))
}

/// `dwmon once`.
pub(crate) async fn once(app: &App, args: &OnceArgs) -> Result<ExitCode> {
    let cycle = &args.cycle;
    let checkers = load_checkers(crate::config::checkers_dir(&cycle.checkers)?)?;
    let getter = row_getter_for(app, cycle, &checkers)?;
    warn_if_far_ahead(args.now, cycle.store.as_deref());
    let opened = cycle_store(app, cycle)?;
    opened.ready().await?;
    let now = match args.now {
        Some(now) => now,
        None => opened.now().await?,
    };
    let hosts = host_registry(cycle, &checkers, false)?;
    // Each host of a per-host push checker is a sub-check of its own.
    let checkers = LoadReport {
        checkers: dwmon_core::ping::with_hosts(checkers.checkers, &hosts.hosts()),
        ..checkers
    };
    let alerts = alerts::alert_handler(app, cycle, &opened)?;
    if let Some(alerts) = &alerts {
        alerts::reconcile(alerts, &checkers).await;
    }
    let handler = cycle_handler(app, cycle, alerts.as_ref());
    let engine = engine_for(app, cycle, &opened, getter, handler)?;
    engine.set_load_report(checkers);
    let report = engine.run_cycle(now).await;
    info!("{}", report.summary());
    if report.checks().next().is_none() && report.errors().next().is_none() {
        use std::io::IsTerminal;
        // Someone at a terminal otherwise sees nothing at all; scripts and cron stay quiet.
        if std::io::stdout().is_terminal() {
            eprintln!(
                "no checks due at {}: no checker is scheduled then or has unchecked minutes \
                 left (see `dwmon schedule` and `dwmon status`)",
                local_rfc3339(report.minute, cycle.zone.zone())
            );
        }
    }
    // The store failing mid-cycle (locked past the busy timeout, disk full, ...) is an
    // operational failure like an unusable store at start: exit 2, not 0 with an ERROR line.
    if let Some(event) = report
        .errors()
        .find(|e| e.kind == dwmon_core::ErrorKind::Store)
    {
        return Err(Error::Cycle(format!(
            "checker {}: {}",
            event.checker,
            crate::status::one_line(&event.error)
        )));
    }
    let not_good =
        report.checks().any(|c| c.status != Status::Good) || report.errors().next().is_some();
    Ok(if args.fail_on_bad && not_good {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `dwmon run`.
pub(crate) async fn run(app: &App, args: &RunArgs) -> Result<ExitCode> {
    run_loop(app, args, None).await
}

/// `dwmon serve`: `run`, plus the HTTP server on `--listen`.
pub(crate) async fn serve(app: &App, args: &ServeArgs) -> Result<ExitCode> {
    let addr = match args.listen {
        Some(addr) => addr,
        None => ServeArgs::DEFAULT_LISTEN
            .parse()
            .map_err(|e| Error::Usage(format!("default listen address: {e}")))?,
    };
    // Bind before anything else, so a port in use fails at once (exit 2), not after start-up.
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Usage(format!("cannot listen on {addr}: {e}")))?;
    run_loop(app, &args.run, Some((listener, args))).await
}

/// What the server reads: its own reader of the store (for an SQLite `--store`: a read-only
/// connection of the same file, so requests never wait for the cycle's writes), the runner's
/// statistics and the alert states.
struct ServerParts {
    store: Arc<dyn Store>,
    stats: Arc<dwmon_server::RunnerStats>,
    alerts: Option<Arc<dyn dwmon_alert::AlertStateStore>>,
    authorizer: Option<Arc<dyn dwmon_server::auth::Authorizer>>,
    tokens: Option<Arc<dyn dwmon_server::tokens::TokenStore>>,
    /// The cycle's own (writable) store: pings are written through it.
    cycle_store: Arc<dyn Store>,
    /// The hosts of per-host push checkers (the run loop makes their sub-checks).
    hosts: Arc<dwmon_server::hosts::HostRegistry>,
    /// The cycle's own (writable) store as a ping log: pings are committed through it.
    ping_log: Arc<dyn dwmon_core::ping_log::PingLog>,
    public: bool,
    push: dwmon_server::push::PushConfig,
}

impl ServerParts {
    fn open(
        app: &App,
        args: &ServeArgs,
        stats: Arc<dwmon_server::RunnerStats>,
        cycle_store: Arc<dyn Store>,
        hosts: Arc<dwmon_server::hosts::HostRegistry>,
        ping_log: Arc<dyn dwmon_core::ping_log::PingLog>,
    ) -> Result<Self> {
        let cycle = &args.run.cycle;
        if app.store.is_none() && postgres_store_url(cycle.store.as_deref()).is_some() {
            // A PostgreSQL store: views, pauses and alert states through the cycle's pooled
            // handle; tokens (kept in SQLite store files) only in memory, so with no token
            // the API and pings need --public or the program's authorizer.
            return Ok(ServerParts {
                store: Arc::clone(&cycle_store),
                stats,
                alerts: Some(Arc::new(Arc::clone(&cycle_store)) as Arc<dyn AlertStateStore>),
                authorizer: app.authorizer.clone(),
                tokens: None,
                cycle_store,
                hosts,
                ping_log,
                public: args.public,
                push: args.push_config(),
            });
        }
        let store = match (&app.store, cycle.store.as_deref()) {
            (None, Some(path)) => {
                Arc::new(dwmon_sqlite::SqliteStore::open_read_only(path)?) as Arc<dyn Store>
            }
            _ => store_for(app, cycle.store.as_deref(), true)?,
        };
        // Read-write: the API and the page pause and unpause (as `dwmon pause` does). A
        // connection of its own, so alert reads never queue behind the cycle's writes.
        let alerts = match (&app.alert_store, cycle.store.as_deref()) {
            (Some(store), _) => Some(Arc::clone(store)),
            // The application's own store keeps its alert state.
            (None, _) if app.store.is_some() => {
                Some(Arc::new(Arc::clone(&cycle_store)) as Arc<dyn AlertStateStore>)
            }
            (None, None) => None,
            (None, Some(path)) => {
                let options = dwmon_sqlite::SqliteStoreOptions {
                    seen_cache_capacity: 0,
                    ..dwmon_sqlite::SqliteStoreOptions::default()
                };
                let store = dwmon_sqlite::SqliteStore::open_with(path, &options)?;
                Some(Arc::new(store) as Arc<dyn AlertStateStore>)
            }
        };
        Ok(ServerParts {
            store,
            stats,
            alerts,
            authorizer: app.authorizer.clone(),
            // The tokens of `dwmon token create` (their own tables in the --store file),
            // cached: a ping reads no table; `dwmon token revoke` elsewhere takes effect
            // within 1 s (dwmon_server::tokens::CachedTokens).
            tokens: match cycle.store.as_deref() {
                Some(path) => Some(Arc::new(dwmon_server::tokens::CachedTokens::new(Arc::new(
                    dwmon_server::tokens::SqliteTokenStore::open(path)?,
                )))),
                None => None,
            },
            cycle_store,
            hosts,
            ping_log,
            public: args.public,
            push: args.push_config(),
        })
    }
}

/// The server's routes: every part `dwmon serve` offers; and the events part, for `--udp`.
fn server_router(parts: ServerParts) -> (axum::Router, Arc<dwmon_server::events::Events>) {
    let mut builder = dwmon_server::ServerBuilder::new(parts.store)
        .stats(Arc::clone(&parts.stats))
        .public(parts.public);
    if let Some(alerts) = parts.alerts {
        builder = builder.alerts(alerts);
    }
    if let Some(authorizer) = parts.authorizer {
        builder = builder.authorizer(authorizer);
    }
    let tokens: Arc<dyn dwmon_server::tokens::TokenStore> = match parts.tokens {
        Some(tokens) => tokens,
        None => Arc::new(dwmon_server::tokens::MemoryTokenStore::new()),
    };
    builder = builder.tokens(Arc::clone(&tokens));
    let push =
        dwmon_server::push::Push::new(parts.ping_log, tokens, Arc::clone(&parts.stats), parts.push);
    builder = builder.push(Arc::clone(&push));
    let events = dwmon_server::events::Events::new(
        push,
        parts.cycle_store,
        parts.hosts,
        dwmon_server::events::EventsConfig::default(),
    );
    builder = builder.merge(events.router());
    let router = builder
        .merge(dwmon_server::metrics::router())
        .merge(dwmon_server::api::router())
        .merge(dwmon_server::page::router())
        .merge(dwmon_server::badge::router())
        .build();
    (router, events)
}

/// The cycle loop of `run` and `serve`; with a listener, the HTTP server runs beside it and
/// stops with it (requests in flight are answered).
async fn run_loop(
    app: &App,
    args: &RunArgs,
    listener: Option<(tokio::net::TcpListener, &ServeArgs)>,
) -> Result<ExitCode> {
    let cycle = &args.cycle;
    // Fail fast on a missing directory; afterwards the engine re-reads it every cycle.
    let dir = crate::config::checkers_dir(&cycle.checkers)?.to_path_buf();
    let loaded = load_checkers(&dir)?;
    let getter = row_getter_for(app, cycle, &loaded)?;
    info!(
        target: crate::app::STARTUP_TARGET,
        "{}",
        watching_summary(app, args, &loaded)
    );
    warn_if_far_ahead(args.now, cycle.store.as_deref());
    let opened = cycle_store(app, cycle)?;
    opened.ready().await?;
    let (store_clock, skew) = opened.clock().await?;
    let hosts = host_registry(cycle, &loaded, listener.is_some())?;
    let loaded = LoadReport {
        checkers: dwmon_core::ping::with_hosts(loaded.checkers, &hosts.hosts()),
        ..loaded
    };
    let alerts = alerts::alert_handler(app, cycle, &opened)?;
    let store = Arc::clone(&opened.store);
    let ping_log = Arc::clone(&opened.ping_log);
    let pruner = alerts
        .as_ref()
        .map(|a| alerts::PruneOnReload::new(Arc::clone(a)));
    let handler = cycle_handler(app, cycle, alerts.as_ref());
    let clock: Arc<dyn Clock> = if args.now.is_some() || args.speed != 1.0 {
        Arc::new(SimClock::new(
            args.now.unwrap_or_else(wall_clock),
            args.speed,
        ))
    } else {
        if let Some(skew) = &skew {
            info!(
                target: crate::app::STARTUP_TARGET,
                "clock: the database's, this host's differs by {:+.3} s",
                skew() as f64 / 1000.0
            );
        }
        store_clock
    };
    let stats = {
        let clock = Arc::clone(&clock);
        Arc::new(dwmon_server::RunnerStats::new(Arc::new(move || {
            clock.now()
        })))
    };
    // The skew of the clock in use, for /metrics (a simulated clock has none).
    if let (Some(skew), false) = (skew, args.now.is_some() || args.speed != 1.0) {
        stats.set_clock_skew(skew);
    }
    stats.set_checkers(loaded.checkers.clone().into(), cycle.zone.zone());
    if let Some(alerts) = &alerts {
        stats.set_notification_deliveries(alerts.delivery_counts());
    }
    let stop_server = Arc::new(tokio::sync::Notify::new());
    let stop_udp = Arc::new(tokio::sync::Notify::new());
    let server = match listener {
        Some((listener, serve_args)) => {
            let addr = listener.local_addr().map_err(Error::Runtime)?;
            let (router, events) = server_router(ServerParts::open(
                app,
                serve_args,
                Arc::clone(&stats),
                Arc::clone(&store),
                Arc::clone(&hosts),
                ping_log,
            )?);
            info!(target: crate::app::STARTUP_TARGET, "listening on http://{addr}");
            if let Some(udp) = serve_args.udp {
                let socket = tokio::net::UdpSocket::bind(udp)
                    .await
                    .map_err(|e| Error::Usage(format!("cannot listen on udp {udp}: {e}")))?;
                let bound = socket.local_addr().map_err(Error::Runtime)?;
                info!(target: crate::app::STARTUP_TARGET, "events on udp://{bound}");
                let stop = Arc::clone(&stop_udp);
                tokio::spawn(async move {
                    let stopped = async move { stop.notified().await };
                    if let Err(e) = dwmon_server::udp::serve_udp(socket, events, stopped).await {
                        warn!(error = %e, "the UDP listener failed");
                    }
                });
            }
            let stop = Arc::clone(&stop_server);
            Some(tokio::spawn(dwmon_server::serve_with_idle_timeout(
                listener,
                router,
                async move { stop.notified().await },
                std::time::Duration::from_secs(serve_args.idle_timeout),
            )))
        }
        None => None,
    };
    let engine = engine_for(app, cycle, &opened, getter, handler)?.with_loader(move || {
        let mut report = dwmon_core::load_dir(&dir).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("checker directory {}: {e}", dir.display()),
            )
        })?;
        // Each host of a per-host push checker is a sub-check of its own.
        report.checkers = dwmon_core::ping::with_hosts(report.checkers, &hosts.hosts());
        if let Some(pruner) = &pruner {
            pruner.loaded(&report);
        }
        Ok(report)
    });
    let enough = Arc::new(tokio::sync::Notify::new());
    let shutdown = crate::shutdown::on_signal_or(Arc::clone(&enough)).map_err(Error::Runtime)?;
    let orphans = alerts
        .as_ref()
        .map(|alerts| tokio::spawn(retry_orphaned(Arc::clone(alerts))));
    let mut cycles = 0u64;
    engine
        .run_with(clock.as_ref(), shutdown, |report| {
            stats.set_checkers(engine.checkers(), cycle.zone.zone());
            stats.record_cycle(report);
            cycles += 1;
            if args.cycles.is_some_and(|max| cycles >= max) {
                enough.notify_one();
            }
        })
        .await;
    if let Some(orphans) = orphans {
        orphans.abort();
    }
    stop_udp.notify_one();
    if let Some(server) = server {
        stop_server.notify_one();
        match server.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(Error::Runtime(e)),
            Err(e) => return Err(Error::Cycle(format!("the HTTP server failed: {e}"))),
        }
    }
    info!(cycles, "stopped");
    Ok(ExitCode::SUCCESS)
}

/// Every minute, the notifications another runner on the store was sending when it died
/// (their lease ended): re-sent under their keys without waiting for their checkers' next
/// checks ([`dwmon_alert::AlertHandler::retry_orphaned`]; leased, so one runner sends each).
async fn retry_orphaned(alerts: Arc<dwmon_alert::AlertHandler>) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if let Err(e) = alerts.retry_orphaned().await {
            warn!(error = %e, "cannot read the notifications left by runners that died");
        }
    }
}

/// What `run` watches, in one line for the log at start: checkers, sources (passwords
/// masked), store, alerts, zone and clock.
fn watching_summary(app: &App, args: &RunArgs, loaded: &LoadReport) -> String {
    let cycle = &args.cycle;
    let mut sources: Vec<String> = cycle.sources.iter().map(describe_source).collect();
    if app.row_getter.is_some() {
        sources.push("the program's own RowGetter for other names".into());
    }
    let store = match (&cycle.store, &app.store) {
        (Some(path), _) => shown_store(path),
        (None, Some(_)) => "the program's own store".into(),
        (None, None) => "none".into(),
    };
    let alerts = match (&cycle.alerts, &app.alerts) {
        (Some(path), _) => path.display().to_string(),
        (None, Some(_)) => "the program's own config".into(),
        (None, None) => "off".into(),
    };
    let clock = if args.now.is_some() || args.speed != 1.0 {
        format!(
            "simulated from {} at {}x",
            local_rfc3339(args.now.unwrap_or_else(wall_clock), cycle.zone.zone()),
            args.speed
        )
    } else if postgres_store_url(cycle.store.as_deref()).is_some() {
        "the database's clock".into()
    } else {
        "wall clock".into()
    };
    let retention = if app.custom_purger {
        "the program's purger".to_string()
    } else {
        format!(
            "rows {}, checks {}",
            cycle
                .keep_rows
                .map_or("while countable".to_string(), |k| k.to_string()),
            cycle.keep_checks.map_or(
                dwmon_core::retention::Keep::For(dwmon_core::retention::DEFAULT_CHECK_LOG_SECONDS)
                    .to_string(),
                |k| k.to_string()
            )
        )
    };
    format!(
        "run: watching {} checker{}{} in {}; sources: {}; store: {store}; alerts: {alerts}; \
         retention: {retention}; default zone: {}; {clock}",
        loaded.checkers.len(),
        if loaded.checkers.len() == 1 { "" } else { "s" },
        match loaded.errors.len() {
            0 => String::new(),
            n => format!(
                " ({n} invalid file{} skipped)",
                if n == 1 { "" } else { "s" }
            ),
        },
        cycle
            .checkers
            .as_deref()
            .map_or_else(String::new, |dir| dir.display().to_string()),
        if sources.is_empty() {
            "none".into()
        } else {
            sources.join(", ")
        },
        cycle.zone.zone(),
    )
}

/// `NAME=URL` of a `--source`, with any password masked.
fn describe_source(spec: &SourceSpec) -> String {
    match &spec.url {
        SourceUrl::Sqlite(path) => format!("{}=sqlite:{}", spec.name, path.display()),
        SourceUrl::Postgres(url) | SourceUrl::Mysql(url) => {
            format!("{}={}", spec.name, crate::args::mask_url(url))
        }
        SourceUrl::Command(url) => format!("{}={url}", spec.name),
        SourceUrl::Http(url) => format!("{}={}", spec.name, crate::args::mask_url(url)),
    }
}

/// `dwmon status`.
pub(crate) async fn status(app: &App, args: &StatusArgs) -> Result<ExitCode> {
    let tz = args.tz.unwrap_or(chrono_tz::UTC);
    let opened = open_store(app, args.store.as_deref(), true)?;
    opened.ready().await?;
    let store = Arc::clone(&opened.store);
    let mut statuses = store.status().await?;
    let overview = match alerts::alert_store_read_only(app, &opened, args.store.as_deref())? {
        // A store where alerting never ran has nothing to show (and no ALERTS column).
        Some(alert_store) => Some(alert_store.overview().await?).filter(|o| !o.is_empty()),
        None => None,
    };
    let now = args.now.unwrap_or_else(wall_clock);
    if let Some(overview) = &overview {
        crate::status::add_alert_only_checkers(&mut statuses, overview);
    }
    if args.json {
        for status in &statuses {
            let mut value = crate::status::status_json(status, tz);
            if let (Some(overview), Some(object)) = (&overview, value.as_object_mut()) {
                object.insert(
                    "alerts".into(),
                    crate::status::alert_json(overview, &status.checker, now),
                );
            }
            outln!("{value}");
        }
    } else {
        match &overview {
            None => out!("{}", crate::status::status_table(&statuses, tz)),
            Some(overview) => out!(
                "{}",
                crate::status::status_table_with_alerts(&statuses, overview, now, tz)
            ),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The checker names the dwmon store knows.
async fn known_names(store: &dyn Store) -> Result<Vec<String>> {
    Ok(store
        .status()
        .await?
        .into_iter()
        .map(|s| s.checker)
        .collect())
}

/// A usage error unless `name` is a valid checker name (so `pause` cannot create entries no
/// checker file can ever have, like `""` or `../x`).
fn valid_checker_name(name: &str) -> Result<()> {
    if dwmon_core::checker_file::is_valid_checker_name(name) {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "{name:?} is not a checker name; expected the file name of a checker without .dwmon: \
         1 to {} characters from A-Z a-z 0-9 _ . -",
        dwmon_core::checker_file::MAX_NAME_LEN
    )))
}

/// `text` with control characters (newlines, escape sequences) replaced by spaces, trimmed:
/// a pause comment is shown on one line of `status`.
fn one_line_comment(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

/// `dwmon pause`.
pub(crate) async fn pause(app: &App, args: &PauseArgs) -> Result<ExitCode> {
    valid_checker_name(&args.name)?;
    let now = args.now.unwrap_or_else(wall_clock);
    if let Some(until) = args.until.filter(|until| *until <= now) {
        return Err(Error::Usage(format!(
            "--until {} is not in the future (now is {})",
            local_rfc3339(until, chrono_tz::UTC),
            local_rfc3339(now, chrono_tz::UTC)
        )));
    }
    // The dwmon store first: it must exist (or, with --force, is created) before the alert
    // tables are added to its file.
    if let (None, Some(path), false) = (&app.store, args.store.as_deref(), args.force) {
        if postgres_store_url(Some(path)).is_none() && !path.exists() {
            return Err(Error::StoreMissing {
                path: path.to_path_buf(),
            });
        }
    }
    let opened = open_store(app, args.store.as_deref(), false)?;
    opened.ready().await?;
    let known = known_names(opened.store.as_ref()).await?;
    if !args.force && !known.contains(&args.name) {
        return Err(Error::Usage(format!(
            "the store has no checker named {:?} (known: {}); use --force to pause it anyway",
            args.name,
            known.join(", ")
        )));
    }
    let alert_store = alerts::alert_store_for(app, &opened, args.store.as_deref(), "pause")?;
    let pause = Pause {
        since: now,
        until: args.until,
        comment: args
            .comment
            .as_deref()
            .map(one_line_comment)
            .filter(|c| !c.is_empty()),
    };
    alert_store.set_pause(&args.name, Some(&pause)).await?;
    let overview = AlertOverview {
        pauses: vec![(args.name.clone(), pause)],
        ..AlertOverview::default()
    };
    for line in overview.lines(now) {
        outln!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `dwmon unpause`.
pub(crate) async fn unpause(app: &App, args: &UnpauseArgs) -> Result<ExitCode> {
    // Only an existing dwmon store can hold a pause.
    let path = args.store.as_deref();
    if let (None, Some(path)) = (&app.store, path) {
        if postgres_store_url(Some(path)).is_none() && !path.exists() {
            return Err(Error::StoreMissing {
                path: path.to_path_buf(),
            });
        }
    }
    let opened = open_store(app, path, false)?;
    opened.ready().await?;
    let alert_store = alerts::alert_store_for(app, &opened, path, "unpause")?;
    let now = args.now.unwrap_or_else(wall_clock);
    match alert_store
        .lift_pause(&args.name, now, Some("dwmon unpause"))
        .await?
    {
        Some(_) => outln!("{}: unpaused", args.name),
        None => outln!("{}: was not paused", args.name),
    }
    Ok(ExitCode::SUCCESS)
}

/// `dwmon histogram`.
pub(crate) async fn histogram(app: &App, args: &HistogramArgs) -> Result<ExitCode> {
    let tz = args.tz.unwrap_or(chrono_tz::UTC);
    let store = store_for(app, args.store.as_deref(), true)?;
    let now = args.now.unwrap_or_else(|| chrono::Utc::now().timestamp());
    let since = i64::try_from(args.since).unwrap_or(i64::MAX);
    // Stored timestamps are never before 1970, so a longer --since starts there.
    let from = now.saturating_sub(since).max(0).min(now);
    let timestamps = store
        .row_timestamps(&args.checker, from, now.saturating_add(1))
        .await?;
    if timestamps.is_empty() {
        let known: Vec<String> = store
            .status()
            .await?
            .into_iter()
            .map(|s| s.checker)
            .collect();
        if !known.contains(&args.checker) {
            return Err(Error::Usage(format!(
                "the store has no checker named {:?} (known: {})",
                args.checker,
                known.join(", ")
            )));
        }
    }
    let histogram = Histogram::from_timestamps(&timestamps, tz);
    outln!(
        "{}: {} stored rows from {} to {}, by weekday and hour ({})",
        args.checker,
        histogram.total(),
        local_rfc3339(from, tz),
        local_rfc3339(now, tz),
        tz.name()
    );
    out!("{}", histogram.to_table());
    // The default purger keeps rows only while a check can count them (plus a day): on such a
    // store a 4-week histogram silently covers a day. Say what the picture really spans.
    if let Some(&oldest) = timestamps.iter().min() {
        if oldest.saturating_sub(from) > 86_400 {
            eprintln!(
                "note: the oldest stored row is from {}: the counts cover {:.1} of the {:.1} \
                 days asked for (a young checker, or the default purger, which deletes rows a \
                 day after no check can count them; a program can keep more with its own \
                 Purger)",
                local_rfc3339(oldest, tz),
                (now - oldest) as f64 / 86_400.0,
                (now - from) as f64 / 86_400.0,
            );
        }
    }
    if let Some(path) = &args.svg {
        let title = format!("dwmon histogram: {}", args.checker);
        std::fs::write(path, histogram.to_svg(&title)).map_err(|source| Error::Write {
            path: path.clone(),
            source,
        })?;
        eprintln!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
