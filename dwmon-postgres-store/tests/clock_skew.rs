//! A runner whose own clock is an hour off: the skew is measured against the database's clock
//! and logged as a warning once (not again while it stays), a clock that agrees with the
//! database logs none.

mod common;

use dwmon_postgres_store::DatabaseClock;
use std::sync::{Arc, Mutex};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const HOUR_MS: i64 = 3_600_000;

/// Where the test's log lines go.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn warnings(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter(|l| l.contains("WARN"))
            .map(str::to_string)
            .collect()
    }
}

fn system_millis() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

// One thread: every poll of the test sees the subscriber set below.
#[tokio::test(flavor = "current_thread")]
async fn an_hour_of_skew_is_measured_and_logged_once() -> TestResult {
    let Some(url) = common::server().await else {
        return Ok(());
    };
    let (schema_url, schema) = common::fresh_schema(&url, "skew_log").await;
    let store = common::store(&schema_url, "skewed", 120).await;
    let log = Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let honest = DatabaseClock::new(store.clone()).await?;
    honest.measure().await?;
    let after_honest = log.warnings();
    let ahead =
        DatabaseClock::with_host_clock(store.clone(), Arc::new(|| system_millis() + HOUR_MS))
            .await?;
    // Each cycle measures again; an unchanged skew is not logged again.
    let again = ahead.measure().await?;
    let warnings = log.warnings();
    common::drop_schema(&url, &schema).await;

    assert!(after_honest.is_empty(), "{after_honest:?}");
    assert!(
        (again + HOUR_MS).abs() < 5_000,
        "database minus host is minus an hour: {again} ms"
    );
    assert_eq!(warnings.len(), 1, "one warning: {warnings:?}");
    assert!(
        warnings[0].contains("this host's clock differs from the database's by -3")
            && warnings[0].contains("skew_ms=-3"),
        "{}",
        warnings[0]
    );
    Ok(())
}
