//! The built-in circuit breaker: Envoy's cluster circuit breakers as Istio's
//! `connectionPool` programs them. Limits apply per cluster (service or subset) per
//! gateway process; overflow is refused at once.

use std::cell::RefCell;

use portcullis_sdk::{Admission, Breaker, ClusterLoad, breaker};
use serde::Deserialize;

#[derive(Deserialize)]
struct Limits {
    max_connections: u32,
    http1_max_pending_requests: u32,
    http2_max_requests: u32,
    max_retries: u32,
}

#[derive(Deserialize)]
struct Config {
    clusters: Vec<Limits>,
}

thread_local! {
    static CLUSTERS: RefCell<Vec<Limits>> = const { RefCell::new(Vec::new()) };
}

fn with_limits<T>(cluster: u32, unlimited: T, f: impl FnOnce(&Limits) -> T) -> T {
    CLUSTERS.with(|c| c.borrow().get(cluster as usize).map_or(unlimited, f))
}

struct Builtin;

impl Breaker for Builtin {
    fn configure(config: String) -> Result<(), String> {
        let config: Config = serde_json::from_str(&config).map_err(|e| e.to_string())?;
        CLUSTERS.with(|c| *c.borrow_mut() = config.clusters);
        Ok(())
    }

    fn admit_request(cluster: u32, load: ClusterLoad) -> bool {
        with_limits(cluster, true, |l| {
            load.active_requests < l.http2_max_requests
        })
    }

    fn admit_connection(cluster: u32, load: ClusterLoad) -> Admission {
        with_limits(cluster, Admission::Admit, |l| {
            if load.active_connections < l.max_connections {
                Admission::Admit
            } else if load.pending_requests < l.http1_max_pending_requests {
                Admission::Queue
            } else {
                Admission::Overflow
            }
        })
    }

    fn admit_retry(cluster: u32, load: ClusterLoad) -> bool {
        with_limits(cluster, true, |l| load.active_retries < l.max_retries)
    }
}

breaker::export!(Builtin);
