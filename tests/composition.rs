//! Policies composed per route: a WasmPlugin whose component serves a policy phase
//! replaces the built-in for the routes (or services) its targetRefs reach, and only there.

use std::path::Path;

use crate::support;
use support::client::Client;
use support::config::{GATEWAY, service};
use support::gateway::Gateway;
use support::upstream::Upstream;

/// Two routes to `backend` (on `backend_port`): `checkout` (requests with `x-route: checkout`) and `rest`;
/// the WasmPlugins in `plugins` (YAML documents) follow.
fn config(backend_port: u16, plugins: &str) -> String {
    format!(
        "{GATEWAY}---\n{}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: shop
spec:
  hosts: [\"*\"]
  gateways: [gw]
  http:
  - name: checkout
    match: [{{headers: {{x-route: {{exact: checkout}}}}}}]
    route: [{{destination: {{host: backend}}}}]
  - name: rest
    route: [{{destination: {{host: backend}}}}]
{plugins}",
        service("backend", &[backend_port]),
    )
}

/// A WasmPlugin `name` of the retry-5xx example on route `route` of `shop`.
fn retry_plugin(name: &str, route: &str) -> String {
    let file = Path::new(env!("PORTCULLIS_PLUGINS_DIR")).join("rust_retry_5xx.wasm");
    format!(
        "---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: {name}
spec:
  url: file://{}
  targetRefs: [{{kind: VirtualService, name: shop, sectionName: {route}}}]
  pluginConfig: {{attempts: 3}}
",
        file.display()
    )
}

/// How many times the upstream is asked for one request that fails with 503 there.
async fn attempts(client: &Client, upstream: &Upstream, route: &str) -> usize {
    let before = upstream.hits();
    let request = client
        .request("GET", "backend", "/status/503")
        .header("x-route", route)
        .body(support::client::empty())
        .unwrap();
    assert_eq!(client.send(request).await.status, 503);
    upstream.hits() - before
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_plugin_replaces_the_builtin_on_its_route_only() {
    let backend = Upstream::start("backend").await;
    let gateway = Gateway::start_with(
        &config(backend.addr.port(), &retry_plugin("retry-5xx", "checkout")),
        |command| {
            command.args(["--admin", "127.0.0.1:0"]);
        },
    );
    let client = Client::http1(gateway.addr("default/gw/http"));
    // Istio's default retryOn does not retry a 503 response; the plugin does, 3 times.
    assert_eq!(attempts(&client, &backend, "checkout").await, 4);
    assert_eq!(attempts(&client, &backend, "other").await, 1);

    let admin = Client::http1(gateway.admin.expect("the admin API is on"));
    let chains = admin.get("admin", "/config_dump").await.json()["chains"].clone();
    let route = |name: &str| {
        chains["routes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["route"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no chain for {name}: {chains}"))
    };
    let checkout = route("checkout");
    assert_eq!(
        checkout["retry"]["plugin"], "default/retry-5xx",
        "{checkout}"
    );
    assert_eq!(checkout["retry"]["kind"], "retry");
    assert_eq!(checkout["retry"]["sha256"].as_str().map(str::len), Some(64));
    assert_eq!(route("rest")["retry"]["builtin"], "builtin:retry");
    assert_eq!(checkout["fault"]["builtin"], "builtin:fault");
}

#[test]
fn two_plugins_for_one_phase_of_one_route_are_an_error_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = retry_plugin("first", "checkout") + &retry_plugin("second", "checkout");
    let config = config(9, &plugins);
    std::fs::write(dir.path().join("gateway.yaml"), config).unwrap();
    let output = support::validate(dir.path(), "gateway.yaml");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("default/first")
            && stderr.contains("default/second")
            && stderr.contains("retry phase of route checkout"),
        "{stderr}"
    );
}
