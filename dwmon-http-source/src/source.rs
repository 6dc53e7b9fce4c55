//! [`HttpSource`]: checkers whose `__QUERY__` is an HTTP request to a JSON API.

use crate::error::{Error, Result};
use crate::spec::{Method, Next, RequestSpec};
use crate::template::{MissingVariable, Redactor};
use crate::{link, rows};
use dwmon_core::routing;
use dwmon_core::{FetchRequest, Fetched, RowGetter, SourceError};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::Url;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// How environment variables are read (`${NAME}` in a request spec).
type Lookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Reads checkers' rows from HTTP JSON APIs: each checker's `__QUERY__` is a request spec
/// (method, URL, headers, optional body; where the rows are in the response, which fields are
/// the key and the timestamp, how to find the next page). See the crate documentation for the
/// format.
///
/// Every fetch is bounded: a total timeout over all its pages, a size limit per response (read
/// in pieces and cut off), at most a few redirects and only to the same scheme, host and port.
/// TLS certificates are verified against Mozilla's roots (rustls). Only `http` and `https` URLs
/// are requested.
///
/// ```
/// use dwmon_http_source::HttpSource;
/// use std::time::Duration;
///
/// # fn main() -> Result<(), dwmon_http_source::Error> {
/// let source = HttpSource::builder()
///     // `__SOURCE__ default` (or none): request lines carry absolute URLs.
///     .source("default")?
///     // `__SOURCE__ github`: `GET /repos/o/r/issues` means https://api.github.com/repos/...
///     .source_with_base("github", "https://api.github.com")?
///     .timeout(Duration::from_secs(20))
///     .max_response_bytes(4 << 20)
///     .build()?;
/// assert_eq!(source.names(), ["default", "github"]);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct HttpSource {
    sources: BTreeMap<String, Option<Url>>,
    client: reqwest::Client,
    settings: Settings,
    lookup: Lookup,
}

impl std::fmt::Debug for HttpSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sources: BTreeMap<&String, Option<String>> = self
            .sources
            .iter()
            .map(|(name, base)| (name, base.as_ref().map(mask)))
            .collect();
        f.debug_struct("HttpSource")
            .field("sources", &sources)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy)]
struct Settings {
    timeout: Duration,
    connect_timeout: Duration,
    max_response_bytes: u64,
    max_redirects: usize,
}

/// Builds an [`HttpSource`]; see [`HttpSource::builder`].
pub struct HttpSourceBuilder {
    sources: Vec<(String, Option<Url>)>,
    settings: Settings,
    lookup: Lookup,
    roots: Vec<reqwest::Certificate>,
}

impl std::fmt::Debug for HttpSourceBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSourceBuilder")
            .field("settings", &self.settings)
            .field("extra_roots", &self.roots.len())
            .finish_non_exhaustive()
    }
}

impl HttpSource {
    /// Default bound on a whole fetch (every page, connecting and reading included).
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
    /// Default bound on opening a connection.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default size limit of one response body: 16 MiB.
    pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 16 << 20;
    /// Default number of redirects followed per request.
    pub const DEFAULT_MAX_REDIRECTS: usize = 5;
    /// How many characters of an error response's body a message shows.
    pub const ERROR_BODY_CHARS: usize = 200;

    /// A builder with no sources and the default settings; `${NAME}` reads the process
    /// environment.
    pub fn builder() -> HttpSourceBuilder {
        HttpSourceBuilder {
            sources: Vec::new(),
            settings: Settings {
                timeout: Self::DEFAULT_TIMEOUT,
                connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
                max_response_bytes: Self::DEFAULT_MAX_RESPONSE_BYTES,
                max_redirects: Self::DEFAULT_MAX_REDIRECTS,
            },
            lookup: Arc::new(|name| std::env::var(name).ok()),
            roots: Vec::new(),
        }
    }

