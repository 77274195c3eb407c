//! What each policy and plugin did (the runtime keeps it by name, so that reloads do not
//! reset it).

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use super::log_budget::LogBudget;

/// Counts and timings of one policy or plugin.
#[derive(Debug)]
pub struct PolicyStats {
    /// Calls made.
    pub calls: AtomicU64,
    /// Calls that trapped, ran past their deadline or past their memory.
    pub failures: AtomicU64,
    /// Instances created (one at load, more under concurrency and after failures).
    pub instances: AtomicU64,
    /// Times the plugin was quarantined for failing calls in a row.
    pub quarantines: AtomicU64,
    /// The largest linear memory any instance grew to, in bytes.
    pub memory_high_water: AtomicU64,
    /// Call durations in seconds.
    pub durations: Histogram,
    /// What the component may still log, and what it lost.
    pub log: LogBudget,
}

impl Default for PolicyStats {
    fn default() -> Self {
        Self {
            calls: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            instances: AtomicU64::new(0),
            quarantines: AtomicU64::new(0),
            memory_high_water: AtomicU64::new(0),
            // 1 µs to ~60 ms.
            durations: Histogram::new(exponential_buckets(1e-6, 3.0, 11)),
            log: LogBudget::default(),
        }
    }
}
