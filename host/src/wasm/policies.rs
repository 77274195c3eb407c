//! The worlds of the policy kinds (a marker type each, with what its `configure` takes)
//! and their typed calls: route match, destination weighting, endpoint load balancing,
//! fault injection, retry decisions, circuit breaking, outlier detection, and custom
//! filters (0.2.0's, and 0.1.0's).

use std::future::Future;
use std::sync::Arc;

use wasmtime::Store;
use wasmtime::component::InstancePre;

use super::bindings::v0_1::plugin as legacy_filter;
use super::bindings::{breaker, destination, endpoint, fault, filter, outlier, retry, route_match};
use super::error::PolicyError;
use super::pool::{PolicyWorld, Pool};
use super::request_view::RequestView;
use super::state::PolicyState;

pub use super::bindings::types::{Header, StringMatch};
pub use breaker::exports::portcullis::policy::breaker::{
    Admission, ClusterLoad as ClusterLoadView, Limits as BreakerLimits,
};
pub use destination::exports::portcullis::policy::destination::{
    Route as DestinationRoute, Weighted,
};
pub use endpoint::exports::portcullis::policy::endpoint::{
    Algorithm, Cluster as BalancerCluster, EndpointState, HashKey as BalancerHashKey,
};
pub use fault::exports::portcullis::policy::fault::{
    Abort, AbortStatus as FaultStatus, Delay, Injection, RouteFault,
};
pub use filter::exports::portcullis::policy::filter::{Action, Edits, Rejection};
pub use outlier::exports::portcullis::policy::outlier::{
    Cluster as OutlierCluster, Detection, EndpointResult,
};
pub use retry::exports::portcullis::policy::retry::{
    Decision as RetryDecision, Outcome as AttemptOutcome, ResponseStatus,
    RetryPolicy as RetrySettings,
};
pub use route_match::exports::portcullis::policy::route_match::{
    HeaderMatch, MatchBlock, QueryMatch, Route as MatchRoute, Selected,
    VirtualHost as MatchVirtualHost,
};

/// What a phase's `configure` gets: the table of every route's (virtual host's,
/// cluster's) settings, indexed by the ids its calls pass, and the WasmPlugin's
/// `pluginConfig` as JSON (none for a built-in).
#[derive(Debug, Clone, Default)]
pub struct PhaseConfig<T> {
    /// The settings, by id.
    pub table: Vec<T>,
    /// The plugin's own configuration.
    pub plugin_config: Option<String>,
}

/// Every phase's table, as the built-ins (and plugins serving the phase) are configured
/// with it.
#[derive(Debug, Clone, Default)]
pub struct PhaseTables {
    /// Each virtual host's routes' match blocks.
    pub route_match: Vec<MatchVirtualHost>,
    /// Each route's weighted destinations.
    pub destination: Vec<DestinationRoute>,
    /// Each cluster's load-balancing algorithm.
    pub endpoint: Vec<BalancerCluster>,
    /// Each route's fault, if any.
    pub fault: Vec<Option<RouteFault>>,
    /// Each route's retry policy.
    pub retry: Vec<RetrySettings>,
    /// Each cluster's circuit-breaker limits.
    pub breaker: Vec<BreakerLimits>,
    /// Each cluster's outlier detection.
    pub outlier: Vec<OutlierCluster>,
}

/// A marker type for a world whose bindings live in `$module`, and its [`PolicyWorld`]:
/// `configure` is called as `$configure` with the instance's `$interface` as `$phase`.
macro_rules! world {
    (
        $(#[$doc:meta])* $kind:ident, $module:ident :: $pre:ident, $instance:ident,
        $interface:ident, $config:ty,
        |$phase:ident, $store:ident, $c:ident| $configure:expr
    ) => {
        $(#[$doc])*
        pub struct $kind;

        impl PolicyWorld for $kind {
            type Pre = $module::$pre<PolicyState>;
            type Instance = $module::$instance;
            type Config = $config;

            fn pre(pre: InstancePre<PolicyState>) -> wasmtime::Result<Self::Pre> {
                $module::$pre::new(pre)
            }

            fn instantiate<'a>(
                pre: &'a Self::Pre,
                store: &'a mut Store<PolicyState>,
            ) -> impl Future<Output = wasmtime::Result<Self::Instance>> + Send + 'a {
                pre.instantiate_async(store)
            }

            fn configure<'a>(
                instance: &'a Self::Instance,
                $store: &'a mut Store<PolicyState>,
                $c: &'a Self::Config,
            ) -> impl Future<Output = wasmtime::Result<Result<(), String>>> + Send + 'a {
                let $phase = instance.$interface();
                $configure
            }
        }
    };
}

