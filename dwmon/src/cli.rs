//! The command-line definition (clap) shared by the stock `dwmon` binary and organisation
//! binaries built with [`App`](crate::App).

use crate::app::LogFormat;
use crate::args::{
    parse_concurrency, parse_fetch_timeout, parse_incident, parse_ping_rate, parse_source,
    parse_speed, parse_time, parse_zone, SourceSpec,
};
use chrono_tz::Tz;
use clap::{Args, Parser, Subcommand};
use dwmon_core::retention::{parse_keep, Keep};
use std::path::PathBuf;

/// dwmon: monitor counts of things in a datastore.
#[derive(Debug, Parser)]
#[command(
    name = "dwmon",
    version,
    about = "dwmon: monitor counts of things in a datastore",
    long_about = "dwmon: monitor counts of things in a datastore.\n\n\
        Checkers are NAME.dwmon files: a query returning (dwmon_unique_key, dwmon_timestamp) rows \
        and requirements like `CHECKHOURS0-23 CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM5 MAXNUM20 \
        LOOKBACKSECONDS180`. Every minute dwmon stores the keys it has not seen before and checks \
        that each due window holds between MINNUM and MAXNUM of them.",
    after_help = "Times T are RFC 3339 (2026-11-22T15:04:00Z) or epoch seconds. \
        Sources are NAME=URL with URL sqlite:PATH, postgres://user:password@host/db, \
        mysql://user:password@host/db (mariadb:// too) or command:csv / command:jsonl \
        (with --allow-command-sources).\n\
        HTTP JSON sources are NAME=http[?timeout=S&ca_file=PATH...] or NAME=https://BASE-URL \
        (see docs/SOURCES.md).\n\
        Logs go to stderr: -v for info, -vv for debug, or RUST_LOG=dwmon=debug.\n\
        Settings can come from a config file instead (--config dwmon.toml; see examples/dwmon.toml): \
        flags override it.\n\
        Exit status: 0 success, 1 findings (invalid checker, BAD with --fail-on-bad), 2 failure."
)]
pub struct Cli {
    /// Read settings from this TOML file: checkers, store, time_zone, alerts and [sources]
    /// (`NAME = "URL"`); `${VAR}` in values expands from the environment, so passwords stay
    /// off the command line. Command-line flags override the file, and --source replaces a
    /// file's source of the same name. Example: --config /etc/dwmon/dwmon.toml
    #[arg(long, value_name = "FILE", env = crate::config::ENV_VAR, global = true)]
    pub config: Option<PathBuf>,
    /// More logging on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Log line format on stderr: `text` (colours only on a terminal) or `json` (one object
    /// per line with timestamp, level, fields; for journald/Loki/CloudWatch shippers).
    #[arg(
        long,
        value_enum,
        value_name = "FORMAT",
        default_value_t = LogFormat::Text,
        env = "DWMON_LOG_FORMAT",
        global = true
    )]
    pub log_format: LogFormat,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the checker files, the config file, the alerts config and every checker's
    /// "alert" routing; with --connect, also that each source answers and the store opens.
    #[command(
        after_help = "Examples:\n  dwmon check --checkers examples/checkers\n  \
        dwmon check --config /etc/dwmon/dwmon.toml --connect\n\n\
        Prints `N checkers OK` (and what else was checked) and exits 0, or one line per \
        finding (`FILE:LINE:COL: message` where the position is known) and exits 1: invalid \
        checker files, an empty checker directory, config or alerts file errors, an \"alert\" \
        key with a typo, a channel or name the alerts config does not set up (an email address \
        without smtp, a Slack channel without webhook, an unknown PagerDuty service or webhook \
        name), a malformed webhook URL, a __SOURCE__ no source is configured for; with \
        --connect, a source that does not answer or a store that does not open."
    )]
    Check(CheckArgs),
    /// List the due (checker, requirement, minute) checks in a time range.
    #[command(
        after_help = "Example:\n  dwmon schedule --checkers examples/checkers \
        --from 2026-11-22T09:00:00Z --to 2026-11-22T09:30:00Z --checker new_applications\n\n\
        One line per due check, ascending: minute (in the checker's zone), checker, requirement index."
    )]
    Schedule(ScheduleArgs),
    /// Run exactly one cycle at --now (default: the wall clock), then exit.
    #[command(
        after_help = "Example:\n  dwmon once --checkers examples/checkers --store dwmon.sqlite \
        --source default=sqlite:data.sqlite --now 2026-11-22T15:04:00Z --json\n\n\
        Every check and error event is printed to stdout (one JSON object per line with --json). \
        With --alerts alerts.json, alert notifications (firing, reminder, resolved) go out as \
        configured, and alert states persist in the store across runs (docs/ALERTING.md). \
        Exit 0 whether checks are GOOD or BAD (1 with --fail-on-bad), 2 when the store or the \
        checker directory is unusable."
    )]
    Once(OnceArgs),
    /// Run a cycle every minute until SIGINT/SIGTERM (the cycle in flight is finished).
    #[command(
        after_help = "Example:\n  dwmon run --checkers examples/checkers --store dwmon.sqlite \
        --source default=sqlite:data.sqlite\n\n\
        Checker files are re-read every cycle: added, changed and removed files take effect \
        without a restart (with --alerts, alert states of removed checkers and requirement \
        lines are forgotten); a file that turns invalid is reported as an ERROR event and skipped \
        (its last good version is not used) until it is fixed.\n\
        --now T --speed N simulate time (start at T, N simulated seconds per real second, at most 1e6): for \
        tests and demos; the store then holds simulated minutes."
    )]
    Run(RunArgs),
    /// Run the cycle loop (as `run`) and the HTTP server in one process.
    #[command(
        after_help = "Example:\n  dwmon serve --checkers examples/checkers --store dwmon.sqlite \
        --source default=sqlite:data.sqlite --listen 127.0.0.1:8080\n\n\
        Everything `run` does, plus an HTTP server on --listen (default 127.0.0.1:8080; also \
        DWMON_LISTEN or the config file's [server] listen). GET /healthz answers `ok` while the \
        process serves requests. SIGINT/SIGTERM stop both: the cycle in flight is finished and \
        requests in flight are answered."
    )]
    Serve(ServeArgs),
    /// Show per checker: last check, last status per requirement, pending deliveries, last error, alerts.
    #[command(
        after_help = "Example:\n  dwmon status --store dwmon.sqlite\n  dwmon status --store dwmon.sqlite --json | jq .\n\n\
        When the store was used with --alerts (or pause), an ALERTS column shows pauses, firing \
        requirements (#i:FIRING(severity)), BAD streaks not firing yet (#i:NxBAD), broken sources \
        and undelivered notifications, followed by an `alerts:` list with details; --json adds an \
        \"alerts\" object per checker."
    )]
    Status(StatusArgs),
    /// Create, list, rotate or revoke the tokens of push checkers and the API.
    #[command(
        after_help = "Examples:\n  dwmon token create --store dwmon.sqlite --scope ping:backup --label \"nightly backup\"\n  \
        dwmon token list --store dwmon.sqlite\n  dwmon token rotate 3f9c0a12be --store dwmon.sqlite\n  \
        dwmon token revoke 3f9c0a12be --store dwmon.sqlite\n\n\
        Scopes: ping:CHECKER (pings that push checker: /ping/TOKEN), ping (a ping key: \
        /ping/TOKEN/CHECKER for any push checker), read (the API), write (the API, including \
        pause/unpause/snooze). `create` and `rotate` print the token once on stdout; only its \
        SHA-256 is stored, so it cannot be shown again (rotate it if lost). `list` shows ids \
        and masked tokens."
    )]
    Token(TokenArgs),
    /// Pause a checker's alert notifications (it is still checked and recorded).
    #[command(
        after_help = "Examples:\n  dwmon pause orders --store dwmon.sqlite --comment \"warehouse migration\"\n  \
        dwmon pause orders --store dwmon.sqlite --until 2026-11-23T06:00:00Z\n\n\
        Nothing is sent for the checker while it is paused; its alert state keeps following the \
        checks, so when the pause ends (`dwmon unpause`, or by itself at --until) the next check \
        sends what is then true: a firing for a requirement still failing, a resolution for one \
        that recovered. Pausing again replaces the pause. The checker must be known to the store \
        (use --force for one that has not run yet)."
    )]
    Pause(PauseArgs),
    /// Lift a checker's pause (see `pause`).
    #[command(
        after_help = "Example:\n  dwmon unpause orders --store dwmon.sqlite\n\n\
        The next check of the checker sends what is owed (see `dwmon pause --help`)."
    )]
    Unpause(UnpauseArgs),
    /// Count a checker's stored rows by weekday x hour, to choose MINNUM/MAXNUM.
    #[command(
        after_help = "Example:\n  dwmon histogram --store dwmon.sqlite --checker new_applications \
        --since 604800 --tz America/New_York --svg applications.svg"
    )]
    Histogram(HistogramArgs),
    /// Propose MINNUM/MAXNUM for a checker's requirements from its stored history.
    #[command(
        after_help = "Example:\n  dwmon suggest --checkers examples/checkers --store dwmon.sqlite \
        --checker new_applications --requirement 0 --days 28\n\n\
        Counts the real window of every minute the requirement's schedule made due in the last \
        --days days of stored history (up to the checker's last checked minute), leaves out the \
        minutes whose window overlaps a minute recorded BAD or the checker's pause, splits them \
        by season (hour of week with at least 4 weeks, else weekday/weekend x hour) and proposes \
        bounds from quantiles, with mean +- 3 sigma for comparison and each proposal's backtest \
        over the same history. Prints paste-ready requirement lines (--json: one object per \
        requirement).\n\
        Exit 0 with a proposal; 1 when the history is too short (under 14 days or 500 due \
        minutes) for some requirement, which is said instead of guessing; 2 on failure."
    )]
    Suggest(SuggestArgs),
    /// Replay requirement lines over a checker's stored rows: BAD minutes, alert episodes.
    #[command(
        after_help = "Examples:\n  dwmon backtest --checkers examples/checkers --store dwmon.sqlite \
        --checker new_applications --requirement 'CHECKHOURS0-23 CHECKMINUTES*/5 WEEKDAYS \
        WEEKENDS MINNUM3 MAXNUM60 LOOKBACKSECONDS600'\n  \
        dwmon backtest --store dwmon.sqlite --checkers examples/checkers --checker orders \
        --incident 2026-11-20T14:00:00Z..2026-11-20T15:30:00Z --svg band.svg\n\n\
        Counts each due minute's window over the stored rows with the cycle's counting, judges \
        it as a cycle does and feeds the checks to the alert policy (FAILAFTER, RECOVERAFTER, \
        reminders every --repeat-seconds), one alert state per line. Without --requirement the \
        checker file's own lines are replayed; over minutes a live run checked, the checks \
        equal the recorded ones. Prints the history used, BAD minutes, alert episodes and \
        notifications per week; --incident T1..T2 adds the time from T1 to the first alert; \
        --svg draws the band chart. Exit 0, or 2 on failure."
    )]
    Backtest(BacktestArgs),
    /// Remove check records after a minute (the way out after a clock in the future).
    #[command(
        after_help = "Example:\n  dwmon forget --store dwmon.sqlite --after 2026-11-23T09:00:00Z\n\n\
        A store whose last checked minute is after now (a run with a future --now, an NTP step \
        back, a restored VM snapshot) makes every cycle report a clock_behind ERROR and check \
        nothing until the clock passes that minute. This removes the check records (and their \
        pending deliveries) of every minute after T, so the next cycle checks again."
    )]
    Forget(ForgetArgs),
    /// Check every page of a store file for damage (exit 1 when damaged).
    #[command(after_help = "Example:\n  dwmon doctor --store dwmon.sqlite\n\n\
        Runs SQLite's full integrity check (every page, index and constraint) read-only, on a \
        store of any size, and lists what is damaged. `once` and `run` already refuse a damaged \
        store smaller than 64 MiB when they open it (a quick check); larger ones are checked \
        only by this command. Exit 0: sound; 1: damaged (restore a backup, or move the file \
        away to start a new store); 2: the file cannot be checked.")]
    Doctor(DoctorArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    #[command(after_help = "Example:\n  dwmon completions bash > /etc/bash_completion.d/dwmon")]
    Completions(CompletionsArgs),
    /// Print the man page (roff) on stdout.
    #[command(after_help = "Example:\n  dwmon man > /usr/local/share/man/man1/dwmon.1")]
    Man,
}

