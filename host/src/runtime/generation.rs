//! A generation: one resolved config with everything built to serve it — indexed routes,
//! clusters with clients, and configured policy components.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use serde_json::json;

use super::clusters::ClusterState;
use super::route_key::{RouteKey, RouteKeyId};
use super::vhosts::DomainIndex;
use crate::config::resolved::{
    AbortStatus, Fault, ListenerId, PluginTarget, ResolvedConfig, RetryPolicy, Route, RouteAction,
};
use crate::registry::Registry;
use crate::runtime::cors::CorsPolicy;
use crate::runtime::tls_servers::TlsServers;
use crate::upstream::ClusterLoad;
use crate::upstream::dns::Dns;
use crate::wasm::builtin::{self, Builtin};
use crate::wasm::counters::Counters;
use crate::wasm::plugins::LoadedPlugin;
use crate::wasm::policies::Policies;
use crate::wasm::pool::Setup;
use crate::wasm::pool::{Kind, Pool};
use crate::wasm::stats::PolicyStats;
use crate::wasm::{Limits, WasmEngine};

/// What outlives generations: the Wasm engine, host counters, where overrides live.
pub struct Runtime {
    /// Compiles and instantiates components.
    pub wasm: WasmEngine,
    /// Resolves the names of DNS clusters.
    pub dns: Arc<Dns>,
    /// Counters plugins add to, kept across reloads.
    pub counters: Arc<Counters>,
    /// A folder whose `<name>.wasm` files replace the built-in policies.
    pub policy_dir: Option<PathBuf>,
    /// Worker threads serving connections.
    pub workers: usize,
    /// Each policy's and plugin's stats by name, kept across generations.
    pub policy_stats: Registry<String, PolicyStats>,
    /// Each cluster's live counters by name, kept across generations.
    pub cluster_loads: Registry<String, ClusterLoad>,
}

impl Runtime {
    /// A runtime around `wasm` and `dns`.
    pub fn new(
        wasm: WasmEngine,
        dns: Arc<Dns>,
        policy_dir: Option<PathBuf>,
        workers: usize,
    ) -> Self {
        Self {
            wasm,
            dns,
            counters: Arc::default(),
            policy_dir,
            workers,
            policy_stats: Registry::default(),
            cluster_loads: Registry::default(),
        }
    }
}

/// A route and what the data path needs of it.
pub struct RouteEntry {
    /// Global id, as the weight policy knows it.
    pub id: u32,
    /// The resolved route.
    pub route: Route,
    /// Cluster ids of the destinations, in order.
    pub clusters: Vec<usize>,
    /// Compiled `uriRegexRewrite`, with `\1` groups turned into `${1}`.
    pub uri_regex: Option<(regex::Regex, String)>,
    /// The custom plugins that apply, in the order they run (indices into
    /// [`Generation::plugins`]).
    pub plugins: Vec<usize>,
    /// The route's `corsPolicy`, compiled.
    pub cors: Option<CorsPolicy>,
    /// The clusters that get a copy of the route's requests, with the share of requests
    /// (0–100) each copies.
    pub mirrors: Vec<(usize, f64)>,
    /// Where the entry is in its generation.
    pub at: RouteAt,
}

/// Where a route entry is in its generation: listener, route table, virtual host and
/// route, by index.
#[derive(Debug, Clone, Copy)]
pub struct RouteAt {
    /// Index into the generation's listeners.
    pub listener: usize,
    /// Index into the listener's route tables.
    pub table: usize,
    /// Index into the table's virtual hosts.
    pub virtual_host: usize,
    /// Index into the virtual host's routes.
    pub route: usize,
}

/// A virtual host and its routes.
pub struct VirtualHostEntry {
    /// Global id, as the match policy knows it.
    pub id: u32,
    /// Plain-HTTP requests are redirected to HTTPS.
    pub require_tls: bool,
    /// Routes in match order.
    pub routes: Vec<RouteEntry>,
}

