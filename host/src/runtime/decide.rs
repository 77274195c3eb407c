//! The policy calls of the data path, each made to the component that serves the phase
//! where the request is: the plugin its chain names, or the built-in. A plugin that
//! fails and fails open leaves the decision to the built-in; the route-level calls say
//! which decided, for the access log.

use std::sync::Arc;

use super::Generation;
use super::generation::VirtualHostEntry;
use super::route_entry::RouteEntry;
use crate::wasm::plugins::guarded;
use crate::wasm::policies::{
    Admission, AttemptOutcome, ClusterLoadView, EndpointResult, EndpointState, Injection,
    RetryDecision, Selected,
};
use crate::wasm::{PolicyError, RequestView};

/// A decision, and the plugin that made it (`None`: the built-in).
#[derive(Debug, Clone, Copy)]
pub struct Decided<T> {
    /// What was decided.
    pub value: T,
    /// The index of the plugin that decided, in the generation's plugins.
    pub by: Option<usize>,
}

/// Calls `$call` on `$pool`: the pool of plugin `$plugin` (through the typed accessor
/// `$typed`) when there is one, else (or when it fails open) the built-in `$builtin`.
/// Comes to a [`Decided`].
macro_rules! decide {
    ($generation:expr, $plugin:expr, $builtin:ident, $typed:ident, |$pool:ident| $call:expr) => {{
        let generation: &Generation = $generation;
        let plugin = $plugin.map(|i: usize| (i, &generation.plugins[i]));
        let chosen = plugin.and_then(|(i, p)| p.pool.$typed().map(|pool| (i, p, pool)));
        let decided = match chosen {
            Some((index, plugin, $pool)) => guarded!(plugin, $call)?.map(|value| Decided {
                value,
                by: Some(index),
            }),
            None => None,
        };
        match decided {
            Some(decided) => Ok(decided),
            None => {
                let $pool = &generation.policies.$builtin;
                $call.await.map(|value| Decided { value, by: None })
            }
        }
    }};
}

impl Generation {
    /// The first route of `vhost` matching the request.
    pub async fn select_route(
        &self,
        vhost: &VirtualHostEntry,
        request: &Arc<RequestView>,
    ) -> Result<Decided<Option<Selected>>, PolicyError> {
        decide!(self, vhost.matcher, route_match, route_match, |pool| pool
            .select_route(request, vhost.id))
    }

    /// The index of the destination of `entry` to use.
    pub async fn pick_destination(
        &self,
        entry: &RouteEntry,
        request: &Arc<RequestView>,
    ) -> Result<Decided<u32>, PolicyError> {
        decide!(
            self,
            entry.chain.destination,
            destination,
            destination,
            |pool| pool.pick_destination(request, entry.id)
        )
    }

    /// What fault to inject into this request on `entry`.
    pub async fn inject_fault(
        &self,
        entry: &RouteEntry,
        request: &Arc<RequestView>,
    ) -> Result<Decided<Injection>, PolicyError> {
        decide!(self, entry.chain.fault, fault, fault, |pool| pool
            .inject_fault(request, entry.id))
    }

    /// Whether to retry after attempt `attempt` on `entry` ended with `outcome`.
    pub async fn should_retry(
        &self,
        entry: &RouteEntry,
        request: &Arc<RequestView>,
        attempt: u32,
        outcome: AttemptOutcome,
    ) -> Result<Decided<RetryDecision>, PolicyError> {
        decide!(self, entry.chain.retry, retry, retry, |pool| pool
            .should_retry(request, entry.id, attempt, outcome))
    }

    /// The index of the endpoint of `cluster` to use, or none when none is healthy.
    pub async fn pick_endpoint(
        &self,
        cluster: usize,
        request: &Arc<RequestView>,
        endpoints: &[EndpointState],
    ) -> Result<Option<u32>, PolicyError> {
        let plugin = self.clusters[cluster].chain.endpoint;
        let decided: Decided<_> = decide!(self, plugin, endpoint, endpoint, |pool| pool
            .pick_endpoint(request, cluster as u32, endpoints))?;
        Ok(decided.value)
    }

    /// Whether a request to `cluster` may start under its `http2MaxRequests`.
    pub async fn admit_request(
        &self,
        cluster: usize,
        request: &Arc<RequestView>,
        load: ClusterLoadView,
    ) -> Result<bool, PolicyError> {
        let plugin = self.clusters[cluster].chain.breaker;
        let decided: Decided<_> = decide!(self, plugin, breaker, breaker, |pool| pool
            .admit_request(request, cluster as u32, load))?;
        Ok(decided.value)
    }

    /// Whether a request to `cluster` may open a connection, must queue, or overflows.
    pub async fn admit_connection(
        &self,
        cluster: usize,
        request: &Arc<RequestView>,
        load: ClusterLoadView,
    ) -> Result<Admission, PolicyError> {
        let plugin = self.clusters[cluster].chain.breaker;
        let decided: Decided<_> = decide!(self, plugin, breaker, breaker, |pool| pool
            .admit_connection(request, cluster as u32, load))?;
        Ok(decided.value)
    }

    /// Whether a retry to `cluster` may start under its `maxRetries`.
    pub async fn admit_retry(
        &self,
        cluster: usize,
        request: &Arc<RequestView>,
        load: ClusterLoadView,
    ) -> Result<bool, PolicyError> {
        let plugin = self.clusters[cluster].chain.breaker;
        let decided: Decided<_> = decide!(self, plugin, breaker, breaker, |pool| pool
            .admit_retry(request, cluster as u32, load))?;
        Ok(decided.value)
    }

    /// Records how a request to `endpoint` of `cluster` ended; returns how long to eject
    /// it (ms).
    pub async fn record_result(
        &self,
        cluster: usize,
        request: &Arc<RequestView>,
        endpoint: u32,
        result: EndpointResult,
        (ejected, total): (u32, u32),
    ) -> Result<Option<u64>, PolicyError> {
        let plugin = self.clusters[cluster].chain.outlier;
        let decided: Result<Decided<_>, PolicyError> = decide!(
            self,
            plugin,
            outlier,
            outlier,
            |pool| pool.record_result(request, cluster as u32, endpoint, result, ejected, total)
        );
        decided.map(|d| d.value)
    }
}
