//! Per-checker routing: which channels hear about a checker, read from the `"alert"` key of
//! its `__EXTRA__` JSON.
//!
//! # Schema
//!
//! ```json
//! {"alert": {
//!     "email": ["devops@nerds.com", "data@nerds.com"],
//!     "slack": "#data",
//!     "pagerduty": "data-team",
//!     "webhook": "https://hooks.example.com/dwmon",
//!     "stdout": true,
//!     "log": true,
//!     "repeat_seconds": 3600
//! }}
//! ```
//!
//! - `email`: one address or a list of addresses (sent through the SMTP server of the alerts
//!   config).
//! - `slack`: one channel or a list (e.g. `"#data"`). The message goes to the incoming-webhook
//!   URL configured for that channel in the alerts config, else to the default Slack webhook
//!   with the channel named in the payload.
//! - `pagerduty`: the *name* of a PagerDuty service configured in the alerts config (which
//!   holds its routing key); a list is allowed. Routing keys never appear in checker files.
//! - `webhook`: an `http(s)://` URL, or the name of a webhook configured in the alerts config
//!   (use a name when the URL embeds a token); a list is allowed.
//! - `stdout` / `log`: `true` adds the JSON-lines stdout channel / the tracing log channel.
//! - `repeat_seconds`: reminder interval for this checker (0 = no reminders); default from
//!   the alerts config, else 4 hours.
//!
//! The seed's short form `"alert": "devops@nerds.com"` means one email address, and a list
//! of strings means several. A checker without an `"alert"` key uses the alerts config's
//! `default_targets` (stdout unless configured). Unknown keys and wrong types are errors, so
//! a typo never silently drops alerts.

pub use dwmon_core::alert_state::{url_origin, ChannelKind, Target};
use serde_json::Value;

/// The `"alert"` routing of one checker.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Routes {
    /// Where to send, in order, without duplicates.
    pub targets: Vec<Target>,
    /// The checker's reminder interval, when it sets one.
    pub repeat_seconds: Option<u64>,
}

/// The `"alert"` key of a checker's `__EXTRA__` is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// A key the schema does not know (a typo?).
    #[error("__EXTRA__ \"alert\": unknown key {key:?} (expected email, slack, pagerduty, webhook, stdout, log or repeat_seconds)")]
    UnknownKey {
        /// The key.
        key: String,
    },
    /// A value of the wrong type or form.
    #[error("__EXTRA__ \"alert\".{key}: {message}")]
    Invalid {
        /// The key (`alert` for the whole value).
        key: String,
        /// What was expected.
        message: String,
    },
}

impl Routes {
    /// Reads the `"alert"` key of `extra`; `Ok(None)` when there is none.
    ///
    /// ```
    /// use dwmon_alert::{ChannelKind, Routes, Target};
    /// let extra = serde_json::json!({"alert": "devops@nerds.com"});
    /// let routes = Routes::from_extra(&extra)?.unwrap();
    /// assert_eq!(routes.targets, [Target::new(ChannelKind::Email, "devops@nerds.com")]);
    /// # Ok::<(), dwmon_alert::RouteError>(())
    /// ```
    ///
    /// # Errors
    /// Unknown keys, wrong types, addresses without `@`, webhook URLs that are not http(s).
    pub fn from_extra(extra: &Value) -> Result<Option<Routes>, RouteError> {
        let Some(alert) = extra.get("alert") else {
            return Ok(None);
        };
        let mut routes = Routes::default();
        match alert {
            Value::String(_) | Value::Array(_) => {
                for address in strings("email", alert)? {
                    routes.push(email_target(address)?);
                }
            }
            Value::Object(map) => {
                for (key, value) in map {
                    match key.as_str() {
                        "email" => {
                            for address in strings(key, value)? {
                                routes.push(email_target(address)?);
                            }
                        }
                        "slack" => {
                            for channel in strings(key, value)? {
                                routes.push(Target::new(ChannelKind::Slack, channel));
                            }
                        }
                        "pagerduty" => {
                            for service in strings(key, value)? {
                                routes.push(Target::new(ChannelKind::Pagerduty, service));
                            }
                        }
                        "webhook" => {
                            for hook in strings(key, value)? {
                                routes.push(webhook_target(hook)?);
                            }
                        }
                        "stdout" | "log" => {
                            let enabled = value.as_bool().ok_or_else(|| RouteError::Invalid {
                                key: key.clone(),
                                message: "expected true or false".into(),
                            })?;
                            if enabled {
                                let kind = if key == "stdout" {
                                    ChannelKind::Stdout
                                } else {
                                    ChannelKind::Log
                                };
                                routes.push(Target::new(kind, ""));
                            }
                        }
                        "repeat_seconds" => {
                            routes.repeat_seconds =
                                Some(value.as_u64().ok_or_else(|| RouteError::Invalid {
                                    key: key.clone(),
                                    message: "expected a whole number of seconds >= 0".into(),
                                })?);
                        }
                        _ => return Err(RouteError::UnknownKey { key: key.clone() }),
                    }
                }
            }
            _ => {
                return Err(RouteError::Invalid {
                    key: "alert".into(),
                    message: "expected an email address, a list of them, or an object".into(),
                })
            }
        }
        Ok(Some(routes))
    }

