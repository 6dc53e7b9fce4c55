//! [`SimClock`]: a clock that starts at a chosen instant and runs at a chosen speed, for
//! `dwmon run --now T --speed N` and the demo's `--fast` mode.

use async_trait::async_trait;
use dwmon_core::engine::Clock;
use std::time::{Duration, Instant};

/// Simulated time: `start + speed * (real seconds elapsed since creation)`.
#[derive(Debug, Clone, Copy)]
pub struct SimClock {
    origin: Instant,
    start: f64,
    speed: f64,
}

impl SimClock {
    /// A clock reading `start` (epoch seconds) now and advancing `speed` simulated seconds per
    /// real second (`speed <= 0` or non-finite acts as 1).
    pub fn new(start: i64, speed: f64) -> Self {
        let speed = if speed.is_finite() && speed > 0.0 {
            speed
        } else {
            1.0
        };
        SimClock {
            origin: Instant::now(),
            start: start as f64,
            speed,
        }
    }

    /// Simulated seconds per real second.
    pub fn speed(&self) -> f64 {
        self.speed
    }

    /// The simulated time with sub-second precision.
    pub fn now_f64(&self) -> f64 {
        self.start + self.origin.elapsed().as_secs_f64() * self.speed
    }

    /// The real duration until the simulated time reaches `epoch_seconds` (zero if past).
    pub fn real_duration_until(&self, epoch_seconds: f64) -> Duration {
        let simulated = epoch_seconds - self.now_f64();
        if simulated <= 0.0 {
            Duration::ZERO
        } else {
            Duration::try_from_secs_f64(simulated / self.speed).unwrap_or(Duration::MAX)
        }
    }
}

#[async_trait]
impl Clock for SimClock {
    fn now(&self) -> i64 {
        self.now_f64().floor() as i64
    }

    async fn sleep_until(&self, epoch_seconds: i64) {
        tokio::time::sleep(self.real_duration_until(epoch_seconds as f64)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fast_clock_starts_at_its_start_and_runs_fast() {
        let clock = SimClock::new(1_000, 60.0);
        let now = clock.now();
        assert!((1_000..1_010).contains(&now), "{now}");
        // One simulated minute ahead is at most one real second away.
        assert!(clock.real_duration_until(1_060.0) <= Duration::from_secs(1));
        assert_eq!(clock.real_duration_until(900.0), Duration::ZERO);
    }

    #[test]
    fn a_nonsense_speed_acts_as_real_time() {
        assert_eq!(SimClock::new(0, 0.0).speed(), 1.0);
        assert_eq!(SimClock::new(0, f64::NAN).speed(), 1.0);
    }
}
