//! The command line's error type: every failure is one line that says what to fix.

use dwmon_core::StoreError;
use std::path::PathBuf;

/// An operational failure of a command (exit status 2).
///
/// Findings are not errors: an invalid checker file found by `check`, or a BAD check with
/// `--fail-on-bad`, exit with status 1 through the command's normal path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The checker directory could not be read.
    #[error("cannot read checker directory {path}: {source}")]
    CheckerDir {
        /// The directory given with `--checkers`.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The store could not be opened or used.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// A read-only command was pointed at a store file that does not exist.
    #[error("store {path} does not exist (it is created by `dwmon once` or `dwmon run`)")]
    StoreMissing {
        /// The path given with `--store`.
        path: PathBuf,
    },
    /// Neither `--store` nor a store configured in the application.
    #[error("--store FILE is required")]
    NoStore,
    /// A `--source` could not be set up.
    #[error("--source {name}: {message}")]
    Source {
        /// The source name.
        name: String,
        /// Why.
        message: String,
    },
    /// `once`/`run` without any way to fetch rows.
    #[error(
        "no source configured: pass --source NAME=URL for each __SOURCE__ your checkers use, \
         e.g. --source default=sqlite:data.sqlite"
    )]
    NoSources,
    /// A command argument is inconsistent (e.g. `--to` before `--from`).
    #[error("{0}")]
    Usage(String),
    /// Writing an output file failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The async runtime or a signal handler could not be started.
    #[error("runtime: {0}")]
    Runtime(std::io::Error),
    /// The alerts config (`--alerts FILE`) could not be loaded or its channels set up.
    #[error("{0}")]
    AlertsConfig(#[from] dwmon_alert::ConfigError),
    /// The alert store (pauses, alert states) could not be opened or used.
    #[error("{0}")]
    AlertStore(#[from] dwmon_alert::AlertStoreError),
    /// The token store could not be opened or used, or a token command's argument is wrong.
    #[error("{0}")]
    Token(#[from] dwmon_server::tokens::TokenError),
    /// The config file (`--config FILE`, `DWMON_CONFIG`) could not be used.
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    /// A cycle failed as a whole (e.g. the store became unusable mid-run).
    #[error("cycle failed: {0}")]
    Cycle(String),
}

/// `Result` with the command line's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
