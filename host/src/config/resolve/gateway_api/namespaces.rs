//! The namespaces a listener's route selector may pick: those of the Namespace documents
//! (with their labels) and of every resource, each labelled
//! `kubernetes.io/metadata.name: <name>` as Kubernetes labels it.

use std::collections::BTreeMap;

use crate::config::model::gateway_api::{LabelSelector, Listener};
use crate::config::model::{Resource, Spec};

/// Every namespace and its labels.
pub struct Namespaces(BTreeMap<String, BTreeMap<String, String>>);

impl Namespaces {
    /// The namespaces among `resources`.
    pub fn of(resources: &[&Resource]) -> Self {
        let mut namespaces: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for resource in resources {
            let labels = namespaces.entry(resource.namespace.clone()).or_default();
            labels.insert(
                "kubernetes.io/metadata.name".into(),
                resource.namespace.clone(),
            );
            if let Spec::Namespace(spec) = &resource.spec {
                labels.extend(spec.labels.clone());
            }
        }
        Self(namespaces)
    }

    /// The namespaces `selector` picks.
    pub fn selected(&self, selector: &LabelSelector) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(_, labels)| selector.matches(labels))
            .map(|(name, _)| name.as_str())
            .collect()
    }
}

/// The namespaces a listener takes routes from.
#[derive(Debug, Clone)]
pub enum Allowed {
    /// Every namespace.
    All,
    /// These.
    Only(Vec<String>),
}

impl Allowed {
    /// Those of `listener` of a Gateway in `gateway_ns`: `Same` (the default), `All`, or
    /// those its `Selector` picks.
    pub fn of(listener: &Listener, gateway_ns: &str, namespaces: &Namespaces) -> Self {
        let from = listener
            .allowed_routes
            .as_ref()
            .and_then(|a| a.namespaces.as_ref());
        match from.and_then(|n| n.from.as_deref()) {
            Some("All") => Self::All,
            Some("Selector") => {
                let selector = from.and_then(|n| n.selector.clone()).unwrap_or_default();
                let picked = namespaces.selected(&selector);
                Self::Only(picked.into_iter().map(String::from).collect())
            }
            _ => Self::Only(vec![gateway_ns.to_string()]),
        }
    }

    /// Whether routes of namespace `namespace` may attach.
    pub fn admits(&self, namespace: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only(namespaces) => namespaces.iter().any(|n| n == namespace),
        }
    }
}
