//! The versioned schema and its forward migrations (see the crate docs for the tables).
//!
//! The version lives in `meta(name = 'schema_version')`. Opening a store runs every migration
//! newer than the stored version, in order, in one `BEGIN IMMEDIATE` transaction (so two
//! processes opening an old store at once migrate it once). A store newer than this build is
//! refused with [`StoreError::SchemaTooNew`]; a database without the `meta` table that already
//! has tables of its own is refused with [`StoreError::NotAStore`] rather than written into.

use crate::error::ResultExt;
use dwmon_core::store::Cause;
use dwmon_core::StoreError;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

/// One forward migration: the SQL that takes the schema from `to - 1` to `to`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    /// The version after this migration.
    pub to: i64,
    /// Statements to run.
    pub sql: &'static str,
}

/// `PRAGMA application_id` of dwmon stores ("dwmn"), so `file(1)` and tools can tell them.
pub(crate) const APPLICATION_ID: i32 = 0x6477_6d6e;

/// Every migration, oldest first. Append new ones; never edit a released one.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        to: 1,
        sql: "
        CREATE TABLE checkers (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            stored_rows INTEGER NOT NULL DEFAULT 0,
            last_error_minute INTEGER,
            last_error TEXT
        );
        CREATE TABLE rows (
            checker_id INTEGER NOT NULL,
            key TEXT NOT NULL,
            ts INTEGER NOT NULL,
            PRIMARY KEY (checker_id, key)
        ) WITHOUT ROWID;
        CREATE INDEX rows_by_time ON rows (checker_id, ts);
        CREATE TABLE checks (
            checker_id INTEGER NOT NULL,
            requirement_index INTEGER NOT NULL,
            minute INTEGER NOT NULL,
            count INTEGER NOT NULL,
            status TEXT NOT NULL,
            record TEXT NOT NULL,
            PRIMARY KEY (checker_id, requirement_index, minute)
        );
        CREATE INDEX checks_by_minute ON checks (checker_id, minute);
        CREATE TABLE outbox (
            key TEXT PRIMARY KEY,
            checker_id INTEGER NOT NULL,
            requirement_index INTEGER NOT NULL,
            minute INTEGER NOT NULL,
            record TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at INTEGER NOT NULL,
            last_error TEXT
        );
    ",
    },
    Migration {
        to: 2,
        // Each checker's `__EXTRA__` once per version instead of inside every stored record (a
        // 100 KB extra made every check record and outbox entry 100 KB). Records written before
        // keep their extra inline (extra_id NULL).
        sql: "
        CREATE TABLE extras (
            id INTEGER PRIMARY KEY,
            checker_id INTEGER NOT NULL,
            hash INTEGER NOT NULL,
            json TEXT NOT NULL
        );
        CREATE INDEX extras_by_hash ON extras (checker_id, hash);
        ALTER TABLE checks ADD COLUMN extra_id INTEGER;
        ALTER TABLE outbox ADD COLUMN extra_id INTEGER;
    ",
    },
    Migration {
        to: 3,
        // Delivery progress per handler target (stdout, each alert channel), so one failing
        // target holds back no other: the targets that have an entry (a JSON array; NULL for
        // entries written before, which no target is known to have) and when it was first
        // tried (for the give-up age). Per checker: deliveries given up and the last one.
        sql: "
        ALTER TABLE outbox ADD COLUMN delivered_to TEXT;
        ALTER TABLE outbox ADD COLUMN first_attempt_at INTEGER;
        ALTER TABLE checkers ADD COLUMN given_up INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE checkers ADD COLUMN last_give_up_minute INTEGER;
        ALTER TABLE checkers ADD COLUMN last_give_up TEXT;
    ",
    },
    Migration {
        to: 4,
        // The alert state joins the store (it had its own tables, pragmas and version in
        // `alert_schema`, written by dwmon-alert's former `SqliteAlertStore`). `IF NOT EXISTS`
        // keeps the tables, and so the states, pauses and undelivered notifications, of a
        // file that store already wrote (in either order of first opening); the file's one
        // version is now `meta.schema_version`.
        sql: "
        CREATE TABLE IF NOT EXISTS alert_state (
            checker TEXT NOT NULL,
            requirement_index INTEGER NOT NULL,
            phase TEXT NOT NULL,
            state TEXT NOT NULL,
            PRIMARY KEY (checker, requirement_index)
        );
        CREATE TABLE IF NOT EXISTS alert_source (
            checker TEXT PRIMARY KEY,
            failing INTEGER NOT NULL,
            state TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS alert_pause (
            checker TEXT PRIMARY KEY,
            since INTEGER NOT NULL,
            until INTEGER,
            comment TEXT
        );
        CREATE TABLE IF NOT EXISTS alert_outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            idempotency_key TEXT NOT NULL UNIQUE,
            checker TEXT NOT NULL,
            entry TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS alert_outbox_checker ON alert_outbox (checker, seq);
        DROP TABLE IF EXISTS alert_schema;
    ",
    },
    Migration {
        to: 5,
        // The push checkers' ping history (`ping_log.rs`).
        sql: crate::ping_log::MIGRATION_SQL,
    },
    Migration {
        to: 6,
        // The alert state history (issue 13): append-only, per checker in order of `seq`,
        // trimmed to the newest `HISTORY_PER_CHECKER` entries; `entry` is a JSON
        // `AlertTransition`, whose notification key is kept apart so a replayed notification
        // is recorded once.
        sql: "
        CREATE TABLE alert_history (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            checker TEXT NOT NULL,
            at INTEGER NOT NULL,
            idempotency_key TEXT,
            entry TEXT NOT NULL
        );
        CREATE INDEX alert_history_by_checker ON alert_history (checker, seq);
        CREATE INDEX alert_history_by_key ON alert_history (idempotency_key)
            WHERE idempotency_key IS NOT NULL;
    ",
    },
    Migration {
        to: 7,
        // The status views' reads without touching the check records: the last checks of
        // each requirement line (the status page's bars, `checks_by_line`) and the uptime
        // counts by line and status since a minute (`checks_by_minute`, which now carries
        // both) are index-only scans. Before, every one of those checks was a lookup into the
        // table, whose rows carry the whole JSON record: the overview of 1,000 checkers read
        // 90,000 of them per view, and the uptime figures 30 days of them.
        sql: "
        CREATE INDEX checks_by_line ON checks (checker_id, requirement_index, minute, status);
        DROP INDEX checks_by_minute;
        CREATE INDEX checks_by_minute ON checks (checker_id, minute, requirement_index, status);
    ",
    },
    Migration {
        to: 8,
        // The push checkers' runs, for MINDURATION / MAXDURATION (`ping_log.rs`).
        sql: crate::ping_log::RUNS_MIGRATION_SQL,
    },
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = 8;

/// The objects the former alert store (`dwmon_alert::SqliteAlertStore`, schema version 1 of
/// its `alert_schema` table) created. A file holding only these was first opened by it: it is
/// adopted as a store of version 0 and migrated, keeping them.
const ALERT_STORE_OBJECTS: &[&str] = &[
    "alert_schema",
    "alert_state",
    "alert_source",
    "alert_pause",
    "alert_outbox",
    "alert_outbox_checker",
];

/// The newest `alert_schema` version the former alert store wrote.
const ALERT_STORE_VERSION: i64 = 1;

const _: () = assert!(MIGRATIONS[MIGRATIONS.len() - 1].to == SCHEMA_VERSION);

/// Whether the `meta` table exists.
fn has_meta(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
        [],
        |row| row.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

/// The stored schema version, or `None` for a database dwmon never initialised.
fn stored_version(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    if !has_meta(conn)? {
        return Ok(None);
    }
    conn.query_row(
        "SELECT value FROM meta WHERE name = 'schema_version'",
        [],
        |row| row.get(0),
    )
    .optional()
}

/// How many objects of a database without the `meta` table are not the former alert
/// store's (those a store adopts); a file whose alert tables are newer than that store's
/// last version is refused.
fn foreign_objects(conn: &Connection, path: &str) -> Result<i64, StoreError> {
    let names: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'")
        .and_then(|mut statement| {
            statement
                .query_map([], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()
        })
        .store_err(path)?;
    let foreign = names
        .iter()
        .filter(|name| !ALERT_STORE_OBJECTS.contains(&name.as_str()))
        .count();
    if foreign == 0 && names.iter().any(|name| name == "alert_schema") {
        let version: Option<i64> = conn
            .query_row("SELECT MAX(version) FROM alert_schema", [], |row| {
                row.get(0)
            })
            .store_err(path)?;
        if let Some(version) = version.filter(|v| *v > ALERT_STORE_VERSION) {
            return Err(StoreError::NotAStore {
                path: path.to_owned(),
                source: Cause::text(format!(
                    "its alert tables have version {version}, newer than any this dwmon \
                     knows ({ALERT_STORE_VERSION}); upgrade dwmon"
                )),
            });
        }
    }
    Ok(i64::try_from(foreign).unwrap_or(i64::MAX))
}

/// Checks the store's version and brings it up to the newest of `migrations`.
/// Returns the version the store has afterwards.
pub(crate) fn migrate(
    conn: &mut Connection,
    path: &str,
    migrations: &[Migration],
    read_only: bool,
) -> Result<i64, StoreError> {
    let supported = migrations.last().map_or(0, |m| m.to);
    // Both reads in one read transaction, so they see one snapshot: read apart, another
    // process creating the store in between made this one see its tables but not its meta
    // table, and refuse the new store as "not a dwmon store". The first read also tells a
    // non-database file apart (SQLITE_NOTADB).
    let (found, objects) = {
        let tx = conn.transaction().store_err(path)?;
        let found = stored_version(&tx).store_err(path)?;
        let objects = if found.is_none() {
            foreign_objects(&tx, path)?
        } else {
            0
        };
        tx.commit().store_err(path)?;
        (found, objects)
    };
    if let Some(found) = found {
        if found > supported {
            return Err(StoreError::SchemaTooNew {
                path: path.to_owned(),
                found,
                supported,
            });
        }
        if found == supported {
            return Ok(found);
        }
    } else if objects > 0 {
        return Err(StoreError::NotAStore {
            path: path.to_owned(),
            source: Cause::text(format!(
                "an SQLite database with {objects} tables/indexes of its own but no dwmon \
                 meta table; refusing to write into it"
            )),
        });
    }
    if read_only {
        return Err(StoreError::ReadOnly {
            path: path.to_owned(),
            source: Cause::text(format!(
                "schema version {} needs migrating to {supported}; open the store read-write once",
                found.unwrap_or(0)
            )),
        });
    }

    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .store_err(path)?;
    // Re-read inside the write lock: another process may have migrated meanwhile.
    let mut version = stored_version(&tx).store_err(path)?.unwrap_or(0);
    if version > supported {
        return Err(StoreError::SchemaTooNew {
            path: path.to_owned(),
            found: version,
            supported,
        });
    }
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    )
    .store_err(path)?;
    let from = version;
    for migration in migrations.iter().filter(|m| m.to > from) {
        tx.execute_batch(migration.sql).store_err(path)?;
        version = migration.to;
        tracing::info!(store = path, version, "migrated store schema");
    }
    tx.execute(
        "INSERT INTO meta (name, value) VALUES ('schema_version', ?1)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        [version],
    )
    .store_err(path)?;
    tx.pragma_update(None, "application_id", APPLICATION_ID)
        .store_err(path)?;
    tx.commit().store_err(path)?;
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hypothetical next version, to exercise the migration path.
    /// A migration of a future build.
    const NEXT: Migration = Migration {
        to: SCHEMA_VERSION + 1,
        sql: "ALTER TABLE checkers ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;",
    };

    #[test]
    fn a_fresh_database_gets_every_migration() -> Result<(), StoreError> {
        let mut conn = Connection::open_in_memory().store_err("mem")?;
        assert_eq!(
            migrate(&mut conn, "mem", MIGRATIONS, false)?,
            SCHEMA_VERSION
        );
        // Idempotent.
        assert_eq!(
            migrate(&mut conn, "mem", MIGRATIONS, false)?,
            SCHEMA_VERSION
        );
        let id: i32 = conn
            .pragma_query_value(None, "application_id", |r| r.get(0))
            .store_err("mem")?;
        assert_eq!(id, APPLICATION_ID);
        Ok(())
    }

    #[test]
    fn an_older_store_is_migrated_forward_keeping_its_data() -> Result<(), StoreError> {
        let mut conn = Connection::open_in_memory().store_err("mem")?;
        migrate(&mut conn, "mem", MIGRATIONS, false)?;
        conn.execute("INSERT INTO checkers (name) VALUES ('kept')", [])
            .store_err("mem")?;
        let newer: Vec<Migration> = MIGRATIONS.iter().copied().chain([NEXT]).collect();
        assert_eq!(
            migrate(&mut conn, "mem", &newer, false)?,
            SCHEMA_VERSION + 1
        );
        let (name, paused): (String, i64) = conn
            .query_row("SELECT name, paused FROM checkers", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .store_err("mem")?;
        assert_eq!((name.as_str(), paused), ("kept", 0));
        // And this (older) build then refuses the migrated store.
        assert!(matches!(
            migrate(&mut conn, "mem", MIGRATIONS, false),
            Err(StoreError::SchemaTooNew { path, found, supported })
                if path == "mem" && found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION
        ));
        Ok(())
    }

    #[test]
    fn a_read_only_old_store_is_not_migrated() -> Result<(), StoreError> {
        let mut conn = Connection::open_in_memory().store_err("mem")?;
        migrate(&mut conn, "mem", MIGRATIONS, false)?;
        let newer: Vec<Migration> = MIGRATIONS.iter().copied().chain([NEXT]).collect();
        assert!(matches!(
            migrate(&mut conn, "mem", &newer, true),
            Err(StoreError::ReadOnly { .. })
        ));
        Ok(())
    }

    #[test]
    fn a_version_1_store_keeps_its_inline_records_readable_after_migration(
    ) -> Result<(), StoreError> {
        let mut conn = Connection::open_in_memory().store_err("mem")?;
        migrate(&mut conn, "mem", &MIGRATIONS[..1], false)?;
        conn.execute_batch(
            "INSERT INTO checkers (id, name) VALUES (1, 'old');
             INSERT INTO checks VALUES (1, 0, 60, 3, 'GOOD', '{\"inline\": true}');",
        )
        .store_err("mem")?;
        assert_eq!(
            migrate(&mut conn, "mem", MIGRATIONS, false)?,
            SCHEMA_VERSION
        );
        let (record, extra_id): (String, Option<i64>) = conn
            .query_row("SELECT record, extra_id FROM checks", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .store_err("mem")?;
        assert_eq!((record.as_str(), extra_id), ("{\"inline\": true}", None));
        Ok(())
    }

    #[test]
    fn a_version_2_outbox_keeps_its_entries_after_migration() -> Result<(), StoreError> {
        let mut conn = Connection::open_in_memory().store_err("mem")?;
        migrate(&mut conn, "mem", &MIGRATIONS[..2], false)?;
        conn.execute_batch(
            "INSERT INTO checkers (id, name) VALUES (1, 'old');
             INSERT INTO outbox (key, checker_id, requirement_index, minute, record, attempts,
                                 next_attempt_at, last_error)
             VALUES ('old/0/60', 1, 0, 60, '{}', 2, 120, 'webhook down');",
        )
        .store_err("mem")?;
        assert_eq!(
            migrate(&mut conn, "mem", MIGRATIONS, false)?,
            SCHEMA_VERSION
        );
        let (attempts, delivered, first, given_up): (i64, Option<String>, Option<i64>, i64) = conn
            .query_row(
                "SELECT o.attempts, o.delivered_to, o.first_attempt_at, c.given_up
                 FROM outbox o JOIN checkers c ON c.id = o.checker_id",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .store_err("mem")?;
        assert_eq!((attempts, delivered, first, given_up), (2, None, None, 0));
        Ok(())
    }

    #[test]
    fn a_foreign_database_is_not_a_store() -> Result<(), StoreError> {
        let mut conn = Connection::open_in_memory().store_err("mem")?;
        conn.execute_batch("CREATE TABLE invoices (id INTEGER)")
            .store_err("mem")?;
        assert!(matches!(
            migrate(&mut conn, "mem", MIGRATIONS, false),
            Err(StoreError::NotAStore { .. })
        ));
        Ok(())
    }
}
