//! The Kubernetes Gateway API beyond the conformance suite (`conformance`): what is warned
//! about, the conditions `validate` and `/config_dump` print, sectionName and port
//! attachment, namespace selectors and BackendTLSPolicy, on a Gateway like the suite's
//! `same-namespace` one (on a free loopback port), with ServiceEntries standing in for its
//! `infra-backend-v*` Services.

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

/// Which backend served `path` with `headers` (none: 404).
async fn served(client: &Client, path: &str, headers: &[(&str, &str)]) -> Option<String> {
    let mut request = client.request("GET", "example.com", path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let reply = client.send(request.body(empty()).unwrap()).await;
    match reply.status.as_u16() {
        404 => None,
        200 => Some(reply.json()["name"].as_str().unwrap().to_string()),
        other => panic!("GET {path}: status {other}"),
    }
}

fn backend(v: u8) -> Option<String> {
    Some(format!("infra-backend-v{v}"))
}

/// What is not served yet is said, at its field, and the rest loads.
#[test]
fn what_is_not_served_yet_is_warned_about_at_its_field() {
    let config = format!(
        "{GATEWAY}  - name: udp
    port: 0
    protocol: UDP
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
        "spec.listeners[1].protocol: protocol \"UDP\" is not served yet",
        "Deployment/infra-backend-v1: kind: a standalone gateway does not read Kubernetes Deployments",
        "Secret/certificate: kind: a standalone gateway does not read Kubernetes Secrets",
        "GatewayClass/portcullis: spec.controllerName: not checked",
        "spec.rules[0].sessionPersistence: not served yet",
        "spec.rules[0].filters[0].extensionRef: only a WasmPlugin (group extensions.istio.io) is served",
    ] {
        assert!(stderr.contains(expected), "{expected} not in {stderr}");
    }
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
  - name: udp
    port: 0
    protocol: UDP
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
        "Gateway gateway-conformance-infra/same-namespace listener http: Accepted=True (Accepted), ResolvedRefs=True (ResolvedRefs), Programmed=True (Programmed), attachedRoutes=2",
        "Gateway gateway-conformance-infra/same-namespace listener udp: Accepted=False (UnsupportedProtocol), ResolvedRefs=True (ResolvedRefs), Programmed=False (Invalid), attachedRoutes=0",
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
    // An Istio DestinationRule for the same host: its TLS gives way to the policy's,
    // the rest of it applies.
    let rule = "---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: plain
  namespace: gateway-conformance-infra
spec:
  host: secure.gateway-conformance-infra.svc.cluster.local
  trafficPolicy:
    loadBalancer: {simple: RANDOM}
    tls: {mode: DISABLE}
";
    let config = format!(
        "{GATEWAY}{rule}{}{}---
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
    let stderr = String::from_utf8(support::validate(dir.path(), "gateway.yaml").stderr).unwrap();
    let overridden = "DestinationRule/plain: spec.trafficPolicy.tls: DestinationRule/secure~secure.gateway-conformance-infra.svc.cluster.local sets the TLS of host";
    assert!(stderr.contains(overridden), "{stderr}");
    let gateway = Gateway::launch(dir, "gateway.yaml", |_| {});
    let client = Client::http1(gateway.addr("gateway-conformance-infra/same-namespace/http"));
    let reply = client.get("example.com", "/secure").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json()["tls"]["sni"], "abc.example.com");
    assert_eq!(client.get("example.com", "/mismatch").await.status, 503);
}

/// The api-key example plugin, keyed `k1`, as a WasmPlugin `name` with `targets` (the
/// `targetRefs` YAML list, or empty).
fn api_key_plugin(name: &str, targets: &str) -> String {
    let plugin = support::plugin("rust_api_key.wasm");
    format!(
        "---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: {name}
  namespace: gateway-conformance-infra
spec:
  url: file://{}
  phase: AUTHN
{targets}  pluginConfig:
    keys: {{k1: alice}}
",
        plugin.display()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn wasm_plugins_run_on_the_rules_that_name_or_target_them() {
    let backends = Backends::start().await;
    let config = format!(
        "{GATEWAY}{}---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: shop
  namespace: gateway-conformance-infra
spec:
  parentRefs: [{{name: same-namespace}}]
  rules:
  - name: named
    matches: [{{path: {{type: PathPrefix, value: /named}}}}]
    filters:
    - type: ExtensionRef
      extensionRef: {{group: extensions.istio.io, kind: WasmPlugin, name: by-filter}}
    backendRefs: [{{name: infra-backend-v1, port: 8080}}]
  - name: targeted
    matches: [{{path: {{type: PathPrefix, value: /targeted}}}}]
    backendRefs: [{{name: infra-backend-v1, port: 8080}}]
  - matches: [{{path: {{type: PathPrefix, value: /open}}}}]
    backendRefs: [{{name: infra-backend-v1, port: 8080}}]
  - name: ghost
    matches: [{{path: {{type: PathPrefix, value: /ghost}}}}]
    filters:
    - type: ExtensionRef
      extensionRef: {{group: extensions.istio.io, kind: WasmPlugin, name: nowhere}}
    backendRefs: [{{name: infra-backend-v1, port: 8080}}]
{}{}",
        backends.yaml(),
        api_key_plugin("by-filter", ""),
        api_key_plugin(
            "by-target",
            "  targetRefs:\n  - {group: gateway.networking.k8s.io, kind: HTTPRoute, name: shop, sectionName: targeted}\n",
        ),
    );
    let log = tempfile::NamedTempFile::new().unwrap();
    let gateway = Gateway::start_with(&config, |command| {
        command.arg("--access-log").arg(log.path());
    });
    let client = Client::http1(gateway.addr("gateway-conformance-infra/same-namespace/http"));
    for (path, status) in [("/named", 401), ("/targeted", 401), ("/open", 200)] {
        assert_eq!(
            client.get("example.com", path).await.status,
            status,
            "{path}"
        );
    }
    let keyed = client
        .request("GET", "example.com", "/named")
        .header("x-api-key", "k1");
    let reply = client.send(keyed.body(empty()).unwrap()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["headers"]["x-api-key-owner"], "alice");
    // The access log names the HTTPRoute and the rule (`<route>.<rule>.<match>.<backend>`).
    crate::assert_eventually!(
        support::access_log(log.path()).len() == 4,
        "not four access log lines"
    );
    // Workers write their lines in batches of their own: compare them in any order.
    let mut routes: Vec<String> = support::access_log(log.path())
        .iter()
        .map(|line| line["route_name"].as_str().unwrap_or_default().to_string())
        .collect();
    routes.sort();
    assert_eq!(
        routes,
        [
            "shop.2.0.0",
            "shop.named.0.0",
            "shop.named.0.0",
            "shop.targeted.0.0"
        ]
    );
    // An ExtensionRef to a WasmPlugin that is not defined is not skipped: 500.
    assert_eq!(client.get("example.com", "/ghost").await.status, 500);
    let warned = "no WasmPlugin gateway-conformance-infra/nowhere is defined";
    assert!(gateway.stderr_lines(warned) > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_file_serves_istio_and_gateway_api_routes_side_by_side() {
    let backends = Backends::start().await;
    // Its own port name: servers on port 0 share a listener by port name.
    let server = "  - port: {number: 0, name: legacy, protocol: HTTP}\n    bind: 127.0.0.1\n    hosts: [\"*\"]\n";
    let istio = [
        support::config::gateway(server),
        support::config::virtual_service(
            "legacy",
            "*",
            &support::config::route_to(
                "infra-backend-v2.gateway-conformance-infra.svc.cluster.local",
            ),
        ),
    ]
    .join("---\n");
    let config = format!(
        "{GATEWAY}{}---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: modern
  namespace: gateway-conformance-infra
spec:
  parentRefs: [{{name: same-namespace}}]
  rules:
  - backendRefs: [{{name: infra-backend-v1, port: 8080}}]
---
{istio}",
        backends.yaml(),
    );
    let gateway = Gateway::start(&config);
    let modern = Client::http1(gateway.addr("gateway-conformance-infra/same-namespace/http"));
    let legacy = Client::http1(gateway.addr("default/gw/legacy"));
    assert_eq!(served(&modern, "/", &[]).await, backend(1));
    assert_eq!(served(&legacy, "/", &[]).await, backend(2));
}

/// A backend that cannot be found keeps its share of the requests, answered with 500;
/// the valid ones share the rest by their weights.
#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_backend_answers_its_share_with_500() {
    let backends = Backends::start().await;
    let config = format!(
        "{GATEWAY}{}---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: half-missing
  namespace: gateway-conformance-infra
spec:
  parentRefs: [{{name: same-namespace}}]
  rules:
  - backendRefs:
    - {{name: infra-backend-v1, port: 8080, weight: 1}}
    - {{name: no-such-service, port: 8080, weight: 1}}
    - {{name: infra-backend-v2, port: 8080, weight: 2, kind: Thing, group: example.com}}
",
        backends.yaml()
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gateway.yaml"), config).unwrap();
    let stderr = String::from_utf8(support::validate(dir.path(), "gateway.yaml").stderr).unwrap();
    for field in ["backendRefs[1].name", "backendRefs[2].kind"] {
        let said = format!("{field}: ");
        assert!(stderr.contains(&said), "{said} not in {stderr}");
    }
    assert!(stderr.contains("its share of the requests is answered with 500"));
    let gateway = Gateway::launch(dir, "gateway.yaml", |_| {});
    let client = Client::http1(gateway.addr("gateway-conformance-infra/same-namespace/http"));
    let (mut failed, mut served) = (0, 0);
    for _ in 0..200 {
        match client.get("example.com", "/").await.status.as_u16() {
            500 => failed += 1,
            200 => served += 1,
            other => panic!("status {other}"),
        }
    }
    // 3 of 4 parts of the weight are invalid: 150 expected, binomial sd ~6.
    assert!(
        (120..=180).contains(&failed),
        "{failed} of 200 answered 500"
    );
    assert_eq!(failed + served, 200);
}

/// Routes of different namespaces on one host are ordered by the API's precedence
/// across them, not by which came first: the longer prefix wins wherever it is written.
#[tokio::test(flavor = "multi_thread")]
async fn precedence_holds_across_the_routes_of_several_namespaces() {
    let backends = Backends::start().await;
    let gateway_all = GATEWAY.replace("from: Same", "from: All");
    let route = |namespace: &str, prefix: &str, v: u8| {
        format!(
            "---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: r{v}
  namespace: {namespace}
spec:
  parentRefs: [{{name: same-namespace, namespace: gateway-conformance-infra}}]
  hostnames: [example.com]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: {prefix}}}}}]
    backendRefs: [{{name: infra-backend-v{v}, namespace: gateway-conformance-infra, port: 8080}}]
"
        )
    };
    let grant = "---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata:
  name: routes
  namespace: gateway-conformance-infra
spec:
  from:
  - {group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: apps-a}
  - {group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: apps-b}
  to: [{group: \"\", kind: Service}]
";
    let config = format!(
        "{gateway_all}{}{grant}{}{}",
        backends.yaml(),
        route("apps-a", "/foo", 1),
        route("apps-b", "/foo/bar", 2),
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gateway.yaml"), config).unwrap();
    let gateway = Gateway::launch(dir, "gateway.yaml", |_| {});
    let client = Client::http1(gateway.addr("gateway-conformance-infra/same-namespace/http"));
    assert_eq!(served(&client, "/foo/bar/x", &[]).await, backend(2));
    assert_eq!(served(&client, "/foo/x", &[]).await, backend(1));
}

/// A TLS listener passes connections through by SNI to a TLSRoute's backend (the client
/// verifies the backend's own certificate), a TCP listener forwards by a TCPRoute's
/// weights, and an HTTPRoute naming the TLS listener is not attached there.
#[tokio::test(flavor = "multi_thread")]
async fn tls_and_tcp_listeners_serve_tlsroutes_and_tcproutes() {
    let certs = tempfile::tempdir().unwrap();
    let ca = support::certs::TestCa::new(certs.path());
    ca.issue("abc", &["abc.example.com"]);
    let tls = crate::streams::tls_upstream(certs.path(), "abc").await;
    let (one, two) = (
        crate::streams::echo("one").await,
        crate::streams::echo("two").await,
    );
    let gateway = GATEWAY.replace(
        "  listeners:\n",
        "  listeners:
  - name: tls
    port: 0
    protocol: TLS
    hostname: \"*.example.com\"
    tls: {mode: Passthrough}
  - name: tcp
    port: 0
    protocol: TCP
    allowedRoutes: {kinds: [{kind: TCPRoute}]}
",
    );
    let config = format!(
        "{gateway}{}{}{}---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TLSRoute
metadata:
  name: passed
  namespace: gateway-conformance-infra
spec:
  parentRefs: [{{name: same-namespace}}]
  hostnames: [abc.example.com]
  rules: [{{backendRefs: [{{name: tls-backend, port: 443}}]}}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata:
  name: split
  namespace: gateway-conformance-infra
spec:
  parentRefs: [{{name: same-namespace, sectionName: tcp}}]
  rules:
  - name: weighted
    backendRefs:
    - {{name: tcp-one, port: 9000, weight: 3}}
    - {{name: tcp-two, port: 9000, weight: 1}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: wrong-kind
  namespace: gateway-conformance-infra
spec:
  parentRefs: [{{name: same-namespace, sectionName: tls}}]
  rules: [{{backendRefs: [{{name: tcp-one, port: 9000}}]}}]
",
        service_entry(
            "tls-backend",
            "gateway-conformance-infra",
            (443, "TLS"),
            tls.addr.port()
        ),
        service_entry(
            "tcp-one",
            "gateway-conformance-infra",
            (9000, "TCP"),
            one.port()
        ),
        service_entry(
            "tcp-two",
            "gateway-conformance-infra",
            (9000, "TCP"),
            two.port()
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gateway.yaml"), &config).unwrap();
    let output = support::validate(dir.path(), "gateway.yaml");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("TCPRoute/split: spec.rules[0].name: not used yet"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "TLSRoute gateway-conformance-infra/passed on gateway-conformance-infra/same-namespace: Accepted=True (Accepted), ResolvedRefs=True (ResolvedRefs)",
        "TCPRoute gateway-conformance-infra/split on gateway-conformance-infra/same-namespace/tcp: Accepted=True (Accepted), ResolvedRefs=True (ResolvedRefs)",
        "HTTPRoute gateway-conformance-infra/wrong-kind on gateway-conformance-infra/same-namespace/tls: Accepted=False (NotAllowedByListeners)",
    ] {
        assert!(stdout.contains(expected), "{expected}\nnot in:\n{stdout}");
    }
    let gateway = Gateway::launch(dir, "gateway.yaml", |_| {});
    let tls_addr = gateway.addr("gateway-conformance-infra/same-namespace/tls");
    let served = crate::streams::served_over_tls(certs.path(), tls_addr, "abc.example.com").await;
    assert_eq!(served.as_deref(), Ok("abc"));
    let tcp_addr = gateway.addr("gateway-conformance-infra/same-namespace/tcp");
    let mut ones = 0;
    for i in 0..80 {
        let reply = crate::streams::exchange(tcp_addr, format!("{i}").as_bytes()).await;
        ones += usize::from(reply.starts_with("one:"));
    }
    // 60 expected; binomial sd ~3.9.
    assert!(
        (45..=75).contains(&ones),
        "{ones} of 80 to the weight-3 backend"
    );
}