/// `dwmon completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

/// `dwmon forget`.
#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// The SQLite store file.
    #[arg(long, value_name = "FILE")]
    pub store: Option<PathBuf>,
    /// Remove the check records of minutes after T (RFC 3339 or epoch seconds).
    #[arg(long, value_name = "T", value_parser = parse_time, allow_negative_numbers = true)]
    pub after: i64,
}

/// `dwmon doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The SQLite store file.
    #[arg(long, value_name = "FILE")]
    pub store: Option<PathBuf>,
}

/// `dwmon check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Directory of *.dwmon checker files (required unless the --config file sets
    /// `checkers`).
    #[arg(long, value_name = "DIR")]
    pub checkers: Option<PathBuf>,
    /// Also validate this JSON alerts config and every checker's "alert" routing against it.
    #[arg(long, value_name = "FILE")]
    pub alerts: Option<PathBuf>,
    /// A source to validate (and with --connect, to reach): NAME=URL; repeatable.
    #[arg(long = "source", value_name = "NAME=URL", value_parser = parse_source)]
    pub sources: Vec<SourceSpec>,
    /// The store to open with --connect.
    #[arg(long, value_name = "FILE")]
    pub store: Option<PathBuf>,
    /// Also check that every source answers (a connection and a trivial query) and that the
    /// store opens.
    #[arg(long)]
    pub connect: bool,
}

