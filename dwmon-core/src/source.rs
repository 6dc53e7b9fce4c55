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

    /// Adds `later`'s rows after these and its rejections to these (keeping at most
    /// [`Fetched::MAX_SAMPLES`] reasons, the first ones).
    pub fn append(&mut self, later: Fetched) {
        if self.rows.is_empty() {
            self.rows = later.rows;
        } else {
            self.rows.extend(later.rows);
        }
        self.rejected += later.rejected;
        let room = Self::MAX_SAMPLES.saturating_sub(self.rejected_samples.len());
        self.rejected_samples
            .extend(later.rejected_samples.into_iter().take(room));
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
/// # Two ways to hand rows over
///
/// - [`RowGetter::get_rows`] (required) returns the whole result at once. Enough for results
///   of up to some hundred thousand rows.
/// - [`RowGetter::get_rows_batched`] hands the result to a [`RowSink`] batch by batch, as the
///   source reads it. The engine stores each batch before it takes the next, so a fetch of
///   millions of rows holds about one batch ([`RowSink::batch_rows`], 20,000 rows for the
///   engine) in memory instead of the whole result. Its default calls `get_rows` and hands
///   over one batch, so every `RowGetter` works unchanged. A source that streams overrides it
///   and implements `get_rows` with [`collect_rows`] (never leave both defaults: each would
///   call the other).
///
/// A batched fetch that fails after some batches were accepted is a failed fetch like any
/// other: the engine records no check for it (an `ERROR` event instead). The rows it already
/// stored stay stored: they are real first-seen rows that the next fetch would store the same.
///
/// ```
/// use async_trait::async_trait;
/// use dwmon_core::source::{collect_rows, Batcher, RowSink};
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
///
/// /// A source streaming a million rows, never holding more than one batch.
/// struct Counter;
///
/// #[async_trait]
/// impl RowGetter for Counter {
///     async fn get_rows(&self, request: &FetchRequest<'_>) -> Result<Fetched, SourceError> {
///         collect_rows(self, request).await
///     }
///
///     async fn get_rows_batched(
///         &self,
///         _request: &FetchRequest<'_>,
///         sink: &mut dyn RowSink,
///     ) -> Result<(), SourceError> {
///         let mut batches = Batcher::new(sink);
///         for i in 0..1_000_000_i64 {
///             if i % 100_000 == 99_999 {
///                 batches.reject(format!("row {}: dwmon_unique_key is NULL", i + 1));
///                 continue;
///             }
///             // Hands a full batch to the sink (and waits for it) before going on.
///             batches.push(Row::new(i.to_string(), 1_700_000_000 + i)).await?;
///         }
///         batches.finish().await
///     }
/// }
/// # let extra = serde_json::json!({});
/// # let req = FetchRequest { checker: "c", query: "SELECT 1", source: "default", extra: &extra };
/// # let rows = futures::executor::block_on(Fixed.get_rows(&req)).unwrap();
/// # assert_eq!(rows.rows.len(), 2);
/// # let all = futures::executor::block_on(Counter.get_rows(&req)).unwrap();
/// # assert_eq!((all.rows.len(), all.rejected), (999_990, 10));
/// ```
#[async_trait]
pub trait RowGetter: Send + Sync {
    /// Runs `request.query` against `request.source`.
    ///
    /// # Errors
    /// A [`SourceError`] when the rows cannot be had; the engine records nothing for the
    /// checker this cycle and reports an `ERROR` event.
    async fn get_rows(&self, request: &FetchRequest<'_>) -> Result<Fetched, SourceError>;

    /// Runs `request.query` against `request.source`, handing the rows to `sink` in batches
    /// of at most about [`RowSink::batch_rows`] rows, in result order, each with the
    /// rejections found among its rows. The engine fetches through this method.
    ///
    /// The default calls [`RowGetter::get_rows`] and hands the whole result over as one
    /// batch. Override it (with [`Batcher`]) to bound a large fetch's memory.
    ///
    /// # Errors
    /// A [`SourceError`] when the rows cannot be had, or the error of [`RowSink::accept`]
    /// unchanged (the sink refused a batch: stop reading and return it).
    async fn get_rows_batched(
        &self,
        request: &FetchRequest<'_>,
        sink: &mut dyn RowSink,
    ) -> Result<(), SourceError> {
        let fetched = self.get_rows(request).await?;
        sink.accept(fetched).await
    }
}

/// How many rows the engine takes per batch ([`RowSink::batch_rows`]'s default): large enough
/// for the store's bulk insert to run at full rate, small enough that a batch is a few MB.
pub const DEFAULT_BATCH_ROWS: usize = 20_000;

/// Takes a batched fetch's rows ([`RowGetter::get_rows_batched`]), one batch at a time.
///
/// ```
/// use async_trait::async_trait;
/// use dwmon_core::source::RowSink;
/// use dwmon_core::{Fetched, SourceError};
///
/// /// Counts rows, refusing more than a million.
/// #[derive(Default)]
/// struct Count(usize);
///
/// #[async_trait]
/// impl RowSink for Count {
///     async fn accept(&mut self, batch: Fetched) -> Result<(), SourceError> {
///         self.0 += batch.rows.len();
///         if self.0 > 1_000_000 {
///             return Err(SourceError::Other("more than a million rows".into()));
///         }
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait RowSink: Send {
    /// How many rows a batch should hold at most; a source may go over it a little (a
    /// driver's page of rows), and a source that cannot stream hands everything in one batch.
    fn batch_rows(&self) -> usize {
        DEFAULT_BATCH_ROWS
    }

    /// Takes the next batch: its good rows in result order, and how many rows (with some
    /// reasons) were rejected since the previous batch.
    ///
    /// # Errors
    /// Any error stops the fetch: the source returns it unchanged from
    /// [`RowGetter::get_rows_batched`].
    async fn accept(&mut self, batch: Fetched) -> Result<(), SourceError>;
}

#[async_trait]
impl<T: RowSink + ?Sized> RowSink for &mut T {
    fn batch_rows(&self) -> usize {
        (**self).batch_rows()
    }

    async fn accept(&mut self, batch: Fetched) -> Result<(), SourceError> {
        (**self).accept(batch).await
    }
}

/// A [`RowSink`] that keeps everything: the whole result as one [`Fetched`] (at most
/// [`Fetched::MAX_SAMPLES`] rejection reasons in all).
#[derive(Debug, Default)]
pub struct CollectSink {
    /// What was accepted so far.
    pub fetched: Fetched,
}

#[async_trait]
impl RowSink for CollectSink {
    async fn accept(&mut self, batch: Fetched) -> Result<(), SourceError> {
        self.fetched.append(batch);
        Ok(())
    }
}

/// The whole result of a batched fetch as one [`Fetched`]: how a source that overrides
/// [`RowGetter::get_rows_batched`] implements [`RowGetter::get_rows`].
///
/// # Errors
/// The fetch's [`SourceError`].
pub async fn collect_rows<G: RowGetter + ?Sized>(
    getter: &G,
    request: &FetchRequest<'_>,
) -> Result<Fetched, SourceError> {
    let mut sink = CollectSink::default();
    getter.get_rows_batched(request, &mut sink).await?;
    Ok(sink.fetched)
}

/// Groups a source's rows into batches for a [`RowSink`]: [`Batcher::push`] each good row,
/// [`Batcher::reject`] each unusable one, then [`Batcher::finish`].
pub struct Batcher<'s> {
    sink: &'s mut dyn RowSink,
    batch: Fetched,
    limit: usize,
}

impl std::fmt::Debug for Batcher<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field("pending", &self.batch.rows.len())
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl<'s> Batcher<'s> {
    /// Batches of the sink's [`RowSink::batch_rows`] (at least 1).
    pub fn new(sink: &'s mut dyn RowSink) -> Self {
        let limit = sink.batch_rows().max(1);
        Batcher {
            sink,
            batch: Fetched::default(),
            limit,
        }
    }

    /// Rows per batch.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Adds a good row; a full batch goes to the sink first.
    ///
    /// # Errors
    /// The sink's error: stop reading and return it.
    pub async fn push(&mut self, row: Row) -> Result<(), SourceError> {
        if self.batch.rows.is_empty() {
            self.batch.rows.reserve_exact(self.limit);
        }
        self.batch.rows.push(row);
        if self.batch.rows.len() >= self.limit {
            self.flush().await?;
        }
        Ok(())
    }

    /// Counts a rejected row (see [`Fetched::reject`]).
    pub fn reject(&mut self, reason: impl Into<String>) {
        self.batch.reject(reason);
    }

    /// Hands what is pending to the sink, if anything.
    ///
    /// # Errors
    /// The sink's error.
    pub async fn flush(&mut self) -> Result<(), SourceError> {
        if self.batch.rows.is_empty() && self.batch.rejected == 0 {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        self.sink.accept(batch).await
    }

    /// Hands the last batch to the sink.
    ///
    /// # Errors
    /// The sink's error.
    pub async fn finish(mut self) -> Result<(), SourceError> {
        self.flush().await
    }
}

#[async_trait]
impl<T: RowGetter + ?Sized> RowGetter for &T {
    async fn get_rows(&self, request: &FetchRequest<'_>) -> Result<Fetched, SourceError> {
        (**self).get_rows(request).await
    }

    async fn get_rows_batched(
        &self,
        request: &FetchRequest<'_>,
        sink: &mut dyn RowSink,
    ) -> Result<(), SourceError> {
        (**self).get_rows_batched(request, sink).await
    }
}

#[async_trait]
impl<T: RowGetter + ?Sized> RowGetter for Box<T> {
    async fn get_rows(&self, request: &FetchRequest<'_>) -> Result<Fetched, SourceError> {
        (**self).get_rows(request).await
    }

    async fn get_rows_batched(
        &self,
        request: &FetchRequest<'_>,
        sink: &mut dyn RowSink,
    ) -> Result<(), SourceError> {
        (**self).get_rows_batched(request, sink).await
    }
}

#[async_trait]
impl<T: RowGetter + ?Sized> RowGetter for Arc<T> {
    async fn get_rows(&self, request: &FetchRequest<'_>) -> Result<Fetched, SourceError> {
        (**self).get_rows(request).await
    }

    async fn get_rows_batched(
        &self,
        request: &FetchRequest<'_>,
        sink: &mut dyn RowSink,
    ) -> Result<(), SourceError> {
        (**self).get_rows_batched(request, sink).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Streams `0..n` in batches, remembering the largest batch it handed over.
    struct Stream(i64);

    #[async_trait]
    impl RowGetter for Stream {
        async fn get_rows(&self, request: &FetchRequest<'_>) -> Result<Fetched, SourceError> {
            collect_rows(self, request).await
        }

        async fn get_rows_batched(
            &self,
            _request: &FetchRequest<'_>,
            sink: &mut dyn RowSink,
        ) -> Result<(), SourceError> {
            let mut batches = Batcher::new(sink);
            for i in 0..self.0 {
                if i % 7 == 3 {
                    batches.reject(format!("row {i}"));
                } else {
                    batches.push(Row::new(i.to_string(), i)).await?;
                }
            }
            batches.finish().await
        }
    }

    /// Records batch sizes; refuses the batch numbered `refuse`.
    struct Sizes {
        limit: usize,
        sizes: Vec<(usize, u64)>,
        refuse: Option<usize>,
    }

    #[async_trait]
    impl RowSink for Sizes {
        fn batch_rows(&self) -> usize {
            self.limit
        }

        async fn accept(&mut self, batch: Fetched) -> Result<(), SourceError> {
            if self.refuse == Some(self.sizes.len()) {
                return Err(SourceError::Other("refused".into()));
            }
            self.sizes.push((batch.rows.len(), batch.rejected));
            Ok(())
        }
    }

    fn request<'a>(extra: &'a serde_json::Value) -> FetchRequest<'a> {
        FetchRequest {
            checker: "c",
            query: "q",
            source: "default",
            extra,
        }
    }

    #[test]
    fn batches_hold_at_most_the_sinks_size_and_add_up() {
        let extra = serde_json::json!({});
        let mut sink = Sizes {
            limit: 10,
            sizes: Vec::new(),
            refuse: None,
        };
        futures::executor::block_on(Stream(100).get_rows_batched(&request(&extra), &mut sink))
            .unwrap();
        assert!(sink.sizes.iter().all(|&(rows, _)| rows <= 10));
        let rows: usize = sink.sizes.iter().map(|s| s.0).sum();
        let rejected: u64 = sink.sizes.iter().map(|s| s.1).sum();
        assert_eq!((rows, rejected), (86, 14));
        assert_eq!(sink.sizes.len(), 9);

        let all = futures::executor::block_on(Stream(100).get_rows(&request(&extra))).unwrap();
        assert_eq!(all.rows.len(), 86);
        assert_eq!(all.rejected, 14);
        assert_eq!(all.rejected_samples.len(), Fetched::MAX_SAMPLES);
        assert_eq!(all.rows[0], Row::new("0", 0));
        assert_eq!(all.rows[85], Row::new("99", 99));
    }

    #[test]
    fn a_refused_batch_stops_the_fetch_with_the_sinks_error() {
        let extra = serde_json::json!({});
        let mut sink = Sizes {
            limit: 10,
            sizes: Vec::new(),
            refuse: Some(2),
        };
        let error =
            futures::executor::block_on(Stream(100).get_rows_batched(&request(&extra), &mut sink))
                .unwrap_err();
        assert_eq!(error, SourceError::Other("refused".into()));
        assert_eq!(sink.sizes.len(), 2);
    }

    #[test]
    fn the_default_hands_get_rows_over_as_one_batch() {
        struct Whole;
        #[async_trait]
        impl RowGetter for Whole {
            async fn get_rows(&self, _: &FetchRequest<'_>) -> Result<Fetched, SourceError> {
                Ok(Fetched::from_rows(
                    (0..50).map(|i| Row::new(i.to_string(), i)).collect(),
                ))
            }
        }
        let extra = serde_json::json!({});
        let mut sink = Sizes {
            limit: 10,
            sizes: Vec::new(),
            refuse: None,
        };
        futures::executor::block_on(Whole.get_rows_batched(&request(&extra), &mut sink)).unwrap();
        assert_eq!(sink.sizes, vec![(50, 0)]);
    }
}
