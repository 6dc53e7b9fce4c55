//! The versioned schema and its forward migrations, in the schema the connection's
//! `search_path` names first (see the crate docs for the tables).
//!
//! Applied versions are rows of `dwmon_migrations`. Opening a store runs, in one transaction
//! under a transaction-scoped advisory lock of its schema (so two runners starting at once
//! migrate once, and nothing outlives the transaction: PgBouncer's transaction pooling is
//! fine), every migration newer than the newest applied one. A store written by a newer dwmon
//! is refused with [`StoreError::SchemaTooNew`].

use crate::error::ResultExt;
use dwmon_core::store::Cause;
use dwmon_core::StoreError;
use tokio_postgres::types::Type;

/// One forward migration: the SQL that takes the schema from `to - 1` to `to`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    /// The version after this migration.
    pub to: i64,
    /// Statements to run (no parameters: fixed DDL).
    pub sql: &'static str,
}

/// Every migration, oldest first. Append new ones; never edit a released one.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        to: 1,
        sql: "
    CREATE TABLE dwmon_checkers (
        id BIGSERIAL PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        stored_rows BIGINT NOT NULL DEFAULT 0,
        last_minute BIGINT,
        last_error_minute BIGINT,
        last_error TEXT,
        given_up BIGINT NOT NULL DEFAULT 0,
        last_give_up_minute BIGINT,
        last_give_up TEXT
    );
    CREATE TABLE dwmon_rows (
        checker_id BIGINT NOT NULL,
        key TEXT NOT NULL,
        ts BIGINT NOT NULL,
        PRIMARY KEY (checker_id, key)
    );
    CREATE INDEX dwmon_rows_by_time ON dwmon_rows (checker_id, ts);
    CREATE TABLE dwmon_checks (
        checker_id BIGINT NOT NULL,
        requirement_index BIGINT NOT NULL,
        minute BIGINT NOT NULL,
        count BIGINT NOT NULL,
        status TEXT NOT NULL,
        record TEXT NOT NULL,
        PRIMARY KEY (checker_id, requirement_index, minute)
    );
    CREATE INDEX dwmon_checks_by_minute ON dwmon_checks (checker_id, minute);
    CREATE TABLE dwmon_outbox (
        key TEXT PRIMARY KEY,
        checker TEXT NOT NULL,
        checker_id BIGINT NOT NULL,
        requirement_index BIGINT NOT NULL,
        minute BIGINT NOT NULL,
        record TEXT NOT NULL,
        attempts BIGINT NOT NULL DEFAULT 0,
        next_attempt_at BIGINT NOT NULL,
        last_error TEXT,
        delivered_to TEXT,
        first_attempt_at BIGINT,
        lease_owner TEXT,
        lease_until TIMESTAMPTZ NOT NULL DEFAULT '-infinity',
        lease_fence BIGINT NOT NULL DEFAULT 0
    );
    CREATE INDEX dwmon_outbox_order ON dwmon_outbox (checker, minute, requirement_index);
    CREATE TABLE dwmon_claims (
        checker TEXT PRIMARY KEY,
        owner TEXT,
        fence BIGINT NOT NULL DEFAULT 0,
        until TIMESTAMPTZ NOT NULL DEFAULT '-infinity'
    );
    CREATE TABLE dwmon_runners (
        owner TEXT PRIMARY KEY,
        seen TIMESTAMPTZ NOT NULL
    );
    CREATE TABLE dwmon_alert_state (
        checker TEXT NOT NULL,
        requirement_index BIGINT NOT NULL,
        phase TEXT NOT NULL,
        state TEXT NOT NULL,
        PRIMARY KEY (checker, requirement_index)
    );
    CREATE TABLE dwmon_alert_source (
        checker TEXT PRIMARY KEY,
        failing BOOLEAN NOT NULL,
        state TEXT NOT NULL
    );
    CREATE TABLE dwmon_alert_pause (
        checker TEXT PRIMARY KEY,
        since BIGINT NOT NULL,
        until BIGINT,
        comment TEXT
    );
    CREATE TABLE dwmon_alert_outbox (
        seq BIGSERIAL PRIMARY KEY,
        idempotency_key TEXT NOT NULL UNIQUE,
        checker TEXT NOT NULL,
        entry TEXT NOT NULL
    );
    CREATE INDEX dwmon_alert_outbox_checker ON dwmon_alert_outbox (checker, seq);
    CREATE TABLE dwmon_alert_history (
        seq BIGSERIAL PRIMARY KEY,
        checker TEXT NOT NULL,
        at BIGINT NOT NULL,
        idempotency_key TEXT,
        entry TEXT NOT NULL
    );
    CREATE INDEX dwmon_alert_history_by_checker ON dwmon_alert_history (checker, seq);
    CREATE INDEX dwmon_alert_history_by_key ON dwmon_alert_history (idempotency_key)
        WHERE idempotency_key IS NOT NULL;
    ",
    },
    // Pending notifications are leased to one runner at a time, like the check outbox.
    Migration {
        to: 2,
        sql: "
    ALTER TABLE dwmon_alert_outbox
        ADD COLUMN lease_owner TEXT,
        ADD COLUMN lease_until TIMESTAMPTZ NOT NULL DEFAULT '-infinity',
        ADD COLUMN lease_fence BIGINT NOT NULL DEFAULT 0;
    ",
    },
    // A checker's rows epoch counts the statements that deleted or changed any of its stored
    // rows (whoever ran them: another runner's purge, an operator by hand), so a runner's cache
    // of stored keys notices when it may hold keys that are gone (see `seen.rs`).
    Migration {
        to: 3,
        sql: "
    ALTER TABLE dwmon_checkers ADD COLUMN rows_epoch BIGINT NOT NULL DEFAULT 0;
    CREATE FUNCTION dwmon_rows_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        -- The table's own schema, whatever the deleting session's search_path.
        EXECUTE format('UPDATE %I.dwmon_checkers SET rows_epoch = rows_epoch + 1
                        WHERE id IN (SELECT DISTINCT checker_id FROM old_rows)',
                       TG_TABLE_SCHEMA);
        RETURN NULL;
    END $$;
    CREATE FUNCTION dwmon_rows_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        EXECUTE format('UPDATE %I.dwmon_checkers SET rows_epoch = rows_epoch + 1',
                       TG_TABLE_SCHEMA);
        RETURN NULL;
    END $$;
    CREATE TRIGGER dwmon_rows_deleted AFTER DELETE ON dwmon_rows
        REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
        EXECUTE FUNCTION dwmon_rows_changed();
    CREATE TRIGGER dwmon_rows_updated AFTER UPDATE ON dwmon_rows
        REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
        EXECUTE FUNCTION dwmon_rows_changed();
    CREATE TRIGGER dwmon_rows_truncated AFTER TRUNCATE ON dwmon_rows
        FOR EACH STATEMENT EXECUTE FUNCTION dwmon_rows_truncated();
    ",
    },
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = 3;

