//! Serde types that mirror Istio's YAML exactly: one file per kind.

pub mod common;
pub mod destination_rule;
pub mod gateway;
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
    Gateway,
    VirtualService,
    DestinationRule,
    ServiceEntry,
    WasmPlugin,
}

impl Kind {
    /// The kind named `kind`, if Portcullis reads it.
    pub fn from_name(kind: &str) -> Option<Self> {
        Some(match kind {
            "Gateway" => Self::Gateway,
            "VirtualService" => Self::VirtualService,
            "DestinationRule" => Self::DestinationRule,
            "ServiceEntry" => Self::ServiceEntry,
            "WasmPlugin" => Self::WasmPlugin,
            _ => return None,
        })
    }

    /// The API group the kind belongs to.
    pub fn group(self) -> &'static str {
        match self {
            Self::WasmPlugin => "extensions.istio.io",
            _ => "networking.istio.io",
        }
    }

    /// The API versions accepted for the kind.
    pub fn versions(self) -> &'static [&'static str] {
        match self {
            Self::WasmPlugin => &["v1alpha1"],
            _ => &["v1", "v1beta1", "v1alpha3"],
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Kubernetes object metadata; only `name` and `namespace` mean anything here.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metadata {
    pub name: Option<String>,
    pub namespace: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    // What `kubectl get -o yaml` adds; accepted so that its output loads.
    pub uid: Option<Ignored>,
    pub resource_version: Option<Ignored>,
    pub generation: Option<Ignored>,
    pub creation_timestamp: Option<Ignored>,
    pub managed_fields: Option<Ignored>,
    pub owner_references: Option<Ignored>,
    pub finalizers: Option<Ignored>,
    pub generate_name: Option<Ignored>,
}

/// The envelope of every document: `apiVersion`, `kind`, `metadata`, `spec`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Envelope {
    pub api_version: Option<String>,
    pub kind: Option<String>,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub spec: serde_yaml::Value,
    /// Written by Kubernetes; ignored.
    pub status: Option<Ignored>,
}

/// The typed spec of a resource.
#[derive(Debug, Clone)]
pub enum Spec {
    Gateway(Box<gateway::GatewaySpec>),
    VirtualService(Box<virtual_service::VirtualServiceSpec>),
    DestinationRule(Box<destination_rule::DestinationRuleSpec>),
    ServiceEntry(Box<service_entry::ServiceEntrySpec>),
    WasmPlugin(Box<wasm_plugin::WasmPluginSpec>),
}

/// One resource of the config file.
#[derive(Debug, Clone)]
pub struct Resource {
    pub name: String,
    pub namespace: String,
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
        }
    }
}
