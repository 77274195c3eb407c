//! End to end: hot reload under continuous load, with zero failed requests: a traffic
//! shift by rewriting the file, a broken file that changes nothing, and a Kubernetes
//! ConfigMap-style symlink swap.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support;
use support::admin::{reload_status, until_reloaded};
use support::client::Client;
use support::config::{
    GATEWAY, configmap_swap, destination_rule, gateway, route_to, service, versioned_service,
    virtual_service, wasm_plugin,
};
use support::eventually::eventually;
use support::gateway::Gateway;
use support::load::Load;
use support::upstream::Upstream;

fn config(v1: &Upstream, v2: &Upstream, weights: (u32, u32)) -> String {
    format!(
        "{GATEWAY}---
{service}---
{subsets}---
{vs}",
        service = versioned_service("reviews", &[("v1", v1.addr.port()), ("v2", v2.addr.port())]),
        subsets = destination_rule(
            "reviews",
            "  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
"
        ),
        vs = virtual_service(
            "reviews",
            "*",
            &format!(
                "  - route:
    - {{destination: {{host: reviews, subset: v1}}, weight: {}}}
    - {{destination: {{host: reviews, subset: v2}}, weight: {}}}
",
                weights.0, weights.1
            )
        ),
    )
}

/// Writes `text` to `path` the way editors do: a new file renamed over the old one.
fn replace(path: &Path, text: &str) {
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, text).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

