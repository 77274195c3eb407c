//! From YAML documents to typed resources, reporting every document that does not fit.

use serde::de::DeserializeOwned;

use super::diag::{Reporter, Site};
use super::model::gateway_api::NamespaceSpec;
use super::model::{Envelope, Kind, Resource, Spec};
use super::source::Document;

/// The namespace of a resource that names none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Istio kinds that only configure a mesh: accepted with a warning, then ignored.
const MESH_ONLY_KINDS: &[&str] = &[
    "Sidecar",
    "PeerAuthentication",
    "RequestAuthentication",
    "Telemetry",
    "EnvoyFilter",
    "ProxyConfig",
    "WorkloadEntry",
    "WorkloadGroup",
];

/// Kubernetes workload kinds that come with Gateway API bundles: accepted with a warning,
/// then ignored (backends are ServiceEntry hosts here). Namespaces are read for their
/// labels.
const KUBERNETES_KINDS: &[&str] = &[
    "Service",
    "Deployment",
    "Secret",
    "ConfigMap",
    "EndpointSlice",
    "ServiceAccount",
];

/// Types every document; documents that fail are reported and skipped.
pub fn resources(documents: &[Document], reporter: &mut Reporter) -> Vec<Resource> {
    documents
        .iter()
        .enumerate()
        .filter_map(|(index, document)| resource(index, document, reporter))
        .collect()
}

fn resource(index: usize, document: &Document, reporter: &mut Reporter) -> Option<Resource> {
    let anonymous = Site {
        document: index,
        resource: String::new(),
    };
    if document.value["kind"].as_str() == Some("Namespace") {
        return Some(namespace(index, document));
    }
    if is_mesh_config(document) {
        return mesh_config(index, document, reporter);
    }
    if let Some(kind) = kubernetes_kind(document) {
        let name = document.value["metadata"]["name"]
            .as_str()
            .unwrap_or_default();
        let site = Site {
            document: index,
            resource: format!("{kind}/{name}"),
        };
        reporter.warn(
            &site,
            "kind",
            format!("a standalone gateway does not read Kubernetes {kind}s (backends are ServiceEntry hosts, TLS Secrets folders beside the config); ignored"),
        );
        return None;
    }
    let envelope: Envelope = typed(document.value.clone(), "", &anonymous, reporter)?;
    let Some(kind_name) = envelope.kind.as_deref() else {
        reporter.error(&anonymous, "kind", "missing field `kind`");
        return None;
    };
    let name = envelope.metadata.name.clone().unwrap_or_default();
    let site = Site {
        document: index,
        resource: if name.is_empty() {
            kind_name.to_string()
        } else {
            format!("{kind_name}/{name}")
        },
    };
    let group = envelope
        .api_version
        .as_deref()
        .and_then(|v| v.split_once('/'))
        .map_or("", |(group, _)| group);
    let Some(kind) = Kind::from_name(group, kind_name) else {
        if MESH_ONLY_KINDS.contains(&kind_name) {
            reporter.warn(
                &site,
                "kind",
                format!("{kind_name} only configures a service mesh; ignored"),
            );
        } else {
            reporter.error(
                &site,
                "kind",
                format!(
                    "unknown kind {kind_name:?}: expected Gateway, VirtualService, DestinationRule, ServiceEntry (networking.istio.io), WasmPlugin (extensions.istio.io) or AuthorizationPolicy and RequestAuthentication (security.istio.io), or Gateway, GatewayClass, HTTPRoute, GRPCRoute, ReferenceGrant or BackendTLSPolicy (gateway.networking.k8s.io)"
                ),
            );
        }
        return None;
    };
    check_api_version(kind, envelope.api_version.as_deref(), &site, reporter);
    if name.is_empty() {
        reporter.error(&site, "metadata.name", "missing field `name`");
    } else if !super::resolve::dns1123_subdomain(&name) {
        reporter.error(
            &site,
            "metadata.name",
            format!(
                "{name:?} is not a valid name: lowercase letters, digits, '-' and '.' (RFC 1123)"
            ),
        );
    } else if kind == Kind::Gateway && !super::resolve::dns1123_label(&name) {
        reporter.error(
            &site,
            "metadata.name",
            format!("{name:?} is not a valid Gateway name: lowercase letters, digits and '-', no dots (RFC 1123 label), as Istio requires"),
        );
    }
    let spec = &envelope.spec;
    let spec = match kind {
        Kind::Gateway => Spec::Gateway(typed(spec.clone(), "spec", &site, reporter)?),
        Kind::VirtualService => Spec::VirtualService(typed(spec.clone(), "spec", &site, reporter)?),
        Kind::DestinationRule => {
            Spec::DestinationRule(typed(spec.clone(), "spec", &site, reporter)?)
        }
        Kind::ServiceEntry => Spec::ServiceEntry(typed(spec.clone(), "spec", &site, reporter)?),
        Kind::WasmPlugin => Spec::WasmPlugin(typed(spec.clone(), "spec", &site, reporter)?),
        Kind::GatewayClass => Spec::GatewayClass(typed(spec.clone(), "spec", &site, reporter)?),
        Kind::KubeGateway => Spec::KubeGateway(typed(spec.clone(), "spec", &site, reporter)?),
        Kind::HttpRoute => Spec::HttpRoute(typed(spec.clone(), "spec", &site, reporter)?),
        Kind::ReferenceGrant => Spec::ReferenceGrant(typed(spec.clone(), "spec", &site, reporter)?),
        Kind::RequestAuthentication => {
            Spec::RequestAuthentication(typed(spec.clone(), "spec", &site, reporter)?)
        }
        Kind::AuthorizationPolicy => {
            Spec::AuthorizationPolicy(typed(spec.clone(), "spec", &site, reporter)?)
        }
        Kind::Namespace => return Some(namespace(index, document)),
        Kind::MeshConfig => return mesh_config(index, document, reporter),
        Kind::GrpcRoute => Spec::GrpcRoute(typed(spec.clone(), "spec", &site, reporter)?),
        Kind::TlsRoute => Spec::TlsRoute(typed(spec.clone(), "spec", &site, reporter)?),
        Kind::TcpRoute => Spec::TcpRoute(typed(spec.clone(), "spec", &site, reporter)?),
        Kind::BackendTlsPolicy => {
            Spec::BackendTlsPolicy(typed(spec.clone(), "spec", &site, reporter)?)
        }
    };
    Some(Resource {
        name,
        namespace: envelope
            .metadata
            .namespace
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string()),
        spec,
        document: index,
    })
}

