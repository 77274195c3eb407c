//! The Services backends name: ServiceEntry hosts, reachable from another namespace only
//! where a ReferenceGrant allows it.

use super::grants::{From, Grants, To};
use crate::config::model::{Resource, Spec};

/// The Services the backends of one kind of route may name, and the WasmPlugins its
/// `ExtensionRef` filters may.
#[derive(Clone)]
pub struct Services<'a> {
    hosts: Vec<&'a str>,
    /// WasmPlugins, by `namespace/name`.
    plugins: Vec<String>,
    grants: &'a Grants<'a>,
    /// The kind of the routes naming them (`HTTPRoute`, `GRPCRoute`).
    kind: &'static str,
}

impl<'a> Services<'a> {
    /// The ServiceEntry hosts and WasmPlugins among `resources`, as HTTPRoutes may name
    /// them where `grants` allow.
    pub fn of(resources: &[&'a Resource], grants: &'a Grants<'a>) -> Self {
        let hosts = resources
            .iter()
            .filter_map(|r| match &r.spec {
                Spec::ServiceEntry(spec) => Some(spec.hosts.iter().map(String::as_str)),
                _ => None,
            })
            .flatten()
            .collect();
        let plugins = resources
            .iter()
            .filter(|r| matches!(r.spec, Spec::WasmPlugin(_)))
            .map(|r| format!("{}/{}", r.namespace, r.name))
            .collect();
        Self {
            hosts,
            plugins,
            grants,
            kind: "HTTPRoute",
        }
    }

    /// Whether WasmPlugin `key` (`namespace/name`) is defined.
    pub fn has_plugin(&self, key: &str) -> bool {
        self.plugins.iter().any(|p| p == key)
    }

    /// The same Services, as routes of `kind` may name them.
    pub fn for_kind(&self, kind: &'static str) -> Self {
        Self {
            kind,
            ..self.clone()
        }
    }

    /// The kind of the routes naming them.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The ServiceEntry host of Service `name` in namespace `ns`, as a route of namespace
    /// `from` may name it: `name.ns.svc.cluster.local`, else `name`. The error is the
    /// Gateway API's reason: `RefNotPermitted` or `BackendNotFound`.
    pub fn find(&self, name: &str, ns: &str, from: &str) -> Result<&'a str, &'static str> {
        let from = From {
            kind: self.kind,
            namespace: from,
        };
        let to = To {
            kind: "Service",
            namespace: ns,
            name,
        };
        if !self.grants.permit(&from, &to) {
            return Err("RefNotPermitted");
        }
        let qualified = format!("{name}.{ns}.svc.cluster.local");
        self.hosts
            .iter()
            .find(|h| **h == qualified || **h == name)
            .copied()
            .ok_or("BackendNotFound")
    }
}
