#![doc = include_str!("../README.md")]
//!
//! ## Modules
//!
//! The public surface is [`PostgresSource`] (with [`PostgresSourceBuilder`]) and the
//! configuration [`Error`]; fetch failures are [`dwmon_core::SourceError`]s.

pub mod connection;
mod error;
mod pgenv;
mod source;
mod tls;
mod value;

pub use error::{Error, Result};
pub use source::{PostgresSource, PostgresSourceBuilder};
