//! The `Store` contract (README "How a cycle works") on real SQLite: first-seen inserts, half-open windows,
//! the check log, the outbox, purges, status views; with and without the cache of seen keys.

mod common;

use common::{pending_deliveries, record, record_checks};
use dwmon_core::store::{CheckerClaim, Lease, Recorded, Retry, Settlement};
use dwmon_core::{
    CheckLog, CheckRecord, OutboxSummary, PendingDelivery, Row, RowStore, Status, Store,
    StoreError, StoreView,
};
use dwmon_sqlite::{SqliteStore, SqliteStoreOptions};
use proptest::prelude::*;
use std::collections::HashMap;

/// Settles `key` as delivered.
async fn ack_delivery<S: CheckLog + ?Sized>(store: &S, key: &str) -> Result<(), StoreError> {
    store.settle(key, &Settlement::Delivered).await
}

/// Settles `key` for a retry at `at` after a failed round (its progress kept).
async fn defer_delivery<S: CheckLog + ?Sized>(
    store: &S,
    key: &str,
    at: i64,
    error: &str,
) -> Result<(), StoreError> {
    let entries = store.claim_deliveries(usize::MAX, Lease::new(0, 0)).await?;
    let Some(entry) = entries.into_iter().find(|e| e.key == key) else {
        return Ok(());
    };
    let retry = Retry {
        at,
        error: Some(error.to_string()),
        delivered_to: entry.delivered_to,
        first_attempt_at: entry.first_attempt_at.unwrap_or(at),
    };
    store.settle(key, &Settlement::RetryAt(retry)).await
}

type TestResult = Result<(), StoreError>;

fn uncached() -> Result<SqliteStore, StoreError> {
    SqliteStore::open_in_memory_with(&SqliteStoreOptions {
        seen_cache_capacity: 0,
        ..SqliteStoreOptions::default()
    })
}

/// Both flavours: with and without the cache of seen keys.
fn stores() -> Result<Vec<SqliteStore>, StoreError> {
    Ok(vec![SqliteStore::open_in_memory()?, uncached()?])
}

mod spec_5_step_4_first_seen {
    use super::*;

    #[tokio::test]
    async fn a_stored_key_keeps_its_first_timestamp() -> TestResult {
        for store in stores()? {
            let first = [Row::new("a", 100), Row::new("b", 200)];
            assert_eq!(store.insert_first_seen("c", &first).await?, 2);
            let again = [Row::new("a", 500), Row::new("b", 200), Row::new("n", 300)];
            assert_eq!(store.insert_first_seen("c", &again).await?, 1);
            assert_eq!(
                store.row_timestamps("c", 0, 1000).await?,
                vec![100, 200, 300]
            );
            // Twice more, so the cached path (hits) is exercised as well.
            assert_eq!(store.insert_first_seen("c", &again).await?, 0);
            assert_eq!(
                store.row_timestamps("c", 0, 1000).await?,
                vec![100, 200, 300]
            );
        }
        Ok(())
    }

    #[tokio::test]
    async fn a_key_repeated_in_one_batch_counts_once_with_its_first_occurrence() -> TestResult {
        for store in stores()? {
            let batch = [Row::new("k", 50), Row::new("k", 10), Row::new("j", 20)];
            assert_eq!(store.insert_first_seen("c", &batch).await?, 2);
            assert_eq!(store.row_timestamps("c", 0, 100).await?, vec![20, 50]);
        }
        Ok(())
    }

    #[tokio::test]
    async fn checkers_do_not_share_keys() -> TestResult {
        for store in stores()? {
            store.insert_first_seen("x", &[Row::new("k", 1)]).await?;
            assert_eq!(store.insert_first_seen("y", &[Row::new("k", 2)]).await?, 1);
            assert_eq!(store.row_timestamps("y", 0, 10).await?, vec![2]);
        }
        Ok(())
    }

    #[tokio::test]
    async fn an_empty_batch_is_a_no_op() -> TestResult {
        let store = SqliteStore::open_in_memory()?;
        assert_eq!(store.insert_first_seen("c", &[]).await?, 0);
        assert!(store.status().await?.is_empty());
        Ok(())
    }

    #[tokio::test]
    async fn keys_may_be_any_text() -> TestResult {
        let store = SqliteStore::open_in_memory()?;
        let odd = [
            "",
            "'; DROP TABLE rows; --",
            "ü\u{0}x",
            &"long".repeat(1000),
        ];
        let rows: Vec<Row> = odd.iter().map(|k| Row::new(*k, 5)).collect();
        assert_eq!(store.insert_first_seen("c", &rows).await?, 4);
        assert_eq!(store.insert_first_seen("c", &rows).await?, 0);
        assert_eq!(store.count("c", 0, 10).await?, 4);
        Ok(())
    }
}

mod bulk_batches {
    use super::*;

