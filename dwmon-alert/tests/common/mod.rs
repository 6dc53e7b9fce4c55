//! Shared test helpers: record builders, a recording notifier, a throwaway test PKI, and
//! loopback HTTP(S) and SMTP (plain, STARTTLS, implicit TLS) servers started inside the test
//! (no external service needed).
#![allow(dead_code, missing_docs)]

use async_trait::async_trait;
use dwmon_alert::{ChannelError, ChannelKind, Notification, Notifier};
use dwmon_core::{CheckRecord, ErrorEvent, ErrorKind, Status};
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;

/// A CA generated for one test and a server certificate it signed for `localhost` and
/// `127.0.0.1`; the CA's PEM is written to a temporary file for `tls_ca_file`.
pub struct TestPki {
    pub acceptor: TlsAcceptor,
    pub ca_pem: String,
    pub ca_file: tempfile::NamedTempFile,
}

impl TestPki {
    pub fn new() -> TestPki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "dwmon test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = ca_params.self_signed(&ca_key).expect("CA certificate");

        let leaf_key = KeyPair::generate().expect("server key");
        let mut leaf_params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .expect("server params");
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let leaf = leaf_params
            .signed_by(&leaf_key, &ca, &ca_key)
            .expect("server certificate");

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls::pki_types::PrivatePkcs8KeyDer::from(leaf_key.serialize_der()).into(),
            )
            .expect("server config");
        let ca_pem = ca.pem();
        let mut ca_file = tempfile::NamedTempFile::new().expect("temp file");
        std::io::Write::write_all(&mut ca_file, ca_pem.as_bytes()).expect("write CA");
        TestPki {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            ca_pem,
            ca_file,
        }
    }

    /// The CA file's path, JSON-escaped for a config text.
    pub fn ca_path_json(&self) -> String {
        serde_json::to_string(&self.ca_file.path()).expect("path")
    }
}

/// Failed TLS handshakes seen by a test server; the test can await the first one (the server
/// task may record it a moment after the client gave up).
#[derive(Clone, Default)]
pub struct HandshakeErrors {
    errors: Arc<Mutex<Vec<String>>>,
    added: Arc<tokio::sync::Notify>,
}

impl HandshakeErrors {
    fn push(&self, error: String) {
        self.errors.lock().unwrap().push(error);
        self.added.notify_one();
    }

    pub fn all(&self) -> Vec<String> {
        self.errors.lock().unwrap().clone()
    }

    /// The first failed handshake, waiting (at most 10 s) until there is one.
    pub async fn first(&self) -> String {
        let wait = async {
            loop {
                if let Some(first) = self.errors.lock().unwrap().first() {
                    return first.clone();
                }
                self.added.notified().await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), wait)
            .await
            .expect("a failed TLS handshake on the server")
    }
}

/// Any byte stream a test server speaks over (TCP, or TLS over TCP).
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

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
        monitor: None,
        runs: None,
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
    tls: Option<TlsAcceptor>,
    /// TLS handshakes that failed (the client refused the certificate, ...).
    pub handshake_errors: HandshakeErrors,
}

impl HttpServer {
    pub async fn start() -> HttpServer {
        HttpServer::start_with(None).await
    }

    /// An HTTPS server: TLS from the first byte with `acceptor`'s certificate.
    pub async fn start_tls(acceptor: TlsAcceptor) -> HttpServer {
        HttpServer::start_with(Some(acceptor)).await
    }

    async fn start_with(tls: Option<TlsAcceptor>) -> HttpServer {
        let (listener, addr) = bind().await;
        let server = HttpServer {
            addr,
            requests: Arc::default(),
            statuses: Arc::default(),
            tls,
            handshake_errors: HandshakeErrors::default(),
        };
        let state = server.clone();
        accept_loop(listener, move |stream| {
            let state = state.clone();
            async move {
                match &state.tls {
                    None => state.serve(stream).await,
                    Some(acceptor) => match acceptor.accept(stream).await {
                        Ok(stream) => state.serve(stream).await,
                        Err(e) => {
                            state.handshake_errors.push(e.to_string());
                            Err(e)
                        }
                    },
                }
            }
        });
        server
    }

    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.addr)
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

    async fn serve(&self, stream: impl Io) -> std::io::Result<()> {
        let (read, mut write) = tokio::io::split(stream);
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
            write.flush().await?;
        }
    }
}

/// One message received by [`SmtpServer`].
#[derive(Debug, Clone, Default)]
pub struct Mail {
    /// Whether the message came over TLS (STARTTLS or implicit).
    pub tls: bool,
    pub helo: String,
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

/// How [`SmtpServer`] protects its sessions.
#[derive(Clone)]
pub enum SmtpTls {
    /// Plaintext only; STARTTLS is not offered.
    None,
    /// Offers STARTTLS in the EHLO answer and upgrades the connection when asked.
    Starttls(TlsAcceptor),
    /// TLS from the first byte (SMTPS).
    Implicit(TlsAcceptor),
}

/// A minimal SMTP responder on 127.0.0.1 (EHLO/HELO, STARTTLS, AUTH, MAIL, RCPT, DATA, RSET,
/// NOOP, QUIT; AUTH accepts anything and is recorded): enough for lettre's transports.
/// Records every accepted message, every command line and every failed TLS handshake.
#[derive(Clone)]
pub struct SmtpServer {
    pub addr: SocketAddr,
    mails: Arc<Mutex<Vec<Mail>>>,
    auth: Arc<Mutex<Vec<String>>>,
    commands: Arc<Mutex<Vec<String>>>,
    pub handshake_errors: HandshakeErrors,
    tls: SmtpTls,
}

impl SmtpServer {
    pub async fn start() -> SmtpServer {
        SmtpServer::start_with(SmtpTls::None).await
    }

