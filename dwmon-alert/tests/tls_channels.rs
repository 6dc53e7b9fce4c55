//! TLS for the channels against real servers on loopback (issue 7): HTTPS webhooks, SMTP with
//! STARTTLS and SMTP with implicit TLS, each with a CA generated inside the test and trusted
//! through the alerts config's `tls_ca_file`. Without that CA every delivery fails on the
//! certificate, and nothing is ever sent in plaintext instead.

mod common;

use common::{record, HandshakeErrors, HttpServer, SmtpServer, SmtpTls, TestPki, T0};
use dwmon_alert::{AlertHandler, AlertsConfig, Channels, ConfigError, MemoryAlertStore};
use dwmon_core::{CheckHandler, Event, Status};
use serde_json::json;
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

fn handler(text: &str) -> AlertHandler {
    let config = AlertsConfig::parse("alerts.json", text, &|_| None).expect("valid test config");
    AlertHandler::from_config(Arc::new(MemoryAlertStore::new()), &config).expect("handler")
}

fn firing(alert: serde_json::Value) -> Event {
    Event::Check(record(
        "orders",
        0,
        T0,
        Status::Bad,
        json!({ "alert": alert }),
    ))
}

/// Sends a firing notification to `alert` with config `text`, expects the client to reject the
/// server's certificate (and the server to see that), and returns the delivery error.
async fn refused_certificate(
    text: &str,
    alert: serde_json::Value,
    server: &HandshakeErrors,
) -> String {
    let error = handler(text)
        .handle(&firing(alert))
        .await
        .expect_err("an unknown CA is not trusted");
    assert!(
        error
            .message
            .contains("invalid peer certificate: UnknownIssuer"),
        "{}",
        error.message
    );
    let refused = server.first().await;
    assert!(refused.contains("UnknownCA"), "{refused}");
    error.message
}

/// `"tls_ca_file": "<path>", ` for `pki`, or nothing.
fn ca_setting(pki: Option<&TestPki>) -> String {
    pki.map(|pki| format!(r#""tls_ca_file": {}, "#, pki.ca_path_json()))
        .unwrap_or_default()
}

fn smtp_config(server: &SmtpServer, security: &str, ca: Option<&TestPki>) -> String {
    format!(
        r#"{{{}"smtp": {{"host": "127.0.0.1", "port": {}, "security": "{security}",
                        "from": "dwmon <dwmon@example.com>",
                        "username": "dwmon-user", "password": "SmtpSecretPassword"}}}}"#,
        ca_setting(ca),
        server.addr.port()
    )
}

#[tokio::test]
async fn https_webhook_delivers_the_exact_body_with_the_configured_ca() {
    let pki = TestPki::new();
    let https = HttpServer::start_tls(pki.acceptor.clone()).await;
    let plain = HttpServer::start().await;

    handler(&format!(
        "{{{}\"timeout_seconds\": 5}}",
        ca_setting(Some(&pki))
    ))
    .handle(&firing(json!({"webhook": https.url("/hook")})))
    .await
    .expect("delivered over HTTPS");
    // The same notification over plain HTTP, for the byte-for-byte comparison.
    handler("{}")
        .handle(&firing(json!({"webhook": plain.url("/hook")})))
        .await
        .expect("delivered over HTTP");

    assert!(https.url("/hook").starts_with("https://127.0.0.1:"));
    assert_eq!(https.handshake_errors.all(), Vec::<String>::new());
    let (over_tls, reference) = (https.requests(), plain.requests());
    assert_eq!((over_tls.len(), reference.len()), (1, 1));
    assert_eq!(
        (over_tls[0].method.as_str(), over_tls[0].path.as_str()),
        ("POST", "/hook")
    );
    assert_eq!(over_tls[0].body, reference[0].body);
    assert_eq!(over_tls[0].json()["kind"], "firing");
    assert_eq!(
        over_tls[0]
            .headers
            .get("idempotency-key")
            .map(String::as_str),
        Some("orders/0/1700000040/firing")
    );
}

#[tokio::test]
async fn https_webhook_without_the_ca_fails_on_the_certificate() {
    let pki = TestPki::new();
    let https = HttpServer::start_tls(pki.acceptor.clone()).await;

    let alert = json!({"webhook": https.url("/hook")});
    let message = refused_certificate("{}", alert, &https.handshake_errors).await;

    assert!(message.contains("webhook https://127.0.0.1:"), "{message}");
    assert!(https.requests().is_empty());
}

/// Mails a firing notification through an SMTP server of `mode` with `security`, trusting the
/// test CA; asserts that exactly that mail arrived, over TLS. Returns the server.
async fn mail_over_tls(mode: fn(TlsAcceptor) -> SmtpTls, security: &str) -> SmtpServer {
    let pki = TestPki::new();
    let server = SmtpServer::start_with(mode(pki.acceptor.clone())).await;
    handler(&smtp_config(&server, security, Some(&pki)))
        .handle(&firing(json!("devops@nerds.com")))
        .await
        .expect("mail accepted");
    let mails = server.mails();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].tls, "the mail came in plaintext");
    assert_eq!(mails[0].to, ["devops@nerds.com"]);
    assert!(
        mails[0]
            .data
            .contains("idempotency key: orders/0/1700000040/firing"),
        "{}",
        mails[0].data
    );
    server
}

