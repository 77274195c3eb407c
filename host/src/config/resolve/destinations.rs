//! DestinationRule: subsets and traffic policies, merged into one cluster per
//! (service, port, subset).

use std::collections::{BTreeMap, BTreeSet};

use super::services::Service;
use super::{Input, checks, tls};
use crate::config::diag::{Reporter, Site};
use crate::config::model::common::Percent;
use crate::config::model::destination_rule::{
    ClientTlsMode, ClientTlsSettings, ConnectionPoolSettings, DestinationRuleSpec, H2UpgradePolicy,
    LoadBalancerSettings, OutlierDetection as OutlierSpec, SimpleLb, TrafficPolicy as PolicySpec,
    Warmup,
};
use crate::config::resolved::{
    Cluster, ConnectionPool, Endpoint, HashKey, LoadBalancer, OutlierDetection, Protocol,
    TcpKeepalive, TrafficPolicy, UpstreamTls, UpstreamTlsMode,
};

/// The subset names each host's DestinationRule defines.
pub type Subsets = BTreeMap<String, BTreeSet<String>>;

/// The Envoy-style name of a cluster.
pub fn cluster_name(host: &str, port: u16, subset: Option<&str>) -> String {
    format!("outbound|{port}|{}|{host}", subset.unwrap_or(""))
}

/// The policy fields one layer (top level, port, subset) sets; later layers replace
/// whole fields, as Istio merges them.
#[derive(Debug, Clone, Default)]
struct Layer {
    load_balancer: Option<LoadBalancer>,
    connection_pool: Option<ConnectionPool>,
    outlier_detection: Option<OutlierDetection>,
    tls: Option<UpstreamTls>,
}

impl Layer {
    fn apply(&self, policy: &mut TrafficPolicy) {
        if let Some(lb) = &self.load_balancer {
            policy.load_balancer = lb.clone();
        }
        if let Some(pool) = &self.connection_pool {
            policy.connection_pool = pool.clone();
        }
        if let Some(outlier) = &self.outlier_detection {
            policy.outlier_detection = Some(outlier.clone());
        }
        if let Some(tls) = &self.tls {
            policy.tls = tls.clone();
        }
    }
}

/// A traffic policy layer and its per-port overrides.
#[derive(Debug, Clone, Default)]
struct Policy {
    base: Layer,
    ports: BTreeMap<u16, Layer>,
}

impl Policy {
    fn apply(&self, port: u16, policy: &mut TrafficPolicy) {
        self.base.apply(policy);
        if let Some(layer) = self.ports.get(&port) {
            layer.apply(policy);
        }
    }
}

/// A subset: its labels and policy.
#[derive(Debug, Clone)]
struct SubsetRule {
    labels: BTreeMap<String, String>,
    policy: Policy,
}

/// What the DestinationRules say about one host.
#[derive(Debug, Clone, Default)]
struct HostRules {
    policy: Option<(Policy, Site)>,
    subsets: BTreeMap<String, (SubsetRule, String)>,
}

