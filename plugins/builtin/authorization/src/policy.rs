//! The policies, as the host hands them over (Istio's fields, checked and defaulted), and
//! Istio's matching: a rule matches when one of its sources, one of its operations and
//! all of its conditions do; a field matches when the value is among its values and not
//! among its `not` values; strings match exactly, by `prefix*`, by `*suffix`, or `*`
//! (any value, but there must be one).

use std::net::IpAddr;

use serde::Deserialize;

use crate::custom::Check;
use crate::facts::Facts;

/// Every policy that applies to the gateway's routes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policies {
    pub policies: Vec<Policy>,
}

/// One AuthorizationPolicy.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// `namespace/name`.
    pub name: String,
    pub action: PolicyAction,
    /// A CUSTOM policy's extension provider, and how to ask it.
    pub provider: Option<String>,
    pub check: Option<Check>,
    /// No rules: an ALLOW policy matches nothing (so it denies every request), a DENY
    /// policy never denies.
    #[serde(default)]
    pub rules: Vec<Rule>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum PolicyAction {
    Allow,
    Deny,
    Audit,
    Custom,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    #[serde(default)]
    pub from: Vec<Source>,
    #[serde(default)]
    pub to: Vec<Operation>,
    #[serde(default)]
    pub when: Vec<Condition>,
}

/// Who sends the request.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Source {
    #[serde(default)]
    pub principals: Field,
    #[serde(default)]
    pub request_principals: Field,
    #[serde(default)]
    pub namespaces: Field,
    #[serde(default)]
    pub ip_blocks: Field,
    #[serde(default)]
    pub remote_ip_blocks: Field,
}

/// What the request asks for.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Operation {
    #[serde(default)]
    pub hosts: Field,
    #[serde(default)]
    pub ports: Field,
    #[serde(default)]
    pub methods: Field,
    #[serde(default)]
    pub paths: Field,
}

/// A `when` condition: an attribute `key` and its values.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub key: String,
    #[serde(default)]
    pub values: Vec<String>,
    #[serde(default, rename = "notValues")]
    pub not_values: Vec<String>,
}

/// A field's values and its `not` values (Istio's `paths` and `notPaths`…); either may be
/// empty, and an empty one does not constrain.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Field {
    #[serde(default)]
    pub values: Vec<String>,
    #[serde(default)]
    pub not: Vec<String>,
}

/// What is done with a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Refused: by the DENY policy's rule named as Envoy names it
    /// (`ns[default]-policy[deny]-rule[0]`), or (none) because no ALLOW policy matched.
    Deny(Option<String>),
}

impl Policies {
    /// The CUSTOM policies that match the request: their providers and how to ask them.
    pub fn custom<'p>(&'p self, facts: &'p Facts) -> impl Iterator<Item = (&'p str, &'p Check)> {
        self.policies
            .iter()
            .filter(|p| p.action == PolicyAction::Custom && p.matches(facts))
            .filter_map(|p| Some((p.provider.as_deref()?, p.check.as_ref()?)))
    }

    /// Refuses what cannot be matched: a `when` key not served.
    pub fn check(&self) -> Result<(), String> {
        let rules = self.policies.iter().flat_map(|p| &p.rules);
        for condition in rules.flat_map(|r| &r.when) {
            if attribute(&condition.key).is_none() {
                return Err(format!("the when key {:?} is not served", condition.key));
            }
        }
        Ok(())
    }

    /// Istio's order: DENY, then ALLOW.
    pub fn decide(&self, facts: &Facts) -> Decision {
        let of = |action| self.policies.iter().filter(move |p| p.action == action);
        for deny in of(PolicyAction::Deny) {
            if let Some(rule) = deny.rules.iter().position(|r| r.matches(facts)) {
                return Decision::Deny(Some(deny.matched(rule)));
            }
        }
        let mut allows = of(PolicyAction::Allow).peekable();
        if allows.peek().is_some() && !allows.any(|p| p.matches(facts)) {
            return Decision::Deny(None);
        }
        Decision::Allow
    }

    /// The AUDIT policies that match the request.
    pub fn audited<'p>(&'p self, facts: &'p Facts) -> impl Iterator<Item = &'p str> {
        let audits = self
            .policies
            .iter()
            .filter(|p| p.action == PolicyAction::Audit);
        audits.filter(|p| p.matches(facts)).map(|p| p.name.as_str())
    }
}

