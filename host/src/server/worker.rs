//! One worker: a single-threaded runtime serving its share of every listener's connections.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use arc_swap::ArcSwap;
use bytes::Bytes;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::rustls::server::Acceptor;

use super::limits::{Admission, Admitted};
use super::listeners::Start;
use super::proxy_protocol::{self, Prefixed};
use super::shedding::{Connections, Registered};
use crate::config::resolved::ListenerId;
use crate::config::resolved::ServerKind;
use crate::proxy::idle::{self, Active};
use crate::proxy::normalize::PathNormalization;
use crate::proxy::upgrade::Tunnels;
use crate::proxy::{self, Downstream, stream};
use crate::runtime::Generation;
use crate::runtime::tls_servers::Selected;
use crate::telemetry::access_log::{ConnectionReport, Stamp, Telemetry};
use crate::tls::session::TlsSession;
use tokio_util::task::TaskTracker;

/// How long a client may take to complete its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the first half of a drain checks whether connections are left.
const DRAIN_POLL: Duration = Duration::from_millis(50);

/// A worker's sockets and what it serves them with.
pub struct Worker {
    pub id: usize,
    /// The sockets of listeners to accept on, as they start.
    pub starts: mpsc::UnboundedReceiver<Start>,
    pub current: Arc<ArcSwap<Generation>>,
    pub shutdown: watch::Receiver<bool>,
    pub telemetry: Option<&'static Telemetry>,
    pub admission: Arc<Admission>,
    /// The workers still draining: this worker's runtime drives upstream connections
    /// that other workers' requests may have borrowed from the pool, so it runs until
    /// every worker is done.
    pub draining: Arc<tokio::sync::Barrier>,
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
        let tunnels = Tunnels {
            tracker: TaskTracker::new(),
            idle_timeout: self.admission.limits().idle_timeout,
        };
        let connections = Connections::default();
        let mut accepting = tokio::task::JoinSet::new();
        if let Some(telemetry) = self.telemetry.filter(|t| t.batched()) {
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(crate::telemetry::access_log::FLUSH_EVERY);
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
                            open: start.open,
                            admission: self.admission.clone(),
                            tunnels: tunnels.clone(),
                            connections: connections.clone(),
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
        let drain = self.admission.limits().drain_timeout;
        tunnels.tracker.close();
        // First, as Envoy's drain does, connections go on serving and each HTTP/1.1
        // response says `Connection: close` (see `Connection::http`): a client's next
        // request goes to a new connection (a successor gateway's, on an upgrade) rather
        // than racing the close of an idle one. Then idle connections are closed and busy
        // ones finish.
        let closing = async {
            while graceful.count() > 0 {
                tokio::time::sleep(DRAIN_POLL).await;
            }
        };
        let _ = tokio::time::timeout(drain / 2, closing).await;
        let drained = async {
            graceful.shutdown().await;
            tunnels.tracker.wait().await;
        };
        if tokio::time::timeout(drain - drain / 2, drained)
            .await
            .is_err()
        {
            tracing::warn!(
                worker = self.id,
                "connections still open after {:?}; closing them",
                drain
            );
        }
        // Bounded: a worker stuck past its drain does not hold the others for long.
        let _ = tokio::time::timeout(drain, self.draining.wait()).await;
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
    /// The listener's open connections, across workers.
    open: Arc<std::sync::atomic::AtomicUsize>,
    admission: Arc<Admission>,
    /// Where the worker runs upgraded connections.
    tunnels: Tunnels,
    connections: Connections,
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
    let builder = http_builder(&accepting.admission);
    let mut exhausted = Exhaustion::default();
    loop {
        let (stream, client) = tokio::select! {
            accepted = socket.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tokio::time::sleep(exhausted.back_off(&e, &accepting.connections)).await;
                    continue;
                }
            },
            () = stopped(&mut shutdown) => return,
            () = stopped(&mut removed) => return,
        };
        let admitted = match accepting.admission.admit(&accepting.open, client.ip()) {
            Ok(admitted) => admitted,
            Err(refused) => {
                tracing::debug!(%client, "connection refused: {refused}");
                continue;
            }
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
            idle_timeout: accepting.admission.limits().idle_timeout,
            normalization: accepting.admission.limits().path_normalization,
            tunnels: accepting.tunnels.clone(),
            connections: accepting.connections.clone(),
            draining: shutdown.clone(),
            _admitted: admitted,
        };
        let (builder, watcher) = (builder.clone(), graceful.watcher());
        tokio::spawn(async move {
            if let Err(e) = connection.serve(stream, builder, watcher).await {
                tracing::debug!(%client, "connection ended: {e}");
            }
        });
    }
}

