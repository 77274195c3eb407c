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
    ensure_wasm_target();
    let mut build = Command::new(cargo);
    build
        .current_dir(&plugins)
        .args([
            "build",
            "--release",
            "--target",
            WASM_TARGET,
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

    let out = target_dir.join(WASM_TARGET).join("release");
    println!("cargo:rustc-env=PORTCULLIS_PLUGINS_DIR={}", out.display());
}

/// Adds the `wasm32-wasip2` target when the toolchain lacks it. rustup installs the
/// targets of `rust-toolchain.toml` only with the toolchain, so a machine where the pinned
/// toolchain was already there has none.
fn ensure_wasm_target() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    let Some(sysroot) = sysroot else { return };
    if sysroot.join("lib/rustlib").join(WASM_TARGET).exists() {
        return;
    }
    println!("cargo:warning=adding the {WASM_TARGET} target with rustup");
    let mut add = Command::new("rustup");
    add.args(["target", "add", WASM_TARGET]);
    if let Some(toolchain) = sysroot.file_name() {
        add.arg("--toolchain").arg(toolchain);
    }
    let added = add.status().is_ok_and(|status| status.success());
    assert!(
        added,
        "the {WASM_TARGET} target is missing; run `rustup target add {WASM_TARGET}`"
    );
}

const WASM_TARGET: &str = "wasm32-wasip2";
