//! A traffic policy's layers: the policy's own settings, merged field by field over the
//! layer below, and its per-port overrides, which replace all four fields (unset ones
//! back to Istio's defaults: port-level settings do not inherit, as Istio documents).

use std::collections::BTreeMap;

use super::connection_pool::connection_pool;
use super::load_balancer::load_balancer;
use super::outlier::outlier_detection;
use super::upstream_tls::upstream_tls;
use super::{Context, Scope, Service, checks};
use crate::config::diag::Site;
use crate::config::model::destination_rule::{
    ClientTlsSettings, ConnectionPoolSettings, LoadBalancerSettings,
    OutlierDetection as OutlierSpec, PortTrafficPolicy, TrafficPolicy as PolicySpec,
};
use crate::config::resolved::{
    ConnectionPool, LoadBalancer, OutlierDetection, TrafficPolicy, UpstreamTls,
};

/// Where a setting is written: its resource and field path.
#[derive(Debug, Clone)]
pub(super) struct Written {
    /// The resource.
    pub site: Site,
    /// The field path in it.
    pub path: String,
}

/// The policy fields one layer (top level, port, subset) sets; later layers replace
/// whole fields, as Istio merges them.
#[derive(Debug, Clone, Default)]
struct Layer {
    load_balancer: Option<LoadBalancer>,
    connection_pool: Option<ConnectionPool>,
    outlier_detection: Option<OutlierDetection>,
    tls: Option<UpstreamTls>,
    /// Where `connection_pool` is written, when the layer sets it.
    pool_at: Option<Written>,
}

impl Layer {
    /// Sets in `policy` the fields this layer sets; notes in `pool_at` where the
    /// connection pool it sets is written.
    fn apply(&self, policy: &mut TrafficPolicy, pool_at: &mut Option<Written>) {
        if self.connection_pool.is_some() {
            pool_at.clone_from(&self.pool_at);
        }
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

    /// Sets in `policy` all four fields: this layer's, or `defaults`' where it sets none.
    fn replace(
        &self,
        policy: &mut TrafficPolicy,
        defaults: &TrafficPolicy,
        pool_at: &mut Option<Written>,
    ) {
        let Self {
            load_balancer,
            connection_pool,
            outlier_detection,
            tls,
            pool_at: written,
        } = self.clone();
        *pool_at = written;
        policy.load_balancer = load_balancer.unwrap_or_else(|| defaults.load_balancer.clone());
        policy.connection_pool =
            connection_pool.unwrap_or_else(|| defaults.connection_pool.clone());
        policy.outlier_detection = outlier_detection.or_else(|| defaults.outlier_detection.clone());
        policy.tls = tls.unwrap_or_else(|| defaults.tls.clone());
    }
}

/// A traffic policy layer and its per-port overrides.
#[derive(Debug, Clone, Default)]
pub(super) struct Policy {
    base: Layer,
    ports: BTreeMap<u16, Layer>,
}

impl Policy {
    /// Whether the policy sets TLS, at the top or for a port.
    pub(super) fn sets_tls(&self) -> bool {
        self.base.tls.is_some() || self.ports.values().any(|l| l.tls.is_some())
    }

