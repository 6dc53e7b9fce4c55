//! Issue 11, "Alert notifications stay one per streak across runners": two alert handlers
//! (two runners) on one PostgreSQL store, sending to a real webhook receiver on loopback that
//! counts what it gets. Each streak's firing and resolved, and each reminder, arrive once,
//! whichever runner judges the checks and however their work overlaps; a runner killed while
//! sending is replaced by the other, which re-sends under the same idempotency key.

mod common;

use dwmon_alert::{AlertHandler, AlertsConfig, ChannelKind, Channels, Routes, Target};
use dwmon_core::alert_state::AlertStateStore;
use dwmon_core::{CheckRecord, Event, Status};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// One minute a requirement is BAD below 1 and GOOD at 1 or more, alerting at the first BAD.
const REQUIREMENT: &str =
    "CHECKHOURS0-23 CHECKMINUTES0-59 WEEKDAYS MINNUM1 MAXNUM9 LOOKBACKSECONDS60";

/// A webhook receiver on loopback: records `(idempotency key, kind)` of every POST. After
/// [`Receiver::hold`], the next request is recorded at once but answered only on
/// [`Receiver::release`] (a send in flight); the others are answered at once.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<(String, String)>>>,
    arrived: Arc<Notify>,
    hold_next: Arc<AtomicBool>,
    hold: watch::Sender<bool>,
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let url = format!("http://{}/hook", listener.local_addr().expect("address"));
        let got = Arc::new(Mutex::new(Vec::new()));
        let arrived = Arc::new(Notify::new());
        let (hold, held) = watch::channel(false);
        let hold_next = Arc::new(AtomicBool::new(false));
        let (log, told, next) = (got.clone(), arrived.clone(), hold_next.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (log, told, next) = (log.clone(), told.clone(), next.clone());
                let mut held = held.clone();
                tokio::spawn(async move {
                    let Some((key, kind)) = read_request(&mut stream).await else {
                        return;
                    };
                    let wait = next.swap(false, Ordering::SeqCst);
                    log.lock().expect("log").push((key, kind));
                    told.notify_waiters();
                    if wait {
                        let _ = held.wait_for(|hold| !hold).await;
                    }
                    let _ = stream
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        )
                        .await;
                });
            }
        });
        Receiver {
            url,
            got,
            arrived,
            hold_next,
            hold,
        }
    }

    fn hold(&self) {
        self.hold.send_replace(true);
        self.hold_next.store(true, Ordering::SeqCst);
    }

    fn release(&self) {
        self.hold.send_replace(false);
    }

    fn got(&self) -> Vec<(String, String)> {
        self.got.lock().expect("log").clone()
    }

    /// Waits until `n` requests have arrived.
    async fn wait_for(&self, n: usize) {
        loop {
            let arrived = self.arrived.notified();
            if self.got().len() >= n {
                return;
            }
            arrived.await;
        }
    }
}

/// The idempotency key and the notification's kind of one HTTP request.
async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<(String, String)> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
    let header = |name: &str| {
        head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    };
    let length: usize = header("content-length")?.parse().ok()?;
    while buffer.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    let body: serde_json::Value =
        serde_json::from_slice(&buffer[head_end..head_end + length]).ok()?;
    let kind = body.get("kind")?.as_str()?.to_string();
    Some((header("idempotency-key")?, kind))
}

/// A runner's alert handler on `store`, sending every notification to `receiver`.
fn handler(
    store: dwmon_postgres_store::PostgresStore,
    receiver: &Receiver,
    repeat_seconds: u64,
) -> Result<Arc<AlertHandler>, Box<dyn std::error::Error>> {
    let config = AlertsConfig::parse("alerts.json", "{}", &|_| None)?;
    let handler = AlertHandler::new(Arc::new(store), Channels::from_config(&config)?)
        .with_default_routes(Routes {
            targets: vec![Target::new(ChannelKind::Webhook, receiver.url.clone())],
            repeat_seconds: None,
        })
        .with_repeat_seconds(repeat_seconds);
    Ok(Arc::new(handler))
}

/// The check of `orders` at `minute` with `count` rows.
fn check(minute: i64, count: u64) -> Event {
    Event::Check(CheckRecord {
        checker: "orders".into(),
        requirement_index: 0,
        requirement: REQUIREMENT.into(),
        minute,
        minute_local: format!("minute {minute}"),
        timezone: "UTC".into(),
        lookback_seconds: 60,
        count,
        min: 1,
        max: 9,
        status: if count >= 1 {
            Status::Good
        } else {
            Status::Bad
        },
        extra: serde_json::json!({}),
        monitor: None,
        runs: None,
    })
}

/// Each `(key, kind)` the receiver got, with how many times.
fn tally(got: &[(String, String)]) -> Vec<(String, String, usize)> {
    let mut counted: Vec<(String, String, usize)> = Vec::new();
    for (key, kind) in got {
        match counted.iter_mut().find(|(k, _, _)| k == key) {
            Some(entry) => entry.2 += 1,
            None => counted.push((key.clone(), kind.clone(), 1)),
        }
    }
    counted
}

