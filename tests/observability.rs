//! End to end: the access log has Envoy's fields and response flags for routed requests
//! and for each kind of local reply.

use std::time::Duration;

use crate::assert_eventually;
use crate::support;
use support::access_log;
use support::client::{Client, empty};
use support::config::{GATEWAY, destination_rule, gateway, service, virtual_service, wasm_plugin};
use support::eventually::eventually;
use support::gateway::Gateway;
use support::upstream::Upstream;

/// A gateway config with one VirtualService for `shop.example.com`, whose HTTP routes are
/// `routes` (YAML under `http:`), in front of `upstream` as `backend`, and as `limited`
/// behind a circuit breaker that admits one connection and one pending request.
fn config(upstream: &Upstream, routes: &str) -> String {
    let breaker = "  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 1}
      http: {http1MaxPendingRequests: 1}
";
    [
        GATEWAY,
        &service("backend", &[upstream.addr.port()]),
        &service("limited", &[upstream.addr.port()]),
        &destination_rule("limited", breaker),
        &virtual_service("shop", "shop.example.com", routes),
    ]
    .join("---\n")
}

/// The route to the `limited` service.
const LIMITED: &str = "  - name: limited
    match: [{uri: {prefix: /limited}}]
    route: [{destination: {host: limited}}]
";

/// Sends three requests at once to the `limited` route, which `upstream` holds: one is
/// served, one waits for the connection, and the breaker refuses the third (503 UO); once
/// it has, the upstream lets the other two go on.
async fn overflow(gateway: std::net::SocketAddr, upstream: &Upstream) {
    // A client each, so that no request waits for another's pooled connection.
    let clients = [(); 3].map(|()| Client::http1(gateway));
    let refused = async {
        let [a, b, c] = clients
            .each_ref()
            .map(|client| client.get("shop.example.com", "/limited/hold"));
        tokio::pin!(a, b, c);
        let first = tokio::select! {
            reply = &mut a => (reply, 0),
            reply = &mut b => (reply, 1),
            reply = &mut c => (reply, 2),
        };
        assert_eq!(first.0.status, 503, "the first answer is the refusal");
        upstream.release();
        let rest = match first.1 {
            0 => tokio::join!(b, c),
            1 => tokio::join!(a, c),
            _ => tokio::join!(a, b),
        };
        assert_eq!((rest.0.status.as_u16(), rest.1.status.as_u16()), (200, 200));
    };
    tokio::time::timeout(Duration::from_secs(30), refused)
        .await
        .expect("the burst is answered");
}

/// Sends `GET path` over a plain connection of its own and reads the response's first
/// bytes, which must be a 200's head.
async fn start_response(gateway: std::net::SocketAddr, path: &str) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(gateway).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nhost: shop.example.com\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = vec![0; 4096];
    let read = stream.read(&mut head).await.unwrap();
    assert!(
        head[..read].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        &head[..read]
    );
    stream
}

/// Asks `upstream` for a slow response and hangs up once the request has reached it,
/// before the response comes.
async fn hang_up_before_response(gateway: std::net::SocketAddr, upstream: &Upstream) {
    use tokio::io::AsyncWriteExt as _;
    let hits = upstream.hits();
    let mut stream = tokio::net::TcpStream::connect(gateway).await.unwrap();
    let request = "GET /gone/h1/slow/1500 HTTP/1.1\r\nhost: shop.example.com\r\n\r\n";
    stream.write_all(request.as_bytes()).await.unwrap();
    assert_eventually!(
        upstream.hits() > hits,
        "the request never reached the upstream"
    );
}

/// Asks for a 50 MB body and hangs up after its first bytes: the client went away
/// before the response ended (DC).
async fn hang_up_mid_body(gateway: std::net::SocketAddr) {
    drop(start_response(gateway, "/bytes/50000000").await);
}

