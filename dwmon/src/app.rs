//! [`App`]: the `dwmon` command line as a library, so an organisation gets the same commands
//! with its own [`RowGetter`], [`CheckHandler`], [`Purger`] and [`Store`] in a few lines.

use crate::cli::{Cli, Command};
use crate::commands;
use crate::config::Config;
use clap::{CommandFactory, FromArgMatches};
use dwmon_alert::{AlertStateStore, AlertsConfig, ChannelKind, Notifier};
use dwmon_core::{CheckHandler, DefaultPurger, EngineConfig, Monitor, Purger, RowGetter, Store};
use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::Arc;

/// The `dwmon` command line, configurable with an organisation's own traits.
///
/// The stock binary is `App::new().run_cli()`: built-in `sqlite:` / `postgres://` sources from
/// `--source NAME=URL`, events printed to stdout, [`DefaultPurger`], an SQLite store from
/// `--store FILE`. An organisation's binary swaps in its own pieces:
///
/// ```no_run
/// use dwmon::{async_trait, App, FetchRequest, Fetched, Row, RowGetter, SourceError};
///
/// struct Warehouse;
///
/// #[async_trait]
/// impl RowGetter for Warehouse {
///     async fn get_rows(&self, request: &FetchRequest<'_>) -> Result<Fetched, SourceError> {
///         // Run request.query against request.source here.
///         Ok(Fetched::from_rows(vec![Row::new("order-1", 1_700_000_000)]))
///     }
/// }
///
/// fn main() -> std::process::ExitCode {
///     App::new().name("acme-dwmon").row_getter(Warehouse).run_cli()
/// }
/// ```
///
/// # Alerting
///
/// `once` and `run` alert when given `--alerts FILE` (or [`App::alerts`]): an
/// [`AlertHandler`](dwmon_alert::AlertHandler) runs next to the printer and the
/// [`App::handler`], with its states in the store (the `--store` file, the [`App::store`],
/// or [`App::alert_store`]). An
/// organisation can bring its own channel, e.g. its paging system as the `webhook` or
/// `pagerduty` channel:
///
/// ```no_run
/// use dwmon::alert::{ChannelError, ChannelKind, Notification, Notifier};
/// use dwmon::{async_trait, App};
///
/// struct Pager;
///
/// #[async_trait]
/// impl Notifier for Pager {
///     async fn notify(&self, n: &Notification, address: &str) -> Result<(), ChannelError> {
///         // Call the in-house paging API for `address` with n.summary() here.
///         Ok(())
///     }
/// }
///
/// fn main() -> std::process::ExitCode {
///     let config = dwmon::alert::AlertsConfig {
///         repeat_seconds: Some(3600),
///         default_alert: Some(serde_json::json!({"pagerduty": "data-team"})),
///         ..Default::default()
///     };
///     App::new()
///         .alerts(config)
///         .alert_channel(ChannelKind::Pagerduty, Pager)
///         .run_cli()
/// }
/// ```
///
/// A program that drives the [`Engine`](dwmon_core::Engine) itself combines the pieces with
/// [`FanoutHandler`](dwmon_alert::FanoutHandler): `FanoutHandler::new(vec![its_handler,
/// Arc::new(AlertHandler::from_config(alert_store, &config)?)])` (see the `dwmon_alert` crate
/// docs). Passing an `AlertHandler` to [`App::handler`] also works (the printer prints each
/// record once, before its handler runs, and not again when the engine retries the record),
/// but [`App::alerts`] also sets up the alert store and prunes it; prefer it.
#[derive(Clone)]
pub struct App {
    pub(crate) name: String,
    pub(crate) row_getter: Option<Arc<dyn RowGetter>>,
    pub(crate) handler: Option<Arc<dyn CheckHandler>>,
    pub(crate) purger: Arc<dyn Purger>,
    /// Whether [`App::purger`] replaced the default (then `--keep-*` are refused).
    pub(crate) custom_purger: bool,
    pub(crate) store: Option<Arc<dyn Store>>,
    /// Where `dwmon serve` commits pings when [`App::store`] is set (`None`: rows go to
    /// that store and the history stays in memory).
    pub(crate) ping_log: Option<Arc<dyn dwmon_core::ping_log::PingLog>>,
    pub(crate) print_events: bool,
    pub(crate) alerts: Option<AlertsConfig>,
    pub(crate) alert_store: Option<Arc<dyn AlertStateStore>>,
    pub(crate) alert_channels: Vec<(ChannelKind, Arc<dyn Notifier>)>,
    pub(crate) monitors: Vec<Arc<dyn Monitor>>,
    pub(crate) authorizer: Option<Arc<dyn dwmon_server::auth::Authorizer>>,
    /// The engine's settings before the command line's (see [`App::engine_config`]).
    pub(crate) engine_config: EngineConfig,
}

