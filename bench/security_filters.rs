//! The cost per request of the edge security filters, each a call into its built-in
//! component: JWT verification (RS256, ES256, and a request without a token), an
//! AuthorizationPolicy decision, and a rate-limit bucket.
//!
//! `cargo bench --bench security_filters`

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis::wasm::RequestView;
use portcullis::wasm::request_view::Identity;
use serde_json::json;

mod support;
use support::config::{GATEWAY, route_to, service, virtual_service};

/// Signing keys and tokens, as the end-to-end tests make them.
#[allow(dead_code)] // the bench signs tokens; the key server is the tests'
#[path = "../tests/support/jwt.rs"]
mod jwt;
use jwt::{Signer, claims, jwks};

const ISSUER: &str = "https://issuer.test";

/// A RequestAuthentication with `jwks`, an AuthorizationPolicy of a few rules and a
/// rate limit, on the gateway's every route.
fn security(jwks: &str) -> String {
    format!(
        "apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata:
  name: users
spec:
  jwtRules:
  - issuer: {ISSUER}
    audiences: [shop]
    jwks: '{jwks}'
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: shop
spec:
  rules:
  - from: [{{source: {{requestPrincipals: ['{ISSUER}/*']}}}}]
    to: [{{operation: {{methods: [GET, POST], paths: [/api/*]}}}}]
    when: [{{key: 'request.auth.claims[plan]', values: [gold, silver]}}]
  - from: [{{source: {{ipBlocks: [10.0.0.0/8]}}}}]
    to: [{{operation: {{paths: [/internal/*]}}}}]
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: limit
spec:
  url: builtin:rate-limit
  pluginConfig:
    tokenBucket: {{maxTokens: 1000000000, tokensPerFill: 1000000000, fillInterval: 1s}}
    descriptor: client
"
    )
}

/// A GET of `/api/items` with `authorization`, if given.
fn request(authorization: Option<&str>) -> RequestView {
    let mut builder = http::Request::get("/api/items").header("host", "shop");
    if let Some(value) = authorization {
        builder = builder.header("authorization", value);
    }
    let (parts, ()) = builder.body(()).unwrap().into_parts();
    RequestView {
        parts,
        scheme: "http",
        port: 8080,
        client: "203.0.113.9:5555".parse().unwrap(),
        tls: None,
        identity: None,
    }
}

fn filters(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (rsa, ec) = (Signer::rsa("rsa"), Signer::ec("ec"));
    let yaml = [
        GATEWAY,
        &service("shop.local", &[80]),
        &virtual_service("shop", "*", &route_to("shop.local")),
        &security(&jwks(&[&rsa, &ec])),
    ]
    .join("---\n");
    let (_runtime, generation) = support::generation(&yaml, &rt);
    let plugin = |name: &str| {
        let found = generation.plugins.iter().find(|p| p.name().ends_with(name));
        found.unwrap_or_else(|| panic!("no plugin {name}"))
    };
    let (jwt, authorization, limit) = (plugin("/jwt"), plugin("/authorization"), plugin("/limit"));
    // More distinct tokens than an instance remembers (1024), taken in turn: each is
    // verified afresh; and one token over and over, remembered after its first request.
    let tokens = |signer: &Signer, count: usize| -> Vec<Arc<RequestView>> {
        (0..count)
            .map(|i| {
                let claims = claims(ISSUER, &format!("user-{i}"), &json!({"plan": "gold"}));
                Arc::new(request(Some(&format!("Bearer {}", signer.token(&claims)))))
            })
            .collect()
    };
    let (rs256, es256) = (tokens(&rsa, 2000), tokens(&ec, 2000));
    let anonymous = [Arc::new(request(None))];
    // What the JWT filter leaves for the authorization filter.
    let identity = Identity::new(format!("{ISSUER}/alice"), r#"{"plan": "gold"}"#).unwrap();
    let verified = [Arc::new(RequestView {
        identity: Some(Arc::new(identity)),
        ..request(None)
    })];
    for (name, filter, views) in [
        ("jwt: RS256, first sight", jwt, &rs256[..]),
        ("jwt: ES256, first sight", jwt, &es256[..]),
        ("jwt: RS256, seen before", jwt, &rs256[..1]),
        ("jwt: no token", jwt, &anonymous[..]),
        ("authorization", authorization, &verified[..]),
        ("rate-limit", limit, &anonymous[..]),
    ] {
        let mut turn = views.iter().cycle();
        c.bench_function(name, |b| {
            b.to_async(&rt).iter(|| {
                let view = turn.next().unwrap();
                async move { filter.on_request(view).await.unwrap() }
            });
        });
    }
}

criterion_group!(benches, filters);
criterion_main!(benches);
