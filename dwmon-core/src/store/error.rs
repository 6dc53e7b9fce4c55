//! [`StoreError`]: what a store operation can fail with, and its [`Cause`].

use std::sync::Arc;

/// The underlying error of a [`StoreError`], kept whole (the driver's error, e.g. a
/// `rusqlite::Error`) so callers can inspect it through [`std::error::Error::source`] and
/// `downcast_ref`. Shared, so a `StoreError` stays `Clone`.
#[derive(Clone)]
pub struct Cause(Arc<dyn std::error::Error + Send + Sync + 'static>);

impl Cause {
    /// Keeps `error` as the cause.
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Cause(Arc::new(error))
    }

    /// A cause that is only a text: for failures a store detects itself (a value that does
    /// not fit, a vanished row), where no driver error exists.
    pub fn text(text: impl Into<String>) -> Self {
        Cause::new(ErrorText(text.into()))
    }
}

// Deref (rather than `impl Error for Cause`) makes `source()` return the driver's error
// itself, not a wrapper around it.
impl std::ops::Deref for Cause {
    type Target = dyn std::error::Error + Send + Sync + 'static;
    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl std::fmt::Debug for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&*self.0, f)
    }
}

/// The error of a [`Cause::text`].
#[derive(Debug, Clone, PartialEq, Eq)]
struct ErrorText(String);

impl std::fmt::Display for ErrorText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ErrorText {}

/// A store operation failed. Every variant says what to fix; the ones an operator acts on
/// differently (busy: wait or find the other process; full: free space; read-only: fix
/// permissions) are variants of their own, and each keeps its cause as
/// [`source`](std::error::Error::source). The message repeats the cause's text, so a
/// one-line report (the CLI, a check's `ERROR` event) says everything.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store could not be opened or created.
    #[error("cannot open store {path}: {source}")]
    Open {
        /// Store location.
        path: String,
        /// Why.
        #[source]
        source: Cause,
    },
    /// The file exists but is not a dwmon store (or not a database at all).
    #[error("{path} is not a dwmon store: {source}")]
    NotAStore {
        /// Store location.
        path: String,
        /// Why.
        #[source]
        source: Cause,
    },
    /// The store was written by a newer dwmon.
    #[error("store {path} has schema version {found}, but this dwmon supports at most {supported}; upgrade dwmon")]
    SchemaTooNew {
        /// Store location.
        path: String,
        /// Version found in the store.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
    /// The store cannot be written (read-only file or directory).
    #[error("store {path} is read-only: {source}")]
    ReadOnly {
        /// Store location.
        path: String,
        /// Why.
        #[source]
        source: Cause,
    },
    /// The disk (or the store's size limit) is full; nothing of the operation was written.
    #[error("store {path} is full: {source}")]
    Full {
        /// Store location.
        path: String,
        /// Why.
        #[source]
        source: Cause,
    },
    /// The store stayed locked by another process longer than the busy timeout.
    #[error("store {path} is busy: {source}")]
    Busy {
        /// Store location.
        path: String,
        /// Why.
        #[source]
        source: Cause,
    },
    /// A record was refused because the runner's claim on the checker is stale: another
    /// runner claimed it since (see [`CheckLog::claim`](crate::store::CheckLog::claim)).
    /// Nothing was recorded; the other runner checks those minutes.
    #[error("checker {checker:?} was claimed again (fence {current}) after this runner's claim (fence {fence}); nothing recorded")]
    StaleClaim {
        /// The checker.
        checker: String,
        /// The fence of the refused claim.
        fence: u64,
        /// The fence of the claim that superseded it.
        current: u64,
    },
    /// Any other backend failure: `context` says where (often the store location), the
    /// source what.
    #[error("store error: {}{source}", context_prefix(context))]
    Backend {
        /// Where it happened (e.g. the store path); may be empty.
        context: String,
        /// What happened.
        #[source]
        source: Cause,
    },
}

fn context_prefix(context: &str) -> String {
    if context.is_empty() {
        String::new()
    } else {
        format!("{context}: ")
    }
}

impl StoreError {
    /// A [`StoreError::Backend`] with only a text (no driver error to keep).
    pub fn backend(message: impl Into<String>) -> Self {
        StoreError::Backend {
            context: String::new(),
            source: Cause::text(message),
        }
    }

    /// A [`StoreError::Backend`] keeping `error` as its source, with `context` (e.g. the
    /// store location) in front of its message.
    pub fn other(
        context: impl Into<String>,
        error: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StoreError::Backend {
            context: context.into(),
            source: Cause::new(error),
        }
    }

    /// Whether another process held the store locked past the busy timeout (retrying
    /// later may succeed).
    pub fn is_busy(&self) -> bool {
        matches!(self, StoreError::Busy { .. })
    }

    /// Whether the disk or the store's size limit is full.
    pub fn is_full(&self) -> bool {
        matches!(self, StoreError::Full { .. })
    }

    /// Whether a record was refused because another runner claimed the checker since.
    pub fn is_stale_claim(&self) -> bool {
        matches!(self, StoreError::StaleClaim { .. })
    }

    /// Whether the store cannot be written.
    pub fn is_read_only(&self) -> bool {
        matches!(self, StoreError::ReadOnly { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn a_store_error_keeps_its_cause_and_says_it() {
        let io = std::io::Error::new(std::io::ErrorKind::StorageFull, "no space left");
        let full = StoreError::Full {
            path: "s.db".into(),
            source: Cause::new(io),
        };
        assert_eq!(full.to_string(), "store s.db is full: no space left");
        assert!(full.is_full() && !full.is_busy() && !full.is_read_only());
        let source = full.source().expect("a source");
        let io = source
            .downcast_ref::<std::io::Error>()
            .expect("the io::Error");
        assert_eq!(io.kind(), std::io::ErrorKind::StorageFull);

        let other = StoreError::other("s.db", std::fmt::Error);
        assert_eq!(
            other.to_string(),
            "store error: s.db: an error occurred when formatting an argument"
        );
        assert!(other.source().is_some_and(|s| s.is::<std::fmt::Error>()));
        assert_eq!(
            StoreError::backend("row vanished").to_string(),
            "store error: row vanished"
        );
    }
}
