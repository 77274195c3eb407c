//! What the config asks for happens on the wire: CORS (checked header by header as
//! Envoy's filter sets them) and request mirroring.

mod support;

use support::client::{Client, Reply, empty};
use support::config::{GATEWAY, service};
use support::gateway::Gateway;
use support::upstream::Upstream;

fn cors_config(upstream: &Upstream, unmatched: &str) -> String {
    format!(
        "{GATEWAY}---\n{}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: vs
spec:
  hosts: [backend]
  gateways: [gw]
  http:
  - route:
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
",
        service("backend", &[upstream.addr.port()])
    )
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