/// Checks every DestinationRule and builds the clusters of every service.
pub fn resolve(
    rules: &[Input<'_, DestinationRuleSpec>],
    services: &BTreeMap<String, Service>,
    ctx: &super::Context<'_>,
    reporter: &mut Reporter,
) -> (BTreeMap<String, Cluster>, Subsets) {
    let mut by_host: BTreeMap<String, HostRules> = BTreeMap::new();
    for rule in rules {
        destination_rule(rule, services, ctx, reporter, &mut by_host);
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
                let mut policy = TrafficPolicy::default();
                // An HTTPS port speaks TLS: without a DestinationRule saying otherwise the
                // gateway originates it (SIMPLE, system roots, the request's host as SNI),
                // so what the client sent reaches the service encrypted end to end.
                if port.protocol == Protocol::Https {
                    policy.tls.mode = UpstreamTlsMode::Simple;
                }
                if let Some((top, _)) = &rules.policy {
                    top.apply(port.number, &mut policy);
                }
                let subset_rule = subset.and_then(|s| rules.subsets.get(s)).map(|(r, _)| r);
                if let Some(rule) = subset_rule {
                    rule.policy.apply(port.number, &mut policy);
                }
                let endpoints = service
                    .endpoints
                    .iter()
                    .filter(|e| {
                        subset_rule.is_none_or(|r| {
                            r.labels.iter().all(|(k, v)| e.labels.get(k) == Some(v))
                        })
                    })
                    .map(|e| Endpoint {
                        address: e.address.clone(),
                        port: e.ports.get(&port.name).copied().unwrap_or(port.target_port),
                        weight: e.weight,
                        labels: e.labels.clone(),
                        locality: e.locality.clone(),
                    })
                    .collect();
                if let Some((_, site)) = &rules.policy
                    && (port.protocol.is_http2() || policy.connection_pool.h2_upgrade)
                {
                    warned_h2.extend(
                        http1_only_limits(&policy.connection_pool).map(|field| {
                            (site.document, site.resource.clone(), field, host.clone())
                        }),
                    );
                }
                let name = cluster_name(host, port.number, subset);
                clusters.insert(
                    name.clone(),
                    Cluster {
                        name,
                        host: host.clone(),
                        namespace: service.namespace.clone(),
                        port: port.number,
                        protocol: port.protocol,
                        subset: subset.map(String::from),
                        resolution: service.resolution,
                        endpoints,
                        policy,
                    },
                );
            }
        }
    }
    for (document, resource, field, host) in warned_h2 {
        reporter.warn(
            &Site { document, resource },
            format!("spec.trafficPolicy.connectionPool.{field}"),
            format!("host {host:?} is spoken to over HTTP/2, where this HTTP/1.1 connection limit is not enforced; ignored"),
        );
    }
    (clusters, subsets)
}

/// The connection-pool limits set in `pool` that only HTTP/1.1 connections honour.
fn http1_only_limits(pool: &ConnectionPool) -> impl Iterator<Item = &'static str> {
    let defaults = ConnectionPool::default();
    [
        (
            "tcp.maxConnections",
            pool.max_connections != defaults.max_connections,
        ),
        ("tcp.tcpKeepalive", pool.tcp_keepalive.is_some()),
        (
            "tcp.maxConnectionDuration",
            pool.max_connection_duration.is_some(),
        ),
        (
            "http.http1MaxPendingRequests",
            pool.http1_max_pending_requests != defaults.http1_max_pending_requests,
        ),
        (
            "http.maxRequestsPerConnection",
            pool.max_requests_per_connection != defaults.max_requests_per_connection,
        ),
    ]
    .into_iter()
    .filter_map(|(field, set)| set.then_some(field))
}

fn destination_rule(
    rule: &Input<'_, DestinationRuleSpec>,
    services: &BTreeMap<String, Service>,
    ctx: &super::Context<'_>,
    reporter: &mut Reporter,
    by_host: &mut BTreeMap<String, HostRules>,
) {
    let (spec, site) = (rule.spec, &rule.site);
    let Some(host) = spec.host.as_deref() else {
        reporter.error(site, "spec.host", "missing field `host`");
        return;
    };
    if !checks::host_name(reporter, site, "spec.host", host) {
        return;
    }
    let service = services.get(host);
    if service.is_none() {
        reporter.warn(
            site,
            "spec.host",
            format!("no ServiceEntry defines host {host:?}; this rule has no effect"),
        );
    }
    if spec.export_to.is_some() {
        reporter.warn(
            site,
            "spec.exportTo",
            "only applies inside a service mesh; ignored",
        );
    }
    if spec.workload_selector.is_some() {
        reporter.warn(
            site,
            "spec.workloadSelector",
            "only applies inside a service mesh; ignored",
        );
    }
    let entry = by_host.entry(host.to_string()).or_default();
    if let Some(policy) = &spec.traffic_policy {
        let resolved = traffic_policy(policy, "spec.trafficPolicy", service, ctx, site, reporter);
        match &entry.policy {
            Some((_, first)) => reporter.warn(
                site,
                "spec.trafficPolicy",
                format!("{} already sets the traffic policy of host {host:?}; the first rule wins and this policy is ignored", first.resource),
            ),
            None => entry.policy = Some((resolved, site.clone())),
        }
    }
    let mut seen = BTreeSet::new();
    for (i, subset) in spec.subsets.iter().enumerate() {
        let path = format!("spec.subsets[{i}]");
        let name = match subset.name.as_deref() {
            Some(name) if !name.is_empty() => name,
            _ => {
                reporter.error(
                    site,
                    format!("{path}.name"),
                    "subset name must not be empty",
                );
                continue;
            }
        };
        if !seen.insert(name) {
            reporter.error(
                site,
                format!("{path}.name"),
                format!("duplicate subset name {name:?}"),
            );
            continue;
        }
        let policy = subset
            .traffic_policy
            .as_ref()
            .map(|p| {
                traffic_policy(
                    p,
                    &format!("{path}.trafficPolicy"),
                    service,
                    ctx,
                    site,
                    reporter,
                )
            })
            .unwrap_or_default();
        if let Some(service) = service {
            let selects_any = service.endpoints.iter().any(|e| {
                subset
                    .labels
                    .iter()
                    .all(|(k, v)| e.labels.get(k) == Some(v))
            });
            if !selects_any {
                reporter.warn(
                    site,
                    format!("{path}.labels"),
                    format!(
                        "subset {name:?} selects no endpoint of {:?}; requests to it get 503",
                        service.host
                    ),
                );
            }
        }
        if let Some((_, first)) = entry.subsets.get(name) {
            reporter.warn(site, format!("{path}.name"), format!("{first} already defines subset {name:?} of host {host:?}; the first definition wins"));
            continue;
        }
        let rule = SubsetRule {
            labels: subset.labels.clone(),
            policy,
        };
        entry
            .subsets
            .insert(name.to_string(), (rule, site.resource.clone()));
    }
}