const _: () = assert!(MIGRATIONS[MIGRATIONS.len() - 1].to == SCHEMA_VERSION);

/// The schema `client`'s `search_path` names and the version of the store in it (`None`: no
/// `dwmon_migrations` table, or no version in it), in a read-only transaction.
pub(crate) async fn stored_version(
    client: &mut tokio_postgres::Client,
    location: &str,
    statement_timeout_ms: &str,
) -> Result<(String, Option<i64>), StoreError> {
    let tx = client
        .build_transaction()
        .read_only(true)
        .start()
        .await
        .store_err(location)?;
    tx.query_typed(
        "SELECT set_config('statement_timeout', $1, true)",
        &[(&statement_timeout_ms, Type::TEXT)],
    )
    .await
    .store_err(location)?;
    let row = tx
        .query_typed_one(
            "SELECT current_schema()::text, to_regclass('dwmon_migrations') IS NOT NULL",
            &[],
        )
        .await
        .store_err(location)?;
    let schema: Option<String> = row.try_get(0).store_err(location)?;
    let Some(schema) = schema else {
        return Err(no_schema(location));
    };
    let has_table: bool = row.try_get(1).store_err(location)?;
    let version = if has_table {
        tx.query_typed_one("SELECT max(version) FROM dwmon_migrations", &[])
            .await
            .store_err(location)?
            .try_get(0)
            .store_err(location)?
    } else {
        None
    };
    tx.commit().await.store_err(location)?;
    Ok((schema, version))
}

/// For a read-only handle: the store must exist, at this build's version, and nothing is
/// created or migrated.
pub(crate) async fn check_existing(
    client: &mut tokio_postgres::Client,
    location: &str,
    statement_timeout_ms: &str,
) -> Result<(), StoreError> {
    let (schema, version) = stored_version(client, location, statement_timeout_ms).await?;
    let open = |message: String| StoreError::Open {
        path: location.to_owned(),
        source: Cause::text(message),
    };
    match version {
        None => Err(open(format!(
            "no dwmon store in schema {schema}; run `dwmon run` or `dwmon once` with this \
             --store first (they create it)"
        ))),
        Some(found) if found > SCHEMA_VERSION => Err(StoreError::SchemaTooNew {
            path: location.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        }),
        Some(found) if found < SCHEMA_VERSION => Err(open(format!(
            "the dwmon store in schema {schema} has version {found}, this dwmon reads version \
             {SCHEMA_VERSION}; run `dwmon run` or `dwmon once` of this version first (they \
             migrate it)"
        ))),
        Some(_) => Ok(()),
    }
}

fn no_schema(location: &str) -> StoreError {
    StoreError::Open {
        path: location.to_owned(),
        source: Cause::text(
            "the connection's search_path names no existing schema; create it \
             (CREATE SCHEMA name) or fix options=-csearch_path%3Dname",
        ),
    }
}

