//! `gateway.networking.k8s.io` (the Kubernetes Gateway API, v1): GatewayClass, Gateway and
//! HTTPRoute, typed as the API defines them. Fields Portcullis does not serve yet are typed
//! as [`Ignored`] and warned about when the resources are translated.

use serde::Deserialize;

use super::common::Ignored;

/// A ReferenceGrant: which kinds of other namespaces may refer to objects of this one.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReferenceGrantSpec {
    /// Who may refer.
    #[serde(default)]
    pub from: Vec<ObjectRef>,
    /// To what (a `name` narrows it to one object).
    #[serde(default)]
    pub to: Vec<ObjectRef>,
}

/// A BackendTLSPolicy: TLS to the Services it targets, and how their certificates are
/// checked.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendTlsPolicySpec {
    /// The Services (of the policy's namespace).
    #[serde(default)]
    pub target_refs: Vec<ObjectRef>,
    /// How the backends' certificates are checked (required).
    pub validation: Option<BackendTlsValidation>,
    /// Implementation-specific options; not read.
    pub options: Option<Ignored>,
}

/// How a backend's certificate is checked.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendTlsValidation {
    /// ConfigMaps holding the CA certificates (`ca.crt`).
    #[serde(default)]
    pub ca_certificate_refs: Vec<ObjectRef>,
    /// `System`: the platform's trusted CAs.
    pub well_known_ca_certificates: Option<String>,
    /// The SNI sent and the name verified (required).
    pub hostname: Option<String>,
    /// Names verified instead of `hostname`.
    #[serde(default)]
    pub subject_alt_names: Vec<SubjectAltName>,
}

/// A name a backend's certificate must carry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubjectAltName {
    /// `Hostname` or `URI`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The DNS name.
    pub hostname: Option<String>,
    /// The URI.
    pub uri: Option<String>,
}

/// A GatewayClass: which controller serves the Gateways of the class.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayClassSpec {
    /// The controller; Portcullis serves every class it reads.
    pub controller_name: Option<String>,
    /// Controller-specific parameters; not read.
    pub parameters_ref: Option<Ignored>,
    /// Free text.
    pub description: Option<String>,
}

/// A Gateway: listeners.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewaySpec {
    /// The GatewayClass (required).
    pub gateway_class_name: Option<String>,
    /// The listeners (required).
    #[serde(default)]
    pub listeners: Vec<Listener>,
    /// Addresses to serve on: an `IPAddress` is the address the listeners bind.
    #[serde(default)]
    pub addresses: Vec<Address>,
    /// Infrastructure labels and annotations; not read.
    pub infrastructure: Option<Ignored>,
    /// Gateway-wide TLS settings; not served yet.
    pub tls: Option<Ignored>,
    /// ListenerSets allowed to attach; not served yet.
    pub allowed_listeners: Option<Ignored>,
    /// Upstream TLS for the Gateway's own connections; not served yet.
    pub backend_tls: Option<Ignored>,
}

/// A Gateway address.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Address {
    /// `IPAddress` (default) or `Hostname`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The address.
    pub value: Option<String>,
}

/// A listener: a port, a protocol and a hostname.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Listener {
    /// Its name, unique in the Gateway (required).
    pub name: Option<String>,
    /// The host it serves; a leading `*.` is a wildcard (default: every host).
    pub hostname: Option<String>,
    /// The port (required).
    pub port: Option<u32>,
    /// `HTTP`, `HTTPS`, `TLS` (Passthrough) or `TCP` (UDP is not served).
    pub protocol: Option<String>,
    /// TLS termination for HTTPS.
    pub tls: Option<ListenerTls>,
    /// Which routes may attach.
    pub allowed_routes: Option<AllowedRoutes>,
}

/// A listener's TLS settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListenerTls {
    /// `Terminate` (default; HTTPS) or `Passthrough` (TLS).
    pub mode: Option<String>,
    /// The Secrets holding the certificate and key.
    #[serde(default)]
    pub certificate_refs: Vec<ObjectRef>,
    /// Implementation-specific options; not read.
    pub options: Option<Ignored>,
    /// Client certificate validation; not served yet.
    pub frontend_validation: Option<Ignored>,
}

/// Which routes may attach to a listener.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AllowedRoutes {
    /// From which namespaces.
    pub namespaces: Option<RouteNamespaces>,
    /// Which route kinds (default: those of the listener's protocol).
    pub kinds: Option<Vec<RouteGroupKind>>,
}

/// A route kind a listener takes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteGroupKind {
    /// Its API group (default the Gateway API's).
    pub group: Option<String>,
    /// The kind (required).
    pub kind: Option<String>,
}