fn traffic_policy(
    spec: &PolicySpec,
    path: &str,
    service: Option<&Service>,
    ctx: &super::Context<'_>,
    site: &Site,
    reporter: &mut Reporter,
) -> Policy {
    let layer = |lb: &Option<LoadBalancerSettings>,
                 pool: &Option<ConnectionPoolSettings>,
                 outlier: &Option<OutlierSpec>,
                 tls_spec: &Option<ClientTlsSettings>,
                 path: &str,
                 reporter: &mut Reporter| Layer {
        load_balancer: lb
            .as_ref()
            .and_then(|l| load_balancer(l, &format!("{path}.loadBalancer"), site, reporter)),
        connection_pool: pool
            .as_ref()
            .and_then(|p| connection_pool(p, &format!("{path}.connectionPool"), site, reporter)),
        outlier_detection: outlier.as_ref().and_then(|o| {
            outlier_detection(o, &format!("{path}.outlierDetection"), site, reporter)
        }),
        tls: tls_spec
            .as_ref()
            .and_then(|t| upstream_tls(t, &format!("{path}.tls"), ctx, site, reporter)),
    };
    let base = layer(
        &spec.load_balancer,
        &spec.connection_pool,
        &spec.outlier_detection,
        &spec.tls,
        path,
        reporter,
    );
    let mut ports = BTreeMap::new();
    for (i, settings) in spec.port_level_settings.iter().enumerate() {
        let port_path = format!("{path}.portLevelSettings[{i}]");
        let Some(number) = settings.port.and_then(|p| p.number) else {
            reporter.error(
                site,
                format!("{port_path}.port"),
                "port-level settings need a port number",
            );
            continue;
        };
        let Some(number) =
            checks::port(reporter, site, &format!("{port_path}.port.number"), number)
        else {
            continue;
        };
        if let Some(service) = service.filter(|s| s.port(number).is_none()) {
            reporter.warn(
                site,
                format!("{port_path}.port.number"),
                format!(
                    "service {:?} has no port {number} (ports: {}); these settings have no effect",
                    service.host,
                    service.port_list()
                ),
            );
        }
        let resolved = layer(
            &settings.load_balancer,
            &settings.connection_pool,
            &settings.outlier_detection,
            &settings.tls,
            &port_path,
            reporter,
        );
        if ports.insert(number, resolved).is_some() {
            reporter.error(
                site,
                format!("{port_path}.port.number"),
                format!("port {number} already has port-level settings"),
            );
        }
    }
    if spec.tunnel.is_some() {
        reporter.warn(
            site,
            format!("{path}.tunnel"),
            "CONNECT tunnelling of TCP traffic is not supported; ignored",
        );
    }
    if spec.proxy_protocol.is_some() {
        reporter.warn(
            site,
            format!("{path}.proxyProtocol"),
            "sending PROXY protocol to upstreams is not supported yet; ignored",
        );
    }
    if let Some(budget) = &spec.retry_budget {
        checks::percentage(
            reporter,
            site,
            &format!("{path}.retryBudget.percent"),
            budget.percent.map(|value| Percent { value }),
        );
        reporter.warn(
            site,
            format!("{path}.retryBudget"),
            "retry budgets are not enforced (connectionPool.http.maxRetries is); ignored",
        );
    }
    Policy { base, ports }
}