/// A route table, indexed by domain.
pub struct TableEntry {
    /// Finds a request's virtual host by its Host.
    pub domains: DomainIndex,
    /// The table's virtual hosts.
    pub virtual_hosts: Vec<VirtualHostEntry>,
}

/// Everything needed to serve one config.
pub struct Generation {
    /// The config this generation serves.
    pub config: ResolvedConfig,
    /// Per listener, per route table.
    pub tables: Vec<Vec<TableEntry>>,
    /// Clusters, indexed as the routes name them.
    pub clusters: Vec<ClusterState>,
    /// The built-in policy components' instance pools.
    pub policies: Policies,
    /// Custom plugins from WasmPlugin resources.
    pub plugins: Vec<LoadedPlugin>,
    /// Per listener, its TLS servers (`None` for plain-text listeners).
    pub tls: Vec<Option<TlsServers>>,
    /// Route names, by [`RouteEntry::id`].
    pub route_names: Vec<String>,
    /// Route keys, by [`RouteEntry::id`].
    pub route_keys: Vec<RouteKeyId>,
    /// Per route, the name of each match block that has one, joined to the route's as
    /// Istio names Envoy's routes (`route.match`).
    pub match_names: Vec<Vec<Option<String>>>,
}

impl Generation {
    /// The name of the route with [`RouteEntry::id`] `id`.
    pub fn route_name(&self, id: u32) -> &str {
        &self.route_names[id as usize]
    }

    /// The name of route `id` as matched by its match block `block`: `route.match` when
    /// the block is named, as Istio logs it.
    pub fn matched_route_name(&self, id: u32, block: u32) -> &str {
        self.match_names[id as usize]
            .get(block as usize)
            .and_then(Option::as_deref)
            .unwrap_or_else(|| self.route_name(id))
    }

    /// The route entry at `at`.
    pub fn route_at(&self, at: RouteAt) -> &RouteEntry {
        &self.tables[at.listener][at.table].virtual_hosts[at.virtual_host].routes[at.route]
    }

    /// The index of the listener `id` in this generation, if it has it.
    pub fn listener_index(&self, id: &ListenerId) -> Option<usize> {
        self.config.listeners.iter().position(|l| l.is(id))
    }

