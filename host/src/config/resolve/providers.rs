//! The mesh config's extension providers: the HTTP authorization services that
//! AuthorizationPolicies with `action: CUSTOM` name, each checked against the services
//! the config defines.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use super::scope::Scope;
use super::{Input, checks};
use crate::config::diag::Reporter;
use crate::config::model::mesh::{ExtAuthzHttp, MeshConfigSpec};
use crate::config::resolved::{Cluster, EndpointAddress, ExtAuthzProvider, PluginLimits};

/// Istio's default timeout of a check, which the longest call a policy may make caps.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// The providers: where the host sends their checks, and what the authorization filter
/// needs to know of each, by name.
#[derive(Default)]
pub struct Providers {
    pub resolved: Vec<ExtAuthzProvider>,
    pub settings: BTreeMap<String, Value>,
}

/// The HTTP authorization providers of `meshes` (one mesh config, or none).
pub fn resolve(
    meshes: &[Input<'_, MeshConfigSpec>],
    clusters: &BTreeMap<String, Cluster>,
    reporter: &Reporter,
) -> Providers {
    let mut providers = Providers::default();
    for mesh in meshes {
        let at = mesh.scope(reporter).field("data.mesh");
        for key in mesh.spec.other.keys() {
            at.field(key)
                .warn("a mesh setting a standalone gateway does not read; ignored");
        }
        for (i, provider) in mesh.spec.extension_providers.iter().enumerate() {
            let at = at.field("extensionProviders").index(i);
            let name = provider.name.clone().unwrap_or_default();
            if name.is_empty() {
                at.field("name").error("name is required");
                continue;
            }
            for kind in provider.other.keys() {
                at.field(kind).warn(
                    "only envoyExtAuthzHttp providers are served; CUSTOM policies naming this one deny the requests they select",
                );
            }
            let Some(http) = &provider.envoy_ext_authz_http else {
                continue;
            };
            let at = at.field("envoyExtAuthzHttp");
            if let Some(resolved) = http_provider(&name, http, clusters, &at) {
                providers.settings.insert(name, settings(http, &at));
                providers.resolved.push(resolved);
            }
        }
    }
    providers
}

/// Where `http`'s checks go and how long they may take.
fn http_provider(
    name: &str,
    http: &ExtAuthzHttp,
    clusters: &BTreeMap<String, Cluster>,
    at: &Scope<'_>,
) -> Option<ExtAuthzProvider> {
    let service = http.service.as_deref().unwrap_or_default();
    let port = http.port.and_then(|p| checks::port(p, &at.field("port")));
    if service.is_empty() {
        at.field("service").error("service is required");
    }
    let Some(port) = port else {
        at.field("port").error("port is required");
        return None;
    };
    // The service may be named with its namespace (`authz.foo.svc.cluster.local`).
    let cluster = clusters.values().find(|c| {
        c.port == port
            && c.subset.is_none()
            && (c.host == service || service.starts_with(&format!("{}.", c.host)))
    });
    let Some(cluster) = cluster else {
        at.field("service")
            .error(format!("no ServiceEntry defines {service}:{port}"));
        return None;
    };
    if !cluster
        .endpoints
        .iter()
        .any(|e| matches!(e.address, EndpointAddress::Ip(_)))
    {
        at.field("service").error(format!(
            "{service}:{port} has no endpoint with an IP address (STATIC resolution) to send checks to"
        ));
        return None;
    }
    let mut timeout =
        checks::duration(http.timeout, &at.field("timeout")).unwrap_or(DEFAULT_TIMEOUT);
    if timeout > PluginLimits::MAX_TIMEOUT {
        if http.timeout.is_some() {
            at.field("timeout").warn(format!(
                "checks are given up after {:?} at most (the longest a policy call may take)",
                PluginLimits::MAX_TIMEOUT
            ));
        }
        timeout = PluginLimits::MAX_TIMEOUT;
    }
    Some(ExtAuthzProvider {
        name: name.to_string(),
        cluster: cluster.name.clone(),
        timeout,
    })
}

/// What the authorization filter reads of `http`.
fn settings(http: &ExtAuthzHttp, at: &Scope<'_>) -> Value {
    if http.include_request_body_in_check.is_some() {
        at.field("includeRequestBodyInCheck")
            .warn("the request body is not sent with checks; ignored");
    }
    let status_on_error = match http.status_on_error.as_deref() {
        None => 403,
        Some(text) => text
            .parse::<u16>()
            .ok()
            .filter(|s| (200..600).contains(s))
            .unwrap_or_else(|| {
                at.field("statusOnError")
                    .error(format!("{text:?} is not an HTTP status"));
                403
            }),
    };
    let lower = |list: &[String]| {
        list.iter()
            .map(|h| h.to_ascii_lowercase())
            .collect::<Vec<_>>()
    };
    json!({
        "pathPrefix": http.path_prefix.clone().unwrap_or_default(),
        "failOpen": http.fail_open,
        "statusOnError": status_on_error,
        "includeRequestHeadersInCheck": lower(&http.include_request_headers_in_check),
        "includeAdditionalHeadersInCheck": http.include_additional_headers_in_check,
        "headersToUpstreamOnAllow": lower(&http.headers_to_upstream_on_allow),
        "headersToDownstreamOnAllow": lower(&http.headers_to_downstream_on_allow),
        "headersToDownstreamOnDeny": lower(&http.headers_to_downstream_on_deny),
    })
}
