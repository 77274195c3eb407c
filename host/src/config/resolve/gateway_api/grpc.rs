//! GRPCRoutes, as the HTTPRoutes they amount to: a gRPC call is a POST to
//! `/<service>/<method>`, so a service and method match is a path match.

use crate::config::model::gateway_api::{
    GrpcMethodMatch, GrpcRouteMatch, GrpcRouteRule, GrpcRouteSpec, HttpRouteMatch, HttpRouteRule,
    HttpRouteSpec, PathMatch,
};

/// The HTTPRoute `spec` amounts to.
pub fn as_http(spec: &GrpcRouteSpec) -> HttpRouteSpec {
    HttpRouteSpec {
        parent_refs: spec.parent_refs.clone(),
        hostnames: spec.hostnames.clone(),
        rules: spec.rules.iter().map(rule).collect(),
    }
}

fn rule(rule: &GrpcRouteRule) -> HttpRouteRule {
    HttpRouteRule {
        name: rule.name.clone(),
        matches: rule.matches.iter().map(matched).collect(),
        filters: rule.filters.clone(),
        backend_refs: rule.backend_refs.clone(),
        session_persistence: rule.session_persistence.clone(),
        ..HttpRouteRule::default()
    }
}

fn matched(matched: &GrpcRouteMatch) -> HttpRouteMatch {
    HttpRouteMatch {
        path: matched.method.as_ref().and_then(path),
        headers: matched.headers.clone(),
        ..HttpRouteMatch::default()
    }
}

/// The path condition of a service and method condition: an exact path, a service's
/// prefix, or a regex.
fn path(method: &GrpcMethodMatch) -> Option<PathMatch> {
    let path = |kind: &str, value: String| PathMatch {
        kind: Some(kind.into()),
        value: Some(value),
    };
    let regex = method.kind.as_deref() == Some("RegularExpression");
    Some(
        match (method.service.as_deref(), method.method.as_deref()) {
            (None, None) => return None,
            (service, method) if regex => path(
                "RegularExpression",
                format!(
                    "/{}/{}",
                    service.unwrap_or("[^/]+"),
                    method.unwrap_or("[^/]+")
                ),
            ),
            (Some(service), Some(method)) => path("Exact", format!("/{service}/{method}")),
            (Some(service), None) => path("PathPrefix", format!("/{service}")),
            (None, Some(method)) => path(
                "RegularExpression",
                format!("/[^/]+/{}", regex::escape(method)),
            ),
        },
    )
}