/// `dwmon schedule`.
#[derive(Debug, Args)]
pub struct ScheduleArgs {
    /// Directory of *.dwmon checker files (required unless the --config file sets
    /// `checkers`).
    #[arg(long, value_name = "DIR")]
    pub checkers: Option<PathBuf>,
    /// First minute of the range (inclusive).
    #[arg(long, value_name = "T", value_parser = parse_time, allow_negative_numbers = true)]
    pub from: i64,
    /// Last minute of the range (inclusive).
    #[arg(long, value_name = "T", value_parser = parse_time, allow_negative_numbers = true)]
    pub to: i64,
    /// Only this checker.
    #[arg(long, value_name = "NAME")]
    pub checker: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub zone: ZoneArg,
    /// One JSON object per line: checker, requirement_index, minute, minute_local (and, for a
    /// DELAYSECONDS requirement, judged_at and judged_at_local: when the minute is judged).
    #[arg(long)]
    pub json: bool,
}

/// `--tz ZONE`.
#[derive(Debug, Args, Clone)]
pub struct ZoneArg {
    /// Zone for checkers without __TIMEZONE__ (IANA name; default: the config file's
    /// time_zone, else UTC).
    #[arg(long = "tz", value_name = "ZONE", value_parser = parse_zone, env = "DWMON_TZ")]
    pub tz: Option<Tz>,
}

