//! The built-in outlier detector: consecutive-error ejection as Istio's
//! `outlierDetection` programs Envoy.
//!
//! An endpoint is ejected when it reaches `consecutive5xxErrors` 5xx responses in a row (or
//! `consecutiveGatewayErrors` 502/503/504s), for `baseEjectionTime` × the number of times it
//! has been ejected, unless `maxEjectionPercent` of the cluster is already out (one
//! ejection is always allowed, as in Envoy). Connection failures count as 5xx and gateway
//! errors unless `splitExternalLocalOriginErrors` counts them on their own, against
//! `consecutiveLocalOriginFailures`. A threshold that is unset (or 0) never ejects.
//!
//! Streaks and ejection counts live in host counters named
//! `outlier/<cluster name>/<endpoint id>/<what>`, so they survive instance recycling and
//! reloads and are shared by every instance.

use portcullis_sdk::host;
use portcullis_sdk::outlier::{self, Cluster, EndpointResult, Millis, Outlier, PluginConfig};

/// Bumps or resets a host counter; returns the streak.
fn streak(key: &str, failed: bool) -> i64 {
    if failed {
        host::counter_add(key, 1)
    } else {
        let now = host::counter_add(key, 0);
        host::counter_add(key, -now)
    }
}

/// Whether `streak` reaches `threshold` (none or 0: never).
fn reaches(streak: i64, threshold: Option<u32>) -> bool {
    threshold.is_some_and(|t| t > 0 && streak >= i64::from(t))
}

/// Every cluster's name and detection settings.
struct Builtin {
    clusters: Vec<Cluster>,
}

impl Outlier for Builtin {
    fn configure(clusters: Vec<Cluster>, _config: PluginConfig) -> Result<Self, String> {
        Ok(Builtin { clusters })
    }

    fn record_result(
        &mut self,
        cluster: u32,
        endpoint: u32,
        result: EndpointResult,
        ejected: u32,
        total: u32,
    ) -> Option<Millis> {
        let Cluster {
            name,
            detection: Some(d),
        } = self.clusters.get(cluster as usize)?
        else {
            return None;
        };
        let split = d.split_external_local_origin_errors;
        let key = |what: &str| format!("outlier/{name}/{endpoint}/{what}");
        let (is_5xx, is_gateway, is_local) = match result {
            EndpointResult::Status(code) => (code >= 500, matches!(code, 502..=504), false),
            EndpointResult::LocalFailure => (!split, !split, true),
        };
        let five = streak(&key("5xx"), is_5xx);
        let gateway = streak(&key("gateway"), is_gateway);
        let local = if split {
            streak(&key("local"), is_local)
        } else {
            0
        };
        let tripped = reaches(five, d.consecutive_5xx_errors)
            || reaches(gateway, d.consecutive_gateway_errors)
            || (split && reaches(local, d.consecutive_local_origin_failures));
        // Envoy always allows one ejection, even when the percentage rounds below it.
        let room = ejected == 0
            || u64::from(ejected + 1) * 100 <= u64::from(d.max_ejection_percent) * u64::from(total);
        if !tripped || !room {
            return None;
        }
        for what in ["5xx", "gateway", "local"] {
            streak(&key(what), false);
        }
        let times = host::counter_add(&key("ejections"), 1).max(1) as u64;
        Some(d.base_ejection_time.saturating_mul(times))
    }
}

outlier::export!(Builtin);