    /// One source named `name` from a `--source NAME=URL` style URL:
    ///
    /// - `http`: request lines carry absolute URLs;
    /// - `http?OPTIONS`: the same, with `&`-separated options `timeout=SECONDS`,
    ///   `connect_timeout=SECONDS`, `max_response_bytes=N`, `max_redirects=N` and
    ///   `ca_file=PATH` (a PEM file of root certificates trusted besides Mozilla's);
    /// - `http://...` or `https://...`: a base URL for relative request lines (default
    ///   settings).
    ///
    /// ```
    /// use dwmon_http_source::HttpSource;
    ///
    /// # fn main() -> Result<(), dwmon_http_source::Error> {
    /// let api = HttpSource::from_url("api", "http?timeout=60&max_response_bytes=1048576")?;
    /// assert_eq!(api.names(), ["api"]);
    /// let github = HttpSource::from_url("github", "https://api.github.com/")?;
    /// assert_eq!(github.names(), ["github"]);
    /// assert!(HttpSource::from_url("x", "http?timout=60").is_err());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] naming the option that is wrong, [`Error::Certificates`] for an
    /// unreadable `ca_file`, and as [`HttpSourceBuilder::source_with_base`] and
    /// [`HttpSourceBuilder::build`].
    pub fn from_url(name: &str, url: &str) -> Result<Self> {
        let url = url.trim();
        if url.starts_with("http://") || url.starts_with("https://") {
            return Self::builder().source_with_base(name, url)?.build();
        }
        let invalid = |message: String| Error::InvalidUrl {
            url: mask_text(url),
            message,
        };
        let options = match url.strip_prefix("http") {
            Some("" | ":") => "",
            Some(rest) => rest.strip_prefix('?').ok_or_else(|| {
                invalid("expected http, http?OPTIONS or an http(s):// base URL".into())
            })?,
            None => {
                return Err(invalid(
                    "expected http, http?OPTIONS or an http(s):// base URL".into(),
                ))
            }
        };
        let mut builder = Self::builder().source(name)?;
        for option in options.split('&').filter(|o| !o.is_empty()) {
            let (key, value) = option.split_once('=').unwrap_or((option, ""));
            let seconds = || {
                value
                    .parse::<f64>()
                    .ok()
                    .and_then(|s| Duration::try_from_secs_f64(s).ok())
                    .ok_or_else(|| {
                        invalid(format!(
                            "{key}={} is not a number of seconds",
                            crate::escape(value)
                        ))
                    })
            };
            let count = || {
                value
                    .parse::<u64>()
                    .map_err(|_| invalid(format!("{key}={} is not a number", crate::escape(value))))
            };
            builder = match key {
                "timeout" => builder.timeout(seconds()?),
                "connect_timeout" => builder.connect_timeout(seconds()?),
                "max_response_bytes" => builder.max_response_bytes(count()?),
                "max_redirects" => {
                    builder.max_redirects(usize::try_from(count()?).unwrap_or(usize::MAX))
                }
                "ca_file" => {
                    let pem = std::fs::read(value).map_err(|e| Error::Certificates {
                        origin: crate::escape(value),
                        message: e.to_string(),
                    })?;
                    builder.root_certificates(&crate::escape(value), &pem)?
                }
                other => {
                    return Err(invalid(format!(
                        "unknown option {:?}; the options are timeout=SECONDS, \
                         connect_timeout=SECONDS, max_response_bytes=N, max_redirects=N and \
                         ca_file=PATH",
                        crate::escape(other)
                    )))
                }
            };
        }
        builder.build()
    }

    /// The source named `default` (absolute URLs), with the default settings.
    ///
    /// # Errors
    /// [`Error::Client`] when the HTTP client cannot be set up.
    pub fn new() -> Result<Self> {
        Self::builder().source("default")?.build()
    }

    /// The configured source names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.sources.keys().cloned().collect()
    }
}

