//! The SQLite ping log: rows and history in one transaction, bounded per checker, durable.

use dwmon_core::ping::PingKind;
use dwmon_core::ping_log::{Ping, PingEntry, PingLog};
use dwmon_core::{Row, RowStore, StoreError, StoreView};
use dwmon_sqlite::{SqliteStore, SqliteStoreOptions};
use std::time::Duration;

fn ping(checker: &str, key: &str, kind: PingKind, time: i64, rid: Option<&str>) -> Ping {
    Ping {
        row: Row::new(key, time),
        entry: PingEntry {
            rid: rid.map(str::to_string),
            exit_status: (kind == PingKind::Fail).then_some(3),
            remote_addr: Some("127.0.0.1".into()),
            user_agent: Some("curl/8".into()),
            body: format!("{kind} at {time}"),
            ..PingEntry::new(checker, kind, time)
        },
    }
}

#[tokio::test]
async fn pings_count_once_and_their_history_survives_a_reopen() -> Result<(), StoreError> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("s.sqlite");
    {
        let store = SqliteStore::open(&path)?;
        store
            .record_pings(
                &[
                    ping("job", "s1", PingKind::Start, 100, Some("a")),
                    ping("job", "s2", PingKind::Start, 110, Some("b")),
                    ping("job", "k", PingKind::Success, 130, Some("b")),
                ],
                10,
            )
            .await?;
        // A retry of key k counts once but shows in the history; a fail ends run a.
        store
            .record_pings(
                &[
                    ping("job", "k", PingKind::Success, 140, Some("b")),
                    ping("job", "f", PingKind::Fail, 190, Some("a")),
                    ping("other", "x", PingKind::Log, 150, None),
                ],
                10,
            )
            .await?;
        assert_eq!(store.count("job", 0, 1000).await?, 1);
    }
    let store = SqliteStore::open(&path)?;
    assert_eq!(store.count("job", 0, 1000).await?, 1);
    assert_eq!(store.count("job~start", 0, 1000).await?, 2);
    assert_eq!(store.count("job~fail", 0, 1000).await?, 1);
    assert_eq!(store.count("other~log", 0, 1000).await?, 1);
    let history = store.recent_pings("job", 10).await?;
    let got: Vec<(PingKind, i64, Option<&str>, Option<i64>)> = history
        .iter()
        .map(|e| (e.kind, e.time, e.rid.as_deref(), e.duration_seconds))
        .collect();
    assert_eq!(
        got,
        [
            (PingKind::Fail, 190, Some("a"), Some(90)),
            (PingKind::Success, 140, Some("b"), None),
            (PingKind::Success, 130, Some("b"), Some(20)),
            (PingKind::Start, 110, Some("b"), None),
            (PingKind::Start, 100, Some("a"), None),
        ]
    );
    let newest = &history[0];
    assert_eq!(newest.exit_status, Some(3));
    assert_eq!(newest.remote_addr.as_deref(), Some("127.0.0.1"));
    assert_eq!(newest.user_agent.as_deref(), Some("curl/8"));
    assert_eq!(newest.body, "fail at 190");
    assert_eq!(newest.checker, "job");
    assert_eq!(store.recent_pings("job", 2).await?.len(), 2);
    assert_eq!(store.recent_pings("other", 10).await?.len(), 1);
    assert!(store.recent_pings("nobody", 10).await?.is_empty());
    // The series are folded into their checker, never listed as checkers.
    let names: Vec<String> = store
        .status()
        .await?
        .into_iter()
        .map(|s| s.checker)
        .collect();
    assert_eq!(names, ["job", "other"]);
    Ok(())
}

#[tokio::test]
async fn the_history_keeps_the_newest_entries_of_each_checker() -> Result<(), StoreError> {
    let store = SqliteStore::open_in_memory()?;
    for t in 0..12 {
        let pings = [
            ping("a", &format!("a{t}"), PingKind::Success, t, None),
            ping("b", &format!("b{t}"), PingKind::Log, t, None),
        ];
        store.record_pings(&pings, 5).await?;
    }
    let times: Vec<i64> = store
        .recent_pings("a", 100)
        .await?
        .iter()
        .map(|e| e.time)
        .collect();
    assert_eq!(times, [11, 10, 9, 8, 7]);
    assert_eq!(store.recent_pings("b", 100).await?.len(), 5);
    // The rows are not bounded by the history: every ping still counts.
    assert_eq!(store.count("a", 0, 100).await?, 12);
    Ok(())
}