/// Runner one is sending the firing (the receiver holds its request) when runner two judges
/// the checker's next check: two must not send that firing too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_one_runner_is_sending_is_not_sent_by_another() -> TestResult {
    let Some(url) = common::server().await else {
        return Ok(());
    };
    let (schema_url, schema) = common::fresh_schema(&url, "alerts_busy").await;
    let receiver = Receiver::start().await;
    let one = handler(common::store(&schema_url, "one", 120).await, &receiver, 0)?;
    let two = handler(common::store(&schema_url, "two", 120).await, &receiver, 0)?;

    receiver.hold();
    let sending = tokio::spawn({
        let one = one.clone();
        async move { one.handle_event(&check(60, 0)).await }
    });
    receiver.wait_for(1).await;
    receiver.release_after_next(&two, check(120, 0)).await?;
    sending.await??;
    let got = receiver.got();
    common::drop_schema(&url, &schema).await;
    assert_eq!(
        tally(&got),
        [("orders/0/60/firing".to_string(), "firing".to_string(), 1)],
        "{got:?}"
    );
    Ok(())
}

impl Receiver {
    /// Lets `handler` judge `event` while the held request is in flight, then answers it.
    async fn release_after_next(&self, handler: &AlertHandler, event: Event) -> TestResult {
        let outcome = handler.handle_event(&event).await;
        self.release();
        outcome?;
        Ok(())
    }
}

/// While runner one sends the firing, runner two judges the recovery: two leaves its
/// resolved to one (which holds the checker's notifications), and one sends it right after
/// the firing, in order, without waiting for another check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_enqueued_during_another_runners_send_goes_out_with_it() -> TestResult {
    let Some(url) = common::server().await else {
        return Ok(());
    };
    let (schema_url, schema) = common::fresh_schema(&url, "alerts_after").await;
    let receiver = Receiver::start().await;
    let one = handler(common::store(&schema_url, "one", 120).await, &receiver, 0)?;
    let two = handler(common::store(&schema_url, "two", 120).await, &receiver, 0)?;

    receiver.hold();
    let sending = tokio::spawn({
        let one = one.clone();
        async move { one.handle_event(&check(60, 0)).await }
    });
    receiver.wait_for(1).await;
    let outcome = two.handle_event(&check(120, 5)).await;
    let during = receiver.got().len();
    receiver.release();
    sending.await??;
    let got = receiver.got();
    let pending = one.store().overview().await?.pending;
    common::drop_schema(&url, &schema).await;
    let decided = outcome?;
    assert_eq!(decided.decided.len(), 1, "two decided the resolved");
    assert!(decided.delivered.is_empty(), "and left it to one");
    assert_eq!(during, 1, "nothing sent beside one's firing");
    assert_eq!(
        got,
        [
            ("orders/0/60/firing".to_string(), "firing".to_string()),
            ("orders/0/120/resolved".to_string(), "resolved".to_string()),
        ]
    );
    assert!(pending.is_empty(), "{pending:?}");
    Ok(())
}

/// Both runners judge every check of several streaks at the same time (as two runners
/// delivering one checker's checks from the outbox would): each firing, reminder and
/// resolved arrives once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runners_judging_the_same_checks_notify_once_per_streak() -> TestResult {
    let Some(url) = common::server().await else {
        return Ok(());
    };
    let (schema_url, schema) = common::fresh_schema(&url, "alerts_twice").await;
    let receiver = Receiver::start().await;
    // A reminder every 3 minutes of a streak.
    let one = handler(common::store(&schema_url, "one", 120).await, &receiver, 180)?;
    let two = handler(common::store(&schema_url, "two", 120).await, &receiver, 180)?;
    let mut expected = Vec::new();
    let mut minute = 0;
    for streak in 0..6 {
        let bad = 4 + streak % 3;
        for i in 0..bad {
            minute += 60;
            let event = check(minute, 0);
            let (a, b) = tokio::join!(one.handle_event(&event), two.handle_event(&event));
            a?;
            b?;
            if i == 0 {
                expected.push(format!("orders/0/{minute}/firing"));
            } else if i % 3 == 0 {
                expected.push(format!("orders/0/{minute}/reminder"));
            }
        }
        minute += 60;
        let event = check(minute, 5);
        let (a, b) = tokio::join!(one.handle_event(&event), two.handle_event(&event));
        a?;
        b?;
        expected.push(format!("orders/0/{minute}/resolved"));
    }
    let got = receiver.got();
    let pending = one.store().overview().await?.pending;
    common::drop_schema(&url, &schema).await;
    let counted = tally(&got);
    let twice: Vec<_> = counted.iter().filter(|(_, _, n)| *n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    let keys: Vec<&String> = counted.iter().map(|(k, _, _)| k).collect();
    assert_eq!(keys, expected.iter().collect::<Vec<_>>());
    assert!(pending.is_empty(), "{pending:?}");
    Ok(())
}

