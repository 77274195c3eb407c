//! `portcullis validate` on the config corpus: Istio's documented examples are valid, and
//! every invalid config fails with exactly the errors in its snapshot.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::support;

/// A folder with every corpus file, generated certificates and plugin files,
/// so that paths in the corpus resolve and messages carry short relative paths.
fn fixture() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        support::certs::write_test_certs(dir.path(), &["ext-host.example.com", "*.example.com"]);
        std::fs::create_dir_all(dir.path().join("plugins")).unwrap();
        // A text file where a plugin that never loads is named, a real component where
        // one does (validate configures it).
        std::fs::write(
            dir.path().join("plugins/tagger.wasm"),
            "portcullis test plugin\n",
        )
        .unwrap();
        let plugin =
            Path::new(env!("PORTCULLIS_PLUGINS_DIR")).join("portcullis_hostile_filter.wasm");
        std::fs::copy(plugin, dir.path().join("plugins/filter.wasm")).unwrap();
        for kind in ["valid", "invalid", "warned"] {
            for entry in std::fs::read_dir(corpus().join(kind)).unwrap() {
                let path = entry.unwrap().path();
                std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
            }
        }
        dir
    })
    .path()
}

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/config")
}

#[test]
fn istio_examples_are_valid() {
    insta::glob!("config/valid/*.yaml", |path| {
        let name = path.file_name().unwrap().to_str().unwrap();
        let output = support::validate(fixture(), name);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{name} is invalid:\n{stderr}");
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.contains(": warning: "))
            .collect();
        assert!(errors.is_empty(), "{name}: unexpected output:\n{stderr}");
        assert!(String::from_utf8_lossy(&output.stdout).contains(": valid ("));
    });
}

#[test]
fn invalid_configs_report_located_errors() {
    insta::glob!("config/invalid/*.yaml", |path| {
        let name = path.file_name().unwrap().to_str().unwrap();
        let output = support::validate(fixture(), name);
        assert_eq!(output.status.code(), Some(1), "{name} should be rejected");
        assert!(output.stdout.is_empty());
        insta::assert_snapshot!(String::from_utf8_lossy(&output.stderr));
    });
}

#[test]
fn valid_istio_that_is_not_served_whole_warns_with_located_messages() {
    insta::glob!("config/warned/*.yaml", |path| {
        let name = path.file_name().unwrap().to_str().unwrap();
        let output = support::validate(fixture(), name);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{name} should be valid:\n{stderr}");
        assert!(!stderr.is_empty(), "{name} should warn");
        insta::assert_snapshot!(stderr);
    });
}

#[test]
fn the_default_gateway_yaml_is_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let output = support::validate(&root, "gateway.yaml");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn run_refuses_an_invalid_config_with_the_same_errors() {
    let validate = support::validate(fixture(), "unknown-subset.yaml");
    let run = support::portcullis()
        .current_dir(fixture())
        .args(["run", "-c", "unknown-subset.yaml"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    assert_eq!(run.stderr, validate.stderr);
}

#[test]
fn a_missing_config_file_is_an_error() {
    let output = support::validate(fixture(), "no-such-file.yaml");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("no-such-file.yaml:1:1: cannot read config:"),
        "{stderr}"
    );
}

#[test]
fn accepted_but_unenforced_fields_warn_with_their_path() {
    let dir = tempfile::tempdir().unwrap();
    let config = "apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: [\"*\"]
    tls: {httpsRedirect: false, cipherSuites: [ECDHE-RSA-AES128-GCM-SHA256]}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: svc}
spec:
  hosts: [svc.example.com]
  location: MESH_EXTERNAL
  subjectAltNames: [spiffe://x]
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints:
  - {address: 127.0.0.1, locality: us/east, network: n1}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: svc}
spec:
  host: svc.example.com
  trafficPolicy:
    retryBudget: {percent: 20}
    loadBalancer:
      consistentHash:
        httpCookie: {name: affinity, ttl: 10s}
        ringHash: {minimumRingSize: 1024}
    outlierDetection: {consecutive5xxErrors: 3, interval: 5s}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: grpc}
spec:
  hosts: [grpc.example.com]
  resolution: STATIC
  ports: [{number: 50051, name: grpc, protocol: GRPC}]
  endpoints: [{address: 127.0.0.1}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: grpc}
spec:
  host: grpc.example.com
  trafficPolicy:
    connectionPool: {tcp: {maxConnections: 10}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs}
spec:
  hosts: [\"*\"]
  gateways: [gw]
  http:
  - name: main
    match: [{name: api, uri: {prefix: /}, statPrefix: api}]
    retries: {attempts: 2, retryOn: envoy-ratelimited, retryRemoteLocalities: true}
    route: [{destination: {host: svc.example.com}}]
";
    std::fs::write(dir.path().join("gateway.yaml"), config).unwrap();
    let output = support::validate(dir.path(), "gateway.yaml");
    let stderr = String::from_utf8_lossy(&output.stderr);
    for path in [
        "spec.servers[0].tls.cipherSuites",
        "spec.location",
        "spec.subjectAltNames",
        "spec.endpoints[0].locality",
        "spec.endpoints[0].network",
        "spec.trafficPolicy.retryBudget",
        "spec.trafficPolicy.loadBalancer.consistentHash.httpCookie",
        "spec.trafficPolicy.loadBalancer.consistentHash.ringHash",
        "spec.trafficPolicy.outlierDetection.interval",
        "spec.http[0].match[0].statPrefix",
        "spec.http[0].retries.retryOn",
        "spec.http[0].retries.retryRemoteLocalities",
        "spec.trafficPolicy.connectionPool.tcp.maxConnections",
    ] {
        let warned = stderr
            .lines()
            .any(|l| l.contains(": warning: ") && l.contains(&format!(" {path}: ")));
        assert!(warned, "no warning for {path}:\n{stderr}");
    }
}

