//! The worlds of the policy kinds (a marker type each) and their typed calls: route match,
//! destination weighting, endpoint load balancing, fault injection, retry decisions,
//! circuit breaking, outlier detection, and custom filters.

use std::future::Future;
use std::sync::Arc;

use wasmtime::Store;
use wasmtime::component::InstancePre;

use super::bindings::{balancer, detector, injector, limiter, matcher, plugin, retrier, weighter};
use super::error::PolicyError;
use super::pool::{PolicyWorld, Pool};
use super::request_view::RequestView;
use super::state::PolicyState;

pub use balancer::exports::portcullis::policy::endpoint::EndpointState;
pub use detector::exports::portcullis::policy::outlier::EndpointResult;
pub use injector::exports::portcullis::policy::fault::Injection;
pub use limiter::exports::portcullis::policy::breaker::{
    Admission, ClusterLoad as ClusterLoadView,
};
pub use matcher::exports::portcullis::policy::route_match::Selected;
pub use plugin::exports::portcullis::policy::filter::{Action, Edits, Header, Rejection};
pub use retrier::exports::portcullis::policy::retry::{
    Decision as RetryDecision, Outcome as AttemptOutcome, ResponseStatus,
};

/// A marker type for a world whose bindings live in `$module`, and its [`PolicyWorld`].
macro_rules! world {
    ($(#[$doc:meta])* $kind:ident, $module:ident :: $pre:ident, $instance:ident, $interface:ident) => {
        $(#[$doc])*
        pub struct $kind;

        impl PolicyWorld for $kind {
            type Pre = $module::$pre<PolicyState>;
            type Instance = $module::$instance;

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
                store: &'a mut Store<PolicyState>,
                config: &'a str,
            ) -> impl Future<Output = wasmtime::Result<Result<(), String>>> + Send + 'a {
                instance.$interface().call_configure(store, config)
            }
        }
    };
}

world!(
    /// The `matcher` world.
    MatcherWorld, matcher::MatcherPre, Matcher, portcullis_policy_route_match
);
world!(
    /// The `weighter` world.
    WeighterWorld, weighter::WeighterPre, Weighter, portcullis_policy_destination
);
world!(
    /// The `balancer` world.
    BalancerWorld, balancer::BalancerPre, Balancer, portcullis_policy_endpoint
);
world!(
    /// The `injector` world.
    InjectorWorld, injector::InjectorPre, Injector, portcullis_policy_fault
);
world!(
    /// The `retrier` world.
    RetrierWorld, retrier::RetrierPre, Retrier, portcullis_policy_retry
);
world!(
    /// The `limiter` world.
    LimiterWorld, limiter::LimiterPre, Limiter, portcullis_policy_breaker
);
world!(
    /// The `detector` world.
    DetectorWorld, detector::DetectorPre, Detector, portcullis_policy_outlier
);
world!(
    /// The `plugin` world: custom plugins.
    PluginWorld, plugin::PluginPre, Plugin, portcullis_policy_filter
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

/// The policies of one configuration generation.
pub struct Policies {
    /// Route matching.
    pub route_match: Pool<MatcherWorld>,
    /// Weighted destination choice.
    pub destination: Pool<WeighterWorld>,
    /// Endpoint load balancing.
    pub endpoint: Pool<BalancerWorld>,
    /// Fault injection.
    pub fault: Pool<InjectorWorld>,
    /// Retry decisions.
    pub retry: Pool<RetrierWorld>,
    /// Circuit breaking.
    pub breaker: Pool<LimiterWorld>,
    /// Outlier detection.
    pub outlier: Pool<DetectorWorld>,
}

impl Pool<MatcherWorld> {
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

impl Pool<WeighterWorld> {
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

impl Pool<BalancerWorld> {
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

impl Pool<InjectorWorld> {
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

impl Pool<RetrierWorld> {
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

impl Pool<LimiterWorld> {
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

impl Pool<DetectorWorld> {
    /// Records how a request to `endpoint` ended; returns how long to eject it (ms).
    pub async fn record_result(
        &self,
        request: &Arc<RequestView>,
        cluster: u32,
        endpoint: &str,
        outcome: EndpointResult,
        ejected: u32,
        total: u32,
    ) -> Result<u64, PolicyError> {
        call!(self, request, |instance, store| instance
            .portcullis_policy_outlier()
            .call_record_result(
                store, cluster, endpoint, outcome, ejected, total
            ))
    }
}