    /// Batches large enough for the multi-row insert chunks and the range scan for stored
    /// keys, into a cold store (a restarted process) and a warm one.
    #[tokio::test]
    async fn big_batches_with_stored_keys_and_duplicates_keep_first_seen() -> TestResult {
        let dir = tempfile::tempdir().map_err(|e| StoreError::other("tempdir", e))?;
        let path = dir.path().join("store.sqlite");
        let first: Vec<Row> = (0..1_000)
            .map(|i| Row::new(format!("k{i:05}"), 1_000 + i))
            .collect();
        assert_eq!(
            SqliteStore::open(&path)?
                .insert_first_seen("c", &first)
                .await?,
            1_000
        );

        // A second batch: the first 1000 again (half with moved timestamps, which must not
        // move), 1000 new keys each given twice (the first occurrence wins), shuffled.
        let mut second: Vec<Row> = Vec::new();
        for i in 0..1_000 {
            let moved = if i % 2 == 0 { 50_000 } else { 0 };
            second.push(Row::new(format!("k{i:05}"), 1_000 + i + moved));
            second.push(Row::new(format!("n{i:05}"), 3_000 + i));
            second.push(Row::new(format!("n{i:05}"), 9_999));
        }
        second.reverse();
        // A fresh store (as after a restart) has a cold cache.
        let cold = SqliteStore::open(&path)?;
        // Reversed order: the first occurrence of n-keys in `second` is now ts 9_999.
        let new = cold.insert_first_seen("c", &second).await?;
        assert_eq!(new, 1_000);
        let mut all = cold.row_timestamps("c", 0, 100_000).await?;
        all.sort_unstable();
        let mut expected: Vec<i64> = (0..1_000).map(|i| 1_000 + i).collect();
        expected.resize(2_000, 9_999);
        assert_eq!(all, expected);
        // Everything is cached now: the same batch again is all hits and changes nothing.
        assert_eq!(cold.cached_keys(), 2_000);
        assert_eq!(cold.insert_first_seen("c", &second).await?, 0);
        assert_eq!(cold.row_timestamps("c", 0, 100_000).await?.len(), 2_000);
        Ok(())
    }
}

mod spec_5_step_5_windows {
    use super::*;

    #[tokio::test]
    async fn windows_are_half_open() -> TestResult {
        for store in stores()? {
            let rows = [
                Row::new("a", 59),
                Row::new("b", 60),
                Row::new("c", 119),
                Row::new("d", 120),
            ];
            store.insert_first_seen("c", &rows).await?;
            assert_eq!(store.count("c", 60, 120).await?, 2);
            assert_eq!(store.count("c", 0, 60).await?, 1);
            assert_eq!(store.count("c", 120, 180).await?, 1);
            assert_eq!(store.count("c", 120, 120).await?, 0);
            assert_eq!(store.count("unknown", 0, 1000).await?, 0);
        }
        Ok(())
    }

    #[tokio::test]
    async fn many_windows_agree_with_single_counts() -> TestResult {
        let store = SqliteStore::open_in_memory()?;
        let rows: Vec<Row> = (0..500).map(|i| Row::new(format!("k{i}"), i * 7)).collect();
        store.insert_first_seen("c", &rows).await?;
        // Overlapping windows (one range scan), disjoint ones (per-window counts), empty ones.
        let overlapping: Vec<(i64, i64)> = (0..30).map(|m| (m * 60, m * 60 + 600)).collect();
        let disjoint = vec![(0, 10), (1000, 1010), (3000, 3100), (50, 40)];
        for windows in [overlapping, disjoint] {
            let counts = store.count_windows("c", &windows).await?;
            for (&(from, to), count) in windows.iter().zip(counts) {
                assert_eq!(
                    count,
                    store.count("c", from, to).await?,
                    "window {from}..{to}"
                );
                let expected = rows
                    .iter()
                    .filter(|r| from <= r.timestamp && r.timestamp < to);
                assert_eq!(count, expected.count() as u64);
            }
        }
        assert_eq!(
            store.count_windows("unknown", &[(0, 1), (1, 2)]).await?,
            vec![0, 0]
        );
        Ok(())
    }

    /// Windows as wide as `i64` allows (a library caller's "everything", a replay from year
    /// 1) are counted, never an overflow.
    #[tokio::test]
    async fn the_widest_windows_are_counted_without_overflow() -> TestResult {
        for store in stores()? {
            let rows = [Row::new("a", -5), Row::new("b", 0), Row::new("c", 7)];
            store.insert_first_seen("c", &rows).await?;
            assert_eq!(store.count("c", i64::MIN, i64::MAX).await?, 3);
            let windows = [(i64::MIN, i64::MAX), (i64::MIN, 0), (0, i64::MAX)];
            assert_eq!(store.count_windows("c", &windows).await?, vec![3, 1, 2]);
        }
        Ok(())
    }
}

mod spec_5_step_6_check_log {
    use super::*;

