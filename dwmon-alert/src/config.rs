//! [`AlertsConfig`]: channel configuration and secrets, read from a JSON file (the CLI's
//! `--alerts FILE`). Secrets never come from checker files.
//!
//! # Format
//!
//! ```json
//! {
//!   "repeat_seconds": 14400,
//!   "timeout_seconds": 10,
//!   "tls_ca_file": "/etc/dwmon/internal-ca.pem",
//!   "link_template": "https://grafana.example.com/d/dwmon?var-checker={checker}",
//!   "default_alert": {"stdout": true},
//!   "webhooks": {"ops": {"env": "OPS_WEBHOOK_URL"}},
//!   "slack": {
//!     "webhook_url": {"env": "SLACK_WEBHOOK_URL"},
//!     "channels": {"#data": {"env": "SLACK_DATA_WEBHOOK_URL"}}
//!   },
//!   "pagerduty": {
//!     "events_url": "https://events.pagerduty.com/v2/enqueue",
//!     "services": {"data-team": {"env": "PAGERDUTY_DATA_ROUTING_KEY"}}
//!   },
//!   "smtp": {
//!     "host": "smtp.example.com", "port": 587, "security": "starttls",
//!     "from": "dwmon <dwmon@example.com>",
//!     "username": {"env": "SMTP_USERNAME"}, "password": {"env": "SMTP_PASSWORD"}
//!   }
//! }
//! ```
//!
//! Every field is optional. A secret (webhook URLs, routing keys, SMTP credentials) is either
//! `{"env": "VARIABLE"}` — read from the environment when the file is loaded — or a literal
//! string in the file. Secrets are redacted from `Debug` output and from every channel error.
//!
//! - `repeat_seconds`: default reminder interval (4 h; 0 = off); a checker's
//!   `"alert": {"repeat_seconds": n}` overrides it.
//! - `timeout_seconds`: per HTTP request / SMTP session (default 10).
//! - `tls_ca_file`: a PEM file of one or more CA certificates trusted *in addition to* the
//!   bundled Mozilla roots by every TLS connection (HTTPS webhooks, Slack, PagerDuty, SMTP with
//!   STARTTLS or implicit TLS) — for an internal relay or proxy signed by a private CA. A
//!   relative path is relative to the working directory. Read when the channels are set up;
//!   an unreadable file or one without a valid PEM certificate is a
//!   [`ConfigError::TlsCa`] naming the file. Certificates are always verified (there is no
//!   "accept invalid certificates" switch) and STARTTLS is required, never skipped.
//! - `link_template`: a link added to Slack and email messages; `{checker}`,
//!   `{requirement_index}`, `{minute}` and `{incident_key}` are replaced.
//! - `default_alert`: the routes of checkers without an `"alert"` key, same schema as that key
//!   (see [`crate::route`]); default `{"stdout": true}`.
//! - `slack.channels`: incoming-webhook URL per channel name; other channels use
//!   `slack.webhook_url` with the channel named in the payload.
//! - `pagerduty.services`: routing key per service name (what checkers name in
//!   `"pagerduty"`); `events_url` defaults to PagerDuty's Events API v2 endpoint.
//! - `smtp.security`: `starttls` (default, port 587), `tls` (implicit TLS, port 465) or
//!   `plain` (no encryption, port 25; for local relays and tests only).

use crate::route::{ChannelKind, RouteError, Routes, Target};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The alerts config could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read alerts config {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid JSON or does not match the format.
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A secret names an environment variable that is not set.
    #[error("{path}: {field} names environment variable {variable}, which is not set")]
    MissingEnv {
        /// The file.
        path: String,
        /// Which setting.
        field: String,
        /// The variable.
        variable: String,
    },
    /// `default_alert` does not follow the routing schema.
    #[error("{path}: default_alert: {source}")]
    DefaultAlert {
        /// The file.
        path: String,
        /// Why.
        source: RouteError,
    },
    /// `tls_ca_file` cannot be read or holds no valid PEM certificate.
    #[error("tls_ca_file {file}: {message}")]
    TlsCa {
        /// The CA file, as configured.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// A channel cannot be set up (bad SMTP host or sender, ...).
    #[error("{path}: {field}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// Which setting.
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// A secret value: `{"env": "VARIABLE"}` or a literal string. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Secret {
    /// Read from this environment variable at load time (the value is kept after
    /// [`AlertsConfig::resolve`]).
    Env {
        /// The variable's name.
        env: String,
        /// Its value once resolved.
        #[serde(skip)]
        value: Option<String>,
    },
    /// Given in the config file.
    Literal(String),
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Secret::Env { env, .. } => write!(f, "Secret(env {env})"),
            Secret::Literal(_) => f.write_str("Secret(<redacted>)"),
        }
    }
}

