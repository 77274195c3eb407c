//! Match conditions: URI, scheme, method, authority, headers, query parameters and port.

use std::collections::BTreeMap;

use super::{Scope, checks};
use crate::config::model::common::StringMatch;
use crate::config::model::virtual_service::HttpMatchRequest;
use crate::config::resolved::{HeaderMatcher, RouteMatch, StringMatcher};

/// The prefix of Istio's JWT-claim pseudo-headers in header matches.
const JWT_CLAIM: &str = "@request.auth.claims.";

/// One match block; `None` when it has errors.
pub fn match_request(m: &HttpMatchRequest, at: &Scope<'_>) -> Option<RouteMatch> {
    let errors = at.error_count();
    let string = |field: &str, value: &Option<StringMatch>| {
        value
            .as_ref()
            .and_then(|v| checks::string_match(v, &at.field(field)))
    };
    let uri = string("uri", &m.uri);
    let scheme = string("scheme", &m.scheme);
    let method = string("method", &m.method);
    let authority = string("authority", &m.authority);
    let mut headers = header_matchers(&m.headers, false, &at.field("headers"));
    headers.extend(header_matchers(
        &m.without_headers,
        true,
        &at.field("withoutHeaders"),
    ));
    let query_params = m
        .query_params
        .iter()
        .map(|(name, value)| {
            let value = presence_or_match(value, &at.field("queryParams").field(name));
            (name.clone(), value)
        })
        .collect();
    let port = m.port.and_then(|p| checks::port(p, &at.field("port")));
    if m.stat_prefix.is_some() {
        at.field("statPrefix")
            .warn("per-route statistics are not kept; ignored");
    }
    for (field, set) in [
        ("sourceLabels", m.source_labels.is_some()),
        ("sourceNamespace", m.source_namespace.is_some()),
    ] {
        if set {
            at.field(field)
                .warn("selects mesh workloads, which a standalone gateway does not see; ignored");
        }
    }
    (at.error_count() == errors).then(|| RouteMatch {
        name: m.name.clone(),
        uri,
        scheme,
        method,
        authority,
        headers,
        query_params,
        port,
        ignore_uri_case: m.ignore_uri_case,
    })
}

/// The header conditions of `headers` (`invert`: of `withoutHeaders`), by header name.
fn header_matchers(
    map: &BTreeMap<String, StringMatch>,
    invert: bool,
    at: &Scope<'_>,
) -> Vec<HeaderMatcher> {
    let mut headers = Vec::new();
    for (name, value) in map {
        let header_at = at.field(name);
        if let Some(path) = name.strip_prefix(JWT_CLAIM) {
            if path.is_empty() || path.split('.').any(str::is_empty) {
                header_at.error(
                    "a claim condition names the claim: @request.auth.claims.<claim>[.<nested>…]",
                );
                continue;
            }
            let value = presence_or_match(value, &header_at);
            headers.push(HeaderMatcher {
                name: name.clone(),
                value,
                invert,
            });
            continue;
        }
        let Some(lower) = checks::header_name(name, &header_at) else {
            continue;
        };
        if matches!(lower.as_str(), "uri" | "scheme" | "method" | "authority") {
            header_at.warn(format!(
                "Istio ignores a header match on {lower:?}: use the {lower} field of the match"
            ));
            continue;
        }
        let value = presence_or_match(value, &header_at);
        headers.push(HeaderMatcher {
            name: lower,
            value,
            invert,
        });
    }
    headers
}

/// `{}` means "present"; anything else is a StringMatch.
fn presence_or_match(value: &StringMatch, at: &Scope<'_>) -> Option<StringMatcher> {
    if *value == StringMatch::default() {
        None
    } else {
        checks::string_match(value, at)
    }
}
