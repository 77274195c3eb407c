//! The data path: from a downstream request to a response, through the policies.

mod attempts;
mod authority;
mod forward;
pub mod headers;
pub mod idle;
pub mod local_reply;
mod mirror;
pub mod normalize;
mod paths;
mod plugins;
mod replay;
pub mod stream;
pub mod upgrade;

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;

use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;

use local_reply::ProxyError;
use paths::Origin;

use crate::config::resolved::{
    DirectResponse, ListenerId, Redirect, RouteAction, StringMatcher, WeightedCluster,
};
use crate::runtime::destination::DestinationId;
use crate::runtime::generation::{RouteEntry, VirtualHostEntry};
use crate::runtime::{Generation, cors};
use crate::telemetry::access_log::{self, Outcome, Policy, Said};
use crate::tls::session::TlsSession;
use crate::wasm::RequestView;
use crate::wasm::plugins::Verdict;
use crate::wasm::policies::FaultStatus;
use crate::wire::body::{self, Body, full};
use crate::wire::{grpc, grpc_messages};

/// The downstream connection a request arrived on.
#[derive(Debug, Clone)]
pub struct Downstream {
    /// The worker thread serving the connection.
    pub worker: usize,
    /// The listener that accepted the connection.
    pub listener: ListenerId,
    /// The route table of the server that accepted the connection.
    pub route_table: usize,
    /// The port the listener is bound to.
    pub port: u16,
    /// The client's address (after PROXY protocol and trusted proxies).
    pub client: SocketAddr,
    /// `http` or `https`: how the client reached the gateway.
    pub scheme: &'static str,
    /// The TLS session, on an HTTPS server.
    pub tls: Option<Arc<TlsSession>>,
    /// Proxies in front trusted for `x-forwarded-for` / `x-forwarded-proto`.
    pub trusted_proxies: u32,
    /// Where finished requests are reported (access log, metrics), if anywhere.
    pub telemetry: Option<&'static access_log::Telemetry>,
    /// How request paths are normalized before routing.
    pub normalization: normalize::PathNormalization,
    /// Where the worker runs upgraded connections.
    pub tunnels: upgrade::Tunnels,
}

/// What follows a request's head: its body, and the client's side of an upgrade it asks
/// for.
struct Payload {
    body: Incoming,
    upgrade: Option<upgrade::Requested>,
}

impl Downstream {
    /// The scheme the client used: the connection's, or a trusted proxy's
    /// `x-forwarded-proto` (a load balancer that terminated TLS, say).
    pub fn client_scheme(&self, headers: &http::HeaderMap) -> &'static str {
        if self.trusted_proxies > 0
            && headers
                .get("x-forwarded-proto")
                .is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"https"))
        {
            return "https";
        }
        self.scheme
    }
}

/// Serves one request on `generation`; failures become Envoy's local replies.
pub async fn handle(
    mut request: Request<Incoming>,
    downstream: &Downstream,
    generation: Arc<Generation>,
) -> Response<Body> {
    headers::ensure_request_id(request.headers_mut());
    match downstream.telemetry {
        None => respond(request, downstream, &generation, &mut Outcome::new(false)).await,
        Some(telemetry) => {
            let mut pending = access_log::Pending::new(
                &mut request,
                downstream.client.ip(),
                downstream.tls.as_ref(),
                telemetry,
                generation,
            );
            let (generation, outcome) = pending.parts();
            let mut response = respond(request, downstream, generation, outcome).await;
            match response
                .extensions_mut()
                .remove::<crate::wire::tunnel::TunnelEnd>()
            {
                Some(tunnel) => pending.finish_tunnel(response, tunnel),
                None => pending.finish(response),
            }
        }
    }
}

/// Routes `request`, failures included: they become Envoy's local replies.
async fn respond(
    request: Request<Incoming>,
    downstream: &Downstream,
    generation: &Arc<Generation>,
    outcome: &mut Outcome,
) -> Response<Body> {
    let grpc = grpc::is_grpc_request(request.headers());
    let response = match route(request, downstream, generation, outcome).await {
        Ok(response) => response,
        Err(error) => error.into_response(outcome),
    };
    let local = outcome.details.as_deref() != Some("via_upstream");
    if grpc && local && !grpc_messages::is_grpc(response.headers()) {
        return local_reply::as_grpc(response).await;
    }
    response
}

