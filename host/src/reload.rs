//! Hot reload: a change to the config file, a plugin, a policy override or a certificate
//! (or SIGHUP) builds a complete new generation aside, then swaps it in atomically.
//! Anything invalid leaves the running generation serving and is reported.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use notify::{RecursiveMode, Watcher as _};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::config::{self, ResolvedConfig};
use crate::runtime::{Generation, Runtime};
use crate::server::listeners::{Listeners, Prepared};
use crate::wasm::builtin;

/// Bursts of file events within this window make one reload.
const DEBOUNCE: Duration = Duration::from_millis(50);

/// What the admin API shows of reloads.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReloadStatus {
    /// Number of the generation serving now (1 at start).
    pub generation: u64,
    /// Successful reloads.
    pub reloads: u64,
    /// Failed reloads.
    pub failures: u64,
    /// Why the last reload failed, if it did.
    pub last_error: Option<String>,
    /// When the reload under way started (seconds since the Unix epoch), if one is.
    pub reloading_since: Option<u64>,
    /// When the serving generation was loaded (seconds since the Unix epoch).
    pub loaded_at: u64,
    /// The last [`HISTORY`] reloads, newest first.
    pub history: VecDeque<Reload>,
}

/// How many reloads [`ReloadStatus::history`] keeps.
pub const HISTORY: usize = 20;

/// One reload, as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Reload {
    /// When it ended (seconds since the Unix epoch).
    pub at: u64,
    /// The generation serving after it.
    pub generation: u64,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// `success` (swapped in) or `failure` (the previous generation still serves).
    pub result: &'static str,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

impl ReloadStatus {
    /// Counts a reload that ended with `error` (`None`: swapped in).
    fn record(&mut self, error: Option<String>, took: Duration) {
        self.reloading_since = None;
        self.reloads += 1;
        match &error {
            None => {
                self.generation += 1;
                self.loaded_at = unix_now();
            }
            Some(_) => self.failures += 1,
        }
        self.history.truncate(HISTORY - 1);
        self.history.push_front(Reload {
            at: unix_now(),
            generation: self.generation,
            duration_ms: took.as_millis() as u64,
            result: if error.is_none() {
                "success"
            } else {
                "failure"
            },
            error: error.clone(),
        });
        self.last_error = error;
    }
}

/// The longest a reload may take to build its generation (components compile, then
/// configure within their own deadlines).
const RELOAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Rebuilds and swaps generations.
pub struct Reloader {
    /// The config file watched and reloaded.
    pub config_path: PathBuf,
    /// The process-wide state generations share.
    pub runtime: Arc<Runtime>,
    /// The generation serving now, swapped on success.
    pub current: Arc<ArcSwap<Generation>>,
    /// Reload counts and history.
    pub status: Arc<Mutex<ReloadStatus>>,
    /// Started and stopped as the listeners in the config change.
    pub listeners: Arc<Listeners>,
}