    #[tokio::test]
    async fn records_are_idempotent_per_requirement_and_minute() -> TestResult {
        let store = SqliteStore::open_in_memory()?;
        assert_eq!(store.last_checked_minute("c").await?, None);
        let batch = [record("c", 0, 120, 3), record("c", 1, 120, 9)];
        assert_eq!(record_checks(&store, "c", &batch).await?, 2);
        // A retried cycle (e.g. after a crash) records nothing twice, even with other counts.
        let retry = [record("c", 0, 120, 4), record("c", 0, 180, 2)];
        assert_eq!(record_checks(&store, "c", &retry).await?, 1);
        assert_eq!(store.last_checked_minute("c").await?, Some(180));
        // Per requirement, for DELAYSECONDS (requirements judged up to different minutes).
        assert_eq!(
            store.last_checked_minutes("c").await?,
            vec![(0, 180), (1, 120)]
        );
        assert_eq!(store.last_checked_minutes("unknown").await?, vec![]);
        let recent = store.recent_checks("c", 10).await?;
        let keys: Vec<(usize, i64, u64)> = recent
            .iter()
            .map(|r| (r.requirement_index, r.minute, r.count))
            .collect();
        assert_eq!(keys, vec![(0, 180, 2), (1, 120, 9), (0, 120, 3)]);
        assert_eq!(recent[0], retry[1]);
        assert_eq!(store.recent_checks("c", 1).await?.len(), 1);
        Ok(())
    }

    /// Pages of `checks_before` walk the log newest first without gaps or repeats, the
    /// same in SQLite, in memory and in the trait's default (over `recent_checks`).
    #[tokio::test]
    async fn checks_before_pages_through_the_log_like_recent_checks() -> TestResult {
        let sqlite = SqliteStore::open_in_memory()?;
        let memory = dwmon_core::MemoryStore::new();
        let records: Vec<_> = (1..=4)
            .flat_map(|m| [record("c", 0, m * 60, m as u64), record("c", 1, m * 60, 0)])
            .collect();
        record_checks(&sqlite, "c", &records).await?;
        record_checks(&memory, "c", &records).await?;
        let stores: [(&str, &dyn Store); 3] = [
            ("sqlite", &sqlite),
            ("memory", &memory),
            ("default", &Wrapper(&memory)),
        ];
        for (name, store) in stores {
            let all: Vec<(i64, usize)> = store
                .recent_checks("c", 100)
                .await?
                .iter()
                .map(|r| (r.minute, r.requirement_index))
                .collect();
            let mut paged = Vec::new();
            let mut page = store.recent_checks("c", 3).await?;
            while let Some(last) = page.last() {
                paged.extend(page.iter().map(|r| (r.minute, r.requirement_index)));
                let cursor = (last.minute, last.requirement_index);
                page = store.checks_before("c", cursor, 3).await?;
            }
            assert_eq!(paged, all, "{name}");
            assert_eq!(all.len(), 8, "{name}");
            let statuses: Vec<(i64, usize)> = store
                .recent_statuses("c", 100)
                .await?
                .iter()
                .map(|(index, minute, _)| (*minute, *index))
                .collect();
            assert_eq!(statuses, all, "{name}: recent_statuses");
            // Minutes 60..240: requirement 0 GOOD (count >= 1), requirement 1 BAD (0 < 1).
            let counts = store.status_counts("c", &[0, 180, 241]).await?;
            assert_eq!(
                counts,
                vec![
                    (0, Status::Good, vec![4, 2, 0]),
                    (1, Status::Bad, vec![4, 2, 0]),
                ],
                "{name}: status_counts"
            );
            let before = store.checks_before("c", (180, 1), 2).await?;
            let keys: Vec<_> = before
                .iter()
                .map(|r| (r.minute, r.requirement_index))
                .collect();
            assert_eq!(keys, vec![(180, 0), (120, 1)], "{name}");
            assert!(store
                .checks_before("unknown", (180, 0), 2)
                .await?
                .is_empty());
        }
        Ok(())
    }

