//! Istio's mesh config, as the `mesh` key of the `istio-system/istio` ConfigMap holds it:
//! the extension providers AuthorizationPolicies with `action: CUSTOM` name.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::common::{Duration, Ignored};

/// The mesh config; only `extensionProviders` means anything to a standalone gateway.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshConfigSpec {
    /// Istio's `extensionProviders`.
    #[serde(default)]
    pub extension_providers: Vec<ExtensionProvider>,
    /// Every other mesh setting (warned as ignored).
    #[serde(flatten)]
    pub other: BTreeMap<String, Ignored>,
}

/// One extension provider: a name and one kind of provider.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtensionProvider {
    /// The name policies use (required).
    pub name: Option<String>,
    /// An HTTP authorization service (Envoy's `ext_authz` over HTTP).
    pub envoy_ext_authz_http: Option<ExtAuthzHttp>,
    /// The other kinds (gRPC authorization, tracers, access loggers), not served.
    #[serde(flatten)]
    pub other: BTreeMap<String, Ignored>,
}

/// Istio's `EnvoyExternalAuthorizationHttpProvider`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExtAuthzHttp {
    /// The service's host (required).
    pub service: Option<String>,
    /// The service's port (required).
    pub port: Option<u32>,
    /// How long a check may take (default 600s).
    pub timeout: Option<Duration>,
    /// Put before the request's path in the check.
    pub path_prefix: Option<String>,
    /// Let the request through when the check fails.
    #[serde(default)]
    pub fail_open: bool,
    /// The status sent when the check fails (default 403).
    pub status_on_error: Option<String>,
    /// Request headers sent with the check.
    #[serde(default)]
    pub include_request_headers_in_check: Vec<String>,
    /// Headers added to the check.
    #[serde(default)]
    pub include_additional_headers_in_check: BTreeMap<String, String>,
    /// Send the request's body with the check.
    pub include_request_body_in_check: Option<Ignored>,
    /// Headers of an allowing answer copied to the request sent upstream.
    #[serde(default)]
    pub headers_to_upstream_on_allow: Vec<String>,
    /// Headers of an allowing answer copied to the response.
    #[serde(default)]
    pub headers_to_downstream_on_allow: Vec<String>,
    /// Headers of a denying answer sent to the client.
    #[serde(default)]
    pub headers_to_downstream_on_deny: Vec<String>,
}
