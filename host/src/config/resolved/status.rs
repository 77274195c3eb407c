//! The conditions Kubernetes would write on Gateway API resources' status, as the gateway
//! sees them: printed by `validate` and shown in `/config_dump`.

use serde::Serialize;

/// Every Gateway API resource's conditions (empty without Gateway API resources).
#[derive(Debug, Clone, Default, Serialize)]
pub struct GatewayApiStatus {
    /// Each Gateway's listeners.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<GatewayStatus>,
    /// Each HTTPRoute, per parent.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteStatus>,
}

impl GatewayApiStatus {
    /// Whether there is nothing to say.
    pub fn is_empty(&self) -> bool {
        self.gateways.is_empty() && self.routes.is_empty()
    }
}

/// A Gateway's listeners' conditions.
#[derive(Debug, Clone, Serialize)]
pub struct GatewayStatus {
    /// `namespace/name`.
    pub gateway: String,
    /// `Accepted` and `Programmed`.
    pub conditions: Vec<Condition>,
    /// Each listener's conditions.
    pub listeners: Vec<ListenerStatus>,
}

/// A listener's conditions and how many routes it serves.
#[derive(Debug, Clone, Serialize)]
pub struct ListenerStatus {
    /// Its name.
    pub name: String,
    /// `Accepted`, `ResolvedRefs` and `Programmed`.
    pub conditions: Vec<Condition>,
    /// The routes attached to it (Kubernetes' `attachedRoutes`).
    pub attached_routes: usize,
    /// The route kinds it takes (Kubernetes' `supportedKinds`).
    pub supported_kinds: Vec<String>,
}

/// An HTTPRoute's conditions for one of its parents.
#[derive(Debug, Clone, Serialize)]
pub struct RouteStatus {
    /// `HTTPRoute`, `GRPCRoute`, `TLSRoute` or `TCPRoute`.
    pub kind: &'static str,
    /// `namespace/name` of the route.
    pub route: String,
    /// `namespace/name` of the parent Gateway, and `/listener` with a `sectionName`.
    pub parent: String,
    /// `Accepted` and `ResolvedRefs`.
    pub conditions: Vec<Condition>,
}

/// A condition: its type, whether it holds, and the API's reason.
#[derive(Debug, Clone, Serialize)]
pub struct Condition {
    /// `Accepted`, `ResolvedRefs`, `Programmed`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Whether it holds.
    pub status: bool,
    /// The Gateway API's reason, e.g. `NoMatchingParent`.
    pub reason: &'static str,
}

impl Condition {
    /// A condition that holds, whose reason is its type.
    pub fn holds(kind: &'static str) -> Self {
        Self {
            kind,
            status: true,
            reason: kind,
        }
    }

    /// A condition that fails for `reason`.
    pub fn fails(kind: &'static str, reason: &'static str) -> Self {
        Self {
            kind,
            status: false,
            reason,
        }
    }
}

impl std::fmt::Display for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = if self.status { "True" } else { "False" };
        write!(f, "{}={status} ({})", self.kind, self.reason)
    }
}
