//! AuthorizationPolicies: checked, then handed to the built-in authorization filter
//! (`plugins/builtin/authorization`), one instance per Gateway with every policy that
//! applies to it, since Istio's ALLOW policies are ORed across policies. It runs in the
//! AUTHZ phase after the WasmPlugins there, as Istio's RBAC filter follows them.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use serde_json::{Value, json};

use super::Input;
use super::providers::Providers;
use super::scope::Scope;
use super::workloads::{Targets, gateway_filter};
use crate::config::diag::Reporter;
use crate::config::model::security::{AuthorizationPolicySpec, Condition, Operation, Rule, Source};
use crate::config::resolved::{Phase, Plugin};

/// The `when` keys served, exactly or as `prefix[…]`.
const WHEN_KEYS: &[&str] = &[
    "source.ip",
    "remote.ip",
    "source.principal",
    "source.namespace",
    "destination.port",
    "connection.sni",
    "request.auth.principal",
    "request.auth.audiences",
    "request.auth.presenter",
];

/// The authorization filters of `gateways` (their `namespace/name`s) for `policies`.
pub fn plugins(
    policies: &[Input<'_, AuthorizationPolicySpec>],
    gateways: &[String],
    providers: &Providers,
    reporter: &Reporter,
) -> Vec<Plugin> {
    let mut applying: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for policy in policies {
        let at = policy.scope(reporter).field("spec");
        let Some(translated) = translate(policy, providers, &at) else {
            continue;
        };
        let spec = policy.spec;
        let refs: Vec<_> = spec.target_refs.iter().chain(&spec.target_ref).collect();
        let target = Targets {
            namespace: policy.namespace,
            selector: spec.selector.is_some(),
            refs,
        };
        for gateway in target.gateways(gateways, &at) {
            applying
                .entry(gateway)
                .or_default()
                .push(translated.clone());
        }
    }
    applying
        .into_iter()
        .map(|(gateway, policies)| filter(gateway, &policies, providers))
        .collect()
}

/// The filter that decides for `gateway`'s routes; its calls may take as long as every
/// provider its CUSTOM policies ask, on top of its own time.
fn filter(gateway: &str, policies: &[Value], providers: &Providers) -> Plugin {
    let mut plugin = Plugin {
        phase: Phase::Authz,
        // After every WasmPlugin of the phase.
        priority: i64::MIN,
        ..gateway_filter(gateway, "authorization", json!({ "policies": policies }))
    };
    let asked: BTreeSet<&str> = policies
        .iter()
        .filter_map(|p| p["provider"].as_str())
        .collect();
    plugin.limits.timeout += providers
        .resolved
        .iter()
        .filter(|p| asked.contains(p.name.as_str()))
        .map(|p| p.timeout)
        .sum::<Duration>();
    plugin
}

/// The policy as the filter reads it; none (with errors) when it cannot be enforced.
fn translate(
    policy: &Input<'_, AuthorizationPolicySpec>,
    providers: &Providers,
    at: &Scope<'_>,
) -> Option<Value> {
    let errors = at.error_count();
    let spec = policy.spec;
    let mut provider = None;
    let action = match spec.action.as_deref().unwrap_or("ALLOW") {
        action @ ("ALLOW" | "DENY" | "AUDIT") => action,
        "CUSTOM" => {
            provider = custom(spec, providers, at);
            if provider.is_some() { "CUSTOM" } else { "DENY" }
        }
        other => {
            at.field("action").error(format!(
                "action {other:?}: expected ALLOW, DENY, AUDIT or CUSTOM"
            ));
            return None;
        }
    };
    if spec.provider.is_some() && spec.action.as_deref() != Some("CUSTOM") {
        at.field("provider")
            .error("provider is for CUSTOM policies only");
    }
    let rules: Vec<Value> = spec
        .rules
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, rule)| self::rule(rule, &at.field("rules").index(i)))
        .collect();
    let check = provider.and_then(|name| providers.settings.get(name));
    (at.error_count() == errors).then(|| {
        json!({ "name": policy.key(), "action": action, "provider": provider, "check": check, "rules": rules })
    })
}

/// The extension provider a CUSTOM policy asks, when the mesh config serves it; else
/// (warned) none, and the policy denies what it selects, as Istio does for a provider it
/// does not know.
fn custom<'p>(
    spec: &'p AuthorizationPolicySpec,
    providers: &Providers,
    at: &Scope<'_>,
) -> Option<&'p str> {
    let Some(name) = spec.provider.as_ref().and_then(|p| p.name.as_deref()) else {
        at.field("provider.name")
            .error("a CUSTOM policy names its extension provider");
        return None;
    };
    if !providers.settings.contains_key(name) {
        at.field("provider.name").warn(format!(
            "no envoyExtAuthzHttp extension provider {name:?} in the mesh config (the istio-system/istio ConfigMap): the requests this policy selects are denied"
        ));
        return None;
    }
    Some(name)
}

fn rule(rule: &Rule, at: &Scope<'_>) -> Value {
    let from: Vec<Value> = rule
        .from
        .iter()
        .enumerate()
        .map(|(i, f)| {
            source(
                f.source.as_ref(),
                &at.field("from").index(i).field("source"),
            )
        })
        .collect();
    let to: Vec<Value> = rule
        .to
        .iter()
        .enumerate()
        .map(|(i, t)| {
            operation(
                t.operation.as_ref(),
                &at.field("to").index(i).field("operation"),
            )
        })
        .collect();
    let when: Vec<Value> = rule
        .when
        .iter()
        .enumerate()
        .map(|(i, c)| condition(c, &at.field("when").index(i)))
        .collect();
    json!({ "from": from, "to": to, "when": when })
}

