//! A VirtualService's `tls` and `tcp` routes: connections forwarded as bytes. Each becomes
//! a route like an HTTP one, so the same policies choose it and its destination: a `tls`
//! match block is one block per SNI name (the name as the authority condition) with its
//! port; a `tcp` one is its port.

use super::actions::destinations;
use super::{BoundRoute, Scope, Targets, checks};
use crate::config::model::virtual_service::{
    HttpRouteDestination, L4Destination, TcpRoute, TlsMatch, TlsRoute, VirtualServiceSpec,
};
use crate::config::resolve::Input;
use crate::config::resolved::{
    HeaderOps, RetryPolicy, Route, RouteAction, RouteMatch, StringMatcher,
};

/// The `tls` routes of `vs`, in order.
pub fn tls_routes(
    vs: &Input<'_, VirtualServiceSpec>,
    targets: &Targets<'_>,
    at: &Scope<'_>,
) -> Vec<BoundRoute> {
    each(vs.spec.tls.as_deref(), |tls, i| {
        tls_route(tls, (vs, i), targets, &at.index(i))
    })
}

/// The `tcp` routes of `vs`, in order.
pub fn tcp_routes(
    vs: &Input<'_, VirtualServiceSpec>,
    targets: &Targets<'_>,
    at: &Scope<'_>,
) -> Vec<BoundRoute> {
    each(vs.spec.tcp.as_deref(), |tcp, i| {
        tcp_route(tcp, (vs, i), targets, &at.index(i))
    })
}

/// The routes `route` makes of `specs` (each with its index), those without errors.
fn each<S>(
    specs: Option<&[S]>,
    route: impl Fn(&S, usize) -> Option<BoundRoute>,
) -> Vec<BoundRoute> {
    let specs = specs.unwrap_or_default();
    specs
        .iter()
        .enumerate()
        .filter_map(|(i, s)| route(s, i))
        .collect()
}

