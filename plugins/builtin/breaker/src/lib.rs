//! The built-in circuit breaker: Envoy's cluster circuit breakers as Istio's
//! `connectionPool` programs them. Limits apply per cluster (service or subset) per
//! gateway process, over the load the host counts; a limit left unset is unlimited, and
//! overflow is refused at once.

use portcullis_sdk::breaker::{self, Admission, Breaker, ClusterLoad, Limits, PluginConfig};

/// Whether `current` is under `limit` (none: unlimited).
fn under(current: u32, limit: Option<u32>) -> bool {
    limit.is_none_or(|limit| current < limit)
}

/// Every cluster's limits.
struct Builtin {
    clusters: Vec<Limits>,
}

impl Builtin {
    /// Applies `f` to `cluster`'s limits; an unknown cluster gets `unlimited`.
    fn with_limits<T>(&self, cluster: u32, unlimited: T, f: impl FnOnce(&Limits) -> T) -> T {
        self.clusters.get(cluster as usize).map_or(unlimited, f)
    }
}

impl Breaker for Builtin {
    fn configure(clusters: Vec<Limits>, _config: PluginConfig) -> Result<Self, String> {
        Ok(Builtin { clusters })
    }

    fn admit_request(&mut self, cluster: u32, load: ClusterLoad) -> bool {
        self.with_limits(cluster, true, |l| {
            under(load.active_requests, l.http2_max_requests)
        })
    }

    fn admit_connection(&mut self, cluster: u32, load: ClusterLoad) -> Admission {
        self.with_limits(cluster, Admission::Admit, |l| {
            if under(load.active_connections, l.max_connections) {
                Admission::Admit
            } else if under(load.pending_requests, l.http1_max_pending_requests) {
                Admission::Queue
            } else {
                Admission::Overflow
            }
        })
    }

    fn admit_retry(&mut self, cluster: u32, load: ClusterLoad) -> bool {
        self.with_limits(cluster, true, |l| under(load.active_retries, l.max_retries))
    }
}

breaker::export!(Builtin);
