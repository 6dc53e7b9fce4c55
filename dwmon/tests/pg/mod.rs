//! The PostgreSQL test server and a schema per test, for the `--store postgres://` tests.
#![allow(dead_code)]

pub mod cluster;

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

pub fn server() -> Option<String> {
    use std::io::Write;
    let configured = std::env::var("DWMON_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.trim().is_empty());
    let in_ci = std::env::var("CI").is_ok_and(|ci| ci == "true");
    if configured.is_some() || in_ci {
        return Some(configured.unwrap_or_else(|| DEFAULT_URL.to_string()));
    }
    let timeout = std::time::Duration::from_secs(2);
    let reachable = "127.0.0.1:5432"
        .parse()
        .is_ok_and(|addr| std::net::TcpStream::connect_timeout(&addr, timeout).is_ok());
    if reachable {
        return Some(DEFAULT_URL.to_string());
    }
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: the dwmon CLI PostgreSQL store test needs DWMON_TEST_POSTGRES_URL=postgres://..."
    );
    None
}

/// Runs `sql` on `url` (the test's own statements).
pub fn execute(url: &str, sql: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .expect("connect to the test server");
        tokio::spawn(connection);
        client.batch_execute(sql).await.expect(sql);
    });
}

/// A new schema dropped at the end of the test.
pub struct Schema {
    pub server: String,
    pub name: String,
}

impl Schema {
    pub fn new(server: &str, test: &str) -> Self {
        let name = format!("cli_{test}_{}", std::process::id());
        execute(
            server,
            &format!("DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"),
        );
        Schema {
            server: server.to_string(),
            name,
        }
    }

    /// The store URL: the server's, with `password` (if any) and this schema.
    pub fn url(&self, password: Option<&str>) -> String {
        let mut url = self.server.clone();
        if let Some(password) = password {
            url = url.replacen("postgres@", &format!("postgres:{password}@"), 1);
        }
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}options=-csearch_path%3D{}", self.name)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        execute(
            &self.server,
            &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name),
        );
    }
}

/// The rows of `sql` on `url`, each column as text (`None` for NULL).
pub fn query(url: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .expect("connect to the test server");
        tokio::spawn(connection);
        let messages = client.simple_query(sql).await.expect(sql);
        messages
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                    (0..row.len())
                        .map(|i| row.get(i).map(str::to_string))
                        .collect(),
                ),
                _ => None,
            })
            .collect()
    })
}