impl Secret {
    /// A literal secret (tests, programmatic configs).
    pub fn literal(value: impl Into<String>) -> Secret {
        Secret::Literal(value.into())
    }

    /// The value (empty for an unresolved environment secret). Never log it.
    pub fn expose(&self) -> &str {
        match self {
            Secret::Env { value, .. } => value.as_deref().unwrap_or(""),
            Secret::Literal(value) => value,
        }
    }

    fn resolve(
        &mut self,
        path: &str,
        field: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        if let Secret::Env {
            env: variable,
            value,
        } = self
        {
            match env(variable) {
                Some(found) => *value = Some(found),
                None => {
                    return Err(ConfigError::MissingEnv {
                        path: path.to_string(),
                        field: field.to_string(),
                        variable: variable.clone(),
                    })
                }
            }
        }
        Ok(())
    }
}

/// Slack settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// Incoming-webhook URL for channels without their own.
    pub webhook_url: Option<Secret>,
    /// Incoming-webhook URL per channel name.
    #[serde(default)]
    pub channels: BTreeMap<String, Secret>,
}

/// PagerDuty settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerDutyConfig {
    /// Events API v2 endpoint (default [`PagerDutyConfig::DEFAULT_EVENTS_URL`]).
    pub events_url: Option<String>,
    /// Routing (integration) key per service name.
    #[serde(default)]
    pub services: BTreeMap<String, Secret>,
}

impl PagerDutyConfig {
    /// PagerDuty's Events API v2 endpoint.
    pub const DEFAULT_EVENTS_URL: &'static str = "https://events.pagerduty.com/v2/enqueue";
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS (required), port 587 by default.
    #[default]
    Starttls,
    /// Implicit TLS, port 465 by default.
    Tls,
    /// No encryption, port 25 by default: local relays and tests only.
    Plain,
}

/// SMTP settings for the email channel.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Server host name.
    pub host: String,
    /// Server port (default by `security`).
    pub port: Option<u16>,
    /// Connection security (default STARTTLS).
    #[serde(default)]
    pub security: SmtpSecurity,
    /// Sender, e.g. `dwmon <dwmon@example.com>`.
    pub from: String,
    /// Login name, if the server needs one.
    pub username: Option<Secret>,
    /// Password, if the server needs one.
    pub password: Option<Secret>,
}

/// Channel configuration and secrets (see the module docs for the JSON format).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// Default reminder interval in seconds (4 h when absent; 0 = off).
    pub repeat_seconds: Option<u64>,
    /// Per HTTP request / SMTP session, in seconds (default 10).
    pub timeout_seconds: Option<u64>,
    /// PEM file of extra CA certificates trusted by every TLS channel (HTTP and SMTP).
    pub tls_ca_file: Option<PathBuf>,
    /// Link added to Slack and email messages.
    pub link_template: Option<String>,
    /// Routes of checkers without an `"alert"` key (default `{"stdout": true}`).
    pub default_alert: Option<serde_json::Value>,
    /// Named webhook URLs (for URLs that embed tokens).
    #[serde(default)]
    pub webhooks: BTreeMap<String, Secret>,
    /// Slack settings.
    pub slack: Option<SlackConfig>,
    /// PagerDuty settings.
    pub pagerduty: Option<PagerDutyConfig>,
    /// SMTP settings.
    pub smtp: Option<SmtpConfig>,
}

impl AlertsConfig {
    /// Default request timeout.
    pub const DEFAULT_TIMEOUT_SECONDS: u64 = 10;