impl Policy {
    fn matches(&self, facts: &Facts) -> bool {
        self.rules.iter().any(|rule| rule.matches(facts))
    }

    /// Its `rule`, as Envoy's RBAC filter names a matched policy.
    fn matched(&self, rule: usize) -> String {
        let (namespace, name) = self.name.split_once('/').unwrap_or(("", &self.name));
        format!("ns[{namespace}]-policy[{name}]-rule[{rule}]")
    }
}

impl Rule {
    fn matches(&self, facts: &Facts) -> bool {
        let from = self.from.is_empty() || self.from.iter().any(|s| s.matches(facts));
        let to = self.to.is_empty() || self.to.iter().any(|o| o.matches(facts));
        from && to && self.when.iter().all(|c| c.matches(facts))
    }
}

impl Source {
    fn matches(&self, facts: &Facts) -> bool {
        let ip = facts.source_ip;
        self.principals.matches(facts.principal.as_deref(), string)
            && self
                .request_principals
                .matches(facts.request_principal.as_deref(), string)
            && self.namespaces.matches(facts.namespace(), string)
            && self.ip_blocks.matches(ip, blocks)
            && self.remote_ip_blocks.matches(ip, blocks)
    }
}

impl Operation {
    fn matches(&self, facts: &Facts) -> bool {
        let host = Some(facts.host.as_str());
        let port = facts.port.to_string();
        self.hosts.matches(host, hosts)
            && self.ports.matches(Some(port.as_str()), exact)
            && self.methods.matches(Some(facts.method.as_str()), exact)
            && self.paths.matches(Some(facts.path.as_str()), string)
    }
}

impl Condition {
    fn matches(&self, facts: &Facts) -> bool {
        let values = attribute(&self.key).map(|read| read(facts, &self.key));
        let values = values.unwrap_or_default();
        let ip = matches!(self.key.as_str(), "source.ip" | "remote.ip");
        let compare = |pattern: &str, value: &String| match ip {
            true => value.parse().is_ok_and(|v| blocks(pattern, v)),
            false => string(pattern, value),
        };
        let matched = |list: &[String]| {
            list.iter()
                .any(|pattern| values.iter().any(|v| compare(pattern, v)))
        };
        (self.values.is_empty() || matched(&self.values))
            && (self.not_values.is_empty() || !matched(&self.not_values))
    }
}

impl Field {
    /// Whether `value` (none: the attribute is absent) is among the values and not among
    /// the `not` ones, each compared with `compare`.
    fn matches<T: Copy>(&self, value: Option<T>, compare: fn(&str, T) -> bool) -> bool {
        let among = |list: &[String]| value.is_some_and(|v| list.iter().any(|p| compare(p, v)));
        (self.values.is_empty() || among(&self.values)) && !among(&self.not)
    }
}

/// How a `when` key's values are read: a function of the facts and the key.
type Read = fn(&Facts, &str) -> Vec<String>;

/// The reader of attribute `key`, when it is served.
fn attribute(key: &str) -> Option<Read> {
    let read: Read = match key {
        "source.ip" | "remote.ip" => {
            |f, _| f.source_ip.map(|ip| ip.to_string()).into_iter().collect()
        }
        "source.principal" => |f, _| f.principal.clone().into_iter().collect(),
        "source.namespace" => |f, _| f.namespace().map(str::to_string).into_iter().collect(),
        "destination.port" => |f, _| vec![f.port.to_string()],
        "connection.sni" => |f, _| f.sni.clone().into_iter().collect(),
        "request.auth.principal" => |f, _| f.request_principal.clone().into_iter().collect(),
        "request.auth.audiences" => |f, _| (f.claim)(&["aud".to_string()]),
        "request.auth.presenter" => |f, _| (f.claim)(&["azp".to_string()]),
        _ if key.starts_with("request.auth.claims[") && key.ends_with(']') => {
            |f, key| (f.claim)(&claim_path(key))
        }
        _ if key.starts_with("request.headers[") && key.ends_with(']') => |f, key| {
            let name = &key["request.headers[".len()..key.len() - 1];
            (f.header)(&name.to_ascii_lowercase()).into_iter().collect()
        },
        _ => return None,
    };
    Some(read)
}

/// The path of `request.auth.claims[a][b]`: `["a", "b"]`.
fn claim_path(key: &str) -> Vec<String> {
    let inner = &key["request.auth.claims[".len()..key.len() - 1];
    inner.split("][").map(str::to_string).collect()
}

