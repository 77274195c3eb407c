//! What bounds every policy call and instance: the epoch deadline, the memory cap, and the
//! limiter that enforces it and notes the memory high-water mark.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};

use super::stats::PolicyStats;
use crate::config::resolved::PluginLimits;

/// How often the engine's epoch advances: the unit of call deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Limits every instance runs under.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Linear memory per instance, in bytes.
    pub memory: usize,
    /// Epoch ticks (milliseconds) one call may run. The epoch is wall-clock time, so the
    /// bound is generous enough for a busy machine that deschedules the thread.
    pub deadline_ticks: u64,
}

impl Limits {
    /// The wall-clock bound of one call: the epoch stops Wasm code, this stops a call
    /// waiting inside a host call (a WASI sleep or poll).
    pub fn wall_deadline(&self) -> std::time::Duration {
        EPOCH_TICK.saturating_mul(u32::try_from(self.deadline_ticks).unwrap_or(u32::MAX))
    }
}

impl From<PluginLimits> for Limits {
    fn from(limits: PluginLimits) -> Self {
        let ticks = limits.timeout.as_nanos() / EPOCH_TICK.as_nanos();
        Self {
            memory: limits.memory,
            deadline_ticks: u64::try_from(ticks).unwrap_or(u64::MAX).max(1),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        PluginLimits::default().into()
    }
}

/// The store's limits, noting the memory high-water mark in the policy's stats.
pub struct Limiter {
    limits: StoreLimits,
    stats: Arc<PolicyStats>,
}

impl Limiter {
    /// A store's limiter under `limits`, counting into `stats`.
    pub fn new(limits: Limits, stats: Arc<PolicyStats>) -> Self {
        Self {
            limits: StoreLimitsBuilder::new()
                .memory_size(limits.memory)
                .trap_on_grow_failure(true)
                .build(),
            stats,
        }
    }

    /// The stats the limiter counts into.
    pub fn stats(&self) -> &PolicyStats {
        &self.stats
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        if allowed {
            self.stats
                .memory_high_water
                .fetch_max(desired as u64, Ordering::Relaxed);
        }
        Ok(allowed)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}
