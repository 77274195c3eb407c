//! `networking.istio.io` DestinationRule.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::common::{Duration, Ignored, PortSelector};

/// DestinationRule spec: policies for traffic to one host, and its subsets.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DestinationRuleSpec {
    /// Istio's `host`: the ServiceEntry host the rule applies to (required).
    pub host: Option<String>,
    /// Istio's `trafficPolicy`: the policy for every port and subset.
    pub traffic_policy: Option<TrafficPolicy>,
    /// Istio's `subsets`: named groups of the host's endpoints.
    #[serde(default)]
    pub subsets: Vec<Subset>,
    /// Mesh-only.
    pub export_to: Option<Ignored>,
    /// Mesh-only.
    pub workload_selector: Option<Ignored>,
    /// Not an Istio field: set when the Gateway API translation made this rule from a
    /// BackendTLSPolicy, whose TLS then takes precedence over the DestinationRules'.
    #[serde(skip)]
    pub from_backend_tls_policy: bool,
}

/// A named group of endpoints selected by labels.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Subset {
    /// Istio's `name`: what route destinations name (required).
    pub name: Option<String>,
    /// Istio's `labels`: endpoint labels that select the subset's members.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Istio's `trafficPolicy`: overrides the top-level policy field by field.
    pub traffic_policy: Option<TrafficPolicy>,
}

/// Traffic policy; `portLevelSettings` override it per port.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrafficPolicy {
    /// Istio's `loadBalancer` (default LEAST_REQUEST).
    pub load_balancer: Option<LoadBalancerSettings>,
    /// Istio's `connectionPool`: circuit-breaker limits and timeouts.
    pub connection_pool: Option<ConnectionPoolSettings>,
    /// Istio's `outlierDetection`: passive health checking (default off).
    pub outlier_detection: Option<OutlierDetection>,
    /// Istio's `tls`: TLS to the upstream (default DISABLE).
    pub tls: Option<ClientTlsSettings>,
    /// Istio's `portLevelSettings`: per-port overrides.
    #[serde(default)]
    pub port_level_settings: Vec<PortTrafficPolicy>,
    /// CONNECT tunnelling (TCP only); not supported.
    pub tunnel: Option<Ignored>,
    /// Istio's `proxyProtocol`: send a PROXY protocol header upstream.
    pub proxy_protocol: Option<ProxyProtocol>,
    /// Istio's `retryBudget`: a bound on concurrent retries.
    pub retry_budget: Option<RetryBudget>,
}

/// Traffic policy for one port.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortTrafficPolicy {
    /// Istio's `port`: the service port these settings apply to (required).
    pub port: Option<PortSelector>,
    /// `loadBalancer` for this port.
    pub load_balancer: Option<LoadBalancerSettings>,
    /// `connectionPool` for this port.
    pub connection_pool: Option<ConnectionPoolSettings>,
    /// `outlierDetection` for this port.
    pub outlier_detection: Option<OutlierDetection>,
    /// `tls` for this port.
    pub tls: Option<ClientTlsSettings>,
}

/// Simple load-balancing algorithms.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SimpleLb {
    /// Unset: LEAST_REQUEST.
    Unspecified,
    /// Deprecated alias of LEAST_REQUEST.
    LeastConn,
    /// A random endpoint.
    Random,
    /// The request's original destination, without load balancing.
    Passthrough,
    /// Endpoints in turn.
    RoundRobin,
    /// The less loaded of two random endpoints (Istio's default).
    LeastRequest,
}

/// Load-balancer settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoadBalancerSettings {
    /// Istio's `simple`: the algorithm (default LEAST_REQUEST).
    pub simple: Option<SimpleLb>,
    /// Istio's `consistentHash`: affinity by a request key.
    pub consistent_hash: Option<ConsistentHashLb>,
    /// Istio's `localityLbSetting`: locality weighting and failover.
    pub locality_lb_setting: Option<Ignored>,
    /// Envoy's zone-aware routing (Istio 1.31).
    pub zone_aware_lb_setting: Option<Ignored>,
    /// Istio's `warmupDurationSecs`: slow-start window (superseded by `warmup`).
    pub warmup_duration_secs: Option<Duration>,
    /// Istio's `warmup`: slow start for new endpoints.
    pub warmup: Option<Warmup>,
}

/// Slow start for new endpoints.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Warmup {
    /// Istio's `duration`: the slow-start window (required).
    pub duration: Option<Duration>,
    /// Istio's `minimumPercent`: starting share of normal traffic, 0–100 (default 10).
    pub minimum_percent: Option<f64>,
    /// Istio's `aggression`: how fast traffic ramps up, at least 1 (default 1.0).
    pub aggression: Option<f64>,
}

