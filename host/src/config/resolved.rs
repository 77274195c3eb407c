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
    Http,
    Https,
    Http2,
    Grpc,
    GrpcWeb,
    Tls,
    Tcp,
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
    pub protocol: Protocol,
    /// Connections start with a PROXY protocol header.
    pub proxy_protocol: bool,
    /// Proxies in front trusted for `x-forwarded-for` / `x-forwarded-proto`.
    pub trusted_proxies: u32,
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
    pub address: SocketAddr,
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
    pub tls: Option<ServerTls>,
    /// Index into the listener's route tables.
    pub route_table: usize,
}

/// How a server terminates TLS.
#[derive(Debug, Clone, Serialize)]
pub struct ServerTls {
    pub client_auth: ClientAuth,
    /// Certificate chains and keys (one, or an RSA and an ECDSA pair).
    pub certificates: Vec<CertificateFiles>,
    pub ca_certificates: Option<PathBuf>,
    pub ca_crl: Option<PathBuf>,
    pub subject_alt_names: Vec<String>,
    pub verify_certificate_spki: Vec<String>,
    pub verify_certificate_hash: Vec<String>,
    pub min_version: TlsVersion,
    pub max_version: TlsVersion,
    /// rustls names of the allowed cipher suites; empty means the defaults.
    pub cipher_suites: Vec<String>,
}

/// Whether clients present certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClientAuth {
    None,
    Required,
    Optional,
}

/// TLS versions rustls speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum TlsVersion {
    #[serde(rename = "TLSV1_2")]
    V1_2,
    #[serde(rename = "TLSV1_3")]
    V1_3,
}

/// A PEM certificate chain and its private key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertificateFiles {
    pub certificate_chain: PathBuf,
    pub private_key: PathBuf,
}

/// The virtual hosts of one or more servers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RouteTable {
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
    pub action: RouteAction,
    pub rewrite: Option<Rewrite>,
    /// Covers all attempts; `None` means no timeout.
    pub timeout: Option<Duration>,
    pub retry: RetryPolicy,
    pub fault: Option<Fault>,
    pub mirrors: Vec<Mirror>,
    pub cors: Option<Cors>,
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
    pub name: Option<String>,
    pub uri: Option<StringMatcher>,
    pub scheme: Option<StringMatcher>,
    pub method: Option<StringMatcher>,
    pub authority: Option<StringMatcher>,
    /// Header conditions (names lowercase), including negated `withoutHeaders`.
    pub headers: Vec<HeaderMatcher>,
    /// Query parameter conditions; `None` means "present".
    pub query_params: Vec<(String, Option<StringMatcher>)>,
    pub port: Option<u16>,
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
    Exact(String),
    Prefix(String),
    Regex(String),
}

/// A header condition.
#[derive(Debug, Clone, Serialize)]
pub struct HeaderMatcher {
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
    Forward(Vec<WeightedCluster>),
    Redirect(Redirect),
    DirectResponse(DirectResponse),
}

/// A destination and its relative weight.
#[derive(Debug, Clone, Serialize)]
pub struct WeightedCluster {
    pub cluster: String,
    /// Relative; never 0 (zero-weight destinations are dropped).
    pub weight: u32,
    pub headers: HeaderOps,
}

/// A redirect answered by the gateway.
#[derive(Debug, Clone, Serialize)]
pub struct Redirect {
    pub uri: Option<String>,
    pub prefix_rewrite: Option<String>,
    pub authority: Option<String>,
    pub port: Option<RedirectPort>,
    pub scheme: Option<String>,
    pub code: u16,
}

/// The port of a redirect's Location.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum RedirectPort {
    Fixed(u16),
    FromProtocolDefault,
    FromRequestPort,
}

/// A response answered by the gateway.
#[derive(Debug, Clone, Serialize)]
pub struct DirectResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// A rewrite applied before forwarding.
#[derive(Debug, Clone, Serialize)]
pub struct Rewrite {
    /// Replaces the matched prefix (prefix matches) or the whole path.
    pub uri: Option<String>,
    pub authority: Option<String>,
    /// A regex and its replacement with `\1` groups.
    pub uri_regex: Option<(String, String)>,
}

/// Retry policy with Istio's defaults applied.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetryPolicy {
    /// Retries after the first attempt; 0 disables retries.
    pub attempts: u32,
    pub per_try_timeout: Option<Duration>,
    /// Envoy retry conditions (`connect-failure`, `5xx`, …).
    pub retry_on: Vec<String>,
    pub retriable_status_codes: Vec<u16>,
    pub retry_remote_localities: bool,
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
    pub delay: Option<FaultDelay>,
    pub abort: Option<FaultAbort>,
}

/// An injected delay.
#[derive(Debug, Clone, Serialize)]
pub struct FaultDelay {
    pub fixed_delay: Duration,
    /// Share of requests, 0–100.
    pub percentage: f64,
}

/// An injected abort.
#[derive(Debug, Clone, Serialize)]
pub struct FaultAbort {
    pub status: AbortStatus,
    /// Share of requests, 0–100.
    pub percentage: f64,
}

/// The status an abort answers with.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum AbortStatus {
    Http(u16),
    /// A gRPC status code number.
    Grpc(u8),
}

