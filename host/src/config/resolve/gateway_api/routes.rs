//! HTTPRoutes: VirtualServices whose routes are the rules' matches of every HTTPRoute
//! attached to a host, in the API's precedence order across them.

use std::cmp::Reverse;

use serde_json::{Value, json};

use super::backends::{Backends, INVALID_SHARE, backends, mirror};
use super::extensions::names_a_plugin;
use super::filters::{Edit, PathChange, filter_edit};
use super::matches::{blocks, path_fields};
use super::services::Services;
use super::status::Parents;
use super::{istio, not_yet};
use crate::config::model::GATEWAY_API;
use crate::config::model::common::Duration;
use crate::config::model::gateway_api::{
    GrpcRouteSpec, HttpRouteFilter, HttpRouteMatch, HttpRouteRetry, HttpRouteRule, HttpRouteSpec,
    ObjectRef, RouteRank,
};
use crate::config::model::virtual_service::VirtualServiceSpec;
use crate::config::resolve::checks::host_covers;
use crate::config::resolve::scope::Scope;

/// Which Istio routes a route set holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    /// `http` routes (HTTPRoute, GRPCRoute).
    Http,
    /// `tls` routes (TLSRoute).
    Tls,
    /// `tcp` routes (TCPRoute).
    Tcp,
}

impl RouteKind {
    /// The VirtualService field its routes go in.
    fn field(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Tls => "tls",
            Self::Tcp => "tcp",
        }
    }
}

/// One route's rules as Istio routes, with where they attach.
pub struct RouteSet {
    /// Which Istio routes these are.
    pub kind: RouteKind,
    /// The route's namespace.
    pub namespace: String,
    /// Its parents, as Istio gateway references (`namespace/gateway[/listener]`).
    pub gateways: Vec<String>,
    /// Its hostnames (`*` when it names none).
    pub hostnames: Vec<String>,
    /// Its routes, each with its precedence.
    pub entries: Vec<(RouteRank, Value)>,
    /// The document it came from.
    pub document: usize,
    /// `namespace/name`.
    pub key: String,
}

