//! Helpers shared by the end-to-end tests: fixtures on disk and the real binary.

pub mod admin;
pub mod browser;
pub mod certs;
pub mod client;
pub mod config;
pub mod dns;
pub mod eventually;
pub mod examples;
pub mod gateway;
pub mod jwt;
pub mod load;
pub mod loopback;
pub mod tls_client;
pub mod tools;
pub mod upstream;
pub mod websocket;

use std::path::Path;
use std::process::{Command, Output};

/// The `portcullis` binary cargo built for these tests.
pub fn portcullis() -> Command {
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
}

/// The component `file` (e.g. `portcullis_hostile_filter.wasm`) as the build compiled it
/// from `plugins/`.
pub fn plugin(file: &str) -> std::path::PathBuf {
    Path::new(env!("PORTCULLIS_PLUGINS_DIR")).join(file)
}

/// Compiled components are cached across test runs here.
pub fn cache_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-component-cache")
}

/// How many cases a property test runs: `default`, or `PORTCULLIS_FUZZ_CASES` for a
/// longer run (`PORTCULLIS_FUZZ_CASES=20000 cargo test --test all hardening::request_fuzz`).
pub fn fuzz_cases(default: u32) -> u32 {
    std::env::var("PORTCULLIS_FUZZ_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(default)
}

/// The lines of the JSON access log at `path` so far (none before the file exists).
pub fn access_log(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Runs `portcullis validate -c FILE` in `dir`.
pub fn validate(dir: &Path, file: &str) -> Output {
    portcullis()
        .current_dir(dir)
        .args(["validate", "-c", file])
        .env("PORTCULLIS_CACHE_DIR", cache_dir())
        .output()
        .expect("portcullis runs")
}