async fn route(
    request: Request<Incoming>,
    downstream: &Downstream,
    generation: &Arc<Generation>,
    outcome: &mut Outcome,
) -> Result<Response<Body>, ProxyError> {
    let (mut parts, body) = request.into_parts();
    let upgrade = upgrade::Requested::of(&mut parts);
    if parts.method == http::Method::CONNECT {
        // An extended CONNECT (RFC 8441) is routed as the HTTP/1.1 upgrade it becomes.
        match upgrade {
            Some(_) => parts.method = http::Method::GET,
            None => return Err(ProxyError::Connect),
        }
    }
    let payload = Payload { body, upgrade };
    normalize_path(&mut parts.uri, downstream.normalization)?;
    let host = authority::authority(&mut parts)?;
    let vhost = virtual_host(generation, downstream, &host).ok_or(ProxyError::NoRoute)?;
    if vhost.require_tls && downstream.client_scheme(&parts.headers) == "http" {
        outcome.details = Some(Cow::Borrowed("direct_response"));
        return Ok(https_redirect(&host, &parts.uri));
    }

    let mut view = Arc::new(RequestView {
        parts,
        scheme: downstream.scheme,
        port: downstream.port,
        client: downstream.client,
        tls: downstream.tls.clone(),
        identity: None,
    });
    let mut gathered = Gathered::default();
    let authenticators = &vhost.authenticators;
    if let Some(rejected) = run_filters(
        authenticators,
        &mut view,
        generation,
        outcome,
        &mut gathered,
    )
    .await?
    {
        return Ok(rejected);
    }
    let decided = generation.select_route(vhost, &view).await?;
    let selected = decided.value.ok_or(ProxyError::NoRoute)?;
    let entry = route_entry(vhost, selected.route)?;
    let route = &entry.route;
    outcome.route = Some(entry.id);
    outcome.match_block = selected.match_block;
    let matcher = decided.by.map_or(Policy::Match, Policy::Plugin);
    outcome.note(matcher, || Said::Route(entry.id));
    let matched_uri = route
        .matches
        .get(selected.match_block as usize)
        .and_then(|m| m.uri.as_ref());

    let cors = entry.cors.as_ref().map(|policy| {
        let verdict = policy.check(&view.parts.method, &view.parts.headers);
        (policy, verdict)
    });
    let decorate = match cors {
        Some((_, cors::Verdict::Answer(headers))) => return Ok(preflight_answer(headers)),
        Some((policy, cors::Verdict::Decorate(origin))) => Some((policy, origin)),
        _ => None,
    };
    let matched = Matched {
        entry,
        host: &host,
        matched_uri,
    };
    let served = serve_route(
        matched, view, payload, gathered, downstream, generation, outcome,
    );
    let mut response = served.await?;
    if let Some((policy, origin)) = decorate {
        policy.decorate(origin, response.headers_mut());
    }
    Ok(response)
}

/// The virtual host serving `host` on the request's listener and route table.
fn virtual_host<'g>(
    generation: &'g Generation,
    downstream: &Downstream,
    host: &str,
) -> Option<&'g VirtualHostEntry> {
    let table = generation
        .listener_index(&downstream.listener)
        .and_then(|index| generation.tables.get(index))
        .and_then(|tables| tables.get(downstream.route_table))?;
    table.domains.find(host).map(|i| &table.virtual_hosts[i])
}

/// The route a request matched.
struct Matched<'a> {
    entry: &'a RouteEntry,
    /// The Host the client asked for.
    host: &'a str,
    /// The URI matcher of the match block that matched, for prefix rewrites.
    matched_uri: Option<&'a StringMatcher>,
}