/// The routes of HTTPRoute `name` (`spec`, in `namespace`, its matches ordered by
/// `ranking`); `services` are what its backends may name, `known` the Gateways.
pub fn route_set(
    (spec, ranking): (&HttpRouteSpec, Ranking<'_>),
    (namespace, name, document): (&str, &str, usize),
    (services, known): (&Services<'_>, &Parents),
    at: &Scope<'_>,
) -> RouteSet {
    let key = format!("{namespace}/{name}");
    let mut entries: Vec<(RouteRank, Value)> = Vec::new();
    for (r, rule) in spec.rules.iter().enumerate() {
        let at = at.field("rules").index(r);
        let action = action(rule, namespace, services, &at);
        let rule_name = rule.name.clone().unwrap_or_else(|| r.to_string());
        let default = [HttpRouteMatch::default()];
        let matches = if rule.matches.is_empty() {
            &default[..]
        } else {
            &rule.matches
        };
        for (m, matched) in matches.iter().enumerate() {
            let at = at.field("matches").index(m);
            let precedence = rank(ranking, matched, (&key, r, m));
            for (b, (block, half)) in blocks(matched, &at).into_iter().enumerate() {
                let mut route = action.route.clone();
                route["name"] = json!(format!("{name}.{rule_name}.{m}.{b}"));
                route["match"] = json!([block]);
                if let Some(change) = &action.path {
                    let field = if action.redirects {
                        "redirect"
                    } else {
                        "rewrite"
                    };
                    for (part, value) in path_fields(change, half, action.redirects) {
                        route[field][part] = value;
                    }
                }
                entries.push((precedence.clone(), route));
            }
        }
    }
    let hostnames = if spec.hostnames.is_empty() {
        vec!["*".to_string()]
    } else {
        spec.hostnames.clone()
    };
    RouteSet {
        kind: RouteKind::Http,
        namespace: namespace.to_string(),
        gateways: parents(
            (&spec.parent_refs, ranking.api_kind()),
            namespace,
            known,
            at,
        ),
        hostnames,
        entries,
        document,
        key,
    }
}

/// A route's parents as Istio gateway references (a listener is a third part), limited to
/// the listeners taking routes of `kind`; a Gateway that is not defined is warned about
/// and left out, as Kubernetes would leave the route unaccepted there.
pub fn parents(
    (refs, kind): (&[ObjectRef], &str),
    namespace: &str,
    known: &Parents,
    at: &Scope<'_>,
) -> Vec<String> {
    refs.iter()
        .enumerate()
        .flat_map(|(i, parent)| {
            let at = at.field("parentRefs").index(i);
            let group = parent.group.as_deref().unwrap_or(GATEWAY_API);
            if group != GATEWAY_API || parent.kind.as_deref().is_some_and(|k| k != "Gateway") {
                at.field("kind")
                    .warn("only Gateways are served as parents: ignored");
                return Vec::new();
            }
            let Some(gateway) = parent_gateway(parent, namespace) else {
                return Vec::new();
            };
            if !known.knows(&gateway) {
                at.field("name").warn(format!(
                    "no Gateway {gateway} is defined: not attached there (NoMatchingParent)"
                ));
                return Vec::new();
            }
            let listeners = match (&parent.section_name, parent.port) {
                (None, None) => match known.taking(&gateway, kind) {
                    Ok(()) => return vec![gateway],
                    Err(taking) => taking,
                },
                (section, Some(port)) => {
                    let listeners = known.listeners_on(&gateway, port, section.as_deref());
                    if listeners.is_empty() {
                        at.field("port").warn(format!(
                            "Gateway {gateway} has no such listener on port {port}: not attached there (NoMatchingParent)"
                        ));
                    }
                    listeners
                }
                // One that is not served is the Istio Gateway reference's to report.
                (Some(section), None) if !known.serves(&gateway, section) => {
                    return vec![format!("{gateway}/{section}")];
                }
                (Some(section), None) => vec![section.as_str()],
            };
            let listeners_empty = listeners.is_empty();
            let taking: Vec<String> = listeners
                .into_iter()
                .filter(|l| known.takes(&gateway, l, kind))
                .map(|l| format!("{gateway}/{l}"))
                .collect();
            if taking.is_empty() && !listeners_empty {
                at.warn(format!(
                    "no listener of Gateway {gateway} this names takes {kind}s: not attached there"
                ));
            }
            taking
        })
        .collect()
}

/// The `namespace/name` of the Gateway `parent` names, for a route in `namespace`.
pub fn parent_gateway(parent: &ObjectRef, namespace: &str) -> Option<String> {
    let name = parent.name.as_deref()?;
    Some(format!(
        "{}/{name}",
        parent.namespace.as_deref().unwrap_or(namespace)
    ))
}

/// The VirtualServices of the route sets: per namespace, parents and hostname, the routes
/// of every set attached there whose hostnames cover it, in the API's precedence order
/// across them. Each comes with its namespace, and the name and document it is reported
/// under.
pub fn virtual_services(
    sets: &[RouteSet],
    at: &Scope<'_>,
) -> Vec<(String, String, usize, VirtualServiceSpec)> {
    let mut services = Vec::new();
    let mut groups: Vec<(&str, &[String], RouteKind)> = Vec::new();
    for set in sets.iter().filter(|s| !s.gateways.is_empty()) {
        let group = (set.namespace.as_str(), set.gateways.as_slice(), set.kind);
        if !groups.contains(&group) {
            groups.push(group);
        }
    }
    for (namespace, gateways, kind) in groups {
        let members: Vec<&RouteSet> = sets
            .iter()
            .filter(|s| s.namespace == namespace && s.gateways == gateways && s.kind == kind)
            .collect();
        let mut hostnames: Vec<&str> = members
            .iter()
            .flat_map(|s| s.hostnames.iter().map(String::as_str))
            .collect();
        hostnames.sort_unstable();
        hostnames.dedup();
        for host in hostnames {
            let mut entries: Vec<&(RouteRank, Value)> = members
                .iter()
                .filter(|s| s.hostnames.iter().any(|h| host_covers(h, host)))
                .flat_map(|s| &s.entries)
                .collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            let routes: Vec<Value> = entries
                .iter()
                .map(|(_, route)| match kind {
                    // A TLS route takes the names of its VirtualService's host.
                    RouteKind::Tls => {
                        let mut route = route.clone();
                        route["match"] = json!([{ "sniHosts": [host] }]);
                        route
                    }
                    _ => route.clone(),
                })
                .collect();
            let mut spec = json!({ "hosts": [host], "gateways": gateways });
            spec[kind.field()] = Value::Array(routes);
            let first = members[0];
            let route = first.key.split_once('/').map_or("", |(_, n)| n);
            let name = match kind {
                RouteKind::Http => format!("{route}~{host}"),
                other => format!("{route}~{}~{host}", other.field()),
            };
            if let Some(mut spec) = istio::<VirtualServiceSpec>(spec, at) {
                for (route, (rank, _)) in spec.http.iter_mut().zip(entries) {
                    route.rank = Some(rank.clone());
                }
                services.push((namespace.to_string(), name, first.document, spec));
            }
        }
    }
    services
}

/// Which API's precedence rules order a route's matches.
#[derive(Clone, Copy)]
pub enum Ranking<'s> {
    /// HTTPRoute's: by path, method, headers, query parameters.
    Http,
    /// GRPCRoute's, read from the GRPCRoute itself: by service, method, headers.
    Grpc(&'s GrpcRouteSpec),
}

impl Ranking<'_> {
    /// The kind of the routes ranked so.
    fn api_kind(self) -> &'static str {
        match self {
            Self::Http => "HTTPRoute",
            Self::Grpc(_) => "GRPCRoute",
        }
    }
}

