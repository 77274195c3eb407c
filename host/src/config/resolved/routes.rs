//! Route tables: virtual hosts, routes, their matches and actions, and the per-route
//! policies (retry, fault, mirror, CORS, header edits).

use std::time::Duration;

use serde::Serialize;

pub use crate::config::model::gateway_api::RouteRank;

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
    /// `namespace/name` of each Gateway whose server put the host here: its filters apply.
    pub gateways: Vec<String>,
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
    /// The Gateway API precedence of a route translated from an HTTPRoute or GRPCRoute:
    /// such routes on one host are ordered by it, across VirtualServices.
    #[serde(skip)]
    pub rank: Option<RouteRank>,
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
