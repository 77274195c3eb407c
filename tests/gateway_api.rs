//! The Kubernetes Gateway API, served end to end: HTTPRoutes of the Gateway API conformance
//! suite (`../shared/gateway-api-conformance`, read where it lies) on a Gateway like the
//! suite's `same-namespace` one (on a free loopback port), with ServiceEntries standing in
//! for its `infra-backend-v*` Services, and the suite's expectations.

use std::path::PathBuf;

use crate::support;
use support::client::{Client, empty};
use support::gateway::Gateway;
use support::upstream::Upstream;

fn suite() -> Option<PathBuf> {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/gateway-api-conformance");
    dir.exists().then_some(dir)
}

/// The suite's `same-namespace` Gateway, on a free loopback port.
const GATEWAY: &str = "apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: portcullis
spec:
  controllerName: portcullis.dev/gateway
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: same-namespace
  namespace: gateway-conformance-infra
spec:
  gatewayClassName: portcullis
  addresses: [{type: IPAddress, value: 127.0.0.1}]
  listeners:
  - name: http
    port: 0
    protocol: HTTP
    allowedRoutes:
      namespaces:
        from: Same
";

/// A STATIC ServiceEntry standing in for Service `name` of namespace `namespace` (the
/// host `name.namespace.svc.cluster.local`) on service port `number` speaking `protocol`,
/// served by the loopback upstream on `port`.
fn service_entry(
    name: &str,
    namespace: &str,
    (number, protocol): (u16, &str),
    port: u16,
) -> String {
    let port_name = protocol.to_ascii_lowercase();
    format!(
        "---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: {name}
  namespace: {namespace}
spec:
  hosts: [{name}.{namespace}.svc.cluster.local]
  resolution: STATIC
  ports: [{{number: {number}, name: {port_name}, protocol: {protocol}}}]
  endpoints:
  - {{address: 127.0.0.1, ports: {{{port_name}: {port}}}}}
"
    )
}

/// The suite's three infra backends, each a ServiceEntry for its Service's name on port
/// 8080, served by an upstream named after it.
struct Backends {
    upstreams: Vec<Upstream>,
}

impl Backends {
    async fn start() -> Self {
        let mut upstreams = Vec::new();
        for v in 1..=3 {
            upstreams.push(Upstream::start(&format!("infra-backend-v{v}")).await);
        }
        Self { upstreams }
    }

    fn yaml(&self) -> String {
        self.upstreams
            .iter()
            .enumerate()
            .map(|(i, upstream)| {
                let name = format!("infra-backend-v{}", i + 1);
                let port = upstream.addr.port();
                service_entry(&name, "gateway-conformance-infra", (8080, "HTTP"), port)
            })
            .collect()
    }
}

/// A gateway serving the suite's tests `tests` (their YAML files, without `.yaml`).
async fn serve(tests: &[&str]) -> Option<(Backends, Gateway)> {
    let suite = suite()?;
    let backends = Backends::start().await;
    let routes: String = tests
        .iter()
        .map(|test| {
            let path = suite.join(format!("tests/{test}.yaml"));
            format!("---\n{}", std::fs::read_to_string(path).unwrap())
        })
        .collect();
    let config = format!("{GATEWAY}{}{routes}", backends.yaml());
    let gateway = Gateway::start(&config);
    Some((backends, gateway))
}

/// Which backend served `path` with `headers` (none: 404).
async fn served(client: &Client, path: &str, headers: &[(&str, &str)]) -> Option<String> {
    served_for(client, "GET", path, headers).await
}

