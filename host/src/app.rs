//! The gateway as a process: builds the first generation, starts the admin API, the
//! reloader and the telemetry, serves until SIGINT or SIGTERM, then flushes what it
//! must. `cli` parses the command line into [`Options`]; everything else starts here.

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use arc_swap::ArcSwap;
use tokio::sync::{mpsc, watch};

use crate::admin::Admin;
use crate::admin::collector::GatewayCollector;
use crate::config::ResolvedConfig;
use crate::reload::{ReloadStatus, Reloader, unix_now};
use crate::runtime::{Generation, Runtime};
use crate::server::limits::Limits;
use crate::server::listeners::Listeners;
use crate::server::takeover::Inherited;
use crate::telemetry::access_log::{AccessLog, Destination, Format, Telemetry};
use crate::telemetry::metrics::Metrics;
use crate::upstream::dns::Dns;
use crate::wasm::WasmEngine;

/// Where the components come from, for `run` and `validate` alike.
#[derive(Debug, Clone, Default)]
pub struct Components {
    /// A folder whose `<kind>.wasm` files replace the built-in policies.
    pub policy_dir: Option<PathBuf>,
    /// Where compiled components are cached (default: ~/.cache/portcullis).
    pub cache_dir: Option<PathBuf>,
}

/// How `run` serves.
#[derive(Debug)]
pub struct Options {
    /// The config file, watched for reloads.
    pub config: PathBuf,
    /// Where the policy components and plugins come from.
    pub components: Components,
    /// Worker threads (default: one per core).
    pub workers: Option<usize>,
    /// Where the admin API listens, if it is on.
    pub admin: Option<std::net::SocketAddr>,
    /// Where the health port (`/healthz/ready`) listens, if it is on.
    pub health: Option<std::net::SocketAddr>,
    /// The Unix socket over which a successor takes over the listening sockets.
    pub upgrade_socket: Option<PathBuf>,
    /// Where the access log goes, if anywhere, and its format.
    pub access_log: Option<(Destination, Format)>,
    /// The DNS server for `resolution: DNS` services (default: /etc/resolv.conf's).
    pub dns_server: Option<std::net::SocketAddr>,
    /// The OTLP/HTTP traces URL spans are exported to, if any.
    #[cfg(feature = "otel")]
    pub otlp_endpoint: Option<String>,
    /// How often key sets fetched for RequestAuthentications are fetched again.
    pub jwks_refresh: std::time::Duration,
    /// Connection and request limits.
    pub limits: Limits,
}

/// What the admin API and the reloader share with the data path.
struct Shared {
    runtime: Arc<Runtime>,
    current: Arc<ArcSwap<Generation>>,
    status: Arc<Mutex<ReloadStatus>>,
    listeners: Arc<Listeners>,
}

/// Serves `config` (loaded from `options.config`) until a shutdown signal.
pub fn run(options: Options, config: ResolvedConfig) -> anyhow::Result<()> {
    raise_file_limit();
    let workers = options
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get));
    // The control thread: loads policies and waits for signals; workers serve.
    control_thread()?.block_on(async {
        let components = options.components.clone();
        let runtime = gateway_runtime(components, options.dns_server, workers)?;
        let runtime = Arc::new(runtime);
        let generation = Generation::build(config, &runtime)
            .await
            .context("loading the policies")?;
        let inherited = match &options.upgrade_socket {
            Some(path) => {
                Inherited::take_over(path).context("taking over the listening sockets")?
            }
            None => Inherited::default(),
        };
        let (listeners, worker_starts) = Listeners::new(workers, inherited);
        let shared = Shared {
            runtime,
            current: Arc::new(ArcSwap::from_pointee(generation)),
            status: Arc::new(Mutex::new(ReloadStatus {
                generation: 1,
                loaded_at: unix_now(),
                ..ReloadStatus::default()
            })),
            listeners: Arc::new(listeners),
        };
        // Metrics are kept when the admin API, which serves them, is on.
        let metrics = options.admin.map(|_| metrics(&shared));
        let mut ops_sockets = Vec::new();
        let mut ops_tasks = Vec::new();
        let (stop, stopped) = watch::channel(false);
        let admin = match options.admin {
            Some(address) => {
                let listener = ops_listener(address, &shared.listeners, &mut ops_sockets)
                    .with_context(|| format!("binding the admin API on {address}"))?;
                let draining = stopped.clone();
                let (bound, task) = start_admin(listener, &shared, (metrics.clone(), draining))?;
                ops_tasks.push(task);
                Some(bound)
            }
            None => None,
        };
        let health = match options.health {
            Some(address) => {
                let listener = ops_listener(address, &shared.listeners, &mut ops_sockets)
                    .with_context(|| format!("binding the health port on {address}"))?;
                let (bound, task) = start_health(listener, stopped.clone())?;
                ops_tasks.push(task);
                Some(bound)
            }
            None => None,
        };
        start_reloader(options.config.clone(), options.jwks_refresh, &shared)?;
        let telemetry = telemetry(&options, metrics)?;
        // Installed before the ready line: a signal that comes right after it is handled,
        // not met by the default action.
        let shutdown = shutdown_signal()?;
        let copies = shared.listeners.clone();
        let handed = Arc::new(AtomicBool::new(false));
        let successor = handed.clone();
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down");
            let _ = stop.send(true);
            copies.forget_copies();
            // A successor that took the admin API's and health port's sockets answers
            // them now; this gateway would only say it drains.
            if successor.load(Ordering::Relaxed) {
                ops_tasks.iter().for_each(tokio::task::JoinHandle::abort);
            }
        });
        let listeners = shared.listeners.clone();
        let served = crate::server::serve(
            shared.current,
            &shared.listeners,
            worker_starts,
            stopped,
            (crate::server::Ops { admin, health }, || {
                match &options.upgrade_socket {
                    Some(path) => offer_sockets(path, (listeners, ops_sockets), handed),
                    None => Ok(()),
                }
            }),
            telemetry,
            options.limits,
        )
        .await;
        flush(telemetry);
        served
    })
}