/// Istio's string match: exact, `prefix*`, `*suffix`, or `*` for any value.
fn string(pattern: &str, value: &str) -> bool {
    match (pattern.strip_suffix('*'), pattern.strip_prefix('*')) {
        _ if pattern == "*" => !value.is_empty(),
        (Some(prefix), _) => value.starts_with(prefix),
        (_, Some(suffix)) => value.ends_with(suffix),
        _ => pattern == value,
    }
}

fn exact(pattern: &str, value: &str) -> bool {
    pattern == value
}

/// Hosts match as strings, ignoring case.
fn hosts(pattern: &str, value: &str) -> bool {
    string(&pattern.to_ascii_lowercase(), value)
}

/// An IP block (`10.0.0.0/8`, or one address) holding `ip`.
fn blocks(block: &str, ip: IpAddr) -> bool {
    let (address, bits) = match block.split_once('/') {
        Some((address, bits)) => (address, bits.parse::<u32>().ok()),
        None => (block, None),
    };
    let Ok(network) = address.parse::<IpAddr>() else {
        return false;
    };
    match (network, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => within(
            n.to_bits().into(),
            a.to_bits().into(),
            bits.unwrap_or(32),
            32,
        ),
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            within(n.to_bits(), a.to_bits(), bits.unwrap_or(128), 128)
        }
        _ => false,
    }
}