    /// `status_histories` reads every checker's last checks per line and its status counts
    /// at once, the same in SQLite, in memory and in the trait's default; `checker_status`
    /// is that checker's entry of `status`.
    #[tokio::test]
    async fn status_histories_keep_the_last_checks_of_each_line() -> TestResult {
        let sqlite = SqliteStore::open_in_memory()?;
        let memory = dwmon_core::MemoryStore::new();
        // Line 0 is checked every minute, line 1 every third minute: the last 2 checks of
        // line 1 are older than the last 4 checks of the checker.
        let mut records: Vec<_> = (1..=9)
            .map(|m| record("a", 0, m * 60, m as u64 % 3))
            .collect();
        records.extend((1..=3).map(|m| record("a", 1, m * 180, 2)));
        let other = [record("b", 0, 60, 0)];
        for store in [&sqlite as &dyn Store, &memory] {
            record_checks(store, "a", &records).await?;
            record_checks(store, "b", &other).await?;
            store.set_last_error("b", Some((120, "down"))).await?;
            // A ping-kind series of `a` and of a checker known by its series only.
            store
                .insert_first_seen("a~fail", &[Row::new("f1", 30)])
                .await?;
            store
                .insert_first_seen("p~start", &[Row::new("s1", 40)])
                .await?;
        }
        let stores: [(&str, &dyn Store); 3] = [
            ("sqlite", &sqlite),
            ("memory", &memory),
            ("default", &Wrapper(&memory)),
        ];
        let names = ["b".to_string(), "unknown".into(), "a".into()];
        for (name, store) in stores {
            let histories = store.status_histories(&names, 2, &[0, 361]).await?;
            let checkers: Vec<&str> = histories.iter().map(|h| h.checker.as_str()).collect();
            assert_eq!(
                checkers,
                ["b", "unknown", "a"],
                "{name}: in the asked order"
            );
            assert_eq!(
                histories[0].recent,
                vec![(0, vec![(60, Status::Bad)])],
                "{name}"
            );
            assert_eq!(
                histories[1],
                dwmon_core::StatusHistory {
                    checker: "unknown".into(),
                    ..Default::default()
                },
                "{name}"
            );
            let a = &histories[2];
            assert_eq!(
                a.recent,
                vec![
                    (0, vec![(540, Status::Bad), (480, Status::Good)]),
                    (1, vec![(540, Status::Good), (360, Status::Good)]),
                ],
                "{name}: the last 2 of each line"
            );
            // Line 0 counts m % 3: BAD (0) at 3, 6, 9; GOOD otherwise; since 361: 420..540.
            assert_eq!(
                a.counts,
                vec![
                    (0, Status::Bad, vec![3, 1]),
                    (0, Status::Good, vec![6, 2]),
                    (1, Status::Good, vec![3, 1]),
                ],
                "{name}: status counts per window"
            );
            assert_eq!(
                a.counts,
                store.status_counts("a", &[0, 361]).await?,
                "{name}"
            );
            let without = store.status_histories(&names, 0, &[]).await?;
            assert!(
                without
                    .iter()
                    .all(|h| h.recent.is_empty() && h.counts.is_empty()),
                "{name}: nothing asked, nothing read"
            );
            let all = store.status().await?;
            for checker in ["a", "b", "p"] {
                let one = store.checker_status(checker).await?;
                assert!(one.is_some(), "{name}: {checker}");
                assert_eq!(
                    one.as_ref(),
                    all.iter().find(|s| s.checker == checker),
                    "{name}"
                );
            }
            assert_eq!(
                store.checker_status("a").await?.map(|s| s.stored_rows),
                Some(1),
                "{name}: the series' rows count in its checker"
            );
            assert_eq!(store.checker_status("a~fail").await?, None, "{name}");
            assert_eq!(store.checker_status("unknown").await?, None, "{name}");
        }
        Ok(())
    }

    /// A store that forwards only the required methods, so the views' defaults run.
    struct Wrapper<'a>(&'a dwmon_core::MemoryStore);

    dwmon_core::delegate_alert_state_store!(Wrapper<'_> => 0);

    #[async_trait::async_trait]
    impl RowStore for Wrapper<'_> {
        async fn insert_first_seen(&self, c: &str, rows: &[Row]) -> Result<u64, StoreError> {
            self.0.insert_first_seen(c, rows).await
        }
        async fn count_windows(&self, c: &str, w: &[(i64, i64)]) -> Result<Vec<u64>, StoreError> {
            self.0.count_windows(c, w).await
        }
        async fn row_timestamps(
            &self,
            c: &str,
            from: i64,
            to: i64,
        ) -> Result<Vec<i64>, StoreError> {
            self.0.row_timestamps(c, from, to).await
        }
        async fn purge(&self, c: &str, older_than: i64) -> Result<u64, StoreError> {
            self.0.purge(c, older_than).await
        }
    }

    #[async_trait::async_trait]
    impl CheckLog for Wrapper<'_> {
        async fn last_checked_minute(&self, c: &str) -> Result<Option<i64>, StoreError> {
            self.0.last_checked_minute(c).await
        }
        async fn last_checked_minutes(&self, c: &str) -> Result<Vec<(usize, i64)>, StoreError> {
            self.0.last_checked_minutes(c).await
        }
        async fn claim(&self, c: &[String], now: i64) -> Result<Vec<CheckerClaim>, StoreError> {
            self.0.claim(c, now).await
        }
        async fn renew(&self, c: &[CheckerClaim]) -> Result<Vec<CheckerClaim>, StoreError> {
            self.0.renew(c).await
        }
        async fn record(
            &self,
            claim: &CheckerClaim,
            r: &[CheckRecord],
        ) -> Result<Recorded, StoreError> {
            self.0.record(claim, r).await
        }
        async fn claim_deliveries(
            &self,
            limit: usize,
            lease: Lease,
        ) -> Result<Vec<PendingDelivery>, StoreError> {
            self.0.claim_deliveries(limit, lease).await
        }
        async fn settle(&self, key: &str, settlement: &Settlement) -> Result<(), StoreError> {
            self.0.settle(key, settlement).await
        }
        async fn set_last_error(&self, c: &str, e: Option<(i64, &str)>) -> Result<(), StoreError> {
            self.0.set_last_error(c, e).await
        }
    }

    #[async_trait::async_trait]
    impl StoreView for Wrapper<'_> {
        async fn status(&self) -> Result<Vec<dwmon_core::CheckerStatus>, StoreError> {
            self.0.status().await
        }
        async fn checks_before(
            &self,
            c: &str,
            before: (i64, usize),
            limit: usize,
        ) -> Result<Vec<CheckRecord>, StoreError> {
            self.0.checks_before(c, before, limit).await
        }
    }

    #[tokio::test]
    async fn a_record_of_another_checker_is_refused_whole() -> TestResult {
        let store = SqliteStore::open_in_memory()?;
        let mixed = [record("c", 0, 60, 1), record("other", 0, 60, 1)];
        assert!(matches!(
            record_checks(&store, "c", &mixed).await,
            Err(StoreError::Backend { .. })
        ));
        assert_eq!(store.last_checked_minute("c").await?, None);
        Ok(())
    }
}

