//! The built-in outlier detector: consecutive-error ejection as Istio's
//! `outlierDetection` programs Envoy.
//!
//! An endpoint is ejected when it reaches `consecutive5xxErrors` 5xx responses in a row (or
//! `consecutiveGatewayErrors` 502/503/504s), for `baseEjectionTime` × the number of times it
//! has been ejected, unless `maxEjectionPercent` of the cluster is already out. Connection
//! failures count as 5xx unless `splitExternalLocalOriginErrors` counts them on their own.
//! Streaks and ejection counts live in host counters, so they survive instance recycling.

use std::cell::RefCell;

use portcullis_sdk::{EndpointResult, Outlier, host, outlier};
use serde::Deserialize;

#[derive(Deserialize)]
struct Settings {
    name: String,
    consecutive_5xx_errors: u32,
    consecutive_gateway_errors: u32,
    split_external_local_origin_errors: bool,
    consecutive_local_origin_failures: u32,
    base_ejection_time_ms: u64,
    max_ejection_percent: u32,
}

#[derive(Deserialize)]
struct Config {
    clusters: Vec<Option<Settings>>,
}

thread_local! {
    static CLUSTERS: RefCell<Vec<Option<Settings>>> = const { RefCell::new(Vec::new()) };
}

/// Bumps or resets a host counter; returns the streak.
fn streak(key: &str, failed: bool) -> i64 {
    let now = host::counter_add(key, 0);
    if failed {
        host::counter_add(key, 1)
    } else {
        host::counter_add(key, -now)
    }
}

struct Builtin;

impl Outlier for Builtin {
    fn configure(config: String) -> Result<(), String> {
        let config: Config = serde_json::from_str(&config).map_err(|e| e.to_string())?;
        CLUSTERS.with(|c| *c.borrow_mut() = config.clusters);
        Ok(())
    }

    fn record_result(
        cluster: u32,
        endpoint: String,
        outcome: EndpointResult,
        ejected: u32,
        total: u32,
    ) -> u64 {
        CLUSTERS.with(|c| {
            let clusters = c.borrow();
            let Some(Some(s)) = clusters.get(cluster as usize) else {
                return 0;
            };
            let key = |what: &str| format!("outlier/{}/{endpoint}/{what}", s.name);
            let (is_5xx, is_gateway, is_local) = match outcome {
                EndpointResult::Status(code) => (code >= 500, matches!(code, 502..=504), false),
                EndpointResult::LocalFailure => (
                    !s.split_external_local_origin_errors,
                    !s.split_external_local_origin_errors,
                    true,
                ),
            };
            let five = streak(&key("5xx"), is_5xx);
            let gateway = streak(&key("gateway"), is_gateway);
            let local = if s.split_external_local_origin_errors {
                streak(&key("local"), is_local)
            } else {
                0
            };
            let tripped = (s.consecutive_5xx_errors > 0
                && five >= i64::from(s.consecutive_5xx_errors))
                || (s.consecutive_gateway_errors > 0
                    && gateway >= i64::from(s.consecutive_gateway_errors))
                || (s.split_external_local_origin_errors
                    && s.consecutive_local_origin_failures > 0
                    && local >= i64::from(s.consecutive_local_origin_failures));
            // Envoy always allows one ejection, even when the percentage rounds below it.
            let room = ejected == 0
                || u64::from(ejected + 1) * 100
                    <= u64::from(s.max_ejection_percent) * u64::from(total);
            if !tripped || !room {
                return 0;
            }
            for what in ["5xx", "gateway", "local"] {
                streak(&key(what), false);
            }
            let times = host::counter_add(&key("ejections"), 1).max(1) as u64;
            s.base_ejection_time_ms.saturating_mul(times)
        })
    }
}

outlier::export!(Builtin);
