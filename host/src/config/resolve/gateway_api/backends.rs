//! Backends: Services found as ServiceEntry hosts, weighted.

use serde_json::{Value, json};

use super::filters::headers;
use crate::config::model::gateway_api::{HeaderModifier, HttpBackendRef, HttpRouteFilter};
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
    let qualified = format!("{name}.{ns}.svc.cluster.local");
    let Some(host) = [qualified.as_str(), name]
        .into_iter()
        .find(|h| hosts.contains(h))
    else {
        at.field("name").warn(format!(
            "no ServiceEntry serves {qualified} or {name}: {LEFT_OUT}"
        ));
        return None;
    };
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
