//! [`PingLog`]: where a push checker's pings are committed (their first-seen rows) and its
//! history is kept (the last pings, with what each said), for `dwmon serve`.
//!
//! A ping is committed as one [`Ping`]: the row the requirements count (in the series of its
//! kind, [`series`]) and the [`PingEntry`] the history shows. An implementation commits both
//! together, so a ping answered `200` is counted and shown, and keeps the last `keep`
//! entries of each checker. [`MemoryPingLog`] keeps the history in memory over any
//! [`Store`]; the SQLite store (`dwmon-sqlite`) commits the rows and the entries of a batch
//! in one transaction.
//!
//! Each log also keeps the checker's *runs* ([`Run`]): every start, and the finish paired
//! with it as [`run_duration`] pairs them (the latest open start of the same `rid=`), for
//! the `MINDURATION` / `MAXDURATION` bounds ([`crate::runs`]). Runs are not limited to the
//! history's `keep` entries: they cover the whole lookback window of the requirements.

use crate::ping::{series, PingKind};
use crate::runs::Run;
use crate::source::Row;
use crate::store::{Store, StoreError};
use async_trait::async_trait;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// One received ping, as the history keeps it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PingEntry {
    /// The push checker pinged.
    pub checker: String,
    /// What it said.
    pub kind: PingKind,
    /// When it was received (epoch seconds, runner clock).
    pub time: i64,
    /// The exit status of `/ping/TOKEN/{0-255}`.
    pub exit_status: Option<u8>,
    /// The `rid=` run id.
    pub rid: Option<String>,
    /// For a finish (success or fail): seconds since its start ([`run_duration`]).
    /// Filled in by the [`PingLog`] when the ping is committed.
    pub duration_seconds: Option<i64>,
    /// The client address.
    pub remote_addr: Option<String>,
    /// The `User-Agent` header.
    pub user_agent: Option<String>,
    /// The body (lossy UTF-8, at most the server's body limit).
    pub body: String,
}

impl PingEntry {
    /// An entry of `kind` for `checker` at `time` with nothing else known.
    pub fn new(checker: impl Into<String>, kind: PingKind, time: i64) -> Self {
        PingEntry {
            checker: checker.into(),
            kind,
            time,
            exit_status: None,
            rid: None,
            duration_seconds: None,
            remote_addr: None,
            user_agent: None,
            body: String::new(),
        }
    }

    /// Whether the ping ends a run: a success or a failure (exit statuses included).
    pub fn is_finish(&self) -> bool {
        matches!(self.kind, PingKind::Success | PingKind::Fail)
    }
}

/// A ping to commit: the row it counts as and its history entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ping {
    /// The first-seen row, stored in [`series`]`(entry.checker, entry.kind)`: `key=` or a
    /// random key, the receive time.
    pub row: Row,
    /// What the history shows.
    pub entry: PingEntry,
}

impl Ping {
    /// The store series of this ping's row.
    pub fn series(&self) -> String {
        series(&self.entry.checker, self.entry.kind)
    }
}

/// The duration of the run `finish` ends: seconds since its start, the latest start of the
/// same checker with the same `rid` (both without one, or both the same) that no later
/// finish has ended. `history` is the checker's earlier entries, newest first. `None` for a
/// ping that is not a finish, or when no open start is in `history`.
///
/// ```
/// use dwmon_core::ping::PingKind;
/// use dwmon_core::ping_log::{run_duration, PingEntry};
/// let start = |t| PingEntry::new("job", PingKind::Start, t);
/// let finish = PingEntry::new("job", PingKind::Success, 100);
/// // Two overlapping runs without rid: the finish ends the later start.
/// assert_eq!(run_duration(&[start(70), start(10)], &finish), Some(30));
/// ```
pub fn run_duration(history: &[PingEntry], finish: &PingEntry) -> Option<i64> {
    if !finish.is_finish() {
        return None;
    }
    let mut closed = 0_usize;
    for earlier in history.iter().filter(|e| e.rid == finish.rid) {
        match earlier.kind {
            PingKind::Start if closed == 0 => {
                return Some(finish.time.saturating_sub(earlier.time));
            }
            PingKind::Start => closed -= 1,
            PingKind::Success | PingKind::Fail => closed += 1,
            PingKind::Log => {}
        }
    }
    None
}