fn load_balancer(
    spec: &LoadBalancerSettings,
    path: &str,
    site: &Site,
    reporter: &mut Reporter,
) -> Option<LoadBalancer> {
    if spec.zone_aware_lb_setting.is_some() {
        if spec.locality_lb_setting.is_some() {
            reporter.error(
                site,
                format!("{path}.zoneAwareLbSetting"),
                "zoneAwareLbSetting cannot be combined with localityLbSetting",
            );
        }
        reporter.warn(
            site,
            format!("{path}.zoneAwareLbSetting"),
            "zone-aware load balancing is not supported; ignored",
        );
    }
    if spec.locality_lb_setting.is_some() {
        reporter.warn(
            site,
            format!("{path}.localityLbSetting"),
            "locality-aware load balancing is not supported; ignored",
        );
    }
    if let Some(warmup) = &spec.warmup {
        check_warmup(warmup, &format!("{path}.warmup"), site, reporter);
    }
    if spec.warmup.is_some() || spec.warmup_duration_secs.is_some() {
        reporter.warn(site, path, "warmup (slow start) is not supported; ignored");
    }
    match (spec.simple, &spec.consistent_hash) {
        (Some(_), Some(_)) => {
            reporter.error(
                site,
                path,
                "load balancer takes only one of simple or consistentHash",
            );
            None
        }
        (Some(simple), None) => Some(match simple {
            SimpleLb::RoundRobin => LoadBalancer::RoundRobin,
            SimpleLb::Random => LoadBalancer::Random,
            SimpleLb::LeastRequest | SimpleLb::LeastConn | SimpleLb::Unspecified => {
                LoadBalancer::LeastRequest
            }
            SimpleLb::Passthrough => {
                reporter.warn(
                    site,
                    format!("{path}.simple"),
                    "a standalone gateway has no original destination to pass through to; endpoints are picked at random",
                );
                LoadBalancer::Passthrough
            }
        }),
        (None, Some(hash)) => {
            let hash_path = format!("{path}.consistentHash");
            let mut keys = Vec::new();
            if let Some(header) = &hash.http_header_name {
                keys.push(
                    checks::header_name(
                        reporter,
                        site,
                        &format!("{hash_path}.httpHeaderName"),
                        header,
                    )
                    .map(HashKey::Header),
                );
            }
            if let Some(cookie) = &hash.http_cookie {
                let cookie_path = format!("{hash_path}.httpCookie");
                if cookie.ttl.is_some() || cookie.path.is_some() || !cookie.attributes.is_empty() {
                    reporter.warn(
                        site,
                        &cookie_path,
                        "the affinity cookie is read, never generated: ttl, path and attributes are ignored",
                    );
                }
                let key = match cookie.name.as_deref() {
                    Some(name) if !name.is_empty() => Some(HashKey::Cookie {
                        name: name.to_string(),
                        path: cookie.path.clone(),
                        ttl: cookie.ttl.map(|d| d.0),
                    }),
                    _ => {
                        reporter.error(
                            site,
                            format!("{cookie_path}.name"),
                            "cookie name is required",
                        );
                        None
                    }
                };
                keys.push(key);
            }
            if hash.use_source_ip == Some(true) {
                keys.push(Some(HashKey::SourceIp));
            }
            if let Some(param) = &hash.http_query_parameter_name {
                keys.push(Some(HashKey::QueryParameter(param.clone())));
            }
            if hash.ring_hash.is_some() && hash.maglev.is_some() {
                reporter.error(
                    site,
                    &hash_path,
                    "consistent hash takes only one of ringHash or maglev",
                );
            }
            let sized = [
                ("minimumRingSize", hash.minimum_ring_size.is_some()),
                ("ringHash", hash.ring_hash.is_some()),
                ("maglev", hash.maglev.is_some()),
            ];
            for (field, set) in sized {
                if set {
                    reporter.warn(
                        site,
                        format!("{hash_path}.{field}"),
                        "keys are hashed to endpoints by rendezvous hashing, which has no ring or table to size; ignored",
                    );
                }
            }
            if let Some(size) = hash.maglev.as_ref().and_then(|m| m.table_size)
                && !is_prime(size)
            {
                reporter.error(
                    site,
                    format!("{hash_path}.maglev.tableSize"),
                    format!("maglev table size {size} must be a prime number"),
                );
            }
            match keys.len() {
                0 => {
                    reporter.error(site, &hash_path, "consistent hash needs one of httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName");
                    None
                }
                1 => keys.pop().flatten().map(LoadBalancer::ConsistentHash),
                _ => {
                    reporter.error(site, &hash_path, "consistent hash takes only one hash key");
                    None
                }
            }
        }
        (None, None) => Some(LoadBalancer::default()),
    }
}

