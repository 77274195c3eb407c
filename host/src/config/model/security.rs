//! `security.istio.io` resources: AuthorizationPolicy and RequestAuthentication.

use serde::Deserialize;

use super::common::{Duration, Ignored};
use super::wasm_plugin::TargetRef;

/// An AuthorizationPolicy: which requests the gateway lets through.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthorizationPolicySpec {
    /// Mesh workloads it applies to; at a gateway, its routes.
    pub selector: Option<Ignored>,
    /// The Gateways it applies to (`targetRef`, deprecated, is one of them).
    #[serde(default)]
    pub target_refs: Vec<TargetRef>,
    /// Istio's `targetRef`.
    pub target_ref: Option<TargetRef>,
    /// `ALLOW` (the default), `DENY`, `AUDIT` or `CUSTOM`.
    pub action: Option<String>,
    /// The extension provider of a `CUSTOM` policy.
    pub provider: Option<ProviderRef>,
    /// The requests it is about; none: an ALLOW policy allows nothing.
    pub rules: Option<Vec<Rule>>,
}

/// The extension provider a `CUSTOM` policy asks.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderRef {
    /// A provider's `name` in the mesh config's `extensionProviders`.
    pub name: Option<String>,
}

/// A rule: requests from one of `from`, to one of `to`, meeting every `when`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Istio's `from`.
    #[serde(default)]
    pub from: Vec<From>,
    /// Istio's `to`.
    #[serde(default)]
    pub to: Vec<To>,
    /// Istio's `when`.
    #[serde(default)]
    pub when: Vec<Condition>,
}

/// `from[].source`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct From {
    /// Istio's `source`.
    pub source: Option<Source>,
}

/// Who sends the request.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Source {
    /// Istio's `principals`.
    #[serde(default)]
    pub principals: Vec<String>,
    /// Istio's `notPrincipals`.
    #[serde(default)]
    pub not_principals: Vec<String>,
    /// Istio's `requestPrincipals`.
    #[serde(default)]
    pub request_principals: Vec<String>,
    /// Istio's `notRequestPrincipals`.
    #[serde(default)]
    pub not_request_principals: Vec<String>,
    /// Istio's `namespaces`.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Istio's `notNamespaces`.
    #[serde(default)]
    pub not_namespaces: Vec<String>,
    /// Istio's `serviceAccounts`.
    #[serde(default)]
    pub service_accounts: Vec<String>,
    /// Istio's `notServiceAccounts`.
    #[serde(default)]
    pub not_service_accounts: Vec<String>,
    /// Istio's `ipBlocks`.
    #[serde(default)]
    pub ip_blocks: Vec<String>,
    /// Istio's `notIpBlocks`.
    #[serde(default)]
    pub not_ip_blocks: Vec<String>,
    /// Istio's `remoteIpBlocks`.
    #[serde(default)]
    pub remote_ip_blocks: Vec<String>,
    /// Istio's `notRemoteIpBlocks`.
    #[serde(default)]
    pub not_remote_ip_blocks: Vec<String>,
}

/// `to[].operation`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct To {
    /// Istio's `operation`.
    pub operation: Option<Operation>,
}

/// What the request asks for.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Operation {
    /// Istio's `hosts`.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Istio's `notHosts`.
    #[serde(default)]
    pub not_hosts: Vec<String>,
    /// Istio's `ports`.
    #[serde(default)]
    pub ports: Vec<String>,
    /// Istio's `notPorts`.
    #[serde(default)]
    pub not_ports: Vec<String>,
    /// Istio's `methods`.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Istio's `notMethods`.
    #[serde(default)]
    pub not_methods: Vec<String>,
    /// Istio's `paths`.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Istio's `notPaths`.
    #[serde(default)]
    pub not_paths: Vec<String>,
}

/// A `when` condition on a request attribute.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Condition {
    /// Istio's `key`.
    pub key: Option<String>,
    /// Istio's `values`.
    #[serde(default)]
    pub values: Vec<String>,
    /// Istio's `notValues`.
    #[serde(default)]
    pub not_values: Vec<String>,
}

/// A RequestAuthentication: which JWTs the gateway verifies.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestAuthenticationSpec {
    /// Mesh workloads it applies to; at a gateway, the Gateways of its namespace.
    pub selector: Option<Ignored>,
    /// The Gateways it applies to (`targetRef`, deprecated, is one of them).
    #[serde(default)]
    pub target_refs: Vec<TargetRef>,
    /// Istio's `targetRef`.
    pub target_ref: Option<TargetRef>,
    /// The token issuers and how to verify their tokens.
    #[serde(default)]
    pub jwt_rules: Vec<JwtRule>,
}

/// Istio's `JWTRule`: one issuer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtRule {
    /// The `iss` tokens must carry (required).
    pub issuer: Option<String>,
    /// The `aud` values accepted; empty: any (or none).
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Where the key set is fetched from (`https://`, `http://` or `file://`).
    pub jwks_uri: Option<String>,
    /// The key set itself, as JSON text.
    pub jwks: Option<String>,
    /// Headers the token travels in.
    #[serde(default)]
    pub from_headers: Vec<JwtHeader>,
    /// Query parameters the token travels in.
    #[serde(default)]
    pub from_params: Vec<String>,
    /// Cookies the token travels in.
    #[serde(default)]
    pub from_cookies: Vec<String>,
    /// The header the verified payload is forwarded in (base64url).
    pub output_payload_to_header: Option<String>,
    /// Keep the token in the request forwarded upstream (default: it is removed).
    #[serde(default)]
    pub forward_original_token: bool,
    /// Claims copied to request headers.
    #[serde(default)]
    pub output_claim_to_headers: Vec<ClaimToHeader>,
    /// How long fetching the key set may take (default 5s).
    pub timeout: Option<Duration>,
}

/// A header a token travels in, after `prefix`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtHeader {
    /// The header's name (required).
    pub name: Option<String>,
    /// What comes before the token, e.g. `Bearer `.
    #[serde(default)]
    pub prefix: String,
}

/// A claim copied to a header.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimToHeader {
    /// The header (required).
    pub header: Option<String>,
    /// The claim; `a.b` is `b` inside `a` (required).
    pub claim: Option<String>,
}