/// Which backend served a `method` request for `path` with `headers` (none: 404).
async fn served_for(
    client: &Client,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Option<String> {
    served_at(client, "example.com", method, path, headers).await
}

/// Which backend served a `method` request for `host` and `path` with `headers` (none:
/// 404).
async fn served_at(
    client: &Client,
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Option<String> {
    let mut request = client.request(method, host, path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let reply = client.send(request.body(empty()).unwrap()).await;
    match reply.status.as_u16() {
        404 => None,
        200 => Some(reply.json()["name"].as_str().unwrap().to_string()),
        other => panic!("{method} {path}: status {other}"),
    }
}

fn backend(v: u8) -> Option<String> {
    Some(format!("infra-backend-v{v}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn exact_paths_and_path_prefixes_match_by_the_apis_precedence() {
    let Some((_backends, gateway)) = serve(&[
        "httproute-path-match-order",
        "httproute-exact-path-matching",
    ])
    .await
    else {
        return;
    };
    let client = Client::http1(gateway.addr("gateway-conformance-infra/same-namespace/http"));
    // Exact beats prefix, longer prefixes beat shorter ones, prefixes match whole segments.
    for (path, expected) in [
        ("/match/exact/one", 3),
        ("/match/exact", 2),
        ("/match", 1),
        ("/match/prefix/one/any", 2),
        ("/match/prefix/any", 1),
        ("/match/any", 3),
        ("/one", 1),
        ("/two", 2),
    ] {
        assert_eq!(
            served(&client, path, &[]).await,
            backend(expected),
            "{path}"
        );
    }
    for path in ["/", "/one/example", "/two/", "/Two", "/matchx"] {
        assert_eq!(served(&client, path, &[]).await, None, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_header_match_beats_a_path_prefix_of_the_same_length() {
    let Some((_backends, gateway)) = serve(&["httproute-matching"]).await else {
        return;
    };
    let client = Client::http1(gateway.addr("gateway-conformance-infra/same-namespace/http"));
    for (path, headers, expected) in [
        ("/", &[][..], 1),
        ("/example", &[], 1),
        ("/v2", &[], 2),
        ("/v2/example", &[], 2),
        ("/", &[("version", "one")], 1),
        ("/", &[("version", "two")], 2),
    ] {
        assert_eq!(
            served(&client, path, headers).await,
            backend(expected),
            "{path} {headers:?}"
        );
    }
}

/// What the backend was sent for `path` (with `headers`): its report.
async fn sent(client: &Client, path: &str, headers: &[(&str, &str)]) -> serde_json::Value {
    let mut request = client.request("GET", "example.com", path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let reply = client.send(request.body(empty()).unwrap()).await;
    assert_eq!(reply.status, 200, "{path}");
    reply.json()
}

#[tokio::test(flavor = "multi_thread")]
async fn url_rewrites_replace_the_matched_prefix_or_the_whole_path_and_edit_headers() {
    let Some((_backends, gateway)) = serve(&["httproute-rewrite-path"]).await else {
        return;
    };
    let client = Client::http1(gateway.addr("gateway-conformance-infra/same-namespace/http"));
    for (path, upstream) in [
        ("/prefix/one/two", "/one/two"),
        ("/full/one/two", "/one"),
        ("/strip-prefix/three", "/three"),
        ("/strip-prefix", "/"),
        ("/full/rewrite-path-and-modify-headers/test", "/test"),
        ("/prefix/rewrite-path-and-modify-headers/one", "/prefix/one"),
    ] {
        assert_eq!(sent(&client, path, &[]).await["path"], upstream, "{path}");
    }
    let edited = sent(
        &client,
        "/prefix/rewrite-path-and-modify-headers/one",
        &[("x-header-set", "original"), ("x-header-remove", "gone")],
    )
    .await;
    let headers = &edited["headers"];
    assert_eq!(headers["x-header-set"], "set-overwrites-values", "{edited}");
    assert_eq!(headers["x-header-add"], "header-val-1", "{edited}");
    assert!(headers.get("x-header-remove").is_none(), "{edited}");
}

#[tokio::test(flavor = "multi_thread")]
async fn backends_share_requests_by_weight_and_weight_zero_gets_none() {
    let Some((_backends, gateway)) = serve(&["httproute-weight"]).await else {
        return;
    };
    let client = Client::http1(gateway.addr("gateway-conformance-infra/same-namespace/http"));
    let mut v1 = 0;
    for _ in 0..200 {
        match served(&client, "/", &[]).await.as_deref() {
            Some("infra-backend-v1") => v1 += 1,
            Some("infra-backend-v2") => {}
            other => panic!("served by {other:?}"),
        }
    }
    // 70% of 200 is 140; five standard deviations (±32) either way.
    assert!((108..=172).contains(&v1), "{v1} of 200 at 70%");
}

#[tokio::test(flavor = "multi_thread")]
async fn redirects_default_to_302_and_rules_without_backends_answer_500() {
    let Some((_backends, gateway)) = serve(&[
        "httproute-redirect-host-and-status",
        "httproute-omitted-backendrefs",
    ])
    .await
    else {
        return;
    };
    let addr = gateway.addr("gateway-conformance-infra/same-namespace/http");
    let client = Client::http1(addr);
    // No scheme, no port: the listener's port stays.
    let location =
        |reply: &support::client::Reply| reply.headers["location"].to_str().unwrap().to_string();
    let found = client.get("example.com", "/hostname-redirect").await;
    assert_eq!(found.status, 302);
    assert_eq!(
        location(&found),
        format!("http://example.org:{}/hostname-redirect", addr.port())
    );
    let moved = client.get("example.com", "/host-and-status").await;
    assert_eq!(moved.status, 301);
    for path in ["/omitted-no-forward", "/empty-no-forward"] {
        assert_eq!(client.get("example.com", path).await.status, 500, "{path}");
    }
    assert_eq!(served(&client, "/other", &[]).await, backend(1));
}

/// What is not served yet is said, at its field, and the rest loads.
#[test]
fn what_is_not_served_yet_is_warned_about_at_its_field() {
    let config = format!(
        "{GATEWAY}  - name: tcp
    port: 0
    protocol: TCP
---
apiVersion: v1
kind: Namespace
metadata:
  name: gateway-conformance-infra
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: infra-backend-v1
spec:
  replicas: 2
---
apiVersion: v1
kind: Secret
metadata:
  name: certificate
type: kubernetes.io/tls
data: {{tls.crt: eA==}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: later
  namespace: gateway-conformance-infra
spec:
  parentRefs: [{{name: same-namespace, sectionName: http}}]
  rules:
  - sessionPersistence: {{sessionName: s}}
    filters:
    - type: ExtensionRef
      extensionRef: {{group: example.com, kind: Thing, name: it}}
"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gateway.yaml"), config).unwrap();
    let output = support::validate(dir.path(), "gateway.yaml");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    for expected in [
        "spec.listeners[1].protocol: protocol \"TCP\" is not served yet",
        "Deployment/infra-backend-v1: kind: a standalone gateway does not read Kubernetes Deployments",
        "Secret/certificate: kind: a standalone gateway does not read Kubernetes Secrets",
        "GatewayClass/portcullis: spec.controllerName: not checked",
        "spec.rules[0].sessionPersistence: not served yet",
        "spec.rules[0].filters[0].type: filter \"ExtensionRef\" is not served yet",
    ] {
        assert!(stderr.contains(expected), "{expected} not in {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn more_header_matches_win() {
    let Some((_backends, gateway)) = serve(&["httproute-header-matching"]).await else {
        return;
    };
    let client = Client::http1(gateway.addr("gateway-conformance-infra/same-namespace/http"));
    for (headers, expected) in [
        (&[("version", "one")][..], Some(1)),
        (&[("version", "two")], Some(2)),
        (&[("version", "two"), ("color", "orange")], Some(1)),
        (&[("color", "blue")], Some(1)),
        (&[("color", "green")], Some(1)),
        (&[("color", "red")], Some(2)),
        (&[("color", "yellow")], Some(2)),
        (&[], None),
    ] {
        assert_eq!(
            served(&client, "/", headers).await,
            expected.and_then(backend),
            "{headers:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn methods_rank_after_paths_and_before_headers() {
    let Some((_backends, gateway)) = serve(&["httproute-method-matching"]).await else {
        return;
    };
    let client = Client::http1(gateway.addr("gateway-conformance-infra/same-namespace/http"));
    for (method, path, headers, expected) in [
        ("POST", "/", &[][..], 1),
        ("GET", "/", &[], 2),
        ("GET", "/path1", &[], 1),
        ("PUT", "/", &[("version", "one")], 2),
        ("POST", "/path2", &[("version", "two")], 3),
    ] {
        assert_eq!(
            served_for(&client, method, path, headers).await,
            backend(expected),
            "{method} {path} {headers:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_https_listener_terminates_tls_with_its_secrets_certificate() {
    let backends = Backends::start().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = support::certs::TestCa::new(dir.path());
    std::fs::create_dir(dir.path().join("site-cert")).unwrap();
    ca.issue("site-cert/tls", &["example.com"]);
    let secret = dir.path().join("site-cert");
    std::fs::rename(secret.join("tls.pem"), secret.join("tls.crt")).unwrap();
    let config = format!(
        "{}{}---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: secure
  namespace: gateway-conformance-infra
spec:
  parentRefs: [{{name: same-namespace}}]
  hostnames: [example.com]
  rules:
  - backendRefs: [{{name: infra-backend-v1, port: 8080}}]
",
        GATEWAY.replace(
            "  - name: http\n    port: 0\n    protocol: HTTP\n",
            "  - name: https\n    port: 0\n    protocol: HTTPS\n    hostname: example.com\n    tls: {certificateRefs: [{name: site-cert}]}\n",
        ),
        backends.yaml(),
    );
    std::fs::write(dir.path().join("gateway.yaml"), config).unwrap();
    let gateway = Gateway::launch(dir, "gateway.yaml", |_| {});
    let addr = gateway.addr("gateway-conformance-infra/same-namespace/https");
    let connector = support::tls_client::client(
        gateway.dir.path(),
        rustls::ALL_VERSIONS,
        &[b"http/1.1"],
        None,
    );
    let (alpn, status) = support::tls_client::get(&connector, addr, "example.com")
        .await
        .unwrap();
    assert_eq!((alpn.as_deref(), status), (Some(&b"http/1.1"[..]), 200));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_section_name_attaches_a_route_to_one_listener_only() {
    let backends = Backends::start().await;
    let route = |name: &str, parent: &str, path: &str, v: u8| {
        format!(
            "---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: {name}
  namespace: gateway-conformance-infra
spec:
  parentRefs: [{parent}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: {path}}}}}]
    backendRefs: [{{name: infra-backend-v{v}, port: 8080}}]
"
        )
    };
    let config = format!(
        "{GATEWAY}  - name: other
    port: 0
    protocol: HTTP
{}{}{}{}",
        backends.yaml(),
        route(
            "only-http",
            "{name: same-namespace, sectionName: http}",
            "/only",
            1
        ),
        route("everywhere", "{name: same-namespace}", "/all", 2),
        route(
            "nowhere",
            "{name: same-namespace, sectionName: missing}",
            "/none",
            3
        ),
    );
    let gateway = Gateway::start(&config);
    assert!(gateway.stderr_lines("has no listener named \"missing\"") > 0);
    let http = Client::http1(gateway.addr("gateway-conformance-infra/same-namespace/http"));
    let other = Client::http1(gateway.addr("gateway-conformance-infra/same-namespace/other"));
    assert_eq!(served(&http, "/only", &[]).await, backend(1));
    assert_eq!(served(&http, "/all", &[]).await, backend(2));
    assert_eq!(served(&other, "/only", &[]).await, None);
    assert_eq!(served(&other, "/all", &[]).await, backend(2));
    assert_eq!(served(&http, "/none", &[]).await, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn request_and_backend_timeouts_answer_504_and_0s_disables_them() {
    let Some((_backends, gateway)) = serve(&[
        "httproute-timeout-request",
        "httproute-timeout-backend-request",
    ])
    .await
    else {
        return;
    };
    let client = Client::http1(gateway.addr("gateway-conformance-infra/same-namespace/http"));
    for (path, status) in [
        ("/request-timeout/slow/1000", 504),
        ("/backend-timeout/slow/1000", 504),
        ("/request-timeout/slow/10", 200),
        ("/disable-request-timeout/slow/700", 200),
        ("/disable-backend-timeout/slow/700", 200),
    ] {
        assert_eq!(
            client.get("example.com", path).await.status,
            status,
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_mirror_sends_a_copy_to_its_backend() {
    let Some((backends, gateway)) = serve(&["httproute-request-mirror"]).await else {
        return;
    };
    let client = Client::http1(gateway.addr("gateway-conformance-infra/same-namespace/http"));
    let mirrored = &backends.upstreams[1];
    for path in ["/mirror", "/mirror-and-modify-headers"] {
        let before = mirrored.hits();
        assert_eq!(served(&client, path, &[]).await, backend(1), "{path}");
        crate::assert_eventually!(
            mirrored.hits() > before,
            "infra-backend-v2 never got the copy of {path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn routes_of_several_httproutes_on_one_host_are_ordered_together() {
    let Some((_backends, gateway)) = serve(&["httproute-matching-across-routes"]).await else {
        return;
    };
    let client = Client::http1(gateway.addr("gateway-conformance-infra/same-namespace/http"));
    for (host, path, headers, expected) in [
        ("example.com", "/", &[][..], 1),
        ("example.com", "/example", &[], 1),
        ("example.net", "/", &[], 1),
        ("example.com", "/v2", &[], 2),
        ("example.com", "/v2/example", &[], 2),
        ("example.com", "/", &[("version", "two")], 2),
        ("example.net", "/v2", &[], 1),
        ("example.net", "/", &[("version", "two")], 1),
    ] {
        assert_eq!(
            served_at(&client, host, "GET", path, headers).await,
            backend(expected),
            "{host}{path} {headers:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_repeat_the_listed_statuses_up_to_their_attempts() {
    let Some((backends, gateway)) = serve(&["httproute-retry"]).await else {
        return;
    };
    let client = Client::http1(gateway.addr("gateway-conformance-infra/same-namespace/http"));
    let upstream = &backends.upstreams[2];
    // The upstream answers 503 to the first N requests for a key, then 200.
    for (path, status, attempts) in [
        ("/retry/code-all-attempts-2/fail/2/a", 200, 3),
        ("/retry/code-all-attempts-2/fail/3/b", 503, 3),
        ("/retry/code-500-attempts-3/fail/1/c", 503, 1),
    ] {
        let before = upstream.hits();
        assert_eq!(
            client.get("example.com", path).await.status,
            status,
            "{path}"
        );
        assert_eq!(upstream.hits() - before, attempts, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cors_filter_answers_preflights_from_its_origins() {
    let Some((_backends, gateway)) = serve(&["httproute-cors"]).await else {
        return;
    };
    let client = Client::http1(gateway.addr("gateway-conformance-infra/same-namespace/http"));
    let preflight = async |origin: &str| {
        let request = client
            .request("OPTIONS", "example.com", "/cors-1")
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .body(empty())
            .unwrap();
        client.send(request).await
    };
    for origin in ["https://www.foo.com", "https://api.bar.com"] {
        let reply = preflight(origin).await;
        assert_eq!(reply.status, 200, "{origin}");
        let header = |name: &str| {
            reply
                .headers
                .get(name)
                .map(|v| v.to_str().unwrap().to_string())
        };
        assert_eq!(
            header("access-control-allow-origin").as_deref(),
            Some(origin)
        );
        assert_eq!(header("access-control-max-age").as_deref(), Some("3600"));
        assert_eq!(
            header("access-control-allow-credentials").as_deref(),
            Some("true")
        );
    }
    let stranger = preflight("https://www.example.org").await;
    assert!(
        stranger
            .headers
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn conditions_say_which_routes_are_accepted_and_resolved() {
    let backends = Backends::start().await;
    let route = |name: &str, namespace: &str, parent: &str, extra: &str, backend: &str| {
        format!(
            "---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: {name}
  namespace: {namespace}
spec:
  parentRefs: [{parent}]
{extra}  rules:
  - backendRefs: [{{name: {backend}, namespace: gateway-conformance-infra, port: 8080}}]
"
        )
    };
    let parent = "{name: same-namespace, namespace: gateway-conformance-infra}";
    let config = format!(
        "{GATEWAY}    hostname: example.com
  - name: tcp
    port: 0
    protocol: TCP
{}{}{}{}{}{}",
        backends.yaml(),
        route(
            "good",
            "gateway-conformance-infra",
            parent,
            "",
            "infra-backend-v1"
        ),
        route("lost", "gateway-conformance-infra", parent, "", "nothing"),
        route(
            "orphan",
            "gateway-conformance-infra",
            "{name: elsewhere}",
            "",
            "infra-backend-v1"
        ),
        route("stranger", "other", parent, "", "infra-backend-v1"),
        route(
            "astray",
            "gateway-conformance-infra",
            parent,
            "  hostnames: [example.net]\n",
            "infra-backend-v1"
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gateway.yaml"), &config).unwrap();
    let output = support::validate(dir.path(), "gateway.yaml");
    let stdout = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "Gateway gateway-conformance-infra/same-namespace: Accepted=True (Accepted), Programmed=True (Programmed)",
        "Gateway gateway-conformance-infra/same-namespace listener http: Accepted=True (Accepted), Programmed=True (Programmed), attachedRoutes=2",
        "Gateway gateway-conformance-infra/same-namespace listener tcp: Accepted=False (UnsupportedProtocol), Programmed=False (Invalid), attachedRoutes=0",
        "HTTPRoute gateway-conformance-infra/good on gateway-conformance-infra/same-namespace: Accepted=True (Accepted), ResolvedRefs=True (ResolvedRefs)",
        "HTTPRoute gateway-conformance-infra/lost on gateway-conformance-infra/same-namespace: Accepted=True (Accepted), ResolvedRefs=False (BackendNotFound)",
        "HTTPRoute gateway-conformance-infra/orphan on gateway-conformance-infra/elsewhere: Accepted=False (NoMatchingParent)",
        "HTTPRoute other/stranger on gateway-conformance-infra/same-namespace: Accepted=False (NotAllowedByListeners)",
        "HTTPRoute gateway-conformance-infra/astray on gateway-conformance-infra/same-namespace: Accepted=False (NoMatchingListenerHostname)",
    ] {
        assert!(
            stdout.contains(expected),
            "{expected}\nnot in:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // The same conditions are in /config_dump.
    let gateway = Gateway::start_with(&config, |command| {
        command.args(["--admin", "127.0.0.1:0"]);
    });
    let admin = Client::http1(gateway.admin.expect("the admin API is on"));
    let dump = admin.get("admin", "/config_dump").await.json();
    let routes = dump["config"]["gateway_api"]["routes"]
        .as_array()
        .unwrap()
        .clone();
    let lost = routes
        .iter()
        .find(|r| r["route"] == "gateway-conformance-infra/lost")
        .unwrap();
    assert_eq!(lost["conditions"][1]["reason"], "BackendNotFound", "{lost}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backend_in_another_namespace_needs_a_reference_grant() {
    let Some(suite) = suite() else {
        return;
    };
    let web = Upstream::start("web-backend").await;
    let service = service_entry(
        "web-backend",
        "gateway-conformance-web-backend",
        (8080, "HTTP"),
        web.addr.port(),
    );
    let manifest =
        std::fs::read_to_string(suite.join("tests/httproute-reference-grant.yaml")).unwrap();
    let (grant, route) = manifest.split_once("\n---\n").unwrap();
    assert!(grant.contains("kind: ReferenceGrant"), "{grant}");
    let granted = format!("{GATEWAY}{service}---\n{grant}\n---\n{route}");
    let gateway = Gateway::start(&granted);
    let client = Client::http1(gateway.addr("gateway-conformance-infra/same-namespace/http"));
    assert_eq!(
        served(&client, "/", &[]).await.as_deref(),
        Some("web-backend")
    );

    let refused = format!("{GATEWAY}{service}---\n{route}");
    let gateway = Gateway::start(&refused);
    let client = Client::http1(gateway.addr("gateway-conformance-infra/same-namespace/http"));
    assert_eq!(client.get("example.com", "/").await.status, 500);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gateway.yaml"), &refused).unwrap();
    let output = support::validate(dir.path(), "gateway.yaml");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("ResolvedRefs=False (RefNotPermitted)"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_parent_port_attaches_a_route_to_the_listeners_on_that_port() {
    let backends = Backends::start().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let route = |name: &str, parent: &str, path: &str, v: u8| {
        format!(
            "---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: {name}
  namespace: gateway-conformance-infra
spec:
  parentRefs: [{parent}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: {path}}}}}]
    backendRefs: [{{name: infra-backend-v{v}, port: 8080}}]
"
        )
    };
    let config = format!(
        "{GATEWAY}  - name: fixed
    port: {port}
    protocol: HTTP
{}{}{}{}",
        backends.yaml(),
        route(
            "on-port",
            &format!("{{name: same-namespace, port: {port}}}"),
            "/port",
            1
        ),
        route("anywhere", "{name: same-namespace}", "/all", 2),
        route("no-port", "{name: same-namespace, port: 1}", "/none", 3),
    );
    let gateway = Gateway::start(&config);
    assert!(gateway.stderr_lines("has no such listener on port 1") > 0);
    let fixed = Client::http1(gateway.addr("gateway-conformance-infra/same-namespace/fixed"));
    let http = Client::http1(gateway.addr("gateway-conformance-infra/same-namespace/http"));
    assert_eq!(served(&fixed, "/port", &[]).await, backend(1));
    assert_eq!(served(&http, "/port", &[]).await, None);
    assert_eq!(served(&http, "/all", &[]).await, backend(2));
    assert_eq!(served(&fixed, "/all", &[]).await, backend(2));
    assert_eq!(served(&fixed, "/none", &[]).await, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listener_selector_takes_routes_from_the_namespaces_it_picks() {
    let Some(suite) = suite() else {
        return;
    };
    let web = Upstream::start("web-backend").await;
    let config = format!(
        "apiVersion: v1
kind: Namespace
metadata:
  name: gateway-conformance-web-backend
  labels: {{gateway-conformance: backend}}
---
apiVersion: v1
kind: Namespace
metadata:
  name: elsewhere
  labels: {{gateway-conformance: other}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: backend-namespaces
  namespace: gateway-conformance-infra
spec:
  gatewayClassName: portcullis
  addresses: [{{type: IPAddress, value: 127.0.0.1}}]
  listeners:
  - name: http
    port: 0
    protocol: HTTP
    allowedRoutes:
      namespaces:
        from: Selector
        selector:
          matchLabels: {{gateway-conformance: backend}}
{service}---
{route}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: outsider
  namespace: elsewhere
spec:
  parentRefs: [{{name: backend-namespaces, namespace: gateway-conformance-infra}}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /outsider}}}}]
    backendRefs: [{{name: web-backend, namespace: gateway-conformance-web-backend, port: 8080}}]
",
        service = service_entry(
            "web-backend",
            "gateway-conformance-web-backend",
            (8080, "HTTP"),
            web.addr.port(),
        ),
        route =
            std::fs::read_to_string(suite.join("tests/httproute-cross-namespace.yaml")).unwrap(),
    );
    let gateway = Gateway::start(&config);
    let client = Client::http1(gateway.addr("gateway-conformance-infra/backend-namespaces/http"));
    assert_eq!(
        served(&client, "/", &[]).await.as_deref(),
        Some("web-backend")
    );
    // The outsider's namespace is not picked: its route is not attached ("/outsider"
    // falls to the cross-namespace route's catch-all).
    assert_eq!(
        served(&client, "/outsider", &[]).await.as_deref(),
        Some("web-backend")
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gateway.yaml"), &config).unwrap();
    let output = support::validate(dir.path(), "gateway.yaml");
    let stdout = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "HTTPRoute gateway-conformance-web-backend/cross-namespace on gateway-conformance-infra/backend-namespaces: Accepted=True",
        "HTTPRoute elsewhere/outsider on gateway-conformance-infra/backend-namespaces: Accepted=False (NotAllowedByListeners)",
    ] {
        assert!(stdout.contains(expected), "{expected}\nnot in:\n{stdout}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_grpc_route_matches_services_and_methods() {
    let (one, two) = (
        Upstream::start("grpc-one").await,
        Upstream::start("grpc-two").await,
    );
    let service = |name: &str, port: u16| {
        service_entry(name, "gateway-conformance-infra", (8080, "GRPC"), port)
    };
    let config = format!(
        "{GATEWAY}{}{}---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata:
  name: echo
  namespace: gateway-conformance-infra
spec:
  parentRefs: [{{name: same-namespace}}]
  rules:
  - matches: [{{method: {{service: pkg.Echo, method: Two}}}}]
    backendRefs: [{{name: grpc-two, port: 8080}}]
  - matches: [{{method: {{service: pkg.Echo}}}}]
    backendRefs: [{{name: grpc-one, port: 8080}}]
",
        service("grpc-one", one.addr.port()),
        service("grpc-two", two.addr.port()),
    );
    let gateway = Gateway::start(&config);
    let client = Client::http2(gateway.addr("gateway-conformance-infra/same-namespace/http"));
    let call = async |path: &str| {
        let request = client
            .request("POST", "example.com", path)
            .header("content-type", "application/grpc")
            .body(empty())
            .unwrap();
        let reply = client.send(request).await;
        match reply.status.as_u16() {
            200 => Some(reply.json()["name"].as_str().unwrap().to_string()),
            _ => None,
        }
    };
    assert_eq!(call("/pkg.Echo/Two").await.as_deref(), Some("grpc-two"));
    assert_eq!(call("/pkg.Echo/One").await.as_deref(), Some("grpc-one"));
    assert_eq!(call("/pkg.Other/One").await, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backend_tls_policy_originates_tls_and_checks_the_name() {
    let dir = tempfile::tempdir().unwrap();
    let ca = support::certs::TestCa::new(dir.path());
    ca.issue("upstream", &["abc.example.com"]);
    std::fs::create_dir(dir.path().join("backend-ca")).unwrap();
    std::fs::copy(
        dir.path().join("ca.pem"),
        dir.path().join("backend-ca/ca.crt"),
    )
    .unwrap();
    let upstream = Upstream::start_tls(
        "secure",
        support::upstream::UpstreamTls {
            certificate: &dir.path().join("upstream.pem"),
            key: &dir.path().join("upstream.key"),
            client_ca: None,
            client_required: false,
        },
    )
    .await;
    let port = upstream.addr.port();
    let backend = |name: &str, hostname: &str| {
        let service = service_entry(name, "gateway-conformance-infra", (443, "HTTP"), port);
        format!(
            "{service}---
apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata:
  name: {name}
  namespace: gateway-conformance-infra
spec:
  targetRefs: [{{group: \"\", kind: Service, name: {name}}}]
  validation:
    caCertificateRefs: [{{group: \"\", kind: ConfigMap, name: backend-ca}}]
    hostname: {hostname}
"
        )
    };
    let config = format!(
        "{GATEWAY}{}{}---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: secure
  namespace: gateway-conformance-infra
spec:
  parentRefs: [{{name: same-namespace}}]
  rules:
  - matches: [{{path: {{type: Exact, value: /secure}}}}]
    backendRefs: [{{name: secure, port: 443}}]
  - matches: [{{path: {{type: Exact, value: /mismatch}}}}]
    backendRefs: [{{name: mismatch, port: 443}}]
",
        backend("secure", "abc.example.com"),
        backend("mismatch", "other.example.com"),
    );
    std::fs::write(dir.path().join("gateway.yaml"), config).unwrap();
    let gateway = Gateway::launch(dir, "gateway.yaml", |_| {});
    let client = Client::http1(gateway.addr("gateway-conformance-infra/same-namespace/http"));
    let reply = client.get("example.com", "/secure").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json()["tls"]["sni"], "abc.example.com");
    assert_eq!(client.get("example.com", "/mismatch").await.status, 503);
}
