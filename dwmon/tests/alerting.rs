//! Alerting end to end: `dwmon once --alerts`, `pause`/`unpause` and `status` on the real
//! binary, with a loopback HTTP server standing in for a webhook receiver. Every `once` is a
//! separate process, so alert states must survive restarts in the store file.

mod common;
use common::*;

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

const M: i64 = 60;

/// Every minute, 1 to 100 events in the last minute.
const EVERY_MINUTE: &str =
    "CHECKHOURS0-23 CHECKMINUTES0-59 WEEKDAYS WEEKENDS MINNUM1 MAXNUM100 LOOKBACKSECONDS60";

/// A loopback HTTP server that records each POSTed JSON body (with its `Idempotency-Key`
/// header) and answers 200. It records before answering, so once a `dwmon once` process has
/// exited, everything it sent is here.
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<(String, Value)>>>,
    /// While set, every request is answered 500 and not recorded (a receiver that is down).
    failing: Arc<AtomicBool>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let url = format!(
            "http://{}/hook",
            listener.local_addr().expect("local address")
        );
        let received = Arc::new(Mutex::new(Vec::new()));
        let failing = Arc::new(AtomicBool::new(false));
        let sink = Arc::clone(&received);
        let down = Arc::clone(&failing);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let request = read_request(&stream);
                let mut stream = stream;
                if down.load(Ordering::SeqCst) {
                    let _ = stream.write_all(
                        b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    continue;
                }
                if let Some(request) = request {
                    sink.lock().expect("receiver lock").push(request);
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        });
        Receiver {
            url,
            received,
            failing,
        }
    }

    /// Makes the receiver answer 500 (`true`) or 200 (`false`) from now on.
    fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// `(kind, idempotency key)` of everything received so far, in arrival order.
    fn kinds(&self) -> Vec<(String, String)> {
        self.received
            .lock()
            .expect("receiver lock")
            .iter()
            .map(|(key, body)| {
                (
                    body["kind"].as_str().unwrap_or_default().to_string(),
                    key.clone(),
                )
            })
            .collect()
    }

    fn bodies(&self) -> Vec<Value> {
        let received = self.received.lock().expect("receiver lock");
        received.iter().map(|(_, body)| body.clone()).collect()
    }
}

/// Reads one HTTP request: returns the `Idempotency-Key` header and the JSON body.
fn read_request(stream: &TcpStream) -> Option<(String, Value)> {
    let mut reader = BufReader::new(stream);
    let mut length = 0usize;
    let mut key = String::new();
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
    Some((key, serde_json::from_slice(&body).ok()?))
}

/// A workspace with an alerts config (`repeat_seconds` as given) and a checker `orders`
/// counting `events` with `requirement`, routed to the receiver's webhook.
fn setup(receiver: &Receiver, requirement: &str, repeat_seconds: u64) -> (Workspace, String) {
    let ws = Workspace::new();
    ws.write_checker(
        "orders",
        &format!(
            "__QUERY__\nSELECT key AS dwmon_unique_key, ts AS dwmon_timestamp FROM events\n\
             __REQUIREMENTS__\n{requirement}\n__EXTRA__\n{{\"alert\": {{\"webhook\": \"{}\"}}}}\n",
            receiver.url
        ),
    );
    let alerts = ws.path().join("alerts.json");
    std::fs::write(&alerts, format!("{{\"repeat_seconds\": {repeat_seconds}}}"))
        .expect("alerts config");
    (ws, alerts.display().to_string())
}

