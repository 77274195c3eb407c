//! The built-in policies' configurations, gathered route by route and cluster by cluster
//! as a generation is built, then handed to each policy component as it is configured.

use std::collections::BTreeMap;

use anyhow::Context as _;
use serde_json::{Value, json};

use super::Runtime;
use crate::config::resolved::{AbortStatus, Cluster, Fault, RetryPolicy, Route, VirtualHost};
use crate::wasm::Limits;
use crate::wasm::builtin::{self, Builtin};
use crate::wasm::kinds::PolicyKind;
use crate::wasm::policies::Policies;
use crate::wasm::pool::{PolicyWorld, Pool, Setup};

/// The per-virtual-host and per-route settings of the route-level policies, indexed by
/// the ids the data path passes to them.
#[derive(Default)]
pub(super) struct RoutePolicies {
    matches: Vec<Value>,
    weights: Vec<Vec<u32>>,
    faults: Vec<Option<Value>>,
    retries: Vec<Value>,
}

impl RoutePolicies {
    /// Adds a virtual host's match blocks; returns its id for the match policy.
    pub fn add_virtual_host(&mut self, vhost: &VirtualHost) -> u32 {
        let id = self.matches.len() as u32;
        let routes: Vec<Value> = vhost
            .routes
            .iter()
            .map(|r| json!({ "matches": r.matches }))
            .collect();
        self.matches.push(Value::Array(routes));
        id
    }

    /// Adds a route's weights, fault and retry policy; returns its id for the
    /// destination, fault and retry policies.
    pub fn add_route(&mut self, route: &Route, weights: Vec<u32>) -> u32 {
        let id = self.weights.len() as u32;
        self.weights.push(weights);
        self.faults.push(route.fault.as_ref().map(fault_json));
        self.retries.push(retry_json(&route.retry));
        id
    }

    /// Every kind's configuration: these routes' and `clusters`'.
    pub fn finish(self, clusters: &BTreeMap<String, Cluster>) -> PolicyConfigs {
        let balancers: Vec<Value> = clusters
            .values()
            .map(|c| json!({ "name": c.name, "load_balancer": c.policy.load_balancer }))
            .collect();
        let breakers: Vec<Value> = clusters.values().map(breaker_json).collect();
        let outliers: Vec<Option<Value>> = clusters.values().map(outlier_json).collect();
        PolicyConfigs {
            route_match: json!({ "virtual_hosts": self.matches }),
            destination: json!({ "routes": self.weights }),
            endpoint: json!({ "clusters": balancers }),
            fault: json!({ "routes": self.faults }),
            retry: json!({ "routes": self.retries }),
            breaker: json!({ "clusters": breakers }),
            outlier: json!({ "clusters": outliers }),
        }
    }
}

/// What each policy kind's `configure` gets: the table of every route's (or cluster's)
/// settings, indexed by the ids the data path passes.
pub(super) struct PolicyConfigs {
    route_match: Value,
    destination: Value,
    endpoint: Value,
    fault: Value,
    retry: Value,
    breaker: Value,
    outlier: Value,
}

impl PolicyConfigs {
    /// The table `kind`'s built-in takes (a filter has none).
    fn table(&self, kind: PolicyKind) -> Option<&Value> {
        Some(match kind {
            PolicyKind::RouteMatch => &self.route_match,
            PolicyKind::Destination => &self.destination,
            PolicyKind::Endpoint => &self.endpoint,
            PolicyKind::Fault => &self.fault,
            PolicyKind::Retry => &self.retry,
            PolicyKind::Breaker => &self.breaker,
            PolicyKind::Outlier => &self.outlier,
            PolicyKind::Filter => return None,
        })
    }

