//! The config file (`dwmon.toml`, given with `--config FILE` or `DWMON_CONFIG`): what the
//! command line would otherwise repeat on every invocation, and secrets kept off it.
//!
//! ```toml
//! checkers = "checkers"            # --checkers
//! store = "/var/lib/dwmon/dwmon.sqlite"   # --store
//! time_zone = "America/New_York"   # --tz
//! alerts = "alerts.json"           # --alerts
//! allow_command_sources = false    # --allow-command-sources
//! delivery_give_up = "24h"         # --delivery-give-up
//! fetch_timeout = "60s"            # --fetch-timeout
//! concurrency = 8                  # --concurrency
//!
//! [sources]                        # --source NAME=URL, one line per name
//! default = "sqlite:data.sqlite"
//! warehouse = "postgres://dwmon:${DWMON_PG_PASSWORD}@db.example.com/prod"
//!
//! [retention]                      # --keep-rows / --keep-checks
//! rows = "35d"
//! checks = "90d"
//! ```
//!
//! - Every key is optional; an unknown key is an error naming the file, line and column.
//! - Relative paths (`checkers`, `store`, `alerts`, `sqlite:` sources) are relative to the
//!   directory of the config file, so the file works from any working directory.
//! - Command-line flags (and their environment variables, e.g. `DWMON_TZ`) override the file;
//!   `--source` adds sources and replaces a file's source of the same name.
//! - In every string value, `${VAR}` is replaced by the environment variable `VAR` and
//!   `${VAR:-default}` by `default` when `VAR` is unset or empty; `$$` is a literal `$`. An
//!   unset variable without a default is an error naming the variable, the file and the
//!   line. Error messages never show an expanded value.
//! - `[server]` configures `dwmon serve`: `listen = "127.0.0.1:8080"` (as `--listen`). Other
//!   server parts add their keys to this table.

use crate::args::{parse_source, parse_zone, SourceSpec, SourceUrl};
use chrono_tz::Tz;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// The environment variable naming the config file when `--config` is not given.
pub const ENV_VAR: &str = "DWMON_CONFIG";

/// The config file could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {message}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// A syntax error, an unknown key, a wrong type or an invalid value.
    #[error("{path}:{line}:{column}: {message}")]
    At {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong (never an expanded value).
        message: String,
    },
}

/// A loaded config file, `${VAR}` expanded and relative paths resolved.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    /// The file, as given.
    pub path: PathBuf,
    /// `checkers`: the checker directory.
    pub checkers: Option<PathBuf>,
    /// `store`: the SQLite store file.
    pub store: Option<PathBuf>,
    /// `time_zone`: the zone of checkers without `__TIMEZONE__`, and of the times `status`
    /// and `histogram` show.
    pub time_zone: Option<Tz>,
    /// `alerts`: the JSON alerts config.
    pub alerts: Option<PathBuf>,
    /// `[sources]`, in name order.
    pub sources: Vec<SourceSpec>,
    /// Where each source's value is in the file (`path:line:column`), for messages.
    pub source_positions: BTreeMap<String, String>,
    /// `allow_command_sources`: `once`/`run` may run `command:` sources (as
    /// `--allow-command-sources`; either one allows them).
    pub allow_command_sources: bool,
    /// `[retention]`: `rows` and `checks` (as `--keep-rows` / `--keep-checks`).
    pub retention: dwmon_core::retention::Retention,
    /// `[server] listen`: where `dwmon serve` listens (as `--listen`).
    pub listen: Option<std::net::SocketAddr>,
    /// `delivery_give_up` (as `--delivery-give-up`).
    pub delivery_give_up: Option<dwmon_core::retention::Keep>,
    /// `fetch_timeout` (as `--fetch-timeout`).
    pub fetch_timeout: Option<std::time::Duration>,
    /// `concurrency` (as `--concurrency`).
    pub concurrency: Option<usize>,
}

/// The `[server]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<Spanned<String>>,
}

/// The `[retention]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    rows: Option<Spanned<String>>,
    checks: Option<Spanned<String>>,
}

