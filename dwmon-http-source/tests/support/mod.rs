//! A loopback HTTP/1.1 server started inside each test: every connection carries one request,
//! answered by the test's handler (one response per connection, `Connection: close`).
#![allow(dead_code)]

use dwmon_core::{FetchRequest, Fetched, RowGetter, SourceError};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One request the server received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query, as sent (`/items?page=2`).
    pub target: String,
    /// Lower-case names; repeated headers joined with `, `.
    pub headers: BTreeMap<String, String>,
    pub body: String,
    /// `http://127.0.0.1:PORT`, for building links.
    pub base: String,
}

impl Request {
    /// The value of query parameter `name`.
    pub fn param(&self, name: &str) -> Option<String> {
        let (_, query) = self.target.split_once('?')?;
        query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            (key == name).then(|| value.to_string())
        })
    }
}

/// How the server answers.
pub enum Reply {
    /// A complete response with a `Content-Length`.
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// 200 with a body of `fill` bytes that never ends (no length; framed by the close).
    Endless,
    /// Reads the request and never answers.
    Hang,
}

impl Reply {
    pub fn json(body: serde_json::Value) -> Reply {
        Reply::status(200, &body.to_string())
    }

    pub fn status(status: u16, body: &str) -> Reply {
        Reply::Full {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        if let Reply::Full { headers, .. } = &mut self {
            headers.push((name.to_string(), value.to_string()));
        }
        self
    }
}

type Handler = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;

/// The server: its address and the requests it has seen.
#[derive(Clone)]
pub struct Server {
    pub base: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Server {
    /// Starts serving on 127.0.0.1 (a free port) until the test's runtime ends.
    pub async fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let server = Server {
            base: base.clone(),
            requests: Arc::default(),
        };
        let handler: Handler = Arc::new(handler);
        let requests = server.requests.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (handler, requests, base) = (handler.clone(), requests.clone(), base.clone());
                tokio::spawn(async move {
                    let _ = serve(stream, &*handler, &requests, base).await;
                });
            }
        });
        server
    }

    pub fn url(&self, target: &str) -> String {
        format!("{}{target}", self.base)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    pub fn targets(&self) -> Vec<String> {
        self.requests().into_iter().map(|r| r.target).collect()
    }
}

async fn serve(
    stream: tokio::net::TcpStream,
    handler: &(dyn Fn(&Request) -> Reply + Send + Sync),
    requests: &Mutex<Vec<Request>>,
    base: String,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let mut words = line.split_whitespace();
    let method = words.next().unwrap_or_default().to_string();
    let target = words.next().unwrap_or_default().to_string();
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).await? == 0 {
            break;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let name = name.trim().to_ascii_lowercase();
            let value = value.trim().to_string();
            headers
                .entry(name)
                .and_modify(|v| {
                    v.push_str(", ");
                    v.push_str(&value);
                })
                .or_insert(value);
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await?;
    let request = Request {
        method,
        target,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        base,
    };
    requests.lock().unwrap().push(request.clone());
    let mut stream = reader.into_inner();
    match handler(&request) {
        Reply::Full {
            status,
            headers,
            body,
        } => {
            let mut head = format!(
                "HTTP/1.1 {status} Scripted\r\ncontent-length: {}\r\nconnection: close\r\n",
                body.len()
            );
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(&body).await?;
            stream.flush().await?;
        }
        Reply::Endless => {
            stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n[")
                .await?;
            let chunk = vec![b' '; 64 * 1024];
            // Until the client hangs up.
            loop {
                stream.write_all(&chunk).await?;
            }
        }
        Reply::Hang => std::future::pending::<()>().await,
    }
    Ok(())
}

/// Fetches `query` from source `source` of `getter`.
pub async fn fetch(
    getter: &dyn RowGetter,
    source: &str,
    query: &str,
) -> Result<Fetched, SourceError> {
    let extra = serde_json::json!({});
    let request = FetchRequest {
        checker: "api_check",
        query,
        source,
        extra: &extra,
    };
    getter.get_rows(&request).await
}

/// The rows as `(key, timestamp)` pairs.
pub fn pairs(fetched: &Fetched) -> Vec<(String, i64)> {
    fetched
        .rows
        .iter()
        .map(|row| (row.key.clone(), row.timestamp))
        .collect()
}
