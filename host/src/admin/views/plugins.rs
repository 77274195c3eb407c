//! `/plugins`: every built-in policy and custom plugin with its health counters.

use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use crate::reload::ReloadStatus;
use crate::runtime::Generation;
use crate::wasm::stats::PolicyStats;

pub fn view(generation: &Generation, status: &ReloadStatus) -> Value {
    let policies = &generation.policies;
    let builtins = [
        (policies.route_match.name(), &policies.route_match.stats),
        (policies.destination.name(), &policies.destination.stats),
        (policies.endpoint.name(), &policies.endpoint.stats),
        (policies.fault.name(), &policies.fault.stats),
        (policies.retry.name(), &policies.retry.stats),
        (policies.breaker.name(), &policies.breaker.stats),
        (policies.outlier.name(), &policies.outlier.stats),
    ];
    let builtin: Vec<Value> = builtins
        .iter()
        .map(|(name, s)| json!({ "name": &***name, "stats": stats(s) }))
        .collect();
    let plugins: Vec<Value> = generation
        .plugins
        .iter()
        .map(|p| {
            json!({
                "name": p.plugin.name,
                "kind": p.kind,
                "path": p.plugin.source,
                "sha256": p.sha256,
                "phase": p.plugin.phase,
                "priority": p.plugin.priority,
                "stats": stats(p.stats()),
            })
        })
        .collect();
    json!({
        "generation": status.generation,
        "loaded_at": status.loaded_at,
        "builtin": builtin,
        "plugins": plugins,
    })
}

fn stats(s: &PolicyStats) -> Value {
    json!({
        "calls": s.calls.load(Ordering::Relaxed),
        "failures": s.failures.load(Ordering::Relaxed),
        "instances": s.instances.load(Ordering::Relaxed),
        "memory_high_water_bytes": s.memory_high_water.load(Ordering::Relaxed),
        "quarantines": s.quarantines.load(Ordering::Relaxed),
        "log_lines_dropped": s.log.dropped.load(Ordering::Relaxed),
    })
}
