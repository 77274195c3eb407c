//! DestinationRule: subsets and traffic policies, merged into one cluster per
//! (service, port, subset).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use super::scope::Scope;
use super::services::{Service, ServicePort};
use super::tls::KeyPairFiles;
use super::{Context, Input, checks, tls};
use crate::config::diag::{Reporter, Site};
use crate::config::model::common::Percent;
use crate::config::model::destination_rule::{
    ClientTlsMode, ClientTlsSettings, ConnectionPoolSettings, ConsistentHashLb,
    DestinationRuleSpec, H2UpgradePolicy, HttpCookie, HttpSettings, LoadBalancerSettings,
    OutlierDetection as OutlierSpec, PortTrafficPolicy, SimpleLb, Subset, TcpSettings,
    TrafficPolicy as PolicySpec, Warmup,
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
    ctx: &Context<'_>,
    reporter: &Reporter,
) -> (BTreeMap<String, Cluster>, Subsets) {
    let mut by_host: BTreeMap<String, HostRules> = BTreeMap::new();
    for rule in rules {
        let at = rule.scope(reporter).field("spec");
        destination_rule(rule.spec, services, ctx, &at, &mut by_host);
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
                let cluster = cluster(host, service, port, subset, &rules);
                let pool = &cluster.policy.connection_pool;
                if let Some((_, site)) = &rules.policy
                    && (port.protocol.is_http2() || pool.h2_upgrade)
                {
                    warned_h2.extend(
                        http1_only_limits(pool).map(|field| {
                            (site.document, site.resource.clone(), field, host.clone())
                        }),
                    );
                }
                clusters.insert(cluster.name.clone(), cluster);
            }
        }
    }
    for (document, resource, field, host) in warned_h2 {
        let site = Site { document, resource };
        let at = Scope::new(reporter, &site, "spec.trafficPolicy.connectionPool");
        at.field(field).warn(format!("host {host:?} is spoken to over HTTP/2, where this HTTP/1.1 connection limit is not enforced; ignored"));
    }
    (clusters, subsets)
}

/// The cluster of one port of a service, for one subset (`None`: every endpoint), with
/// Istio's defaults under the rules' policies.
fn cluster(
    host: &str,
    service: &Service,
    port: &ServicePort,
    subset: Option<&str>,
    rules: &HostRules,
) -> Cluster {
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
            subset_rule.is_none_or(|r| r.labels.iter().all(|(k, v)| e.labels.get(k) == Some(v)))
        })
        .map(|e| Endpoint {
            address: e.address.clone(),
            port: e.ports.get(&port.name).copied().unwrap_or(port.target_port),
            weight: e.weight,
            labels: e.labels.clone(),
            locality: e.locality.clone(),
        })
        .collect();
    Cluster {
        name: cluster_name(host, port.number, subset),
        host: host.to_string(),
        namespace: service.namespace.clone(),
        port: port.number,
        protocol: port.protocol,
        subset: subset.map(String::from),
        resolution: service.resolution,
        endpoints,
        policy,
    }
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

/// One DestinationRule: its host's traffic policy and subsets go into `by_host`.
fn destination_rule(
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
    if let Some(policy) = &spec.traffic_policy {
        let policy_at = at.field("trafficPolicy");
        let resolved = traffic_policy(policy, service, ctx, &policy_at);
        match &entry.policy {
            Some((_, first)) => policy_at.warn(format!("{} already sets the traffic policy of host {host:?}; the first rule wins and this policy is ignored", first.resource)),
            None => entry.policy = Some((resolved, at.site().clone())),
        }
    }
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
    if let Some(service) = service {
        let selects_any = service.endpoints.iter().any(|e| {
            subset
                .labels
                .iter()
                .all(|(k, v)| e.labels.get(k) == Some(v))
        });
        if !selects_any {
            at.field("labels").warn(format!(
                "subset {name:?} selects no endpoint of {:?}; requests to it get 503",
                service.host
            ));
        }
    }
    SubsetRule {
        labels: subset.labels.clone(),
        policy,
    }
}

