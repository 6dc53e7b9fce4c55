//! `--source NAME=http` end to end: the real `dwmon` binary reads a checker's rows from a
//! loopback HTTP server started in the test.

mod common;
use common::*;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// A response: status line, extra headers, body.
type Reply = (&'static str, String, String);

/// Serves each request (one per connection) with `handler(target, base URL)` on a thread.
/// Returns the base URL and the `Authorization` header of each request.
fn serve_with(handler: fn(&str, &str) -> Reply) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let (recorded, served_base) = (seen.clone(), base.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let mut reader = BufReader::new(stream);
            let mut request_line = String::new();
            let _ = reader.read_line(&mut request_line);
            let mut authorization = String::new();
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
                    break;
                }
                if let Some(value) = header.strip_prefix("authorization:") {
                    authorization = value.trim().to_string();
                }
            }
            recorded.lock().unwrap().push(authorization);
            let target = request_line.split_whitespace().nth(1).unwrap_or_default();
            let (status, headers, body) = handler(target, &served_base);
            let mut stream = reader.into_inner();
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 connection: close\r\n{headers}\r\n{body}",
                body.len()
            );
        }
    });
    (base, seen)
}

/// `/events`: three rows 10, 20 and 30 s before T0 and one without a timestamp, in a
/// `{"data": [...]}` envelope, over two pages linked by `next`; 500 for anything else.
fn serve() -> (String, Arc<Mutex<Vec<String>>>) {
    serve_with(|target, _| match target {
        "/events" => (
            "200 OK",
            String::new(),
            format!(
                r#"{{"data": [{{"id": "k1", "at": {}}}, {{"id": "k2", "at": "{}"}}],
                    "next": "/events?page=2"}}"#,
                T0 - 10,
                T0 - 20
            ),
        ),
        "/events?page=2" => (
            "200 OK",
            String::new(),
            format!(
                r#"{{"data": [{{"id": 3, "at": {}}}, {{"id": "no-time"}}], "next": null}}"#,
                T0 - 30
            ),
        ),
        _ => (
            "500 Internal Server Error",
            String::new(),
            "database is down".to_string(),
        ),
    })
}

fn checker(path: &str) -> String {
    format!(
        "__QUERY__\nGET {path}\nAuthorization: Bearer ${{DWMON_TEST_API_TOKEN}}\n\nrows: $.data\n\
         key: id\ntimestamp: at\nnext: $.next\n__SOURCE__\napi\n__REQUIREMENTS__\n\
         CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM3 MAXNUM3 LOOKBACKSECONDS60\n"
    )
}

fn once(ws: &Workspace, source: &str, now: i64) -> std::process::Output {
    let (checkers, store, now) = (ws.checkers_arg(), ws.store(), now.to_string());
    dwmon()
        .env("DWMON_TEST_API_TOKEN", "t0ken-s3cret")
        .args(["once", "--checkers", &checkers, "--store", &store])
        .args(["--source", source, "--now", &now, "--json", "--fail-on-bad"])
        .output()
        .expect("the dwmon binary runs")
}

#[test]
fn once_reads_an_http_source_across_pages_and_reports_its_failures() {
    let (base, seen) = serve();
    let ws = Workspace::new();
    ws.write_checker("api_events", &checker(&format!("{base}/events")));
    let out = once(&ws, "api=http", T0);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let lines = json_lines(&out);
    assert_eq!(
        checks(&lines),
        vec![("api_events".into(), T0, "GOOD".into(), 3)]
    );
    // The row without a timestamp is rejected and reported, the check still made.
    let errors: Vec<_> = lines.iter().filter(|l| l["status"] == "ERROR").collect();
    assert_eq!(errors.len(), 1, "{lines:?}");
    let error = errors[0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("row 4: at is missing"), "{error}");
    assert_eq!(
        *seen.lock().unwrap(),
        ["Bearer t0ken-s3cret", "Bearer t0ken-s3cret"]
    );

    // A base URL, and a server error: an ERROR event naming the status, never the token.
    ws.write_checker(
        "api_events",
        &checker("/broken?key=${DWMON_TEST_API_TOKEN}"),
    );
    let out = once(&ws, &format!("api={base}"), T0 + 60);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["status"], "ERROR");
    let error = lines[0]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("HTTP 500 Internal Server Error: database is down"),
        "{error}"
    );
    assert!(error.contains("key=${DWMON_TEST_API_TOKEN}"), "{error}");
    assert!(!stdout(&out).contains("t0ken-s3cret"), "{}", stdout(&out));
    assert!(!stderr(&out).contains("t0ken-s3cret"), "{}", stderr(&out));
}

#[test]
fn an_http_base_url_with_a_password_is_an_operational_error() {
    let ws = Workspace::new();
    ws.write_checker("api_events", &checker("/events"));
    let out = once(&ws, "api=https://u:hunter2@api.example.com/", T0);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("error: --source api:"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("hunter2"), "{}", stderr(&out));
}

