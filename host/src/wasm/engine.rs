//! The wasmtime engine: pooling allocation, epoch-based CPU limits, a linker that grants
//! no WASI capability, and compilation cached on disk by content hash.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::bindings::{Imports, v0_1};
use super::limits::EPOCH_TICK;
use super::state::PolicyState;
use crate::config::resolved::PluginLimits;

/// Linear memory a pooled instance may reach at most (each instance's own limit, 64 MiB
/// by default, is lower).
const MAX_MEMORY: usize = PluginLimits::MAX_MEMORY;

/// A configured engine and the linker every policy is instantiated with.
pub struct WasmEngine {
    engine: Engine,
    linker: Linker<PolicyState>,
    cache_dir: Option<PathBuf>,
}

impl WasmEngine {
    /// An engine whose compiled components are cached in `cache_dir` (if any).
    pub fn new(cache_dir: Option<PathBuf>) -> anyhow::Result<Self> {
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(1000)
            .total_core_instances(4000)
            .max_core_instances_per_component(64)
            .total_memories(1000)
            .max_memories_per_component(8)
            .total_tables(4000)
            .max_tables_per_component(32)
            .total_stacks(1000)
            .max_memory_size(MAX_MEMORY);
        let mut config = Config::new();
        config
            .epoch_interruption(true)
            .parallel_compilation(true)
            .memory_reservation(MAX_MEMORY as u64)
            .memory_guard_size(32 << 20)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config)
            .map_err(anyhow::Error::from)
            .context("creating the wasmtime engine")?;
        spawn_epoch_ticker(&engine);

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(anyhow::Error::from)
            .context("linking WASI")?;
        Imports::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
            .map_err(anyhow::Error::from)
            .context("linking the policy imports")?;
        v0_1::Imports::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
            .map_err(anyhow::Error::from)
            .context("linking the 0.1.0 policy imports")?;
        if let Some(dir) = &cache_dir
            && let Err(e) = std::fs::create_dir_all(dir)
        {
            tracing::warn!(dir = %dir.display(), "cannot create the component cache, compiling every time: {e}");
        }
        Ok(Self {
            engine,
            linker,
            cache_dir,
        })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The linker with every import a policy may use.
    pub fn linker(&self) -> &Linker<PolicyState> {
        &self.linker
    }

    /// Compiles a component on a blocking thread, or loads it from the cache.
    pub async fn compile(&self, name: &str, bytes: Vec<u8>) -> anyhow::Result<Component> {
        let engine = self.engine.clone();
        let cached = self
            .cache_dir
            .as_ref()
            .map(|dir| dir.join(cache_key(&engine, &bytes)));
        let name = name.to_string();
        tokio::task::spawn_blocking(move || compile_cached(&engine, &bytes, cached.as_deref()))
            .await
            .context("the compiling thread panicked")?
            .with_context(|| format!("compiling component {name}"))
    }
}

/// `<sha256 of the component>-<engine compatibility hash>.cwasm`
fn cache_key(engine: &Engine, bytes: &[u8]) -> String {
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!(
        "{}-{:016x}.cwasm",
        hex::encode(Sha256::digest(bytes)),
        hasher.finish()
    )
}

#[allow(unsafe_code)] // Deserializing compiled code: see the SAFETY notes.
fn compile_cached(
    engine: &Engine,
    bytes: &[u8],
    cached: Option<&Path>,
) -> anyhow::Result<Component> {
    if let Some(path) = cached.filter(|p| p.exists()) {
        // SAFETY: the file was written by `precompile_component` of an engine with the same
        // compatibility hash (it is in the name), into a cache folder only this program writes.
        match unsafe { Component::deserialize_file(engine, path) } {
            Ok(component) => return Ok(component),
            Err(e) => {
                tracing::warn!(path = %path.display(), "ignoring a bad cached component: {e:#}");
            }
        }
    }
    let compiled = engine.precompile_component(bytes);
    release_compiler_memory();
    let compiled = compiled?;
    if let Some(path) = cached
        && store(path, &compiled)
    {
        // Loaded from the file, the code is mapped rather than copied: its pages are the
        // page cache's, and only those that run are resident.
        // SAFETY: the file now holds `compiled`, just produced by this engine.
        if let Ok(component) = unsafe { Component::deserialize_file(engine, path) } {
            return Ok(component);
        }
    }
    // SAFETY: `compiled` was just produced by `precompile_component` of this engine.
    Ok(unsafe { Component::deserialize(engine, &compiled) }?)
}

/// Writes `compiled` to the cache at `path` (through a temporary file, so that no reader
/// sees half of it); returns whether it is there.
fn store(path: &Path, compiled: &[u8]) -> bool {
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    let stored =
        std::fs::write(&temporary, compiled).and_then(|()| std::fs::rename(&temporary, path));
    if stored.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    stored.is_ok()
}

/// Hands back to the system the memory the compiler freed: mimalloc keeps each thread's
/// freed pages for its reuse, and the compiling threads (wasmtime's rayon pool and this
/// blocking thread) sit idle once the gateway serves. Without this, a start with no
/// cached components idles 35 MiB higher on the default config.
#[allow(unsafe_code)] // An FFI call: see the SAFETY note.
fn release_compiler_memory() {
    // SAFETY: `mi_collect` only frees what mimalloc holds for the calling thread and nobody
    // uses; it is safe to call whether or not mimalloc is the global allocator.
    let collect = || unsafe { libmimalloc_sys::mi_collect(true) };
    rayon::broadcast(|_| collect());
    collect();
}

/// Advances the engine's epoch every tick for as long as the engine lives.
fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("wasm-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning the epoch thread");
}
