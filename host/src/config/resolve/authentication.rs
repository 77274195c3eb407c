//! RequestAuthentications: checked, then handed to the built-in JWT filter
//! (`plugins/builtin/jwt`), one instance per Gateway with every `jwtRules` entry that
//! applies to it, since Istio verifies a token against any of the workload's rules. It
//! runs before route selection, so that routes can match on the claims it verifies.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use super::scope::Scope;
use super::workloads::{Targets, gateway_filter};
use super::{Context, Input, checks};
use crate::config::diag::Reporter;
use crate::config::model::security::{JwtRule, RequestAuthenticationSpec};
use crate::config::resolved::{Phase, Plugin};

/// Istio's default timeout for fetching a key set.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The JWT filters of `gateways` (their `namespace/name`s) for `policies`.
pub fn plugins(
    policies: &[Input<'_, RequestAuthenticationSpec>],
    gateways: &[String],
    ctx: &Context<'_>,
    reporter: &Reporter,
) -> Vec<Plugin> {
    let mut applying: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for policy in policies {
        let at = policy.scope(reporter).field("spec");
        let spec = policy.spec;
        let providers: Vec<Value> = spec
            .jwt_rules
            .iter()
            .enumerate()
            .filter_map(|(i, rule)| {
                let name = format!("{} jwtRules[{i}]", policy.key());
                provider(rule, &name, ctx, &at.field("jwtRules").index(i))
            })
            .collect();
        let target = Targets {
            namespace: policy.namespace,
            selector: spec.selector.is_some(),
            refs: spec.target_refs.iter().chain(&spec.target_ref).collect(),
        };
        for gateway in target.gateways(gateways, &at) {
            applying
                .entry(gateway)
                .or_default()
                .extend(providers.iter().cloned());
        }
    }
    applying
        .into_iter()
        .filter(|(_, providers)| !providers.is_empty())
        .map(|(gateway, providers)| filter(gateway, &providers))
        .collect()
}

/// The filter that verifies tokens on `gateway`.
fn filter(gateway: &str, providers: &[Value]) -> Plugin {
    Plugin {
        phase: Phase::Authn,
        priority: i64::MAX,
        before_routing: true,
        ..gateway_filter(gateway, "jwt", json!({ "providers": providers }))
    }
}

/// One `jwtRules` entry as the filter reads it (the host fills in `jwks` for a
/// `jwksUri`); none, with errors, when it cannot be served.
fn provider(rule: &JwtRule, name: &str, ctx: &Context<'_>, at: &Scope<'_>) -> Option<Value> {
    let errors = at.error_count();
    let issuer = rule.issuer.as_deref().unwrap_or_default();
    if issuer.is_empty() {
        at.field("issuer").error("issuer is required");
    }
    let mut discovery = None;
    let jwks_uri = match (&rule.jwks, &rule.jwks_uri) {
        (Some(jwks), uri) => {
            let parsed = serde_json::from_str::<Value>(jwks).ok();
            if !parsed.is_some_and(|v| v["keys"].is_array()) {
                at.field("jwks")
                    .error("jwks is not a JSON Web Key Set (an object with a keys list)");
            }
            if uri.is_some() {
                at.field("jwksUri")
                    .warn("jwks is set, so jwksUri is not fetched (as in Istio)");
            }
            None
        }
        (None, Some(uri)) => jwks_uri(uri, ctx, &at.field("jwksUri")),
        // Istio's OpenID discovery: the issuer's configuration names the key set.
        (None, None) => {
            let issuer = issuer.trim_end_matches('/');
            discovery = Some(format!("{issuer}/.well-known/openid-configuration"));
            None
        }
    };
    let timeout = checks::duration(rule.timeout, &at.field("timeout")).unwrap_or(FETCH_TIMEOUT);
    let mut headers: Vec<Value> = Vec::new();
    for (i, header) in rule.from_headers.iter().enumerate() {
        let name = header.name.as_deref().unwrap_or_default();
        let at = at.field("fromHeaders").index(i).field("name");
        if let Some(name) = checks::header_name(name, &at) {
            headers.push(json!({ "name": name, "prefix": header.prefix }));
        }
    }
    let mut params = rule.from_params.clone();
    if headers.is_empty() && params.is_empty() && rule.from_cookies.is_empty() {
        // Istio's default locations.
        headers.push(json!({ "name": "authorization", "prefix": "Bearer " }));
        params.push("access_token".into());
    }
    let claims: Vec<Value> = rule
        .output_claim_to_headers
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let at = at.field("outputClaimToHeaders").index(i);
            let header =
                output_header(c.header.as_deref().unwrap_or_default(), &at.field("header"));
            let claim = c.claim.as_deref().unwrap_or_default();
            if claim.is_empty() {
                at.field("claim").error("claim is required");
            }
            Some(json!({ "header": header?, "claim": claim }))
        })
        .collect();
    let payload_header = rule
        .output_payload_to_header
        .as_deref()
        .and_then(|name| output_header(name, &at.field("outputPayloadToHeader")));
    (at.error_count() == errors).then(|| {
        json!({
            "name": name,
            "issuer": issuer,
            "audiences": rule.audiences,
            "jwks": rule.jwks,
            "jwksUri": jwks_uri,
            "openidConfiguration": discovery,
            "jwksTimeoutMs": timeout.as_millis() as u64,
            "fromHeaders": headers,
            "fromParams": params,
            "fromCookies": rule.from_cookies,
            "outputPayloadToHeader": payload_header,
            "outputClaimToHeaders": claims,
            "forwardOriginalToken": rule.forward_original_token,
        })
    })
}

/// A header the filter may write upstream: a valid name, not one the connection owns.
fn output_header(name: &str, at: &Scope<'_>) -> Option<String> {
    let lower = checks::header_name(name, at)?;
    const RESERVED: [&str; 8] = [
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
    ];
    if RESERVED.contains(&lower.as_str()) {
        at.error(format!(
            "{name:?} belongs to the connection; a claim cannot be written there"
        ));
        return None;
    }
    Some(lower)
}

/// A `jwksUri` the host can fetch: `https://`, `http://`, or `file://` (a path relative
/// to the config's folder is made absolute).
fn jwks_uri(uri: &str, ctx: &Context<'_>, at: &Scope<'_>) -> Option<String> {
    if let Some(path) = uri.strip_prefix("file://") {
        return Some(format!("file://{}", ctx.path(path).display()));
    }
    match url::Url::parse(uri) {
        Ok(url) if matches!(url.scheme(), "https" | "http") && url.host().is_some() => {
            Some(uri.to_string())
        }
        _ => {
            at.error(format!(
                "{uri:?} is not an https://, http:// or file:// URL"
            ));
            None
        }
    }
}