mod spec_8_outbox {
    use super::*;

    #[tokio::test]
    async fn new_records_are_pending_in_checker_minute_requirement_order() -> TestResult {
        let store = SqliteStore::open_in_memory()?;
        record_checks(
            &store,
            "b",
            &[
                record("b", 1, 60, 1),
                record("b", 0, 120, 1),
                record("b", 0, 60, 1),
            ],
        )
        .await?;
        record_checks(&store, "a", &[record("a", 0, 180, 1)]).await?;
        let pending = pending_deliveries(&store, 1_000, 100).await?;
        let keys: Vec<&str> = pending.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, vec!["a/0/180", "b/0/60", "b/1/60", "b/0/120"]);
        assert!(pending
            .iter()
            .all(|p| p.attempts == 0 && p.last_error.is_none()));
        assert_eq!(pending[0].record, record("a", 0, 180, 1));
        assert_eq!(pending_deliveries(&store, 1_000, 2).await?.len(), 2);
        // Re-recording does not re-enqueue.
        record_checks(&store, "a", &[record("a", 0, 180, 1)]).await?;
        assert_eq!(pending_deliveries(&store, 1_000, 100).await?.len(), 4);
        Ok(())
    }

    #[tokio::test]
    async fn ack_removes_and_defer_reschedules() -> TestResult {
        let store = SqliteStore::open_in_memory()?;
        record_checks(
            &store,
            "c",
            &[record("c", 0, 60, 1), record("c", 0, 120, 1)],
        )
        .await?;
        ack_delivery(&store, "c/0/60").await?;
        ack_delivery(&store, "c/0/60").await?; // idempotent
        defer_delivery(&store, "c/0/120", 500, "webhook: 503").await?;
        assert!(pending_deliveries(&store, 499, 10).await?.is_empty());
        let due = pending_deliveries(&store, 500, 10).await?;
        assert_eq!(due.len(), 1);
        assert_eq!((due[0].attempts, due[0].next_attempt_at), (1, 500));
        assert_eq!(due[0].last_error.as_deref(), Some("webhook: 503"));
        defer_delivery(&store, "c/0/120", 900, "again").await?;
        assert_eq!(pending_deliveries(&store, 900, 10).await?[0].attempts, 2);
        let status = store.status().await?;
        assert_eq!(status[0].pending_deliveries, 1);
        Ok(())
    }

    #[tokio::test]
    async fn outbox_summary_counts_entries_and_finds_the_oldest_minute() -> TestResult {
        let dir = tempfile::tempdir().map_err(|e| StoreError::other("tempdir", e))?;
        let path = dir.path().join("store.sqlite");
        let runner = SqliteStore::open(&path)?;
        let reader = SqliteStore::open_read_only(&path)?;
        assert_eq!(reader.outbox_summary().await?, OutboxSummary::default());
        record_checks(
            &runner,
            "b",
            &[record("b", 0, 180, 1), record("b", 0, 240, 1)],
        )
        .await?;
        record_checks(&runner, "a", &[record("a", 0, 120, 1)]).await?;
        let expected = OutboxSummary {
            pending: 3,
            oldest_minute: Some(120),
        };
        assert_eq!(runner.outbox_summary().await?, expected);
        assert_eq!(reader.outbox_summary().await?, expected);
        ack_delivery(&runner, "a/0/120").await?;
        assert_eq!(
            runner.outbox_summary().await?,
            OutboxSummary {
                pending: 2,
                oldest_minute: Some(180),
            }
        );
        Ok(())
    }
}

mod spec_5_step_7_purge {
    use super::*;

    #[tokio::test]
    async fn purge_deletes_only_older_rows_and_forgets_them() -> TestResult {
        for store in stores()? {
            let rows = [
                Row::new("old", 100),
                Row::new("edge", 200),
                Row::new("new", 7300),
            ];
            store.insert_first_seen("c", &rows).await?;
            assert_eq!(store.purge("c", 200).await?, 1);
            assert_eq!(store.row_timestamps("c", 0, 10_000).await?, vec![200, 7300]);
            // A purged key is unknown again: it is stored anew (with the timestamp given).
            assert_eq!(
                store
                    .insert_first_seen("c", &[Row::new("old", 150)])
                    .await?,
                1
            );
            assert_eq!(store.insert_first_seen("c", &rows).await?, 0);
            assert_eq!(
                store.row_timestamps("c", 0, 10_000).await?,
                vec![150, 200, 7300]
            );
            assert_eq!(store.purge("c", 0).await?, 0);
            assert_eq!(store.purge("unknown", 1_000).await?, 0);
            assert_eq!(store.status().await?[0].stored_rows, 3);
        }
        Ok(())
    }
}

