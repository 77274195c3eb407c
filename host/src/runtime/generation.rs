//! A generation: one resolved config with everything built to serve it — indexed routes,
//! clusters with clients, and configured policy components.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;

use super::chain;
use super::clusters::ClusterState;
use super::jwks::Jwks;
use super::policy_config::{self, RoutePolicies};
use super::route_entry::Attachment;
pub use super::route_entry::{RouteAt, RouteEntry};
use super::route_key::{RouteKey, RouteKeyId};
use super::tls_servers::TlsServers;
use super::vhosts::DomainIndex;
use crate::config::resolved::{
    Cluster, EndpointAddress, Listener, ListenerId, ResolvedConfig, Route, RouteAction, VirtualHost,
};
use crate::registry::Registry;
use crate::upstream::ClusterLoad;
use crate::upstream::dns::Dns;
use crate::wasm::WasmEngine;
use crate::wasm::counters::Counters;
use crate::wasm::outbound::{self, Outbound};
use crate::wasm::plugins::{CompiledPlugin, LoadedPlugin};
use crate::wasm::policies::{PhaseTables, Policies};
use crate::wasm::stats::PolicyStats;

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
    /// The key sets RequestAuthentications fetch, kept across generations.
    pub jwks: Arc<Jwks>,
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
            jwks: Arc::default(),
        }
    }
}

