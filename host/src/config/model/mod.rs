//! Serde types that mirror Istio's YAML exactly: one file per kind.

pub mod common;
pub mod destination_rule;
pub mod gateway;
pub mod gateway_api;
pub mod mesh;
pub mod security;
pub mod service_entry;
pub mod virtual_service;
pub mod wasm_plugin;

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use common::Ignored;

/// The kinds of resource Portcullis reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `networking.istio.io` Gateway: listeners.
    Gateway,
    /// `networking.istio.io` VirtualService: HTTP routes.
    VirtualService,
    /// `networking.istio.io` DestinationRule: subsets and traffic policies.
    DestinationRule,
    /// `networking.istio.io` ServiceEntry: upstream services and endpoints.
    ServiceEntry,
    /// `extensions.istio.io` WasmPlugin: policy components.
    WasmPlugin,
    /// `gateway.networking.k8s.io` GatewayClass.
    GatewayClass,
    /// `gateway.networking.k8s.io` Gateway: listeners.
    KubeGateway,
    /// `gateway.networking.k8s.io` HTTPRoute: HTTP routes.
    HttpRoute,
    /// `gateway.networking.k8s.io` ReferenceGrant: cross-namespace references allowed.
    ReferenceGrant,
    /// A Kubernetes Namespace: its labels, for listeners' route selectors.
    Namespace,
    /// `gateway.networking.k8s.io` GRPCRoute: gRPC routes.
    GrpcRoute,
    /// `gateway.networking.k8s.io` TLSRoute: TLS passed through by SNI.
    TlsRoute,
    /// `gateway.networking.k8s.io` TCPRoute: TCP connections.
    TcpRoute,
    /// `gateway.networking.k8s.io` BackendTLSPolicy: TLS to backends.
    BackendTlsPolicy,
    /// `security.istio.io` AuthorizationPolicy: which requests are let through.
    AuthorizationPolicy,
    /// `security.istio.io` RequestAuthentication: which JWTs are verified.
    RequestAuthentication,
    /// Istio's mesh config: the `istio-system/istio` ConfigMap.
    MeshConfig,
}

/// The Kubernetes Gateway API's group.
pub const GATEWAY_API: &str = "gateway.networking.k8s.io";

impl Kind {
    /// The kind named `kind` in API group `group`, if Portcullis reads it (a Gateway is
    /// Istio's unless its group is the Gateway API's).
    pub fn from_name(group: &str, kind: &str) -> Option<Self> {
        Some(match (group, kind) {
            (GATEWAY_API, "Gateway") => Self::KubeGateway,
            (GATEWAY_API, "GatewayClass") => Self::GatewayClass,
            (GATEWAY_API, "HTTPRoute") => Self::HttpRoute,
            (GATEWAY_API, "ReferenceGrant") => Self::ReferenceGrant,
            (GATEWAY_API, "GRPCRoute") => Self::GrpcRoute,
            (GATEWAY_API, "TLSRoute") => Self::TlsRoute,
            (GATEWAY_API, "TCPRoute") => Self::TcpRoute,
            (GATEWAY_API, "BackendTLSPolicy") => Self::BackendTlsPolicy,
            (_, kind) => return Self::istio(kind),
        })
    }

    /// The Istio kind named `kind`.
    fn istio(kind: &str) -> Option<Self> {
        Some(match kind {
            "Gateway" => Self::Gateway,
            "VirtualService" => Self::VirtualService,
            "DestinationRule" => Self::DestinationRule,
            "ServiceEntry" => Self::ServiceEntry,
            "WasmPlugin" => Self::WasmPlugin,
            "AuthorizationPolicy" => Self::AuthorizationPolicy,
            "RequestAuthentication" => Self::RequestAuthentication,
            _ => return None,
        })
    }

    /// The API group the kind belongs to.
    pub fn group(self) -> &'static str {
        match self {
            Self::WasmPlugin => "extensions.istio.io",
            Self::AuthorizationPolicy | Self::RequestAuthentication => "security.istio.io",
            Self::GatewayClass
            | Self::KubeGateway
            | Self::HttpRoute
            | Self::GrpcRoute
            | Self::TlsRoute
            | Self::TcpRoute
            | Self::BackendTlsPolicy
            | Self::ReferenceGrant => GATEWAY_API,
            Self::Namespace | Self::MeshConfig => "",
            _ => "networking.istio.io",
        }
    }

    /// The API versions accepted for the kind.
    pub fn versions(self) -> &'static [&'static str] {
        match self {
            Self::WasmPlugin => &["v1alpha1"],
            Self::AuthorizationPolicy | Self::RequestAuthentication => &["v1", "v1beta1"],
            Self::GatewayClass
            | Self::KubeGateway
            | Self::HttpRoute
            | Self::GrpcRoute
            | Self::ReferenceGrant => &["v1", "v1beta1"],
            Self::BackendTlsPolicy => &["v1", "v1alpha3"],
            Self::TlsRoute | Self::TcpRoute => &["v1", "v1alpha3", "v1alpha2"],
            Self::Namespace | Self::MeshConfig => &["v1"],
            _ => &["v1", "v1beta1", "v1alpha3"],
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::KubeGateway => f.write_str("Gateway"),
            Self::HttpRoute => f.write_str("HTTPRoute"),
            Self::GrpcRoute => f.write_str("GRPCRoute"),
            Self::TlsRoute => f.write_str("TLSRoute"),
            Self::TcpRoute => f.write_str("TCPRoute"),
            Self::BackendTlsPolicy => f.write_str("BackendTLSPolicy"),
            Self::MeshConfig => f.write_str("ConfigMap"),
            _ => fmt::Debug::fmt(self, f),
        }
    }
}

