//! `/metrics` over a real loopback socket: a real engine cycle over a `MemoryStore`, the
//! runner statistics it publishes, and `promtool check metrics` on the answer.

mod support;

use dwmon_alert::ChannelKind;
use dwmon_core::testutil::{
    checker, every_minute, record_checks, RecordingHandler, ScriptedSource, Step,
};
use dwmon_core::{Engine, MemoryStore, Row, SourceError, Store, StoreView};
use dwmon_server::{metrics, RunnerStats, ServerBuilder};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// A notifier that always answers the same: `Ok`, or an error, permanent when `true`.
struct Answering(Result<(), bool>);

#[async_trait::async_trait]
impl dwmon_alert::Notifier for Answering {
    async fn notify(
        &self,
        _: &dwmon_alert::Notification,
        address: &str,
    ) -> Result<(), dwmon_alert::ChannelError> {
        match self.0 {
            Ok(()) => Ok(()),
            Err(true) => Err(dwmon_alert::ChannelError::permanent(
                ChannelKind::Email,
                address,
                "550 no such mailbox",
            )),
            Err(false) => Err(dwmon_alert::ChannelError::new(
                ChannelKind::Slack,
                address,
                "503 try later",
            )),
        }
    }
}

/// 2023-11-14 22:13:00 UTC, a minute boundary.
const T0: i64 = 1_700_000_000 - 1_700_000_000 % 60 + 60;

