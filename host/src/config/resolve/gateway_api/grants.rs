//! ReferenceGrants: which references across namespaces a namespace allows.

use crate::config::model::gateway_api::ReferenceGrantSpec;
use crate::config::model::{GATEWAY_API, Resource, Spec};

/// The ReferenceGrants of a config.
pub struct Grants<'a>(Vec<(&'a str, &'a ReferenceGrantSpec)>);

/// The referring side: a kind of the Gateway API group, in a namespace.
pub struct From<'r> {
    pub kind: &'r str,
    pub namespace: &'r str,
}

/// The referred object: a kind of the core group (`Service`, `Secret`), its namespace and
/// name.
pub struct To<'r> {
    pub kind: &'r str,
    pub namespace: &'r str,
    pub name: &'r str,
}

impl<'a> Grants<'a> {
    /// The ReferenceGrants among `resources`.
    pub fn of(resources: &[&'a Resource]) -> Self {
        Self(
            resources
                .iter()
                .filter_map(|r| match &r.spec {
                    Spec::ReferenceGrant(spec) => Some((r.namespace.as_str(), &**spec)),
                    _ => None,
                })
                .collect(),
        )
    }

    /// Whether `from` may refer to `to`: always within a namespace, else where a
    /// ReferenceGrant of `to`'s namespace names `from`'s kind and namespace and `to`'s
    /// kind (and its name, when the grant gives one).
    pub fn permit(&self, from: &From<'_>, to: &To<'_>) -> bool {
        from.namespace == to.namespace
            || self.0.iter().any(|(namespace, grant)| {
                *namespace == to.namespace
                    && grant.from.iter().any(|f| {
                        f.group.as_deref() == Some(GATEWAY_API)
                            && f.kind.as_deref() == Some(from.kind)
                            && f.namespace.as_deref() == Some(from.namespace)
                    })
                    && grant.to.iter().any(|t| {
                        t.group.as_deref().is_none_or(str::is_empty)
                            && t.kind.as_deref() == Some(to.kind)
                            && t.name.as_deref().is_none_or(|n| n == to.name)
                    })
            })
    }
}
