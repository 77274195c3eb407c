//! The resolved config: plain data with every Istio default applied and every reference
//! checked. Nothing past this layer sees YAML.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

pub use super::model::wasm_plugin::{FailStrategy, Phase};

/// A complete, valid configuration.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ResolvedConfig {
    /// One per bound address and port.
    pub listeners: Vec<Listener>,
    /// Upstream destinations by name (`outbound|port|subset|host`, as Envoy names them).
    pub clusters: BTreeMap<String, Cluster>,
    /// WasmPlugins, in no particular order; chains are ordered by phase and priority.
    pub plugins: Vec<Plugin>,
}

/// The protocol of a server or service port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING-KEBAB-CASE")]
pub enum Protocol {
    /// `HTTP`: plain HTTP/1.1.
    Http,
    /// `HTTPS`: HTTP over TLS.
    Https,
    /// `HTTP2`: HTTP/2 (spoken upstream as such).
    Http2,
    /// `GRPC`: gRPC over HTTP/2 (spoken upstream as such).
    Grpc,
    /// `GRPC-WEB`: gRPC-Web, routed as HTTP.
    GrpcWeb,
    /// `TLS`: TLS routed by SNI; not routed as HTTP.
    Tls,
    /// `TCP`: opaque TCP; not routed as HTTP.
    Tcp,
    /// `MONGO`: MongoDB; not routed as HTTP.
    Mongo,
}

impl Protocol {
    /// Parses Istio's protocol names, case-insensitively.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name.to_ascii_uppercase().as_str() {
            "HTTP" => Self::Http,
            "HTTPS" => Self::Https,
            "HTTP2" => Self::Http2,
            "GRPC" => Self::Grpc,
            "GRPC-WEB" => Self::GrpcWeb,
            "TLS" => Self::Tls,
            "TCP" => Self::Tcp,
            "MONGO" => Self::Mongo,
            _ => return None,
        })
    }

    /// Whether HTTP requests are routed on this protocol.
    pub fn is_http(self) -> bool {
        matches!(
            self,
            Self::Http | Self::Https | Self::Http2 | Self::Grpc | Self::GrpcWeb
        )
    }

    /// Whether upstream connections should speak HTTP/2.
    pub fn is_http2(self) -> bool {
        matches!(self, Self::Http2 | Self::Grpc)
    }
}

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
    /// TLS termination; `None` for a plain-text server.
    pub tls: Option<ServerTls>,
    /// Index into the listener's route tables.
    pub route_table: usize,
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

/// The virtual hosts of one or more servers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RouteTable {
    /// The virtual hosts; a request goes to the one whose domain best matches its Host.
    pub virtual_hosts: Vec<VirtualHost>,
}

/// Routes for a set of domains.
#[derive(Debug, Clone, Serialize)]
pub struct VirtualHost {
    /// Exact names, `*.suffix` wildcards, or `*`.
    pub domains: Vec<String>,
    /// Answer plain-HTTP requests with a 301 to https.
    pub require_tls: bool,
    /// In order; the first match wins.
    pub routes: Vec<Route>,
}

/// One HTTP route.
#[derive(Debug, Clone, Serialize)]
pub struct Route {
    /// The route's name, or `<virtual service>.<index>`.
    pub name: String,
    /// `namespace/name` of the VirtualService.
    pub virtual_service: String,
    /// Match blocks, ORed; empty matches everything.
    pub matches: Vec<RouteMatch>,
    /// Forward, redirect or answer directly.
    pub action: RouteAction,
    /// Path and authority rewrite before forwarding; `None` rewrites nothing.
    pub rewrite: Option<Rewrite>,
    /// Covers all attempts; `None` means no timeout.
    pub timeout: Option<Duration>,
    /// Retry policy; Istio's default when the route sets no `retries`.
    pub retry: RetryPolicy,
    /// Fault injection; `None` injects none.
    pub fault: Option<Fault>,
    /// Clusters that get a copy of the request; empty mirrors nothing.
    pub mirrors: Vec<Mirror>,
    /// CORS policy; `None` leaves CORS to the upstream.
    pub cors: Option<Cors>,
    /// Header edits for every destination of the route.
    pub headers: HeaderOps,
}

impl Route {
    /// Whether the route matches every request.
    pub fn is_catch_all(&self) -> bool {
        self.matches.is_empty() || self.matches.iter().any(RouteMatch::is_catch_all)
    }
}

/// One match block; every condition must hold.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RouteMatch {
    /// The block's name, for logs.
    pub name: Option<String>,
    /// Condition on the path, without the query.
    pub uri: Option<StringMatcher>,
    /// Condition on the scheme (`http` or `https`).
    pub scheme: Option<StringMatcher>,
    /// Condition on the method.
    pub method: Option<StringMatcher>,
    /// Condition on the Host (`:authority`).
    pub authority: Option<StringMatcher>,
    /// Header conditions (names lowercase), including negated `withoutHeaders`.
    pub headers: Vec<HeaderMatcher>,
    /// Query parameter conditions; `None` means "present".
    pub query_params: Vec<(String, Option<StringMatcher>)>,
    /// The gateway port the request must arrive on; `None` means any.
    pub port: Option<u16>,
    /// Exact and prefix `uri` conditions ignore ASCII case.
    pub ignore_uri_case: bool,
}

