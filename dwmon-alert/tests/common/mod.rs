//! Shared test helpers: record builders, a recording notifier, and loopback HTTP and SMTP
//! servers started inside the test (no external service needed).
#![allow(dead_code, missing_docs)]

use async_trait::async_trait;
use dwmon_alert::{ChannelError, ChannelKind, Notification, Notifier};
use dwmon_core::{CheckRecord, ErrorEvent, ErrorKind, Status};
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// 2023-11-14T22:13:20Z rounded to a minute.
pub const T0: i64 = 1_700_000_040;

pub fn record(
    checker: &str,
    index: usize,
    minute: i64,
    status: Status,
    extra: Value,
) -> CheckRecord {
    let count = if status == Status::Good { 5 } else { 0 };
    CheckRecord {
        checker: checker.into(),
        requirement_index: index,
        requirement:
            "CHECKHOURS0-23 CHECKMINUTES0-59 WEEKDAYS WEEKENDS MINNUM1 MAXNUM10 LOOKBACKSECONDS60"
                .into(),
        minute,
        minute_local: chrono::DateTime::from_timestamp(minute, 0)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, false))
            .unwrap_or_default(),
        timezone: "UTC".into(),
        lookback_seconds: 60,
        count,
        min: 1,
        max: 10,
        status,
        extra,
    }
}

pub fn error_event(checker: &str, minute: i64, extra: Value) -> ErrorEvent {
    ErrorEvent {
        checker: checker.into(),
        minute,
        minute_local: chrono::DateTime::from_timestamp(minute, 0)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, false))
            .unwrap_or_default(),
        timezone: "UTC".into(),
        status: Status::Error,
        error: "fetch failed: connection refused".into(),
        extra,
        kind: ErrorKind::Fetch,
    }
}

pub fn no_extra() -> Value {
    json!({})
}

/// A notifier that remembers what it was asked to send and can be told to fail.
#[derive(Debug, Default)]
pub struct RecordingNotifier {
    sent: Mutex<Vec<(String, Notification)>>,
    failures_left: Mutex<u32>,
}

impl RecordingNotifier {
    pub fn new() -> Arc<Self> {
        Arc::new(RecordingNotifier::default())
    }

    pub fn fail_next(&self, n: u32) {
        *self.failures_left.lock().unwrap() = n;
    }

    /// `(address, kind, idempotency key)` in send order.
    pub fn sent(&self) -> Vec<(String, String, String)> {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .map(|(a, n)| (a.clone(), n.kind.to_string(), n.idempotency_key.clone()))
            .collect()
    }

    pub fn kinds(&self) -> Vec<String> {
        self.sent().into_iter().map(|(_, kind, _)| kind).collect()
    }

    pub fn notifications(&self) -> Vec<Notification> {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .map(|(_, n)| n.clone())
            .collect()
    }
}

#[async_trait]
impl Notifier for RecordingNotifier {
    async fn notify(&self, notification: &Notification, address: &str) -> Result<(), ChannelError> {
        {
            let mut left = self.failures_left.lock().unwrap();
            if *left > 0 {
                *left -= 1;
                return Err(ChannelError::new(
                    ChannelKind::Log,
                    address,
                    "scripted failure",
                ));
            }
        }
        self.sent
            .lock()
            .unwrap()
            .push((address.to_string(), notification.clone()));
        Ok(())
    }
}

async fn bind() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    (listener, addr)
}

/// Serves each connection with `serve` on its own task until the runtime ends.
fn accept_loop<F, Fut>(listener: TcpListener, serve: F)
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = std::io::Result<()>> + Send + 'static,
{
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream));
        }
    });
}

/// One request received by [`HttpServer`].
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