/// The HTTP server settings of every connection: hyper's timers, and the head timeout.
fn http_builder(admission: &Admission) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(admission.limits().header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .enable_connect_protocol();
    builder
}

/// Accept errors: running out of file descriptors sheds idle connections, backs off
/// longer and is logged at most once a second; anything else is retried soon.
#[derive(Default)]
struct Exhaustion {
    warned: Option<tokio::time::Instant>,
    suppressed: u64,
}

impl Exhaustion {
    fn back_off(&mut self, error: &std::io::Error, connections: &Connections) -> Duration {
        let out_of_files = matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE));
        if !out_of_files {
            tracing::warn!("accept failed: {error}");
            return Duration::from_millis(10);
        }
        let shed = connections.shed();
        let now = tokio::time::Instant::now();
        if self
            .warned
            .is_none_or(|at| now - at >= Duration::from_secs(1))
        {
            tracing::warn!(
                suppressed = self.suppressed,
                shed,
                "accept failed: {error}; closing idle connections"
            );
            self.warned = Some(now);
            self.suppressed = 0;
        } else {
            self.suppressed += 1;
        }
        Duration::from_millis(100)
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
    /// How long the connection may move no bytes.
    idle_timeout: Duration,
    normalization: PathNormalization,
    tunnels: Tunnels,
    connections: Connections,
    /// Turns true when the gateway drains.
    draining: watch::Receiver<bool>,
    /// Counted as open until the connection ends.
    _admitted: Admitted,
}

impl Connection {
    /// Terminates TLS when the listener's servers ask for it, then serves HTTP.
    async fn serve(
        mut self,
        stream: TcpStream,
        builder: auto::Builder<TokioExecutor>,
        watcher: Watcher,
    ) -> anyhow::Result<()> {
        let (stream, moved) = Active::new(stream);
        let registered = self.connections.register(moved.clone());
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
        let mut stream = stream;
        let listener = generation.config.listeners.get(index);
        if listener.is_some_and(|l| l.servers.iter().any(|s| s.kind == ServerKind::Tcp)) {
            let bytes = Forwarding {
                route_table: 0,
                sni: None,
                seen: Bytes::new(),
            };
            return self
                .forward(stream, bytes, (moved, registered), generation)
                .await;
        }
        let Some(servers) = generation.tls.get(index).and_then(Option::as_ref) else {
            return self
                .http(
                    TokioIo::new(stream),
                    (moved, registered),
                    0,
                    None,
                    builder,
                    watcher,
                )
                .await;
        };
        if servers.passes_through {
            let hello = tokio::time::timeout(HANDSHAKE_TIMEOUT, client_hello(&mut stream))
                .await
                .context("ClientHello timed out")??;
            let (sni, seen) = hello;
            if let Some(Selected::PassThrough(route_table)) = servers.select(sni.as_deref()) {
                let bytes = Forwarding {
                    route_table,
                    sni,
                    seen,
                };
                return self
                    .forward(stream, bytes, (moved, registered), generation)
                    .await;
            }
            stream.put_back(seen);
        }
        let handshake = async {
            let start = LazyConfigAcceptor::new(Acceptor::default(), stream).await?;
            let sni = start.client_hello().server_name().map(str::to_string);
            let Some(Selected::Terminate(config, route_table)) = servers.select(sni.as_deref())
            else {
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
            (moved, registered),
            route_table,
            Some(session),
            builder,
            watcher,
        )
        .await
    }

    /// Forwards the connection as bytes (a TCP or PASSTHROUGH server), tracked so that a
    /// drain waits for it, and logs it.
    async fn forward<I>(
        self,
        io: I,
        forwarding: Forwarding,
        (moved, registered): (Arc<std::sync::atomic::AtomicU64>, Registered),
        generation: Arc<Generation>,
    ) -> anyhow::Result<()>
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let started = Stamp::now();
        let sni = forwarding.sni.clone();
        let accepted = stream::Accepted {
            listener: self.listener,
            route_table: forwarding.route_table,
            port: self.port,
            client: self.client,
            sni: forwarding.sni,
            seen: forwarding.seen,
            idle: (moved, self.idle_timeout),
        };
        let mut done = stream::Forwarded::default();
        let forwarded = stream::forward(io, accepted, &generation, &mut done);
        // Counted as busy while open: shedding closes idle HTTP connections only.
        let _busy = registered.tracked.start();
        let result = self.tunnels.tracker.track_future(forwarded).await;
        if let Some(telemetry) = self.telemetry {
            telemetry.report_connection(&ConnectionReport {
                started,
                flag: result.as_ref().err().and_then(stream::StreamError::flag),
                received: done.received,
                sent: done.sent,
                sni: sni.as_deref(),
                upstream: done.upstream,
                route: done.route.map(|id| generation.route_name(id)),
            });
        }
        result.map_err(anyhow::Error::from)
    }

