//! VirtualService: HTTP routes, checked against the Gateways, services and subsets
//! they reference. A route's parts each have a module: its match conditions, its
//! action (destinations, redirect, direct response, rewrite), retries, fault injection,
//! mirrors, CORS and header operations.

mod actions;
mod cors;
mod fault;
mod headers;
mod matches;
mod mirror;
mod retry;
mod streams;

use std::collections::BTreeMap;

use super::destinations::Subsets;
use super::gateways::GatewayServer;
use super::scope::Scope;
use super::services::Service;
use super::{Input, checks};
use crate::config::diag::Reporter;
use crate::config::model::virtual_service::{HttpRoute, VirtualServiceSpec};
use crate::config::resolved::{Route, RouteMatch};

/// A checked VirtualService, ready to be bound to its Gateways' servers.
#[derive(Debug, Clone)]
pub struct BoundService {
    pub hosts: Vec<String>,
    /// `namespace/name` of each Gateway it binds to.
    pub gateways: Vec<String>,
    /// Servers it is limited to: `(gateway, server port name)`; a Gateway with none
    /// listed here lends all its servers.
    pub sections: Vec<(String, String)>,
    pub namespace: String,
    pub routes: Vec<BoundRoute>,
    /// The `tls` routes, served on PASSTHROUGH servers.
    pub tls_routes: Vec<BoundRoute>,
    /// The `tcp` routes, served on TCP servers.
    pub tcp_routes: Vec<BoundRoute>,
}

impl BoundService {
    /// Whether the routes are served on `server`.
    pub fn served_on(&self, server: &GatewayServer) -> bool {
        let key = &server.gateway;
        let mut limits = self.sections.iter().filter(|(g, _)| g == key).peekable();
        self.gateways.contains(key)
            && (limits.peek().is_none() || limits.any(|(_, name)| *name == server.port_name))
    }
}

/// A route and, per match block, the Gateways the block is limited to (empty: all).
#[derive(Debug, Clone)]
pub struct BoundRoute {
    pub route: Route,
    pub match_gateways: Vec<Vec<String>>,
}

impl BoundRoute {
    /// The route as seen through `gateway`, or `None` when no match block applies there.
    pub fn through(&self, gateway: &str) -> Option<Route> {
        if self.match_gateways.iter().all(Vec::is_empty) {
            return Some(self.route.clone());
        }
        let mut route = self.route.clone();
        route.matches = self
            .route
            .matches
            .iter()
            .zip(&self.match_gateways)
            .filter(|(_, gateways)| gateways.is_empty() || gateways.iter().any(|g| g == gateway))
            .map(|(m, _)| m.clone())
            .collect();
        (!route.matches.is_empty()).then_some(route)
    }
}

/// What routes may point at.
pub struct Targets<'a> {
    pub gateways: &'a BTreeMap<String, Vec<GatewayServer>>,
    pub services: &'a BTreeMap<String, Service>,
    pub subsets: &'a Subsets,
}