/// A traffic policy: its settings, and its per-port overrides.
fn traffic_policy(
    spec: &PolicySpec,
    service: Option<&Service>,
    ctx: &Context<'_>,
    at: &Scope<'_>,
) -> Policy {
    let base = layer(
        spec.load_balancer.as_ref(),
        spec.connection_pool.as_ref(),
        spec.outlier_detection.as_ref(),
        spec.tls.as_ref(),
        ctx,
        at,
    );
    let ports = port_level_settings(
        &spec.port_level_settings,
        service,
        ctx,
        &at.field("portLevelSettings"),
    );
    if spec.tunnel.is_some() {
        at.field("tunnel")
            .warn("CONNECT tunnelling of TCP traffic is not supported; ignored");
    }
    if spec.proxy_protocol.is_some() {
        at.field("proxyProtocol")
            .warn("sending PROXY protocol to upstreams is not supported yet; ignored");
    }
    if let Some(budget) = &spec.retry_budget {
        let budget_at = at.field("retryBudget");
        checks::percentage(
            budget.percent.map(|value| Percent { value }),
            &budget_at.field("percent"),
        );
        budget_at
            .warn("retry budgets are not enforced (connectionPool.http.maxRetries is); ignored");
    }
    Policy { base, ports }
}

/// The settings of one layer (a policy, or one port of it), each checked.
fn layer(
    load_balancer: Option<&LoadBalancerSettings>,
    connection_pool: Option<&ConnectionPoolSettings>,
    outlier_detection: Option<&OutlierSpec>,
    tls: Option<&ClientTlsSettings>,
    ctx: &Context<'_>,
    at: &Scope<'_>,
) -> Layer {
    Layer {
        load_balancer: load_balancer
            .and_then(|l| self::load_balancer(l, &at.field("loadBalancer"))),
        connection_pool: connection_pool
            .and_then(|p| self::connection_pool(p, &at.field("connectionPool"))),
        outlier_detection: outlier_detection
            .map(|o| self::outlier_detection(o, &at.field("outlierDetection"))),
        tls: tls.and_then(|t| upstream_tls(t, ctx, &at.field("tls"))),
    }
}

/// The per-port layers, at most one per port.
fn port_level_settings(
    settings: &[PortTrafficPolicy],
    service: Option<&Service>,
    ctx: &Context<'_>,
    at: &Scope<'_>,
) -> BTreeMap<u16, Layer> {
    let mut ports = BTreeMap::new();
    for (i, settings) in settings.iter().enumerate() {
        let settings_at = at.index(i);
        let Some(number) = settings.port.and_then(|p| p.number) else {
            settings_at
                .field("port")
                .error("port-level settings need a port number");
            continue;
        };
        let number_at = settings_at.field("port").field("number");
        let Some(number) = checks::port(number, &number_at) else {
            continue;
        };
        if let Some(service) = service.filter(|s| s.port(number).is_none()) {
            number_at.warn(format!(
                "service {:?} has no port {number} (ports: {}); these settings have no effect",
                service.host,
                service.port_list()
            ));
        }
        let resolved = layer(
            settings.load_balancer.as_ref(),
            settings.connection_pool.as_ref(),
            settings.outlier_detection.as_ref(),
            settings.tls.as_ref(),
            ctx,
            &settings_at,
        );
        if ports.insert(number, resolved).is_some() {
            number_at.error(format!("port {number} already has port-level settings"));
        }
    }
    ports
}

