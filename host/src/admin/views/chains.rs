//! Each route's and cluster's chain: which component serves each phase, a built-in (by
//! its source) or a WasmPlugin (by name, kind and sha256).

use serde_json::{Value, json};

use crate::runtime::Generation;
use crate::wasm::pool::{PolicyWorld, Pool};

/// The chains of `generation`, as `/config_dump` shows them.
pub fn view(generation: &Generation) -> Value {
    let component = |plugin: Option<usize>, builtin: &str| match plugin {
        Some(index) => {
            let plugin = &generation.plugins[index];
            json!({ "plugin": plugin.name(), "kind": plugin.kind, "sha256": plugin.sha256 })
        }
        None => json!({ "builtin": builtin }),
    };
    let policies = &generation.policies;
    let mut routes = Vec::new();
    for vhost in generation
        .tables
        .iter()
        .flatten()
        .flat_map(|t| &t.virtual_hosts)
    {
        for entry in &vhost.routes {
            let filters: Vec<Value> = entry
                .plugins
                .iter()
                .map(|&p| component(Some(p), ""))
                .collect();
            routes.push(json!({
                "route": entry.route.name,
                "virtual_service": entry.route.virtual_service,
                "route-match": component(vhost.matcher, name(&policies.route_match)),
                "fault": component(entry.chain.fault, name(&policies.fault)),
                "filters": filters,
                "destination": component(entry.chain.destination, name(&policies.destination)),
                "retry": component(entry.chain.retry, name(&policies.retry)),
            }));
        }
    }
    let clusters: Vec<Value> = generation
        .clusters
        .iter()
        .zip(&generation.cluster_chains)
        .map(|(cluster, chain)| {
            json!({
                "cluster": cluster.cluster.name,
                "endpoint": component(chain.endpoint, name(&policies.endpoint)),
                "breaker": component(chain.breaker, name(&policies.breaker)),
                "outlier": component(chain.outlier, name(&policies.outlier)),
            })
        })
        .collect();
    json!({ "routes": routes, "clusters": clusters })
}

fn name<K: PolicyWorld>(pool: &Pool<K>) -> &str {
    pool.name()
}
