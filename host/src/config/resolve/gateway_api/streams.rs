//! TLSRoutes and TCPRoutes, as Istio `tls` and `tcp` routes: each rule forwards to its
//! weighted backends; a TLSRoute's hostnames become the SNI names it takes. An invalid
//! backend is left out (its connections would be refused), with a warning.

use serde_json::json;

use super::backends::backends;
use super::routes::{Ranking, RouteKind, RouteSet, parents, rank};
use super::services::Services;
use super::status::Parents;
use crate::config::model::gateway_api::{
    BackendRef, HttpRouteMatch, HttpRouteRule, HttpRouteSpec, ObjectRef, StreamRouteRule,
    TcpRouteSpec, TlsRouteSpec,
};
use crate::config::resolve::scope::Scope;

/// What becomes of a TLSRoute's or TCPRoute's invalid backend.
const LEFT_OUT: &str = "left out (the others take its connections; none left: refused)";

/// The routes of TLSRoute `name` (`spec`, in `namespace`).
pub fn tls_route_set(
    spec: &TlsRouteSpec,
    origin: (&str, &str, usize),
    (services, known): (&Services<'_>, &Parents),
    at: &Scope<'_>,
) -> RouteSet {
    let hostnames = if spec.hostnames.is_empty() {
        vec!["*".to_string()]
    } else {
        spec.hostnames.clone()
    };
    let refs = (&spec.parent_refs[..], &spec.rules[..]);
    route_set(
        (RouteKind::Tls, hostnames),
        refs,
        origin,
        (services, known),
        at,
    )
}

/// The routes of TCPRoute `name` (`spec`, in `namespace`).
pub fn tcp_route_set(
    spec: &TcpRouteSpec,
    origin: (&str, &str, usize),
    (services, known): (&Services<'_>, &Parents),
    at: &Scope<'_>,
) -> RouteSet {
    let refs = (&spec.parent_refs[..], &spec.rules[..]);
    let any = vec!["*".to_string()];
    route_set((RouteKind::Tcp, any), refs, origin, (services, known), at)
}

fn route_set(
    (kind, hostnames): (RouteKind, Vec<String>),
    (parent_refs, rules): (&[ObjectRef], &[StreamRouteRule]),
    (namespace, name, document): (&str, &str, usize),
    (services, known): (&Services<'_>, &Parents),
    at: &Scope<'_>,
) -> RouteSet {
    let key = format!("{namespace}/{name}");
    let mut entries = Vec::new();
    for (r, rule) in rules.iter().enumerate() {
        let at = at.field("rules").index(r);
        if rule.name.is_some() {
            at.field("name").warn(
                "not used yet: a TLSRoute's or TCPRoute's routes are named <virtual service>.tls.<i> or .tcp.<i>; ignored",
            );
        }
        let refs: Vec<_> = rule.backend_refs.iter().map(BackendRef::as_http).collect();
        let found = backends(
            &refs,
            (namespace, LEFT_OUT),
            services,
            &at.field("backendRefs"),
        );
        if found.destinations.is_empty() {
            at.field("backendRefs")
                .warn("no valid backend: the rule's connections are refused");
            continue;
        }
        let order = rank(Ranking::Http, &HttpRouteMatch::default(), (&key, r, 0));
        entries.push((order, json!({ "route": found.destinations })));
    }
    let api_kind = match kind {
        RouteKind::Tls => "TLSRoute",
        _ => "TCPRoute",
    };
    RouteSet {
        kind,
        namespace: namespace.to_string(),
        gateways: parents((parent_refs, api_kind), namespace, known, at),
        hostnames,
        entries,
        document,
        key,
    }
}

/// A TLSRoute as the HTTPRoute its conditions are worked out as (parents, hostnames,
/// backends).
pub fn tls_as_http(spec: &TlsRouteSpec) -> HttpRouteSpec {
    HttpRouteSpec {
        parent_refs: spec.parent_refs.clone(),
        hostnames: spec.hostnames.clone(),
        rules: spec.rules.iter().map(rule).collect(),
    }
}

/// A TCPRoute as the HTTPRoute its conditions are worked out as.
pub fn tcp_as_http(spec: &TcpRouteSpec) -> HttpRouteSpec {
    HttpRouteSpec {
        parent_refs: spec.parent_refs.clone(),
        hostnames: Vec::new(),
        rules: spec.rules.iter().map(rule).collect(),
    }
}

fn rule(rule: &StreamRouteRule) -> HttpRouteRule {
    HttpRouteRule {
        name: rule.name.clone(),
        backend_refs: rule.backend_refs.iter().map(BackendRef::as_http).collect(),
        ..HttpRouteRule::default()
    }
}
