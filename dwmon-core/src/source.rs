//! [`RowGetter`]: where rows come from.

use async_trait::async_trait;
use std::sync::Arc;

/// One row of a checker's result set: the `dwmon_unique_key` and `dwmon_timestamp` columns.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Row {
    /// Unique key of the thing being counted.
    pub key: String,
    /// When it happened, Unix epoch seconds.
    pub timestamp: i64,
}

impl Row {
    /// A row from a key and an epoch timestamp.
    pub fn new(key: impl Into<String>, timestamp: i64) -> Self {
        Row {
            key: key.into(),
            timestamp,
        }
    }
}

/// What the engine asks a [`RowGetter`] for: one checker's query.
#[derive(Debug, Clone, Copy)]
pub struct FetchRequest<'a> {
    /// The checker's name (file stem).
    pub checker: &'a str,
    /// The `__QUERY__` text, trimmed, verbatim.
    pub query: &'a str,
    /// The `__SOURCE__` name (`default` when absent).
    pub source: &'a str,
    /// The `__EXTRA__` JSON.
    pub extra: &'a serde_json::Value,
}

/// The result of one fetch: the good rows and a report of rows that could not be used.
///
/// Rejected rows (NULL key, unparsable timestamp, ...) never fail the whole fetch; the engine
/// reports them in an `ERROR` event while still checking with the good rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fetched {
    /// Usable rows, in the order the source returned them.
    pub rows: Vec<Row>,
    /// How many rows were rejected.
    pub rejected: u64,
    /// The reasons for the first few rejections (at most [`Fetched::MAX_SAMPLES`]).
    pub rejected_samples: Vec<String>,
}

impl Fetched {
    /// How many rejection reasons are kept.
    pub const MAX_SAMPLES: usize = 5;

    /// A fetch result with only good rows.
    pub fn from_rows(rows: Vec<Row>) -> Self {
        Fetched {
            rows,
            ..Fetched::default()
        }
    }

    /// Counts a rejected row, keeping its reason if fewer than [`Fetched::MAX_SAMPLES`] are kept.
    pub fn reject(&mut self, reason: impl Into<String>) {
        self.rejected += 1;
        if self.rejected_samples.len() < Self::MAX_SAMPLES {
            self.rejected_samples.push(reason.into());
        }
    }
}

/// Why a fetch failed. The engine turns it into an `ERROR` event for that checker only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// `__SOURCE__` names a source the RowGetter does not know.
    #[error("unknown source {source_name:?} (known: {})", known.join(", "))]
    UnknownSource {
        /// The name asked for.
        source_name: String,
        /// The names configured.
        known: Vec<String>,
    },
    /// Could not connect to (or lost) the database.
    #[error("source {source_name:?}: connection failed: {message}")]
    Connection {
        /// Source name.
        source_name: String,
        /// Driver message.
        message: String,
    },
    /// The query failed.
    #[error("source {source_name:?}: query failed: {message}")]
    Query {
        /// Source name.
        source_name: String,
        /// Driver message.
        message: String,
    },
    /// The result set lacks `dwmon_unique_key` or `dwmon_timestamp`.
    #[error("checker {checker:?}: result set must have columns dwmon_unique_key and dwmon_timestamp; found: {}", found.join(", "))]
    MissingColumns {
        /// Checker name.
        checker: String,
        /// Columns the result set had.
        found: Vec<String>,
    },
    /// The fetch took longer than allowed.
    #[error("fetch timed out after {millis} ms")]
    Timeout {
        /// The timeout that was hit, in milliseconds.
        millis: u64,
    },
    /// Anything else, described for a person.
    #[error("{0}")]
    Other(String),
}

/// Fetches the rows of a checker's query from an organisation's datastore.
///
/// Implement this for your databases (or APIs); `__SOURCE__` tells you which one. Return every
/// row the query yields; the engine de-duplicates, stores and counts.
///
/// ```
/// use async_trait::async_trait;
/// use dwmon_core::{FetchRequest, Fetched, Row, RowGetter, SourceError};
///
/// /// A source that always returns the same two rows.
/// struct Fixed;
///
/// #[async_trait]
/// impl RowGetter for Fixed {
///     async fn get_rows(&self, request: &FetchRequest<'_>) -> Result<Fetched, SourceError> {
///         if request.source != "default" {
///             return Err(SourceError::UnknownSource {
///                 source_name: request.source.to_string(),
///                 known: vec!["default".into()],
///             });
///         }
///         Ok(Fetched::from_rows(vec![Row::new("a", 1_700_000_000), Row::new("b", 1_700_000_030)]))
///     }
/// }
/// # let extra = serde_json::json!({});
/// # let req = FetchRequest { checker: "c", query: "SELECT 1", source: "default", extra: &extra };
/// # let rows = futures::executor::block_on(Fixed.get_rows(&req)).unwrap();
/// # assert_eq!(rows.rows.len(), 2);
/// ```
#[async_trait]
pub trait RowGetter: Send + Sync {
    /// Runs `request.query` against `request.source`.
    ///
    /// # Errors
    /// A [`SourceError`] when the rows cannot be had; the engine records nothing for the
    /// checker this cycle and reports an `ERROR` event.
    async fn get_rows(&self, request: &FetchRequest<'_>) -> Result<Fetched, SourceError>;
}

#[async_trait]
impl<T: RowGetter + ?Sized> RowGetter for &T {
    async fn get_rows(&self, request: &FetchRequest<'_>) -> Result<Fetched, SourceError> {
        (**self).get_rows(request).await
    }
}

#[async_trait]
impl<T: RowGetter + ?Sized> RowGetter for Box<T> {
    async fn get_rows(&self, request: &FetchRequest<'_>) -> Result<Fetched, SourceError> {
        (**self).get_rows(request).await
    }
}

#[async_trait]
impl<T: RowGetter + ?Sized> RowGetter for Arc<T> {
    async fn get_rows(&self, request: &FetchRequest<'_>) -> Result<Fetched, SourceError> {
        (**self).get_rows(request).await
    }
}