impl HttpSourceBuilder {
    /// Adds a source whose checkers' request lines carry absolute `http(s)://` URLs.
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::DuplicateName`].
    pub fn source(self, name: impl Into<String>) -> Result<Self> {
        self.add(name.into(), None)
    }

    /// Adds a source whose checkers may write request targets relative to `base`
    /// (`GET /items?page=1`, resolved as a browser would; an absolute URL is used as is).
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::DuplicateName`], [`Error::InvalidBaseUrl`] when `base`
    /// is not an absolute `http://` or `https://` URL, or holds a password (which is never
    /// echoed).
    pub fn source_with_base(self, name: impl Into<String>, base: &str) -> Result<Self> {
        let name = name.into();
        let invalid = |message: String| Error::InvalidBaseUrl {
            source_name: name.clone(),
            url: mask_text(base),
            message,
        };
        let url = Url::parse(base).map_err(|e| invalid(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid(
                "only http:// and https:// URLs are supported".into(),
            ));
        }
        if url.password().is_some() {
            return Err(invalid(
                "a base URL may not hold a password (it would be on a command line or in a \
                 config file); send credentials in a header of the checker, e.g. \
                 `Authorization: Bearer ${TOKEN}`"
                    .into(),
            ));
        }
        self.add(name, Some(url))
    }

    fn add(mut self, name: String, base: Option<Url>) -> Result<Self> {
        if name.is_empty() || name.trim() != name {
            return Err(Error::InvalidName(name));
        }
        if self.sources.iter().any(|(known, _)| *known == name) {
            return Err(Error::DuplicateName(name));
        }
        self.sources.push((name, base));
        Ok(self)
    }

    /// Bound on a whole fetch: connecting, every page's request and body (default 30 s). A
    /// fetch hitting it fails with [`SourceError::Timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.settings.timeout = timeout;
        self
    }

    /// Bound on opening one connection (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.settings.connect_timeout = timeout;
        self
    }

    /// Size limit of one response body, in bytes (default 16 MiB). The body is read in pieces
    /// and the fetch fails as soon as it passes the limit.
    pub fn max_response_bytes(mut self, bytes: u64) -> Self {
        self.settings.max_response_bytes = bytes;
        self
    }

    /// Redirects followed per request (default 5; 0 follows none). Redirects leave neither
    /// the scheme, host and port of the request nor `http`/`https`.
    pub fn max_redirects(mut self, redirects: usize) -> Self {
        self.settings.max_redirects = redirects;
        self
    }

    /// Trusts the root certificates of a PEM bundle besides Mozilla's (an organisation's own
    /// CA for internal APIs). `origin` names the bundle in errors (a file name).
    ///
    /// # Errors
    /// [`Error::Certificates`] when `pem` holds no certificate or an unparsable one.
    pub fn root_certificates(mut self, origin: &str, pem: &[u8]) -> Result<Self> {
        let invalid = |message: String| Error::Certificates {
            origin: origin.to_string(),
            message,
        };
        let certificates =
            reqwest::Certificate::from_pem_bundle(pem).map_err(|e| invalid(chain(&e)))?;
        if certificates.is_empty() {
            return Err(invalid("no PEM certificate in it".into()));
        }
        self.roots.extend(certificates);
        Ok(self)
    }

    /// Where `${NAME}` values come from (default: the process environment, read at each
    /// fetch). For tests and for programs that keep secrets elsewhere.
    pub fn env_lookup(
        mut self,
        lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.lookup = Arc::new(lookup);
        self
    }

    /// The source. Nothing is connected yet.
    ///
    /// # Errors
    /// [`Error::NoSources`], [`Error::InvalidSetting`] for a zero timeout or size limit,
    /// [`Error::Client`] when the HTTP client cannot be set up.
    pub fn build(self) -> Result<HttpSource> {
        if self.sources.is_empty() {
            return Err(Error::NoSources);
        }
        let invalid = |setting, message: &str| Error::InvalidSetting {
            setting,
            message: message.to_string(),
        };
        if self.settings.timeout.is_zero() {
            return Err(invalid("timeout", "must be more than 0"));
        }
        if self.settings.max_response_bytes == 0 {
            return Err(invalid("max_response_bytes", "must be at least 1"));
        }
        let max_redirects = self.settings.max_redirects;
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            let Some(first) = attempt.previous().first() else {
                return attempt.follow();
            };
            if attempt.previous().len() > max_redirects {
                let message = format!("more than {max_redirects} redirects");
                return attempt.error(message);
            }
            if attempt.url().origin() != first.origin() {
                let message = format!(
                    "a redirect to {} leaves {}; dwmon follows redirects only on the same \
                     scheme, host and port (they carry the request's headers); use the final \
                     URL in the checker",
                    attempt.url().origin().ascii_serialization(),
                    first.origin().ascii_serialization()
                );
                return attempt.error(message);
            }
            attempt.follow()
        });
        let mut client = reqwest::Client::builder()
            .connect_timeout(self.settings.connect_timeout)
            .redirect(policy)
            .user_agent(concat!("dwmon/", env!("CARGO_PKG_VERSION")));
        for root in self.roots {
            client = client.add_root_certificate(root);
        }
        let client = client.build().map_err(|e| Error::Client(chain(&e)))?;
        Ok(HttpSource {
            sources: self.sources.into_iter().collect(),
            client,
            settings: self.settings,
            lookup: self.lookup,
        })
    }
}

