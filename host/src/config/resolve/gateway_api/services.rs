//! The Services backends name: ServiceEntry hosts, reachable from another namespace only
//! where a ReferenceGrant allows it.

use crate::config::model::gateway_api::ReferenceGrantSpec;
use crate::config::model::{GATEWAY_API, Resource, Spec};

/// The Services a route's backends may name.
pub struct Services<'a> {
    hosts: Vec<&'a str>,
    /// Each ReferenceGrant: its namespace and spec.
    grants: Vec<(&'a str, &'a ReferenceGrantSpec)>,
}

impl<'a> Services<'a> {
    /// The ServiceEntry hosts and ReferenceGrants among `resources`.
    pub fn of(resources: &[&'a Resource]) -> Self {
        let mut services = Self {
            hosts: Vec::new(),
            grants: Vec::new(),
        };
        for resource in resources {
            match &resource.spec {
                Spec::ServiceEntry(spec) => {
                    services.hosts.extend(spec.hosts.iter().map(String::as_str));
                }
                Spec::ReferenceGrant(spec) => {
                    services.grants.push((resource.namespace.as_str(), spec));
                }
                _ => {}
            }
        }
        services
    }

    /// The ServiceEntry host of Service `name` in namespace `ns`, as an HTTPRoute of
    /// namespace `from` may name it: `name.ns.svc.cluster.local`, else `name`. The error
    /// is the Gateway API's reason: `RefNotPermitted` or `BackendNotFound`.
    pub fn find(&self, name: &str, ns: &str, from: &str) -> Result<&'a str, &'static str> {
        if ns != from && !self.granted(name, ns, from) {
            return Err("RefNotPermitted");
        }
        let qualified = format!("{name}.{ns}.svc.cluster.local");
        self.hosts
            .iter()
            .find(|h| **h == qualified || **h == name)
            .copied()
            .ok_or("BackendNotFound")
    }

    /// Whether a ReferenceGrant of namespace `ns` lets HTTPRoutes of `from` name its
    /// Service `name`.
    fn granted(&self, name: &str, ns: &str, from: &str) -> bool {
        self.grants.iter().any(|(namespace, grant)| {
            *namespace == ns
                && grant.from.iter().any(|f| {
                    f.group.as_deref() == Some(GATEWAY_API)
                        && f.kind.as_deref() == Some("HTTPRoute")
                        && f.namespace.as_deref() == Some(from)
                })
                && grant.to.iter().any(|t| {
                    t.group.as_deref().is_none_or(str::is_empty)
                        && t.kind.as_deref() == Some("Service")
                        && t.name.as_deref().is_none_or(|n| n == name)
                })
        })
    }
}