/// Every field of the resolved config that the corpus reaches, as a path with `[]` for
/// list items and `*` for map keys that are names (clusters, labels, ports).
fn resolved_fields(
    value: &serde_json::Value,
    path: &str,
    out: &mut std::collections::BTreeSet<String>,
) {
    match value {
        // A duration is one field.
        serde_json::Value::Object(map) if map.contains_key("secs") && map.contains_key("nanos") => {
        }
        serde_json::Value::Object(map) => {
            let keyed_by_name = ["clusters", "labels", "ports"]
                .iter()
                .any(|name| path.ends_with(name));
            // A plugin's pluginConfig is its own, whatever its shape.
            if path.ends_with("plugins[].config") {
                return;
            }
            for (key, child) in map {
                let key = if keyed_by_name { "*" } else { key.as_str() };
                let child_path = if path.is_empty() {
                    key.to_string()
                } else {
                    format!("{path}.{key}")
                };
                out.insert(child_path.clone());
                resolved_fields(child, &child_path, out);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                resolved_fields(item, &format!("{path}[]"), out);
            }
        }
        _ => {}
    }
}

/// No silent no-op: every field a config can reach in the resolved config is listed in
/// `tests/config/resolved-fields.txt` as enforced on the data path (with the test that
/// shows it) or as warned about when set. A new field fails here until it is classified;
/// `PORTCULLIS_BLESS=1` appends the unlisted ones as `unclassified` to edit.
#[test]
fn every_resolved_field_is_enforced_or_warned() {
    let list_path = corpus().join("resolved-fields.txt");
    let listed: std::collections::BTreeMap<String, String> = std::fs::read_to_string(&list_path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut parts = l.splitn(2, char::is_whitespace);
            let path = parts.next().unwrap().to_string();
            (path, parts.next().unwrap_or_default().trim().to_string())
        })
        .collect();
    let mut reached = std::collections::BTreeSet::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = vec![root.join("gateway.yaml")];
    for entry in std::fs::read_dir(corpus().join("valid")).unwrap() {
        files.push(entry.unwrap().path());
    }
    for file in &files {
        let name = file.file_name().unwrap().to_str().unwrap();
        let text = std::fs::read_to_string(file).unwrap();
        let base = if name == "gateway.yaml" {
            root.as_path()
        } else {
            fixture()
        };
        let loaded = portcullis::config::load_str(name, &text, base)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let value = serde_json::to_value(&loaded.config).unwrap();
        resolved_fields(&value, "", &mut reached);
    }
    let unlisted: Vec<&String> = reached
        .iter()
        .filter(|p| !listed.contains_key(*p))
        .collect();
    let unclassified: Vec<&String> = listed
        .iter()
        .filter(|(_, class)| {
            !(class.starts_with("enforced")
                || class.starts_with("warned")
                || class.starts_with("internal"))
        })
        .map(|(path, _)| path)
        .collect();
    if std::env::var_os("PORTCULLIS_BLESS").is_some() && !unlisted.is_empty() {
        let mut text = std::fs::read_to_string(&list_path).unwrap_or_default();
        for path in &unlisted {
            text.push_str(&format!("{path} unclassified\n"));
        }
        std::fs::write(&list_path, text).unwrap();
    }
    assert!(
        unlisted.is_empty() && unclassified.is_empty(),
        "classify these resolved fields in tests/config/resolved-fields.txt (enforced <test>, warned, or internal):\nunlisted: {unlisted:#?}\nunclassified: {unclassified:#?}"
    );
}

/// Istio's own samples and test data (`../shared/istio-corpus`, beside the repository):
/// every document gets the verdict Istio gives it.
#[test]
fn istio_corpus_gets_istios_verdicts() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/istio-corpus");
    if !corpus.join("check.py").exists() {
        eprintln!("{} is not here; skipped", corpus.display());
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let output = std::process::Command::new("python3")
        .arg(corpus.join("check.py"))
        .args(["--bin", env!("CARGO_BIN_EXE_portcullis")])
        .env("CORPUS_WORK", work.path())
        .env("PORTCULLIS_CACHE_DIR", support::cache_dir())
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let failures: Vec<&str> = stdout.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert!(
        output.status.success() && failures.is_empty(),
        "{}\n{}",
        failures.join("\n"),
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(summary.contains(" 0 failed"), "{summary}");
}

/// The resolved form of every valid config is pinned, so each Istio default that
/// `config/resolve` applies shows in review when it changes.
#[test]
fn resolved_forms_are_pinned() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = vec![root.join("gateway.yaml")];
    let mut corpus_files: Vec<PathBuf> = std::fs::read_dir(corpus().join("valid"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    corpus_files.sort();
    files.extend(corpus_files);
    for file in &files {
        let name = file.file_name().unwrap().to_str().unwrap();
        let base = if name == "gateway.yaml" {
            root.as_path()
        } else {
            fixture()
        };
        let text = std::fs::read_to_string(file).unwrap();
        let loaded = portcullis::config::load_str(name, &text, base)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        // Through JSON: serde_yaml cannot write nested enums directly.
        let value = serde_json::to_value(&loaded.config).unwrap();
        let resolved = serde_yaml::to_string(&value)
            .unwrap()
            .replace(&base.display().to_string(), "$CONFIG_DIR");
        insta::assert_snapshot!(format!("resolved-{name}"), resolved);
    }
}