#[async_trait::async_trait]
impl RowGetter for HttpSource {
    async fn get_rows(&self, request: &FetchRequest<'_>) -> Result<Fetched, SourceError> {
        let base = routing::pick(&self.sources, request.source)?;
        let mut fetch = Fetch {
            request,
            redactor: Redactor::default(),
            settings: self.settings,
        };
        let spec = RequestSpec::parse(request.query).map_err(|e| fetch.query(e.to_string()))?;
        let prepared = fetch.prepare(&spec, base.as_ref(), &*self.lookup)?;
        let timeout = self.settings.timeout;
        match tokio::time::timeout(timeout, fetch.pages(&self.client, &spec, prepared)).await {
            Ok(result) => result,
            Err(_elapsed) => Err(SourceError::Timeout {
                millis: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            }),
        }
    }
}

/// The first page's request, variables expanded.
struct Prepared {
    url: Url,
    headers: HeaderMap,
    body: Option<String>,
}

/// One fetch: its request, and the values to keep out of its messages.
struct Fetch<'r, 'q> {
    request: &'r FetchRequest<'q>,
    redactor: Redactor,
    settings: Settings,
}

impl Fetch<'_, '_> {
    fn query(&self, message: String) -> SourceError {
        SourceError::Query {
            source_name: self.request.source.to_string(),
            message: self
                .redactor
                .redact(&format!("checker {:?}: {message}", self.request.checker)),
        }
    }

    fn connection(&self, message: String) -> SourceError {
        SourceError::Connection {
            source_name: self.request.source.to_string(),
            message: self
                .redactor
                .redact(&format!("checker {:?}: {message}", self.request.checker)),
        }
    }

    /// `page 2 (https://api.example/items?page=2)`, password masked.
    fn page(&self, page: u32, url: &Url) -> String {
        format!("page {page} ({})", mask(url))
    }

    fn missing(&self, line: usize, missing: &MissingVariable) -> SourceError {
        let why = if missing.empty {
            "is empty"
        } else {
            "is not set"
        };
        self.query(format!(
            "__QUERY__ line {line}: environment variable {} {why}",
            missing.name
        ))
    }