impl HttpRequest {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// A minimal HTTP/1.1 server on 127.0.0.1: records each request and answers with the next
/// scripted status (200 when the script is empty). Runs until the test's runtime ends.
#[derive(Clone)]
pub struct HttpServer {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<HttpRequest>>>,
    statuses: Arc<Mutex<VecDeque<u16>>>,
}

impl HttpServer {
    pub async fn start() -> HttpServer {
        let (listener, addr) = bind().await;
        let server = HttpServer {
            addr,
            requests: Arc::default(),
            statuses: Arc::default(),
        };
        let state = server.clone();
        accept_loop(listener, move |stream| {
            let state = state.clone();
            async move { state.serve(stream).await }
        });
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn respond_with(&self, statuses: &[u16]) {
        self.statuses
            .lock()
            .unwrap()
            .extend(statuses.iter().copied());
    }

    pub fn requests(&self) -> Vec<HttpRequest> {
        self.requests.lock().unwrap().clone()
    }

    async fn serve(&self, stream: TcpStream) -> std::io::Result<()> {
        let (read, mut write) = stream.into_split();
        let mut reader = BufReader::new(read);
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let mut parts = line.split_whitespace();
            let method = parts.next().unwrap_or_default().to_string();
            let path = parts.next().unwrap_or_default().to_string();
            let mut headers = BTreeMap::new();
            loop {
                let mut header = String::new();
                reader.read_line(&mut header).await?;
                let header = header.trim_end();
                if header.is_empty() {
                    break;
                }
                if let Some((name, value)) = header.split_once(':') {
                    headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
                }
            }
            let length: usize = headers
                .get("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; length];
            reader.read_exact(&mut body).await?;
            self.requests.lock().unwrap().push(HttpRequest {
                method,
                path,
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
            let status = self.statuses.lock().unwrap().pop_front().unwrap_or(200);
            let response = format!(
                "HTTP/1.1 {status} Scripted\r\ncontent-length: 2\r\ncontent-type: text/plain\r\n\r\nok"
            );
            write.write_all(response.as_bytes()).await?;
        }
    }
}

/// One message received by [`SmtpServer`].
#[derive(Debug, Clone, Default)]
pub struct Mail {
    pub helo: String,
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

/// A minimal SMTP responder on 127.0.0.1 (EHLO/HELO, AUTH, MAIL, RCPT, DATA, RSET, NOOP, QUIT; no
/// TLS; AUTH accepts anything and is recorded): enough for lettre's plain transport. Records every accepted message.
#[derive(Clone)]
pub struct SmtpServer {
    pub addr: SocketAddr,
    mails: Arc<Mutex<Vec<Mail>>>,
    auth: Arc<Mutex<Vec<String>>>,
}

impl SmtpServer {
    pub async fn start() -> SmtpServer {
        let (listener, addr) = bind().await;
        let server = SmtpServer {
            addr,
            mails: Arc::default(),
            auth: Arc::default(),
        };
        let state = server.clone();
        accept_loop(listener, move |stream| {
            let state = state.clone();
            async move { state.serve(stream).await }
        });
        server
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }

    /// The `AUTH ...` command lines received.
    pub fn auth_commands(&self) -> Vec<String> {
        self.auth.lock().unwrap().clone()
    }

    async fn serve(&self, stream: TcpStream) -> std::io::Result<()> {
        let (read, mut write) = stream.into_split();
        let mut reader = BufReader::new(read);
        write
            .write_all(b"220 localhost test SMTP ready\r\n")
            .await?;
        let mut mail = Mail::default();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let command = line.trim_end().to_string();
            let verb = command
                .split([' ', ':'])
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase();
            let reply: &[u8] = match verb.as_str() {
                "EHLO" => {
                    mail.helo = command[4..].trim().to_string();
                    b"250-localhost greets you\r\n250-8BITMIME\r\n250-AUTH PLAIN LOGIN\r\n250 SMTPUTF8\r\n"
                }
                "HELO" => {
                    mail.helo = command[4..].trim().to_string();
                    b"250 localhost\r\n"
                }
                "MAIL" => {
                    mail.from = angle(&command);
                    b"250 OK\r\n"
                }
                "RCPT" => {
                    mail.to.push(angle(&command));
                    b"250 OK\r\n"
                }
                "DATA" => {
                    write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                    let mut data = String::new();
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).await? == 0 {
                            return Ok(());
                        }
                        if line == ".\r\n" {
                            break;
                        }
                        // Undo dot-stuffing.
                        let line = line.strip_prefix('.').unwrap_or(&line).to_string();
                        data.push_str(&line);
                    }
                    mail.data = data;
                    self.mails.lock().unwrap().push(std::mem::take(&mut mail));
                    b"250 OK queued\r\n"
                }
                "RSET" => {
                    mail = Mail::default();
                    b"250 OK\r\n"
                }
                "AUTH" => {
                    self.auth.lock().unwrap().push(command.clone());
                    b"235 2.7.0 Authentication successful\r\n"
                }
                "NOOP" => b"250 OK\r\n",
                "QUIT" => {
                    write.write_all(b"221 bye\r\n").await?;
                    return Ok(());
                }
                _ => b"502 command not implemented\r\n",
            };
            write.write_all(reply).await?;
        }
    }
}

fn angle(command: &str) -> String {
    command
        .split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(inside, _)| inside.to_string())
        .unwrap_or_default()
}

/// Standard base64 (with padding), to compare SMTP AUTH lines.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
