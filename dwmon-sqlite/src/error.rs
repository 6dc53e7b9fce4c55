//! Turning rusqlite failures into the typed [`StoreError`] of `dwmon-core`.

use dwmon_core::StoreError;
use rusqlite::ErrorCode;

/// Maps a rusqlite error on the store at `path` to the [`StoreError`] variant that tells the
/// operator what to fix: not a database, read-only, full, busy, cannot open, or other.
pub(crate) fn map_error(path: &str, error: rusqlite::Error) -> StoreError {
    let path = path.to_owned();
    let code = error.sqlite_error_code();
    let message = error.to_string();
    match code {
        Some(ErrorCode::NotADatabase) => StoreError::NotAStore { path, message },
        Some(ErrorCode::ReadOnly) => StoreError::ReadOnly { path, message },
        Some(ErrorCode::DiskFull) => StoreError::Full { path, message },
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            StoreError::Busy { path, message }
        }
        Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => {
            StoreError::Open { path, message }
        }
        _ => StoreError::Backend(format!("{path}: {message}")),
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
        match map_error(p, failure(rusqlite::ffi::SQLITE_CORRUPT)) {
            StoreError::Backend(message) => assert!(message.starts_with("x.db: ")),
            other => panic!("unexpected {other:?}"),
        }
    }
}
