//! VirtualService: HTTP routes, checked against the Gateways, services and subsets
//! they reference.

use std::collections::BTreeMap;

use base64::Engine as _;

use super::destinations::{Subsets, cluster_name};
use super::gateways::GatewayServer;
use super::services::Service;
use super::{Input, checks};
use crate::config::diag::{Reporter, Site};
use crate::config::model::common::StringMatch;
use crate::config::model::virtual_service::{
    CorsPolicy, DerivePort, Destination, HeaderOperations, Headers, HttpFaultInjection,
    HttpMatchRequest, HttpRedirect, HttpRetry, HttpRewrite, HttpRoute, UnmatchedPreflights,
    VirtualServiceSpec,
};
use crate::config::resolved::{
    AbortStatus, Cors, DirectResponse, Fault, FaultAbort, FaultDelay, HeaderEdits, HeaderMatcher,
    HeaderOps, Mirror, Redirect, RedirectPort, RetryPolicy, Rewrite, Route, RouteAction,
    RouteMatch, StringMatcher, WeightedCluster,
};

/// A checked VirtualService, ready to be bound to its Gateways' servers.
#[derive(Debug, Clone)]
pub struct BoundService {
    pub hosts: Vec<String>,
    /// `namespace/name` of each Gateway it binds to.
    pub gateways: Vec<String>,
    pub namespace: String,
    pub routes: Vec<BoundRoute>,
}

/// A route and, per match block, the Gateways the block is limited to (empty: all).
#[derive(Debug, Clone)]
pub struct BoundRoute {
    pub route: Route,
    pub match_gateways: Vec<Vec<String>>,
}

impl BoundRoute {
    /// The route as seen through `gateway`, or `None` when no match block applies there.
    pub fn through(&self, gateway: &str) -> Option<Route> {
        if self.match_gateways.iter().all(Vec::is_empty) {
            return Some(self.route.clone());
        }
        let mut route = self.route.clone();
        route.matches = self
            .route
            .matches
            .iter()
            .zip(&self.match_gateways)
            .filter(|(_, gateways)| gateways.is_empty() || gateways.iter().any(|g| g == gateway))
            .map(|(m, _)| m.clone())
            .collect();
        (!route.matches.is_empty()).then_some(route)
    }
}

/// What routes may point at.
pub struct Targets<'a> {
    pub gateways: &'a BTreeMap<String, Vec<GatewayServer>>,
    pub services: &'a BTreeMap<String, Service>,
    pub subsets: &'a Subsets,
}

