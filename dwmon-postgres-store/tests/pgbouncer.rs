//! The store conformance suite through PgBouncer in transaction-pooling mode (Debian package
//! `pgbouncer`), started by the test on a free loopback port: the store keeps no session
//! state, so consecutive transactions of one handle may run on different server connections.
//! Each case gets a PgBouncer database of its own whose server connections use a schema of
//! their own (`connect_query`), as PgBouncer 1.18 passes no `options` startup parameter.

mod common;

use async_trait::async_trait;
use dwmon_core::store_conformance::{self, StoreFactory};
use dwmon_core::StoreError;
use dwmon_postgres_store::{PostgresStore, PostgresStoreOptions};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// PgBouncer databases (one per conformance case, with room to spare).
const DATABASES: usize = 40;

struct Bouncer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    })
}

fn pgbouncer() -> Option<&'static str> {
    ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
}

/// Starts PgBouncer in front of `server` (host 127.0.0.1:5432, user postgres) with database
/// `sN` using schema `schemas[N]`.
fn start(binary: &str, schemas: &[String]) -> Result<Bouncer, Box<dyn std::error::Error>> {
    use std::os::unix::fs::PermissionsExt;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let dir = tempfile::tempdir()?;
    // PgBouncer refuses to run as root: it switches to `postgres`, which must read the file.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    let mut ini = String::from("[databases]\n");
    for (i, schema) in schemas.iter().enumerate() {
        ini.push_str(&format!(
            "s{i} = host=127.0.0.1 port=5432 dbname=test user=postgres \
             connect_query='SET search_path = {schema}'\n"
        ));
    }
    ini.push_str(&format!(
        "[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
         auth_type = any\npool_mode = transaction\ndefault_pool_size = 3\n\
         max_client_conn = 500\nlogfile =\npidfile =\n"
    ));
    let path = dir.path().join("pgbouncer.ini");
    std::fs::write(&path, ini)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
    let mut command = Command::new(binary);
    if running_as_root() {
        command.args(["-u", "postgres"]);
    }
    let child = command
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    Ok(Bouncer {
        child,
        port,
        _dir: dir,
    })
}

/// Waits (bounded) until PgBouncer accepts connections: a process starting, not a timing
/// assumption of the code under test.
async fn wait_ready(port: u16) -> Result<(), Box<dyn std::error::Error>> {
    let url = format!("postgres://postgres@127.0.0.1:{port}/s0");
    let mut last = None;
    for _ in 0..100 {
        match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
            Ok((client, connection)) => {
                tokio::spawn(connection);
                client.simple_query("SELECT 1").await?;
                return Ok(());
            }
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Err(format!("PgBouncer on port {port} never answered: {last:?}").into())
}

struct ThroughBouncer {
    port: u16,
    next: AtomicUsize,
}

#[async_trait]
impl StoreFactory for ThroughBouncer {
    type Store = PostgresStore;

    async fn create(&self) -> Result<Self::Store, StoreError> {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        assert!(
            n < DATABASES,
            "more conformance cases than PgBouncer databases"
        );
        let url = format!("postgres://postgres@127.0.0.1:{}/s{n}", self.port);
        PostgresStore::connect_with(&url, &options()).await
    }

    async fn reopen(&self, store: &Self::Store) -> Result<Self::Store, StoreError> {
        let options = options().with_owner(store.owner());
        PostgresStore::connect_with(store.location(), &options).await
    }
}

/// The store's options behind PgBouncer 1.18 in transaction mode: no named prepared statements
/// (it does not track them; a transaction may get a server connection without them).
fn options() -> PostgresStoreOptions {
    PostgresStoreOptions::default()
        .with_pool_size(4)
        .with_prepared_statements(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conformance_suite_passes_through_pgbouncer_in_transaction_mode(
) -> Result<(), Box<dyn std::error::Error>> {
    let Some(url) = common::server().await else {
        return Ok(());
    };
    let Some(binary) = pgbouncer() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true and pgbouncer is not installed (Debian package pgbouncer)"
        );
        eprintln!("skipped: pgbouncer is not installed");
        return Ok(());
    };
    let mut schemas = Vec::with_capacity(DATABASES);
    for _ in 0..DATABASES {
        schemas.push(common::fresh_schema(&url, "bouncer").await.1);
    }
    let bouncer = start(binary, &schemas)?;
    let result = async {
        wait_ready(bouncer.port).await?;
        let factory = ThroughBouncer {
            port: bouncer.port,
            next: AtomicUsize::new(0),
        };
        store_conformance::run_all(&factory).await?;
        Ok::<(), Box<dyn std::error::Error>>(())
    }
    .await;
    drop(bouncer);
    for schema in &schemas {
        common::drop_schema(&url, schema).await;
    }
    result
}