/// The namespaces routes may attach from.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteNamespaces {
    /// `Same` (default), `All` or `Selector`.
    pub from: Option<String>,
    /// The namespaces of `Selector`, by their labels.
    pub selector: Option<LabelSelector>,
}

/// A Kubernetes label selector: every `matchLabels` pair and every expression must hold.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelector {
    /// Labels that must have these values.
    #[serde(default)]
    pub match_labels: std::collections::BTreeMap<String, String>,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist` conditions.
    #[serde(default)]
    pub match_expressions: Vec<LabelExpression>,
}

/// One label condition of a selector.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelExpression {
    /// The label.
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    pub operator: String,
    /// The values of `In` and `NotIn`.
    #[serde(default)]
    pub values: Vec<String>,
}

impl LabelSelector {
    /// Whether `labels` satisfy the selector.
    pub fn matches(&self, labels: &std::collections::BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|e| {
                let value = labels.get(&e.key);
                match e.operator.as_str() {
                    "In" => value.is_some_and(|v| e.values.contains(v)),
                    "NotIn" => value.is_none_or(|v| !e.values.contains(v)),
                    "Exists" => value.is_some(),
                    "DoesNotExist" => value.is_none(),
                    _ => false,
                }
            })
    }
}

/// A Kubernetes Namespace: only its labels mean anything here (to listener selectors).
#[derive(Debug, Clone, Default)]
pub struct NamespaceSpec {
    /// `metadata.labels`.
    pub labels: std::collections::BTreeMap<String, String>,
}

/// A reference to another object.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectRef {
    /// The object's API group (`""`: the core group).
    pub group: Option<String>,
    /// The object's kind.
    pub kind: Option<String>,
    /// The object's name (required).
    pub name: Option<String>,
    /// The object's namespace (default: the referrer's).
    pub namespace: Option<String>,
    /// A section of the object (a listener of a Gateway).
    pub section_name: Option<String>,
    /// A port (of a Gateway's listeners, or of a Service).
    pub port: Option<u32>,
}

/// An HTTPRoute: rules for the hosts of the listeners it attaches to.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteSpec {
    /// The Gateways (and listeners) it attaches to.
    #[serde(default)]
    pub parent_refs: Vec<ObjectRef>,
    /// The hosts it serves (default: every host of the listeners).
    #[serde(default)]
    pub hostnames: Vec<String>,
    /// The rules.
    #[serde(default)]
    pub rules: Vec<HttpRouteRule>,
}

/// A TLSRoute: TLS connections passed through by their SNI.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsRouteSpec {
    /// The Gateways (and listeners) it attaches to.
    #[serde(default)]
    pub parent_refs: Vec<ObjectRef>,
    /// The SNI names it takes (default: every name of the listeners).
    #[serde(default)]
    pub hostnames: Vec<String>,
    /// The rules.
    #[serde(default)]
    pub rules: Vec<StreamRouteRule>,
}

/// A TCPRoute: every TCP connection to the listeners it attaches to.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpRouteSpec {
    /// The Gateways (and listeners) it attaches to.
    #[serde(default)]
    pub parent_refs: Vec<ObjectRef>,
    /// The rules.
    #[serde(default)]
    pub rules: Vec<StreamRouteRule>,
}

/// A TLSRoute or TCPRoute rule: where connections go.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StreamRouteRule {
    /// The rule's name.
    pub name: Option<String>,
    /// The weighted backends.
    #[serde(default)]
    pub backend_refs: Vec<BackendRef>,
}

/// A weighted backend of a TLSRoute or TCPRoute: a Service.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendRef {
    /// The backend's API group (`""`: the core group, a Service).
    pub group: Option<String>,
    /// The backend's kind (default `Service`).
    pub kind: Option<String>,
    /// The Service's name (required).
    pub name: Option<String>,
    /// The Service's namespace (default: the route's).
    pub namespace: Option<String>,
    /// The Service port.
    pub port: Option<u32>,
    /// Relative weight (default 1; 0: no traffic).
    pub weight: Option<u32>,
}

impl BackendRef {
    /// The backend as an HTTPRoute's, without filters.
    pub fn as_http(&self) -> HttpBackendRef {
        HttpBackendRef {
            group: self.group.clone(),
            kind: self.kind.clone(),
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            port: self.port,
            weight: self.weight,
            filters: Vec::new(),
        }
    }
}

/// A GRPCRoute: gRPC rules, matched on service and method.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcRouteSpec {
    /// The Gateways (and listeners) it attaches to.
    #[serde(default)]
    pub parent_refs: Vec<ObjectRef>,
    /// The hosts it serves (default: every host of the listeners).
    #[serde(default)]
    pub hostnames: Vec<String>,
    /// The rules.
    #[serde(default)]
    pub rules: Vec<GrpcRouteRule>,
}

/// A gRPC rule.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcRouteRule {
    /// The rule's name.
    pub name: Option<String>,
    /// Conditions, ORed (default: every request).
    #[serde(default)]
    pub matches: Vec<GrpcRouteMatch>,
    /// Filters applied to matching requests.
    #[serde(default)]
    pub filters: Vec<HttpRouteFilter>,
    /// Weighted backends.
    #[serde(default)]
    pub backend_refs: Vec<HttpBackendRef>,
    /// Session persistence; not served yet.
    pub session_persistence: Option<Ignored>,
}

/// One gRPC match: its conditions are ANDed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcRouteMatch {
    /// The service and method.
    pub method: Option<GrpcMethodMatch>,
    /// Header conditions.
    #[serde(default)]
    pub headers: Vec<ValueMatch>,
}

/// A gRPC service and method condition.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcMethodMatch {
    /// `Exact` (default) or `RegularExpression`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The fully qualified service, e.g. `grpc.health.v1.Health`.
    pub service: Option<String>,
    /// The method, e.g. `Check`.
    pub method: Option<String>,
}

/// A rule: matches, filters and backends.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteRule {
    /// The rule's name.
    pub name: Option<String>,
    /// Conditions, ORed (default: a path prefix `/`).
    #[serde(default)]
    pub matches: Vec<HttpRouteMatch>,
    /// Filters applied to matching requests.
    #[serde(default)]
    pub filters: Vec<HttpRouteFilter>,
    /// Weighted backends.
    #[serde(default)]
    pub backend_refs: Vec<HttpBackendRef>,
    /// Request and backend timeouts.
    pub timeouts: Option<HttpRouteTimeouts>,
    /// Retries (experimental).
    pub retry: Option<HttpRouteRetry>,
    /// Session persistence (experimental); not served yet.
    pub session_persistence: Option<Ignored>,
}

/// A rule's retries: connection errors, and the listed statuses.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteRetry {
    /// Statuses retried, 400–599.
    #[serde(default)]
    pub codes: Vec<u16>,
    /// Retries after the first attempt (default 2, Istio's; 0 disables).
    pub attempts: Option<u32>,
    /// The base wait between attempts (a GEP-2257 duration).
    pub backoff: Option<String>,
}

/// A rule's timeouts (GEP-2257 durations such as `10s` or `1m30s`; `0s` disables).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteTimeouts {
    /// The whole request, from the gateway's view.
    pub request: Option<String>,
    /// Each request to a backend.
    pub backend_request: Option<String>,
}

/// One match: its conditions are ANDed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteMatch {
    /// The path condition (default: prefix `/`).
    pub path: Option<PathMatch>,
    /// Header conditions.
    #[serde(default)]
    pub headers: Vec<ValueMatch>,
    /// Query parameter conditions.
    #[serde(default)]
    pub query_params: Vec<ValueMatch>,
    /// The method.
    pub method: Option<String>,
}

/// A path condition.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PathMatch {
    /// `Exact`, `PathPrefix` (default) or `RegularExpression`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The path (default `/`).
    pub value: Option<String>,
}

/// A header or query parameter condition.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValueMatch {
    /// `Exact` (default) or `RegularExpression`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The header or parameter name (required).
    pub name: Option<String>,
    /// The value (required).
    pub value: Option<String>,
}

/// A filter: its `type` says which of the other fields it uses.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteFilter {
    /// The filter type (required).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// `RequestHeaderModifier`.
    pub request_header_modifier: Option<HeaderModifier>,
    /// `ResponseHeaderModifier`.
    pub response_header_modifier: Option<HeaderModifier>,
    /// `RequestRedirect`.
    pub request_redirect: Option<RequestRedirect>,
    /// `URLRewrite`.
    pub url_rewrite: Option<UrlRewrite>,
    /// `RequestMirror`.
    pub request_mirror: Option<RequestMirror>,
    /// `CORS`.
    pub cors: Option<Cors>,
    /// `ExtensionRef`: a WasmPlugin (group `extensions.istio.io`) to run on the rule.
    pub extension_ref: Option<ObjectRef>,
    /// `ExternalAuth`; not served yet.
    pub external_auth: Option<Ignored>,
}

/// Header edits: `set` overwrites, `add` appends, `remove` deletes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderModifier {
    /// Headers to overwrite.
    #[serde(default)]
    pub set: Vec<HttpHeader>,
    /// Headers to append.
    #[serde(default)]
    pub add: Vec<HttpHeader>,
    /// Names of headers to delete.
    #[serde(default)]
    pub remove: Vec<String>,
}

/// A header name and value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpHeader {
    /// The name.
    pub name: Option<String>,
    /// The value.
    pub value: Option<String>,
}

/// A redirect answered by the gateway.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestRedirect {
    /// `http` or `https` (default: the request's).
    pub scheme: Option<String>,
    /// The host (default: the request's).
    pub hostname: Option<String>,
    /// The path.
    pub path: Option<PathModifier>,
    /// The port (default: the scheme's when a scheme is set, else the request's).
    pub port: Option<u32>,
    /// The status: 301, 302 (default), 303, 307 or 308.
    pub status_code: Option<u32>,
}

/// Cross-origin resource sharing, answered by the gateway.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Cors {
    /// Allowed origins; `*` stands for any characters (`*` alone: every origin).
    #[serde(default)]
    pub allow_origins: Vec<String>,
    /// Whether credentials are allowed.
    pub allow_credentials: Option<bool>,
    /// Allowed methods (`*`: any).
    #[serde(default)]
    pub allow_methods: Vec<String>,
    /// Allowed request headers (`*`: any).
    #[serde(default)]
    pub allow_headers: Vec<String>,
    /// Response headers the browser may read.
    #[serde(default)]
    pub expose_headers: Vec<String>,
    /// How long a preflight's answer may be cached, in seconds (default 5).
    pub max_age: Option<u32>,
}

/// Copies of requests sent to another backend, whose responses are discarded.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestMirror {
    /// The backend (required).
    pub backend_ref: Option<ObjectRef>,
    /// The share of requests copied, 0–100 (default 100).
    pub percent: Option<u32>,
    /// The share of requests copied, as a fraction.
    pub fraction: Option<Fraction>,
}

/// `numerator / denominator` (default denominator 100).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fraction {
    /// The numerator.
    pub numerator: Option<u32>,
    /// The denominator (default 100).
    pub denominator: Option<u32>,
}

/// A rewrite before forwarding.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UrlRewrite {
    /// The Host to send.
    pub hostname: Option<String>,
    /// The path to send.
    pub path: Option<PathModifier>,
}

/// How a redirect or rewrite changes the path.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PathModifier {
    /// `ReplaceFullPath` or `ReplacePrefixMatch`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The new path.
    pub replace_full_path: Option<String>,
    /// What replaces the matched prefix.
    pub replace_prefix_match: Option<String>,
}

/// A weighted backend: a Service (a ServiceEntry host here).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpBackendRef {
    /// The backend's API group (`""`: the core group, a Service).
    pub group: Option<String>,
    /// The backend's kind (default `Service`).
    pub kind: Option<String>,
    /// The Service's name (required).
    pub name: Option<String>,
    /// The Service's namespace (default: the route's).
    pub namespace: Option<String>,
    /// The Service port.
    pub port: Option<u32>,
    /// Relative weight (default 1; 0: no traffic).
    pub weight: Option<u32>,
    /// Filters for requests to this backend.
    #[serde(default)]
    pub filters: Vec<HttpRouteFilter>,
}

/// Where a translated route stands among the Gateway API's match precedence rules, across
/// every route on a host (lower first). Not read from YAML: the translation sets it.
/// HTTPRoute: exact paths first, then longer prefixes (regexes after), then a method,
/// more headers, more query parameters. GRPCRoute: more characters of service, then of
/// method, then more headers. Ties go to the route's `namespace/name` (creation times
/// are not known here), then rule and match order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RouteRank {
    /// 0 exact path, 1 prefix, 2 regex (HTTPRoute); 0 for GRPCRoute.
    pub class: u8,
    /// Path characters (HTTPRoute) or service characters (GRPCRoute), more first.
    pub longer: std::cmp::Reverse<usize>,
    /// Method characters (GRPCRoute), more first.
    pub method_chars: std::cmp::Reverse<usize>,
    /// Whether the match leaves the HTTP method open.
    pub no_method: bool,
    /// Header conditions, more first.
    pub headers: std::cmp::Reverse<usize>,
    /// Query parameter conditions, more first.
    pub query: std::cmp::Reverse<usize>,
    /// The route's `namespace/name`.
    pub route: String,
    /// The rule's index.
    pub rule: usize,
    /// The match's index in the rule.
    pub matched: usize,
}
