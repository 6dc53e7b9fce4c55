//! Helpers shared by the SqliteStore integration tests.
#![allow(dead_code, unused_imports)]

use dwmon_core::{CheckRecord, Status};

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
        runs: None,
    }
}

// Each test file uses some of these.
pub use dwmon_core::testutil::{pending_deliveries, record_checks};