    /// Loads the JSON file at `path`, resolving `{"env": ...}` secrets from the process
    /// environment.
    ///
    /// # Errors
    /// Unreadable file, invalid JSON or unknown fields (with line and column), an unset
    /// environment variable, or an invalid `default_alert`.
    pub fn load(path: impl AsRef<Path>) -> Result<AlertsConfig, ConfigError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        AlertsConfig::parse(&shown, &text, &|name| std::env::var(name).ok())
    }

    /// Parses config `text` (named `path` in errors), resolving environment secrets with
    /// `env` (tests pass a map instead of touching the process environment).
    ///
    /// ```
    /// use dwmon_alert::AlertsConfig;
    /// let text = r#"{"slack": {"webhook_url": {"env": "SLACK_URL"}}}"#;
    /// let config = AlertsConfig::parse("alerts.json", text, &|name| {
    ///     (name == "SLACK_URL").then(|| "https://hooks.slack.com/services/T/B/X".to_string())
    /// })?;
    /// assert!(!format!("{config:?}").contains("hooks.slack.com"));
    /// # Ok::<(), dwmon_alert::ConfigError>(())
    /// ```
    ///
    /// # Errors
    /// As [`AlertsConfig::load`].
    pub fn parse(
        path: &str,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<AlertsConfig, ConfigError> {
        let mut config: AlertsConfig = serde_json::from_str(text).map_err(|e| {
            // serde_json ends its message with the position, which the error already
            // prints as `path:line:column`; column 0 means "at the start of the line".
            let message = e.to_string();
            let suffix = format!(" at line {} column {}", e.line(), e.column());
            ConfigError::Parse {
                path: path.to_string(),
                line: e.line(),
                column: e.column().max(1),
                message: message
                    .strip_suffix(&suffix)
                    .map_or_else(|| message.clone(), str::to_string),
            }
        })?;
        config.resolve(path, env)?;
        config.default_routes(path)?;
        Ok(config)
    }

    /// Resolves every `{"env": ...}` secret with `env`.
    ///
    /// # Errors
    /// [`ConfigError::MissingEnv`] naming the first unset variable.
    pub fn resolve(
        &mut self,
        path: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        for (name, secret) in &mut self.webhooks {
            secret.resolve(path, &format!("webhooks.{name}"), env)?;
        }
        if let Some(slack) = &mut self.slack {
            if let Some(url) = &mut slack.webhook_url {
                url.resolve(path, "slack.webhook_url", env)?;
            }
            for (name, secret) in &mut slack.channels {
                secret.resolve(path, &format!("slack.channels.{name}"), env)?;
            }
        }
        if let Some(pagerduty) = &mut self.pagerduty {
            for (name, secret) in &mut pagerduty.services {
                secret.resolve(path, &format!("pagerduty.services.{name}"), env)?;
            }
        }
        if let Some(smtp) = &mut self.smtp {
            if let Some(username) = &mut smtp.username {
                username.resolve(path, "smtp.username", env)?;
            }
            if let Some(password) = &mut smtp.password {
                password.resolve(path, "smtp.password", env)?;
            }
        }
        Ok(())
    }

    /// The routes of checkers without an `"alert"` key.
    ///
    /// # Errors
    /// [`ConfigError::DefaultAlert`] when `default_alert` does not follow the schema.
    pub fn default_routes(&self, path: &str) -> Result<Routes, ConfigError> {
        let value = self
            .default_alert
            .clone()
            .unwrap_or_else(|| serde_json::json!({"stdout": true}));
        let wrapped = serde_json::json!({ "alert": value });
        Routes::from_extra(&wrapped)
            .map(Option::unwrap_or_default)
            .map_err(|source| ConfigError::DefaultAlert {
                path: path.to_string(),
                source,
            })
    }

    /// The reminder interval for checkers that do not set one.
    pub fn repeat_seconds(&self) -> u64 {
        self.repeat_seconds
            .unwrap_or(crate::AlertPolicy::DEFAULT_REPEAT_SECONDS)
    }

    /// The request / session timeout.
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(
            self.timeout_seconds
                .unwrap_or(Self::DEFAULT_TIMEOUT_SECONDS)
                .max(1),
        )
    }

    /// Reads `tls_ca_file` (`None` when not set), checked to hold at least one well-formed
    /// PEM certificate.
    ///
    /// # Errors
    /// [`ConfigError::TlsCa`] naming the file when it cannot be read, is not valid PEM, or
    /// holds no `CERTIFICATE` block.
    pub fn tls_ca(&self) -> Result<Option<TlsCa>, ConfigError> {
        let Some(file) = &self.tls_ca_file else {
            return Ok(None);
        };
        let mut ca = TlsCa {
            file: file.clone(),
            pem: Vec::new(),
        };
        ca.pem = std::fs::read(file).map_err(|e| ca.error(format!("cannot read: {e}")))?;
        let certificates = ca.http_certificates()?;
        if certificates.is_empty() {
            return Err(
                ca.error("no PEM certificate (-----BEGIN CERTIFICATE-----) in the file".into())
            );
        }
        Ok(Some(ca))
    }

    /// Whether this config can deliver to `target` (what `dwmon check` reports): the email
    /// channel needs `smtp`, Slack a webhook for the channel, PagerDuty a configured service,
    /// a webhook a well-formed http(s) URL or a configured name.
    ///
    /// ```
    /// use dwmon_alert::{AlertsConfig, ChannelKind, Target};
    /// let config = AlertsConfig::default();
    /// let target = Target::new(ChannelKind::Email, "ops@example.com");
    /// assert!(config.check_target(&target).unwrap_err().contains("smtp"));
    /// assert!(config.check_target(&Target::new(ChannelKind::Log, "")).is_ok());
    /// ```
    ///
    /// # Errors
    /// A message naming the target (webhook URLs cut to their origin) and the missing
    /// setting; never a secret.
    pub fn check_target(&self, target: &Target) -> Result<(), String> {
        let shown = target.display_safe();
        let known = |names: Vec<&String>| {
            if names.is_empty() {
                "none is configured".to_string()
            } else {
                let names: Vec<&str> = names.into_iter().map(String::as_str).collect();
                format!("configured: {}", names.join(", "))
            }
        };
        match target.channel {
            ChannelKind::Stdout | ChannelKind::Log => Ok(()),
            ChannelKind::Email if self.smtp.is_none() => Err(format!(
                "{shown}: the alerts config has no \"smtp\" section, so email cannot be sent"
            )),
            ChannelKind::Email => Ok(()),
            ChannelKind::Slack => match &self.slack {
                None => Err(format!(
                    "{shown}: the alerts config has no \"slack\" section (a webhook URL)"
                )),
                Some(slack)
                    if slack.webhook_url.is_none()
                        && !slack.channels.contains_key(&target.address) =>
                {
                    Err(format!(
                        "{shown}: no webhook URL for this channel in slack.channels and no \
                         slack.webhook_url ({})",
                        known(slack.channels.keys().collect())
                    ))
                }
                Some(_) => Ok(()),
            },
            ChannelKind::Pagerduty => match &self.pagerduty {
                None => Err(format!(
                    "{shown}: the alerts config has no \"pagerduty\" section"
                )),
                Some(pd) if !pd.services.contains_key(&target.address) => Err(format!(
                    "{shown}: no such service in pagerduty.services ({})",
                    known(pd.services.keys().collect())
                )),
                Some(_) => Ok(()),
            },
            ChannelKind::Webhook if target.address.contains("://") => {
                check_http_url(&target.address).map_err(|message| format!("{shown}: {message}"))
            }
            ChannelKind::Webhook if !self.webhooks.contains_key(&target.address) => Err(format!(
                "{shown}: not an http(s) URL and no webhook of that name in \"webhooks\" ({})",
                known(self.webhooks.keys().collect())
            )),
            ChannelKind::Webhook => Ok(()),
        }
    }

    /// The configured URLs that are not well-formed http(s) URLs (`webhooks.NAME`,
    /// `slack.webhook_url`, `slack.channels.NAME`, `pagerduty.events_url`): one message per
    /// setting, naming it but not showing its (secret) value.
    pub fn url_problems(&self) -> Vec<String> {
        let mut urls: Vec<(String, &str)> = self
            .webhooks
            .iter()
            .map(|(name, url)| (format!("webhooks.{name}"), url.expose()))
            .collect();
        if let Some(slack) = &self.slack {
            urls.extend(
                slack
                    .webhook_url
                    .iter()
                    .map(|url| ("slack.webhook_url".to_string(), url.expose())),
            );
            urls.extend(
                slack
                    .channels
                    .iter()
                    .map(|(name, url)| (format!("slack.channels.{name}"), url.expose())),
            );
        }
        if let Some(url) = self
            .pagerduty
            .as_ref()
            .and_then(|p| p.events_url.as_deref())
        {
            urls.push(("pagerduty.events_url".to_string(), url));
        }
        urls.into_iter()
            .filter_map(|(field, url)| {
                check_http_url(url)
                    .err()
                    .map(|message| format!("{field}: {message} (the value is not shown)"))
            })
            .collect()
    }

    /// Every non-empty secret value, longest first (for redaction).
    pub fn secret_values(&self) -> Vec<String> {
        let mut secrets: Vec<&Secret> = self.webhooks.values().collect();
        if let Some(slack) = &self.slack {
            secrets.extend(slack.webhook_url.iter());
            secrets.extend(slack.channels.values());
        }
        if let Some(pagerduty) = &self.pagerduty {
            secrets.extend(pagerduty.services.values());
        }
        if let Some(smtp) = &self.smtp {
            secrets.extend(smtp.username.iter());
            secrets.extend(smtp.password.iter());
        }
        let mut values: Vec<String> = secrets
            .into_iter()
            .map(|s| s.expose().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        values.sort_by_key(|s| std::cmp::Reverse(s.len()));
        values.dedup();
        values
    }
}

