//! What the gateway has open towards a cluster, across every worker: the counters the
//! circuit breaker decides on, and the totals the metrics report.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use tokio::sync::Notify;

use crate::registry::Registry;
use crate::wasm::policies::ClusterLoadView;

/// Live counts for one cluster.
#[derive(Debug, Default)]
pub struct ClusterLoad {
    /// Requests in flight.
    pub active_requests: AtomicU32,
    /// Requests waiting for a connection.
    pub pending_requests: AtomicU32,
    /// Open connections.
    pub active_connections: AtomicU32,
    /// Retries in flight.
    pub active_retries: AtomicU32,
    /// HTTP/1.1 connections opened so far.
    pub opened: AtomicU64,
    /// Requests the circuit breaker refused (503 UO).
    pub overflows: AtomicU64,
    /// Endpoints outlier detection ejected.
    pub ejections: AtomicU64,
    /// Copies of requests mirrored to the cluster, and those that failed or timed out.
    pub mirrored: AtomicU64,
    /// Mirrored copies that failed or timed out.
    pub mirror_failures: AtomicU64,
    /// Woken whenever a connection closes or returns to a pool.
    pub freed: Notify,
    /// Each endpoint's health, by address.
    pub health: Registry<SocketAddr, EndpointHealth>,
}

/// What outlier detection knows of one endpoint. It lives with the cluster's counters,
/// so a reload does not bring an ejected endpoint back early.
#[derive(Debug, Default)]
pub struct EndpointHealth {
    /// Ejected until this time (milliseconds on the clusters' clock).
    pub ejected_until: AtomicU64,
    /// Its last result reported to outlier detection was a failure.
    pub failing: AtomicBool,
    /// How long its last response took to start, in microseconds (0: none yet).
    latency_us: AtomicU32,
}

impl EndpointHealth {
    /// Notes how long a response took to start, from the attempt's start.
    pub fn record_latency(&self, took: std::time::Duration) {
        let micros = u32::try_from(took.as_micros()).unwrap_or(u32::MAX).max(1);
        self.latency_us.store(micros, Ordering::Relaxed);
    }

    /// How long its last response took to start, in microseconds.
    pub fn latency_us(&self) -> Option<u32> {
        Some(self.latency_us.load(Ordering::Relaxed)).filter(|&us| us > 0)
    }
}

impl ClusterLoad {
    /// Counts one more on `counter` and returns a snapshot for the breaker in which that
    /// counter shows the value before this one: concurrent callers each see a distinct
    /// count, so a limit cannot be overrun by a race.
    pub fn reserve(&self, counter: &AtomicU32) -> ClusterLoadView {
        let before = counter.fetch_add(1, Ordering::Relaxed);
        let mut view = self.view();
        if std::ptr::eq(counter, &self.active_requests) {
            view.active_requests = before;
        } else if std::ptr::eq(counter, &self.active_connections) {
            view.active_connections = before;
        }
        view
    }

    /// [`ClusterLoad::reserve`] of a connection; with `as_pending`, the request is also
    /// counted as pending, so that concurrent callers see distinct pending counts too.
    /// The caller gives back what the breaker does not grant.
    pub fn reserve_connection(&self, as_pending: bool) -> ClusterLoadView {
        let mut view = self.reserve(&self.active_connections);
        if as_pending {
            view.pending_requests = self.pending_requests.fetch_add(1, Ordering::Relaxed);
        }
        view
    }

    /// A snapshot for the breaker.
    pub fn view(&self) -> ClusterLoadView {
        ClusterLoadView {
            active_requests: self.active_requests.load(Ordering::Relaxed),
            pending_requests: self.pending_requests.load(Ordering::Relaxed),
            active_connections: self.active_connections.load(Ordering::Relaxed),
            active_retries: self.active_retries.load(Ordering::Relaxed),
        }
    }
}

/// Holds one unit of a counter until dropped.
#[derive(Debug)]
pub struct Counted<'a>(&'a AtomicU32);

impl<'a> Counted<'a> {
    /// Adds one to `counter` until the guard drops.
    pub fn new(counter: &'a AtomicU32) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter)
    }

    /// Holds the one already added to `counter` until the guard drops.
    pub fn adopt(counter: &'a AtomicU32) -> Self {
        Self(counter)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
