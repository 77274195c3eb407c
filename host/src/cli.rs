//! The command line: `portcullis run` and `portcullis validate`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{self, Loaded, ResolvedConfig};

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
    Run {
        /// The config file.
        #[arg(short, long, default_value = "gateway.yaml")]
        config: PathBuf,
    },
    /// Check a config file and print every error; exit 0 when it is valid.
    Validate {
        /// The config file.
        #[arg(short, long, default_value = "gateway.yaml")]
        config: PathBuf,
    },
}

impl Cli {
    /// Runs the command.
    pub fn run(self) -> ExitCode {
        match self.command {
            Command::Validate { config } => match load(&config) {
                Some(loaded) => {
                    println!("{}: valid ({})", config.display(), summary(&loaded.config));
                    ExitCode::SUCCESS
                }
                None => ExitCode::FAILURE,
            },
            Command::Run { config } => match load(&config) {
                Some(loaded) => {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&loaded.config).expect("config serializes")
                    );
                    ExitCode::SUCCESS
                }
                None => ExitCode::FAILURE,
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