/// Serves a request on its route: fault injection, the plugins, then the route's action.
async fn serve_route(
    matched: Matched<'_>,
    mut view: Arc<RequestView>,
    payload: Payload,
    mut gathered: Gathered,
    downstream: &Downstream,
    generation: &Arc<Generation>,
    outcome: &mut Outcome,
) -> Result<Response<Body>, ProxyError> {
    let Matched {
        entry,
        host,
        matched_uri,
    } = matched;
    if (entry.route.fault.is_some() || entry.chain.fault.is_some())
        && let Some(aborted) = inject_fault(entry, &view, generation, outcome).await?
    {
        return Ok(aborted);
    }
    if let Some(rejected) = run_filters(
        &entry.plugins,
        &mut view,
        generation,
        outcome,
        &mut gathered,
    )
    .await?
    {
        return Ok(rejected);
    }
    let selected = Selected {
        entry,
        host,
        matched_uri,
        chosen: gathered.chosen.as_deref(),
    };
    let mut response = act(selected, view, payload, downstream, generation, outcome).await?;
    gathered.response_edits.apply(response.headers_mut());
    Ok(response)
}

/// Injects the route's fault: a delay, then an abort's local reply if it aborts.
async fn inject_fault(
    entry: &RouteEntry,
    view: &Arc<RequestView>,
    generation: &Generation,
    outcome: &mut Outcome,
) -> Result<Option<Response<Body>>, ProxyError> {
    let decided = generation.inject_fault(entry, view).await?;
    let (injection, policy) = (
        decided.value,
        decided.by.map_or(Policy::Fault, Policy::Plugin),
    );
    outcome.note(policy, || match (injection.delay, &injection.abort) {
        (_, Some(FaultStatus::Http(status))) => Said::Text(format!("abort {status}")),
        (_, Some(FaultStatus::Grpc(status))) => Said::Text(format!("abort grpc {status}")),
        (None | Some(0), None) => Said::Static("none"),
        (Some(ms), None) => Said::Text(format!("delay {ms}ms")),
    });
    if let Some(ms) = injection.delay.filter(|&ms| ms > 0) {
        outcome.flags.push("DI");
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
    let Some(status) = injection.abort else {
        return Ok(None);
    };
    outcome.destination = aborted_destination(entry, view, generation).await;
    Ok(Some(local_reply::fault_abort(status, outcome)))
}

/// What the filters that let a request go on asked for.
#[derive(Default)]
struct Gathered {
    /// Their response edits, in order.
    response_edits: plugins::ResponseEdits,
    /// The destination the last to choose one chose.
    chosen: Option<String>,
}

/// Runs `filters` in order, applying each one's request edits (and the identity it
/// verified) to `view` and gathering the rest; returns the response of one that
/// answers the request itself.
async fn run_filters(
    filters: &[usize],
    view: &mut Arc<RequestView>,
    generation: &Generation,
    outcome: &mut Outcome,
    gathered: &mut Gathered,
) -> Result<Option<Response<Body>>, ProxyError> {
    for &index in filters {
        let plugin = &generation.plugins[index];
        match plugin.on_request(view).await? {
            Verdict::Skip => {
                tracing::warn!(plugin = %plugin.plugin.name, "plugin failed; skipped (FAIL_OPEN)");
                outcome.note(Policy::Plugin(index), || {
                    Said::Static("failed, skipped (FAIL_OPEN)")
                });
            }
            Verdict::Reject(rejection, details) => {
                outcome.note(Policy::Plugin(index), || {
                    Said::Text(format!("reject {}", rejection.status))
                });
                outcome.details =
                    Some(details.map_or(Cow::Borrowed("filter_rejected"), Cow::Owned));
                let mut response = plugins::rejection(rejection);
                gathered.response_edits.apply(response.headers_mut());
                return Ok(Some(response));
            }
            Verdict::Proceed(mut edits, identity) => {
                outcome.note(Policy::Plugin(index), || match &edits.destination {
                    Some(destination) => Said::Text(format!("proceed to {destination}")),
                    None => Said::Static("proceed"),
                });
                let view =
                    Arc::get_mut(view).expect("no policy call holds the request between calls");
                plugins::edit_request(&mut view.parts.headers, &edits);
                if let Some(identity) = identity {
                    view.identity = Some(Arc::new(identity));
                }
                if let Some(destination) = edits.destination.take() {
                    gathered.chosen = Some(destination);
                }
                gathered.response_edits.push(edits);
            }
        }
    }
    Ok(None)
}

/// The destination of a fault-aborted request: Envoy picks it with the route, before
/// the fault filter runs, so its metrics name it.
async fn aborted_destination(
    entry: &RouteEntry,
    view: &Arc<RequestView>,
    generation: &Generation,
) -> Option<DestinationId> {
    let RouteAction::Forward(destinations) = &entry.route.action else {
        return None;
    };
    let index = match destinations.len() {
        1 => 0,
        _ => generation.pick_destination(entry, view).await.ok()?.value as usize,
    };
    let cluster = *entry.clusters.get(index)?;
    Some(generation.clusters[cluster].destination)
}

/// Replaces the path of `uri` by its normal form, if it has another.
fn normalize_path(
    uri: &mut http::Uri,
    normalization: normalize::PathNormalization,
) -> Result<(), ProxyError> {
    let Some(normal) = uri
        .path_and_query()
        .and_then(|p| normalization.apply(p.as_str()))
    else {
        return Ok(());
    };
    let mut parts = std::mem::take(uri).into_parts();
    parts.path_and_query = Some(normal.parse().map_err(|_| ProxyError::BadPath)?);
    *uri = http::Uri::from_parts(parts).map_err(|_| ProxyError::BadPath)?;
    Ok(())
}

/// The route a request matched, and what its action needs of the match.
struct Selected<'a> {
    entry: &'a RouteEntry,
    /// The Host the client asked for.
    host: &'a str,
    /// The URI matcher of the match block that matched, for prefix rewrites.
    matched_uri: Option<&'a StringMatcher>,
    /// The destination a plugin chose (`host` or `host/subset`), if one did.
    chosen: Option<&'a str>,
}