/// gRPC status names an abort may use, by code.
const GRPC_STATUSES: &[&str] = &[
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// Envoy's retry conditions, HTTP and gRPC.
const RETRY_ON: &[&str] = &[
    "5xx",
    "gateway-error",
    "reset",
    "reset-before-request",
    "connect-failure",
    "envoy-ratelimited",
    "retriable-4xx",
    "refused-stream",
    "retriable-status-codes",
    "retriable-headers",
    "http3-post-connect-failure",
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
];

/// The prefix of Istio's JWT-claim pseudo-headers in header matches.
const JWT_CLAIM: &str = "@request.auth.claims.";

/// Envoy's retry conditions that are accepted but that the retry policy never meets:
/// no rate-limit header, no resets before the request, no retriable headers, no HTTP/3.
const NOT_RETRIED_ON: &[&str] = &[
    "envoy-ratelimited",
    "reset-before-request",
    "retriable-headers",
    "http3-post-connect-failure",
];

/// Checks every VirtualService.
pub fn resolve(
    services: &[Input<'_, VirtualServiceSpec>],
    targets: &Targets<'_>,
    reporter: &mut Reporter,
) -> Vec<BoundService> {
    services
        .iter()
        .filter_map(|vs| virtual_service(vs, targets, reporter))
        .collect()
}

fn virtual_service(
    vs: &Input<'_, VirtualServiceSpec>,
    targets: &Targets<'_>,
    reporter: &mut Reporter,
) -> Option<BoundService> {
    let (spec, site) = (vs.spec, &vs.site);
    if spec.tls.is_some() {
        reporter.warn(
            site,
            "spec.tls",
            "TLS passthrough routes are not served by Portcullis; ignored",
        );
    }
    if spec.tcp.is_some() {
        reporter.warn(
            site,
            "spec.tcp",
            "TCP routes are not served by Portcullis; ignored",
        );
    }
    if spec.export_to.is_some() {
        reporter.warn(
            site,
            "spec.exportTo",
            "only applies inside a service mesh; ignored",
        );
    }
    if spec.hosts.is_empty() {
        reporter.error(
            site,
            "spec.hosts",
            "a VirtualService without hosts is a delegate, which Portcullis does not support: give it hosts and gateways",
        );
    }
    let mut gateways = Vec::new();
    for (i, name) in spec.gateways.iter().enumerate() {
        if let Some(key) = gateway_ref(
            name,
            vs.namespace,
            &format!("spec.gateways[{i}]"),
            site,
            targets,
            reporter,
        ) {
            gateways.push(key);
        }
    }
    if spec.gateways.is_empty() {
        reporter.warn(site, "spec.gateways", "no gateways: Istio applies this VirtualService to the mesh only, so Portcullis ignores it; list the Gateway it should serve");
    }
    let mut hosts = Vec::new();
    for (i, host) in spec.hosts.iter().enumerate() {
        let path = format!("spec.hosts[{i}]");
        if !checks::host_name(reporter, site, &path, host) {
            continue;
        }
        for gateway in &gateways {
            let servers = &targets.gateways[gateway];
            let covered = servers.iter().any(|s| {
                s.hosts.iter().any(|(ns, h)| {
                    ns.as_ref().is_none_or(|ns| ns == vs.namespace)
                        && checks::host_intersection(h, host).is_some()
                })
            });
            if !covered && !servers.is_empty() {
                let listed: Vec<String> = servers
                    .iter()
                    .flat_map(|s| s.hosts.iter().map(|(_, h)| format!("{h:?}")))
                    .collect();
                // Istio's analyzer says so too (IST0132); the host is just not served there.
                reporter.warn(
                    site,
                    &path,
                    format!(
                        "host {host:?} is not among the hosts of Gateway {gateway} ({}), so it is not served there",
                        listed.join(", ")
                    ),
                );
            }
        }
        hosts.push(host.clone());
    }
    let mut routes: Vec<BoundRoute> = Vec::new();
    let mut catch_all: Option<usize> = None;
    for (i, http) in spec.http.iter().enumerate() {
        let path = format!("spec.http[{i}]");
        let Some(route) = http_route(http, &path, vs, targets, reporter) else {
            continue;
        };
        if let Some(first) = catch_all {
            reporter.warn(
                site,
                &path,
                format!("unreachable: route spec.http[{first}] above matches every request"),
            );
        } else if route.route.is_catch_all() {
            catch_all = Some(i);
        }
        routes.push(route);
    }
    if spec.http.is_empty() {
        reporter.warn(
            site,
            "spec.http",
            "no HTTP routes: requests for these hosts get 404",
        );
    }
    Some(BoundService {
        hosts,
        gateways,
        namespace: vs.namespace.to_string(),
        routes,
    })
}

fn gateway_ref(
    name: &str,
    namespace: &str,
    path: &str,
    site: &Site,
    targets: &Targets<'_>,
    reporter: &mut Reporter,
) -> Option<String> {
    if name == "mesh" {
        reporter.warn(site, path, "the reserved gateway \"mesh\" means sidecars, which a standalone gateway is not; ignored");
        return None;
    }
    let key = if name.contains('/') {
        name.to_string()
    } else {
        format!("{namespace}/{name}")
    };
    if targets.gateways.contains_key(&key) {
        return Some(key);
    }
    let known: Vec<&str> = targets.gateways.keys().map(String::as_str).collect();
    let known = if known.is_empty() {
        "none is defined".to_string()
    } else {
        format!("defined: {}", known.join(", "))
    };
    reporter.error(
        site,
        path,
        format!("gateway {key:?} is not defined ({known})"),
    );
    None
}

fn http_route(
    http: &HttpRoute,
    path: &str,
    vs: &Input<'_, VirtualServiceSpec>,
    targets: &Targets<'_>,
    reporter: &mut Reporter,
) -> Option<BoundRoute> {
    let site = &vs.site;
    let errors = reporter.error_count();
    let mut matches = Vec::new();
    let mut match_gateways = Vec::new();
    for (i, m) in http.matches.iter().enumerate() {
        let match_path = format!("{path}.match[{i}]");
        let mut gateways = Vec::new();
        for (j, name) in m.gateways.iter().enumerate() {
            gateways.extend(gateway_ref(
                name,
                vs.namespace,
                &format!("{match_path}.gateways[{j}]"),
                site,
                targets,
                reporter,
            ));
        }
        if let Some(resolved) = match_request(m, &match_path, site, reporter) {
            matches.push(resolved);
            match_gateways.push(gateways);
        }
    }

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
    let action = match set.as_slice() {
        [] => {
            reporter.error(
                site,
                path,
                "HTTP route needs one of route, redirect, directResponse or delegate",
            );
            None
        }
        [_, _, ..] => {
            reporter.error(site, format!("{path}.{}", set[1]), format!("HTTP route takes only one of route, redirect, directResponse or delegate; it sets {}", set.join(" and ")));
            None
        }
        ["delegate"] => {
            reporter.error(site, format!("{path}.delegate"), "delegation to another VirtualService is not supported by Portcullis yet; inline the delegate's routes");
            None
        }
        ["redirect"] => {
            if http.rewrite.is_some() {
                reporter.error(
                    site,
                    format!("{path}.rewrite"),
                    "rewrite cannot be combined with redirect",
                );
            }
            redirect(
                http.redirect.as_ref()?,
                &format!("{path}.redirect"),
                site,
                reporter,
            )
            .map(RouteAction::Redirect)
        }
        ["directResponse"] => {
            direct_response(http, path, site, reporter).map(RouteAction::DirectResponse)
        }
        _ => destinations(http, path, site, targets, reporter).map(RouteAction::Forward),
    };
    let rewrite = http
        .rewrite
        .as_ref()
        .and_then(|r| rewrite(r, &format!("{path}.rewrite"), site, reporter));
    let sets_host = http
        .headers
        .as_ref()
        .and_then(|h| h.request.as_ref())
        .is_some_and(|r| {
            r.set
                .keys()
                .chain(r.add.keys())
                .any(|k| k.eq_ignore_ascii_case("host"))
        });
    if sets_host && http.rewrite.as_ref().is_some_and(|r| r.authority.is_some()) {
        reporter.error(
            site,
            format!("{path}.rewrite.authority"),
            "the authority is rewritten and the request's host header is set too: keep one",
        );
    }
    let timeout = checks::duration(reporter, site, &format!("{path}.timeout"), http.timeout);
    let retry = retry(
        http.retries.as_ref(),
        &format!("{path}.retries"),
        site,
        reporter,
    );
    let fault = http
        .fault
        .as_ref()
        .and_then(|f| fault(f, &format!("{path}.fault"), site, reporter));
    let mirrors = mirrors(http, path, site, targets, reporter);
    let cors = http
        .cors_policy
        .as_ref()
        .map(|c| cors(c, &format!("{path}.corsPolicy"), site, reporter));
    let headers = header_ops(
        http.headers.as_ref(),
        &format!("{path}.headers"),
        site,
        reporter,
    );
    if reporter.error_count() > errors {
        return None;
    }
    let index = path.rsplit('[').next().unwrap_or("0").trim_end_matches(']');
    Some(BoundRoute {
        route: Route {
            name: http
                .name
                .clone()
                .unwrap_or_else(|| format!("{}.{index}", vs.name)),
            virtual_service: vs.key(),
            matches,
            action: action?,
            rewrite,
            timeout,
            retry,
            fault,
            mirrors,
            cors,
            headers,
        },
        match_gateways,
    })
}

fn match_request(
    m: &HttpMatchRequest,
    path: &str,
    site: &Site,
    reporter: &mut Reporter,
) -> Option<RouteMatch> {
    let errors = reporter.error_count();
    let string = |field: &str, value: &Option<StringMatch>, reporter: &mut Reporter| {
        value
            .as_ref()
            .and_then(|v| checks::string_match(reporter, site, &format!("{path}.{field}"), v))
    };
    let uri = string("uri", &m.uri, reporter);
    let scheme = string("scheme", &m.scheme, reporter);
    let method = string("method", &m.method, reporter);
    let authority = string("authority", &m.authority, reporter);
    let mut headers = Vec::new();
    for (field, map, invert) in [
        ("headers", &m.headers, false),
        ("withoutHeaders", &m.without_headers, true),
    ] {
        for (name, value) in map {
            let header_path = format!("{path}.{field}.{name}");
            if name.starts_with(JWT_CLAIM) {
                if invert {
                    reporter.error(site, &header_path, "matching on JWT claims needs RequestAuthentication, which Portcullis does not support yet; a withoutHeaders claim condition cannot be kept");
                    continue;
                }
                reporter.warn(site, &header_path, "matching on JWT claims needs RequestAuthentication, which Portcullis does not support yet: this condition never holds");
                let value = presence_or_match(value, &header_path, site, reporter);
                headers.push(HeaderMatcher {
                    name: name.clone(),
                    value,
                    invert,
                });
                continue;
            }
            let Some(lower) = checks::header_name(reporter, site, &header_path, name) else {
                continue;
            };
            if matches!(lower.as_str(), "uri" | "scheme" | "method" | "authority") {
                reporter.warn(site, &header_path, format!("Istio ignores a header match on {lower:?}: use the {lower} field of the match"));
                continue;
            }
            let value = presence_or_match(value, &header_path, site, reporter);
            headers.push(HeaderMatcher {
                name: lower,
                value,
                invert,
            });
        }
    }
    let mut query_params = Vec::new();
    for (name, value) in &m.query_params {
        query_params.push((
            name.clone(),
            presence_or_match(value, &format!("{path}.queryParams.{name}"), site, reporter),
        ));
    }
    let port = m
        .port
        .and_then(|p| checks::port(reporter, site, &format!("{path}.port"), p));
    if m.stat_prefix.is_some() {
        reporter.warn(
            site,
            format!("{path}.statPrefix"),
            "per-route statistics are not kept; ignored",
        );
    }
    for (field, set) in [
        ("sourceLabels", m.source_labels.is_some()),
        ("sourceNamespace", m.source_namespace.is_some()),
    ] {
        if set {
            reporter.warn(
                site,
                format!("{path}.{field}"),
                "selects mesh workloads, which a standalone gateway does not see; ignored",
            );
        }
    }
    (reporter.error_count() == errors).then(|| RouteMatch {
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

/// `{}` means "present"; anything else is a StringMatch.
fn presence_or_match(
    value: &StringMatch,
    path: &str,
    site: &Site,
    reporter: &mut Reporter,
) -> Option<StringMatcher> {
    if *value == StringMatch::default() {
        None
    } else {
        checks::string_match(reporter, site, path, value)
    }
}

fn destinations(
    http: &HttpRoute,
    path: &str,
    site: &Site,
    targets: &Targets<'_>,
    reporter: &mut Reporter,
) -> Option<Vec<WeightedCluster>> {
    let mut weighted = Vec::new();
    let mut total: i64 = 0;
    for (i, route) in http.route.iter().enumerate() {
        let route_path = format!("{path}.route[{i}]");
        let weight = route.weight.unwrap_or(0);
        if weight < 0 {
            reporter.error(
                site,
                format!("{route_path}.weight"),
                format!("weight {weight} must not be negative"),
            );
            continue;
        }
        total += weight;
        let Some(destination) = &route.destination else {
            reporter.error(
                site,
                format!("{route_path}.destination"),
                "destination is required",
            );
            continue;
        };
        let cluster = cluster(
            destination,
            &format!("{route_path}.destination"),
            site,
            targets,
            reporter,
        );
        let headers = header_ops(
            route.headers.as_ref(),
            &format!("{route_path}.headers"),
            site,
            reporter,
        );
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
    if http.route.len() > 1 && total == 0 {
        reporter.error(
            site,
            format!("{path}.route"),
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
fn cluster(
    destination: &Destination,
    path: &str,
    site: &Site,
    targets: &Targets<'_>,
    reporter: &mut Reporter,
) -> Option<String> {
    let Some(host) = destination.host.as_deref() else {
        reporter.error(site, format!("{path}.host"), "destination host is required");
        return None;
    };
    let Some(service) = targets.services.get(host) else {
        reporter.error(
            site,
            format!("{path}.host"),
            format!("host {host:?} is not defined by any ServiceEntry"),
        );
        return None;
    };
    let port = match destination.port.and_then(|p| p.number) {
        Some(number) => match u16::try_from(number).ok().and_then(|n| service.port(n)) {
            Some(port) => port.number,
            None => {
                reporter.error(
                    site,
                    format!("{path}.port.number"),
                    format!(
                        "service {host:?} has no port {number} (ports: {})",
                        service.port_list()
                    ),
                );
                return None;
            }
        },
        None => {
            match service.ports.as_slice() {
                [only] => only.number,
                _ => {
                    reporter.error(site, format!("{path}.port"), format!("service {host:?} has several ports ({}): the destination must name one", service.port_list()));
                    return None;
                }
            }
        }
    };
    if let Some(subset) = destination.subset.as_deref() {
        let defined = targets
            .subsets
            .get(host)
            .is_some_and(|s| s.contains(subset));
        if !defined {
            reporter.error(
                site,
                format!("{path}.subset"),
                format!(
                    "subset {subset:?} is not defined by any DestinationRule for host {host:?}"
                ),
            );
            return None;
        }
    }
    Some(cluster_name(host, port, destination.subset.as_deref()))
}

fn redirect(
    spec: &HttpRedirect,
    path: &str,
    site: &Site,
    reporter: &mut Reporter,
) -> Option<Redirect> {
    let errors = reporter.error_count();
    if spec.uri.is_none()
        && spec.prefix_rewrite.is_none()
        && spec.authority.is_none()
        && spec.port.is_none()
        && spec.derive_port.is_none()
        && spec.scheme.is_none()
        && spec.redirect_code.is_none()
    {
        reporter.error(site, path, "redirect must set at least one of uri, prefixRewrite, authority, port, derivePort, scheme or redirectCode");
    }
    if spec.uri.is_some() && spec.prefix_rewrite.is_some() {
        reporter.error(
            site,
            format!("{path}.prefixRewrite"),
            "redirect takes only one of uri or prefixRewrite",
        );
    }
    let port = match (spec.port, spec.derive_port) {
        (Some(_), Some(_)) => {
            reporter.error(
                site,
                format!("{path}.derivePort"),
                "redirect takes only one of port or derivePort",
            );
            None
        }
        (Some(p), None) => {
            checks::port(reporter, site, &format!("{path}.port"), p).map(RedirectPort::Fixed)
        }
        (None, Some(DerivePort::FromProtocolDefault)) => Some(RedirectPort::FromProtocolDefault),
        (None, Some(DerivePort::FromRequestPort)) => Some(RedirectPort::FromRequestPort),
        (None, None) => None,
    };
    let code = spec.redirect_code.unwrap_or(301);
    if !(300..=399).contains(&code) {
        reporter.error(
            site,
            format!("{path}.redirectCode"),
            format!("redirect code {code} must be a 3xx status"),
        );
    }
    (reporter.error_count() == errors).then(|| Redirect {
        uri: spec.uri.clone(),
        prefix_rewrite: spec.prefix_rewrite.clone(),
        authority: spec.authority.clone(),
        port,
        scheme: spec.scheme.clone(),
        code: code as u16,
    })
}

fn direct_response(
    http: &HttpRoute,
    path: &str,
    site: &Site,
    reporter: &mut Reporter,
) -> Option<DirectResponse> {
    let spec = http.direct_response.as_ref()?;
    let path = format!("{path}.directResponse");
    let status = match spec.status {
        None => {
            reporter.error(
                site,
                format!("{path}.status"),
                "directResponse status is required",
            );
            return None;
        }
        Some(s) if !(200..=599).contains(&s) => {
            reporter.error(
                site,
                format!("{path}.status"),
                format!("status {s} must be in the range 200..599"),
            );
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
                reporter.error(
                    site,
                    format!("{path}.body.bytes"),
                    format!("body bytes are not valid base64: {e}"),
                );
                return None;
            }
        },
        Some((Some(_), Some(_))) => {
            reporter.error(
                site,
                format!("{path}.body"),
                "body takes only one of string or bytes",
            );
            return None;
        }
    };
    Some(DirectResponse { status, body })
}

fn rewrite(
    spec: &HttpRewrite,
    path: &str,
    site: &Site,
    reporter: &mut Reporter,
) -> Option<Rewrite> {
    if spec.uri.is_none() && spec.authority.is_none() && spec.uri_regex_rewrite.is_none() {
        reporter.error(
            site,
            path,
            "rewrite must set uri, authority or uriRegexRewrite",
        );
        return None;
    }
    if spec.uri.is_some() && spec.uri_regex_rewrite.is_some() {
        reporter.error(
            site,
            format!("{path}.uriRegexRewrite"),
            "rewrite takes only one of uri or uriRegexRewrite",
        );
        return None;
    }
    let uri_regex = match &spec.uri_regex_rewrite {
        None => None,
        Some(r) => match (&r.pattern, &r.rewrite) {
            (Some(pattern), Some(replacement)) => {
                checks::regex_syntax(
                    reporter,
                    site,
                    &format!("{path}.uriRegexRewrite.match"),
                    pattern,
                )?;
                Some((pattern.clone(), replacement.clone()))
            }
            _ => {
                reporter.error(
                    site,
                    format!("{path}.uriRegexRewrite"),
                    "uriRegexRewrite needs match and rewrite",
                );
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

fn retry(
    spec: Option<&HttpRetry>,
    path: &str,
    site: &Site,
    reporter: &mut Reporter,
) -> RetryPolicy {
    let Some(spec) = spec else {
        return RetryPolicy::default();
    };
    let mut policy = RetryPolicy::default();
    let attempts = spec.attempts.unwrap_or(0);
    if attempts < 0 {
        reporter.error(
            site,
            format!("{path}.attempts"),
            format!("attempts {attempts} must not be negative"),
        );
    }
    policy.attempts = u32::try_from(attempts).unwrap_or(0);
    policy.per_try_timeout = checks::duration(
        reporter,
        site,
        &format!("{path}.perTryTimeout"),
        spec.per_try_timeout,
    );
    if let Some(retry_on) = &spec.retry_on {
        policy.retry_on.clear();
        for condition in retry_on.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            if let Ok(code) = condition.parse::<u16>()
                && (100..=599).contains(&code)
            {
                policy.retriable_status_codes.push(code);
                continue;
            }
            if RETRY_ON.contains(&condition) {
                if NOT_RETRIED_ON.contains(&condition) {
                    reporter.warn(
                        site,
                        format!("{path}.retryOn"),
                        format!(
                            "{condition:?} is not carried out: no retry is made on it; ignored"
                        ),
                    );
                }
                policy.retry_on.push(condition.to_string());
            } else {
                reporter.error(
                    site,
                    format!("{path}.retryOn"),
                    format!(
                        "{condition:?} is not a valid retryOn policy: use status codes or {}",
                        RETRY_ON.join(", ")
                    ),
                );
            }
        }
        if !policy.retriable_status_codes.is_empty()
            && !policy
                .retry_on
                .iter()
                .any(|c| c == "retriable-status-codes")
        {
            policy.retry_on.push("retriable-status-codes".into());
        }
    }
    policy.retry_remote_localities = spec.retry_remote_localities.unwrap_or(false);
    if policy.retry_remote_localities {
        reporter.warn(
            site,
            format!("{path}.retryRemoteLocalities"),
            "endpoints have no localities here, so retries already go to any endpoint; ignored",
        );
    }
    policy.ignore_previous_hosts = spec.retry_ignore_previous_hosts.unwrap_or(true);
    if let Some(backoff) =
        checks::duration(reporter, site, &format!("{path}.backoff"), spec.backoff)
    {
        policy.backoff_base = backoff;
    }
    if policy.attempts == 0 && (spec.per_try_timeout.is_some() || spec.retry_on.is_some()) {
        reporter.warn(site, format!("{path}.attempts"), "attempts is 0 (or unset), which disables retries: retryOn and perTryTimeout have no effect");
    }
    policy
}

fn fault(
    spec: &HttpFaultInjection,
    path: &str,
    site: &Site,
    reporter: &mut Reporter,
) -> Option<Fault> {
    if spec.delay.is_none() && spec.abort.is_none() {
        reporter.error(site, path, "fault must have a delay or an abort");
        return None;
    }
    let share = |p: &str,
                 percentage: Option<crate::config::model::common::Percent>,
                 percent: Option<i64>,
                 what: &str,
                 reporter: &mut Reporter| {
        if let Some(percent) = percent {
            reporter.warn(
                site,
                format!("{p}.percent"),
                "deprecated: use percentage.value",
            );
            if !(0..=100).contains(&percent) {
                reporter.error(
                    site,
                    format!("{p}.percent"),
                    format!("percent {percent} must be between 0 and 100"),
                );
            }
            if percentage.is_none() {
                return percent.clamp(0, 100) as f64;
            }
        } else if percentage.is_none() {
            reporter.warn(site, format!("{p}.percentage"), format!("percentage is not set, so no request is {what} (as in Istio): set percentage.value"));
        }
        checks::percentage(reporter, site, &format!("{p}.percentage"), percentage)
    };
    let delay = match &spec.delay {
        None => None,
        Some(delay) => {
            let p = format!("{path}.delay");
            if delay.exponential_delay.is_some() {
                reporter.error(
                    site,
                    format!("{p}.exponentialDelay"),
                    "exponentialDelay is not supported (nor by Istio): use fixedDelay",
                );
            }
            let percentage = share(&p, delay.percentage, delay.percent, "delayed", reporter);
            match checks::duration(
                reporter,
                site,
                &format!("{p}.fixedDelay"),
                delay.fixed_delay,
            ) {
                Some(fixed_delay) => Some(FaultDelay {
                    fixed_delay,
                    percentage,
                }),
                None if delay.fixed_delay.is_none() && delay.exponential_delay.is_none() => {
                    reporter.error(site, format!("{p}.fixedDelay"), "delay needs fixedDelay");
                    None
                }
                None => None,
            }
        }
    };
    let abort = match &spec.abort {
        None => None,
        Some(abort) => {
            let p = format!("{path}.abort");
            let percentage = share(&p, abort.percentage, None, "aborted", reporter);
            let status = match (abort.http_status, &abort.grpc_status, &abort.http2_error) {
                (Some(code), None, None) if (200..=599).contains(&code) => {
                    Some(AbortStatus::Http(code as u16))
                }
                (Some(code), None, None) => {
                    reporter.error(
                        site,
                        format!("{p}.httpStatus"),
                        format!("httpStatus {code} must be in the range 200..599"),
                    );
                    None
                }
                (None, Some(name), None) => match GRPC_STATUSES.iter().position(|s| s == name) {
                    Some(code) => Some(AbortStatus::Grpc(code as u8)),
                    None => {
                        reporter.error(
                            site,
                            format!("{p}.grpcStatus"),
                            format!("unknown gRPC status {name:?}: use a name such as UNAVAILABLE"),
                        );
                        None
                    }
                },
                (None, None, Some(_)) => {
                    reporter.error(
                        site,
                        format!("{p}.http2Error"),
                        "http2Error is not supported (nor by Istio): use httpStatus",
                    );
                    None
                }
                (None, None, None) => {
                    reporter.error(site, &p, "abort needs httpStatus or grpcStatus");
                    None
                }
                _ => {
                    reporter.error(
                        site,
                        &p,
                        "abort takes only one of httpStatus, grpcStatus or http2Error",
                    );
                    None
                }
            };
            status.map(|status| FaultAbort { status, percentage })
        }
    };
    Some(Fault { delay, abort })
}

fn mirrors(
    http: &HttpRoute,
    path: &str,
    site: &Site,
    targets: &Targets<'_>,
    reporter: &mut Reporter,
) -> Vec<Mirror> {
    let mut mirrors = Vec::new();
    if http.mirror.is_some() && !http.mirrors.is_empty() {
        reporter.error(
            site,
            format!("{path}.mirrors"),
            "set only one of mirror or mirrors",
        );
        return mirrors;
    }
    if let Some(percent) = http.mirror_percent {
        reporter.warn(
            site,
            format!("{path}.mirrorPercent"),
            "deprecated: use mirrorPercentage",
        );
        if percent > 100 {
            reporter.error(
                site,
                format!("{path}.mirrorPercent"),
                format!("mirrorPercent {percent} must be between 0 and 100"),
            );
        }
    }
    if let Some(mirror) = &http.mirror {
        let percentage = match (http.mirror_percentage, http.mirror_percent) {
            (Some(p), _) => {
                checks::percentage(reporter, site, &format!("{path}.mirrorPercentage"), Some(p))
            }
            (None, Some(p)) => p.min(100) as f64,
            (None, None) => 100.0,
        };
        if let Some(cluster) = cluster(mirror, &format!("{path}.mirror"), site, targets, reporter) {
            mirrors.push(Mirror {
                cluster,
                percentage,
            });
        }
    } else if http.mirror_percentage.is_some() {
        reporter.warn(
            site,
            format!("{path}.mirrorPercentage"),
            "mirrorPercentage without mirror has no effect",
        );
    }
    for (i, policy) in http.mirrors.iter().enumerate() {
        let p = format!("{path}.mirrors[{i}]");
        let Some(destination) = &policy.destination else {
            reporter.error(site, format!("{p}.destination"), "destination is required");
            continue;
        };
        let percentage = match policy.percentage {
            Some(pct) => checks::percentage(reporter, site, &format!("{p}.percentage"), Some(pct)),
            None => 100.0,
        };
        if let Some(cluster) = cluster(
            destination,
            &format!("{p}.destination"),
            site,
            targets,
            reporter,
        ) {
            mirrors.push(Mirror {
                cluster,
                percentage,
            });
        }
    }
    mirrors
}

fn cors(spec: &CorsPolicy, path: &str, site: &Site, reporter: &mut Reporter) -> Cors {
    let mut allow_origins: Vec<StringMatcher> = Vec::new();
    if !spec.allow_origin.is_empty() {
        reporter.warn(
            site,
            format!("{path}.allowOrigin"),
            "deprecated: use allowOrigins",
        );
        allow_origins.extend(
            spec.allow_origin
                .iter()
                .map(|o| StringMatcher::Exact(o.clone())),
        );
    }
    for (i, origin) in spec.allow_origins.iter().enumerate() {
        allow_origins.extend(checks::string_match(
            reporter,
            site,
            &format!("{path}.allowOrigins[{i}]"),
            origin,
        ));
    }
    for (i, method) in spec.allow_methods.iter().enumerate() {
        if method != "*" && !method.bytes().all(|b| b.is_ascii_uppercase()) {
            reporter.error(
                site,
                format!("{path}.allowMethods[{i}]"),
                format!("{method:?} is not an HTTP method name (use upper case, e.g. GET)"),
            );
        }
    }
    let names = |field: &str, list: &[String], reporter: &mut Reporter| -> Vec<String> {
        list.iter()
            .enumerate()
            .filter_map(|(i, h)| {
                if h == "*" {
                    Some(h.clone())
                } else {
                    checks::header_name(reporter, site, &format!("{path}.{field}[{i}]"), h)
                }
            })
            .collect()
    };
    let allow_headers = names("allowHeaders", &spec.allow_headers, reporter);
    let expose_headers = names("exposeHeaders", &spec.expose_headers, reporter);
    Cors {
        allow_origins,
        allow_methods: spec.allow_methods.clone(),
        allow_headers,
        expose_headers,
        max_age: checks::duration(reporter, site, &format!("{path}.maxAge"), spec.max_age),
        allow_credentials: spec.allow_credentials.unwrap_or(false),
        forward_unmatched_preflights: spec.unmatched_preflights
            != Some(UnmatchedPreflights::Ignore),
    }
}

fn header_ops(
    spec: Option<&Headers>,
    path: &str,
    site: &Site,
    reporter: &mut Reporter,
) -> HeaderOps {
    let Some(spec) = spec else {
        return HeaderOps::default();
    };
    let edits = |ops: &Option<HeaderOperations>, side: &str, reporter: &mut Reporter| {
        let Some(ops) = ops else {
            return HeaderEdits::default();
        };
        let p = format!("{path}.{side}");
        let pairs = |field: &str, map: &BTreeMap<String, String>, reporter: &mut Reporter| {
            map.iter()
                .filter_map(|(k, v)| {
                    checks::header_name(reporter, site, &format!("{p}.{field}.{k}"), k)
                        .map(|k| (k, v.clone()))
                })
                .collect()
        };
        HeaderEdits {
            set: pairs("set", &ops.set, reporter),
            add: pairs("add", &ops.add, reporter),
            remove: ops
                .remove
                .iter()
                .enumerate()
                .filter_map(|(i, name)| {
                    checks::header_name(reporter, site, &format!("{p}.remove[{i}]"), name)
                })
                .collect(),
        }
    };
    HeaderOps {
        request: edits(&spec.request, "request", reporter),
        response: edits(&spec.response, "response", reporter),
    }
}
