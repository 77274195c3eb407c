//! WasmPlugin: the component file, its checksum, ordering, failure strategy and attachment.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::destinations::Subsets;
use super::gateway_api::PluginRefs;
use super::scope::Scope;
use super::{Context, Input};
use crate::config::diag::Reporter;
use crate::config::model::GATEWAY_API;
use crate::config::model::wasm_plugin::{
    FailStrategy, Phase, PluginLimits as LimitsSpec, PluginType, TargetRef, ValueFrom,
    WasmPluginSpec, WorkloadMode,
};
use crate::config::resolved::{Plugin, PluginLimits, PluginTarget, Source};

/// The names plugins may attach to.
#[derive(Debug)]
pub struct Attachable<'a> {
    /// Gateway keys (`namespace/name`).
    pub gateways: Vec<String>,
    /// VirtualService keys and their route names.
    pub virtual_services: BTreeMap<String, Vec<String>>,
    /// ServiceEntry keys and their hosts.
    pub service_entries: BTreeMap<String, Vec<String>>,
    /// Each host's DestinationRule subsets.
    pub subsets: &'a Subsets,
    /// The rules of HTTPRoutes and GRPCRoutes naming each plugin (`namespace/name`) in an
    /// `ExtensionRef` filter: targets beside its own.
    pub extension_refs: PluginRefs,
}

