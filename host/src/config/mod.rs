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

use std::path::Path;

pub use diag::{ConfigError, Diagnostic, Diagnostics, Severity};
pub use resolve::host_covers;
pub use resolved::ResolvedConfig;

/// A loaded config and the warnings found while loading it.
#[derive(Debug)]
pub struct Loaded {
    pub config: ResolvedConfig,
    pub warnings: Diagnostics,
}

/// Reads, checks and resolves the config file at `path`.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        let mut reporter = diag::Reporter::new(&file, Vec::new());
        reporter.file_error(
            source::Position { line: 1, column: 1 },
            format!("cannot read config: {e}"),
        );
        ConfigError(reporter.finish())
    })?;
    let base_dir = path.parent().unwrap_or(Path::new(""));
    load_str(&file, &text, base_dir)
}

/// Checks and resolves config `text`, naming it `file` in diagnostics and resolving
/// relative paths against `base_dir`.
pub fn load_str(file: &str, text: &str, base_dir: &Path) -> Result<Loaded, ConfigError> {
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
    let config = resolve::resolve(&resources, &resolve::Context { base_dir }, &mut reporter);
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