impl Default for App {
    fn default() -> Self {
        App::new()
    }
}

impl App {
    /// The stock configuration (see the type's documentation).
    pub fn new() -> Self {
        App {
            name: "dwmon".into(),
            row_getter: None,
            handler: None,
            purger: Arc::new(DefaultPurger),
            custom_purger: false,
            store: None,
            ping_log: None,
            print_events: true,
            alerts: None,
            alert_store: None,
            alert_channels: Vec::new(),
            monitors: Vec::new(),
            authorizer: None,
            engine_config: EngineConfig::default(),
        }
    }

    /// The program name shown in `--help` and usage lines.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Fetches rows with `getter` for every `__SOURCE__` not given with `--source` (which
    /// then becomes optional for `once` and `run`).
    pub fn row_getter(mut self, getter: impl RowGetter + 'static) -> Self {
        self.row_getter = Some(Arc::new(getter));
        self
    }

    /// Delivers every check record and error event to `handler` (after printing it, unless
    /// [`App::print_events`] turned printing off). A failing handler is retried from the
    /// store's outbox.
    pub fn handler(mut self, handler: impl CheckHandler + 'static) -> Self {
        self.handler = Some(Arc::new(handler));
        self
    }

    /// Whether events are printed to stdout (default: yes).
    pub fn print_events(mut self, print: bool) -> Self {
        self.print_events = print;
        self
    }

    /// Alerts with `config` when `once`/`run` get no `--alerts FILE` (which overrides it).
    pub fn alerts(mut self, config: AlertsConfig) -> Self {
        self.alerts = Some(config);
        self
    }

    /// Keeps alert states and pauses in `store` instead of the [`App::store`] (every
    /// [`Store`] keeps alert state too) or the `--store` SQLite file.
    pub fn alert_store(mut self, store: impl AlertStateStore + 'static) -> Self {
        self.alert_store = Some(Arc::new(store));
        self
    }

    /// Sends the `kind` channel's notifications through `notifier` instead of the built-in
    /// one (e.g. an in-house pager as `pagerduty`, or a mail API as `email`).
    pub fn alert_channel(mut self, kind: ChannelKind, notifier: impl Notifier + 'static) -> Self {
        self.alert_channels.push((kind, Arc::new(notifier)));
        self
    }

    /// Judges `monitor` in every cycle of `once` and `run`, after the checkers it reads (see
    /// [`dwmon_core::monitor`]): its checks are recorded as `monitor:NAME`, printed, alerted
    /// and shown by `status` like a checker's. A monitor declared wrongly (name, inputs) or
    /// two of one name make `once`, `run` and `check` fail with the reason; `check` also
    /// reports a monitor reading a checker that is not in the checker directory.
    ///
    /// ```no_run
    /// use dwmon::{App, Monitor, MonitorCounts, MonitorInput, MonitorSchedule, Verdict};
    ///
    /// struct Backlog;
    ///
    /// impl Monitor for Backlog {
    ///     fn name(&self) -> &str { "backlog" }
    ///     fn inputs(&self) -> Vec<MonitorInput> {
    ///         vec![MonitorInput::new("jobs_started", 3600), MonitorInput::new("jobs_finished", 3600)]
    ///     }
    ///     fn schedule(&self) -> MonitorSchedule { MonitorSchedule::every_minute() }
    ///     fn judge(&self, counts: &MonitorCounts) -> Verdict {
    ///         let open = counts.count("jobs_started").saturating_sub(counts.count("jobs_finished"));
    ///         Verdict::good_if(open <= 50, format!("{open} jobs open")).with_value(open as f64)
    ///     }
    /// }
    ///
    /// fn main() -> std::process::ExitCode {
    ///     App::new().monitor(Backlog).run_cli()
    /// }
    /// ```
    pub fn monitor(mut self, monitor: impl Monitor + 'static) -> Self {
        self.monitors.push(Arc::new(monitor));
        self
    }

