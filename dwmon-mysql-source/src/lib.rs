#![doc = include_str!("../README.md")]
//!
//! ## Modules
//!
//! The public surface is [`MysqlSource`] (with [`MysqlSourceBuilder`]) and the configuration
//! [`Error`]; fetch failures are [`dwmon_core::SourceError`]s.

mod connection;
mod error;
mod source;
mod value;

pub use error::{Error, Result};
pub use source::{MysqlSource, MysqlSourceBuilder};
