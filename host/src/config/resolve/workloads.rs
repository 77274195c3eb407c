//! Which Gateways a `security.istio.io` policy applies to: Istio applies one to the
//! workloads it selects, and the gateway is one workload serving its Gateways.

use serde_json::Value;

use super::scope::Scope;
use crate::config::model::GATEWAY_API;
use crate::config::model::wasm_plugin::TargetRef;
use crate::config::resolved::{FailStrategy, Phase, Plugin, PluginLimits, PluginTarget, Source};

/// The namespace whose policies apply to every Gateway (Istio's root namespace).
const ROOT_NAMESPACE: &str = "istio-system";

/// What a policy says about where it applies.
pub struct Targets<'a> {
    /// The policy's namespace.
    pub namespace: &'a str,
    /// Whether it sets a workload `selector`.
    pub selector: bool,
    /// Its `targetRefs` and `targetRef`.
    pub refs: Vec<&'a TargetRef>,
}

impl Targets<'_> {
    /// The Gateways (of `gateways`, `namespace/name`s) the policy applies to: those its
    /// `targetRefs` name; else, as Istio applies a policy to the workloads of its
    /// namespace (all of them from the root namespace), the Gateways of its namespace.
    pub fn gateways<'g>(&self, gateways: &'g [String], at: &Scope<'_>) -> Vec<&'g str> {
        if self.selector {
            at.field("selector").warn(
                "selects workloads: read as the Gateways of the policy's namespace (all from istio-system)",
            );
        }
        if self.refs.is_empty() {
            let everywhere = self.namespace == ROOT_NAMESPACE;
            return gateways
                .iter()
                .filter(|g| {
                    everywhere
                        || g.split_once('/')
                            .is_some_and(|(ns, _)| ns == self.namespace)
                })
                .map(String::as_str)
                .collect();
        }
        let mut found = Vec::new();
        for (i, target) in self.refs.iter().enumerate() {
            let at = at.field("targetRefs").index(i);
            if let Some(gateway) = self.named(target, gateways, &at) {
                found.push(gateway);
            }
        }
        found
    }

    /// The Gateway `target` names, if it names one that exists.
    fn named<'g>(
        &self,
        target: &TargetRef,
        gateways: &'g [String],
        at: &Scope<'_>,
    ) -> Option<&'g str> {
        let group = target.group.as_deref().unwrap_or_default();
        let gateway_kind = target.kind.as_deref() == Some("Gateway")
            && matches!(group, "" | "networking.istio.io" | GATEWAY_API);
        if !gateway_kind {
            at.field("kind").error("only Gateways can be targeted");
            return None;
        }
        let namespace = target.namespace.as_deref().unwrap_or(self.namespace);
        if namespace != self.namespace && self.namespace != ROOT_NAMESPACE {
            at.field("namespace")
                .error("a policy targets Gateways of its own namespace only (as in Istio)");
            return None;
        }
        let key = format!("{namespace}/{}", target.name.as_deref().unwrap_or_default());
        let found = gateways.iter().find(|g| **g == key).map(String::as_str);
        if found.is_none() {
            at.field("name")
                .error(format!("Gateway {key} is not defined"));
        }
        found
    }
}

/// The built-in filter `component` with `config` for `gateway`'s routes, failing closed;
/// its phase, priority and whether it runs before routing are the caller's to set.
pub fn gateway_filter(gateway: &str, component: &str, config: Value) -> Plugin {
    Plugin {
        name: format!("{gateway}/{component}"),
        source: Source::Builtin(component.into()),
        sha256: None,
        phase: Phase::UnspecifiedPhase,
        priority: 0,
        fail_strategy: FailStrategy::FailClose,
        config,
        targets: vec![PluginTarget::Gateway(gateway.to_string())],
        ports: Vec::new(),
        env: Vec::new(),
        limits: PluginLimits::default(),
        before_routing: false,
    }
}