    async fn http<I>(
        self,
        io: TokioIo<I>,
        (moved, registered): (Arc<std::sync::atomic::AtomicU64>, Registered),
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
            normalization: self.normalization,
            tunnels: self.tunnels,
        });
        let (current, idle_timeout) = (self.current, self.idle_timeout);
        let tracked = registered.tracked.clone();
        let draining = self.draining;
        let service = service_fn(move |request: http::Request<_>| {
            let generation = current.load_full();
            let downstream = downstream.clone();
            let in_flight = tracked.start();
            let version = request.version();
            let draining = draining.clone();
            async move {
                let mut response = proxy::handle(request, &downstream, generation).await;
                drop(in_flight);
                if *draining.borrow() && closes_when_told(version, response.status()) {
                    response.headers_mut().insert(
                        http::header::CONNECTION,
                        http::HeaderValue::from_static("close"),
                    );
                }
                Ok::<_, Infallible>(response)
            }
        });
        let connection = builder
            .serve_connection_with_upgrades(io, service)
            .into_owned();
        tokio::select! {
            served = watcher.watch(connection) => served.map_err(|e| anyhow::anyhow!(e)),
            () = idle::idle(moved, idle_timeout) => {
                anyhow::bail!("closed after {idle_timeout:?} idle (--idle-timeout)")
            }
            () = registered.tracked.shed() => {
                anyhow::bail!("closed to free a file descriptor")
            }
        }
    }
}

/// What routes a connection forwarded as bytes, read before choosing.
struct Forwarding {
    route_table: usize,
    /// The ClientHello's server name (PASSTHROUGH).
    sni: Option<String>,
    /// The bytes read to find it, replayed upstream.
    seen: Bytes,
}

/// The largest ClientHello read to find its server name.
const MAX_CLIENT_HELLO: usize = 64 * 1024;

/// Reads the client's ClientHello (parsed by rustls): its server name, and the bytes
/// read, to be replayed to whoever handles the connection.
async fn client_hello<S>(stream: &mut S) -> anyhow::Result<(Option<String>, Bytes)>
where
    S: tokio::io::AsyncRead + Unpin,
{
    use tokio::io::AsyncReadExt as _;
    let mut acceptor = Acceptor::default();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await?;
        anyhow::ensure!(n > 0, "closed before its ClientHello ended");
        seen.extend_from_slice(&buf[..n]);
        let mut fed = &buf[..n];
        while !fed.is_empty() {
            acceptor.read_tls(&mut fed)?;
        }
        match acceptor.accept() {
            Ok(Some(accepted)) => {
                let sni = accepted.client_hello().server_name().map(str::to_string);
                return Ok((sni, seen.into()));
            }
            Ok(None) => anyhow::ensure!(seen.len() <= MAX_CLIENT_HELLO, "ClientHello too long"),
            Err((e, _)) => anyhow::bail!("not a TLS ClientHello: {e}"),
        }
    }
}

/// Whether a response of `status` to a request of `version` ends its connection when it
/// says `Connection: close`: HTTP/1 ones, but not an upgrade's.
fn closes_when_told(version: http::Version, status: http::StatusCode) -> bool {
    version <= http::Version::HTTP_11 && status != http::StatusCode::SWITCHING_PROTOCOLS
}

/// Resolves once shutdown has been asked for.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
