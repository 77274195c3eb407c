//! The crate reads bottom-up: each top-level module of `host/src` uses only the modules
//! of the layers below its own, so no change has to touch a cycle.

use std::collections::BTreeSet;
use std::path::Path;

/// The top-level modules, from the bottom layer up; a module may use those of lower
/// layers only.
const LAYERS: &[&[&str]] = &[
    &["wire", "interner", "registry", "tls", "scaffold"],
    &["config"],
    &["wasm"],
    &["upstream"],
    &["runtime"],
    &["telemetry"],
    &["proxy"],
    &["server"],
    &["reload"],
    &["admin"],
    &["app"],
    &["cli"],
];

fn layer(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|layer| layer.contains(&module))
        .unwrap_or_else(|| panic!("module {module} is in no layer of tests/layers.rs"))
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn top_level_modules_use_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let used = regex::Regex::new(r"crate::([a-z_]+)").unwrap();
    let mut upward = BTreeSet::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let first = relative.components().next().unwrap().as_os_str();
        let module = first.to_str().unwrap().trim_end_matches(".rs");
        if matches!(module, "lib" | "main") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        // Unit tests may reach anywhere.
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
        for used in used.captures_iter(code).map(|c| c[1].to_string()) {
            if used != module && layer(&used) >= layer(module) {
                upward.insert(format!("{} uses crate::{used}", relative.display()));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "uses of the same or a higher layer:\n{upward:#?}"
    );
}
