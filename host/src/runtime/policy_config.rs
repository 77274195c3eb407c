//! The built-in policies' settings, gathered route by route and cluster by cluster as a
//! generation is built into the WIT records each phase's `configure` takes.

use std::collections::BTreeMap;

use anyhow::Context as _;

use super::Runtime;
use crate::config::resolved::{
    AbortStatus, Cluster, ConnectionPool, Fault, HashKey, HeaderMatcher, LoadBalancer,
    OutlierDetection, RetryPolicy, Route, RouteMatch, StringMatcher, UNLIMITED, VirtualHost,
};
use crate::wasm::Limits;
use crate::wasm::builtin::{self, Builtin};
use crate::wasm::policies::{
    Abort, Algorithm, BalancerCluster, BalancerHashKey, BreakerLimits, Delay, DestinationRoute,
    Detection, FaultStatus, HeaderMatch, MatchBlock, MatchRoute, MatchVirtualHost, OutlierCluster,
    PhaseConfig, PhaseTables, Policies, QueryMatch, RetrySettings, RouteFault, StringMatch,
    Weighted,
};
use crate::wasm::pool::{PolicyWorld, Pool, Setup};

/// The per-virtual-host and per-route tables of the route-level phases, indexed by the
/// ids the data path passes to them.
#[derive(Default)]
pub(super) struct RoutePolicies(PhaseTables);

impl RoutePolicies {
    /// Adds a virtual host's match blocks; returns its id for the match phase.
    pub fn add_virtual_host(&mut self, vhost: &VirtualHost) -> u32 {
        let id = self.0.route_match.len() as u32;
        let routes = vhost
            .routes
            .iter()
            .map(|r| MatchRoute {
                name: r.name.clone(),
                matches: r.matches.iter().map(match_block).collect(),
            })
            .collect();
        self.0.route_match.push(MatchVirtualHost { routes });
        id
    }

    /// Adds a route's destinations (each cluster with its weight), fault and retry
    /// policy; returns its id for the destination, fault and retry phases.
    pub fn add_route(&mut self, route: &Route, destinations: &[(&Cluster, u32)]) -> u32 {
        let id = self.0.destination.len() as u32;
        let destinations = destinations
            .iter()
            .map(|(cluster, weight)| Weighted {
                host: cluster.host.clone(),
                subset: cluster.subset.clone(),
                weight: *weight,
            })
            .collect();
        self.0.destination.push(DestinationRoute { destinations });
        self.0.fault.push(route.fault.as_ref().map(route_fault));
        self.0.retry.push(retry_settings(&route.retry));
        id
    }

    /// Every phase's table: these routes' and `clusters'`.
    pub fn finish(mut self, clusters: &BTreeMap<String, Cluster>) -> PhaseTables {
        let tables = &mut self.0;
        for cluster in clusters.values() {
            tables.endpoint.push(BalancerCluster {
                name: cluster.name.clone(),
                algorithm: algorithm(&cluster.policy.load_balancer),
            });
            tables
                .breaker
                .push(breaker_limits(&cluster.policy.connection_pool));
            tables.outlier.push(OutlierCluster {
                name: cluster.name.clone(),
                detection: cluster.policy.outlier_detection.as_ref().map(detection),
            });
        }
        self.0
    }
}

/// Loads and configures every built-in policy (or its `--policy-dir` override) with its
/// phase's table.
pub(super) async fn builtins(tables: PhaseTables, runtime: &Runtime) -> anyhow::Result<Policies> {
    Ok(Policies {
        route_match: pool(&builtin::ROUTE_MATCH, tables.route_match, runtime).await?,
        destination: pool(&builtin::DESTINATION, tables.destination, runtime).await?,
        endpoint: pool(&builtin::ENDPOINT, tables.endpoint, runtime).await?,
        fault: pool(&builtin::FAULT, tables.fault, runtime).await?,
        retry: pool(&builtin::RETRY, tables.retry, runtime).await?,
        breaker: pool(&builtin::BREAKER, tables.breaker, runtime).await?,
        outlier: pool(&builtin::OUTLIER, tables.outlier, runtime).await?,
    })
}

fn string_match(matcher: &StringMatcher) -> StringMatch {
    match matcher {
        StringMatcher::Exact(s) => StringMatch::Exact(s.clone()),
        StringMatcher::Prefix(s) => StringMatch::Prefix(s.clone()),
        StringMatcher::Regex(s) => StringMatch::Regex(s.clone()),
    }
}

