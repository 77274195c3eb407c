//! Sending a routed request to its endpoint and streaming the response back.

use http::uri::Scheme;
use http::{HeaderValue, Request, Response, Uri, header};
use hyper::body::Incoming;

use super::Downstream;
use super::body::{self, Body, InFlight, Tracked};
use super::headers;
use super::local_reply::ProxyError;
use super::paths::{self, Origin};
use crate::config::resolved::{StringMatcher, WeightedCluster};
use crate::runtime::clusters::{ClusterState, Endpoint};
use crate::runtime::generation::RouteEntry;

/// A request on its way upstream, with what decided its route.
pub struct Outgoing<'a> {
    pub parts: http::request::Parts,
    pub body: Incoming,
    pub downstream: &'a Downstream,
    pub entry: &'a RouteEntry,
    pub destination: &'a WeightedCluster,
    pub matched_uri: Option<&'a StringMatcher>,
    /// The Host the client asked for.
    pub host: &'a str,
}

/// Forwards to `endpoint` of `cluster`; the response streams back with the route's
/// response header edits applied.
pub async fn forward(
    request: Outgoing<'_>,
    cluster: &ClusterState,
    endpoint: &Endpoint,
) -> Result<Response<Body>, ProxyError> {
    let Outgoing {
        mut parts,
        body,
        downstream,
        entry,
        destination,
        matched_uri,
        host,
    } = request;
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
    parts.uri = Uri::builder()
        .scheme(Scheme::HTTP)
        .authority(endpoint.authority.clone())
        .path_and_query(paths::parse_path(&path_and_query))
        .build()
        .map_err(|e| ProxyError::ConnectFailure(e.to_string()))?;

    let headers = &mut parts.headers;
    headers::remove_hop_by_hop(headers);
    if !headers.contains_key(header::HOST)
        && let Ok(value) = HeaderValue::from_str(host)
    {
        headers.insert(header::HOST, value);
    }
    if let Some(authority) = route.rewrite.as_ref().and_then(|r| r.authority.as_deref())
        && let Ok(value) = HeaderValue::from_str(authority)
    {
        headers.insert(header::HOST, value);
    }
    headers::add_forwarding(headers, downstream.client, downstream.scheme);
    headers::apply_edits(headers, &route.headers.request);
    headers::apply_edits(headers, &destination.headers.request);
    // The upstream connection picks its own protocol version.
    parts.version = http::Version::default();

    let in_flight = InFlight::start(&endpoint.in_flight);
    let upstream = Request::from_parts(parts, body::boxed(body));
    let response = cluster
        .client(downstream.worker)
        .request(upstream)
        .await
        .map_err(|e| {
            if e.is_connect() {
                ProxyError::ConnectFailure(format!("{}: {e}", endpoint.address))
            } else {
                ProxyError::UpstreamReset(format!("{}: {e}", endpoint.address))
            }
        })?;

    let (mut parts, body) = response.into_parts();
    headers::remove_hop_by_hop(&mut parts.headers);
    headers::apply_edits(&mut parts.headers, &route.headers.response);
    headers::apply_edits(&mut parts.headers, &destination.headers.response);
    let body = body::boxed(Tracked::new(body::boxed(body), in_flight));
    Ok(Response::from_parts(parts, body))
}