/// The GitHub example of `examples/sources`, pointed at a loopback server shaped like GitHub's
/// issues API: four pages of two issues linked by `Link` headers, of which it reads three.
#[test]
fn the_github_example_reads_three_pages_of_issues() {
    let (base, seen) = serve_with(|target, base| {
        let Some(query) = target.strip_prefix("/repos/OWNER/REPO/issues?") else {
            return ("404 Not Found", String::new(), "{}".into());
        };
        let page: i64 = query
            .split('&')
            .filter_map(|pair| pair.strip_prefix("page="))
            .next_back()
            .and_then(|p| p.parse().ok())
            .unwrap_or(1);
        // 17:00 on T0's Monday, minus one to eight hours.
        let check = T0 + 8 * 3600;
        let issues: Vec<String> = (0..2)
            .map(|i| {
                let created =
                    chrono::DateTime::from_timestamp(check - (2 * page + i - 1) * 3600, 0)
                        .expect("a time")
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                format!(
                    r#"{{"id": {}, "number": 7, "created_at": "{created}"}}"#,
                    page * 10 + i
                )
            })
            .collect();
        let first = query.split("&page=").next().unwrap_or_default();
        let link = if page < 4 {
            format!(
                "link: <{base}/repos/OWNER/REPO/issues?{first}&page={}>; rel=\"next\"\r\n",
                page + 1
            )
        } else {
            String::new()
        };
        ("200 OK", link, format!("[{}]", issues.join(",")))
    });
    let ws = Workspace::new();
    let example = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples/sources/http_github_issues.dwmon"),
    )
    .expect("the example");
    ws.write_checker(
        "http_github_issues",
        &example.replace("https://api.github.com", &base),
    );
    let (checkers, store) = (ws.checkers_arg(), ws.store());
    let now = (T0 + 8 * 3600).to_string();
    let out = dwmon()
        .env("GITHUB_TOKEN", "ghp_example")
        .args(["once", "--checkers", &checkers, "--store", &store])
        .args(["--source", "github=http", "--now", &now, "--json"])
        .output()
        .expect("the dwmon binary runs");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        checks(&json_lines(&out)),
        vec![("http_github_issues".into(), T0 + 8 * 3600, "GOOD".into(), 6)],
        "{}",
        stdout(&out)
    );
    assert_eq!(*seen.lock().unwrap(), ["Bearer ghp_example"; 3]);
}

#[test]
fn check_reports_a_bad_request_spec_at_its_file_line_and_column() {
    let ws = Workspace::new();
    ws.write_checker(
        "api_events",
        "\n__QUERY__\n\n  GET https://api.example.com/${TOKEN\nrows: $.items\n__SOURCE__\napi\n\
         __REQUIREMENTS__\nCHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM1 MAXNUM9 \
         LOOKBACKSECONDS60\n",
    );
    ws.write_checker(
        "api_more",
        "__QUERY__\nGET https://api.example.com/x\nnext: $.links.next\nmax-pages: lots\n\
         __SOURCE__\napi\n__REQUIREMENTS__\nCHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS \
         MINNUM1 MAXNUM9 LOOKBACKSECONDS60\n",
    );
    let checkers = ws.checkers_arg();
    let out = run(&["check", "--checkers", &checkers, "--source", "api=http"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let lines: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with("api_events.dwmon:4:31: __QUERY__ (HTTP request spec): `${` without"),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("api_more.dwmon:4:12: __QUERY__ (HTTP request spec): `max-pages:`"),
        "{lines:?}"
    );

    // Fixed, the same files pass.
    ws.write_checker(
        "api_events",
        "__QUERY__\nGET https://api.example.com/x\n__SOURCE__\napi\n__REQUIREMENTS__\n\
         CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM1 MAXNUM9 LOOKBACKSECONDS60\n",
    );
    std::fs::remove_file(ws.checkers().join("api_more.dwmon")).expect("remove");
    let out = run(&["check", "--checkers", &checkers, "--source", "api=http"]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
}

#[test]
fn http_source_options_are_checked_at_start() {
    let ws = Workspace::new();
    ws.write_checker("api_events", &checker("https://api.example.com/events"));
    let out = once(&ws, "api=http?timeout=soon", T0);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("error: --source api: invalid HTTP source URL")
            && stderr(&out).contains("timeout=soon is not a number of seconds"),
        "{}",
        stderr(&out)
    );
    // A server that never answers, with a short timeout: an ERROR event, quickly.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    ws.write_checker("api_events", &checker(&format!("http://{address}/events")));
    let started = std::time::Instant::now();
    let out = once(&ws, "api=http?timeout=0.5", T0);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let lines = json_lines(&out);
    assert_eq!(lines[0]["status"], "ERROR", "{lines:?}");
    let error = lines[0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("timed out after 500 ms"), "{error}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    drop(listener);
}
