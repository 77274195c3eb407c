//! The command line: `portcullis run`, `portcullis validate` and `portcullis plugin new`,
//! parsed into what [`crate::app`] runs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::app::{self, Components, Options};
use crate::config::{self, Loaded, ResolvedConfig};
use crate::scaffold::{self, Language};
use crate::server::limits::Limits;
use crate::telemetry::access_log::{Destination, Format};

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
        #[command(flatten)]
        components: ComponentArgs,
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

/// Where the components come from: shared by `run` and `validate`.
#[derive(Debug, Args)]
struct ComponentArgs {
    /// A folder whose route-match.wasm, destination.wasm, endpoint.wasm, fault.wasm,
    /// retry.wasm, breaker.wasm or outlier.wasm replace the built-in policies.
    #[arg(long, env = "PORTCULLIS_POLICY_DIR")]
    policy_dir: Option<PathBuf>,
    /// Where compiled components are cached (default: ~/.cache/portcullis).
    #[arg(long, env = "PORTCULLIS_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
}

impl From<ComponentArgs> for Components {
    fn from(args: ComponentArgs) -> Self {
        Self {
            policy_dir: args.policy_dir,
            cache_dir: args.cache_dir,
        }
    }
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The config file.
    #[arg(short, long, default_value = "gateway.yaml")]
    config: PathBuf,
    #[command(flatten)]
    components: ComponentArgs,
    /// Worker threads serving connections (default: one per core).
    #[arg(long)]
    workers: Option<usize>,
    /// Serve the admin API (the dashboard at /, /ready, /metrics, /config_dump,
    /// /reloads, /listeners, /routes, /clusters, /plugins) on this address, e.g.
    /// 127.0.0.1:15000. Off by default; keep it on loopback.
    #[arg(long)]
    admin: Option<std::net::SocketAddr>,
    /// Serve Istio's gateway health check, `/healthz/ready` (200 while serving, 503 once
    /// draining), alone on this address, e.g. 0.0.0.0:15021.
    #[arg(long)]
    health: Option<std::net::SocketAddr>,
    /// Seamless upgrades: take over the listening sockets of the gateway serving at this
    /// Unix socket path, if one does, then offer them there to the next one. Start the new
    /// binary with the same path; once it prints its ready line, send the old one SIGTERM.
    #[arg(long, env = "PORTCULLIS_UPGRADE_SOCKET")]
    upgrade_socket: Option<PathBuf>,
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
    /// How often the key sets of RequestAuthentications' `jwksUri`s are fetched again
    /// (istiod's PILOT_JWT_PUB_KEY_REFRESH_INTERVAL); a change reloads the config.
    #[arg(long, default_value = "20m", value_parser = parse_duration)]
    jwks_refresh: Duration,
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

/// One line per Gateway API listener and route parent: the conditions Kubernetes would
/// write on their status.
fn conditions(status: &config::resolved::GatewayApiStatus) -> Vec<String> {
    let joined = |conditions: &[config::resolved::Condition]| {
        conditions
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let gateways = status
        .gateways
        .iter()
        .map(|g| format!("Gateway {}: {}", g.gateway, joined(&g.conditions)));
    let listeners = status.gateways.iter().flat_map(|g| {
        g.listeners.iter().map(move |l| {
            let (name, conditions) = (&l.name, joined(&l.conditions));
            let attached = l.attached_routes;
            format!(
                "Gateway {} listener {name}: {conditions}, attachedRoutes={attached}",
                g.gateway
            )
        })
    });
    let routes = status.routes.iter().map(|r| {
        format!(
            "{} {} on {}: {}",
            r.kind,
            r.route,
            r.parent,
            joined(&r.conditions)
        )
    });
    gateways.chain(listeners).chain(routes).collect()
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    config::model::common::Duration::parse(text).map(|d| d.0)
}

impl Cli {
    /// Runs the command.
    pub fn run(self) -> ExitCode {
        match self.command {
            Command::Validate { config, components } => {
                let Some(loaded) = load(&config) else {
                    return ExitCode::FAILURE;
                };
                let summary = summary(&loaded.config);
                let conditions = conditions(&loaded.config.gateway_api);
                match app::build_once(loaded.config, components.into()) {
                    Ok(()) => {
                        println!("{}: valid ({summary})", config.display());
                        for line in conditions {
                            println!("  {line}");
                        }
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
                match app::run(args.into_options(), loaded.config) {
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

impl RunArgs {
    fn into_options(self) -> Options {
        Options {
            config: self.config,
            components: self.components.into(),
            workers: self.workers,
            admin: self.admin,
            health: self.health,
            upgrade_socket: self.upgrade_socket,
            access_log: self.access_log.0.map(|to| (to, self.access_log_format)),
            dns_server: self.dns_server,
            #[cfg(feature = "otel")]
            otlp_endpoint: self.otlp_endpoint,
            jwks_refresh: self.jwks_refresh,
            limits: Limits {
                path_normalization: self.path_normalization,
                header_timeout: self.header_timeout,
                idle_timeout: self.idle_timeout,
                max_connections: self.max_connections,
                max_connections_per_client: self.max_connections_per_client,
                drain_timeout: self.drain_timeout,
            },
        }
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
