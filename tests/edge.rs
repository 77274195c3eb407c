//! What the config asks for happens on the wire: CORS (checked header by header as
//! Envoy's filter sets them) and request mirroring.

use crate::support;
use support::access_log;
use support::admin::until_reloaded;
use support::client::{Client, Reply, empty};
use support::config::{GATEWAY, destination_rule, route_to, service, virtual_service};
use support::eventually::eventually;
use support::gateway::Gateway;
use support::upstream::Upstream;

fn cors_config(upstream: &Upstream, unmatched: &str) -> String {
    let routes = format!(
        "  - route:
    - destination: {{host: backend}}
    corsPolicy:
      allowOrigins:
      - exact: https://app.example.com
      - prefix: https://dev.
      - regex: 'https://[a-z]+\\.partner\\.test'
      allowMethods: [GET, POST]
      allowHeaders: [authorization, x-custom]
      exposeHeaders: [x-total]
      maxAge: 24h
      allowCredentials: true
      unmatchedPreflights: {unmatched}
"
    );
    [
        GATEWAY,
        &service("backend", &[upstream.addr.port()]),
        &virtual_service("vs", "backend", &routes),
    ]
    .join("---\n")
}

async fn send(client: &Client, method: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = client.request(method, "backend", "/cors");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    client.send(request.body(empty()).unwrap()).await
}

fn cors_headers(reply: &Reply) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = reply
        .headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("access-control-"))
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
        .collect();
    found.sort();
    found
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = expected
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    pairs.sort();
    pairs
}

#[tokio::test(flavor = "multi_thread")]
async fn cors_preflights_and_actual_requests_get_envoys_headers() {
    let upstream = Upstream::start("backend").await;
    let gateway = Gateway::start(&cors_config(&upstream, "FORWARD"));
    let client = Client::http1(gateway.addr("default/gw/http"));
    let preflight = |origin| {
        [
            ("origin", origin),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "authorization"),
        ]
    };

    for origin in [
        "https://app.example.com",
        "https://dev.x",
        "https://abc.partner.test",
    ] {
        let reply = send(&client, "OPTIONS", &preflight(origin)).await;
        assert_eq!(reply.status, 200, "{origin}");
        assert_eq!(
            cors_headers(&reply),
            pairs(&[
                ("access-control-allow-origin", origin),
                ("access-control-allow-credentials", "true"),
                ("access-control-allow-methods", "GET,POST"),
                ("access-control-allow-headers", "authorization,x-custom"),
                ("access-control-max-age", "86400"),
                // Envoy's preflight answer passes its CORS filter's response side too.
                ("access-control-expose-headers", "x-total"),
            ]),
            "{origin}"
        );
        assert!(reply.body.is_empty());
    }
    assert_eq!(
        upstream.hits(),
        0,
        "answered preflights never reach the upstream"
    );

    // An actual request from an allowed origin: forwarded, its response decorated.
    let reply = send(&client, "GET", &[("origin", "https://app.example.com")]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["path"], "/cors");
    assert_eq!(
        cors_headers(&reply),
        pairs(&[
            ("access-control-allow-origin", "https://app.example.com"),
            ("access-control-allow-credentials", "true"),
            ("access-control-expose-headers", "x-total"),
        ])
    );

    // Other origins, and requests without one, are untouched; their preflights go on
    // to the upstream (FORWARD).
    for origin in [
        "https://evil.test",
        "https://x.partner.test.evil",
        "http://app.example.com",
    ] {
        let reply = send(&client, "GET", &[("origin", origin)]).await;
        assert_eq!(
            (reply.status.as_u16(), cors_headers(&reply)),
            (200, vec![]),
            "{origin}"
        );
    }
    assert!(cors_headers(&send(&client, "GET", &[]).await).is_empty());
    let hits = upstream.hits();
    let reply = send(&client, "OPTIONS", &preflight("https://evil.test")).await;
    assert_eq!(reply.json()["method"], "OPTIONS");
    assert!(cors_headers(&reply).is_empty());
    assert_eq!(upstream.hits(), hits + 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn unmatched_preflights_are_answered_without_an_origin_when_ignored() {
    let upstream = Upstream::start("backend").await;
    let gateway = Gateway::start(&cors_config(&upstream, "IGNORE"));
    let client = Client::http1(gateway.addr("default/gw/http"));
    let reply = send(
        &client,
        "OPTIONS",
        &[
            ("origin", "https://evil.test"),
            ("access-control-request-method", "GET"),
        ],
    )
    .await;
    assert_eq!(reply.status, 200);
    let headers = cors_headers(&reply);
    assert!(
        !headers
            .iter()
            .any(|(n, _)| n == "access-control-allow-origin"),
        "{headers:?}"
    );
    assert_eq!(upstream.hits(), 0);
}

fn mirror_config(main: &Upstream, mirror_port: u16, percentage: f64) -> String {
    let routes = format!(
        "  - route:
    - destination: {{host: backend}}
    mirror: {{host: shadow}}
    mirrorPercentage: {{value: {percentage}}}
"
    );
    [
        GATEWAY,
        &service("backend", &[main.addr.port()]),
        &service("shadow", &[mirror_port]),
        &virtual_service("vs", "backend", &routes),
    ]
    .join("---\n")
}

/// Waits until `upstream` has `count` reports; returns them.
async fn reports(upstream: &Upstream, count: usize) -> Vec<serde_json::Value> {
    eventually(format!("{count} reports"), || async {
        let reports = upstream.reports();
        (reports.len() >= count).then_some(reports)
    })
    .await
}

/// How many copies of requests the gateway has sent to the `shadow` mirror, as its admin
/// API's metrics count them.
async fn mirrored(admin: &Client) -> usize {
    let metrics = admin.get("admin", "/metrics").await.text();
    let sample = "portcullis_cluster_mirror_requests_total{cluster_name=\"outbound|80||shadow\"} ";
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(sample))
        .map_or(0, |count| count.parse::<f64>().unwrap() as usize)
}