/// Kubernetes object metadata; only `name` and `namespace` mean anything here.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metadata {
    /// `metadata.name`: the resource's name (RFC 1123; required).
    pub name: Option<String>,
    /// `metadata.namespace` (default `default`).
    pub namespace: Option<String>,
    /// Kubernetes labels; accepted, not used.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Kubernetes annotations; accepted, not used.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    // What `kubectl get -o yaml` adds; accepted so that its output loads.
    /// Written by Kubernetes; ignored.
    pub uid: Option<Ignored>,
    /// Written by Kubernetes; ignored.
    pub resource_version: Option<Ignored>,
    /// Written by Kubernetes; ignored.
    pub generation: Option<Ignored>,
    /// Written by Kubernetes; ignored.
    pub creation_timestamp: Option<Ignored>,
    /// Written by Kubernetes (server-side apply); ignored.
    pub managed_fields: Option<Ignored>,
    /// Kubernetes owner references; ignored.
    pub owner_references: Option<Ignored>,
    /// Kubernetes finalizers; ignored.
    pub finalizers: Option<Ignored>,
    /// Kubernetes name-generation prefix; ignored.
    pub generate_name: Option<Ignored>,
}

/// The envelope of every document: `apiVersion`, `kind`, `metadata`, `spec`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Envelope {
    /// `group/version`, such as `networking.istio.io/v1`; checked against [`Kind::versions`].
    pub api_version: Option<String>,
    /// The kind's name, such as `VirtualService`.
    pub kind: Option<String>,
    /// Name, namespace and other Kubernetes metadata.
    #[serde(default)]
    pub metadata: Metadata,
    /// The kind's spec, typed once the kind is known.
    #[serde(default)]
    pub spec: serde_yaml::Value,
    /// Written by Kubernetes; ignored.
    pub status: Option<Ignored>,
}

/// The typed spec of a resource.
#[derive(Debug, Clone)]
pub enum Spec {
    /// A Gateway's spec.
    Gateway(Box<gateway::GatewaySpec>),
    /// A VirtualService's spec.
    VirtualService(Box<virtual_service::VirtualServiceSpec>),
    /// A DestinationRule's spec.
    DestinationRule(Box<destination_rule::DestinationRuleSpec>),
    /// A ServiceEntry's spec.
    ServiceEntry(Box<service_entry::ServiceEntrySpec>),
    /// A WasmPlugin's spec.
    WasmPlugin(Box<wasm_plugin::WasmPluginSpec>),
    /// A Gateway API GatewayClass's spec.
    GatewayClass(Box<gateway_api::GatewayClassSpec>),
    /// A Gateway API Gateway's spec.
    KubeGateway(Box<gateway_api::GatewaySpec>),
    /// A Gateway API HTTPRoute's spec.
    HttpRoute(Box<gateway_api::HttpRouteSpec>),
    /// A Gateway API ReferenceGrant's spec.
    ReferenceGrant(Box<gateway_api::ReferenceGrantSpec>),
    /// An AuthorizationPolicy's spec.
    AuthorizationPolicy(Box<security::AuthorizationPolicySpec>),
    /// A RequestAuthentication's spec.
    RequestAuthentication(Box<security::RequestAuthenticationSpec>),
    /// The mesh config.
    MeshConfig(Box<mesh::MeshConfigSpec>),
    /// A Kubernetes Namespace's labels.
    Namespace(Box<gateway_api::NamespaceSpec>),
    /// A Gateway API GRPCRoute's spec.
    GrpcRoute(Box<gateway_api::GrpcRouteSpec>),
    /// A TLSRoute.
    TlsRoute(Box<gateway_api::TlsRouteSpec>),
    /// A TCPRoute.
    TcpRoute(Box<gateway_api::TcpRouteSpec>),
    /// A Gateway API BackendTLSPolicy's spec.
    BackendTlsPolicy(Box<gateway_api::BackendTlsPolicySpec>),
}

/// One resource of the config file.
#[derive(Debug, Clone)]
pub struct Resource {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`, or `default` when unset.
    pub namespace: String,
    /// The typed spec.
    pub spec: Spec,
    /// Index of the document it came from.
    pub document: usize,
}

impl Resource {
    /// The resource's kind.
    pub fn kind(&self) -> Kind {
        match self.spec {
            Spec::Gateway(_) => Kind::Gateway,
            Spec::VirtualService(_) => Kind::VirtualService,
            Spec::DestinationRule(_) => Kind::DestinationRule,
            Spec::ServiceEntry(_) => Kind::ServiceEntry,
            Spec::WasmPlugin(_) => Kind::WasmPlugin,
            Spec::GatewayClass(_) => Kind::GatewayClass,
            Spec::KubeGateway(_) => Kind::KubeGateway,
            Spec::HttpRoute(_) => Kind::HttpRoute,
            Spec::ReferenceGrant(_) => Kind::ReferenceGrant,
            Spec::AuthorizationPolicy(_) => Kind::AuthorizationPolicy,
            Spec::RequestAuthentication(_) => Kind::RequestAuthentication,
            Spec::MeshConfig(_) => Kind::MeshConfig,
            Spec::Namespace(_) => Kind::Namespace,
            Spec::GrpcRoute(_) => Kind::GrpcRoute,
            Spec::TlsRoute(_) => Kind::TlsRoute,
            Spec::TcpRoute(_) => Kind::TcpRoute,
            Spec::BackendTlsPolicy(_) => Kind::BackendTlsPolicy,
        }
    }
}
