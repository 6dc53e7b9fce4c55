//! [`Error`]: mistakes in a [`MysqlSource`](crate::MysqlSource)'s configuration.
//!
//! Failures while fetching are [`dwmon_core::SourceError`]s (the engine turns them into an
//! `ERROR` event for the one checker); this type is for what the builder finds before any fetch.

/// A configuration mistake found by [`MysqlSourceBuilder`](crate::MysqlSourceBuilder).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A source name was empty or had surrounding whitespace.
    #[error("source name {0:?} is invalid: it must be non-empty, without surrounding whitespace")]
    InvalidName(String),
    /// The same source name was configured twice.
    #[error("source {0:?} is configured twice")]
    DuplicateName(String),
    /// The connection string could not be parsed.
    #[error("source {source_name:?}: invalid connection string: {message}")]
    InvalidConnection {
        /// Source name.
        source_name: String,
        /// What is wrong (the password is never shown).
        message: String,
    },
    /// The TLS settings asked for cannot be set up (e.g. an unreadable `ssl-ca` file).
    #[error("source {source_name:?}: TLS: {message}")]
    Tls {
        /// Source name.
        source_name: String,
        /// What is wrong.
        message: String,
    },
    /// A pool setting is out of range (e.g. a pool size of 0).
    #[error("invalid setting {setting}: {message}")]
    InvalidSetting {
        /// The builder method.
        setting: &'static str,
        /// What is wrong.
        message: String,
    },
    /// `build()` was called without any source.
    #[error("no source configured: add one with .source(name, \"mysql://...\")")]
    NoSources,
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