    fn prepare(
        &mut self,
        spec: &RequestSpec,
        base: Option<&Url>,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Prepared, SourceError> {
        let target = spec
            .url
            .expand(lookup, &mut self.redactor)
            .map_err(|m| self.missing(1, &m))?;
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::ACCEPT,
            HeaderValue::from_static("application/json"),
        );
        let mut written = Vec::new();
        for (name, value, line) in &spec.headers {
            let value = value
                .expand(lookup, &mut self.redactor)
                .map_err(|m| self.missing(*line, &m))?;
            let mut value = HeaderValue::from_str(&value).map_err(|_| {
                self.query(format!(
                    "__QUERY__ line {line}: the value of header {name} is not a valid header \
                     value (a control character or a line break, maybe from a variable)"
                ))
            })?;
            value.set_sensitive(true);
            // A header given in the spec replaces the default; given twice, both are sent.
            if !written.contains(name) {
                headers.remove(name);
                written.push(name.clone());
            }
            headers.append(name.clone(), value);
        }
        let body = match &spec.body {
            None => None,
            Some((body, line)) => Some(
                body.expand(lookup, &mut self.redactor)
                    .map_err(|m| self.missing(*line, &m))?,
            ),
        };
        let parsed = match base {
            Some(base) => base.join(&target),
            None => Url::parse(&target),
        };
        let url = parsed.map_err(|e| {
            let hint = if base.is_none() && !target.contains("://") {
                " (a relative URL needs a source with a base URL)"
            } else {
                ""
            };
            self.query(format!(
                "__QUERY__ line 1: invalid URL {}: {e}{hint}",
                mask_text(&spec.url.as_written())
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(self.query(format!(
                "__QUERY__ line 1: {} is not an http:// or https:// URL",
                mask(&url)
            )));
        }
        Ok(Prepared { url, headers, body })
    }

    async fn pages(
        &self,
        client: &reqwest::Client,
        spec: &RequestSpec,
        prepared: Prepared,
    ) -> Result<Fetched, SourceError> {
        let method = match spec.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
        };
        let origin = prepared.url.origin();
        let mut url = prepared.url;
        let mut fetched = Fetched::default();
        let mut numbered = 0;
        for page in 1..=spec.max_pages {
            let mut builder = client
                .request(method.clone(), url.clone())
                .headers(prepared.headers.clone());
            if let Some(body) = &prepared.body {
                builder = builder.body(body.clone());
            }
            let response = builder
                .send()
                .await
                .map_err(|e| self.send_error(page, &url, &e))?;
            let status = response.status();
            let final_url = response.url().clone();
            if !status.is_success() {
                let excerpt = error_body(response).await;
                return Err(self.query(format!(
                    "{}: HTTP {status}{}",
                    self.page(page, &url),
                    if excerpt.is_empty() {
                        String::new()
                    } else {
                        format!(": {excerpt}")
                    }
                )));
            }
            let link_next = match spec.next {
                Next::LinkHeader => link::next_target(
                    response
                        .headers()
                        .get_all(reqwest::header::LINK)
                        .iter()
                        .filter_map(|value| value.to_str().ok()),
                ),
                _ => None,
            };
            let bytes = self.body(page, &url, response).await?;
            let document: Value = serde_json::from_slice(&bytes).map_err(|e| {
                self.query(format!(
                    "{}: the response is not valid JSON: {e}",
                    self.page(page, &url)
                ))
            })?;
            let items = match spec.rows.get(&document) {
                Some(Value::Array(items)) => items,
                Some(other) => {
                    return Err(self.query(format!(
                        "{}: rows `{}` is {}, not an array of objects",
                        self.page(page, &url),
                        spec.rows.as_written(),
                        rows::kind(other)
                    )))
                }
                None => {
                    return Err(self.query(format!(
                        "{}: rows `{}` is not in the response (its top level is {})",
                        self.page(page, &url),
                        spec.rows.as_written(),
                        rows::kind(&document)
                    )))
                }
            };
            rows::convert_page(
                items,
                &spec.key,
                &spec.timestamp,
                &mut numbered,
                &mut fetched,
            );
            let target = match &spec.next {
                Next::None => None,
                Next::LinkHeader => link_next,
                Next::Field(path) => match path.get(&document) {
                    None | Some(Value::Null) => None,
                    Some(Value::String(text)) if text.trim().is_empty() => None,
                    Some(Value::String(text)) => Some(text.clone()),
                    Some(other) => {
                        return Err(self.query(format!(
                            "{}: next `{}` is {}, not a URL",
                            self.page(page, &url),
                            path.as_written(),
                            rows::kind(other)
                        )))
                    }
                },
            };
            let Some(target) = target else {
                return Ok(fetched);
            };
            if page == spec.max_pages {
                tracing::debug!(
                    checker = self.request.checker,
                    pages = page,
                    "stopped at max-pages with a next page left"
                );
                break;
            }
            let next = final_url.join(target.trim()).map_err(|e| {
                self.query(format!(
                    "{}: the next page's URL {} is invalid: {e}",
                    self.page(page, &url),
                    crate::excerpt(&mask_text(&target), 200)
                ))
            })?;
            if next.origin() != origin {
                return Err(self.query(format!(
                    "{}: the next page {} leaves {}; dwmon follows next links only on the same \
                     scheme, host and port (they carry the request's headers)",
                    self.page(page, &url),
                    mask(&next),
                    origin.ascii_serialization()
                )));
            }
            url = next;
        }
        Ok(fetched)
    }

    fn send_error(&self, page: u32, url: &Url, error: &reqwest::Error) -> SourceError {
        let message = format!("{}: {}", self.page(page, url), chain(error));
        if error.is_redirect() {
            self.query(message)
        } else {
            self.connection(message)
        }
    }

    /// The body, at most `max_response_bytes` of it, read in pieces.
    async fn body(
        &self,
        page: u32,
        url: &Url,
        mut response: reqwest::Response,
    ) -> Result<Vec<u8>, SourceError> {
        let limit = self.settings.max_response_bytes;
        let too_large = || {
            self.query(format!(
                "{}: the response is larger than the limit of {limit} bytes; ask for smaller \
                 pages (e.g. a per_page parameter) or raise the limit",
                self.page(page, url)
            ))
        };
        if response
            .content_length()
            .is_some_and(|length| length > limit)
        {
            return Err(too_large());
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| {
            self.connection(format!(
                "{}: reading the response failed: {}",
                self.page(page, url),
                chain(&e)
            ))
        })? {
            if bytes.len() as u64 + chunk.len() as u64 > limit {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }
}

/// The start of an error response's body, escaped and cut (read errors give what was read).
async fn error_body(mut response: reqwest::Response) -> String {
    const READ_BYTES: usize = 4096;
    let mut bytes = Vec::new();
    while bytes.len() < READ_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    bytes.truncate(READ_BYTES);
    crate::excerpt(
        &String::from_utf8_lossy(&bytes),
        HttpSource::ERROR_BODY_CHARS,
    )
}

/// The error and its causes, without the URL (which may hold a password or a token; messages
/// show the masked URL themselves).
fn chain(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "cannot connect"
    } else if error.is_redirect() {
        "redirect refused"
    } else {
        "request failed"
    };
    let mut message = kind.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        let text = inner.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        cause = inner.source();
    }
    crate::escape(&message)
}

/// The URL with any password shown as `***`, control characters escaped. Also masked as text:
/// `https://u:pa/ss@h/` parses as host `u`, port... and no password, yet `pa/ss` is one.
fn mask(url: &Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some("***"));
    }
    mask_text(shown.as_str())
}

