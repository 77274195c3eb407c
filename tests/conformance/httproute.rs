//! The suite's HTTPRoute tests of matching, precedence and backends.

use futures_util::StreamExt as _;

use super::{Suite, assert_served, get, infra};
use crate::support::client::Client;

#[tokio::test(flavor = "multi_thread")]
async fn httproute_simple_same_namespace() {
    let suite = suite!("httproute-simple-same-namespace");
    suite
        .assert_accepted("gateway-conformance-infra-test", "same-namespace")
        .await;
    let client = suite.client("same-namespace");
    assert_eq!(get("/").served(&client).await, infra("infra-backend-v1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn httproute_exact_path_matching() {
    let suite = suite!("httproute-exact-path-matching");
    suite
        .assert_accepted("exact-matching", "same-namespace")
        .await;
    let cases = [
        (get("/one"), Some("infra-backend-v1")),
        (get("/two"), Some("infra-backend-v2")),
        (get("/"), None),
        (get("/one/example"), None),
        (get("/two/"), None),
        (get("/Two"), None),
    ];
    assert_served(&suite.client("same-namespace"), &cases).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn httproute_header_matching() {
    let suite = suite!("httproute-header-matching");
    suite
        .assert_accepted("header-matching", "same-namespace")
        .await;
    let (v1, v2) = (Some("infra-backend-v1"), Some("infra-backend-v2"));
    let cases = [
        (get("/").header("Version", "one"), v1),
        (get("/").header("Version", "two"), v2),
        (
            get("/").header("Version", "two").header("Color", "orange"),
            v1,
        ),
        (
            get("/").header("Version", "two").header("Color", "blue"),
            v2,
        ),
        (get("/").header("Color", "orange"), None),
        (get("/").header("Some-Other-Header", "one"), None),
        (get("/").header("Color", "blue"), v1),
        (get("/").header("Color", "green"), v1),
        (get("/").header("Color", "red"), v2),
        (get("/").header("Color", "yellow"), v2),
        (get("/").header("Color", "purple"), None),
    ];
    assert_served(&suite.client("same-namespace"), &cases).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn httproute_query_param_matching() {
    let suite = suite!("httproute-query-param-matching");
    suite
        .assert_accepted("query-param-matching", "same-namespace")
        .await;
    let v =
        |n: u8| Some(["infra-backend-v1", "infra-backend-v2", "infra-backend-v3"][n as usize - 1]);
    let cases = [
        (get("/?animal=whale"), v(1)),
        (get("/?animal=dolphin"), v(2)),
        (get("/?animal=dolphin&color=blue"), v(3)),
        (get("/?ANIMAL=Whale"), v(3)),
        (get("/?animal=whale&otherparam=irrelevant"), v(1)),
        (get("/?animal=dolphin&color=yellow"), v(2)),
        (get("/?color=blue"), None),
        (get("/?animal=dog"), None),
        (get("/?animal=whaledolphin"), None),
        (get("/"), None),
        (get("/path1?animal=whale"), v(1)),
        (get("/?animal=whale").header("version", "one"), v(2)),
        (get("/path2?animal=whale").header("version", "two"), v(3)),
        (get("/path3?animal=shark"), v(1)),
        (get("/path4?animal=kraken").header("version", "three"), v(1)),
        (get("/?animal=shark"), None),
        (get("/path4?animal=kraken"), None),
        (get("/path5?animal=hydra"), v(1)),
        (get("/?animal=hydra").header("version", "four"), v(3)),
    ];
    let client = suite.client("same-namespace");
    assert_served(&client, &cases).await;
    let answer = get("/?animal=dolphin&color=blue").send(&client).await;
    assert_eq!(answer.received_path(), "/?animal=dolphin&color=blue");
}

#[tokio::test(flavor = "multi_thread")]
async fn httproute_method_matching() {
    let suite = suite!("httproute-method-matching");
    suite
        .assert_accepted("method-matching", "same-namespace")
        .await;
    let (v1, v2, v3) = (
        Some("infra-backend-v1"),
        Some("infra-backend-v2"),
        Some("infra-backend-v3"),
    );
    let cases = [
        (get("/").method("POST"), v1),
        (get("/"), v2),
        (get("/").method("HEAD"), None),
        (get("/path1"), v1),
        (get("/").method("PUT").header("version", "one"), v2),
        (get("/path2").method("POST").header("version", "two"), v3),
        (get("/path3").method("PATCH"), v1),
        (
            get("/path4").method("DELETE").header("version", "three"),
            v1,
        ),
        (get("/").method("PUT"), None),
        (get("/path4").method("DELETE"), None),
        (get("/path5").method("PATCH"), v1),
        (get("/").method("PATCH").header("version", "four"), v2),
    ];
    assert_served(&suite.client("same-namespace"), &cases).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn httproute_matching() {
    let suite = suite!("httproute-matching");
    suite.assert_accepted("matching", "same-namespace").await;
    let (v1, v2) = (Some("infra-backend-v1"), Some("infra-backend-v2"));
    let cases = [
        (get("/"), v1),
        (get("/example"), v1),
        (get("/").header("Version", "one"), v1),
        (get("/v2"), v2),
        (get("/v2/example"), v2),
        (get("/").header("Version", "two"), v2),
        (get("/v2/"), v2),
        (get("/v2example"), v1),
        (get("/foo/v2/example"), v1),
    ];
    assert_served(&suite.client("same-namespace"), &cases).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn httproute_path_match_order() {
    let suite = suite!("httproute-path-match-order");
    suite
        .assert_accepted("path-matching-order", "same-namespace")
        .await;
    let (v1, v2, v3) = (
        Some("infra-backend-v1"),
        Some("infra-backend-v2"),
        Some("infra-backend-v3"),
    );
    let cases = [
        (get("/match/exact/one"), v3),
        (get("/match/exact"), v2),
        (get("/match"), v1),
        (get("/match/prefix/one/any"), v2),
        (get("/match/prefix/any"), v1),
        (get("/match/any"), v3),
    ];
    assert_served(&suite.client("same-namespace"), &cases).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn httproute_matching_across_routes() {
    let suite = suite!("httproute-matching-across-routes");
    for route in ["matching-part1", "matching-part2"] {
        suite.assert_accepted(route, "same-namespace").await;
    }
    let (v1, v2) = (Some("infra-backend-v1"), Some("infra-backend-v2"));
    let net = |path| get(path).host("example.net");
    let cases = [
        (get("/"), v1),
        (get("/example"), v1),
        (net("/example"), v1),
        (get("/example").header("Version", "one"), v1),
        (get("/v2"), v2),
        (net("/v2"), v1),
        (get("/v2/example"), v2),
        (get("/").header("Version", "two"), v2),
    ];
    assert_served(&suite.client("same-namespace"), &cases).await;
}

/// How many of 500 requests (10 at a time) each backend served, by `namespace/name`.
async fn shares(client: &Client) -> std::collections::HashMap<String, usize> {
    let mut served = std::collections::HashMap::new();
    let answers = futures_util::stream::iter(0..500)
        .map(|i| {
            let client = client.clone();
            async move {
                let jitter = i.to_string();
                get("/").header("X-Jitter", &jitter).send(&client).await
            }
        })
        .buffer_unordered(10)
        .collect::<Vec<_>>()
        .await;
    for answer in answers {
        assert_eq!(answer.status(), 200);
        *served.entry(answer.backend()).or_default() += 1;
    }
    served
}

#[tokio::test(flavor = "multi_thread")]
async fn httproute_weight() {
    let suite = suite!("httproute-weight");
    suite
        .assert_accepted("weighted-backends", "same-namespace")
        .await;
    let client = suite.client("same-namespace");
    // As the suite: 70/30/0 within ±0.05 of 500 requests, in one of up to 10 attempts.
    let mut last = None;
    for _ in 0..10 {
        let served = shares(&client).await;
        let share = |v: &str| *served.get(&infra(v).unwrap()).unwrap_or(&0) as f64 / 500.0;
        let within = (share("infra-backend-v1") - 0.7).abs() <= 0.05
            && (share("infra-backend-v2") - 0.3).abs() <= 0.05
            && share("infra-backend-v3") == 0.0;
        if within {
            return;
        }
        last = Some(served);
    }
    panic!("not 70/30/0 in 10 attempts: {last:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn httproute_named_rule() {
    let suite = suite!("httproute-named-rule");
    suite
        .assert_accepted("http-named-rules", "same-namespace")
        .await;
    let cases = [
        (get("/named"), Some("infra-backend-v1")),
        (get("/unnamed"), Some("infra-backend-v2")),
    ];
    assert_served(&suite.client("same-namespace"), &cases).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn httproute_no_backend_refs() {
    let suite = suite!("httproute-omitted-backendrefs");
    suite
        .assert_accepted("omitted-backendrefs", "same-namespace")
        .await;
    let client = suite.client("same-namespace");
    assert_eq!(
        get("/forward").served(&client).await,
        infra("infra-backend-v1")
    );
    for path in ["/omitted-no-forward", "/empty-no-forward"] {
        assert_eq!(get(path).send(&client).await.status(), 500, "{path}");
    }
}

/// Asserts that `route` is Accepted on the `same-namespace` Gateway with ResolvedRefs
/// false for `reason`, and that `/` answers 500.
async fn assert_unresolved(suite: &Suite, route: &str, reason: &str) {
    let conditions = suite.route_conditions(route, "same-namespace").await;
    assert!(
        conditions.contains(&"Accepted=True (Accepted)".to_string())
            && conditions.contains(&format!("ResolvedRefs=False ({reason})")),
        "{route}: {conditions:?}"
    );
    let client = suite.client("same-namespace");
    assert_eq!(get("/").send(&client).await.status(), 500);
}

#[tokio::test(flavor = "multi_thread")]
async fn httproute_invalid_nonexistent_backendref() {
    let suite = suite!("httproute-invalid-nonexistent-backendref");
    assert_unresolved(&suite, "invalid-nonexistent-backend-ref", "BackendNotFound").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn httproute_invalid_cross_namespace_backend_ref() {
    let suite = suite!("httproute-invalid-cross-namespace-backend-ref");
    assert_unresolved(
        &suite,
        "invalid-cross-namespace-backend-ref",
        "RefNotPermitted",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn httproute_invalid_reference_grant() {
    let suite = suite!("httproute-invalid-reference-grant");
    assert_unresolved(&suite, "reference-grant", "RefNotPermitted").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn httproute_partially_invalid_via_invalid_reference_grant() {
    let suite = suite!("httproute-partially-invalid-via-invalid-reference-grant");
    let conditions = suite
        .route_conditions("invalid-reference-grant", "same-namespace")
        .await;
    assert!(
        conditions.contains(&"ResolvedRefs=False (RefNotPermitted)".to_string()),
        "{conditions:?}"
    );
    let client = suite.client("same-namespace");
    assert_eq!(get("/v2").send(&client).await.status(), 500);
    assert_eq!(
        get("/").served(&client).await.as_deref(),
        Some("gateway-conformance-app-backend/app-backend-v1")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn httproute_cross_namespace() {
    let suite = suite!("httproute-cross-namespace");
    suite
        .assert_accepted(
            "gateway-conformance-web-backend/cross-namespace",
            "backend-namespaces",
        )
        .await;
    let client = suite.client("backend-namespaces");
    assert_eq!(
        get("/").served(&client).await.as_deref(),
        Some("gateway-conformance-web-backend/web-backend")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn httproute_reference_grant() {
    let suite = suite!("httproute-reference-grant");
    suite
        .assert_accepted("reference-grant", "same-namespace")
        .await;
    let client = suite.client("same-namespace");
    assert_eq!(
        get("/").served(&client).await.as_deref(),
        Some("gateway-conformance-web-backend/web-backend")
    );
    // The grant goes; the gateway reloads and the reference is refused.
    suite.remove(
        "ReferenceGrant",
        "gateway-conformance-web-backend/reference-grant",
    );
    crate::assert_eventually!(
        get("/").send(&client).await.status() == 500,
        "the reference is still allowed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn httproute_multiple_gateways() {
    let suite = suite!("httproute-multiple-gateways");
    for (gateway, dedicated, own) in [
        (
            "same-namespace",
            "same-namespace-dedicated-route",
            "infra-backend-v2",
        ),
        (
            "all-namespaces",
            "all-namespaces-dedicated-route",
            "infra-backend-v3",
        ),
    ] {
        suite
            .assert_accepted("multiple-gateways-shared-route", gateway)
            .await;
        suite.assert_accepted(dedicated, gateway).await;
        let cases = [
            (get("/shared"), Some("infra-backend-v1")),
            (get("/"), Some(own)),
        ];
        assert_served(&suite.client(gateway), &cases).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn httproute_backend_protocol_h2c() {
    let suite = suite!("httproute-backend-protocol-h2c");
    let client = Client::http2(suite.addr("same-namespace", 80));
    let answer = get("/").send(&client).await;
    assert_eq!(answer.backend(), infra("infra-backend-v1").unwrap());
    assert_eq!(answer.0.json()["version"], "HTTP/2.0");
}

#[tokio::test(flavor = "multi_thread")]
async fn httproute_backend_protocol_websocket() {
    use futures_util::SinkExt as _;
    use tokio_tungstenite::tungstenite::Message;
    let suite = suite!("httproute-backend-protocol-websocket");
    let addr = suite.addr("same-namespace", 80);
    let url = format!("ws://{addr}/ws");
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let text = Message::text("Websocket Support!");
    let binary = Message::binary(vec![1u8, 2, 3, 4, 5, 6, 7]);
    for message in [text, binary] {
        socket.send(message.clone()).await.unwrap();
        assert_eq!(socket.next().await.unwrap().unwrap(), message);
    }
}
