//! The command line: `portcullis run` and `portcullis validate`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use arc_swap::ArcSwap;
use clap::{Args, Parser, Subcommand};
use std::sync::Mutex;
use tokio::sync::{mpsc, watch};

use crate::admin::Admin;
use crate::admin::collector::GatewayCollector;
use crate::proxy::access_log::{AccessLog, Destination, Format, Telemetry};
use crate::proxy::metrics::Metrics;
use crate::runtime::reload::{ReloadStatus, Reloader, unix_now};
use crate::scaffold::{self, Language};

use crate::config::{self, Loaded, ResolvedConfig};
use crate::runtime::{Generation, Runtime};
use crate::server::limits::Limits;
use crate::server::listeners::Listeners;
use crate::upstream::dns::Dns;
use crate::wasm::WasmEngine;

/// An edge gateway whose traffic policies are WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "portcullis", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway.
    Run(Box<RunArgs>),
    /// Work with plugins.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Check a config file and print every error; exit 0 when it is valid. Also loads
    /// every component and plugin and runs its `configure`, as a reload would.
    Validate {
        /// The config file.
        #[arg(short, long, default_value = "gateway.yaml")]
        config: PathBuf,
        /// A folder whose .wasm files replace the built-in policies.
        #[arg(long, env = "PORTCULLIS_POLICY_DIR")]
        policy_dir: Option<PathBuf>,
        /// Where compiled components are cached (default: ~/.cache/portcullis).
        #[arg(long, env = "PORTCULLIS_CACHE_DIR")]
        cache_dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Create a plugin project in a new folder NAME, ready to build.
    New {
        /// The language to write the plugin in.
        language: Language,
        /// The plugin's name (lowercase letters, digits and '-').
        name: String,
        /// Where to create the folder.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The config file.
    #[arg(short, long, default_value = "gateway.yaml")]
    config: PathBuf,
    /// A folder whose match.wasm, weight.wasm, lb.wasm, fault.wasm or retry.wasm replace
    /// the built-in policies.
    #[arg(long, env = "PORTCULLIS_POLICY_DIR")]
    policy_dir: Option<PathBuf>,
    /// Where compiled components are cached (default: ~/.cache/portcullis).
    #[arg(long, env = "PORTCULLIS_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Worker threads serving connections (default: one per core).
    #[arg(long)]
    workers: Option<usize>,
    /// Serve the admin API (/ready, /config_dump, /plugins) on this address, e.g.
    /// 127.0.0.1:15000. Off by default; keep it on loopback.
    #[arg(long)]
    admin: Option<std::net::SocketAddr>,
    /// The access log: `stdout`, a file path, or `off`.
    #[arg(long, default_value = "off", value_parser = parse_access_log)]
    access_log: AccessLogArg,
    /// The access log's format: `json` (one object per line) or `text` (Envoy's
    /// default format).
    #[arg(long, default_value = "json", value_parser = parse_access_log_format)]
    access_log_format: Format,
    /// How long open connections may finish their requests on shutdown.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    drain_timeout: Duration,
    /// How long a client may take to send a request head; an idle HTTP/1.1 keep-alive
    /// connection is closed after it too.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    header_timeout: Duration,
    /// How request paths are normalized before routing, as Istio's
    /// `meshConfig.pathNormalization`: NONE, BASE, MERGE_SLASHES or
    /// DECODE_AND_MERGE_SLASHES.
    #[arg(long, default_value = "BASE")]
    path_normalization: crate::proxy::normalize::PathNormalization,
    /// Close a connection that has moved no bytes either way for this long.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    idle_timeout: Duration,
    /// Connections open at once on one listener; more are closed as they are accepted.
    #[arg(long, default_value_t = 100_000)]
    max_connections: usize,
    /// Connections open at once from one client address (0: no bound).
    #[arg(long, default_value_t = 0)]
    max_connections_per_client: usize,
    /// Send DNS queries for `resolution: DNS` services to this server (e.g.
    /// 10.0.0.2:53) instead of the ones in /etc/resolv.conf.
    #[arg(long, env = "PORTCULLIS_DNS_SERVER")]
    dns_server: Option<std::net::SocketAddr>,
    /// Export a span per request to this OTLP/HTTP traces URL, e.g.
    /// http://127.0.0.1:4318/v1/traces.
    #[cfg(feature = "otel")]
    #[arg(long, env = "PORTCULLIS_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
    /// The gateway's own log level or filter (`info`, `portcullis=debug`, ...); default
    /// `RUST_LOG`, else `info`.
    #[arg(long)]
    log_level: Option<String>,
}

/// Where the access log goes, if anywhere.
#[derive(Debug, Clone)]
struct AccessLogArg(Option<Destination>);

fn parse_access_log(text: &str) -> Result<AccessLogArg, String> {
    Ok(AccessLogArg(match text {
        "off" => None,
        "stdout" => Some(Destination::Stdout),
        path => Some(Destination::File(path.into())),
    }))
}

fn parse_access_log_format(text: &str) -> Result<Format, String> {
    match text {
        "json" => Ok(Format::Json),
        "text" => Ok(Format::Text),
        other => Err(format!(
            "`{other}` is not an access log format (json, text)"
        )),
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    config::model::common::Duration::parse(text).map(|d| d.0)
}

impl Cli {
    /// Runs the command.
    pub fn run(self) -> ExitCode {
        match self.command {
            Command::Validate {
                config,
                policy_dir,
                cache_dir,
            } => {
                let Some(loaded) = load(&config) else {
                    return ExitCode::FAILURE;
                };
                let summary = summary(&loaded.config);
                match build_once(loaded.config, policy_dir, cache_dir) {
                    Ok(()) => {
                        println!("{}: valid ({summary})", config.display());
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("{}: {e:#}", config.display());
                        ExitCode::FAILURE
                    }
                }
            }
            Command::Plugin {
                command:
                    PluginCommand::New {
                        language,
                        name,
                        dir,
                    },
            } => match scaffold::new_plugin(language, &name, &dir) {
                Ok(root) => {
                    println!(
                        "created {}: see its README.md to build it and declare it",
                        root.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e:#}");
                    ExitCode::FAILURE
                }
            },
            Command::Run(args) => {
                init_tracing(args.log_level.as_deref());
                let Some(loaded) = load(&args.config) else {
                    return ExitCode::FAILURE;
                };
                match run(*args, loaded) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        tracing::error!("{e:#}");
                        ExitCode::FAILURE
                    }
                }
            }
        }
    }
}

fn init_tracing(level: Option<&str>) {
    let filter = match level {
        Some(level) => tracing_subscriber::EnvFilter::new(level),
        None => {
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into())
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn run(args: RunArgs, loaded: Loaded) -> anyhow::Result<()> {
    raise_file_limit();
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    // The control thread: loads policies and waits for signals; workers serve.
    control_thread()?.block_on(async {
        let runtime = Arc::new(gateway_runtime(
            args.cache_dir,
            args.dns_server,
            args.policy_dir,
            workers,
        )?);
        let generation = Generation::build(loaded.config, &runtime)
            .await
            .context("loading the policies")?;
        let current = Arc::new(ArcSwap::from_pointee(generation));
        let status = Arc::new(Mutex::new(ReloadStatus {
            generation: 1,
            loaded_at: unix_now(),
            ..ReloadStatus::default()
        }));

        let (listeners, worker_starts) = Listeners::new(workers);
        let listeners = Arc::new(listeners);
        // Metrics are kept when the admin API, which serves them, is on.
        let metrics = args.admin.map(|_| {
            Arc::new(Metrics::with_collector(GatewayCollector {
                runtime: runtime.clone(),
                current: current.clone(),
                status: status.clone(),
            }))
        });
        let admin = match args.admin {
            Some(address) => {
                let listener = crate::admin::bind(address)
                    .await
                    .with_context(|| format!("binding the admin API on {address}"))?;
                let bound = listener.local_addr()?;
                tokio::spawn(
                    Admin {
                        current: current.clone(),
                        status: status.clone(),
                        metrics: metrics.clone(),
                        listeners: listeners.clone(),
                    }
                    .serve(listener),
                );
                Some(bound)
            }
            None => None,
        };

        let (triggers, reloads) = mpsc::unbounded_channel();
        let on_hangup = triggers.clone();
        tokio::spawn(async move {
            let Ok(mut hangup) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            else {
                return;
            };
            while hangup.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading");
                let _ = on_hangup.send(());
            }
        });
        let reloader = Reloader {
            config_path: args.config.clone(),
            runtime,
            current: current.clone(),
            status,
            listeners: listeners.clone(),
        };
        reloader.start(triggers, reloads);

        let (stop, stopped) = watch::channel(false);
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutting down");
            let _ = stop.send(true);
        });
        let log = match args.access_log.0 {
            Some(destination) => Some(
                AccessLog::start(destination, args.access_log_format)
                    .context("opening the access log")?,
            ),
            None => None,
        };
        #[cfg(feature = "otel")]
        let spans = match &args.otlp_endpoint {
            Some(endpoint) => Some(
                crate::proxy::spans::Spans::new(endpoint)
                    .with_context(|| format!("setting up span export to {endpoint}"))?,
            ),
            None => None,
        };
        #[cfg(feature = "otel")]
        let traced = spans.is_some();
        #[cfg(not(feature = "otel"))]
        let traced = false;
        // Telemetry lives as long as the process: requests borrow it without touching a
        // shared reference count.
        let telemetry: Option<&'static Telemetry> = (log.is_some() || metrics.is_some() || traced)
            .then(|| {
                // The request clock calibrates itself (about a millisecond) on first use:
                // not on the first request.
                crate::proxy::access_log::Instant::now();
                &*Box::leak(Box::new(Telemetry {
                    log,
                    metrics,
                    #[cfg(feature = "otel")]
                    spans,
                }))
            });
        let served = crate::server::serve(
            current,
            &listeners,
            worker_starts,
            stopped,
            admin,
            telemetry,
            Limits {
                path_normalization: args.path_normalization,
                header_timeout: args.header_timeout,
                idle_timeout: args.idle_timeout,
                max_connections: args.max_connections,
                max_connections_per_client: args.max_connections_per_client,
                drain_timeout: args.drain_timeout,
            },
        )
        .await;
        if let Some(log) = telemetry.and_then(|t| t.log.as_ref()) {
            log.close();
        }
        #[cfg(feature = "otel")]
        if let Some(spans) = telemetry.and_then(|t| t.spans.as_ref()) {
            spans.shutdown();
        }
        served
    })
}

