//! WasmPlugins: where they attach, their limits and fail strategy.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::{FailStrategy, Phase};

/// A WasmPlugin ready to load.
#[derive(Debug, Clone, Serialize)]
pub struct Plugin {
    /// `namespace/name`.
    pub name: String,
    /// Where its component comes from.
    #[serde(rename = "path")]
    pub source: Source,
    /// Lowercase hex sha256 the file must have.
    pub sha256: Option<String>,
    /// Where in the chain it runs (UNSPECIFIED_PHASE unless set).
    #[serde(serialize_with = "debug_string")]
    pub phase: Phase,
    /// Order within the phase, highest first (0 unless set).
    pub priority: i64,
    /// What a plugin failure does to requests (FAIL_CLOSE unless set).
    #[serde(serialize_with = "debug_string")]
    pub fail_strategy: FailStrategy,
    /// `pluginConfig` as JSON.
    pub config: serde_json::Value,
    /// Where it applies; empty means every route.
    pub targets: Vec<PluginTarget>,
    /// Listener ports it applies to; empty means all.
    pub ports: Vec<u16>,
    /// Environment variables, as names and values.
    pub env: Vec<(String, String)>,
    /// Sandbox limits of its instances.
    pub limits: PluginLimits,
    /// Runs before route selection, on every request its Gateways serve, so that routes
    /// can match on what it verified (RequestAuthentication's JWT filter).
    pub before_routing: bool,
}

/// Where a plugin's component comes from (shown as the file, or `builtin:<name>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The file a WasmPlugin's `file://` URL names.
    File(PathBuf),
    /// A component built into the gateway (`builtin:<name>`): `rate-limit`, or one
    /// Portcullis runs on its own behalf (AuthorizationPolicy's `authorization`).
    Builtin(String),
}

impl Source {
    /// The file, for a component read from one.
    pub fn file(&self) -> Option<&PathBuf> {
        match self {
            Self::File(path) => Some(path),
            Self::Builtin(_) => None,
        }
    }
}

impl Serialize for Source {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Builtin(name) => write!(f, "builtin:{name}"),
        }
    }
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
    VirtualService {
        /// `namespace/name` of the VirtualService.
        name: String,
        /// One route's name in it; `None` means every route.
        route: Option<String>,
    },
    /// A ServiceEntry host, or one DestinationRule subset of it (the `sectionName` of a
    /// ServiceEntry reference): requests routed there.
    Service {
        /// The host.
        host: String,
        /// The subset; `None` means the whole service.
        subset: Option<String>,
    },
}

fn debug_string<T: std::fmt::Debug, S: serde::Serializer>(
    value: &T,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{value:?}"))
}

/// An `envoyExtAuthzHttp` extension provider of the mesh config: where the checks of
/// AuthorizationPolicies with `action: CUSTOM` naming it go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExtAuthzProvider {
    /// Its `name`.
    pub name: String,
    /// The cluster of its `service` and `port`.
    pub cluster: String,
    /// How long a check may take.
    pub timeout: Duration,
}
