//! DestinationRule: subsets and traffic policies, merged into one cluster per
//! (service, port, subset). What the rules say about each host is gathered in
//! `rules`; a policy's layers are built in `traffic_policy` from its load balancer,
//! connection pool, outlier detection and upstream TLS, each in its own module.

mod connection_pool;
mod load_balancer;
mod outlier;
mod rules;
mod traffic_policy;
mod upstream_tls;

use std::collections::{BTreeMap, BTreeSet};

use super::scope::Scope;
use super::services::{Service, ServicePort};
use super::{Context, Input, checks, tls};
use crate::config::diag::{Reporter, Site};
use crate::config::model::destination_rule::DestinationRuleSpec;
use crate::config::resolved::{Cluster, Endpoint, Protocol, TrafficPolicy, UpstreamTlsMode};
use rules::HostRules;
use traffic_policy::Written;

/// The subset names each host's DestinationRule defines.
pub type Subsets = BTreeMap<String, BTreeSet<String>>;

/// The Envoy-style name of a cluster.
pub fn cluster_name(host: &str, port: u16, subset: Option<&str>) -> String {
    format!("outbound|{port}|{}|{host}", subset.unwrap_or(""))
}

/// Checks every DestinationRule and builds the clusters of every service.
pub fn resolve(
    rules: &[Input<'_, DestinationRuleSpec>],
    services: &BTreeMap<String, Service>,
    ctx: &Context<'_>,
    reporter: &Reporter,
) -> (BTreeMap<String, Cluster>, Subsets) {
    let mut by_host: BTreeMap<String, HostRules> = BTreeMap::new();
    for rule in rules {
        let at = rule.scope(reporter).field("spec");
        rules::destination_rule(rule.spec, services, ctx, &at, &mut by_host);
    }
    for (host, rules) in &by_host {
        let Some((_, btp)) = &rules.backend_tls else {
            continue;
        };
        let overridden = |at: Scope<'_>| {
            at.field("tls").warn(format!("{} sets the TLS of host {host:?}, and a BackendTLSPolicy takes precedence: this TLS is ignored", btp.resource));
        };
        if let Some((policy, site)) = &rules.policy
            && policy.sets_tls()
        {
            overridden(Scope::new(reporter, site, "spec.trafficPolicy"));
        }
        for (rule, _) in rules.subsets.values() {
            if rule.policy.sets_tls() {
                let (site, path) = &rule.written;
                overridden(Scope::new(reporter, site, path.as_str()));
            }
        }
    }

    let mut clusters = BTreeMap::new();
    let mut subsets = Subsets::new();
    let mut warned_h2 = BTreeSet::new();
    for (host, service) in services {
        let rules = by_host.remove(host).unwrap_or_default();
        subsets.insert(host.clone(), rules.subsets.keys().cloned().collect());
        for port in &service.ports {
            let mut names: Vec<Option<&str>> = vec![None];
            names.extend(rules.subsets.keys().map(|s| Some(s.as_str())));
            for subset in names {
                let (cluster, pool_at) = cluster(host, service, port, subset, &rules);
                let pool = &cluster.policy.connection_pool;
                if let Some(written) = pool_at
                    && (port.protocol.is_http2() || pool.h2_upgrade)
                {
                    warned_h2.extend(connection_pool::http1_only_limits(pool).map(|field| {
                        let Written { site, path } = written.clone();
                        (site.document, site.resource, path, field, host.clone())
                    }));
                }
                clusters.insert(cluster.name.clone(), cluster);
            }
        }
    }
    for (document, resource, path, field, host) in warned_h2 {
        let site = Site { document, resource };
        let at = Scope::new(reporter, &site, path);
        at.field(field).warn(format!("host {host:?} is spoken to over HTTP/2, where this HTTP/1.1 connection limit is not enforced; ignored"));
    }
    (clusters, subsets)
}