/// Where `matched` (match `index` of rule `rule` of route `namespace/name`) stands
/// among the precedence rules of `ranking`.
pub fn rank(ranking: Ranking<'_>, matched: &HttpRouteMatch, at: (&str, usize, usize)) -> RouteRank {
    let (route, rule, index) = at;
    let order = RouteRank {
        class: 0,
        longer: Reverse(0),
        method_chars: Reverse(0),
        no_method: false,
        headers: Reverse(matched.headers.len()),
        query: Reverse(matched.query_params.len()),
        route: route.to_string(),
        rule,
        matched: index,
    };
    match ranking {
        Ranking::Http => {
            let path = matched.path.as_ref();
            let class = match path.and_then(|p| p.kind.as_deref()) {
                Some("Exact") => 0,
                Some("RegularExpression") => 2,
                _ => 1,
            };
            let length = path.and_then(|p| p.value.as_deref()).map_or(1, str::len);
            RouteRank {
                class,
                longer: Reverse(length),
                no_method: matched.method.is_none(),
                ..order
            }
        }
        Ranking::Grpc(spec) => {
            let method = spec.rules[rule]
                .matches
                .get(index)
                .and_then(|m| m.method.as_ref());
            let chars = |part: Option<&String>| part.map_or(0, String::len);
            RouteRank {
                // One without a method matches every path, as a `/` prefix does.
                class: u8::from(method.is_none()),
                longer: Reverse(chars(method.and_then(|m| m.service.as_ref()))),
                method_chars: Reverse(chars(method.and_then(|m| m.method.as_ref()))),
                ..order
            }
        }
    }
}

