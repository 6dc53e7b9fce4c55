//! # dwmon-postgres-store
//!
//! dwmon's [`Store`](dwmon_core::Store) on PostgreSQL — [`PostgresStore`] — for several
//! runners sharing one database: every due minute of every checker is recorded exactly once,
//! every record is delivered at least once under its original idempotency key, and a runner
//! that dies is replaced once its claims run out. It also keeps the alert state
//! ([`AlertStateStore`](dwmon_core::alert_state::AlertStateStore)).
//!
//! ```no_run
//! # async fn open() -> Result<(), dwmon_core::StoreError> {
//! // The password from PGPASSWORD or the password file; the tables in schema `dwmon`.
//! let store = dwmon_postgres_store::PostgresStore::connect(
//!     "postgres://dwmon@db.internal/ops?options=-csearch_path%3Ddwmon",
//! )
//! .await?;
//! # Ok(()) }
//! ```
//!
//! ## Where the tables live
//!
//! In the first schema of the connection's `search_path` (`options=-csearch_path%3Dname` in
//! the URL), created on first connect and migrated forward by later releases
//! (`dwmon_migrations` holds the applied versions); a
//! [read-only](PostgresStoreOptions::read_only) handle creates and migrates nothing, and
//! refuses a schema without a store. Every table name starts with `dwmon_`, so
//! several dwmon installations share one database, each in a schema of its own.
//!
//! | table | key | what for |
//! |---|---|---|
//! | `dwmon_checkers` | `id`, `name` unique | ids, stored row counts, last minute, last error, give-ups, the rows epoch (bumped by a trigger on every statement that deletes or changes the checker's rows) |
//! | `dwmon_rows` | `(checker_id, key)` | first-seen rows (`ON CONFLICT DO NOTHING` keeps a key's first timestamp); index `(checker_id, ts)` for windows and purges |
//! | `dwmon_checks` | `(checker_id, requirement_index, minute)` | the check log: a second record of a minute is impossible by construction |
//! | `dwmon_outbox` | idempotency key `checker/requirement_index/minute` | deliveries not yet acknowledged, with retry progress and a lease (owner, end, fence) |
//! | `dwmon_claims` | `checker` | which runner checks a checker: owner, fencing token, lease end; rows `maintenance/TASK` say which runner does a maintenance task (`alert-prune`) |
//! | `dwmon_runners` | `owner` | when each runner last claimed, to share checkers between the live ones |
//! | `dwmon_alert_*` | | alert and source states, pauses, undelivered notifications (leased to one sending runner: owner, end, fence), history |
//!
//! ## Several runners
//!
//! Every cycle a runner claims its checkers (`FOR UPDATE SKIP LOCKED` on `dwmon_claims`: the
//! free ones, the ones whose lease ended and its own, at most its share of them), which bumps
//! each one's fencing token and commits before anything is fetched. The transaction that
//! records a checker's checks locks its claim and compares the token: if another runner has
//! claimed the checker since (this one was paused, or its fetch outlived the lease), it fails
//! with [`StoreError::StaleClaim`](dwmon_core::StoreError::StaleClaim) and writes nothing,
//! and the new owner checks those minutes. Records, their outbox entries and the checker's
//! last minute are written in that one transaction, each record under the primary key
//! `(checker, requirement_index, minute)` with `ON CONFLICT DO NOTHING`. Outbox entries are
//! leased the same way (a whole checker's entries to one runner, in order) and settled after
//! the handler took them: a runner dying in between means one more delivery under the same
//! key, never a lost one. Alert notifications are decided once (an update is written only if
//! the states it was judged on are still stored) and a checker's pending ones are leased to
//! one runner while it sends them (see the alert state module).
//!
//! ## The cache of stored keys
//!
//! In the steady state a checker's query returns mostly rows already stored (10,000 rows, 99%
//! seen). Each runner keeps hashes of the keys it knows are stored
//! ([`dwmon_core::seen_cache`], about 9 bytes a key, capped by
//! [`PostgresStoreOptions::seen_cache_capacity`]) and sends only the others to the server. A
//! checker's cached keys are used only while this runner holds its claim, and are forgotten
//! when the claim shows that another runner held the checker in between (its fence moved by
//! more than this runner's own claim) or that anyone deleted some of its rows (the rows epoch
//! moved: another runner's purge, a `DELETE` by hand). A deletion made while this runner
//! holds the claim is noticed at its next claim; until then a deleted key fetched again is
//! taken as stored. A hit is otherwise exact except for a 64-bit hash collision (see
//! [`dwmon_core::seen_cache`]).
//!
//! Lease ends and the cycle's clock are the database's (`now()`): a runner whose own clock is
//! off changes nothing ([`DatabaseClock`]; a record of a minute ahead of the
//! database's clock is refused). Locks are transaction-scoped (row locks, `pg_advisory_xact_lock`)
//! and settings transaction-local, so the store works through PgBouncer in transaction-pooling
//! mode; no LISTEN/NOTIFY. The frequent statements are prepared once per pooled connection
//! ([`PostgresStoreOptions::prepared_statements`]); a pooler that does not keep prepared
//! statements (PgBouncer before 1.21, or without `max_prepared_statements`) needs them off.
//!
//! Most transactions cost one round trip: `BEGIN`, the statement timeout, their statements and
//! `COMMIT` are sent together and answered in order (a failed statement aborts the
//! transaction, and its `COMMIT` rolls back).
//!
//! Every statement is parameterized; every transaction sets its own `statement_timeout`
//! (transaction-local). Errors are typed: a full disk is
//! [`StoreError::Full`](dwmon_core::StoreError::Full), a read-only server
//! [`StoreError::ReadOnly`](dwmon_core::StoreError::ReadOnly), a statement or lock timeout
//! [`StoreError::Busy`](dwmon_core::StoreError::Busy); each keeps the driver's error as its
//! source.

mod alert_state;
mod check_log;
mod clock;
mod error;
mod rows;
mod schema;
mod seen;
mod store;
mod view;

pub use clock::{DatabaseClock, HostClock};
pub use store::{PostgresStore, PostgresStoreOptions};
