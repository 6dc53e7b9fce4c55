//! `--source NAME=mysql://...` end to end: `dwmon once` reads a table of the MariaDB / MySQL
//! server named by `DWMON_TEST_MYSQL_URL` (default `mysql://root@127.0.0.1:3306/test`). Under
//! `CI=true`, or when the variable is set, an unreachable server fails the test; otherwise the
//! test prints a visible `SKIPPED:` notice and returns.

mod common;
use common::*;
use mysql_async::prelude::Queryable;

const DEFAULT_URL: &str = "mysql://root@127.0.0.1:3306/test";

/// The server's URL, or `None` when the test is skipped.
fn server() -> Option<String> {
    use std::io::Write;
    let configured = std::env::var("DWMON_TEST_MYSQL_URL")
        .ok()
        .filter(|u| !u.trim().is_empty());
    let in_ci = std::env::var("CI").is_ok_and(|ci| ci == "true");
    if configured.is_some() || in_ci {
        // Must be reachable: if it is not, setting up the table fails the test.
        return Some(configured.unwrap_or_else(|| DEFAULT_URL.to_string()));
    }
    let timeout = std::time::Duration::from_secs(2);
    let reachable = "127.0.0.1:3306"
        .parse()
        .is_ok_and(|addr| std::net::TcpStream::connect_timeout(&addr, timeout).is_ok());
    if reachable {
        return Some(DEFAULT_URL.to_string());
    }
    // Written to the stderr handle itself: the harness captures eprintln!.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: the dwmon CLI MySQL test needs DWMON_TEST_MYSQL_URL=mysql://... \
         (or a server on 127.0.0.1:3306)"
    );
    None
}

/// `url` pointing at `database` instead of its own.
fn with_database(url: &str, database: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let query = tail.find('?').map_or("", |at| &tail[at..]);
    format!("{scheme}://{authority}/{database}{query}")
}

/// Runs `sql` on the server (`database` may be empty: none).
fn admin(url: &str, sql: &str) {
    let url = url.replacen("mariadb://", "mysql://", 1);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let opts =
            mysql_async::Opts::from_url(&url).unwrap_or_else(|e| panic!("test URL {url}: {e}"));
        let opts = mysql_async::OptsBuilder::from_opts(opts).prefer_socket(false);
        let mut conn = mysql_async::Conn::new(opts)
            .await
            .unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
        conn.query_drop(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let _ = conn.disconnect().await;
    });
}

fn datetime(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .expect("a valid instant")
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

#[test]
fn once_reads_a_mysql_table_and_reports_an_unreachable_server() {
    let Some(url) = server() else { return };
    let database = format!("dwmon_t_cli_{}", std::process::id());
    admin(
        &with_database(&url, ""),
        &format!("DROP DATABASE IF EXISTS {database}; CREATE DATABASE {database}"),
    );
    let db_url = with_database(&url, &database);
    // Three executions 10, 20 and 30 s before T0 (DATETIME, taken as UTC), one without a time.
    admin(
        &db_url,
        &format!(
            "CREATE TABLE model_executions (execution_id VARCHAR(36) PRIMARY KEY, ts DATETIME);
             INSERT INTO model_executions VALUES
               ('e1', '{}'), ('e2', '{}'), ('e3', '{}'), ('e4', NULL)",
            datetime(T0 - 10),
            datetime(T0 - 20),
            datetime(T0 - 30)
        ),
    );

    let ws = Workspace::new();
    ws.write_checker(
        "executions",
        "__QUERY__\nSELECT execution_id AS dwmon_unique_key, ts AS dwmon_timestamp \
         FROM model_executions ORDER BY dwmon_timestamp DESC LIMIT 10000\n__SOURCE__\nshop\n\
         __REQUIREMENTS__\nCHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM3 MAXNUM3 LOOKBACKSECONDS60\n",
    );
    let now = T0.to_string();
    let out = ws.cycle(
        "once",
        &format!("shop={db_url}"),
        &["--now", &now, "--json"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let lines = json_lines(&out);
    assert_eq!(
        checks(&lines),
        vec![("executions".into(), T0, "GOOD".into(), 3)]
    );
    // The row without a timestamp is rejected, counted and reported.
    let reported = lines
        .iter()
        .any(|l| l["status"] == "ERROR" && l.to_string().contains("dwmon_timestamp is NULL"));
    assert!(reported, "{lines:?}");

    // A server that is not there (mariadb:// works the same): an ERROR event for the checker,
    // not a failure of the run, and the password is not shown.
    let down = "shop=mariadb://root:hunter2@127.0.0.1:9/test";
    let next = (T0 + 60).to_string();
    let out = ws.cycle("once", down, &["--now", &next, "--json", "--fail-on-bad"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["status"], "ERROR");
    assert_eq!(lines[0]["checker"], "executions");
    assert!(!stdout(&out).contains("hunter2") && !stderr(&out).contains("hunter2"));

    // The same source from a config file, its URL from the environment: `check --connect`
    // probes it, and one that is down is a finding, without the password.
    let config = ws.path().join("dwmon.toml");
    let text = "checkers = \"checkers\"\nstore = \"store.sqlite\"\n\
                [sources]\nshop = \"${DWMON_TEST_SHOP_URL}\"\n";
    std::fs::write(&config, text).expect("write config");
    let config = config.display().to_string();
    let check = |shop_url: &str| {
        dwmon()
            .env("DWMON_TEST_SHOP_URL", shop_url)
            .args(["--config", &config, "check", "--connect"])
            .output()
            .expect("dwmon runs")
    };
    let out = check(&db_url);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(
        // The probe query, not a checker's (that would say "answers the query of ...").
        stdout(&out)
            .lines()
            .any(|l| l.trim_end().ends_with("source shop: answers")),
        "{}",
        stdout(&out)
    );
    let out = check("mysql://root:hunter2@127.0.0.1:9/test");
    assert_eq!(code(&out), 1, "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("shop"), "{}", stdout(&out));
    assert!(!stdout(&out).contains("hunter2") && !stderr(&out).contains("hunter2"));

    admin(
        &with_database(&url, ""),
        &format!("DROP DATABASE {database}"),
    );
}

#[test]
fn an_invalid_mysql_url_is_an_operational_error() {
    let ws = Workspace::new();
    ws.events_checker(
        "events",
        "CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM0 MAXNUM1 LOOKBACKSECONDS60",
    );
    let out = ws.cycle("once", "shop=mysql://u:hunter2@host:notaport/db", &[]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("error: --source shop:"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("hunter2"), "{}", stderr(&out));
}
