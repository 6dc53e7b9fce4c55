//! PostgreSQL errors as [`StoreError`]s: the ones an operator acts on differently get their
//! own variant (a full disk, a read-only server, a lock or statement timeout), every one keeps
//! the driver's error as its cause.

use dwmon_core::StoreError;
use tokio_postgres::error::SqlState;

/// Maps a driver error of the store at `location` (its masked URL).
pub(crate) fn map_error(location: &str, error: tokio_postgres::Error) -> StoreError {
    let path = location.to_owned();
    let code = error.code().cloned();
    let source = dwmon_core::store::Cause::new(error);
    match code {
        Some(c) if c == SqlState::DISK_FULL || c == SqlState::OUT_OF_MEMORY => {
            StoreError::Full { path, source }
        }
        Some(c) if c == SqlState::READ_ONLY_SQL_TRANSACTION => {
            StoreError::ReadOnly { path, source }
        }
        Some(c)
            if c == SqlState::QUERY_CANCELED
                || c == SqlState::LOCK_NOT_AVAILABLE
                || c == SqlState::TOO_MANY_CONNECTIONS =>
        {
            StoreError::Busy { path, source }
        }
        _ => StoreError::Backend {
            context: path,
            source,
        },
    }
}

/// Whether a transaction that failed with `error` may simply be run again: a deadlock or a
/// serialization failure rolled it back whole.
pub(crate) fn is_retryable(error: &tokio_postgres::Error) -> bool {
    matches!(
        error.code(),
        Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE
    )
}

/// `Result` of the driver mapped with the store's location.
pub(crate) trait ResultExt<T> {
    fn store_err(self, location: &str) -> Result<T, StoreError>;
}

impl<T> ResultExt<T> for Result<T, tokio_postgres::Error> {
    fn store_err(self, location: &str) -> Result<T, StoreError> {
        self.map_err(|error| map_error(location, error))
    }
}
