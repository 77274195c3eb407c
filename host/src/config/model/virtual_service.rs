//! `networking.istio.io` VirtualService.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::common::{Duration, Ignored, Percent, PortSelector, StringMatch};

/// VirtualService spec: the HTTP routes for a set of hosts.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VirtualServiceSpec {
    /// Istio's `hosts`: hosts the routes serve, within a bound Gateway server's hosts.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Istio's `gateways`: `[namespace/]name` of the Gateways the routes bind to.
    #[serde(default)]
    pub gateways: Vec<String>,
    /// Istio's `http`: HTTP routes, in order; the first match wins.
    #[serde(default)]
    pub http: Vec<HttpRoute>,
    /// Istio's `tls`: SNI-routed routes for TLS PASSTHROUGH servers, in order.
    pub tls: Option<Vec<TlsRoute>>,
    /// Istio's `tcp`: routes for TCP servers, in order.
    pub tcp: Option<Vec<TcpRoute>>,
    /// Mesh-only visibility.
    pub export_to: Option<Ignored>,
}

/// A TLS route (typed so that fields Istio does not have are errors).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsRoute {
    /// Istio's `match`: conditions, ORed.
    #[serde(rename = "match", default)]
    pub matches: Vec<TlsMatch>,
    /// Istio's `route`: weighted destinations.
    #[serde(default)]
    pub route: Vec<L4Destination>,
}

/// A TLS route's match.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsMatch {
    /// Istio's `sniHosts`: SNI names to match (required).
    #[serde(default)]
    pub sni_hosts: Vec<String>,
    /// Istio's `destinationSubnets`: destination IPs or subnets.
    pub destination_subnets: Option<Ignored>,
    /// Istio's `port`: the port being addressed.
    pub port: Option<u32>,
    /// Istio's `sourceLabels` (mesh-only).
    pub source_labels: Option<Ignored>,
    /// Istio's `gateways`: Gateways the match applies to.
    pub gateways: Option<Ignored>,
    /// Istio's `sourceNamespace` (mesh-only).
    pub source_namespace: Option<Ignored>,
}

/// A TCP route.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpRoute {
    /// Istio's `match`: conditions, ORed.
    #[serde(rename = "match", default)]
    pub matches: Vec<L4Match>,
    /// Istio's `route`: weighted destinations.
    #[serde(default)]
    pub route: Vec<L4Destination>,
}

/// A TCP route's match.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct L4Match {
    /// Istio's `destinationSubnets`: destination IPs or subnets.
    pub destination_subnets: Option<Ignored>,
    /// Istio's `port`: the port being addressed.
    pub port: Option<u32>,
    /// Istio's `sourceSubnet`: the client's IP subnet.
    pub source_subnet: Option<String>,
    /// Istio's `sourceLabels` (mesh-only).
    pub source_labels: Option<Ignored>,
    /// Istio's `gateways`: Gateways the match applies to.
    pub gateways: Option<Ignored>,
    /// Istio's `sourceNamespace` (mesh-only).
    pub source_namespace: Option<Ignored>,
}

/// A weighted destination of a TLS or TCP route.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct L4Destination {
    /// Istio's `destination`: host, subset and port (required).
    pub destination: Option<Destination>,
    /// Istio's `weight`: relative share of traffic.
    pub weight: Option<i64>,
}

/// One HTTP route.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRoute {
    /// Istio's `name`: the route's name, for logs (default `<virtual service>.<index>`).
    pub name: Option<String>,
    /// Istio's `match`: match blocks, ORed (empty: every request).
    #[serde(default, rename = "match")]
    pub matches: Vec<HttpMatchRequest>,
    /// Istio's `route`: weighted destinations to forward to.
    #[serde(default)]
    pub route: Vec<HttpRouteDestination>,
    /// Istio's `redirect`: answer with a redirect instead of forwarding.
    pub redirect: Option<HttpRedirect>,
    /// Istio's `directResponse`: answer with a fixed response instead of forwarding.
    pub direct_response: Option<HttpDirectResponse>,
    /// Istio's `delegate`: take the routes from another VirtualService.
    pub delegate: Option<Delegate>,
    /// Istio's `rewrite`: path and authority rewrites before forwarding.
    pub rewrite: Option<HttpRewrite>,
    /// Istio's `timeout`: whole-request timeout, retries included (default: none).
    pub timeout: Option<Duration>,
    /// Istio's `retries` (unset: 2 attempts with Istio's default `retryOn`).
    pub retries: Option<HttpRetry>,
    /// Istio's `fault`: delays and aborts to inject.
    pub fault: Option<HttpFaultInjection>,
    /// Istio's `mirror`: a destination that gets a copy of each request.
    pub mirror: Option<Destination>,
    /// Istio's `mirrors`: mirror destinations, each with its percentage.
    #[serde(default)]
    pub mirrors: Vec<HttpMirrorPolicy>,
    /// Istio's `mirrorPercentage`: share of requests `mirror` copies (default 100).
    pub mirror_percentage: Option<Percent>,
    /// Deprecated integer percentage.
    pub mirror_percent: Option<u32>,
    /// Istio's `corsPolicy`.
    pub cors_policy: Option<CorsPolicy>,
    /// Istio's `headers`: request and response header edits.
    pub headers: Option<Headers>,
    /// Not an Istio field: the Gateway API precedence of a route translated from an
    /// HTTPRoute or GRPCRoute, which orders it among the translated routes on its host.
    #[serde(skip)]
    pub rank: Option<super::gateway_api::RouteRank>,
}