/// A virtual host and its routes.
pub struct VirtualHostEntry {
    /// Global id, as the match policy knows it.
    pub id: u32,
    /// The plugin that replaces the built-in matcher here, if one does.
    pub matcher: Option<usize>,
    /// The filters that run before route selection (RequestAuthentication's), in order.
    pub authenticators: Vec<usize>,
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
    /// Plugins from WasmPlugin resources: filters and policies.
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
    pub async fn build(mut config: ResolvedConfig, runtime: &Runtime) -> anyhow::Result<Self> {
        runtime.jwks.fill(&mut config.plugins).await;
        let tls = config
            .listeners
            .iter()
            .map(|l| TlsServers::build(l).with_context(|| format!("TLS for {}", l.servers[0].name)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let compiled = compile_plugins(&config, runtime).await?;
        let mut routes = Routes::new(&config, &compiled);
        let tables = config
            .listeners
            .iter()
            .enumerate()
            .map(|(index, listener)| routes.listener(index, listener))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let cluster_chains = config
            .clusters
            .values()
            .map(|cluster| chain::cluster(&compiled, cluster))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let Routes {
            policies,
            names: route_names,
            keys: route_keys,
            match_names,
            ..
        } = routes;
        let phases = policies.finish(&config.clusters);
        let outbound = Arc::new(outbound(&config));
        let plugins = configure_plugins(compiled, &phases, runtime, &outbound).await?;
        let policies = policy_config::builtins(phases, runtime).await?;
        let mut clusters = Vec::with_capacity(config.clusters.len());
        for (cluster, chain) in config.clusters.values().zip(cluster_chains) {
            let load = runtime.cluster_loads.get(cluster.name.as_str());
            let dns = runtime.dns.clone();
            let state = ClusterState::new(cluster.clone(), chain, load, runtime.workers, dns)
                .await
                .with_context(|| format!("cluster {}: upstream TLS", cluster.name))?;
            clusters.push(state);
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

/// Compiles the config's WasmPlugins and reads which phase each serves.
async fn compile_plugins(
    config: &ResolvedConfig,
    runtime: &Runtime,
) -> anyhow::Result<Vec<CompiledPlugin>> {
    let mut plugins = Vec::with_capacity(config.plugins.len());
    for plugin in &config.plugins {
        let name = plugin.name.clone();
        let compiled = CompiledPlugin::compile(plugin.clone(), &runtime.wasm)
            .await
            .with_context(|| format!("loading WasmPlugin {name}"))?;
        chain::check(&compiled)?;
        plugins.push(compiled);
    }
    Ok(plugins)
}

/// Configures the compiled plugins: a filter with its `pluginConfig`, a policy with the
/// settings its built-in would take beside it.
async fn configure_plugins(
    compiled: Vec<CompiledPlugin>,
    tables: &PhaseTables,
    runtime: &Runtime,
    outbound: &Arc<Outbound>,
) -> anyhow::Result<Vec<LoadedPlugin>> {
    let mut plugins = Vec::with_capacity(compiled.len());
    for plugin in compiled {
        let name = plugin.plugin.name.clone();
        let stats = runtime.policy_stats.get(name.as_str());
        let loaded = plugin
            .configure(
                &runtime.wasm,
                runtime.counters.clone(),
                stats,
                tables,
                outbound,
            )
            .await
            .with_context(|| format!("loading WasmPlugin {name}"))?;
        plugins.push(loaded);
    }
    Ok(plugins)
}

/// Where the config's extension providers' checks go: their services' IP endpoints.
fn outbound(config: &ResolvedConfig) -> Outbound {
    let providers = config
        .providers
        .iter()
        .map(|provider| {
            let endpoints = config.clusters[&provider.cluster]
                .endpoints
                .iter()
                .filter_map(|e| match e.address {
                    EndpointAddress::Ip(ip) => Some(SocketAddr::new(ip, e.port)),
                    _ => None,
                })
                .collect();
            let target = outbound::Provider::new(endpoints, provider.timeout);
            (provider.name.clone(), target)
        })
        .collect();
    Outbound::new(providers)
}

/// Builds the route tables, numbering virtual hosts and routes as the policies know them.
struct Routes<'a> {
    config: &'a ResolvedConfig,
    cluster_names: Vec<&'a String>,
    plugins: &'a [CompiledPlugin],
    policies: RoutePolicies,
    names: Vec<String>,
    keys: Vec<RouteKeyId>,
    match_names: Vec<Vec<Option<String>>>,
}

impl<'a> Routes<'a> {
    fn new(config: &'a ResolvedConfig, plugins: &'a [CompiledPlugin]) -> Self {
        Self {
            config,
            cluster_names: config.clusters.keys().collect(),
            plugins,
            policies: RoutePolicies::default(),
            names: Vec::new(),
            keys: Vec::new(),
            match_names: Vec::new(),
        }
    }

    /// The index of the cluster `name` (resolved routes name only existing clusters).
    fn cluster_id(&self, name: &str) -> usize {
        self.cluster_names
            .binary_search_by(|c| c.as_str().cmp(name))
            .expect("resolved routes name clusters")
    }

    /// The route tables of `listener`.
    fn listener(&mut self, index: usize, listener: &Listener) -> anyhow::Result<Vec<TableEntry>> {
        let mut tables = Vec::with_capacity(listener.route_tables.len());
        for (table_index, table) in listener.route_tables.iter().enumerate() {
            let mut virtual_hosts = Vec::with_capacity(table.virtual_hosts.len());
            for (vhost_index, vhost) in table.virtual_hosts.iter().enumerate() {
                let at = RouteAt {
                    listener: index,
                    table: table_index,
                    virtual_host: vhost_index,
                    route: 0,
                };
                let port = listener.address.port();
                virtual_hosts.push(self.virtual_host(vhost, at, port)?);
            }
            tables.push(TableEntry {
                domains: DomainIndex::new(table),
                virtual_hosts,
            });
        }
        Ok(tables)
    }

    /// A virtual host at `at` and its routes, served on `port` by the Gateways that
    /// bound it: a plugin targeting another Gateway on the port does not reach it.
    fn virtual_host(
        &mut self,
        vhost: &VirtualHost,
        at: RouteAt,
        port: u16,
    ) -> anyhow::Result<VirtualHostEntry> {
        let gateways: Vec<&str> = vhost.gateways.iter().map(String::as_str).collect();
        let gateways = gateways.as_slice();
        let id = self.policies.add_virtual_host(vhost);
        let matcher = chain::matcher(self.plugins, &vhost.routes, gateways, &vhost.domains)?;
        let mut routes = Vec::with_capacity(vhost.routes.len());
        for (index, route) in vhost.routes.iter().enumerate() {
            let at = RouteAt { route: index, ..at };
            routes.push(self.route(route, at, port, gateways)?);
        }
        Ok(VirtualHostEntry {
            id,
            matcher,
            authenticators: chain::authenticators(self.plugins, port, gateways),
            require_tls: vhost.require_tls,
            routes,
        })
    }

    /// The entry for `route`, numbered for the policies and named for telemetry.
    fn route(
        &mut self,
        route: &Route,
        at: RouteAt,
        port: u16,
        gateways: &[&str],
    ) -> anyhow::Result<RouteEntry> {
        let (clusters, weights): (Vec<usize>, Vec<u32>) = match &route.action {
            RouteAction::Forward(destinations) => destinations
                .iter()
                .map(|d| (self.cluster_id(&d.cluster), d.weight))
                .unzip(),
            _ => (Vec::new(), Vec::new()),
        };
        let hosts: Vec<&str> = clusters
            .iter()
            .map(|&c| self.config.clusters[self.cluster_names[c]].host.as_str())
            .collect();
        let site = Attachment {
            port,
            gateways,
            route,
            clusters: &clusters,
            hosts: &hosts,
        };
        let destinations: Vec<(&Cluster, u32)> = clusters
            .iter()
            .zip(&weights)
            .map(|(&c, &weight)| (&self.config.clusters[self.cluster_names[c]], weight))
            .collect();
        let id = self.policies.add_route(route, &destinations);
        let entry = RouteEntry::new(id, route, at, &site, self.plugins, |c| self.cluster_id(c))?;
        self.names.push(route.name.clone());
        let key = RouteKey {
            virtual_service: route.virtual_service.clone(),
            name: route.name.clone(),
        };
        self.keys.push(key.intern());
        self.match_names.push(
            route
                .matches
                .iter()
                .map(|m| Some(format!("{}.{}", route.name, m.name.as_ref()?)))
                .collect(),
        );
        Ok(entry)
    }
}