/// The file's schema.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    checkers: Option<Spanned<String>>,
    store: Option<Spanned<String>>,
    time_zone: Option<Spanned<String>>,
    alerts: Option<Spanned<String>>,
    #[serde(default)]
    sources: BTreeMap<String, Spanned<String>>,
    allow_command_sources: Option<bool>,
    retention: Option<RawRetention>,
    server: Option<RawServer>,
    delivery_give_up: Option<Spanned<String>>,
    fetch_timeout: Option<Spanned<String>>,
    concurrency: Option<Spanned<i64>>,
}

impl Config {
    /// Reads and parses the file at `path`, expanding `${VAR}` from the process environment.
    ///
    /// # Errors
    /// An unreadable file, or any [`Config::parse`] error.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: shown.clone(),
            message: e.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new(""));
        let mut config = Config::parse(&shown, &text, base, &|name| std::env::var(name).ok())?;
        config.path = path.to_path_buf();
        Ok(config)
    }

    /// Parses config `text` (named `path` in messages); relative paths are joined to `base`
    /// and `${VAR}` is looked up with `env` (tests pass a map).
    ///
    /// ```
    /// use dwmon::config::Config;
    /// let text = "store = \"dwmon.sqlite\"\n[sources]\nwh = \"postgres://dwmon:${PW}@db/prod\"\n";
    /// let env = |name: &str| (name == "PW").then(|| "s3cret".to_string());
    /// let config = Config::parse("dwmon.toml", text, "/etc/dwmon".as_ref(), &env)?;
    /// assert_eq!(config.store.as_deref(), Some("/etc/dwmon/dwmon.sqlite".as_ref()));
    /// assert_eq!(config.sources[0].name, "wh");
    /// # Ok::<(), dwmon::config::ConfigError>(())
    /// ```
    ///
    /// # Errors
    /// [`ConfigError::At`] naming the line and column of a syntax error, an unknown key, a
    /// wrong type, an unset variable, a bad time zone or a bad source URL.
    pub fn parse(
        path: &str,
        text: &str,
        base: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let at = |offset: usize, message: String| {
            let (line, column) = line_column(text, offset);
            ConfigError::At {
                path: path.to_string(),
                line,
                column,
                message,
            }
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |span| span.start);
            at(offset, safe_message(e.message()))
        })?;
        // Expands one value; errors point at the value.
        let value = |key: &str, value: &Spanned<String>| {
            expand(value.get_ref(), env)
                .map_err(|message| at(value.span().start, format!("{key}: {message}")))
        };
        let path_of = |key: &str, spanned: &Option<Spanned<String>>| {
            spanned
                .as_ref()
                .map(|v| value(key, v).map(|p| base.join(p)))
                .transpose()
        };
        let mut config = Config {
            path: PathBuf::from(path),
            checkers: path_of("checkers", &raw.checkers)?,
            store: path_of("store", &raw.store)?,
            alerts: path_of("alerts", &raw.alerts)?,
            allow_command_sources: raw.allow_command_sources.unwrap_or(false),
            ..Config::default()
        };
        if let Some(spanned) = &raw.delivery_give_up {
            let text = value("delivery_give_up", spanned)?;
            config.delivery_give_up =
                Some(dwmon_core::retention::parse_keep(&text).map_err(|message| {
                    at(spanned.span().start, format!("delivery_give_up: {message}"))
                })?);
        }
        if let Some(spanned) = &raw.fetch_timeout {
            let text = value("fetch_timeout", spanned)?;
            config.fetch_timeout =
                Some(crate::args::parse_fetch_timeout(&text).map_err(|message| {
                    at(spanned.span().start, format!("fetch_timeout: {message}"))
                })?);
        }
        if let Some(spanned) = &raw.concurrency {
            config.concurrency = Some(
                crate::args::parse_concurrency(&spanned.get_ref().to_string()).map_err(
                    |message| at(spanned.span().start, format!("concurrency: {message}")),
                )?,
            );
        }
        if let Some(retention) = &raw.retention {
            let keep = |key: &str, spanned: &Option<Spanned<String>>| {
                spanned
                    .as_ref()
                    .map(|v| {
                        let text = value(key, v)?;
                        dwmon_core::retention::parse_keep(&text)
                            .map_err(|message| at(v.span().start, format!("{key}: {message}")))
                    })
                    .transpose()
            };
            config.retention = dwmon_core::retention::Retention {
                rows: keep("retention.rows", &retention.rows)?,
                checks: keep("retention.checks", &retention.checks)?,
            };
        }
        if let Some(listen) = raw.server.as_ref().and_then(|s| s.listen.as_ref()) {
            let text = value("server.listen", listen)?;
            config.listen = Some(text.parse().map_err(|_| {
                at(
                    listen.span().start,
                    format!(
                        "server.listen: {:?} is not an address with a port \
                         (e.g. \"127.0.0.1:8080\" or \"[::]:8080\")",
                        listen.get_ref()
                    ),
                )
            })?);
        }
        if let Some(zone) = &raw.time_zone {
            let name = value("time_zone", zone)?;
            let zone_error = |message: String| {
                let message = if name == *zone.get_ref() {
                    message
                } else {
                    format!(
                        "{:?} (once its variables are expanded) is not an IANA time zone name",
                        zone.get_ref()
                    )
                };
                at(zone.span().start, format!("time_zone: {message}"))
            };
            config.time_zone = Some(parse_zone(&name).map_err(zone_error)?);
        }
        for (name, url) in &raw.sources {
            let key = format!("sources.{name}");
            let expanded = value(&key, url)?;
            let mut spec = parse_source(&format!("{name}={expanded}")).map_err(|message| {
                // A message about the expanded URL could show what a variable held: describe
                // the value as written in the file instead.
                let message = if expanded == *url.get_ref() {
                    message
                } else {
                    match parse_source(&format!("{name}={}", url.get_ref())) {
                        Err(message) => message,
                        Ok(_) => "not a valid source URL once its ${...} variables are \
                                  expanded (the expanded value is not shown)"
                            .to_string(),
                    }
                };
                at(url.span().start, format!("{key}: {message}"))
            })?;
            if let SourceUrl::Sqlite(file) = &mut spec.url {
                *file = base.join(&*file);
            }
            let (line, column) = line_column(text, url.span().start);
            config
                .source_positions
                .insert(name.clone(), format!("{path}:{line}:{column}"));
            config.sources.push(spec);
        }
        Ok(config)
    }
}