#[tokio::test]
async fn a_batch_that_cannot_commit_leaves_neither_rows_nor_history() -> Result<(), StoreError> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("s.sqlite");
    let options = SqliteStoreOptions {
        busy_timeout: Duration::from_millis(100),
        ..SqliteStoreOptions::default()
    };
    let store = SqliteStore::open_with(&path, &options)?;
    // Register the names first, so only the batch's own transaction meets the lock.
    store
        .record_pings(&[ping("job", "warm", PingKind::Start, 1, None)], 10)
        .await?;
    let blocker = rusqlite::Connection::open(&path).expect("second connection");
    blocker.execute_batch("BEGIN IMMEDIATE").expect("lock");
    let failed = store
        .record_pings(&[ping("job", "s", PingKind::Start, 5, None)], 10)
        .await;
    assert!(matches!(failed, Err(StoreError::Busy { .. })), "{failed:?}");
    blocker.execute_batch("ROLLBACK").expect("unlock");
    assert_eq!(store.count("job~start", 0, 100).await?, 1);
    assert_eq!(store.recent_pings("job", 10).await?.len(), 1);
    Ok(())
}

mod pairing {
    //! Run durations paired inside a batch and across batches: the SQLite log pairs in
    //! its runs table inside the batch's transaction, and must pair exactly as if every ping
    //! were committed alone (the memory log is the reference).
    use super::*;
    use dwmon_core::ping_log::MemoryPingLog;
    use dwmon_core::MemoryStore;
    use proptest::prelude::*;
    use std::sync::Arc;

    /// `(checker, kind, rid)` choices: two checkers, starts and finishes, two rids and none.
    fn pings() -> impl Strategy<Value = Vec<(u8, u8, u8)>> {
        prop::collection::vec((0..2_u8, 0..4_u8, 0..3_u8), 1..60)
    }

    fn durations(history: &[PingEntry]) -> Vec<(PingKind, i64, Option<i64>)> {
        history
            .iter()
            .map(|e| (e.kind, e.time, e.duration_seconds))
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn batches_pair_runs_as_single_pings_do(
            choices in pings(),
            cuts in prop::collection::vec(1..8_usize, 1..20),
            keep in 1..6_usize,
        ) {
            let all: Vec<Ping> = choices
                .iter()
                .enumerate()
                .map(|(i, &(c, k, r))| {
                    let kind = [PingKind::Start, PingKind::Success, PingKind::Fail, PingKind::Log][k as usize];
                    let rid = [None, Some("a"), Some("b")][r as usize];
                    ping(["x", "y"][c as usize], &format!("k{i}"), kind, 10 * i as i64, rid)
                })
                .collect();
            let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
            runtime.block_on(async {
                let sqlite = SqliteStore::open_in_memory()?;
                let memory = MemoryPingLog::new(Arc::new(MemoryStore::new()));
                let mut rest = &all[..];
                for cut in cuts.iter().cycle() {
                    if rest.is_empty() {
                        break;
                    }
                    let (batch, after) = rest.split_at((*cut).min(rest.len()));
                    sqlite.record_pings(batch, keep).await?;
                    rest = after;
                }
                for one in &all {
                    memory.record_pings(std::slice::from_ref(one), keep).await?;
                }
                for checker in ["x", "y"] {
                    let got = sqlite.recent_pings(checker, 100).await?;
                    let want = memory.recent_pings(checker, 100).await?;
                    assert_eq!(durations(&got), durations(&want), "{checker}");
                }
                Ok::<(), StoreError>(())
            }).expect("store");
        }
    }
}

#[tokio::test]
async fn runs_pass_the_ping_log_case_and_survive_a_reopen_until_purged(
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("runs.sqlite");
    {
        let store = SqliteStore::open(&path)?;
        dwmon_core::store_conformance::ping_log_runs(&store).await?;
    }
    let store = SqliteStore::open(&path)?;
    let runs = store.runs("job", 0, 1_000).await?;
    let got: Vec<(i64, Option<i64>)> = runs.iter().map(|r| (r.start, r.finish)).collect();
    assert_eq!(
        got,
        [
            (100, Some(200)),
            (110, Some(130)),
            (300, Some(400)),
            (500, Some(530))
        ]
    );
    // (The conformance case's last run, 500 to 530, is outside [0, 450).)
    // One more start, left open. A purge of the checker's rows takes the runs that
    // finished before its cutoff, and the open ones that started before it.
    store
        .record_pings(&[ping("job", "s9", PingKind::Start, 350, None)], 10)
        .await?;
    let starts =
        |runs: Vec<dwmon_core::runs::Run>| -> Vec<i64> { runs.iter().map(|r| r.start).collect() };
    // Another series' purge leaves them.
    store.purge("job~start", 1_000).await?;
    assert_eq!(
        starts(store.runs("job", 0, 450).await?),
        [100, 110, 300, 350]
    );
    store.purge("job", 200).await?;
    assert_eq!(starts(store.runs("job", 0, 450).await?), [100, 300, 350]);
    store.purge("job", 350).await?;
    assert_eq!(starts(store.runs("job", 0, 450).await?), [300, 350]);
    store.purge("job", 351).await?;
    assert_eq!(starts(store.runs("job", 0, 450).await?), [300]);
    store.purge("job", 401).await?;
    assert!(store.runs("job", 0, 450).await?.is_empty());
    Ok(())
}