#[tokio::test(flavor = "multi_thread")]
async fn mirrored_requests_reach_the_mirror_with_their_headers_and_body() {
    let (main, shadow) = (
        Upstream::start("backend").await,
        Upstream::start("shadow").await,
    );
    let config = mirror_config(&main, shadow.addr.port(), 100.0);
    let gateway = Gateway::start_with(&config, |command| {
        command.args(["--admin", "127.0.0.1:0"]);
    });
    let client = Client::http1(gateway.addr("default/gw/http"));
    for i in 0..10 {
        let request = client
            .request("POST", "backend", &format!("/upload/{i}?q=1"))
            .header("x-request-id", format!("req-{i}"))
            .body(support::client::bytes(vec![b'x'; 1000 + i]))
            .unwrap();
        let reply = client.send(request).await;
        assert_eq!(
            (reply.status.as_u16(), reply.upstream()),
            (200, "backend".into())
        );
    }
    let copies = reports(&shadow, 10).await;
    assert_eq!(copies.len(), 10, "{copies:?}");
    let mut seen: Vec<(String, String, u64)> = copies
        .iter()
        .map(|c| {
            assert_eq!(c["method"], "POST");
            assert_eq!(
                c["headers"]["host"], "backend",
                "Host is kept, as Istio 1.28 does"
            );
            (
                c["headers"]["x-request-id"].as_str().unwrap().to_string(),
                c["path"].as_str().unwrap().to_string(),
                c["body_bytes"].as_u64().unwrap(),
            )
        })
        .collect();
    seen.sort();
    let expected: Vec<_> = (0..10)
        .map(|i| {
            (
                format!("req-{i}"),
                format!("/upload/{i}?q=1"),
                1000 + i as u64,
            )
        })
        .collect();
    assert_eq!(seen, expected);
    assert_eq!(main.hits(), 10);
    let metrics = Client::http1(gateway.admin.unwrap())
        .get("admin", "/metrics")
        .await
        .text();
    let mirrored =
        "portcullis_cluster_mirror_requests_total{cluster_name=\"outbound|80||shadow\"} 10";
    assert!(metrics.contains(mirrored), "{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn mirror_percentage_samples_requests() {
    let (main, shadow) = (
        Upstream::start("backend").await,
        Upstream::start("shadow").await,
    );
    let config = mirror_config(&main, shadow.addr.port(), 25.0);
    let gateway = Gateway::start_with(&config, |command| {
        command.args(["--admin", "127.0.0.1:0"]);
    });
    let client = Client::http1(gateway.addr("default/gw/http"));
    for _ in 0..400 {
        assert_eq!(client.get("backend", "/").await.status, 200);
    }
    // The gateway counts a copy as it sends it: every one counted reaches the shadow.
    let sent = mirrored(&Client::http1(gateway.admin.unwrap())).await;
    let copies = eventually(format!("{sent} copies at the shadow"), || async {
        let copies = shadow.hits();
        (copies >= sent).then_some(copies)
    })
    .await;
    // 25% of 400 is 100; five standard deviations (±43) either way.
    assert!(
        (57..=143).contains(&copies),
        "{copies} copies of 400 at 25%"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_or_silent_mirror_does_not_touch_the_main_request() {
    let main = Upstream::start("backend").await;
    // A mirror that accepts connections and never answers, and one with nothing listening.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    for port in [silent_port, closed_port] {
        let gateway = Gateway::start(&mirror_config(&main, port, 100.0));
        let client = Client::http1(gateway.addr("default/gw/http"));
        let started = std::time::Instant::now();
        for _ in 0..20 {
            assert_eq!(client.get("backend", "/").await.status, 200);
        }
        let took = started.elapsed();
        assert!(
            took < std::time::Duration::from_secs(2),
            "20 requests took {took:?}"
        );
    }
    assert_eq!(main.hits(), 40);
}

fn websocket_config(port: u16) -> String {
    [
        GATEWAY,
        &service("ws", &[port]),
        &virtual_service("vs", "*", &route_to("ws")),
    ]
    .join("---\n")
}

type Ws<S> = tokio_tungstenite::WebSocketStream<S>;

/// Text, a 10 MiB binary message, a ping and a close with a code, each answered.
async fn converse<S>(ws: &mut Ws<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

    ws.send(Message::text("hello")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("hello"));
    let big: Vec<u8> = (0..10 << 20).map(|i| (i % 251) as u8).collect();
    ws.send(Message::binary(big.clone())).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::binary(big));
    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::Pong(b"are you there".to_vec().into())
    );
    let frame = CloseFrame {
        code: CloseCode::from(4000),
        reason: "done".into(),
    };
    ws.close(Some(frame.clone())).await.unwrap();
    match ws.next().await {
        Some(Ok(Message::Close(Some(echoed)))) => assert_eq!(echoed, frame),
        other => panic!("no close frame: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn websockets_are_proxied_over_http1_and_logged_when_they_close() {
    let server = support::websocket::echo_server().await;
    let gateway = Gateway::start_with(&websocket_config(server.port()), |command| {
        command.args(["--access-log", "access.log", "--admin", "127.0.0.1:0"]);
    });
    let addr = gateway.addr("default/gw/http");
    let (mut ws, response) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .expect("the upgrade goes through");
    assert_eq!(response.status(), 101);
    // A reload in the middle leaves the connection alone.
    gateway.signal("HUP");
    until_reloaded(&Client::http1(gateway.admin.unwrap()), 2, None).await;
    converse(&mut ws).await;
    drop(ws);

    let log = gateway.dir.path().join("access.log");
    let line = eventually("the upgrade is logged once it closes", || async {
        access_log(&log).into_iter().find(|l| l["path"] == "/ws")
    })
    .await;
    assert_eq!(line["response_code"], 101, "{line}");
    assert!(
        line["bytes_received"].as_u64().unwrap() > 10 << 20,
        "{line}"
    );
    assert!(line["bytes_sent"].as_u64().unwrap() > 10 << 20, "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn websockets_over_http2_become_http1_upgrades_upstream() {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use tokio_tungstenite::tungstenite::protocol::Role;

    let server = support::websocket::echo_server().await;
    let gateway = Gateway::start(&websocket_config(server.port()));
    let tcp = tokio::net::TcpStream::connect(gateway.addr("default/gw/http"))
        .await
        .unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(connection);
    let mut request = hyper::Request::builder()
        .method("CONNECT")
        .uri("http://backend/ws")
        .header("sec-websocket-version", "13")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    request
        .extensions_mut()
        .insert(hyper::ext::Protocol::from_static("websocket"));
    let mut response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let upgraded = hyper::upgrade::on(&mut response).await.unwrap();
    let mut ws = Ws::from_raw_socket(TokioIo::new(upgraded), Role::Client, None).await;
    converse(&mut ws).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn any_upgrade_carries_bytes_and_half_closes_both_ways() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = support::websocket::half_close_server().await;
    let gateway = Gateway::start(&websocket_config(server.port()));
    let mut stream = tokio::net::TcpStream::connect(gateway.addr("default/gw/http"))
        .await
        .unwrap();
    stream
        .write_all(b"GET /tunnel HTTP/1.1\r\nhost: backend\r\nconnection: Upgrade\r\nupgrade: echo-eof\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(
        head.contains("upgrade: echo-eof") && head.contains("x-upstream: raw"),
        "{head}"
    );
    stream.write_all(&[7u8; 5000]).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut rest = String::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_string(&mut rest),
    )
    .await
    .expect("the upstream's half arrives and closes")
    .unwrap();
    assert_eq!(rest, "got 5000 bytes");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_websocket_is_closed_after_the_idle_timeout() {
    use futures_util::StreamExt;
    let server = support::websocket::echo_server().await;
    let gateway = Gateway::start_with(&websocket_config(server.port()), |command| {
        command.args(["--idle-timeout", "1s"]);
    });
    let addr = gateway.addr("default/gw/http");
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let end = tokio::time::timeout(std::time::Duration::from_secs(5), ws.next()).await;
    assert!(end.is_ok(), "still open after 5 s");
    let lasted = started.elapsed();
    assert!(
        lasted >= std::time::Duration::from_millis(900),
        "closed after {lasted:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_drains_websockets_for_the_drain_timeout() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let server = support::websocket::echo_server().await;
    // The harness starts gateways with --drain-timeout 2s.
    let gateway = Gateway::start(&websocket_config(server.port()));
    let addr = gateway.addr("default/gw/http");
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .unwrap();
    gateway.signal("TERM");
    eventually("the listener still accepts after SIGTERM", || async {
        tokio::net::TcpStream::connect(addr).await.err()
    })
    .await;
    ws.send(Message::text("still there?")).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::text("still there?")
    );
    let started = std::time::Instant::now();
    let end = tokio::time::timeout(std::time::Duration::from_secs(5), ws.next()).await;
    assert!(end.is_ok(), "still open 5 s after the drain began");
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
}

fn protocol_config(upstream: &Upstream, http: &str) -> String {
    let policy = format!("  trafficPolicy:\n    connectionPool:\n      http: {{{http}}}\n");
    [
        GATEWAY,
        &service("backend", &[upstream.addr.port()]),
        &destination_rule("backend", &policy),
        &virtual_service("vs", "backend", &route_to("backend")),
    ]
    .join("---\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn h2_upgrade_policy_and_use_client_protocol_pick_the_upstream_protocol() {
    let upstream = Upstream::start("backend").await;
    let upgrade = Gateway::start(&protocol_config(&upstream, "h2UpgradePolicy: UPGRADE"));
    let addr = upgrade.addr("default/gw/http");
    let version = |reply: Reply| reply.json()["version"].as_str().unwrap().to_string();
    assert_eq!(
        version(Client::http1(addr).get("backend", "/").await),
        "HTTP/2.0"
    );

    let passthrough = Gateway::start(&protocol_config(&upstream, "useClientProtocol: true"));
    let addr = passthrough.addr("default/gw/http");
    assert_eq!(
        version(Client::http1(addr).get("backend", "/").await),
        "HTTP/1.1"
    );
    assert_eq!(
        version(Client::http2(addr).get("backend", "/").await),
        "HTTP/2.0"
    );

    let default = Gateway::start(&protocol_config(&upstream, "h2UpgradePolicy: DEFAULT"));
    let addr = default.addr("default/gw/http");
    assert_eq!(
        version(Client::http2(addr).get("backend", "/").await),
        "HTTP/1.1"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_named_match_names_the_route_in_the_access_log() {
    let upstream = Upstream::start("backend").await;
    let routes = "  - name: main
    match: [{name: api, uri: {prefix: /api}}, {uri: {prefix: /v1}}]
    route: [{destination: {host: backend}}]
";
    let config = [
        GATEWAY,
        &service("backend", &[upstream.addr.port()]),
        &virtual_service("vs", "backend", routes),
    ]
    .join("---\n");
    let gateway = Gateway::start_with(&config, |command| {
        command.args(["--access-log", "access.log"]);
    });
    let client = Client::http1(gateway.addr("default/gw/http"));
    assert_eq!(client.get("backend", "/api/x").await.status, 200);
    assert_eq!(client.get("backend", "/v1/x").await.status, 200);
    let log = gateway.dir.path().join("access.log");
    let lines = eventually("two access log lines", || async {
        let lines = access_log(&log);
        (lines.len() >= 2).then_some(lines)
    })
    .await;
    // Each request's line, in whichever order the workers wrote them.
    let route_name = |path: &str| {
        let line = lines.iter().find(|l| l["path"] == path);
        line.map_or(serde_json::Value::Null, |l| l["route_name"].clone())
    };
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(route_name("/api/x"), "main.api", "{lines:?}");
    assert_eq!(route_name("/v1/x"), "main", "{lines:?}");
}

/// curl's status code for `args`, or `None` when curl is not installed.
fn curl_status(args: &[&str]) -> Option<u16> {
    let output = match std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "5",
        ])
        .args(args)
        .output()
    {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("curl: {e}"),
    };
    Some(String::from_utf8_lossy(&output.stdout).parse().unwrap_or(0))
}

#[tokio::test(flavor = "multi_thread")]
async fn curl_sees_cors_preflights_answered_and_dot_segments_resolved() {
    let upstream = Upstream::start("backend").await;
    let config = cors_config(&upstream, "FORWARD").replace(
        "  http:\n  - route:",
        "  http:\n  - match: [{uri: {prefix: /admin}}]\n    directResponse: {status: 403}\n  - route:",
    );
    let gateway = Gateway::start(&config);
    let base = format!("http://{}", gateway.addr("default/gw/http"));
    let run = move |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        curl_status(&args)
    };
    let statuses = tokio::task::spawn_blocking(move || {
        let host = ["-H".to_string(), "host: backend".to_string()];
        let mut preflight = host.to_vec();
        preflight.extend(
            [
                "-X",
                "OPTIONS",
                "-H",
                "origin: https://app.example.com",
                "-H",
                "access-control-request-method: POST",
            ]
            .map(String::from),
        );
        preflight.push(format!("{base}/cors"));
        let mut bypass = host.to_vec();
        bypass.extend([
            "--path-as-is".to_string(),
            format!("{base}/public/../admin"),
        ]);
        let mut plain = host.to_vec();
        plain.push(format!("{base}/public"));
        [run(preflight), run(bypass), run(plain)]
    })
    .await
    .unwrap();
    if statuses[0].is_none() {
        eprintln!("curl is not installed; skipped");
        return;
    }
    assert_eq!(statuses, [Some(200), Some(403), Some(200)]);
    assert_eq!(
        upstream.hits(),
        1,
        "only the plain request reaches the upstream"
    );
}
