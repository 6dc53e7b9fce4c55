//! Shared helpers for the PostgreSQL tests: finding the test server and giving each test its
//! own schema, so tests run in parallel without seeing each other's tables.

#![allow(dead_code)] // each test binary uses a different subset

use dwmon_core::{FetchRequest, Fetched, RowGetter, SourceError};
use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};

/// The server used when `DWMON_TEST_POSTGRES_URL` is not set.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The test server's URL, or `None` (after a visible notice) when the tests should be skipped.
///
/// - `DWMON_TEST_POSTGRES_URL` set: it is used, and an unreachable server fails the test.
/// - unset and `CI=true`: [`DEFAULT_URL`] is used, and an unreachable server fails the test.
/// - unset otherwise: [`DEFAULT_URL`] is tried; if unreachable the test prints
///   `SKIPPED: ...` to stderr and returns.
///
/// # Panics
/// When a server that must be reachable is not.
pub async fn test_url() -> Option<String> {
    let configured = std::env::var("DWMON_TEST_POSTGRES_URL")
        .ok()
        .filter(|url| !url.trim().is_empty());
    let in_ci = std::env::var("CI").is_ok_and(|ci| ci == "true");
    let (url, required) = match configured {
        Some(url) => (url, true),
        None => (DEFAULT_URL.to_string(), in_ci),
    };
    let reached = admin_client(&url).await.map_err(|error| {
        // tokio-postgres says "error connecting to server"; the cause says why.
        match std::error::Error::source(&error) {
            Some(cause) => format!("{error}: {cause}"),
            None => error.to_string(),
        }
    });
    match reached {
        Ok(_) => Some(url),
        Err(error) if required => panic!(
            "PostgreSQL tests need a server at {url} (DWMON_TEST_POSTGRES_URL{}): {error}",
            if in_ci { ", CI=true" } else { "" }
        ),
        Err(error) => {
            // Written to the stderr handle itself: the test harness captures eprintln!, and
            // this notice must be seen even when the test passes.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: PostgreSQL tests need DWMON_TEST_POSTGRES_URL=postgres://... (or a server on 127.0.0.1:5432): {error}"
            );
            None
        }
    }
}

/// A plain (non-TLS) client for setting up and inspecting test data, outside any source.
pub async fn admin_client(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    // The admin connection does not need TLS; sslmode values tokio-postgres does not know
    // (verify-*) are dropped before parsing.
    let without_verify = url
        .replace("sslmode=verify-full", "sslmode=disable")
        .replace("sslmode=verify-ca", "sslmode=disable");
    let mut config: tokio_postgres::Config = without_verify.parse()?;
    config.ssl_mode(tokio_postgres::config::SslMode::Disable);
    config.connect_timeout(std::time::Duration::from_secs(5));
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// A schema of its own for one test, dropped by [`TestSchema::drop`].
pub struct TestSchema {
    /// The schema (and application) name: `dwmon_t_<test>_<pid>_<n>`.
    pub name: String,
    /// The server URL with `application_name` set to the schema name, so the test can find
    /// its source's backends in `pg_stat_activity`.
    pub url: String,
    /// The admin client.
    pub admin: tokio_postgres::Client,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl TestSchema {
    /// Creates the schema and runs `setup` with it as the search path. `None` when the
    /// PostgreSQL tests are skipped (see [`test_url`]).
    ///
    /// # Panics
    /// When the setup SQL fails.
    pub async fn create(test: &str, setup: &str) -> Option<TestSchema> {
        let base = test_url().await?;
        let name = format!(
            "dwmon_t_{test}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let admin = admin_client(&base)
            .await
            .unwrap_or_else(|e| panic!("admin connection to {base}: {e}"));
        let sql = format!(
            "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}; SET search_path = {name}; {setup}"
        );
        admin
            .batch_execute(&sql)
            .await
            .unwrap_or_else(|e| panic!("setting up schema {name}: {e:?}"));
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}application_name={name}");
        Some(TestSchema { name, url, admin })
    }

    /// Drops the schema and everything in it.
    ///
    /// # Panics
    /// When the schema cannot be dropped.
    pub async fn drop(self) {
        self.admin
            .batch_execute(&format!("DROP SCHEMA {} CASCADE", self.name))
            .await
            .unwrap_or_else(|e| panic!("dropping schema {}: {e}", self.name));
    }

    /// `text` with `{s}` replaced by the schema name.
    pub fn sql(&self, text: &str) -> String {
        text.replace("{s}", &self.name)
    }

    /// Terminates every backend of this test's sources, waiting until they are gone.
    /// Returns how many were terminated.
    ///
    /// # Panics
    /// When the query fails.
    pub async fn terminate_backends(&self) -> i64 {
        let row = self
            .admin
            .query_one(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) \
                 FROM pg_stat_activity WHERE application_name = $1",
                &[&self.name],
            )
            .await
            .unwrap_or_else(|e| panic!("terminating backends: {e}"));
        row.get(0)
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
