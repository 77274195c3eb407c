//! Cross-resource checks and Istio's defaults: typed resources in, [`ResolvedConfig`] out.

mod authentication;
mod authorization;
mod checks;
mod destinations;
mod gateway_api;
mod gateways;
mod listeners;
mod plugins;
mod providers;
mod routes;
mod scope;
mod services;
mod tls;
mod workloads;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use checks::{dns1123_label, dns1123_subdomain, host_covers};
use scope::Scope;

use super::diag::{Reporter, Site};
use super::model::service_entry::ServiceEntrySpec;
use super::model::virtual_service::VirtualServiceSpec;
use super::model::{Resource, Spec};
use super::resolved::ResolvedConfig;

/// A typed spec and where it came from.
pub struct Input<'a, T> {
    pub spec: &'a T,
    pub name: &'a str,
    pub namespace: &'a str,
    pub site: Site,
}

impl<T> Input<'_, T> {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The resource's root, whose findings go to `reporter`.
    pub fn scope<'r>(&'r self, reporter: &'r Reporter) -> Scope<'r> {
        Scope::new(reporter, &self.site, "")
    }
}

#[cfg(test)]
impl<'a, T> Input<'a, T> {
    /// A test resource `kind/name` in `namespace`, the first document of its file.
    pub fn test(spec: &'a T, kind: &str, namespace: &'a str, name: &'a str) -> Self {
        Self {
            spec,
            name,
            namespace,
            site: Site {
                document: 0,
                resource: format!("{kind}/{name}"),
            },
        }
    }
}

/// What the resolver needs to know about the file's surroundings.
pub struct Context<'a> {
    /// The config file's folder: relative paths in the config are relative to it.
    pub base_dir: &'a Path,
}

impl Context<'_> {
    /// `file` relative to the config's folder (absolute paths stay as they are).
    pub fn path(&self, file: &str) -> PathBuf {
        self.base_dir.join(file)
    }
}

/// Checks every resource against the others and applies Istio's defaults.
pub fn resolve(
    resources: &[Resource],
    ctx: &Context<'_>,
    reporter: &mut Reporter,
) -> ResolvedConfig {
    let reporter = &*reporter;
    let unique = unique(resources, reporter);
    let translation = gateway_api::translate(&unique, reporter);
    let (translated, gateway_api) = (translation.resources, translation.status);
    let unique: Vec<&Resource> = unique.into_iter().chain(&translated).collect();
    macro_rules! inputs {
        ($variant:ident) => {
            unique
                .iter()
                .filter_map(|r| match &r.spec {
                    Spec::$variant(spec) => Some(Input {
                        spec: spec.as_ref(),
                        name: &r.name,
                        namespace: &r.namespace,
                        site: site(r),
                    }),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
    }
    let gateway_inputs = inputs!(Gateway);
    let service_inputs = inputs!(ServiceEntry);
    let rule_inputs = inputs!(DestinationRule);
    let route_inputs = inputs!(VirtualService);
    let plugin_inputs = inputs!(WasmPlugin);
    let authorization_inputs = inputs!(AuthorizationPolicy);
    let authentication_inputs = inputs!(RequestAuthentication);
    let mesh_inputs = inputs!(MeshConfig);

    let gateways = gateways::resolve(&gateway_inputs, ctx, reporter);
    let services = services::resolve(&service_inputs, reporter);
    let (clusters, subsets) = destinations::resolve(&rule_inputs, &services, ctx, reporter);
    let targets = routes::Targets {
        gateways: &gateways,
        services: &services,
        subsets: &subsets,
    };
    let bound = routes::resolve(&route_inputs, &targets, reporter);
    let listeners = listeners::build(&gateways, &bound, reporter);
    let mut attachable = attachable(&gateways, &route_inputs, &service_inputs, &subsets);
    attachable.extension_refs = translation.plugin_refs;
    let mut plugins = plugins::resolve(&plugin_inputs, &attachable, ctx, reporter);
    plugins.extend(authentication::plugins(
        &authentication_inputs,
        &attachable.gateways,
        ctx,
        reporter,
    ));
    let providers = providers::resolve(&mesh_inputs, &clusters, reporter);
    plugins.extend(authorization::plugins(
        &authorization_inputs,
        &attachable.gateways,
        &providers,
        reporter,
    ));
    ResolvedConfig {
        hash: String::new(),
        listeners,
        clusters,
        plugins,
        providers: providers.resolved,
        gateway_api,
    }
}

/// The resources, each kind and `namespace/name` once: a repeat is an error and dropped.
fn unique<'a>(resources: &'a [Resource], reporter: &Reporter) -> Vec<&'a Resource> {
    let mut seen: BTreeMap<(String, String), ()> = BTreeMap::new();
    let mut unique = Vec::new();
    for resource in resources {
        let site = site(resource);
        let key = (
            resource.kind().to_string(),
            format!("{}/{}", resource.namespace, resource.name),
        );
        if seen.insert(key, ()).is_some() {
            Scope::new(reporter, &site, "metadata.name").error(format!(
                "{} {}/{} is defined twice",
                resource.kind(),
                resource.namespace,
                resource.name
            ));
            continue;
        }
        unique.push(resource);
    }
    unique
}

/// What WasmPlugins may attach to: Gateways, VirtualServices (and their routes'
/// names) and ServiceEntries (and their hosts, and those hosts' subsets).
fn attachable<'a>(
    gateways: &BTreeMap<String, Vec<gateways::GatewayServer>>,
    virtual_services: &[Input<'_, VirtualServiceSpec>],
    service_entries: &[Input<'_, ServiceEntrySpec>],
    subsets: &'a destinations::Subsets,
) -> plugins::Attachable<'a> {
    plugins::Attachable {
        gateways: gateways.keys().cloned().collect(),
        virtual_services: virtual_services
            .iter()
            .map(|vs| {
                let names = vs
                    .spec
                    .http
                    .iter()
                    .enumerate()
                    .map(|(i, r)| r.name.clone().unwrap_or_else(|| format!("{}.{i}", vs.name)))
                    .collect();
                (vs.key(), names)
            })
            .collect(),
        service_entries: service_entries
            .iter()
            .map(|se| (se.key(), se.spec.hosts.clone()))
            .collect(),
        subsets,
        extension_refs: gateway_api::PluginRefs::new(),
    }
}

/// Where the resource is, for diagnostics.
fn site(resource: &Resource) -> Site {
    Site {
        document: resource.document,
        resource: format!("{}/{}", resource.kind(), resource.name),
    }
}
