//! Upstream clusters: endpoints and the traffic policy (load balancer, connection pool,
//! outlier detection, upstream TLS).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::Protocol;

/// An upstream destination: one port of a service, optionally narrowed to a subset.
#[derive(Debug, Clone, Serialize)]
pub struct Cluster {
    /// `outbound|port|subset|host`, its key in [`ResolvedConfig::clusters`].
    pub name: String,
    /// The ServiceEntry host.
    pub host: String,
    /// The ServiceEntry's namespace.
    pub namespace: String,
    /// The service port (endpoints may listen on another).
    pub port: u16,
    /// The port's protocol; HTTP2 and GRPC speak HTTP/2 to the endpoints.
    pub protocol: Protocol,
    /// The DestinationRule subset; `None` for the whole service.
    pub subset: Option<String>,
    /// How the endpoints' addresses are found.
    pub resolution: Resolution,
    /// Endpoints selected by the subset's labels (all, without a subset).
    pub endpoints: Vec<Endpoint>,
    /// Load balancing, limits, outlier detection and TLS.
    pub policy: TrafficPolicy,
}

/// How endpoint addresses are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Resolution {
    /// The original destination, which an edge gateway lacks: no endpoints (503).
    None,
    /// The endpoints' IP addresses.
    Static,
    /// Names resolved through DNS, every address an endpoint; re-resolved as answers expire.
    Dns,
    /// Names resolved through DNS; only the first address is used.
    DnsRoundRobin,
}

/// One upstream endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct Endpoint {
    /// Where the endpoint is.
    pub address: EndpointAddress,
    /// Port to connect to: the endpoint's own for the port name, else the target port.
    pub port: u16,
    /// Relative load-balancing weight.
    pub weight: u32,
    /// Labels that subsets select on.
    pub labels: BTreeMap<String, String>,
    /// `region/zone/subzone`; not used for load balancing.
    pub locality: Option<String>,
}

/// Where an endpoint is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum EndpointAddress {
    /// An IP address.
    Ip(IpAddr),
    /// Resolved through DNS at run time.
    Dns(String),
    /// A unix socket path; gets no traffic yet.
    Unix(PathBuf),
}

/// Traffic policy of a cluster, merged from the DestinationRule layers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TrafficPolicy {
    /// How an endpoint is picked.
    pub load_balancer: LoadBalancer,
    /// Circuit-breaker limits, timeouts and connection reuse.
    pub connection_pool: ConnectionPool,
    /// Passive health checking; `None` ejects no endpoint.
    pub outlier_detection: Option<OutlierDetection>,
    /// TLS to the endpoints (DISABLE unless set, SIMPLE for HTTPS ports).
    pub tls: UpstreamTls,
}

/// Endpoint selection.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LoadBalancer {
    /// Endpoints in turn, by weight.
    RoundRobin,
    /// A random endpoint, by weight.
    Random,
    /// Istio's default.
    #[default]
    LeastRequest,
    /// Istio's PASSTHROUGH; with no original destination, a random endpoint.
    Passthrough,
    /// Rendezvous hashing of a request key, for affinity.
    ConsistentHash(HashKey),
}

/// The key of a consistent-hash load balancer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum HashKey {
    /// The value of this request header.
    Header(String),
    /// The value of this cookie, which is read, never generated.
    Cookie {
        /// The cookie's name.
        name: String,
        /// Istio's cookie `path`; unused.
        path: Option<String>,
        /// Istio's cookie `ttl`; unused.
        ttl: Option<Duration>,
    },
    /// The client's IP address.
    SourceIp,
    /// The value of this query parameter.
    QueryParameter(String),
}

/// Connection-pool limits with Istio's defaults.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConnectionPool {
    /// Max connections to the cluster ([`UNLIMITED`] by default); HTTP/1.1 only.
    pub max_connections: u32,
    /// TCP connect timeout (10s by default).
    pub connect_timeout: Duration,
    /// SO_KEEPALIVE on upstream connections; `None` sets none.
    pub tcp_keepalive: Option<TcpKeepalive>,
    /// Connections older than this are not reused; `None` means no limit.
    pub max_connection_duration: Option<Duration>,
    /// `tcp.idleTimeout` (1h by default); see [`ConnectionPool::idle_timeout`].
    pub tcp_idle_timeout: Duration,
    /// Requests that may wait for an HTTP/1.1 connection; more are refused with 503.
    pub http1_max_pending_requests: u32,
    /// Max active requests to the cluster, either protocol.
    pub http2_max_requests: u32,
    /// 0 means unlimited.
    pub max_requests_per_connection: u32,
    /// Max retries outstanding to the cluster at once.
    pub max_retries: u32,
    /// `http.idleTimeout` (1h by default); see [`ConnectionPool::idle_timeout`].
    pub http_idle_timeout: Duration,
    /// Speak HTTP/2 to the endpoints (`h2UpgradePolicy: UPGRADE`).
    pub h2_upgrade: bool,
    /// Speak HTTP/2 upstream only for requests that came over HTTP/2.
    pub use_client_protocol: bool,
    /// Streams per upstream HTTP/2 connection (2^31-1 by default).
    pub max_concurrent_streams: u32,
    /// HTTP/2 PINGs: how often, and how long to wait for the answer before closing.
    pub http2_keep_alive: Option<(Duration, Duration)>,
}