/// Builds a generation of `config` the way `run` and reloads do (components compiled
/// and configured, TLS files read), and drops it.
fn build_once(
    config: ResolvedConfig,
    policy_dir: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    control_thread()?.block_on(async {
        let runtime = gateway_runtime(cache_dir, None, policy_dir, 1)?;
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
/// `cache_dir`, by default ~/.cache/portcullis), the DNS resolver (asking `dns_server`
/// when given), the policy overrides in `policy_dir`, and the number of workers.
fn gateway_runtime(
    cache_dir: Option<PathBuf>,
    dns_server: Option<std::net::SocketAddr>,
    policy_dir: Option<PathBuf>,
    workers: usize,
) -> anyhow::Result<Runtime> {
    let dns = Dns::new(dns_server).context("setting up the DNS resolver")?;
    let wasm = WasmEngine::new(cache_dir.or_else(default_cache_dir))?;
    Ok(Runtime::new(wasm, Arc::new(dns), policy_dir, workers))
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

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

/// Loads the config, printing warnings and errors to stderr.
fn load(path: &Path) -> Option<Loaded> {
    match config::load(path) {
        Ok(loaded) => {
            for warning in loaded.warnings.warnings() {
                eprintln!("{warning}");
            }
            Some(loaded)
        }
        Err(error) => {
            for warning in error.0.warnings() {
                eprintln!("{warning}");
            }
            let count = error.0.errors().count();
            eprintln!("{error}");
            eprintln!(
                "{}: {count} error{}",
                path.display(),
                if count == 1 { "" } else { "s" }
            );
            None
        }
    }
}

/// One line about what a config serves.
fn summary(config: &ResolvedConfig) -> String {
    let routes: usize = config
        .listeners
        .iter()
        .flat_map(|l| &l.route_tables)
        .flat_map(|t| &t.virtual_hosts)
        .map(|v| v.routes.len())
        .sum();
    format!(
        "{} listener{}, {routes} route{}, {} cluster{}, {} plugin{}",
        config.listeners.len(),
        plural(config.listeners.len()),
        plural(routes),
        config.clusters.len(),
        plural(config.clusters.len()),
        config.plugins.len(),
        plural(config.plugins.len()),
    )
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