impl ZoneArg {
    /// The zone: `--tz`, `DWMON_TZ` or the config file's `time_zone`, else UTC.
    pub fn zone(&self) -> Tz {
        self.tz.unwrap_or(chrono_tz::UTC)
    }
}

/// What `once` and `run` share.
#[derive(Debug, Args)]
pub struct CycleArgs {
    /// Directory of *.dwmon checker files (required unless the --config file sets
    /// `checkers`).
    #[arg(long, value_name = "DIR")]
    pub checkers: Option<PathBuf>,
    /// The SQLite store file, created if missing, or a PostgreSQL store shared by several
    /// runners: postgres://USER@HOST/DB (the password from PGPASSWORD or the password file;
    /// `?options=-csearch_path%3DSCHEMA` picks the schema; the runners then run on the
    /// database's clock, and this host's skew is logged and, under `serve`, exported as
    /// dwmon_clock_skew_seconds). Required unless the program has its own store.
    #[arg(long, value_name = "FILE|URL")]
    pub store: Option<PathBuf>,
    /// With a PostgreSQL --store: how long this runner's claim on a checker holds (each cycle
    /// claims again), on the database's clock; another runner takes over a dead runner's
    /// checkers after it. Must be longer than --fetch-timeout. Default 2m.
    #[arg(long, value_name = "DURATION", env = "DWMON_STORE_LEASE", value_parser = parse_fetch_timeout)]
    pub store_lease: Option<std::time::Duration>,
    /// With a PostgreSQL --store: how often a cycle renews the claims of its checkers not done
    /// yet, so a cycle longer than --store-lease (checkers waiting for a --concurrency slot or
    /// their parent, slow fetches and stores) keeps all its checkers. A renewal keeps the
    /// claim's fencing token; one refused because another runner took the checker over is
    /// logged, and that checker's checks are then refused. Must be shorter than
    /// --store-lease. Default: a third of --store-lease.
    #[arg(long, value_name = "DURATION", env = "DWMON_STORE_RENEW", value_parser = parse_fetch_timeout)]
    pub store_renew: Option<std::time::Duration>,
    /// With a PostgreSQL --store reached through a connection pooler in transaction mode that
    /// does not keep prepared statements (PgBouncer before 1.21, or without
    /// max_prepared_statements): every statement is parsed and planned on each call instead of
    /// prepared once per connection.
    #[arg(long, env = "DWMON_STORE_POOLER")]
    pub store_pooler: bool,
    /// With a PostgreSQL --store: this runner's name in its claims (default: the host name).
    /// Runners on one host need different names.
    #[arg(long, value_name = "NAME", env = "DWMON_RUNNER")]
    pub runner: Option<String>,
    /// How many stored keys the store's in-process cache may hold (about 9 bytes each;
    /// 0 disables it; default 16777216). A file store and a PostgreSQL store alike.
    #[arg(long, value_name = "N", env = "DWMON_SEEN_CACHE_KEYS")]
    pub seen_cache_keys: Option<u64>,
    /// SQLite page cache of the --store file's connection, MiB (default 16). Smaller bounds
    /// the memory of `serve` under a flood of pings into a growing store; larger keeps more of
    /// a big store's indexes in memory for the cycle.
    #[arg(long, value_name = "MIB", env = "DWMON_STORE_CACHE_MIB", value_parser = clap::value_parser!(u64).range(1..=65536))]
    pub store_cache_mib: Option<u64>,
    /// A source that checkers name in __SOURCE__ (`default` when they have none):
    /// NAME=sqlite:PATH, NAME=postgres://..., NAME=mysql://... (mariadb://) or NAME=command:csv;
    /// NAME=http or NAME=https://BASE for an HTTP JSON API; repeatable. At least one is required
    /// unless the program was built with its own RowGetter.
    #[arg(long = "source", value_name = "NAME=URL", value_parser = parse_source)]
    pub sources: Vec<SourceSpec>,
    /// Allow NAME=command:csv / NAME=command:jsonl sources, whose checkers' __QUERY__ is a
    /// program (and arguments, no shell) that dwmon runs as its own user, reading rows from
    /// its stdout (see docs/SOURCES.md). Refused without this flag.
    #[arg(
        long,
        env = "DWMON_ALLOW_COMMAND_SOURCES",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub allow_command_sources: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub zone: ZoneArg,
    /// Keep stored rows this long (e.g. 35d, 2w, forever) for `histogram` and history; never
    /// less than what a check can still count (the default). A checker's __EXTRA__
    /// {"retention": {"rows": ...}} overrides it.
    #[arg(long, value_name = "DURATION", env = "DWMON_KEEP_ROWS", value_parser = parse_keep)]
    pub keep_rows: Option<Keep>,
    /// Keep check records this long (default 35d; e.g. 90d, forever); the newest record of
    /// each requirement is always kept. A checker's __EXTRA__ {"retention": {"checks": ...}}
    /// overrides it.
    #[arg(long, value_name = "DURATION", env = "DWMON_KEEP_CHECKS", value_parser = parse_keep)]
    pub keep_checks: Option<Keep>,
    /// Give up delivering a checker's records to a target (an alert channel) that has kept
    /// failing this long since the first attempt of the oldest one it is owed (default 24h;
    /// e.g. 90m, 2d, forever): they are dropped for that target, with one ERROR event
    /// (delivery_given_up) on the default route, and `status` counts them.
    #[arg(long, value_name = "DURATION", env = "DWMON_DELIVERY_GIVE_UP", value_parser = parse_keep)]
    pub delivery_give_up: Option<Keep>,
    /// Abandon a checker's fetch that takes longer than this, with an ERROR event (default
    /// 60s; from 1s to 24h, e.g. 90s, 5m, 1h). A source's own limit can end it sooner
    /// (PostgreSQL and MySQL: 30s per query; command and HTTP sources: their timeout=).
    #[arg(long, value_name = "DURATION", env = "DWMON_FETCH_TIMEOUT", value_parser = parse_fetch_timeout)]
    pub fetch_timeout: Option<std::time::Duration>,
    /// How many checkers of one source (__SOURCE__ name) are fetched and checked at the same
    /// time (default 8; from 1 to 1024). Each PostgreSQL and MySQL source gets as many
    /// connections.
    #[arg(long, value_name = "N", env = "DWMON_CONCURRENCY", value_parser = parse_concurrency)]
    pub concurrency: Option<usize>,
    /// Print each event as one JSON object per line (checker, requirement_index, requirement,
    /// minute, minute_local, timezone, lookback_seconds, count, min, max, status, extra).
    #[arg(long)]
    pub json: bool,
    /// Send alert notifications (firing, reminder, resolved, source errors) as configured in
    /// this JSON file: channels, SMTP server, Slack/PagerDuty settings, repeat interval (see
    /// docs/ALERTING.md). Alert states are kept in the --store file. Checkers without an
    /// "alert" key in __EXTRA__ use the file's default_alert, which is the log (stderr)
    /// unless set, so stdout keeps only the check lines.
    #[arg(long, value_name = "FILE")]
    pub alerts: Option<PathBuf>,
}