/// What a rule does, as an Istio route without its match, and the path change its filters
/// ask for (applied per match block).
struct Action {
    route: Value,
    path: Option<PathChange>,
    redirects: bool,
}
fn action(
    rule: &HttpRouteRule,
    namespace: &str,
    services: &Services<'_>,
    at: &Scope<'_>,
) -> Action {
    not_yet(
        rule.session_persistence.is_some(),
        &at.field("sessionPersistence"),
    );
    let mut route = json!({ "retries": retries(rule.retry.as_ref(), &at.field("retry")) });
    timeouts(rule, &mut route, &at.field("timeouts"));
    let mut path = None;
    let mut redirects = false;
    let mut mirrors = Vec::new();
    for (i, filter) in rule.filters.iter().enumerate() {
        let at = at.field("filters").index(i);
        if let Some(copy) = &filter.request_mirror {
            mirrors.extend(mirror(
                copy,
                namespace,
                services,
                &at.field("requestMirror"),
            ));
            continue;
        }
        apply(
            filter_edit(filter, &mut route, &at),
            &mut path,
            &mut redirects,
        );
    }
    let rule_redirects = redirects;
    for (i, filter) in hoisted(rule) {
        let at = at.field("backendRefs").index(0).field("filters").index(i);
        apply(
            filter_edit(filter, &mut route, &at),
            &mut path,
            &mut redirects,
        );
    }
    if !mirrors.is_empty() {
        route["mirrors"] = Value::Array(mirrors);
    }
    let unresolved = missing_plugin(rule, namespace, services, at);
    if !redirects {
        let found = backends(
            &rule.backend_refs,
            (namespace, INVALID_SHARE),
            services,
            &at.field("backendRefs"),
        );
        // An extension that cannot be found must not be skipped: the API asks for 500.
        if found.destinations.is_empty() || unresolved {
            route["directResponse"] = json!({ "status": 500 });
        } else {
            invalid_share(&found, &mut route);
            route["route"] = Value::Array(found.destinations);
        }
    } else if rule_redirects && !rule.backend_refs.is_empty() {
        at.field("backendRefs")
            .warn("a rule that redirects forwards nowhere: its backendRefs are ignored");
    }
    Action {
        route,
        path,
        redirects,
    }
}

/// Answers the invalid backends' share of the requests with 500, as the API asks: an
/// abort of that percentage before the weighted pick among the valid ones, which keeps
/// every backend's share of the whole.
fn invalid_share(found: &Backends, route: &mut Value) {
    let share = found.invalid_share();
    if share > 0.0 {
        route["fault"] =
            json!({ "abort": { "httpStatus": 500, "percentage": { "value": share } } });
    }
}

/// Whether an `ExtensionRef` filter of `rule` names a WasmPlugin that is not defined
/// (warned about at it).
fn missing_plugin(
    rule: &HttpRouteRule,
    namespace: &str,
    services: &Services<'_>,
    at: &Scope<'_>,
) -> bool {
    let mut missing = false;
    for (i, filter) in rule.filters.iter().enumerate() {
        let Some(name) = filter
            .extension_ref
            .as_ref()
            .and_then(|r| r.name.as_deref())
        else {
            continue;
        };
        if names_a_plugin(filter) && !services.has_plugin(&format!("{namespace}/{name}")) {
            at.field("filters")
                .index(i)
                .field("extensionRef")
                .warn(format!(
                    "no WasmPlugin {namespace}/{name} is defined: the rule answers 500"
                ));
            missing = true;
        }
    }
    missing
}

/// Notes what a filter's edit asks of the path and whether the rule redirects.
fn apply(edit: Option<Edit>, path: &mut Option<PathChange>, redirects: &mut bool) {
    match edit {
        Some(Edit::Redirect(change)) => {
            *redirects = true;
            *path = change;
        }
        Some(Edit::Rewrite(change)) => *path = change.or(path.take()),
        None => {}
    }
}