/// Commits pings and keeps each push checker's recent history.
///
/// Implementations commit a whole batch or nothing: after `Ok`, every ping's row is
/// counted and its entry is in the history (with its [`run_duration`] filled in); after
/// `Err`, none is.
///
/// ```
/// use dwmon_core::ping::PingKind;
/// use dwmon_core::ping_log::{MemoryPingLog, Ping, PingEntry, PingLog};
/// use dwmon_core::{MemoryStore, Row, RowStore, Store};
/// use std::sync::Arc;
///
/// # futures::executor::block_on(async {
/// let store = Arc::new(MemoryStore::new());
/// let log = MemoryPingLog::new(store.clone());
/// let start = Ping { row: Row::new("a", 100), entry: PingEntry::new("job", PingKind::Start, 100) };
/// let done = Ping { row: Row::new("b", 130), entry: PingEntry::new("job", PingKind::Success, 130) };
/// log.record_pings(&[start, done], 100).await?;
/// assert_eq!(store.count("job", 0, 200).await?, 1);
/// let history = log.recent_pings("job", 10).await?;
/// assert_eq!((history[0].kind, history[0].duration_seconds), (PingKind::Success, Some(30)));
/// # Ok::<(), dwmon_core::StoreError>(())
/// # }).unwrap();
/// ```
#[async_trait]
pub trait PingLog: Send + Sync {
    /// Commits `pings` in order: each one's row first-seen in its series, and its entry in
    /// its checker's history, keeping that checker's newest `keep` entries (at least 1).
    ///
    /// # Errors
    /// Any backend failure; then none of the batch is committed.
    async fn record_pings(&self, pings: &[Ping], keep: usize) -> Result<(), StoreError>;

    /// The newest `limit` entries of `checker`'s history, newest first.
    ///
    /// # Errors
    /// Any backend failure.
    async fn recent_pings(&self, checker: &str, limit: usize)
        -> Result<Vec<PingEntry>, StoreError>;

    /// `checker`'s runs that started or finished at `from <= t < to`, in the order their
    /// starts were committed, each with its finish whenever that came (also at `t >= to`).
    /// A start whose row key was stored before (a retry with the same `key=`) opens no run.
    /// A start is paired, when its finish is committed, with that finish: the finish of
    /// [`PingEntry::is_finish`] kind ends the latest open start of the same `rid` (both
    /// without one, or both the same), as [`run_duration`] says; a finish with no open start
    /// is no run. Runs are kept durably by stores whose history is durable, and purged with
    /// the checker's rows ([`RowStore::purge`](crate::RowStore::purge) of the checker's own
    /// name deletes the runs that finished, or, still open, started, before its cutoff).
    ///
    /// # Errors
    /// Any backend failure.
    async fn runs(&self, checker: &str, from: i64, to: i64) -> Result<Vec<Run>, StoreError>;
}

macro_rules! forward_ping_log {
    ($($ty:ty),*) => {$(
        #[async_trait]
        impl<T: PingLog + ?Sized> PingLog for $ty {
            async fn record_pings(&self, pings: &[Ping], keep: usize) -> Result<(), StoreError> {
                (**self).record_pings(pings, keep).await
            }
            async fn recent_pings(&self, checker: &str, limit: usize) -> Result<Vec<PingEntry>, StoreError> {
                (**self).recent_pings(checker, limit).await
            }
            async fn runs(&self, checker: &str, from: i64, to: i64) -> Result<Vec<Run>, StoreError> {
                (**self).runs(checker, from, to).await
            }
        }
    )*};
}