/// `dwmon once --json --alerts FILE` at `now`; asserts success and that stdout holds only
/// check records and error events (no notification JSON mixed in).
fn once(ws: &Workspace, alerts: &str, now: i64) -> Vec<Value> {
    let out = ws.once(now, &["--alerts", alerts]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let lines = json_lines(&out);
    for line in &lines {
        assert!(
            line.get("status").is_some() && line.get("idempotency_key").is_none(),
            "stdout carries only events: {line}"
        );
    }
    lines
}

/// Inserts one event into the window checked at `minute` (so that check is GOOD).
fn good_at(ws: &Workspace, minute: i64) {
    let key = format!("e{minute}");
    ws.insert(&[(key.as_str(), minute - 30)]);
}

fn kinds(list: &[(String, String)]) -> Vec<&str> {
    list.iter().map(|(kind, _)| kind.as_str()).collect()
}

#[test]
fn pages_once_reminds_and_resolves_once_across_restarts() {
    let receiver = Receiver::start();
    let (ws, alerts) = setup(&receiver, EVERY_MINUTE, 180);

    good_at(&ws, T0);
    assert_eq!(checks(&once(&ws, &alerts, T0))[0].2, "GOOD");
    assert!(receiver.kinds().is_empty());

    // BAD from T0+1min: one firing, then quiet until the repeat interval (3 minutes) is up.
    for minute in 1..=3 {
        assert_eq!(checks(&once(&ws, &alerts, T0 + minute * M))[0].2, "BAD");
    }
    assert_eq!(
        receiver.kinds(),
        [("firing".to_string(), format!("orders/0/{}/firing", T0 + M))]
    );
    once(&ws, &alerts, T0 + 4 * M);
    assert_eq!(kinds(&receiver.kinds()), ["firing", "reminder"]);
    assert_eq!(
        receiver.kinds()[1].1,
        format!("orders/0/{}/reminder", T0 + 4 * M)
    );

    // Recovery: exactly one resolution, and nothing more while it stays GOOD.
    good_at(&ws, T0 + 5 * M);
    good_at(&ws, T0 + 6 * M);
    assert_eq!(checks(&once(&ws, &alerts, T0 + 5 * M))[0].2, "GOOD");
    once(&ws, &alerts, T0 + 6 * M);
    // A repeated run of the same minute changes nothing.
    once(&ws, &alerts, T0 + 6 * M + 30);
    assert_eq!(kinds(&receiver.kinds()), ["firing", "reminder", "resolved"]);

    let bodies = receiver.bodies();
    let firing = &bodies[0];
    assert_eq!(firing["checker"], "orders");
    assert_eq!(firing["severity"], "critical");
    assert_eq!(firing["requirement_index"], 0);
    assert_eq!(firing["count"], 0);
    assert_eq!(
        (firing["min"].as_u64(), firing["max"].as_u64()),
        (Some(1), Some(100))
    );
    assert_eq!(firing["since"], T0 + M);
    assert_eq!(bodies[2]["incident_key"], "orders/0");
    assert_eq!(bodies[2]["minute"], T0 + 5 * M);
}

#[test]
fn pause_suppresses_and_unpause_resumes_notifications() {
    let receiver = Receiver::start();
    let (ws, alerts) = setup(&receiver, EVERY_MINUTE, 0);
    let store = ws.store();
    good_at(&ws, T0);
    once(&ws, &alerts, T0);

    let t = (T0 + 30).to_string();
    let out = run(&[
        "pause",
        "orders",
        "--store",
        &store,
        "--comment",
        "migration",
        "--now",
        &t,
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "orders: paused (migration)\n");

    // BAD while paused: checked and recorded, but nobody is told.
    assert_eq!(checks(&once(&ws, &alerts, T0 + M))[0].2, "BAD");
    assert!(receiver.kinds().is_empty());
    let t = (T0 + M + 10).to_string();
    let status = run(&["status", "--store", &store, "--now", &t]);
    let text = stdout(&status);
    assert!(
        text.lines().next().unwrap_or_default().contains("ALERTS"),
        "{text}"
    );
    assert!(text.contains("PAUSED #0:FIRING(critical)"), "{text}");
    assert!(text.contains("orders: paused (migration)"), "{text}");
    assert!(text.contains("not announced (paused)"), "{text}");

    // Unpaused: the next check announces what is true.
    let out = run(&["unpause", "orders", "--store", &store]);
    assert_eq!(stdout(&out), "orders: unpaused\n");
    once(&ws, &alerts, T0 + 2 * M);
    assert_eq!(kinds(&receiver.kinds()), ["firing"]);
    let out = run(&["unpause", "orders", "--store", &store]);
    assert_eq!(stdout(&out), "orders: was not paused\n");

    // A pause until T0+4min: the recovery at T0+3min is held back, and sent by the first
    // check after the pause expired by itself.
    let (t, until) = ((T0 + 2 * M + 30).to_string(), (T0 + 4 * M).to_string());
    let out = run(&[
        "pause", "orders", "--store", &store, "--until", &until, "--now", &t,
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "orders: paused until 2026-11-23 09:04 UTC\n");
    good_at(&ws, T0 + 3 * M);
    good_at(&ws, T0 + 4 * M);
    once(&ws, &alerts, T0 + 3 * M);
    assert_eq!(kinds(&receiver.kinds()), ["firing"]);
    let t = (T0 + 3 * M + 10).to_string();
    let json = json_lines(&run(&["status", "--store", &store, "--json", "--now", &t]));
    let paused = &json[0]["alerts"]["paused"];
    assert_eq!(
        (paused["active"].as_bool(), paused["until"].as_i64()),
        (Some(true), Some(T0 + 4 * M))
    );
    once(&ws, &alerts, T0 + 4 * M);
    assert_eq!(kinds(&receiver.kinds()), ["firing", "resolved"]);
    // The recovery notice says how many checks failed: T0+1min (paused) and T0+2min.
    assert_eq!(receiver.bodies()[1]["failed_checks"], 2);
}

#[test]
fn status_shows_firing_states_only_for_stores_with_alerting() {
    let receiver = Receiver::start();
    let (ws, alerts) = setup(&receiver, EVERY_MINUTE, 0);
    let store = ws.store();
    // Without --alerts: no alert tables, no ALERTS column, no "alerts" key.
    ws.once(T0, &[]);
    let text = stdout(&run(&["status", "--store", &store]));
    assert!(!text.contains("ALERTS"), "{text}");
    let json = json_lines(&run(&["status", "--store", &store, "--json"]));
    assert!(json[0].get("alerts").is_none(), "{:?}", json[0]);

    once(&ws, &alerts, T0 + M);
    assert_eq!(kinds(&receiver.kinds()), ["firing"]);
    let t = (T0 + M + 5).to_string();
    let text = stdout(&run(&["status", "--store", &store, "--now", &t]));
    let line = text
        .lines()
        .find(|l| l.starts_with("orders"))
        .unwrap_or_default();
    assert!(line.contains("#0:FIRING(critical)"), "{text}");
    assert!(
        text.contains("orders #0: FIRING (critical) since 2026-11-23 09:01 UTC"),
        "{text}"
    );
    let json = json_lines(&run(&["status", "--store", &store, "--json", "--now", &t]));
    let state = &json[0]["alerts"]["requirements"][0];
    assert_eq!(state["phase"], "FIRING");
    assert_eq!(state["announced"], true);
    assert_eq!(state["firing_since"], T0 + M);
    assert!(json[0]["alerts"]["paused"].is_null());
    assert_eq!(json[0]["alerts"]["undelivered_notifications"], 0);

    // The checker is deleted: its FIRING state is forgotten, not shown forever.
    std::fs::remove_file(ws.checkers().join("orders.dwmon")).expect("remove checker");
    ws.events_checker("other", EVERY_MINUTE);
    once(&ws, &alerts, T0 + 2 * M);
    let json = json_lines(&run(&["status", "--store", &store, "--json", "--now", &t]));
    let orders = json
        .iter()
        .find(|l| l["checker"] == "orders")
        .expect("orders");
    assert_eq!(orders["alerts"]["requirements"], serde_json::json!([]));
}

#[test]
fn failafter_and_recoverafter_damp_notifications() {
    let receiver = Receiver::start();
    let requirement = format!("{EVERY_MINUTE} SEVERITYWARNING FAILAFTER2 RECOVERAFTER2");
    let (ws, alerts) = setup(&receiver, &requirement, 0);
    // G B G B B G G G: one BAD is not enough, the second BAD in a row fires, the second GOOD
    // in a row resolves.
    let good = [true, false, true, false, false, true, true, true];
    for (minute, &is_good) in good.iter().enumerate() {
        let at = T0 + minute as i64 * M;
        if is_good {
            good_at(&ws, at);
        }
        let lines = once(&ws, &alerts, at);
        assert_eq!(lines.len(), 1);
        assert_eq!(
            lines[0]["requirement"],
            "CHECKHOURS0-23 CHECKMINUTES0-59 WEEKENDS WEEKDAYS MINNUM1 MAXNUM100 LOOKBACKSECONDS60 SEVERITYWARNING FAILAFTER2 RECOVERAFTER2"
        );
        let fired = receiver.kinds();
        match minute {
            0..=3 => assert!(fired.is_empty(), "minute {minute}: {fired:?}"),
            4 | 5 => assert_eq!(kinds(&fired), ["firing"], "minute {minute}"),
            _ => assert_eq!(kinds(&fired), ["firing", "resolved"], "minute {minute}"),
        }
    }
    let bodies = receiver.bodies();
    assert_eq!(bodies[0]["severity"], "warning");
    assert_eq!(
        bodies[0]["since"],
        T0 + 3 * M,
        "the streak began at the first BAD"
    );
    assert_eq!(bodies[0]["minute"], T0 + 4 * M);
    assert_eq!(bodies[1]["minute"], T0 + 6 * M);
}

#[test]
fn checkers_without_routes_alert_to_the_log_not_stdout() {
    let ws = Workspace::new();
    ws.events_checker("quiet", EVERY_MINUTE);
    let alerts = ws.path().join("alerts.json");
    std::fs::write(&alerts, "{}").expect("alerts config");
    let alerts = alerts.display().to_string();
    let out = ws.once(T0, &["--alerts", &alerts]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let lines = json_lines(&out);
    assert_eq!(
        checks(&lines),
        [("quiet".to_string(), T0, "BAD".to_string(), 0)]
    );
    assert!(lines[0].get("kind").is_none());
    let log = stderr(&out);
    assert!(log.contains("quiet") && log.contains("firing"), "{log}");
}

#[test]
fn usage_errors_are_one_line_and_exit_2() {
    let ws = Workspace::new();
    ws.events_checker("orders", EVERY_MINUTE);
    let store = ws.store();
    // No store yet.
    let out = run(&["pause", "orders", "--store", &store]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).starts_with("error: store "),
        "{}",
        stderr(&out)
    );

    ws.once(T0, &[]);
    let out = run(&["pause", "ordrs", "--store", &store]);
    assert_eq!(code(&out), 2);
    assert_eq!(
        stderr(&out),
        "error: the store has no checker named \"ordrs\" (known: orders); use --force to pause it anyway\n"
    );
    let (now, until) = (T0.to_string(), (T0 - 60).to_string());
    let out = run(&[
        "pause", "orders", "--store", &store, "--until", &until, "--now", &now,
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("is not in the future"),
        "{}",
        stderr(&out)
    );

    let missing = ws.path().join("missing.json").display().to_string();
    let out = ws.once(T0 + M, &["--alerts", &missing]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).starts_with("error: cannot read alerts config"),
        "{}",
        stderr(&out)
    );
    let bad = ws.path().join("bad.json");
    std::fs::write(&bad, "{\"repeat_secs\": 5}").expect("write");
    let out = ws.once(T0 + M, &["--alerts", &bad.display().to_string()]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("bad.json:1:"), "{}", stderr(&out));

    // --force pauses a checker the store does not know yet; status lists it.
    let out = run(&["pause", "newcomer", "--store", &store, "--force"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&run(&["status", "--store", &store]));
    assert!(
        text.lines()
            .any(|l| l.starts_with("newcomer") && l.contains("PAUSED")),
        "{text}"
    );
}

#[test]
fn run_pages_once_over_several_minutes() {
    let receiver = Receiver::start();
    let (ws, alerts) = setup(&receiver, EVERY_MINUTE, 0);
    let now = T0.to_string();
    // Ten simulated minutes per second, three cycles, no rows: BAD every minute.
    let out = ws.cycle(
        "run",
        &ws.source_arg(),
        &[
            "--json", "--now", &now, "--speed", "600", "--cycles", "3", "--alerts", &alerts,
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let lines = json_lines(&out);
    assert!(checks(&lines).len() >= 3, "{lines:?}");
    assert!(lines.iter().all(|l| l["status"] == "BAD"), "{lines:?}");
    assert_eq!(kinds(&receiver.kinds()), ["firing"]);
}

/// A webhook URL on loopback where nothing listens: every delivery is refused (transient).
fn refused_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let address = listener.local_addr().expect("local address");
    drop(listener);
    format!("http://{address}/hook")
}

#[test]
fn a_check_whose_alert_delivery_fails_is_printed_once() {
    let ws = Workspace::new();
    ws.write_checker(
        "orders",
        &format!(
            "__QUERY__\nSELECT key AS dwmon_unique_key, ts AS dwmon_timestamp FROM events\n\
             __REQUIREMENTS__\n{EVERY_MINUTE}\n__EXTRA__\n{{\"alert\": {{\"webhook\": \"{}\"}}}}\n",
            refused_url()
        ),
    );
    let alerts = ws.path().join("alerts.json");
    std::fs::write(&alerts, "{}").expect("alerts config");
    let alerts = alerts.display().to_string();
    // The firing of T0 cannot be delivered: the check stays in the outbox and is retried by
    // the next cycles, but its line was printed the first time and must not be printed again.
    let mut printed = Vec::new();
    for minute in 0..3 {
        printed.extend(checks(&once(&ws, &alerts, T0 + minute * M)));
    }
    let first = printed.iter().filter(|c| c.1 == T0).count();
    assert_eq!(first, 1, "{printed:?}");
    for minute in 1..3 {
        let n = printed.iter().filter(|c| c.1 == T0 + minute * M).count();
        assert!(n <= 1, "{printed:?}");
    }
}

#[test]
fn a_checker_file_that_stops_loading_alerts_where_its_checks_did() {
    let own = Receiver::start();
    let default = Receiver::start();
    let (ws, _) = setup(&own, EVERY_MINUTE, 0);
    let alerts = ws.path().join("default.json");
    std::fs::write(
        &alerts,
        format!(
            "{{\"default_alert\": {{\"webhook\": \"{}\"}}}}",
            default.url
        ),
    )
    .expect("alerts config");
    let alerts = alerts.display().to_string();
    for minute in 0..4 {
        good_at(&ws, T0 + minute * M);
    }
    once(&ws, &alerts, T0);

    // The file breaks: its source_error goes to the checker's own webhook, as its checks did.
    let good_text = std::fs::read_to_string(ws.checkers().join("orders.dwmon")).expect("read");
    ws.write_checker(
        "orders",
        "__QUERY__\nSELECT 1\n__REQUIREMENTS__\nNOT A REQUIREMENT\n",
    );
    once(&ws, &alerts, T0 + M);
    once(&ws, &alerts, T0 + 2 * M);
    // Fixed again: the recovery goes to the same place.
    ws.write_checker("orders", &good_text);
    once(&ws, &alerts, T0 + 3 * M);

    assert_eq!(kinds(&own.kinds()), ["source_error", "source_recovered"]);
    assert!(default.kinds().is_empty(), "{:?}", default.kinds());
}

/// Writes checker `orders` with `lines` as its requirements, routed to `receiver`.
fn orders_lines(ws: &Workspace, receiver: &Receiver, lines: &[&str]) {
    ws.write_checker(
        "orders",
        &format!(
            "__QUERY__\nSELECT key AS dwmon_unique_key, ts AS dwmon_timestamp FROM events\n\
             __REQUIREMENTS__\n{}\n__EXTRA__\n{{\"alert\": {{\"webhook\": \"{}\"}}}}\n",
            lines.join("\n"),
            receiver.url
        ),
    );
}

/// `(kind, incident_key)` of everything `receiver` got.
fn incidents(receiver: &Receiver) -> Vec<(String, String)> {
    receiver
        .bodies()
        .iter()
        .map(|b| {
            (
                b["kind"].as_str().unwrap_or_default().to_string(),
                b["incident_key"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn alerts_follow_their_line_when_lines_are_added_moved_or_removed() {
    // Needs 5 to 100 events a minute: BAD with the single event per minute good_at inserts.
    const FAILING: &str =
        "CHECKHOURS0-23 CHECKMINUTES0-59 WEEKDAYS WEEKENDS MINNUM5 MAXNUM100 LOOKBACKSECONDS60";
    // Always GOOD.
    const ANY: &str =
        "CHECKHOURS0-23 CHECKMINUTES0-59 WEEKDAYS WEEKENDS MINNUM0 MAXNUM100 LOOKBACKSECONDS60";
    let receiver = Receiver::start();
    let (ws, alerts) = setup(&receiver, EVERY_MINUTE, 0);
    for minute in 0..6 {
        good_at(&ws, T0 + minute * M);
    }
    orders_lines(&ws, &receiver, &[FAILING]);
    once(&ws, &alerts, T0);
    // A line above the failing one: it is line 1 now, its incident stays open as `orders/0`.
    orders_lines(&ws, &receiver, &[ANY, FAILING]);
    once(&ws, &alerts, T0 + M);
    // Reordered, then the line above removed again.
    orders_lines(&ws, &receiver, &[FAILING, EVERY_MINUTE, ANY]);
    once(&ws, &alerts, T0 + 2 * M);
    orders_lines(&ws, &receiver, &[EVERY_MINUTE, FAILING]);
    once(&ws, &alerts, T0 + 3 * M);
    let expected = [("firing".to_string(), "orders/0".to_string())];
    assert_eq!(incidents(&receiver), expected);
    // It recovers (now as line 1): resolved under the key it was opened with.
    for minute in 4..6 {
        ws.insert(
            &(0..5)
                .map(|i| (format!("r{minute}-{i}"), T0 + minute * M - 20))
                .collect::<Vec<_>>()
                .iter()
                .map(|(k, t)| (k.as_str(), *t))
                .collect::<Vec<_>>(),
        );
    }
    once(&ws, &alerts, T0 + 4 * M);
    assert_eq!(
        incidents(&receiver),
        [
            ("firing".to_string(), "orders/0".to_string()),
            ("resolved".to_string(), "orders/0".to_string())
        ]
    );
    // A new line's key follows today's rule (checker/index).
    orders_lines(
        &ws,
        &receiver,
        &[
            EVERY_MINUTE,
            FAILING,
            FAILING.replace("MINNUM5", "MINNUM50").as_str(),
        ],
    );
    once(&ws, &alerts, T0 + 5 * M);
    assert_eq!(
        incidents(&receiver).last(),
        Some(&("firing".to_string(), "orders/2".to_string()))
    );
}

#[test]
fn an_alert_key_names_the_incident_whatever_the_line_position() {
    const FAILING: &str = "CHECKHOURS0-23 CHECKMINUTES0-59 WEEKDAYS WEEKENDS MINNUM5 MAXNUM100 \
                           LOOKBACKSECONDS60 ALERTKEYpayments-hourly";
    let receiver = Receiver::start();
    let (ws, alerts) = setup(&receiver, EVERY_MINUTE, 0);
    orders_lines(&ws, &receiver, &[FAILING]);
    once(&ws, &alerts, T0);
    // Edited (another MAXNUM) and moved below a new line: still the same alert.
    orders_lines(
        &ws,
        &receiver,
        &[EVERY_MINUTE, &FAILING.replace("MAXNUM100", "MAXNUM90")],
    );
    once(&ws, &alerts, T0 + M);
    assert_eq!(
        incidents(&receiver),
        [
            ("firing".to_string(), "orders/payments-hourly".to_string()),
            ("firing".to_string(), "orders/0".to_string()),
        ],
        "the key's alert fired once; the new line 0 (no rows) fired on its own"
    );
}

/// A target that can never be delivered (here a webhook name the alerts config does not
/// define; a malformed URL is already refused when the routing is parsed) is skipped when the
/// checker is routed, never queued and retried forever: a checker left without a deliverable target alerts on the default
/// route. A configured URL that can never work stops `once` at start, naming the setting but
/// not its value.
#[test]
fn targets_that_can_never_work_are_rejected_not_retried_forever() {
    let default = Receiver::start();
    let ws = Workspace::new();
    ws.write_checker(
        "orders",
        &format!(
            "__QUERY__\nSELECT key AS dwmon_unique_key, ts AS dwmon_timestamp FROM events\n\
             __REQUIREMENTS__\n{EVERY_MINUTE}\n__EXTRA__\n\
             {{\"alert\": {{\"webhook\": \"no-such-hook\"}}}}\n"
        ),
    );
    let alerts = ws.path().join("alerts.json");
    std::fs::write(
        &alerts,
        format!(
            "{{\"default_alert\": {{\"webhook\": \"{}\"}}}}",
            default.url
        ),
    )
    .expect("alerts config");
    let alerts = alerts.display().to_string();
    let out = ws.once(T0, &["--alerts", &alerts]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("can never be delivered"),
        "{}",
        stderr(&out)
    );
    assert_eq!(kinds(&default.kinds()), ["firing"]);
    let status = run(&["status", "--json", "--store", &ws.store()]);
    let lines = json_lines(&status);
    assert_eq!(
        lines[0]["alerts"]["undelivered_notifications"], 0,
        "{lines:?}"
    );

    std::fs::write(
        &alerts,
        "{\"webhooks\": {\"ops\": \"ftp://user:s3cret@hooks.example.com/x\"}}",
    )
    .expect("alerts config");
    let out = ws.once(T0 + M, &["--alerts", &alerts]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("webhooks.ops"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("s3cret"), "{}", stderr(&out));
}

/// A checker alternating BAD and GOOD every minute (a firing, then a resolution, ...) routed
/// to two webhooks, one of which answers 500 for a long time.
fn two_webhooks(down: &Receiver, up: &Receiver) -> (Workspace, String) {
    let ws = Workspace::new();
    ws.write_checker(
        "orders",
        &format!(
            "__QUERY__\nSELECT key AS dwmon_unique_key, ts AS dwmon_timestamp FROM events\n\
             __REQUIREMENTS__\n{EVERY_MINUTE}\n__EXTRA__\n\
             {{\"alert\": {{\"webhook\": [\"{}\", \"{}\"]}}}}\n",
            down.url, up.url
        ),
    );
    let alerts = ws.path().join("alerts.json");
    std::fs::write(&alerts, "{\"repeat_seconds\": 0}").expect("alerts config");
    (ws, alerts.display().to_string())
}

/// The idempotency keys a receiver got, in arrival order.
fn keys(receiver: &Receiver) -> Vec<String> {
    receiver.kinds().into_iter().map(|(_, key)| key).collect()
}

/// Issue 15 item 2: a webhook answering 500 for 40 minutes held back stdout and the other
/// webhook of the checker. Each target progresses on its own: every check is printed once,
/// in its own cycle; the healthy webhook gets every notification in its cycle, in order; the
/// failing one gets all of them, in order, once it recovers (at the retry after the backoff).
#[test]
fn a_failing_webhook_holds_back_neither_stdout_nor_the_other_webhook() {
    let down = Receiver::start();
    let up = Receiver::start();
    let (ws, alerts) = two_webhooks(&down, &up);
    down.set_failing(true);
    let minutes = 40;
    let mut expected = Vec::new();
    for minute in 0..minutes {
        let at = T0 + minute * M;
        // Odd minutes GOOD, even ones BAD: a firing, then a resolution, every two minutes.
        if minute % 2 == 1 {
            good_at(&ws, at);
        }
        let printed = checks(&once(&ws, &alerts, at));
        let status = if minute % 2 == 1 { "GOOD" } else { "BAD" };
        assert_eq!(
            printed,
            [(
                "orders".to_string(),
                at,
                status.to_string(),
                u64::from(minute % 2 == 1)
            )],
            "minute {minute}: stdout prints this cycle's check, once"
        );
        expected.push(format!(
            "orders/0/{at}/{}",
            if minute % 2 == 1 {
                "resolved"
            } else {
                "firing"
            }
        ));
        assert_eq!(
            keys(&up),
            expected,
            "minute {minute}: the healthy webhook is on time"
        );
    }
    assert!(down.kinds().is_empty());

    // Recovered: the next retry (at most the longest backoff, an hour, later) brings the
    // failing webhook everything it missed, in order, and the healthy one nothing twice.
    down.set_failing(false);
    let later = T0 + (minutes + 60) * M;
    once(&ws, &alerts, later);
    let missed: Vec<String> = keys(&down).into_iter().take(expected.len()).collect();
    assert_eq!(missed, expected, "the failing webhook gets them in order");
    let up_keys = keys(&up);
    let unique: std::collections::BTreeSet<&String> = up_keys.iter().collect();
    assert_eq!(unique.len(), up_keys.len(), "nothing twice: {up_keys:?}");
    let status = run(&["status", "--json", "--store", &ws.store()]);
    let lines = json_lines(&status);
    assert_eq!(lines[0]["pending_deliveries"], 0, "{lines:?}");
}

/// Two checkers over `events`: `db` counts keys `db...`, `orders` counts keys `o...` and
/// names `db` as its parent; both page the receiver's webhook, without reminders.
fn parent_and_child(receiver: &Receiver) -> (Workspace, String) {
    let ws = Workspace::new();
    for (name, prefix, parent) in [("db", "db", ""), ("orders", "o", "\"parent\": \"db\", ")] {
        ws.write_checker(
            name,
            &format!(
                "__QUERY__\nSELECT key AS dwmon_unique_key, ts AS dwmon_timestamp FROM events \
                 WHERE key LIKE '{prefix}%'\n__REQUIREMENTS__\n{EVERY_MINUTE}\n__EXTRA__\n\
                 {{{parent}\"alert\": {{\"webhook\": \"{}\"}}}}\n",
                receiver.url
            ),
        );
    }
    let alerts = ws.path().join("alerts.json");
    std::fs::write(&alerts, "{\"repeat_seconds\": 0}").expect("alerts config");
    (ws, alerts.display().to_string())
}

/// Makes the check of `checker` (`db` or `orders`) at `minute` GOOD.
fn good(ws: &Workspace, checker: &str, minute: i64) {
    let key = format!("{}{minute}", if checker == "db" { "db" } else { "o" });
    ws.insert(&[(key.as_str(), minute - 30)]);
}

/// `checker kind +minutes` of every notification received (`at` relative to T0).
fn pages(receiver: &Receiver) -> Vec<String> {
    receiver
        .bodies()
        .iter()
        .map(|b| {
            let at = (b["at"].as_i64().unwrap_or_default() - T0) / M;
            format!(
                "{} {} +{at}",
                b["checker"].as_str().unwrap_or("?"),
                b["kind"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

#[test]
fn a_child_is_held_while_its_parent_is_bad_and_announced_when_it_recovers() {
    let receiver = Receiver::start();
    let (ws, alerts) = parent_and_child(&receiver);
    good(&ws, "db", T0);
    good(&ws, "orders", T0);
    once(&ws, &alerts, T0);
    // Both BAD for two minutes: only the parent pages.
    once(&ws, &alerts, T0 + M);
    let t = (T0 + M + 5).to_string();
    let status = run(&["status", "--store", &ws.store(), "--now", &t]);
    assert!(
        stdout(&status).contains("orders #0: FIRING (critical) since 2026-11-23 09:01 UTC, held: parent db is BAD or ERROR"),
        "{}",
        stdout(&status)
    );
    once(&ws, &alerts, T0 + 2 * M);
    assert_eq!(pages(&receiver), ["db firing +1"]);
    // The parent recovers, the child is still BAD: announced at that minute, once.
    good(&ws, "db", T0 + 3 * M);
    once(&ws, &alerts, T0 + 3 * M);
    assert_eq!(
        pages(&receiver),
        ["db firing +1", "orders firing +3", "db resolved +3"]
    );
    assert_eq!(receiver.bodies()[1]["since"], T0 + M);
    good(&ws, "db", T0 + 4 * M);
    good(&ws, "orders", T0 + 4 * M);
    once(&ws, &alerts, T0 + 4 * M);
    assert_eq!(pages(&receiver)[3..], ["orders resolved +4"]);
}

#[test]
fn a_child_that_paged_before_its_parent_went_bad_resolves_while_the_parent_is_bad() {
    let receiver = Receiver::start();
    let (ws, alerts) = parent_and_child(&receiver);
    good(&ws, "db", T0);
    once(&ws, &alerts, T0);
    once(&ws, &alerts, T0 + M);
    good(&ws, "orders", T0 + 2 * M);
    once(&ws, &alerts, T0 + 2 * M);
    assert_eq!(
        pages(&receiver),
        ["orders firing +0", "db firing +1", "orders resolved +2"]
    );
    good(&ws, "db", T0 + 3 * M);
    good(&ws, "orders", T0 + 3 * M);
    once(&ws, &alerts, T0 + 3 * M);
    assert_eq!(pages(&receiver)[3..], ["db resolved +3"]);
}

#[test]
fn an_unknown_parent_is_a_load_error_naming_the_file_and_line() {
    let receiver = Receiver::start();
    let (ws, alerts) = parent_and_child(&receiver);
    let text = std::fs::read_to_string(ws.checkers().join("orders.dwmon")).expect("read");
    ws.write_checker(
        "orders",
        &text.replace("\"parent\": \"db\"", "\"parent\": \"dbb\""),
    );
    let lines = once(&ws, &alerts, T0);
    let error = lines
        .iter()
        .find(|l| l["checker"] == "orders")
        .expect("an event for orders");
    assert_eq!(error["status"], "ERROR");
    let message = error["error"].as_str().unwrap_or_default();
    assert!(
        message.contains("orders.dwmon:6:2: \"parent\": no checker \"dbb\""),
        "{message}"
    );
}

#[test]
fn a_held_alert_survives_kill_9_and_is_announced_when_the_parent_recovers() {
    let receiver = Receiver::start();
    let (ws, alerts) = parent_and_child(&receiver);
    let (checkers, store, source, now) = (
        ws.checkers_arg(),
        ws.store(),
        ws.source_arg(),
        T0.to_string(),
    );
    // Ten simulated minutes per second; both checkers BAD every minute.
    let mut runner = dwmon()
        .args([
            "run",
            "--checkers",
            &checkers,
            "--store",
            &store,
            "--source",
            &source,
            "--json",
            "--now",
            &now,
            "--speed",
            "600",
            "--alerts",
            &alerts,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("dwmon run");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while pages(&receiver).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // A few more cycles, so the child's held state is written, then SIGKILL.
    std::thread::sleep(std::time::Duration::from_millis(300));
    runner.kill().expect("SIGKILL");
    let _ = runner.wait();
    assert_eq!(pages(&receiver), ["db firing +0"], "the child was held");
    let status = run(&["status", "--store", &ws.store()]);
    assert!(
        stdout(&status).contains("held: parent db is BAD or ERROR"),
        "{}",
        stdout(&status)
    );

    // A day later the parent is back, the child still BAD: announced then, once.
    let later = T0 + 86_400;
    good(&ws, "db", later);
    good(&ws, "db", later + M);
    once(&ws, &alerts, later);
    once(&ws, &alerts, later + M);
    let kinds: Vec<String> = pages(&receiver);
    assert_eq!(
        kinds,
        ["db firing +0", "orders firing +1440", "db resolved +1440"]
    );
    assert_eq!(receiver.bodies()[1]["since"], T0);
}