    /// Checks the bearer tokens of `dwmon serve`'s API and status page with `authorizer`
    /// (e.g. [`StaticTokens`](dwmon_server::auth::StaticTokens), or the organisation's own
    /// single sign-on check).
    pub fn authorizer(mut self, authorizer: impl dwmon_server::auth::Authorizer + 'static) -> Self {
        self.authorizer = Some(Arc::new(authorizer));
        self
    }

    /// Runs the engine of `once`, `run` and `serve` with `config` instead of
    /// [`EngineConfig::default`]: fetch timeout, concurrency, delivery retries, catch-up
    /// limits. What the command line (or the config file) gives still wins: `--tz` the
    /// default zone, `--fetch-timeout`, `--concurrency` and `--delivery-give-up` their fields.
    /// The built-in PostgreSQL and MySQL sources get one connection per concurrent fetch
    /// (`max_concurrent_checkers`).
    ///
    /// ```no_run
    /// use std::time::Duration;
    ///
    /// fn main() -> std::process::ExitCode {
    ///     let config = dwmon::EngineConfig {
    ///         // The warehouse is slow but copes with many queries at once.
    ///         fetch_timeout: Duration::from_secs(300),
    ///         max_concurrent_checkers: 32,
    ///         ..Default::default()
    ///     };
    ///     dwmon::App::new().engine_config(config).run_cli()
    /// }
    /// ```
    pub fn engine_config(mut self, config: EngineConfig) -> Self {
        self.engine_config = config;
        self
    }

    /// Decides retention with `purger` instead of [`DefaultPurger`].
    pub fn purger(mut self, purger: impl Purger + 'static) -> Self {
        self.purger = Arc::new(purger);
        self.custom_purger = true;
        self
    }

    /// Uses `store` instead of an SQLite file from `--store` (which then becomes optional)
    /// for rows, checks, deliveries and alert state (unless [`App::alert_store`] is set).
    /// `dwmon serve` then commits pings' rows to it and keeps their history in memory.
    pub fn store(mut self, store: impl Store + 'static) -> Self {
        self.store = Some(Arc::new(store));
        self.ping_log = None;
        self
    }

    /// Opens the SQLite store at `path` now and uses it (see [`App::store`]).
    ///
    /// # Errors
    /// When the file cannot be opened or is not a dwmon store.
    pub fn sqlite_store(self, path: impl AsRef<std::path::Path>) -> crate::Result<Self> {
        let store = Arc::new(dwmon_sqlite::SqliteStore::open(path.as_ref())?);
        let mut app = self.store(Arc::clone(&store));
        // The history of pings is durable in the same file.
        app.ping_log = Some(store);
        Ok(app)
    }

    /// Parses the process's arguments, runs the command and returns its exit status.
    /// Never panics on bad input: every error is printed as one line on stderr.
    pub fn run_cli(self) -> ExitCode {
        self.run_with_args(std::env::args_os())
    }

