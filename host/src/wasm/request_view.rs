//! The request a policy call decides on, as the host functions read it.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::tls::session::TlsSession;

/// The request a policy call decides on.
#[derive(Debug)]
pub struct RequestView {
    /// The request's head.
    pub parts: http::request::Parts,
    /// `http` or `https`.
    pub scheme: &'static str,
    /// The gateway port the request arrived on.
    pub port: u16,
    /// The client's address.
    pub client: SocketAddr,
    /// The client's TLS session, on an HTTPS server.
    pub tls: Option<Arc<TlsSession>>,
}

impl RequestView {
    /// The `Host` header, or the URI's authority (HTTP/2).
    pub fn authority(&self) -> &str {
        self.parts
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| self.parts.uri.authority().map(http::uri::Authority::as_str))
            .unwrap_or("")
    }
}