/// Istio's bounds on slow start: a duration, a minimum percentage of 0–100 and an
/// aggression of at least 1.
fn check_warmup(warmup: &Warmup, path: &str, site: &Site, reporter: &mut Reporter) {
    if warmup.duration.is_none() {
        reporter.error(site, format!("{path}.duration"), "warmup needs a duration");
    }
    if let Some(percent) = warmup.minimum_percent
        && !(0.0..=100.0).contains(&percent)
    {
        reporter.error(
            site,
            format!("{path}.minimumPercent"),
            format!("minimumPercent {percent} must be between 0 and 100"),
        );
    }
    if let Some(aggression) = warmup.aggression
        && aggression < 1.0
    {
        reporter.error(
            site,
            format!("{path}.aggression"),
            format!("aggression {aggression} must be at least 1"),
        );
    }
}

fn is_prime(n: u64) -> bool {
    n >= 2
        && (2..)
            .take_while(|d| d * d <= n)
            .all(|d| !n.is_multiple_of(d))
}

fn connection_pool(
    spec: &ConnectionPoolSettings,
    path: &str,
    site: &Site,
    reporter: &mut Reporter,
) -> Option<ConnectionPool> {
    if spec.tcp.is_none() && spec.http.is_none() {
        reporter.error(
            site,
            path,
            "connection pool must have at least one of tcp or http",
        );
        return None;
    }
    let mut pool = ConnectionPool::default();
    if let Some(tcp) = &spec.tcp {
        let p = format!("{path}.tcp");
        if let Some(n) = checks::count(
            reporter,
            site,
            &format!("{p}.maxConnections"),
            tcp.max_connections,
        ) && n > 0
        {
            // As in Istio, 0 means "not set".
            pool.max_connections = n;
        }
        if let Some(d) = checks::duration(
            reporter,
            site,
            &format!("{p}.connectTimeout"),
            tcp.connect_timeout,
        ) {
            pool.connect_timeout = d;
        }
        pool.max_connection_duration = checks::duration(
            reporter,
            site,
            &format!("{p}.maxConnectionDuration"),
            tcp.max_connection_duration,
        );
        if let Some(d) = checks::duration(
            reporter,
            site,
            &format!("{p}.idleTimeout"),
            tcp.idle_timeout,
        ) {
            pool.tcp_idle_timeout = d;
        }
        if let Some(keepalive) = &tcp.tcp_keepalive {
            let kp = format!("{p}.tcpKeepalive");
            pool.tcp_keepalive = Some(TcpKeepalive {
                probes: keepalive.probes,
                time: checks::duration(reporter, site, &format!("{kp}.time"), keepalive.time),
                interval: checks::duration(
                    reporter,
                    site,
                    &format!("{kp}.interval"),
                    keepalive.interval,
                ),
            });
        }
    }
    if let Some(http) = &spec.http {
        let p = format!("{path}.http");
        // As in Istio, 0 means "not set" (and for maxRequestsPerConnection, unlimited).
        let set = |field: &str, value: Option<i64>, target: &mut u32, reporter: &mut Reporter| {
            if let Some(n) = checks::count(reporter, site, &format!("{p}.{field}"), value)
                && n > 0
            {
                *target = n;
            }
        };
        set(
            "http1MaxPendingRequests",
            http.http1_max_pending_requests,
            &mut pool.http1_max_pending_requests,
            reporter,
        );
        set(
            "http2MaxRequests",
            http.http2_max_requests,
            &mut pool.http2_max_requests,
            reporter,
        );
        set(
            "maxRequestsPerConnection",
            http.max_requests_per_connection,
            &mut pool.max_requests_per_connection,
            reporter,
        );
        set(
            "maxRetries",
            http.max_retries,
            &mut pool.max_retries,
            reporter,
        );
        set(
            "maxConcurrentStreams",
            http.max_concurrent_streams,
            &mut pool.max_concurrent_streams,
            reporter,
        );
        if let Some(d) = checks::duration(
            reporter,
            site,
            &format!("{p}.idleTimeout"),
            http.idle_timeout,
        ) {
            pool.http_idle_timeout = d;
        }
        let use_client = http.use_client_protocol.unwrap_or(false);
        if use_client && http.h2_upgrade_policy == Some(H2UpgradePolicy::Upgrade) {
            reporter.error(
                site,
                format!("{p}.useClientProtocol"),
                "useClientProtocol cannot be combined with h2UpgradePolicy UPGRADE",
            );
        }
        pool.use_client_protocol = use_client;
        pool.h2_upgrade = http.h2_upgrade_policy == Some(H2UpgradePolicy::Upgrade);

        if let Some(keepalive) = &http.http2_keep_alive {
            let kp = format!("{p}.http2KeepAlive");
            if keepalive.interval.is_none() || keepalive.timeout.is_none() {
                reporter.error(site, &kp, "http2KeepAlive needs both interval and timeout");
            }
            let interval = checks::duration(
                reporter,
                site,
                &format!("{kp}.interval"),
                keepalive.interval,
            );
            let timeout =
                checks::duration(reporter, site, &format!("{kp}.timeout"), keepalive.timeout);
            pool.http2_keep_alive = interval.zip(timeout);
        }
    }
    Some(pool)
}