/// Conditions of one match block (all ANDed).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpMatchRequest {
    /// Istio's `name`: the match block's name, for logs.
    pub name: Option<String>,
    /// Istio's `uri`: condition on the path.
    pub uri: Option<StringMatch>,
    /// Istio's `scheme`: condition on the URI scheme.
    pub scheme: Option<StringMatch>,
    /// Istio's `method`: condition on the HTTP method.
    pub method: Option<StringMatch>,
    /// Istio's `authority`: condition on the Host (`:authority`).
    pub authority: Option<StringMatch>,
    /// Istio's `headers`: conditions by lowercase header name; `{}` means present.
    #[serde(default)]
    pub headers: BTreeMap<String, StringMatch>,
    /// Istio's `port`: the gateway port the request must arrive on.
    pub port: Option<u32>,
    /// Istio's `queryParams`: conditions by query parameter name.
    #[serde(default)]
    pub query_params: BTreeMap<String, StringMatch>,
    /// Istio's `ignoreUriCase`: exact and prefix `uri` matches ignore case (default false).
    #[serde(default)]
    pub ignore_uri_case: bool,
    /// Istio's `withoutHeaders`: header conditions that must not hold.
    #[serde(default)]
    pub without_headers: BTreeMap<String, StringMatch>,
    /// Restricts the block to requests arriving through these gateways.
    #[serde(default)]
    pub gateways: Vec<String>,
    /// Istio's `statPrefix`: stats prefix for requests this block matches.
    pub stat_prefix: Option<String>,
    /// Mesh-only.
    pub source_labels: Option<Ignored>,
    /// Mesh-only.
    pub source_namespace: Option<Ignored>,
}

/// A destination: a ServiceEntry host, a DestinationRule subset and a port.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Destination {
    /// Istio's `host`: a ServiceEntry host (required).
    pub host: Option<String>,
    /// Istio's `subset`: a subset a DestinationRule defines for the host.
    pub subset: Option<String>,
    /// Istio's `port`: the service port (required when the service has several).
    pub port: Option<PortSelector>,
}

/// A weighted destination of a route.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteDestination {
    /// Istio's `destination` (required).
    pub destination: Option<Destination>,
    /// Istio's `weight`: relative share, weight / sum of weights (0 drops the destination).
    pub weight: Option<i64>,
    /// Istio's `headers`: header edits for this destination only.
    pub headers: Option<Headers>,
}

/// Header operations on requests and responses.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Headers {
    /// Edits of the request sent upstream.
    pub request: Option<HeaderOperations>,
    /// Edits of the response sent downstream.
    pub response: Option<HeaderOperations>,
}

/// `set` overwrites, `add` appends, `remove` deletes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderOperations {
    /// Headers to overwrite.
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    /// Headers to append.
    #[serde(default)]
    pub add: BTreeMap<String, String>,
    /// Names of headers to delete.
    #[serde(default)]
    pub remove: Vec<String>,
}

/// How a redirect derives its port.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DerivePort {
    /// The scheme's default port: 80 for http, 443 for https.
    FromProtocolDefault,
    /// The port the request arrived on.
    FromRequestPort,
}

/// An HTTP redirect answered by the gateway.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRedirect {
    /// Istio's `uri`: replaces the whole path.
    pub uri: Option<String>,
    /// Istio's `prefixRewrite`: replaces the matched prefix (needs a prefix match).
    pub prefix_rewrite: Option<String>,
    /// Istio's `authority`: replaces the host.
    pub authority: Option<String>,
    /// Istio's `port`: the port of the new location.
    pub port: Option<u32>,
    /// Istio's `derivePort`: take the port from the scheme or the request instead.
    pub derive_port: Option<DerivePort>,
    /// Istio's `scheme`: replaces the scheme.
    pub scheme: Option<String>,
    /// Istio's `redirectCode`: a 3xx status (default 301).
    pub redirect_code: Option<u32>,
}

/// A response answered by the gateway itself.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpDirectResponse {
    /// Istio's `status`: the response status, 200–599 (required).
    pub status: Option<u32>,
    /// Istio's `body` (default: empty).
    pub body: Option<HttpBody>,
}

/// Body of a direct response: a string or base64 bytes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpBody {
    /// The body as text.
    pub string: Option<String>,
    /// The body as base64-encoded bytes.
    pub bytes: Option<String>,
}

