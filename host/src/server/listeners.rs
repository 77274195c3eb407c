//! The running listeners, started and stopped as generations come and go: a reload that
//! adds a server port binds it before the new generation is swapped in (so a port that
//! cannot be bound fails the reload), and one that removes a port stops accepting on it
//! once the new generation serves. Listeners that stay are never touched.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use tokio::sync::{mpsc, watch};

use super::bind;
use crate::config::resolved::{Listener, ListenerId};

/// A listener for one worker to accept on.
pub struct Start {
    /// Which listener of the config it serves.
    pub id: ListenerId,
    /// The bound socket.
    pub socket: std::net::TcpListener,
    /// Turns true when the listener is removed.
    pub stop: watch::Receiver<bool>,
    /// The listener's open connections, shared by every worker.
    pub open: Arc<AtomicUsize>,
}

/// Listeners bound for a generation that is not serving yet.
pub struct Prepared {
    added: Vec<(ListenerId, Vec<std::net::TcpListener>)>,
    removed: Vec<ListenerId>,
}

/// Every running listener, and the way to each worker.
pub struct Listeners {
    workers: Vec<mpsc::UnboundedSender<Start>>,
    running: Mutex<HashMap<ListenerId, Running>>,
}

/// A listener accepting now.
struct Running {
    address: SocketAddr,
    stop: watch::Sender<bool>,
    open: Arc<AtomicUsize>,
}

impl Listeners {
    /// Listeners for `workers` workers, and what each worker receives its sockets on.
    pub fn new(workers: usize) -> (Self, Vec<mpsc::UnboundedReceiver<Start>>) {
        let (senders, receivers) = (0..workers.max(1))
            .map(|_| mpsc::unbounded_channel())
            .unzip();
        let listeners = Self {
            workers: senders,
            running: Mutex::default(),
        };
        (listeners, receivers)
    }

    /// Binds the listeners of `wanted` that are not running yet, and notes those running
    /// that `wanted` no longer has.
    pub fn prepare(&self, wanted: &[Listener]) -> anyhow::Result<Prepared> {
        let running = self
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut added = Vec::new();
        for listener in wanted.iter().filter(|l| !running.contains_key(&l.id())) {
            let sockets = bind::bind(listener.address, self.workers.len()).with_context(|| {
                format!(
                    "binding {} for server {}",
                    listener.address, listener.servers[0].name
                )
            })?;
            added.push((listener.id(), sockets));
        }
        let removed = running
            .keys()
            .filter(|id| !wanted.iter().any(|l| l.is(id)))
            .cloned()
            .collect();
        Ok(Prepared { added, removed })
    }

    /// Starts accepting on the added listeners and stops the removed ones; returns the
    /// addresses bound for the added ones, in order.
    pub fn commit(&self, prepared: Prepared) -> Vec<(ListenerId, SocketAddr)> {
        let mut running = self
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for id in prepared.removed {
            if let Some(removed) = running.remove(&id) {
                tracing::info!(address = %removed.address, listener = %id, "listener removed");
                let _ = removed.stop.send(true);
            }
        }
        let mut bound = Vec::new();
        for (id, sockets) in prepared.added {
            let Some(address) = sockets.first().and_then(|s| s.local_addr().ok()) else {
                continue;
            };
            let (stop, stopped) = watch::channel(false);
            let open = Arc::new(AtomicUsize::new(0));
            for (worker, socket) in self.workers.iter().zip(sockets) {
                let _ = worker.send(Start {
                    id: id.clone(),
                    socket,
                    stop: stopped.clone(),
                    open: open.clone(),
                });
            }
            let listener = Running {
                address,
                stop,
                open,
            };
            running.insert(id.clone(), listener);
            bound.push((id, address));
        }
        bound
    }

    /// The address listener `id` accepts on and its open connections, if it runs.
    pub fn bound(&self, id: &ListenerId) -> Option<(SocketAddr, usize)> {
        let running = self
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let listener = running.get(id)?;
        Some((listener.address, listener.open.load(Ordering::Relaxed)))
    }
}