/// Asks for a body the upstream breaks off after 200 kB, and reads until the gateway
/// closes the connection (UC).
async fn read_cut_off_body(gateway: std::net::SocketAddr) {
    use tokio::io::AsyncReadExt as _;
    let mut stream = start_response(gateway, "/bytes/200000/cut").await;
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the gateway kept the connection open");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_access_log_records_fields_and_response_flags() {
    let upstream = Upstream::start("backend").await;
    let config = config(
        &upstream,
        &("  - name: aborted
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
"
        .to_string()
            + LIMITED
            + "  - name: main
    route: [{destination: {host: backend}}]
"),
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
    overflow(gateway.addr("default/gw/http"), &upstream).await;
    hang_up_mid_body(gateway.addr("default/gw/http")).await;
    read_cut_off_body(gateway.addr("default/gw/http")).await;
    hang_up_before_response(gateway.addr("default/gw/http"), &upstream).await;
    let h2 = Client::http2(gateway.addr("default/gw/http"));
    let gone = h2.get("shop.example.com", "/gone/h2/slow/1500");
    assert!(
        tokio::time::timeout(Duration::from_millis(200), gone)
            .await
            .is_err()
    );

    // Tracing headers pass through unchanged; a request without an id gets one.
    let traced = client
        .request("GET", "shop.example.com", "/traced")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .header("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1")
        .body(empty())
        .unwrap();
    let seen = client.send(traced).await.json();
    assert_eq!(
        seen["headers"]["traceparent"],
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    );
    assert_eq!(
        seen["headers"]["b3"],
        "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1"
    );
    let generated = seen["headers"]["x-request-id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(generated.len(), 36, "a UUID: {generated}");

    let lines = log_lines(&path, 13).await;
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
    // As forwarded: the client's address appended.
    assert_eq!(routed["x_forwarded_for"], "203.0.113.5, 127.0.0.1");
    assert_eq!(routed["route_name"], "main");
    assert_eq!(routed["upstream_host"], upstream.addr.to_string());
    assert!(routed["bytes_sent"].as_u64().unwrap() > 0);
    assert!(routed["duration"].is_u64() && routed["upstream_service_time"].is_u64());
    assert!(routed["start_time"].as_str().unwrap().ends_with('Z'));

    assert_eq!(
        routed["policies"],
        serde_json::json!([{"policy": "builtin:route-match", "decision": "route main"}])
    );
    assert_eq!(
        by_path("/abort")["policies"],
        serde_json::json!([
            {"policy": "builtin:route-match", "decision": "route aborted"},
            {"policy": "builtin:fault", "decision": "abort 418"},
        ])
    );
    assert_eq!(by_path("/")["response_flags"], "NR");
    // Envoy's response code details: what made each response.
    for (path, details) in [
        ("/items?page=2", "via_upstream"),
        ("/", "route_not_found"),
        ("/abort", "fault_filter_abort"),
        ("/slow/1000", "response_timeout"),
        ("/retried/status/503", "via_upstream"),
    ] {
        assert_eq!(by_path(path)["response_code_details"], details, "{path}");
    }
    let overflowed = lines.iter().find(|l| l["response_flags"] == "UO").unwrap();
    assert_eq!(
        overflowed["response_code_details"],
        "upstream_reset_before_response_started{overflow}"
    );
    assert_eq!(by_path("/abort")["response_flags"], "FI");
    assert_eq!(by_path("/abort")["route_name"], "aborted");
    assert_eq!(by_path("/slow/1000")["response_flags"], "UT");
    // Durations are in milliseconds: the route's 100 ms timeout cut this one off.
    let timed_out = by_path("/slow/1000")["duration"].as_u64().unwrap();
    assert!((100..1000).contains(&timed_out), "{timed_out} ms");
    // The upstream host is the one tried, answered or not.
    assert_eq!(
        by_path("/slow/1000")["upstream_host"],
        upstream.addr.to_string()
    );
    assert_eq!(by_path("/retried/status/503")["response_flags"], "URX");
    let flags: Vec<_> = lines
        .iter()
        .filter(|l| l["path"] == "/limited/hold")
        .map(|l| l["response_flags"].as_str().unwrap())
        .collect();
    assert_eq!(flags.iter().filter(|f| **f == "UO").count(), 1, "{flags:?}");
    assert_eq!(by_path("/slow/1000")["route_name"], "slow");
    let hung_up = by_path("/bytes/50000000");
    assert_eq!(hung_up["response_code"], 200);
    assert_eq!(hung_up["response_flags"], "DC");
    assert!(
        hung_up["bytes_sent"].as_u64().unwrap() < 50_000_000,
        "{hung_up}"
    );
    let cut_off = by_path("/bytes/200000/cut");
    assert_eq!(cut_off["response_code"], 200);
    assert_eq!(cut_off["response_flags"], "UC");
    assert_eq!(cut_off["bytes_sent"], 200_000);
    // Clients that went away before the response: status 0 and DC, as in Envoy.
    for (gone, protocol) in [
        ("/gone/h1/slow/1500", "HTTP/1.1"),
        ("/gone/h2/slow/1500", "HTTP/2"),
    ] {
        let line = by_path(gone);
        assert_eq!(line["protocol"], protocol, "{line}");
        assert_eq!(line["response_code"], 0, "{line}");
        assert_eq!(line["response_flags"], "DC", "{line}");
        assert_eq!(line["route_name"], "main", "{line}");
        assert_eq!(line["upstream_host"], upstream.addr.to_string(), "{line}");
        assert!(line["duration"].as_u64().unwrap() < 1500, "{line}");
    }
    assert_eq!(by_path("/traced")["request_id"], generated.as_str());
}

/// Reads the JSON access log at `path` until it has `count` lines, and checks it has no
/// more.
async fn log_lines(path: &std::path::Path, count: usize) -> Vec<serde_json::Value> {
    let lines = eventually(format!("{count} access log lines"), || async {
        let lines = access_log(path);
        (lines.len() >= count).then_some(lines)
    })
    .await;
    assert_eq!(lines.len(), count, "{lines:#?}");
    lines
}

/// The sum of the `istio_requests_total` samples in the Prometheus text `text`.
fn requests_counted(text: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with("istio_requests_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_that_run_out_on_connect_failures_are_flagged_urx() {
    let dir = tempfile::tempdir().unwrap();
    let ca = support::certs::TestCa::new(dir.path());
    ca.issue("upstream", &["refusing.test"]);
    // A TLS 1.3 server that wants a client certificate refuses the gateway (which has
    // none) only after the handshake completes on the gateway's side.
    let refusing = Upstream::start_tls(
        "refusing",
        support::upstream::UpstreamTls {
            certificate: &dir.path().join("upstream.pem"),
            key: &dir.path().join("upstream.key"),
            client_ca: Some(&dir.path().join("ca.pem")),
            client_required: true,
        },
    )
    .await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let ca_pem = dir.path().join("ca.pem").display().to_string();
    let tls = format!(
        "  trafficPolicy: {{tls: {{mode: SIMPLE, caCertificates: {ca_pem}, sni: refusing.test}}}}\n"
    );
    let config = format!(
        "{GATEWAY}---\n{}---\n{}---\n{}---\n{}",
        service("closed", &[closed_port]),
        service("refusing", &[refusing.addr.port()]),
        destination_rule("refusing", &tls),
        virtual_service(
            "shop",
            "shop.example.com",
            "  - name: explicit
    match: [{uri: {prefix: /explicit}}]
    retries: {attempts: 3, retryOn: connect-failure}
    route: [{destination: {host: closed}}]
  - name: refused
    match: [{uri: {prefix: /refused}}]
    retries: {attempts: 2, retryOn: connect-failure}
    route: [{destination: {host: refusing}}]
  - name: default
    route: [{destination: {host: closed}}]
"
        ),
    );
    let log = tempfile::NamedTempFile::new().unwrap();
    let gateway = Gateway::start_with(&config, |command| {
        command.arg("--access-log").arg(log.path());
    });
    let client = Client::http1(gateway.addr("default/gw/http"));
    for path in ["/explicit", "/refused", "/default"] {
        let reply = client.get("shop.example.com", path).await;
        assert_eq!(reply.status, 503, "{path}: {}", reply.text());
        assert!(reply.text().contains("connection failure"), "{path}");
    }
    assert_eq!(refusing.hits(), 0, "the refusing upstream read a request");
    let lines = log_lines(log.path(), 3).await;
    let retried = |path: &str, attempts: u32| {
        let line = lines.iter().find(|l| l["path"] == path).unwrap();
        assert_eq!(line["response_flags"], "UF,URX", "{line}");
        // The retry policy's decisions are on the line, one per failed attempt.
        let mut decisions: Vec<String> = (1..=attempts)
            .map(|n| format!("attempt {n} failed: retry in"))
            .collect();
        decisions.push(format!("attempt {} failed: no retry", attempts + 1));
        let said: Vec<&str> = line["policies"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["policy"] == "builtin:retry")
            .map(|p| p["decision"].as_str().unwrap())
            .collect();
        assert_eq!(said.len(), decisions.len(), "{line}");
        for (said, expected) in said.iter().zip(&decisions) {
            assert!(said.starts_with(expected.as_str()), "{said} / {expected}");
        }
        // Envoy logs the x-forwarded-for it forwards: the client's address, appended.
        assert_eq!(line["x_forwarded_for"], "127.0.0.1", "{line}");
    };
    retried("/explicit", 3);
    retried("/refused", 2);
    // Istio's default policy: 2 retries on connect-failure and more.
    retried("/default", 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_exactly_the_requests_sent_per_label_set() {
    let upstream = Upstream::start("backend").await;
    let config = config(
        &upstream,
        &(LIMITED.to_string() + "  - route: [{destination: {host: backend}}]\n"),
    );
    let log = tempfile::NamedTempFile::new().unwrap();
    let path = log.path().to_path_buf();
    let gateway = Gateway::start_with(&config, |command| {
        command.args(["--admin", "127.0.0.1:0", "--access-log-format", "text"]);
        command.arg("--access-log").arg(&path);
    });
    let client = Client::http1(gateway.addr("default/gw/http"));
    let admin = Client::http1(gateway.admin.unwrap());
    for _ in 0..3 {
        assert_eq!(client.get("shop.example.com", "/").await.status, 200);
    }
    for _ in 0..2 {
        assert_eq!(client.get("nowhere.example.com", "/").await.status, 404);
    }
    overflow(gateway.addr("default/gw/http"), &upstream).await;
    // Workers count finished requests in batches, at least every 100 ms: scrape until
    // all 8 are in (3 routed, 2 without a route, the burst's 3).
    let text = eventually("8 requests in istio_requests_total", || async {
        let text = String::from_utf8(admin.get("admin", "/metrics").await.body.to_vec()).unwrap();
        (requests_counted(&text) >= 8.0).then_some(text)
    })
    .await;

    // Prometheus text: comments, and `name{labels} value` samples.
    let sample = regex::Regex::new(r#"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? [-+0-9.eEInfa]+$"#).unwrap();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(sample.is_match(line), "not a Prometheus sample: {line}");
    }
    let series = |metric: &str, needles: &[&str]| -> f64 {
        text.lines()
            .filter(|l| {
                l.strip_prefix(metric)
                    .is_some_and(|rest| rest.starts_with(['{', ' ']))
                    && needles.iter().all(|n| l.contains(n))
            })
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum()
    };
    let count = |needles: &[&str]| series("istio_requests_total", needles);
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
    assert_eq!(
        count(&[
            "response_code=\"503\"",
            "response_flags=\"UO\"",
            "destination_service=\"limited\""
        ]),
        1.0,
        "{text}"
    );

    // The gateway's own: breaker overflows and connections per cluster (Envoy's names),
    // policy calls, configuration.
    let limited = "cluster_name=\"outbound|80||limited\"";
    assert_eq!(
        series(
            "envoy_cluster_upstream_rq_pending_overflow_total",
            &[limited]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        series("envoy_cluster_upstream_cx_total", &[limited]),
        1.0,
        "{text}"
    );
    assert_eq!(
        series("envoy_cluster_upstream_cx_active", &[limited]),
        1.0,
        "{text}"
    );
    assert_eq!(
        series("envoy_cluster_upstream_rq_active", &[limited]),
        0.0,
        "{text}"
    );
    // Every request for the VirtualService's host (3 + 3) went through the route matcher
    // once; the 404s were refused by host before any policy ran.
    assert_eq!(
        series("portcullis_plugin_calls_total", &["match"]),
        6.0,
        "{text}"
    );
    assert!(series("portcullis_plugin_memory_high_water_bytes", &["match"]) > 0.0);
    assert_eq!(
        series("portcullis_plugin_call_duration_seconds_count", &["match"]),
        6.0
    );
    assert_eq!(series("portcullis_config_generation", &[]), 1.0, "{text}");
    assert!(text.contains("portcullis_config_reloads_total{result=\"failure\"} 0"));

    // The text access log, in Envoy's default format then route and decisions, is
    // written out whole when the gateway stops.
    assert!(gateway.terminate().success());
    let log = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 8, "{log}");
    let routed = regex::Regex::new(&format!(
        r#"^\[\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z\] "GET / HTTP/1.1" 200 - 0 \d+ \d+ \d+ "127.0.0.1" "-" "[0-9a-f-]{{36}}" "shop.example.com" "{}" shop.1 "builtin:route-match=route shop.1"$"#,
        upstream.addr
    ))
    .unwrap();
    assert_eq!(
        lines.iter().filter(|l| routed.is_match(l)).count(),
        3,
        "{log}"
    );
    let refused = regex::Regex::new(
        r#"^\[[^\]]+\] "GET / HTTP/1.1" 404 NR 0 0 \d+ - "127.0.0.1" "-" "[0-9a-f-]{36}" "nowhere.example.com" "-" - ""$"#,
    )
    .unwrap();
    assert_eq!(
        lines.iter().filter(|l| refused.is_match(l)).count(),
        2,
        "{log}"
    );
    assert_eq!(
        lines.iter().filter(|l| l.contains(" 503 UO ")).count(),
        1,
        "{log}"
    );
}

/// An OTLP/HTTP collector on loopback that keeps every export it receives: the path, the
/// content type and the body.
async fn collector() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::Mutex<Vec<(String, String, bytes::Bytes)>>>,
) {
    use http_body_util::BodyExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = std::sync::Arc::<std::sync::Mutex<Vec<_>>>::default();
    let kept = received.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let kept = kept.clone();
            let service = hyper::service::service_fn(
                move |request: hyper::Request<hyper::body::Incoming>| {
                    let kept = kept.clone();
                    async move {
                        let path = request.uri().path().to_string();
                        let kind = request
                            .headers()
                            .get("content-type")
                            .map(|v| v.to_str().unwrap().to_string())
                            .unwrap_or_default();
                        let body = request.into_body().collect().await?.to_bytes();
                        kept.lock().unwrap().push((path, kind, body));
                        Ok::<_, hyper::Error>(hyper::Response::new(http_body_util::Empty::<
                            bytes::Bytes,
                        >::new(
                        )))
                    }
                },
            );
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
            );
        }
    });
    (addr, received)
}

#[tokio::test(flavor = "multi_thread")]
async fn exports_a_span_per_request_and_passes_its_context_upstream() {
    let upstream = Upstream::start("backend").await;
    let (collector, received) = collector().await;
    let config = config(&upstream, "  - route: [{destination: {host: backend}}]\n");
    let gateway = Gateway::start_with(&config, |command| {
        command
            .args(["--otlp-endpoint", &format!("http://{collector}/v1/traces")])
            .env("OTEL_BSP_SCHEDULE_DELAY", "50");
    });
    let client = Client::http1(gateway.addr("default/gw/http"));
    let (trace, parent) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let request = client
        .request("GET", "shop.example.com", "/traced")
        .header("traceparent", format!("00-{trace}-{parent}-01"))
        .body(empty())
        .unwrap();
    let seen = client.send(request).await.json();

    // The upstream is told of the gateway's span: same trace, a new parent.
    let forwarded = seen["headers"]["traceparent"].as_str().unwrap().to_string();
    let parts: Vec<&str> = forwarded.split('-').collect();
    assert_eq!(parts.len(), 4, "{forwarded}");
    assert_eq!(parts[1], trace);
    assert_ne!(parts[2], parent);

    // The span reaches the collector as OTLP protobuf, naming both span ids.
    let (path, kind, body) = eventually("no span exported", || async {
        received.lock().unwrap().first().cloned()
    })
    .await;
    assert_eq!(path, "/v1/traces");
    assert_eq!(kind, "application/x-protobuf");
    for id in [trace, parent, parts[2]] {
        let raw = hex::decode(id).unwrap();
        assert!(
            body.windows(raw.len()).any(|w| w == raw.as_slice()),
            "{id} is not in the export"
        );
    }
}

/// Scrapes `/metrics` with `accept` until `istio_requests_total` adds up to `total`;
/// returns the content type and the text.
async fn scrape(admin: &Client, accept: &str, total: f64) -> (String, String) {
    // Workers count finished requests in batches, at least every 100 ms.
    eventually(
        format!("{total} requests in istio_requests_total"),
        || async {
            let request = admin
                .request("GET", "admin", "/metrics")
                .header("accept", accept);
            let reply = admin.send(request.body(empty()).unwrap()).await;
            let text = reply.text();
            let kind = reply.headers["content-type"].to_str().unwrap().to_string();
            (requests_counted(&text) >= total).then_some((kind, text))
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn request_metrics_carry_istios_labels_buckets_and_format() {
    let upstream = Upstream::start("reviews").await;
    let host = "reviews.shop.svc.cluster.local";
    let config = format!(
        "{GATEWAY}---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: reviews
spec:
  hosts: [{host}]
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  endpoints:
  - address: 127.0.0.1
    ports: {{http: {port}}}
    labels: {{app: reviews, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: {host}
  subsets: [{{name: canary, labels: {{version: v1}}}}]
---
{vs}",
        port = upstream.addr.port(),
        vs = virtual_service(
            "shop",
            "shop.example.com",
            &format!(
                "  - name: aborted
    match: [{{uri: {{prefix: /aborted}}}}]
    fault: {{abort: {{httpStatus: 503, percentage: {{value: 100}}}}}}
    route: [{{destination: {{host: {host}, subset: canary}}}}]
  - name: grpc
    match: [{{uri: {{prefix: /grpc}}}}]
    fault: {{abort: {{grpcStatus: UNAVAILABLE, percentage: {{value: 100}}}}}}
    route: [{{destination: {{host: {host}, subset: canary}}}}]
  - route: [{{destination: {{host: {host}, subset: canary}}}}]
"
            )
        ),
    );
    let gateway = Gateway::start_with(&config, |command| {
        command.args(["--admin", "127.0.0.1:0"]);
    });
    let client = Client::http1(gateway.addr("default/gw/http"));
    let admin = Client::http1(gateway.admin.unwrap());
    for _ in 0..3 {
        assert_eq!(client.get("shop.example.com", "/").await.status, 200);
    }
    assert_eq!(
        client.get("shop.example.com", "/slow/1500").await.status,
        200
    );
    assert_eq!(client.get("shop.example.com", "/aborted").await.status, 503);
    let grpc = client
        .request("POST", "shop.example.com", "/grpc.Reviews/Get")
        .header("content-type", "application/grpc")
        .body(empty())
        .unwrap();
    assert_eq!(client.send(grpc).await.headers["grpc-status"], "14");
    // gRPC streams to the echoing upstream over HTTP/2: three messages in one buffered
    // body, two in a streamed one whose frames split a message's prefix.
    let h2 = Client::http2(gateway.addr("default/gw/http"));
    let message = |len: u32| [&[0][..], &len.to_be_bytes(), &vec![b'm'; len as usize]].concat();
    let buffered = [message(3), message(0), message(300)].concat();
    let streamed = [message(10), message(20)].concat();
    let (head, tail) = streamed.split_at(17);
    let frames = [head.to_vec(), tail.to_vec()]
        .map(|part| Ok::<_, hyper::Error>(hyper::body::Frame::data(bytes::Bytes::from(part))));
    let bodies = [
        support::client::bytes(buffered),
        http_body_util::BodyExt::boxed(http_body_util::StreamBody::new(
            futures_util::stream::iter(frames),
        )),
    ];
    for body in bodies {
        let request = h2
            .request("POST", "shop.example.com", "/echo/grpc.Reviews/Watch")
            .header("content-type", "application/grpc")
            .body(body)
            .unwrap();
        assert_eq!(h2.send(request).await.status, 200);
    }

    // Prometheus's text format when the scraper asks for it (as Prometheus 0.0.4
    // scrapers and Envoy's stats endpoint do).
    let (kind, text) = scrape(&admin, "text/plain;version=0.0.4", 8.0).await;
    assert_eq!(kind, "text/plain; version=0.0.4; charset=utf-8");
    assert!(
        text.contains("# TYPE istio_requests_total counter\n"),
        "{text}"
    );
    assert!(!text.contains("# EOF"), "{text}");
    let samples = |metric: &str, needles: &[&str]| -> f64 {
        text.lines()
            .filter(|l| {
                l.strip_prefix(metric)
                    .is_some_and(|rest| rest.starts_with('{'))
                    && needles.iter().all(|n| l.contains(n))
            })
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum()
    };

    // Every standard label, filled as Istio's ingress gateway fills them: the served
    // endpoint's `app` and `version` (not the subset's name), the service's name and
    // namespace from its Kubernetes host.
    let served = [
        "reporter=\"source\"",
        "source_workload=\"istio-ingressgateway\"",
        "source_workload_namespace=\"istio-system\"",
        "source_principal=\"unknown\"",
        "source_app=\"istio-ingressgateway\"",
        "source_version=\"unknown\"",
        "source_cluster=\"Kubernetes\"",
        "destination_workload=\"unknown\"",
        "destination_workload_namespace=\"default\"",
        "destination_principal=\"unknown\"",
        "destination_app=\"reviews\"",
        "destination_version=\"v1\"",
        "destination_service=\"reviews.shop.svc.cluster.local\"",
        "destination_service_name=\"reviews\"",
        "destination_service_namespace=\"shop\"",
        "destination_cluster=\"unknown\"",
        "request_protocol=\"http\"",
        "response_code=\"200\"",
        "grpc_response_status=\"\"",
        "response_flags=\"-\"",
        "connection_security_policy=\"unknown\"",
        "source_canonical_service=\"istio-ingressgateway\"",
        "destination_canonical_service=\"reviews\"",
        "source_canonical_revision=\"latest\"",
        "destination_canonical_revision=\"v1\"",
    ];
    assert_eq!(samples("istio_requests_total", &served), 4.0, "{text}");

    // A fault-aborted request names the route's destination; no endpoint served it.
    let aborted = [
        "destination_service=\"reviews.shop.svc.cluster.local\"",
        "destination_version=\"unknown\"",
        "response_code=\"503\"",
        "response_flags=\"FI\"",
    ];
    assert_eq!(samples("istio_requests_total", &aborted), 1.0, "{text}");
    // gRPC: the protocol, and the status of a trailers-only response.
    let grpc = [
        "request_protocol=\"grpc\"",
        "response_code=\"200\"",
        "grpc_response_status=\"14\"",
        "response_flags=\"FI\"",
    ];
    assert_eq!(samples("istio_requests_total", &grpc), 1.0, "{text}");
    // Messages are counted per gRPC stream, each way.
    let streams = [
        "request_protocol=\"grpc\"",
        "response_code=\"200\"",
        "destination_version=\"v1\"",
        "response_flags=\"-\"",
    ];
    assert_eq!(samples("istio_requests_total", &streams), 2.0, "{text}");
    assert_eq!(
        samples("istio_request_messages_total", &streams),
        5.0,
        "{text}"
    );
    assert_eq!(
        samples("istio_response_messages_total", &streams),
        5.0,
        "{text}"
    );
    assert_eq!(
        samples("istio_request_messages_total", &served),
        0.0,
        "{text}"
    );

    // Istio's duration buckets: the three quick requests are within a second, the slow
    // one is not.
    let duration = "istio_request_duration_milliseconds_bucket";
    let bucket = |le: &str| {
        let mut needles = served.to_vec();
        needles.push(le);
        samples(duration, &needles)
    };
    assert_eq!(bucket("le=\"1000\""), 3.0, "{text}");
    assert_eq!(bucket("le=\"2500\""), 4.0, "{text}");
    assert_eq!(bucket("le=\"+Inf\""), 4.0, "{text}");
    for le in [
        "0.5", "1", "5", "10", "25", "50", "100", "250", "500", "3.6e+06",
    ] {
        assert!(
            text.contains(&format!("{duration}{{le=\"{le}\",")),
            "no le={le} bucket in\n{text}"
        );
    }

    // OpenMetrics when the scraper prefers it, as Prometheus does by default.
    let prometheus =
        "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
    let (kind, text) = scrape(&admin, prometheus, 8.0).await;
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    assert!(text.contains("# TYPE istio_requests counter\n"), "{text}");
    assert!(text.ends_with("# EOF\n"), "{text}");
}

/// Writes `certs/shop.pem` and `certs/shop.key` under `dir`: a self-signed certificate
/// for `shop.example.com` that expires in `days`.
fn expiring_certificate(dir: &std::path::Path, days: i64) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["shop.example.com".to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "shop.example.com");
    params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(days);
    let certificate = params.self_signed(&key).unwrap();
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::write(certs.join("shop.pem"), certificate.pem()).unwrap();
    std::fs::write(certs.join("shop.key"), key.serialize_pem()).unwrap();
}

/// A gateway with an HTTP and an HTTPS server for `shop.example.com`, two routes, and
/// the hostile test filter (failing open) on the `plugged` route.
fn dashboard_config(upstream: &Upstream) -> String {
    let routes = "  - name: plugged
    match: [{uri: {prefix: /plugged}}]
    route: [{destination: {host: backend}}]
  - name: catalog
    route: [{destination: {host: backend}}]
";
    let servers = "  - port: {number: 0, name: http, protocol: HTTP}
    bind: 127.0.0.1
    hosts: [\"*\"]
  - port: {number: 0, name: https, protocol: HTTPS}
    bind: 127.0.0.1
    hosts: [shop.example.com]
    tls: {mode: SIMPLE, serverCertificate: certs/shop.pem, privateKey: certs/shop.key}
";
    [
        gateway(servers),
        service("backend", &[upstream.addr.port()]),
        virtual_service("shop", "shop.example.com", routes),
        wasm_plugin(
            "hostile",
            support::plugin("portcullis_hostile_filter.wasm").display(),
            &["shop/plugged"],
            "  failStrategy: FAIL_OPEN\n",
        ),
    ]
    .join("---\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_shows_routes_plugins_certificates_and_reloads_in_a_browser() {
    let upstream = Upstream::start("backend").await;
    let dir = tempfile::tempdir().unwrap();
    expiring_certificate(dir.path(), 5);
    std::fs::write(dir.path().join("gateway.yaml"), dashboard_config(&upstream)).unwrap();
    let gateway = Gateway::launch(dir, "gateway.yaml", |command| {
        command.args(["--admin", "127.0.0.1:0"]);
    });
    let client = Client::http1(gateway.addr("default/gw/http"));
    let admin = Client::http1(gateway.admin.unwrap());
    for _ in 0..5 {
        assert_eq!(client.get("shop.example.com", "/").await.status, 200);
    }
    // The filter traps on `/trap`; failing open, the request is served.
    for _ in 0..3 {
        let reply = client.get("shop.example.com", "/plugged/trap").await;
        assert_eq!(reply.status, 200);
    }
    // A config that does not load: the reload fails and the old config serves.
    let config = gateway.dir.path().join("gateway.yaml");
    let good = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, good.replace("name: catalog", "nmae: catalog")).unwrap();
    let reloads = eventually("the broken config's reload never failed", || async {
        let reloads = admin.get("admin", "/reloads").await.json();
        (reloads["failures"] == 1).then_some(reloads)
    })
    .await;

    // The JSON views the dashboard reads.
    let failed = reloads["history"][0]["error"].as_str().unwrap();
    assert!(failed.contains("gateway.yaml:"), "{failed}");
    let routes = eventually("the catalog route's 5 requests", || async {
        let routes = admin.get("admin", "/routes").await.json();
        let catalog = routes
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "catalog");
        catalog
            .is_some_and(|r| r["requests"] == 5)
            .then_some(routes)
    })
    .await;
    let route = |name: &str| {
        routes
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(route("catalog")["requests"], 5, "{routes}");
    assert_eq!(route("catalog")["duration_ms"]["count"], 5, "{routes}");
    assert_eq!(route("plugged")["requests"], 3, "{routes}");
    let chain = route("plugged")["policies"].to_string();
    assert!(
        chain.contains("builtin:route-match") && chain.contains("hostile"),
        "{chain}"
    );
    let listeners = admin.get("admin", "/listeners").await.json();
    let https = listeners
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["protocol"] == "HTTPS")
        .unwrap();
    let days = &https["servers"][0]["certificates"][0]["days_left"];
    assert!(*days == 4 || *days == 5, "{listeners}");
    let clusters = admin.get("admin", "/clusters").await.json();
    assert_eq!(clusters[0]["endpoints"][0]["ejected"], false, "{clusters}");
    let metrics = admin.get("admin", "/metrics").await.text();
    assert!(
        metrics.contains("envoy_server_days_until_first_cert_expiring 4")
            || metrics.contains("envoy_server_days_until_first_cert_expiring 5"),
        "{metrics}"
    );
    assert!(metrics.contains("portcullis_config_last_reload_successful 0"));
    // The Grafana dashboard and the alerts in deploy/ query only metrics the gateway has.
    let names = regex::Regex::new(r"\b(?:istio|envoy|portcullis)_[a-z0-9_]+").unwrap();
    for file in [
        "grafana/portcullis-gateway.json",
        "prometheus/portcullis-alerts.yaml",
    ] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../deploy")
            .join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let used: std::collections::BTreeSet<&str> =
            names.find_iter(&text).map(|m| m.as_str()).collect();
        assert!(used.len() >= 5, "{file} queries {used:?}");
        for name in used {
            let exported = metrics.lines().any(|line| {
                line.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(['{', ' ']))
            });
            assert!(exported, "{file} queries {name}, which /metrics lacks");
        }
    }

    // The page, rendered by a real browser from those views.
    let Some(chromium) = support::browser::chromium() else {
        return;
    };
    // One read of the views (the page reads them every 2 s; headless Chromium's virtual
    // time would run later reads with no real time, hence no traffic, between them).
    let url = format!("http://{}/", gateway.admin.unwrap());
    let dom = support::browser::dom(&chromium, &url, 1_000);
    let page = scraper::Html::parse_document(&dom);
    let select = |css: &str| {
        let selector = scraper::Selector::parse(css).unwrap();
        page.select(&selector)
            .map(|e| e.text().collect::<String>())
            .collect::<Vec<_>>()
    };
    assert_eq!(select("body[data-loaded=true]").len(), 1, "{dom}");
    assert_eq!(
        select("#routes tr.route[data-route=catalog]").len(),
        1,
        "{dom}"
    );
    assert_eq!(
        select("#routes tr.route[data-route=plugged]").len(),
        1,
        "{dom}"
    );
    // A first read shows the percentiles since start; rates need a second read.
    let live = |cell: &str| select(&format!("#routes tr.route[data-route=catalog] .{cell}"));
    for percentile in ["p50", "p99"] {
        let shown = live(percentile)[0].trim().parse::<f64>();
        assert!(shown.is_ok_and(|ms| ms > 0.0 && ms <= 1_000.0), "{dom}");
    }
    assert_eq!(live("req-rate")[0].trim(), "—", "{dom}");
    let failing = select("#plugins tr.plugin[data-health=failing]");
    assert!(failing.iter().any(|row| row.contains("hostile")), "{dom}");
    assert!(
        !select("#plugins tr.plugin.builtin[data-health=ok]").is_empty(),
        "{dom}"
    );
    let expiry = select("#listeners tr.listener .cert-expiry");
    assert!(
        expiry
            .iter()
            .any(|cell| cell.contains('4') || cell.contains('5')),
        "{dom}"
    );
    assert_eq!(
        select("#reloads tr.reload[data-result=failure]").len(),
        1,
        "{dom}"
    );
    let last_error = select("#last-error:not([hidden]) pre");
    assert!(
        last_error.iter().any(|e| e.contains("gateway.yaml:")),
        "{dom}"
    );

    // A screenshot, kept with the build's test files for a person to look at.
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    support::browser::screenshot(&chromium, &url, 1_000, &shot, (1400, 1800));
    eprintln!("dashboard screenshot: {}", shot.display());
}
