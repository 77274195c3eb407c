//! `extensions.istio.io` WasmPlugin.

use serde::{Deserialize, Serialize};

use super::common::Ignored;

/// WasmPlugin spec: a policy component and where it applies.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WasmPluginSpec {
    /// Mesh-only workload selector.
    pub selector: Option<Ignored>,
    /// Deprecated single target.
    pub target_ref: Option<TargetRef>,
    #[serde(default)]
    pub target_refs: Vec<TargetRef>,
    pub url: Option<String>,
    pub sha256: Option<String>,
    pub image_pull_policy: Option<Ignored>,
    pub image_pull_secret: Option<Ignored>,
    pub plugin_config: Option<serde_yaml::Value>,
    pub plugin_name: Option<String>,
    pub phase: Option<Phase>,
    pub priority: Option<i64>,
    pub fail_strategy: Option<FailStrategy>,
    pub vm_config: Option<VmConfig>,
    #[serde(default, rename = "match")]
    pub matches: Vec<TrafficSelector>,
    #[serde(rename = "type")]
    pub plugin_type: Option<PluginType>,
    pub verification_key: Option<Ignored>,
    /// The sandbox limits of the plugin's instances: a Portcullis extension.
    pub limits: Option<PluginLimits>,
}

/// Per-plugin sandbox limits.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PluginLimits {
    /// Linear memory per instance: bytes, or a Kubernetes quantity (`128Mi`).
    pub memory: Option<serde_yaml::Value>,
    /// Time one call may run (`50ms`).
    pub timeout: Option<super::common::Duration>,
}

/// A resource the plugin attaches to. `sectionName` (from the Gateway API's policy
/// attachment) names one route of a VirtualService: a Portcullis extension.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetRef {
    pub group: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub section_name: Option<String>,
}

/// Where in the filter chain the plugin runs.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Phase {
    UnspecifiedPhase,
    Authn,
    Authz,
    Stats,
}

/// What happens when the plugin fails.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FailStrategy {
    FailClose,
    FailOpen,
    FailReload,
}

/// Filter type.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PluginType {
    UnspecifiedPluginType,
    Http,
    Network,
}

/// VM settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VmConfig {
    #[serde(default)]
    pub env: Vec<EnvVar>,
}

/// Source of an environment variable's value.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ValueFrom {
    Inline,
    Host,
}

/// An environment variable for the plugin.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvVar {
    pub name: Option<String>,
    pub value_from: Option<ValueFrom>,
    pub value: Option<String>,
}

/// Which traffic the plugin sees.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrafficSelector {
    pub mode: Option<WorkloadMode>,
    #[serde(default)]
    pub ports: Vec<super::common::PortSelector>,
}

/// Traffic direction.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WorkloadMode {
    Undefined,
    Client,
    Server,
    ClientAndServer,
}
