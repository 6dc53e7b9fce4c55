//! `dwmon run --alerts` on a PostgreSQL store shared by two runners, end to end: runner `a`
//! is killed (`kill -9`) while its webhook request is on the wire; runner `b` takes the
//! checker over and re-sends that notification under the same idempotency key, once, and
//! announces nothing else. Skipped (with `SKIPPED:`) without a PostgreSQL test server.

mod common;
use common::*;

mod pg;
use pg::{server, Schema};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};

/// The requests received, and a signal for each new one.
type Log = Arc<(Mutex<Vec<(String, String)>>, Condvar)>;

/// A webhook receiver on loopback recording `(Idempotency-Key, kind)` of every POST. The
/// first request is recorded and never answered (its sender dies with it on the wire); the
/// others are answered 200.
struct Receiver {
    url: String,
    got: Log,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let url = format!("http://{}/hook", listener.local_addr().expect("address"));
        let got: Log = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let log = Arc::clone(&got);
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Some(request) = read_request(&stream) else {
                    continue;
                };
                let (list, arrived) = &*log;
                let first = {
                    let mut list = list.lock().expect("log");
                    list.push(request);
                    list.len() == 1
                };
                arrived.notify_all();
                if first {
                    held.push(stream);
                    continue;
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        });
        Receiver { url, got }
    }

    fn got(&self) -> Vec<(String, String)> {
        self.got.0.lock().expect("log").clone()
    }

    /// Waits for the first request (a minute at most: the runner sends it in its first cycle).
    fn wait_for_first(&self) {
        let (list, arrived) = &*self.got;
        let list = list.lock().expect("log");
        let (list, _) = arrived
            .wait_timeout_while(list, std::time::Duration::from_secs(60), |l| l.is_empty())
            .expect("log");
        assert!(!list.is_empty(), "runner a sent nothing");
    }
}

/// The `Idempotency-Key` header and the body's `kind` of one HTTP request.
fn read_request(stream: &TcpStream) -> Option<(String, String)> {
    let mut reader = BufReader::new(stream);
    let (mut length, mut key) = (0usize, String::new());
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().ok()?,
                "idempotency-key" => key = value.trim().to_string(),
                _ => {}
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let body: serde_json::Value = serde_json::from_slice(&body).ok()?;
    Some((key, body["kind"].as_str()?.to_string()))
}

#[test]
fn a_runner_killed_mid_send_is_replaced_and_the_alert_resent_under_its_key() {
    let Some(server) = server() else { return };
    let schema = Schema::new(&server, "alerts_kill");
    let store = schema.url(None);
    let receiver = Receiver::start();
    let ws = Workspace::new();
    // BAD every minute (no rows): one firing, no reminders.
    ws.write_checker(
        "orders",
        &format!(
            "__QUERY__\nSELECT key AS dwmon_unique_key, ts AS dwmon_timestamp FROM events\n\
             __REQUIREMENTS__\nCHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM1 MAXNUM9 \
             LOOKBACKSECONDS60\n__EXTRA__\n{{\"alert\": {{\"webhook\": \"{}\"}}}}\n",
            receiver.url
        ),
    );
    let alerts = ws.path().join("alerts.json");
    std::fs::write(&alerts, r#"{"repeat_seconds": 0}"#).expect("alerts config");
    let alerts = alerts.display().to_string();
    let (checkers, source) = (ws.checkers_arg(), ws.source_arg());
    let runner = |name: &str, now: i64| {
        let now = now.to_string();
        let mut command = dwmon();
        command.args([
            "run",
            "--checkers",
            &checkers,
            "--source",
            &source,
            "--store",
            &store,
            "--alerts",
            &alerts,
            "--runner",
            name,
            "--now",
            &now,
            "--json",
        ]);
        command
    };

    let mut a = runner("a", T0)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("runner a starts");
    receiver.wait_for_first();
    a.kill().expect("kill -9 runner a");
    let _ = a.wait();
    // a's leases run out (on the database's clock; set back here instead of waited for).
    pg::execute(
        &schema.url(None),
        "UPDATE dwmon_claims SET until = now() - interval '1 second';
         UPDATE dwmon_outbox SET lease_until = now() - interval '1 second';
         UPDATE dwmon_alert_outbox SET lease_until = now() - interval '1 second';",
    );
    let out = runner("b", T0 + 60)
        .args(["--cycles", "2", "--speed", "600"])
        .output()
        .expect("runner b runs");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let got = receiver.got();
    let left = pg::query(
        &schema.url(None),
        "SELECT idempotency_key FROM dwmon_alert_outbox",
    );
    assert_eq!(got.len(), 2, "sent, then re-sent once: {got:?}");
    assert_eq!(got[0], got[1], "re-sent under its key: {got:?}");
    assert_eq!(got[0].1, "firing", "{got:?}");
    assert!(left.is_empty(), "still pending: {left:?}");
}