mod status_views {
    use super::*;

    #[tokio::test]
    async fn status_shows_last_checks_errors_and_counts() -> TestResult {
        let store = SqliteStore::open_in_memory()?;
        store
            .insert_first_seen("b", &[Row::new("x", 1), Row::new("y", 2)])
            .await?;
        record_checks(&store, "b", &[record("b", 0, 60, 0), record("b", 2, 60, 3)]).await?;
        record_checks(&store, "b", &[record("b", 0, 120, 3)]).await?;
        store
            .set_last_error("b", Some((120, "source down")))
            .await?;
        store.set_last_error("a", Some((60, "bad file"))).await?;
        store.set_last_error("a", None).await?;
        let status = store.status().await?;
        assert_eq!(status.len(), 2);
        assert_eq!(status[0].checker, "a");
        assert_eq!(status[0].last_error, None);
        assert_eq!(status[0].last_minute, None);
        let b = &status[1];
        assert_eq!(b.last_minute, Some(120));
        assert_eq!(b.stored_rows, 2);
        assert_eq!(b.pending_deliveries, 3);
        assert_eq!(b.last_error, Some((120, "source down".to_owned())));
        let reqs: Vec<(usize, i64, u64, Status)> = b
            .requirements
            .iter()
            .map(|r| (r.requirement_index, r.minute, r.count, r.status))
            .collect();
        assert_eq!(
            reqs,
            vec![(0, 120, 3, Status::Good), (2, 60, 3, Status::Good)]
        );
        Ok(())
    }
}

mod persistence {
    use super::*;

    #[tokio::test]
    async fn everything_survives_reopening_the_file() -> TestResult {
        let dir = tempfile::tempdir().map_err(|e| StoreError::other("tempdir", e))?;
        let path = dir.path().join("store.sqlite");
        {
            let store = SqliteStore::open(&path)?;
            store.insert_first_seen("c", &[Row::new("a", 10)]).await?;
            record_checks(&store, "c", &[record("c", 0, 60, 1)]).await?;
        }
        let store = SqliteStore::open(&path)?;
        assert_eq!(SqliteStore::schema_version(), 8);
        // A fresh process has a cold cache: the stored key is still found (in SQLite).
        assert_eq!(store.cached_keys(), 0);
        assert_eq!(store.insert_first_seen("c", &[Row::new("a", 99)]).await?, 0);
        assert_eq!(store.row_timestamps("c", 0, 100).await?, vec![10]);
        assert_eq!(store.last_checked_minute("c").await?, Some(60));
        assert_eq!(pending_deliveries(&store, 60, 10).await?.len(), 1);
        Ok(())
    }

