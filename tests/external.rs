//! External services end to end: TLS origination to an upstream on loopback with the
//! operator's trust settings (DestinationRule `tls`), and DNS resolution through a DNS
//! server on loopback whose answers change and fail.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use crate::support;
use support::certs::TestCa;
use support::client::Client;
use support::config::{GATEWAY, destination_rule, route_to, virtual_service};
use support::dns::DnsServer;
use support::eventually::eventually;
use support::gateway::Gateway;
use support::upstream::{Upstream, UpstreamTls};

/// A ServiceEntry `host` on port 443 with `protocol`, whose one endpoint is `addr`, and a
/// VirtualService sending requests for `host` to it.
fn external(host: &str, protocol: &str, port: u16) -> String {
    format!(
        "---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {host}}}
spec:
  hosts: [{host}]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{{number: 443, name: main, protocol: {protocol}}}]
  endpoints: [{{address: 127.0.0.1, ports: {{main: {port}}}}}]
---
{}",
        virtual_service(host, host, &route_to(host))
    )
}

/// A DestinationRule for `host` with `tls`.
fn tls_rule(host: &str, tls: &str) -> String {
    let policy = format!("  trafficPolicy:\n    tls: {tls}\n");
    format!("---\n{}", destination_rule(host, &policy))
}

fn path(dir: &Path, file: &str) -> String {
    dir.join(file).display().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn originates_tls_with_the_operators_trust_settings() {
    let dir = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path());
    ca.issue("upstream", &["ext.test"]);
    ca.issue("client", &["gateway.test"]);
    TestCa::new(other.path());
    let upstream = Upstream::start_tls(
        "secure",
        UpstreamTls {
            certificate: &dir.path().join("upstream.pem"),
            key: &dir.path().join("upstream.key"),
            client_ca: Some(&dir.path().join("ca.pem")),
            client_required: false,
        },
    )
    .await;
    let port = upstream.addr.port();
    let (ca_pem, other_ca) = (path(dir.path(), "ca.pem"), path(other.path(), "ca.pem"));
    let (client_pem, client_key) = (
        path(dir.path(), "client.pem"),
        path(dir.path(), "client.key"),
    );
    let cases = [
        // The request's host (ext.test) is the SNI and the name verified.
        (
            "ext.test",
            "HTTP",
            format!("{{mode: SIMPLE, caCertificates: {ca_pem}}}"),
        ),
        (
            "sni.test",
            "HTTP",
            format!("{{mode: SIMPLE, caCertificates: {ca_pem}, sni: ext.test}}"),
        ),
        (
            "wrong-ca.test",
            "HTTP",
            format!("{{mode: SIMPLE, caCertificates: {other_ca}, sni: ext.test}}"),
        ),
        // Pinned SANs replace the hostname check.
        (
            "pinned.test",
            "HTTP",
            format!("{{mode: SIMPLE, caCertificates: {ca_pem}, subjectAltNames: [ext.test]}}"),
        ),
        (
            "mismatch.test",
            "HTTP",
            format!(
                "{{mode: SIMPLE, caCertificates: {ca_pem}, sni: ext.test, subjectAltNames: [other.test]}}"
            ),
        ),
        (
            "skip.test",
            "HTTP",
            "{mode: SIMPLE, insecureSkipVerify: true}".to_string(),
        ),
        (
            "mutual.test",
            "HTTP",
            format!(
                "{{mode: MUTUAL, caCertificates: {ca_pem}, sni: ext.test, clientCertificate: {client_pem}, privateKey: {client_key}}}"
            ),
        ),
        (
            "h2.test",
            "HTTP2",
            format!("{{mode: SIMPLE, caCertificates: {ca_pem}, sni: ext.test}}"),
        ),
    ];
    let mut config = GATEWAY.to_string();
    for (host, protocol, tls) in &cases {
        config += &external(host, protocol, port);
        config += &tls_rule(host, tls);
    }
    // An HTTPS port without a DestinationRule is TLS too, verified against the system's
    // trust anchors (which do not know the test CA).
    config += &external("https.test", "HTTPS", port);
    let gateway = Gateway::start(&config);
    let client = Client::http1(gateway.addr("default/gw/http"));

    let served = |host: &'static str| {
        let client = &client;
        async move {
            let reply = client.get(host, "/who").await;
            assert_eq!(reply.status, 200, "{host}: {}", reply.text());
            reply.json()
        }
    };
    let report = served("ext.test").await;
    assert_eq!(report["name"], "secure");
    assert_eq!(report["tls"]["sni"], "ext.test");
    assert_eq!(report["tls"]["alpn"], "http/1.1");
    assert_eq!(report["version"], "HTTP/1.1");
    assert_eq!(report["tls"]["client_sans"], serde_json::json!([]));

    assert_eq!(served("sni.test").await["tls"]["sni"], "ext.test");
    assert_eq!(served("pinned.test").await["tls"]["sni"], "pinned.test");
    assert_eq!(served("skip.test").await["tls"]["sni"], "skip.test");
    let mutual = served("mutual.test").await;
    assert_eq!(
        mutual["tls"]["client_sans"],
        serde_json::json!(["gateway.test"])
    );
    let h2 = served("h2.test").await;
    assert_eq!(h2["version"], "HTTP/2.0");
    assert_eq!(h2["tls"]["alpn"], "h2");

    // Refused handshakes: 503, and the upstream never sees a request.
    for host in ["wrong-ca.test", "mismatch.test", "https.test"] {
        let hits = upstream.hits();
        let reply = client.get(host, "/who").await;
        assert_eq!(reply.status, 503, "{host}: {}", reply.text());
        assert_eq!(upstream.hits(), hits, "{host} reached the upstream");
    }
    let names = upstream.server_names.lock().unwrap().clone();
    assert!(names.contains(&"https.test".to_string()), "{names:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn follows_dns_answers_and_keeps_the_last_one_through_an_outage() {
    let first = Upstream::start("first").await;
    // The second upstream listens on another loopback address at the same port.
    let second = Upstream::start_on("second", ("127.0.0.2", first.addr.port())).await;
    let dns = DnsServer::start().await;
    dns.set("api.test", &[Ipv4Addr::new(127, 0, 0, 1)], 1);
    let config = format!(
        "{GATEWAY}---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: api}}
spec:
  hosts: [api.test]
  resolution: DNS
  ports: [{{number: {port}, name: http, protocol: HTTP}}]
---
{}",
        virtual_service("api", "api.test", &route_to("api.test")),
        port = first.addr.port()
    );
    let gateway = Gateway::start_with(&config, |command| {
        command.args(["--dns-server", &dns.addr.to_string()]);
    });
    let client = Client::http1(gateway.addr("default/gw/http"));
    assert_eq!(client.get("api.test", "/").await.upstream(), "first");

    // The answer changes: within a few TTLs, requests go to the new address.
    dns.set("api.test", &[Ipv4Addr::new(127, 0, 0, 2)], 1);
    eventually("the new DNS answer was not picked up", || async {
        (client.get("api.test", "/").await.upstream() == "second").then_some(())
    })
    .await;

    // The DNS server fails: the last answer keeps serving, past several TTLs (the sleeps
    // let the outage last three seconds; they wait for no event).
    dns.set_failing(true);
    let queries = dns.queries();
    for _ in 0..15 {
        assert_eq!(client.get("api.test", "/").await.upstream(), "second");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        dns.queries() > queries,
        "the gateway did not ask again during the outage"
    );
    assert!(second.hits() >= 16, "{}", second.hits());
}