/// Polls until every one of 20 consecutive responses comes from `name`; returns how long
/// that took.
async fn until_all_from(client: &Client, name: &str) -> Duration {
    let started = Instant::now();
    eventually(format!("traffic never moved to {name}"), || async {
        let mut all = true;
        for _ in 0..20 {
            all &= client.get("reviews", "/").await.upstream() == name;
        }
        all.then_some(())
    })
    .await;
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread")]
async fn reloads_under_load_without_a_failed_request() {
    let (v1, v2) = (Upstream::start("v1").await, Upstream::start("v2").await);
    let dir = tempfile::tempdir().unwrap();
    // The config is a ConfigMap-style mount: gateway.yaml -> ..data/gateway.yaml.
    configmap_swap(dir.path(), "..v1", &config(&v1, &v2, (80, 20)));
    std::os::unix::fs::symlink("..data/gateway.yaml", dir.path().join("gateway.yaml")).unwrap();
    let data_dir = dir.path().to_path_buf();
    let gateway = Gateway::launch(dir, "gateway.yaml", |command| {
        command.args(["--admin", "127.0.0.1:0"]);
    });
    let client = Client::http1(gateway.addr("default/gw/http"));
    let admin = Client::http1(gateway.admin.expect("the admin API is on"));

    // Continuous load for the whole test, on its own connections.
    let load = Load::start(gateway.addr("default/gw/http"), "reviews", 4);

    // 80/20 → 0/100 by rewriting the file the link points to.
    replace(
        &data_dir.join("..v1/gateway.yaml"),
        &config(&v1, &v2, (0, 100)),
    );
    let shifted = until_all_from(&client, "v2").await;
    eprintln!("traffic shift live after {shifted:?}");

    // A broken file changes nothing, and the admin API says why.
    replace(
        &data_dir.join("..v1/gateway.yaml"),
        "apiVersion: networking.istio.io/v1\nkind: [broken\n",
    );
    until_reloaded(&admin, 2, Some("invalid YAML")).await;
    for _ in 0..20 {
        assert_eq!(client.get("reviews", "/").await.upstream(), "v2");
    }
    let dump = admin.get("admin", "/config_dump").await.json();
    assert!(
        dump["status"]["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("invalid YAML"),
        "{dump}"
    );
    assert_eq!(dump["status"]["generation"], 2);
    let ready = admin.get("admin", "/ready").await;
    assert_eq!(ready.status, 200, "the last good config serves");
    assert!(
        ready.text().contains("last reload failed"),
        "{}",
        ready.text()
    );

    // A ConfigMap update: the ..data link swaps to a new folder with 100/0.
    configmap_swap(&data_dir, "..v2", &config(&v1, &v2, (100, 0)));
    until_all_from(&client, "v1").await;
    let dump = admin.get("admin", "/config_dump").await.json();
    assert_eq!(dump["status"]["generation"], 3, "{dump}");
    assert!(dump["status"]["last_error"].is_null(), "{dump}");
    assert_eq!(admin.get("admin", "/ready").await.text(), "ready\n");

    // SIGHUP reloads too.
    gateway.signal("HUP");
    until_reloaded(&admin, 4, None).await;
    let plugins = admin.get("admin", "/plugins").await.json();
    assert!(
        plugins["builtin"][0]["stats"]["calls"].as_u64().unwrap() > 0,
        "{plugins}"
    );

    let (sent, failed) = load.finish().await;
    eprintln!("{sent} requests during the reloads");
    assert!(sent > 100, "the load ran ({sent} requests)");
    assert_eq!(
        failed, 0,
        "{failed} of {sent} requests failed during the reloads"
    );
}

/// A gateway with the `main` server on a free port and, when given, an `extra` server on
/// `extra_port`; every request goes to `backend` through the plugin in `plugin.wasm`.
fn plugin_config(backend: &Upstream, extra_port: Option<u16>, sha256: Option<&str>) -> String {
    let extra = extra_port.map_or(String::new(), |port| {
        format!(
            "  - port: {{number: {port}, name: extra, protocol: HTTP}}
    bind: 127.0.0.1
    hosts: [\"*\"]
"
        )
    });
    let sha256 = sha256.map_or(String::new(), |s| format!("  sha256: {s}\n"));
    let servers = format!(
        "  - port: {{number: 0, name: main, protocol: HTTP}}
    bind: 127.0.0.1
    hosts: [\"*\"]
{extra}"
    );
    let spec = format!("{sha256}  pluginConfig:\n    keys: {{unused: nobody}}\n    exempt: [/]\n");
    [
        gateway(&servers).as_str(),
        &service("backend", &[backend.addr.port()]),
        &virtual_service("all", "*", &route_to("backend")),
        &wasm_plugin("swapped", "plugin.wasm", &["all"], &spec),
    ]
    .join("---\n")
}

fn built(name: &str) -> Vec<u8> {
    std::fs::read(support::plugin(name)).unwrap()
}

/// Polls until `check` holds for a response to `path`; returns how long that took.
async fn until(
    client: &Client,
    path: &str,
    check: impl Fn(&support::client::Reply) -> bool,
) -> Duration {
    let started = Instant::now();
    eventually("the change never showed", || async {
        check(&client.get("backend", path).await).then_some(())
    })
    .await;
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread")]
async fn swaps_components_and_listeners_and_keeps_connections_and_the_old_on_bad_input() {
    let backend = Upstream::start("backend").await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    std::fs::write(
        data.join("plugin.wasm"),
        built("portcullis_hostile_filter.wasm"),
    )
    .unwrap();
    std::fs::write(
        data.join("gateway.yaml"),
        plugin_config(&backend, None, None),
    )
    .unwrap();
    let gateway = Gateway::launch(dir, "gateway.yaml", |command| {
        command.args(["--admin", "127.0.0.1:0"]);
    });
    let main = gateway.addr("default/gw/main");
    let client = Client::http1(main);
    let admin = Client::http1(gateway.admin.expect("the admin API is on"));
    let filtered = |r: &support::client::Reply| r.headers.contains_key("x-filtered");
    assert!(filtered(&client.get("backend", "/").await));

    // Load on its own connections for the whole test, and one HTTP/2 connection and one
    // streaming response opened before any change.
    let load = Load::start(main, "backend", 1);
    let tcp = tokio::net::TcpStream::connect(main).await.unwrap();
    let (mut h2, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let h2_get = || {
        http::Request::get(format!("http://{main}/"))
            .header("host", "backend")
            .body(support::client::empty())
            .unwrap()
    };
    assert_eq!(h2.send_request(h2_get()).await.unwrap().status(), 200);
    let streaming = client
        .send_streaming(
            client
                .request("GET", "backend", &format!("/bytes/{}", 8 << 20))
                .body(support::client::empty())
                .unwrap(),
        )
        .await;

    // A component with other behaviour (the api-key plugin, which exempts every path):
    // the header goes away.
    std::fs::write(data.join("plugin.wasm"), built("rust_api_key.wasm")).unwrap();
    let swapped = until(&client, "/", |r| r.status == 200 && !filtered(r)).await;
    eprintln!("component change live after {swapped:?}");
    // Back to the first one, whose compiled form is cached.
    std::fs::write(
        data.join("plugin.wasm"),
        built("portcullis_hostile_filter.wasm"),
    )
    .unwrap();
    let cached = until(&client, "/", filtered).await;
    eprintln!("cached component change live after {cached:?}");
    let generation = reload_status(&admin).await["generation"].as_u64().unwrap();

    // A broken component, then a sha256 that does not match: the old one keeps serving.
    std::fs::write(data.join("plugin.wasm"), b"\0asm broken").unwrap();
    until_reloaded(&admin, generation, Some("default/swapped")).await;
    assert!(filtered(&client.get("backend", "/").await));
    std::fs::write(
        data.join("plugin.wasm"),
        built("portcullis_hostile_filter.wasm"),
    )
    .unwrap();
    until_reloaded(&admin, generation + 1, None).await;
    let wrong = "0".repeat(64);
    replace(
        &data.join("gateway.yaml"),
        &plugin_config(&backend, None, Some(&wrong)),
    );
    until_reloaded(&admin, generation + 1, Some("sha256")).await;
    assert!(filtered(&client.get("backend", "/").await));

    // A server port added, then removed: only that listener starts and stops.
    let extra = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    replace(
        &data.join("gateway.yaml"),
        &plugin_config(&backend, Some(extra.port()), None),
    );
    until_reloaded(&admin, generation + 2, None).await;
    assert!(filtered(&Client::http1(extra).get("backend", "/").await));
    replace(
        &data.join("gateway.yaml"),
        &plugin_config(&backend, None, None),
    );
    until_reloaded(&admin, generation + 3, None).await;
    assert!(
        tokio::net::TcpStream::connect(extra).await.is_err(),
        "the removed port still accepts"
    );

    // What was open before the changes still works.
    assert_eq!(h2.send_request(h2_get()).await.unwrap().status(), 200);
    let body = support::client::read(streaming).await.body;
    assert_eq!(body.len(), 8 << 20);

    let (sent, failed) = load.finish().await;
    eprintln!("{sent} requests during the changes");
    assert!(sent > 50, "the load ran ({sent} requests)");
    assert_eq!(
        failed, 0,
        "{failed} of {sent} requests failed during the changes"
    );
}

/// A `--policy-dir` override is watched like any component file: written, it is swapped in
/// live under load; broken, the last good one keeps serving; removed, the built-in is back.
#[tokio::test(flavor = "multi_thread")]
async fn swaps_policy_overrides_live_and_keeps_the_last_good() {
    let backend = Upstream::start("backend").await;
    let policies = tempfile::tempdir().unwrap();
    let config = [
        GATEWAY,
        &service("backend", &[backend.addr.port()]),
        &virtual_service("all", "*", &route_to("backend")),
    ]
    .join("---\n");
    let gateway = Gateway::start_with(&config, |command| {
        command.arg("--policy-dir").arg(policies.path());
        command.args(["--admin", "127.0.0.1:0"]);
    });
    let addr = gateway.addr("default/gw/http");
    let client = Client::http1(addr);
    let admin = Client::http1(gateway.admin.expect("the admin API is on"));
    // The built-in matcher serves /trap like any path.
    assert_eq!(client.get("backend", "/trap").await.status, 200);
    let load = Load::start(addr, "backend", 2);

    // The hostile matcher traps on /trap (a 500), and serves / as before.
    let matcher = policies.path().join("route-match.wasm");
    std::fs::write(&matcher, built("portcullis_hostile.wasm")).unwrap();
    let swapped = until(&client, "/trap", |r| r.status == 500).await;
    eprintln!("policy override live after {swapped:?}");
    let generation = reload_status(&admin).await["generation"].as_u64().unwrap();
    let dump = admin.get("admin", "/plugins").await.body;
    assert!(
        String::from_utf8_lossy(&dump).contains("route-match.wasm"),
        "the override is listed: {}",
        String::from_utf8_lossy(&dump)
    );

    // A broken override fails the reload; the hostile one keeps serving.
    std::fs::write(&matcher, b"\0asm broken").unwrap();
    until_reloaded(&admin, generation, Some("match")).await;
    assert_eq!(client.get("backend", "/trap").await.status, 500);

    // Removed: the built-in is back.
    std::fs::remove_file(&matcher).unwrap();
    until(&client, "/trap", |r| r.status == 200).await;

    let (sent, failed) = load.finish().await;
    assert!(sent > 20, "the load ran ({sent} requests)");
    assert_eq!(
        failed, 0,
        "{failed} of {sent} requests failed during the swaps"
    );
}