/// The extra trusted CA certificates of `tls_ca_file`, as read by [`AlertsConfig::tls_ca`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsCa {
    /// The file, as configured (named in errors).
    pub file: PathBuf,
    /// Its PEM contents (one or more `CERTIFICATE` blocks).
    pub pem: Vec<u8>,
}

impl TlsCa {
    /// A [`ConfigError::TlsCa`] for this file.
    pub fn error(&self, message: String) -> ConfigError {
        ConfigError::TlsCa {
            file: self.file.display().to_string(),
            message,
        }
    }

    /// The certificates for reqwest (HTTP channels).
    ///
    /// # Errors
    /// [`ConfigError::TlsCa`] for malformed PEM.
    pub fn http_certificates(&self) -> Result<Vec<reqwest::Certificate>, ConfigError> {
        reqwest::Certificate::from_pem_bundle(&self.pem).map_err(|e| {
            let cause = crate::channels::error_chain(&e);
            self.error(format!("not a valid PEM certificate file: {cause}"))
        })
    }

    /// The certificates for lettre (SMTP).
    ///
    /// # Errors
    /// [`ConfigError::TlsCa`] for malformed PEM.
    pub fn smtp_certificate(
        &self,
    ) -> Result<lettre::transport::smtp::client::Certificate, ConfigError> {
        lettre::transport::smtp::client::Certificate::from_pem(&self.pem).map_err(|e| {
            let cause = crate::channels::error_chain(&e);
            self.error(format!("not a valid PEM certificate file: {cause}"))
        })
    }
}