forward_ping_log!(&T, Box<T>, Arc<T>);

/// A [`PingLog`] writing rows to any [`Store`] and keeping the history and the runs in
/// memory (lost on restart; for stores other than SQLite, and tests). Rows are committed
/// first, then the entries are kept. It keeps the newest [`MemoryPingLog::RUNS_KEPT`] runs
/// of each checker and is never purged.
pub struct MemoryPingLog {
    store: Arc<dyn Store>,
    history: Mutex<Kept>,
}

/// What a [`MemoryPingLog`] keeps, by checker.
#[derive(Default)]
struct Kept {
    entries: HashMap<String, VecDeque<PingEntry>>,
    runs: HashMap<String, VecDeque<Run>>,
}

/// Pairs `entry` with `runs` (oldest first): a start opens a run, a finish ends the latest
/// open run of its `rid`. Answers the finish's duration.
fn pair(runs: &mut VecDeque<Run>, entry: &PingEntry) -> Option<i64> {
    match entry.kind {
        PingKind::Start => {
            runs.push_back(Run {
                start: entry.time,
                rid: entry.rid.clone(),
                finish: None,
            });
            None
        }
        PingKind::Success | PingKind::Fail => {
            let open = runs
                .iter_mut()
                .rev()
                .find(|r| r.finish.is_none() && r.rid == entry.rid)?;
            open.finish = Some(entry.time);
            open.duration()
        }
        PingKind::Log => None,
    }
}

impl std::fmt::Debug for MemoryPingLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryPingLog").finish_non_exhaustive()
    }
}

impl MemoryPingLog {
    /// A log committing rows to `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        MemoryPingLog {
            store,
            history: Mutex::new(Kept::default()),
        }
    }

    /// How many runs of each checker the log keeps (the oldest go first).
    pub const RUNS_KEPT: usize = 100_000;
}

#[async_trait]
impl PingLog for MemoryPingLog {
    async fn record_pings(&self, pings: &[Ping], keep: usize) -> Result<(), StoreError> {
        let mut by_series: Vec<(String, Vec<Row>)> = Vec::new();
        // Whether each start's row is new: a start retried with its key opens no second run.
        let mut new_starts = Vec::with_capacity(pings.len());
        for ping in pings {
            let series = ping.series();
            if ping.entry.kind == PingKind::Start {
                let new = self
                    .store
                    .insert_first_seen(&series, std::slice::from_ref(&ping.row))
                    .await?;
                new_starts.push(new > 0);
                continue;
            }
            new_starts.push(false);
            match by_series.iter_mut().find(|(s, _)| *s == series) {
                Some((_, rows)) => rows.push(ping.row.clone()),
                None => by_series.push((series, vec![ping.row.clone()])),
            }
        }
        for (series, rows) in &by_series {
            self.store.insert_first_seen(series, rows).await?;
        }
        let mut kept = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let kept = &mut *kept;
        for (ping, new_start) in pings.iter().zip(new_starts) {
            let mut entry = ping.entry.clone();
            let runs = kept.runs.entry(entry.checker.clone()).or_default();
            if entry.kind != PingKind::Start || new_start {
                entry.duration_seconds = pair(runs, &entry);
            }
            while runs.len() > Self::RUNS_KEPT {
                runs.pop_front();
            }
            let entries = kept.entries.entry(entry.checker.clone()).or_default();
            entries.push_back(entry);
            while entries.len() > keep.max(1) {
                entries.pop_front();
            }
        }
        Ok(())
    }

    async fn recent_pings(
        &self,
        checker: &str,
        limit: usize,
    ) -> Result<Vec<PingEntry>, StoreError> {
        let kept = self.history.lock().unwrap_or_else(|e| e.into_inner());
        Ok(kept
            .entries
            .get(checker)
            .map(|entries| entries.iter().rev().take(limit).cloned().collect())
            .unwrap_or_default())
    }

