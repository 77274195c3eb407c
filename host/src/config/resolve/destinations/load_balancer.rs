//! Load balancing: a simple algorithm (LEAST_REQUEST by default) or a consistent hash
//! on one request key.

use super::{Scope, checks};
use crate::config::model::destination_rule::{
    ConsistentHashLb, HttpCookie, LoadBalancerSettings, SimpleLb, Warmup,
};
use crate::config::resolved::{HashKey, LoadBalancer};

/// A load balancer: one of simple or consistentHash (default LEAST_REQUEST).
pub(super) fn load_balancer(spec: &LoadBalancerSettings, at: &Scope<'_>) -> Option<LoadBalancer> {
    check_unsupported_lb(spec, at);
    match (spec.simple, &spec.consistent_hash) {
        (Some(_), Some(_)) => {
            at.error("load balancer takes only one of simple or consistentHash");
            None
        }
        (Some(simple), None) => Some(simple_lb(simple, &at.field("simple"))),
        (None, Some(hash)) => consistent_hash(hash, &at.field("consistentHash")),
        (None, None) => Some(LoadBalancer::default()),
    }
}

/// Locality, zone-aware and slow-start settings, which are not supported.
fn check_unsupported_lb(spec: &LoadBalancerSettings, at: &Scope<'_>) {
    if spec.zone_aware_lb_setting.is_some() {
        let zone_at = at.field("zoneAwareLbSetting");
        if spec.locality_lb_setting.is_some() {
            zone_at.error("zoneAwareLbSetting cannot be combined with localityLbSetting");
        }
        zone_at.warn("zone-aware load balancing is not supported; ignored");
    }
    if spec.locality_lb_setting.is_some() {
        at.field("localityLbSetting")
            .warn("locality-aware load balancing is not supported; ignored");
    }
    if let Some(warmup) = &spec.warmup {
        check_warmup(warmup, &at.field("warmup"));
    }
    if spec.warmup.is_some() || spec.warmup_duration_secs.is_some() {
        at.warn("warmup (slow start) is not supported; ignored");
    }
}

/// A simple load-balancing algorithm.
fn simple_lb(simple: SimpleLb, at: &Scope<'_>) -> LoadBalancer {
    match simple {
        SimpleLb::RoundRobin => LoadBalancer::RoundRobin,
        SimpleLb::Random => LoadBalancer::Random,
        SimpleLb::LeastRequest | SimpleLb::LeastConn | SimpleLb::Unspecified => {
            LoadBalancer::LeastRequest
        }
        SimpleLb::Passthrough => {
            at.warn("a standalone gateway has no original destination to pass through to; endpoints are picked at random");
            LoadBalancer::Passthrough
        }
    }
}

/// A consistent hash on exactly one key.
fn consistent_hash(hash: &ConsistentHashLb, at: &Scope<'_>) -> Option<LoadBalancer> {
    let mut keys = hash_keys(hash, at);
    check_hash_table(hash, at);
    match keys.len() {
        0 => {
            at.error("consistent hash needs one of httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName");
            None
        }
        1 => keys.pop().flatten().map(LoadBalancer::ConsistentHash),
        _ => {
            at.error("consistent hash takes only one hash key");
            None
        }
    }
}

/// The hash keys set, each `None` when it is invalid.
fn hash_keys(hash: &ConsistentHashLb, at: &Scope<'_>) -> Vec<Option<HashKey>> {
    let mut keys = Vec::new();
    if let Some(header) = &hash.http_header_name {
        keys.push(checks::header_name(header, &at.field("httpHeaderName")).map(HashKey::Header));
    }
    if let Some(cookie) = &hash.http_cookie {
        keys.push(cookie_key(cookie, &at.field("httpCookie")));
    }
    if hash.use_source_ip == Some(true) {
        keys.push(Some(HashKey::SourceIp));
    }
    if let Some(param) = &hash.http_query_parameter_name {
        keys.push(Some(HashKey::QueryParameter(param.clone())));
    }
    keys
}