    /// What a plugin of `kind` is configured with: a filter, its `pluginConfig`; a policy,
    /// the table its built-in takes, with the `pluginConfig` beside it as `plugin_config`.
    pub fn for_plugin(&self, kind: PolicyKind, plugin_config: &Value) -> Value {
        match self.table(kind) {
            Some(Value::Object(table)) => {
                let mut config = table.clone();
                config.insert("plugin_config".into(), plugin_config.clone());
                Value::Object(config)
            }
            _ => plugin_config.clone(),
        }
    }

    /// Loads and configures every built-in policy (or its `--policy-dir` override).
    pub async fn builtins(&self, runtime: &Runtime) -> anyhow::Result<Policies> {
        Ok(Policies {
            route_match: pool(&builtin::MATCH, &self.route_match, runtime).await?,
            destination: pool(&builtin::WEIGHT, &self.destination, runtime).await?,
            endpoint: pool(&builtin::LB, &self.endpoint, runtime).await?,
            fault: pool(&builtin::FAULT, &self.fault, runtime).await?,
            retry: pool(&builtin::RETRY, &self.retry, runtime).await?,
            breaker: pool(&builtin::BREAKER, &self.breaker, runtime).await?,
            outlier: pool(&builtin::OUTLIER, &self.outlier, runtime).await?,
        })
    }
}

/// A cluster's circuit-breaker limits as the breaker policy takes them.
fn breaker_json(cluster: &Cluster) -> Value {
    let pool = &cluster.policy.connection_pool;
    json!({
        "max_connections": pool.max_connections,
        "http1_max_pending_requests": pool.http1_max_pending_requests,
        "http2_max_requests": pool.http2_max_requests,
        "max_retries": pool.max_retries,
    })
}

/// A cluster's outlier detection as the outlier policy takes it.
fn outlier_json(cluster: &Cluster) -> Option<Value> {
    let o = cluster.policy.outlier_detection.as_ref()?;
    Some(json!({
        "name": cluster.name,
        "consecutive_5xx_errors": o.consecutive_5xx_errors,
        "consecutive_gateway_errors": o.consecutive_gateway_errors,
        "split_external_local_origin_errors": o.split_external_local_origin_errors,
        "consecutive_local_origin_failures": o.consecutive_local_origin_failures,
        "base_ejection_time_ms": o.base_ejection_time.as_millis() as u64,
        "max_ejection_percent": o.max_ejection_percent,
    }))
}

/// A route's fault as the fault policy takes it.
fn fault_json(fault: &Fault) -> Value {
    json!({
        "delay": fault.delay.as_ref().map(|d| json!({ "ms": d.fixed_delay.as_millis() as u64, "percentage": d.percentage })),
        "abort": fault.abort.as_ref().map(|a| {
            let status = match a.status {
                AbortStatus::Http(code) => json!({ "http": code }),
                AbortStatus::Grpc(code) => json!({ "grpc": code }),
            };
            json!({ "status": status, "percentage": a.percentage })
        }),
    })
}

/// A route's retry policy as the retry policy takes it.
fn retry_json(retry: &RetryPolicy) -> Value {
    json!({
        "attempts": retry.attempts,
        "retry_on": retry.retry_on,
        "retriable_status_codes": retry.retriable_status_codes,
        "backoff_base_ms": retry.backoff_base.as_millis() as u64,
    })
}

/// Loads, compiles and configures one built-in policy (or its override).
async fn pool<K: PolicyWorld>(
    builtin: &Builtin,
    config: &Value,
    runtime: &Runtime,
) -> anyhow::Result<Pool<K>> {
    let (bytes, source) = builtin
        .load(runtime.policy_dir.as_deref())
        .with_context(|| format!("reading the {} policy", builtin.name))?;
    let component = runtime.wasm.compile(&source, bytes).await?;
    let pool = Pool::new(
        &source,
        &runtime.wasm,
        &component,
        Setup::config(config.to_string()),
        runtime.counters.clone(),
        Limits::default(),
        runtime.policy_stats.get(source.as_str()),
    )
    .await?;
    Ok(pool)
}
