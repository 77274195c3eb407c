//! Connections forwarded as bytes: TLS PASSTHROUGH routed by SNI (the client verifies the
//! backend's own certificate) beside a terminating server on the same port, and TCP
//! routes with weights and half-close, against real servers on loopback.

use std::path::Path;

use http_body_util::BodyExt as _;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::support;
use support::certs::TestCa;
use support::config::gateway;
use support::eventually::eventually;
use support::gateway::Gateway;
use support::tls_client::client;
use support::upstream::{Upstream, UpstreamTls};

/// A STATIC ServiceEntry `host` on port `number` speaking `protocol`, served at the
/// loopback `port`.
fn service(host: &str, (number, protocol): (u16, &str), port: u16) -> String {
    format!(
        "---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: {host}
spec:
  hosts: [{host}]
  resolution: STATIC
  ports: [{{number: {number}, name: p, protocol: {protocol}}}]
  endpoints: [{{address: 127.0.0.1, ports: {{p: {port}}}}}]
"
    )
}

/// A TLS upstream named `name` with the certificate `dir/<name>.pem` the test CA issued.
pub(crate) async fn tls_upstream(dir: &Path, name: &str) -> Upstream {
    let (certificate, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    let tls = UpstreamTls {
        certificate: &certificate,
        key: &key,
        client_ca: None,
        client_required: false,
    };
    Upstream::start_tls(name, tls).await
}

/// Connects to `addr` with SNI `name`, trusting only the test CA, and returns the name
/// of the upstream that answered `GET /`.
pub(crate) async fn served_over_tls(
    dir: &Path,
    addr: std::net::SocketAddr,
    name: &str,
) -> Result<String, String> {
    let connector = client(dir, &[&rustls::version::TLS13], &[b"http/1.1"], None);
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let server = ServerName::try_from(name.to_string()).unwrap();
    let tls = connector
        .connect(server, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let io = hyper_util::rt::TokioIo::new(tls);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let request = http::Request::get("/")
        .header("host", name)
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    Ok(json["name"].as_str().unwrap_or_default().to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn passthrough_routes_tls_by_sni_to_the_backends_own_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path());
    ca.issue("alpha", &["alpha.example.com"]);
    ca.issue("beta", &["beta.example.com"]);
    ca.issue("gateway", &["plain.example.com"]);
    let alpha = tls_upstream(dir.path(), "alpha").await;
    let beta = tls_upstream(dir.path(), "beta").await;
    let plain = Upstream::start("terminated").await;
    let file = |name: &str| dir.path().join(name).display().to_string();
    let servers = format!(
        "  - port: {{number: 0, name: tls, protocol: TLS}}
    bind: 127.0.0.1
    hosts: [alpha.example.com, beta.example.com]
    tls: {{mode: PASSTHROUGH}}
  - port: {{number: 0, name: tls, protocol: HTTPS}}
    bind: 127.0.0.1
    hosts: [plain.example.com]
    tls: {{mode: SIMPLE, serverCertificate: {}, privateKey: {}}}
",
        file("gateway.pem"),
        file("gateway.key")
    );
    let config = format!(
        "{}{}{}{}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: sni
spec:
  hosts: [alpha.example.com, beta.example.com]
  gateways: [gw]
  tls:
  - match: [{{sniHosts: [alpha.example.com]}}]
    route: [{{destination: {{host: alpha.internal}}}}]
  - match: [{{sniHosts: [beta.example.com]}}]
    route: [{{destination: {{host: beta.internal}}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: plain
spec:
  hosts: [plain.example.com]
  gateways: [gw]
  http: [{{route: [{{destination: {{host: plain.internal}}}}]}}]
",
        gateway(&servers),
        service("alpha.internal", (443, "TLS"), alpha.addr.port()),
        service("beta.internal", (443, "TLS"), beta.addr.port()),
        service("plain.internal", (80, "HTTP"), plain.addr.port()),
    );
    let log = dir.path().join("access.log");
    let gateway = Gateway::start_with(&config, |command| {
        command.arg("--access-log").arg(&log);
    });
    let addr = gateway.addr("default/gw/tls");
    for (name, upstream) in [("alpha.example.com", "alpha"), ("beta.example.com", "beta")] {
        assert_eq!(
            served_over_tls(dir.path(), addr, name).await.as_deref(),
            Ok(upstream)
        );
    }
    // The same port terminates TLS for the server that asks for it.
    let terminated = served_over_tls(dir.path(), addr, "plain.example.com").await;
    assert_eq!(terminated.as_deref(), Ok("terminated"));
    // A name no server takes is refused before any byte reaches a backend.
    assert!(
        served_over_tls(dir.path(), addr, "other.example.com")
            .await
            .is_err()
    );
    assert_eq!(alpha.hits() + beta.hits(), 2);
    // One line per forwarded connection, with Envoy's TCP proxy fields.
    let passed: Vec<serde_json::Value> = eventually("two connection lines", || async {
        let lines: Vec<_> = support::access_log(&log)
            .into_iter()
            .filter(|l| l["method"] == "-")
            .collect();
        (lines.len() == 2).then_some(lines)
    })
    .await;
    let alpha_line = passed
        .iter()
        .find(|l| l["authority"] == "alpha.example.com")
        .expect("a line for alpha");
    assert_eq!(alpha_line["route_name"], "sni.tls.0");
    assert_eq!(alpha_line["response_code"], 0);
    assert_eq!(alpha_line["response_flags"], "-");
    assert_eq!(alpha_line["upstream_host"], alpha.addr.to_string());
    assert!(
        alpha_line["bytes_received"].as_u64().unwrap() > 200,
        "{alpha_line}"
    );
    assert!(
        alpha_line["bytes_sent"].as_u64().unwrap() > 500,
        "{alpha_line}"
    );
}

/// A TCP server that answers each connection with its name, then echoes what it reads
/// until the client half-closes, then closes.
pub(crate) async fn echo(name: &'static str) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut received = Vec::new();
                stream.read_to_end(&mut received).await.unwrap();
                let reply = [format!("{name}:").as_bytes(), &received].concat();
                stream.write_all(&reply).await.unwrap();
                stream.shutdown().await.unwrap();
            });
        }
    });
    addr
}