/// A hash on an affinity cookie, which is read and never generated.
fn cookie_key(cookie: &HttpCookie, at: &Scope<'_>) -> Option<HashKey> {
    if cookie.ttl.is_some() || cookie.path.is_some() || !cookie.attributes.is_empty() {
        at.warn(
            "the affinity cookie is read, never generated: ttl, path and attributes are ignored",
        );
    }
    match cookie.name.as_deref() {
        Some(name) if !name.is_empty() => Some(HashKey::Cookie {
            name: name.to_string(),
            path: cookie.path.clone(),
            ttl: cookie.ttl.map(|d| d.0),
        }),
        _ => {
            at.field("name").error("cookie name is required");
            None
        }
    }
}

/// Ring and table settings: at most one of ringHash or maglev, a prime table size, and
/// no effect (keys are hashed by rendezvous hashing).
fn check_hash_table(hash: &ConsistentHashLb, at: &Scope<'_>) {
    if hash.ring_hash.is_some() && hash.maglev.is_some() {
        at.error("consistent hash takes only one of ringHash or maglev");
    }
    let sized = [
        ("minimumRingSize", hash.minimum_ring_size.is_some()),
        ("ringHash", hash.ring_hash.is_some()),
        ("maglev", hash.maglev.is_some()),
    ];
    for (field, set) in sized {
        if set {
            at.field(field).warn("keys are hashed to endpoints by rendezvous hashing, which has no ring or table to size; ignored");
        }
    }
    if let Some(size) = hash.maglev.as_ref().and_then(|m| m.table_size)
        && !is_prime(size)
    {
        at.field("maglev")
            .field("tableSize")
            .error(format!("maglev table size {size} must be a prime number"));
    }
}

/// Istio's bounds on slow start: a duration, a minimum percentage of 0–100 and an
/// aggression of at least 1.
fn check_warmup(warmup: &Warmup, at: &Scope<'_>) {
    if warmup.duration.is_none() {
        at.field("duration").error("warmup needs a duration");
    }
    if let Some(percent) = warmup.minimum_percent
        && !(0.0..=100.0).contains(&percent)
    {
        at.field("minimumPercent").error(format!(
            "minimumPercent {percent} must be between 0 and 100"
        ));
    }
    if let Some(aggression) = warmup.aggression
        && aggression < 1.0
    {
        at.field("aggression")
            .error(format!("aggression {aggression} must be at least 1"));
    }
}

