//! What an upstream exchange holds until its response body ends: the cluster's count of
//! active requests, the endpoint's count in flight, and the pooled connection to give
//! back when the exchange completes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;

use super::load::ClusterLoad;
use super::pool::{EndpointPool, PooledConnection};
use crate::wasm::policies::ClusterLoadView;
use crate::wire::body::{Body, BoxError, End, OnEnd, boxed};

/// What an attempt holds until its response body ends: the cluster's active-request count,
/// the endpoint's in-flight count, and the connection to give back.
pub struct UpstreamLease {
    load: Arc<ClusterLoad>,
    in_flight: Option<InFlight>,
    connection: Option<(PooledConnection, Arc<EndpointPool>)>,
}

impl UpstreamLease {
    /// Counts a request as active on `load` and returns the breaker's view of the load
    /// before it.
    pub fn reserve(load: &Arc<ClusterLoad>) -> (Self, ClusterLoadView) {
        let view = load.reserve(&load.active_requests);
        (
            Self {
                load: load.clone(),
                in_flight: None,
                connection: None,
            },
            view,
        )
    }

    /// Counts the request in flight on an endpoint's `counter` while the lease lasts.
    pub fn count_in_flight(&mut self, counter: &Arc<AtomicU32>) {
        self.in_flight = Some(InFlight::start(counter));
    }

    /// Holds `connection` of `pool`, given back when the exchange completes.
    pub fn hold(&mut self, connection: PooledConnection, pool: Arc<EndpointPool>) {
        self.connection = Some((connection, pool));
    }

    /// The exchange completed: the connection can serve another request.
    pub fn complete(mut self) {
        if let Some((connection, pool)) = self.connection.take() {
            pool.put_back(connection);
        }
    }
}

impl Drop for UpstreamLease {
    fn drop(&mut self) {
        self.load.active_requests.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counts one request in flight to an endpoint until dropped.
#[derive(Debug)]
pub struct InFlight(Arc<AtomicU32>);

impl InFlight {
    /// Counts one more request on `counter`.
    pub fn start(counter: &Arc<AtomicU32>) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An upstream response body that holds its lease until it ends: a complete body gives
/// the connection back to its pool, an error or an early drop closes it.
pub fn leased<B>(body: B, lease: UpstreamLease) -> Body
where
    B: http_body::Body<Data = Bytes> + Send + Sync + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    boxed(OnEnd::new(body, move |end, _| {
        if end == End::Complete {
            lease.complete();
        }
    }))
}
