//! The email channel: SMTP through lettre (STARTTLS, implicit TLS, or plain for local relays).

use super::{error_chain, local_time, render_link, ChannelError, Notifier};
use crate::config::{ConfigError, SmtpConfig, SmtpSecurity, TlsCa};
use crate::notification::Notification;
use crate::route::ChannelKind;
use async_trait::async_trait;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

/// Sends a plain-text email per notification to the target address. The subject is
/// `[dwmon] <summary line>`, the `Message-ID` is derived from the idempotency key (so mail
/// systems can deduplicate) and the body repeats the key.
#[derive(Clone)]
pub struct EmailNotifier {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    link_template: Option<String>,
}

impl std::fmt::Debug for EmailNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailNotifier")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl EmailNotifier {
    /// A notifier for the SMTP server of `config`; each session times out after `timeout`.
    /// With `security` `starttls` or `tls` the server certificate is verified against the
    /// bundled Mozilla roots plus `tls_ca` (the alerts config's `tls_ca_file`), for the
    /// configured host name; STARTTLS is required (a server that does not offer it fails the
    /// delivery, never falls back to plaintext).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for an unparsable sender or a host lettre rejects;
    /// [`ConfigError::TlsCa`] when `tls_ca` holds no usable certificate.
    pub fn new(
        config: &SmtpConfig,
        timeout: Duration,
        link_template: Option<String>,
        tls_ca: Option<&TlsCa>,
    ) -> Result<Self, ConfigError> {
        let invalid = |field: &str, message: String| ConfigError::Invalid {
            path: "alerts config".into(),
            field: field.into(),
            message,
        };
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|e| invalid("smtp.from", format!("{:?}: {e}", config.from)))?;
        let host = config.host.as_str();
        let tls = || -> Result<TlsParameters, ConfigError> {
            let mut parameters = TlsParameters::builder(host.to_string());
            if let Some(ca) = tls_ca {
                parameters = parameters.add_root_certificate(ca.smtp_certificate()?);
            }
            parameters.build().map_err(|e| match tls_ca {
                // The roots are parsed here: a PEM block that is not an X.509 certificate.
                Some(ca) => ca.error(format!("unusable certificate: {}", error_chain(&e))),
                None => invalid("smtp.host", error_chain(&e)),
            })
        };
        let builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host);
        let builder = match config.security {
            SmtpSecurity::Starttls => builder.tls(Tls::Required(tls()?)),
            SmtpSecurity::Tls => builder.tls(Tls::Wrapper(tls()?)),
            SmtpSecurity::Plain => builder,
        };
        let port = config.port.unwrap_or(match config.security {
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
            SmtpSecurity::Plain => 25,
        });
        let mut builder = builder.port(port).timeout(Some(timeout));
        if let (Some(username), Some(password)) = (&config.username, &config.password) {
            builder = builder.credentials(Credentials::new(
                username.expose().to_string(),
                password.expose().to_string(),
            ));
        }
        Ok(EmailNotifier {
            transport: builder.build(),
            from,
            link_template,
        })
    }

    /// The message for `notification` to `to`.
    ///
    /// # Errors
    /// An unparsable recipient address.
    pub fn message(&self, notification: &Notification, to: &str) -> Result<Message, String> {
        let to: Mailbox = to
            .parse()
            .map_err(|e| format!("invalid recipient address: {e}"))?;
        let n = notification;
        let mut body = vec![n.summary(), String::new()];
        body.push(format!("checker: {}", n.checker));
        if let Some(requirement) = &n.requirement {
            body.push(format!(
                "requirement #{}: {requirement}",
                n.requirement_index.unwrap_or(0)
            ));
        }
        if let (Some(count), Some(min), Some(max)) = (n.count, n.min, n.max) {
            body.push(format!("count: {count} (expected {min}..={max})"));
        }
        if let Some(runs) = &n.runs {
            body.push(format!("runs: {}", runs.message));
        }
        if let Some(lookback) = n.lookback_seconds {
            body.push(format!("window: {lookback} s before the checked minute"));
        }
        body.push(format!("checked minute: {}", local_time(n)));
        if let Some(failed) = n.failed_checks {
            body.push(format!("failed checks: {failed}"));
        }
        if let Some(error) = &n.error {
            body.push(format!("error: {error}"));
        }
        if let Some(link) = self.link_template.as_deref() {
            body.push(format!("details: {}", render_link(link, n)));
        }
        body.push(String::new());
        body.push(format!("idempotency key: {}", n.idempotency_key));
        let id: String = n
            .idempotency_key
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '.'
                }
            })
            .collect();
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(format!("[dwmon] {}", n.summary()))
            .message_id(Some(format!("<{id}@dwmon>")))
            .header(ContentType::TEXT_PLAIN)
            .body(body.join("\n") + "\n")
            .map_err(|e| format!("cannot build the message: {e}"))
    }
}

#[async_trait]
impl Notifier for EmailNotifier {
    async fn notify(&self, notification: &Notification, address: &str) -> Result<(), ChannelError> {
        let message = self
            .message(notification, address)
            .map_err(|m| ChannelError::permanent(ChannelKind::Email, address, m))?;
        self.transport.send(message).await.map(|_| ()).map_err(|e| {
            let text = redact_auth_plain(&format!("SMTP: {e}"));
            if e.is_permanent() {
                ChannelError::permanent(ChannelKind::Email, address, text)
            } else {
                ChannelError::new(ChannelKind::Email, address, text)
            }
        })
    }
}

/// Replaces the credentials token after `AUTH PLAIN` / `PLAIN` (base64 of user and password)
/// that an SMTP server may echo in a reply, so errors and logs never carry it.
fn redact_auth_plain(text: &str) -> String {
    let mut out = Vec::new();
    let mut redact_next = false;
    for word in text.split(' ') {
        if redact_next && !word.is_empty() {
            out.push("[redacted]");
            redact_next = false;
            continue;
        }
        redact_next = word.eq_ignore_ascii_case("PLAIN");
        out.push(word);
    }
    out.join(" ")
}

#[cfg(test)]
mod redact_tests {
    use super::redact_auth_plain;

    #[test]
    fn auth_plain_credentials_echoed_by_a_server_are_redacted() {
        let reply = "SMTP: permanent error (535): 5.7.8 bad AUTH PLAIN AHVzZXIAc2VjcmV0 rejected";
        let text = redact_auth_plain(reply);
        assert!(!text.contains("AHVzZXIAc2VjcmV0"), "{text}");
        assert!(text.contains("AUTH PLAIN [redacted] rejected"), "{text}");
        assert_eq!(redact_auth_plain("SMTP: timed out"), "SMTP: timed out");
    }
}
