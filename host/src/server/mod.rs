//! Listeners: one worker thread per core, each a single-threaded tokio runtime with its own
//! accept loops, connections and upstream pools, so that a request stays on one thread.

mod bind;
mod proxy_protocol;
mod worker;

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use arc_swap::ArcSwap;
use serde::Serialize;
use tokio::sync::{oneshot, watch};

use crate::proxy::access_log::Telemetry;
use crate::runtime::Generation;

/// The line printed on stdout once every listener is bound, for scripts and tests.
#[derive(Debug, Serialize)]
struct Ready<'a> {
    event: &'static str,
    listeners: Vec<ReadyListener<'a>>,
    /// The admin API's address, when it is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    admin: Option<SocketAddr>,
}

#[derive(Debug, Serialize)]
struct ReadyListener<'a> {
    /// The address actually bound (port 0 resolved).
    address: SocketAddr,
    /// The servers it serves.
    servers: Vec<&'a str>,
}

/// Binds every listener of the current generation, serves on `workers` threads (each
/// request on the generation current when it arrives) until `shutdown` fires, then lets
/// open connections finish for at most `drain`.
pub async fn serve(
    current: Arc<ArcSwap<Generation>>,
    workers: usize,
    shutdown: watch::Receiver<bool>,
    drain: Duration,
    admin: Option<SocketAddr>,
    telemetry: Option<Arc<Telemetry>>,
) -> anyhow::Result<()> {
    let generation = current.load_full();
    let workers = workers.max(1);
    // sockets[listener][worker]
    let mut sockets = Vec::new();
    for listener in &generation.config.listeners {
        let bound = bind::bind(listener.address, workers).with_context(|| {
            format!(
                "binding {} for server {}",
                listener.address, listener.servers[0].name
            )
        })?;
        sockets.push(bound);
    }
    announce(&generation, &sockets, admin)?;
    drop(generation);

    let mut finished = Vec::new();
    for id in 0..workers {
        let listeners: Vec<(usize, std::net::TcpListener)> = sockets
            .iter_mut()
            .enumerate()
            .map(|(index, per_worker)| (index, per_worker.remove(0)))
            .collect();
        let (done, finished_rx) = oneshot::channel();
        let worker = worker::Worker {
            id,
            listeners,
            current: current.clone(),
            shutdown: shutdown.clone(),
            drain,
            telemetry: telemetry.clone(),
        };
        std::thread::Builder::new()
            .name(format!("worker-{id}"))
            .spawn(move || {
                let _ = done.send(worker.run());
            })
            .context("starting a worker thread")?;
        finished.push(finished_rx);
    }
    for worker in finished {
        worker.await.context("a worker thread died")??;
    }
    Ok(())
}

/// Prints the ready line and logs the listeners.
fn announce(
    generation: &Generation,
    sockets: &[Vec<std::net::TcpListener>],
    admin: Option<SocketAddr>,
) -> anyhow::Result<()> {
    let ready = Ready {
        event: "ready",
        listeners: sockets
            .iter()
            .zip(&generation.config.listeners)
            .map(|(socket, l)| ReadyListener {
                address: socket[0].local_addr().unwrap_or(l.address),
                servers: l.servers.iter().map(|s| s.name.as_str()).collect(),
            })
            .collect(),
        admin,
    };
    let line = serde_json::to_string(&ready).expect("the ready line serializes");
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .context("writing the ready line")?;
    for listener in &ready.listeners {
        tracing::info!(address = %listener.address, servers = ?listener.servers, "listening");
    }
    Ok(())
}