    /// Builds a generation: compiles (or loads from cache) and configures the policies.
    pub async fn build(config: ResolvedConfig, runtime: &Runtime) -> anyhow::Result<Self> {
        let cluster_ids: Vec<&String> = config.clusters.keys().collect();
        let mut match_config = Vec::new();
        let mut weight_config = Vec::new();
        let mut fault_config = Vec::new();
        let mut retry_config = Vec::new();
        let mut route_names = Vec::new();
        let mut route_keys = Vec::new();
        let mut match_names = Vec::new();
        let mut tables = Vec::new();
        let tls = config
            .listeners
            .iter()
            .map(|l| TlsServers::build(l).with_context(|| format!("TLS for {}", l.servers[0].name)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut plugins = Vec::with_capacity(config.plugins.len());
        for plugin in &config.plugins {
            let loaded = LoadedPlugin::load(
                plugin.clone(),
                &runtime.wasm,
                runtime.counters.clone(),
                runtime.policy_stats.get(plugin.name.as_str()),
            )
            .await
            .with_context(|| format!("loading WasmPlugin {}", plugin.name))?;
            plugins.push(loaded);
        }
        for (listener_index, listener) in config.listeners.iter().enumerate() {
            let mut listener_tables = Vec::new();
            for (table_index, table) in listener.route_tables.iter().enumerate() {
                let gateways: Vec<&str> = listener
                    .servers
                    .iter()
                    .filter(|s| s.route_table == table_index)
                    .map(|s| s.gateway.as_str())
                    .collect();
                let mut virtual_hosts = Vec::new();
                for (vhost_index, vhost) in table.virtual_hosts.iter().enumerate() {
                    let id = match_config.len() as u32;
                    match_config.push(
                        vhost
                            .routes
                            .iter()
                            .map(|r| json!({ "matches": r.matches }))
                            .collect::<Vec<_>>(),
                    );
                    let mut routes = Vec::new();
                    for route in &vhost.routes {
                        let (clusters, weights) = match &route.action {
                            RouteAction::Forward(destinations) => destinations
                                .iter()
                                .map(|d| {
                                    let id = cluster_ids
                                        .binary_search(&&d.cluster)
                                        .expect("resolved destinations name clusters");
                                    (id, d.weight)
                                })
                                .unzip(),
                            _ => (Vec::new(), Vec::new()),
                        };
                        let uri_regex =
                            match route.rewrite.as_ref().and_then(|r| r.uri_regex.as_ref()) {
                                Some((pattern, replacement)) => Some((
                                    regex::Regex::new(pattern)
                                        .with_context(|| format!("rewrite regex {pattern:?}"))?,
                                    regex_replacement(replacement),
                                )),
                                None => None,
                            };
                        let hosts: Vec<&str> = clusters
                            .iter()
                            .map(|&c: &usize| config.clusters[cluster_ids[c]].host.as_str())
                            .collect();
                        let site = Attachment {
                            port: listener.address.port(),
                            gateways: &gateways,
                            route,
                            hosts: &hosts,
                        };
                        let cors = match &route.cors {
                            Some(cors) => {
                                Some(CorsPolicy::new(cors).context("corsPolicy origin regex")?)
                            }
                            None => None,
                        };
                        let mirrors = route
                            .mirrors
                            .iter()
                            .map(|m| {
                                let id = cluster_ids
                                    .binary_search(&&m.cluster)
                                    .expect("resolved mirrors name clusters");
                                (id, m.percentage)
                            })
                            .collect();
                        let at = RouteAt {
                            listener: listener_index,
                            table: table_index,
                            virtual_host: vhost_index,
                            route: routes.len(),
                        };
                        route_names.push(route.name.clone());
                        route_keys.push(
                            RouteKey {
                                virtual_service: route.virtual_service.clone(),
                                name: route.name.clone(),
                            }
                            .intern(),
                        );
                        match_names.push(
                            route
                                .matches
                                .iter()
                                .map(|m| Some(format!("{}.{}", route.name, m.name.as_ref()?)))
                                .collect(),
                        );
                        routes.push(RouteEntry {
                            id: weight_config.len() as u32,
                            route: route.clone(),
                            clusters,
                            uri_regex,
                            plugins: chain(&plugins, &site),
                            cors,
                            mirrors,
                            at,
                        });
                        weight_config.push(weights);
                        fault_config.push(route.fault.as_ref().map(fault_json));
                        retry_config.push(retry_json(&route.retry));
                    }
                    virtual_hosts.push(VirtualHostEntry {
                        id,
                        require_tls: vhost.require_tls,
                        routes,
                    });
                }
                listener_tables.push(TableEntry {
                    domains: DomainIndex::new(table),
                    virtual_hosts,
                });
            }
            tables.push(listener_tables);
        }
        let breaker_config: Vec<_> = config
            .clusters
            .values()
            .map(|c| {
                let pool = &c.policy.connection_pool;
                json!({
                    "max_connections": pool.max_connections,
                    "http1_max_pending_requests": pool.http1_max_pending_requests,
                    "http2_max_requests": pool.http2_max_requests,
                    "max_retries": pool.max_retries,
                })
            })
            .collect();
        let outlier_config: Vec<_> = config
            .clusters
            .values()
            .map(|c| {
                c.policy.outlier_detection.as_ref().map(|o| {
                    json!({
                        "name": c.name,
                        "consecutive_5xx_errors": o.consecutive_5xx_errors,
                        "consecutive_gateway_errors": o.consecutive_gateway_errors,
                        "split_external_local_origin_errors": o.split_external_local_origin_errors,
                        "consecutive_local_origin_failures": o.consecutive_local_origin_failures,
                        "base_ejection_time_ms": o.base_ejection_time.as_millis() as u64,
                        "max_ejection_percent": o.max_ejection_percent,
                    })
                })
            })
            .collect();
        let lb_config: Vec<_> = config
            .clusters
            .values()
            .map(|c| json!({ "name": c.name, "load_balancer": c.policy.load_balancer }))
            .collect();

        let policies = Policies {
            route_match: pool(
                &builtin::MATCH,
                json!({ "virtual_hosts": match_config }),
                runtime,
            )
            .await?,
            destination: pool(
                &builtin::WEIGHT,
                json!({ "routes": weight_config }),
                runtime,
            )
            .await?,
            endpoint: pool(&builtin::LB, json!({ "clusters": lb_config }), runtime).await?,
            fault: pool(&builtin::FAULT, json!({ "routes": fault_config }), runtime).await?,
            retry: pool(&builtin::RETRY, json!({ "routes": retry_config }), runtime).await?,
            breaker: pool(
                &builtin::BREAKER,
                json!({ "clusters": breaker_config }),
                runtime,
            )
            .await?,
            outlier: pool(
                &builtin::OUTLIER,
                json!({ "clusters": outlier_config }),
                runtime,
            )
            .await?,
        };
        let mut clusters = Vec::with_capacity(config.clusters.len());
        for cluster in config.clusters.values() {
            clusters.push(
                ClusterState::new(
                    cluster.clone(),
                    runtime.cluster_loads.get(cluster.name.as_str()),
                    runtime.workers,
                    runtime.dns.clone(),
                )
                .await
                .with_context(|| format!("cluster {}: upstream TLS", cluster.name))?,
            );
        }
        Ok(Self {
            config,
            tables,
            match_names,
            clusters,
            policies,
            plugins,
            tls,
            route_names,
            route_keys,
        })
    }
}

/// Loads, compiles and configures one built-in policy (or its override).
async fn pool<K: Kind>(
    builtin: &Builtin,
    config: serde_json::Value,
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

/// Where a route is served, as plugin attachment sees it.
struct Attachment<'a> {
    /// The listener's configured port.
    port: u16,
    /// Gateways whose servers use the route's table.
    gateways: &'a [&'a str],
    route: &'a Route,
    /// Hosts of the route's destinations.
    hosts: &'a [&'a str],
}