/// A field of the filter's: values and `not` values.
fn field(values: &[String], not: &[String]) -> Value {
    json!({ "values": values, "not": not })
}

fn source(source: Option<&Source>, at: &Scope<'_>) -> Value {
    let default = Source::default();
    let s = source.unwrap_or(&default);
    let lists = [
        &s.principals,
        &s.not_principals,
        &s.request_principals,
        &s.not_request_principals,
        &s.namespaces,
        &s.not_namespaces,
        &s.service_accounts,
        &s.not_service_accounts,
        &s.ip_blocks,
        &s.not_ip_blocks,
        &s.remote_ip_blocks,
        &s.not_remote_ip_blocks,
    ];
    if lists.iter().all(|l| l.is_empty()) {
        at.error("a source must set at least one field (as Istio requires)");
    }
    for (name, accounts) in [
        ("serviceAccounts", &s.service_accounts),
        ("notServiceAccounts", &s.not_service_accounts),
    ] {
        for (i, account) in accounts.iter().enumerate() {
            if !account.contains('/') {
                at.field(name).index(i).error(format!(
                    "{account:?}: a service account is written namespace/name"
                ));
            }
        }
    }
    for (name, blocks) in [
        ("ipBlocks", &s.ip_blocks),
        ("notIpBlocks", &s.not_ip_blocks),
        ("remoteIpBlocks", &s.remote_ip_blocks),
        ("notRemoteIpBlocks", &s.not_remote_ip_blocks),
    ] {
        for (i, block) in blocks.iter().enumerate() {
            if !is_block(block) {
                at.field(name)
                    .index(i)
                    .error(format!("{block:?} is not an IP address or CIDR block"));
            }
        }
    }
    if !s.remote_ip_blocks.is_empty() || !s.not_remote_ip_blocks.is_empty() {
        at.field("remoteIpBlocks").warn(
            "compared with the client's address as the gateway sees it (the PROXY protocol's where it is on); X-Forwarded-For is not read",
        );
    }
    // Istio reads a service account `ns/sa` as the principal `*/ns/<ns>/sa/<sa>`.
    let accounts = |list: &[String]| -> Vec<String> {
        list.iter()
            .filter_map(|sa| sa.split_once('/'))
            .map(|(ns, name)| format!("*/ns/{ns}/sa/{name}"))
            .collect()
    };
    let principals: Vec<String> = s
        .principals
        .iter()
        .cloned()
        .chain(accounts(&s.service_accounts))
        .collect();
    let not_principals: Vec<String> = s
        .not_principals
        .iter()
        .cloned()
        .chain(accounts(&s.not_service_accounts))
        .collect();
    json!({
        "principals": field(&principals, &not_principals),
        "requestPrincipals": field(&s.request_principals, &s.not_request_principals),
        "namespaces": field(&s.namespaces, &s.not_namespaces),
        "ipBlocks": field(&s.ip_blocks, &s.not_ip_blocks),
        "remoteIpBlocks": field(&s.remote_ip_blocks, &s.not_remote_ip_blocks),
    })
}

fn operation(operation: Option<&Operation>, at: &Scope<'_>) -> Value {
    let default = Operation::default();
    let o = operation.unwrap_or(&default);
    let lists = [
        &o.hosts,
        &o.not_hosts,
        &o.ports,
        &o.not_ports,
        &o.methods,
        &o.not_methods,
        &o.paths,
        &o.not_paths,
    ];
    if lists.iter().all(|l| l.is_empty()) {
        at.error("an operation must set at least one field (as Istio requires)");
    }
    for (name, ports) in [("ports", &o.ports), ("notPorts", &o.not_ports)] {
        for (i, port) in ports.iter().enumerate() {
            if port.parse::<u16>().is_err() {
                at.field(name)
                    .index(i)
                    .error(format!("{port:?} is not a port number"));
            }
        }
    }
    json!({
        "hosts": field(&o.hosts, &o.not_hosts),
        "ports": field(&o.ports, &o.not_ports),
        "methods": field(&o.methods, &o.not_methods),
        "paths": field(&o.paths, &o.not_paths),
    })
}

fn condition(condition: &Condition, at: &Scope<'_>) -> Value {
    let key = condition.key.as_deref().unwrap_or_default();
    let indexed = |prefix: &str| {
        key.strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(']'))
            .is_some_and(|inner| !inner.is_empty())
    };
    let served =
        WHEN_KEYS.contains(&key) || indexed("request.headers[") || indexed("request.auth.claims[");
    if key.is_empty() {
        at.field("key").error("key is required");
    } else if !served {
        at.field("key").error(format!(
            "key {key:?} is not served (request.headers[…], source.ip, remote.ip, source.principal, source.namespace, destination.port, connection.sni and request.auth.* are)"
        ));
    }
    if condition.values.is_empty() && condition.not_values.is_empty() {
        at.error("a condition needs values or notValues");
    }
    if matches!(key, "source.ip" | "remote.ip") {
        let values = condition.values.iter().chain(&condition.not_values);
        for value in values.filter(|v| !is_block(v)) {
            at.error(format!("{value:?} is not an IP address or CIDR block"));
        }
    }
    json!({ "key": key, "values": condition.values, "notValues": condition.not_values })
}

/// Whether `block` is an IP address or a CIDR block.
fn is_block(block: &str) -> bool {
    let (address, bits) = match block.split_once('/') {
        Some((address, bits)) => (address, Some(bits)),
        None => (block, None),
    };
    let Ok(ip) = address.parse::<IpAddr>() else {
        return false;
    };
    let width = if ip.is_ipv4() { 32 } else { 128 };
    bits.is_none_or(|b| b.parse::<u32>().is_ok_and(|b| b <= width))
}