fn outlier_detection(
    spec: &OutlierSpec,
    path: &str,
    site: &Site,
    reporter: &mut Reporter,
) -> Option<OutlierDetection> {
    let mut outlier = OutlierDetection::default();
    let p = |field: &str| format!("{path}.{field}");
    if spec.consecutive_errors.is_some() {
        reporter.warn(
            site,
            p("consecutiveErrors"),
            "deprecated: use consecutive5xxErrors",
        );
    }
    if let Some(n) = checks::count(
        reporter,
        site,
        &p("consecutive5xxErrors"),
        spec.consecutive5xx_errors.or(spec.consecutive_errors),
    ) {
        outlier.consecutive_5xx_errors = n;
    }
    if let Some(n) = checks::count(
        reporter,
        site,
        &p("consecutiveGatewayErrors"),
        spec.consecutive_gateway_errors,
    ) {
        outlier.consecutive_gateway_errors = n;
    }
    outlier.split_external_local_origin_errors =
        spec.split_external_local_origin_errors.unwrap_or(false);
    if spec.consecutive_local_origin_failures.is_some()
        && !outlier.split_external_local_origin_errors
    {
        reporter.error(
            site,
            p("consecutiveLocalOriginFailures"),
            "consecutiveLocalOriginFailures needs splitExternalLocalOriginErrors: true",
        );
    }
    if let Some(n) = checks::count(
        reporter,
        site,
        &p("consecutiveLocalOriginFailures"),
        spec.consecutive_local_origin_failures,
    ) {
        outlier.consecutive_local_origin_failures = n;
    }
    if !spec.outlier_detection_http_error_codes.is_empty() {
        let field = p("outlierDetectionHttpErrorCodes");
        if let Some(code) = spec
            .outlier_detection_http_error_codes
            .iter()
            .find(|c| !(100..=599).contains(*c))
        {
            reporter.error(site, &field, format!("{code} is not an HTTP status"));
        }
        reporter.warn(
            site,
            &field,
            "outlier detection counts 5xx (and gateway errors); other statuses are not counted; ignored",
        );
    }
    if let Some(d) = checks::duration(reporter, site, &p("interval"), spec.interval) {
        reporter.warn(
            site,
            p("interval"),
            "endpoints are ejected as they fail and return when their ejection time ends, with no periodic sweep; ignored",
        );
        outlier.interval = d;
    }
    if let Some(d) = checks::duration(
        reporter,
        site,
        &p("baseEjectionTime"),
        spec.base_ejection_time,
    ) {
        outlier.base_ejection_time = d;
    }
    for (field, value, target) in [
        (
            "maxEjectionPercent",
            spec.max_ejection_percent,
            &mut outlier.max_ejection_percent,
        ),
        (
            "minHealthPercent",
            spec.min_health_percent,
            &mut outlier.min_health_percent,
        ),
    ] {
        match value {
            Some(v) if !(0..=100).contains(&v) => {
                reporter.error(
                    site,
                    p(field),
                    format!("{field} must be between 0 and 100, got {v}"),
                );
            }
            Some(v) => *target = v as u32,
            None => {}
        }
    }
    Some(outlier)
}