/// A load balancer: one of simple or consistentHash (default LEAST_REQUEST).
fn load_balancer(spec: &LoadBalancerSettings, at: &Scope<'_>) -> Option<LoadBalancer> {
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

/// Connection-pool limits and timeouts: tcp, http, or both.
fn connection_pool(spec: &ConnectionPoolSettings, at: &Scope<'_>) -> Option<ConnectionPool> {
    if spec.tcp.is_none() && spec.http.is_none() {
        at.error("connection pool must have at least one of tcp or http");
        return None;
    }
    let mut pool = ConnectionPool::default();
    if let Some(tcp) = &spec.tcp {
        tcp_settings(tcp, &mut pool, &at.field("tcp"));
    }
    if let Some(http) = &spec.http {
        http_settings(http, &mut pool, &at.field("http"));
    }
    Some(pool)
}

/// The tcp settings, into `pool`.
fn tcp_settings(tcp: &TcpSettings, pool: &mut ConnectionPool, at: &Scope<'_>) {
    if let Some(n) = checks::count(tcp.max_connections, &at.field("maxConnections"))
        && n > 0
    {
        // As in Istio, 0 means "not set".
        pool.max_connections = n;
    }
    if let Some(d) = checks::duration(tcp.connect_timeout, &at.field("connectTimeout")) {
        pool.connect_timeout = d;
    }
    pool.max_connection_duration = checks::duration(
        tcp.max_connection_duration,
        &at.field("maxConnectionDuration"),
    );
    if let Some(d) = checks::duration(tcp.idle_timeout, &at.field("idleTimeout")) {
        pool.tcp_idle_timeout = d;
    }
    if let Some(keepalive) = &tcp.tcp_keepalive {
        let keepalive_at = at.field("tcpKeepalive");
        pool.tcp_keepalive = Some(TcpKeepalive {
            probes: keepalive.probes,
            time: checks::duration(keepalive.time, &keepalive_at.field("time")),
            interval: checks::duration(keepalive.interval, &keepalive_at.field("interval")),
        });
    }
}

/// The http settings, into `pool`.
fn http_settings(http: &HttpSettings, pool: &mut ConnectionPool, at: &Scope<'_>) {
    // As in Istio, 0 means "not set" (and for maxRequestsPerConnection, unlimited).
    let limit = |field: &str, value: Option<i64>, target: &mut u32| {
        if let Some(n) = checks::count(value, &at.field(field))
            && n > 0
        {
            *target = n;
        }
    };
    limit(
        "http1MaxPendingRequests",
        http.http1_max_pending_requests,
        &mut pool.http1_max_pending_requests,
    );
    limit(
        "http2MaxRequests",
        http.http2_max_requests,
        &mut pool.http2_max_requests,
    );
    limit(
        "maxRequestsPerConnection",
        http.max_requests_per_connection,
        &mut pool.max_requests_per_connection,
    );
    limit("maxRetries", http.max_retries, &mut pool.max_retries);
    limit(
        "maxConcurrentStreams",
        http.max_concurrent_streams,
        &mut pool.max_concurrent_streams,
    );
    if let Some(d) = checks::duration(http.idle_timeout, &at.field("idleTimeout")) {
        pool.http_idle_timeout = d;
    }
    let use_client = http.use_client_protocol.unwrap_or(false);
    if use_client && http.h2_upgrade_policy == Some(H2UpgradePolicy::Upgrade) {
        at.field("useClientProtocol")
            .error("useClientProtocol cannot be combined with h2UpgradePolicy UPGRADE");
    }
    pool.use_client_protocol = use_client;
    pool.h2_upgrade = http.h2_upgrade_policy == Some(H2UpgradePolicy::Upgrade);

    if let Some(keepalive) = &http.http2_keep_alive {
        let keepalive_at = at.field("http2KeepAlive");
        if keepalive.interval.is_none() || keepalive.timeout.is_none() {
            keepalive_at.error("http2KeepAlive needs both interval and timeout");
        }
        let interval = checks::duration(keepalive.interval, &keepalive_at.field("interval"));
        let timeout = checks::duration(keepalive.timeout, &keepalive_at.field("timeout"));
        pool.http2_keep_alive = interval.zip(timeout);
    }
}

/// Passive health checking.
fn outlier_detection(spec: &OutlierSpec, at: &Scope<'_>) -> OutlierDetection {
    let mut outlier = OutlierDetection::default();
    if spec.consecutive_errors.is_some() {
        at.field("consecutiveErrors")
            .warn("deprecated: use consecutive5xxErrors");
    }
    if let Some(n) = checks::count(
        spec.consecutive5xx_errors.or(spec.consecutive_errors),
        &at.field("consecutive5xxErrors"),
    ) {
        outlier.consecutive_5xx_errors = n;
    }
    if let Some(n) = checks::count(
        spec.consecutive_gateway_errors,
        &at.field("consecutiveGatewayErrors"),
    ) {
        outlier.consecutive_gateway_errors = n;
    }
    outlier.split_external_local_origin_errors =
        spec.split_external_local_origin_errors.unwrap_or(false);
    let local_at = at.field("consecutiveLocalOriginFailures");
    if spec.consecutive_local_origin_failures.is_some()
        && !outlier.split_external_local_origin_errors
    {
        local_at.error("consecutiveLocalOriginFailures needs splitExternalLocalOriginErrors: true");
    }
    if let Some(n) = checks::count(spec.consecutive_local_origin_failures, &local_at) {
        outlier.consecutive_local_origin_failures = n;
    }
    check_error_codes(
        &spec.outlier_detection_http_error_codes,
        &at.field("outlierDetectionHttpErrorCodes"),
    );
    if let Some(d) = checks::duration(spec.interval, &at.field("interval")) {
        at.field("interval").warn("endpoints are ejected as they fail and return when their ejection time ends, with no periodic sweep; ignored");
        outlier.interval = d;
    }
    if let Some(d) = checks::duration(spec.base_ejection_time, &at.field("baseEjectionTime")) {
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
            Some(v) if !(0..=100).contains(&v) => at
                .field(field)
                .error(format!("{field} must be between 0 and 100, got {v}")),
            Some(v) => *target = v as u32,
            None => {}
        }
    }
    outlier
}

