//! Which component serves each phase of a route, virtual host or cluster: the built-in,
//! or the one WasmPlugin whose component serves that phase and whose targets reach it.
//! Filters are the exception: every filter that reaches a route runs, in order.

use anyhow::bail;
use serde::Serialize;

use super::route_entry::Attachment;
use crate::config::resolved::{Cluster, Phase, PluginTarget, Route};
use crate::wasm::kinds::{PolicyKind, Reach};
use crate::wasm::plugins::{CompiledPlugin, chain_order};

/// The plugins that replace a route's route-level built-ins, as indices into the
/// generation's plugins; `None` keeps the built-in.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct RouteChain {
    /// Fault injection.
    pub fault: Option<usize>,
    /// The weighted destination choice.
    pub destination: Option<usize>,
    /// Retry decisions.
    pub retry: Option<usize>,
}

/// The plugins that replace a cluster's built-ins.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct ClusterChain {
    /// Load balancing.
    pub endpoint: Option<usize>,
    /// Circuit breaking.
    pub breaker: Option<usize>,
    /// Outlier detection.
    pub outlier: Option<usize>,
}

/// Fails on what a policy plugin (not a filter) cannot mean: phase and priority order
/// filters only, and cluster-level kinds apply to services, not listeners or routes.
pub(super) fn check(plugin: &CompiledPlugin) -> anyhow::Result<()> {
    let (config, kind) = (&plugin.plugin, plugin.kind);
    if kind == PolicyKind::Filter {
        return Ok(());
    }
    let name = &config.name;
    let interface = kind.interface();
    if config.phase != Phase::UnspecifiedPhase || config.priority != 0 {
        bail!(
            "WasmPlugin {name} serves the {interface} phase: phase and priority order filters only; remove them"
        );
    }
    if kind.reach() != Reach::Cluster
        && let Some(PluginTarget::Service {
            host,
            subset: Some(subset),
        }) = config.targets.iter().find(|t| {
            matches!(
                t,
                PluginTarget::Service {
                    subset: Some(_),
                    ..
                }
            )
        })
    {
        bail!(
            "WasmPlugin {name} serves the {interface} phase of routes: a subset ({host} {subset}, sectionName) narrows the services of cluster-level phases only"
        );
    }
    if kind.reach() == Reach::Cluster {
        if !config.ports.is_empty() {
            bail!(
                "WasmPlugin {name} serves the {interface} phase of services: match.ports selects listeners; remove it"
            );
        }
        if let Some(target) = config
            .targets
            .iter()
            .find(|t| !matches!(t, PluginTarget::Service { .. }))
        {
            bail!(
                "WasmPlugin {name} serves the {interface} phase of services: target ServiceEntry hosts, not {target:?}"
            );
        }
    }
    Ok(())
}

/// Whether `plugin`'s ports and targets reach a route served at `site`.
fn reaches_route(plugin: &CompiledPlugin, site: &Attachment<'_>) -> bool {
    let config = &plugin.plugin;
    let port = config.ports.is_empty() || config.ports.contains(&site.port);
    let target = config.targets.is_empty()
        || config.targets.iter().any(|target| match target {
            PluginTarget::Gateway(name) => site.gateways.contains(&name.as_str()),
            PluginTarget::VirtualService { name, route } => {
                *name == site.route.virtual_service
                    && route.as_ref().is_none_or(|r| *r == site.route.name)
            }
            PluginTarget::Service { host, .. } => site.hosts.contains(&host.as_str()),
        });
    port && target
}

/// The filters that reach a route served at `site`, in running order.
pub(super) fn filters(plugins: &[CompiledPlugin], site: &Attachment<'_>) -> Vec<usize> {
    let mut chain: Vec<usize> = (0..plugins.len())
        .filter(|&i| {
            let plugin = &plugins[i];
            plugin.kind == PolicyKind::Filter
                && !plugin.plugin.before_routing
                && reaches_route(plugin, site)
        })
        .collect();
    sort(&mut chain, plugins);
    chain
}

/// The filters that run before route selection on `port` for `gateways`, in running
/// order.
pub(super) fn authenticators(
    plugins: &[CompiledPlugin],
    port: u16,
    gateways: &[&str],
) -> Vec<usize> {
    let mut chain: Vec<usize> = (0..plugins.len())
        .filter(|&i| {
            let config = &plugins[i].plugin;
            config.before_routing
                && (config.ports.is_empty() || config.ports.contains(&port))
                && config.targets.iter().any(|target| {
                    matches!(target, PluginTarget::Gateway(name) if gateways.contains(&name.as_str()))
                })
        })
        .collect();
    sort(&mut chain, plugins);
    chain
}

