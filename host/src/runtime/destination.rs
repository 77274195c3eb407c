//! What Istio's telemetry says of a destination: its service, and the labels of the
//! workload that served. Interned for the whole process, so that a request's metrics key
//! holds a number, and every generation names a destination with the same number.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use crate::interner::Interner;

/// Istio's `destination_*` labels of one destination.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Destination {
    /// `destination_service`: the service host.
    pub service: String,
    /// `destination_service_name`.
    pub service_name: String,
    /// `destination_service_namespace`.
    pub service_namespace: String,
    /// `destination_workload`.
    pub workload: String,
    /// `destination_workload_namespace`.
    pub workload_namespace: String,
    /// `destination_app`.
    pub app: String,
    /// `destination_version`.
    pub version: String,
    /// `destination_canonical_service`.
    pub canonical_service: String,
    /// `destination_canonical_revision`.
    pub canonical_revision: String,
}

/// An interned [`Destination`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DestinationId(u32);

const UNKNOWN: &str = "unknown";

static DESTINATIONS: LazyLock<Interner<Destination>> = LazyLock::new(Interner::default);

impl Destination {
    /// The destination `host` of a ServiceEntry in `namespace`, served by an endpoint
    /// with `labels` (`None` before an endpoint is picked). The service's name and
    /// namespace come from a Kubernetes host (`name.namespace.svc…`), else they are the
    /// host and the ServiceEntry's namespace, as Istio reports them.
    pub fn new(host: &str, namespace: &str, labels: Option<&BTreeMap<String, String>>) -> Self {
        let mut parts = host.splitn(4, '.');
        let (service_name, service_namespace) =
            match (parts.next(), parts.next(), parts.next(), parts.next()) {
                (Some(name), Some(ns), Some("svc"), _) => (name, ns),
                _ => (host, namespace),
            };
        let label = |names: &[&str]| {
            let labels = labels?;
            names.iter().find_map(|name| labels.get(*name).cloned())
        };
        let canonical_service = label(&[
            "service.istio.io/canonical-name",
            "app.kubernetes.io/name",
            "app",
        ]);
        let canonical_revision = label(&[
            "service.istio.io/canonical-revision",
            "app.kubernetes.io/version",
            "version",
        ])
        .or_else(|| canonical_service.as_ref().map(|_| "latest".to_string()));
        let or_unknown = |value: Option<String>| value.unwrap_or_else(|| UNKNOWN.to_string());
        Self {
            service: host.to_string(),
            service_name: service_name.to_string(),
            service_namespace: service_namespace.to_string(),
            workload: UNKNOWN.to_string(),
            workload_namespace: labels.map_or(UNKNOWN, |_| namespace).to_string(),
            app: or_unknown(label(&["app"])),
            version: or_unknown(label(&["version"])),
            canonical_service: or_unknown(canonical_service),
            canonical_revision: or_unknown(canonical_revision),
        }
    }

    /// The destination's number, the same for equal destinations.
    pub fn intern(self) -> DestinationId {
        DestinationId(DESTINATIONS.intern(self))
    }

    /// What every label says when the destination is not known.
    pub fn unknown() -> Self {
        Self::new(UNKNOWN, UNKNOWN, None)
    }
}

impl DestinationId {
    /// The destination this number stands for.
    pub fn get(self) -> Arc<Destination> {
        DESTINATIONS.get(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn labels_come_from_the_host_and_the_endpoint_as_istio_takes_them() {
        let served = labels(&[("app", "reviews"), ("version", "v1")]);
        let reviews = Destination::new("reviews.shop.svc.cluster.local", "default", Some(&served));
        assert_eq!(reviews.service_name, "reviews");
        assert_eq!(reviews.service_namespace, "shop");
        assert_eq!(reviews.workload_namespace, "default");
        assert_eq!((&*reviews.app, &*reviews.version), ("reviews", "v1"));
        assert_eq!(reviews.canonical_service, "reviews");
        assert_eq!(reviews.canonical_revision, "v1");

        let external = Destination::new("api.example.com", "edge", None);
        assert_eq!(external.service_name, "api.example.com");
        assert_eq!(external.service_namespace, "edge");
        for unknown in [
            &external.workload,
            &external.workload_namespace,
            &external.app,
            &external.version,
            &external.canonical_service,
            &external.canonical_revision,
        ] {
            assert_eq!(unknown, "unknown");
        }

        let canonical = labels(&[
            ("app", "web"),
            ("service.istio.io/canonical-name", "frontend"),
        ]);
        let named = Destination::new("web.test", "default", Some(&canonical));
        assert_eq!(named.canonical_service, "frontend");
        assert_eq!(named.canonical_revision, "latest");
        assert_eq!(named.version, "unknown");
    }

    #[test]
    fn equal_destinations_share_a_number() {
        let a = Destination::new("a.test", "default", None).intern();
        let b = Destination::new("b.test", "default", None).intern();
        assert_ne!(a, b);
        assert_eq!(Destination::new("a.test", "default", None).intern(), a);
        assert_eq!(a.get().service, "a.test");
    }
}
