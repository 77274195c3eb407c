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