/// Carries out the route's action: a direct response, a redirect, or forwarding.
async fn act(
    selected: Selected<'_>,
    view: Arc<RequestView>,
    payload: Payload,
    downstream: &Downstream,
    generation: &Arc<Generation>,
    outcome: &mut Outcome,
) -> Result<Response<Body>, ProxyError> {
    let Selected {
        entry,
        host,
        matched_uri,
        chosen,
    } = selected;
    if !matches!(entry.route.action, RouteAction::Forward(_)) {
        outcome.details = Some(Cow::Borrowed("direct_response"));
    }
    match &entry.route.action {
        RouteAction::DirectResponse(direct) => Ok(direct_response(direct, entry)),
        RouteAction::Redirect(redirect) => {
            let path_and_query = view.parts.uri.path_and_query().map_or("/", |p| p.as_str());
            let origin = Origin {
                scheme: downstream.scheme,
                host,
                port: downstream.port,
                path_and_query,
                matched_uri,
            };
            Ok(redirect_response(redirect, &origin, entry))
        }
        RouteAction::Forward(destinations) => {
            let destination =
                pick_destination(entry, destinations, chosen, &view, generation, outcome).await?;
            let routed = forward::Routed {
                downstream,
                entry,
                destination: &destinations[destination],
                matched_uri,
                host,
            };
            forward_to(routed, destination, view, payload, generation, outcome).await
        }
    }
}

/// Which of the route's destinations serves the request: the one a plugin chose, the
/// only one, or the weighted pick of the destination policy.
async fn pick_destination(
    entry: &RouteEntry,
    destinations: &[WeightedCluster],
    chosen: Option<&str>,
    view: &Arc<RequestView>,
    generation: &Generation,
    outcome: &mut Outcome,
) -> Result<usize, ProxyError> {
    let named = chosen.and_then(|name| {
        let found = destination_named(entry, generation, name);
        if found.is_none() {
            tracing::warn!(
                route = generation.route_name(entry.id),
                destination = name,
                "a plugin chose a destination the route does not have; using the weights"
            );
        }
        found
    });
    match (named, destinations.len()) {
        (Some(index), _) => Ok(index),
        (None, 1) => Ok(0),
        (None, _) => {
            let decided = generation.pick_destination(entry, view).await?;
            let picked = decided.value as usize;
            let policy = decided.by.map_or(Policy::Destination, Policy::Plugin);
            outcome.note(policy, || {
                Said::Text(
                    destinations
                        .get(picked)
                        .map_or_else(|| format!("destination {picked}"), |d| d.cluster.clone()),
                )
            });
            Ok(picked)
        }
    }
}

