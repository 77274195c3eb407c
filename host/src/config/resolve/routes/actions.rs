//! What a route does: forward to weighted destinations, redirect, or respond directly;
//! and how it rewrites the request it forwards.

use base64::Engine as _;

use super::headers::header_ops;
use super::{Scope, Targets, checks};
use crate::config::model::virtual_service::{
    DerivePort, Destination, HttpDirectResponse, HttpRedirect, HttpRewrite, HttpRoute,
    HttpRouteDestination,
};
use crate::config::resolve::destinations::cluster_name;
use crate::config::resolved::{
    DirectResponse, Redirect, RedirectPort, Rewrite, RouteAction, WeightedCluster,
};

/// The route's action: exactly one of route, redirect, directResponse (or delegate,
/// which is not supported).
pub fn action(http: &HttpRoute, targets: &Targets<'_>, at: &Scope<'_>) -> Option<RouteAction> {
    let actions = [
        ("route", !http.route.is_empty()),
        ("redirect", http.redirect.is_some()),
        ("directResponse", http.direct_response.is_some()),
        ("delegate", http.delegate.is_some()),
    ];
    let set: Vec<&str> = actions
        .iter()
        .filter(|(_, on)| *on)
        .map(|(name, _)| *name)
        .collect();
    match set.as_slice() {
        [] => {
            at.error("HTTP route needs one of route, redirect, directResponse or delegate");
            None
        }
        [_, second, ..] => {
            at.field(second).error(format!("HTTP route takes only one of route, redirect, directResponse or delegate; it sets {}", set.join(" and ")));
            None
        }
        ["delegate"] => {
            at.field("delegate").error("delegation to another VirtualService is not supported by Portcullis yet; inline the delegate's routes");
            None
        }
        ["redirect"] => {
            if http.rewrite.is_some() {
                at.field("rewrite")
                    .error("rewrite cannot be combined with redirect");
            }
            redirect(http.redirect.as_ref()?, &at.field("redirect")).map(RouteAction::Redirect)
        }
        ["directResponse"] => {
            direct_response(http.direct_response.as_ref()?, &at.field("directResponse"))
                .map(RouteAction::DirectResponse)
        }
        _ => destinations(&http.route, targets, &at.field("route")).map(RouteAction::Forward),
    }
}

/// The weighted destinations of `route`; those of weight 0 get no traffic, unless
/// there is only one.
pub(super) fn destinations(
    routes: &[HttpRouteDestination],
    targets: &Targets<'_>,
    at: &Scope<'_>,
) -> Option<Vec<WeightedCluster>> {
    let mut weighted = Vec::new();
    let mut total: i64 = 0;
    for (i, route) in routes.iter().enumerate() {
        let route_at = at.index(i);
        let weight = route.weight.unwrap_or(0);
        if weight < 0 {
            route_at
                .field("weight")
                .error(format!("weight {weight} must not be negative"));
            continue;
        }
        total += weight;
        let Some(destination) = &route.destination else {
            route_at
                .field("destination")
                .error("destination is required");
            continue;
        };
        let cluster = cluster(destination, targets, &route_at.field("destination"));
        let headers = header_ops(route.headers.as_ref(), &route_at.field("headers"));
        if let Some(cluster) = cluster {
            weighted.push((
                weight,
                WeightedCluster {
                    cluster,
                    weight: u32::try_from(weight).unwrap_or(u32::MAX),
                    headers,
                },
            ));
        }
    }
    if routes.len() > 1 && total == 0 {
        at.error(
            "the weights of the destinations add up to 0: give at least one a positive weight",
        );
        return None;
    }
    if let [(_, only)] = weighted.as_mut_slice() {
        // A single destination takes all traffic whatever its weight.
        only.weight = 1;
        return Some(vec![only.clone()]);
    }
    Some(
        weighted
            .into_iter()
            .filter(|(w, _)| *w > 0)
            .map(|(_, c)| c)
            .collect(),
    )
}

/// The cluster a destination names, checked against services and subsets.
pub fn cluster(destination: &Destination, targets: &Targets<'_>, at: &Scope<'_>) -> Option<String> {
    let Some(host) = destination.host.as_deref() else {
        at.field("host").error("destination host is required");
        return None;
    };
    let Some(service) = targets.services.get(host) else {
        at.field("host")
            .error(format!("host {host:?} is not defined by any ServiceEntry"));
        return None;
    };
    let port = match destination.port.and_then(|p| p.number) {
        Some(number) => match u16::try_from(number).ok().and_then(|n| service.port(n)) {
            Some(port) => port.number,
            None => {
                at.field("port").field("number").error(format!(
                    "service {host:?} has no port {number} (ports: {})",
                    service.port_list()
                ));
                return None;
            }
        },
        None => match service.ports.as_slice() {
            [only] => only.number,
            _ => {
                at.field("port").error(format!(
                    "service {host:?} has several ports ({}): the destination must name one",
                    service.port_list()
                ));
                return None;
            }
        },
    };
    if let Some(subset) = destination.subset.as_deref() {
        let defined = targets
            .subsets
            .get(host)
            .is_some_and(|s| s.contains(subset));
        if !defined {
            at.field("subset").error(format!(
                "subset {subset:?} is not defined by any DestinationRule for host {host:?}"
            ));
            return None;
        }
    }
    Some(cluster_name(host, port, destination.subset.as_deref()))
}

