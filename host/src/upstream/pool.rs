//! HTTP/1.1 connections to one endpoint, over TCP or TLS, shared by every worker (each
//! prefers the connections it opened, whose I/O runs on its own thread).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::load::ClusterLoad;
use super::tls::Origination;
use crate::config::resolved::{ConnectionPool, TcpKeepalive};
use crate::wire::body::Body;

/// Why no connection could be had.
#[derive(Debug)]
pub enum Checkout {
    /// Connecting or the TLS handshake failed or timed out.
    ConnectFailure(String),
}

/// The TLS server name of a connection; `None` for plain TCP.
pub type Sni = Option<ServerName<'static>>;

/// An open connection, counted in its cluster's load until it closes.
pub struct PooledConnection {
    /// The connection's request sender.
    pub sender: http1::SendRequest<Body>,
    worker: usize,
    sni: Sni,
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
    tls: Option<Arc<Origination>>,
    idle: Mutex<Vec<PooledConnection>>,
}

impl EndpointPool {
    /// An empty pool for `address`, counting into `load`, speaking TLS through `tls`
    /// when given.
    pub fn new(
        address: SocketAddr,
        settings: ConnectionPool,
        load: Arc<ClusterLoad>,
        tls: Option<Arc<Origination>>,
    ) -> Self {
        Self {
            address,
            settings,
            load,
            tls,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// The TLS server name a request whose Host is `host` connects with (`None` for
    /// plain TCP, without asking for the host).
    pub fn sni<'h>(&self, host: impl FnOnce() -> &'h str) -> Sni {
        self.tls.as_ref().and_then(|tls| tls.server_name(host()))
    }

    /// An idle connection with server name `sni` ready for a request: `worker`'s own, or
    /// when `steal`, another worker's if it has none (a connection is driven by the worker
    /// that opened it, so using another's wakes that worker for every exchange). A
    /// connection whose previous exchange is still winding down is waited for briefly.
    pub async fn take_idle(
        &self,
        worker: usize,
        sni: &Sni,
        steal: bool,
    ) -> Option<PooledConnection> {
        loop {
            let mut candidate = {
                let mut idle = self
                    .idle
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let now = Instant::now();
                idle.retain(|c| !c.sender.is_closed() && !self.expired(c, now));
                let mut same_name = idle.iter().enumerate().filter(|(_, c)| &c.sni == sni);
                let position = same_name
                    .clone()
                    .find(|(_, c)| c.worker == worker)
                    .or_else(|| same_name.next_back().filter(|_| steal))?
                    .0;
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
    pub async fn connect(&self, worker: usize, sni: Sni) -> Result<PooledConnection, Checkout> {
        let opened = Instant::now();
        let timeout = self.settings.connect_timeout;
        let result = match tokio::time::timeout(timeout, self.open(sni.clone())).await {
            Ok(result) => result,
            Err(_) => Err(format!(
                "{}: connect timed out after {timeout:?}",
                self.address
            )),
        };
        match result {
            Ok(sender) => {
                self.load.opened.fetch_add(1, Ordering::Relaxed);
                Ok(PooledConnection {
                    sender,
                    worker,
                    sni,
                    opened,
                    requests: 0,
                    idle_since: opened,
                    load: self.load.clone(),
                })
            }
            Err(reason) => {
                self.load.active_connections.fetch_sub(1, Ordering::Relaxed);
                self.load.freed.notify_waiters();
                Err(Checkout::ConnectFailure(reason))
            }
        }
    }

    async fn open(&self, sni: Sni) -> Result<http1::SendRequest<Body>, String> {
        let stream = TcpStream::connect(self.address)
            .await
            .map_err(|e| format!("{}: {e}", self.address))?;
        let _ = stream.set_nodelay(true);
        if let Some(keepalive) = &self.settings.tcp_keepalive {
            keep_alive(&stream, keepalive);
        }
        match (&self.tls, sni) {
            (Some(tls), Some(name)) => {
                let stream = tls
                    .connect(name, stream)
                    .await
                    .map_err(|e| format!("{}: TLS handshake: {e}", self.address))?;
                self.handshake(stream).await
            }
            (Some(_), None) => Err(format!(
                "{}: the request's host is not a valid TLS server name; set the DestinationRule's tls.sni",
                self.address
            )),
            (None, _) => self.handshake(stream).await,
        }
    }

    /// Starts HTTP/1.1 on `io`, driving the connection on the calling worker.
    async fn handshake<T>(&self, io: T) -> Result<http1::SendRequest<Body>, String>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, connection) = http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| format!("{}: {e}", self.address))?;
        let address = self.address;
        // Upgrades (101) hand the connection over to a tunnel instead of ending it.
        tokio::spawn(async move {
            if let Err(e) = connection.with_upgrades().await {
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
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(connection);
        self.load.freed.notify_waiters();
    }

    /// How long to wait between re-checks while queued.
    pub const QUEUE_POLL: Duration = Duration::from_millis(50);
}

/// Turns on TCP keep-alive probes on `stream` as `keepalive` says (Istio's
/// `connectionPool.tcp.tcpKeepalive`); the OS's defaults where it says nothing.
pub fn keep_alive(stream: &TcpStream, keepalive: &TcpKeepalive) {
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
    let _ = socket2::SockRef::from(stream).set_tcp_keepalive(&params);
}
