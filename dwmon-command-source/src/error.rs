//! [`Error`]: mistakes in a [`CommandSource`](crate::CommandSource)'s configuration.
//!
//! Failures while fetching (a command that exits non-zero, hangs or cannot be found) are
//! [`dwmon_core::SourceError`]s, reported as an `ERROR` event for the one checker; this type is
//! for what is found before any fetch.

/// A configuration mistake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A `command:` URL could not be read.
    #[error("{url:?}: {message}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong and the form expected.
        message: String,
    },
    /// A setting is out of range (e.g. a zero timeout).
    #[error("invalid setting {setting}: {message}")]
    InvalidSetting {
        /// The builder method or URL option.
        setting: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