struct Fixture {
    clock: Arc<AtomicI64>,
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Fixture {
    async fn metrics(&self) -> (u16, String, String) {
        let answer = reqwest::get(format!("{}/metrics", self.url)).await.unwrap();
        let status = answer.status().as_u16();
        let content_type = answer
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        (status, content_type, answer.text().await.unwrap())
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            stop.send(()).unwrap();
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }
}

/// One cycle at `T0 + 5` over three checkers: `orders` GOOD (1 row, 1..10), `payments` BAD
/// (0 rows, 5..100, source `warehouse`), `broken` failing to fetch (source `warehouse`). The
/// handler fails, so the two records stay in the outbox.
async fn fixture() -> Fixture {
    let source = Arc::new(ScriptedSource::new());
    let store = Arc::new(MemoryStore::new());
    let handler = Arc::new(RecordingHandler::new());
    handler.fail_next(100);
    let mut payments = checker("payments", vec![every_minute(5, 100, 60)]);
    payments.source = "warehouse".into();
    let mut broken = checker("broken", vec![every_minute(0, 10, 60)]);
    broken.source = "warehouse".into();
    let engine = Engine::new(source.clone(), store.clone(), handler).with_checkers(vec![
        checker("orders", vec![every_minute(1, 10, 60)]),
        payments,
        broken,
    ]);
    source.set_rows("orders", vec![Row::new("o1", T0 - 30)]);
    source.set(
        "broken",
        Step::Fail(SourceError::Query {
            source_name: "warehouse".into(),
            message: "relation does not exist".into(),
        }),
    );
    let clock = Arc::new(AtomicI64::new(T0 + 5));
    let stats = {
        let clock = Arc::clone(&clock);
        Arc::new(RunnerStats::new(Arc::new(move || {
            clock.load(Ordering::SeqCst)
        })))
    };
    stats.set_checkers(engine.checkers(), chrono_tz::UTC);
    let report = engine.run_cycle(T0 + 5).await;
    stats.record_cycle(&report);
    // payments' BAD check fires an alert to three channels: one takes it, one fails for now,
    // one refuses it for good.
    let channels = dwmon_alert::Channels::new()
        .with(ChannelKind::Webhook, Answering(Ok(())))
        .with(ChannelKind::Slack, Answering(Err(false)))
        .with(ChannelKind::Email, Answering(Err(true)));
    let alerts =
        dwmon_alert::AlertHandler::new(Arc::new(dwmon_alert::MemoryAlertStore::new()), channels)
            .with_default_routes(dwmon_alert::Routes {
                targets: [ChannelKind::Webhook, ChannelKind::Slack, ChannelKind::Email]
                    .into_iter()
                    .map(|kind| dwmon_alert::Target::new(kind, "ops"))
                    .collect(),
                repeat_seconds: None,
            });
    let bad = store.recent_checks("payments", 1).await.unwrap();
    let event = dwmon_core::Event::Check(bad[0].clone());
    assert!(
        dwmon_core::CheckHandler::handle(&alerts, &event)
            .await
            .is_err(),
        "two channels failed"
    );
    stats.set_notification_deliveries(alerts.delivery_counts());
    // The runner's host clock runs an hour and a quarter second ahead of the database's.
    stats.set_clock_skew(Arc::new(|| -3_600_250));

    let store: Arc<dyn Store> = store;
    let router = ServerBuilder::new(store)
        .stats(stats)
        .merge(metrics::router())
        .build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(dwmon_server::serve(listener, router, async {
        let _ = stopped.await;
    }));
    Fixture {
        clock,
        url,
        stop: Some(stop),
        server: Some(server),
    }
}

fn has_line(body: &str, line: &str) {
    assert!(
        body.lines().any(|l| l == line),
        "no line {line:?} in:\n{body}"
    );
}

#[tokio::test]
async fn metrics_show_states_bands_checks_fetches_outbox_and_lag() {
    let fixture = fixture().await;
    let (status, content_type, body) = fixture.metrics().await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    let minute = T0; // the cycle at T0 + 5 judges minute T0
    for line in [
        "dwmon_store_up 1".to_string(),
        "dwmon_checkers 3".to_string(),
        r#"dwmon_requirement_state{checker="orders",requirement="0",state="good"} 1"#.into(),
        r#"dwmon_requirement_state{checker="orders",requirement="0",state="bad"} 0"#.into(),
        r#"dwmon_requirement_state{checker="payments",requirement="0",state="bad"} 1"#.into(),
        r#"dwmon_requirement_rows{checker="orders",requirement="0"} 1"#.into(),
        r#"dwmon_requirement_min{checker="payments",requirement="0"} 5"#.into(),
        r#"dwmon_requirement_max{checker="payments",requirement="0"} 100"#.into(),
        // Never checked: the band is there, the state is not.
        r#"dwmon_requirement_min{checker="broken",requirement="0"} 0"#.into(),
        format!(
            r#"dwmon_requirement_last_checked_timestamp_seconds{{checker="orders",requirement="0"}} {minute}"#
        ),
        format!(
            r#"dwmon_requirement_last_good_timestamp_seconds{{checker="orders",requirement="0"}} {minute}"#
        ),
        r#"dwmon_checks_total{status="good"} 1"#.into(),
        r#"dwmon_checks_total{status="bad"} 1"#.into(),
        r#"dwmon_checks_total{status="missed"} 0"#.into(),
        r#"dwmon_fetch_errors_total{source="warehouse"} 1"#.into(),
        r#"dwmon_fetch_errors_total{source="default"} 0"#.into(),
        r#"dwmon_fetch_duration_seconds_count{source="warehouse"} 2"#.into(),
        r#"dwmon_fetch_duration_seconds_bucket{source="default",le="+Inf"} 1"#.into(),
        r#"dwmon_deliveries_total{result="failed"} 2"#.into(),
        r#"dwmon_deliveries_total{result="delivered"} 0"#.into(),
        r#"dwmon_notification_deliveries_total{channel="webhook",result="delivered"} 1"#.into(),
        r#"dwmon_notification_deliveries_total{channel="webhook",result="retry"} 0"#.into(),
        r#"dwmon_notification_deliveries_total{channel="slack",result="retry"} 1"#.into(),
        r#"dwmon_notification_deliveries_total{channel="slack",result="delivered"} 0"#.into(),
        r#"dwmon_notification_deliveries_total{channel="email",result="gave_up"} 1"#.into(),
        "dwmon_outbox_pending 2".into(),
        "dwmon_outbox_oldest_age_seconds 5".into(),
        "dwmon_cycles_total 1".into(),
        format!("dwmon_last_cycle_timestamp_seconds {}", T0 + 5),
        "dwmon_cycle_lag_seconds 0".into(),
        "dwmon_clock_skew_seconds -3600.25".into(),
        format!(
            r#"dwmon_build_info{{version="{}"}} 1"#,
            env!("CARGO_PKG_VERSION")
        ),
    ] {
        has_line(&body, &line);
    }
    assert!(
        !body.contains(r#"channel="pagerduty""#),
        "only the channels the alerting has:\n{body}"
    );
    assert!(
        !body.contains(r#"checker="broken",requirement="0",state"#),
        "a requirement never checked has no state series:\n{body}"
    );
    // No cycle for two minutes and five seconds past the next boundary: the lag says so.
    fixture.clock.store(T0 + 60 + 125, Ordering::SeqCst);
    let (_, _, body) = fixture.metrics().await;
    has_line(&body, "dwmon_cycle_lag_seconds 125");
    has_line(&body, "dwmon_outbox_oldest_age_seconds 185");
    fixture.stop().await;
}

/// Under `CI=true` a missing `promtool` fails; elsewhere the check is skipped with a notice.
fn promtool() -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("promtool"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "promtool not found (Debian package prometheus; .ci/run installs it)"
        );
        eprintln!("SKIPPED: promtool not found (Debian package prometheus)");
    }
    found
}

#[tokio::test]
async fn promtool_check_metrics_reports_nothing() {
    let Some(promtool) = promtool() else { return };
    let fixture = fixture().await;
    let (_, _, body) = fixture.metrics().await;
    fixture.stop().await;
    use std::io::Write;
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool failed: {said}\n{body}");
    assert_eq!(said.trim(), "", "promtool found problems in:\n{body}");
}

#[tokio::test]
async fn a_server_without_runner_shows_the_stored_states_only() {
    let store = Arc::new(MemoryStore::new());
    let record = dwmon_core::CheckRecord {
        checker: "orders".into(),
        requirement_index: 0,
        requirement:
            "CHECKHOURS* CHECKMINUTES* WEEKDAYS WEEKENDS MINNUM1 MAXNUM10 LOOKBACKSECONDS60".into(),
        minute: T0,
        minute_local: "2023-11-14T22:14:00+00:00".into(),
        timezone: "UTC".into(),
        lookback_seconds: 60,
        count: 0,
        min: 1,
        max: 10,
        status: dwmon_core::Status::Missed,
        extra: serde_json::json!({}),
        monitor: None,
        runs: None,
    };
    record_checks(&store, "orders", &[record]).await.unwrap();
    let input = metrics::MetricsInput {
        now: T0 + 60,
        stats: None,
        store: Some((
            &store.status().await.unwrap(),
            store.outbox_summary().await.unwrap(),
        )),
        alerts: None,
        last_good: &[],
    };
    let body = metrics::render(&input);
    has_line(
        &body,
        r#"dwmon_requirement_state{checker="orders",requirement="0",state="missed"} 1"#,
    );
    has_line(&body, "dwmon_outbox_pending 1");
    has_line(&body, "dwmon_outbox_oldest_age_seconds 60");
    assert!(!body.contains("dwmon_requirement_min{"), "{body}");
    assert!(!body.contains("dwmon_cycles_total"), "{body}");
}

/// `examples/prometheus/dwmon-alerts.yml`: its unit tests pass, and every `dwmon_` series it
/// reads is one `/metrics` serves (a renamed metric would silently never fire).
#[tokio::test]
async fn example_alerting_rules_pass_their_tests_and_read_served_metrics() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/prometheus");
    let rules = std::fs::read_to_string(dir.join("dwmon-alerts.yml")).unwrap();
    let fixture = fixture().await;
    let (_, _, body) = fixture.metrics().await;
    fixture.stop().await;
    let mut read = 0;
    for word in rules.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if word.starts_with("dwmon_") {
            read += 1;
            assert!(
                body.contains(&format!("# TYPE {word} ")),
                "the rules read {word}, which /metrics does not serve"
            );
        }
    }
    assert!(read >= 3, "the rules read dwmon metrics");
    let Some(promtool) = promtool() else { return };
    let out = std::process::Command::new(promtool)
        .args(["test", "rules", "dwmon-alerts.test.yml"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool test rules failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// After a restart the runner has judged nothing yet, but the last GOOD time is the store's:
/// a fresh server over an existing store file serves it, and a BAD check since does not
/// move it.
#[tokio::test]
async fn the_last_good_time_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dwmon.sqlite");
    let orders = || checker("orders", vec![every_minute(1, 10, 60)]);
    {
        // The first process: orders GOOD at T0, BAD at T0 + 60.
        let source = Arc::new(ScriptedSource::new());
        let store = Arc::new(dwmon_sqlite::SqliteStore::open(&path).unwrap());
        let engine = Engine::new(source.clone(), store, Arc::new(RecordingHandler::new()))
            .with_checkers(vec![orders()]);
        source.set_rows("orders", vec![Row::new("o1", T0 - 30)]);
        engine.run_cycle(T0 + 5).await;
        source.set_rows("orders", vec![]);
        engine.run_cycle(T0 + 65).await;
    }
    // The second process: a fresh runner (no cycle yet) and server over the same file.
    let store: Arc<dyn Store> = Arc::new(dwmon_sqlite::SqliteStore::open_read_only(&path).unwrap());
    let stats = Arc::new(RunnerStats::new(Arc::new(|| T0 + 125)));
    stats.set_checkers(vec![orders()].into(), chrono_tz::UTC);
    assert!(stats.snapshot().last_good.is_empty(), "nothing judged yet");
    let router = ServerBuilder::new(store)
        .stats(stats)
        .merge(metrics::router())
        .build();
    let url = support::serve_url(router).await;
    let body = reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    has_line(
        &body,
        &format!(
            r#"dwmon_requirement_last_good_timestamp_seconds{{checker="orders",requirement="0"}} {T0}"#
        ),
    );
    has_line(
        &body,
        r#"dwmon_requirement_state{checker="orders",requirement="0",state="bad"} 1"#,
    );
    assert!(
        !body.contains("dwmon_clock_skew_seconds"),
        "a runner on this host's clock has no skew:\n{body}"
    );
}