fn upstream_tls(
    spec: &ClientTlsSettings,
    path: &str,
    ctx: &super::Context<'_>,
    site: &Site,
    reporter: &mut Reporter,
) -> Option<UpstreamTls> {
    let mode = match spec.mode.unwrap_or(ClientTlsMode::Disable) {
        ClientTlsMode::Disable => UpstreamTlsMode::Disable,
        ClientTlsMode::Simple => UpstreamTlsMode::Simple,
        ClientTlsMode::Mutual => UpstreamTlsMode::Mutual,
        ClientTlsMode::IstioMutual => {
            reporter.error(site, format!("{path}.mode"), "ISTIO_MUTUAL needs the mesh's certificates, which a standalone gateway does not have: use MUTUAL with clientCertificate and privateKey");
            return None;
        }
    };
    let (mut cert, mut key, mut ca) = (
        spec.client_certificate.clone(),
        spec.private_key.clone(),
        spec.ca_certificates.clone(),
    );
    if let Some(name) = &spec.credential_name {
        // A credential is a folder laid out like a mounted Kubernetes TLS secret.
        cert.get_or_insert_with(|| format!("{name}/tls.crt"));
        key.get_or_insert_with(|| format!("{name}/tls.key"));
        if ca.is_none() && ctx.path(&format!("{name}/ca.crt")).exists() {
            ca = Some(format!("{name}/ca.crt"));
        }
    }
    let mut tls = UpstreamTls {
        mode,
        subject_alt_names: spec.subject_alt_names.clone(),
        sni: spec.sni.clone(),
        insecure_skip_verify: spec.insecure_skip_verify.unwrap_or(false),
        ..UpstreamTls::default()
    };
    if mode == UpstreamTlsMode::Mutual {
        match (&cert, &key) {
            (Some(c), Some(k)) => {
                let (certificate_path, key_path) = if spec.client_certificate.is_some() {
                    (
                        format!("{path}.clientCertificate"),
                        format!("{path}.privateKey"),
                    )
                } else {
                    (
                        format!("{path}.credentialName"),
                        format!("{path}.credentialName"),
                    )
                };
                let fields = tls::KeyPairFields {
                    certificate: c,
                    key: k,
                    certificate_path,
                    key_path,
                };
                if let Some((c, k)) = tls::key_pair(ctx, &fields, site, reporter) {
                    tls.client_certificate = Some(c);
                    tls.private_key = Some(k);
                }
            }
            _ => reporter.error(
                site,
                path,
                "mode MUTUAL needs clientCertificate and privateKey (or credentialName)",
            ),
        }
    } else if mode == UpstreamTlsMode::Disable && (cert.is_some() || ca.is_some()) {
        reporter.warn(
            site,
            format!("{path}.mode"),
            "TLS files are set but mode is DISABLE (the default); upstream traffic is plain text",
        );
    }
    if let Some(ca) = &ca {
        tls.ca_certificates =
            tls::certificates(ctx, ca, &format!("{path}.caCertificates"), site, reporter);
    }
    if let Some(crl) = &spec.ca_crl {
        tls.ca_crl = tls::readable(ctx, crl, &format!("{path}.caCrl"), site, reporter);
    }
    Some(tls)
}
