//! The conditions Kubernetes would write on Gateways and HTTPRoutes: whether each listener
//! is served, and whether each route is accepted by each parent and its backends resolve.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::backends::names_a_service;
use super::listeners::{ListenerStates, Unserved};
use super::namespaces::{Allowed, Namespaces};
use super::routes::parent_gateway;
use super::services::Services;
use crate::config::model::gateway_api::{HttpRouteSpec, Listener, ObjectRef};
use crate::config::model::{GATEWAY_API, Resource, Spec};
use crate::config::resolve::checks::host_intersection;
use crate::config::resolved::{
    Condition, GatewayApiStatus, GatewayStatus, ListenerStatus, RouteStatus,
};

/// What the routes' conditions depend on: every Gateway's listeners, by `namespace/name`.
pub struct Parents(BTreeMap<String, Vec<ListenerView>>);

/// A listener as routes see it.
struct ListenerView {
    name: String,
    port: Option<u32>,
    hostname: Option<String>,
    allowed: Allowed,
    /// The route kinds it takes.
    kinds: Vec<String>,
    served: bool,
    /// Its conditions.
    conditions: Vec<Condition>,
}

impl ListenerView {
    fn of(
        listener: &Listener,
        (gateway_ns, namespaces): (&str, &Namespaces),
        state: Result<(), Unserved>,
    ) -> Self {
        Self {
            name: listener.name.clone().unwrap_or_default(),
            port: listener.port,
            hostname: listener.hostname.clone(),
            allowed: Allowed::of(listener, gateway_ns, namespaces),
            kinds: route_kinds(listener),
            served: state.is_ok(),
            conditions: listener_conditions(listener, state),
        }
    }
}

/// The route kinds a listener takes: those its `allowedRoutes.kinds` name that its
/// protocol serves, else every kind its protocol serves.
fn route_kinds(listener: &Listener) -> Vec<String> {
    let served: &[&str] = match listener.protocol.as_deref() {
        Some("HTTP" | "HTTPS") => &["HTTPRoute", "GRPCRoute"],
        Some("TLS") => &["TLSRoute"],
        Some("TCP") => &["TCPRoute"],
        _ => &[],
    };
    let named = listener
        .allowed_routes
        .as_ref()
        .and_then(|a| a.kinds.as_ref());
    served
        .iter()
        .filter(|kind| {
            named.is_none_or(|named| {
                named.iter().any(|k| {
                    k.kind.as_deref() == Some(**kind)
                        && k.group.as_deref().is_none_or(|g| g == GATEWAY_API)
                })
            })
        })
        .map(ToString::to_string)
        .collect()
}

/// Whether the listener's `allowedRoutes.kinds` names a kind its protocol does not serve.
fn names_unserved_kinds(listener: &Listener) -> bool {
    let served = route_kinds(listener);
    let named = listener
        .allowed_routes
        .as_ref()
        .and_then(|a| a.kinds.as_ref());
    named.is_some_and(|named| {
        named.iter().any(|k| {
            k.group.as_deref().is_some_and(|g| g != GATEWAY_API)
                || !served.iter().any(|s| Some(s.as_str()) == k.kind.as_deref())
        })
    })
}

/// A listener's `Accepted`, `ResolvedRefs` and `Programmed` conditions.
fn listener_conditions(listener: &Listener, state: Result<(), Unserved>) -> Vec<Condition> {
    let unsupported = match listener.protocol.as_deref() {
        Some("HTTP" | "HTTPS" | "TLS" | "TCP") => "UnsupportedValue",
        _ => "UnsupportedProtocol",
    };
    let (accepted, resolved) = match state {
        Ok(()) if names_unserved_kinds(listener) => (Ok(()), Err("InvalidRouteKinds")),
        Ok(()) => (Ok(()), Ok(())),
        Err(Unserved::Unsupported) => (Err(unsupported), Ok(())),
        Err(Unserved::Refs(reason)) => (Ok(()), Err(reason)),
    };
    let condition = |kind, state: Result<(), &'static str>| match state {
        Ok(()) => Condition::holds(kind),
        Err(reason) => Condition::fails(kind, reason),
    };
    vec![
        condition("Accepted", accepted),
        condition("ResolvedRefs", resolved),
        condition("Programmed", state.map_err(|_| "Invalid")),
    ]
}