/// Checks every WasmPlugin.
pub fn resolve(
    plugins: &[Input<'_, WasmPluginSpec>],
    attachable: &Attachable,
    ctx: &Context<'_>,
    reporter: &Reporter,
) -> Vec<Plugin> {
    plugins
        .iter()
        .filter_map(|plugin| {
            let at = plugin.scope(reporter).field("spec");
            wasm_plugin(plugin, attachable, ctx, &at)
        })
        .collect()
}

/// One WasmPlugin; `None` when it has errors or applies to no traffic.
fn wasm_plugin(
    plugin: &Input<'_, WasmPluginSpec>,
    attachable: &Attachable,
    ctx: &Context<'_>,
    at: &Scope<'_>,
) -> Option<Plugin> {
    let spec = plugin.spec;
    let errors = at.error_count();
    check_unsupported(spec, at);
    let source = source(spec.url.as_deref(), ctx, &at.field("url"));
    let path = source.as_ref().and_then(Source::file);
    let sha256 = match &source {
        Some(Source::Builtin(_)) if spec.sha256.is_some() => {
            at.field("sha256")
                .warn("a built-in component comes with the gateway: ignored");
            None
        }
        _ => checksum(
            spec.sha256.as_deref(),
            path.map(std::path::PathBuf::as_path),
            at,
        ),
    };
    let config = plugin_config(spec, &at.field("pluginConfig"));
    let targets = targets(spec, (plugin.namespace, plugin.name), attachable, at);
    let ports = ports(spec, &at.field("match"))?;
    if spec.plugin_name.as_deref() == Some("") {
        at.field("pluginName").error("pluginName must not be empty");
    } else if spec.plugin_name.is_some() {
        at.field("pluginName").warn(
            "selects a proxy-wasm root context; a component has one plugin, so this is ignored",
        );
    }
    let env = env(spec, &at.field("vmConfig").field("env"));
    let limits = limits(spec.limits.as_ref(), &at.field("limits"));
    if at.error_count() > errors {
        return None;
    }
    Some(Plugin {
        name: plugin.key(),
        source: source?,
        sha256,
        phase: spec.phase.unwrap_or(Phase::UnspecifiedPhase),
        priority: spec.priority.unwrap_or(0),
        fail_strategy: spec.fail_strategy.unwrap_or(FailStrategy::FailClose),
        config,
        targets,
        ports,
        env,
        limits,
        before_routing: false,
    })
}

/// Image fields, the verification key and NETWORK plugins, which are not supported.
fn check_unsupported(spec: &WasmPluginSpec, at: &Scope<'_>) {
    for (field, set) in [
        ("imagePullPolicy", spec.image_pull_policy.is_some()),
        ("imagePullSecret", spec.image_pull_secret.is_some()),
    ] {
        if set {
            at.field(field)
                .warn("Portcullis loads plugins from files and pulls no images; ignored");
        }
    }
    if spec.verification_key.is_some() {
        at.field("verificationKey")
            .warn("not implemented by Istio either; ignored (use sha256)");
    }
    if spec.plugin_type == Some(PluginType::Network) {
        at.field("type")
            .error("NETWORK plugins are not supported: Portcullis plugins see HTTP requests");
    }
}

/// `pluginConfig`, as the JSON the plugin is given.
fn plugin_config(spec: &WasmPluginSpec, at: &Scope<'_>) -> serde_json::Value {
    let Some(value) = &spec.plugin_config else {
        return serde_json::Value::Null;
    };
    serde_json::to_value(value).unwrap_or_else(|e| {
        at.error(format!("pluginConfig cannot be passed as JSON: {e}"));
        serde_json::Value::Null
    })
}

/// The ports the plugin applies to (empty: every port); `None` when every `match`
/// entry is SERVER mode, so that it applies to no traffic.
fn ports(spec: &WasmPluginSpec, at: &Scope<'_>) -> Option<Vec<u16>> {
    // The entries are ORed: one without ports selects every port.
    let (mut ports, mut every_port, mut selects) = (Vec::new(), false, spec.matches.is_empty());
    for (i, selector) in spec.matches.iter().enumerate() {
        let selector_at = at.index(i);
        if selector.mode == Some(WorkloadMode::Server) {
            selector_at.field("mode").warn("SERVER mode selects sidecar inbound traffic; a gateway's traffic is CLIENT, so this entry selects nothing");
            continue;
        }
        selects = true;
        every_port |= selector.ports.is_empty();
        for (j, port) in selector.ports.iter().enumerate() {
            match port.number.map(u16::try_from) {
                Some(Ok(n)) if n > 0 => ports.push(n),
                _ => selector_at
                    .field("ports")
                    .index(j)
                    .field("number")
                    .error("port number must be in the range 1..65535"),
            }
        }
    }
    if !selects {
        at.warn("every entry is SERVER mode, so the plugin applies to no traffic; ignored");
        return None;
    }
    if every_port {
        ports.clear();
    }
    Some(ports)
}

/// The plugin's environment variables, each named once.
fn env(spec: &WasmPluginSpec, at: &Scope<'_>) -> Vec<(String, String)> {
    let mut env = Vec::new();
    for (i, var) in spec.vm_config.iter().flat_map(|vm| &vm.env).enumerate() {
        let var_at = at.index(i);
        let Some(name) = var.name.clone().filter(|n| !n.is_empty()) else {
            var_at
                .field("name")
                .error("environment variable name is required");
            continue;
        };
        if env.iter().any(|(known, _)| *known == name) {
            var_at
                .field("name")
                .error(format!("environment variable {name:?} is set twice"));
            continue;
        }
        let value = match var.value_from.unwrap_or(ValueFrom::Inline) {
            ValueFrom::Inline => var.value.clone().unwrap_or_default(),
            ValueFrom::Host => {
                if var.value.is_some() {
                    var_at.field("value").error("valueFrom HOST takes the value from the gateway's environment; value must not be set");
                }
                std::env::var(&name).unwrap_or_default()
            }
        };
        env.push((name, value));
    }
    env
}

/// The plugin's limits: the defaults, overridden by `spec.limits`, within the maxima.
fn limits(spec: Option<&LimitsSpec>, at: &Scope<'_>) -> PluginLimits {
    let mut limits = PluginLimits::default();
    let Some(spec) = spec else {
        return limits;
    };
    if let Some(value) = &spec.memory {
        match memory_bytes(value) {
            Some(bytes) if (1 << 20..=PluginLimits::MAX_MEMORY).contains(&bytes) => {
                limits.memory = bytes;
            }
            Some(_) => at.field("memory").error(format!(
                "memory must be between 1Mi and {}Mi",
                PluginLimits::MAX_MEMORY >> 20
            )),
            None => at
                .field("memory")
                .error("expected bytes or a quantity such as 64Mi or 1Gi"),
        }
    }
    if let Some(timeout) = spec.timeout {
        match timeout.0 {
            t if t >= std::time::Duration::from_millis(1) && t <= PluginLimits::MAX_TIMEOUT => {
                limits.timeout = t;
            }
            _ => at.field("timeout").error(format!(
                "timeout must be between 1ms and {:?}",
                PluginLimits::MAX_TIMEOUT
            )),
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

/// The component file a `file://` URL names; it must be readable.
fn source(url: Option<&str>, ctx: &Context<'_>, at: &Scope<'_>) -> Option<Source> {
    let Some(url) = url else {
        at.error("missing field `url`");
        return None;
    };
    if let Some(name) = url.strip_prefix("builtin:") {
        // The gateway runs its other built-in filters itself, with what only they may use.
        if name != "rate-limit" {
            at.error(format!(
                "{url:?}: a WasmPlugin may run builtin:rate-limit; the other built-ins serve AuthorizationPolicy and RequestAuthentication"
            ));
            return None;
        }
        return Some(Source::Builtin(name.to_string()));
    }
    let Some(file) = url.strip_prefix("file://") else {
        at.error(format!("{url:?}: only file:// URLs (and builtin: for the gateway's own components) are supported; Portcullis does not download plugins, so fetch the module and point at the file"));
        return None;
    };
    let path = ctx.path(file);
    if let Err(e) = std::fs::metadata(&path) {
        at.error(format!("cannot read {}: {e}", path.display()));
        return None;
    }
    Some(Source::File(path))
}

/// The expected sha256 of the component, which its file must have.
fn checksum(
    expected: Option<&str>,
    path: Option<&std::path::Path>,
    at: &Scope<'_>,
) -> Option<String> {
    let expected = expected?.to_ascii_lowercase();
    let sha256_at = at.field("sha256");
    if expected.len() != 64 || !expected.bytes().all(|b| b.is_ascii_hexdigit()) {
        sha256_at.error("sha256 must be 64 hexadecimal digits");
        return None;
    }
    let bytes = match std::fs::read(path?) {
        Ok(bytes) => bytes,
        Err(e) => {
            at.field("url")
                .error(format!("cannot read {}: {e}", path?.display()));
            return None;
        }
    };
    let actual = hex::encode(Sha256::digest(&bytes));
    if actual != expected {
        sha256_at.error(format!(
            "{} has sha256 {actual}, not the {expected} the config expects",
            path?.display()
        ));
        return None;
    }
    Some(expected)
}

/// What the plugin attaches to: its `targetRefs`, and the rules whose `ExtensionRef`
/// filters name it (empty: every route).
fn targets(
    spec: &WasmPluginSpec,
    (namespace, name): (&str, &str),
    attachable: &Attachable,
    at: &Scope<'_>,
) -> Vec<PluginTarget> {
    let mut refs: Vec<(Scope<'_>, &TargetRef)> = spec
        .target_refs
        .iter()
        .enumerate()
        .map(|(i, r)| (at.field("targetRefs").index(i), r))
        .collect();
    if let Some(single) = &spec.target_ref {
        let single_at = at.field("targetRef");
        single_at.warn("deprecated: use targetRefs");
        refs.push((single_at, single));
    }
    if spec.selector.is_some() {
        if refs.is_empty() {
            at.field("selector").warn("selects Kubernetes workloads; ignored, so the plugin applies to every route (use targetRefs to narrow it)");
        } else {
            at.field("selector")
                .error("set only one of selector or targetRefs");
        }
    }
    let mut targets = Vec::new();
    for (target_at, target) in refs {
        self::target(target, namespace, attachable, &target_at, &mut targets);
    }
    let named = attachable
        .extension_refs
        .get(&format!("{namespace}/{name}"));
    for target in named.into_iter().flatten() {
        self::target(target, namespace, attachable, at, &mut targets);
    }
    targets
}

/// The targets a ServiceEntry reference names, into `targets`: its hosts, or with a
/// `sectionName` the DestinationRule subset of that name of those hosts that have one.
fn services(
    hosts: &[String],
    subset: Option<&str>,
    attachable: &Attachable,
    at: &Scope<'_>,
    targets: &mut Vec<PluginTarget>,
) {
    let Some(subset) = subset else {
        targets.extend(hosts.iter().map(|host| PluginTarget::Service {
            host: host.clone(),
            subset: None,
        }));
        return;
    };
    let with_subset: Vec<&String> = hosts
        .iter()
        .filter(|h| {
            attachable
                .subsets
                .get(*h)
                .is_some_and(|s| s.contains(subset))
        })
        .collect();
    if with_subset.is_empty() {
        at.field("sectionName").error(format!(
            "no DestinationRule defines a subset {subset:?} for {}: sectionName names a subset of the ServiceEntry's hosts",
            hosts.join(", ")
        ));
    }
    targets.extend(with_subset.into_iter().map(|host| PluginTarget::Service {
        host: host.clone(),
        subset: Some(subset.to_string()),
    }));
}

/// The targets one reference names, into `targets`.
fn target(
    target: &TargetRef,
    namespace: &str,
    attachable: &Attachable,
    at: &Scope<'_>,
    targets: &mut Vec<PluginTarget>,
) {
    let Some(key) = target_key(target, namespace, at) else {
        return;
    };
    let kind = target.kind.as_deref().unwrap_or_default();
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
                at.field("sectionName").error(format!(
                    "VirtualService {key} has no route named {route:?} (routes: {})",
                    routes.join(", ")
                ));
                return;
            }
            (Some(_), route) => Some(PluginTarget::VirtualService {
                name: key.clone(),
                route: route.map(String::from),
            }),
            (None, _) => None,
        },
        "ServiceEntry" => match attachable.service_entries.get(&key) {
            Some(hosts) => {
                services(
                    hosts,
                    target.section_name.as_deref(),
                    attachable,
                    at,
                    targets,
                );
                return;
            }
            None => None,
        },
        "HTTPRoute" | "GRPCRoute" => {
            let routes = gateway_api_routes(&key, target.section_name.as_deref(), attachable);
            if routes.is_empty() {
                let what = match &target.section_name {
                    Some(rule) => format!("{kind} {key} has no rule named {rule:?} that is served"),
                    None => format!("{kind} {key} is not defined or serves no route"),
                };
                at.error(what);
            }
            targets.extend(routes);
            return;
        }
        "GatewayClass" => {
            at.field("kind")
                .warn("Portcullis is its only GatewayClass: the plugin applies to every Gateway");
            return;
        }
        "Service" => {
            at.field("kind").error("kind Service names a Kubernetes Service, which a standalone gateway does not see: use ServiceEntry");
            return;
        }
        other => {
            at.field("kind").error(format!("unsupported target kind {other:?}: use Gateway, VirtualService (sectionName: a route name), ServiceEntry, or HTTPRoute or GRPCRoute (sectionName: a rule name)"));
            return;
        }
    };
    match found {
        Some(target) => targets.push(target),
        None => at
            .field("name")
            .error(format!("{kind} {key} is not defined")),
    }
}

/// The Istio routes an HTTPRoute or GRPCRoute `namespace/name` became (all of its rules,
/// or its rule `rule`): in the VirtualServices of its namespace, the routes named
/// `<name>.<rule>.<match>.<backend>` (see `gateway_api::routes`).
fn gateway_api_routes(key: &str, rule: Option<&str>, attachable: &Attachable) -> Vec<PluginTarget> {
    let (namespace, name) = key.split_once('/').unwrap_or(("", key));
    let ours = |route: &str| {
        let Some(rest) = route.strip_prefix(name).and_then(|r| r.strip_prefix('.')) else {
            return false;
        };
        let parts: Vec<&str> = rest.split('.').collect();
        parts.len() == 3 && rule.is_none_or(|rule| parts[0] == rule)
    };
    let in_namespace = attachable
        .virtual_services
        .iter()
        .filter(|(vs, _)| vs.split_once('/').is_some_and(|(ns, _)| ns == namespace));
    in_namespace
        .flat_map(|(vs, routes)| {
            routes
                .iter()
                .filter(|r| ours(r))
                .map(|route| PluginTarget::VirtualService {
                    name: vs.clone(),
                    route: Some(route.clone()),
                })
        })
        .collect()
}

/// The `namespace/name` a reference names, when it names one in an Istio API group or
/// the Gateway API's.
fn target_key(target: &TargetRef, namespace: &str, at: &Scope<'_>) -> Option<String> {
    let Some(name) = target.name.as_deref() else {
        at.field("name").error("target name is required");
        return None;
    };
    let group = target.group.as_deref().unwrap_or_default();
    if !matches!(group, "" | "networking.istio.io" | GATEWAY_API) {
        at.field("group").error(format!("group {group:?}: only networking.istio.io resources (Gateway, VirtualService, ServiceEntry) and {GATEWAY_API} ones (Gateway, HTTPRoute, GRPCRoute) can be targeted"));
        return None;
    }
    Some(format!(
        "{}/{name}",
        target.namespace.as_deref().unwrap_or(namespace)
    ))
}