/// `scheme://user:secret@host/...` text (maybe not a valid URL, e.g. a password with a raw
/// `/` that made parsing fail) with everything from the user's `:` to the last `@` shown as
/// `***` (at worst a path's `@` over-masks).
fn mask_text(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return crate::escape(text);
    };
    let shown = match rest.rfind('@') {
        Some(at) => match rest[..at].split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***{}", &rest[at..]),
            None => text.to_string(),
        },
        None => text.to_string(),
    };
    crate::escape(&shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked() {
        let url = Url::parse("https://u:hunter2@h:8443/p?q=1").unwrap();
        assert_eq!(mask(&url), "https://u:***@h:8443/p?q=1");
        let url = Url::parse("https://u:1/pa@ss/x").unwrap();
        assert_eq!(url.password(), None);
        assert_eq!(mask(&url), "https://u:***@ss/x");
        assert_eq!(
            mask_text("https://u:hunter2@h/${X}"),
            "https://u:***@h/${X}"
        );
        assert_eq!(mask_text("/relative"), "/relative");
        assert_eq!(mask_text("https://u:pa/ss?@h/x"), "https://u:***@h/x");
        assert_eq!(mask_text("https://h/x"), "https://h/x");
    }

    #[test]
    fn builder_errors() {
        assert_eq!(HttpSource::builder().build().unwrap_err(), Error::NoSources);
        assert_eq!(
            HttpSource::builder().source(" x").unwrap_err(),
            Error::InvalidName(" x".into())
        );
        let duplicate = HttpSource::builder()
            .source("a")
            .and_then(|b| b.source_with_base("a", "https://h"));
        assert_eq!(duplicate.unwrap_err(), Error::DuplicateName("a".into()));
        let error = HttpSource::builder()
            .source_with_base("a", "ftp://u:hunter2@h/")
            .unwrap_err();
        assert!(matches!(error, Error::InvalidBaseUrl { .. }), "{error:?}");
        assert!(!error.to_string().contains("hunter2"), "{error}");
        let error = HttpSource::builder()
            .source_with_base("a", "https://u:hunter2@h/")
            .unwrap_err();
        assert!(
            error.to_string().contains("may not hold a password"),
            "{error}"
        );
        assert!(!error.to_string().contains("hunter2"), "{error}");
        let error = HttpSource::builder()
            .source("a")
            .map(|b| b.max_response_bytes(0))
            .and_then(HttpSourceBuilder::build)
            .unwrap_err();
        assert!(matches!(
            error,
            Error::InvalidSetting {
                setting: "max_response_bytes",
                ..
            }
        ));
    }
}
