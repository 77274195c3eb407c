//! WasmPlugin: the component file, its checksum, ordering, failure strategy and attachment.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::{Context, Input};
use crate::config::diag::{Reporter, Site};
use crate::config::model::wasm_plugin::{
    FailStrategy, Phase, PluginLimits as LimitsSpec, PluginType, TargetRef, ValueFrom,
    WasmPluginSpec, WorkloadMode,
};
use crate::config::resolved::{Plugin, PluginLimits, PluginTarget};

/// The names plugins may attach to.
#[derive(Debug, Default)]
pub struct Attachable {
    /// Gateway keys (`namespace/name`).
    pub gateways: Vec<String>,
    /// VirtualService keys and their route names.
    pub virtual_services: BTreeMap<String, Vec<String>>,
    /// ServiceEntry keys and their hosts.
    pub service_entries: BTreeMap<String, Vec<String>>,
}

/// Checks every WasmPlugin.
pub fn resolve(
    plugins: &[Input<'_, WasmPluginSpec>],
    attachable: &Attachable,
    ctx: &Context<'_>,
    reporter: &mut Reporter,
) -> Vec<Plugin> {
    plugins
        .iter()
        .filter_map(|plugin| wasm_plugin(plugin, attachable, ctx, reporter))
        .collect()
}

fn wasm_plugin(
    plugin: &Input<'_, WasmPluginSpec>,
    attachable: &Attachable,
    ctx: &Context<'_>,
    reporter: &mut Reporter,
) -> Option<Plugin> {
    let (spec, site) = (plugin.spec, &plugin.site);
    let errors = reporter.error_count();
    for (field, set) in [
        ("imagePullPolicy", spec.image_pull_policy.is_some()),
        ("imagePullSecret", spec.image_pull_secret.is_some()),
    ] {
        if set {
            reporter.warn(
                site,
                format!("spec.{field}"),
                "Portcullis loads plugins from files and pulls no images; ignored",
            );
        }
    }
    if spec.verification_key.is_some() {
        reporter.warn(
            site,
            "spec.verificationKey",
            "not implemented by Istio either; ignored (use sha256)",
        );
    }
    if spec.plugin_type == Some(PluginType::Network) {
        reporter.error(
            site,
            "spec.type",
            "NETWORK plugins are not supported: Portcullis plugins see HTTP requests",
        );
    }
    let path = file(spec.url.as_deref(), ctx, site, reporter);
    let sha256 = checksum(spec.sha256.as_deref(), path.as_deref(), site, reporter);
    let config = match &spec.plugin_config {
        None => serde_json::Value::Null,
        Some(value) => match serde_json::to_value(value) {
            Ok(json) => json,
            Err(e) => {
                reporter.error(
                    site,
                    "spec.pluginConfig",
                    format!("pluginConfig cannot be passed as JSON: {e}"),
                );
                serde_json::Value::Null
            }
        },
    };
    let targets = targets(spec, plugin.namespace, attachable, site, reporter);
    // The entries are ORed: one without ports selects every port.
    let (mut ports, mut every_port, mut selects) = (Vec::new(), false, spec.matches.is_empty());
    for (i, selector) in spec.matches.iter().enumerate() {
        if selector.mode == Some(WorkloadMode::Server) {
            reporter.warn(site, format!("spec.match[{i}].mode"), "SERVER mode selects sidecar inbound traffic; a gateway's traffic is CLIENT, so this entry selects nothing");
            continue;
        }
        selects = true;
        every_port |= selector.ports.is_empty();
        for (j, port) in selector.ports.iter().enumerate() {
            match port.number.map(u16::try_from) {
                Some(Ok(n)) if n > 0 => ports.push(n),
                _ => reporter.error(
                    site,
                    format!("spec.match[{i}].ports[{j}].number"),
                    "port number must be in the range 1..65535",
                ),
            }
        }
    }
    if !selects {
        reporter.warn(
            site,
            "spec.match",
            "every entry is SERVER mode, so the plugin applies to no traffic; ignored",
        );
        return None;
    }
    if every_port {
        ports.clear();
    }
    if spec.plugin_name.as_deref() == Some("") {
        reporter.error(site, "spec.pluginName", "pluginName must not be empty");
    } else if spec.plugin_name.is_some() {
        reporter.warn(
            site,
            "spec.pluginName",
            "selects a proxy-wasm root context; a component has one plugin, so this is ignored",
        );
    }
    let mut env = Vec::new();
    for (i, var) in spec.vm_config.iter().flat_map(|vm| &vm.env).enumerate() {
        let p = format!("spec.vmConfig.env[{i}]");
        let Some(name) = var.name.clone().filter(|n| !n.is_empty()) else {
            reporter.error(
                site,
                format!("{p}.name"),
                "environment variable name is required",
            );
            continue;
        };
        if env.iter().any(|(known, _)| *known == name) {
            reporter.error(
                site,
                format!("{p}.name"),
                format!("environment variable {name:?} is set twice"),
            );
            continue;
        }
        let value = match var.value_from.unwrap_or(ValueFrom::Inline) {
            ValueFrom::Inline => var.value.clone().unwrap_or_default(),
            ValueFrom::Host => {
                if var.value.is_some() {
                    reporter.error(site, format!("{p}.value"), "valueFrom HOST takes the value from the gateway's environment; value must not be set");
                }
                std::env::var(&name).unwrap_or_default()
            }
        };
        env.push((name, value));
    }
    let limits = limits(spec.limits.as_ref(), site, reporter);
    if reporter.error_count() > errors {
        return None;
    }
    Some(Plugin {
        name: plugin.key(),
        path: path?,
        sha256,
        phase: spec.phase.unwrap_or(Phase::UnspecifiedPhase),
        priority: spec.priority.unwrap_or(0),
        fail_strategy: spec.fail_strategy.unwrap_or(FailStrategy::FailClose),
        config,
        targets,
        ports,
        env,
        limits,
    })
}

/// The plugin's limits: the defaults, overridden by `spec.limits`, within the maxima.
fn limits(spec: Option<&LimitsSpec>, site: &Site, reporter: &mut Reporter) -> PluginLimits {
    let mut limits = PluginLimits::default();
    let Some(spec) = spec else {
        return limits;
    };
    if let Some(value) = &spec.memory {
        match memory_bytes(value) {
            Some(bytes) if (1 << 20..=PluginLimits::MAX_MEMORY).contains(&bytes) => {
                limits.memory = bytes;
            }
            Some(_) => reporter.error(
                site,
                "spec.limits.memory",
                format!(
                    "memory must be between 1Mi and {}Mi",
                    PluginLimits::MAX_MEMORY >> 20
                ),
            ),
            None => reporter.error(
                site,
                "spec.limits.memory",
                "expected bytes or a quantity such as 64Mi or 1Gi",
            ),
        }
    }
    if let Some(timeout) = spec.timeout {
        match timeout.0 {
            t if t >= std::time::Duration::from_millis(1) && t <= PluginLimits::MAX_TIMEOUT => {
                limits.timeout = t;
            }
            _ => reporter.error(
                site,
                "spec.limits.timeout",
                format!(
                    "timeout must be between 1ms and {:?}",
                    PluginLimits::MAX_TIMEOUT
                ),
            ),
        }
    }
    limits
}

/// Bytes from a number or a Kubernetes quantity (`512Ki`, `64Mi`, `1Gi`, `100M`).
fn memory_bytes(value: &serde_yaml::Value) -> Option<usize> {
    if let Some(n) = value.as_u64() {
        return usize::try_from(n).ok();
    }
    let text = value.as_str()?.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let factor: usize = match unit {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        _ => return None,
    };
    number.parse::<usize>().ok()?.checked_mul(factor)
}

fn file(
    url: Option<&str>,
    ctx: &Context<'_>,
    site: &Site,
    reporter: &mut Reporter,
) -> Option<std::path::PathBuf> {
    let Some(url) = url else {
        reporter.error(site, "spec.url", "missing field `url`");
        return None;
    };
    let Some(file) = url.strip_prefix("file://") else {
        reporter.error(site, "spec.url", format!("{url:?}: only file:// URLs are supported; Portcullis does not download plugins, so fetch the module and point at the file"));
        return None;
    };
    let path = ctx.path(file);
    if let Err(e) = std::fs::metadata(&path) {
        reporter.error(
            site,
            "spec.url",
            format!("cannot read {}: {e}", path.display()),
        );
        return None;
    }
    Some(path)
}

fn checksum(
    expected: Option<&str>,
    path: Option<&std::path::Path>,
    site: &Site,
    reporter: &mut Reporter,
) -> Option<String> {
    let expected = expected?.to_ascii_lowercase();
    if expected.len() != 64 || !expected.bytes().all(|b| b.is_ascii_hexdigit()) {
        reporter.error(site, "spec.sha256", "sha256 must be 64 hexadecimal digits");
        return None;
    }
    let bytes = match std::fs::read(path?) {
        Ok(bytes) => bytes,
        Err(e) => {
            reporter.error(
                site,
                "spec.url",
                format!("cannot read {}: {e}", path?.display()),
            );
            return None;
        }
    };
    let actual = hex::encode(Sha256::digest(&bytes));
    if actual != expected {
        reporter.error(
            site,
            "spec.sha256",
            format!(
                "{} has sha256 {actual}, not the {expected} the config expects",
                path?.display()
            ),
        );
        return None;
    }
    Some(expected)
}

fn targets(
    spec: &WasmPluginSpec,
    namespace: &str,
    attachable: &Attachable,
    site: &Site,
    reporter: &mut Reporter,
) -> Vec<PluginTarget> {
    let mut refs: Vec<(String, &TargetRef)> = spec
        .target_refs
        .iter()
        .enumerate()
        .map(|(i, r)| (format!("spec.targetRefs[{i}]"), r))
        .collect();
    if let Some(single) = &spec.target_ref {
        reporter.warn(site, "spec.targetRef", "deprecated: use targetRefs");
        refs.push(("spec.targetRef".to_string(), single));
    }
    if spec.selector.is_some() {
        if refs.is_empty() {
            reporter.warn(site, "spec.selector", "selects Kubernetes workloads; ignored, so the plugin applies to every route (use targetRefs to narrow it)");
        } else {
            reporter.error(
                site,
                "spec.selector",
                "set only one of selector or targetRefs",
            );
        }
    }
    let mut targets = Vec::new();
    for (path, target) in refs {
        let Some(name) = target.name.as_deref() else {
            reporter.error(site, format!("{path}.name"), "target name is required");
            continue;
        };
        let key = format!(
            "{}/{name}",
            target.namespace.as_deref().unwrap_or(namespace)
        );
        let kind = target.kind.as_deref().unwrap_or_default();
        let group = target.group.as_deref().unwrap_or_default();
        if !matches!(group, "" | "networking.istio.io") {
            reporter.error(
                site,
                format!("{path}.group"),
                format!("group {group:?}: only networking.istio.io resources (Gateway, VirtualService, ServiceEntry) can be targeted"),
            );
            continue;
        }
        let found = match kind {
            "Gateway" => attachable
                .gateways
                .contains(&key)
                .then(|| PluginTarget::Gateway(key.clone())),
            "VirtualService" => match (
                attachable.virtual_services.get(&key),
                target.section_name.as_deref(),
            ) {
                (Some(routes), Some(route)) if !routes.iter().any(|r| r == route) => {
                    reporter.error(
                        site,
                        format!("{path}.sectionName"),
                        format!(
                            "VirtualService {key} has no route named {route:?} (routes: {})",
                            routes.join(", ")
                        ),
                    );
                    continue;
                }
                (Some(_), route) => Some(PluginTarget::VirtualService {
                    name: key.clone(),
                    route: route.map(String::from),
                }),
                (None, _) => None,
            },
            "ServiceEntry" => attachable.service_entries.get(&key).map(|hosts| {
                targets.extend(
                    hosts
                        .iter()
                        .skip(1)
                        .map(|h| PluginTarget::Service(h.clone())),
                );
                PluginTarget::Service(hosts[0].clone())
            }),
            "GatewayClass" => {
                reporter.warn(
                    site,
                    format!("{path}.kind"),
                    "Portcullis is its only GatewayClass: the plugin applies to every Gateway",
                );
                continue;
            }
            "Service" => {
                reporter.error(site, format!("{path}.kind"), "kind Service names a Kubernetes Service, which a standalone gateway does not see: use ServiceEntry");
                continue;
            }
            other => {
                reporter.error(site, format!("{path}.kind"), format!("unsupported target kind {other:?}: use Gateway, VirtualService (sectionName: a route name) or ServiceEntry"));
                continue;
            }
        };
        match found {
            Some(target) => targets.push(target),
            None => reporter.error(
                site,
                format!("{path}.name"),
                format!("{kind} {key} is not defined"),
            ),
        }
    }
    targets
}