/// Brings the store in `client`'s schema up to the newest of `migrations`; returns the
/// version it has afterwards.
pub(crate) async fn migrate(
    client: &mut tokio_postgres::Client,
    location: &str,
    migrations: &[Migration],
    statement_timeout_ms: &str,
) -> Result<i64, StoreError> {
    let supported = migrations.last().map_or(0, |m| m.to);
    let tx = client.transaction().await.store_err(location)?;
    tx.query_typed(
        "SELECT set_config('statement_timeout', $1, true)",
        &[(&statement_timeout_ms, Type::TEXT)],
    )
    .await
    .store_err(location)?;
    let schema: Option<String> = tx
        .query_typed_one("SELECT current_schema()::text", &[])
        .await
        .store_err(location)?
        .try_get(0)
        .store_err(location)?;
    let Some(schema) = schema else {
        return Err(no_schema(location));
    };
    // Serialises migrations of this schema only; released at commit.
    tx.query_typed(
        "SELECT pg_advisory_xact_lock(hashtext('dwmon migrations ' || $1))",
        &[(&schema, Type::TEXT)],
    )
    .await
    .store_err(location)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS dwmon_migrations (
             version BIGINT PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .await
    .store_err(location)?;
    let found: Option<i64> = tx
        .query_typed_one("SELECT max(version) FROM dwmon_migrations", &[])
        .await
        .store_err(location)?
        .try_get(0)
        .store_err(location)?;
    let found = found.unwrap_or(0);
    if found > supported {
        return Err(StoreError::SchemaTooNew {
            path: location.to_owned(),
            found,
            supported,
        });
    }
    if found == 0 {
        // A schema that already has tables of ours without a version is someone else's.
        let clash: Option<String> = tx
            .query_typed_opt(
                "SELECT table_name::text FROM information_schema.tables
                 WHERE table_schema = $1 AND table_name LIKE 'dwmon\\_%'
                   AND table_name <> 'dwmon_migrations' LIMIT 1",
                &[(&schema, Type::TEXT)],
            )
            .await
            .store_err(location)?
            .map(|row| row.try_get(0))
            .transpose()
            .store_err(location)?;
        if let Some(table) = clash {
            return Err(StoreError::NotAStore {
                path: location.to_owned(),
                source: Cause::text(format!(
                    "schema {schema} has a table {table} but no dwmon_migrations entries; \
                     refusing to write into it"
                )),
            });
        }
    }
    let mut version = found;
    for migration in migrations.iter().filter(|m| m.to > found) {
        tx.batch_execute(migration.sql).await.store_err(location)?;
        tx.query_typed(
            "INSERT INTO dwmon_migrations (version) VALUES ($1)",
            &[(&migration.to, Type::INT8)],
        )
        .await
        .store_err(location)?;
        version = migration.to;
        tracing::info!(store = location, schema, version, "migrated store schema");
    }
    tx.commit().await.store_err(location)?;
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn epoch(client: &tokio_postgres::Client) -> Result<i64, tokio_postgres::Error> {
        Ok(client
            .query_one("SELECT rows_epoch FROM dwmon_checkers", &[])
            .await?
            .get(0))
    }

    /// A store written by the first release (schema 1) is migrated to this one's in place:
    /// its rows stay and its rows epochs start counting.
    #[tokio::test]
    async fn a_first_release_store_is_migrated_forward() -> Result<(), Box<dyn std::error::Error>> {
        let url = std::env::var("DWMON_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string());
        let (mut client, connection) =
            match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
                Ok(pair) => pair,
                Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
                    panic!("CI=true and the test PostgreSQL server at {url} is unreachable: {e}")
                }
                Err(e) => {
                    eprintln!("skipped: no PostgreSQL at {url}: {e}");
                    return Ok(());
                }
            };
        tokio::spawn(connection);
        let schema = format!("t_migrate_{}", std::process::id());
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema};
                 SET search_path = {schema}"
            ))
            .await?;
        assert_eq!(
            migrate(&mut client, "test", &MIGRATIONS[..1], "5000").await?,
            1
        );
        client
            .batch_execute(
                "INSERT INTO dwmon_checkers (name) VALUES ('x');
                 INSERT INTO dwmon_rows SELECT id, 'k', 5 FROM dwmon_checkers",
            )
            .await?;
        assert_eq!(
            migrate(&mut client, "test", MIGRATIONS, "5000").await?,
            SCHEMA_VERSION
        );
        assert_eq!(
            migrate(&mut client, "test", MIGRATIONS, "5000").await?,
            SCHEMA_VERSION
        );
        assert_eq!(epoch(&client).await?, 0);
        client.batch_execute("DELETE FROM dwmon_rows").await?;
        assert_eq!(epoch(&client).await?, 1);
        client.batch_execute("TRUNCATE dwmon_rows").await?;
        assert_eq!(epoch(&client).await?, 2);
        client
            .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
            .await?;
        Ok(())
    }
}
