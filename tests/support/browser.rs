//! Headless Chromium (Debian's `chromium`) as a test client: it loads a page, runs its
//! scripts, and gives back the rendered DOM and a screenshot.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The Chromium binary, if this machine has one. Outside CI a test without it says so
/// and is skipped; in CI (where `.ci/run` installs it) its absence fails the test.
pub fn chromium() -> Option<PathBuf> {
    let found = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find_map(which);
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is missing (apt-get install chromium)"
        );
        eprintln!("skipped: chromium is missing (apt-get install chromium)");
    }
    found
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(name))
        .find(|path| path.is_file())
}

/// Runs `chromium` headless on `url` with `args`, its scripts given `budget_ms` of
/// virtual time; returns what it printed.
fn headless(chromium: &Path, url: &str, budget_ms: u32, args: &[&str]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let output = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--virtual-time-budget={budget_ms}"))
        .args(args)
        .arg(url)
        .output()
        .expect("chromium runs");
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The DOM of `url` once its scripts have run for `budget_ms` (virtual time).
pub fn dom(chromium: &Path, url: &str, budget_ms: u32) -> String {
    headless(chromium, url, budget_ms, &["--dump-dom"])
}

/// A `width`×`height` screenshot of `url`, written to `to`.
pub fn screenshot(chromium: &Path, url: &str, budget_ms: u32, to: &Path, size: (u32, u32)) {
    let window = format!("--window-size={},{}", size.0, size.1);
    let target = format!("--screenshot={}", to.display());
    headless(chromium, url, budget_ms, &[&window, &target]);
    assert!(to.is_file(), "no screenshot at {}", to.display());
}
