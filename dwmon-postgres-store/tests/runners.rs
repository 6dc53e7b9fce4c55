//! Several runners on one PostgreSQL store, each a real `Engine` with a store handle of its
//! own: every minute is recorded exactly once and delivered at least once, a runner whose
//! fetch outlives its lease is refused by the fence, a runner that dies mid-cycle has its
//! checkers taken over and its missed minutes checked once, and a runner whose clock is an
//! hour off changes nothing.

mod common;

use async_trait::async_trait;
use dwmon_core::engine::Clock;
use dwmon_core::testutil::{checker, every_minute, RecordingHandler, ScriptedSource};
use dwmon_core::{Engine, FetchRequest, Fetched, Row, RowGetter, SourceError, Store, StoreView};
use dwmon_postgres_store::{DatabaseClock, PostgresStore};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const MIN: i64 = 60;

/// A minute 40 minutes before the database's clock (records may not be ahead of it).
async fn past_minute(store: &PostgresStore) -> Result<i64, dwmon_core::StoreError> {
    Ok((store.database_millis().await? / 1000 / MIN - 40) * MIN)
}

fn engine(
    store: &PostgresStore,
    source: Arc<dyn RowGetter>,
    handler: Arc<RecordingHandler>,
    names: &[String],
) -> Engine {
    let store: Arc<dyn Store> = Arc::new(store.clone());
    let checkers = names
        .iter()
        .map(|name| checker(name, vec![every_minute(1, 5, 60)]))
        .collect();
    Engine::new(source, store, handler).with_checkers(checkers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runners_record_every_minute_exactly_once_and_share_the_checkers() -> TestResult {
    let Some(url) = common::server().await else {
        return Ok(());
    };
    let (schema_url, schema) = common::fresh_schema(&url, "two_runners").await;
    let one = common::store(&schema_url, "one", 120).await;
    let two = common::store(&schema_url, "two", 120).await;
    let t0 = past_minute(&one).await?;
    let names: Vec<String> = (0..6).map(|i| format!("c{i}")).collect();
    let source = Arc::new(ScriptedSource::new());
    for name in &names {
        source.set_rows(name, vec![Row::new(format!("{name}-k"), t0 - 30)]);
    }
    let (h1, h2) = (
        Arc::new(RecordingHandler::new()),
        Arc::new(RecordingHandler::new()),
    );
    let e1 = Arc::new(engine(&one, source.clone(), h1.clone(), &names));
    let e2 = Arc::new(engine(&two, source.clone(), h2.clone(), &names));
    let cycles = 20;
    let mut errors = Vec::new();
    for i in 0..cycles + 1 {
        // The last round only delivers what is left (its minute is the one before).
        let now = t0 + i.min(cycles - 1) * MIN + 5 + i / cycles;
        let (a, b) = (e1.clone(), e2.clone());
        let (r1, r2) = tokio::join!(
            tokio::spawn(async move { a.run_cycle(now).await }),
            tokio::spawn(async move { b.run_cycle(now).await })
        );
        for report in [r1?, r2?] {
            errors.extend(report.errors().map(|e| e.error.clone()));
        }
    }
    let mut delivered: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for record in h1.checks().into_iter().chain(h2.checks()) {
        delivered
            .entry(record.idempotency_key())
            .or_default()
            .insert(record.count);
    }
    let mut logged = Vec::new();
    for name in &names {
        let log = one
            .checks_before(name, (i64::MAX, usize::MAX), 1000)
            .await?;
        logged.push(log.iter().map(|r| r.minute).collect::<Vec<i64>>());
    }
    let summary = two.outbox_summary().await?;
    let (by_one, by_two) = (h1.checks().len(), h2.checks().len());
    common::drop_schema(&url, &schema).await;

    assert!(errors.is_empty(), "no runner reported an error: {errors:?}");
    let minutes: Vec<i64> = (0..cycles).rev().map(|i| t0 + i * MIN).collect();
    for (name, log) in names.iter().zip(&logged) {
        assert_eq!(log, &minutes, "{name}: every minute once, none missing");
    }
    assert_eq!(
        delivered.len(),
        names.len() * minutes.len(),
        "every record delivered"
    );
    assert!(
        delivered.values().all(|counts| counts.len() == 1),
        "a redelivery carries the recorded version"
    );
    assert_eq!(summary.pending, 0, "the outbox is empty");
    assert!(
        by_one > 0 && by_two > 0,
        "both runners checked some checkers ({by_one} and {by_two} deliveries)"
    );
    Ok(())
}

/// A source whose first fetch outlives the runner's lease: meanwhile another runner takes the
/// checker over and checks the minute.
struct SlowFetch {
    takeover: Mutex<Option<(Arc<Engine>, i64)>>,
    rows: Vec<Row>,
}

#[async_trait]
impl RowGetter for SlowFetch {
    async fn get_rows(&self, _request: &FetchRequest<'_>) -> Result<Fetched, SourceError> {
        let takeover = self
            .takeover
            .lock()
            .map(|mut t| t.take())
            .unwrap_or_default();
        if let Some((engine, now)) = takeover {
            engine.run_cycle(now).await;
        }
        Ok(Fetched::from_rows(self.rows.clone()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_that_outlives_its_lease_is_refused_by_the_fence() -> TestResult {
    let Some(url) = common::server().await else {
        return Ok(());
    };
    let (schema_url, schema) = common::fresh_schema(&url, "fence").await;
    // A lease of 0 s: every fetch of the slow runner outlives it.
    let slow_store = common::store(&schema_url, "slow", 0).await;
    let new_store = common::store(&schema_url, "new", 120).await;
    let minute = past_minute(&slow_store).await?;
    let names = vec!["orders".to_string()];
    let theirs = Arc::new(ScriptedSource::new());
    theirs.set_rows(
        "orders",
        vec![Row::new("a", minute - 30), Row::new("b", minute - 20)],
    );
    let (slow_handler, new_handler) = (
        Arc::new(RecordingHandler::new()),
        Arc::new(RecordingHandler::new()),
    );
    let new_runner = Arc::new(engine(&new_store, theirs, new_handler.clone(), &names));
    let slow_source = Arc::new(SlowFetch {
        takeover: Mutex::new(Some((new_runner, minute + 5))),
        rows: vec![Row::new("c", minute - 10)],
    });
    let slow_runner = engine(&slow_store, slow_source, slow_handler.clone(), &names);
    let report = slow_runner.run_cycle(minute + 5).await;
    let log = slow_store
        .checks_before("orders", (i64::MAX, usize::MAX), 10)
        .await?;
    let summary = slow_store.outbox_summary().await?;
    common::drop_schema(&url, &schema).await;

    let errors: Vec<_> = report.errors().collect();
    assert!(
        errors.is_empty(),
        "losing the checker is no error: {errors:?}"
    );
    assert_eq!(
        report.checks().count(),
        0,
        "the stale runner recorded nothing"
    );
    assert!(slow_handler.checks().is_empty());
    let logged: Vec<(i64, u64)> = log.iter().map(|r| (r.minute, r.count)).collect();
    assert_eq!(logged, [(minute, 2)], "the new owner's check, once");
    let delivered: Vec<(i64, u64)> = new_handler
        .checks()
        .iter()
        .map(|r| (r.minute, r.count))
        .collect();
    assert_eq!(delivered, [(minute, 2)]);
    assert_eq!(summary.pending, 0);
    Ok(())
}

fn system_millis() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_whose_clock_is_an_hour_off_changes_nothing() -> TestResult {
    let Some(url) = common::server().await else {
        return Ok(());
    };
    let (schema_url, schema) = common::fresh_schema(&url, "clock").await;
    let honest_store = common::store(&schema_url, "honest", 120).await;
    let skewed_store = common::store(&schema_url, "skewed", 120).await;
    const HOUR_MS: i64 = 3_600_000;
    let honest = DatabaseClock::new(honest_store.clone()).await?;
    let ahead = DatabaseClock::with_host_clock(
        skewed_store.clone(),
        Arc::new(|| system_millis() + HOUR_MS),
    )
    .await?;
    let behind = DatabaseClock::with_host_clock(
        skewed_store.clone(),
        Arc::new(|| system_millis() - HOUR_MS),
    )
    .await?;
    let names = vec!["orders".to_string()];
    let source = Arc::new(ScriptedSource::new());
    let handler = Arc::new(RecordingHandler::new());
    let honest_runner = engine(&honest_store, source.clone(), handler.clone(), &names);
    let skewed_runner = engine(&skewed_store, source.clone(), handler.clone(), &names);
    let mut minutes = BTreeSet::new();
    for clock in [&honest, &ahead, &behind] {
        minutes.insert(clock.now() / MIN);
    }
    // Without the database's clock, a runner an hour ahead would record minutes that have
    // not happened: the store refuses them.
    let raw = skewed_runner.run_cycle(honest.now() + 3600).await;
    let refused = raw.errors().count();
    honest_runner.run_cycle(honest.now()).await;
    let report = skewed_runner.run_cycle(ahead.now()).await;
    let late = skewed_runner.run_cycle(behind.now()).await;
    let database_now = honest_store.database_millis().await? / 1000;
    let log = honest_store
        .checks_before("orders", (i64::MAX, usize::MAX), 10)
        .await?;
    common::drop_schema(&url, &schema).await;

    assert!(
        (ahead.skew_millis() + HOUR_MS).abs() < 5_000
            && (behind.skew_millis() - HOUR_MS).abs() < 5_000,
        "the skew is measured: {} and {}",
        ahead.skew_millis(),
        behind.skew_millis()
    );
    assert!(
        minutes.len() <= 2,
        "all three clocks read the database's minute (or the next): {minutes:?}"
    );
    assert!(
        refused > 0,
        "a record an hour ahead of the database is refused"
    );
    assert!(report.errors().next().is_none() && late.errors().next().is_none());
    assert!(!log.is_empty());
    assert!(
        log.iter().all(|r| r.minute <= database_now),
        "no minute after the database's clock: {:?}",
        log.iter().map(|r| r.minute).collect::<Vec<_>>()
    );
    let mut seen = BTreeSet::new();
    assert!(log
        .iter()
        .all(|r| seen.insert((r.requirement_index, r.minute))));
    Ok(())
}

/// A source that never answers: the runner holding it is stuck in its fetch until killed.
struct Hang {
    fetching: Arc<tokio::sync::Notify>,
}

#[async_trait]
impl RowGetter for Hang {
    async fn get_rows(&self, _request: &FetchRequest<'_>) -> Result<Fetched, SourceError> {
        self.fetching.notify_one();
        std::future::pending().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_runners_checkers_are_taken_over_and_its_missed_minutes_checked_once() -> TestResult
{
    let Some(url) = common::server().await else {
        return Ok(());
    };
    let (schema_url, schema) = common::fresh_schema(&url, "takeover").await;
    let a_store = common::store(&schema_url, "a", 120).await;
    let b_store = common::store(&schema_url, "b", 120).await;
    let t0 = past_minute(&a_store).await?;
    let names: Vec<String> = (0..6).map(|i| format!("c{i}")).collect();
    let source = Arc::new(ScriptedSource::new());
    for name in &names {
        source.set_rows(name, vec![Row::new(format!("{name}-k"), t0 - 30)]);
    }
    let (ha, hb) = (
        Arc::new(RecordingHandler::new()),
        Arc::new(RecordingHandler::new()),
    );
    let a = Arc::new(engine(&a_store, source.clone(), ha.clone(), &names));
    let b = Arc::new(engine(&b_store, source.clone(), hb.clone(), &names));
    // Both runners alive for three minutes: by then they share the checkers.
    for i in 0..3 {
        let now = t0 + i * MIN + 5;
        let (ea, eb) = (a.clone(), b.clone());
        let (ra, rb) = tokio::join!(
            tokio::spawn(async move { ea.run_cycle(now).await }),
            tokio::spawn(async move { eb.run_cycle(now).await })
        );
        assert!(ra?.errors().next().is_none() && rb?.errors().next().is_none());
    }
    let admin = common::admin(&schema_url).await;
    let held: Vec<String> = admin
        .query(
            "SELECT checker FROM dwmon_claims WHERE owner = 'a' ORDER BY checker",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    // A dies in the middle of its next cycle: it has claimed its checkers (new fences) and
    // is fetching when its task, with every checker task of the cycle, is dropped.
    let fetching = Arc::new(tokio::sync::Notify::new());
    let dying = Arc::new(engine(
        &a_store,
        Arc::new(Hang {
            fetching: fetching.clone(),
        }),
        ha.clone(),
        &names,
    ));
    let cycle = tokio::spawn(async move { dying.run_cycle(t0 + 3 * MIN + 5).await });
    fetching.notified().await;
    cycle.abort();
    let _ = cycle.await;
    drop(a);
    drop(a_store);
    // Within A's lease B checks its own checkers only: A's minutes wait.
    let within = b.run_cycle(t0 + 3 * MIN + 5).await;
    let waiting: i64 = admin
        .query_one(
            "SELECT count(*) FROM dwmon_checkers WHERE name = ANY($1) AND last_minute < $2",
            &[&held, &(t0 + 3 * MIN)],
        )
        .await?
        .get(0);
    // A's lease runs out: the database's clock is moved past it for A's rows (its claims
    // and its heartbeat), as if a lease had gone by since A died.
    admin
        .batch_execute(
            "UPDATE dwmon_claims SET until = until - interval '1 hour' WHERE owner = 'a';
             UPDATE dwmon_runners SET seen = seen - interval '1 hour' WHERE owner = 'a'",
        )
        .await?;
    let mut after = Vec::new();
    for i in 4..7 {
        after.push(b.run_cycle(t0 + i * MIN + 5).await);
    }
    // The last round only delivers what is left.
    b.run_cycle(t0 + 6 * MIN + 6).await;
    let owners: Vec<String> = admin
        .query("SELECT DISTINCT owner FROM dwmon_claims", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut logged = Vec::new();
    for name in &names {
        let log = b_store
            .checks_before(name, (i64::MAX, usize::MAX), 1000)
            .await?;
        logged.push(log.iter().map(|r| r.minute).collect::<Vec<i64>>());
    }
    let summary = b_store.outbox_summary().await?;
    common::drop_schema(&url, &schema).await;

    assert!(
        !held.is_empty() && held.len() < names.len(),
        "the runners shared the checkers: A held {held:?}"
    );
    assert!(within.errors().next().is_none());
    assert_eq!(
        waiting,
        held.len() as i64,
        "A's checkers wait for its lease"
    );
    for report in &after {
        let errors: Vec<_> = report.errors().collect();
        assert!(errors.is_empty(), "B reported no error: {errors:?}");
    }
    assert_eq!(owners, ["b"], "B took every checker over");
    let minutes: Vec<i64> = (0..7).rev().map(|i| t0 + i * MIN).collect();
    for (name, log) in names.iter().zip(&logged) {
        assert_eq!(
            log, &minutes,
            "{name}: every minute once, the ones A missed caught up"
        );
    }
    // The minute A missed and the later ones of its checkers delivered by B, once each.
    let mut by_b: BTreeMap<String, usize> = BTreeMap::new();
    for record in hb.checks() {
        *by_b.entry(record.idempotency_key()).or_default() += 1;
    }
    for name in &held {
        for minute in (3..7).map(|i| t0 + i * MIN) {
            let key = format!("{name}/0/{minute}");
            assert_eq!(
                by_b.get(&key),
                Some(&1),
                "{key} delivered by B once: {by_b:?}"
            );
        }
    }
    assert_eq!(summary.pending, 0, "the outbox is empty");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_joining_takes_its_share_without_a_minute_left_for_later() -> TestResult {
    let Some(url) = common::server().await else {
        return Ok(());
    };
    let (schema_url, schema) = common::fresh_schema(&url, "joining").await;
    let a_store = common::store(&schema_url, "a", 120).await;
    let b_store = common::store(&schema_url, "b", 120).await;
    let t0 = past_minute(&a_store).await?;
    let names: Vec<String> = (0..6).map(|i| format!("c{i}")).collect();
    let source = Arc::new(ScriptedSource::new());
    for name in &names {
        source.set_rows(name, vec![Row::new(format!("{name}-k"), t0 - 30)]);
    }
    let (ha, hb) = (
        Arc::new(RecordingHandler::new()),
        Arc::new(RecordingHandler::new()),
    );
    let a = engine(&a_store, source.clone(), ha.clone(), &names);
    let b = engine(&b_store, source.clone(), hb.clone(), &names);
    let admin = common::admin(&schema_url).await;
    // Each round's checkers at that round's minute, and the claims each runner then holds.
    let mut rounds = Vec::new();
    let mut errors = Vec::new();
    for i in 0..4 {
        let now = t0 + i * MIN + 5;
        // A alone first; from then on B claims first each minute, while A holds every
        // checker (the order in which B would otherwise get none this minute, and A would
        // let half of them wait for the next).
        if i > 0 {
            errors.extend(b.run_cycle(now).await.errors().map(|e| e.error.clone()));
        }
        errors.extend(a.run_cycle(now).await.errors().map(|e| e.error.clone()));
        let at_minute: i64 = admin
            .query_one(
                "SELECT count(*) FROM dwmon_checkers WHERE last_minute = $1",
                &[&(t0 + i * MIN)],
            )
            .await?
            .get(0);
        let held: Vec<(String, i64)> = admin
            .query(
                "SELECT coalesce(owner, '-'), count(*) FROM dwmon_claims
                 GROUP BY 1 ORDER BY 1",
                &[],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        rounds.push((at_minute, held));
    }
    let mut logged = Vec::new();
    for name in &names {
        let log = a_store
            .checks_before(name, (i64::MAX, usize::MAX), 100)
            .await?;
        logged.push(log.iter().map(|r| r.minute).collect::<Vec<i64>>());
    }
    common::drop_schema(&url, &schema).await;

    assert!(errors.is_empty(), "no runner reported an error: {errors:?}");
    for (i, (at_minute, _)) in rounds.iter().enumerate() {
        assert_eq!(
            *at_minute, 6,
            "round {i}: every checker's minute recorded in its own cycle: {rounds:?}"
        );
    }
    let shared = vec![("a".to_string(), 3), ("b".to_string(), 3)];
    assert_eq!(
        rounds[3].1, shared,
        "the runners share the checkers: {rounds:?}"
    );
    let minutes: Vec<i64> = (0..4).rev().map(|i| t0 + i * MIN).collect();
    for (name, log) in names.iter().zip(&logged) {
        assert_eq!(log, &minutes, "{name}: every minute once");
    }
    Ok(())
}
