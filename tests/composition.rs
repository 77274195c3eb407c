//! Policies composed per route: a WasmPlugin whose component serves a policy phase
//! replaces the built-in for the routes (or services) its targetRefs reach, and only there.

use std::collections::BTreeMap;

use crate::support;
use support::client::Client;
use support::config::{GATEWAY, service, wasm_plugin};
use support::gateway::Gateway;
use support::load::Load;
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
    let file = support::plugin("rust_retry_5xx.wasm");
    let target = format!("shop/{route}");
    let plugin = wasm_plugin(
        name,
        file.display(),
        &[&target],
        "  pluginConfig: {attempts: 3}\n",
    );
    format!("---\n{plugin}")
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
            command.args(["--admin", "127.0.0.1:0", "--access-log", "access.log"]);
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

    // The access log names the plugin where it decided.
    let log = gateway.dir.path().join("access.log");
    let retried = crate::support::eventually::eventually("the checkout line", || async {
        support::access_log(&log)
            .into_iter()
            .find(|line| line["route_name"] == "checkout")
    })
    .await;
    let said: Vec<&str> = retried["policies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["policy"] == "default/retry-5xx")
        .map(|d| d["decision"].as_str().unwrap())
        .collect();
    assert_eq!(
        said,
        [
            "attempt 1 failed: retry in 0 ms",
            "attempt 2 failed: retry in 0 ms",
            "attempt 3 failed: retry in 0 ms",
            "attempt 4 failed: no retry"
        ],
        "{retried}"
    );
}

/// What `portcullis validate` says of `config` on stderr; it must refuse it.
fn refused(config: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gateway.yaml"), config).unwrap();
    let output = support::validate(dir.path(), "gateway.yaml");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    stderr
}

#[test]
fn two_plugins_for_one_phase_of_one_route_are_an_error_naming_both() {
    let plugins = retry_plugin("first", "checkout") + &retry_plugin("second", "checkout");
    let stderr = refused(&config(9, &plugins));
    assert!(
        stderr.contains("default/first")
            && stderr.contains("default/second")
            && stderr.contains("retry phase of route checkout"),
        "{stderr}"
    );
}

/// Phase and priority order filters only, and cluster-level phases target services:
/// a policy plugin that says otherwise is an error, not a silent no-op.
#[test]
fn policy_plugins_refuse_what_they_cannot_mean() {
    let refuses = |plugin: String, expected: &str| {
        let stderr = refused(&config(9, &plugin));
        assert!(stderr.contains(expected), "{stderr}");
    };
    refuses(
        retry_plugin("ordered", "checkout") + "  priority: 5\n",
        "phase and priority order filters only",
    );
    let balancer = support::plugin("rust_failover.wasm");
    refuses(
        format!(
            "---\n{}",
            wasm_plugin("misplaced", balancer.display(), &["shop"], "")
        ),
        "target ServiceEntry hosts",
    );
    let retry = support::plugin("rust_retry_5xx.wasm");
    refuses(
        format!(
            "---\n{}---\n{}",
            support::config::destination_rule("backend", "  subsets: [{name: v1}]\n"),
            wasm_plugin(
                "subset-retry",
                retry.display(),
                &[],
                "  targetRefs: [{kind: ServiceEntry, name: backend, sectionName: v1}]\n",
            )
        ),
        "narrows the services of cluster-level phases only",
    );
}