/// `dwmon once`.
#[derive(Debug, Args)]
pub struct OnceArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub cycle: CycleArgs,
    /// The cycle's wall time (default: now).
    #[arg(long, value_name = "T", value_parser = parse_time, allow_negative_numbers = true)]
    pub now: Option<i64>,
    /// Exit 1 when any check is BAD or any checker is in ERROR.
    #[arg(long)]
    pub fail_on_bad: bool,
}

/// `dwmon run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub cycle: CycleArgs,
    /// Simulated start time (tests and demos); default: the wall clock.
    #[arg(long, value_name = "T", value_parser = parse_time, allow_negative_numbers = true, help_heading = "Simulation")]
    pub now: Option<i64>,
    /// Simulated seconds per real second (with or without --now).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1.0,
        value_parser = parse_speed,
        allow_negative_numbers = true,
        help_heading = "Simulation"
    )]
    pub speed: f64,
    /// Stop after N cycles (N >= 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub cycles: Option<u64>,
}

/// `dwmon serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub run: RunArgs,
    /// Address the HTTP server listens on [default: 127.0.0.1:8080].
    #[arg(
        long,
        value_name = "ADDR",
        env = "DWMON_LISTEN",
        help_heading = "Server"
    )]
    pub listen: Option<std::net::SocketAddr>,
    /// Also take events (the JSON of POST /api/v1/events, each with its "token") as UDP
    /// datagrams on ADDR. Lossy: nothing is acknowledged (docs/SERVER.md).
    #[arg(long, value_name = "ADDR", env = "DWMON_UDP", help_heading = "Server")]
    pub udp: Option<std::net::SocketAddr>,
    /// Close an HTTP connection that sends and receives nothing for this many seconds
    /// (idle keep-alive connections cannot pile up).
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 60,
        env = "DWMON_IDLE_TIMEOUT",
        value_parser = clap::value_parser!(u64).range(1..=86_400),
        help_heading = "Server"
    )]
    pub idle_timeout: u64,
    /// Public mode: without a token, the status page and badges show checker names and
    /// states (never queries, sources, extras, error texts or ping bodies).
    #[arg(long, env = "DWMON_PUBLIC", help_heading = "Server")]
    pub public: bool,
    /// Bodies of pings up to this many bytes are kept; a larger one is refused with 413
    /// (before it is read when `Content-Length` says so). At most 1048576 (1 MiB).
    #[arg(
        long,
        value_name = "BYTES",
        default_value_t = 10_000,
        env = "DWMON_PING_BODY_LIMIT",
        value_parser = clap::value_parser!(u32).range(0..=1_048_576),
        help_heading = "Pings"
    )]
    pub ping_body_limit: u32,
    /// Pings per second each token may send on average; more are answered 429 with
    /// Retry-After (never a 200 that drops the ping).
    #[arg(
        long,
        value_name = "PER_SECOND",
        default_value_t = 100.0,
        env = "DWMON_PING_RATE",
        value_parser = parse_ping_rate,
        help_heading = "Pings"
    )]
    pub ping_rate: f64,
    /// Pings a token may send at once above its average rate.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1_000,
        env = "DWMON_PING_BURST",
        value_parser = clap::value_parser!(u32).range(1..),
        help_heading = "Pings"
    )]
    pub ping_burst: u32,
    /// Ping requests handled at once (reading, waiting for their commit); more are answered
    /// 503 with Retry-After at once. Bounds memory: bodies take at most N x --ping-body-limit.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1_024,
        env = "DWMON_PING_MAX_IN_FLIGHT",
        value_parser = clap::value_parser!(u32).range(1..=1_000_000),
        help_heading = "Pings"
    )]
    pub ping_max_in_flight: u32,
}

