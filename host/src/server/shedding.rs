//! Shedding idle connections when the process runs out of file descriptors, as Envoy's
//! overload manager does: each worker knows its open connections, whether a request is
//! in flight on each and how many reads and writes each made. When accept fails for want
//! of descriptors, the connections with no request in flight that moved no bytes since
//! the previous failure (100 ms before) are closed, those idle longest first, so that new
//! clients are served instead of queued behind keep-alives.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// The share of a worker's idle connections closed each time accept runs out of
/// descriptors (at least one).
const SHED_FRACTION: usize = 10;

/// One worker's open connections.
#[derive(Debug, Default, Clone)]
pub struct Connections {
    open: Arc<Mutex<HashMap<u64, Arc<Tracked>>>>,
    next: Arc<AtomicU64>,
}

/// A connection as the worker sees it.
#[derive(Debug, Default)]
pub struct Tracked {
    in_flight: AtomicU32,
    /// When the last request's response started (milliseconds on the worker's clock).
    idle_since: AtomicU64,
    /// The connection's reads and writes so far, and their count at the last shedding.
    moved: Arc<AtomicU64>,
    moved_at_last_look: AtomicU64,
    close: Notify,
}

/// A connection's registration; it leaves the worker's list when dropped.
pub struct Registered {
    connections: Connections,
    id: u64,
    pub tracked: Arc<Tracked>,
}

/// Counts one request in flight on a connection until dropped.
pub struct InFlight(Arc<Tracked>);

impl Connections {
    /// Adds a connection whose reads and writes are counted in `moved`.
    pub fn register(&self, moved: Arc<AtomicU64>) -> Registered {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let tracked = Arc::new(Tracked {
            idle_since: AtomicU64::new(now_ms()),
            moved,
            ..Tracked::default()
        });
        self.lock().insert(id, tracked.clone());
        Registered {
            connections: self.clone(),
            id,
            tracked,
        }
    }

    /// Closes the idle connections that have been idle longest; returns how many.
    pub fn shed(&self) -> usize {
        let open = self.lock();
        let mut idle: Vec<&Arc<Tracked>> = open.values().filter(|c| c.quiet()).collect();
        idle.sort_by_key(|c| c.idle_since.load(Ordering::Relaxed));
        let count = idle.len().div_ceil(SHED_FRACTION);
        for connection in &idle[..count] {
            connection.close.notify_one();
        }
        count
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Tracked>>> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.connections.lock().remove(&self.id);
    }
}

impl Tracked {
    /// No request in flight, and no bytes moved since the last look.
    fn quiet(&self) -> bool {
        let moved = self.moved.load(Ordering::Relaxed);
        let before = self.moved_at_last_look.swap(moved, Ordering::Relaxed);
        self.in_flight.load(Ordering::Relaxed) == 0 && moved == before
    }

    /// Counts a request until the returned guard drops.
    pub fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// Resolves when the worker sheds this connection.
    pub async fn shed(&self) {
        self.close.notified().await;
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.idle_since.store(now_ms(), Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

fn now_ms() -> u64 {
    crate::runtime::clusters::now_ms()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn sheds_the_longest_idle_connections_only() {
        let connections = Connections::default();
        let busy = connections.register(Arc::default());
        let _request = busy.tracked.start();
        let streaming = connections.register(Arc::default());
        let idle: Vec<_> = (0..3)
            .map(|_| connections.register(Arc::default()))
            .collect();
        for (age, connection) in idle.iter().enumerate() {
            connection
                .tracked
                .idle_since
                .store(age as u64, Ordering::Relaxed);
        }
        streaming.tracked.moved.fetch_add(1, Ordering::Relaxed);
        assert_eq!(connections.shed(), 1, "a tenth of three idle, at least one");
        streaming.tracked.moved.fetch_add(1, Ordering::Relaxed);
        assert_eq!(connections.shed(), 1, "the streaming one moved bytes again");
        // The longest idle one was notified; the busy and streaming ones never are.
        tokio::time::timeout(Duration::from_secs(1), idle[0].tracked.shed())
            .await
            .unwrap();
        for spared in [&busy, &streaming] {
            let shed = tokio::time::timeout(Duration::from_millis(50), spared.tracked.shed());
            assert!(shed.await.is_err());
        }
        drop(idle);
        assert_eq!(connections.lock().len(), 2);
    }
}
