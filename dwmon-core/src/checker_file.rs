//! Checker files (SPEC 2): `NAME.dwmon` with `__QUERY__`, `__REQUIREMENTS__`, `__SOURCE__`,
//! `__EXTRA__` and `__TIMEZONE__` sections.
//!
//! CONTRACT (other crates rely on these names): `Checker` (pub fields), `Checker::zone`,
//! `parse_checker(file_name, text)`, `load_dir(dir)`, `LoadReport { checkers, errors }`,
//! `CheckerFileError { file, line, column, .. }` displaying as `FILE:LINE:COL: message`.

use crate::requirement::Requirement;
use std::path::PathBuf;

/// A parsed checker file.
#[derive(Debug, Clone, PartialEq)]
pub struct Checker {
    /// The file stem, e.g. `new_executions`.
    pub name: String,
    /// Where it was loaded from, if from a file.
    pub path: Option<PathBuf>,
    /// The `__QUERY__` text, trimmed.
    pub query: String,
    /// The `__SOURCE__` name (`default` when absent).
    pub source: String,
    /// The `__EXTRA__` JSON (`{}` when absent).
    pub extra: serde_json::Value,
    /// The `__TIMEZONE__` zone, if given.
    pub timezone: Option<chrono_tz::Tz>,
    /// The requirements, in file order (their index is the `requirement_index`).
    pub requirements: Vec<Requirement>,
}

impl Checker {
    /// The zone schedules are matched in: the checker's own, else `default`.
    pub fn zone(&self, default: chrono_tz::Tz) -> chrono_tz::Tz {
        self.timezone.unwrap_or(default)
    }
}

/// A checker file could not be loaded. Displays as `FILE:LINE:COL: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct CheckerFileError {
    /// The file name as given (e.g. `new_executions.dwmon`).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What was expected.
    pub message: String,
}

/// The result of loading a directory: the good checkers *and* the per-file errors.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Checkers that parsed, sorted by name.
    pub checkers: Vec<Checker>,
    /// One error per bad file.
    pub errors: Vec<CheckerFileError>,
}

/// Parses the text of one checker file named `file_name` (its stem is the checker's name).
///
/// # Errors
/// The first problem found, with line and column.
pub fn parse_checker(file_name: &str, text: &str) -> Result<Checker, CheckerFileError> {
    let _ = (file_name, text);
    todo!("checker file parser")
}

/// Loads every `*.dwmon` file in `dir`.
///
/// # Errors
/// Only when `dir` itself cannot be read; bad files are reported in [`LoadReport::errors`].
pub fn load_dir(dir: &std::path::Path) -> std::io::Result<LoadReport> {
    let _ = dir;
    todo!("load_dir")
}