impl ServeArgs {
    /// Where `serve` listens when neither the flag, the environment nor the config says.
    pub const DEFAULT_LISTEN: &'static str = "127.0.0.1:8080";

    /// The ping routes' limits these flags set.
    pub fn push_config(&self) -> dwmon_server::push::PushConfig {
        dwmon_server::push::PushConfig {
            body_limit: self.ping_body_limit as usize,
            rate_per_second: self.ping_rate,
            burst: f64::from(self.ping_burst),
            max_in_flight: self.ping_max_in_flight as usize,
            ..dwmon_server::push::PushConfig::default()
        }
    }
}

/// `dwmon status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The SQLite store file, or a PostgreSQL store URL (postgres://...).
    #[arg(long, value_name = "FILE|URL")]
    pub store: Option<PathBuf>,
    /// One JSON object per checker per line.
    #[arg(long)]
    pub json: bool,
    /// Judge whether pauses have expired at T instead of now.
    #[arg(long, value_name = "T", value_parser = parse_time, allow_negative_numbers = true)]
    pub now: Option<i64>,
    /// Show times in this zone (IANA name; default: the config file's time_zone, else UTC).
    #[arg(long = "tz", value_name = "ZONE", value_parser = parse_zone, env = "DWMON_TZ")]
    pub tz: Option<Tz>,
}

