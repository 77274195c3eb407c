//! End to end: the real gateway routes real requests to real upstreams on loopback, with
//! route matching, weighting and load balancing done by the built-in Wasm components.

use std::collections::HashMap;

use crate::support;
use support::client::{Client, empty};
use support::config::{GATEWAY, destination_rule, versioned_service, virtual_service};
use support::gateway::Gateway;
use support::upstream::Upstream;

#[tokio::test(flavor = "multi_thread")]
async fn routes_by_every_match_kind_in_order() {
    let (a, b, c) = (
        Upstream::start("a").await,
        Upstream::start("b").await,
        Upstream::start("c").await,
    );
    let shop_routes = r#"  - name: header-exact
    match:
    - headers:
        end-user:
          exact: jason
    route:
    - destination:
        host: b.svc
  - name: header-prefix-and-regex
    match:
    - headers:
        x-tier:
          prefix: gold
      uri:
        regex: /orders/[0-9]+
    route:
    - destination:
        host: c.svc
  - name: method-and-query
    match:
    - method:
        exact: DELETE
    - queryParams:
        debug:
          exact: "1"
    route:
    - destination:
        host: c.svc
  - name: exact-uri
    match:
    - uri:
        exact: /status
    directResponse:
      status: 203
      body:
        string: fine
  - name: without-header
    match:
    - uri:
        prefix: /private
      withoutHeaders:
        authorization: {}
    directResponse:
      status: 401
  - name: legacy
    match:
    - uri:
        prefix: /v1/
    redirect:
      prefixRewrite: /v2/
      redirectCode: 308
  - name: rewritten
    match:
    - uri:
        prefix: /api/
    rewrite:
      uri: /internal/
      authority: internal.svc
    headers:
      request:
        set:
          x-route: rewritten
        add:
          x-added: one
        remove:
        - x-secret
      response:
        set:
          x-served-by: portcullis
        remove:
        - content-type
    route:
    - destination:
        host: b.svc
      headers:
        request:
          set:
            x-destination: b
  - name: regex-rewrite
    match:
    - uri:
        prefix: /search/
    rewrite:
      uriRegexRewrite:
        match: ^/search/(.*)$
        rewrite: /find/\1
    route:
    - destination:
        host: c.svc
  - name: prefix-is-a-plain-string-prefix
    match:
    - uri:
        prefix: /foo
    route:
    - destination:
        host: b.svc
  - name: everything-else
    route:
    - destination:
        host: a.svc
"#;
    let strict_routes = r#"  - match:
    - uri:
        exact: /here
      ignoreUriCase: true
    route:
    - destination:
        host: a.svc
"#;
    let config = [
        GATEWAY,
        &versioned_service("a.svc", &[("v1", a.addr.port())]),
        &versioned_service("b.svc", &[("v1", b.addr.port())]),
        &versioned_service("c.svc", &[("v1", c.addr.port())]),
        &virtual_service("shop", "shop.example.com", shop_routes),
        &virtual_service("only-exact-paths", "strict.example.com", strict_routes),
    ]
    .join("---\n");
    let gateway = Gateway::start(&config);
    let client = Client::http1(gateway.addr("default/gw/http"));
    let shop = "shop.example.com";

    // Header exact match comes first; the same request without the header falls through.
    let reply = client
        .send(
            client
                .request("GET", shop, "/x")
                .header("end-user", "jason")
                .body(empty())
                .unwrap(),
        )
        .await;
    assert_eq!(reply.upstream(), "b");
    assert_eq!(client.get(shop, "/x").await.upstream(), "a");

    // Fields inside one block are ANDed.
    let gold = |path: &str| {
        client
            .request("GET", shop, path)
            .header("x-tier", "gold-plus")
            .body(empty())
            .unwrap()
    };
    assert_eq!(client.send(gold("/orders/42")).await.upstream(), "c");
    assert_eq!(
        client.send(gold("/orders/42/items")).await.upstream(),
        "a",
        "regex must match the whole path"
    );
    assert_eq!(client.get(shop, "/orders/42").await.upstream(), "a");

    // Blocks are ORed.
    assert_eq!(
        client
            .send(client.request("DELETE", shop, "/x").body(empty()).unwrap())
            .await
            .upstream(),
        "c"
    );
    assert_eq!(client.get(shop, "/x?debug=1").await.upstream(), "c");
    assert_eq!(client.get(shop, "/x?debug=2").await.upstream(), "a");

    // Direct responses, negated header matches and redirects are answered by the gateway.
    let status = client.get(shop, "/status").await;
    assert_eq!(
        (status.status.as_u16(), &status.body[..]),
        (203, &b"fine"[..])
    );
    assert_eq!(
        client.get(shop, "/status/more").await.upstream(),
        "a",
        "exact is exact"
    );
    assert_eq!(client.get(shop, "/private/x").await.status, 401);
    let authorized = client
        .send(
            client
                .request("GET", shop, "/private/x")
                .header("authorization", "t")
                .body(empty())
                .unwrap(),
        )
        .await;
    assert_eq!(authorized.upstream(), "a");
    let redirect = client.get(shop, "/v1/users?page=2").await;
    assert_eq!(redirect.status, 308);
    assert_eq!(
        redirect.headers["location"],
        "http://shop.example.com/v2/users?page=2"
    );

    // Rewrites, and header edits on both sides.
    let reply = client
        .send(
            client
                .request("GET", shop, "/api/items?q=1")
                .header("x-secret", "s")
                .header("x-added", "zero")
                .body(empty())
                .unwrap(),
        )
        .await;
    let report = reply.json();
    assert_eq!(report["name"], "b");
    assert_eq!(report["path"], "/internal/items?q=1");
    assert_eq!(report["headers"]["host"], "internal.svc");
    assert_eq!(report["headers"]["x-route"], "rewritten");
    assert_eq!(report["headers"]["x-destination"], "b");
    assert_eq!(report["headers"]["x-added"], "zero, one", "add appends");
    assert!(report["headers"].get("x-secret").is_none());
    assert_eq!(report["headers"]["x-forwarded-proto"], "http");
    assert_eq!(report["headers"]["x-forwarded-for"], "127.0.0.1");
    assert_eq!(
        report["headers"]["x-request-id"].as_str().unwrap().len(),
        36
    );
    assert_eq!(reply.headers["x-served-by"], "portcullis");
    assert!(!reply.headers.contains_key("content-type"));
    assert_eq!(
        client.get(shop, "/search/shoes/red").await.json()["path"],
        "/find/shoes/red"
    );

    // Istio's uri.prefix is a plain string prefix.
    assert_eq!(client.get(shop, "/foobar").await.upstream(), "b");

    // Hosts select virtual hosts; unknown hosts and unmatched paths get 404.
    assert_eq!(
        client.get("strict.example.com", "/HERE").await.upstream(),
        "a"
    );
    assert_eq!(
        client
            .get("strict.example.com:8080", "/here")
            .await
            .upstream(),
        "a"
    );
    assert_eq!(
        client.get("strict.example.com", "/elsewhere").await.status,
        404
    );
    assert_eq!(client.get("unknown.example.com", "/").await.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn splits_by_weight_and_balances_endpoints() {
    let ups = [
        Upstream::start("v1").await,
        Upstream::start("v2").await,
        Upstream::start("v3").await,
    ];
    let policy = "  trafficPolicy:
    loadBalancer:
      simple: ROUND_ROBIN
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
  - name: v3
    labels:
      version: v3
";
    let config = format!(
        "{GATEWAY}---\n{}---\n{}---\n{}",
        versioned_service(
            "reviews",
            &[
                ("v1", ups[0].addr.port()),
                ("v2", ups[1].addr.port()),
                ("v3", ups[2].addr.port()),
            ]
        ),
        destination_rule("reviews", policy),
        virtual_service(
            "reviews",
            "*",
            r#"  - match:
    - uri:
        prefix: /split
    route:
    - destination:
        host: reviews
        subset: v1
      weight: 90
    - destination:
        host: reviews
        subset: v2
      weight: 10
  - match:
    - uri:
        prefix: /relative
    route:
    - destination:
        host: reviews
        subset: v1
      weight: 3
    - destination:
        host: reviews
        subset: v3
      weight: 1
    - destination:
        host: reviews
        subset: v2
      weight: 0
  - route:
    - destination:
        host: reviews
"#
        ),
    );
    let gateway = Gateway::start(&config);
    let client = Client::http1(gateway.addr("default/gw/http"));

    let tally = |path: &'static str, n: usize| {
        let client = client.clone();
        async move {
            let mut counts: HashMap<String, usize> = HashMap::new();
            for _ in 0..n {
                *counts
                    .entry(client.get("reviews", path).await.upstream())
                    .or_default() += 1;
            }
            counts
        }
    };

    // 90/10 within a tolerance of about four standard deviations (σ ≈ 9.5 over 1000).
    let split = tally("/split", 1000).await;
    assert!((860..=940).contains(&split["v1"]), "{split:?}");
    assert_eq!(split["v1"] + split["v2"], 1000, "{split:?}");

    // Weights are relative: 3:1 is 75/25, and the weight-0 destination gets nothing.
    let relative = tally("/relative", 800).await;
    assert!((540..=660).contains(&relative["v1"]), "{relative:?}");
    assert_eq!(relative["v1"] + relative["v3"], 800, "{relative:?}");
    assert!(!relative.contains_key("v2"), "{relative:?}");

    // ROUND_ROBIN over the three endpoints of the unsubsetted service: an even spread.
    let spread = tally("/", 300).await;
    for version in ["v1", "v2", "v3"] {
        assert_eq!(spread[version], 100, "{spread:?}");
    }
}
