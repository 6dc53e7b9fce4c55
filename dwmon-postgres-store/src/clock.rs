//! [`DatabaseClock`]: the runner's [`Clock`] on the database's time, so several runners agree
//! on the cycle's minute whatever their own clocks say.

use crate::PostgresStore;
use async_trait::async_trait;
use dwmon_core::engine::Clock;
use dwmon_core::StoreError;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// This host's clock, epoch milliseconds.
pub type HostClock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Differences from the database's clock smaller than this are not worth a warning.
const WARN_SKEW_MILLIS: i64 = 2_000;

/// A [`Clock`] reading the database's time: this host's clock corrected by the skew measured
/// against the database (`clock_timestamp()`, halfway through the round trip), measured again
/// before every sleep of the runner's loop (once a cycle). A skew of more than 2 s is logged
/// as a warning when first measured and again whenever it changes by more than a second
/// (every measurement is logged at debug level); the last one is
/// [`DatabaseClock::skew_millis`], which `dwmon serve` exports as `dwmon_clock_skew_seconds`.
///
/// ```no_run
/// # async fn run(store: dwmon_postgres_store::PostgresStore) -> Result<(), dwmon_core::StoreError> {
/// use dwmon_core::engine::Clock;
/// let clock = dwmon_postgres_store::DatabaseClock::new(store).await?;
/// let minute = clock.now() / 60 * 60; // the database's minute, on every runner
/// # Ok(()) }
/// ```
pub struct DatabaseClock {
    store: PostgresStore,
    host: HostClock,
    skew_ms: AtomicI64,
}

impl std::fmt::Debug for DatabaseClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseClock")
            .field("store", &self.store.location())
            .field("skew_ms", &self.skew_millis())
            .finish_non_exhaustive()
    }
}

fn system_millis() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

impl DatabaseClock {
    /// A clock following `store`'s database, measured once now.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn new(store: PostgresStore) -> Result<Self, StoreError> {
        Self::with_host_clock(store, Arc::new(system_millis)).await
    }

    /// As [`DatabaseClock::new`], correcting `host` (epoch milliseconds) instead of the
    /// system clock.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn with_host_clock(
        store: PostgresStore,
        host: HostClock,
    ) -> Result<Self, StoreError> {
        let clock = DatabaseClock {
            store,
            host,
            skew_ms: AtomicI64::new(0),
        };
        clock.measure().await?;
        Ok(clock)
    }

    /// Measures the skew again; returns it (database minus host, milliseconds).
    ///
    /// # Errors
    /// When the database cannot be read; the last skew stays in use.
    pub async fn measure(&self) -> Result<i64, StoreError> {
        let before = (self.host)();
        let database = self.store.database_millis().await?;
        let after = (self.host)();
        let skew = database - (before + (after - before) / 2);
        let previous = self.skew_ms.swap(skew, Ordering::Relaxed);
        let seconds = skew as f64 / 1000.0;
        if skew.abs() > WARN_SKEW_MILLIS && (skew - previous).abs() > WARN_SKEW_MILLIS / 2 {
            tracing::warn!(
                store = %self.store.location(),
                skew_ms = skew,
                "this host's clock differs from the database's by {seconds:+.3} s; the \
                 database's is used"
            );
        } else {
            tracing::debug!(skew_ms = skew, "clock skew against the database measured");
        }
        Ok(skew)
    }

    /// The database's clock minus this host's, milliseconds, as last measured.
    pub fn skew_millis(&self) -> i64 {
        self.skew_ms.load(Ordering::Relaxed)
    }

    fn now_millis(&self) -> i64 {
        (self.host)().saturating_add(self.skew_millis())
    }
}

#[async_trait]
impl Clock for DatabaseClock {
    fn now(&self) -> i64 {
        self.now_millis().div_euclid(1000)
    }

    async fn sleep_until(&self, epoch_seconds: i64) {
        if let Err(error) = self.measure().await {
            tracing::warn!(%error, "cannot read the database's clock; keeping the last skew");
        }
        let wait = epoch_seconds
            .saturating_mul(1000)
            .saturating_sub(self.now_millis());
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(wait.unsigned_abs())).await;
        }
    }
}