    #[tokio::test]
    async fn per_target_progress_and_give_ups_survive_reopening() -> TestResult {
        let dir = tempfile::tempdir().map_err(|e| StoreError::other("tempdir", e))?;
        let path = dir.path().join("store.sqlite");
        {
            let store = SqliteStore::open(&path)?;
            record_checks(&store, "c", &[record("c", 0, 60, 1)]).await?;
            let retry = Retry {
                at: 95,
                error: Some("alerts/webhook:ops: 500".into()),
                delivered_to: vec!["stdout".into()],
                first_attempt_at: 65,
            };
            store
                .settle("c/0/60", &Settlement::RetryAt(retry.clone()))
                .await?;
            // A later round keeps the first attempt.
            let retry = Retry {
                first_attempt_at: 125,
                error: None,
                ..retry
            };
            store.settle("c/0/60", &Settlement::RetryAt(retry)).await?;
            store.record_give_up("c", 3, 120, "given up").await?;
            store.record_give_up("c", 2, 180, "given up again").await?;
        }
        let store = SqliteStore::open(&path)?;
        let pending = pending_deliveries(&store, i64::MAX, 10).await?;
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].delivered_to, ["stdout"]);
        assert_eq!(pending[0].first_attempt_at, Some(65));
        assert_eq!(pending[0].attempts, 1);
        assert_eq!(pending[0].next_attempt_at, 95);
        let status = store.status().await?;
        assert_eq!(status[0].given_up_deliveries, 5);
        assert_eq!(
            status[0].last_give_up,
            Some((180, "given up again".to_string()))
        );
        Ok(())
    }

    #[tokio::test]
    async fn acknowledgements_reach_the_file_with_the_next_write_or_flush() -> TestResult {
        let dir = tempfile::tempdir().map_err(|e| StoreError::other("tempdir", e))?;
        let path = dir.path().join("store.sqlite");
        let runner = SqliteStore::open(&path)?;
        let status = SqliteStore::open_read_only(&path)?;
        let records: Vec<_> = (1..=4).map(|m| record("c", 0, m * 60, 1)).collect();
        record_checks(&runner, "c", &records).await?;
        ack_delivery(&runner, "c/0/60").await?;
        // The runner's own view is exact at once.
        assert_eq!(pending_deliveries(&runner, i64::MAX, 10).await?.len(), 3);
        ack_delivery(&runner, "c/0/120").await?;
        // Another connection sees it after the runner's next insert ...
        runner.insert_first_seen("c", &[Row::new("x", 1)]).await?;
        assert_eq!(status.status().await?[0].pending_deliveries, 2);
        // ... or an explicit flush ...
        ack_delivery(&runner, "c/0/180").await?;
        runner.flush().await?;
        assert_eq!(status.status().await?[0].pending_deliveries, 1);
        // ... or when the store is dropped.
        ack_delivery(&runner, "c/0/240").await?;
        drop(runner);
        assert_eq!(status.status().await?[0].pending_deliveries, 0);
        assert!(matches!(
            ack_delivery(&status, "c/0/60").await,
            Err(StoreError::ReadOnly { .. })
        ));
        Ok(())
    }

    #[tokio::test]
    async fn the_cache_notices_writes_by_another_connection() -> TestResult {
        let dir = tempfile::tempdir().map_err(|e| StoreError::other("tempdir", e))?;
        let path = dir.path().join("store.sqlite");
        let runner = SqliteStore::open(&path)?;
        let other = SqliteStore::open(&path)?;
        runner.insert_first_seen("c", &[Row::new("a", 10)]).await?;
        assert_eq!(runner.cached_keys(), 1);
        // Another process purges the key behind the runner's back.
        assert_eq!(other.purge("c", 1_000).await?, 1);
        // The runner must not trust its cache: the key is stored anew.
        assert_eq!(
            runner.insert_first_seen("c", &[Row::new("a", 10)]).await?,
            1
        );
        assert_eq!(other.count("c", 0, 100).await?, 1);
        Ok(())
    }

    #[test]
    fn works_without_a_tokio_runtime() -> TestResult {
        let store = SqliteStore::open_in_memory()?;
        let new = futures_executor_block_on(store.insert_first_seen("c", &[Row::new("a", 1)]))?;
        assert_eq!(new, 1);
        Ok(())
    }

    /// A minimal executor: the store's futures complete without waking when run outside tokio.
    fn futures_executor_block_on<F: std::future::Future>(future: F) -> F::Output {
        use std::sync::Arc;
        use std::task::{Context, Poll, Wake, Waker};
        struct Noop;
        impl Wake for Noop {
            fn wake(self: Arc<Self>) {}
        }
        let waker = Waker::from(Arc::new(Noop));
        let mut future = std::pin::pin!(future);
        let mut context = Context::from_waker(&waker);
        loop {
            if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
                return output;
            }
        }
    }
}

/// One operation of the model-based property test.
#[derive(Debug, Clone)]
enum Op {
    Insert(Vec<(u8, i64)>),
    Purge(i64),
    Count(i64, i64),
    /// `set_reachable_from`, a hint only: even rows before it inserted later count right.
    Reach(i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => prop::collection::vec((0u8..120, 0i64..20_000), 0..100).prop_map(Op::Insert),
        1 => (0i64..20_000).prop_map(Op::Purge),
        2 => (0i64..20_000, 0i64..8_000).prop_map(|(from, len)| Op::Count(from, from + len)),
        1 => (0i64..20_000).prop_map(Op::Reach),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The cached store, the uncached store and a plain map always agree.
    #[test]
    fn cached_and_uncached_stores_agree_with_a_model(ops in prop::collection::vec(op(), 1..40)) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            let cached = SqliteStore::open_in_memory().unwrap();
            let plain = uncached().unwrap();
            let mut model: HashMap<String, i64> = HashMap::new();
            for op in ops {
                match op {
                    Op::Insert(rows) => {
                        let rows: Vec<Row> =
                            rows.iter().map(|&(k, t)| Row::new(format!("k{k}"), t)).collect();
                        let mut new = 0;
                        for row in &rows {
                            if !model.contains_key(&row.key) {
                                model.insert(row.key.clone(), row.timestamp);
                                new += 1;
                            }
                        }
                        prop_assert_eq!(cached.insert_first_seen("c", &rows).await.unwrap(), new);
                        prop_assert_eq!(plain.insert_first_seen("c", &rows).await.unwrap(), new);
                    }
                    Op::Purge(t) => {
                        let before = model.len();
                        model.retain(|_, ts| *ts >= t);
                        let gone = (before - model.len()) as u64;
                        prop_assert_eq!(cached.purge("c", t).await.unwrap(), gone);
                        prop_assert_eq!(plain.purge("c", t).await.unwrap(), gone);
                    }
                    Op::Count(from, to) => {
                        let expected = model.values().filter(|&&t| from <= t && t < to).count();
                        prop_assert_eq!(cached.count("c", from, to).await.unwrap(), expected as u64);
                        prop_assert_eq!(plain.count("c", from, to).await.unwrap(), expected as u64);
                    }
                    Op::Reach(t) => {
                        cached.set_reachable_from("c", t);
                        plain.set_reachable_from("c", t);
                    }
                }
            }
            Ok(())
        })?;
    }
}

mod seen_cache_age {
    use super::*;

