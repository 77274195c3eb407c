//! What both benchmarks need: the end-to-end tests' YAML builders, and a generation built
//! from a config with the components the tests compiled.

use std::path::Path;
use std::sync::Arc;

use portcullis::runtime::{Generation, Runtime};
use portcullis::upstream::dns::Dns;
use portcullis::wasm::WasmEngine;

/// The YAML pieces of the end-to-end tests' configs.
#[allow(dead_code)] // each benchmark uses a few of them
#[path = "../tests/support/config.rs"]
pub mod config;

/// `yaml` loaded and built into a generation on `rt`, compiling components into (or
/// reading them from) the tests' cache; the [`Runtime`] returned must outlive it.
pub fn generation(yaml: &str, rt: &tokio::runtime::Runtime) -> (Runtime, Generation) {
    let config = portcullis::config::load_str("bench.yaml", yaml, Path::new("."))
        .expect("valid config")
        .config;
    let cache = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-component-cache");
    let runtime = Runtime::new(
        WasmEngine::new(Some(cache)).unwrap(),
        Arc::new(Dns::new(None).unwrap()),
        None,
        1,
    );
    let generation = rt.block_on(Generation::build(config, &runtime)).unwrap();
    (runtime, generation)
}
