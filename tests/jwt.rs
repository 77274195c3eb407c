//! Istio's RequestAuthentication at the gateway: the built-in JWT filter verifies tokens
//! before routing (RSA and EC keys; inline, file and HTTPS key sets), answers Envoy's 401
//! for a bad token, lets a request without one through, and what it verified routes
//! requests (`@request.auth.claims.*`) and feeds AuthorizationPolicies.

use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use crate::support;
use support::certs::TestCa;
use support::client::{Client, empty};
use support::config::{gateway, named_gateway, service};
use support::eventually::eventually;
use support::gateway::Gateway;
use support::jwt::{JwksServer, Signer, claims, jwks, now};
use support::upstream::Upstream;

const ISSUER: &str = "https://issuer.test";

/// `backend` for everything, `admins` for tokens whose `group` claim is `admin` or whose
/// nested `realm.role` is `owner`, with `security` (YAML documents) beside them.
fn config(backend: &Upstream, admins: &Upstream, security: &str) -> String {
    let server = "  - port: {number: 0, name: http, protocol: HTTP}\n    bind: 127.0.0.1\n    hosts: [\"*\"]\n";
    let routes = "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: shop
spec:
  hosts: [\"*\"]
  gateways: [gw]
  http:
  - match:
    - headers: {\"@request.auth.claims.group\": {exact: admin}}
    - headers: {\"@request.auth.claims.realm.role\": {prefix: own}}
    route: [{destination: {host: admins}}]
  - route: [{destination: {host: backend}}]
";
    [
        gateway(server),
        service("backend", &[backend.addr.port()]),
        service("admins", &[admins.addr.port()]),
        routes.to_string(),
        security.to_string(),
    ]
    .join("---\n")
}

/// A RequestAuthentication `name` with `spec` (the YAML under `spec:`).
fn request_authentication(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata:
  name: {name}
spec:
{spec}"
    )
}

/// A RequestAuthentication for `ISSUER` with the key set `jwks` (inline), and an
/// AuthorizationPolicy that wants a verified token under /private.
fn inline_security(jwks: &str) -> String {
    let authentication = request_authentication(
        "users",
        &format!(
            "  jwtRules:
  - issuer: {ISSUER}
    audiences: [shop]
    jwks: '{jwks}'
    outputClaimToHeaders: [{{header: x-user, claim: sub}}, {{header: x-tier, claim: plan.tier}}]
    outputPayloadToHeader: x-jwt-payload
"
        ),
    );
    format!(
        "{authentication}---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: private-needs-a-token
spec:
  action: DENY
  rules:
  - from: [{{source: {{notRequestPrincipals: ['*']}}}}]
    to: [{{operation: {{paths: [/private/*]}}}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: only-alice-sees-hers
spec:
  action: DENY
  rules:
  - from: [{{source: {{notRequestPrincipals: ['{ISSUER}/alice']}}}}]
    to: [{{operation: {{paths: [/private/alice*]}}}}]
"
    )
}

/// The request header `name` the upstream reported, if it got it.
fn seen(report: &Value, name: &str) -> Option<String> {
    report["headers"][name].as_str().map(str::to_string)
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_are_verified_before_routing_and_their_claims_route_and_authorize() {
    let (rsa, ec) = (Signer::rsa("rsa-1"), Signer::ec("ec-1"));
    let others: Vec<Signer> = [
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ]
    .into_iter()
    .map(|alg| Signer::new(alg, &format!("{alg:?}")))
    .collect();
    let mut keys: Vec<&Signer> = vec![&rsa, &ec];
    keys.extend(&others);
    let backend = Upstream::start("backend").await;
    let admins = Upstream::start("admins").await;
    let security = inline_security(&jwks(&keys));
    let log = tempfile::NamedTempFile::new().unwrap();
    let gateway = Gateway::start_with(&config(&backend, &admins, &security), |command| {
        command.arg("--access-log").arg(log.path());
    });
    let client = Client::http1(gateway.addr("default/gw/http"));
    let ask = async |path: &str, token: Option<&str>| {
        let mut request = client.request("GET", "shop", path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        client.send(request.body(empty()).unwrap()).await
    };

    // No token: let through; authorization decides. What only a verified token may say
    // upstream is never the client's.
    let request = client
        .request("GET", "shop", "/")
        .header("x-user", "mallory")
        .header("x-jwt-payload", "e30");
    let reply = client.send(request.body(empty()).unwrap()).await;
    assert_eq!(
        (reply.status.as_u16(), reply.upstream()),
        (200, "backend".into())
    );
    assert_eq!(seen(&reply.json(), "x-user"), None);
    assert_eq!(seen(&reply.json(), "x-jwt-payload"), None);
    assert_eq!(ask("/private/x", None).await.status, 403);

    // A good RS256 token: its claims go upstream as headers, the token does not.
    let alice = rsa.token(&claims(ISSUER, "alice", &json!({"plan": {"tier": "gold"}})));
    let reply = ask("/private/alice/orders", Some(&alice)).await;
    assert_eq!(
        (reply.status.as_u16(), reply.upstream()),
        (200, "backend".into())
    );
    let report = reply.json();
    assert_eq!(seen(&report, "x-user").as_deref(), Some("alice"));
    assert_eq!(seen(&report, "x-tier").as_deref(), Some("gold"));
    assert_eq!(
        seen(&report, "authorization"),
        None,
        "forwardOriginalToken is false"
    );
    let payload = alice.split('.').nth(1).unwrap();
    assert_eq!(seen(&report, "x-jwt-payload").as_deref(), Some(payload));

    // A good ES256 token, in the default query parameter, routed on its claims.
    let bob = ec.token(&claims(ISSUER, "bob", &json!({"group": "admin"})));
    let reply = client.get("shop", &format!("/?access_token={bob}")).await;
    assert_eq!(
        (reply.status.as_u16(), reply.upstream()),
        (200, "admins".into())
    );
    let carol = ec.token(&claims(
        ISSUER,
        "carol",
        &json!({"realm": {"role": "owner"}}),
    ));
    assert_eq!(ask("/", Some(&carol)).await.upstream(), "admins");
    let dave = ec.token(&claims(
        ISSUER,
        "dave",
        &json!({"group": ["staff", "admin"]}),
    ));
    assert_eq!(
        ask("/", Some(&dave)).await.upstream(),
        "admins",
        "any of a list"
    );
    // One good token does not carry a bad one through.
    let forged = rsa.impostor().token(&claims(ISSUER, "alice", &json!({})));
    let request = client
        .request("GET", "shop", &format!("/?access_token={forged}"))
        .header("authorization", format!("Bearer {alice}"));
    let reply = client.send(request.body(empty()).unwrap()).await;
    assert_eq!(
        (reply.status.as_u16(), reply.text()),
        (401, "Jwt verification fails".into())
    );
    // Verified, but not alice.
    assert_eq!(ask("/private/alice/orders", Some(&bob)).await.status, 403);

    // The access log says why, as Envoy does.
    let expired = rsa.token(&claims(ISSUER, "x", &json!({"exp": now() - 120})));
    assert_eq!(ask("/expired", Some(&expired)).await.status, 401);
    let lines = eventually("the refusals' access log lines", async || {
        let lines = support::access_log(log.path());
        let found = |path: &str| lines.iter().find(|l| l["path"] == path).cloned();
        Some((found("/private/x")?, found("/expired")?))
    })
    .await;
    assert_eq!(
        lines.0["response_code_details"],
        "rbac_access_denied_matched_policy[ns[default]-policy[private-needs-a-token]-rule[0]]"
    );
    assert_eq!(
        lines.1["response_code_details"],
        "jwt_authn_access_denied{Jwt_is_expired}"
    );

    let hits = backend.hits() + admins.hits();
    let t = now();
    let none = r#"eyJhbGciOiJub25lIn0"#;
    let unsigned = format!("{none}.{payload}.");
    for (token, message) in [
        (
            rsa.token(&claims(ISSUER, "x", &json!({"exp": t - 120}))),
            "Jwt is expired",
        ),
        (
            rsa.token(&claims(ISSUER, "x", &json!({"nbf": t + 600}))),
            "Jwt not yet valid",
        ),
        (
            rsa.token(&claims("https://other.test", "x", &json!({}))),
            "Jwt issuer is not configured",
        ),
        (
            rsa.token(&claims(ISSUER, "x", &json!({"aud": "elsewhere"}))),
            "Audiences in Jwt are not allowed",
        ),
        (
            rsa.token(&claims(ISSUER, "x", &json!({"aud": null}))),
            "Audiences in Jwt are not allowed",
        ),
        (
            rsa.impostor().token(&claims(ISSUER, "x", &json!({}))),
            "Jwt verification fails",
        ),
        (
            Signer::ec("unknown").token(&claims(ISSUER, "x", &json!({}))),
            "Jwks doesn't have key to match kid or alg from Jwt",
        ),
        (unsigned, "Jwt header [alg] field value is invalid"),
        (
            "deadbeef".into(),
            "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections",
        ),
    ] {
        let reply = ask("/", Some(&token)).await;
        assert_eq!(reply.status, 401, "{message}");
        assert_eq!(reply.text(), message);
        let challenge = reply.headers["www-authenticate"].to_str().unwrap();
        assert_eq!(
            challenge,
            "Bearer realm=\"http://shop/\", error=\"invalid_token\""
        );
    }
    // Every algorithm Istio takes: RSA (PKCS#1 and PSS), EC and EdDSA.
    for signer in &others {
        let token = signer.token(&claims(ISSUER, "x", &json!({})));
        assert_eq!(ask("/", Some(&token)).await.status, 200, "{:?}", signer.alg);
    }
    // Within Envoy's 60 s of clock skew, an expired token still passes.
    let lenient = rsa.token(&claims(ISSUER, "x", &json!({"exp": t - 20})));
    assert_eq!(ask("/", Some(&lenient)).await.status, 200);
    assert_eq!(
        backend.hits() + admins.hits(),
        hits + 8,
        "refused tokens never reach an upstream"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn key_sets_come_from_https_and_files_and_follow_rotation() {
    let certs = tempfile::tempdir().unwrap();
    let ca = TestCa::new(certs.path());
    ca.issue("jwks", &["127.0.0.1"]);
    let (old, new) = (Signer::rsa("2025"), Signer::rsa("2026"));
    let server = JwksServer::start(
        jwks(&[&old]),
        &certs.path().join("jwks.pem"),
        &certs.path().join("jwks.key"),
    )
    .await;
    let (file_old, file_new) = (Signer::ec("f1"), Signer::ec("f2"));
    let jwks_file = certs.path().join("keys.json");
    std::fs::write(&jwks_file, jwks(&[&file_old])).unwrap();
    let security = request_authentication(
        "users",
        &format!(
            "  jwtRules:
  - issuer: {ISSUER}
    jwksUri: https://127.0.0.1:{port}/keys
  - issuer: https://files.test
    jwksUri: file://{file}
    fromHeaders: [{{name: x-token}}]
  # Neither jwks nor jwksUri: found through the issuer's OpenID configuration.
  - issuer: https://127.0.0.1:{port}
",
            port = server.addr.port(),
            file = jwks_file.display(),
        ),
    );
    let backend = Upstream::start("backend").await;
    let admins = Upstream::start("admins").await;
    let gateway = Gateway::start_with(&config(&backend, &admins, &security), |command| {
        command
            .env("SSL_CERT_FILE", certs.path().join("ca.pem"))
            .args(["--jwks-refresh", "300ms"]);
    });
    let client = Client::http1(gateway.addr("default/gw/http"));
    let status = async |header: &str, value: String| {
        let request = client.request("GET", "shop", "/").header(header, value);
        client
            .send(request.body(empty()).unwrap())
            .await
            .status
            .as_u16()
    };
    let bearer =
        |signer: &Signer| format!("Bearer {}", signer.token(&claims(ISSUER, "u", &json!({}))));
    let file_token = |signer: &Signer| signer.token(&claims("https://files.test", "u", &json!({})));

    assert_eq!(status("authorization", bearer(&old)).await, 200);
    assert_eq!(status("authorization", bearer(&new)).await, 401);
    let discovered = format!("https://127.0.0.1:{}", server.addr.port());
    let token = old.token(&claims(&discovered, "u", &json!({})));
    assert_eq!(
        status("authorization", format!("Bearer {token}")).await,
        200
    );
    assert_eq!(status("x-token", file_token(&file_old)).await, 200);
    assert_eq!(status("x-token", file_token(&file_new)).await, 401);

    // The issuer rotates: the refresh picks the new key up.
    server.set(jwks(&[&new]));
    eventually("the refreshed key set verifies the new key", async || {
        (status("authorization", bearer(&new)).await == 200).then_some(())
    })
    .await;
    assert_eq!(status("authorization", bearer(&old)).await, 401);

    // The server fails: the last good key set keeps serving.
    server.fail(true);
    let before = server.hits();
    eventually("refreshes fail a few times", async || {
        (server.hits() >= before + 3).then_some(())
    })
    .await;
    assert_eq!(status("authorization", bearer(&new)).await, 200);

    // The file changes: the config reloads with it.
    std::fs::write(&jwks_file, jwks(&[&file_new])).unwrap();
    eventually("the rewritten key file verifies the new key", async || {
        (status("x-token", file_token(&file_new)).await == 200).then_some(())
    })
    .await;
    assert_eq!(status("x-token", file_token(&file_old)).await, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_key_set_rejects_tokens_but_not_requests_without_one() {
    let signer = Signer::rsa("k");
    let backend = Upstream::start("backend").await;
    let admins = Upstream::start("admins").await;
    // Nothing listens on this port: the fetch fails.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let security = request_authentication(
        "users",
        &format!(
            "  jwtRules:
  - issuer: {ISSUER}
    jwksUri: http://127.0.0.1:{port}/keys
    timeout: 1s
"
        ),
    );
    let gateway = Gateway::start(&config(&backend, &admins, &security));
    let client = Client::http1(gateway.addr("default/gw/http"));
    assert_eq!(client.get("shop", "/").await.status, 200);
    let token = signer.token(&claims(ISSUER, "u", &json!({})));
    let request = client
        .request("GET", "shop", "/")
        .header("authorization", format!("Bearer {token}"));
    let reply = client.send(request.body(empty()).unwrap()).await;
    assert_eq!(
        (reply.status.as_u16(), reply.text()),
        (401, "Jwks remote fetch is failed".into())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn gateways_sharing_a_port_keep_their_own_policies() {
    let signer = Signer::rsa("k");
    let backend = Upstream::start("backend").await;
    let (address, held) = support::loopback::free_port(support::loopback::own_address());
    drop(held);
    let gateway = |name: &str| {
        let server = format!(
            "  - port: {{number: {port}, name: http, protocol: HTTP}}\n    bind: {ip}\n    hosts: [{name}.test]\n",
            port = address.port(),
            ip = address.ip()
        );
        named_gateway(name, &server)
    };
    let rest = format!(
        "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: both
spec:
  hosts: [a.test, b.test]
  gateways: [a, b]
  http:
  - route: [{{destination: {{host: backend}}}}]
---
{authentication}---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: b-is-closed
spec:
  targetRefs: [{{kind: Gateway, group: networking.istio.io, name: b}}]
  action: DENY
  rules: [{{}}]
",
        authentication = request_authentication(
            "users-of-a",
            &format!(
                "  targetRefs: [{{kind: Gateway, group: networking.istio.io, name: a}}]
  jwtRules:
  - issuer: {ISSUER}
    jwks: '{jwks}'
",
                jwks = jwks(&[&signer])
            ),
        )
    );
    let config = [
        gateway("a"),
        gateway("b"),
        service("backend", &[backend.addr.port()]),
        rest,
    ]
    .join("---\n");
    let _gateway = Gateway::start(&config);
    let client = Client::http1(address);
    let ask = async |host: &str, token: &str| {
        let request = client
            .request("GET", host, "/")
            .header("authorization", format!("Bearer {token}"));
        client.send(request.body(empty()).unwrap()).await.status
    };
    let good = signer.token(&claims(ISSUER, "u", &json!({})));
    let forged = Signer::rsa("k").token(&claims(ISSUER, "u", &json!({})));
    // Gateway a verifies tokens and is open; b verifies none and denies everything.
    assert_eq!(ask("a.test", &good).await, 200);
    assert_eq!(ask("a.test", &forged).await, 401);
    assert_eq!(ask("b.test", &forged).await, 403);
    assert_eq!(client.get("b.test", "/").await.status, 403);
    assert_eq!(client.get("a.test", "/").await.status, 200);
}
