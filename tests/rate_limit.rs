//! Local rate limiting (`url: builtin:rate-limit`): token buckets the host holds, shared by
//! every worker and kept across reloads, per route, client or header; 429 with Envoy's
//! `local_rate_limited` and the `x-ratelimit-*` and `retry-after` headers.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::support;
use support::client::{Client, empty};
use support::config::{GATEWAY, route_to, service, virtual_service, wasm_plugin};
use support::eventually::eventually;
use support::gateway::Gateway;
use support::upstream::Upstream;

/// Everything to `backend`, limited by the built-in rate limiter with `plugin_config`
/// (its `pluginConfig:` lines).
fn config(backend: &Upstream, plugin_config: &str) -> String {
    let spec = format!("  phase: AUTHZ\n  pluginConfig:\n{plugin_config}");
    [
        GATEWAY,
        &service("backend", &[backend.addr.port()]),
        &virtual_service("api", "*", &route_to("backend")),
        &wasm_plugin("limit", "", &[], &spec).replace("url: file://", "url: builtin:rate-limit"),
    ]
    .join("---\n")
}

/// The status of a GET of `/` on `addr` from the loopback address `local`.
fn status_from(local: [u8; 4], addr: SocketAddr) -> u16 {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::from((local, 0)).into()).unwrap();
    socket.connect(&addr.into()).unwrap();
    let mut stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nhost: api\r\nconnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response[9..12].parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bucket_refuses_when_empty_and_fills_again() {
    let backend = Upstream::start("backend").await;
    let plugin = "    tokenBucket: {maxTokens: 3, tokensPerFill: 3, fillInterval: 1s}\n    rateLimitHeaders: true\n";
    let gateway = Gateway::start(&config(&backend, plugin));
    let client = Client::http1(gateway.addr("default/gw/http"));
    for remaining in ["2", "1", "0"] {
        let reply = client.get("api", "/").await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.headers["x-ratelimit-limit"], "3");
        assert_eq!(reply.headers["x-ratelimit-remaining"], remaining);
    }
    let refused = client.get("api", "/").await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.text(), "local_rate_limited");
    assert_eq!(refused.headers["x-ratelimit-remaining"], "0");
    assert_eq!(refused.headers["retry-after"], "1");
    assert_eq!(refused.headers["x-ratelimit-reset"], "1");
    assert_eq!(
        backend.hits(),
        3,
        "refused requests never reach the backend"
    );
    // A second later the bucket is full again.
    eventually("the bucket never filled again", || async {
        (client.get("api", "/").await.status == 200).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_and_header_values_get_buckets_of_their_own() {
    let backend = Upstream::start("backend").await;
    let per_client = "    tokenBucket: {maxTokens: 1, fillInterval: 1h}\n    descriptor: client\n";
    let gateway = Gateway::start(&config(&backend, per_client));
    let addr = gateway.addr("default/gw/http");
    let addr = SocketAddr::from(([127, 0, 0, 1], addr.port()));
    assert_eq!(status_from([127, 0, 0, 2], addr), 200);
    assert_eq!(status_from([127, 0, 0, 2], addr), 429);
    assert_eq!(status_from([127, 0, 0, 3], addr), 200);

    let per_key =
        "    tokenBucket: {maxTokens: 1, fillInterval: 1h}\n    descriptor: {header: x-api-key}\n";
    let gateway = Gateway::start(&config(&backend, per_key));
    let client = Client::http1(gateway.addr("default/gw/http"));
    let keyed = async |key: &str| {
        let request = client.request("GET", "api", "/").header("x-api-key", key);
        client.send(request.body(empty()).unwrap()).await.status
    };
    assert_eq!(keyed("alice").await, 200);
    assert_eq!(keyed("alice").await, 429);
    assert_eq!(keyed("bob").await, 200);
    // Without the header, the descriptor does not apply: not limited.
    for _ in 0..3 {
        assert_eq!(client.get("api", "/").await.status, 200);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn buckets_outlive_a_reload() {
    let backend = Upstream::start("backend").await;
    let plugin = "    tokenBucket: {maxTokens: 2, fillInterval: 1h}\n";
    let text = config(&backend, plugin);
    let gateway = Gateway::start_with(&text, |command| {
        command.args(["--admin", "127.0.0.1:0"]);
    });
    let client = Client::http1(gateway.addr("default/gw/http"));
    for status in [200, 200, 429] {
        assert_eq!(client.get("api", "/").await.status, status);
    }
    std::fs::write(
        gateway.dir.path().join("gateway.yaml"),
        format!("# edited\n{text}"),
    )
    .unwrap();
    let admin = Client::http1(gateway.admin.unwrap());
    support::admin::until_reloaded(&admin, 2, None).await;
    assert_eq!(
        client.get("api", "/").await.status,
        429,
        "the reload refilled the bucket"
    );
}

#[test]
fn a_bad_bucket_is_refused_by_validate() {
    let dir = tempfile::tempdir().unwrap();
    let text = [
        GATEWAY,
        &service("backend", &[9]),
        &virtual_service("api", "*", &route_to("backend")),
        &wasm_plugin(
            "limit",
            "",
            &[],
            "  pluginConfig:\n    tokenBucket: {maxTokens: 0, fillInterval: soon}\n",
        )
        .replace("url: file://", "url: builtin:rate-limit"),
    ]
    .join("---\n");
    std::fs::write(dir.path().join("gateway.yaml"), text).unwrap();
    let output = support::validate(dir.path(), "gateway.yaml");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("fillInterval \"soon\" is not a duration"),
        "{stderr}"
    );
}
