//! Each route's and cluster's chain: which component serves each phase, a built-in (by
//! its source) or a WasmPlugin (by name, kind and sha256).

use serde_json::{Value, json};

use crate::runtime::Generation;

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
                "route-match": component(vhost.matcher, policies.route_match.name()),
                "fault": component(entry.chain.fault, policies.fault.name()),
                "filters": filters,
                "destination": component(entry.chain.destination, policies.destination.name()),
                "retry": component(entry.chain.retry, policies.retry.name()),
            }));
        }
    }
    let clusters: Vec<Value> = generation
        .clusters
        .iter()
        .map(|cluster| {
            let chain = &cluster.chain;
            json!({
                "cluster": cluster.cluster.name,
                "endpoint": component(chain.endpoint, policies.endpoint.name()),
                "breaker": component(chain.breaker, policies.breaker.name()),
                "outlier": component(chain.outlier, policies.outlier.name()),
            })
        })
        .collect();
    json!({ "routes": routes, "clusters": clusters })
}
