//! One upstream attempt: the outgoing request's head, sending it to an endpoint, and the
//! response on its way back.

use std::time::Duration;

use http::uri::Scheme;
use http::{HeaderValue, Request, Response, Uri, header};
use hyper::body::Incoming;

use super::Downstream;
use super::body::{self, Body, InFlight, Tracked};
use super::headers;
use super::paths::{self, Origin};
use crate::config::resolved::{StringMatcher, WeightedCluster};
use crate::runtime::clusters::{ClusterState, Endpoint};
use crate::runtime::generation::RouteEntry;

/// What decided a request's route, which shapes what goes upstream.
pub struct Routed<'a> {
    pub downstream: &'a Downstream,
    pub entry: &'a RouteEntry,
    pub destination: &'a WeightedCluster,
    pub matched_uri: Option<&'a StringMatcher>,
    /// The Host the client asked for.
    pub host: &'a str,
}

/// The head of the request to send upstream: rewritten path and Host, hop-by-hop headers
/// removed, forwarding headers and the route's edits applied. The URI carries only the
/// path; [`send`] adds the endpoint.
pub fn prepare(mut parts: http::request::Parts, routed: &Routed<'_>) -> http::request::Parts {
    let Routed {
        downstream,
        entry,
        destination,
        matched_uri,
        host,
    } = *routed;
    let route = &entry.route;
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let path_and_query = match (&route.rewrite, &entry.uri_regex) {
        (_, Some((regex, replacement))) => {
            let (path, query) = path_and_query
                .split_once('?')
                .map_or((path_and_query.as_str(), None), |(p, q)| (p, Some(q)));
            let path = regex.replace_all(path, replacement.as_str());
            query.map_or_else(|| path.to_string(), |q| format!("{path}?{q}"))
        }
        (Some(rewrite), None) if rewrite.uri.is_some() => {
            let origin = Origin {
                scheme: downstream.scheme,
                host,
                port: downstream.port,
                path_and_query: &path_and_query,
                matched_uri,
            };
            origin.replace_path(rewrite.uri.as_deref().unwrap_or("/"))
        }
        _ => path_and_query,
    };
    parts.uri = Uri::from(paths::parse_path(&path_and_query));

    let headers = &mut parts.headers;
    headers::remove_hop_by_hop(headers);
    let authority = route.rewrite.as_ref().and_then(|r| r.authority.as_deref());
    if let Some(value) = authority
        .or((!headers.contains_key(header::HOST)).then_some(host))
        .and_then(|h| HeaderValue::from_str(h).ok())
    {
        headers.insert(header::HOST, value);
    }
    headers::add_forwarding(headers, downstream.client, downstream.scheme);
    headers::apply_edits(headers, &route.headers.request);
    headers::apply_edits(headers, &destination.headers.request);
    // The upstream connection picks its own protocol version.
    parts.version = http::Version::default();
    parts
}

/// How an attempt failed before a response.
#[derive(Debug)]
pub enum AttemptError {
    ConnectFailure(String),
    Reset(String),
    Timeout,
}

/// Sends `parts` with `body` to `endpoint`, waiting at most `timeout` for the response
/// head. The endpoint counts the request in flight until the response body ends.
pub async fn send(
    cluster: &ClusterState,
    endpoint: &Endpoint,
    worker: usize,
    mut parts: http::request::Parts,
    body: Body,
    timeout: Option<Duration>,
) -> Result<(Response<Incoming>, InFlight), AttemptError> {
    let path = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| paths::parse_path("/"));
    parts.uri = Uri::builder()
        .scheme(Scheme::HTTP)
        .authority(endpoint.authority.clone())
        .path_and_query(path)
        .build()
        .map_err(|e| AttemptError::ConnectFailure(e.to_string()))?;
    let in_flight = InFlight::start(&endpoint.in_flight);
    let request = cluster
        .client(worker)
        .request(Request::from_parts(parts, body));
    let result = match timeout {
        Some(timeout) => tokio::time::timeout(timeout, request)
            .await
            .map_err(|_| AttemptError::Timeout)?,
        None => request.await,
    };
    result.map(|response| (response, in_flight)).map_err(|e| {
        let reason = format!("{}: {e}", endpoint.address);
        if e.is_connect() {
            AttemptError::ConnectFailure(reason)
        } else {
            AttemptError::Reset(reason)
        }
    })
}

/// The upstream response on its way downstream, with the route's response edits applied.
pub fn respond(
    response: Response<Incoming>,
    in_flight: InFlight,
    routed: &Routed<'_>,
) -> Response<Body> {
    let (mut parts, body) = response.into_parts();
    headers::remove_hop_by_hop(&mut parts.headers);
    headers::apply_edits(&mut parts.headers, &routed.entry.route.headers.response);
    headers::apply_edits(&mut parts.headers, &routed.destination.headers.response);
    let body = body::boxed(Tracked::new(body::boxed(body), in_flight));
    Response::from_parts(parts, body)
}