/// Which upstreams (by name) served `count` requests for `host`.
async fn served_by(client: &Client, host: &str, count: usize) -> Vec<String> {
    let mut names = Vec::new();
    for _ in 0..count {
        let reply = client.get(host, "/").await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let name = reply.json()["name"].as_str().unwrap().to_string();
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn a_balancer_plugin_serves_its_service_only_and_swaps_live() {
    let upstreams = [
        Upstream::start("a1").await,
        Upstream::start("a2").await,
        Upstream::start("b1").await,
        Upstream::start("b2").await,
    ];
    let port = |i: usize| upstreams[i].addr.port();
    let dir = tempfile::tempdir().unwrap();
    let balancer = dir.path().join("balancer.wasm");
    std::fs::copy(support::plugin("rust_failover.wasm"), &balancer).unwrap();
    let config = format!(
        "{GATEWAY}---\n{}---\n{}---\n{}---\n{}",
        service("a", &[port(0), port(1)]),
        service("b", &[port(2), port(3)]),
        support::config::virtual_service(
            "shop",
            "*",
            "  - match: [{authority: {exact: a}}]\n    route: [{destination: {host: a}}]\n  - route: [{destination: {host: b}}]\n",
        ),
        "apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: failover
spec:
  url: file://balancer.wasm
  targetRefs: [{kind: ServiceEntry, name: a}]
",
    );
    std::fs::write(dir.path().join("gateway.yaml"), config).unwrap();
    // A cache of its own, so that the swapped-in component is compiled cold.
    let cache = dir.path().join("cache");
    let gateway = Gateway::launch(dir, "gateway.yaml", |command| {
        command.args(["--admin", "127.0.0.1:0"]);
        command.env("PORTCULLIS_CACHE_DIR", &cache);
    });
    let addr = gateway.addr("default/gw/http");
    let client = Client::http1(addr);
    assert_eq!(served_by(&client, "a", 20).await, ["a1"]);
    assert_eq!(served_by(&client, "b", 20).await, ["b1", "b2"]);
    let admin = Client::http1(gateway.admin.expect("the admin API is on"));
    let chains = admin.get("admin", "/config_dump").await.json()["chains"]["clusters"].clone();
    let endpoint = |cluster: &str| {
        chains
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["cluster"] == cluster)
            .map(|c| c["endpoint"].clone())
            .unwrap_or_else(|| panic!("no chain for {cluster}: {chains}"))
    };
    assert_eq!(endpoint("outbound|80||a")["plugin"], "default/failover");
    assert_eq!(endpoint("outbound|80||b")["builtin"], "builtin:endpoint");

    // Under load, the file becomes another balancer (peak-EWMA, which tries every
    // endpoint while it has no latency for it), compiled cold: the change shows, and no
    // request fails.
    let load = Load::start(addr, "a", 1);
    let replacement = gateway.dir.path().join("balancer.wasm.new");
    std::fs::copy(support::plugin("rust_peak_ewma.wasm"), &replacement).unwrap();
    let written = std::time::Instant::now();
    std::fs::rename(&replacement, gateway.dir.path().join("balancer.wasm")).unwrap();
    crate::assert_eventually!(
        served_by(&client, "a", 10).await.len() == 2,
        "the swapped balancer never spread service a's requests"
    );
    eprintln!(
        "balancer swap (cold compile) live after {:?}",
        written.elapsed()
    );
    let (sent, failed) = load.finish().await;
    assert!(sent > 10, "the load ran ({sent} requests)");
    assert_eq!(
        failed, 0,
        "{failed} of {sent} requests failed during the swap"
    );
}

/// Two VirtualServices for hosts `a` and `b` (`b_host`), each to `backend`; the
/// WasmPlugins in `plugins` follow.
fn two_hosts(backend_port: u16, b_host: &str, plugins: &str) -> String {
    format!(
        "{GATEWAY}---\n{}---\n{}---\n{}{plugins}",
        service("backend", &[backend_port]),
        support::config::virtual_service("a", "a", &support::config::route_to("backend")),
        support::config::virtual_service("b", b_host, &support::config::route_to("backend")),
    )
}

/// The hostile test matcher (it traps on `/trap`) as a WasmPlugin on VirtualService `a`.
fn hostile_matcher() -> String {
    let file = support::plugin("portcullis_hostile.wasm");
    format!(
        "---\n{}",
        wasm_plugin("matcher", file.display(), &["a"], "")
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_matcher_plugin_decides_for_its_virtual_service_only() {
    let backend = Upstream::start("backend").await;
    let gateway = Gateway::start(&two_hosts(backend.addr.port(), "b", &hostile_matcher()));
    let client = Client::http1(gateway.addr("default/gw/http"));
    assert_eq!(client.get("a", "/fine").await.status, 200);
    // The plugin's matcher traps on /trap (FAIL_CLOSE: 500); b's built-in routes it.
    assert_eq!(client.get("a", "/trap").await.status, 500);
    assert_eq!(client.get("b", "/trap").await.status, 200);

    // A matcher decides for whole virtual hosts: one shared with another
    // VirtualService's routes is an error.
    let stderr = refused(&two_hosts(9, "a", &hostile_matcher()));
    assert!(
        stderr.contains("a matcher decides for whole virtual hosts"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_fail_open_plugin_leaves_the_decision_to_the_builtin() {
    let backend = Upstream::start("backend").await;
    let plugin = hostile_matcher() + "  failStrategy: FAIL_OPEN\n";
    let gateway = Gateway::start_with(&two_hosts(backend.addr.port(), "b", &plugin), |command| {
        command.args(["--access-log", "access.log"]);
    });
    let client = Client::http1(gateway.addr("default/gw/http"));
    // The plugin traps on /trap; failing open, the built-in matcher routes it.
    assert_eq!(client.get("a", "/trap").await.status, 200);
    assert_eq!(client.get("a", "/fine").await.status, 200);
    let log = gateway.dir.path().join("access.log");
    let matched_by = |path: &'static str| {
        let log = log.clone();
        async move {
            crate::support::eventually::eventually(format!("the {path} line"), || async {
                support::access_log(&log)
                    .into_iter()
                    .find(|line| line["path"] == path)
            })
            .await["policies"][0]["policy"]
                .clone()
        }
    };
    assert_eq!(matched_by("/trap").await, "builtin:route-match");
    assert_eq!(matched_by("/fine").await, "default/matcher");
}

/// How many of `count` requests for `host` each upstream (by name) served.
async fn spread(client: &Client, host: &str, count: usize) -> BTreeMap<String, usize> {
    let mut served = BTreeMap::new();
    for _ in 0..count {
        let reply = client.get(host, "/").await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let name = reply.json()["name"].as_str().unwrap().to_string();
        *served.entry(name).or_default() += 1;
    }
    served
}

#[tokio::test(flavor = "multi_thread")]
async fn a_latency_aware_balancer_steers_one_service_away_from_its_slow_endpoint() {
    let fast = Upstream::start("fast").await;
    let slow = Upstream::slow("slow", 40).await;
    let endpoints = [fast.addr.port(), slow.addr.port()];
    let plugin = wasm_plugin(
        "peak-ewma",
        support::plugin("rust_peak_ewma.wasm").display(),
        &[],
        "  targetRefs: [{kind: ServiceEntry, name: a}]\n",
    );
    let gateway = Gateway::start(&two_services(endpoints, &format!("---\n{plugin}")));
    let client = Client::http1(gateway.addr("default/gw/http"));
    // Each endpoint is tried once while it has no latency; then the fast one wins.
    let a = spread(&client, "a", 40).await;
    assert!(a.get("slow").copied().unwrap_or(0) <= 3, "service a: {a:?}");
    // Service b keeps the built-in LEAST_REQUEST, blind to latency: one request at a
    // time ties, and the slow endpoint gets about half.
    let b = spread(&client, "b", 40).await;
    assert!(b.get("slow").copied().unwrap_or(0) >= 8, "service b: {b:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_budget_plugin_caps_one_routes_retries_while_the_other_retries_each_failure() {
    let backend = Upstream::failing("backend", 503).await;
    let retries = "    retries: {attempts: 3, retryOn: 5xx}\n";
    let routes = format!(
        "  - name: budget\n    match: [{{uri: {{prefix: /budget}}}}]\n{retries}    route: [{{destination: {{host: backend}}}}]\n  - name: rest\n{retries}    route: [{{destination: {{host: backend}}}}]\n"
    );
    let plugin = wasm_plugin(
        "retry-budget",
        support::plugin("rust_retry_budget.wasm").display(),
        &["shop/budget"],
        "  pluginConfig: {percent: 0, min_per_second: 2}\n",
    );
    let config = format!(
        "{GATEWAY}---\n{}---\n{}---\n{plugin}",
        service("backend", &[backend.addr.port()]),
        support::config::virtual_service("shop", "*", &routes),
    );
    let gateway = Gateway::start(&config);
    let client = Client::http1(gateway.addr("default/gw/http"));
    let hits = async |path: &str| {
        let before = backend.hits();
        for _ in 0..10 {
            assert_eq!(client.get("backend", path).await.status, 503);
        }
        backend.hits() - before
    };
    // The built-in retries every failure three times.
    assert_eq!(hits("/rest").await, 40);
    // The budget grants two retries per one-second window, whatever the failures.
    let started = std::time::Instant::now();
    let budgeted = hits("/budget").await;
    let windows = started.elapsed().as_secs() as usize + 2;
    assert!(
        (11..=10 + 2 * windows).contains(&budgeted),
        "{budgeted} attempts for 10 requests over {windows} windows at most"
    );
}

/// Service `a` on the three upstreams, `a1` labelled v1 and the others v2, with a subset
/// per version; host `whole` routes to the whole service, any other to subset v2. The
/// failover balancer's WasmPlugin targets `a` with `section` as its `sectionName`.
fn subset_config(ports: [u16; 3], section: &str) -> String {
    let plugin = wasm_plugin(
        "failover",
        support::plugin("rust_failover.wasm").display(),
        &[],
        &format!("  targetRefs: [{{kind: ServiceEntry, name: a, sectionName: {section}}}]\n"),
    );
    format!(
        "{GATEWAY}---\n{}---\n{}---\n{}---\n{plugin}",
        support::config::versioned_service(
            "a",
            &[("v1", ports[0]), ("v2", ports[1]), ("v2", ports[2])]
        ),
        support::config::destination_rule(
            "a",
            "  subsets:\n  - {name: v1, labels: {version: v1}}\n  - {name: v2, labels: {version: v2}}\n",
        ),
        support::config::virtual_service(
            "shop",
            "*",
            "  - match: [{authority: {exact: whole}}]\n    route: [{destination: {host: a}}]\n  - route: [{destination: {host: a, subset: v2}}]\n",
        ),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_balancer_plugin_can_serve_one_subset_of_a_service() {
    let upstreams = [
        Upstream::start("a1").await,
        Upstream::start("a2").await,
        Upstream::start("a3").await,
    ];
    let ports = [0, 1, 2].map(|i| upstreams[i].addr.port());
    let gateway = Gateway::start(&subset_config(ports, "v2"));
    let client = Client::http1(gateway.addr("default/gw/http"));
    // Subset v2 (a2, a3) is balanced active–passive by the plugin...
    assert_eq!(served_by(&client, "v2", 20).await, ["a2"]);
    // ...while the whole service keeps the built-in, spreading over all three.
    assert_eq!(served_by(&client, "whole", 40).await, ["a1", "a2", "a3"]);

    // A subset no DestinationRule defines is an error at the sectionName.
    let stderr = refused(&subset_config(ports, "v3"));
    assert!(
        stderr.contains("sectionName")
            && stderr.contains("no DestinationRule defines a subset \"v3\""),
        "{stderr}"
    );
}

/// Services `a` and `b`, each on both upstreams, host `a` routed to `a` and any other to
/// `b`; the WasmPlugins in `plugins` follow.
fn two_services(ports: [u16; 2], plugins: &str) -> String {
    format!(
        "{GATEWAY}---\n{}---\n{}---\n{}{plugins}",
        service("a", &ports),
        service("b", &ports),
        support::config::virtual_service(
            "shop",
            "*",
            "  - match: [{authority: {exact: a}}]\n    route: [{destination: {host: a}}]\n  - route: [{destination: {host: b}}]\n",
        ),
    )
}

/// The hostile balancer (last healthy endpoint; traps on `/trap`) as WasmPlugin `name` on
/// ServiceEntry `service`, with `spec` after its targets.
fn hostile_balancer(name: &str, service: &str, spec: &str) -> String {
    let file = support::plugin("portcullis_hostile_balancer.wasm");
    let targets = format!("  targetRefs: [{{kind: ServiceEntry, name: {service}}}]\n");
    format!(
        "---\n{}",
        wasm_plugin(name, file.display(), &[], &(targets + spec))
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_balancer_plugin_fails_its_request_or_leaves_it_to_the_builtin() {
    let upstreams = [Upstream::start("e1").await, Upstream::start("e2").await];
    let ports = upstreams.each_ref().map(|u| u.addr.port());
    let plugins = hostile_balancer("open", "a", "  failStrategy: FAIL_OPEN\n")
        + &hostile_balancer("closed", "b", "");
    let gateway = Gateway::start(&two_services(ports, &plugins));
    let client = Client::http1(gateway.addr("default/gw/http"));
    assert_eq!(served_by(&client, "a", 10).await, ["e2"]);
    assert_eq!(served_by(&client, "b", 10).await, ["e2"]);
    // Failing open, the built-in balancer picks (and spreads); failing closed, a 500.
    let mut spread = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let reply = client.get("a", "/trap").await;
        assert_eq!(reply.status, 200, "{reply:?}");
        spread.insert(reply.json()["name"].as_str().unwrap().to_string());
    }
    assert_eq!(spread.len(), 2, "the built-in spread /trap over {spread:?}");
    assert_eq!(client.get("b", "/trap").await.status, 500);

    // Two balancers for one service are an error naming both.
    let both = hostile_balancer("first", "a", "") + &hostile_balancer("second", "a", "");
    let stderr = refused(&two_services(ports, &both));
    assert!(
        stderr.contains("default/first")
            && stderr.contains("default/second")
            && stderr.contains("endpoint phase of cluster outbound|80||a"),
        "{stderr}"
    );
}
