//! The real `portcullis` binary, started on a config written by the test.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

/// How long a gateway may take to print its ready line (compiling the policies included).
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// A running gateway, stopped when dropped.
pub struct Gateway {
    child: Child,
    listeners: Vec<(Vec<String>, SocketAddr)>,
    /// The admin API's address, when started with `--admin`.
    pub admin: Option<SocketAddr>,
    /// The ready line it printed.
    pub ready: serde_json::Value,
    pub dir: tempfile::TempDir,
    /// Every line the gateway wrote to stderr so far.
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Gateway {
    /// Starts `portcullis run` on `config`.
    pub fn start(config: &str) -> Self {
        Self::start_with(config, |_| {})
    }

    /// Starts `portcullis run` on `config`, after `customize` adjusts the command.
    pub fn start_with(config: &str, customize: impl FnOnce(&mut Command)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("gateway.yaml"), config).unwrap();
        Self::launch(dir, "gateway.yaml", customize)
    }

    /// Starts `portcullis run -c <file>` in `dir`, where the test prepared the config.
    pub fn launch(
        dir: tempfile::TempDir,
        file: &str,
        customize: impl FnOnce(&mut Command),
    ) -> Self {
        let path = dir.path().to_path_buf();
        Self::launch_in(dir, &path, file, customize)
    }

    /// Starts `portcullis run -c <file>` in `shared`, a folder other gateways serve too
    /// (the gateway's own `dir` is then an empty one).
    pub fn launch_shared(
        shared: &std::path::Path,
        file: &str,
        customize: impl FnOnce(&mut Command),
    ) -> Self {
        Self::launch_in(tempfile::tempdir().unwrap(), shared, file, customize)
    }

    fn launch_in(
        dir: tempfile::TempDir,
        config_dir: &std::path::Path,
        file: &str,
        customize: impl FnOnce(&mut Command),
    ) -> Self {
        let mut command = super::portcullis();
        command
            .current_dir(config_dir)
            .args(["run", "-c", file, "--drain-timeout", "2s"])
            .env("PORTCULLIS_CACHE_DIR", super::cache_dir())
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        customize(&mut command);
        let mut child = command.spawn().expect("portcullis starts");

        let stderr = child.stderr.take().unwrap();
        let lines_seen = Arc::<Mutex<Vec<String>>>::default();
        let seen = lines_seen.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[portcullis] {line}");
                seen.lock().unwrap().push(line);
            }
        });
        let (ready, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = ready.send(line);
            }
        });
        let Ok(line) = lines.recv_timeout(READY_TIMEOUT) else {
            let _ = child.kill();
            panic!("portcullis printed no ready line: {:?}", child.wait());
        };
        let ready: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad ready line {line:?}: {e}"));
        assert_eq!(ready["event"], "ready", "{line}");
        let listeners = ready["listeners"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                let servers = l["servers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap().to_string())
                    .collect();
                (servers, l["address"].as_str().unwrap().parse().unwrap())
            })
            .collect();
        let admin = ready["admin"].as_str().map(|a| a.parse().unwrap());
        Self {
            child,
            listeners,
            admin,
            ready,
            dir,
            stderr: lines_seen,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How many lines of the gateway's stderr so far contain `text`.
    pub fn stderr_lines(&self, text: &str) -> usize {
        let lines = self.stderr.lock().unwrap();
        lines.iter().filter(|line| line.contains(text)).count()
    }

    /// The bound address of the listener serving `server` (e.g. `default/gw/http`).
    pub fn addr(&self, server: &str) -> SocketAddr {
        self.listeners
            .iter()
            .find(|(servers, _)| servers.iter().any(|s| s == server))
            .map(|(_, addr)| *addr)
            .unwrap_or_else(|| panic!("no listener serves {server}: {:?}", self.listeners))
    }

    /// Sends a signal (`HUP`, `TERM`…) to the gateway.
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .unwrap();
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