/// Runner one dies while its firing is on the wire: nothing is lost. Runner two sends
/// nothing of it while one's lease holds, and once the lease ended re-sends it under the
/// same key ([`AlertHandler::retry_orphaned`]).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_killed_while_sending_is_replaced_under_the_same_key() -> TestResult {
    let Some(url) = common::server().await else {
        return Ok(());
    };
    let (schema_url, schema) = common::fresh_schema(&url, "alerts_killed").await;
    let receiver = Receiver::start().await;
    let one = handler(common::store(&schema_url, "one", 120).await, &receiver, 0)?;
    let two = handler(common::store(&schema_url, "two", 120).await, &receiver, 0)?;

    receiver.hold();
    let sending = tokio::spawn({
        let one = one.clone();
        async move { one.handle_event(&check(60, 0)).await }
    });
    receiver.wait_for(1).await;
    sending.abort();
    let _ = sending.await;
    receiver.release();
    // One's lease still holds: two leaves the firing to it.
    two.handle_event(&check(120, 0)).await?;
    assert_eq!(receiver.got().len(), 1, "{:?}", receiver.got());
    // The lease runs out (on the database's clock; here set back instead of waited for).
    common::admin(&url)
        .await
        .batch_execute(&format!(
            "UPDATE {schema}.dwmon_alert_outbox SET lease_until = now() - interval '1 second'"
        ))
        .await?;
    // Two re-sends it at its next sweep for orphans, not waiting for the checker's next
    // check (a daily checker's would be a day later); that check then sends nothing more.
    let resent = two.retry_orphaned().await?;
    two.handle_event(&check(180, 0)).await?;
    let got = receiver.got();
    let pending = two.store().overview().await?.pending;
    assert_eq!(resent.len(), 1, "{resent:?}");
    common::drop_schema(&url, &schema).await;
    let key = "orders/0/60/firing".to_string();
    assert_eq!(
        got,
        [(key.clone(), "firing".into()), (key, "firing".into())],
        "sent once, re-sent once under its key"
    );
    assert!(pending.is_empty(), "{pending:?}");
    Ok(())
}

/// Forgetting the states of removed checkers after a reload is maintenance one runner does
/// (`maintenance/alert-prune` in `dwmon_claims`): the other runner only moves states, and
/// takes the task over once the first one's lease ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_runner_prunes_the_alert_states_of_removed_checkers() -> TestResult {
    use dwmon_alert::handler::Reload;
    use std::collections::BTreeMap;
    let Some(url) = common::server().await else {
        return Ok(());
    };
    let (schema_url, schema) = common::fresh_schema(&url, "alerts_prune").await;
    let receiver = Receiver::start().await;
    let one = handler(common::store(&schema_url, "one", 120).await, &receiver, 0)?;
    let two = handler(common::store(&schema_url, "two", 120).await, &receiver, 0)?;
    // A state for `orders` (a firing) to forget.
    one.handle_event(&check(60, 0)).await?;
    let only_billing = || Reload {
        lines: BTreeMap::from([("billing".to_string(), vec![REQUIREMENT.to_string()])]),
        known: BTreeMap::from([("billing".to_string(), 1)]),
    };
    let states = |h: &AlertHandler| {
        let store = h.store().clone();
        async move { store.alert_states("orders").await.map(|s| s.len()) }
    };
    // `orders` was removed; two reloads first and takes the task.
    two.lines_loaded(only_billing());
    assert_eq!(two.apply_reload().await?, (0, 1));
    assert_eq!(states(&one).await?, 0);
    // `orders` is back and fires again; removed again: one may not prune while two holds it.
    one.handle_event(&check(120, 0)).await?;
    one.lines_loaded(only_billing());
    assert_eq!(one.apply_reload().await?, (0, 0));
    assert_eq!(states(&one).await?, 1, "one pruned while two held the task");
    // Two's lease ends (on the database's clock; set back here, not waited for): one takes
    // the task over.
    common::admin(&url)
        .await
        .batch_execute(&format!(
            "UPDATE {schema}.dwmon_claims SET until = now() - interval '1 second'
             WHERE checker = 'maintenance/alert-prune'"
        ))
        .await?;
    one.lines_loaded(only_billing());
    let pruned = one.apply_reload().await?;
    let owner = common::admin(&url)
        .await
        .query_one(
            &format!(
                "SELECT owner FROM {schema}.dwmon_claims WHERE checker = 'maintenance/alert-prune'"
            ),
            &[],
        )
        .await?
        .get::<_, String>(0);
    common::drop_schema(&url, &schema).await;
    assert_eq!(pruned, (0, 1));
    assert_eq!(owner, "one");
    Ok(())
}