/// Checks every VirtualService.
pub fn resolve(
    services: &[Input<'_, VirtualServiceSpec>],
    targets: &Targets<'_>,
    reporter: &Reporter,
) -> Vec<BoundService> {
    services
        .iter()
        .map(|vs| virtual_service(vs, targets, &vs.scope(reporter).field("spec")))
        .collect()
}

/// One VirtualService: the Gateways it binds to, its hosts and its routes.
fn virtual_service(
    vs: &Input<'_, VirtualServiceSpec>,
    targets: &Targets<'_>,
    at: &Scope<'_>,
) -> BoundService {
    let spec = vs.spec;
    if spec.export_to.is_some() {
        at.field("exportTo")
            .warn("only applies inside a service mesh; ignored");
    }
    if spec.hosts.is_empty() {
        at.field("hosts").error("a VirtualService without hosts is a delegate, which Portcullis does not support: give it hosts and gateways");
    }
    let (gateways, sections) =
        gateways(&spec.gateways, vs.namespace, targets, &at.field("gateways"));
    let hosts = hosts(
        &spec.hosts,
        &gateways,
        vs.namespace,
        targets,
        &at.field("hosts"),
    );
    let routes = routes(vs, targets, &at.field("http"));
    BoundService {
        hosts,
        gateways,
        sections,
        namespace: vs.namespace.to_string(),
        routes,
        tls_routes: streams::tls_routes(vs, targets, &at.field("tls")),
        tcp_routes: streams::tcp_routes(vs, targets, &at.field("tcp")),
    }
}

/// The Gateways a VirtualService binds to, as `namespace/name`, and the servers it is
/// limited to (`namespace/name/server port name`, as a Gateway API `sectionName`
/// translates).
fn gateways(
    names: &[String],
    namespace: &str,
    targets: &Targets<'_>,
    at: &Scope<'_>,
) -> (Vec<String>, Vec<(String, String)>) {
    let mut gateways: Vec<String> = Vec::new();
    let mut sections = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let Some((key, section)) = gateway_ref(name, namespace, targets, &at.index(i)) else {
            continue;
        };
        if !gateways.contains(&key) {
            gateways.push(key.clone());
        }
        sections.extend(section.map(|s| (key, s)));
    }
    if names.is_empty() {
        at.warn("no gateways: Istio applies this VirtualService to the mesh only, so Portcullis ignores it; list the Gateway it should serve");
    }
    (gateways, sections)
}

/// The valid hosts; a host that a Gateway does not serve is kept, with a warning.
fn hosts(
    hosts: &[String],
    gateways: &[String],
    namespace: &str,
    targets: &Targets<'_>,
    at: &Scope<'_>,
) -> Vec<String> {
    let mut valid = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        let host_at = at.index(i);
        if !checks::host_name(host, &host_at) {
            continue;
        }
        for gateway in gateways {
            let servers = &targets.gateways[gateway];
            let covered = servers.iter().any(|s| {
                s.hosts.iter().any(|(ns, h)| {
                    ns.as_ref().is_none_or(|ns| ns == namespace)
                        && checks::host_intersection(h, host).is_some()
                })
            });
            if !covered && !servers.is_empty() {
                let listed: Vec<String> = servers
                    .iter()
                    .flat_map(|s| s.hosts.iter().map(|(_, h)| format!("{h:?}")))
                    .collect();
                // Istio's analyzer says so too (IST0132); the host is just not served there.
                host_at.warn(format!(
                    "host {host:?} is not among the hosts of Gateway {gateway} ({}), so it is not served there",
                    listed.join(", ")
                ));
            }
        }
        valid.push(host.clone());
    }
    valid
}

/// The valid HTTP routes; a route after one that matches every request is unreachable.
fn routes(
    vs: &Input<'_, VirtualServiceSpec>,
    targets: &Targets<'_>,
    at: &Scope<'_>,
) -> Vec<BoundRoute> {
    let mut routes: Vec<BoundRoute> = Vec::new();
    let mut catch_all: Option<usize> = None;
    for (i, http) in vs.spec.http.iter().enumerate() {
        let route_at = at.index(i);
        let Some(route) = http_route(http, i, vs, targets, &route_at) else {
            continue;
        };
        if let Some(first) = catch_all {
            route_at.warn(format!(
                "unreachable: route spec.http[{first}] above matches every request"
            ));
        } else if route.route.is_catch_all() {
            catch_all = Some(i);
        }
        routes.push(route);
    }
    if vs.spec.http.is_empty() && vs.spec.tls.is_none() && vs.spec.tcp.is_none() {
        at.warn("no HTTP routes: requests for these hosts get 404");
    }
    routes
}

