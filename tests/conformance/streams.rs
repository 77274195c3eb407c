//! The suite's TLSRoute and TCPRoute tests, and the HTTPRoute one that needs a TLS
//! listener: connections passed through by SNI to a TLS echo server (the client trusts
//! only the suite's CA, which signed the backend's certificate, not the gateway's),
//! TCP connections split by weight, and routes kept off listeners of other kinds.

use std::collections::HashMap;

use super::get;

#[tokio::test(flavor = "multi_thread")]
async fn httproute_disallowed_kind() {
    let suite = suite!("httproute-disallowed-kind");
    let conditions = suite
        .route_conditions("disallowed-kind", "tlsroutes-only")
        .await;
    for expected in [
        "Accepted=False (NotAllowedByListeners)",
        "ResolvedRefs=True (ResolvedRefs)",
    ] {
        assert!(conditions.iter().any(|c| c == expected), "{conditions:?}");
    }
    let (_, attached) = suite.listener("tlsroutes-only", "tls").await;
    assert_eq!(attached, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn tlsroute_simple_same_namespace() {
    let suite = suite!("tlsroute-simple-same-namespace");
    suite
        .assert_accepted("gateway-conformance-infra-test", "gateway-tlsroute")
        .await;
    let answer = suite
        .send_tls("gateway-tlsroute", 443, &get("/").host("abc.example.com"))
        .await;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.backend(), "gateway-conformance-infra/tcp-backend");
}

#[tokio::test(flavor = "multi_thread")]
async fn tcproute_weighted_routing() {
    let suite = suite!("tcproute-weighted-routing");
    suite
        .assert_accepted("tcp-weighted-route", "tcp-weighted-gateway")
        .await;
    // As the suite does: 500 connections, each backend's share within 3 points of its
    // weight's, a few attempts allowed.
    let expected = [("tcp-backend-v1", 0.7), ("tcp-backend-v2", 0.3)];
    let mut last = HashMap::new();
    for _ in 0..5 {
        let mut seen: HashMap<String, u32> = HashMap::new();
        for _ in 0..500 {
            let pod = suite.tcp_pod("tcp-weighted-gateway", 9300).await;
            let parts: Vec<&str> = pod.split('-').collect();
            *seen.entry(parts[..parts.len() - 2].join("-")).or_default() += 1;
        }
        let within = seen.len() == 2
            && expected.iter().all(|(backend, share)| {
                let got = f64::from(seen.get(*backend).copied().unwrap_or(0)) / 500.0;
                (got - share).abs() <= 0.03
            });
        if within {
            return;
        }
        last = seen;
    }
    panic!("distribution not within tolerance: {last:?}");
}

/// Asserts that route `route` on `gateway` has every condition of `expected`.
async fn assert_conditions(suite: &super::Suite, route: &str, gateway: &str, expected: &[&str]) {
    let conditions = suite.route_conditions(route, gateway).await;
    for expected in expected {
        assert!(
            conditions.iter().any(|c| c == expected),
            "{route} on {gateway}: {expected} not in {conditions:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tcproute_invalid_backendref_nonexistent() {
    let suite = suite!("tcproute-invalid-backendref-nonexistent");
    let (route, gateway) = (
        "tcp-route-invalid-backend-ref-nonexistent",
        "tcp-gateway-invalid-backend",
    );
    assert_conditions(
        &suite,
        route,
        gateway,
        &["ResolvedRefs=False (BackendNotFound)"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tcproute_invalid_cross_namespace_backend_ref() {
    let suite = suite!("tcproute-invalid-cross-namespace-backend-ref");
    let expected = [
        "Accepted=True (Accepted)",
        "ResolvedRefs=False (RefNotPermitted)",
    ];
    let (route, gateway) = (
        "tcp-invalid-cross-namespace-backend-ref",
        "tcp-invalid-cross-namespace-backend-ref-gateway",
    );
    assert_conditions(&suite, route, gateway, &expected).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tcproute_invalid_non_tcp_listener() {
    let suite = suite!("tcproute-invalid-non-tcp-listener");
    let gateway = "tcp-mixed-protocol-gateway";
    let expected = ["Accepted=False (NotAllowedByListeners)"];
    assert_conditions(&suite, "tcp-route", gateway, &expected).await;
    let (_, attached) = suite.listener(gateway, "only-allow-http-routes").await;
    assert_eq!(attached, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn tcproute_parentref_attach_all() {
    let suite = suite!("tcproute-parentref-attach-all");
    let gateway = "tcp-attach-all-gateway";
    suite.assert_accepted("tcp-route-attach-all", gateway).await;
    for port in 9310..=9313 {
        let report = suite.tcp_report(gateway, port).await;
        let pod = report["pod"].as_str().unwrap();
        assert!(pod.starts_with("tcp-echo-attach-all-"), "{port}: {report}");
        assert_eq!(report["namespace"], "gateway-conformance-infra");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tcproute_parentref_port_and_section_name() {
    let suite = suite!("tcproute-parentref-port-and-section-name");
    let gateway = "tcp-multi-listener-gateway";
    for (route, port, backend) in [
        ("tcp-route-by-port", 9300, "tcp-echo-one-"),
        ("tcp-route-by-section", 9301, "tcp-echo-two-"),
        ("tcp-route-by-section-and-port", 9302, "tcp-echo-three-"),
    ] {
        suite.assert_accepted(route, gateway).await;
        let pod = suite.tcp_pod(gateway, port).await;
        assert!(pod.starts_with(backend), "{route}: {pod}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tlsroute_invalid_backendrefs() {
    let suite = suite!(
        "tlsroute-invalid-backendref-nonexistent",
        "tlsroute-invalid-backendref-unknown-kind"
    );
    for (route, gateway, reason) in [
        (
            "invalid-backend-ref-nonexistent",
            "gateway-tlsroute-invalid-backend-ref-nonexistent",
            "BackendNotFound",
        ),
        (
            "invalid-backend-ref-unknown-kind",
            "gateway-tlsroute-invalid-backend-ref-unknown-kind",
            "InvalidKind",
        ),
    ] {
        let resolved = format!("ResolvedRefs=False ({reason})");
        let expected = ["Accepted=True (Accepted)", resolved.as_str()];
        assert_conditions(&suite, route, gateway, &expected).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tlsroute_invalid_no_matching_listener_hostname() {
    let suite = suite!("tlsroute-invalid-no-matching-listener-hostname");
    for (route, gateway) in [
        ("tlsroute-hostname-mismatch-1", "gateway-tls-exact-hostname"),
        (
            "tlsroute-hostname-mismatch-2",
            "gateway-tls-wildcard-hostname",
        ),
    ] {
        let expected = ["Accepted=False (NoMatchingListenerHostname)"];
        assert_conditions(&suite, route, gateway, &expected).await;
        assert_eq!(suite.listener(gateway, "tls").await.1, 0);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tlsroute_invalid_no_matching_listener() {
    let suite = suite!("tlsroute-invalid-no-matching-listener");
    for (route, gateway, reason) in [
        (
            "tlsroute-not-allowed-protocol-http",
            "gateway-tlsroute-http-only",
            "NotAllowedByListeners",
        ),
        (
            "tlsroute-not-allowed-protocol-https",
            "gateway-tlsroute-https-only",
            "NotAllowedByListeners",
        ),
        (
            "tlsroute-no-matching-section-name",
            "gateway-tlsroute-tls-passthrough-only",
            "NoMatchingParent",
        ),
    ] {
        let accepted = format!("Accepted=False ({reason})");
        assert_conditions(&suite, route, gateway, &[accepted.as_str()]).await;
    }
    assert_eq!(
        suite.listener("gateway-tlsroute-http-only", "http").await.1,
        0
    );
    assert_eq!(
        suite
            .listener("gateway-tlsroute-https-only", "https")
            .await
            .1,
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tlsroute_listener_passthrough_supported_kinds() {
    let suite = suite!("tlsroute-listener-passthrough-supported-kinds");
    let gateway = "gateway-tlsroute-passthrough-supported-kind";
    let (conditions, attached) = suite.listener(gateway, "tls-passthrough").await;
    assert!(
        conditions.contains(&"ResolvedRefs=False (InvalidRouteKinds)".to_string()),
        "{conditions:?}"
    );
    assert_eq!(attached, 0);
    let kinds = suite.supported_kinds(gateway, "tls-passthrough").await;
    assert_eq!(kinds, ["TLSRoute"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn tlsroute_hostname_intersection() {
    let suite = suite!("tlsroute-hostname-intersection");
    let gateways = [
        "gw-tlsroute-exact-hostname-x-1",
        "gw-tlsroute-more-specific-wc-hostname-x-2",
        "gw-tlsroute-less-specific-wc-hostname-x-3",
        "gw-tlsroute-empty-hostname-x-4",
    ];
    for (i, gateway) in gateways.iter().enumerate() {
        let answer = suite
            .send_tls(gateway, 443, &get("/").host("abc.example.com"))
            .await;
        assert_eq!(
            answer.backend(),
            "gateway-conformance-infra/tls-backend",
            "{gateway}"
        );
        if i > 0 {
            let other = get("/").host("other.example.com");
            let answer = suite.send_tls(gateway, 443, &other).await;
            assert_eq!(
                answer.backend(),
                "gateway-conformance-infra/tls-backend-2",
                "{gateway}"
            );
        }
    }
    // A name no route of the listener takes is refused.
    for (gateway, name) in [
        (gateways[0], "non.matching.com"),
        (gateways[3], "non.matching.org"),
    ] {
        assert!(
            suite.try_tls(gateway, 443, name).await.is_err(),
            "{gateway} {name}"
        );
    }
}
