//! `--source NAME=postgres://...` end to end, against the server named by
//! `DWMON_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`). Under
//! `CI=true`, or when the variable is set, an unreachable server fails the test; otherwise the
//! test prints a visible `SKIPPED:` notice and returns.

mod common;
use common::*;

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

fn server() -> Option<String> {
    use std::io::Write;
    let configured = std::env::var("DWMON_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.trim().is_empty());
    let in_ci = std::env::var("CI").is_ok_and(|ci| ci == "true");
    if configured.is_some() || in_ci {
        // Must be reachable: if it is not, the assertions below fail the test.
        return Some(configured.unwrap_or_else(|| DEFAULT_URL.to_string()));
    }
    let timeout = std::time::Duration::from_secs(2);
    let reachable = "127.0.0.1:5432"
        .parse()
        .is_ok_and(|addr| std::net::TcpStream::connect_timeout(&addr, timeout).is_ok());
    if reachable {
        return Some(DEFAULT_URL.to_string());
    }
    // Written to the stderr handle itself: the harness captures eprintln!.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: the dwmon CLI PostgreSQL test needs DWMON_TEST_POSTGRES_URL=postgres://... \
         (or a server on 127.0.0.1:5432)"
    );
    None
}

#[test]
fn once_reads_a_postgres_source_and_reports_an_unreachable_one() {
    let Some(url) = server() else { return };
    let ws = Workspace::new();
    // No table needed: three rows 10, 20 and 30 s before T0.
    ws.write_checker(
        "pg_rows",
        &format!(
            "__QUERY__\nSELECT 'k' || g AS dwmon_unique_key, {T0} - g * 10 AS dwmon_timestamp \
             FROM generate_series(1, 3) AS g\n__SOURCE__\nwarehouse\n__REQUIREMENTS__\n\
             CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM3 MAXNUM3 LOOKBACKSECONDS60\n"
        ),
    );
    let now = T0.to_string();
    let source = format!("warehouse={url}");
    let out = ws.cycle("once", &source, &["--now", &now, "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        checks(&json_lines(&out)),
        vec![("pg_rows".into(), T0, "GOOD".into(), 3)]
    );

    // A server that is not there: an ERROR event for the checker, not a failure of the run.
    let down = "warehouse=postgres://postgres@127.0.0.1:9/test?connect_timeout=2";
    let next = (T0 + 60).to_string();
    let out = ws.cycle("once", down, &["--now", &next, "--json", "--fail-on-bad"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["status"], "ERROR");
    assert_eq!(lines[0]["checker"], "pg_rows");
}

#[test]
fn an_invalid_postgres_url_is_an_operational_error() {
    let ws = Workspace::new();
    ws.events_checker(
        "events",
        "CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM0 MAXNUM1 LOOKBACKSECONDS60",
    );
    let out = ws.cycle("once", "warehouse=postgres://u@host:notaport/db", &[]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("error: --source warehouse:"),
        "{}",
        stderr(&out)
    );
}
