//! One upstream attempt: the outgoing request's head, sending it to an endpoint, and the
//! response on its way back.

use std::sync::Arc;
use std::time::Duration;

use http::uri::PathAndQuery;
use http::{HeaderValue, Request, Response, Uri, header};
use hyper::body::Incoming;

use super::Downstream;
use super::headers;
use super::paths::{self, Origin};
use crate::config::resolved::{StringMatcher, WeightedCluster};
use crate::runtime::clusters::LiveEndpoint;
use crate::runtime::generation::RouteEntry;
use crate::upstream::h2::H2Client;
use crate::upstream::lease::{self, UpstreamLease};
use crate::upstream::{EndpointPool, PooledConnection};
use crate::wire::body::Body;

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
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    let rewritten = match (&route.rewrite, &entry.uri_regex) {
        (_, Some((regex, replacement))) => {
            let (path, query) = path_and_query
                .as_str()
                .split_once('?')
                .map_or((path_and_query.as_str(), None), |(p, q)| (p, Some(q)));
            let path = regex.replace_all(path, replacement.as_str());
            Some(query.map_or_else(|| path.to_string(), |q| format!("{path}?{q}")))
        }
        (Some(rewrite), None) if rewrite.uri.is_some() => {
            let origin = Origin {
                scheme: downstream.scheme,
                host,
                port: downstream.port,
                path_and_query: path_and_query.as_str(),
                matched_uri,
            };
            Some(origin.replace_path(rewrite.uri.as_deref().unwrap_or("/")))
        }
        _ => None,
    };
    parts.uri = Uri::from(rewritten.map_or(path_and_query, |p| paths::parse_path(&p)));

    let headers = &mut parts.headers;
    headers::remove_hop_by_hop(headers);
    let authority = route.rewrite.as_ref().and_then(|r| r.authority.as_deref());
    if let Some(value) = authority
        .or((!headers.contains_key(header::HOST)).then_some(host))
        .and_then(|h| HeaderValue::from_str(h).ok())
    {
        headers.insert(header::HOST, value);
    }
    let scheme = downstream.client_scheme(headers);
    headers::add_forwarding(headers, downstream.client, scheme);
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

/// Where an attempt goes: a pooled HTTP/1.1 connection, or an HTTP/2 client.
pub enum Upstream<'a> {
    Http1(PooledConnection, &'a Arc<EndpointPool>),
    Http2(&'a H2Client),
}

/// Sends `parts` with `body` to `endpoint`, waiting at most `timeout` for the response head.
pub async fn send(
    upstream: Upstream<'_>,
    endpoint: &LiveEndpoint,
    mut lease: UpstreamLease,
    mut parts: http::request::Parts,
    body: Body,
    timeout: Option<Duration>,
) -> Result<(Response<Incoming>, UpstreamLease), AttemptError> {
    lease.count_in_flight(&endpoint.in_flight);
    let reset = |e: hyper::Error| {
        let reason = format!("{}: {e}", endpoint.address);
        match tls_refused(&e) {
            true => AttemptError::ConnectFailure(reason),
            false => AttemptError::Reset(reason),
        }
    };
    let exchange = async {
        match upstream {
            Upstream::Http1(mut connection, pool) => {
                connection.sender.ready().await.map_err(reset)?;
                let response = connection
                    .sender
                    .send_request(Request::from_parts(parts, body))
                    .await
                    .map_err(reset)?;
                lease.hold(connection, pool.clone());
                Ok(response)
            }
            Upstream::Http2(client) => {
                let path = parts
                    .uri
                    .path_and_query()
                    .cloned()
                    .unwrap_or_else(|| paths::parse_path("/"));
                parts.uri = Uri::builder()
                    .scheme(client.scheme())
                    .authority(endpoint.authority.clone())
                    .path_and_query(path)
                    .build()
                    .map_err(|e| AttemptError::ConnectFailure(e.to_string()))?;
                client
                    .request(Request::from_parts(parts, body))
                    .await
                    .map_err(|e| {
                        let reason = format!("{}: {e}", endpoint.address);
                        if e.is_connect() || tls_refused(&e) {
                            AttemptError::ConnectFailure(reason)
                        } else {
                            AttemptError::Reset(reason)
                        }
                    })
            }
        }
    };
    let response = match timeout {
        Some(timeout) => tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| AttemptError::Timeout)??,
        None => exchange.await?,
    };
    Ok((response, lease))
}

/// Whether `error` is the upstream's TLS alert: a TLS 1.3 server that refuses the client
/// (no or a bad client certificate) says so only after the handshake has completed on the
/// client's side, at the first read. Envoy counts it as a connect failure, as it is: the
/// server never read the request.
fn tls_refused(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        let inner = error
            .downcast_ref::<std::io::Error>()
            .and_then(|e| e.get_ref())
            .map_or(error, |inner| inner as &(dyn std::error::Error + 'static));
        if let Some(rustls::Error::AlertReceived(_)) = inner.downcast_ref::<rustls::Error>() {
            return true;
        }
        cause = error.source();
    }
    false
}

/// The upstream response on its way downstream, with the route's response edits applied.
pub fn respond(
    response: Response<Incoming>,
    lease: UpstreamLease,
    routed: &Routed<'_>,
) -> Response<Body> {
    let (mut parts, body) = response.into_parts();
    headers::remove_hop_by_hop(&mut parts.headers);
    headers::apply_edits(&mut parts.headers, &routed.entry.route.headers.response);
    headers::apply_edits(&mut parts.headers, &routed.destination.headers.response);
    let body = lease::leased(body, lease);
    Response::from_parts(parts, body)
}

/// A copy of a request head, for one attempt (the original stays for retries).
pub fn clone_head(head: &http::request::Parts) -> http::request::Parts {
    let mut request = Request::new(());
    *request.method_mut() = head.method.clone();
    *request.uri_mut() = head.uri.clone();
    *request.version_mut() = head.version;
    *request.headers_mut() = head.headers.clone();
    request.into_parts().0
}