/// Request metrics, plus the gateway's own read at scrape time.
fn metrics(shared: &Shared) -> Arc<Metrics> {
    Arc::new(Metrics::with_collector(GatewayCollector {
        runtime: shared.runtime.clone(),
        current: shared.current.clone(),
        status: shared.status.clone(),
    }))
}

/// The listening socket for the admin API or the health port at `address`: taken over
/// from the gateway serving before this one, else bound; a copy goes to `handed` for the
/// next one.
fn ops_listener(
    address: std::net::SocketAddr,
    listeners: &Listeners,
    handed: &mut Vec<(std::net::SocketAddr, OwnedFd)>,
) -> anyhow::Result<tokio::net::TcpListener> {
    let socket = match listeners.inherited(address) {
        Some(socket) => socket,
        None => std::net::TcpListener::bind(address)?,
    };
    socket.set_nonblocking(true)?;
    handed.push((socket.local_addr()?, socket.try_clone()?.into()));
    Ok(tokio::net::TcpListener::from_std(socket)?)
}

/// Serves the admin API on `listener`, with `metrics` and whether the gateway drains;
/// returns the address bound.
fn start_admin(
    listener: tokio::net::TcpListener,
    shared: &Shared,
    (metrics, draining): (Option<Arc<Metrics>>, watch::Receiver<bool>),
) -> anyhow::Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>)> {
    let bound = listener.local_addr()?;
    let admin = Admin {
        current: shared.current.clone(),
        status: shared.status.clone(),
        metrics,
        listeners: shared.listeners.clone(),
        draining,
    };
    Ok((bound, tokio::spawn(admin.serve(listener))))
}

/// Serves the health port on `listener`; returns the address bound.
fn start_health(
    listener: tokio::net::TcpListener,
    draining: watch::Receiver<bool>,
) -> anyhow::Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>)> {
    let bound = listener.local_addr()?;
    let task = tokio::spawn(crate::admin::health::serve(listener, draining));
    Ok((bound, task))
}

/// Offers the listening sockets (the listeners' and `ops`: the admin API's and health
/// port's) to a successor that asks at `path`; `handed` turns true once one took them.
fn offer_sockets(
    path: &std::path::Path,
    (listeners, ops): (Arc<Listeners>, Vec<(std::net::SocketAddr, OwnedFd)>),
    handed: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    crate::server::takeover::offer(path, handed, move || {
        let mut sockets = listeners.sockets();
        let copies = ops
            .iter()
            .filter_map(|(a, s)| Some((*a, s.try_clone().ok()?)));
        sockets.extend(copies);
        sockets
    })
}

/// How soon a key set that could not be fetched is tried again.
const JWKS_RETRY: std::time::Duration = std::time::Duration::from_secs(15);