fn tls_route(
    tls: &TlsRoute,
    (vs, index): (&Input<'_, VirtualServiceSpec>, usize),
    targets: &Targets<'_>,
    at: &Scope<'_>,
) -> Option<BoundRoute> {
    if tls.matches.is_empty() {
        at.field("match")
            .error("a tls route needs a match with sniHosts");
        return None;
    }
    let mut matches = Vec::new();
    for (i, block) in tls.matches.iter().enumerate() {
        let block_at = at.field("match").index(i);
        mesh_only_tls(block, &block_at);
        let port = port(block.port, &block_at.field("port"))?;
        if block.sni_hosts.is_empty() {
            block_at
                .field("sniHosts")
                .error("a tls match needs sniHosts");
        }
        for (h, sni) in block.sni_hosts.iter().enumerate() {
            let sni_at = block_at.field("sniHosts").index(h);
            if !checks::host_name(sni, &sni_at) {
                continue;
            }
            if !vs.spec.hosts.iter().any(|h| checks::host_covers(h, sni)) {
                sni_at.error(format!(
                    "SNI host {sni:?} is not among the VirtualService's hosts"
                ));
            }
            matches.push(RouteMatch {
                authority: Some(sni_matcher(sni)),
                port,
                ..RouteMatch::default()
            });
        }
    }
    stream_route(&tls.route, matches, (vs, "tls", index), targets, at)
}

fn tcp_route(
    tcp: &TcpRoute,
    (vs, index): (&Input<'_, VirtualServiceSpec>, usize),
    targets: &Targets<'_>,
    at: &Scope<'_>,
) -> Option<BoundRoute> {
    let mut matches = Vec::new();
    for (i, block) in tcp.matches.iter().enumerate() {
        let block_at = at.field("match").index(i);
        for (field, set) in [
            ("destinationSubnets", block.destination_subnets.is_some()),
            ("sourceSubnet", block.source_subnet.is_some()),
            ("sourceLabels", block.source_labels.is_some()),
            ("gateways", block.gateways.is_some()),
            ("sourceNamespace", block.source_namespace.is_some()),
        ] {
            if set {
                block_at
                    .field(field)
                    .warn("not served for tcp routes yet; ignored");
            }
        }
        matches.push(RouteMatch {
            port: port(block.port, &block_at.field("port"))?,
            ..RouteMatch::default()
        });
    }
    stream_route(&tcp.route, matches, (vs, "tcp", index), targets, at)
}

/// The fields of a tls match Portcullis does not serve, warned about.
fn mesh_only_tls(block: &TlsMatch, at: &Scope<'_>) {
    for (field, set) in [
        ("destinationSubnets", block.destination_subnets.is_some()),
        ("sourceLabels", block.source_labels.is_some()),
        ("gateways", block.gateways.is_some()),
        ("sourceNamespace", block.source_namespace.is_some()),
    ] {
        if set {
            at.field(field)
                .warn("not served for tls routes yet; ignored");
        }
    }
}

/// A match's port condition; `None` (outer) when it is out of range (an error).
fn port(port: Option<u32>, at: &Scope<'_>) -> Option<Option<u16>> {
    match port.map(u16::try_from) {
        None => Some(None),
        Some(Ok(port)) => Some(Some(port)),
        Some(Err(_)) => {
            at.error(format!("port {} is out of range", port.unwrap_or_default()));
            None
        }
    }
}

/// Whether a destination's host (and port, when it names one) is defined by a
/// ServiceEntry; one that is not is warned about and left out (Istio accepts it, and
/// Envoy closes the connections it would take, having no cluster for it).
fn defined(destination: &L4Destination, targets: &Targets<'_>, at: &Scope<'_>) -> bool {
    let Some(target) = &destination.destination else {
        return true; // reported by `destinations`
    };
    let Some(host) = target.host.as_deref() else {
        return true;
    };
    let port = target.port.and_then(|p| p.number);
    let found = targets.services.get(host).is_some_and(|service| {
        port.is_none_or(|n| {
            u16::try_from(n)
                .ok()
                .and_then(|n| service.port(n))
                .is_some()
        })
    });
    if !found {
        let port = port.map(|n| format!(" port {n}")).unwrap_or_default();
        at.field("destination").warn(format!(
            "no ServiceEntry defines host {host:?}{port}: this destination is left out"
        ));
    }
    found
}

/// The authority condition for an SNI name: exact, or for `*.suffix` any name ending
/// in `.suffix`.
fn sni_matcher(sni: &str) -> StringMatcher {
    match sni.strip_prefix('*') {
        Some("") => StringMatcher::Regex(".+".into()),
        Some(suffix) => StringMatcher::Regex(format!(".+{}", regex::escape(suffix))),
        None => StringMatcher::Exact(sni.to_ascii_lowercase()),
    }
}

/// The route forwarding to `route`'s destinations when one of `matches` holds (none: every
/// connection), named `<virtual service>.<kind>.<index>`.
fn stream_route(
    route: &[L4Destination],
    matches: Vec<RouteMatch>,
    (vs, kind, index): (&Input<'_, VirtualServiceSpec>, &str, usize),
    targets: &Targets<'_>,
    at: &Scope<'_>,
) -> Option<BoundRoute> {
    if route.is_empty() {
        at.field("route").error("a route needs a destination");
        return None;
    }
    let as_http: Vec<HttpRouteDestination> = route
        .iter()
        .enumerate()
        .filter(|(i, d)| defined(d, targets, &at.field("route").index(*i)))
        .map(|(_, d)| HttpRouteDestination {
            destination: d.destination.clone(),
            weight: d.weight,
            headers: None,
        })
        .collect();
    if as_http.is_empty() {
        at.warn("no destination of this route is defined: it is not served");
        return None;
    }
    let destinations = destinations(&as_http, targets, &at.field("route"))?;
    let match_gateways = vec![Vec::new(); matches.len()];
    Some(BoundRoute {
        route: Route {
            name: format!("{}.{kind}.{index}", vs.name),
            virtual_service: vs.key(),
            matches,
            action: RouteAction::Forward(destinations),
            rewrite: None,
            timeout: None,
            retry: RetryPolicy {
                attempts: 0,
                ..RetryPolicy::default()
            },
            fault: None,
            mirrors: Vec::new(),
            cors: None,
            headers: HeaderOps::default(),
            rank: None,
        },
        match_gateways,
    })
}
