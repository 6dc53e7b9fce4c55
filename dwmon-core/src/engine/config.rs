//! [`EngineConfig`]: the engine's timeouts, limits and retry schedule.

use chrono_tz::Tz;
use std::time::Duration;

/// How the engine behaves; every field has a production default ([`EngineConfig::default`]).
///
/// ```
/// use std::time::Duration;
/// let config = dwmon_core::EngineConfig {
///     default_zone: chrono_tz::Europe::Berlin,
///     fetch_timeout: Duration::from_secs(20),
///     ..Default::default()
/// };
/// # assert_eq!(config.max_concurrent_checkers, 8);
/// ```
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Zone for checkers without `__TIMEZONE__` (default UTC).
    pub default_zone: Tz,
    /// How many checkers of one source (`__SOURCE__` name) are fetched and evaluated at the
    /// same time (default 8; 0 acts as 1). Each source has its own limit, so hung queries on
    /// one source never take the slots of another source's checkers.
    pub max_concurrent_checkers: usize,
    /// A fetch taking longer is abandoned and reported as an `ERROR` event (default 60 s).
    pub fetch_timeout: Duration,
    /// How often the cycle renews its claims while its checkers are still at work
    /// ([`CheckLog::renew`](crate::store::CheckLog::renew)), so a checker whose work ends
    /// after the store's lease (it waited for a slot or its parent, or its fetch was slow)
    /// keeps its claim. Only claims that expire are renewed (a single-runner
    /// store's never do); `Duration::ZERO` never renews. Default 40 s, a third of the
    /// PostgreSQL store's default lease of 120 s: keep it well below the lease.
    pub claim_renew_interval: Duration,
    /// Fetches slower than this are logged as warnings (default 10 s).
    pub slow_fetch_warning: Duration,
    /// A handler call taking longer counts as a failed delivery (default 30 s).
    pub delivery_timeout: Duration,
    /// First retry delay after a failed delivery, in seconds; doubles per failure (default 30).
    pub retry_base_seconds: i64,
    /// Longest retry delay, in seconds (default 3600).
    pub retry_max_seconds: i64,
    /// A handler target ([`CheckHandler::targets`](crate::CheckHandler::targets)) whose oldest undelivered record of a
    /// checker was first tried more than this many seconds ago and fails again is given up
    /// for all of that checker's records it still owes, with one `ERROR` event of kind
    /// [`ErrorKind::DeliveryGivenUp`](crate::ErrorKind::DeliveryGivenUp) (default 86 400, a day; 0 or less: never give up).
    pub delivery_give_up_seconds: i64,
    /// At most this many outbox entries are read per cycle (default 10 000).
    pub outbox_batch_limit: usize,
    /// [`Engine::run`](super::Engine::run) wakes this many seconds after each minute boundary, so rows written
    /// right at the boundary are visible (default 2).
    pub wake_delay_seconds: i64,
    /// Rows stamped more than this many seconds after `now` are rejected as far-future
    /// (counted and reported in the `rejected_rows` ERROR event, never stored, where
    /// they would otherwise sit until a window reaches them). Default one day, which tolerates
    /// clock skew and time-zone mistakes of a few hours while catching seconds/milliseconds
    /// mix-ups and placeholder dates.
    pub max_future_seconds: i64,
    /// At most about this many checks of one checker are made per cycle (default 10 000):
    /// a long catch-up (a 366-day window after a year away is half a million due minutes) is
    /// made oldest first, a chunk per cycle, each chunk recorded, so memory stays bounded.
    /// A chunk always ends at a whole minute (every requirement due then is in it); 0 acts
    /// as 1.
    pub max_checks_per_cycle: usize,
    /// When a checker's old rows and check records are purged (the [`crate::Purger`] says
    /// how much to keep): by default about once an hour, at the checker's own minute, so that
    /// purges are spread over the hour instead of piling up in one cycle.
    pub purge_timing: super::PurgeTiming,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            default_zone: chrono_tz::UTC,
            max_concurrent_checkers: 8,
            fetch_timeout: Duration::from_secs(60),
            claim_renew_interval: Duration::from_secs(40),
            slow_fetch_warning: Duration::from_secs(10),
            delivery_timeout: Duration::from_secs(30),
            retry_base_seconds: 30,
            retry_max_seconds: 3600,
            delivery_give_up_seconds: 86_400,
            outbox_batch_limit: 10_000,
            max_checks_per_cycle: 10_000,
            wake_delay_seconds: 2,
            max_future_seconds: 86_400,
            purge_timing: super::PurgeTiming::HourlySlot,
        }
    }
}

impl EngineConfig {
    /// Seconds to wait before retrying a delivery that has already failed `attempts` times
    /// (0 for the first failure): `retry_base_seconds * 2^attempts`, at most
    /// `retry_max_seconds`.
    pub fn retry_delay(&self, attempts: u32) -> i64 {
        let factor = 1_i64.checked_shl(attempts.min(62)).unwrap_or(i64::MAX);
        self.retry_base_seconds
            .max(1)
            .saturating_mul(factor)
            .min(self.retry_max_seconds.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_doubles_up_to_the_cap() {
        let config = EngineConfig::default();
        let delays: Vec<i64> = [0, 1, 2, 6, 7, 40, u32::MAX]
            .iter()
            .map(|a| config.retry_delay(*a))
            .collect();
        assert_eq!(delays, vec![30, 60, 120, 1920, 3600, 3600, 3600]);
    }
}