impl Reloader {
    /// Starts watching now (before the gateway says it is ready, so that no change is
    /// missed), then reloads on every file event or `triggers` message. Events are watched
    /// in the folders of every file the config uses, so that rename-on-save and Kubernetes
    /// ConfigMap symlink swaps are seen.
    pub fn start(
        self,
        triggers: mpsc::UnboundedSender<()>,
        mut receiver: mpsc::UnboundedReceiver<()>,
    ) {
        let relevant: Arc<Mutex<Vec<std::ffi::OsString>>> = Arc::default();
        let names = relevant.clone();
        let mut watcher =
            match notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let Ok(event) = event else { return };
                let names = names
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                // Only the files the config uses, and ConfigMap internals (`..data`, `..2024_…`).
                let touches = event
                    .paths
                    .iter()
                    .filter_map(|p| p.file_name())
                    .any(|name| {
                        names.contains(&name.to_os_string())
                            || name.to_string_lossy().starts_with("..")
                    });
                if touches && !event.kind.is_access() {
                    let _ = triggers.send(());
                }
            }) {
                Ok(watcher) => Some(watcher),
                Err(e) => {
                    tracing::warn!("cannot watch files; reload with SIGHUP: {e}");
                    None
                }
            };
        let mut watched: Vec<PathBuf> = Vec::new();
        let mut rewatch = move |reloader: &Self| {
            let (folders, names) = watched_paths(
                &reloader.config_path,
                reloader.runtime.policy_dir.as_deref(),
                &reloader.current.load().config,
            );
            *relevant
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = names;
            let Some(watcher) = watcher.as_mut() else {
                return;
            };
            for folder in folders {
                if watched.contains(&folder) {
                    continue;
                }
                match watcher.watch(&folder, RecursiveMode::NonRecursive) {
                    Ok(()) => watched.push(folder),
                    Err(e) => tracing::warn!(folder = %folder.display(), "cannot watch: {e}"),
                }
            }
        };
        rewatch(&self);
        tokio::spawn(async move {
            while receiver.recv().await.is_some() {
                tokio::time::sleep(DEBOUNCE).await;
                while receiver.try_recv().is_ok() {}
                self.reload().await;
                rewatch(&self);
            }
        });
    }

    /// Loads the config again and swaps the new generation in, or reports why not. A
    /// build that takes longer than [`RELOAD_TIMEOUT`] is given up.
    pub async fn reload(&self) {
        let started = std::time::Instant::now();
        self.status().reloading_since = Some(unix_now());
        let result = match tokio::time::timeout(RELOAD_TIMEOUT, self.build()).await {
            Ok(result) => result,
            Err(_) => Err(format!(
                "the reload took longer than {RELOAD_TIMEOUT:?}; given up"
            )),
        };
        let mut status = self.status();
        match result {
            Ok((generation, listeners)) => {
                self.current.store(Arc::new(generation));
                for (id, address) in self.listeners.commit(listeners) {
                    tracing::info!(%address, listener = %id, "listening");
                }
                status.record(None, started.elapsed());
                tracing::info!(
                    generation = status.generation,
                    "config reloaded in {:?}",
                    started.elapsed()
                );
            }
            Err(error) => {
                tracing::warn!("reload failed, the running config keeps serving:\n{error}");
                status.record(Some(error), started.elapsed());
            }
        }
    }

    fn status(&self) -> std::sync::MutexGuard<'_, ReloadStatus> {
        self.status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The new generation, with the listeners it adds already bound.
    async fn build(&self) -> Result<(Generation, Prepared), String> {
        let loaded = config::load(&self.config_path).map_err(|e| e.to_string())?;
        let generation = Generation::build(loaded.config, &self.runtime)
            .await
            .map_err(|e| format!("{e:#}"))?;
        let listeners = self
            .listeners
            .prepare(&generation.config.listeners)
            .map_err(|e| format!("{e:#}"))?;
        Ok((generation, listeners))
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The folders holding the config file, every file it names and every policy override
/// (present or not: a new override is a change), and those files' names. They are re-read
/// after every reload, so a ConfigMap swap that moves the real files is followed.
fn watched_paths(
    config_path: &Path,
    policy_dir: Option<&Path>,
    config: &ResolvedConfig,
) -> (Vec<PathBuf>, Vec<std::ffi::OsString>) {
    let mut files: Vec<PathBuf> = vec![config_path.to_path_buf()];
    if let Some(dir) = policy_dir {
        files.extend(builtin::ALL.iter().map(|b| b.override_in(dir)));
    }
    files.extend(
        config
            .plugins
            .iter()
            .filter_map(|p| p.source.file().cloned()),
    );
    files.extend(crate::runtime::jwks::files(config));
    for server in config.listeners.iter().flat_map(|l| &l.servers) {
        if let Some(tls) = &server.tls {
            for certificate in &tls.certificates {
                files.push(certificate.certificate_chain.clone());
                files.push(certificate.private_key.clone());
            }
            files.extend(tls.ca_certificates.clone());
        }
    }
    // Each file's folder as named, and the folder it really lives in behind symlinks.
    let real = files
        .iter()
        .filter_map(|f| std::fs::canonicalize(f).ok())
        .collect::<Vec<_>>();
    let mut folders: Vec<PathBuf> = files
        .iter()
        .chain(&real)
        .map(|f| match f.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        })
        .collect();
    folders.sort();
    folders.dedup();
    let names = files
        .iter()
        .chain(&real)
        .filter_map(|f| f.file_name())
        .map(std::ffi::OsStr::to_os_string)
        .collect();
    (folders, names)
}
