//! The JavaScript and Python example plugins, built for the tests with their pinned
//! tool-chains (componentize-js from npm, componentize-py from PyPI), which are installed
//! once into `target/tools`. Needs `npm` and `python3` (with venv). Both stay on the
//! frozen `portcullis:policy@0.1.0` (`wit/v0.1.0`), proving that filters built for it
//! still load.

use std::path::PathBuf;
use std::process::Command;

use super::tools::{repo, run, tools};

/// Builds `plugins/examples/js-canary` into `target/tools`; returns the component.
pub fn js_canary() -> PathBuf {
    let example = repo().join("plugins/examples/js-canary");
    let node = tools().join("js-canary");
    let bin = node.join("node_modules/.bin/componentize-js");
    if !bin.exists() {
        std::fs::create_dir_all(&node).unwrap();
        for file in ["package.json", "package-lock.json"] {
            std::fs::copy(example.join(file), node.join(file)).unwrap();
        }
        run(Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--ignore-scripts"])
            .current_dir(&node));
    }
    let wasm = node.join("js_canary.wasm");
    run(Command::new(bin)
        .arg(example.join("canary.js"))
        .arg("--wit")
        .arg(repo().join("wit/v0.1.0"))
        .args([
            "--world-name",
            "plugin",
            "--disable",
            "http",
            "fetch-event",
            "-o",
        ])
        .arg(&wasm));
    wasm
}

/// Builds `plugins/examples/python-api-key` into `target/tools`; returns the component.
pub fn python_api_key() -> PathBuf {
    let example = repo().join("plugins/examples/python-api-key");
    let venv = tools().join("python");
    let bin = venv.join("bin/componentize-py");
    if !bin.exists() {
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv));
        run(Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "-r"])
            .arg(example.join("requirements.txt")));
    }
    let wasm = tools().join("python_api_key.wasm");
    run(Command::new(bin)
        .arg("-d")
        .arg(repo().join("wit/v0.1.0"))
        .args(["-w", "plugin", "componentize", "app", "-o"])
        .arg(&wasm)
        .current_dir(&example));
    wasm
}