/// A Gateway named by a VirtualService, as `namespace/name`: it must be defined.
fn gateway_ref(
    name: &str,
    namespace: &str,
    targets: &Targets<'_>,
    at: &Scope<'_>,
) -> Option<(String, Option<String>)> {
    if name == "mesh" {
        at.warn("the reserved gateway \"mesh\" means sidecars, which a standalone gateway is not; ignored");
        return None;
    }
    let (name, section) = match name.splitn(3, '/').collect::<Vec<_>>()[..] {
        [ns, gateway, section] => (format!("{ns}/{gateway}"), Some(section.to_string())),
        _ => (name.to_string(), None),
    };
    let key = if name.contains('/') {
        name
    } else {
        format!("{namespace}/{name}")
    };
    if let Some(servers) = targets.gateways.get(&key) {
        if let Some(section) = &section
            && !servers.iter().any(|s| s.port_name == *section)
        {
            at.warn(format!(
                "Gateway {key} has no listener named {section:?}: not attached there"
            ));
            return None;
        }
        return Some((key, section));
    }
    let known: Vec<&str> = targets.gateways.keys().map(String::as_str).collect();
    let known = if known.is_empty() {
        "none is defined".to_string()
    } else {
        format!("defined: {}", known.join(", "))
    };
    at.error(format!("gateway {key:?} is not defined ({known})"));
    None
}

/// The HTTP route at `index` of the VirtualService; `None` when it has errors.
fn http_route(
    http: &HttpRoute,
    index: usize,
    vs: &Input<'_, VirtualServiceSpec>,
    targets: &Targets<'_>,
    at: &Scope<'_>,
) -> Option<BoundRoute> {
    let errors = at.error_count();
    let (matches, match_gateways) = match_blocks(http, vs.namespace, targets, &at.field("match"));
    let action = actions::action(http, targets, at);
    let rewrite = http
        .rewrite
        .as_ref()
        .and_then(|r| actions::rewrite(r, &at.field("rewrite")));
    check_host_rewrite(http, at);
    let timeout = checks::duration(http.timeout, &at.field("timeout"));
    let retry = retry::retry(http.retries.as_ref(), &at.field("retries"));
    let fault = http
        .fault
        .as_ref()
        .and_then(|f| fault::fault(f, &at.field("fault")));
    let mirrors = mirror::mirrors(http, targets, at);
    let cors = http
        .cors_policy
        .as_ref()
        .map(|c| cors::cors(c, &at.field("corsPolicy")));
    let headers = headers::header_ops(http.headers.as_ref(), &at.field("headers"));
    if at.error_count() > errors {
        return None;
    }
    Some(BoundRoute {
        route: Route {
            name: http
                .name
                .clone()
                .unwrap_or_else(|| format!("{}.{index}", vs.name)),
            virtual_service: vs.key(),
            matches,
            action: action?,
            rewrite,
            timeout,
            retry,
            fault,
            mirrors,
            cors,
            headers,
            rank: http.rank.clone(),
        },
        match_gateways,
    })
}

/// The valid match blocks, each with the Gateways it is limited to (empty: all).
fn match_blocks(
    http: &HttpRoute,
    namespace: &str,
    targets: &Targets<'_>,
    at: &Scope<'_>,
) -> (Vec<RouteMatch>, Vec<Vec<String>>) {
    let mut matches = Vec::new();
    let mut match_gateways = Vec::new();
    for (i, m) in http.matches.iter().enumerate() {
        let match_at = at.index(i);
        let gateways: Vec<String> = m
            .gateways
            .iter()
            .enumerate()
            .filter_map(|(j, name)| {
                let at = match_at.field("gateways").index(j);
                gateway_ref(name, namespace, targets, &at).map(|(key, _)| key)
            })
            .collect();
        if let Some(resolved) = matches::match_request(m, &match_at) {
            matches.push(resolved);
            match_gateways.push(gateways);
        }
    }
    (matches, match_gateways)
}

/// The authority is either rewritten or set as the host header, not both.
fn check_host_rewrite(http: &HttpRoute, at: &Scope<'_>) {
    let sets_host = http
        .headers
        .as_ref()
        .and_then(|h| h.request.as_ref())
        .is_some_and(|r| {
            r.set
                .keys()
                .chain(r.add.keys())
                .any(|k| k.eq_ignore_ascii_case("host"))
        });
    if sets_host && http.rewrite.as_ref().is_some_and(|r| r.authority.is_some()) {
        at.field("rewrite")
            .field("authority")
            .error("the authority is rewritten and the request's host header is set too: keep one");
    }
}
