//! Istio's own samples (`../shared/istio-corpus`), served end to end with real upstreams:
//! the documents as Istio ships them, except that Gateway ports become free loopback
//! ports, mesh VirtualServices are bound to the sample's Gateway (as a user does to take
//! them to the edge), and ServiceEntries stand in for the Kubernetes Services.

use std::path::PathBuf;

use serde_yaml::Value;

use crate::support;
use support::client::{Client, empty};
use support::gateway::Gateway;
use support::upstream::Upstream;

fn corpus() -> Option<PathBuf> {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/istio-corpus/corpus/istio");
    dir.exists().then_some(dir)
}

/// The documents of sample `name` (e.g. `bookinfo__networking__bookinfo-gateway`).
fn sample(name: &str) -> Vec<Value> {
    corpus_file(&format!("samples__{name}.yaml.yaml"))
}

/// The documents of the corpus file `file`.
fn corpus_file(file: &str) -> Vec<Value> {
    let path = corpus().unwrap().join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .filter_map(|doc| {
            let value = Value::deserialize(doc).ok()?;
            value.get("kind").is_some().then_some(value)
        })
        .collect()
}

use serde::Deserialize as _;

/// Gateways on a free loopback port; VirtualServices without gateways bound to `gateway`.
fn for_the_edge(mut docs: Vec<Value>, gateway: &str) -> Vec<Value> {
    for doc in &mut docs {
        let kind = doc["kind"].as_str().unwrap_or_default().to_string();
        let spec = doc.get_mut("spec").unwrap();
        match kind.as_str() {
            "Gateway" => {
                for server in spec["servers"].as_sequence_mut().unwrap() {
                    server["port"]["number"] = Value::from(0);
                    server["bind"] = Value::from("127.0.0.1");
                }
            }
            "VirtualService" if spec.get("gateways").is_none() => {
                spec["gateways"] = Value::Sequence(vec![Value::from(gateway)]);
            }
            _ => {}
        }
    }
    docs
}

/// A ServiceEntry standing in for the Kubernetes Service `host` on `port`, with one
/// endpoint per `(version, upstream)`.
fn service(host: &str, port: u16, versions: &[(&str, &Upstream)]) -> Value {
    let endpoints: Vec<String> = versions
        .iter()
        .map(|(version, upstream)| {
            format!(
                "  - {{address: 127.0.0.1, ports: {{http: {}}}, labels: {{version: {version}}}}}",
                upstream.addr.port()
            )
        })
        .collect();
    serde_yaml::from_str(&format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {host}}}
spec:
  hosts: [{host}]
  resolution: STATIC
  ports: [{{number: {port}, name: http, protocol: HTTP}}]
  endpoints:
{}
",
        endpoints.join("\n")
    ))
    .unwrap()
}

fn start(docs: &[Value]) -> Gateway {
    let text: Vec<String> = docs
        .iter()
        .map(|d| serde_yaml::to_string(d).unwrap())
        .collect();
    Gateway::start(&text.join("---\n"))
}

macro_rules! corpus_or_skip {
    () => {
        if corpus().is_none() {
            eprintln!("../shared/istio-corpus is not here; skipped");
            return;
        }
    };
}

