//! End to end: the access log has Envoy's fields and response flags for routed requests
//! and for each kind of local reply.

mod support;

use std::time::{Duration, Instant};

use support::client::{Client, empty};
use support::config::{GATEWAY, service};
use support::gateway::Gateway;
use support::upstream::Upstream;

/// A gateway config with one VirtualService for `shop.example.com`, whose HTTP routes are
/// `routes` (YAML under `http:`), in front of `upstream` as `backend`.
fn config(upstream: &Upstream, routes: &str) -> String {
    format!(
        "{GATEWAY}---\n{}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: shop
spec:
  hosts: [shop.example.com]
  gateways: [gw]
  http:
{routes}",
        service("backend", &[upstream.addr.port()])
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_access_log_records_fields_and_response_flags() {
    let upstream = Upstream::start("backend").await;
    let config = config(
        &upstream,
        "  - name: aborted
    match: [{uri: {prefix: /abort}}]
    fault: {abort: {httpStatus: 418, percentage: {value: 100}}}
    route: [{destination: {host: backend}}]
  - name: slow
    match: [{uri: {prefix: /slow}}]
    timeout: 100ms
    route: [{destination: {host: backend}}]
  - name: retried
    match: [{uri: {prefix: /retried}}]
    retries: {attempts: 1, retryOn: 5xx}
    route: [{destination: {host: backend}}]
  - name: main
    route: [{destination: {host: backend}}]
",
    );
    let log = tempfile::NamedTempFile::new().unwrap();
    let path = log.path().to_path_buf();
    let gateway = Gateway::start_with(&config, |command| {
        command.arg("--access-log").arg(&path);
    });
    let client = Client::http1(gateway.addr("default/gw/http"));

    let request = client
        .request("GET", "shop.example.com", "/items?page=2")
        .header("user-agent", "curl/8.0")
        .header("x-request-id", "req-1")
        .header("x-forwarded-for", "203.0.113.5")
        .body(empty())
        .unwrap();
    assert_eq!(client.send(request).await.status, 200);
    assert_eq!(client.get("unknown.example.com", "/").await.status, 404);
    assert_eq!(client.get("shop.example.com", "/abort").await.status, 418);
    assert_eq!(
        client.get("shop.example.com", "/slow/1000").await.status,
        504
    );
    assert_eq!(
        client
            .get("shop.example.com", "/retried/status/503")
            .await
            .status,
        503
    );

    let started = Instant::now();
    let lines: Vec<serde_json::Value> = loop {
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<_> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if lines.len() >= 5 || started.elapsed() > Duration::from_secs(5) {
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(lines.len(), 5, "{lines:#?}");
    let by_path = |path: &str| {
        lines
            .iter()
            .find(|l| l["path"] == path)
            .unwrap_or_else(|| panic!("no line for {path}: {lines:#?}"))
    };

    let routed = by_path("/items?page=2");
    assert_eq!(routed["method"], "GET");
    assert_eq!(routed["protocol"], "HTTP/1.1");
    assert_eq!(routed["response_code"], 200);
    assert_eq!(routed["response_flags"], "-");
    assert_eq!(routed["authority"], "shop.example.com");
    assert_eq!(routed["user_agent"], "curl/8.0");
    assert_eq!(routed["request_id"], "req-1");
    assert_eq!(routed["x_forwarded_for"], "203.0.113.5");
    assert_eq!(routed["route_name"], "main");
    assert_eq!(routed["upstream_host"], upstream.addr.to_string());
    assert!(routed["bytes_sent"].as_u64().unwrap() > 0);
    assert!(routed["duration"].is_u64() && routed["upstream_service_time"].is_u64());
    assert!(routed["start_time"].as_str().unwrap().ends_with('Z'));

    assert_eq!(by_path("/")["response_flags"], "NR");
    assert_eq!(by_path("/abort")["response_flags"], "FI");
    assert_eq!(by_path("/slow/1000")["response_flags"], "UT");
    assert_eq!(by_path("/retried/status/503")["response_flags"], "URX");
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_exactly_the_requests_sent_per_label_set() {
    let upstream = Upstream::start("backend").await;
    let config = config(
        &upstream,
        "  - route: [{destination: {host: backend}}]
",
    );
    let gateway = Gateway::start_with(&config, |command| {
        command.args(["--admin", "127.0.0.1:0"]);
    });
    let client = Client::http1(gateway.addr("default/gw/http"));
    let admin = Client::http1(gateway.admin.unwrap());
    for _ in 0..3 {
        assert_eq!(client.get("shop.example.com", "/").await.status, 200);
    }
    for _ in 0..2 {
        assert_eq!(client.get("nowhere.example.com", "/").await.status, 404);
    }
    // Each request is counted when its response ends; give the last one a moment.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let text = String::from_utf8(admin.get("admin", "/metrics").await.body.to_vec()).unwrap();
    let count = |needles: &[&str]| -> f64 {
        text.lines()
            .filter(|l| {
                l.starts_with("istio_requests_total{") && needles.iter().all(|n| l.contains(n))
            })
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum()
    };
    assert_eq!(
        count(&[
            "response_code=\"200\"",
            "destination_service=\"backend\"",
            "response_flags=\"-\""
        ]),
        3.0,
        "{text}"
    );
    assert_eq!(
        count(&[
            "response_code=\"404\"",
            "response_flags=\"NR\"",
            "destination_service=\"unknown\""
        ]),
        2.0,
        "{text}"
    );
    assert!(
        text.contains("istio_request_duration_milliseconds_bucket{"),
        "{text}"
    );
    assert!(text.contains("istio_response_bytes_count{"), "{text}");
}
