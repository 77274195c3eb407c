//! One worker: a single-threaded runtime serving its share of every listener's connections.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use arc_swap::ArcSwap;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::rustls::server::Acceptor;

use super::listeners::Start;
use super::proxy_protocol::{self, Prefixed};
use crate::config::resolved::ListenerId;
use crate::proxy::access_log::Telemetry;
use crate::proxy::{self, Downstream};
use crate::runtime::Generation;
use crate::tls::session::TlsSession;

/// How long a client may take to complete its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A worker's sockets and what it serves them with.
pub struct Worker {
    pub id: usize,
    /// The sockets of listeners to accept on, as they start.
    pub starts: mpsc::UnboundedReceiver<Start>,
    pub current: Arc<ArcSwap<Generation>>,
    pub shutdown: watch::Receiver<bool>,
    pub drain: Duration,
    pub telemetry: Option<&'static Telemetry>,
}

impl Worker {
    /// Serves until shutdown, then drains; blocks the calling thread.
    pub fn run(self) -> anyhow::Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting a worker runtime")?;
        runtime.block_on(self.serve())
    }

    async fn serve(mut self) -> anyhow::Result<()> {
        let graceful = Arc::new(GracefulShutdown::new());
        let mut accepting = tokio::task::JoinSet::new();
        if let Some(telemetry) = self.telemetry.filter(|t| t.batched()) {
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(crate::proxy::access_log::FLUSH_EVERY);
                loop {
                    tick.tick().await;
                    telemetry.flush_thread();
                }
            });
        }
        loop {
            tokio::select! {
                start = self.starts.recv() => {
                    let Some(start) = start else { break };
                    let socket = TcpListener::from_std(start.socket).context("registering a listener")?;
                    accepting.spawn(accept(
                        Accepting {
                            worker: self.id,
                            listener: start.id,
                            current: self.current.clone(),
                            telemetry: self.telemetry,
                        },
                        socket,
                        graceful.clone(),
                        self.shutdown.clone(),
                        start.stop,
                    ));
                }
                () = stopped(&mut self.shutdown) => break,
            }
        }
        stopped(&mut self.shutdown).await;
        accepting.join_all().await;
        let graceful = Arc::try_unwrap(graceful)
            .map_err(|_| anyhow::anyhow!("accept loops still hold the connection watcher"))?;
        if tokio::time::timeout(self.drain, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                worker = self.id,
                "connections still open after {:?}; closing them",
                self.drain
            );
        }
        if let Some(telemetry) = self.telemetry {
            telemetry.flush_thread();
        }
        Ok(())
    }
}

/// What one accept loop serves its connections with.
struct Accepting {
    worker: usize,
    listener: ListenerId,
    current: Arc<ArcSwap<Generation>>,
    telemetry: Option<&'static Telemetry>,
}

/// Accepts connections on `socket` until shutdown or until the listener is removed.
async fn accept(
    accepting: Accepting,
    socket: TcpListener,
    graceful: Arc<GracefulShutdown>,
    mut shutdown: watch::Receiver<bool>,
    mut removed: watch::Receiver<bool>,
) {
    let port = socket.local_addr().map(|a| a.port()).unwrap_or_default();
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let (stream, client) = tokio::select! {
            accepted = socket.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = stopped(&mut shutdown) => return,
            () = stopped(&mut removed) => return,
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            worker: accepting.worker,
            listener: accepting.listener.clone(),
            port,
            client,
            trusted_proxies: 0,
            telemetry: accepting.telemetry,
            current: accepting.current.clone(),
        };
        let (builder, watcher) = (builder.clone(), graceful.watcher());
        tokio::spawn(async move {
            if let Err(e) = connection.serve(stream, builder, watcher).await {
                tracing::debug!(%client, "connection ended: {e}");
            }
        });
    }
}

/// One accepted connection.
struct Connection {
    worker: usize,
    listener: ListenerId,
    port: u16,
    /// The peer, or the client a PROXY header names.
    client: SocketAddr,
    /// Proxies in front trusted for forwarding headers.
    trusted_proxies: u32,
    telemetry: Option<&'static Telemetry>,
    current: Arc<ArcSwap<Generation>>,
}

impl Connection {
    /// Terminates TLS when the listener's servers ask for it, then serves HTTP.
    async fn serve(
        mut self,
        stream: TcpStream,
        builder: auto::Builder<TokioExecutor>,
        watcher: Watcher,
    ) -> anyhow::Result<()> {
        let generation = self.current.load_full();
        let index = generation
            .listener_index(&self.listener)
            .context("the listener was removed")?;
        let stream = match generation.config.listeners.get(index) {
            Some(listener) if listener.proxy_protocol => {
                let (client, stream) =
                    tokio::time::timeout(HANDSHAKE_TIMEOUT, proxy_protocol::accept(stream))
                        .await
                        .context("PROXY header timed out")??;
                self.client = client.unwrap_or(self.client);
                stream
            }
            _ => Prefixed::new(stream),
        };
        self.trusted_proxies = generation
            .config
            .listeners
            .get(index)
            .map_or(0, |l| l.trusted_proxies);
        let Some(servers) = generation.tls.get(index).and_then(Option::as_ref) else {
            return self
                .http(TokioIo::new(stream), 0, None, builder, watcher)
                .await;
        };
        let handshake = async {
            let start = LazyConfigAcceptor::new(Acceptor::default(), stream).await?;
            let sni = start.client_hello().server_name().map(str::to_string);
            let Some((config, route_table)) = servers.select(sni.as_deref()) else {
                anyhow::bail!("no server for SNI {sni:?}");
            };
            Ok((start.into_stream(config).await?, route_table))
        };
        let (tls, route_table) = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake)
            .await
            .context("TLS handshake timed out")??;
        drop(generation);
        let session = Arc::new(TlsSession::of(tls.get_ref().1));
        self.http(
            TokioIo::new(tls),
            route_table,
            Some(session),
            builder,
            watcher,
        )
        .await
    }

    async fn http<I>(
        self,
        io: TokioIo<I>,
        route_table: usize,
        tls: Option<Arc<TlsSession>>,
        builder: auto::Builder<TokioExecutor>,
        watcher: Watcher,
    ) -> anyhow::Result<()>
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let downstream = Arc::new(Downstream {
            worker: self.worker,
            listener: self.listener,
            route_table,
            port: self.port,
            client: self.client,
            scheme: if tls.is_some() { "https" } else { "http" },
            tls,
            trusted_proxies: self.trusted_proxies,
            telemetry: self.telemetry,
        });
        let current = self.current;
        let service = service_fn(move |request| {
            let generation = current.load_full();
            let downstream = downstream.clone();
            async move { Ok::<_, Infallible>(proxy::handle(request, &downstream, generation).await) }
        });
        let connection = builder
            .serve_connection_with_upgrades(io, service)
            .into_owned();
        watcher
            .watch(connection)
            .await
            .map_err(|e| anyhow::anyhow!(e))
    }
}

/// Resolves once shutdown has been asked for.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
