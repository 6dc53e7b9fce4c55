//! [`Clock`]: where [`super::Engine::run`] gets the time; [`SystemClock`] is the wall clock.

use async_trait::async_trait;

/// A source of time for [`Engine::run`](super::Engine::run). [`SystemClock`] is the real one; tests use a fake
/// (see `testutil::TokioClock`, feature `test-util`) so the loop runs under Tokio's paused
/// time.
#[async_trait]
pub trait Clock: Send + Sync {
    /// The current Unix time in seconds.
    fn now(&self) -> i64;
    /// Returns once [`Clock::now`] is at least `epoch_seconds`.
    async fn sleep_until(&self, epoch_seconds: i64);
}

/// The wall clock: the only place in dwmon-core that reads it.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> i64 {
        chrono::Utc::now().timestamp()
    }

    async fn sleep_until(&self, epoch_seconds: i64) {
        let target = chrono::DateTime::from_timestamp(epoch_seconds, 0).unwrap_or_default();
        let wait = (target - chrono::Utc::now()).to_std().unwrap_or_default();
        tokio::time::sleep(wait).await;
    }
}