/// Fills what `command` leaves unset from `config`: flags (and their environment variables)
/// win, and `--source` replaces a file's source of the same name.
pub(crate) fn apply(config: &Config, command: &mut crate::cli::Command) {
    use crate::cli::Command;
    fn fill(slot: &mut Option<PathBuf>, value: &Option<PathBuf>) {
        if slot.is_none() {
            slot.clone_from(value);
        }
    }
    let merge = |sources: &mut Vec<SourceSpec>| {
        for spec in &config.sources {
            if !sources.iter().any(|s| s.name == spec.name) {
                sources.push(spec.clone());
            }
        }
    };
    let zone = |zone: &mut crate::cli::ZoneArg| {
        if zone.tz.is_none() {
            zone.tz = config.time_zone;
        }
    };
    if let Command::Serve(args) = command {
        args.listen = args.listen.or(config.listen);
    }
    match command {
        Command::Check(args) => {
            fill(&mut args.checkers, &config.checkers);
            fill(&mut args.alerts, &config.alerts);
            fill(&mut args.store, &config.store);
            merge(&mut args.sources);
        }
        Command::Schedule(args) => {
            fill(&mut args.checkers, &config.checkers);
            zone(&mut args.zone);
        }
        Command::Once(crate::cli::OnceArgs { cycle, .. })
        | Command::Run(crate::cli::RunArgs { cycle, .. })
        | Command::Serve(crate::cli::ServeArgs {
            run: crate::cli::RunArgs { cycle, .. },
            ..
        }) => {
            fill(&mut cycle.checkers, &config.checkers);
            fill(&mut cycle.store, &config.store);
            fill(&mut cycle.alerts, &config.alerts);
            zone(&mut cycle.zone);
            merge(&mut cycle.sources);
            cycle.allow_command_sources |= config.allow_command_sources;
            cycle.keep_rows = cycle.keep_rows.or(config.retention.rows);
            cycle.keep_checks = cycle.keep_checks.or(config.retention.checks);
            cycle.delivery_give_up = cycle.delivery_give_up.or(config.delivery_give_up);
            cycle.fetch_timeout = cycle.fetch_timeout.or(config.fetch_timeout);
            cycle.concurrency = cycle.concurrency.or(config.concurrency);
        }
        Command::Status(args) => {
            fill(&mut args.store, &config.store);
            args.tz = args.tz.or(config.time_zone);
        }
        Command::Pause(args) => fill(&mut args.store, &config.store),
        Command::Token(args) => fill(&mut args.store, &config.store),
        Command::Unpause(args) => fill(&mut args.store, &config.store),
        Command::Histogram(args) => {
            fill(&mut args.store, &config.store);
            args.tz = args.tz.or(config.time_zone);
        }
        Command::Suggest(args) => {
            fill(&mut args.checkers, &config.checkers);
            fill(&mut args.store, &config.store);
            zone(&mut args.zone);
        }
        Command::Backtest(args) => {
            fill(&mut args.checkers, &config.checkers);
            fill(&mut args.store, &config.store);
            zone(&mut args.zone);
        }
        Command::Forget(args) => fill(&mut args.store, &config.store),
        Command::Doctor(args) => fill(&mut args.store, &config.store),
        Command::Completions(_) | Command::Man => {}
    }
}