/// Hash-based affinity.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsistentHashLb {
    /// Istio's `httpHeaderName`: hash this request header.
    pub http_header_name: Option<String>,
    /// Istio's `httpCookie`: hash this cookie.
    pub http_cookie: Option<HttpCookie>,
    /// Istio's `useSourceIp`: hash the client IP.
    pub use_source_ip: Option<bool>,
    /// Istio's `httpQueryParameterName`: hash this query parameter.
    pub http_query_parameter_name: Option<String>,
    /// Istio's `ringHash`: ring-hash settings (the default algorithm).
    pub ring_hash: Option<RingHash>,
    /// Istio's `maglev`: Maglev settings.
    pub maglev: Option<Maglev>,
    /// Deprecated: use `ringHash.minimumRingSize`.
    pub minimum_ring_size: Option<u64>,
}

/// Cookie used as hash key.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpCookie {
    /// The cookie's name (required).
    pub name: Option<String>,
    /// Path of a generated cookie.
    pub path: Option<String>,
    /// Lifetime of a generated cookie; with it, Istio generates the cookie when absent.
    pub ttl: Option<Duration>,
    /// Extra attributes of a generated cookie.
    #[serde(default)]
    pub attributes: Vec<CookieAttribute>,
}

/// An attribute of a generated affinity cookie.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CookieAttribute {
    /// The attribute's name, such as `SameSite`.
    pub name: Option<String>,
    /// The attribute's value, if any.
    pub value: Option<String>,
}

/// Ring-hash settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RingHash {
    /// Istio's `minimumRingSize` (default 1024).
    pub minimum_ring_size: Option<u64>,
}

/// Maglev settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Maglev {
    /// Istio's `tableSize`: a prime (default 65537).
    pub table_size: Option<u64>,
}

/// Connection-pool limits: the circuit breaker.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionPoolSettings {
    /// Istio's `tcp`: connection-level settings.
    pub tcp: Option<TcpSettings>,
    /// Istio's `http`: request-level settings.
    pub http: Option<HttpSettings>,
}

/// TCP-level limits.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpSettings {
    /// Istio's `tcp.maxConnections`: max connections to the destination (default 2^32-1).
    pub max_connections: Option<i64>,
    /// Istio's `tcp.connectTimeout`: TCP connect timeout (default 10s).
    pub connect_timeout: Option<Duration>,
    /// Istio's `tcp.tcpKeepalive`: SO_KEEPALIVE settings (default: OS settings).
    pub tcp_keepalive: Option<TcpKeepalive>,
    /// Istio's `tcp.maxConnectionDuration`: close connections after this age (default: none).
    pub max_connection_duration: Option<Duration>,
    /// Istio's `tcp.idleTimeout`: close connections idle this long (default 1h).
    pub idle_timeout: Option<Duration>,
}

/// SO_KEEPALIVE settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpKeepalive {
    /// Istio's `probes`: unanswered probes before the connection drops (default: OS, 9 on Linux).
    pub probes: Option<u32>,
    /// Istio's `time`: idle time before the first probe (default: OS, 7200s on Linux).
    pub time: Option<Duration>,
    /// Istio's `interval`: time between probes (default: OS, 75s on Linux).
    pub interval: Option<Duration>,
}

/// Whether to upgrade HTTP/1.1 upstream connections to HTTP/2.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum H2UpgradePolicy {
    /// The mesh-wide default: no upgrade.
    Default,
    /// Keep HTTP/1.1.
    DoNotUpgrade,
    /// Speak HTTP/2 upstream.
    Upgrade,
}

/// HTTP-level limits.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpSettings {
    /// Istio's `http.http1MaxPendingRequests`: requests queued for a connection (default 2^32-1).
    pub http1_max_pending_requests: Option<i64>,
    /// Istio's `http.http2MaxRequests`: max active requests, either protocol (default 2^32-1).
    pub http2_max_requests: Option<i64>,
    /// Istio's `http.maxRequestsPerConnection`: 1 disables keep-alive (default 0: unlimited).
    pub max_requests_per_connection: Option<i64>,
    /// Istio's `http.maxRetries`: max outstanding retries to the destination (default 2^32-1).
    pub max_retries: Option<i64>,
    /// Istio's `http.idleTimeout`: close pooled connections idle this long (default 1h).
    pub idle_timeout: Option<Duration>,
    /// Istio's `http.h2UpgradePolicy`: upgrade upstream HTTP/1.1 to HTTP/2 (default DEFAULT).
    pub h2_upgrade_policy: Option<H2UpgradePolicy>,
    /// Istio's `http.useClientProtocol`: speak the client's HTTP version upstream (default false).
    pub use_client_protocol: Option<bool>,
    /// Istio's `http.maxConcurrentStreams`: streams per HTTP/2 connection (default 2^31-1).
    pub max_concurrent_streams: Option<i64>,
    /// Istio's `http.http2KeepAlive`: HTTP/2 PING keep-alive (default off).
    pub http2_keep_alive: Option<Http2KeepAlive>,
}