impl RouteMatch {
    /// Whether the block matches every request (no condition, prefix `/` or regex `.*`).
    pub fn is_catch_all(&self) -> bool {
        let uri_all = match &self.uri {
            None => true,
            Some(StringMatcher::Prefix(p)) => p == "/",
            Some(StringMatcher::Regex(r)) => r == ".*",
            Some(StringMatcher::Exact(_)) => false,
        };
        uri_all
            && self.scheme.is_none()
            && self.method.is_none()
            && self.authority.is_none()
            && self.headers.is_empty()
            && self.query_params.is_empty()
            && self.port.is_none()
    }
}

/// A string condition. Regexes are RE2 syntax and must match the whole value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum StringMatcher {
    /// The whole value equals this.
    Exact(String),
    /// The value starts with this (a plain string prefix).
    Prefix(String),
    /// This regex matches the whole value.
    Regex(String),
}

/// A header condition.
#[derive(Debug, Clone, Serialize)]
pub struct HeaderMatcher {
    /// Lowercase header name.
    pub name: String,
    /// `None` means "present".
    pub value: Option<StringMatcher>,
    /// From `withoutHeaders`: the condition must not hold.
    pub invert: bool,
}

/// What a route does with a matching request.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum RouteAction {
    /// Forward to one of these clusters, picked by weight.
    Forward(Vec<WeightedCluster>),
    /// Answer with a redirect.
    Redirect(Redirect),
    /// Answer with a fixed response.
    DirectResponse(DirectResponse),
}

/// A destination and its relative weight.
#[derive(Debug, Clone, Serialize)]
pub struct WeightedCluster {
    /// Name of the cluster, a key of [`ResolvedConfig::clusters`].
    pub cluster: String,
    /// Relative; never 0 (zero-weight destinations are dropped).
    pub weight: u32,
    /// Header edits for requests sent to this destination.
    pub headers: HeaderOps,
}

/// A redirect answered by the gateway.
#[derive(Debug, Clone, Serialize)]
pub struct Redirect {
    /// Replaces the whole path; the query stays unless this has one.
    pub uri: Option<String>,
    /// Replaces the matched prefix of the path.
    pub prefix_rewrite: Option<String>,
    /// Replaces the host; `None` keeps the request's.
    pub authority: Option<String>,
    /// The Location's port; `None` keeps the request's unless the scheme or host changes.
    pub port: Option<RedirectPort>,
    /// Replaces the scheme; `None` keeps the request's.
    pub scheme: Option<String>,
    /// The 3xx status (301 unless set).
    pub code: u16,
}

/// The port of a redirect's Location.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum RedirectPort {
    /// This port.
    Fixed(u16),
    /// The scheme's default port, left out of the Location.
    FromProtocolDefault,
    /// The gateway port the request arrived on.
    FromRequestPort,
}

/// A response answered by the gateway.
#[derive(Debug, Clone, Serialize)]
pub struct DirectResponse {
    /// The status, 200–599.
    pub status: u16,
    /// The body; empty when unset.
    pub body: Vec<u8>,
}

/// A rewrite applied before forwarding.
#[derive(Debug, Clone, Serialize)]
pub struct Rewrite {
    /// Replaces the matched prefix (prefix matches) or the whole path.
    pub uri: Option<String>,
    /// Replaces the Host (`:authority`); `None` keeps it.
    pub authority: Option<String>,
    /// A regex and its replacement with `\1` groups.
    pub uri_regex: Option<(String, String)>,
}

/// Retry policy with Istio's defaults applied.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetryPolicy {
    /// Retries after the first attempt; 0 disables retries.
    pub attempts: u32,
    /// Timeout of each attempt; `None` means only the route timeout applies.
    pub per_try_timeout: Option<Duration>,
    /// Envoy retry conditions (`connect-failure`, `5xx`, …).
    pub retry_on: Vec<String>,
    /// Statuses retried under `retriable-status-codes` (none by default).
    pub retriable_status_codes: Vec<u16>,
    /// Retry in other localities; no effect, as endpoints have no localities here.
    pub retry_remote_localities: bool,
    /// Retries avoid endpoints already tried (true by default).
    pub ignore_previous_hosts: bool,
    /// Base of the jittered exponential back-off.
    pub backoff_base: Duration,
}

impl Default for RetryPolicy {
    /// Istio's policy when a route sets no `retries`.
    fn default() -> Self {
        Self {
            attempts: 2,
            per_try_timeout: None,
            retry_on: DEFAULT_RETRY_ON.iter().map(ToString::to_string).collect(),
            retriable_status_codes: Vec::new(),
            retry_remote_localities: false,
            ignore_previous_hosts: true,
            backoff_base: Duration::from_millis(25),
        }
    }
}