/// Delegation of routes to another VirtualService.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Delegate {
    /// Name of the VirtualService that holds the routes.
    pub name: Option<String>,
    /// Its namespace (default: the delegating VirtualService's).
    pub namespace: Option<String>,
}

/// Rewrite of the request before forwarding.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRewrite {
    /// Istio's `uri`: replaces the matched prefix (prefix matches) or the whole path.
    pub uri: Option<String>,
    /// Istio's `authority`: replaces the Host (`:authority`).
    pub authority: Option<String>,
    /// Istio's `uriRegexRewrite`: a regex rewrite of the path.
    pub uri_regex_rewrite: Option<RegexRewrite>,
}

/// A regex path rewrite with `\1`-style groups.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegexRewrite {
    /// Istio's `match`: the RE2 regex to replace.
    #[serde(rename = "match")]
    pub pattern: Option<String>,
    /// Istio's `rewrite`: the replacement, with `\1`-style groups.
    pub rewrite: Option<String>,
}

/// Retry policy.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRetry {
    /// Istio's `retries.attempts`: how many times to retry; 0 or unset disables (default 2 when
    /// a route has no `retries`).
    pub attempts: Option<i64>,
    /// Istio's `perTryTimeout`: timeout of each attempt (default: the route timeout).
    pub per_try_timeout: Option<Duration>,
    /// Istio's `retryOn`: comma-separated Envoy retry conditions and status codes (default
    /// `connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes`).
    pub retry_on: Option<String>,
    /// Istio's `retryRemoteLocalities`: retry in other localities (default false).
    pub retry_remote_localities: Option<bool>,
    /// Istio's `retryIgnorePreviousHosts`: retry on a different host (default true).
    pub retry_ignore_previous_hosts: Option<bool>,
    /// Istio's `backoff`: base of the jittered exponential back-off (default 25ms).
    pub backoff: Option<Duration>,
}

/// Fault injection.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpFaultInjection {
    /// Istio's `delay`: delay some requests (sampled apart from `abort`).
    pub delay: Option<Delay>,
    /// Istio's `abort`: answer some requests with an error (sampled apart from `delay`).
    pub abort: Option<Abort>,
}

/// Injected delay.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Delay {
    /// Istio's `fixedDelay`: how long to delay (required).
    pub fixed_delay: Option<Duration>,
    /// Istio's `exponentialDelay`: rejected, as Istio does.
    pub exponential_delay: Option<Duration>,
    /// Istio's `percentage`: share of requests delayed (unset: none).
    pub percentage: Option<Percent>,
    /// Deprecated integer percentage.
    pub percent: Option<i64>,
}

/// Injected abort.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Abort {
    /// Istio's `httpStatus`: the status to answer with, 200–599.
    pub http_status: Option<i64>,
    /// Istio's `grpcStatus`: a gRPC status name such as `UNAVAILABLE`.
    pub grpc_status: Option<String>,
    /// Istio's `http2Error`: unsupported by Istio; rejected.
    pub http2_error: Option<String>,
    /// Istio's `percentage`: share of requests aborted (unset: none).
    pub percentage: Option<Percent>,
}

/// One mirror target.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpMirrorPolicy {
    /// Istio's `destination`: where the copies go (required).
    pub destination: Option<Destination>,
    /// Istio's `percentage`: share of requests copied (default 100).
    pub percentage: Option<Percent>,
}

/// What to do with a preflight request that matches no allowed origin.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UnmatchedPreflights {
    /// Unset: FORWARD.
    #[serde(alias = "UNSPECIFIED")]
    UnspecifiedUnmatchedPreflights,
    /// Forward the preflight upstream (Istio's default).
    Forward,
    /// Answer the preflight at the gateway, without CORS headers.
    Ignore,
}

/// CORS policy.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CorsPolicy {
    /// Deprecated exact origins.
    #[serde(default)]
    pub allow_origin: Vec<String>,
    /// Istio's `allowOrigins`: allowed origins; the matching Origin is echoed back.
    #[serde(default)]
    pub allow_origins: Vec<StringMatch>,
    /// Istio's `allowMethods`: `access-control-allow-methods`.
    #[serde(default)]
    pub allow_methods: Vec<String>,
    /// Istio's `allowHeaders`: `access-control-allow-headers`.
    #[serde(default)]
    pub allow_headers: Vec<String>,
    /// Istio's `exposeHeaders`: `access-control-expose-headers`.
    #[serde(default)]
    pub expose_headers: Vec<String>,
    /// Istio's `maxAge`: how long a preflight's answer may be cached.
    pub max_age: Option<Duration>,
    /// Istio's `allowCredentials`: `access-control-allow-credentials` (default false).
    pub allow_credentials: Option<bool>,
    /// Istio's `unmatchedPreflights` (default FORWARD).
    pub unmatched_preflights: Option<UnmatchedPreflights>,
}