/// `Ok` for a well-formed `http://` or `https://` URL with a host.
fn check_http_url(url: &str) -> Result<(), String> {
    match reqwest::Url::parse(url) {
        Err(e) => Err(format!("not a valid URL ({e})")),
        Ok(parsed) if !matches!(parsed.scheme(), "http" | "https") => {
            Err("not an http(s) URL".to_string())
        }
        Ok(parsed) if parsed.host_str().is_none_or(str::is_empty) => {
            Err("the URL has no host".to_string())
        }
        Ok(_) => Ok(()),
    }
}

/// Replaces every occurrence of a secret in `text` with `<redacted>`.
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut text = text.to_string();
    for secret in secrets {
        if !secret.is_empty() && text.contains(secret.as_str()) {
            text = text.replace(secret.as_str(), "<redacted>");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "PD_KEY" => Some("pd-routing-key-123".into()),
            "SMTP_PASSWORD" => Some("hunter2".into()),
            _ => None,
        }
    }

    #[test]
    fn secrets_resolve_from_env_and_stay_out_of_debug() -> Result<(), ConfigError> {
        let text = r#"{
            "pagerduty": {"services": {"data-team": {"env": "PD_KEY"}}},
            "smtp": {"host": "localhost", "from": "dwmon@example.com",
                     "username": "dwmon", "password": {"env": "SMTP_PASSWORD"}}
        }"#;
        let config = AlertsConfig::parse("alerts.json", text, &env)?;
        let pd = config
            .pagerduty
            .as_ref()
            .and_then(|p| p.services.get("data-team"));
        assert_eq!(pd.map(Secret::expose), Some("pd-routing-key-123"));
        let debug = format!("{config:?}");
        for secret in ["pd-routing-key-123", "hunter2", "\"dwmon\""] {
            assert!(!debug.contains(secret), "{secret} leaked: {debug}");
        }
        assert_eq!(
            config.secret_values(),
            ["pd-routing-key-123", "hunter2", "dwmon"]
        );
        Ok(())
    }

    #[test]
    fn missing_env_names_the_variable_and_field() {
        let text = r#"{"slack": {"webhook_url": {"env": "NOPE"}}}"#;
        let message = AlertsConfig::parse("alerts.json", text, &env)
            .map_err(|e| e.to_string())
            .err();
        assert_eq!(
            message.as_deref(),
            Some(
                "alerts.json: slack.webhook_url names environment variable NOPE, which is not set"
            )
        );
    }

    #[test]
    fn unknown_fields_are_errors_with_position() {
        let text = "{\n  \"repeat_secs\": 5\n}";
        match AlertsConfig::parse("alerts.json", text, &env) {
            Err(ConfigError::Parse { line, message, .. }) => {
                assert_eq!(line, 2);
                assert!(message.contains("repeat_secs"), "{message}");
            }
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    #[test]
    fn parse_errors_give_the_position_once() {
        let env = |_: &str| None;
        let error = AlertsConfig::parse("alerts.json", r#"{"repeat_seconds": -1}"#, &env)
            .expect_err("negative");
        assert_eq!(
            error.to_string(),
            "alerts.json:1:21: invalid value: integer `-1`, expected u64"
        );
        let error = AlertsConfig::parse("alerts.json", "\n", &env).expect_err("empty");
        assert_eq!(
            error.to_string(),
            "alerts.json:2:1: EOF while parsing a value"
        );
    }

    #[test]
    fn defaults() -> Result<(), ConfigError> {
        let config = AlertsConfig::parse("alerts.json", "{}", &env)?;
        assert_eq!(config.repeat_seconds(), 4 * 3600);
        assert_eq!(config.timeout(), std::time::Duration::from_secs(10));
        let routes = config.default_routes("alerts.json")?;
        assert_eq!(routes.targets.len(), 1);
        assert_eq!(routes.targets[0].channel, crate::ChannelKind::Stdout);
        Ok(())
    }

    #[test]
    fn targets_are_checked_against_the_config() -> Result<(), ConfigError> {
        let text = r##"{
            "webhooks": {"ops": "https://hooks.example.com/T/secret", "bad": "htp:/x"},
            "slack": {"channels": {"#data": "https://hooks.slack.com/services/T/B/X"}},
            "pagerduty": {"services": {"data-team": "key"}}
        }"##;
        let config = AlertsConfig::parse("alerts.json", text, &env)?;
        let check = |channel, address: &str| config.check_target(&Target::new(channel, address));
        assert_eq!(check(ChannelKind::Webhook, "ops"), Ok(()));
        assert_eq!(
            check(ChannelKind::Webhook, "https://h.example.com/x"),
            Ok(())
        );
        assert_eq!(check(ChannelKind::Slack, "#data"), Ok(()));
        assert_eq!(check(ChannelKind::Pagerduty, "data-team"), Ok(()));
        let error = check(ChannelKind::Email, "a@example.com").unwrap_err();
        assert!(error.contains("\"smtp\""), "{error}");
        let error = check(ChannelKind::Slack, "#ops").unwrap_err();
        assert!(error.contains("configured: #data"), "{error}");
        let error = check(ChannelKind::Pagerduty, "data-taem").unwrap_err();
        assert!(error.contains("configured: data-team"), "{error}");
        let error = check(ChannelKind::Webhook, "opps").unwrap_err();
        assert!(error.contains("configured: bad, ops"), "{error}");
        let error = check(ChannelKind::Webhook, "https://:8080/x").unwrap_err();
        assert!(error.contains("not a valid URL"), "{error}");
        assert_eq!(
            config.url_problems(),
            ["webhooks.bad: not an http(s) URL (the value is not shown)"]
        );
        Ok(())
    }

    #[test]
    fn redact_replaces_every_secret() {
        let secrets = vec!["abc123".to_string(), "k".repeat(3)];
        assert_eq!(
            redact("token abc123 and kkk", &secrets),
            "token <redacted> and <redacted>"
        );
    }
}
