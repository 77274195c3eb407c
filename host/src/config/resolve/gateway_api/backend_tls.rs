//! BackendTLSPolicies, as the DestinationRules they amount to: TLS origination (Istio's
//! `SIMPLE`) to the targeted Services' hosts, with the policy's SNI, CA and names. Their
//! TLS takes precedence over an Istio DestinationRule's for the same host (whose other
//! settings still apply), as Gateway API implementations order them.

use serde_json::{Value, json};

use super::services::Services;
use super::{istio, not_yet};
use crate::config::model::destination_rule::DestinationRuleSpec;
use crate::config::model::gateway_api::BackendTlsPolicySpec;
use crate::config::resolve::scope::Scope;

/// The DestinationRule of each Service `spec` (in `namespace`) targets, by host.
pub fn destination_rules(
    spec: &BackendTlsPolicySpec,
    namespace: &str,
    services: &Services<'_>,
    at: &Scope<'_>,
) -> Vec<(String, DestinationRuleSpec)> {
    not_yet(spec.options.is_some(), &at.field("options"));
    let Some(tls) = tls(spec, &at.field("validation")) else {
        return Vec::new();
    };
    spec.target_refs
        .iter()
        .enumerate()
        .filter_map(|(i, target)| {
            let at = at.field("targetRefs").index(i);
            not_yet(target.section_name.is_some(), &at.field("sectionName"));
            if target.kind.as_deref().is_some_and(|k| k != "Service") {
                at.field("kind")
                    .warn("only Services are served as targets: ignored");
                return None;
            }
            let name = target.name.as_deref()?;
            let host = services
                .find(name, namespace, namespace)
                .map_err(|reason| {
                    at.field("name").warn(format!(
                        "no ServiceEntry serves Service {name} ({reason}): no TLS set up for it"
                    ));
                })
                .ok()?;
            let rule = json!({ "host": host, "trafficPolicy": { "tls": tls } });
            let rule = DestinationRuleSpec {
                from_backend_tls_policy: true,
                ..istio(rule, &at)?
            };
            Some((host.to_string(), rule))
        })
        .collect()
}

/// The Istio TLS settings of the policy's validation.
fn tls(spec: &BackendTlsPolicySpec, at: &Scope<'_>) -> Option<Value> {
    let Some(validation) = &spec.validation else {
        at.error("a BackendTLSPolicy needs validation (hostname and CA certificates)");
        return None;
    };
    let mut tls = json!({ "mode": "SIMPLE", "sni": validation.hostname });
    match (
        validation.ca_certificate_refs.first(),
        validation.well_known_ca_certificates.as_deref(),
    ) {
        (Some(config_map), _) => {
            if validation.ca_certificate_refs.len() > 1 {
                at.field("caCertificateRefs")
                    .warn("several CA certificate references: the first is read");
            }
            let name = config_map.name.clone().unwrap_or_default();
            tls["caCertificates"] = json!(format!("{name}/ca.crt"));
        }
        (None, Some("System")) => {}
        (None, _) => {
            at.field("caCertificateRefs").error(
                "a BackendTLSPolicy needs caCertificateRefs or wellKnownCACertificates: System",
            );
            return None;
        }
    }
    let names: Vec<&str> = validation
        .subject_alt_names
        .iter()
        .filter_map(|n| n.hostname.as_deref().or(n.uri.as_deref()))
        .collect();
    if !names.is_empty() {
        tls["subjectAltNames"] = json!(names);
    }
    Some(tls)
}