/// Whether `address` is in the `bits`-long prefix of `network`, of `width` bits.
fn within(network: u128, address: u128, bits: u32, width: u32) -> bool {
    let bits = bits.min(width);
    if bits == 0 {
        return true;
    }
    let shift = width - bits;
    network >> shift == address >> shift
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts {
        Facts {
            method: "GET".into(),
            host: "shop.example.com".into(),
            path: "/api/items".into(),
            port: 8080,
            source_ip: "10.1.2.3".parse().ok(),
            principal: Some("cluster.local/ns/web/sa/frontend".into()),
            sni: None,
            header: Box::new(|name| (name == "x-tier").then(|| "gold".to_string())),
            request_principal: None,
            claim: Box::new(|_| Vec::new()),
        }
    }

    fn policies(json: &str) -> Policies {
        let policies: Policies = serde_json::from_str(json).unwrap();
        policies.check().unwrap();
        policies
    }

    #[test]
    fn strings_match_exactly_by_prefix_by_suffix_or_any() {
        assert!(string("/api/*", "/api/items"));
        assert!(string("*.example.com", "shop.example.com"));
        assert!(string("*", "x") && !string("*", ""));
        assert!(!string("/api", "/api/items"));
        assert!(hosts("SHOP.example.com", "shop.example.com"));
    }

    #[test]
    fn ip_blocks_hold_addresses_by_prefix() {
        let ip = "10.1.2.3".parse().unwrap();
        assert!(blocks("10.0.0.0/8", ip));
        assert!(blocks("10.1.2.3", ip));
        assert!(!blocks("10.1.2.4", ip));
        assert!(!blocks("192.168.0.0/16", ip));
        assert!(blocks("0.0.0.0/0", ip));
        assert!(!blocks("::/0", ip));
    }

    #[test]
    fn deny_comes_before_allow_and_an_unmatched_allow_denies() {
        let deny_admin = r#"{"name": "a/deny", "action": "DENY", "rules": [{"to": [{"paths": {"values": ["/admin*"]}}]}]}"#;
        let allow_api = r#"{"name": "a/allow", "action": "ALLOW", "rules": [{"to": [{"paths": {"values": ["/api/*"]}}]}]}"#;
        let both = policies(&format!(r#"{{"policies": [{deny_admin}, {allow_api}]}}"#));
        assert_eq!(both.decide(&facts()), Decision::Allow);
        let admin = Facts {
            path: "/admin/x".into(),
            ..facts()
        };
        assert_eq!(
            both.decide(&admin),
            Decision::Deny(Some("ns[a]-policy[deny]-rule[0]".into()))
        );
        let other = Facts {
            path: "/other".into(),
            ..facts()
        };
        assert_eq!(both.decide(&other), Decision::Deny(None));
        let only_deny = policies(&format!(r#"{{"policies": [{deny_admin}]}}"#));
        assert_eq!(only_deny.decide(&other), Decision::Allow);
    }

    #[test]
    fn an_allow_policy_without_rules_denies_and_an_empty_rule_allows() {
        let none = policies(r#"{"policies": [{"name": "a/b", "action": "ALLOW"}]}"#);
        assert_eq!(none.decide(&facts()), Decision::Deny(None));
        let all = policies(r#"{"policies": [{"name": "a/b", "action": "ALLOW", "rules": [{}]}]}"#);
        assert_eq!(all.decide(&facts()), Decision::Allow);
        let audit =
            policies(r#"{"policies": [{"name": "a/b", "action": "AUDIT", "rules": [{}]}]}"#);
        assert_eq!(audit.decide(&facts()), Decision::Allow);
        assert_eq!(audit.audited(&facts()).collect::<Vec<_>>(), ["a/b"]);
    }

    #[test]
    fn sources_operations_and_conditions_all_count() {
        let rule = r#"{"policies": [{"name": "a/b", "action": "ALLOW", "rules": [{
            "from": [{"namespaces": {"values": ["web"]}, "ipBlocks": {"values": ["10.0.0.0/8"], "not": ["10.9.0.0/16"]}}],
            "to": [{"methods": {"values": ["GET"]}, "ports": {"values": ["8080"]}, "hosts": {"values": ["*.example.com"]}}],
            "when": [{"key": "request.headers[X-Tier]", "values": ["gold"]}, {"key": "request.auth.claims[group]", "notValues": ["banned"]}, {"key": "source.ip", "values": ["10.0.0.0/8"]}]
        }]}]}"#;
        let allow = policies(rule);
        assert_eq!(allow.decide(&facts()), Decision::Allow);
        for changed in [
            Facts {
                method: "POST".into(),
                ..facts()
            },
            Facts {
                port: 8443,
                ..facts()
            },
            Facts {
                host: "example.org".into(),
                ..facts()
            },
            Facts {
                source_ip: "10.9.1.1".parse().ok(),
                ..facts()
            },
            Facts {
                principal: None,
                ..facts()
            },
            Facts {
                header: Box::new(|_| None),
                ..facts()
            },
        ] {
            assert_eq!(allow.decide(&changed), Decision::Deny(None));
        }
    }

    #[test]
    fn without_request_authentication_no_request_has_a_request_principal() {
        let needs = r#"{"policies": [{"name": "a/b", "action": "ALLOW", "rules": [{"from": [{"requestPrincipals": {"values": ["*"]}}]}]}]}"#;
        assert_eq!(policies(needs).decide(&facts()), Decision::Deny(None));
        let without = r#"{"policies": [{"name": "a/b", "action": "DENY", "rules": [{"from": [{"requestPrincipals": {"not": ["*"]}}]}]}]}"#;
        assert_eq!(
            policies(without).decide(&facts()),
            Decision::Deny(Some("ns[a]-policy[b]-rule[0]".into()))
        );
    }

    #[test]
    fn request_principals_and_nested_claims_come_from_the_verified_token() {
        let policy = r#"{"policies": [{"name": "a/b", "action": "ALLOW", "rules": [{"from": [{"requestPrincipals": {"values": ["https://issuer/*"]}}], "when": [{"key": "request.auth.claims[realm][roles]", "values": ["admin"]}, {"key": "request.auth.audiences", "values": ["shop"]}]}]}]}"#;
        let authenticated = |roles: &'static [&'static str]| Facts {
            request_principal: Some("https://issuer/alice".into()),
            claim: Box::new(move |path| match path {
                [realm, key] if realm == "realm" && key == "roles" => {
                    roles.iter().map(|r| r.to_string()).collect()
                }
                [aud] if aud == "aud" => vec!["shop".into(), "other".into()],
                _ => Vec::new(),
            }),
            ..facts()
        };
        let policies = policies(policy);
        assert_eq!(
            policies.decide(&authenticated(&["user", "admin"])),
            Decision::Allow
        );
        assert_eq!(
            policies.decide(&authenticated(&["user"])),
            Decision::Deny(None)
        );
        assert_eq!(policies.decide(&facts()), Decision::Deny(None));
    }

    #[test]
    fn unknown_when_keys_are_refused() {
        let policies: Policies = serde_json::from_str(
            r#"{"policies": [{"name": "a/b", "action": "ALLOW", "rules": [{"when": [{"key": "experimental.x", "values": ["1"]}]}]}]}"#,
        )
        .unwrap();
        assert!(policies.check().is_err());
    }
}