/// `dwmon token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The SQLite store file (tokens live next to the dwmon store's tables).
    #[arg(long, value_name = "FILE", global = true)]
    pub store: Option<PathBuf>,
    #[command(subcommand)]
    #[allow(missing_docs)]
    pub action: TokenAction,
}

/// What `dwmon token` does.
#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Create a token and print it (once).
    Create {
        /// ping:CHECKER, ping, read or write.
        #[arg(long, value_name = "SCOPE")]
        scope: String,
        /// Who uses it, for what (shown by `list`).
        #[arg(long, value_name = "TEXT", default_value = "")]
        label: String,
    },
    /// List the tokens (masked).
    List {
        /// One JSON object per token per line.
        #[arg(long)]
        json: bool,
    },
    /// Replace a token's secret and print the new token (the old one stops working).
    Rotate {
        /// The token's id (see `list`).
        #[arg(value_name = "ID")]
        id: String,
    },
    /// Delete a token.
    Revoke {
        /// The token's id (see `list`).
        #[arg(value_name = "ID")]
        id: String,
    },
}

/// `dwmon pause`.
#[derive(Debug, Args)]
pub struct PauseArgs {
    /// The checker (its file name without .dwmon).
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The store that `once`/`run --alerts` use: an SQLite file or a PostgreSQL URL.
    #[arg(long, value_name = "FILE|URL")]
    pub store: Option<PathBuf>,
    /// End the pause by itself at T (RFC 3339 or epoch seconds); default: until `unpause`.
    #[arg(long, value_name = "T", value_parser = parse_time, allow_negative_numbers = true)]
    pub until: Option<i64>,
    /// Why, shown by `status`.
    #[arg(long, value_name = "TEXT")]
    pub comment: Option<String>,
    /// Pause a checker the store does not know yet (e.g. before its first run).
    #[arg(long)]
    pub force: bool,
    /// The pause's start time instead of now (tests; --until must be later).
    #[arg(long, value_name = "T", value_parser = parse_time, allow_negative_numbers = true)]
    pub now: Option<i64>,
}

/// `dwmon unpause`.
#[derive(Debug, Args)]
pub struct UnpauseArgs {
    /// The checker.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The store that `once`/`run --alerts` use: an SQLite file or a PostgreSQL URL.
    #[arg(long, value_name = "FILE|URL")]
    pub store: Option<PathBuf>,
    /// When the pause ends, for the alert history, instead of now (tests).
    #[arg(long, value_name = "T", value_parser = parse_time, allow_negative_numbers = true)]
    pub now: Option<i64>,
}