/// Custom error statuses, which are not counted.
fn check_error_codes(codes: &[i64], at: &Scope<'_>) {
    if codes.is_empty() {
        return;
    }
    if let Some(code) = codes.iter().find(|c| !(100..=599).contains(*c)) {
        at.error(format!("{code} is not an HTTP status"));
    }
    at.warn(
        "outlier detection counts 5xx (and gateway errors); other statuses are not counted; ignored",
    );
}

/// TLS to the upstream; `None` for a mode that cannot be served.
fn upstream_tls(
    spec: &ClientTlsSettings,
    ctx: &Context<'_>,
    at: &Scope<'_>,
) -> Option<UpstreamTls> {
    let mode = match spec.mode.unwrap_or(ClientTlsMode::Disable) {
        ClientTlsMode::Disable => UpstreamTlsMode::Disable,
        ClientTlsMode::Simple => UpstreamTlsMode::Simple,
        ClientTlsMode::Mutual => UpstreamTlsMode::Mutual,
        ClientTlsMode::IstioMutual => {
            at.field("mode").error("ISTIO_MUTUAL needs the mesh's certificates, which a standalone gateway does not have: use MUTUAL with clientCertificate and privateKey");
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
        if let Some((c, k)) = client_key_pair(spec, cert, key, ctx, at) {
            tls.client_certificate = Some(c);
            tls.private_key = Some(k);
        }
    } else if mode == UpstreamTlsMode::Disable && (cert.is_some() || ca.is_some()) {
        at.field("mode").warn(
            "TLS files are set but mode is DISABLE (the default); upstream traffic is plain text",
        );
    }
    if let Some(ca) = &ca {
        tls.ca_certificates = tls::certificates(ctx, ca, &at.field("caCertificates"));
    }
    if let Some(crl) = &spec.ca_crl {
        tls.ca_crl = tls::readable(ctx, crl, &at.field("caCrl"));
    }
    Some(tls)
}

/// The client certificate and key of mode MUTUAL, named by clientCertificate and
/// privateKey or by credentialName.
fn client_key_pair(
    spec: &ClientTlsSettings,
    certificate: Option<String>,
    key: Option<String>,
    ctx: &Context<'_>,
    at: &Scope<'_>,
) -> Option<(PathBuf, PathBuf)> {
    let (Some(certificate), Some(key)) = (certificate, key) else {
        at.error("mode MUTUAL needs clientCertificate and privateKey (or credentialName)");
        return None;
    };
    let (certificate_at, key_at) = if spec.client_certificate.is_some() {
        (at.field("clientCertificate"), at.field("privateKey"))
    } else {
        (at.field("credentialName"), at.field("credentialName"))
    };
    let files = KeyPairFiles {
        certificate,
        key,
        certificate_at,
        key_at,
    };
    tls::key_pair(ctx, &files)
}