    pub async fn start_with(tls: SmtpTls) -> SmtpServer {
        let (listener, addr) = bind().await;
        let server = SmtpServer {
            addr,
            mails: Arc::default(),
            auth: Arc::default(),
            commands: Arc::default(),
            handshake_errors: HandshakeErrors::default(),
            tls,
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

    /// Every command line received, in order, with `TLS: ` in front of those sent over TLS.
    pub fn commands(&self) -> Vec<String> {
        self.commands.lock().unwrap().clone()
    }

    async fn handshake(
        &self,
        acceptor: &TlsAcceptor,
        stream: Box<dyn Io>,
    ) -> std::io::Result<Box<dyn Io>> {
        match acceptor.accept(stream).await {
            Ok(tls) => Ok(Box::new(tls)),
            Err(e) => {
                self.handshake_errors.push(e.to_string());
                Err(e)
            }
        }
    }

    async fn serve(&self, stream: TcpStream) -> std::io::Result<()> {
        let mut stream: Box<dyn Io> = Box::new(stream);
        let mut tls = false;
        if let SmtpTls::Implicit(acceptor) = &self.tls {
            stream = self.handshake(acceptor, stream).await?;
            tls = true;
        }
        stream
            .write_all(b"220 localhost test SMTP ready\r\n")
            .await?;
        stream.flush().await?;
        // A session ends, or hands back the plaintext stream after `220` to STARTTLS.
        while let Some(plain) = self.session(stream, tls).await? {
            let SmtpTls::Starttls(acceptor) = &self.tls else {
                return Ok(());
            };
            stream = self.handshake(acceptor, plain).await?;
            tls = true;
        }
        Ok(())
    }

    async fn session(
        &self,
        stream: Box<dyn Io>,
        tls: bool,
    ) -> std::io::Result<Option<Box<dyn Io>>> {
        let mut reader = BufReader::new(stream);
        let mut mail = Mail {
            tls,
            ..Mail::default()
        };
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await? == 0 {
                return Ok(None);
            }
            let command = line.trim_end().to_string();
            self.commands.lock().unwrap().push(if tls {
                format!("TLS: {command}")
            } else {
                command.clone()
            });
            let verb = command
                .split([' ', ':'])
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase();
            let offer_starttls = !tls && matches!(self.tls, SmtpTls::Starttls(_));
            let reply: &[u8] = match verb.as_str() {
                "EHLO" if offer_starttls => {
                    mail.helo = command[4..].trim().to_string();
                    b"250-localhost greets you\r\n250-8BITMIME\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n250 SMTPUTF8\r\n"
                }
                "EHLO" => {
                    mail.helo = command[4..].trim().to_string();
                    b"250-localhost greets you\r\n250-8BITMIME\r\n250-AUTH PLAIN LOGIN\r\n250 SMTPUTF8\r\n"
                }
                "HELO" => {
                    mail.helo = command[4..].trim().to_string();
                    b"250 localhost\r\n"
                }
                "STARTTLS" if offer_starttls => {
                    reader
                        .write_all(b"220 2.0.0 ready to start TLS\r\n")
                        .await?;
                    reader.flush().await?;
                    // The client waits for this reply, so nothing is left in the buffer.
                    return Ok(Some(reader.into_inner()));
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
                    reader.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                    reader.flush().await?;
                    let mut data = String::new();
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).await? == 0 {
                            return Ok(None);
                        }
                        if line == ".\r\n" {
                            break;
                        }
                        // Undo dot-stuffing.
                        let line = line.strip_prefix('.').unwrap_or(&line).to_string();
                        data.push_str(&line);
                    }
                    mail.data = data;
                    let next = Mail {
                        tls,
                        helo: mail.helo.clone(),
                        ..Mail::default()
                    };
                    self.mails
                        .lock()
                        .unwrap()
                        .push(std::mem::replace(&mut mail, next));
                    b"250 OK queued\r\n"
                }
                "RSET" => {
                    mail = Mail {
                        tls,
                        ..Mail::default()
                    };
                    b"250 OK\r\n"
                }
                "AUTH" => {
                    self.auth.lock().unwrap().push(command.clone());
                    b"235 2.7.0 Authentication successful\r\n"
                }
                "NOOP" => b"250 OK\r\n",
                "QUIT" => {
                    reader.write_all(b"221 bye\r\n").await?;
                    return Ok(None);
                }
                _ => b"502 command not implemented\r\n",
            };
            reader.write_all(reply).await?;
            reader.flush().await?;
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
