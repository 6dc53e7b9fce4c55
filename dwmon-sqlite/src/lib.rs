//! SQLite store and source.

pub mod source;
pub use source::SqliteSource;
