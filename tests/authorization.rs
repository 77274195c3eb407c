//! Istio's AuthorizationPolicy at the gateway: the built-in authorization filter decides
//! (DENY first, then ALLOW, AUDIT deciding nothing), the gateway refuses with Envoy's 403.

use crate::support;
use support::client::{Client, empty};
use support::config::{gateway, route_to, service, virtual_service};
use support::gateway::Gateway;
use support::upstream::Upstream;

/// Two Gateways (`edge` and `other`, each one server) routing everything to `backend`,
/// with `policies` (YAML documents) beside them.
fn config(backend: &Upstream, policies: &str) -> String {
    let server = |name: &str| {
        format!(
            "  - port: {{number: 0, name: {name}, protocol: HTTP}}\n    bind: 127.0.0.1\n    hosts: [\"*\"]\n"
        )
    };
    let other = gateway(&server("other")).replace("name: gw", "name: other");
    let routes = virtual_service("shop", "*", &route_to("backend"))
        .replace("gateways: [gw]", "gateways: [gw, other]");
    [
        gateway(&server("http")),
        other,
        service("backend", &[backend.addr.port()]),
        routes,
        policies.to_string(),
    ]
    .join("---\n")
}

const POLICIES: &str = "apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: no-admin
spec:
  targetRefs: [{kind: Gateway, group: networking.istio.io, name: gw}]
  action: DENY
  rules:
  - to: [{operation: {paths: [/admin*]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: api-readers
spec:
  targetRefs: [{kind: Gateway, group: networking.istio.io, name: gw}]
  rules:
  - from: [{source: {ipBlocks: [127.0.0.0/8]}}]
    to: [{operation: {methods: [GET], paths: [/api/*, /admin*]}}]
    when: [{key: 'request.headers[x-tier]', values: [gold, silver]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: everything-audited
spec:
  targetRefs: [{kind: Gateway, group: networking.istio.io, name: gw}]
  action: AUDIT
  rules: [{}]
";

#[tokio::test(flavor = "multi_thread")]
async fn deny_then_allow_decide_and_other_gateways_are_untouched() {
    let backend = Upstream::start("backend").await;
    let gateway = Gateway::start(&config(&backend, POLICIES));
    let client = Client::http1(gateway.addr("default/gw/http"));
    let ask = async |method: &str, path: &str, tier: Option<&str>| {
        let mut request = client.request(method, "shop", path);
        if let Some(tier) = tier {
            request = request.header("x-tier", tier);
        }
        client.send(request.body(empty()).unwrap()).await
    };
    for (method, path, tier, status) in [
        ("GET", "/api/items", Some("gold"), 200),
        ("GET", "/api/items", Some("silver"), 200),
        // ALLOW: every rule's parts must match.
        ("GET", "/api/items", Some("bronze"), 403),
        ("GET", "/api/items", None, 403),
        ("POST", "/api/items", Some("gold"), 403),
        ("GET", "/other", Some("gold"), 403),
        // DENY comes first, even where an ALLOW policy would allow.
        ("GET", "/admin/users", Some("gold"), 403),
        // Paths are matched after normalization: no way around the DENY.
        ("GET", "/api/../admin/users", Some("gold"), 403),
    ] {
        let reply = ask(method, path, tier).await;
        assert_eq!(reply.status, status, "{method} {path} {tier:?}");
        if status == 403 {
            assert_eq!(reply.text(), "RBAC: access denied");
        }
    }
    assert_eq!(
        backend.hits(),
        2,
        "refused requests never reach the backend"
    );
    // The policies target `gw` only.
    let other = Client::http1(gateway.addr("default/other/other"));
    assert_eq!(other.get("shop", "/admin/users").await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn namespace_policies_apply_to_its_gateways_and_an_unknown_provider_fails_closed() {
    let backend = Upstream::start("backend").await;
    let policies = "apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: deny-all
  namespace: istio-system
spec: {}
";
    let gateway = Gateway::start(&config(&backend, policies));
    for server in ["default/gw/http", "default/other/other"] {
        let client = Client::http1(gateway.addr(server));
        assert_eq!(client.get("shop", "/").await.status, 403, "{server}");
    }
    let custom = "apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: ext-authz
spec:
  action: CUSTOM
  provider: {name: my-ext-authz}
  rules:
  - to: [{operation: {paths: [/private/*]}}]
";
    let gateway = Gateway::start(&config(&backend, custom));
    // No mesh config serves the provider: what the policy selects is denied.
    assert!(
        gateway.stderr_lines(
            "spec.provider.name: no envoyExtAuthzHttp extension provider \"my-ext-authz\""
        ) > 0
    );
    let client = Client::http1(gateway.addr("default/gw/http"));
    assert_eq!(client.get("shop", "/private/x").await.status, 403);
    assert_eq!(client.get("shop", "/public").await.status, 200);
}

#[test]
fn what_cannot_be_enforced_is_a_located_error() {
    let backend_port = 9;
    let policies = "apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: broken
spec:
  rules:
  - from: [{source: {ipBlocks: [10.0.0.0/33]}}, {source: {}}]
    to: [{operation: {ports: [http]}}]
    when: [{key: destination.ip, values: [10.0.0.1]}, {key: source.ip, values: [somewhere]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: stray
spec:
  targetRefs: [{kind: Gateway, name: gw, namespace: elsewhere}]
  rules: [{}]
";
    let text = [
        gateway("  - port: {number: 0, name: http, protocol: HTTP}\n    hosts: [\"*\"]\n"),
        service("backend", &[backend_port]),
        virtual_service("shop", "*", &route_to("backend")),
        policies.to_string(),
    ]
    .join("---\n");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gateway.yaml"), text).unwrap();
    let output = support::validate(dir.path(), "gateway.yaml");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    for expected in [
        "spec.rules[0].from[0].source.ipBlocks[0]: \"10.0.0.0/33\" is not an IP address or CIDR block",
        "spec.rules[0].to[0].operation.ports[0]: \"http\" is not a port number",
        "spec.rules[0].when[0].key: key \"destination.ip\" is not served",
        "spec.rules[0].from[1].source: a source must set at least one field",
        "spec.rules[0].when[1]: \"somewhere\" is not an IP address or CIDR block",
        "AuthorizationPolicy/stray: spec.targetRefs[0].namespace: a policy targets Gateways of its own namespace only",
    ] {
        assert!(stderr.contains(expected), "{expected} not in {stderr}");
    }
}

/// The mesh config with three HTTP authorization providers: `checker` (a real server),
/// and two whose service refuses connections, one answering 503 then, one failing open.
const MESH: &str = "apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |
    extensionProviders:
    - name: checker
      envoyExtAuthzHttp:
        service: authz.local
        port: 80
        pathPrefix: /check
        includeRequestHeadersInCheck: [x-echo-set-header]
        includeAdditionalHeadersInCheck: {x-checked-by: portcullis}
        headersToUpstreamOnAllow: [x-authz-user]
        headersToDownstreamOnAllow: [x-authz-note]
    - name: broken
      envoyExtAuthzHttp: {service: gone.local, port: 80, timeout: 2s, statusOnError: '503'}
    - name: lenient
      envoyExtAuthzHttp: {service: gone.local, port: 80, timeout: 2s, failOpen: true}
";

/// A CUSTOM policy `name` asking `provider` about the paths under `prefix`.
fn custom(name: &str, provider: &str, prefix: &str) -> String {
    format!(
        "apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: {name}
spec:
  action: CUSTOM
  provider: {{name: {provider}}}
  rules: [{{to: [{{operation: {{paths: ['{prefix}*']}}}}]}}]
"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn custom_policies_ask_an_http_authorization_service_first() {
    let backend = Upstream::start("backend").await;
    let authz = Upstream::start("authz").await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gone = closed.local_addr().unwrap().port();
    drop(closed);
    let no_admin = "apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: no-admin
spec:
  action: DENY
  rules: [{to: [{operation: {paths: [/private/admin*]}}]}]
";
    let policies = [
        MESH.to_string(),
        support::config::service("authz.local", &[authz.addr.port()]),
        support::config::service("gone.local", &[gone]),
        custom("private", "checker", "/private/"),
        // A second policy for the same provider: still one check.
        custom("private-too", "checker", "/private/orders"),
        custom("broken", "broken", "/broken/"),
        custom("lenient", "lenient", "/lenient/"),
        no_admin.to_string(),
    ]
    .join("---\n");
    let gateway = Gateway::start(&config(&backend, &policies));
    let client = Client::http1(gateway.addr("default/gw/http"));

    // Requests no CUSTOM policy selects are not checked.
    assert_eq!(client.get("shop", "/public").await.status, 200);
    assert!(authz.reports().is_empty());

    // The provider allows (200): its headers go upstream and to the client as listed.
    let request = client
        .request("GET", "shop", "/private/orders?page=2")
        .header("authorization", "Bearer abc")
        .header(
            "x-echo-set-header",
            "x-authz-user:alice,x-authz-note:checked",
        );
    let reply = client.send(request.body(empty()).unwrap()).await;
    assert_eq!(
        (reply.status.as_u16(), reply.upstream()),
        (200, "backend".into())
    );
    assert_eq!(reply.headers["x-authz-note"], "checked");
    assert_eq!(reply.json()["headers"]["x-authz-user"], "alice");
    assert_eq!(authz.reports().len(), 1, "one check per provider");
    let check = &authz.reports()[0];
    assert_eq!(check["method"], "GET");
    assert_eq!(check["path"], "/check/private/orders?page=2");
    assert_eq!(check["headers"]["host"], "shop");
    assert_eq!(check["headers"]["authorization"], "Bearer abc");
    assert_eq!(check["headers"]["x-checked-by"], "portcullis");

    // A check carries no body, so none of the request's length.
    let request = client.request("POST", "shop", "/private/form");
    let reply = client
        .send(request.body(support::client::bytes("a=1")).unwrap())
        .await;
    assert_eq!(reply.status, 200);
    let check = authz.reports().pop().unwrap();
    assert_eq!(check["method"], "POST");
    assert_ne!(check["headers"]["content-length"], "3");
    assert_eq!(check["body_bytes"], 0);

    // The provider denies: its answer is the client's.
    let reply = client.get("shop", "/private/status/403").await;
    assert_eq!(
        (reply.status.as_u16(), reply.upstream()),
        (403, "authz".into())
    );
    // CUSTOM allowed, then DENY decides.
    let reply = client.get("shop", "/private/admin").await;
    assert_eq!(
        (reply.status.as_u16(), reply.text()),
        (403, "RBAC: access denied".into())
    );
    // A provider that cannot be reached: statusOnError, or on through failOpen.
    assert_eq!(client.get("shop", "/broken/x").await.status, 503);
    let reply = client.get("shop", "/lenient/x").await;
    assert_eq!(
        (reply.status.as_u16(), reply.upstream()),
        (200, "backend".into())
    );
    assert_eq!(backend.hits(), 4, "denied requests never reach the backend");
}
