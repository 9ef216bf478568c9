//! The engine's clock: wall-clock time that advances with tokio's clock. Timestamps in history
//! and the timers that wait on them (Wait states, task time-outs, retry intervals) therefore
//! share one clock, and a test that pauses tokio's time (`start_paused`) runs all of them in
//! virtual time, without sleeping.

use chrono::{DateTime, Utc};
use tokio::time::Instant;

/// Wall-clock time anchored at creation and advanced by tokio's monotonic clock.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base_utc: DateTime<Utc>,
    base: Instant,
}

impl Clock {
    /// A clock reading the system time now.
    pub fn new() -> Self {
        Self {
            base_utc: Utc::now(),
            base: Instant::now(),
        }
    }

    /// The current time.
    pub fn now(&self) -> DateTime<Utc> {
        let elapsed = Instant::now().saturating_duration_since(self.base);
        self.base_utc + chrono::Duration::from_std(elapsed).unwrap_or_default()
    }

    /// The current time in epoch milliseconds.
    pub fn now_ms(&self) -> i64 {
        self.now().timestamp_millis()
    }

    /// How long until `at_ms` (epoch milliseconds); zero once it has passed.
    pub fn until(&self, at_ms: i64) -> std::time::Duration {
        let left = at_ms.saturating_sub(self.now_ms());
        std::time::Duration::from_millis(left.max(0) as u64)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}
