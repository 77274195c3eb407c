//! The sockets the gateway listens on, the servers sharing each, and their TLS.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Serialize;

use super::{Protocol, RouteTable};

/// A socket the gateway listens on, and the servers sharing it.
#[derive(Debug, Clone, Serialize)]
pub struct Listener {
    /// Address to bind; port 0 picks a free port.
    pub address: SocketAddr,
    /// The protocol of its first server.
    pub protocol: Protocol,
    /// Connections start with a PROXY protocol header.
    pub proxy_protocol: bool,
    /// Proxies in front trusted for `x-forwarded-for` / `x-forwarded-proto`.
    pub trusted_proxies: u32,
    /// The Gateway servers sharing the socket, in config order.
    pub servers: Vec<Server>,
    /// Route tables; plain-HTTP servers share table 0, each TLS server has its own.
    pub route_tables: Vec<RouteTable>,
}

impl Listener {
    /// What identifies the listener across reloads: its address, and for a port-0
    /// listener (whose port is picked at bind time) its first server's name as well.
    pub fn id(&self) -> ListenerId {
        ListenerId {
            address: self.address,
            server: (self.address.port() == 0)
                .then(|| self.servers.first().map(|s| s.name.clone()))
                .flatten(),
        }
    }

    /// Whether the listener is `id` (without building its id).
    pub fn is(&self, id: &ListenerId) -> bool {
        self.address == id.address
            && (self.address.port() != 0
                || self.servers.first().map(|s| s.name.as_str()) == id.server.as_deref())
    }
}

/// A listener's identity across reloads ([`Listener::id`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListenerId {
    /// The configured address (port 0 until bound).
    pub address: SocketAddr,
    /// The first server's name for a port-0 listener; `None` otherwise.
    pub server: Option<String>,
}

impl std::fmt::Display for ListenerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.server {
            Some(server) => write!(f, "{} ({server})", self.address),
            None => write!(f, "{}", self.address),
        }
    }
}

/// One Gateway server.
#[derive(Debug, Clone, Serialize)]
pub struct Server {
    /// The server's name, or `<gateway>/<port name>`.
    pub name: String,
    /// `namespace/name` of the Gateway.
    pub gateway: String,
    /// Hosts (SNI and Host) the server accepts; `*` accepts all.
    pub hosts: Vec<String>,
    /// TLS termination; `None` for a plain-text or passthrough server.
    pub tls: Option<ServerTls>,
    /// What the server does with a connection.
    pub kind: ServerKind,
    /// Index into the listener's route tables.
    pub route_table: usize,
}

/// What a server does with a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServerKind {
    /// Serves HTTP (over TLS when it terminates it): routes are `http` routes.
    #[default]
    Http,
    /// TLS PASSTHROUGH: the connection is forwarded as bytes, routed by the SNI of its
    /// ClientHello (read, then replayed upstream); routes are `tls` routes.
    Passthrough,
    /// TCP: the connection is forwarded as bytes; routes are `tcp` routes.
    Tcp,
}

impl ServerKind {
    /// Whether connections are forwarded as bytes rather than served as HTTP.
    pub fn forwards_bytes(self) -> bool {
        self != Self::Http
    }
}

/// How a server terminates TLS.
#[derive(Debug, Clone, Serialize)]
pub struct ServerTls {
    /// Whether client certificates are asked for, and required.
    pub client_auth: ClientAuth,
    /// Certificate chains and keys (one, or an RSA and an ECDSA pair).
    pub certificates: Vec<CertificateFiles>,
    /// PEM bundle that verifies client certificates; `None` without client auth.
    pub ca_certificates: Option<PathBuf>,
    /// PEM list of revoked client certificates; `None` checks none.
    pub ca_crl: Option<PathBuf>,
    /// A client certificate must carry one of these SANs; empty pins none.
    pub subject_alt_names: Vec<String>,
    /// Base64 SHA-256 SPKI digests; when these or the hashes are set, a client certificate
    /// must match one of either.
    pub verify_certificate_spki: Vec<String>,
    /// Hex SHA-256 certificate digests (colons allowed), checked with the SPKI digests.
    pub verify_certificate_hash: Vec<String>,
    /// Lowest TLS version offered (1.2 unless set).
    pub min_version: TlsVersion,
    /// Highest TLS version offered (1.3 unless set).
    pub max_version: TlsVersion,
    /// rustls names of the allowed cipher suites; empty means the defaults.
    pub cipher_suites: Vec<String>,
}

/// Whether clients present certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClientAuth {
    /// No client certificate is asked for (SIMPLE).
    None,
    /// A valid client certificate is required (MUTUAL).
    Required,
    /// A client certificate is verified if one is sent (OPTIONAL_MUTUAL).
    Optional,
}

/// TLS versions rustls speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum TlsVersion {
    /// TLS 1.2.
    #[serde(rename = "TLSV1_2")]
    V1_2,
    /// TLS 1.3.
    #[serde(rename = "TLSV1_3")]
    V1_3,
}

/// A PEM certificate chain and its private key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertificateFiles {
    /// PEM certificate chain, leaf first.
    pub certificate_chain: PathBuf,
    /// PEM private key of the leaf certificate.
    pub private_key: PathBuf,
}
