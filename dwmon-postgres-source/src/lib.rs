//! PostgreSQL source for dwmon: [`PostgresSource`], a [`dwmon_core::RowGetter`].

mod error;
mod source;
mod tls;
mod value;

pub use error::{Error, Result};
pub use source::{PostgresSource, PostgresSourceBuilder};