    /// Sets in `policy` the fields this policy sets for `port`; a port-level layer for
    /// `port` sets all four, from `defaults` where it leaves one unset.
    /// `pool_at` notes where the connection pool in force is written.
    pub(super) fn apply(
        &self,
        port: u16,
        policy: &mut TrafficPolicy,
        defaults: &TrafficPolicy,
        pool_at: &mut Option<Written>,
    ) {
        self.base.apply(policy, pool_at);
        if let Some(layer) = self.ports.get(&port) {
            layer.replace(policy, defaults, pool_at);
        }
    }
}

/// A traffic policy: its settings, and its per-port overrides.
pub(super) fn traffic_policy(
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
        // A plain number in Istio, not a `Percent` message: checked at its own field.
        if let Some(percent) = budget.percent.filter(|p| !(0.0..=100.0).contains(p)) {
            budget_at
                .field("percent")
                .error(format!("percent {percent} must be between 0 and 100"));
        }
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
    let pool_at = at.field("connectionPool");
    let connection_pool = connection_pool.and_then(|p| self::connection_pool(p, &pool_at));
    Layer {
        load_balancer: load_balancer
            .and_then(|l| self::load_balancer(l, &at.field("loadBalancer"))),
        pool_at: connection_pool.is_some().then(|| Written {
            site: pool_at.site().clone(),
            path: pool_at.path().to_string(),
        }),
        connection_pool,
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{Policy, traffic_policy};
    use crate::config::Diagnostics;
    use crate::config::model::destination_rule::TrafficPolicy as PolicySpec;
    use crate::config::resolve::Context;
    use crate::config::resolve::scope::{errors_at, probe, warnings_at};
    use crate::config::resolved::{LoadBalancer, TrafficPolicy};

    fn resolve(yaml: &str) -> (Policy, Diagnostics) {
        let spec: PolicySpec = serde_yaml::from_str(yaml).unwrap();
        let ctx = Context {
            base_dir: Path::new("."),
        };
        probe(|at| traffic_policy(&spec, None, &ctx, &at.field("trafficPolicy")))
    }

    /// The policy of `port` under `policy`, from the defaults.
    fn applied(policy: &Policy, port: u16) -> TrafficPolicy {
        let mut applied = TrafficPolicy::default();
        policy.apply(port, &mut applied, &TrafficPolicy::default(), &mut None);
        applied
    }

    #[test]
    fn an_empty_policy_changes_nothing() {
        let (policy, reported) = resolve("{}");
        let applied = applied(&policy, 80);
        assert_eq!(applied.load_balancer, LoadBalancer::LeastRequest);
        assert_eq!(applied.connection_pool, Default::default());
        assert_eq!(applied.outlier_detection, None);
        assert!(!reported.has_errors() && warnings_at(&reported).is_empty());
    }

    #[test]
    fn a_port_layer_goes_over_the_base_for_its_port() {
        let (policy, _) = resolve(
            "{loadBalancer: {simple: RANDOM}, portLevelSettings: [{port: {number: 81}, loadBalancer: {simple: ROUND_ROBIN}, connectionPool: {tcp: {maxConnections: 1}}}]}",
        );
        assert_eq!(applied(&policy, 80).load_balancer, LoadBalancer::Random);
        let port_81 = applied(&policy, 81);
        assert_eq!(port_81.load_balancer, LoadBalancer::RoundRobin);
        assert_eq!(port_81.connection_pool.max_connections, 1);
    }

    #[test]
    fn port_level_settings_need_one_valid_port_each() {
        let (policy, reported) = resolve(
            "portLevelSettings: [{loadBalancer: {simple: RANDOM}}, {port: {number: 70000}}, {port: {number: 80}}, {port: {number: 80}, loadBalancer: {simple: RANDOM}}]",
        );
        assert_eq!(
            errors_at(&reported),
            [
                "trafficPolicy.portLevelSettings[0].port",
                "trafficPolicy.portLevelSettings[1].port.number",
                "trafficPolicy.portLevelSettings[3].port.number"
            ]
        );
        // The later settings for a port replace the earlier ones.
        assert_eq!(applied(&policy, 80).load_balancer, LoadBalancer::Random);
    }

    #[test]
    fn unsupported_policy_parts_warn_at_their_fields() {
        let (_, reported) = resolve(
            "{tunnel: {protocol: CONNECT}, proxyProtocol: {version: V2}, retryBudget: {percent: 20}}",
        );
        assert!(errors_at(&reported).is_empty());
        assert_eq!(
            warnings_at(&reported),
            [
                "trafficPolicy.tunnel",
                "trafficPolicy.proxyProtocol",
                "trafficPolicy.retryBudget"
            ]
        );
        let (_, reported) = resolve("retryBudget: {percent: 120}");
        // A plain number in Istio: reported at its own field.
        assert_eq!(errors_at(&reported), ["trafficPolicy.retryBudget.percent"]);
    }
}