/// The cluster of one port of a service, for one subset (`None`: every endpoint), with
/// Istio's defaults under the rules' policies, and where its connection pool is written
/// (`None`: Istio's defaults).
fn cluster(
    host: &str,
    service: &Service,
    port: &ServicePort,
    subset: Option<&str>,
    rules: &HostRules,
) -> (Cluster, Option<Written>) {
    let mut policy = TrafficPolicy::default();
    // An HTTPS port speaks TLS: without a DestinationRule saying otherwise the
    // gateway originates it (SIMPLE, system roots, the request's host as SNI),
    // so what the client sent reaches the service encrypted end to end.
    if port.protocol == Protocol::Https {
        policy.tls.mode = UpstreamTlsMode::Simple;
    }
    let defaults = policy.clone();
    let mut pool_at = None;
    if let Some((top, _)) = &rules.policy {
        top.apply(port.number, &mut policy, &defaults, &mut pool_at);
    }
    let subset_rule = subset.and_then(|s| rules.subsets.get(s)).map(|(r, _)| r);
    if let Some(rule) = subset_rule {
        rule.policy
            .apply(port.number, &mut policy, &defaults, &mut pool_at);
    }
    if let Some((tls, _)) = &rules.backend_tls {
        tls.apply(port.number, &mut policy, &defaults, &mut pool_at);
    }
    let endpoints = service
        .endpoints
        .iter()
        .filter(|e| subset_rule.is_none_or(|r| r.selects(&e.labels)))
        .map(|e| Endpoint {
            address: e.address.clone(),
            port: e.ports.get(&port.name).copied().unwrap_or(port.target_port),
            weight: e.weight,
            labels: e.labels.clone(),
            locality: e.locality.clone(),
        })
        .collect();
    let cluster = Cluster {
        name: cluster_name(host, port.number, subset),
        host: host.to_string(),
        namespace: service.namespace.clone(),
        port: port.number,
        protocol: port.protocol,
        subset: subset.map(String::from),
        resolution: service.resolution,
        endpoints,
        policy,
    };
    (cluster, pool_at)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;
    use std::time::Duration;

    use super::resolve;
    use crate::config::Diagnostics;
    use crate::config::diag::Reporter;
    use crate::config::model::destination_rule::DestinationRuleSpec;
    use crate::config::model::service_entry::ServiceEntrySpec;
    use crate::config::resolve::scope::{errors_at, warnings_at};
    use crate::config::resolve::{Context, Input, services};
    use crate::config::resolved::{
        Cluster, ConnectionPool, EndpointAddress, LoadBalancer, UNLIMITED, UpstreamTlsMode,
    };

    /// A service with an HTTP and an HTTPS port, and a v1 and a v2 endpoint.
    const SERVICE: &str = "
hosts: [api.example.com]
resolution: STATIC
ports:
- {number: 80, name: http, protocol: HTTP}
- {number: 8443, name: https, protocol: HTTPS}
endpoints:
- {address: 10.0.0.1, labels: {version: v1}}
- {address: 10.0.0.2, labels: {version: v2}}
";

    /// The clusters of `service` under the DestinationRules `rules` (named `first`,
    /// `second`), and what was reported.
    fn clusters_of(service: &str, rules: &[&str]) -> (BTreeMap<String, Cluster>, Diagnostics) {
        let service: ServiceEntrySpec = serde_yaml::from_str(service).unwrap();
        let specs: Vec<DestinationRuleSpec> = rules
            .iter()
            .map(|rule| serde_yaml::from_str(rule).unwrap())
            .collect();
        let inputs: Vec<_> = specs
            .iter()
            .zip(["first", "second"])
            .map(|(spec, name)| Input::test(spec, "DestinationRule", "default", name))
            .collect();
        let reporter = Reporter::new("test.yaml", Vec::new());
        let entry = Input::test(&service, "ServiceEntry", "default", "api");
        let services = services::resolve(&[entry], &reporter);
        let ctx = Context {
            base_dir: Path::new("."),
        };
        let (clusters, _) = resolve(&inputs, &services, &ctx, &reporter);
        (clusters, reporter.finish())
    }

    fn clusters(rules: &[&str]) -> (BTreeMap<String, Cluster>, Diagnostics) {
        clusters_of(SERVICE, rules)
    }

    fn addresses(cluster: &Cluster) -> Vec<String> {
        let address = |a: &EndpointAddress| match a {
            EndpointAddress::Ip(ip) => ip.to_string(),
            other => format!("{other:?}"),
        };
        cluster
            .endpoints
            .iter()
            .map(|e| address(&e.address))
            .collect()
    }

    #[test]
    fn without_a_rule_each_port_is_one_cluster_with_istios_defaults() {
        let (clusters, reported) = clusters(&[]);
        let names: Vec<&str> = clusters.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "outbound|80||api.example.com",
                "outbound|8443||api.example.com"
            ]
        );
        let http = &clusters["outbound|80||api.example.com"];
        assert_eq!(addresses(http), ["10.0.0.1", "10.0.0.2"]);
        assert!(http.endpoints.iter().all(|e| e.port == 80));
        let policy = &http.policy;
        assert_eq!(policy.load_balancer, LoadBalancer::LeastRequest);
        assert_eq!(policy.outlier_detection, None);
        assert_eq!(policy.tls.mode, UpstreamTlsMode::Disable);
        assert!(!reported.has_errors() && warnings_at(&reported).is_empty());
    }

    #[test]
    fn an_unset_connection_pool_is_istios_unlimited_pool() {
        let (clusters, _) =
            clusters(&["host: api.example.com\ntrafficPolicy: {loadBalancer: {simple: RANDOM}}"]);
        let pool = &clusters["outbound|80||api.example.com"]
            .policy
            .connection_pool;
        assert_eq!(*pool, ConnectionPool::default());
        assert_eq!(pool.max_connections, u32::MAX);
        assert_eq!(pool.connect_timeout, Duration::from_secs(10));
        assert_eq!(pool.tcp_idle_timeout, Duration::from_secs(3600));
        assert_eq!(pool.http_idle_timeout, Duration::from_secs(3600));
        assert_eq!(
            [
                pool.http1_max_pending_requests,
                pool.http2_max_requests,
                pool.max_retries
            ],
            [UNLIMITED; 3]
        );
        assert_eq!(pool.max_requests_per_connection, 0);
        assert_eq!(pool.max_concurrent_streams, (1 << 31) - 1);
        assert!(!pool.h2_upgrade && !pool.use_client_protocol);
        assert_eq!(
            (pool.tcp_keepalive.as_ref(), pool.http2_keep_alive),
            (None, None)
        );
        assert_eq!(pool.max_connection_duration, None);
    }

    #[test]
    fn an_https_port_originates_tls_unless_a_rule_says_otherwise() {
        let (defaults, _) = clusters(&[]);
        let tls = &defaults["outbound|8443||api.example.com"].policy.tls;
        assert_eq!(tls.mode, UpstreamTlsMode::Simple);
        assert_eq!(
            (tls.sni.as_deref(), tls.ca_certificates.as_ref()),
            (None, None)
        );
        let (disabled, _) =
            clusters(&["host: api.example.com\ntrafficPolicy: {tls: {mode: DISABLE}}"]);
        let tls = &disabled["outbound|8443||api.example.com"].policy.tls;
        assert_eq!(tls.mode, UpstreamTlsMode::Disable);
    }

    #[test]
    fn subsets_are_clusters_of_the_endpoints_their_labels_select() {
        let (clusters, reported) = clusters(&["
host: api.example.com
subsets:
- {name: v1, labels: {version: v1}}
- {name: all}
"]);
        assert_eq!(clusters.len(), 6);
        let v1 = &clusters["outbound|80|v1|api.example.com"];
        assert_eq!(v1.subset.as_deref(), Some("v1"));
        assert_eq!(addresses(v1), ["10.0.0.1"]);
        assert_eq!(
            addresses(&clusters["outbound|8443|all|api.example.com"]),
            ["10.0.0.1", "10.0.0.2"]
        );
        assert!(!reported.has_errors() && warnings_at(&reported).is_empty());
    }

    #[test]
    fn a_subset_policy_replaces_each_top_level_field_it_sets() {
        let (clusters, reported) = clusters(&["
host: api.example.com
trafficPolicy:
  loadBalancer: {simple: ROUND_ROBIN}
  connectionPool: {tcp: {maxConnections: 10}}
  outlierDetection: {consecutive5xxErrors: 3}
subsets:
- name: v1
  labels: {version: v1}
- name: v2
  labels: {version: v2}
  trafficPolicy:
    loadBalancer: {simple: RANDOM}
    connectionPool: {http: {maxRetries: 3}}
"]);
        assert!(!reported.has_errors());
        let v1 = &clusters["outbound|80|v1|api.example.com"].policy;
        assert_eq!(v1.load_balancer, LoadBalancer::RoundRobin);
        assert_eq!(v1.connection_pool.max_connections, 10);
        let v2 = &clusters["outbound|80|v2|api.example.com"].policy;
        assert_eq!(v2.load_balancer, LoadBalancer::Random);
        // The subset's connectionPool replaces the top-level one whole, as in Istio.
        assert_eq!(v2.connection_pool.max_connections, UNLIMITED);
        assert_eq!(v2.connection_pool.max_retries, 3);
        // What the subset leaves unset comes from the top level.
        let outlier = v2.outlier_detection.as_ref().unwrap();
        assert_eq!(outlier.consecutive_5xx_errors, 3);
    }

    #[test]
    fn port_level_settings_apply_to_their_port_only() {
        let (clusters, reported) = clusters(&["
host: api.example.com
trafficPolicy:
  loadBalancer: {simple: RANDOM}
  portLevelSettings:
  - port: {number: 8443}
    loadBalancer: {simple: ROUND_ROBIN}
subsets:
- name: v1
  labels: {version: v1}
  trafficPolicy:
    portLevelSettings:
    - port: {number: 80}
      outlierDetection: {consecutive5xxErrors: 2}
"]);
        assert!(!reported.has_errors());
        let lb = |name: &str| clusters[name].policy.load_balancer.clone();
        assert_eq!(lb("outbound|80||api.example.com"), LoadBalancer::Random);
        assert_eq!(
            lb("outbound|8443||api.example.com"),
            LoadBalancer::RoundRobin
        );
        assert_eq!(
            lb("outbound|8443|v1|api.example.com"),
            LoadBalancer::RoundRobin
        );
        let outlier = |name: &str| clusters[name].policy.outlier_detection.clone();
        assert_eq!(
            outlier("outbound|80|v1|api.example.com").map(|o| o.consecutive_5xx_errors),
            Some(2)
        );
        assert_eq!(outlier("outbound|8443|v1|api.example.com"), None);
        assert_eq!(outlier("outbound|80||api.example.com"), None);
    }

    #[test]
    fn a_subset_overrides_the_top_level_port_settings() {
        let (clusters, _) = clusters(&["
host: api.example.com
trafficPolicy:
  portLevelSettings:
  - port: {number: 80}
    loadBalancer: {simple: ROUND_ROBIN}
subsets:
- {name: v1, labels: {version: v1}, trafficPolicy: {loadBalancer: {simple: RANDOM}}}
"]);
        let lb = |name: &str| clusters[name].policy.load_balancer.clone();
        assert_eq!(lb("outbound|80||api.example.com"), LoadBalancer::RoundRobin);
        assert_eq!(lb("outbound|80|v1|api.example.com"), LoadBalancer::Random);
    }

    /// Pins a deviation: Istio resets the fields a port's settings leave unset to their
    /// defaults; here they keep the value of the policy the settings are in.
    #[test]
    fn port_level_settings_do_not_inherit_the_fields_they_leave_unset() {
        let (clusters, _) = clusters(&["
host: api.example.com
trafficPolicy:
  connectionPool: {tcp: {maxConnections: 10}}
  portLevelSettings:
  - port: {number: 8443}
    loadBalancer: {simple: ROUND_ROBIN}
"]);
        // Istio: "default values will be applied to fields omitted in port-level traffic
        // policies"; the other ports keep the top level's.
        let policy = &clusters["outbound|8443||api.example.com"].policy;
        assert_eq!(policy.load_balancer, LoadBalancer::RoundRobin);
        assert_eq!(policy.connection_pool.max_connections, u32::MAX);
        let other = clusters
            .iter()
            .find(|(name, _)| !name.contains("|8443|"))
            .map(|(_, c)| &c.policy)
            .expect("another port");
        assert_eq!(other.connection_pool.max_connections, 10);
        assert_eq!(other.load_balancer, LoadBalancer::LeastRequest);
    }

    #[test]
    fn a_rule_for_an_unknown_host_warns_at_its_host_and_changes_nothing() {
        let (clusters, reported) = clusters(&["
host: other.example.com
trafficPolicy: {loadBalancer: {simple: RANDOM}}
"]);
        assert!(errors_at(&reported).is_empty());
        assert_eq!(warnings_at(&reported), ["spec.host"]);
        assert!(clusters.values().all(|c| c.host == "api.example.com"));
        assert!(
            clusters
                .values()
                .all(|c| c.policy.load_balancer == LoadBalancer::LeastRequest)
        );
    }

    #[test]
    fn a_rule_without_a_host_is_an_error_at_its_host() {
        let (_, reported) = clusters(&["subsets: [{name: v1}]"]);
        assert_eq!(errors_at(&reported), ["spec.host"]);
    }

    #[test]
    fn a_duplicate_subset_name_is_an_error_at_the_second_name() {
        let (clusters, reported) = clusters(&["
host: api.example.com
subsets:
- {name: v1, labels: {version: v1}}
- {name: v1, labels: {version: v2}}
- {labels: {version: v2}}
"]);
        assert_eq!(
            errors_at(&reported),
            ["spec.subsets[1].name", "spec.subsets[2].name"]
        );
        assert_eq!(
            addresses(&clusters["outbound|80|v1|api.example.com"]),
            ["10.0.0.1"]
        );
    }

    #[test]
    fn the_first_rule_for_a_host_wins_its_policy_and_subsets() {
        let first = "
host: api.example.com
trafficPolicy: {loadBalancer: {simple: RANDOM}}
subsets: [{name: v1, labels: {version: v1}}]
";
        let second = "
host: api.example.com
trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
subsets: [{name: v1, labels: {version: v2}}, {name: v2, labels: {version: v2}}]
";
        let (clusters, reported) = clusters(&[first, second]);
        assert!(errors_at(&reported).is_empty());
        assert_eq!(
            warnings_at(&reported),
            ["spec.trafficPolicy", "spec.subsets[0].name"]
        );
        let warning = reported.warnings().next().unwrap();
        assert_eq!(warning.resource.as_deref(), Some("DestinationRule/second"));
        assert!(warning.message.starts_with("DestinationRule/first "));
        let v1 = &clusters["outbound|80|v1|api.example.com"];
        assert_eq!(addresses(v1), ["10.0.0.1"]);
        assert_eq!(v1.policy.load_balancer, LoadBalancer::Random);
        assert_eq!(
            addresses(&clusters["outbound|80|v2|api.example.com"]),
            ["10.0.0.2"]
        );
    }

    #[test]
    fn a_subset_that_selects_no_endpoint_warns_at_its_labels() {
        let (clusters, reported) = clusters(&["
host: api.example.com
subsets: [{name: v3, labels: {version: v3}}]
"]);
        assert_eq!(warnings_at(&reported), ["spec.subsets[0].labels"]);
        assert!(
            clusters["outbound|80|v3|api.example.com"]
                .endpoints
                .is_empty()
        );
    }

    #[test]
    fn http1_limits_on_an_http2_port_warn_once_per_field() {
        let service = "
hosts: [grpc.example.com]
resolution: STATIC
ports: [{number: 9000, name: grpc, protocol: GRPC}]
endpoints: [{address: 10.0.0.3, labels: {version: v1}}]
";
        let (clusters, reported) = clusters_of(
            service,
            &["
host: grpc.example.com
trafficPolicy: {connectionPool: {tcp: {maxConnections: 10}, http: {http2MaxRequests: 50}}}
subsets: [{name: v1, labels: {version: v1}}]
"],
        );
        assert_eq!(
            warnings_at(&reported),
            ["spec.trafficPolicy.connectionPool.tcp.maxConnections"]
        );
        let pool = &clusters["outbound|9000|v1|grpc.example.com"]
            .policy
            .connection_pool;
        assert_eq!((pool.max_connections, pool.http2_max_requests), (10, 50));
    }

    const GRPC_SERVICE: &str = "
hosts: [api.example.com]
resolution: STATIC
ports: [{number: 9000, name: grpc, protocol: GRPC}]
endpoints: [{address: 10.0.0.1, labels: {version: v1}}]
";

    /// HTTP/1.1-only limits on an HTTP/2 port are warned about where they are written:
    /// at the top level, in a subset without a top-level policy, or on a port.
    #[test]
    fn http1_only_limits_on_http2_ports_are_warned_where_written() {
        let (_, reported) = clusters_of(
            GRPC_SERVICE,
            &["
host: api.example.com
trafficPolicy: {connectionPool: {tcp: {maxConnections: 5}}}
"],
        );
        assert_eq!(
            warnings_at(&reported),
            ["spec.trafficPolicy.connectionPool.tcp.maxConnections"]
        );
        let (_, reported) = clusters_of(
            GRPC_SERVICE,
            &["
host: api.example.com
subsets:
- name: v1
  labels: {version: v1}
  trafficPolicy: {connectionPool: {http: {http1MaxPendingRequests: 3}}}
"],
        );
        assert_eq!(
            warnings_at(&reported),
            ["spec.subsets[0].trafficPolicy.connectionPool.http.http1MaxPendingRequests"]
        );
        let (_, reported) = clusters_of(
            GRPC_SERVICE,
            &["
host: api.example.com
trafficPolicy:
  portLevelSettings:
  - port: {number: 9000}
    connectionPool: {tcp: {maxConnections: 2}}
"],
        );
        assert_eq!(
            warnings_at(&reported),
            ["spec.trafficPolicy.portLevelSettings[0].connectionPool.tcp.maxConnections"]
        );
    }
}
