//! Backends: Services found as ServiceEntry hosts, weighted.

use serde_json::{Value, json};

use super::filters::headers;
use super::services::Services;
use crate::config::model::gateway_api::{
    HeaderModifier, HttpBackendRef, HttpRouteFilter, RequestMirror,
};
use crate::config::resolve::scope::Scope;

/// The Istio destinations of a rule's backends: each Service found as a ServiceEntry host
/// (`name.namespace.svc.cluster.local`, else `name`), with its weight; missing ones and
/// weight 0 are left out.
pub fn backends(
    refs: &[HttpBackendRef],
    namespace: &str,
    services: &Services<'_>,
    at: &Scope<'_>,
) -> Vec<Value> {
    let single = refs.len() == 1;
    refs.iter()
        .enumerate()
        .filter_map(|(i, b)| backend(b, (namespace, single), services, &at.index(i)))
        .collect()
}

/// Whether the backend is a Service (of the core API group), the only kind served.
pub fn names_a_service(backend: &HttpBackendRef) -> bool {
    backend.group.as_deref().is_none_or(str::is_empty)
        && backend.kind.as_deref().is_none_or(|k| k == "Service")
}

/// One backend's Istio destination, or none when it is left out.
fn backend(
    backend: &HttpBackendRef,
    (namespace, single): (&str, bool),
    services: &Services<'_>,
    at: &Scope<'_>,
) -> Option<Value> {
    const LEFT_OUT: &str = "left out (the other backends take its share; none left: 500)";
    if !names_a_service(backend) {
        at.field("kind")
            .warn(format!("only Services are served as backends: {LEFT_OUT}"));
        return None;
    }
    let name = backend.name.as_deref()?;
    let ns = backend.namespace.as_deref().unwrap_or(namespace);
    let host = service_host(services, (name, ns, namespace), &at.field("name"), LEFT_OUT)?;
    for (f, filter) in backend.filters.iter().enumerate() {
        let kind = filter.kind.as_deref().unwrap_or_default();
        let served = match kind {
            "RequestHeaderModifier" | "ResponseHeaderModifier" => true,
            // The rule's own, when the backend is its only one (see routes::hoisted).
            "RequestRedirect" | "URLRewrite" => single,
            _ => false,
        };
        if !served {
            let why = match kind {
                "RequestRedirect" | "URLRewrite" => "is served on a rule's only backend",
                _ => "on a backend is not served yet",
            };
            at.field("filters")
                .index(f)
                .field("type")
                .warn(format!("filter {kind:?} {why}: ignored"));
        }
    }
    let weight = backend.weight.unwrap_or(1);
    if weight == 0 {
        return None;
    }
    let port = backend.port.map(|p| json!({ "number": p }));
    let mut destination = json!({
        "destination": { "host": host, "port": port },
        "weight": weight,
    });
    let modifier = |pick: fn(&HttpRouteFilter) -> Option<&HeaderModifier>| {
        backend.filters.iter().find_map(pick)
    };
    headers(
        modifier(|f| f.request_header_modifier.as_ref()),
        "request",
        &mut destination,
    );
    headers(
        modifier(|f| f.response_header_modifier.as_ref()),
        "response",
        &mut destination,
    );
    Some(destination)
}

/// Service `name` of namespace `ns` as a route of `from` may name it, warning at `at`
/// (ending with `consequence`) when it may not.
fn service_host<'h>(
    services: &Services<'h>,
    (name, ns, from): (&str, &str, &str),
    at: &Scope<'_>,
    consequence: &str,
) -> Option<&'h str> {
    services
        .find(name, ns, from)
        .map_err(|reason| {
            let why = match reason {
                "RefNotPermitted" => format!(
                    "no ReferenceGrant in {ns} lets {}s of {from} name its Service {name}",
                    services.kind()
                ),
                _ => format!("no ServiceEntry serves {name}.{ns}.svc.cluster.local or {name}"),
            };
            at.warn(format!("{why} ({reason}): {consequence}"));
        })
        .ok()
}

/// The Istio mirror of a `RequestMirror` filter, or none when its backend is not found.
pub fn mirror(
    mirror: &RequestMirror,
    namespace: &str,
    services: &Services<'_>,
    at: &Scope<'_>,
) -> Option<Value> {
    let backend = mirror.backend_ref.as_ref()?;
    let name = backend.name.as_deref()?;
    let ns = backend.namespace.as_deref().unwrap_or(namespace);
    let host = service_host(
        services,
        (name, ns, namespace),
        &at.field("backendRef.name"),
        "no copies are sent",
    )?;
    let percent = match (&mirror.percent, &mirror.fraction) {
        (Some(percent), _) => f64::from(*percent),
        (None, Some(f)) => {
            f64::from(f.numerator.unwrap_or(0)) * 100.0
                / f64::from(f.denominator.unwrap_or(100).max(1))
        }
        (None, None) => 100.0,
    };
    let port = backend.port.map(|p| json!({ "number": p }));
    Some(json!({
        "destination": { "host": host, "port": port },
        "percentage": { "value": percent },
    }))
}
