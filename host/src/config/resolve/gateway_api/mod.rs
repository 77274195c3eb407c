//! The Kubernetes Gateway API, read into the same resolved layer as Istio's resources, as
//! Istio itself translates them: each Gateway becomes an Istio Gateway (a server per HTTP
//! or HTTPS listener), and the HTTPRoutes of a namespace attached to the same parents
//! become a VirtualService per hostname. What is not served yet is warned about at its
//! field.
//!
//! Gateway API semantics that Istio's do not share are made explicit in the translation:
//! a `PathPrefix` matches whole path segments (`/foo` matches `/foo` and `/foo/bar`, not
//! `/foobar`: an exact block and a `/foo/` prefix block); the rules on a host are ordered
//! by the API's match precedence, across namespaces and parents (see `RouteRank`); a
//! redirect is a 302 unless it says otherwise; a backend of weight 0 gets no traffic, an
//! invalid one's share is answered with 500, and a rule with no valid backend answers 500.

mod backend_tls;
mod backends;
mod extensions;
mod filters;
mod grants;
mod grpc;
mod listeners;
mod matches;
mod namespaces;
mod routes;
mod services;
mod status;
mod streams;

use std::collections::BTreeMap;

use serde_json::Value;

pub use self::extensions::PluginRefs;
use super::scope::Scope;
use crate::config::diag::{Reporter, Site};
use crate::config::model::{Resource, Spec};
use crate::config::resolved::GatewayApiStatus;

/// What the Gateway API resources of a config come to.
pub struct Translation {
    /// The Istio resources.
    pub resources: Vec<Resource>,
    /// Their conditions.
    pub status: GatewayApiStatus,
    /// The WasmPlugins that routes' `ExtensionRef` filters name, with the rules naming them.
    pub plugin_refs: PluginRefs,
}

/// The Istio resources the Gateway API resources among `resources` come to, their
/// conditions, and the plugins their rules name.
pub fn translate(resources: &[&Resource], reporter: &Reporter) -> Translation {
    let grants = grants::Grants::of(resources);
    let services = services::Services::of(resources, &grants);
    let namespaces = namespaces::Namespaces::of(resources);
    let mut translated = Vec::new();
    // Gateways first: what their listeners serve is what routes attach to.
    let mut served = BTreeMap::new();
    for resource in resources {
        let Spec::KubeGateway(spec) = &resource.spec else {
            continue;
        };
        let site = site(resource);
        let at = Scope::new(reporter, &site, "spec");
        let (gateway, listeners) =
            listeners::gateway(spec, (&resource.namespace, &namespaces, &grants), &at);
        served.insert(
            format!("{}/{}", resource.namespace, resource.name),
            listeners,
        );
        if let Some(gateway) = gateway {
            translated.push(Resource {
                spec: Spec::Gateway(Box::new(gateway)),
                ..(*resource).clone()
            });
        }
    }
    let parents = status::Parents::of(resources, &namespaces, &served);
    let mut route_sets = Vec::new();
    let mut plugin_refs = extensions::PluginRefs::new();
    let mut first_route: Option<Site> = None;
    for resource in resources {
        let site = site(resource);
        let at = Scope::new(reporter, &site, "spec");
        let (namespace, name) = (resource.namespace.as_str(), resource.name.as_str());
        match &resource.spec {
            Spec::GatewayClass(spec) => {
                not_yet(spec.parameters_ref.is_some(), &at.field("parametersRef"));
                if spec.controller_name.is_some() {
                    at.field("controllerName")
                        .warn("not checked: Portcullis serves the Gateways of every GatewayClass");
                }
            }
            Spec::HttpRoute(spec) => {
                for (i, rule) in spec.rules.iter().enumerate() {
                    let route = ("HTTPRoute", namespace, name);
                    extensions::collect((rule, i), route, &mut plugin_refs);
                }
                let origin = (namespace, name, resource.document);
                let spec = (spec.as_ref(), routes::Ranking::Http);
                route_sets.push(routes::route_set(spec, origin, (&services, &parents), &at));
                first_route.get_or_insert(site.clone());
            }
            Spec::BackendTlsPolicy(spec) => {
                for (host, rule) in backend_tls::destination_rules(spec, namespace, &services, &at)
                {
                    translated.push(Resource {
                        name: format!("{name}~{host}"),
                        namespace: namespace.to_string(),
                        spec: Spec::DestinationRule(Box::new(rule)),
                        document: resource.document,
                    });
                }
            }
            Spec::TlsRoute(spec) => {
                let origin = (namespace, name, resource.document);
                let services = services.for_kind("TLSRoute");
                let set = streams::tls_route_set(spec, origin, (&services, &parents), &at);
                route_sets.push(set);
                first_route.get_or_insert(site.clone());
            }
            Spec::TcpRoute(spec) => {
                let origin = (namespace, name, resource.document);
                let services = services.for_kind("TCPRoute");
                let set = streams::tcp_route_set(spec, origin, (&services, &parents), &at);
                route_sets.push(set);
                first_route.get_or_insert(site.clone());
            }
            Spec::GrpcRoute(spec) => {
                let origin = (namespace, name, resource.document);
                let http = grpc::as_http(spec);
                for (i, rule) in http.rules.iter().enumerate() {
                    let route = ("GRPCRoute", namespace, name);
                    extensions::collect((rule, i), route, &mut plugin_refs);
                }
                let services = services.for_kind("GRPCRoute");
                let spec = (&http, routes::Ranking::Grpc(spec));
                route_sets.push(routes::route_set(spec, origin, (&services, &parents), &at));
                first_route.get_or_insert(site.clone());
            }
            _ => {}
        }
    }
    if let Some(site) = first_route {
        let at = Scope::new(reporter, &site, "spec");
        for (namespace, name, document, spec) in routes::virtual_services(&route_sets, &at) {
            translated.push(Resource {
                name,
                namespace,
                spec: Spec::VirtualService(Box::new(spec)),
                document,
            });
        }
    }
    Translation {
        resources: translated,
        status: status::status(resources, &parents, &services),
        plugin_refs,
    }
}

/// Where diagnostics about `resource` go.
fn site(resource: &Resource) -> Site {
    Site {
        document: resource.document,
        resource: format!("{}/{}", resource.kind(), resource.name),
    }
}

/// Reads `value` (an Istio spec built here) as `T`; a failure is this module's mistake,
/// reported at the resource.
fn istio<T: serde::de::DeserializeOwned>(value: Value, at: &Scope<'_>) -> Option<T> {
    serde_json::from_value(value)
        .map_err(|e| at.error(format!("cannot be served: {e}")))
        .ok()
}

/// Warns that the field at `at` is not served yet, when `present`.
fn not_yet(present: bool, at: &Scope<'_>) {
    if present {
        at.warn("not served yet: ignored");
    }
}
