//! `portcullis plugin new`: a plugin project in a new folder, ready to build. It carries
//! its own copy of the WIT interface, so it builds outside this repository.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// The languages a project can be made for.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Language {
    /// A Rust component built with wit-bindgen.
    Rust,
}

/// `(path, text)` of each file of the WIT package every plugin is built against.
macro_rules! wit {
    ($($file:literal),* $(,)?) => {
        [$((concat!("wit/", $file), include_str!(concat!("../../wit/", $file)))),*]
    };
}
const WIT: [(&str, &str); 12] = wit!(
    "types.wit",
    "request.wit",
    "host.wit",
    "route-match.wit",
    "destination.wit",
    "endpoint.wit",
    "fault.wit",
    "retry.wit",
    "breaker.wit",
    "outlier.wit",
    "filter.wit",
    "worlds.wit",
);

/// `(path, template)` of each file of a Rust project.
const RUST: [(&str, &str); 3] = [
    (
        "Cargo.toml",
        include_str!("../templates/plugin/rust/Cargo.toml"),
    ),
    (
        "src/lib.rs",
        include_str!("../templates/plugin/rust/src/lib.rs"),
    ),
    (
        "README.md",
        include_str!("../templates/plugin/rust/README.md"),
    ),
];

/// Writes a new `language` project named `name` into `parent/name`; returns its folder.
pub fn new_plugin(language: Language, name: &str, parent: &Path) -> anyhow::Result<PathBuf> {
    let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    anyhow::ensure!(
        valid,
        "{name:?} is not a plugin name: use lowercase letters, digits and '-', starting with a letter"
    );
    let root = parent.join(name);
    anyhow::ensure!(!root.exists(), "{} already exists", root.display());
    let files = match language {
        Language::Rust => RUST,
    };
    let file_stem = name.replace('-', "_");
    for (path, template) in files.iter().chain(&WIT) {
        let target = root.join(path);
        if let Some(folder) = target.parent() {
            std::fs::create_dir_all(folder)
                .with_context(|| format!("creating {}", folder.display()))?;
        }
        let text = template
            .replace("{name}", name)
            .replace("{file}", &file_stem);
        std::fs::write(&target, text).with_context(|| format!("writing {}", target.display()))?;
    }
    Ok(root)
}