impl Parents {
    /// The Gateways among `resources`; `namespaces` are those routes may come from, and
    /// `served` says which listeners of each Gateway (by `namespace/name`) are served.
    pub fn of(
        resources: &[&Resource],
        namespaces: &Namespaces,
        served: &BTreeMap<String, ListenerStates>,
    ) -> Self {
        let gateways = resources
            .iter()
            .filter_map(|r| match &r.spec {
                Spec::KubeGateway(spec) => {
                    let key = format!("{}/{}", r.namespace, r.name);
                    let served = served.get(&key).map_or(&[][..], Vec::as_slice);
                    let listeners = spec
                        .listeners
                        .iter()
                        .enumerate()
                        .map(|(i, l)| {
                            let state = served.get(i).copied();
                            let state = state.unwrap_or(Err(Unserved::Unsupported));
                            ListenerView::of(l, (&r.namespace, namespaces), state)
                        })
                        .collect();
                    Some((key, listeners))
                }
                _ => None,
            })
            .collect();
        Self(gateways)
    }

    /// The served listeners of Gateway `gateway` on `port` (and named `section`, if given).
    pub fn listeners_on(&self, gateway: &str, port: u32, section: Option<&str>) -> Vec<&str> {
        self.0.get(gateway).map_or_else(Vec::new, |listeners| {
            listeners
                .iter()
                .filter(|l| l.served && l.port == Some(port))
                .filter(|l| section.is_none_or(|s| s == l.name))
                .map(|l| l.name.as_str())
                .collect()
        })
    }

    /// Whether every served listener of Gateway `gateway` takes routes of `kind`, else
    /// the served ones that do.
    pub fn taking(&self, gateway: &str, kind: &str) -> Result<(), Vec<&str>> {
        let listeners = self.0.get(gateway).map_or(&[][..], Vec::as_slice);
        let served = listeners.iter().filter(|l| l.served);
        if served.clone().all(|l| l.kinds.iter().any(|k| k == kind)) {
            return Ok(());
        }
        Err(served
            .filter(|l| l.kinds.iter().any(|k| k == kind))
            .map(|l| l.name.as_str())
            .collect())
    }

    /// Whether listener `listener` of Gateway `gateway` is served.
    pub fn serves(&self, gateway: &str, listener: &str) -> bool {
        self.0
            .get(gateway)
            .is_some_and(|listeners| listeners.iter().any(|l| l.served && l.name == listener))
    }

    /// Whether listener `listener` of Gateway `gateway` is served and takes routes of
    /// `kind`.
    pub fn takes(&self, gateway: &str, listener: &str, kind: &str) -> bool {
        self.0.get(gateway).is_some_and(|listeners| {
            listeners
                .iter()
                .any(|l| l.served && l.name == listener && l.kinds.iter().any(|k| k == kind))
        })
    }

    /// Whether Gateway `namespace/name` is defined.
    pub fn knows(&self, gateway: &str) -> bool {
        self.0.contains_key(gateway)
    }

    /// Each Gateway's listeners' conditions; `attached` are the `(gateway, listener)` of
    /// each route attachment.
    fn gateways(&self, attached: &[(String, String)]) -> Vec<GatewayStatus> {
        self.0
            .iter()
            .map(|(gateway, listeners)| GatewayStatus {
                gateway: gateway.clone(),
                conditions: match listeners.iter().any(|l| l.served) {
                    true => vec![Condition::holds("Accepted"), Condition::holds("Programmed")],
                    false => vec![
                        Condition::fails("Accepted", "ListenersNotValid"),
                        Condition::fails("Programmed", "Invalid"),
                    ],
                },
                listeners: listeners
                    .iter()
                    .map(|l| ListenerStatus {
                        name: l.name.clone(),
                        conditions: l.conditions.clone(),
                        attached_routes: attached
                            .iter()
                            .filter(|(g, name)| g == gateway && *name == l.name)
                            .count(),
                        supported_kinds: l.kinds.clone(),
                    })
                    .collect(),
            })
            .collect()
    }

