//! The resolved config: plain data with every Istio default applied and every reference
//! checked. Nothing past this layer sees YAML.

use std::collections::BTreeMap;

use serde::Serialize;

pub use super::model::wasm_plugin::{FailStrategy, Phase};

mod clusters;
mod listeners;
mod plugins;
mod routes;
mod status;

pub use clusters::*;
pub use listeners::*;
pub use plugins::*;
pub use routes::*;
pub use status::*;

/// A complete, valid configuration.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ResolvedConfig {
    /// The SHA-256 of the config file's text, in hex: the same on every gateway serving
    /// the same file.
    pub hash: String,
    /// One per bound address and port.
    pub listeners: Vec<Listener>,
    /// Upstream destinations by name (`outbound|port|subset|host`, as Envoy names them).
    pub clusters: BTreeMap<String, Cluster>,
    /// WasmPlugins, in no particular order; chains are ordered by phase and priority.
    pub plugins: Vec<Plugin>,
    /// The mesh config's HTTP authorization providers (AuthorizationPolicy CUSTOM).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<ExtAuthzProvider>,
    /// The Gateway API resources' conditions.
    #[serde(skip_serializing_if = "GatewayApiStatus::is_empty")]
    pub gateway_api: GatewayApiStatus,
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