/// HTTP/2 PING keep-alive.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Http2KeepAlive {
    /// Istio's `interval`: time between PINGs (required).
    pub interval: Option<Duration>,
    /// Istio's `timeout`: how long to wait for a PING's answer before closing (required).
    pub timeout: Option<Duration>,
}

/// Passive health checking.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutlierDetection {
    /// Istio's `splitExternalLocalOriginErrors`: count local failures (connect errors, timeouts)
    /// apart from 5xx (default false).
    pub split_external_local_origin_errors: Option<bool>,
    /// Istio's `consecutiveLocalOriginFailures`: local failures in a row that eject (default 5).
    pub consecutive_local_origin_failures: Option<i64>,
    /// Istio's `consecutiveGatewayErrors`: 502/503/504s in a row that eject (default: off).
    pub consecutive_gateway_errors: Option<i64>,
    /// Istio's `consecutive5xxErrors`: 5xx responses in a row that eject; 0 disables (default 5).
    pub consecutive5xx_errors: Option<i64>,
    /// Deprecated: use `consecutive5xxErrors`.
    pub consecutive_errors: Option<i64>,
    /// Istio's `interval`: time between ejection sweeps (default 10s).
    pub interval: Option<Duration>,
    /// Istio's `baseEjectionTime`: ejection time, times the number of ejections (default 30s).
    pub base_ejection_time: Option<Duration>,
    /// Istio's `maxEjectionPercent`: most endpoints that may be ejected, 0–100 (default 10).
    pub max_ejection_percent: Option<i64>,
    /// Istio's `minHealthPercent`: below this healthy share, ejection is ignored (default 0).
    pub min_health_percent: Option<i64>,
    /// The statuses that count as errors, instead of 5xx.
    #[serde(default)]
    pub outlier_detection_http_error_codes: Vec<i64>,
}

/// Upstream TLS mode.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClientTlsMode {
    /// Plain text (Istio's default).
    Disable,
    /// TLS, verifying the server.
    Simple,
    /// TLS with a client certificate.
    Mutual,
    /// Mutual TLS with mesh-issued certificates (mesh-only).
    IstioMutual,
}

/// Upstream TLS settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientTlsSettings {
    /// Istio's `tls.mode` (default DISABLE).
    pub mode: Option<ClientTlsMode>,
    /// Istio's `clientCertificate`: path of the PEM client certificate chain (MUTUAL).
    pub client_certificate: Option<String>,
    /// Istio's `privateKey`: path of the client certificate's PEM key (MUTUAL).
    pub private_key: Option<String>,
    /// Istio's `caCertificates`: PEM bundle that verifies the server (default: the OS roots).
    pub ca_certificates: Option<String>,
    /// Istio's `caCrl`: PEM list of revoked server certificates.
    pub ca_crl: Option<String>,
    /// Istio's `credentialName`: a credential folder of `tls.crt`, `tls.key` and optional `ca.crt`.
    pub credential_name: Option<String>,
    /// Istio's `subjectAltNames`: accepted server certificate SANs (default: check the host).
    #[serde(default)]
    pub subject_alt_names: Vec<String>,
    /// Istio's `sni`: the SNI to send (default: the request's host).
    pub sni: Option<String>,
    /// Istio's `insecureSkipVerify`: skip verifying the server certificate (default false).
    pub insecure_skip_verify: Option<bool>,
}

/// PROXY protocol version sent to upstreams.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxyProtocol {
    /// Istio's `version`: V1 or V2.
    pub version: Option<ProxyProtocolVersion>,
}

/// PROXY protocol versions.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum ProxyProtocolVersion {
    /// The text header.
    V1,
    /// The binary header.
    V2,
}

/// Bound on concurrent retries as a share of active requests.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryBudget {
    /// A plain number in Istio (a DoubleValue), not a `Percent` message.
    pub percent: Option<f64>,
    /// Istio's `minRetryConcurrency`: retries always allowed at once (default 3).
    pub min_retry_concurrency: Option<u32>,
    /// Istio's `budgetInterval`: the window the budget is computed over.
    pub budget_interval: Option<Duration>,
}
