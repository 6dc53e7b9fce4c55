//! Helpers shared by the SqliteStore integration tests.
#![allow(dead_code)]

use dwmon_core::store::Lease;
use dwmon_core::{CheckLog, CheckRecord, PendingDelivery, Status, StoreError};

/// A check record of `checker` for requirement `index` at `minute` with `count`.
pub fn record(checker: &str, index: usize, minute: i64, count: u64) -> CheckRecord {
    CheckRecord {
        checker: checker.to_owned(),
        requirement_index: index,
        requirement:
            "CHECKHOURS0-23 CHECKMINUTES0-59 WEEKDAYS WEEKENDS MINNUM1 MAXNUM5 LOOKBACKSECONDS180"
                .to_owned(),
        minute,
        minute_local: "1970-01-01T00:00:00+00:00".to_owned(),
        timezone: "UTC".to_owned(),
        lookback_seconds: 180,
        count,
        min: 1,
        max: 5,
        status: Status::judge(count, 1, 5),
        extra: serde_json::json!({ "team": "data" }),
        monitor: None,
    }
}

/// Records `records` of `checker` under a fresh claim; how many were new.
pub async fn record_checks<S: CheckLog + ?Sized>(
    store: &S,
    checker: &str,
    records: &[CheckRecord],
) -> Result<u64, StoreError> {
    let claims = store.claim(&[checker.to_string()], 0).await?;
    let claim = claims
        .into_iter()
        .next()
        .expect("a single-runner store grants every claim");
    Ok(store.record(&claim, records).await?.inserted.len() as u64)
}

/// The outbox entries due at `now`, at most `limit`.
pub async fn pending_deliveries<S: CheckLog + ?Sized>(
    store: &S,
    now: i64,
    limit: usize,
) -> Result<Vec<PendingDelivery>, StoreError> {
    let all = store
        .claim_deliveries(usize::MAX, Lease::new(now, 0))
        .await?;
    Ok(all
        .into_iter()
        .filter(|p| p.next_attempt_at <= now)
        .take(limit)
        .collect())
}