/// Shadow traffic to a cluster.
#[derive(Debug, Clone, Serialize)]
pub struct Mirror {
    pub cluster: String,
    /// Share of requests, 0–100.
    pub percentage: f64,
}

/// CORS policy.
#[derive(Debug, Clone, Serialize)]
pub struct Cors {
    pub allow_origins: Vec<StringMatcher>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age: Option<Duration>,
    pub allow_credentials: bool,
    /// Forward preflights that match no origin (Istio's default) instead of ignoring CORS.
    pub forward_unmatched_preflights: bool,
}

/// Header edits on the request and the response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HeaderOps {
    pub request: HeaderEdits,
    pub response: HeaderEdits,
}

/// `set` overwrites, `add` appends, `remove` deletes; names are lowercase.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HeaderEdits {
    pub set: Vec<(String, String)>,
    pub add: Vec<(String, String)>,
    pub remove: Vec<String>,
}

/// An upstream destination: one port of a service, optionally narrowed to a subset.
#[derive(Debug, Clone, Serialize)]
pub struct Cluster {
    pub name: String,
    /// The ServiceEntry host.
    pub host: String,
    /// The ServiceEntry's namespace.
    pub namespace: String,
    pub port: u16,
    pub protocol: Protocol,
    pub subset: Option<String>,
    pub resolution: Resolution,
    /// Endpoints selected by the subset's labels (all, without a subset).
    pub endpoints: Vec<Endpoint>,
    pub policy: TrafficPolicy,
}

/// How endpoint addresses are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Resolution {
    None,
    Static,
    Dns,
    DnsRoundRobin,
}

/// One upstream endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct Endpoint {
    pub address: EndpointAddress,
    pub port: u16,
    /// Relative load-balancing weight.
    pub weight: u32,
    pub labels: BTreeMap<String, String>,
    pub locality: Option<String>,
}

/// Where an endpoint is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum EndpointAddress {
    Ip(IpAddr),
    /// Resolved through DNS at run time.
    Dns(String),
    Unix(PathBuf),
}

/// Traffic policy of a cluster, merged from the DestinationRule layers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TrafficPolicy {
    pub load_balancer: LoadBalancer,
    pub connection_pool: ConnectionPool,
    pub outlier_detection: Option<OutlierDetection>,
    pub tls: UpstreamTls,
}

/// Endpoint selection.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LoadBalancer {
    RoundRobin,
    Random,
    /// Istio's default.
    #[default]
    LeastRequest,
    Passthrough,
    ConsistentHash(HashKey),
}

/// The key of a consistent-hash load balancer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum HashKey {
    Header(String),
    Cookie {
        name: String,
        path: Option<String>,
        ttl: Option<Duration>,
    },
    SourceIp,
    QueryParameter(String),
}

/// Connection-pool limits with Istio's defaults.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConnectionPool {
    pub max_connections: u32,
    pub connect_timeout: Duration,
    pub tcp_keepalive: Option<TcpKeepalive>,
    pub max_connection_duration: Option<Duration>,
    pub tcp_idle_timeout: Duration,
    pub http1_max_pending_requests: u32,
    pub http2_max_requests: u32,
    /// 0 means unlimited.
    pub max_requests_per_connection: u32,
    pub max_retries: u32,
    pub http_idle_timeout: Duration,
    pub h2_upgrade: bool,
    pub use_client_protocol: bool,
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
    pub probes: Option<u32>,
    pub time: Option<Duration>,
    pub interval: Option<Duration>,
}

/// Outlier detection with Istio's defaults.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutlierDetection {
    /// 0 disables.
    pub consecutive_5xx_errors: u32,
    /// 0 disables.
    pub consecutive_gateway_errors: u32,
    pub split_external_local_origin_errors: bool,
    pub consecutive_local_origin_failures: u32,
    pub interval: Duration,
    pub base_ejection_time: Duration,
    pub max_ejection_percent: u32,
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
    pub mode: UpstreamTlsMode,
    pub client_certificate: Option<PathBuf>,
    pub private_key: Option<PathBuf>,
    pub ca_certificates: Option<PathBuf>,
    pub ca_crl: Option<PathBuf>,
    pub subject_alt_names: Vec<String>,
    pub sni: Option<String>,
    pub insecure_skip_verify: bool,
}

/// Upstream TLS mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UpstreamTlsMode {
    #[default]
    Disable,
    Simple,
    Mutual,
}

/// A WasmPlugin ready to load.
#[derive(Debug, Clone, Serialize)]
pub struct Plugin {
    /// `namespace/name`.
    pub name: String,
    pub path: PathBuf,
    /// Lowercase hex sha256 the file must have.
    pub sha256: Option<String>,
    #[serde(serialize_with = "debug_string")]
    pub phase: Phase,
    pub priority: i64,
    #[serde(serialize_with = "debug_string")]
    pub fail_strategy: FailStrategy,
    /// `pluginConfig` as JSON.
    pub config: serde_json::Value,
    /// Where it applies; empty means every route.
    pub targets: Vec<PluginTarget>,
    /// Listener ports it applies to; empty means all.
    pub ports: Vec<u16>,
    pub env: Vec<(String, String)>,
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
    VirtualService { name: String, route: Option<String> },
    /// A ServiceEntry host: requests routed to it.
    Service(String),
}

fn debug_string<T: std::fmt::Debug, S: serde::Serializer>(
    value: &T,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{value:?}"))
}