/// Sorts `chain` into running order.
fn sort(chain: &mut [usize], plugins: &[CompiledPlugin]) {
    chain.sort_by(|&a, &b| chain_order(&plugins[a].plugin).cmp(&chain_order(&plugins[b].plugin)));
}

/// The plugins replacing the route-level built-ins of the route served at `site`; two
/// for one phase are an error naming both.
pub(super) fn route(
    plugins: &[CompiledPlugin],
    site: &Attachment<'_>,
) -> anyhow::Result<RouteChain> {
    let mut chain = RouteChain::default();
    for (i, plugin) in plugins.iter().enumerate() {
        let slot = match plugin.kind {
            PolicyKind::Fault => &mut chain.fault,
            PolicyKind::Destination => &mut chain.destination,
            PolicyKind::Retry => &mut chain.retry,
            _ => continue,
        };
        if reaches_route(plugin, site) {
            claim(slot, i, plugins, &format!("route {}", site.route.name))?;
        }
    }
    Ok(chain)
}

/// The plugins replacing the built-ins of `cluster`.
pub(super) fn cluster(
    plugins: &[CompiledPlugin],
    cluster: &Cluster,
) -> anyhow::Result<ClusterChain> {
    let mut chain = ClusterChain::default();
    for (i, plugin) in plugins.iter().enumerate() {
        let slot = match plugin.kind {
            PolicyKind::Endpoint => &mut chain.endpoint,
            PolicyKind::Breaker => &mut chain.breaker,
            PolicyKind::Outlier => &mut chain.outlier,
            _ => continue,
        };
        let targets = &plugin.plugin.targets;
        let reaches = targets.is_empty()
            || targets.iter().any(|t| match t {
                PluginTarget::Service { host, subset } => {
                    *host == cluster.host
                        && subset
                            .as_ref()
                            .is_none_or(|s| Some(s) == cluster.subset.as_ref())
                }
                _ => false,
            });
        if reaches {
            claim(slot, i, plugins, &format!("cluster {}", cluster.name))?;
        }
    }
    Ok(chain)
}

/// The matcher plugin of a virtual host with `routes`, served by `gateways`, if one
/// reaches it. A matcher decides for whole virtual hosts: one that targets a
/// VirtualService must own every route of the virtual hosts it reaches.
pub(super) fn matcher(
    plugins: &[CompiledPlugin],
    routes: &[Route],
    gateways: &[&str],
    domains: &[String],
) -> anyhow::Result<Option<usize>> {
    let mut chosen = None;
    let what = format!("virtual host {}", domains.join(","));
    for (i, plugin) in plugins.iter().enumerate() {
        if plugin.kind != PolicyKind::RouteMatch {
            continue;
        }
        let targets = &plugin.plugin.targets;
        let mut reaches = targets.is_empty();
        for target in targets {
            match target {
                PluginTarget::Gateway(name) => reaches |= gateways.contains(&name.as_str()),
                PluginTarget::VirtualService { name, route: None } => {
                    let owned = routes.iter().filter(|r| r.virtual_service == *name).count();
                    if owned > 0 && owned < routes.len() {
                        bail!(
                            "WasmPlugin {} matches routes for VirtualService {name}, but {what} also has other VirtualServices' routes: a matcher decides for whole virtual hosts",
                            plugin.plugin.name
                        );
                    }
                    reaches |= owned > 0;
                }
                PluginTarget::VirtualService { route: Some(_), .. }
                | PluginTarget::Service { .. } => {
                    bail!(
                        "WasmPlugin {} serves the route-match phase: target a Gateway or a whole VirtualService",
                        plugin.plugin.name
                    );
                }
            }
        }
        if reaches {
            claim(&mut chosen, i, plugins, &what)?;
        }
    }
    Ok(chosen)
}

/// Takes `slot` for plugin `i`, or fails naming both plugins when another has it.
fn claim(
    slot: &mut Option<usize>,
    i: usize,
    plugins: &[CompiledPlugin],
    what: &str,
) -> anyhow::Result<()> {
    if let Some(other) = slot.replace(i) {
        bail!(
            "WasmPlugins {} and {} both serve the {} phase of {what}: one component serves a phase; narrow their targetRefs",
            plugins[other].plugin.name,
            plugins[i].plugin.name,
            plugins[i].kind.interface()
        );
    }
    Ok(())
}
