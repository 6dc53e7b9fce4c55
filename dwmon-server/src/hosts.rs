//! [`HostRegistry`]: the hosts of per-host push checkers (docs/FORMAT.md, "Per-host
//! heartbeats"), kept across restarts.
//!
//! The first heartbeat event from a host adds `(checker, host)`; a graceful-shutdown event
//! (tag `shutdown`) removes it. Before each cycle the run loop turns the registry into
//! sub-checks with [`dwmon_core::ping::with_hosts`], so a host's sub-check gets due
//! minutes, counts and check records like any checker.
//!
//! With a file, the hosts live in the `push_hosts` table of the dwmon store file (its own
//! table, as the tokens have theirs: `checker`, `host`, `added_at`); every read is served
//! from memory, and only a change writes.

use rusqlite::{params, Connection};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS push_hosts (
    checker TEXT NOT NULL,
    host TEXT NOT NULL,
    added_at INTEGER NOT NULL,
    PRIMARY KEY (checker, host)
);
";

/// The registry cannot be read or written.
#[derive(Debug, thiserror::Error)]
#[error("host registry {path}: {source}")]
pub struct HostError {
    /// The file.
    pub path: String,
    /// What SQLite said.
    #[source]
    pub source: rusqlite::Error,
}

/// The hosts of per-host push checkers, in memory and (with [`HostRegistry::open`]) in the
/// store file. Cheap to share behind an `Arc`; every method is quick (a change is one small
/// SQLite write).
#[derive(Debug)]
pub struct HostRegistry {
    hosts: Mutex<BTreeSet<(String, String)>>,
    file: Option<(Arc<Mutex<Connection>>, String)>,
}

impl HostRegistry {
    /// A registry that forgets its hosts when the process ends (tests, stores without a file).
    pub fn in_memory() -> Self {
        HostRegistry {
            hosts: Mutex::new(BTreeSet::new()),
            file: None,
        }
    }

    /// Opens (creating if needed) the `push_hosts` table of the SQLite file at `path` and reads
    /// its hosts.
    ///
    /// # Errors
    /// [`HostError`] when the file cannot be opened or read.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, HostError> {
        let shown = path.as_ref().display().to_string();
        let error = |source| HostError {
            path: shown.clone(),
            source,
        };
        let connection = Connection::open(path.as_ref()).map_err(error)?;
        connection
            .busy_timeout(Duration::from_secs(5))
            .map_err(error)?;
        dwmon_sqlite::use_wal_journal(&connection, Duration::from_secs(5)).map_err(error)?;
        connection.execute_batch(SCHEMA).map_err(error)?;
        let hosts = {
            let mut statement = connection
                .prepare("SELECT checker, host FROM push_hosts")
                .map_err(error)?;
            let rows = statement
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                .map_err(error)?;
            rows.collect::<Result<BTreeSet<(String, String)>, _>>()
                .map_err(error)?
        };
        Ok(HostRegistry {
            hosts: Mutex::new(hosts),
            file: Some((Arc::new(Mutex::new(connection)), shown)),
        })
    }

    /// Every `(checker, host)`, sorted.
    pub fn hosts(&self) -> Vec<(String, String)> {
        self.lock().iter().cloned().collect()
    }

    /// Whether `host` of `checker` is registered.
    pub fn contains(&self, checker: &str, host: &str) -> bool {
        self.lock()
            .contains(&(checker.to_string(), host.to_string()))
    }

    /// Registers `host` of `checker` (at `now`); `false` when it already was. Written to the
    /// file before it is visible.
    ///
    /// # Errors
    /// [`HostError`] when the file cannot be written (the host is then not registered).
    pub fn add(&self, checker: &str, host: &str, now: i64) -> Result<bool, HostError> {
        if self.contains(checker, host) {
            return Ok(false);
        }
        self.write(
            "INSERT OR IGNORE INTO push_hosts (checker, host, added_at) VALUES (?1, ?2, ?3)",
            checker,
            host,
            Some(now),
        )?;
        Ok(self.lock().insert((checker.to_string(), host.to_string())))
    }

    /// Removes `host` of `checker`; `false` when it was not registered.
    ///
    /// # Errors
    /// [`HostError`] when the file cannot be written (the host then stays).
    pub fn remove(&self, checker: &str, host: &str) -> Result<bool, HostError> {
        if !self.contains(checker, host) {
            return Ok(false);
        }
        self.write(
            "DELETE FROM push_hosts WHERE checker = ?1 AND host = ?2",
            checker,
            host,
            None,
        )?;
        Ok(self.lock().remove(&(checker.to_string(), host.to_string())))
    }

    fn write(
        &self,
        sql: &str,
        checker: &str,
        host: &str,
        now: Option<i64>,
    ) -> Result<(), HostError> {
        let Some((connection, path)) = &self.file else {
            return Ok(());
        };
        let connection = connection.lock().unwrap_or_else(|e| e.into_inner());
        let result = match now {
            Some(now) => connection.execute(sql, params![checker, host, now]),
            None => connection.execute(sql, params![checker, host]),
        };
        result.map(|_| ()).map_err(|source| HostError {
            path: path.clone(),
            source,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<(String, String)>> {
        self.hosts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_survive_a_reopen_and_removals_too() -> Result<(), HostError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.sqlite");
        let registry = HostRegistry::open(&path)?;
        assert!(registry.add("beat", "web2", 1)?);
        assert!(registry.add("beat", "web1", 2)?);
        assert!(!registry.add("beat", "web1", 3)?, "already there");
        assert!(registry.add("other", "web1", 4)?);
        assert!(registry.remove("other", "web1")?);
        assert!(!registry.remove("other", "web1")?);
        drop(registry);
        let reopened = HostRegistry::open(&path)?;
        let expected =
            [("beat", "web1"), ("beat", "web2")].map(|(c, h)| (c.to_string(), h.to_string()));
        assert_eq!(reopened.hosts(), expected);
        let memory = HostRegistry::in_memory();
        assert!(memory.add("beat", "web1", 1)?);
        assert!(memory.contains("beat", "web1"));
        Ok(())
    }
}
