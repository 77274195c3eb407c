//! End to end: HTTP/2, large streamed bodies, misbehaving policy components, local
//! replies and graceful shutdown.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;

use crate::support;
use support::client::{Client, read};
use support::config::gateway;
use support::gateway::Gateway;
use support::upstream::Upstream;

fn config(upstream: &Upstream) -> String {
    let server = "  - port:
      number: 0
      name: http
      protocol: HTTP
    bind: 127.0.0.1
    hosts:
    - \"*\"
";
    format!(
        "{}---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: backend
spec:
  hosts:
  - backend
  resolution: STATIC
  ports:
  - number: 80
    name: http
    protocol: HTTP
  endpoints:
  - address: 127.0.0.1
    ports:
      http: {}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: nowhere
spec:
  hosts:
  - nowhere
  resolution: STATIC
  ports:
  - number: 80
    name: http
    protocol: HTTP
  endpoints:
  - address: 127.0.0.1
    ports:
      http: 1
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: backend
spec:
  hosts:
  - \"*\"
  gateways:
  - gw
  http:
  - route:
    - destination:
        host: backend
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: nowhere
spec:
  hosts:
  - nowhere.example
  gateways:
  - gw
  http:
  - route:
    - destination:
        host: nowhere
",
        gateway(server),
        upstream.addr.port()
    )
}

/// A request body of `total` bytes, streamed in 64 KiB frames.
fn streamed(total: usize) -> support::client::Body {
    let chunk = Bytes::from(vec![b'u'; 64 * 1024]);
    let frames =
        (0..total / chunk.len()).map(move |_| Ok::<_, hyper::Error>(Frame::data(chunk.clone())));
    BodyExt::boxed(StreamBody::new(futures_util::stream::iter(frames)))
}

/// Counts a response body's bytes as they stream, without keeping them.
async fn drain(response: hyper::Response<hyper::body::Incoming>) -> usize {
    let mut stream = response.into_body().into_data_stream();
    let mut total = 0;
    while let Some(chunk) = stream.next().await {
        total += chunk.expect("the body streams").len();
    }
    total
}

