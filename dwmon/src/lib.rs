//! # dwmon
//!
//! Monitor counts of things in a datastore: "did between 5 and 20 model executions happen in
//! the last 3 minutes?". This facade crate is the one name an organisation puts in its
//! `Cargo.toml`: it re-exports [`dwmon_core`] (checker files, evaluator, traits, engine), the
//! SQLite store and source ([`sqlite`]), the PostgreSQL source ([`postgres`]), the MySQL /
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

mod alerts;
pub mod app;
pub mod args;
pub mod cli;
pub mod clock;
mod commands;
pub mod config;
pub mod demo;
pub mod error;
pub mod histogram;
pub mod insight;
mod insight_commands;
pub mod printer;
pub mod shutdown;
pub mod sources;
pub mod status;
mod tokens;
mod validate;

pub use app::App;
pub use async_trait::async_trait;
pub use clock::SimClock;
pub use dwmon_core::*;
pub use error::{Error, Result};

/// The SQLite store (the embedded default) and the SQLite source.
pub use dwmon_sqlite as sqlite;

/// The PostgreSQL source.
pub use dwmon_postgres_source as postgres;

/// The command source: a checker's `__QUERY__` is a program whose stdout holds the rows.
pub use dwmon_command_source as command_source;

/// The HTTP JSON API source.
pub use dwmon_http_source as http_source;

/// The MySQL / MariaDB source.
pub use dwmon_mysql_source as mysql;

/// Alerting: policy, alert state stores, notification channels, [`alert::AlertHandler`].
pub use dwmon_alert as alert;
/// HTTP server parts (`dwmon serve`): push checkers, status page, API, metrics.
pub use dwmon_server as server;