/// Reloads `config` when its files change, on SIGHUP (its handler installed before
/// this returns, so a SIGHUP right after the ready line reloads rather than kills), and
/// when a key set refreshed every `jwks_refresh` has changed.
fn start_reloader(
    config: PathBuf,
    jwks_refresh: std::time::Duration,
    shared: &Shared,
) -> anyhow::Result<()> {
    let (triggers, reloads) = mpsc::unbounded_channel();
    let on_hangup = triggers.clone();
    let on_new_keys = triggers.clone();
    let jwks = shared.runtime.jwks.clone();
    tokio::spawn(async move {
        loop {
            // A key set that could not be had is tried again sooner.
            let pause = match jwks.failing() {
                true => jwks_refresh.min(JWKS_RETRY),
                false => jwks_refresh,
            };
            tokio::time::sleep(pause).await;
            if jwks.refresh().await {
                tracing::info!("a JWKS changed: reloading");
                let _ = on_new_keys.send(());
            }
        }
    });
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("installing the SIGHUP handler")?;
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading");
            let _ = on_hangup.send(());
        }
    });
    let reloader = Reloader {
        config_path: config,
        runtime: shared.runtime.clone(),
        current: shared.current.clone(),
        status: shared.status.clone(),
        listeners: shared.listeners.clone(),
    };
    reloader.start(triggers, reloads);
    Ok(())
}

/// The access log, metrics and spans, if any is on. It lives as long as the process:
/// requests borrow it without touching a shared reference count.
fn telemetry(
    options: &Options,
    metrics: Option<Arc<Metrics>>,
) -> anyhow::Result<Option<&'static Telemetry>> {
    let log = match &options.access_log {
        Some((destination, format)) => {
            Some(AccessLog::start(destination, *format).context("opening the access log")?)
        }
        None => None,
    };
    #[cfg(feature = "otel")]
    let spans = match &options.otlp_endpoint {
        Some(endpoint) => Some(
            crate::telemetry::spans::Spans::new(endpoint)
                .with_context(|| format!("setting up span export to {endpoint}"))?,
        ),
        None => None,
    };
    #[cfg(feature = "otel")]
    let traced = spans.is_some();
    #[cfg(not(feature = "otel"))]
    let traced = false;
    if log.is_none() && metrics.is_none() && !traced {
        return Ok(None);
    }
    // The request clock calibrates itself (about a millisecond) on first use: not on
    // the first request.
    crate::telemetry::access_log::Stamp::now();
    Ok(Some(Box::leak(Box::new(Telemetry {
        log,
        metrics,
        #[cfg(feature = "otel")]
        spans,
    }))))
}

/// Writes out what telemetry still holds.
fn flush(telemetry: Option<&'static Telemetry>) {
    if let Some(log) = telemetry.and_then(|t| t.log.as_ref()) {
        log.close();
    }
    #[cfg(feature = "otel")]
    if let Some(spans) = telemetry.and_then(|t| t.spans.as_ref()) {
        spans.shutdown();
    }
}

/// Builds a generation of `config` the way `run` and reloads do (components compiled
/// and configured, TLS files read), and drops it.
pub fn build_once(config: ResolvedConfig, components: Components) -> anyhow::Result<()> {
    control_thread()?.block_on(async {
        let runtime = gateway_runtime(components, None, 1)?;
        Generation::build(config, &runtime).await.map(drop)
    })
}

/// The single-threaded async runtime of the control thread.
fn control_thread() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// What every generation is built with: the Wasm engine (compiled components cached in
/// the cache folder, by default ~/.cache/portcullis), the DNS resolver (asking
/// `dns_server` when given), the policy overrides, and the number of workers.
fn gateway_runtime(
    components: Components,
    dns_server: Option<std::net::SocketAddr>,
    workers: usize,
) -> anyhow::Result<Runtime> {
    let dns = Dns::new(dns_server).context("setting up the DNS resolver")?;
    let wasm = WasmEngine::new(components.cache_dir.or_else(default_cache_dir))?;
    Ok(Runtime::new(
        wasm,
        Arc::new(dns),
        components.policy_dir,
        workers,
    ))
}

fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("portcullis"))
}

/// Raises the soft limit on open files to the hard limit: each connection takes one, and
/// the common soft limit of 1 024 is soon reached.
fn raise_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open files limit"),
        Err(e) => tracing::warn!("cannot raise the open files limit: {e}"),
    }
}

/// A future that resolves on SIGINT or SIGTERM, both handlers installed when this returns.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}
