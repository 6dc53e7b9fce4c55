//! # dwmon-sqlite
//!
//! The embedded default [`Store`](dwmon_core::Store) of dwmon — [`SqliteStore`], one SQLite
//! file (rusqlite with the `bundled` feature, so no system SQLite is needed) that also holds
//! the alert state ([`AlertStateStore`](dwmon_core::alert_state::AlertStateStore)) — and an
//! SQLite [`RowGetter`](dwmon_core::RowGetter), [`SqliteSource`].
//!
//! ```no_run
//! let store = dwmon_sqlite::SqliteStore::open("/var/lib/dwmon/dwmon.sqlite")?;
//! # Ok::<(), dwmon_core::StoreError>(())
//! ```
//!
//! ## Schema (version 6)
//!
//! Designed for the access paths of a cycle (README "How a cycle works"): every statement a cycle runs is a
//! point lookup or an index range scan whose cost grows with the batch, never with the total
//! stored.
//!
//! | table | key | what for |
//! |---|---|---|
//! | `meta(name, value)` | `name` | `schema_version` (plus `PRAGMA application_id` = `dwmn`) |
//! | `checkers(id, name, stored_rows, last_error_minute, last_error)` | `id`, `name` unique | small integer ids so the big tables do not repeat names; the row count and last error for status views |
//! | `rows(checker_id, key, ts)` `WITHOUT ROWID` | `(checker_id, key)` | first-seen rows: `INSERT OR IGNORE` keeps the first timestamp of a key |
//! | index `rows_by_time(checker_id, ts)` | | windowed counts and purges are range scans of one checker's timestamps (the index also carries the key) |
//! | `checks(checker_id, requirement_index, minute, count, status, record, extra_id)` | `(checker_id, requirement_index, minute)` | the check log: a duplicate check is impossible by construction; `record` is the JSON handed to the handler, without its `extra` when `extra_id` names it in `extras` (records of schema version 1 keep it inline) |
//! | index `checks_by_minute(checker_id, minute, requirement_index, status)` | | `last_checked_minute` (a `max()` is one B-tree descent), recent checks, and the uptime counts by line and status read from the index alone |
//! | index `checks_by_line(checker_id, requirement_index, minute, status)` | | the status views' last checks per requirement line, read from the index alone (never the records) |
//! | `extras(id, checker_id, hash, json)`, index `(checker_id, hash)` | `id` | each checker's `__EXTRA__` once per version, so a big extra is not repeated in every record (a 100 KB extra took about 200 KB per check before) |
//! | `pings(id, checker_id, kind, ts, exit_status, rid, duration, remote_addr, user_agent, body)`, index `(checker_id, id)` | `id` | push checkers' ping history ([`PingLog`](dwmon_core::ping_log::PingLog), `ping_log.rs`): the newest entries per checker, written in the transaction of the pings' rows |
//! | `ping_runs(id, checker_id, start_ts, rid, finish_ts)`, partial index `ping_runs_open(checker_id, rid, id)` of the open runs, indexes by start and by finish | `id` | push checkers' runs (a start and the finish paired with it, `ping_log.rs`) for `MINDURATION` / `MAXDURATION`: written in the transaction of the pings, kept for the lookback window, purged with the checker's rows |
//! | `outbox(key, checker_id, requirement_index, minute, record, attempts, next_attempt_at, last_error, extra_id)` | idempotency key `checker/requirement_index/minute` | deliveries not yet acknowledged by the handler, with their retry schedule (short: entries leave when acknowledged; read in order of checker, minute, requirement, so no other index would help) |
//!
//! | `alert_state(checker, requirement_index, phase, state)` | `(checker, requirement_index)` | each requirement's alert state (JSON `AlertState`) |
//! | `alert_source(checker, failing, state)` | `checker` | each checker's source state (JSON `SourceState`) |
//! | `alert_pause(checker, since, until, comment)` | `checker` | paused checkers |
//! | `alert_outbox(seq, idempotency_key, checker, entry)`, index `(checker, seq)` | `seq` (enqueue order), `idempotency_key` unique | alert notifications not yet delivered to every target (JSON `PendingNotification`) |
//!
//! The `alert_*` tables were written by dwmon-alert's own `SqliteAlertStore` (with its own
//! connection and an `alert_schema` version) before version 4. Migration 4 keeps them as they
//! are, in both orders of first opening: a store file the alert store wrote into later, and a
//! file only the alert store ever opened (adopted as a new store). `tests/alert_state.rs`
//! opens such files written by that release (`tests/fixtures`).
//!
//! `record_checks` inserts a cycle's checks of one checker and their outbox entries in one
//! transaction: after a crash either all of them exist (and will be delivered from the
//! outbox) or none (and the minutes are still due next cycle).
//!
//! The schema is versioned: opening a store runs the forward migrations it lacks (an older
//! store opens in a newer dwmon); a store written by a newer dwmon is refused with
//! [`StoreError::SchemaTooNew`](dwmon_core::StoreError::SchemaTooNew). A database that is not
//! a dwmon store is refused with [`StoreError::NotAStore`](dwmon_core::StoreError::NotAStore).
//!
//! ## Durability and concurrency
//!
//! - WAL journal: readers (the status command, a web page — open them with
//!   [`SqliteStore::open_read_only`]) never block the runner and are never blocked by it.
//!   Writers wait for each other up to the busy timeout (5 s by default), then fail with
//!   [`StoreError::Busy`](dwmon_core::StoreError::Busy).
//! - `synchronous = NORMAL` by default ([`Durability`]): every commit survives a process
//!   crash (`kill -9`) — this is what the crash test exercises. The WAL is fsynced by a
//!   checkpoint at least every 10 s ([`SqliteStoreOptions::checkpoint_interval`]), so a power
//!   loss or OS crash rolls back at most the commits of those last seconds (never corrupts
//!   the file); their minutes are still inside the horizon, so dwmon re-checks them and the
//!   handler may see a check again under the same idempotency key. Choose
//!   [`Durability::Full`] to fsync every commit instead (one fsync per transaction: much
//!   slower per cycle).
//! - Acknowledged deliveries are deleted from the outbox together with the store's next insert
//!   or record of checks (in the engine, another checker's, a moment later) instead of one
//!   commit each; see [`SqliteStore::flush`]. A crash in between re-delivers those checks
//!   after the restart under the same idempotency key, as at-least-once delivery allows.
//! - Blocking SQLite work runs on tokio's blocking pool, never on the async executor (inline
//!   when called outside a tokio runtime). One [`SqliteStore`] holds one connection; clones
//!   share it. Only the in-memory filtering of a batch against the cache of stored keys runs
//!   on the caller's thread, so a batch is not copied just to be looked up.
//! - All SQL is parameterized and prepared statements are cached.
//! - Errors are typed: not a database, read-only, full disk, busy, cannot open.
//!
//! ## Bulk first-seen inserts
//!
//! A batch is sorted by key (keeping each key's first occurrence) so the B-tree is walked in
//! order, and inserted with 32-row `INSERT OR IGNORE` statements, which halves SQLite's
//! per-statement cost compared with one row per statement. Pages are SQLite's 4 KiB by default
//! ([`SqliteStoreOptions::page_size`]): larger pages speed up bulk ingest a little but slow
//! down the steady state, whose many small commits write whole pages to the WAL.
//!
//! ## The cache of stored keys
//!
//! In the steady state a checker's query returns mostly rows already stored. Asking SQLite
//! about each costs a B-tree lookup per row (10^7 rows a cycle at the scale of README "Performance"), so the
//! store keeps, per checker, 64-bit hashes of keys it knows are committed, bucketed by their
//! stored timestamp (about 9 bytes per key, capped by
//! [`SqliteStoreOptions::seen_cache_capacity`]). A row whose hash is cached is skipped
//! without touching SQLite; every other row goes through `INSERT OR IGNORE`. A cache miss is
//! therefore always safe; a hit is exact except for a 64-bit hash collision (random
//! per-process SipHash keys: about `n / 2^64` per new key, see
//! [`dwmon_core::seen_cache`] for the argument, including purges and changes made by other
//! connections).

mod alert_state;
mod error;
mod ping_log;
mod rows;
mod schema;
mod store;

pub mod source;

pub use source::SqliteSource;
pub use store::{
    open_read_only_connection, use_wal_journal, Durability, SqliteStore, SqliteStoreOptions,
};