/// The checker directory a command was given (flag or config file).
///
/// # Errors
/// A usage error saying how to give one.
pub(crate) fn checkers_dir(dir: &Option<PathBuf>) -> crate::Result<&Path> {
    dir.as_deref().ok_or_else(|| {
        crate::Error::Usage(
            "--checkers DIR is required (or `checkers = \"DIR\"` in the --config file)".into(),
        )
    })
}

/// A toml message without any string value it quotes (`invalid type: string "postgres://
/// u:secret@..."` would echo a password given where a table was expected).
fn safe_message(message: &str) -> String {
    let message = message.trim();
    match message.strip_prefix("invalid type: string \"") {
        Some(rest) => match rest.rfind("\", expected") {
            Some(end) => format!("invalid type: string, {}", &rest[end + 3..]),
            None => "invalid type: string".to_string(),
        },
        None => message.to_string(),
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

/// Expands `${VAR}`, `${VAR:-default}` and `$$` in `text`.
///
/// ```
/// use dwmon::config::expand;
/// let env = |name: &str| (name == "PW").then(|| "s3cret".to_string());
/// assert_eq!(expand("u:${PW}@h ${PORT:-5432} $$5", &env).as_deref(), Ok("u:s3cret@h 5432 $5"));
/// assert!(expand("${NOPE}", &env).unwrap_err().contains("NOPE"));
/// ```
///
/// # Errors
/// A message naming an unset variable (without default), an unterminated `${`, an invalid
/// variable name, or `$NAME` without braces. Never the value of a variable.
pub fn expand(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('{') {
            let Some(close) = inner.find('}') else {
                return Err("unterminated ${ (write $$ for a literal $)".to_string());
            };
            let body = &inner[..close];
            let (name, default) = match body.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (body, None),
            };
            if !is_variable_name(name) {
                return Err(format!(
                    "${{{name}}}: a variable name is letters, digits and _, not starting with a \
                     digit (write $$ for a literal $)"
                ));
            }
            match (
                env(name).filter(|v| default.is_none() || !v.is_empty()),
                default,
            ) {
                (Some(found), _) => out.push_str(&found),
                (None, Some(default)) => out.push_str(default),
                (None, None) => {
                    return Err(format!(
                        "environment variable {name} is not set (use ${{{name}:-default}} for a \
                         default)"
                    ))
                }
            }
            rest = &inner[close + 1..];
        } else if after.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            return Err(format!(
                "${name}: write ${{{name}}} to use an environment variable, or $${name} for \
                 the text"
            ));
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "DWMON_PG_PASSWORD" => Some("hunter2".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse("/etc/dwmon/dwmon.toml", text, Path::new("/etc/dwmon"), &env)
    }

    fn error(text: &str) -> String {
        match parse(text) {
            Ok(config) => panic!("expected an error, got {config:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn every_key_with_relative_paths_resolved() -> Result<(), ConfigError> {
        let config = parse(
            r#"
checkers = "checkers"
store = "/var/lib/dwmon/dwmon.sqlite"
time_zone = "America/New_York"
alerts = "alerts.json"

[sources]
default = "sqlite:data.sqlite"
warehouse = "postgres://dwmon:${DWMON_PG_PASSWORD}@db/prod"
"#,
        )?;
        assert_eq!(config.checkers, Some(PathBuf::from("/etc/dwmon/checkers")));
        assert_eq!(
            config.store,
            Some(PathBuf::from("/var/lib/dwmon/dwmon.sqlite"))
        );
        assert_eq!(config.time_zone, Some(chrono_tz::America::New_York));
        assert_eq!(config.alerts, Some(PathBuf::from("/etc/dwmon/alerts.json")));
        assert_eq!(
            config.sources,
            [
                SourceSpec {
                    name: "default".into(),
                    url: SourceUrl::Sqlite("/etc/dwmon/data.sqlite".into())
                },
                SourceSpec {
                    name: "warehouse".into(),
                    url: SourceUrl::Postgres("postgres://dwmon:hunter2@db/prod".into())
                }
            ]
        );
        assert_eq!(
            config.source_positions.get("warehouse").map(String::as_str),
            Some("/etc/dwmon/dwmon.toml:9:13")
        );
        assert_eq!(
            parse("")?,
            Config {
                path: "/etc/dwmon/dwmon.toml".into(),
                ..Config::default()
            }
        );
        Ok(())
    }

    #[test]
    fn the_delivery_give_up_age_is_read_and_checked() {
        let env = |_: &str| None;
        let config =
            Config::parse("c.toml", "delivery_give_up = \"90m\"\n", "/".as_ref(), &env).unwrap();
        assert_eq!(
            config.delivery_give_up,
            Some(dwmon_core::retention::Keep::For(5400))
        );
        let message = error("delivery_give_up = \"soon\"\n");
        assert!(message.contains("delivery_give_up"), "{message}");
    }

    #[test]
    fn the_fetch_timeout_and_concurrency_are_read_and_checked() {
        let env = |name: &str| (name == "FETCH").then(|| "2m".to_string());
        let text = "fetch_timeout = \"${FETCH}\"\nconcurrency = 16\n";
        let config = Config::parse("c.toml", text, "/".as_ref(), &env).unwrap();
        assert_eq!(
            config.fetch_timeout,
            Some(std::time::Duration::from_secs(120))
        );
        assert_eq!(config.concurrency, Some(16));
        let message = error("fetch_timeout = \"0s\"\n");
        assert!(
            message.starts_with("/etc/dwmon/dwmon.toml:1:17: fetch_timeout: \"0s\" would abandon"),
            "{message}"
        );
        let message = error("fetch_timeout = \"3d\"\n");
        assert!(message.contains("longer than 24h"), "{message}");
        let message = error("\nconcurrency = 0\n");
        assert!(
            message
                .starts_with("/etc/dwmon/dwmon.toml:2:15: concurrency: 0 would fetch no checker"),
            "{message}"
        );
        let message = error("concurrency = 5000\n");
        assert!(message.contains("more than 1024"), "{message}");
        let message = error("concurrency = \"8\"\n");
        assert!(
            message.starts_with("/etc/dwmon/dwmon.toml:1:15: "),
            "{message}"
        );
    }

    #[test]
    fn unknown_keys_name_the_file_line_and_column() {
        assert_eq!(
            error("store = \"s.sqlite\"\nchekers = \"c\"\n"),
            "/etc/dwmon/dwmon.toml:2:1: unknown field `chekers`, expected one of `checkers`, \
             `store`, `time_zone`, `alerts`, `sources`, `allow_command_sources`, `retention`, \
             `server`, `delivery_give_up`, `fetch_timeout`, `concurrency`"
        );
        let message = error("[server]\nlisten = \"127.0.0.1:8080\"\nport = 1\n");
        assert!(
            message.starts_with("/etc/dwmon/dwmon.toml:3:1"),
            "{message}"
        );
        assert!(message.contains("unknown field `port`"), "{message}");
        let message = error("[server]\nlisten = \"localhost\"\n");
        assert!(
            message.starts_with("/etc/dwmon/dwmon.toml:2:10: server.listen"),
            "{message}"
        );
        let message = error("store = 5\n");
        assert!(
            message.starts_with("/etc/dwmon/dwmon.toml:1:9: "),
            "{message}"
        );
        let message = error("store = \"unterminated\n");
        assert!(message.starts_with("/etc/dwmon/dwmon.toml:1:"), "{message}");
    }

    #[test]
    fn retention_is_read_and_checked() {
        let env = |name: &str| (name == "KEEP").then(|| "90d".to_string());
        let text = "[retention]\nrows = \"35d\"\nchecks = \"${KEEP}\"\n";
        let config = Config::parse("dwmon.toml", text, "/etc".as_ref(), &env).unwrap();
        assert_eq!(
            config.retention,
            dwmon_core::retention::Retention {
                rows: Some(dwmon_core::retention::Keep::For(35 * 86_400)),
                checks: Some(dwmon_core::retention::Keep::For(90 * 86_400)),
            }
        );
        let message = error("[retention]\nrows = \"35x\"\n");
        assert!(
            message.starts_with("/etc/dwmon/dwmon.toml:2:8: retention.rows: \"35x\": unknown unit"),
            "{message}"
        );
        let message = error("[retention]\nrow = \"35d\"\n");
        assert!(message.contains("unknown field `row`"), "{message}");
    }

    #[test]
    fn a_wrongly_typed_secret_is_not_echoed() {
        let message = error("sources = \"postgres://u:hunter2@db/prod\"\n");
        assert!(!message.contains("hunter2"), "{message}");
        assert!(message.contains("invalid type: string"), "{message}");
    }

    #[test]
    fn variables_expand_with_defaults_and_escapes() {
        assert_eq!(
            expand("a${DWMON_PG_PASSWORD}b", &env).as_deref(),
            Ok("ahunter2b")
        );
        assert_eq!(expand("${NOPE:-x:y}", &env).as_deref(), Ok("x:y"));
        assert_eq!(expand("${EMPTY:-d}", &env).as_deref(), Ok("d"));
        assert_eq!(expand("${EMPTY}", &env).as_deref(), Ok(""));
        assert_eq!(expand("${NOPE:-}", &env).as_deref(), Ok(""));
        assert_eq!(expand("$$ $$$$ 5$ $1", &env).as_deref(), Ok("$ $$ 5$ $1"));
        assert_eq!(
            expand("$${DWMON_PG_PASSWORD}", &env).as_deref(),
            Ok("${DWMON_PG_PASSWORD}")
        );
        for bad in ["${NOPE}", "${", "${1X}", "${}", "$HOME"] {
            assert!(expand(bad, &env).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_unset_variable_names_variable_file_and_line() {
        assert_eq!(
            error("[sources]\n\nwh = \"postgres://dwmon:${PG_PW}@db/prod\"\n"),
            "/etc/dwmon/dwmon.toml:3:6: sources.wh: environment variable PG_PW is not set \
             (use ${PG_PW:-default} for a default)"
        );
    }

    #[test]
    fn errors_never_show_an_expanded_value() {
        // The expanded URL is bad, the template is fine: the message shows neither.
        let message = error("[sources]\nwh = \"${DWMON_PG_PASSWORD}\"\n");
        assert!(!message.contains("hunter2"), "{message}");
        assert!(
            message.starts_with("/etc/dwmon/dwmon.toml:2:6: sources.wh: "),
            "{message}"
        );
        // A bad template is described as written.
        let message = error("[sources]\nwh = \"postgress://u:${DWMON_PG_PASSWORD}@h/db\"\n");
        assert!(!message.contains("hunter2"), "{message}");
        assert!(message.contains("unsupported URL"), "{message}");
        let message = error("time_zone = \"Mars/${DWMON_PG_PASSWORD}\"\n");
        assert!(
            message.starts_with("/etc/dwmon/dwmon.toml:1:13: time_zone: "),
            "{message}"
        );
        assert!(!message.contains("hunter2"), "{message}");
    }

    #[test]
    fn sources_go_through_the_command_line_parser() {
        let message = error("[sources]\nwh = \"mysqll://x\"\n");
        assert!(message.contains("sources.wh: "), "{message}");
        assert!(message.contains("unsupported URL"), "{message}");
    }

    #[test]
    fn positions_count_characters() {
        assert_eq!(line_column("ab\ncé d", 7), (2, 4));
        assert_eq!(line_column("", 5), (1, 1));
    }
}