/// `dwmon histogram`.
#[derive(Debug, Args)]
pub struct HistogramArgs {
    /// The SQLite store file.
    #[arg(long, value_name = "FILE")]
    pub store: Option<PathBuf>,
    /// The checker whose stored rows to count.
    #[arg(long, value_name = "NAME")]
    pub checker: String,
    /// Only rows from the last SECONDS (2419200 = 4 weeks).
    #[arg(long, value_name = "SECONDS", default_value_t = 28 * 86_400)]
    pub since: u64,
    /// Count up to this time instead of now.
    #[arg(long, value_name = "T", value_parser = parse_time, allow_negative_numbers = true)]
    pub now: Option<i64>,
    /// Zone of the weekday and hour buckets (IANA name; default: the config file's
    /// time_zone, else UTC).
    #[arg(long = "tz", value_name = "ZONE", value_parser = parse_zone, env = "DWMON_TZ")]
    pub tz: Option<Tz>,
    /// Also write an SVG heat map to FILE.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
}

/// `dwmon suggest`.
#[derive(Debug, Args)]
pub struct SuggestArgs {
    /// Directory of *.dwmon checker files (required unless the --config file sets
    /// `checkers`): the checker's requirements and zone come from its file.
    #[arg(long, value_name = "DIR")]
    pub checkers: Option<PathBuf>,
    /// The SQLite store file the checker's runs use.
    #[arg(long, value_name = "FILE")]
    pub store: Option<PathBuf>,
    /// The checker (its file name without .dwmon).
    #[arg(long, value_name = "NAME")]
    pub checker: String,
    /// Only this requirement (0-based index in the file); default: every one.
    #[arg(long, value_name = "N")]
    pub requirement: Option<usize>,
    /// Days of history to learn from, ending at --to (1 to 3660).
    #[arg(long, value_name = "DAYS", default_value_t = 28,
          value_parser = clap::value_parser!(u32).range(1..=3660))]
    pub days: u32,
    /// The last minute of history (default: the checker's last checked minute, else now).
    #[arg(long, value_name = "T", value_parser = parse_time, allow_negative_numbers = true)]
    pub to: Option<i64>,
    /// Reminder interval of the alert policy the proposals are backtested with, in seconds
    /// (0 = no reminders; the alerts config's default is 14400).
    #[arg(long, value_name = "SECONDS", default_value_t = 14_400)]
    pub repeat_seconds: u64,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub zone: ZoneArg,
    /// One JSON object per requirement (history, seasons, proposals with their backtests).
    #[arg(long)]
    pub json: bool,
}

/// `dwmon backtest`.
#[derive(Debug, Args)]
pub struct BacktestArgs {
    /// Directory of *.dwmon checker files (required unless the --config file sets
    /// `checkers`).
    #[arg(long, value_name = "DIR")]
    pub checkers: Option<PathBuf>,
    /// The SQLite store file the checker's runs use.
    #[arg(long, value_name = "FILE")]
    pub store: Option<PathBuf>,
    /// The checker whose stored rows are replayed.
    #[arg(long, value_name = "NAME")]
    pub checker: String,
    /// A requirement line to replay (quote it), or the index N of one of the checker's lines;
    /// repeatable (e.g. the seasonal lines `suggest` prints). Default: the checker's lines.
    #[arg(long = "requirement", value_name = "LINE|N")]
    pub requirements: Vec<String>,
    /// First minute replayed (default: 28 days before --to, or the first minute whose whole
    /// window is in the stored history if that is later).
    #[arg(long, value_name = "T", value_parser = parse_time, allow_negative_numbers = true)]
    pub from: Option<i64>,
    /// Last minute replayed (default: the checker's last checked minute, else now).
    #[arg(long, value_name = "T", value_parser = parse_time, allow_negative_numbers = true)]
    pub to: Option<i64>,
    /// A known incident T1..T2: report the time from T1 to the first alert.
    #[arg(long, value_name = "T1..T2", value_parser = parse_incident)]
    pub incident: Option<(i64, i64)>,
    /// Also write the band chart (counts, MINNUM..MAXNUM band, BAD minutes, episodes) as SVG.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Reminder interval of the replayed alert policy, in seconds (0 = no reminders; the
    /// alerts config's default is 14400).
    #[arg(long, value_name = "SECONDS", default_value_t = 14_400)]
    pub repeat_seconds: u64,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub zone: ZoneArg,
    /// One JSON object: history, summary, episodes, incident and every check.
    #[arg(long)]
    pub json: bool,
}
