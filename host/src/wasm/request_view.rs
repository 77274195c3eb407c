//! The request a policy call decides on, as the host functions read it.

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{Map, Value};

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
    /// Who the request is verified to come from, once a policy has said.
    pub identity: Option<Arc<Identity>>,
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

/// Who a request is verified to come from: a request principal and its claims.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// `<iss>/<sub>` for a JWT.
    pub principal: String,
    /// The verified claims.
    pub claims: Map<String, Value>,
}

impl Identity {
    /// The identity `principal` with `claims`, which must be a JSON object.
    pub fn new(principal: String, claims: &str) -> Result<Self, String> {
        match serde_json::from_str(claims) {
            Ok(Value::Object(claims)) => Ok(Self { principal, claims }),
            Ok(_) => Err("claims must be a JSON object".into()),
            Err(e) => Err(format!("claims are not JSON: {e}")),
        }
    }

    /// The values of the claim at `path`: a string, number or boolean as text, a list as
    /// its elements of those kinds.
    pub fn claim(&self, path: &[String]) -> Option<Vec<String>> {
        let (first, rest) = path.split_first()?;
        let mut value = self.claims.get(first)?;
        for key in rest {
            value = value.get(key)?;
        }
        match value {
            Value::Array(items) => Some(items.iter().filter_map(scalar).collect()),
            other => scalar(other).map(|s| vec![s]),
        }
    }
}

/// A string as itself, a number or boolean as text.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}
