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
    /// Istio's `targetRefs`: resources it applies to (unset with no selector: everything).
    #[serde(default)]
    pub target_refs: Vec<TargetRef>,
    /// Istio's `url`: where the module is; Portcullis loads `file://` paths only (required).
    pub url: Option<String>,
    /// Istio's `sha256`: the module's expected checksum (unset: not checked).
    pub sha256: Option<String>,
    /// Istio's `imagePullPolicy` (IfNotPresent or Always); no images are pulled here.
    pub image_pull_policy: Option<Ignored>,
    /// Istio's `imagePullSecret`: registry credentials; no images are pulled here.
    pub image_pull_secret: Option<Ignored>,
    /// Istio's `pluginConfig`: free-form config handed to the plugin as JSON.
    pub plugin_config: Option<serde_yaml::Value>,
    /// Istio's `pluginName`: the root id within a multi-plugin module.
    pub plugin_name: Option<String>,
    /// Istio's `phase`: where in the chain it runs (default UNSPECIFIED_PHASE).
    pub phase: Option<Phase>,
    /// Istio's `priority`: order within a phase, highest first (default 0).
    pub priority: Option<i64>,
    /// Istio's `failStrategy` (default FAIL_CLOSE).
    pub fail_strategy: Option<FailStrategy>,
    /// Istio's `vmConfig`: the plugin's environment.
    pub vm_config: Option<VmConfig>,
    /// Istio's `match`: traffic selectors, ORed (default: all traffic).
    #[serde(default, rename = "match")]
    pub matches: Vec<TrafficSelector>,
    /// Istio's `type`: HTTP or NETWORK filter (default HTTP).
    #[serde(rename = "type")]
    pub plugin_type: Option<PluginType>,
    /// Istio's `verificationKey`: not implemented by Istio; ignored.
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
    /// The target's API group (`networking.istio.io`, or empty).
    pub group: Option<String>,
    /// The target's kind: Gateway, VirtualService or ServiceEntry.
    pub kind: Option<String>,
    /// The target's name (required).
    pub name: Option<String>,
    /// The target's namespace (default: the plugin's).
    pub namespace: Option<String>,
    /// A route name within a targeted VirtualService.
    pub section_name: Option<String>,
}

/// Where in the filter chain the plugin runs.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Phase {
    /// At the end of the chain, just before routing (Istio's default).
    UnspecifiedPhase,
    /// Before Istio's authentication filters.
    Authn,
    /// After authentication, before Istio's authorization filters.
    Authz,
    /// After authorization, before Istio's stats filters.
    Stats,
}

/// What happens when the plugin fails.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FailStrategy {
    /// A fatal error fails every request with a 5xx (Istio's default).
    FailClose,
    /// A fatal error skips the plugin.
    FailOpen,
    /// A runtime error starts a new instance; other errors fail closed.
    FailReload,
}

/// Filter type.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PluginType {
    /// Unset: HTTP.
    UnspecifiedPluginType,
    /// An HTTP filter (Istio's default).
    Http,
    /// A network (L4) filter.
    Network,
}

/// VM settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VmConfig {
    /// Istio's `vmConfig.env`: environment variables for the plugin.
    #[serde(default)]
    pub env: Vec<EnvVar>,
}

/// Source of an environment variable's value.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ValueFrom {
    /// The `value` field (Istio's default).
    Inline,
    /// The gateway process's own variable of the same name.
    Host,
}

/// An environment variable for the plugin.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvVar {
    /// The variable's name (required).
    pub name: Option<String>,
    /// Where the value comes from (default INLINE).
    pub value_from: Option<ValueFrom>,
    /// The value, for INLINE.
    pub value: Option<String>,
}

/// Which traffic the plugin sees.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrafficSelector {
    /// Istio's `mode`: traffic direction (default CLIENT_AND_SERVER).
    pub mode: Option<WorkloadMode>,
    /// Istio's `ports`: listener ports selected (empty: every port).
    #[serde(default)]
    pub ports: Vec<super::common::PortSelector>,
}

/// Traffic direction.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WorkloadMode {
    /// Unset: CLIENT_AND_SERVER.
    Undefined,
    /// Outbound traffic, which is all of a gateway's traffic.
    Client,
    /// Inbound sidecar traffic; selects nothing at a gateway.
    Server,
    /// Both directions (Istio's default).
    ClientAndServer,
}