    /// The conditions of HTTPRoute `namespace/name` for each of its Gateway parents,
    /// with the `(gateway, listener)` it attaches to; `services` are what its backends may
    /// name.
    fn route(
        &self,
        (kind, spec): (&'static str, &HttpRouteSpec),
        (namespace, name): (&str, &str),
        services: &Services<'_>,
    ) -> (Vec<RouteStatus>, Vec<(String, String)>) {
        let mut attached = Vec::new();
        let resolved = resolved_refs(spec, namespace, services);
        let statuses = spec
            .parent_refs
            .iter()
            .filter(|p| p.kind.as_deref().is_none_or(|k| k == "Gateway"))
            .filter_map(|parent| {
                let gateway = parent_gateway(parent, namespace)?;
                let accepted = match self.accepting((kind, spec), namespace, &gateway, parent) {
                    Ok(listeners) => {
                        attached.extend(listeners.into_iter().map(|l| (gateway.clone(), l)));
                        Condition::holds("Accepted")
                    }
                    Err(reason) => Condition::fails("Accepted", reason),
                };
                let parent = match &parent.section_name {
                    Some(section) => format!("{gateway}/{section}"),
                    None => gateway,
                };
                Some(RouteStatus {
                    kind,
                    route: format!("{namespace}/{name}"),
                    parent,
                    conditions: vec![accepted, resolved.clone()],
                })
            })
            .collect();
        (statuses, attached)
    }

    /// The listeners of Gateway `gateway` that accept the route through `parent`, or the
    /// API's reason why none does.
    fn accepting(
        &self,
        (kind, spec): (&str, &HttpRouteSpec),
        namespace: &str,
        gateway: &str,
        parent: &ObjectRef,
    ) -> Result<Vec<String>, &'static str> {
        let section = parent.section_name.as_deref();
        let listeners = self.0.get(gateway).ok_or("NoMatchingParent")?;
        let named: Vec<&ListenerView> = listeners
            .iter()
            .filter(|l| l.served && section.is_none_or(|s| s == l.name))
            .filter(|l| parent.port.is_none_or(|p| l.port == Some(p)))
            .collect();
        if named.is_empty() {
            return Err("NoMatchingParent");
        }
        let allowed: Vec<&&ListenerView> = named
            .iter()
            .filter(|l| l.allowed.admits(namespace) && l.kinds.iter().any(|k| k == kind))
            .collect();
        if allowed.is_empty() {
            return Err("NotAllowedByListeners");
        }
        let hosting: Vec<String> = allowed
            .iter()
            .filter(|l| match &l.hostname {
                None => true,
                Some(listener) => {
                    spec.hostnames.is_empty()
                        || spec
                            .hostnames
                            .iter()
                            .any(|h| host_intersection(listener, h).is_some())
                }
            })
            .map(|l| l.name.clone())
            .collect();
        if hosting.is_empty() {
            return Err("NoMatchingListenerHostname");
        }
        Ok(hosting)
    }
}

/// Whether every backend of the route names a Service the gateway knows and may reach.
fn resolved_refs(spec: &HttpRouteSpec, namespace: &str, services: &Services<'_>) -> Condition {
    for backend in spec.rules.iter().flat_map(|r| &r.backend_refs) {
        if !names_a_service(backend) {
            return Condition::fails("ResolvedRefs", "InvalidKind");
        }
        let ns = backend.namespace.as_deref().unwrap_or(namespace);
        let name = backend.name.as_deref().unwrap_or_default();
        if let Err(reason) = services.find(name, ns, namespace) {
            return Condition::fails("ResolvedRefs", reason);
        }
    }
    Condition::holds("ResolvedRefs")
}

/// The conditions of every Gateway and HTTPRoute among `resources`, whose Gateways are
/// `parents`.
pub fn status(
    resources: &[&Resource],
    parents: &Parents,
    services: &Services<'_>,
) -> GatewayApiStatus {
    let mut routes = Vec::new();
    let mut attached = Vec::new();
    for resource in resources {
        let (kind, spec) = match &resource.spec {
            Spec::HttpRoute(spec) => ("HTTPRoute", Cow::Borrowed(&**spec)),
            Spec::GrpcRoute(spec) => ("GRPCRoute", Cow::Owned(super::grpc::as_http(spec))),
            Spec::TlsRoute(spec) => ("TLSRoute", Cow::Owned(super::streams::tls_as_http(spec))),
            Spec::TcpRoute(spec) => ("TCPRoute", Cow::Owned(super::streams::tcp_as_http(spec))),
            _ => continue,
        };
        let origin = (resource.namespace.as_str(), resource.name.as_str());
        let services = services.for_kind(kind);
        let (statuses, listeners) = parents.route((kind, &spec), origin, &services);
        routes.extend(statuses);
        attached.extend(listeners);
    }
    GatewayApiStatus {
        gateways: parents.gateways(&attached),
        routes,
    }
}