/// The plugins attached to a route, in running order.
fn chain(plugins: &[LoadedPlugin], site: &Attachment<'_>) -> Vec<usize> {
    let mut chain: Vec<usize> = (0..plugins.len())
        .filter(|&i| {
            let plugin = &plugins[i].plugin;
            let port = plugin.ports.is_empty() || plugin.ports.contains(&site.port);
            let target = plugin.targets.is_empty()
                || plugin.targets.iter().any(|target| match target {
                    PluginTarget::Gateway(name) => site.gateways.contains(&name.as_str()),
                    PluginTarget::VirtualService { name, route } => {
                        *name == site.route.virtual_service
                            && route.as_ref().is_none_or(|r| *r == site.route.name)
                    }
                    PluginTarget::Service(host) => site.hosts.contains(&host.as_str()),
                });
            port && target
        })
        .collect();
    chain.sort_by(|&a, &b| plugins[a].order().cmp(&plugins[b].order()));
    chain
}

/// A route's fault as the fault policy takes it.
fn fault_json(fault: &Fault) -> serde_json::Value {
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
fn retry_json(retry: &RetryPolicy) -> serde_json::Value {
    json!({
        "attempts": retry.attempts,
        "retry_on": retry.retry_on,
        "retriable_status_codes": retry.retriable_status_codes,
        "backoff_base_ms": retry.backoff_base.as_millis() as u64,
    })
}

/// Istio writes regex groups as `\1`; the regex crate as `${1}`.
fn regex_replacement(istio: &str) -> String {
    let mut out = String::with_capacity(istio.len());
    let mut chars = istio.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('\\', Some(d)) if d.is_ascii_digit() => {
                out.push_str("${");
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    out.push(*d);
                    chars.next();
                }
                out.push('}');
            }
            ('$', _) => out.push_str("$$"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn translates_regex_groups() {
        assert_eq!(
            super::regex_replacement(r"/find/\1/\12"),
            "/find/${1}/${12}"
        );
        assert_eq!(super::regex_replacement("/a$b"), "/a$$b");
    }
}