    fn push(&mut self, target: Target) {
        if !self.targets.contains(&target) {
            self.targets.push(target);
        }
    }
}

fn strings<'a>(key: &str, value: &'a Value) -> Result<Vec<&'a str>, RouteError> {
    let invalid = || RouteError::Invalid {
        key: key.to_string(),
        message: "expected a non-empty string or a list of them".into(),
    };
    let items: Vec<&str> = match value {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items
            .iter()
            .map(|item| item.as_str().ok_or_else(invalid))
            .collect::<Result<_, _>>()?,
        _ => return Err(invalid()),
    };
    if items.iter().any(|s| s.trim().is_empty()) {
        return Err(invalid());
    }
    Ok(items.into_iter().map(str::trim).collect())
}

fn email_target(address: &str) -> Result<Target, RouteError> {
    let valid = address
        .split_once('@')
        .is_some_and(|(user, domain)| !user.is_empty() && !domain.is_empty())
        && !address.contains(char::is_whitespace);
    if !valid {
        return Err(RouteError::Invalid {
            key: "email".into(),
            message: format!("{address:?} is not an email address"),
        });
    }
    Ok(Target::new(ChannelKind::Email, address))
}

fn webhook_target(hook: &str) -> Result<Target, RouteError> {
    if hook.contains("://") && !(hook.starts_with("http://") || hook.starts_with("https://")) {
        return Err(RouteError::Invalid {
            key: "webhook".into(),
            message: format!("{} is not an http(s) URL", url_origin(hook)),
        });
    }
    Ok(Target::new(ChannelKind::Webhook, hook))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn no_alert_key_means_no_routes() -> Result<(), RouteError> {
        assert_eq!(Routes::from_extra(&json!({"team": "data"}))?, None);
        Ok(())
    }

    #[test]
    fn string_form_is_one_email() -> Result<(), RouteError> {
        let routes = Routes::from_extra(&json!({"alert": "devops@nerds.com"}))?;
        assert_eq!(
            routes.map(|r| r.targets),
            Some(vec![Target::new(ChannelKind::Email, "devops@nerds.com")])
        );
        Ok(())
    }

    #[test]
    fn object_form_lists_every_channel() -> Result<(), RouteError> {
        let extra = json!({"alert": {
            "email": ["devops@nerds.com", "devops@nerds.com"],
            "slack": "#data",
            "pagerduty": "ROUTING_KEY",
            "webhook": "https://hooks.example.com/x?token=1",
            "log": true,
            "stdout": false,
            "repeat_seconds": 0
        }});
        let routes = Routes::from_extra(&extra)?.unwrap_or_default();
        let mut ids: Vec<String> = routes.targets.iter().map(Target::id).collect();
        ids.sort();
        assert_eq!(
            ids,
            [
                "email:devops@nerds.com",
                "log:",
                "pagerduty:ROUTING_KEY",
                "slack:#data",
                "webhook:https://hooks.example.com/x?token=1"
            ]
        );
        assert_eq!(routes.repeat_seconds, Some(0));
        Ok(())
    }

    #[test]
    fn typos_and_wrong_types_are_errors() {
        let cases = [
            json!({"alert": {"emial": "a@b"}}),
            json!({"alert": {"email": 3}}),
            json!({"alert": {"email": "not-an-address"}}),
            json!({"alert": {"slack": ""}}),
            json!({"alert": {"webhook": "ftp://x/y"}}),
            json!({"alert": {"repeat_seconds": -1}}),
            json!({"alert": {"log": "yes"}}),
            json!({"alert": 42}),
        ];
        for extra in cases {
            assert!(Routes::from_extra(&extra).is_err(), "{extra}");
        }
    }
}
