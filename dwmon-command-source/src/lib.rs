//! # dwmon-command-source
//!
//! A [`RowGetter`](dwmon_core::RowGetter) that runs a program: the checker's `__QUERY__` is a
//! command line such as
//!
//! ```text
//! bq query --use_legacy_sql=false --format=csv 'SELECT id AS dwmon_unique_key, UNIX_SECONDS(ts) AS dwmon_timestamp FROM ds.orders WHERE ts > TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 1 DAY)'
//! ```
//!
//! and its stdout holds the rows, as CSV with a header or as JSON lines ([`Format`]). Every
//! warehouse has a command-line client (bq, snowsql, clickhouse-client, psql, sqlite3) that
//! can print rows, so this reaches any of them, and any script.
//!
//! ```
//! use dwmon_command_source::{CommandSource, Format};
//! use dwmon_core::{FetchRequest, RowGetter};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let source = CommandSource::new(Format::Csv);
//! let extra = serde_json::json!({});
//! let request = FetchRequest {
//!     checker: "orders",
//!     query: "printf 'dwmon_unique_key,dwmon_timestamp\\na,1700000000\\n'",
//!     source: "default",
//!     extra: &extra,
//! };
//! let fetched = source.get_rows(&request).await?;
//! assert_eq!(fetched.rows, [dwmon_core::Row::new("a", 1_700_000_000)]);
//! # Ok(()) }
//! ```
//!
//! ## The command line
//!
//! The `__QUERY__` text is split into words like a POSIX shell would split it, and **no shell
//! runs**: no `$VAR` or `$(...)` expansion, no globbing, no pipes or redirections (for those,
//! run `sh -c '...'` explicitly, or a script). The splitting is that of the `shell-words`
//! crate:
//!
//! - spaces, tabs and newlines separate words, so a long command may span several lines;
//! - `'single quotes'` keep everything inside literally;
//! - `"double quotes"` keep everything but `\"`, `\\`, `\$` and `` \` ``, which drop the
//!   backslash;
//! - outside quotes a backslash keeps the next character (`a\ b` is one word), and a backslash
//!   before a newline joins the lines;
//! - a `#` at the start of a word starts a comment up to the end of the line.
//!
//! A quote that is never closed fails the fetch. The first word is the program: a bare name
//! (`bq`) is looked up in `PATH`; a name with a `/` is a path, relative ones from the working
//! directory, which is the runner's own unless set with
//! [`CommandSourceBuilder::working_dir`]. Use absolute paths for scripts that live beside the
//! checkers.
//!
//! The program inherits the runner's environment (so `PATH`, `HOME`, cloud credentials and
//! client configuration work as in the runner's shell), plus `DWMON_CHECKER` (the checker's
//! name) and `DWMON_SOURCE` (its `__SOURCE__` name). Its stdin is `/dev/null`.
//!
//! ## Output
//!
//! | format | stdout |
//! |---|---|
//! | `csv` (default) | RFC 4180 CSV. The first record is a header that must name `dwmon_unique_key` and `dwmon_timestamp` (any order, case ignored when no exact match, other columns ignored; a UTF-8 BOM is skipped), else the fetch fails with `MissingColumns` listing the header. Fields may be quoted, with `""` for a quote and newlines inside quotes. An empty field or `\N` is NULL. No output at all is an empty result. |
//! | `jsonl` | One JSON object per line with the fields `dwmon_unique_key` and `dwmon_timestamp` (missing = NULL; other fields ignored; blank lines skipped). |
//!
//! Keys: CSV fields as they are; JSON strings as they are, numbers and booleans in their JSON
//! text (`42`, `1.5`, `true`). Timestamps follow [`dwmon_core::convert`], as for SQL sources:
//! integer epoch seconds, decimal epochs floored, date-times such as `2024-05-01 12:00:00`
//! (UTC) or RFC 3339 with an offset. A line whose key is NULL, whose timestamp cannot be read
//! (milliseconds get a hint) or that is not a JSON object is **rejected and counted** with its
//! line number, e.g. `stdout line 4, row 3: dwmon_timestamp yesterday is not epoch seconds
//! ...`; the fetch goes on with the good rows and the engine reports the rejections in an
//! `ERROR` event.
//!
//! ## Limits and failures
//!
//! Each command runs in its own process group. When the run ends — normally, on timeout, on
//! too much output, or because the fetch's future was dropped (the engine's
//! [`fetch_timeout`](dwmon_core::EngineConfig::fetch_timeout), a shutdown) — the whole group is
//! sent SIGKILL, so a grandchild (a `sleep` in a
//! script, a client's helper process) never outlives the fetch. A fetch fails, as an `ERROR`
//! event for that checker only, when:
//!
//! - the program cannot be started (not in `PATH`, no such file, not executable);
//! - it exits with a non-zero status or is killed by a signal: the message carries the
//!   status and the start of its stderr (2 KiB by default, control characters escaped as
//!   `\n`, `\u{1b}`, ...);
//! - it runs longer than the timeout (30 s by default, until it has exited **and** closed
//!   stdout and stderr): [`SourceError::Timeout`](dwmon_core::SourceError::Timeout);
//! - it prints more than the output limit on stdout (64 MiB by default).
//!
//! The stderr of a command that succeeds is logged at debug level only.
//!
//! This crate runs on Unix.

mod error;
mod format;
mod process;
mod source;

pub use error::{Error, Result};
pub use format::Format;
pub use source::{CommandSource, CommandSourceBuilder};
