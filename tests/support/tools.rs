//! Tools the tests install once into `target/tools`, pinned: the example plugins'
//! tool-chains (`examples`) and the Kubernetes schema validator.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Where the tools are installed.
pub fn tools() -> PathBuf {
    repo().join("target/tools")
}

/// Runs `command`, panicking with its output unless it succeeds.
pub fn run(command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `kubernetes-validate` (from PyPI, pinned in `deploy/kubernetes/requirements.txt`),
/// which checks manifests against Kubernetes's schemas offline; installed once.
pub fn kubernetes_validate() -> PathBuf {
    let venv = tools().join("kubernetes-validate");
    let bin = venv.join("bin/kubernetes-validate");
    if !bin.exists() {
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv));
        run(Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "-r"])
            .arg(repo().join("deploy/kubernetes/requirements.txt")));
    }
    bin
}
