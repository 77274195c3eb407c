//! Header handling a proxy owes its peers: hop-by-hop removal, forwarding headers,
//! request ids, and the routes' header edits.

use std::net::SocketAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::config::resolved::HeaderEdits;

/// `x-request-id`, generated when a request has none.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// `x-forwarded-for`, which the gateway appends the client to.
pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// The headers that describe one connection (RFC 9110 §7.6.1), besides `te` and those
/// `connection` names.
static HOP_BY_HOP: [&HeaderName; 8] = [
    &header::CONNECTION,
    &KEEP_ALIVE,
    &PROXY_CONNECTION,
    &header::TRANSFER_ENCODING,
    &header::UPGRADE,
    &header::TRAILER,
    &header::PROXY_AUTHENTICATE,
    &header::PROXY_AUTHORIZATION,
];

/// Removes the headers that describe one connection (RFC 9110 §7.6.1), including those
/// the `Connection` header names. Most heads carry none: one pass over the names finds
/// that, where a removal per name would hash each.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let any = headers
        .keys()
        .any(|name| name == header::TE || HOP_BY_HOP.contains(&name));
    if !any {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    // `te: trailers` is the one TE value that may travel (gRPC needs it).
    let trailers_only = headers
        .get(header::TE)
        .is_some_and(|te| te.as_bytes().eq_ignore_ascii_case(b"trailers"));
    if !trailers_only {
        headers.remove(header::TE);
    }
}

/// Appends the client to `x-forwarded-for` and sets `x-forwarded-proto` to how the client
/// reached the gateway (`scheme`, which already honours a trusted proxy's header), as
/// Envoy does at the edge.
pub fn add_forwarding(headers: &mut HeaderMap, client: SocketAddr, scheme: &'static str) {
    let client_ip = client.ip().to_string();
    let forwarded_for = match headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(existing) if !existing.trim().is_empty() => format!("{existing}, {client_ip}"),
        _ => client_ip,
    };
    if let Ok(value) = HeaderValue::from_str(&forwarded_for) {
        headers.insert(X_FORWARDED_FOR.clone(), value);
    }
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(scheme));
}

/// Gives the request an `x-request-id` if it has none, as Envoy does at the edge.
pub fn ensure_request_id(headers: &mut HeaderMap) {
    if !headers.contains_key(&X_REQUEST_ID) {
        let id = uuid::Uuid::new_v4().hyphenated().to_string();
        headers.insert(
            X_REQUEST_ID.clone(),
            HeaderValue::from_str(&id).expect("a uuid is a valid header value"),
        );
    }
}

/// Applies a route's `set`, `add` and `remove` edits, in that order.
pub fn apply_edits(headers: &mut HeaderMap, edits: &HeaderEdits) {
    for (name, value) in &edits.set {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(name, value);
        }
    }
    for (name, value) in &edits.add {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
    }
    for name in &edits.remove {
        headers.remove(name.as_str());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_connection_named_headers_and_keeps_te_trailers() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        headers.insert("x-secret", HeaderValue::from_static("1"));
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
        headers.insert("x-kept", HeaderValue::from_static("1"));
        remove_hop_by_hop(&mut headers);
        assert!(!headers.contains_key("x-secret"));
        assert!(!headers.contains_key(header::CONNECTION));
        assert!(headers.contains_key(header::TE));
        assert!(headers.contains_key("x-kept"));
    }

    #[test]
    fn appends_to_forwarded_for() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.7"));
        add_forwarding(&mut headers, "127.0.0.1:5000".parse().unwrap(), "http");
        assert_eq!(headers["x-forwarded-for"], "203.0.113.7, 127.0.0.1");
        assert_eq!(headers["x-forwarded-proto"], "http");
        ensure_request_id(&mut headers);
        assert_eq!(headers["x-request-id"].len(), 36);
    }
}