#[tokio::test]
async fn email_over_starttls_arrives_encrypted_with_the_configured_ca() {
    let server = mail_over_tls(SmtpTls::Starttls, "starttls").await;
    // STARTTLS comes right after the first EHLO; everything else, credentials included, is
    // sent inside TLS.
    let commands = server.commands();
    assert!(commands[0].starts_with("EHLO "), "{commands:?}");
    assert_eq!(commands[1], "STARTTLS", "{commands:?}");
    assert!(
        commands[2..].iter().all(|c| c.starts_with("TLS: ")),
        "{commands:?}"
    );
    assert!(
        commands.iter().any(|c| c.starts_with("TLS: AUTH ")),
        "{commands:?}"
    );
}

/// Mails a firing notification through an SMTP server of `mode` with `security` *without*
/// trusting the test CA ([`refused_certificate`]); returns the server and the error.
async fn mail_without_the_ca(
    mode: fn(TlsAcceptor) -> SmtpTls,
    security: &str,
) -> (SmtpServer, String) {
    let pki = TestPki::new();
    let server = SmtpServer::start_with(mode(pki.acceptor.clone())).await;
    let text = smtp_config(&server, security, None);
    let message =
        refused_certificate(&text, json!("devops@nerds.com"), &server.handshake_errors).await;
    (server, message)
}

#[tokio::test]
async fn email_over_starttls_without_the_ca_fails_and_never_falls_back_to_plaintext() {
    let (server, message) = mail_without_the_ca(SmtpTls::Starttls, "starttls").await;

    assert!(!message.contains("SmtpSecretPassword"), "{message}");
    assert!(server.mails().is_empty());
    // Nothing after STARTTLS: no AUTH, MAIL or DATA in the clear.
    let commands = server.commands();
    assert_eq!(commands.len(), 2, "{commands:?}");
    assert_eq!(commands[1], "STARTTLS");
}

#[tokio::test]
async fn a_server_that_does_not_offer_starttls_gets_nothing() {
    let pki = TestPki::new();
    let server = SmtpServer::start().await; // plaintext only, no STARTTLS in EHLO

    let error = handler(&smtp_config(&server, "starttls", Some(&pki)))
        .handle(&firing(json!("devops@nerds.com")))
        .await
        .expect_err("STARTTLS is required");

    assert!(error.message.contains("SMTP:"), "{}", error.message);
    assert!(server.mails().is_empty());
    assert!(server.auth_commands().is_empty());
    let commands = server.commands();
    assert!(
        commands
            .iter()
            .all(|c| c.starts_with("EHLO ") || c == "QUIT"),
        "{commands:?}"
    );
}

#[tokio::test]
async fn email_over_implicit_tls_arrives_with_the_configured_ca() {
    let server = mail_over_tls(SmtpTls::Implicit, "tls").await;
    let commands = server.commands();
    assert!(
        !commands.is_empty() && commands.iter().all(|c| c.starts_with("TLS: ")),
        "{commands:?}"
    );
    assert!(!commands.iter().any(|c| c.contains("STARTTLS")));
}

#[tokio::test]
async fn email_over_implicit_tls_without_the_ca_fails_on_the_certificate() {
    let (server, message) = mail_without_the_ca(SmtpTls::Implicit, "tls").await;

    assert!(
        message.contains("email devops@nerds.com: SMTP:"),
        "{message}"
    );
    assert!(server.mails().is_empty());
    assert!(server.commands().is_empty());
}

#[test]
fn an_unusable_ca_file_is_a_config_error_naming_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases = [
        (
            "missing.pem",
            None,
            "cannot read: No such file or directory",
        ),
        (
            "text.pem",
            Some("just some text\n"),
            "no PEM certificate (-----BEGIN CERTIFICATE-----) in the file",
        ),
        (
            "broken.pem",
            Some("-----BEGIN CERTIFICATE-----\n!!! not base64 !!!\n-----END CERTIFICATE-----\n"),
            "not a valid PEM certificate file: ",
        ),
        (
            // Well-formed PEM whose content is not an X.509 certificate.
            "not-x509.pem",
            Some("-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n"),
            "unusable certificate: ",
        ),
    ];
    for (name, contents, expected) in cases {
        let file = dir.path().join(name);
        if let Some(contents) = contents {
            std::fs::write(&file, contents).expect("write");
        }
        let text = format!(
            r#"{{"tls_ca_file": {}}}"#,
            serde_json::to_string(&file).expect("path")
        );
        let config = AlertsConfig::parse("alerts.json", &text, &|_| None).expect("valid JSON");
        let message = match Channels::from_config(&config) {
            Err(e @ ConfigError::TlsCa { .. }) => e.to_string(),
            other => panic!("{name}: expected a TlsCa error, got {other:?}"),
        };
        let prefix = format!("tls_ca_file {}: {expected}", file.display());
        assert!(message.starts_with(&prefix), "{name}: {message}");
    }
}

#[test]
fn a_valid_ca_file_sets_up_every_tls_channel() {
    let pki = TestPki::new();
    assert!(pki.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    for security in ["starttls", "tls", "plain"] {
        let text = format!(
            r#"{{{}"smtp": {{"host": "smtp.example.com", "security": "{security}",
                            "from": "dwmon@example.com"}}}}"#,
            ca_setting(Some(&pki))
        );
        let config = AlertsConfig::parse("alerts.json", &text, &|_| None).expect("config");
        assert_eq!(config.tls_ca_file.as_deref(), Some(pki.ca_file.path()));
        let channels = Channels::from_config(&config).expect("channels");
        assert!(channels.has(dwmon_alert::ChannelKind::Email));
    }
}
