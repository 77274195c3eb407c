//! Backends: Services found as ServiceEntry hosts, weighted.

use serde_json::{Value, json};

use super::filters::headers;
use super::services::Services;
use crate::config::model::gateway_api::{
    HeaderModifier, HttpBackendRef, HttpRouteFilter, RequestMirror,
};
use crate::config::resolve::scope::Scope;

/// A rule's backends as Istio sees them.
#[derive(Default)]
pub struct Backends {
    /// The destinations: each Service found as a ServiceEntry host
    /// (`name.namespace.svc.cluster.local`, else `name`), with its weight; weight 0 left out.
    pub destinations: Vec<Value>,
    /// The weight of the invalid backends (not a Service, not found, not permitted),
    /// whose share of the requests the API answers with 500.
    pub invalid: u64,
}

impl Backends {
    /// The percentage of requests that would have gone to an invalid backend.
    pub fn invalid_share(&self) -> f64 {
        let valid: u64 = self
            .destinations
            .iter()
            .filter_map(|d| d["weight"].as_u64())
            .sum();
        let total = valid + self.invalid;
        if total == 0 {
            return 0.0;
        }
        #[allow(clippy::cast_precision_loss)] // weights are far below 2^52
        let share = self.invalid as f64 * 100.0 / total as f64;
        share
    }
}

/// What becomes of an HTTP rule's invalid backend.
pub const INVALID_SHARE: &str = "its share of the requests is answered with 500";

/// The Istio destinations of a rule's backends, and the weight of the invalid ones, whose
/// warnings end with `invalid` (what becomes of them).
pub fn backends(
    refs: &[HttpBackendRef],
    (namespace, invalid): (&str, &str),
    services: &Services<'_>,
    at: &Scope<'_>,
) -> Backends {
    let single = refs.len() == 1;
    let mut found = Backends::default();
    for (i, b) in refs.iter().enumerate() {
        match backend(b, (namespace, single, invalid), services, &at.index(i)) {
            Ok(Some(destination)) => found.destinations.push(destination),
            Ok(None) => {}
            Err(()) => found.invalid += u64::from(b.weight.unwrap_or(1)),
        }
    }
    found
}

/// Whether the backend is a Service (of the core API group), the only kind served.
pub fn names_a_service(backend: &HttpBackendRef) -> bool {
    backend.group.as_deref().is_none_or(str::is_empty)
        && backend.kind.as_deref().is_none_or(|k| k == "Service")
}

/// One backend's Istio destination; none for weight 0; an error when it is invalid
/// (warned about at `at`).
fn backend(
    backend: &HttpBackendRef,
    (namespace, single, invalid): (&str, bool, &str),
    services: &Services<'_>,
    at: &Scope<'_>,
) -> Result<Option<Value>, ()> {
    if !names_a_service(backend) {
        at.field("kind")
            .warn(format!("only Services are served as backends: {invalid}"));
        return Err(());
    }
    let name = backend.name.as_deref().ok_or(())?;
    let ns = backend.namespace.as_deref().unwrap_or(namespace);
    let host =
        service_host(services, (name, ns, namespace), &at.field("name"), invalid).ok_or(())?;
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
        return Ok(None);
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
    Ok(Some(destination))
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
