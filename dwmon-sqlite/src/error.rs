//! Turning rusqlite failures into the typed [`StoreError`] of `dwmon-core`.

use dwmon_core::store::Cause;
use dwmon_core::StoreError;
use rusqlite::ErrorCode;

/// Maps a rusqlite error on the store at `path` to the [`StoreError`] variant that tells the
/// operator what to fix: not a database, read-only, full, busy, cannot open, or other.
pub(crate) fn map_error(path: &str, error: rusqlite::Error) -> StoreError {
    let path = path.to_owned();
    let code = error.sqlite_error_code();
    let source = Cause::new(error);
    match code {
        Some(ErrorCode::NotADatabase) => StoreError::NotAStore { path, source },
        Some(ErrorCode::ReadOnly) => StoreError::ReadOnly { path, source },
        Some(ErrorCode::DiskFull) => StoreError::Full { path, source },
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            StoreError::Busy { path, source }
        }
        Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => {
            StoreError::Open { path, source }
        }
        _ => StoreError::Backend {
            context: path,
            source,
        },
    }
}

/// Extension to map `rusqlite::Result` with the store path in hand.
pub(crate) trait ResultExt<T> {
    /// Maps the error with [`map_error`].
    fn store_err(self, path: &str) -> Result<T, StoreError>;
}

impl<T> ResultExt<T> for rusqlite::Result<T> {
    fn store_err(self, path: &str) -> Result<T, StoreError> {
        self.map_err(|error| map_error(path, error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), Some("detail".into()))
    }

    #[test]
    fn sqlite_codes_map_to_typed_variants() {
        let p = "x.db";
        assert!(matches!(
            map_error(p, failure(rusqlite::ffi::SQLITE_NOTADB)),
            StoreError::NotAStore { .. }
        ));
        assert!(matches!(
            map_error(p, failure(rusqlite::ffi::SQLITE_READONLY)),
            StoreError::ReadOnly { .. }
        ));
        assert!(matches!(
            map_error(p, failure(rusqlite::ffi::SQLITE_FULL)),
            StoreError::Full { .. }
        ));
        assert!(matches!(
            map_error(p, failure(rusqlite::ffi::SQLITE_BUSY)),
            StoreError::Busy { .. }
        ));
        assert!(matches!(
            map_error(p, failure(rusqlite::ffi::SQLITE_CANTOPEN)),
            StoreError::Open { .. }
        ));
        let corrupt = map_error(p, failure(rusqlite::ffi::SQLITE_CORRUPT));
        assert!(corrupt.to_string().starts_with("store error: x.db: "));
        assert!(matches!(corrupt, StoreError::Backend { .. }));
        // The rusqlite error is kept whole, with its code.
        let busy = map_error(p, failure(rusqlite::ffi::SQLITE_BUSY));
        let source = std::error::Error::source(&busy).expect("a source");
        let sqlite = source
            .downcast_ref::<rusqlite::Error>()
            .expect("a rusqlite error");
        assert_eq!(sqlite.sqlite_error_code(), Some(ErrorCode::DatabaseBusy));
    }
}