/// A redirect; `None` when it has errors.
fn redirect(spec: &HttpRedirect, at: &Scope<'_>) -> Option<Redirect> {
    let errors = at.error_count();
    if spec.uri.is_none()
        && spec.prefix_rewrite.is_none()
        && spec.authority.is_none()
        && spec.port.is_none()
        && spec.derive_port.is_none()
        && spec.scheme.is_none()
        && spec.redirect_code.is_none()
    {
        at.error("redirect must set at least one of uri, prefixRewrite, authority, port, derivePort, scheme or redirectCode");
    }
    if spec.uri.is_some() && spec.prefix_rewrite.is_some() {
        at.field("prefixRewrite")
            .error("redirect takes only one of uri or prefixRewrite");
    }
    let port = match (spec.port, spec.derive_port) {
        (Some(_), Some(_)) => {
            at.field("derivePort")
                .error("redirect takes only one of port or derivePort");
            None
        }
        (Some(p), None) => checks::port(p, &at.field("port")).map(RedirectPort::Fixed),
        (None, Some(DerivePort::FromProtocolDefault)) => Some(RedirectPort::FromProtocolDefault),
        (None, Some(DerivePort::FromRequestPort)) => Some(RedirectPort::FromRequestPort),
        (None, None) => None,
    };
    let code = spec.redirect_code.unwrap_or(301);
    if !(300..=399).contains(&code) {
        at.field("redirectCode")
            .error(format!("redirect code {code} must be a 3xx status"));
    }
    (at.error_count() == errors).then(|| Redirect {
        uri: spec.uri.clone(),
        prefix_rewrite: spec.prefix_rewrite.clone(),
        authority: spec.authority.clone(),
        port,
        scheme: spec.scheme.clone(),
        code: code as u16,
    })
}

/// A direct response: a status and a body (a string, or base64 bytes).
fn direct_response(spec: &HttpDirectResponse, at: &Scope<'_>) -> Option<DirectResponse> {
    let status = match spec.status {
        None => {
            at.field("status")
                .error("directResponse status is required");
            return None;
        }
        Some(s) if !(200..=599).contains(&s) => {
            at.field("status")
                .error(format!("status {s} must be in the range 200..599"));
            return None;
        }
        Some(s) => s as u16,
    };
    let body = match spec.body.as_ref().map(|b| (&b.string, &b.bytes)) {
        None | Some((None, None)) => Vec::new(),
        Some((Some(s), None)) => s.clone().into_bytes(),
        Some((None, Some(b64))) => match base64::engine::general_purpose::STANDARD.decode(b64) {
            Ok(bytes) => bytes,
            Err(e) => {
                at.field("body")
                    .field("bytes")
                    .error(format!("body bytes are not valid base64: {e}"));
                return None;
            }
        },
        Some((Some(_), Some(_))) => {
            at.field("body")
                .error("body takes only one of string or bytes");
            return None;
        }
    };
    Some(DirectResponse { status, body })
}

/// A rewrite of the forwarded request's URI or authority.
pub fn rewrite(spec: &HttpRewrite, at: &Scope<'_>) -> Option<Rewrite> {
    if spec.uri.is_none() && spec.authority.is_none() && spec.uri_regex_rewrite.is_none() {
        at.error("rewrite must set uri, authority or uriRegexRewrite");
        return None;
    }
    let regex_at = at.field("uriRegexRewrite");
    if spec.uri.is_some() && spec.uri_regex_rewrite.is_some() {
        regex_at.error("rewrite takes only one of uri or uriRegexRewrite");
        return None;
    }
    let uri_regex = match &spec.uri_regex_rewrite {
        None => None,
        Some(r) => match (&r.pattern, &r.rewrite) {
            (Some(pattern), Some(replacement)) => {
                checks::regex_syntax(pattern, &regex_at.field("match"))?;
                Some((pattern.clone(), replacement.clone()))
            }
            _ => {
                regex_at.error("uriRegexRewrite needs match and rewrite");
                return None;
            }
        },
    };
    Some(Rewrite {
        uri: spec.uri.clone(),
        authority: spec.authority.clone(),
        uri_regex,
    })
}
