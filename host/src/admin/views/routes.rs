//! `/routes`: each route with where it is served, what it does, the policies a request
//! on it passes, and its requests, 5xx responses and durations so far (the dashboard
//! turns successive reads into rates and percentiles). A route served on several
//! listeners is one entry: its requests are counted together.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::config::resolved::RouteAction;
use crate::runtime::Generation;
use crate::runtime::generation::RouteEntry;
use crate::runtime::route_key::RouteKeyId;
use crate::telemetry::metrics::RouteTotals;

pub fn view(generation: &Generation, totals: &HashMap<RouteKeyId, RouteTotals>) -> Value {
    let mut order: Vec<RouteKeyId> = Vec::new();
    let mut routes: HashMap<RouteKeyId, Value> = HashMap::new();
    for (l, tables) in generation.tables.iter().enumerate() {
        let listener = &generation.config.listeners[l];
        for (t, table) in tables.iter().enumerate() {
            for (v, vhost) in table.virtual_hosts.iter().enumerate() {
                let hosts = &listener.route_tables[t].virtual_hosts[v].domains;
                for entry in &vhost.routes {
                    let key = generation.route_keys[entry.id as usize];
                    let route = routes.entry(key).or_insert_with(|| {
                        order.push(key);
                        describe(entry, generation, totals.get(&key))
                    });
                    add_unique(&mut route["listeners"], &listener.servers[0].name);
                    for host in hosts {
                        add_unique(&mut route["hosts"], host);
                    }
                }
            }
        }
    }
    order.iter().filter_map(|key| routes.remove(key)).collect()
}

/// A route's entry, before its listeners and hosts are added.
fn describe(entry: &RouteEntry, generation: &Generation, totals: Option<&RouteTotals>) -> Value {
    let (bounds, counts, count) = match totals {
        Some(totals) => totals.duration.cumulative(),
        None => (&[][..], Vec::new(), 0),
    };
    json!({
        "name": entry.route.name,
        "virtual_service": entry.route.virtual_service,
        "listeners": [],
        "hosts": [],
        "action": action(entry, generation),
        "policies": policies(entry, generation),
        "requests": totals.map_or(0, |t| t.requests),
        "errors": totals.map_or(0, |t| t.errors),
        "duration_ms": { "bounds": bounds, "counts": counts, "count": count },
    })
}

/// What the route does with a request, in a line.
fn action(entry: &RouteEntry, generation: &Generation) -> String {
    match &entry.route.action {
        RouteAction::Forward(destinations) => {
            let total: u32 = destinations.iter().map(|d| d.weight).sum();
            let each = entry.clusters.iter().zip(destinations).map(|(&c, d)| {
                let cluster = &generation.clusters[c].cluster;
                let subset = cluster
                    .subset
                    .as_deref()
                    .map_or(String::new(), |s| format!(" ({s})"));
                match destinations.len() {
                    1 => format!("{}:{}{subset}", cluster.host, cluster.port),
                    _ => format!(
                        "{}:{}{subset} {}%",
                        cluster.host,
                        cluster.port,
                        d.weight * 100 / total.max(1)
                    ),
                }
            });
            format!("forward to {}", each.collect::<Vec<_>>().join(", "))
        }
        RouteAction::Redirect(_) => "redirect".to_string(),
        RouteAction::DirectResponse(response) => format!("respond {}", response.status),
    }
}

/// The policies a request on the route may pass, in order: the built-in components
/// that apply, the host's CORS and mirror steps, and the custom plugins.
fn policies(entry: &RouteEntry, generation: &Generation) -> Vec<String> {
    let policies = &generation.policies;
    let mut chain = vec![policies.route_match.name().to_string()];
    let mut add = |applies: bool, name: &str| {
        if applies {
            chain.push(name.to_string());
        }
    };
    add(entry.route.fault.is_some(), policies.fault.name());
    add(entry.cors.is_some(), "host:cors");
    if let RouteAction::Forward(destinations) = &entry.route.action {
        let clusters = || entry.clusters.iter().map(|&c| &generation.clusters[c]);
        add(destinations.len() > 1, policies.destination.name());
        add(!entry.mirrors.is_empty(), "host:mirror");
        add(true, policies.endpoint.name());
        add(entry.route.retry.attempts > 0, policies.retry.name());
        add(clusters().any(|c| c.limited), policies.breaker.name());
        add(
            clusters().any(crate::runtime::clusters::ClusterState::detects_outliers),
            policies.outlier.name(),
        );
    }
    chain.extend(
        entry
            .plugins
            .iter()
            .map(|&p| generation.plugins[p].plugin.name.clone()),
    );
    chain
}

/// Appends `value` to the JSON array `list` unless it has it.
fn add_unique(list: &mut Value, value: &str) {
    if let Value::Array(items) = list
        && !items.iter().any(|item| item == value)
    {
        items.push(Value::from(value));
    }
}
