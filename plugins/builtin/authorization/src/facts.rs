//! What the policies are checked against: the request's attributes, as Istio names them.

use std::net::IpAddr;

use portcullis_sdk::request;

/// A request's attributes.
pub struct Facts {
    /// `request.method`.
    pub method: String,
    /// The host the request is for, lowercase, without a port.
    pub host: String,
    /// The path, without the query.
    pub path: String,
    /// `destination.port`: the gateway port it arrived on.
    pub port: u16,
    /// `source.ip` (and `remote.ip`): the client's address.
    pub source_ip: Option<IpAddr>,
    /// `source.principal`: the verified client certificate's SPIFFE identity, without
    /// `spiffe://` (`cluster.local/ns/default/sa/app`).
    pub principal: Option<String>,
    /// `connection.sni`.
    pub sni: Option<String>,
    /// Request headers, by lowercase name.
    pub header: Headers,
    /// `request.auth.principal`: the verified JWT's `<iss>/<sub>`.
    pub request_principal: Option<String>,
    /// The verified claims' values, by path.
    pub claim: Claims,
}

/// A request's header values, by lowercase name.
pub type Headers = Box<dyn Fn(&str) -> Option<String>>;

/// A request's verified claim values, by path (`["a", "b"]`: `b` inside `a`).
pub type Claims = Box<dyn Fn(&[String]) -> Vec<String>>;

impl Facts {
    /// The attributes of the request in progress.
    pub fn of_request() -> Self {
        let tls = request::tls();
        let principal = tls.as_ref().and_then(|t| t.peer.as_ref()).and_then(|peer| {
            peer.subject_alt_names
                .iter()
                .find_map(|san| san.strip_prefix("spiffe://").map(str::to_string))
        });
        let path = request::path();
        let path = path
            .split_once('?')
            .map_or(path.as_str(), |(p, _)| p)
            .to_string();
        Self {
            method: request::method(),
            host: host_of(&request::authority()),
            path,
            port: request::port(),
            source_ip: request::client_address().parse().ok(),
            principal,
            sni: tls.and_then(|t| t.server_name),
            header: Box::new(request::header),
            request_principal: request::principal(),
            claim: Box::new(|path| request::claim(path).unwrap_or_default()),
        }
    }

    /// `source.namespace`: the namespace in the principal (`…/ns/<namespace>/…`).
    pub fn namespace(&self) -> Option<&str> {
        let principal = self.principal.as_deref()?;
        let (_, rest) = principal.split_once("/ns/")?;
        Some(rest.split('/').next().unwrap_or(rest))
    }
}

/// `authority` without its port, lowercase (an IPv6 literal keeps its brackets).
pub fn host_of(authority: &str) -> String {
    let host = match authority.rsplit_once(':') {
        Some((host, port))
            if !host.contains(':')
                || host.ends_with(']') && port.bytes().all(|b| b.is_ascii_digit()) =>
        {
            host
        }
        _ => authority,
    };
    host.to_ascii_lowercase()
}
