//! Builds the policy components in `plugins/` for wasm32-wasip2, so that the built-in
//! ones can be embedded in the binary and the tests find their fixtures.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap();
    let plugins = root.join("plugins");
    for watched in [
        "wit",
        "plugins/Cargo.toml",
        "plugins/Cargo.lock",
        "plugins/sdk",
        "plugins/builtin",
        "plugins/testing",
        "plugins/examples",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }

    // A target folder of its own: the outer cargo holds the lock on the host's.
    let target_dir = std::env::var_os("PORTCULLIS_PLUGINS_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target").join("plugins"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .current_dir(&plugins)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(&target_dir);
    // The outer build's settings are for the host, not for the guests.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("CARGO_") && key != "CARGO_HOME"
            || key == "RUSTFLAGS"
            || key == "RUSTC_WORKSPACE_WRAPPER"
        {
            build.env_remove(key);
        }
    }
    let status = build.status().expect("cargo runs to build the plugins");
    assert!(
        status.success(),
        "building the policy components in plugins/ failed"
    );

    let out = target_dir.join("wasm32-wasip2").join("release");
    println!("cargo:rustc-env=PORTCULLIS_PLUGINS_DIR={}", out.display());
}