/// The redirect and rewrite filters of a rule's only backend, which act as the rule's
/// own (an Istio route redirects or rewrites for all its destinations).
pub fn hoisted(rule: &HttpRouteRule) -> impl Iterator<Item = (usize, &HttpRouteFilter)> {
    let only = match rule.backend_refs.as_slice() {
        [only] => only.filters.as_slice(),
        _ => &[],
    };
    only.iter()
        .enumerate()
        .filter(|(_, f)| matches!(f.kind.as_deref(), Some("RequestRedirect" | "URLRewrite")))
}

/// The Istio retries of a rule: none without `retry`; else connection errors and the
/// listed statuses, `attempts` times (Istio's 2 by default), after `backoff`.
fn retries(retry: Option<&HttpRouteRetry>, at: &Scope<'_>) -> Value {
    let Some(retry) = retry else {
        return json!({ "attempts": 0 });
    };
    let mut on = vec![
        "connect-failure".to_string(),
        "refused-stream".into(),
        "reset".into(),
    ];
    on.extend(retry.codes.iter().map(ToString::to_string));
    let mut retries = json!({ "attempts": retry.attempts.unwrap_or(2), "retryOn": on.join(",") });
    if let Some(backoff) = duration(retry.backoff.as_deref(), &at.field("backoff")) {
        retries["backoff"] = json!(format!("{}ms", backoff.as_millis()));
    }
    retries
}

/// Sets the Istio timeouts of a rule: with retries, `request` bounds them all and
/// `backendRequest` each attempt; without, the one attempt gets the shorter. `0s`
/// disables either.
fn timeouts(rule: &HttpRouteRule, route: &mut Value, at: &Scope<'_>) {
    let Some(timeouts) = &rule.timeouts else {
        return;
    };
    let request = duration(timeouts.request.as_deref(), &at.field("request"));
    let backend = duration(
        timeouts.backend_request.as_deref(),
        &at.field("backendRequest"),
    );
    let ms = |d: std::time::Duration| json!(format!("{}ms", d.as_millis()));
    if route["retries"]["attempts"].as_u64().unwrap_or(0) > 0 {
        if let Some(request) = request {
            route["timeout"] = ms(request);
        }
        if let Some(backend) = backend {
            route["retries"]["perTryTimeout"] = ms(backend);
        }
    } else if let Some(limit) = request.into_iter().chain(backend).min() {
        route["timeout"] = ms(limit);
    }
}

/// A GEP-2257 duration; `0s` (which disables) and bad ones (an error at `at`) are none.
fn duration(value: Option<&str>, at: &Scope<'_>) -> Option<std::time::Duration> {
    Duration::parse(value?)
        .map_err(|e| at.error(e))
        .ok()
        .map(|d| d.0)
        .filter(|d| !d.is_zero())
}

#[cfg(test)]
mod tests {
    use super::super::grpc;
    use super::{Ranking, rank};
    use crate::config::model::gateway_api::GrpcRouteSpec;

    /// A GRPCRoute's rules rank by characters of service, then of method, then headers
    /// — not by the kind of path match they become (an exact path before a regex).
    #[test]
    fn grpc_matches_rank_by_service_then_method_then_headers() {
        let spec: GrpcRouteSpec = serde_yaml::from_str(
            r#"
rules:
- matches: [{method: {service: x.Echo, method: Ping}}]
- matches: [{method: {type: RegularExpression, service: 'x\.Echo.*', method: Ping}}]
- matches: [{method: {service: x.Echo, method: Ping}, headers: [{name: a, value: b}]}]
- matches: [{method: {service: x.Echo}}]
"#,
        )
        .unwrap();
        let http = grpc::as_http(&spec);
        let ranks: Vec<_> = (0..4)
            .map(|r| {
                let matched = &http.rules[r].matches[0];
                rank(Ranking::Grpc(&spec), matched, ("ns/route", r, 0))
            })
            .collect();
        let mut order: Vec<usize> = (0..4).collect();
        order.sort_by(|&a, &b| ranks[a].cmp(&ranks[b]));
        assert_eq!(order, [1, 2, 0, 3]);
    }
}
