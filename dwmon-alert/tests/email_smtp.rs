//! The email channel against an SMTP responder on loopback (issue 7): the seed's
//! `"alert": "devops@nerds.com"` form delivers one mail per notification, with the
//! idempotency key as Message-ID and in the body.

mod common;

use common::{base64, record, SmtpServer, T0};
use dwmon_alert::{AlertHandler, AlertsConfig, MemoryAlertStore};
use dwmon_core::{CheckHandler, Event, Status};
use serde_json::json;
use std::sync::Arc;

fn handler(server: &SmtpServer) -> AlertHandler {
    let text = format!(
        r#"{{"smtp": {{"host": "127.0.0.1", "port": {}, "security": "plain",
                       "from": "dwmon <dwmon@example.com>"}},
             "link_template": "https://dash.example.com/{{checker}}"}}"#,
        server.addr.port()
    );
    let config = AlertsConfig::parse("alerts.json", &text, &|_| None).expect("config");
    AlertHandler::from_config(Arc::new(MemoryAlertStore::new()), &config).expect("handler")
}

#[tokio::test]
async fn firing_and_resolution_arrive_by_email() {
    let server = SmtpServer::start().await;
    let handler = handler(&server);
    let extra = json!({"alert": "devops@nerds.com"});

    for (minute, status) in [(T0, Status::Bad), (T0 + 60, Status::Good)] {
        let event = Event::Check(record("orders", 0, minute, status, extra.clone()));
        handler.handle(&event).await.expect("mail accepted");
    }

    let mails = server.mails();
    assert_eq!(mails.len(), 2);
    let firing = &mails[0];
    assert_eq!(firing.from, "dwmon@example.com");
    assert_eq!(firing.to, ["devops@nerds.com"]);
    // Unfold header lines and undo the quoted-printable body encoding before looking.
    let data = firing
        .data
        .replace("\r\n ", " ")
        .replace("\r\n\t", " ")
        .replace("=\r\n", "")
        .replace("=3D", "=");
    assert!(
        data.contains("Content-Type: text/plain; charset=utf-8"),
        "{data}"
    );
    for expected in [
        "Subject: [dwmon] FIRING [critical] orders #0: count 0 not in 1..=10 over the last 60 s",
        "Message-ID: <orders.0.1700000040.firing@dwmon>",
        "From: dwmon <dwmon@example.com>",
        "To: devops@nerds.com",
        "count: 0 (expected 1..=10)",
        "checked minute: 2023-11-14 22:14 +00:00 (UTC)",
        "details: https://dash.example.com/orders",
        "idempotency key: orders/0/1700000040/firing",
    ] {
        assert!(data.contains(expected), "missing {expected:?} in:\n{data}");
    }
    assert!(
        mails[1]
            .data
            .contains("idempotency key: orders/0/1700000100/resolved"),
        "{}",
        mails[1].data
    );
}

#[tokio::test]
async fn every_address_gets_its_own_mail() {
    let server = SmtpServer::start().await;
    let handler = handler(&server);
    let extra = json!({"alert": {"email": ["a@nerds.com", "b@nerds.com"]}});
    let event = Event::Check(record("orders", 0, T0, Status::Bad, extra));
    handler.handle(&event).await.expect("mail accepted");
    let mut recipients: Vec<Vec<String>> = server.mails().into_iter().map(|m| m.to).collect();
    recipients.sort();
    assert_eq!(recipients, [["a@nerds.com"], ["b@nerds.com"]]);
}

#[tokio::test]
async fn an_unreachable_smtp_server_is_a_retryable_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let text = format!(
        r#"{{"smtp": {{"host": "127.0.0.1", "port": {port}, "security": "plain",
                       "from": "dwmon@example.com", "username": "dwmon-user",
                       "password": "SmtpSecretPassword"}}}}"#
    );
    let config = AlertsConfig::parse("alerts.json", &text, &|_| None).expect("config");
    let handler =
        AlertHandler::from_config(Arc::new(MemoryAlertStore::new()), &config).expect("handler");
    let event = Event::Check(record(
        "orders",
        0,
        T0,
        Status::Bad,
        json!({"alert": "ops@nerds.com"}),
    ));
    let error = handler.handle(&event).await.expect_err("nothing listens");
    assert!(
        error
            .message
            .starts_with("1 alert deliveries failed: email ops@nerds.com: SMTP:"),
        "{}",
        error.message
    );
    assert!(
        !error.message.contains("SmtpSecretPassword"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn credentials_come_from_the_environment() {
    let server = SmtpServer::start().await;
    let text = format!(
        r#"{{"smtp": {{"host": "127.0.0.1", "port": {}, "security": "plain",
                       "from": "dwmon@example.com",
                       "username": {{"env": "SMTP_USERNAME"}},
                       "password": {{"env": "SMTP_PASSWORD"}}}}}}"#,
        server.addr.port()
    );
    let env = |name: &str| match name {
        "SMTP_USERNAME" => Some("dwmon-user".to_string()),
        "SMTP_PASSWORD" => Some("SmtpSecretPassword".to_string()),
        _ => None,
    };
    let config = AlertsConfig::parse("alerts.json", &text, &env).expect("config");
    assert!(!format!("{config:?}").contains("SmtpSecretPassword"));
    let handler =
        AlertHandler::from_config(Arc::new(MemoryAlertStore::new()), &config).expect("handler");
    let event = Event::Check(record(
        "orders",
        0,
        T0,
        Status::Bad,
        json!({"alert": "ops@nerds.com"}),
    ));
    handler.handle(&event).await.expect("mail accepted");

    assert_eq!(
        server.auth_commands(),
        [format!(
            "AUTH PLAIN {}",
            base64(b"\0dwmon-user\0SmtpSecretPassword")
        )]
    );
    assert_eq!(server.mails().len(), 1);
}
