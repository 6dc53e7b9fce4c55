//! A TCP proxy in front of the PostgreSQL server that counts round trips: every burst of
//! bytes from the client that follows an answer from the server (or opens the connection) is
//! one. Pipelined statements sent together are one round trip, as they cost one network
//! wait. It also counts the statements the client sends (each `Parse` message, and each
//! statement of a simple `Query`). Also used by the benchmark `claims`
//! (benches/src/bin/claims.rs).
//!
//! Exact on a current-thread runtime, where the client writes a whole pipeline before the
//! proxy runs; on a multi-thread runtime a pipeline may now and then count as more.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The proxy's counters, shared by its connections.
#[derive(Debug, Default)]
pub struct Counts {
    round_trips: AtomicU64,
    statements: AtomicU64,
}

impl Counts {
    /// Client bursts so far, over every proxied connection.
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::SeqCst)
    }

    /// Statements sent so far, over every proxied connection.
    pub fn statements(&self) -> u64 {
        self.statements.load(Ordering::SeqCst)
    }
}

/// Splits the client's side of the protocol into messages and counts the statements.
#[derive(Default)]
struct Messages {
    pending: Vec<u8>,
    started: bool,
}

impl Messages {
    fn feed(&mut self, bytes: &[u8], counts: &Counts) {
        self.pending.extend_from_slice(bytes);
        loop {
            if !self.started {
                // SSLRequest / GSSENCRequest (answered with one byte), then the startup
                // message: a length, no type byte.
                let Some(head) = self.pending.get(..8) else {
                    return;
                };
                let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
                let code = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
                if self.pending.len() < len {
                    return;
                }
                if code != 80_877_103 && code != 80_877_104 {
                    self.started = true;
                }
                self.pending.drain(..len.max(8));
                continue;
            }
            let Some(head) = self.pending.get(..5) else {
                return;
            };
            let kind = head[0];
            let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
            if self.pending.len() < 1 + len {
                return;
            }
            let body = &self.pending[5..1 + len];
            let statements = match kind {
                b'P' => 1,
                b'Q' => String::from_utf8_lossy(body)
                    .trim_end_matches('\0')
                    .split(';')
                    .filter(|s| !s.trim().is_empty())
                    .count() as u64,
                _ => 0,
            };
            counts.statements.fetch_add(statements, Ordering::SeqCst);
            self.pending.drain(..1 + len);
        }
    }
}

/// A running proxy: connect to [`Proxy::url`] instead of the server.
pub struct Proxy {
    /// The server's URL with its host and port replaced by the proxy's.
    pub url: String,
    /// What the proxy counted.
    pub counts: Arc<Counts>,
}

/// Starts a proxy to the server of `url` (a `postgres://user@host:port/db?...` URL) and
/// returns it with `url` rewritten to pass through it (`sslmode=disable` added unless `url`
/// sets one: statements are counted in clear text).
///
/// # Panics
/// When `url` names no `host:port` or the proxy cannot listen on loopback.
pub async fn start(url: &str) -> Proxy {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let server = if host_port.contains(':') {
        host_port.to_string()
    } else {
        format!("{host_port}:5432")
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("listen");
    let local = listener.local_addr().expect("local address");
    let mut proxied = url.replacen(host_port, &local.to_string(), 1);
    // In clear text, so the statements can be counted.
    if !proxied.contains("sslmode=") {
        let separator = if proxied.contains('?') { '&' } else { '?' };
        proxied = format!("{proxied}{separator}sslmode=disable");
    }
    let counts = Arc::new(Counts::default());
    let shared = counts.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(upstream) = TcpStream::connect(&server).await else {
                continue;
            };
            let _ = client.set_nodelay(true);
            let _ = upstream.set_nodelay(true);
            tokio::spawn(pipe(client, upstream, shared.clone()));
        }
    });
    Proxy {
        url: proxied,
        counts,
    }
}

async fn pipe(client: TcpStream, server: TcpStream, counts: Arc<Counts>) {
    // Whether the last bytes on this connection came from the server (a client burst after
    // them is a new round trip).
    let answered = Arc::new(AtomicBool::new(true));
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let up_answered = answered.clone();
    let up = async move {
        let mut buf = vec![0_u8; 1 << 18];
        let mut messages = Messages::default();
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if up_answered.swap(false, Ordering::SeqCst) {
                counts.round_trips.fetch_add(1, Ordering::SeqCst);
            }
            messages.feed(&buf[..n], &counts);
            if server_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = server_write.shutdown().await;
    };
    let down = async move {
        let mut buf = vec![0_u8; 1 << 18];
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            answered.store(true, Ordering::SeqCst);
            if client_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = client_write.shutdown().await;
    };
    tokio::join!(up, down);
}
