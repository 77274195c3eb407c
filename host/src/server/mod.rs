//! Listeners: one worker thread per core, each a single-threaded tokio runtime with its own
//! accept loops, connections and upstream pools, so that a request stays on one thread;
//! reloads start and stop listeners on every worker.

mod bind;
pub mod limits;
pub mod listeners;
mod proxy_protocol;
mod shedding;
pub mod takeover;
mod worker;

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use arc_swap::ArcSwap;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::resolved::ListenerId;
use crate::runtime::Generation;
use crate::telemetry::access_log::Telemetry;
use limits::{Admission, Limits};
use listeners::{Listeners, Start};

/// The line printed on stdout once every listener is bound, for scripts and tests.
#[derive(Debug, Serialize)]
struct Ready<'a> {
    event: &'static str,
    listeners: Vec<ReadyListener<'a>>,
    /// The admin API's and the health port's addresses, when they are on.
    #[serde(flatten)]
    ops: Ops,
    /// The SHA-256 of the config file served.
    config_hash: &'a str,
}

/// Where the admin API and the health port listen, when they are on.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Ops {
    /// The admin API's address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin: Option<SocketAddr>,
    /// The health port's address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<SocketAddr>,
}

#[derive(Debug, Serialize)]
struct ReadyListener<'a> {
    /// The address actually bound (port 0 resolved).
    address: SocketAddr,
    /// The servers it serves.
    servers: Vec<&'a str>,
}

/// Binds every listener of the current generation, serves on one thread per receiver in
/// `workers` (each request on the generation current when it arrives; reloads start and
/// stop listeners through `listeners`) until `shutdown` fires, then lets open connections
/// finish for at most the limits' drain timeout. `ready` runs once every listener is bound,
/// before the ready line (which names `ops`).
pub async fn serve(
    current: Arc<ArcSwap<Generation>>,
    listeners: &Listeners,
    workers: Vec<mpsc::UnboundedReceiver<Start>>,
    shutdown: watch::Receiver<bool>,
    (ops, ready): (Ops, impl FnOnce() -> anyhow::Result<()>),
    telemetry: Option<&'static Telemetry>,
    limits: Limits,
) -> anyhow::Result<()> {
    let generation = current.load_full();
    let prepared = listeners.prepare(&generation.config.listeners)?;
    let bound = listeners.commit(prepared);
    listeners.release_inherited();
    ready()?;
    announce(&generation, &bound, ops)?;
    drop(generation);

    let admission = Admission::new(limits);
    let mut finished = Vec::new();
    let draining = Arc::new(tokio::sync::Barrier::new(workers.len()));
    for (id, starts) in workers.into_iter().enumerate() {
        let (done, finished_rx) = oneshot::channel();
        let worker = worker::Worker {
            id,
            starts,
            current: current.clone(),
            shutdown: shutdown.clone(),
            telemetry,
            admission: admission.clone(),
            draining: draining.clone(),
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
    bound: &[(ListenerId, SocketAddr)],
    ops: Ops,
) -> anyhow::Result<()> {
    let ready = Ready {
        event: "ready",
        listeners: generation
            .config
            .listeners
            .iter()
            .filter_map(|l| {
                let (_, address) = bound.iter().find(|(id, _)| l.is(id))?;
                Some(ReadyListener {
                    address: *address,
                    servers: l.servers.iter().map(|s| s.name.as_str()).collect(),
                })
            })
            .collect(),
        ops,
        config_hash: &generation.config.hash,
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
