//! HTTP/1.1 connections to one endpoint, shared by every worker (each prefers the
//! connections it opened, whose I/O runs on its own thread).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::load::ClusterLoad;
use crate::config::resolved::ConnectionPool;
use crate::proxy::body::Body;

/// Why no connection could be had.
#[derive(Debug)]
pub enum Checkout {
    /// Connecting failed or timed out.
    ConnectFailure(String),
}

/// An open connection, counted in its cluster's load until it closes.
pub struct PooledConnection {
    pub sender: http1::SendRequest<Body>,
    worker: usize,
    opened: Instant,
    requests: u32,
    idle_since: Instant,
    load: Arc<ClusterLoad>,
}

impl Drop for PooledConnection {
    fn drop(&mut self) {
        self.load.active_connections.fetch_sub(1, Ordering::Relaxed);
        self.load.freed.notify_waiters();
    }
}

/// Idle connections to one endpoint.
pub struct EndpointPool {
    address: SocketAddr,
    settings: ConnectionPool,
    load: Arc<ClusterLoad>,
    idle: Mutex<Vec<PooledConnection>>,
}

impl EndpointPool {
    /// An empty pool for `address`, counting into `load`.
    pub fn new(address: SocketAddr, settings: ConnectionPool, load: Arc<ClusterLoad>) -> Self {
        Self {
            address,
            settings,
            load,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// An idle connection ready for a request, preferring `worker`'s own. A connection
    /// whose previous exchange is still winding down is waited for briefly.
    pub async fn take_idle(&self, worker: usize) -> Option<PooledConnection> {
        loop {
            let mut candidate = {
                let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                idle.retain(|c| !c.sender.is_closed() && !self.expired(c, now));
                let position = idle
                    .iter()
                    .position(|c| c.worker == worker)
                    .unwrap_or(idle.len().checked_sub(1)?);
                idle.swap_remove(position)
            };
            if candidate.sender.ready().await.is_ok() {
                return Some(candidate);
            }
        }
    }

    fn expired(&self, connection: &PooledConnection, now: Instant) -> bool {
        let s = &self.settings;
        now.duration_since(connection.idle_since) >= s.idle_timeout()
            || s.max_connection_duration
                .is_some_and(|max| now.duration_since(connection.opened) >= max)
            || (s.max_requests_per_connection > 0
                && connection.requests >= s.max_requests_per_connection)
    }

    /// Opens a new connection on the calling worker. The caller has already counted it in
    /// the cluster's `active_connections` (see [`ClusterLoad::reserve`]); a failure uncounts it.
    pub async fn connect(&self, worker: usize) -> Result<PooledConnection, Checkout> {
        let opened = Instant::now();
        let result = self.open().await;
        match result {
            Ok(sender) => Ok(PooledConnection {
                sender,
                worker,
                opened,
                requests: 0,
                idle_since: opened,
                load: self.load.clone(),
            }),
            Err(reason) => {
                self.load.active_connections.fetch_sub(1, Ordering::Relaxed);
                self.load.freed.notify_waiters();
                Err(Checkout::ConnectFailure(reason))
            }
        }
    }

    async fn open(&self) -> Result<http1::SendRequest<Body>, String> {
        let timeout = self.settings.connect_timeout;
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(self.address)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(format!("{}: {e}", self.address)),
            Err(_) => {
                return Err(format!(
                    "{}: connect timed out after {timeout:?}",
                    self.address
                ));
            }
        };
        let _ = stream.set_nodelay(true);
        if let Some(keepalive) = &self.settings.tcp_keepalive {
            let mut params = socket2::TcpKeepalive::new();
            if let Some(time) = keepalive.time {
                params = params.with_time(time);
            }
            if let Some(interval) = keepalive.interval {
                params = params.with_interval(interval);
            }
            if let Some(probes) = keepalive.probes {
                params = params.with_retries(probes);
            }
            let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&params);
        }
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("{}: {e}", self.address))?;
        let address = self.address;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%address, "upstream connection ended: {e}");
            }
        });
        Ok(sender)
    }

    /// Takes a connection back after a complete exchange.
    pub fn put_back(&self, mut connection: PooledConnection) {
        connection.requests += 1;
        connection.idle_since = Instant::now();
        if connection.sender.is_closed() || self.expired(&connection, connection.idle_since) {
            return;
        }
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(connection);
        self.load.freed.notify_waiters();
    }

    /// How long to wait between re-checks while queued.
    pub const QUEUE_POLL: Duration = Duration::from_millis(50);
}
