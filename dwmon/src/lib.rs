//! # dwmon
//!
//! Monitor counts of things in a datastore: "did between 5 and 20 model executions happen in
//! the last 3 minutes?". This facade crate is the one name an organisation puts in its
//! `Cargo.toml`: it re-exports [`dwmon_core`] (checker files, evaluator, traits, engine), the
//! SQLite store and source ([`sqlite`]), the PostgreSQL source ([`postgres`]) and store
//! ([`postgres_store`], shared by several runners), the MySQL /
//! MariaDB source ([`mysql`]) and the HTTP JSON API source ([`http_source`]), and provides the
//! reference command line as a library, [`App`];
//! alerting is [`alert`] (`dwmon-alert`).
//!
//! ```no_run
//! // The stock `dwmon` binary, whole:
//! fn main() -> std::process::ExitCode {
//!     dwmon::App::new().run_cli()
//! }
//! ```

#[cfg(feature = "cli")]
mod alerts;
#[cfg(feature = "cli")]
pub mod app;
#[cfg(feature = "cli")]
pub mod args;
#[cfg(feature = "cli")]
pub mod cli;
pub mod clock;
#[cfg(feature = "cli")]
mod commands;
#[cfg(feature = "cli")]
pub mod config;
#[cfg(feature = "cli")]
pub mod demo;
#[cfg(feature = "cli")]
pub mod error;
#[cfg(feature = "cli")]
pub mod histogram;
#[cfg(feature = "cli")]
pub mod insight;
#[cfg(feature = "cli")]
mod insight_commands;
pub mod printer;
pub mod shutdown;
#[cfg(feature = "cli")]
pub mod sources;
#[cfg(feature = "cli")]
pub mod status;
#[cfg(feature = "cli")]
mod tokens;
#[cfg(feature = "cli")]
mod validate;

#[cfg(feature = "cli")]
pub use app::App;
pub use async_trait::async_trait;
pub use clock::SimClock;
pub use dwmon_core::*;
#[cfg(feature = "cli")]
pub use error::{Error, Result};

/// The SQLite store (the embedded default) and the SQLite source.
#[cfg(feature = "sqlite")]
pub use dwmon_sqlite as sqlite;

/// The PostgreSQL source.
#[cfg(feature = "postgres")]
pub use dwmon_postgres_source as postgres;
#[cfg(feature = "postgres-store")]
pub use dwmon_postgres_store as postgres_store;

/// The command source: a checker's `__QUERY__` is a program whose stdout holds the rows.
#[cfg(feature = "cli")]
pub use dwmon_command_source as command_source;

/// The HTTP JSON API source.
#[cfg(feature = "http")]
pub use dwmon_http_source as http_source;

/// The MySQL / MariaDB source.
#[cfg(feature = "mysql")]
pub use dwmon_mysql_source as mysql;

/// Alerting: policy, alert state stores, notification channels, [`alert::AlertHandler`].
#[cfg(feature = "alerts")]
pub use dwmon_alert as alert;
/// HTTP server parts (`dwmon serve`): push checkers, status page, API, metrics.
#[cfg(feature = "cli")]
pub use dwmon_server as server;
