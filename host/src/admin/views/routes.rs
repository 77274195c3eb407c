//! `/routes`: each route with where it is served, what it does, the policies a request
//! on it passes, and its requests, 5xx responses and durations so far (the dashboard
//! turns successive reads into rates and percentiles). A route served on several
//! listeners is one entry: its requests are counted together.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::config::resolved::RouteAction;
use crate::runtime::Generation;
use crate::runtime::generation::{RouteEntry, VirtualHostEntry};
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
                        describe(entry, vhost, generation, totals.get(&key))
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
fn describe(
    entry: &RouteEntry,
    vhost: &VirtualHostEntry,
    generation: &Generation,
    totals: Option<&RouteTotals>,
) -> Value {
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
        "policies": policies(entry, vhost, generation),
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

/// The policies a request on the route may pass, in order: the component serving each
/// phase that applies (a plugin where one replaces the built-in), the host's CORS and
/// mirror steps, and the filters.
fn policies(entry: &RouteEntry, vhost: &VirtualHostEntry, generation: &Generation) -> Vec<String> {
    let policies = &generation.policies;
    let name = |plugin: Option<usize>, builtin: &str| match plugin {
        Some(p) => generation.plugins[p].name().to_string(),
        None => builtin.to_string(),
    };
    let mut chain = vec![name(vhost.matcher, policies.route_match.name())];
    let mut add = |applies: bool, name: String| {
        if applies && !chain.contains(&name) {
            chain.push(name);
        }
    };
    add(
        entry.route.fault.is_some(),
        name(entry.chain.fault, policies.fault.name()),
    );
    add(entry.cors.is_some(), "host:cors".into());
    if let RouteAction::Forward(destinations) = &entry.route.action {
        let destination = name(entry.chain.destination, policies.destination.name());
        add(destinations.len() > 1, destination);
        add(!entry.mirrors.is_empty(), "host:mirror".into());
        for &c in &entry.clusters {
            let cluster = &generation.clusters[c];
            let plugins = cluster.chain;
            add(true, name(plugins.endpoint, policies.endpoint.name()));
            add(
                cluster.limited,
                name(plugins.breaker, policies.breaker.name()),
            );
            add(
                cluster.detects_outliers(),
                name(plugins.outlier, policies.outlier.name()),
            );
        }
        let retry = name(entry.chain.retry, policies.retry.name());
        add(entry.route.retry.attempts > 0, retry);
    }
    chain.extend(
        entry
            .plugins
            .iter()
            .map(|&p| generation.plugins[p].name().to_string()),
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
