//! End to end: a custom plugin (the Rust api-key example) declared by a WasmPlugin and
//! attached to one route.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::support;
use support::client::{Client, empty};
use support::config::{GATEWAY, service};
use support::gateway::Gateway;
use support::upstream::Upstream;

fn config(upstream_port: u16, plugin_config: &str) -> String {
    let plugin = Path::new(env!("PORTCULLIS_PLUGINS_DIR")).join("rust_api_key.wasm");
    let sha256 = hex::encode(Sha256::digest(std::fs::read(&plugin).unwrap()));
    format!(
        "{GATEWAY}---\n{}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: api
spec:
  hosts: [\"*\"]
  gateways: [gw]
  http:
  - name: private
    match: [{{uri: {{prefix: /private}}}}]
    route: [{{destination: {{host: backend}}}}]
  - name: public
    route: [{{destination: {{host: backend}}}}]
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: api-key
spec:
  url: file://{path}
  sha256: {sha256}
  phase: AUTHN
  targetRefs:
  - kind: VirtualService
    name: api
    sectionName: private
  pluginConfig:
{plugin_config}",
        service("backend", &[upstream_port]),
        path = plugin.display(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_key_plugin_guards_only_its_route() {
    let upstream = Upstream::start("backend").await;
    let gateway = Gateway::start(&config(
        upstream.addr.port(),
        "    keys: {k1: alice}\n    exempt: [/private/health]\n",
    ));
    let client = Client::http1(gateway.addr("default/gw/http"));

    let before = upstream.hits();
    let refused = client.get("api", "/private/data").await;
    assert_eq!(refused.status, 401);
    assert_eq!(
        refused.headers["www-authenticate"],
        "ApiKey header=\"x-api-key\""
    );
    assert!(String::from_utf8_lossy(&refused.body).contains("missing or unknown"));
    assert_eq!(
        upstream.hits(),
        before,
        "a rejected request never reaches the upstream"
    );

    let admitted = client
        .send(
            client
                .request("GET", "api", "/private/data")
                .header("x-api-key", "k1")
                .body(empty())
                .unwrap(),
        )
        .await;
    assert_eq!(admitted.status, 200);
    let report = admitted.json();
    assert_eq!(report["headers"]["x-api-key-owner"], "alice");
    assert!(
        report["headers"].get("x-api-key").is_none(),
        "the key is not passed upstream"
    );

    assert_eq!(
        client.get("api", "/private/health").await.status,
        200,
        "exempt prefix"
    );
    assert_eq!(
        client.get("api", "/public").await.status,
        200,
        "other routes are not guarded"
    );
}

#[test]
fn a_plugin_that_rejects_its_config_stops_the_gateway_and_fails_validate_with_its_message() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gateway.yaml"), config(9, "    keys: {}\n")).unwrap();
    let output = support::portcullis()
        .current_dir(dir.path())
        .args(["run", "-c", "gateway.yaml"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("pluginConfig must list at least one of keys and clients"),
        "{stderr}"
    );
    // `validate` predicts it.
    let validated = support::validate(dir.path(), "gateway.yaml");
    assert_eq!(validated.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&validated.stderr);
    assert!(
        stderr.contains("gateway.yaml: loading WasmPlugin default/api-key")
            && stderr.contains("pluginConfig must list at least one of keys and clients"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_plugins_are_contained_by_their_fail_strategy() {
    let upstream = Upstream::start("backend").await;
    let plugin = Path::new(env!("PORTCULLIS_PLUGINS_DIR")).join("portcullis_hostile_filter.wasm");
    let wasm_plugin = |name: &str, strategy: &str| {
        format!(
            "---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: {name}
spec:
  url: file://{path}
  failStrategy: {strategy}
  targetRefs: [{{kind: VirtualService, name: api, sectionName: {name}}}]
",
            path = plugin.display()
        )
    };
    let routes = "  - name: open
    match: [{uri: {prefix: /open}}]
    route: [{destination: {host: backend}}]
  - name: close
    match: [{uri: {prefix: /close}}]
    route: [{destination: {host: backend}}]
  - name: reload
    match: [{uri: {prefix: /reload}}]
    route: [{destination: {host: backend}}]
  - name: public
    route: [{destination: {host: backend}}]
";
    let base = config(upstream.addr.port(), "    keys: {k: v}\n");
    let base = base[..base.find("---\napiVersion: extensions.istio.io").unwrap()].to_string();
    let start = base.find("  http:\n").unwrap() + "  http:\n".len();
    let config = format!(
        "{}{routes}{}{}{}",
        &base[..start],
        wasm_plugin("open", "FAIL_OPEN"),
        wasm_plugin("close", "FAIL_CLOSE"),
        wasm_plugin("reload", "FAIL_RELOAD"),
    );
    let gateway = Gateway::start(&config);
    let client = Client::http1(gateway.addr("default/gw/http"));
    let filtered = |reply: &support::client::Reply| reply.headers.get("x-filtered").is_some();

    let hostiles = [
        "trap",
        "loop",
        "grow",
        "huge",
        "sleep",
        "counters",
        "status-101",
        "framing",
        "big-body",
    ];
    for hostile in hostiles {
        // FAIL_OPEN: the plugin is skipped and the request goes on.
        let started = std::time::Instant::now();
        let open = client.get("api", &format!("/open/{hostile}")).await;
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "open/{hostile} took {:?}",
            started.elapsed()
        );
        assert_eq!(open.status, 200, "open/{hostile}");
        assert!(!filtered(&open) && !open.headers.contains_key("x-huge"));
        // FAIL_CLOSE and FAIL_RELOAD (whose fresh instance fails too): 500.
        assert_eq!(
            client.get("api", &format!("/close/{hostile}")).await.status,
            500,
            "close/{hostile}"
        );
        assert_eq!(
            client
                .get("api", &format!("/reload/{hostile}"))
                .await
                .status,
            500,
            "reload/{hostile}"
        );
        // Other routes, and the same plugins on the next request, are fine.
        assert_eq!(client.get("api", "/public").await.status, 200);
        for route in ["open", "close", "reload"] {
            let reply = client.get("api", &format!("/{route}/fine")).await;
            assert!(
                reply.status == 200 && filtered(&reply),
                "{route} after {hostile}: {reply:?}"
            );
        }
    }

    // A log flood is cut to 4 KiB lines, 100 a second; the rest is counted as dropped.
    let flood = client.get("api", "/open/log-flood").await;
    assert!(
        flood.status == 200 && flood.headers["x-filters"] == "hostile",
        "{flood:?}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let logged = gateway.stderr_lines("llllllllll");
    assert!((1..=100).contains(&logged), "{logged} flood lines logged");
    assert!(gateway.stderr_lines("bytes cut)") >= logged);
}

#[tokio::test(flavor = "multi_thread")]
async fn plugins_run_by_phase_then_descending_priority() {
    let upstream = Upstream::start("backend").await;
    let tagger = Path::new(env!("PORTCULLIS_PLUGINS_DIR")).join("portcullis_hostile_filter.wasm");
    // The api-key check (AUTHN) rejects; whether the tagger ran before it shows in the
    // rejection, which carries the response headers of the plugins that ran earlier.
    let with_tagger = |phase: &str, priority: i64| {
        format!(
            "{}---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: tagger
spec:
  url: file://{path}
  phase: {phase}
  priority: {priority}
",
            config(upstream.addr.port(), "    keys: {k: v}\n"),
            path = tagger.display()
        )
    };
    for (phase, priority, tagged) in [
        ("AUTHN", 10, true),
        ("AUTHN", -10, false),
        ("STATS", 100, false),
    ] {
        let gateway = Gateway::start(&with_tagger(phase, priority));
        let client = Client::http1(gateway.addr("default/gw/http"));
        let reply = client.get("api", "/private/x").await;
        assert_eq!(reply.status, 401);
        assert_eq!(
            reply.headers.contains_key("x-filtered"),
            tagged,
            "tagger in {phase} with priority {priority}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_plugin_is_quarantined_with_backoff_and_limits_are_per_plugin() {
    let upstream = Upstream::start("backend").await;
    let hostile = Path::new(env!("PORTCULLIS_PLUGINS_DIR")).join("portcullis_hostile_filter.wasm");
    let config = format!(
        "{GATEWAY}---\n{}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: api
spec:
  hosts: [\"*\"]
  gateways: [gw]
  http:
  - name: flaky
    match: [{{uri: {{prefix: /flaky}}}}]
    route: [{{destination: {{host: backend}}}}]
  - name: tight
    route: [{{destination: {{host: backend}}}}]
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: flaky
spec:
  url: file://{path}
  failStrategy: FAIL_OPEN
  targetRefs: [{{kind: VirtualService, name: api, sectionName: flaky}}]
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: tight
spec:
  url: file://{path}
  targetRefs: [{{kind: VirtualService, name: api, sectionName: tight}}]
  limits: {{memory: 16Mi, timeout: 20ms}}
",
        service("backend", &[upstream.addr.port()]),
        path = hostile.display(),
    );
    let gateway = Gateway::start_with(&config, |command| {
        command.args(["--admin", "127.0.0.1:0"]);
    });
    let client = Client::http1(gateway.addr("default/gw/http"));
    let admin = Client::http1(gateway.admin.unwrap());
    let filtered = |reply: &support::client::Reply| reply.headers.contains_key("x-filtered");
    let stats = |name: &'static str| {
        let admin = admin.clone();
        async move {
            let plugins = admin.get("admin", "/plugins").await.json();
            plugins["plugins"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == name)
                .unwrap()["stats"]
                .clone()
        }
    };

    // Five traps in a row quarantine the plugin: it is skipped (FAIL_OPEN) without a call.
    for _ in 0..5 {
        assert_eq!(client.get("api", "/flaky/trap").await.status, 200);
    }
    let quarantined = client.get("api", "/flaky/fine").await;
    assert!(quarantined.status == 200 && !filtered(&quarantined));
    let flaky = stats("default/flaky").await;
    assert_eq!(flaky["quarantines"], 1, "{flaky}");
    assert_eq!(flaky["calls"], 5, "{flaky}");
    // After the one-second back-off a probe goes through, and it succeeds.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert!(filtered(&client.get("api", "/flaky/fine").await));

    // The tight plugin's memory bomb stops at its own 16 MiB, not the default 64 MiB.
    assert_eq!(client.get("api", "/grow").await.status, 500);
    assert!(filtered(&client.get("api", "/fine").await));
    let tight = stats("default/tight").await;
    let high = tight["memory_high_water_bytes"].as_u64().unwrap();
    assert!(high > 1 << 20 && high <= 16 << 20, "{tight}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scaffolded_rust_plugin_builds_and_runs() {
    let upstream = Upstream::start("backend").await;
    let dir = tempfile::tempdir().unwrap();
    let created = support::portcullis()
        .args(["plugin", "new", "rust", "hello-plugin", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");
    let project = dir.path().join("hello-plugin");

    // Built with this test's own toolchain, in a target folder kept between runs.
    let cargo = std::path::PathBuf::from(std::env::var("CARGO").unwrap());
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/scaffolded");
    let built = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&cargo)
            .args(["build", "--release", "--target", "wasm32-wasip2", "--quiet"])
            .current_dir(&project)
            .env("CARGO_TARGET_DIR", &target)
            .env("RUSTC", cargo.with_file_name("rustc"))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let wasm = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/scaffolded/wasm32-wasip2/release/hello_plugin.wasm");

    let config = format!(
        "{GATEWAY}---\n{}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: api
spec:
  hosts: [\"*\"]
  gateways: [gw]
  http:
  - route: [{{destination: {{host: backend}}}}]
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: hello
spec:
  url: file://{}
",
        service("backend", &[upstream.addr.port()]),
        wasm.display(),
    );
    let gateway = Gateway::start(&config);
    let client = Client::http1(gateway.addr("default/gw/http"));
    assert_eq!(client.get("api", "/").await.status, 403);
    let request = client
        .request("GET", "api", "/")
        .header("user-agent", "test")
        .body(empty())
        .unwrap();
    let reply = client.send(request).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["headers"]["x-hello-plugin"], "seen");
}

#[tokio::test(flavor = "multi_thread")]
async fn javascript_and_python_plugins_run_end_to_end() {
    let upstream = Upstream::start("backend").await;
    let (js, python) = tokio::task::spawn_blocking(|| {
        (
            support::examples::js_canary(),
            support::examples::python_api_key(),
        )
    })
    .await
    .unwrap();
    let config = format!(
        "{GATEWAY}---\n{}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: api
spec:
  hosts: [\"*\"]
  gateways: [gw]
  http:
  - name: private
    match: [{{uri: {{prefix: /private}}}}]
    route: [{{destination: {{host: backend}}}}]
  - name: public
    route: [{{destination: {{host: backend}}}}]
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: canary
spec:
  url: file://{js}
  targetRefs: [{{kind: VirtualService, name: api}}]
  pluginConfig: {{percent: 0}}
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: api-key
spec:
  url: file://{python}
  phase: AUTHN
  targetRefs: [{{kind: VirtualService, name: api, sectionName: private}}]
  pluginConfig: {{keys: {{k1: alice}}}}
",
        service("backend", &[upstream.addr.port()]),
        js = js.display(),
        python = python.display(),
    );
    let gateway = Gateway::start(&config);
    let client = Client::http1(gateway.addr("default/gw/http"));

    // JavaScript: every request is tagged, for the upstream and the client.
    let stable = client.get("api", "/").await;
    assert_eq!(stable.headers["x-variant"], "stable");
    assert_eq!(stable.json()["headers"]["x-variant"], "stable");
    let request = client
        .request("GET", "api", "/")
        .header("x-canary", "1")
        .body(empty())
        .unwrap();
    assert_eq!(client.send(request).await.headers["x-variant"], "canary");

    // Python, on the private route only: no key, 401; a listed key, its owner upstream.
    let refused = client.get("api", "/private").await;
    assert_eq!(refused.status, 401);
    assert_eq!(&refused.body[..], b"missing or unknown x-api-key\n");
    let request = client
        .request("GET", "api", "/private")
        .header("x-api-key", "k1")
        .body(empty())
        .unwrap();
    let reply = client.send(request).await;
    assert_eq!(reply.status, 200);
    let seen = reply.json();
    assert_eq!(seen["headers"]["x-api-key-owner"], "alice");
    assert!(seen["headers"]["x-api-key"].is_null());
    assert_eq!(seen["headers"]["x-variant"], "stable");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_chooses_the_destination_and_edits_the_response() {
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let plugin = Path::new(env!("PORTCULLIS_PLUGINS_DIR")).join("portcullis_hostile_filter.wasm");
    let config = format!(
        "{GATEWAY}---\n{}---\n{}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: api
spec:
  hosts: [\"*\"]
  gateways: [gw]
  http:
  - route:
    - {{destination: {{host: a}}, weight: 99}}
    - {{destination: {{host: b}}, weight: 1}}
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: chooser
spec:
  url: file://{path}
  vmConfig:
    env:
    - {{name: GREETING, value: hello from vmConfig}}
",
        service("a", &[a.addr.port()]),
        service("b", &[b.addr.port()]),
        path = plugin.display(),
    );
    let gateway = Gateway::start(&config);
    let client = Client::http1(gateway.addr("default/gw/http"));
    // vmConfig.env is the plugin's environment.
    let greeted = client.get("api", "/").await;
    assert_eq!(greeted.headers["x-greeting"], "hello from vmConfig");
    let get = |headers: &'static [(&'static str, &'static str)]| {
        let client = client.clone();
        async move {
            let mut request = client.request("GET", "api", "/");
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            client.send(request.body(empty()).unwrap()).await
        }
    };
    for _ in 0..10 {
        let reply = get(&[("x-choose-destination", "b")]).await;
        assert_eq!(reply.upstream(), "b");
        assert_eq!(reply.headers["x-filters"], "hostile");
    }
    // A destination the route does not have is ignored: the weights decide.
    assert_eq!(get(&[("x-choose-destination", "c")]).await.status, 200);
    // The upstream's own response header can be removed.
    let reply = get(&[("x-remove-response-header", "x-upstream")]).await;
    assert!(!reply.headers.contains_key("x-upstream"), "{reply:?}");
}

/// A gateway config whose one route runs the hostile filter with `plugin_config`.
fn hostile_config(upstream: &Upstream, plugin_config: &str) -> String {
    let plugin = Path::new(env!("PORTCULLIS_PLUGINS_DIR")).join("portcullis_hostile_filter.wasm");
    format!(
        "{GATEWAY}---\n{}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: api
spec:
  hosts: [\"*\"]
  gateways: [gw]
  http:
  - route: [{{destination: {{host: backend}}}}]
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: sleeper
spec:
  url: file://{path}
  pluginConfig: {plugin_config}
",
        service("backend", &[upstream.addr.port()]),
        path = plugin.display(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_configure_that_sleeps_fails_validate_and_reloads_within_its_deadline() {
    let upstream = Upstream::start("backend").await;
    let dir = tempfile::tempdir().unwrap();
    let sleeping = hostile_config(&upstream, "{mode: sleep-in-configure}");
    std::fs::write(dir.path().join("gateway.yaml"), &sleeping).unwrap();
    let started = std::time::Instant::now();
    let validated = support::validate(dir.path(), "gateway.yaml");
    assert_eq!(validated.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&validated.stderr);
    assert!(stderr.contains("configure ran past"), "{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));

    // Written over a live config: the reload fails, a later good config still applies.
    let gateway = Gateway::start_with(&hostile_config(&upstream, "{mode: fine}"), |command| {
        command.arg("--admin").arg("127.0.0.1:0");
    });
    let admin = Client::http1(gateway.admin.unwrap());
    let config_dump = || async { admin.get("admin", "/config_dump").await.json() };
    let path = gateway.dir.path().join("gateway.yaml");
    std::fs::write(&path, &sleeping).unwrap();
    let started = std::time::Instant::now();
    while config_dump().await["status"]["failures"] != 1 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "no failure"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let client = Client::http1(gateway.addr("default/gw/http"));
    assert_eq!(client.get("api", "/").await.status, 200);
    std::fs::write(&path, hostile_config(&upstream, "{mode: fine-again}")).unwrap();
    while config_dump().await["status"]["generation"] != 2 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "wedged"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