/// Istio's "no limit".
pub const UNLIMITED: u32 = u32::MAX;

impl ConnectionPool {
    /// How long an idle upstream connection is kept: Istio applies `tcp.idleTimeout` to
    /// HTTP connections too, beside `http.idleTimeout`.
    pub fn idle_timeout(&self) -> Duration {
        self.http_idle_timeout.min(self.tcp_idle_timeout)
    }
}

impl Default for ConnectionPool {
    fn default() -> Self {
        Self {
            max_connections: UNLIMITED,
            connect_timeout: Duration::from_secs(10),
            tcp_keepalive: None,
            max_connection_duration: None,
            tcp_idle_timeout: Duration::from_secs(3600),
            http1_max_pending_requests: UNLIMITED,
            http2_max_requests: UNLIMITED,
            max_requests_per_connection: 0,
            max_retries: UNLIMITED,
            http_idle_timeout: Duration::from_secs(3600),
            h2_upgrade: false,
            use_client_protocol: false,
            http2_keep_alive: None,
            max_concurrent_streams: i32::MAX as u32,
        }
    }
}

/// SO_KEEPALIVE settings; unset parts use the OS defaults.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TcpKeepalive {
    /// Unanswered probes before the connection drops; `None`: the OS default.
    pub probes: Option<u32>,
    /// Idle time before the first probe; `None`: the OS default.
    pub time: Option<Duration>,
    /// Time between probes; `None`: the OS default.
    pub interval: Option<Duration>,
}

/// Outlier detection with Istio's defaults.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutlierDetection {
    /// 0 disables.
    pub consecutive_5xx_errors: u32,
    /// 0 disables.
    pub consecutive_gateway_errors: u32,
    /// Count connect failures and timeouts apart from 5xx.
    pub split_external_local_origin_errors: bool,
    /// Local failures in a row that eject an endpoint, when split (5 by default).
    pub consecutive_local_origin_failures: u32,
    /// Istio's sweep interval (10s); unused, as endpoints are ejected as they fail.
    pub interval: Duration,
    /// Ejection time, multiplied by the times the endpoint has been ejected (30s by default).
    pub base_ejection_time: Duration,
    /// Most of the cluster's endpoints that may be ejected at once, 0–100 (10 by default).
    pub max_ejection_percent: u32,
    /// Below this share of healthy endpoints, ejections are ignored, 0–100 (0 by default).
    pub min_health_percent: u32,
}

impl Default for OutlierDetection {
    fn default() -> Self {
        Self {
            consecutive_5xx_errors: 5,
            consecutive_gateway_errors: 0,
            split_external_local_origin_errors: false,
            consecutive_local_origin_failures: 5,
            interval: Duration::from_secs(10),
            base_ejection_time: Duration::from_secs(30),
            max_ejection_percent: 10,
            min_health_percent: 0,
        }
    }
}

/// Upstream TLS origination.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UpstreamTls {
    /// Whether and how TLS is originated.
    pub mode: UpstreamTlsMode,
    /// PEM client certificate chain, for MUTUAL.
    pub client_certificate: Option<PathBuf>,
    /// PEM key of the client certificate, for MUTUAL.
    pub private_key: Option<PathBuf>,
    /// PEM bundle that verifies the server; `None` uses the OS roots.
    pub ca_certificates: Option<PathBuf>,
    /// PEM list of revoked server certificates; `None` checks none.
    pub ca_crl: Option<PathBuf>,
    /// The server certificate must carry one of these SANs; empty checks the SNI name instead.
    pub subject_alt_names: Vec<String>,
    /// SNI to send; `None` sends the request's host.
    pub sni: Option<String>,
    /// Skip verifying the server certificate.
    pub insecure_skip_verify: bool,
}

/// Upstream TLS mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UpstreamTlsMode {
    /// Plain text.
    #[default]
    Disable,
    /// TLS, verifying the server.
    Simple,
    /// TLS with a client certificate.
    Mutual,
}
