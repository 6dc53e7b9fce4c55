//! SQLite store and source.
