//! Shared helpers for the MySQL / MariaDB tests: finding the test server and giving each test
//! its own database, so tests run in parallel without seeing each other's tables.

#![allow(dead_code)] // each test binary uses a different subset

use dwmon_core::{FetchRequest, Fetched, RowGetter, SourceError};
use mysql_async::prelude::Queryable;
use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// The server used when `DWMON_TEST_MYSQL_URL` is not set.
pub const DEFAULT_URL: &str = "mysql://root@127.0.0.1:3306/test";

/// The test server's URL, or `None` (after a visible notice) when the tests should be skipped.
///
/// - `DWMON_TEST_MYSQL_URL` set: it is used, and an unreachable server fails the test.
/// - unset and `CI=true`: [`DEFAULT_URL`] is used, and an unreachable server fails the test.
/// - unset otherwise: [`DEFAULT_URL`] is tried; if unreachable the test prints
///   `SKIPPED: ...` to stderr and returns.
///
/// # Panics
/// When a server that must be reachable is not.
pub async fn test_url() -> Option<String> {
    let configured = std::env::var("DWMON_TEST_MYSQL_URL")
        .ok()
        .filter(|url| !url.trim().is_empty());
    let in_ci = std::env::var("CI").is_ok_and(|ci| ci == "true");
    let (url, required) = match configured {
        Some(url) => (url, true),
        None => (DEFAULT_URL.to_string(), in_ci),
    };
    match admin_conn(&url).await {
        Ok(conn) => {
            let _ = conn.disconnect().await;
            Some(url)
        }
        Err(error) if required => panic!(
            "MySQL/MariaDB tests need a server at {url} (DWMON_TEST_MYSQL_URL{}): {error}",
            if in_ci { ", CI=true" } else { "" }
        ),
        Err(error) => {
            // Written to the stderr handle itself: the test harness captures eprintln!, and
            // this notice must be seen even when the test passes.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: MySQL/MariaDB tests need DWMON_TEST_MYSQL_URL=mysql://... (or a server on 127.0.0.1:3306): {error}"
            );
            None
        }
    }
}

/// `url` with its database replaced by `database` (and `mariadb://` read as `mysql://`).
pub fn with_database(url: &str, database: &str) -> String {
    let rest = url
        .strip_prefix("mariadb://")
        .or_else(|| url.strip_prefix("mysql://"))
        .unwrap_or(url);
    let mut parsed = url::Url::parse(&format!("mysql://{rest}")).expect("a valid test URL");
    parsed.set_path(&format!("/{database}"));
    parsed.to_string()
}

/// A plain (non-TLS) connection for setting up and inspecting test data, outside any source.
pub async fn admin_conn(url: &str) -> Result<mysql_async::Conn, String> {
    let rest = url
        .strip_prefix("mariadb://")
        .or_else(|| url.strip_prefix("mysql://"))
        .unwrap_or(url);
    let parsed = url::Url::parse(&format!("mysql://{rest}")).map_err(|e| e.to_string())?;
    let database =
        Some(parsed.path().trim_start_matches('/').to_string()).filter(|d| !d.is_empty());
    let password = parsed
        .password()
        .map(str::to_string)
        .or_else(|| std::env::var("MYSQL_PWD").ok());
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(parsed.host_str().unwrap_or("127.0.0.1"))
        .tcp_port(parsed.port().unwrap_or(3306))
        .user(Some(parsed.username()).filter(|u| !u.is_empty()))
        .pass(password)
        .db_name(database)
        .prefer_socket(false);
    match tokio::time::timeout(Duration::from_secs(5), mysql_async::Conn::new(opts)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("no answer within 5 s".to_string()),
    }
}

/// A database of its own for one test, dropped by [`TestDb::drop`].
pub struct TestDb {
    /// The database name: `dwmon_t_<test>_<pid>_<n>`.
    pub name: String,
    /// The server URL pointing at this database.
    pub url: String,
    /// The admin connection (its current database is the server URL's, not this one).
    pub admin: mysql_async::Conn,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl TestDb {
    /// Creates the database and runs `setup` in it (statements separated by `;`). `None` when
    /// the MySQL tests are skipped (see [`test_url`]).
    ///
    /// # Panics
    /// When the setup SQL fails.
    pub async fn create(test: &str, setup: &str) -> Option<TestDb> {
        let base = test_url().await?;
        let name = format!(
            "dwmon_t_{test}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = admin_conn(&base)
            .await
            .unwrap_or_else(|e| panic!("admin connection to {base}: {e}"));
        admin
            .query_drop(format!(
                "DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name}"
            ))
            .await
            .unwrap_or_else(|e| panic!("creating database {name}: {e}"));
        let url = with_database(&base, &name);
        if !setup.trim().is_empty() {
            let mut conn = admin_conn(&url)
                .await
                .unwrap_or_else(|e| panic!("connecting to {name}: {e}"));
            conn.query_drop(setup)
                .await
                .unwrap_or_else(|e| panic!("setting up database {name}: {e}"));
            let _ = conn.disconnect().await;
        }
        Some(TestDb { name, url, admin })
    }

    /// Drops the database and everything in it.
    ///
    /// # Panics
    /// When the database cannot be dropped.
    pub async fn drop(mut self) {
        self.admin
            .query_drop(format!("DROP DATABASE {}", self.name))
            .await
            .unwrap_or_else(|e| panic!("dropping database {}: {e}", self.name));
        let _ = self.admin.disconnect().await;
    }

    /// `text` with `{db}` replaced by the database name.
    pub fn sql(&self, text: &str) -> String {
        text.replace("{db}", &self.name)
    }

    /// The server's connections whose current database is this one (the sources' own), as
    /// `(id, command, info)`.
    pub async fn connections(&mut self) -> Vec<(u64, String, Option<String>)> {
        self.admin
            .exec(
                "SELECT ID, COMMAND, INFO FROM information_schema.PROCESSLIST WHERE DB = ?",
                (self.name.clone(),),
            )
            .await
            .unwrap_or_else(|e| panic!("listing connections: {e}"))
    }

    /// Kills every connection of this test's sources, as a server restart would. Returns how
    /// many were killed.
    pub async fn kill_connections(&mut self) -> usize {
        let ids: Vec<u64> = self.connections().await.into_iter().map(|c| c.0).collect();
        for id in &ids {
            // A connection may end by itself meanwhile; that is fine.
            let _ = self.admin.query_drop(format!("KILL {id}")).await;
        }
        ids.len()
    }
}

/// Runs `query` as checker `orders` on `source`.
pub async fn fetch(
    getter: &impl RowGetter,
    source: &str,
    query: &str,
) -> Result<Fetched, SourceError> {
    let extra = serde_json::json!({});
    let request = FetchRequest {
        checker: "orders",
        query,
        source,
        extra: &extra,
    };
    getter.get_rows(&request).await
}