fn header_match(header: &HeaderMatcher) -> HeaderMatch {
    HeaderMatch {
        name: header.name.clone(),
        value: header.value.as_ref().map(string_match),
        invert: header.invert,
    }
}

fn match_block(block: &RouteMatch) -> MatchBlock {
    let condition = |m: &Option<StringMatcher>| m.as_ref().map(string_match);
    MatchBlock {
        name: block.name.clone(),
        uri: condition(&block.uri),
        scheme: condition(&block.scheme),
        method: condition(&block.method),
        authority: condition(&block.authority),
        headers: block.headers.iter().map(header_match).collect(),
        query_params: block
            .query_params
            .iter()
            .map(|(name, value)| QueryMatch {
                name: name.clone(),
                value: condition(value),
            })
            .collect(),
        port: block.port,
        ignore_uri_case: block.ignore_uri_case,
    }
}

fn route_fault(fault: &Fault) -> RouteFault {
    RouteFault {
        delay: fault.delay.as_ref().map(|d| Delay {
            fixed: millis(d.fixed_delay),
            percentage: d.percentage,
        }),
        abort: fault.abort.as_ref().map(|a| Abort {
            status: match a.status {
                AbortStatus::Http(code) => FaultStatus::Http(code),
                AbortStatus::Grpc(code) => FaultStatus::Grpc(u32::from(code)),
            },
            percentage: a.percentage,
        }),
    }
}

fn retry_settings(retry: &RetryPolicy) -> RetrySettings {
    RetrySettings {
        attempts: retry.attempts,
        retry_on: retry.retry_on.clone(),
        retriable_status_codes: retry.retriable_status_codes.clone(),
        backoff_base: millis(retry.backoff_base),
        per_try_timeout: retry.per_try_timeout.map(millis),
    }
}

fn algorithm(balancer: &LoadBalancer) -> Algorithm {
    match balancer {
        LoadBalancer::RoundRobin => Algorithm::RoundRobin,
        LoadBalancer::Random => Algorithm::Random,
        LoadBalancer::LeastRequest => Algorithm::LeastRequest,
        LoadBalancer::Passthrough => Algorithm::Passthrough,
        LoadBalancer::ConsistentHash(key) => Algorithm::ConsistentHash(match key {
            HashKey::Header(name) => BalancerHashKey::Header(name.clone()),
            HashKey::Cookie { name, .. } => BalancerHashKey::Cookie(name.clone()),
            HashKey::SourceIp => BalancerHashKey::SourceIp,
            HashKey::QueryParameter(name) => BalancerHashKey::QueryParameter(name.clone()),
        }),
    }
}

fn breaker_limits(pool: &ConnectionPool) -> BreakerLimits {
    let limit = |n: u32| (n != UNLIMITED).then_some(n);
    BreakerLimits {
        max_connections: limit(pool.max_connections),
        http1_max_pending_requests: limit(pool.http1_max_pending_requests),
        http2_max_requests: limit(pool.http2_max_requests),
        max_retries: limit(pool.max_retries),
    }
}

fn detection(o: &OutlierDetection) -> Detection {
    let enabled = |n: u32| (n != 0).then_some(n);
    Detection {
        consecutive_5xx_errors: enabled(o.consecutive_5xx_errors),
        consecutive_gateway_errors: enabled(o.consecutive_gateway_errors),
        split_external_local_origin_errors: o.split_external_local_origin_errors,
        consecutive_local_origin_failures: enabled(o.consecutive_local_origin_failures),
        base_ejection_time: millis(o.base_ejection_time),
        max_ejection_percent: o.max_ejection_percent,
    }
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Loads, compiles and configures one built-in policy (or its override) with `table`.
async fn pool<K, T>(builtin: &Builtin, table: Vec<T>, runtime: &Runtime) -> anyhow::Result<Pool<K>>
where
    K: PolicyWorld<Config = PhaseConfig<T>>,
{
    let (bytes, source) = builtin
        .load(runtime.policy_dir.as_deref())
        .with_context(|| format!("reading the {} policy", builtin.name))?;
    let component = runtime.wasm.compile(&source, bytes).await?;
    let config = PhaseConfig {
        table,
        plugin_config: None,
    };
    let pool = Pool::new(
        &source,
        &runtime.wasm,
        &component,
        Setup::config(config),
        runtime.counters.clone(),
        Limits::default(),
        runtime.policy_stats.get(source.as_str()),
    )
    .await?;
    Ok(pool)
}