    /// Like [`App::run_cli`] with explicit arguments (the first is the program name).
    pub fn run_with_args<I, T>(self, args: I) -> ExitCode
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let name = self.name.clone();
        let command = Cli::command().display_name(name.clone()).bin_name(name);
        let cli = match command
            .try_get_matches_from(args)
            .and_then(|matches| Cli::from_arg_matches(&matches))
        {
            Ok(cli) => cli,
            Err(e) => {
                print_clap_error(&e);
                return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
            }
        };
        main_with_format(
            cli.verbose,
            cli.log_format,
            self.dispatch(cli.config, cli.command),
        )
    }

    async fn dispatch(
        &self,
        config_path: Option<std::path::PathBuf>,
        mut command: Command,
    ) -> crate::Result<ExitCode> {
        // `check` reports an unusable config file as a finding; the others fail on it.
        let config = match (&command, config_path) {
            (Command::Completions(_) | Command::Man, _) | (_, None) => None,
            (Command::Check(_), Some(path)) => Some(Config::load(&path)),
            (_, Some(path)) => Some(Ok(Config::load(&path)?)),
        };
        if let Some(Ok(config)) = &config {
            crate::config::apply(config, &mut command);
        }
        match command {
            Command::Check(args) => crate::validate::check(self, &args, config).await,
            Command::Schedule(args) => commands::schedule(&args),
            Command::Once(args) => commands::once(self, &args).await,
            Command::Run(args) => commands::run(self, &args).await,
            Command::Serve(args) => commands::serve(self, &args).await,
            Command::Status(args) => commands::status(self, &args).await,
            Command::Pause(args) => commands::pause(self, &args).await,
            Command::Token(args) => crate::tokens::token(self, &args).await,
            Command::Unpause(args) => commands::unpause(self, &args).await,
            Command::Histogram(args) => commands::histogram(self, &args).await,
            Command::Suggest(args) => crate::insight_commands::suggest(self, &args).await,
            Command::Backtest(args) => crate::insight_commands::backtest(self, &args).await,
            Command::Completions(args) => {
                let mut command = Cli::command();
                let name = self.name.clone();
                clap_complete::generate(args.shell, &mut command, name, &mut std::io::stdout());
                Ok(ExitCode::SUCCESS)
            }
            Command::Man => {
                let command = Cli::command();
                clap_mangen::Man::new(command)
                    .render(&mut std::io::stdout())
                    .map_err(|e| crate::Error::Usage(format!("cannot write the man page: {e}")))?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Forget(args) => commands::forget(&args).await,
            Command::Doctor(args) => commands::doctor(&args),
        }
    }
}

/// Prints a command-line error as clap would, except that clap's echo of a rejected value
/// (`invalid value 'wh=postgres://user:PASSWORD@...'`) shows any password as `***`.
fn print_clap_error(error: &clap::Error) {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let raw = match error.get(ContextKind::InvalidValue) {
        Some(ContextValue::String(value)) if error.kind() == ErrorKind::ValueValidation => {
            value.clone()
        }
        _ => {
            let _ = error.print();
            return;
        }
    };
    let text = error.render().to_string();
    let masked = crate::args::mask_url(&raw);
    let text = if masked == raw {
        text
    } else {
        text.replace(&raw, &masked)
    };
    if error.use_stderr() {
        eprint!("{text}");
    } else {
        print!("{text}");
    }
}

/// How log lines on stderr look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines; ANSI colours only when stderr is a terminal.
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `fields`), never coloured.
    Json,
}

/// What a `main` does around a command: logs to stderr as text (see [`init_logging`]), runs
/// `work` on a two-worker Tokio runtime, prints an error as one line on stderr and returns exit
/// status 2 for it.
pub fn main_with<F, E>(verbose: u8, work: F) -> ExitCode
where
    F: std::future::Future<Output = Result<ExitCode, E>>,
    E: std::fmt::Display,
{
    main_with_format(verbose, LogFormat::Text, work)
}

/// [`main_with`] with the log lines in `format`.
pub fn main_with_format<F, E>(verbose: u8, format: LogFormat, work: F) -> ExitCode
where
    F: std::future::Future<Output = Result<ExitCode, E>>,
    E: std::fmt::Display,
{
    init_logging_as(verbose, format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(work);
    // Dropping the runtime would wait for every blocking-pool thread, and a fetch blocked in
    // open() (a hung network mount) never returns: exit without waiting for them.
    runtime.shutdown_background();
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// The log target of the lines a long-running command prints at start (what it watches):
/// shown at the default verbosity, like warnings.
pub const STARTUP_TARGET: &str = "dwmon::startup";

/// Logs to stderr as text: warnings (and the start-up summary of `run`) by default, `-v` info,
/// `-vv` debug; `RUST_LOG` overrides. Colours (ANSI escape codes) only when stderr is a
/// terminal, so journald and cron mail get plain text.
pub fn init_logging(verbose: u8) {
    init_logging_as(verbose, LogFormat::Text);
}

/// [`init_logging`] with the lines in `format`.
pub fn init_logging_as(verbose: u8, format: LogFormat) {
    use std::io::IsTerminal;
    let default = match verbose {
        0 => format!("warn,{STARTUP_TARGET}=info"),
        1 => "info".to_string(),
        _ => "debug".to_string(),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
}
