//! Quarantine for a plugin that keeps failing: after [`QUARANTINE_AFTER`] failed calls in a
//! row it is not called for a back-off that doubles with each quarantine in a row (1 s up
//! to 60 s). The first call after a back-off is a probe: a success ends the streak, a
//! failure quarantines it again for twice as long.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Failed calls in a row that quarantine a plugin.
pub const QUARANTINE_AFTER: u32 = 5;
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// One plugin's failure streak.
#[derive(Debug)]
pub struct Quarantine {
    epoch: Instant,
    failures: AtomicU32,
    strikes: AtomicU32,
    /// Milliseconds since `epoch` until which the plugin is not called.
    until_ms: AtomicU64,
}

impl Default for Quarantine {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            failures: AtomicU32::new(0),
            strikes: AtomicU32::new(0),
            until_ms: AtomicU64::new(0),
        }
    }
}

impl Quarantine {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Whether the plugin must not be called now.
    pub fn active(&self) -> bool {
        self.until_ms.load(Ordering::Relaxed) > self.now_ms()
    }

    /// A call succeeded: the streak is over.
    pub fn succeeded(&self) {
        if self.failures.load(Ordering::Relaxed) > 0 {
            self.failures.store(0, Ordering::Relaxed);
            self.strikes.store(0, Ordering::Relaxed);
        }
    }

    /// A call failed; returns the back-off when this failure quarantines the plugin.
    pub fn failed(&self) -> Option<Duration> {
        let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if failures < QUARANTINE_AFTER {
            return None;
        }
        let strikes = self.strikes.fetch_add(1, Ordering::Relaxed).min(16);
        let backoff = FIRST_BACKOFF.saturating_mul(1 << strikes).min(MAX_BACKOFF);
        self.until_ms.store(
            self.now_ms() + backoff.as_millis() as u64,
            Ordering::Relaxed,
        );
        Some(backoff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarantines_after_a_streak_with_a_doubling_backoff_until_a_success() {
        let quarantine = Quarantine::default();
        for _ in 1..QUARANTINE_AFTER {
            assert_eq!(quarantine.failed(), None);
        }
        assert_eq!(quarantine.failed(), Some(Duration::from_secs(1)));
        assert!(quarantine.active());
        // The probe after the back-off fails: twice as long.
        assert_eq!(quarantine.failed(), Some(Duration::from_secs(2)));
        quarantine.succeeded();
        for _ in 1..QUARANTINE_AFTER {
            assert_eq!(quarantine.failed(), None);
        }
        assert_eq!(quarantine.failed(), Some(Duration::from_secs(1)));
    }
}
