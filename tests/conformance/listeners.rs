//! The suite's Gateway listener tests: hostnames, ports, HTTPS and certificate references.

use super::{Suite, assert_served, get};
use crate::support::client::Client;

#[tokio::test(flavor = "multi_thread")]
async fn httproute_hostname_intersection() {
    let suite = suite!("httproute-hostname-intersection");
    let gateway = "httproute-hostname-intersection";
    for route in [
        "specific-host-matches-listener-specific-host",
        "specific-host-matches-listener-wildcard-host",
        "wildcard-host-matches-listener-specific-host",
        "wildcard-host-matches-listener-wildcard-host",
    ] {
        suite.assert_accepted(route, gateway).await;
    }
    let at = |host: &str, path: &str| get(path).host(host);
    let (v1, v2, v3) = (
        Some("infra-backend-v1"),
        Some("infra-backend-v2"),
        Some("infra-backend-v3"),
    );
    let mut cases = vec![
        (at("very.specific.com", "/s1"), v1),
        (at("very.specific.com:1234", "/s1"), v1),
        (at("very.specific.com", "/non-matching-prefix"), None),
        (at("foo.wildcard.io", "/non-matching-prefix"), None),
        (at("very.specific.com", "/s3"), v3),
        (at("foo.anotherwildcard.io", "/non-matching-prefix"), None),
    ];
    let hosts = |hosts: &[&'static str], path: &'static str, backend| {
        hosts
            .iter()
            .map(|h| (at(h, path), backend))
            .collect::<Vec<_>>()
    };
    let none = None;
    cases.extend(hosts(
        &[
            "non.matching.com",
            "foo.nonmatchingwildcard.io",
            "foo.wildcard.io",
        ],
        "/s1",
        none,
    ));
    cases.extend(hosts(
        &["foo.wildcard.io", "bar.wildcard.io", "foo.bar.wildcard.io"],
        "/s2",
        v2,
    ));
    cases.extend(hosts(
        &["non.matching.com", "wildcard.io", "very.specific.com"],
        "/s2",
        none,
    ));
    cases.extend(hosts(
        &["non.matching.com", "foo.specific.com", "foo.wildcard.io"],
        "/s3",
        none,
    ));
    cases.extend(hosts(
        &[
            "foo.anotherwildcard.io",
            "bar.anotherwildcard.io",
            "foo.bar.anotherwildcard.io",
        ],
        "/s4",
        v1,
    ));
    cases.extend(hosts(
        &["anotherwildcard.io", "foo.wildcard.io", "very.specific.com"],
        "/s4",
        none,
    ));
    cases.extend(hosts(
        &["specific.but.wrong.com", "wildcard.io"],
        "/s5",
        none,
    ));
    assert_served(&suite.client(gateway), &cases).await;

    let refused = suite
        .route_conditions("no-intersecting-hosts", gateway)
        .await;
    assert!(
        refused.contains(&"Accepted=False (NoMatchingListenerHostname)".to_string()),
        "{refused:?}"
    );
    for (listener, attached) in [("listener-1", 2), ("listener-2", 1), ("listener-3", 1)] {
        let (conditions, routes) = suite.listener(gateway, listener).await;
        assert!(conditions.contains(&"Accepted=True (Accepted)".to_string()));
        assert_eq!(routes, attached, "{listener}");
    }

    let all = "httproute-hostname-intersection-all";
    suite
        .assert_accepted("httproute-hostname-intersection-all", all)
        .await;
    let mut cases = hosts(
        &["first.com", "sub.first.com", "second.com", "sub.second.com"],
        "/",
        v2,
    );
    cases.extend(hosts(&["third.com", "sub.third.com"], "/", none));
    assert_served(&suite.client(all), &cases).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn httproute_listener_hostname_matching() {
    let suite = suite!("httproute-listener-hostname-matching");
    let gateway = "httproute-listener-hostname-matching";
    for route in ["backend-v1", "backend-v2", "backend-v3"] {
        suite.assert_accepted(route, gateway).await;
    }
    let at = |host| get("/").host(host);
    let cases = [
        (at("bar.com"), Some("infra-backend-v1")),
        (at("foo.bar.com"), Some("infra-backend-v2")),
        (at("baz.bar.com"), Some("infra-backend-v3")),
        (at("boo.bar.com"), Some("infra-backend-v3")),
        (at("multiple.prefixes.bar.com"), Some("infra-backend-v3")),
        (at("multiple.prefixes.foo.com"), Some("infra-backend-v3")),
        (at("foo.com"), None),
        (at("no.matching.host"), None),
    ];
    assert_served(&suite.client(gateway), &cases).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn httproute_listener_port_matching() {
    let suite = suite!("httproute-listener-port-matching");
    let gateway = "httproute-listener-port-matching";
    for route in ["backend-v1", "backend-v2", "backend-v3"] {
        suite.assert_accepted(route, gateway).await;
    }
    for (host, port, expected) in [
        ("foo.com", 80, Some("infra-backend-v1")),
        ("foo.com:8080", 8080, Some("infra-backend-v2")),
        ("bar.com:8080", 8080, Some("infra-backend-v2")),
        ("foo.com:8090", 8090, Some("infra-backend-v3")),
        ("bar.com:8090", 8090, None),
    ] {
        let client = Client::http1(suite.addr(gateway, port));
        assert_served(&client, &[(get("/").host(host), expected)]).await;
        if expected.is_some() {
            let answer = get("/").host(host).send(&client).await;
            assert_eq!(answer.received("host").as_deref(), Some(host));
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn httproute_https_listener() {
    let suite = suite!("httproute-https-listener");
    let gateway = "same-namespace-with-https-listener";
    for route in ["httproute-https-test", "httproute-https-test-no-hostname"] {
        suite.assert_accepted(route, gateway).await;
    }
    for (host, expected) in [
        ("example.org", Some("infra-backend-v1")),
        ("unknown-example.org", None),
        ("second-example.org", Some("infra-backend-v2")),
    ] {
        let answer = suite.send_tls(gateway, 443, &get("/").host(host)).await;
        match expected {
            Some(backend) => {
                assert_eq!(answer.status(), 200, "{host}");
                assert_eq!(answer.backend(), super::infra(backend).unwrap(), "{host}");
            }
            None => assert_eq!(answer.status(), 404, "{host}"),
        }
    }
}

/// Asserts the conditions of the `https` listener of Gateway `gateway`, which names a
/// Secret of another namespace, and that no route is attached to it.
async fn assert_certificate_ref(suite: &Suite, gateway: &str, expected: &[&str]) {
    let (conditions, attached) = suite.listener(gateway, "https").await;
    for condition in expected {
        assert!(
            conditions.iter().any(|c| c == condition),
            "{condition} not in {conditions:?}"
        );
    }
    assert_eq!(attached, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn gateway_secret_missing_reference_grant() {
    let suite = suite!("gateway-secret-missing-reference-grant");
    let refused = [
        "ResolvedRefs=False (RefNotPermitted)",
        "Programmed=False (Invalid)",
    ];
    assert_certificate_ref(&suite, "gateway-secret-missing-reference-grant", &refused).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn gateway_secret_invalid_reference_grant() {
    let suite = suite!("gateway-secret-invalid-reference-grant");
    let refused = [
        "ResolvedRefs=False (RefNotPermitted)",
        "Programmed=False (Invalid)",
    ];
    assert_certificate_ref(&suite, "gateway-secret-invalid-reference-grant", &refused).await;
}

/// Asserts that Gateway `gateway`'s certificate of another namespace, granted, serves.
async fn assert_granted(suite: &Suite, gateway: &str) {
    let granted = [
        "ResolvedRefs=True (ResolvedRefs)",
        "Programmed=True (Programmed)",
    ];
    assert_certificate_ref(suite, gateway, &granted).await;
    // The listener is there, with that certificate: a handshake succeeds (no route: 404).
    let answer = suite.send_tls(gateway, 443, &get("/")).await;
    assert_eq!(answer.status(), 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn gateway_secret_reference_grant_all_in_namespace() {
    let suite = suite!("gateway-secret-reference-grant-all-in-namespace");
    assert_granted(&suite, "gateway-secret-reference-grant-all-in-namespace").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn gateway_secret_reference_grant_specific() {
    let suite = suite!("gateway-secret-reference-grant-specific");
    assert_granted(&suite, "gateway-secret-reference-grant-specific").await;
}
