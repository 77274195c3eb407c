//! The config front end: Istio-style YAML in, a checked [`ResolvedConfig`] out.
//!
//! `source` reads YAML and remembers where each field is written, `parse` types the
//! documents with `model`, `resolve` checks references and applies Istio's defaults.

pub mod diag;
pub mod model;
mod parse;
mod resolve;
pub mod resolved;
pub mod source;

use std::io::Read;
use std::path::Path;

use sha2::Digest as _;

pub use diag::{ConfigError, Diagnostic, Diagnostics, Severity};
pub use resolve::host_covers;
pub use resolved::ResolvedConfig;

/// A loaded config and the warnings found while loading it.
#[derive(Debug)]
pub struct Loaded {
    /// The resolved config.
    pub config: ResolvedConfig,
    /// What was accepted but is not served whole.
    pub warnings: Diagnostics,
}

/// The largest config file that is read, in bytes.
pub const MAX_CONFIG_BYTES: usize = 16 << 20;

/// The stack that config checking runs on: parsing and checking nest at most
/// [`source::MAX_DEPTH`] levels deep, well within it.
const CHECK_STACK_BYTES: usize = 16 << 20;

/// Reads, checks and resolves the config file at `path`.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let file = path.display().to_string();
    let text = read_bounded(path).map_err(|message| file_error(&file, message))?;
    let base_dir = path.parent().unwrap_or(Path::new(""));
    load_str(&file, &text, base_dir)
}

/// Reads `path` as UTF-8 text of at most [`MAX_CONFIG_BYTES`].
fn read_bounded(path: &Path) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read config: {e}"))?;
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES as u64 + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read config: {e}"))?;
    if text.len() > MAX_CONFIG_BYTES {
        return Err(format!(
            "config is larger than {} MiB",
            MAX_CONFIG_BYTES >> 20
        ));
    }
    Ok(text)
}

fn file_error(file: &str, message: String) -> ConfigError {
    let mut reporter = diag::Reporter::new(file, Vec::new());
    reporter.file_error(source::Position { line: 1, column: 1 }, message);
    ConfigError(reporter.finish())
}

/// Checks and resolves config `text`, naming it `file` in diagnostics and resolving
/// relative paths against `base_dir`. Runs on a thread of its own with a known stack.
pub fn load_str(file: &str, text: &str, base_dir: &Path) -> Result<Loaded, ConfigError> {
    if text.len() > MAX_CONFIG_BYTES {
        let message = format!("config is larger than {} MiB", MAX_CONFIG_BYTES >> 20);
        return Err(file_error(file, message));
    }
    std::thread::scope(|scope| {
        let checker = std::thread::Builder::new()
            .name("config-check".into())
            .stack_size(CHECK_STACK_BYTES)
            .spawn_scoped(scope, || check(file, text, base_dir));
        match checker {
            Ok(checker) => checker.join().unwrap_or_else(|_| {
                Err(file_error(
                    file,
                    "internal error while checking the config".into(),
                ))
            }),
            Err(_) => check(file, text, base_dir),
        }
    })
}

fn check(file: &str, text: &str, base_dir: &Path) -> Result<Loaded, ConfigError> {
    let documents = match source::parse(text) {
        Ok(documents) => documents,
        Err(e) => {
            let mut reporter = diag::Reporter::new(file, Vec::new());
            reporter.file_error(e.position, format!("invalid YAML: {}", e.message));
            return Err(ConfigError(reporter.finish()));
        }
    };
    let mut reporter =
        diag::Reporter::new(file, documents.iter().map(|d| d.marks.clone()).collect());
    let resources = parse::resources(&documents, &mut reporter);
    let mut config = resolve::resolve(&resources, &resolve::Context { base_dir }, &mut reporter);
    config.hash = hex::encode(sha2::Sha256::digest(text.as_bytes()));
    let diagnostics = reporter.finish();
    if diagnostics.has_errors() {
        return Err(ConfigError(diagnostics));
    }
    let mut warnings = Diagnostics::default();
    diagnostics
        .warnings()
        .cloned()
        .for_each(|w| warnings.push(w));
    Ok(Loaded { config, warnings })
}