    /// A week of history is cached until the engine says that only the last minutes can
    /// still be handed over: the older keys leave the cache, later ones before that point are
    /// not cached, and the evicted keys are still found in SQLite when they do come back.
    #[tokio::test]
    async fn keys_before_the_reachable_window_leave_the_cache(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let store = SqliteStore::open_in_memory()?;
        let now = 1_700_000_000;
        let week: Vec<Row> = (0..1_000)
            .map(|i| Row::new(format!("h{i}"), now - i * 604))
            .collect();
        assert_eq!(store.insert_first_seen("c", &week).await?, 1_000);
        assert_eq!(store.cached_keys(), 1_000);
        store.set_reachable_from("c", now - 60);
        // At most the keys of the bucket holding `now - 60` (10 minutes) stay.
        assert!(store.cached_keys() <= 2, "{}", store.cached_keys());
        let recent: Vec<Row> = (0..10)
            .map(|i| Row::new(format!("r{i}"), now + i))
            .collect();
        assert_eq!(store.insert_first_seen("c", &recent).await?, 10);
        assert!(store.cached_keys() <= 12, "{}", store.cached_keys());
        assert_eq!(store.insert_first_seen("c", &week).await?, 0);
        Ok(())
    }
}

mod retention {
    use super::*;

    #[tokio::test]
    async fn purge_checks_keeps_the_newest_record_of_each_requirement() -> TestResult {
        let store = SqliteStore::open_in_memory()?;
        // Requirement 0 at minutes 0..10, requirement 1 at minutes 0 and 5 (in units of 60 s).
        let mut records: Vec<_> = (0..10).map(|m| record("c", 0, m * 60, 3)).collect();
        records.push(record("c", 1, 0, 3));
        records.push(record("c", 1, 300, 0));
        record_checks(&store, "c", &records).await?;
        store
            .insert_first_seen("c", &[Row::new("k", 42), Row::new("j", 99)])
            .await?;
        let status = store.status().await?;
        assert_eq!(
            (status[0].oldest_row, status[0].oldest_check),
            (Some(42), Some(0))
        );
        let pending_before = status[0].pending_deliveries;

        // Everything before minute 600: requirement 0 keeps 540, requirement 1 keeps 300.
        assert_eq!(store.purge_checks("c", 600).await?, 9 + 1);
        let status = store.status().await?;
        let kept: Vec<(usize, i64)> = status[0]
            .requirements
            .iter()
            .map(|r| (r.requirement_index, r.minute))
            .collect();
        assert_eq!(kept, vec![(0, 540), (1, 300)]);
        assert_eq!(status[0].oldest_check, Some(300));
        assert_eq!(status[0].last_minute, Some(540));
        assert_eq!(store.last_checked_minute("c").await?, Some(540));
        // Pending deliveries are not the check log: all still owed.
        assert_eq!(status[0].pending_deliveries, pending_before);
        assert_eq!(store.purge_checks("c", 600).await?, 0);
        assert_eq!(store.purge_checks("nobody", 600).await?, 0);
        Ok(())
    }
}

mod extras_once {
    use super::*;

    fn file_size_with_wal(path: &std::path::Path) -> u64 {
        ["", "-wal"]
            .iter()
            .map(|suffix| {
                let mut name = path.as_os_str().to_owned();
                name.push(suffix);
                std::fs::metadata(name).map_or(0, |m| m.len())
            })
            .sum()
    }

    /// A 100 KB `__EXTRA__` is stored once per version, not in every check record and outbox
    /// entry: 500 records of it take well under 2 MB (inline they took about 100 MB), and every
    /// record reads back with its own extra.
    #[tokio::test]
    async fn a_big_extra_is_stored_once_per_version() -> TestResult {
        let dir = tempfile::tempdir().map_err(|e| StoreError::other("tempdir", e))?;
        let path = dir.path().join("store.sqlite");
        let store = SqliteStore::open(&path)?;
        let big = serde_json::json!({ "runbook": "x".repeat(100_000), "team": "data" });
        let records: Vec<_> = (0..500)
            .map(|m| {
                let mut r = record("c", 0, m * 60, 3);
                r.extra = big.clone();
                r
            })
            .collect();
        for chunk in records.chunks(50) {
            assert_eq!(record_checks(&store, "c", chunk).await?, 50);
        }
        // A new version of the extra for later records.
        let mut changed = record("c", 0, 500 * 60, 3);
        changed.extra = serde_json::json!({ "team": "platform" });
        record_checks(&store, "c", std::slice::from_ref(&changed)).await?;
        store.flush().await?;
        let size = file_size_with_wal(&path);
        assert!(size < 2_000_000, "store is {size} bytes");

        let pending = pending_deliveries(&store, i64::MAX, 1000).await?;
        assert_eq!(pending.len(), 501);
        assert!(pending[..500].iter().all(|p| p.record.extra == big));
        assert_eq!(pending[500].record, changed);
        let recent = store.recent_checks("c", 2).await?;
        assert_eq!(recent[0], changed);
        assert_eq!(recent[1], records[499]);
        Ok(())
    }
}