/// A [`world!`] whose `configure` takes a table and the plugin's configuration.
macro_rules! table_world {
    ($(#[$doc:meta])* $kind:ident, $module:ident :: $pre:ident, $instance:ident, $interface:ident, $row:ty) => {
        world!(
            $(#[$doc])* $kind, $module::$pre, $instance, $interface, PhaseConfig<$row>,
            |phase, store, config| phase.call_configure(
                store,
                &config.table,
                config.plugin_config.as_deref()
            )
        );
    };
}

table_world!(
    /// The `route-match-policy` world.
    RouteMatchWorld, route_match::RouteMatchPolicyPre, RouteMatchPolicy,
    portcullis_policy_route_match, MatchVirtualHost
);
table_world!(
    /// The `destination-policy` world.
    DestinationWorld, destination::DestinationPolicyPre, DestinationPolicy,
    portcullis_policy_destination, DestinationRoute
);
table_world!(
    /// The `endpoint-policy` world.
    EndpointWorld, endpoint::EndpointPolicyPre, EndpointPolicy,
    portcullis_policy_endpoint, BalancerCluster
);
table_world!(
    /// The `fault-policy` world.
    FaultWorld, fault::FaultPolicyPre, FaultPolicy,
    portcullis_policy_fault, Option<RouteFault>
);
table_world!(
    /// The `retry-policy` world.
    RetryWorld, retry::RetryPolicyPre, RetryPolicy,
    portcullis_policy_retry, RetrySettings
);
table_world!(
    /// The `breaker-policy` world.
    BreakerWorld, breaker::BreakerPolicyPre, BreakerPolicy,
    portcullis_policy_breaker, BreakerLimits
);
table_world!(
    /// The `outlier-policy` world.
    OutlierWorld, outlier::OutlierPolicyPre, OutlierPolicy,
    portcullis_policy_outlier, OutlierCluster
);
world!(
    /// The `filter-policy` world: custom filters.
    FilterWorld, filter::FilterPolicyPre, FilterPolicy, portcullis_policy_filter,
    Option<String>,
    |phase, store, config| phase.call_configure(store, config.as_deref())
);
world!(
    /// 0.1.0's `plugin` world: filters built before 0.2.0, configured with their
    /// `pluginConfig` as JSON (`null` when none).
    LegacyFilterWorld, legacy_filter::PluginPre, Plugin, portcullis_policy_filter,
    Option<String>,
    |phase, store, config| phase.call_configure(store, config.as_deref().unwrap_or("null"))
);

/// Lends an instance of `$pool` for one call about `$request`, makes the call, and hands
/// the result back to the lease (which retires the instance if the call failed).
macro_rules! call {
    ($pool:expr, $request:expr, |$instance:ident, $store:ident| $call:expr) => {{
        let mut lease = $pool.lease($request).await?;
        let deadline = lease.deadline();
        let ($instance, $store) = lease.parts();
        let result = $crate::wasm::pool::within(deadline, $call).await;
        lease.finish(result)
    }};
}
pub(crate) use call;

/// The policies of one configuration generation.
pub struct Policies {
    /// Route matching.
    pub route_match: Pool<RouteMatchWorld>,
    /// Weighted destination choice.
    pub destination: Pool<DestinationWorld>,
    /// Endpoint load balancing.
    pub endpoint: Pool<EndpointWorld>,
    /// Fault injection.
    pub fault: Pool<FaultWorld>,
    /// Retry decisions.
    pub retry: Pool<RetryWorld>,
    /// Circuit breaking.
    pub breaker: Pool<BreakerWorld>,
    /// Outlier detection.
    pub outlier: Pool<OutlierWorld>,
}

impl Pool<RouteMatchWorld> {
    /// The first route of `virtual_host` matching the request.
    pub async fn select_route(
        &self,
        request: &Arc<RequestView>,
        virtual_host: u32,
    ) -> Result<Option<Selected>, PolicyError> {
        call!(self, request, |instance, store| instance
            .portcullis_policy_route_match()
            .call_select_route(store, virtual_host))
    }
}

impl Pool<DestinationWorld> {
    /// The index of the destination of `route` to use.
    pub async fn pick_destination(
        &self,
        request: &Arc<RequestView>,
        route: u32,
    ) -> Result<u32, PolicyError> {
        call!(self, request, |instance, store| instance
            .portcullis_policy_destination()
            .call_pick_destination(store, route))
    }
}

impl Pool<EndpointWorld> {
    /// The index of the endpoint of `cluster` to use, or none when none is healthy.
    pub async fn pick_endpoint(
        &self,
        request: &Arc<RequestView>,
        cluster: u32,
        endpoints: &[EndpointState],
    ) -> Result<Option<u32>, PolicyError> {
        call!(self, request, |instance, store| instance
            .portcullis_policy_endpoint()
            .call_pick_endpoint(store, cluster, endpoints))
    }
}

impl Pool<FaultWorld> {
    /// What fault to inject into this request on `route`.
    pub async fn inject_fault(
        &self,
        request: &Arc<RequestView>,
        route: u32,
    ) -> Result<Injection, PolicyError> {
        call!(self, request, |instance, store| instance
            .portcullis_policy_fault()
            .call_inject(store, route))
    }
}

impl Pool<RetryWorld> {
    /// Whether to retry after attempt `attempt` of `route` ended with `outcome`.
    pub async fn should_retry(
        &self,
        request: &Arc<RequestView>,
        route: u32,
        attempt: u32,
        outcome: AttemptOutcome,
    ) -> Result<RetryDecision, PolicyError> {
        call!(self, request, |instance, store| instance
            .portcullis_policy_retry()
            .call_should_retry(store, route, attempt, outcome))
    }
}

impl Pool<BreakerWorld> {
    /// Whether a request to `cluster` may start under its `http2MaxRequests`.
    pub async fn admit_request(
        &self,
        request: &Arc<RequestView>,
        cluster: u32,
        load: ClusterLoadView,
    ) -> Result<bool, PolicyError> {
        call!(self, request, |instance, store| instance
            .portcullis_policy_breaker()
            .call_admit_request(store, cluster, load))
    }

    /// Whether a request to `cluster` may open a connection, must queue, or overflows.
    pub async fn admit_connection(
        &self,
        request: &Arc<RequestView>,
        cluster: u32,
        load: ClusterLoadView,
    ) -> Result<Admission, PolicyError> {
        call!(self, request, |instance, store| instance
            .portcullis_policy_breaker()
            .call_admit_connection(store, cluster, load))
    }

    /// Whether a retry to `cluster` may start under its `maxRetries`.
    pub async fn admit_retry(
        &self,
        request: &Arc<RequestView>,
        cluster: u32,
        load: ClusterLoadView,
    ) -> Result<bool, PolicyError> {
        call!(self, request, |instance, store| instance
            .portcullis_policy_breaker()
            .call_admit_retry(store, cluster, load))
    }
}

impl Pool<OutlierWorld> {
    /// Records how a request to `endpoint` ended; returns how long to eject it (ms).
    pub async fn record_result(
        &self,
        request: &Arc<RequestView>,
        cluster: u32,
        endpoint: u32,
        outcome: EndpointResult,
        ejected: u32,
        total: u32,
    ) -> Result<Option<u64>, PolicyError> {
        call!(self, request, |instance, store| instance
            .portcullis_policy_outlier()
            .call_record_result(
                store, cluster, endpoint, outcome, ejected, total
            ))
    }
}
