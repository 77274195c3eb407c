//! The suite's GRPCRoute tests. The calls are the suite's (HTTP/2, `POST
//! /<service>/<method>`, `application/grpc`, metadata as headers); the backends are the
//! echo servers over h2c, which report who they are in JSON rather than in a gRPC message,
//! so what is checked is which backend a call reaches and what it receives.

use std::collections::HashMap;

use futures_util::StreamExt as _;

use super::{Ask, Suite, get, infra};
use crate::support::client::Client;

/// The suite's echo service.
const SERVICE: &str = "gateway_api_conformance.echo_basic.grpcecho.GrpcEcho";

/// A unary call of `method` of the echo service.
fn call(method: &str) -> Ask {
    get(&format!("/{SERVICE}/{method}"))
        .method("POST")
        .header("content-type", "application/grpc")
}

/// The backend (`namespace/name`) a call reaches; `None` when no route takes it (the
/// gateway's own trailers-only answer, UNIMPLEMENTED, as the suite expects).
async fn reached(client: &Client, ask: &Ask) -> Option<String> {
    let answer = ask.send(client).await;
    match (answer.status(), answer.header("grpc-status").as_deref()) {
        (200, Some("12")) => None,
        (200, None) => Some(answer.backend()),
        other => panic!("{ask:?}: {other:?}"),
    }
}

/// Asserts the backend (`grpc-infra-backend-vN`, or none) each call reaches.
async fn assert_reached(suite: &Suite, gateway: &str, cases: &[(Ask, Option<u8>)]) {
    let client = Client::http2(suite.addr(gateway, 80));
    for (ask, expected) in cases {
        let expected = expected.and_then(|v| infra(&format!("grpc-infra-backend-v{v}")));
        assert_eq!(reached(&client, ask).await, expected, "{ask:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn grpcroute_exact_method_matching() {
    let suite = suite!("grpcroute-exact-method-matching");
    suite
        .assert_accepted("exact-matching", "same-namespace")
        .await;
    let cases = [
        (call("Echo"), Some(1)),
        (call("EchoTwo"), Some(2)),
        (call("EchoThree"), None),
    ];
    assert_reached(&suite, "same-namespace", &cases).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn grpcroute_header_matching() {
    let suite = suite!("grpcroute-header-matching");
    suite
        .assert_accepted("grpc-header-matching", "same-namespace")
        .await;
    let echo = || call("Echo");
    let cases = [
        (echo().header("version", "one"), Some(1)),
        (echo().header("version", "two"), Some(2)),
        (
            echo().header("version", "two").header("color", "orange"),
            Some(1),
        ),
        (
            echo().header("version", "two").header("color", "blue"),
            Some(2),
        ),
        (echo().header("color", "orange"), None),
        (echo().header("some-other-header", "one"), None),
        (echo().header("color", "blue"), Some(1)),
        (echo().header("color", "green"), Some(1)),
        (echo().header("color", "red"), Some(2)),
        (echo().header("color", "yellow"), Some(2)),
        (echo().header("color", "purple"), None),
    ];
    assert_reached(&suite, "same-namespace", &cases).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn grpcroute_listener_hostname_matching() {
    let suite = suite!("grpcroute-listener-hostname-matching");
    let gateway = "grpcroute-listener-hostname-matching";
    for route in ["backend-v1", "backend-v2", "backend-v3"] {
        suite.assert_accepted(route, gateway).await;
    }
    let at = |host| call("Echo").host(host);
    let cases = [
        (at("bar.com"), Some(1)),
        (at("foo.bar.com"), Some(2)),
        (at("baz.bar.com"), Some(3)),
        (at("boo.bar.com"), Some(3)),
        (at("multiple.prefixes.bar.com"), Some(3)),
        (at("multiple.prefixes.foo.com"), Some(3)),
        (at("foo.com"), None),
        (at("no.matching.host"), None),
    ];
    assert_reached(&suite, gateway, &cases).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn grpcroute_named_rule() {
    let suite = suite!("grpcroute-named-rule");
    suite
        .assert_accepted("grpc-named-rules", "same-namespace")
        .await;
    let cases = [(call("Echo"), Some(1)), (call("EchoTwo"), Some(2))];
    assert_reached(&suite, "same-namespace", &cases).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn grpcroute_request_header_modifier() {
    let suite = suite!("grpcroute-request-header-modifier");
    suite
        .assert_accepted("grpc-request-header-modifier", "same-namespace")
        .await;
    let client = Client::http2(suite.addr("same-namespace", 80));
    // The three Echo rules match alike: the first (set) takes every Echo call.
    let answer = call("Echo")
        .header("x-header-set", "this-value-should-be-overwritten")
        .header("x-header-add", "kept")
        .send(&client)
        .await;
    assert_eq!(answer.backend(), infra("grpc-infra-backend-v1").unwrap());
    answer.assert_received(
        &[
            ("x-header-set", "set-overwrites-values"),
            ("x-header-add", "kept"),
        ],
        &[],
    );
    let answer = call("EchoTwo")
        .header("x-header-set-2", "set-header-2")
        .header("x-header-add-2", "add-header-2")
        .header("x-header-remove-2", "should-be-removed-2")
        .header("some-other-header", "another-header-val")
        .send(&client)
        .await;
    assert_eq!(answer.backend(), infra("grpc-infra-backend-v2").unwrap());
    answer.assert_received(
        &[
            ("x-header-set-1", "header-set-1"),
            ("x-header-set-2", "header-set-2"),
            ("x-header-add-1", "header-add-1"),
            ("x-header-add-2", "add-header-2,header-add-2"),
            ("some-other-header", "another-header-val"),
        ],
        &["x-header-remove-1", "x-header-remove-2"],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn grpcroute_weight() {
    let suite = suite!("grpcroute-weight");
    suite
        .assert_accepted("weighted-backends", "same-namespace")
        .await;
    let client = Client::http2(suite.addr("same-namespace", 80));
    // As the suite: 70/30/0 within ±0.05 of 500 calls, in one of up to 10 attempts.
    let mut last = HashMap::new();
    for _ in 0..10 {
        let reached =
            futures_util::stream::iter(0..500)
                .map(|i| {
                    let client = client.clone();
                    async move {
                        reached(&client, &call("Echo").header("x-jitter", &i.to_string())).await
                    }
                })
                .buffer_unordered(10)
                .collect::<Vec<_>>()
                .await;
        let mut served = HashMap::<String, usize>::new();
        for backend in reached {
            *served.entry(backend.expect("a backend")).or_default() += 1;
        }
        let share = |v: &str| {
            let key = infra(&format!("grpc-infra-backend-{v}")).unwrap();
            *served.get(&key).unwrap_or(&0) as f64 / 500.0
        };
        if (share("v1") - 0.7).abs() <= 0.05
            && (share("v2") - 0.3).abs() <= 0.05
            && share("v3") == 0.0
        {
            return;
        }
        last = served;
    }
    panic!("not 70/30/0 in 10 attempts: {last:?}");
}