/// Whether `document` is Istio's mesh config: the ConfigMap `istio` of `istio-system`.
fn is_mesh_config(document: &Document) -> bool {
    let value = &document.value;
    value["kind"].as_str() == Some("ConfigMap")
        && value["metadata"]["name"].as_str() == Some("istio")
        && value["metadata"]["namespace"].as_str() == Some(MESH_NAMESPACE)
}

/// The mesh config in the ConfigMap's `data.mesh` (YAML text, as istiod reads it).
fn mesh_config(index: usize, document: &Document, reporter: &mut Reporter) -> Option<Resource> {
    let site = Site {
        document: index,
        resource: "ConfigMap/istio".into(),
    };
    let text = document.value["data"]["mesh"].as_str().unwrap_or_default();
    let value: serde_yaml::Value = match serde_yaml::from_str(text) {
        Ok(value) => value,
        Err(e) => {
            reporter.error(&site, "data.mesh", format!("not YAML: {e}"));
            return None;
        }
    };
    Some(Resource {
        name: "istio".into(),
        namespace: MESH_NAMESPACE.into(),
        spec: Spec::MeshConfig(typed(value, "data.mesh", &site, reporter)?),
        document: index,
    })
}

/// Where Istio's mesh config lives.
const MESH_NAMESPACE: &str = "istio-system";

/// A Namespace document: its name and labels (its other fields are Kubernetes').
fn namespace(index: usize, document: &Document) -> Resource {
    let metadata = &document.value["metadata"];
    let name = metadata["name"].as_str().unwrap_or_default().to_string();
    let labels = metadata["labels"]
        .as_mapping()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string())))
        .collect();
    Resource {
        namespace: name.clone(),
        name,
        spec: Spec::Namespace(Box::new(NamespaceSpec { labels })),
        document: index,
    }
}

/// The document's kind when it is one of [`KUBERNETES_KINDS`] (whose fields, like a
/// Secret's `data`, are not an Istio resource's).
fn kubernetes_kind(document: &Document) -> Option<&str> {
    let kind = document.value["kind"].as_str()?;
    KUBERNETES_KINDS.contains(&kind).then_some(kind)
}

fn check_api_version(kind: Kind, api_version: Option<&str>, site: &Site, reporter: &mut Reporter) {
    let accepted = || {
        kind.versions()
            .iter()
            .map(|v| format!("{}/{v}", kind.group()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match api_version {
        None => reporter.error(
            site,
            "apiVersion",
            format!("missing field `apiVersion`: expected one of {}", accepted()),
        ),
        Some(version) => {
            let known = version
                .split_once('/')
                .is_some_and(|(group, v)| group == kind.group() && kind.versions().contains(&v));
            if !known {
                reporter.error(
                    site,
                    "apiVersion",
                    format!(
                        "{kind} does not exist in {version:?}: expected one of {}",
                        accepted()
                    ),
                );
            }
        }
    }
}

/// Deserializes `value` as `T`, reporting the failing field's path under `prefix`.
fn typed<T: DeserializeOwned>(
    value: serde_yaml::Value,
    prefix: &str,
    site: &Site,
    reporter: &mut Reporter,
) -> Option<T> {
    let value = if value.is_null() && !prefix.is_empty() {
        serde_yaml::Value::Mapping(Default::default())
    } else {
        value
    };
    match serde_path_to_error::deserialize(value) {
        Ok(typed) => Some(typed),
        Err(error) => {
            let inner = error.path().to_string();
            let path = match (prefix.is_empty(), inner.as_str()) {
                (_, ".") => prefix.to_string(),
                (true, _) => inner.clone(),
                (false, _) => format!("{prefix}.{inner}"),
            };
            reporter.error(site, path, error.into_inner().to_string());
            None
        }
    }
}
