//! Listeners: bind every Gateway port, serve HTTP/1.1 and HTTP/2 on each connection, and
//! drain gracefully on shutdown.

use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use arc_swap::ArcSwap;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::proxy::{self, Downstream};
use crate::runtime::Generation;

/// The line printed on stdout once every listener is bound, for scripts and tests.
#[derive(Debug, Serialize)]
struct Ready<'a> {
    event: &'static str,
    listeners: Vec<ReadyListener<'a>>,
}

#[derive(Debug, Serialize)]
struct ReadyListener<'a> {
    /// The address actually bound (port 0 resolved).
    address: SocketAddr,
    /// The servers it serves.
    servers: Vec<&'a str>,
}

/// Binds every listener of `generation`, serves until `shutdown` fires, then drains
/// open connections for at most `drain`.
pub async fn serve(
    generation: Arc<Generation>,
    mut shutdown: watch::Receiver<bool>,
    drain: Duration,
) -> anyhow::Result<()> {
    let mut bound = Vec::new();
    for listener in &generation.config.listeners {
        let socket = TcpListener::bind(listener.address).await.with_context(|| {
            format!(
                "binding {} for server {}",
                listener.address, listener.servers[0].name
            )
        })?;
        bound.push(socket);
    }
    let ready = Ready {
        event: "ready",
        listeners: bound
            .iter()
            .zip(&generation.config.listeners)
            .map(|(socket, l)| ReadyListener {
                address: socket.local_addr().unwrap_or(l.address),
                servers: l.servers.iter().map(|s| s.name.as_str()).collect(),
            })
            .collect(),
    };
    let line = serde_json::to_string(&ready).expect("the ready line serializes");
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .context("writing the ready line")?;
    drop(stdout);
    for listener in &ready.listeners {
        tracing::info!(address = %listener.address, servers = ?listener.servers, "listening");
    }

    let current = Arc::new(ArcSwap::new(generation));
    let graceful = Arc::new(GracefulShutdown::new());
    let mut accepting = tokio::task::JoinSet::new();
    for (index, socket) in bound.into_iter().enumerate() {
        accepting.spawn(accept(
            index,
            socket,
            current.clone(),
            graceful.clone(),
            shutdown.clone(),
        ));
    }
    stopped(&mut shutdown).await;
    accepting.join_all().await;
    let graceful = Arc::try_unwrap(graceful)
        .map_err(|_| anyhow::anyhow!("accept loops still hold the connection watcher"))?;
    tracing::info!("draining open connections for up to {drain:?}");
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {drain:?}; closing them");
    }
    Ok(())
}

async fn accept(
    index: usize,
    socket: TcpListener,
    current: Arc<ArcSwap<Generation>>,
    graceful: Arc<GracefulShutdown>,
    mut shutdown: watch::Receiver<bool>,
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
        };
        let _ = stream.set_nodelay(true);
        let downstream = Arc::new(Downstream {
            listener: index,
            route_table: 0,
            port,
            client,
            scheme: "http",
        });
        let current = current.clone();
        let service = service_fn(move |request| {
            let generation = current.load_full();
            let downstream = downstream.clone();
            async move { Ok::<_, Infallible>(proxy::handle(request, &downstream, generation).await) }
        });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%client, "connection ended: {e}");
            }
        });
    }
}

/// Resolves once shutdown has been asked for.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