/// Istio's default `retryOn`.
pub const DEFAULT_RETRY_ON: &[&str] = &[
    "connect-failure",
    "refused-stream",
    "unavailable",
    "cancelled",
    "retriable-status-codes",
];

/// Fault injection; each part sampled on its own.
#[derive(Debug, Clone, Serialize)]
pub struct Fault {
    /// Delay before forwarding; `None` delays nothing.
    pub delay: Option<FaultDelay>,
    /// Error answered instead of forwarding; `None` aborts nothing.
    pub abort: Option<FaultAbort>,
}

/// An injected delay.
#[derive(Debug, Clone, Serialize)]
pub struct FaultDelay {
    /// How long the request is held.
    pub fixed_delay: Duration,
    /// Share of requests, 0–100.
    pub percentage: f64,
}

/// An injected abort.
#[derive(Debug, Clone, Serialize)]
pub struct FaultAbort {
    /// What the gateway answers with.
    pub status: AbortStatus,
    /// Share of requests, 0–100.
    pub percentage: f64,
}

/// The status an abort answers with.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum AbortStatus {
    /// An HTTP status, 200–599.
    Http(u16),
    /// A gRPC status code number.
    Grpc(u8),
}

/// Shadow traffic to a cluster.
#[derive(Debug, Clone, Serialize)]
pub struct Mirror {
    /// Name of the cluster that gets the copies.
    pub cluster: String,
    /// Share of requests, 0–100.
    pub percentage: f64,
}

/// CORS policy.
#[derive(Debug, Clone, Serialize)]
pub struct Cors {
    /// Allowed origins; the matching Origin is echoed back.
    pub allow_origins: Vec<StringMatcher>,
    /// Sent as `access-control-allow-methods`.
    pub allow_methods: Vec<String>,
    /// Sent as `access-control-allow-headers` (lowercase names).
    pub allow_headers: Vec<String>,
    /// Sent as `access-control-expose-headers` (lowercase names).
    pub expose_headers: Vec<String>,
    /// Sent as `access-control-max-age`, in seconds; `None` sends none.
    pub max_age: Option<Duration>,
    /// Send `access-control-allow-credentials: true`.
    pub allow_credentials: bool,
    /// Forward preflights that match no origin (Istio's default) instead of ignoring CORS.
    pub forward_unmatched_preflights: bool,
}

/// Header edits on the request and the response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HeaderOps {
    /// Edits of the request sent upstream.
    pub request: HeaderEdits,
    /// Edits of the response sent downstream.
    pub response: HeaderEdits,
}

/// `set` overwrites, `add` appends, `remove` deletes; names are lowercase.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HeaderEdits {
    /// Headers to overwrite, with their values.
    pub set: Vec<(String, String)>,
    /// Headers to append, with their values.
    pub add: Vec<(String, String)>,
    /// Names of headers to delete.
    pub remove: Vec<String>,
}

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

/// A WasmPlugin ready to load.
#[derive(Debug, Clone, Serialize)]
pub struct Plugin {
    /// `namespace/name`.
    pub name: String,
    /// The component file, from the `file://` URL.
    pub path: PathBuf,
    /// Lowercase hex sha256 the file must have.
    pub sha256: Option<String>,
    /// Where in the chain it runs (UNSPECIFIED_PHASE unless set).
    #[serde(serialize_with = "debug_string")]
    pub phase: Phase,
    /// Order within the phase, highest first (0 unless set).
    pub priority: i64,
    /// What a plugin failure does to requests (FAIL_CLOSE unless set).
    #[serde(serialize_with = "debug_string")]
    pub fail_strategy: FailStrategy,
    /// `pluginConfig` as JSON.
    pub config: serde_json::Value,
    /// Where it applies; empty means every route.
    pub targets: Vec<PluginTarget>,
    /// Listener ports it applies to; empty means all.
    pub ports: Vec<u16>,
    /// Environment variables, as names and values.
    pub env: Vec<(String, String)>,
    /// Sandbox limits of its instances.
    pub limits: PluginLimits,
}

/// The sandbox limits of a plugin's instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PluginLimits {
    /// Linear memory per instance, in bytes.
    pub memory: usize,
    /// Time one call may run.
    pub timeout: Duration,
}

impl PluginLimits {
    /// The most memory an instance may be given (the engine reserves this much).
    pub const MAX_MEMORY: usize = 256 << 20;
    /// The longest a call may be given.
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(10);
}

impl Default for PluginLimits {
    fn default() -> Self {
        Self {
            memory: 64 << 20,
            timeout: Duration::from_millis(100),
        }
    }
}

/// One attachment point of a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PluginTarget {
    /// `namespace/name` of a Gateway.
    Gateway(String),
    /// `namespace/name` of a VirtualService, and optionally one route name in it.
    VirtualService {
        /// `namespace/name` of the VirtualService.
        name: String,
        /// One route's name in it; `None` means every route.
        route: Option<String>,
    },
    /// A ServiceEntry host: requests routed to it.
    Service(String),
}

fn debug_string<T: std::fmt::Debug, S: serde::Serializer>(
    value: &T,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{value:?}"))
}
