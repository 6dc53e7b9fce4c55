//! [`SqliteTokenStore`]: tokens in their own `token_*` tables of the dwmon store file.
//!
//! Tables (schema version 1, kept in `token_schema`):
//!
//! | table | key | content |
//! |---|---|---|
//! | `token_list` | `id` (public, 10 hex digits) | `hash` (SHA-256 of the token), `scope`, `label`, `created_at`, `rotated_at` |
//! | `token_generation` | (one row) | `generation`: raised by triggers on every `UPDATE` or `DELETE` of `token_list` |
//!
//! `token_generation` and its triggers were added within schema version 1 (created when
//! missing): being triggers, they also count the rotations and revocations of older dwmon
//! builds and of hand edits, which is what lets a [`CachedTokens`](super::CachedTokens) in
//! `dwmon serve` notice a `dwmon token revoke` run by another process.

use super::{claimed_id, hash, matches, new_id, new_token, IssuedToken, Scope, TokenError};
use super::{TokenInfo, TokenStore};
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The schema version this build writes.
const SCHEMA_VERSION: i64 = 1;

/// How long a statement waits for another connection's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS token_schema (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS token_list (
    id TEXT PRIMARY KEY,
    hash BLOB NOT NULL,
    scope TEXT NOT NULL,
    label TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    rotated_at INTEGER
);
CREATE TABLE IF NOT EXISTS token_generation (generation INTEGER NOT NULL);
INSERT INTO token_generation (generation)
    SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM token_generation);
CREATE TRIGGER IF NOT EXISTS token_list_updated AFTER UPDATE ON token_list
    BEGIN UPDATE token_generation SET generation = generation + 1; END;
CREATE TRIGGER IF NOT EXISTS token_list_deleted AFTER DELETE ON token_list
    BEGIN UPDATE token_generation SET generation = generation + 1; END;
";

/// Tokens (hashes only) in an SQLite file, usually the dwmon store's (WAL mode, busy
/// timeout, parameterized SQL). Open the dwmon store first: it refuses a new file that
/// already holds tables of others. Cheap to clone; clones share one connection.
///
/// ```
/// use dwmon_server::tokens::{Scope, SqliteTokenStore, TokenStore};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let tokens = SqliteTokenStore::open_in_memory()?;
/// let issued = tokens.create(Scope::Read, "dashboard", 1_700_000_000).await?;
/// assert_eq!(tokens.list().await?[0].masked(), issued.info.masked());
/// # Ok::<(), dwmon_server::tokens::TokenError>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct SqliteTokenStore {
    connection: Arc<Mutex<Connection>>,
}

impl SqliteTokenStore {
    /// Opens (creating if needed) the token tables in the SQLite file at `path`.
    ///
    /// # Errors
    /// [`TokenError::Open`] when the file cannot be opened, is not a database, or its token
    /// tables were written by a newer dwmon.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, TokenError> {
        let shown = path.as_ref().display().to_string();
        let connection = Connection::open(path.as_ref()).map_err(|e| open_error(&shown, e))?;
        Self::init(connection, &shown)
    }

    /// A private in-memory store (tests).
    ///
    /// # Errors
    /// [`TokenError::Open`] when SQLite cannot create the tables.
    pub fn open_in_memory() -> Result<Self, TokenError> {
        let connection = Connection::open_in_memory().map_err(|e| open_error(":memory:", e))?;
        Self::init(connection, ":memory:")
    }

    fn init(mut connection: Connection, path: &str) -> Result<Self, TokenError> {
        connection
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| open_error(path, e))?;
        dwmon_sqlite::use_wal_journal(&connection, BUSY_TIMEOUT)
            .map_err(|e| open_error(path, e))?;
        connection
            .execute_batch("PRAGMA synchronous = NORMAL;")
            .map_err(|e| open_error(path, e))?;
        let tx = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| open_error(path, e))?;
        tx.execute_batch(SCHEMA).map_err(|e| open_error(path, e))?;
        let version: Option<i64> = tx
            .query_row("SELECT MAX(version) FROM token_schema", [], |r| r.get(0))
            .map_err(|e| open_error(path, e))?;
        match version {
            None => {
                tx.execute(
                    "INSERT INTO token_schema (version) VALUES (?1)",
                    [SCHEMA_VERSION],
                )
                .map_err(|e| open_error(path, e))?;
            }
            Some(v) if v > SCHEMA_VERSION => {
                return Err(TokenError::Open {
                    path: path.to_string(),
                    message: format!(
                        "token tables have schema version {v}, this dwmon supports at most \
                         {SCHEMA_VERSION}; upgrade dwmon"
                    ),
                });
            }
            Some(_) => {}
        }
        tx.commit().map_err(|e| open_error(path, e))?;
        Ok(SqliteTokenStore {
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    /// Runs `f` on the connection in a blocking task.
    async fn with<T, F>(&self, f: F) -> Result<T, TokenError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, TokenError> + Send + 'static,
    {
        let connection = Arc::clone(&self.connection);
        tokio::task::spawn_blocking(move || {
            let mut guard = connection.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| TokenError::Task(e.to_string()))?
    }
}

fn open_error(path: &str, e: rusqlite::Error) -> TokenError {
    TokenError::Open {
        path: path.to_string(),
        message: e.to_string(),
    }
}

type StoredRow = (String, Vec<u8>, String, String, i64, Option<i64>);

fn read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
    ))
}

