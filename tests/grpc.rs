//! gRPC at the edge: the gateway's own replies to gRPC requests are trailers-only gRPC
//! responses with Envoy's status mapping, and a client's `grpc-timeout` bounds the
//! request (capped by the route timeout) and reaches the upstream as the timeout in force.

use crate::support;
use support::client::{Client, Reply, empty};
use support::config::{GATEWAY, service, virtual_service};
use support::gateway::Gateway;
use support::upstream::Upstream;

/// A gRPC call `path` on `client`, with `headers`.
async fn call(client: &Client, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = client
        .request("POST", "grpc.example.com", path)
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    client.send(request.body(empty()).unwrap()).await
}

/// The `grpc-status` and `grpc-message` of a trailers-only reply.
fn grpc_status(reply: &Reply) -> (String, String) {
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.headers["content-type"], "application/grpc");
    assert!(reply.body.is_empty(), "{reply:?}");
    let text = |name: &str| {
        reply
            .headers
            .get(name)
            .map_or_else(String::new, |v| v.to_str().unwrap().to_string())
    };
    (text("grpc-status"), text("grpc-message"))
}

#[tokio::test(flavor = "multi_thread")]
async fn local_replies_are_grpc_and_grpc_timeout_bounds_the_call() {
    let upstream = Upstream::start("grpc-backend").await;
    let routes = "  - match: [{uri: {prefix: /capped.}}]
    timeout: 50ms
    route: [{destination: {host: backend}}]
  - match: [{uri: {prefix: /nowhere.}}]
    route: [{destination: {host: empty}}]
  - match: [{uri: {prefix: /plain.}}]
    route: [{destination: {host: backend}}]
";
    let config = [
        GATEWAY,
        &service("backend", &[upstream.addr.port()]),
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: empty}
spec:
  hosts: [empty]
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
",
        &virtual_service("grpc", "grpc.example.com", routes),
    ]
    .join("---\n");
    let gateway = Gateway::start(&config);
    let client = Client::http2(gateway.addr("default/gw/http"));

    // No route: 404, UNIMPLEMENTED. No endpoint: 503, UNAVAILABLE, with Envoy's text.
    let (code, _) = grpc_status(&call(&client, "/unknown.Service/Call", &[]).await);
    assert_eq!(code, "12");
    let (code, message) = grpc_status(&call(&client, "/nowhere.Service/Call", &[]).await);
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("14", "no healthy upstream")
    );

    // The client's deadline bounds the call: 100 ms against a 2 s upstream.
    let started = std::time::Instant::now();
    let slow = call(
        &client,
        "/plain.Service/slow/2000",
        &[("grpc-timeout", "100m")],
    )
    .await;
    let (code, message) = grpc_status(&slow);
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("14", "upstream request timeout")
    );
    assert!(started.elapsed() < std::time::Duration::from_millis(1500));

    // The upstream learns the timeout in force: the client's, or the route's when shorter.
    let echoed = |reply: Reply| reply.json()["headers"]["grpc-timeout"].clone();
    let long = call(&client, "/plain.Service/Call", &[("grpc-timeout", "10S")]).await;
    assert_eq!(echoed(long), "10000m");
    let capped = call(&client, "/capped.Service/Call", &[("grpc-timeout", "10S")]).await;
    assert_eq!(echoed(capped), "50m");
    // A malformed one is ignored, as Envoy ignores it.
    let ignored = call(&client, "/plain.Service/Call", &[("grpc-timeout", "soon")]).await;
    assert_eq!(ignored.status, 200);

    // A plain HTTP request still gets a plain reply.
    let plain = client.get("grpc.example.com", "/unknown").await;
    assert_eq!(plain.status, 404);
}
