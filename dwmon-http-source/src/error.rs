//! [`Error`]: mistakes in an [`HttpSource`](crate::HttpSource)'s configuration.
//!
//! Failures while fetching (a bad request spec, HTTP 500, malformed JSON, a timeout) are
//! [`dwmon_core::SourceError`]s, reported by the engine as an `ERROR` event for that checker;
//! this type is for what the builder finds before any fetch.

/// A configuration mistake found by [`HttpSourceBuilder`](crate::HttpSourceBuilder).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A source name was empty or had surrounding whitespace.
    #[error("source name {0:?} is invalid: it must be non-empty, without surrounding whitespace")]
    InvalidName(String),
    /// The same source name was configured twice.
    #[error("source {0:?} is configured twice")]
    DuplicateName(String),
    /// A base URL is not an absolute `http://` or `https://` URL.
    #[error("source {source_name:?}: invalid base URL {url:?}: {message}")]
    InvalidBaseUrl {
        /// Source name.
        source_name: String,
        /// The URL, with any password shown as `***`.
        url: String,
        /// What is wrong.
        message: String,
    },
    /// A setting is out of range (e.g. a response size limit of 0).
    #[error("invalid setting {setting}: {message}")]
    InvalidSetting {
        /// The builder method.
        setting: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A `--source` style URL (`http?timeout=60`) is not understood.
    #[error("invalid HTTP source URL {url:?}: {message}")]
    InvalidUrl {
        /// The URL, with any password shown as `***`.
        url: String,
        /// What is wrong and the form expected.
        message: String,
    },
    /// Extra root certificates could not be read or parsed.
    #[error("TLS root certificates {origin}: {message}")]
    Certificates {
        /// Where they came from (a file name, or `PEM`).
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// The HTTP client could not be set up (TLS roots, ...).
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
    /// `build()` was called without any source.
    #[error("no source configured: add one with .source(\"default\")")]
    NoSources,
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
