//! What the DestinationRules say about each host: its traffic policy and its subsets,
//! the first rule winning for each.

use std::collections::{BTreeMap, BTreeSet};

use super::traffic_policy::{Policy, traffic_policy};
use super::{Context, Scope, Service, checks};
use crate::config::diag::Site;
use crate::config::model::destination_rule::{DestinationRuleSpec, Subset};

/// A subset: its labels and policy.
#[derive(Debug, Clone)]
pub(super) struct SubsetRule {
    labels: BTreeMap<String, String>,
    /// The subset's policy, applied over the host's.
    pub(super) policy: Policy,
    /// Where the subset's policy is written: the rule and the field path.
    pub(super) written: (Site, String),
}

impl SubsetRule {
    /// Whether an endpoint with `labels` is in the subset.
    pub(super) fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        selects(&self.labels, labels)
    }
}

/// Whether `labels` carry every label of `selector`.
fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// What the DestinationRules say about one host.
#[derive(Debug, Clone, Default)]
pub(super) struct HostRules {
    /// The host's traffic policy, and the rule that set it.
    pub(super) policy: Option<(Policy, Site)>,
    /// The subsets by name, each with the `Kind/name` of the rule that defines it.
    pub(super) subsets: BTreeMap<String, (SubsetRule, String)>,
    /// The TLS of a BackendTLSPolicy for the host, over every port and subset, and the
    /// rule it became.
    pub(super) backend_tls: Option<(Policy, Site)>,
}

/// One DestinationRule: its host's traffic policy and subsets go into `by_host`.
pub(super) fn destination_rule(
    spec: &DestinationRuleSpec,
    services: &BTreeMap<String, Service>,
    ctx: &Context<'_>,
    at: &Scope<'_>,
    by_host: &mut BTreeMap<String, HostRules>,
) {
    let host_at = at.field("host");
    let Some(host) = spec.host.as_deref() else {
        host_at.error("missing field `host`");
        return;
    };
    if !checks::host_name(host, &host_at) {
        return;
    }
    let service = services.get(host);
    if service.is_none() {
        host_at.warn(format!(
            "no ServiceEntry defines host {host:?}; this rule has no effect"
        ));
    }
    for (field, set) in [
        ("exportTo", spec.export_to.is_some()),
        ("workloadSelector", spec.workload_selector.is_some()),
    ] {
        if set {
            at.field(field)
                .warn("only applies inside a service mesh; ignored");
        }
    }
    let entry = by_host.entry(host.to_string()).or_default();
    if spec.from_backend_tls_policy {
        backend_tls(spec, service, ctx, at, entry);
        return;
    }
    if let Some(policy) = &spec.traffic_policy {
        let policy_at = at.field("trafficPolicy");
        let resolved = traffic_policy(policy, service, ctx, &policy_at);
        match &entry.policy {
            Some((_, first)) => policy_at.warn(format!("{} already sets the traffic policy of host {host:?}; the first rule wins and this policy is ignored", first.resource)),
            None => entry.policy = Some((resolved, at.site().clone())),
        }
    }
    subsets(spec, host, service, ctx, at, entry);
}

/// A BackendTLSPolicy's rule: its TLS for the host's `entry`, unless an earlier policy
/// set it.
fn backend_tls(
    spec: &DestinationRuleSpec,
    service: Option<&Service>,
    ctx: &Context<'_>,
    at: &Scope<'_>,
    entry: &mut HostRules,
) {
    let Some(policy) = &spec.traffic_policy else {
        return;
    };
    if let Some((_, first)) = &entry.backend_tls {
        at.warn(format!(
            "{} already sets the TLS of this host; the first policy wins and this one is ignored",
            first.resource
        ));
        return;
    }
    let resolved = traffic_policy(policy, service, ctx, &at.field("trafficPolicy"));
    entry.backend_tls = Some((resolved, at.site().clone()));
}

/// The rule's subsets, into the host's `entry` unless an earlier rule defines them.
fn subsets(
    spec: &DestinationRuleSpec,
    host: &str,
    service: Option<&Service>,
    ctx: &Context<'_>,
    at: &Scope<'_>,
    entry: &mut HostRules,
) {
    let mut seen = BTreeSet::new();
    for (i, subset) in spec.subsets.iter().enumerate() {
        let subset_at = at.field("subsets").index(i);
        let name_at = subset_at.field("name");
        let Some(name) = subset_name(subset.name.as_deref(), &mut seen, &name_at) else {
            continue;
        };
        let rule = subset_rule(subset, name, service, ctx, &subset_at);
        if let Some((_, first)) = entry.subsets.get(name) {
            name_at.warn(format!("{first} already defines subset {name:?} of host {host:?}; the first definition wins"));
            continue;
        }
        let defined_by = at.site().resource.clone();
        entry.subsets.insert(name.to_string(), (rule, defined_by));
    }
}

/// A subset's name: set, and not `seen` in an earlier subset of the rule.
fn subset_name<'s>(
    name: Option<&'s str>,
    seen: &mut BTreeSet<&'s str>,
    at: &Scope<'_>,
) -> Option<&'s str> {
    let name = match name {
        Some(name) if !name.is_empty() => name,
        _ => {
            at.error("subset name must not be empty");
            return None;
        }
    };
    if !seen.insert(name) {
        at.error(format!("duplicate subset name {name:?}"));
        return None;
    }
    Some(name)
}

/// A subset's labels and policy; its labels should select some endpoint of `service`.
fn subset_rule(
    subset: &Subset,
    name: &str,
    service: Option<&Service>,
    ctx: &Context<'_>,
    at: &Scope<'_>,
) -> SubsetRule {
    let policy = subset
        .traffic_policy
        .as_ref()
        .map(|p| traffic_policy(p, service, ctx, &at.field("trafficPolicy")))
        .unwrap_or_default();
    if let Some(service) = service
        && !service
            .endpoints
            .iter()
            .any(|e| selects(&subset.labels, &e.labels))
    {
        at.field("labels").warn(format!(
            "subset {name:?} selects no endpoint of {:?}; requests to it get 503",
            service.host
        ));
    }
    SubsetRule {
        labels: subset.labels.clone(),
        policy,
        written: (
            at.site().clone(),
            at.field("trafficPolicy").path().to_string(),
        ),
    }
}