    async fn runs(&self, checker: &str, from: i64, to: i64) -> Result<Vec<Run>, StoreError> {
        let kept = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let within = |t: i64| from <= t && t < to;
        Ok(kept
            .runs
            .get(checker)
            .map(|runs| {
                runs.iter()
                    .filter(|r| within(r.start) || r.finish.is_some_and(within))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MemoryStore, RowStore};

    fn entry(kind: PingKind, time: i64, rid: Option<&str>) -> PingEntry {
        PingEntry {
            rid: rid.map(str::to_string),
            ..PingEntry::new("job", kind, time)
        }
    }

    #[test]
    fn a_finish_ends_the_latest_open_start_of_its_rid() {
        use PingKind::{Fail, Log, Start, Success};
        type Step = (PingKind, i64, Option<&'static str>);
        // (history oldest first, finish, expected duration)
        let cases: &[(&[Step], Step, Option<i64>)] = &[
            (&[], (Success, 100, None), None),
            (&[(Start, 40, None)], (Success, 100, None), Some(60)),
            (&[(Start, 40, None)], (Fail, 100, None), Some(60)),
            (
                &[(Start, 40, None), (Log, 50, None)],
                (Success, 100, None),
                Some(60),
            ),
            // The start was ended already.
            (
                &[(Start, 40, None), (Success, 50, None)],
                (Success, 100, None),
                None,
            ),
            // Overlapping runs without rid: the latest open start.
            (
                &[(Start, 10, None), (Start, 40, None)],
                (Success, 100, None),
                Some(60),
            ),
            (
                &[(Start, 10, None), (Start, 40, None), (Success, 50, None)],
                (Success, 100, None),
                Some(90),
            ),
            // rid= pairs a run's own start, whatever started in between.
            (
                &[(Start, 10, Some("a")), (Start, 40, Some("b"))],
                (Success, 100, Some("a")),
                Some(90),
            ),
            (&[(Start, 10, Some("a"))], (Success, 100, None), None),
            (&[(Start, 10, None)], (Success, 100, Some("a")), None),
            // A start or a log is no finish.
            (&[(Start, 10, None)], (Start, 100, None), None),
            (&[(Start, 10, None)], (Log, 100, None), None),
        ];
        for (history, (kind, time, rid), expected) in cases {
            let mut newest_first: Vec<PingEntry> =
                history.iter().map(|(k, t, r)| entry(*k, *t, *r)).collect();
            newest_first.reverse();
            let finish = entry(*kind, *time, *rid);
            assert_eq!(
                run_duration(&newest_first, &finish),
                *expected,
                "{history:?} then {kind:?} at {time} rid {rid:?}"
            );
        }
    }

    #[tokio::test]
    async fn the_memory_log_counts_rows_once_and_keeps_the_newest_entries() -> Result<(), StoreError>
    {
        let store = Arc::new(MemoryStore::new());
        let log = MemoryPingLog::new(store.clone());
        let ping = |key: &str, kind, time| Ping {
            row: Row::new(key, time),
            entry: entry(kind, time, None),
        };
        log.record_pings(
            &[
                ping("s", PingKind::Start, 10),
                ping("k", PingKind::Success, 20),
                ping("k", PingKind::Success, 30),
                ping("f", PingKind::Fail, 40),
            ],
            3,
        )
        .await?;
        assert_eq!(store.count("job", 0, 100).await?, 1, "key k counts once");
        assert_eq!(store.count("job~fail", 0, 100).await?, 1);
        assert_eq!(store.count("job~start", 0, 100).await?, 1);
        let recent = log.recent_pings("job", 10).await?;
        let got: Vec<(i64, Option<i64>)> = recent
            .iter()
            .map(|e| (e.time, e.duration_seconds))
            .collect();
        assert_eq!(got, [(40, None), (30, None), (20, Some(10))]);
        assert!(log.recent_pings("other", 10).await?.is_empty());
        Ok(())
    }
}
