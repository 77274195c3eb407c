//! End to end: a custom plugin (the Rust api-key example) declared by a WasmPlugin and
//! attached to one route.

use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::support;
use support::admin::{reload_status, until_reloaded};
use support::client::{Client, empty};
use support::config::{GATEWAY, route_to, service, virtual_service, wasm_plugin};
use support::eventually::{eventually, eventually_after};
use support::gateway::Gateway;
use support::upstream::Upstream;

/// Two routes to `backend`: `private` (paths under `/private`) and `public` (the rest).
const PRIVATE_AND_PUBLIC: &str = "  - name: private
    match: [{uri: {prefix: /private}}]
    route: [{destination: {host: backend}}]
  - name: public
    route: [{destination: {host: backend}}]
";

/// The test filter whose paths misbehave (see `plugins/testing/hostile-filter`).
fn hostile_filter() -> std::path::PathBuf {
    support::plugin("portcullis_hostile_filter.wasm")
}

/// VirtualService `api` with [`PRIVATE_AND_PUBLIC`], its `private` route guarded by the
/// api-key plugin (pinned by its sha256) with `plugin_config` (its `pluginConfig:` lines).
fn config(upstream_port: u16, plugin_config: &str) -> String {
    let plugin = support::plugin("rust_api_key.wasm");
    let sha256 = hex::encode(Sha256::digest(std::fs::read(&plugin).unwrap()));
    let spec = format!("  sha256: {sha256}\n  phase: AUTHN\n  pluginConfig:\n{plugin_config}");
    [
        GATEWAY,
        &service("backend", &[upstream_port]),
        &virtual_service("api", "*", PRIVATE_AND_PUBLIC),
        &wasm_plugin("api-key", plugin.display(), &["api/private"], &spec),
    ]
    .join("---\n")
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
    let plugin = hostile_filter();
    // The filter on route `name`, failing as `strategy` says.
    let guarding = |name: &str, strategy: &str| {
        let spec = format!("  failStrategy: {strategy}\n");
        wasm_plugin(name, plugin.display(), &[&format!("api/{name}")], &spec)
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
    let config = [
        GATEWAY,
        &service("backend", &[upstream.addr.port()]),
        &virtual_service("api", "*", routes),
        &guarding("open", "FAIL_OPEN"),
        &guarding("close", "FAIL_CLOSE"),
        &guarding("reload", "FAIL_RELOAD"),
    ]
    .join("---\n");
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
            started.elapsed() < Duration::from_secs(2),
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
    // The gateway wrote them before it answered; they are all read once their count,
    // polled, has stopped growing.
    let mut last = 0;
    let logged = eventually("the flood's lines in the gateway's stderr", || {
        let now = gateway.stderr_lines("llllllllll");
        let settled = (now > 0 && now == last).then_some(now);
        last = now;
        async move { settled }
    })
    .await;
    // At most 100 in each second the flood spans: it may straddle two.
    assert!((1..=200).contains(&logged), "{logged} flood lines logged");
    assert!(gateway.stderr_lines("bytes cut)") >= logged);
}

#[tokio::test(flavor = "multi_thread")]
async fn plugins_run_by_phase_then_descending_priority() {
    let upstream = Upstream::start("backend").await;
    let tagger = hostile_filter();
    // The api-key check (AUTHN) rejects; whether the tagger ran before it shows in the
    // rejection, which carries the response headers of the plugins that ran earlier.
    let with_tagger = |phase: &str, priority: i64| {
        let spec = format!("  phase: {phase}\n  priority: {priority}\n");
        format!(
            "{}---\n{}",
            config(upstream.addr.port(), "    keys: {k: v}\n"),
            wasm_plugin("tagger", tagger.display(), &[], &spec)
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
    let hostile = hostile_filter();
    let routes = "  - name: flaky
    match: [{uri: {prefix: /flaky}}]
    route: [{destination: {host: backend}}]
  - name: tight
    route: [{destination: {host: backend}}]
";
    let config = [
        GATEWAY,
        &service("backend", &[upstream.addr.port()]),
        &virtual_service("api", "*", routes),
        &wasm_plugin(
            "flaky",
            hostile.display(),
            &["api/flaky"],
            "  failStrategy: FAIL_OPEN\n",
        ),
        &wasm_plugin(
            "tight",
            hostile.display(),
            &["api/tight"],
            "  limits: {memory: 16Mi, timeout: 20ms}\n",
        ),
    ]
    .join("---\n");
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
    // After the one-second back-off a probe goes through, and it succeeds (the sleep is
    // the back-off under test, not a wait for it).
    tokio::time::sleep(Duration::from_millis(1100)).await;
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

    let config = [
        GATEWAY,
        &service("backend", &[upstream.addr.port()]),
        &virtual_service("api", "*", &route_to("backend")),
        &wasm_plugin("hello", wasm.display(), &[], ""),
    ]
    .join("---\n");
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
    let config = [
        GATEWAY,
        &service("backend", &[upstream.addr.port()]),
        &virtual_service("api", "*", PRIVATE_AND_PUBLIC),
        &wasm_plugin(
            "canary",
            js.display(),
            &["api"],
            "  pluginConfig: {percent: 0}\n",
        ),
        &wasm_plugin(
            "api-key",
            python.display(),
            &["api/private"],
            "  phase: AUTHN\n  pluginConfig: {keys: {k1: alice}}\n",
        ),
    ]
    .join("---\n");
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
    let routes = "  - route:
    - {destination: {host: a}, weight: 99}
    - {destination: {host: b}, weight: 1}
";
    let vm_config = "  vmConfig:
    env:
    - {name: GREETING, value: hello from vmConfig}
";
    let config = [
        GATEWAY,
        &service("a", &[a.addr.port()]),
        &service("b", &[b.addr.port()]),
        &virtual_service("api", "*", routes),
        &wasm_plugin("chooser", hostile_filter().display(), &[], vm_config),
    ]
    .join("---\n");
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
    let spec = format!("  pluginConfig: {plugin_config}\n");
    [
        GATEWAY,
        &service("backend", &[upstream.addr.port()]),
        &virtual_service("api", "*", &route_to("backend")),
        &wasm_plugin("sleeper", hostile_filter().display(), &[], &spec),
    ]
    .join("---\n")
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
    assert!(started.elapsed() < Duration::from_secs(20));

    // Written over a live config: the reload fails, a later good config still applies.
    let gateway = Gateway::start_with(&hostile_config(&upstream, "{mode: fine}"), |command| {
        command.arg("--admin").arg("127.0.0.1:0");
    });
    let admin = Client::http1(gateway.admin.unwrap());
    let path = gateway.dir.path().join("gateway.yaml");
    std::fs::write(&path, &sleeping).unwrap();
    // The reload fails once configure has run past its deadline: 50 times the default
    // 100 ms call timeout.
    eventually_after(Duration::from_secs(5), "no failure", || async {
        (reload_status(&admin).await["failures"] == 1).then_some(())
    })
    .await;
    let client = Client::http1(gateway.addr("default/gw/http"));
    assert_eq!(client.get("api", "/").await.status, 200);
    std::fs::write(&path, hostile_config(&upstream, "{mode: fine-again}")).unwrap();
    until_reloaded(&admin, 2, None).await;
}