#[tokio::test(flavor = "multi_thread")]
async fn streams_large_bodies_both_ways_over_http1_and_http2() {
    let upstream = Upstream::start("backend").await;
    let gateway = Gateway::start(&config(&upstream));
    let addr = gateway.addr("default/gw/http");
    const SIZE: usize = 32 << 20;

    for client in [Client::http1(addr), Client::http2(addr)] {
        let reply = client.get("backend", "/hello").await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.json()["name"], "backend");

        let download = client
            .send_streaming(
                client
                    .request("GET", "backend", &format!("/bytes/{SIZE}"))
                    .body(support::client::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(download.status(), 200);
        assert_eq!(drain(download).await, SIZE);

        let upload = client
            .send_streaming(
                client
                    .request("POST", "backend", "/echo")
                    .body(streamed(SIZE))
                    .unwrap(),
            )
            .await;
        assert_eq!(upload.status(), 200);
        assert_eq!(drain(upload).await, SIZE);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_local_replies_as_envoy_does() {
    let upstream = Upstream::start("backend").await;
    let gateway = Gateway::start(&config(&upstream));
    let client = Client::http1(gateway.addr("default/gw/http"));

    let refused = client.get("nowhere.example", "/").await;
    assert_eq!(refused.status, 503);
    assert!(
        String::from_utf8_lossy(&refused.body).contains("upstream connect error"),
        "{refused:?}"
    );
    assert_eq!(client.get("backend", "/after").await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_policy_fails_only_its_request() {
    let upstream = Upstream::start("backend").await;
    let policies = std::path::Path::new(env!("PORTCULLIS_PLUGINS_DIR"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        policies.join("portcullis_hostile.wasm"),
        dir.path().join("route-match.wasm"),
    )
    .unwrap();
    let gateway = Gateway::start_with(&config(&upstream), |command| {
        command.arg("--policy-dir").arg(dir.path());
    });
    let client = Client::http1(gateway.addr("default/gw/http"));

    assert_eq!(client.get("backend", "/fine").await.status, 200);
    for hostile in ["/trap", "/loop", "/grow"] {
        let started = Instant::now();
        let reply = client.get("backend", hostile).await;
        assert_eq!(reply.status, 500, "{hostile}: {reply:?}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{hostile} took {:?}",
            started.elapsed()
        );
        assert_eq!(
            client.get("backend", "/fine").await.status,
            200,
            "after {hostile}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn drains_in_flight_requests_on_sigterm() {
    let upstream = Upstream::start("backend").await;
    let gateway = Gateway::start(&config(&upstream));
    let client = Client::http1(gateway.addr("default/gw/http"));
    let response = client
        .send_streaming(
            client
                .request("GET", "backend", &format!("/bytes/{}", 4 << 20))
                .body(support::client::empty())
                .unwrap(),
        )
        .await;
    let status = tokio::task::spawn_blocking(move || gateway.terminate());
    let reply = read(response).await;
    assert_eq!(reply.body.len(), 4 << 20);
    assert!(status.await.unwrap().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn resolves_dns_endpoints() {
    let upstream = Upstream::start("backend").await;
    let config = config(&upstream).replace(
        "  resolution: STATIC\n  ports:\n  - number: 80\n    name: http\n    protocol: HTTP\n  endpoints:\n  - address: 127.0.0.1\n    ports:\n      http: ",
        "  resolution: DNS\n  ports:\n  - number: 80\n    name: http\n    protocol: HTTP\n  endpoints:\n  - address: localhost\n    ports:\n      http: ",
    );
    assert!(config.contains("address: localhost"), "{config}");
    let gateway = Gateway::start(&config);
    let client = Client::http1(gateway.addr("default/gw/http"));
    for _ in 0..5 {
        assert_eq!(client.get("backend", "/").await.json()["name"], "backend");
    }
}

/// Sends `preamble` then a GET with `headers` on a raw connection; returns the response
/// text (empty when the gateway closed the connection without answering).
async fn raw_get(addr: std::net::SocketAddr, preamble: &[u8], headers: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(preamble).await.unwrap();
    let request =
        format!("GET /who HTTP/1.1\r\nhost: backend\r\nconnection: close\r\n{headers}\r\n");
    let _ = stream.write_all(request.as_bytes()).await;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response)).await;
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn behind_a_load_balancer_honours_proxy_protocol_and_trusted_forwarding() {
    let upstream = Upstream::start("backend").await;
    let config = config(&upstream).replace(
        "    bind: 127.0.0.1\n",
        "    bind: 127.0.0.1\n    proxyProtocol: true\n    numTrustedProxies: 1\n    tls: {httpsRedirect: true}\n",
    );
    let gateway = Gateway::start(&config);
    let addr = gateway.addr("default/gw/http");

    // v1: the client address comes from the header; the LB terminated TLS and says so.
    let v1 = b"PROXY TCP4 203.0.113.9 127.0.0.1 5555 443\r\n";
    let response = raw_get(addr, v1, "x-forwarded-proto: https\r\n").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let report: serde_json::Value =
        serde_json::from_str(response.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(report["headers"]["x-forwarded-for"], "203.0.113.9");
    assert_eq!(report["headers"]["x-forwarded-proto"], "https");

    // Plain HTTP from the client (per the LB) gets the HTTPS redirect.
    let response = raw_get(addr, v1, "x-forwarded-proto: http\r\n").await;
    assert!(response.starts_with("HTTP/1.1 301"), "{response}");

    // v2, binary: TCP over IPv4 from 198.51.100.4:6000.
    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
    v2.extend_from_slice(&[198, 51, 100, 4, 127, 0, 0, 1, 0x17, 0x70, 0x01, 0xbb]);
    let response = raw_get(addr, &v2, "x-forwarded-proto: https\r\n").await;
    let report: serde_json::Value =
        serde_json::from_str(response.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(report["headers"]["x-forwarded-for"], "198.51.100.4");

    // A connection without the header is not served.
    assert_eq!(raw_get(addr, b"", "").await, "");
}
