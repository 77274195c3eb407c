//! The running listeners, started and stopped as generations come and go: a reload that
//! adds a server port binds it before the new generation is swapped in (so a port that
//! cannot be bound fails the reload), and one that removes a port stops accepting on it
//! once the new generation serves. Listeners that stay are never touched.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use tokio::sync::{mpsc, watch};

use super::bind;
use super::takeover::Inherited;
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
    /// Sockets taken over from the gateway that served before this one.
    inherited: Inherited,
}

/// A listener accepting now.
struct Running {
    address: SocketAddr,
    stop: watch::Sender<bool>,
    open: Arc<AtomicUsize>,
    /// Copies of its sockets, to hand over to a successor.
    sockets: Vec<OwnedFd>,
}

impl Listeners {
    /// Listeners for `workers` workers, accepting on the `inherited` sockets where they
    /// have them; and what each worker receives its sockets on.
    pub fn new(
        workers: usize,
        inherited: Inherited,
    ) -> (Self, Vec<mpsc::UnboundedReceiver<Start>>) {
        let (senders, receivers) = (0..workers.max(1))
            .map(|_| mpsc::unbounded_channel())
            .unzip();
        let listeners = Self {
            workers: senders,
            running: Mutex::default(),
            inherited,
        };
        (listeners, receivers)
    }

    /// Copies of every running listener's sockets, with their addresses.
    pub fn sockets(&self) -> Vec<(SocketAddr, OwnedFd)> {
        let running = self
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        running
            .values()
            .flat_map(|r| r.sockets.iter().map(|s| (r.address, s)))
            .filter_map(|(address, socket)| Some((address, socket.try_clone().ok()?)))
            .collect()
    }

    /// Closes this process's copies of the listening sockets (kept for a successor): on
    /// shutdown, once nothing here accepts on them, they must not keep them open (a
    /// successor holds its own).
    pub fn forget_copies(&self) {
        let mut running = self
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for listener in running.values_mut() {
            listener.sockets.clear();
        }
    }

    /// A socket inherited for `address` (the admin API's or the health port's), if any.
    pub fn inherited(&self, address: SocketAddr) -> Option<std::net::TcpListener> {
        self.inherited.take(address).into_iter().next()
    }

    /// Closes the inherited sockets no listener took: nothing accepts on them here.
    pub fn release_inherited(&self) {
        self.inherited.release();
    }

    /// The sockets for `address`: those inherited, and as many more bound as it takes
    /// for one per worker.
    fn sockets_for(&self, address: SocketAddr) -> std::io::Result<Vec<std::net::TcpListener>> {
        let mut sockets = self.inherited.take(address);
        let missing = self.workers.len().saturating_sub(sockets.len());
        if missing > 0 {
            sockets.extend(bind::bind(address, missing)?);
        }
        Ok(sockets)
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
            let sockets = self.sockets_for(listener.address).with_context(|| {
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
            let copies = sockets
                .iter()
                .filter_map(|s| s.try_clone().ok().map(OwnedFd::from))
                .collect();
            // More sockets than workers (taken over from a gateway with more): some
            // workers accept on several.
            for (worker, socket) in self.workers.iter().cycle().zip(sockets) {
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
                sockets: copies,
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
