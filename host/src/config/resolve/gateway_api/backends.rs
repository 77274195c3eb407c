//! Backends: Services found as ServiceEntry hosts, weighted.

use serde_json::{Value, json};

use super::filters::headers;
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
    hosts: &[&str],
    at: &Scope<'_>,
) -> Vec<Value> {
    refs.iter()
        .enumerate()
        .filter_map(|(i, b)| backend(b, namespace, hosts, &at.index(i)))
        .collect()
}

/// One backend's Istio destination, or none when it is left out.
fn backend(
    backend: &HttpBackendRef,
    namespace: &str,
    hosts: &[&str],
    at: &Scope<'_>,
) -> Option<Value> {
    const LEFT_OUT: &str = "left out (the other backends take its share; none left: 500)";
    let core = backend.group.as_deref().is_none_or(str::is_empty);
    if !core || backend.kind.as_deref().is_some_and(|k| k != "Service") {
        at.field("kind")
            .warn(format!("only Services are served as backends: {LEFT_OUT}"));
        return None;
    }
    let name = backend.name.as_deref()?;
    let ns = backend.namespace.as_deref().unwrap_or(namespace);
    let host = service_host(name, ns, hosts, &at.field("name"), LEFT_OUT)?;
    for (f, filter) in backend.filters.iter().enumerate() {
        let kind = filter.kind.as_deref().unwrap_or_default();
        if !matches!(kind, "RequestHeaderModifier" | "ResponseHeaderModifier") {
            at.field("filters").index(f).field("type").warn(format!(
                "filter {kind:?} on a backend is not served yet: ignored"
            ));
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

/// The ServiceEntry host serving Service `name` of namespace `ns`:
/// `name.ns.svc.cluster.local`, else `name`.
pub fn find_service<'h>(name: &str, ns: &str, hosts: &[&'h str]) -> Option<&'h str> {
    let qualified = format!("{name}.{ns}.svc.cluster.local");
    hosts
        .iter()
        .find(|h| **h == qualified || **h == name)
        .copied()
}

/// [`find_service`], warning at `at` (ending with `consequence`) when there is none.
fn service_host<'h>(
    name: &str,
    ns: &str,
    hosts: &[&'h str],
    at: &Scope<'_>,
    consequence: &str,
) -> Option<&'h str> {
    let found = find_service(name, ns, hosts);
    if found.is_none() {
        at.warn(format!(
            "no ServiceEntry serves {name}.{ns}.svc.cluster.local or {name}: {consequence}"
        ));
    }
    found
}

/// The Istio mirror of a `RequestMirror` filter, or none when its backend is not found.
pub fn mirror(
    mirror: &RequestMirror,
    namespace: &str,
    hosts: &[&str],
    at: &Scope<'_>,
) -> Option<Value> {
    let backend = mirror.backend_ref.as_ref()?;
    let name = backend.name.as_deref()?;
    let ns = backend.namespace.as_deref().unwrap_or(namespace);
    let host = service_host(
        name,
        ns,
        hosts,
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