#[tokio::test(flavor = "multi_thread")]
async fn bookinfo_gateway_routes_subsets_header_matches_and_fault_injection() {
    corpus_or_skip!();
    let productpage = Upstream::start("productpage").await;
    let (r1, r2, r3) = (
        Upstream::start("reviews-v1").await,
        Upstream::start("reviews-v2").await,
        Upstream::start("reviews-v3").await,
    );
    let ratings = Upstream::start("ratings-v1").await;
    let mut docs = sample("bookinfo__networking__bookinfo-gateway");
    docs.extend(sample("bookinfo__networking__destination-rule-all"));
    docs.extend(sample(
        "bookinfo__networking__virtual-service-reviews-jason-v2-v3",
    ));
    docs.extend(sample(
        "bookinfo__networking__virtual-service-ratings-test-abort",
    ));
    let mut docs = for_the_edge(docs, "bookinfo-gateway");
    docs.push(service("productpage", 9080, &[("v1", &productpage)]));
    docs.push(service(
        "reviews",
        9080,
        &[("v1", &r1), ("v2", &r2), ("v3", &r3)],
    ));
    docs.push(service("ratings", 9080, &[("v1", &ratings)]));
    docs.push(service("details", 9080, &[("v1", &productpage)]));
    let gateway = start(&docs);
    let client = Client::http1(gateway.addr("default/bookinfo-gateway/http"));

    for path in [
        "/productpage",
        "/static/app.css",
        "/login",
        "/api/v1/products/0",
    ] {
        assert_eq!(
            client.get("bookinfo.example", path).await.upstream(),
            "productpage",
            "{path}"
        );
    }
    assert_eq!(client.get("bookinfo.example", "/").await.status, 404);

    let as_user = |host: &'static str, user: Option<&'static str>| {
        let client = client.clone();
        async move {
            let mut request = client.request("GET", host, "/");
            if let Some(user) = user {
                request = request.header("end-user", user);
            }
            client.send(request.body(empty()).unwrap()).await
        }
    };
    assert_eq!(
        as_user("reviews", Some("jason")).await.upstream(),
        "reviews-v2"
    );
    assert_eq!(as_user("reviews", None).await.upstream(), "reviews-v3");
    assert_eq!(as_user("ratings", Some("jason")).await.status, 500);
    assert_eq!(as_user("ratings", None).await.upstream(), "ratings-v1");
    assert_eq!(r1.hits(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn bookinfo_reviews_90_10_splits_by_weight() {
    corpus_or_skip!();
    let (r1, r2) = (
        Upstream::start("reviews-v1").await,
        Upstream::start("reviews-v2").await,
    );
    let mut docs = sample("bookinfo__networking__bookinfo-gateway");
    docs.extend(sample("bookinfo__networking__destination-rule-reviews"));
    docs.extend(sample(
        "bookinfo__networking__virtual-service-reviews-90-10",
    ));
    let mut docs = for_the_edge(docs, "bookinfo-gateway");
    docs.push(service("productpage", 9080, &[("v1", &r1)]));
    docs.push(service("reviews", 9080, &[("v1", &r1), ("v2", &r2)]));
    let gateway = start(&docs);
    let client = Client::http1(gateway.addr("default/bookinfo-gateway/http"));
    for _ in 0..400 {
        assert_eq!(client.get("reviews", "/").await.status, 200);
    }
    let v2 = r2.hits();
    // 10% of 400 is 40; five standard deviations (±30) either way.
    assert!((10..=70).contains(&v2), "{v2} of 400 went to v2");
}

#[tokio::test(flavor = "multi_thread")]
async fn httpbin_and_helloworld_gateways_route_to_their_ports() {
    corpus_or_skip!();
    let (httpbin, helloworld) = (
        Upstream::start("httpbin").await,
        Upstream::start("helloworld").await,
    );
    let mut docs = for_the_edge(sample("httpbin__httpbin-gateway"), "httpbin-gateway");
    docs.push(service("httpbin", 8000, &[("v1", &httpbin)]));
    let gateway = start(&docs);
    let client = Client::http1(gateway.addr("default/httpbin-gateway/http"));
    assert_eq!(
        client.get("httpbin.example", "/get").await.upstream(),
        "httpbin"
    );

    let mut docs = for_the_edge(
        sample("helloworld__helloworld-gateway"),
        "helloworld-gateway",
    );
    docs.push(service("helloworld", 5000, &[("v1", &helloworld)]));
    let gateway = start(&docs);
    let client = Client::http1(gateway.addr("default/helloworld-gateway/http"));
    assert_eq!(
        client.get("hello.example", "/hello").await.upstream(),
        "helloworld"
    );
    assert_eq!(client.get("hello.example", "/hello/x").await.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_websockets_sample_carries_a_websocket() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    corpus_or_skip!();
    let server = support::websocket::echo_server().await;
    let mut docs = for_the_edge(sample("websockets__route"), "tornado-gateway");
    let stand_in: Value = serde_yaml::from_str(&format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: tornado}}
spec:
  hosts: [tornado]
  resolution: STATIC
  ports: [{{number: 8888, name: http, protocol: HTTP}}]
  endpoints: [{{address: 127.0.0.1, ports: {{http: {}}}}}]
",
        server.port()
    ))
    .unwrap();
    docs.push(stand_in);
    let gateway = start(&docs);
    let addr = gateway.addr("default/tornado-gateway/http");
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .unwrap();
    ws.send(Message::text("hello tornado")).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::text("hello tornado")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tls_ingress_terminates_tls_with_its_credential() {
    corpus_or_skip!();
    let httpbin = Upstream::start("httpbin").await;
    let dir = tempfile::tempdir().unwrap();
    let credential = dir.path().join("myingress-cert");
    std::fs::create_dir_all(&credential).unwrap();
    let ca = support::certs::TestCa::new(&credential);
    ca.issue("tls", &["foo.org"]);
    std::fs::rename(credential.join("tls.pem"), credential.join("tls.crt")).unwrap();
    // What Istio generates for a Kubernetes Ingress with TLS (its golden test data).
    let mut docs = for_the_edge(
        corpus_file("pilot__pkg__config__kube__ingress__testdata__tls.yaml.golden.yaml"),
        "unused",
    );
    docs.push(service("httpbin.bar.svc.mydomain", 80, &[("v1", &httpbin)]));
    let text: Vec<String> = docs
        .iter()
        .map(|d| serde_yaml::to_string(d).unwrap())
        .collect();
    std::fs::write(dir.path().join("gateway.yaml"), text.join("---\n")).unwrap();
    let gateway = Gateway::launch(dir, "gateway.yaml", |_| {});
    let addr = gateway
        .addr("istio-system/tls-istio-autogenerated-k8s-ingress-bar/https-443-ingress-tls-bar-0");
    let ca_file = gateway.dir.path().join("myingress-cert/ca.pem");
    let output = std::process::Command::new("curl")
        .args(["-s", "--max-time", "5", "--cacert"])
        .arg(&ca_file)
        .arg("--resolve")
        .arg(format!("foo.org:{}:127.0.0.1", addr.port()))
        .arg(format!("https://foo.org:{}/get", addr.port()))
        .output();
    let output = match output {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("curl is not installed; skipped");
            return;
        }
        Err(e) => panic!("curl: {e}"),
    };
    let body = String::from_utf8_lossy(&output.stdout);
    let report: serde_json::Value = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("{e}: {body} {}", String::from_utf8_lossy(&output.stderr)));
    assert_eq!(report["name"], "httpbin");
    assert_eq!(report["headers"]["x-forwarded-proto"], "https");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ratings_delay_task_holds_jasons_requests_for_seven_seconds() {
    corpus_or_skip!();
    let ratings = Upstream::start("ratings-v1").await;
    let mut docs = sample("bookinfo__networking__bookinfo-gateway");
    docs.extend(sample("bookinfo__networking__destination-rule-all"));
    docs.extend(sample(
        "bookinfo__networking__virtual-service-ratings-test-delay",
    ));
    let mut docs = for_the_edge(docs, "bookinfo-gateway");
    docs.push(service("productpage", 9080, &[("v1", &ratings)]));
    docs.push(service("reviews", 9080, &[("v1", &ratings)]));
    docs.push(service("details", 9080, &[("v1", &ratings)]));
    docs.push(service("ratings", 9080, &[("v1", &ratings)]));
    let gateway = start(&docs);
    let client = Client::http1(gateway.addr("default/bookinfo-gateway/http"));
    let timed = |user: Option<&'static str>| {
        let client = client.clone();
        async move {
            let mut request = client.request("GET", "ratings", "/");
            if let Some(user) = user {
                request = request.header("end-user", user);
            }
            let started = std::time::Instant::now();
            let reply = client.send(request.body(empty()).unwrap()).await;
            (reply.upstream(), started.elapsed())
        }
    };
    let (who, took) = timed(None).await;
    assert_eq!(who, "ratings-v1");
    assert!(took < std::time::Duration::from_secs(2), "{took:?}");
    let (who, took) = timed(Some("jason")).await;
    assert_eq!(who, "ratings-v1");
    assert!(took >= std::time::Duration::from_secs(7), "{took:?}");
}