/// Forwards the request to the route's `destination`: the head prepared for upstream,
/// the body made replayable when it can be, mirrors sent, then the attempts.
async fn forward_to(
    routed: forward::Routed<'_>,
    destination: usize,
    view: Arc<RequestView>,
    payload: Payload,
    generation: &Arc<Generation>,
    outcome: &mut Outcome,
) -> Result<Response<Body>, ProxyError> {
    let entry = routed.entry;
    let cluster = entry
        .clusters
        .get(destination)
        .copied()
        .ok_or(ProxyError::NoHealthyUpstream)?;
    let downstream = routed.downstream;
    let timeout = attempts::timeout(entry.route.timeout, &view.parts.headers);
    let attempts = attempts::Attempts {
        generation,
        view,
        routed,
        cluster,
        upgrade: payload.upgrade,
        timeout,
    };
    let head = attempts.upstream_head();
    // A gRPC request's messages are counted as they go upstream.
    let messages = grpc_messages::is_grpc(&head.headers).then(Arc::default);
    outcome.request_messages = messages.clone();
    let body = replay::RequestBody::new(payload.body, messages).await?;
    if !entry.mirrors.is_empty() {
        let original = mirror::Original {
            entry,
            view: &attempts.view,
            head: &head,
            body: &body,
            downstream,
        };
        mirror::send(original, generation, outcome);
    }
    outcome.destination = Some(generation.clusters[cluster].destination);
    // A failure past routing still gets the plugins' response edits.
    Ok(match attempts.run(head, body, outcome).await {
        Ok(response) => {
            outcome.details = Some(Cow::Borrowed("via_upstream"));
            response
        }
        Err(error) => error.into_response(outcome),
    })
}

/// The index of the route's destination `name` (`host` or `host/subset`).
fn destination_named(entry: &RouteEntry, generation: &Generation, name: &str) -> Option<usize> {
    let (host, subset) = match name.split_once('/') {
        Some((host, subset)) => (host, Some(subset)),
        None => (name, None),
    };
    entry.clusters.iter().position(|&id| {
        let cluster = &generation.clusters[id].cluster;
        cluster.host == host && cluster.subset.as_deref() == subset
    })
}

fn route_entry(vhost: &VirtualHostEntry, index: u32) -> Result<&RouteEntry, ProxyError> {
    vhost.routes.get(index as usize).ok_or(ProxyError::NoRoute)
}

/// Envoy's `require_tls`: every plain-HTTP request is sent to https at the host it asked
/// for, as sent (the listener's own port may not be the public one); only the default
/// port of http, 80, is dropped.
fn https_redirect(host: &str, uri: &http::Uri) -> Response<Body> {
    let host = host.strip_suffix(":80").unwrap_or(host);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    redirect_to(
        StatusCode::MOVED_PERMANENTLY,
        &format!("https://{host}{path}"),
    )
}

fn redirect_response(
    redirect: &Redirect,
    origin: &Origin<'_>,
    entry: &RouteEntry,
) -> Response<Body> {
    let status = StatusCode::from_u16(redirect.code).unwrap_or(StatusCode::MOVED_PERMANENTLY);
    let mut response = redirect_to(status, &paths::location(redirect, origin));
    headers::apply_edits(response.headers_mut(), &entry.route.headers.response);
    response
}

/// The gateway's answer to a CORS preflight: 200 with the policy's headers.
fn preflight_answer(headers: http::HeaderMap) -> Response<Body> {
    let mut response = Response::new(body::empty());
    *response.headers_mut() = headers;
    response
}

fn redirect_to(status: StatusCode, location: &str) -> Response<Body> {
    let mut response = Response::new(body::empty());
    *response.status_mut() = status;
    if let Ok(location) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

fn direct_response(direct: &DirectResponse, entry: &RouteEntry) -> Response<Body> {
    let mut response = Response::new(full(direct.body.clone()));
    *response.status_mut() = StatusCode::from_u16(direct.status).unwrap_or(StatusCode::OK);
    if !direct.body.is_empty() {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    }
    headers::apply_edits(response.headers_mut(), &entry.route.headers.response);
    response
}
