//! The built-in policy kinds and their typed calls: route match, destination weighting
//! and endpoint load balancing.

use std::future::Future;
use std::sync::Arc;

use wasmtime::Store;
use wasmtime::component::InstancePre;

use super::bindings::{balancer, matcher, weighter};
use super::error::PolicyError;
use super::pool::{Kind, Pool};
use super::state::{PolicyState, RequestView};

pub use balancer::exports::portcullis::policy::endpoint::EndpointState;
pub use matcher::exports::portcullis::policy::route_match::Selected;

/// The `matcher` world.
pub struct RouteMatch;

impl Kind for RouteMatch {
    type Pre = matcher::MatcherPre<PolicyState>;
    type Instance = matcher::Matcher;

    fn pre(pre: InstancePre<PolicyState>) -> wasmtime::Result<Self::Pre> {
        matcher::MatcherPre::new(pre)
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
        instance
            .portcullis_policy_route_match()
            .call_configure(store, config)
    }
}

/// The `weighter` world.
pub struct Destination;

impl Kind for Destination {
    type Pre = weighter::WeighterPre<PolicyState>;
    type Instance = weighter::Weighter;

    fn pre(pre: InstancePre<PolicyState>) -> wasmtime::Result<Self::Pre> {
        weighter::WeighterPre::new(pre)
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
        instance
            .portcullis_policy_destination()
            .call_configure(store, config)
    }
}

/// The `balancer` world.
pub struct Endpoint;

impl Kind for Endpoint {
    type Pre = balancer::BalancerPre<PolicyState>;
    type Instance = balancer::Balancer;

    fn pre(pre: InstancePre<PolicyState>) -> wasmtime::Result<Self::Pre> {
        balancer::BalancerPre::new(pre)
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
        instance
            .portcullis_policy_endpoint()
            .call_configure(store, config)
    }
}

/// The routing policies of one configuration generation.
pub struct Policies {
    pub route_match: Pool<RouteMatch>,
    pub destination: Pool<Destination>,
    pub endpoint: Pool<Endpoint>,
}

impl Policies {
    /// The first route of `virtual_host` matching the request.
    pub async fn select_route(
        &self,
        request: &Arc<RequestView>,
        virtual_host: u32,
    ) -> Result<Option<Selected>, PolicyError> {
        let mut lease = self.route_match.lease(request).await?;
        let (instance, store) = lease.parts();
        let result = instance
            .portcullis_policy_route_match()
            .call_select_route(store, virtual_host)
            .await;
        lease.finish(result)
    }

    /// The index of the destination of `route` to use.
    pub async fn pick_destination(
        &self,
        request: &Arc<RequestView>,
        route: u32,
    ) -> Result<u32, PolicyError> {
        let mut lease = self.destination.lease(request).await?;
        let (instance, store) = lease.parts();
        let result = instance
            .portcullis_policy_destination()
            .call_pick_destination(store, route)
            .await;
        lease.finish(result)
    }

    /// The index of the endpoint of `cluster` to use, or none when none is healthy.
    pub async fn pick_endpoint(
        &self,
        request: &Arc<RequestView>,
        cluster: u32,
        endpoints: &[EndpointState],
    ) -> Result<Option<u32>, PolicyError> {
        let mut lease = self.endpoint.lease(request).await?;
        let (instance, store) = lease.parts();
        let result = instance
            .portcullis_policy_endpoint()
            .call_pick_endpoint(store, cluster, endpoints)
            .await;
        lease.finish(result)
    }
}