/// Sends `data`, half-closes, and reads the reply to its end.
pub(crate) async fn exchange(addr: std::net::SocketAddr, data: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(data).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await.unwrap();
    String::from_utf8(reply).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn tcp_routes_split_connections_by_weight_and_pass_on_a_half_close() {
    let (one, two) = (echo("one").await, echo("two").await);
    let config = format!(
        "{}{}{}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: tcp
spec:
  hosts: [\"*\"]
  gateways: [gw]
  tcp:
  - route:
    - {{destination: {{host: one.internal}}, weight: 80}}
    - {{destination: {{host: two.internal}}, weight: 20}}
",
        gateway(
            "  - port: {number: 0, name: tcp, protocol: TCP}
    bind: 127.0.0.1
    hosts: [\"*\"]
"
        ),
        service("one.internal", (9000, "TCP"), one.port()),
        service("two.internal", (9000, "TCP"), two.port()),
    );
    let gateway = Gateway::start(&config);
    let addr = gateway.addr("default/gw/tcp");
    let mut ones = 0;
    for i in 0..100 {
        let data = format!("hello {i}");
        let reply = exchange(addr, data.as_bytes()).await;
        match reply.split_once(':') {
            Some(("one", echoed)) => {
                ones += 1;
                assert_eq!(echoed, data);
            }
            Some(("two", echoed)) => assert_eq!(echoed, data),
            _ => panic!("reply {reply:?}"),
        }
    }
    // 80 expected; binomial sd 4.
    assert!(
        (65..=95).contains(&ones),
        "{ones} of 100 went to the weight-80 destination"
    );
}

/// What is checked, warned about or not served, said at its field.
#[test]
fn tls_and_tcp_routes_are_checked_at_their_fields() {
    let config = format!(
        "{}{}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: sni
spec:
  hosts: [a.example.com]
  gateways: [gw]
  tls:
  - match: [{{sniHosts: [b.example.com], sourceLabels: {{app: x}}}}]
    route: [{{destination: {{host: known.internal}}}}]
  - match: [{{sniHosts: [a.example.com]}}]
    route: [{{destination: {{host: unknown.internal}}}}, {{destination: {{host: known.internal}}}}]
",
        gateway(
            "  - port: {number: 0, name: tls, protocol: TLS}
    hosts: [\"*\"]
    tls: {mode: PASSTHROUGH, credentialName: unused}
  - port: {number: 0, name: tcp-tls, protocol: TLS}
    hosts: [\"*\"]
    tls: {mode: SIMPLE, credentialName: unused}
"
        ),
        service("known.internal", (443, "TLS"), 9),
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gateway.yaml"), config).unwrap();
    let output = support::validate(dir.path(), "gateway.yaml");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    for expected in [
        "spec.tls[0].match[0].sniHosts[0]: SNI host \"b.example.com\" is not among the VirtualService's hosts",
        "spec.tls[0].match[0].sourceLabels: not served for tls routes yet; ignored",
        "spec.tls[1].route[0].destination: no ServiceEntry defines host \"unknown.internal\": this destination is left out",
        "spec.servers[0].tls.credentialName: a PASSTHROUGH server terminates no TLS; ignored",
        "spec.servers[1].tls.mode: a TLS server that terminates TLS forwards to tcp routes, which is not served yet",
    ] {
        assert!(stderr.contains(expected), "{expected}\nnot in:\n{stderr}");
    }
}

/// A TCP VirtualService binds where its hosts meet the server's, and serves every
/// connection to the port; one that cannot be forwarded is closed and logged with
/// Envoy's flag: UH (no endpoint), UF (the upstream refuses).
#[tokio::test(flavor = "multi_thread")]
async fn tcp_servers_with_hosts_forward_and_log_why_a_connection_was_not() {
    let one = echo("one").await;
    let refused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let refused_port = refused.local_addr().unwrap().port();
    drop(refused);
    // Port-0 servers share a listener by port name: one name each.
    let tcp_gateway = |name: &str| {
        support::config::named_gateway(
            name,
            &format!(
                "  - port: {{number: 0, name: tcp-{name}, protocol: TCP}}
    bind: 127.0.0.1
    hosts: [tcp.example.com]
"
            ),
        )
    };
    let tcp_service = |name: &str, gateway: &str, host: &str| {
        format!(
            "---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: {name}
spec:
  hosts: [tcp.example.com]
  gateways: [{gateway}]
  tcp: [{{route: [{{destination: {{host: {host}}}}}]}}]
"
        )
    };
    let empty = "---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: empty.internal}
spec:
  hosts: [empty.internal]
  resolution: STATIC
  ports: [{number: 9000, name: p, protocol: TCP}]
";
    let config = [
        tcp_gateway("ok"),
        tcp_gateway("uh"),
        tcp_gateway("uf"),
        service("one.internal", (9000, "TCP"), one.port()),
        service("refused.internal", (9000, "TCP"), refused_port),
        empty.to_string(),
        tcp_service("to-one", "ok", "one.internal"),
        tcp_service("to-empty", "uh", "empty.internal"),
        tcp_service("to-refused", "uf", "refused.internal"),
    ]
    .join("---\n");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let gateway = Gateway::start_with(&config, |command| {
        command.arg("--access-log").arg(&log);
    });
    let reply = exchange(gateway.addr("default/ok/tcp-ok"), b"hi").await;
    assert_eq!(reply, "one:hi");
    for server in ["default/uh/tcp-uh", "default/uf/tcp-uf"] {
        // Closed without a byte: a write or read may meet the close or a reset.
        let mut stream = TcpStream::connect(gateway.addr(server)).await.unwrap();
        let _ = stream.write_all(b"hi").await;
        let mut reply = Vec::new();
        let _ = stream.read_to_end(&mut reply).await;
        assert!(reply.is_empty(), "{server}: {reply:?}");
    }
    let lines: Vec<serde_json::Value> = eventually("three connection lines", || async {
        let lines = support::access_log(&log);
        (lines.len() == 3).then_some(lines)
    })
    .await;
    let flag = |route: &str| {
        let line = lines.iter().find(|l| l["route_name"] == route).unwrap();
        line["response_flags"].as_str().unwrap().to_string()
    };
    assert_eq!(flag("to-one.tcp.0"), "-");
    assert_eq!(flag("to-empty.tcp.0"), "UH");
    assert_eq!(flag("to-refused.tcp.0"), "UF");
}