/// Whether `n` is a prime number.
fn is_prime(n: u64) -> bool {
    n >= 2
        && (2..)
            .take_while(|d| d * d <= n)
            .all(|d| !n.is_multiple_of(d))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{is_prime, load_balancer};
    use crate::config::Diagnostics;
    use crate::config::model::destination_rule::LoadBalancerSettings;
    use crate::config::resolve::scope::{errors_at, probe, warnings_at};
    use crate::config::resolved::{HashKey, LoadBalancer};

    fn resolve(yaml: &str) -> (Option<LoadBalancer>, Diagnostics) {
        let spec: LoadBalancerSettings = serde_yaml::from_str(yaml).unwrap();
        probe(|at| load_balancer(&spec, &at.field("loadBalancer")))
    }

    fn hash(yaml: &str) -> (Option<LoadBalancer>, Diagnostics) {
        resolve(&format!("consistentHash: {yaml}"))
    }

    #[test]
    fn least_request_is_the_default_and_least_conn_its_alias() {
        for yaml in ["{}", "simple: LEAST_REQUEST", "simple: LEAST_CONN"] {
            let (lb, reported) = resolve(yaml);
            assert_eq!(lb, Some(LoadBalancer::LeastRequest), "{yaml}");
            assert!(!reported.has_errors() && warnings_at(&reported).is_empty());
        }
        assert_eq!(LoadBalancer::default(), LoadBalancer::LeastRequest);
    }

    #[test]
    fn simple_algorithms_map_one_to_one() {
        assert_eq!(
            resolve("simple: ROUND_ROBIN").0,
            Some(LoadBalancer::RoundRobin)
        );
        assert_eq!(resolve("simple: RANDOM").0, Some(LoadBalancer::Random));
        let (lb, reported) = resolve("simple: PASSTHROUGH");
        assert_eq!(lb, Some(LoadBalancer::Passthrough));
        assert_eq!(warnings_at(&reported), ["loadBalancer.simple"]);
    }

    #[test]
    fn each_consistent_hash_key_becomes_its_hash_key() {
        let key = |yaml: &str| match hash(yaml) {
            (Some(LoadBalancer::ConsistentHash(key)), reported) if !reported.has_errors() => key,
            other => panic!("{yaml}: {other:?}"),
        };
        assert_eq!(
            key("{httpHeaderName: x-user}"),
            HashKey::Header("x-user".into())
        );
        assert_eq!(key("{useSourceIp: true}"), HashKey::SourceIp);
        assert_eq!(
            key("{httpQueryParameterName: user}"),
            HashKey::QueryParameter("user".into())
        );
        assert_eq!(
            key("{httpCookie: {name: session}}"),
            HashKey::Cookie {
                name: "session".into(),
                path: None,
                ttl: None
            }
        );
    }

    #[test]
    fn a_cookie_is_read_never_generated_so_its_ttl_warns() {
        let (lb, reported) = hash("{httpCookie: {name: session, ttl: 60s, path: /}}");
        let expected = HashKey::Cookie {
            name: "session".into(),
            path: Some("/".into()),
            ttl: Some(Duration::from_secs(60)),
        };
        assert_eq!(lb, Some(LoadBalancer::ConsistentHash(expected)));
        assert_eq!(
            warnings_at(&reported),
            ["loadBalancer.consistentHash.httpCookie"]
        );
        let (lb, reported) = hash("{httpCookie: {ttl: 60s}}");
        assert_eq!(lb, None);
        assert_eq!(
            errors_at(&reported),
            ["loadBalancer.consistentHash.httpCookie.name"]
        );
    }

    #[test]
    fn a_consistent_hash_takes_exactly_one_key_and_no_simple() {
        let (lb, reported) = hash("{}");
        assert_eq!(lb, None);
        assert_eq!(errors_at(&reported), ["loadBalancer.consistentHash"]);
        let (lb, reported) = hash("{useSourceIp: true, httpHeaderName: x-user}");
        assert_eq!(lb, None);
        assert_eq!(errors_at(&reported), ["loadBalancer.consistentHash"]);
        let (lb, reported) = resolve("{simple: RANDOM, consistentHash: {useSourceIp: true}}");
        assert_eq!(lb, None);
        assert_eq!(errors_at(&reported), ["loadBalancer"]);
    }

    #[test]
    fn ring_and_table_sizes_are_checked_then_ignored() {
        let (lb, reported) = hash("{useSourceIp: true, maglev: {tableSize: 65537}}");
        assert_eq!(lb, Some(LoadBalancer::ConsistentHash(HashKey::SourceIp)));
        assert!(errors_at(&reported).is_empty());
        assert_eq!(
            warnings_at(&reported),
            ["loadBalancer.consistentHash.maglev"]
        );
        let (_, reported) = hash("{useSourceIp: true, maglev: {tableSize: 65536}}");
        assert_eq!(
            errors_at(&reported),
            ["loadBalancer.consistentHash.maglev.tableSize"]
        );
        let (_, reported) = hash("{useSourceIp: true, maglev: {}, ringHash: {}}");
        assert_eq!(errors_at(&reported), ["loadBalancer.consistentHash"]);
    }

    #[test]
    fn warmup_is_checked_against_istios_bounds_then_ignored() {
        let (lb, reported) =
            resolve("{warmup: {duration: 10s, minimumPercent: 10, aggression: 1}}");
        assert_eq!(lb, Some(LoadBalancer::LeastRequest));
        assert!(errors_at(&reported).is_empty());
        assert_eq!(warnings_at(&reported), ["loadBalancer"]);
        let (_, reported) = resolve("{warmup: {minimumPercent: 150, aggression: 0.5}}");
        assert_eq!(
            errors_at(&reported),
            [
                "loadBalancer.warmup.duration",
                "loadBalancer.warmup.minimumPercent",
                "loadBalancer.warmup.aggression"
            ]
        );
    }

    #[test]
    fn primes_are_told_apart() {
        let primes: Vec<u64> = (0..20).filter(|&n| is_prime(n)).collect();
        assert_eq!(primes, [2, 3, 5, 7, 11, 13, 17, 19]);
        assert!(is_prime(65537) && !is_prime(65535));
    }
}