fn info_of(row: StoredRow) -> Result<(TokenInfo, Vec<u8>), TokenError> {
    let (id, hash, scope, label, created_at, rotated_at) = row;
    let scope = Scope::parse(&scope).map_err(|e| TokenError::Corrupt {
        id: id.clone(),
        message: e.to_string(),
    })?;
    Ok((
        TokenInfo {
            id,
            scope,
            label,
            created_at,
            rotated_at,
        },
        hash,
    ))
}

const SELECT: &str = "SELECT id, hash, scope, label, created_at, rotated_at FROM token_list";

fn find(connection: &Connection, id: &str) -> Result<Option<(TokenInfo, Vec<u8>)>, TokenError> {
    connection
        .prepare_cached(&format!("{SELECT} WHERE id = ?1"))
        .and_then(|mut s| s.query_row([id], read_row).optional())
        .map_err(TokenError::Backend)?
        .map(info_of)
        .transpose()
}

#[async_trait]
impl TokenStore for SqliteTokenStore {
    async fn create(&self, scope: Scope, label: &str, now: i64) -> Result<IssuedToken, TokenError> {
        let label = label.to_string();
        self.with(move |c| loop {
            let id = new_id();
            let token = new_token(&id);
            let inserted = c
                .execute(
                    "INSERT OR IGNORE INTO token_list (id, hash, scope, label, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        id,
                        hash(token.expose()).as_slice(),
                        scope.to_string(),
                        label,
                        now
                    ],
                )
                .map_err(TokenError::Backend)?;
            if inserted == 1 {
                let info = TokenInfo {
                    id,
                    scope,
                    label,
                    created_at: now,
                    rotated_at: None,
                };
                return Ok(IssuedToken { info, token });
            }
        })
        .await
    }

    async fn list(&self) -> Result<Vec<TokenInfo>, TokenError> {
        self.with(|c| {
            let mut statement = c
                .prepare(&format!("{SELECT} ORDER BY created_at, id"))
                .map_err(TokenError::Backend)?;
            let rows = statement
                .query_map([], read_row)
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(TokenError::Backend)?;
            rows.into_iter()
                .map(|row| info_of(row).map(|(info, _)| info))
                .collect()
        })
        .await
    }

    async fn rotate(&self, id: &str, now: i64) -> Result<IssuedToken, TokenError> {
        let id = id.to_string();
        self.with(move |c| {
            let token = new_token(&id);
            let changed = c
                .execute(
                    "UPDATE token_list SET hash = ?2, rotated_at = ?3 WHERE id = ?1",
                    params![id, hash(token.expose()).as_slice(), now],
                )
                .map_err(TokenError::Backend)?;
            if changed == 0 {
                return Err(TokenError::UnknownId { id });
            }
            let (info, _) = find(c, &id)?.ok_or(TokenError::UnknownId { id })?;
            Ok(IssuedToken { info, token })
        })
        .await
    }

    async fn revoke(&self, id: &str) -> Result<(), TokenError> {
        let id = id.to_string();
        self.with(move |c| {
            let deleted = c
                .execute("DELETE FROM token_list WHERE id = ?1", [&id])
                .map_err(TokenError::Backend)?;
            if deleted == 0 {
                return Err(TokenError::UnknownId { id });
            }
            Ok(())
        })
        .await
    }

    async fn verify(&self, presented: &str) -> Result<Option<TokenInfo>, TokenError> {
        let Some(id) = claimed_id(presented).map(str::to_string) else {
            return Ok(None);
        };
        let presented = presented.to_string();
        self.with(move |c| {
            Ok(find(c, &id)?
                .filter(|(_, stored)| matches(&presented, stored))
                .map(|(info, _)| info))
        })
        .await
    }

    async fn generation(&self) -> Result<Option<u64>, TokenError> {
        self.with(|c| {
            let generation: i64 = c
                .prepare_cached("SELECT MAX(generation) FROM token_generation")
                .and_then(|mut s| s.query_row([], |r| r.get::<_, Option<i64>>(0)))
                .map_err(TokenError::Backend)?
                .unwrap_or(0);
            Ok(Some(generation as u64))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tokens_survive_reopening_and_only_hashes_are_stored() -> Result<(), TokenError> {
        let dir = tempfile::tempdir().map_err(|e| TokenError::Task(e.to_string()))?;
        let path = dir.path().join("dwmon.sqlite");
        let issued = SqliteTokenStore::open(&path)?
            .create(Scope::parse("ping:backup")?, "nightly", 100)
            .await?;
        let reopened = SqliteTokenStore::open(&path)?;
        let found = reopened.verify(issued.token.expose()).await?;
        assert_eq!(found.as_ref(), Some(&issued.info));
        let bytes = std::fs::read(&path).map_err(|e| TokenError::Task(e.to_string()))?;
        let secret = issued.token.expose().rsplit('_').next().unwrap_or_default();
        let wal = std::fs::read(path.with_extension("sqlite-wal")).unwrap_or_default();
        for file in [&bytes, &wal] {
            assert!(
                !file.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "the secret is not in the file"
            );
        }
        Ok(())
    }

    #[tokio::test]
    async fn rotate_replaces_the_secret_and_revoke_removes_the_token() -> Result<(), TokenError> {
        let tokens = SqliteTokenStore::open_in_memory()?;
        let first = tokens.create(Scope::Write, "ops", 100).await?;
        let other = tokens.create(Scope::Read, "dashboard", 101).await?;
        let rotated = tokens.rotate(&first.info.id, 200).await?;
        assert_eq!(rotated.info.id, first.info.id);
        assert_eq!(rotated.info.rotated_at, Some(200));
        assert_eq!(tokens.verify(first.token.expose()).await?, None);
        assert_eq!(
            tokens
                .verify(rotated.token.expose())
                .await?
                .map(|t| t.scope),
            Some(Scope::Write)
        );
        tokens.revoke(&first.info.id).await?;
        assert_eq!(tokens.verify(rotated.token.expose()).await?, None);
        let listed = tokens.list().await?;
        assert_eq!(listed, vec![other.info.clone()]);
        assert!(matches!(
            tokens.revoke(&first.info.id).await,
            Err(TokenError::UnknownId { .. })
        ));
        assert!(matches!(
            tokens.rotate("0000000000", 1).await,
            Err(TokenError::UnknownId { .. })
        ));
        Ok(())
    }

    #[tokio::test]
    async fn the_generation_moves_on_rotate_and_revoke_from_any_connection(
    ) -> Result<(), TokenError> {
        let dir = tempfile::tempdir().map_err(|e| TokenError::Task(e.to_string()))?;
        let path = dir.path().join("dwmon.sqlite");
        let one = SqliteTokenStore::open(&path)?;
        let two = SqliteTokenStore::open(&path)?;
        let start = one.generation().await?;
        let issued = two.create(Scope::Read, "", 1).await?;
        assert_eq!(
            one.generation().await?,
            start,
            "a creation needs no recheck"
        );
        two.rotate(&issued.info.id, 2).await?;
        let rotated = one.generation().await?;
        assert_ne!(rotated, start);
        // A hand edit (or an older dwmon) moves it too: the triggers live in the file.
        rusqlite::Connection::open(&path)
            .and_then(|c| c.execute("DELETE FROM token_list", []))
            .map_err(TokenError::Backend)?;
        assert_ne!(one.generation().await?, rotated);
        Ok(())
    }

    #[tokio::test]
    async fn a_token_with_a_right_id_and_a_wrong_secret_is_refused() -> Result<(), TokenError> {
        let tokens = SqliteTokenStore::open_in_memory()?;
        let issued = tokens.create(Scope::Read, "", 1).await?;
        let forged = format!("dw_{}_{}", issued.info.id, "0".repeat(32));
        assert_eq!(tokens.verify(&forged).await?, None);
        assert_eq!(tokens.verify("not a token").await?, None);
        Ok(())
    }
}
