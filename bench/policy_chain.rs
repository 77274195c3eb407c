//! The cost of the routing policy chain alone: route match, weighted destination and
//! load balancing, each a call into its Wasm component, for a request with 10 headers.
//!
//! `cargo bench --bench policy_chain`

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis::wasm::RequestView;
use portcullis::wasm::policies::EndpointState;

mod support;
use support::config::{GATEWAY, destination_rule, virtual_service};

/// The `reviews` service, its endpoints in two versions.
const REVIEWS: &str = r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: reviews
spec:
  hosts: [reviews]
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints:
  - {address: 10.0.0.1, labels: {version: v1}}
  - {address: 10.0.0.2, labels: {version: v1}}
  - {address: 10.0.0.3, labels: {version: v2}}
"#;

/// A subset of `reviews` for each version.
const SUBSETS: &str = "  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
";

/// The routes the chain chooses among: the request matches the third.
const ROUTES: &str = r#"  - match: [{uri: {exact: /health}}]
    directResponse: {status: 200}
  - match: [{headers: {x-canary: {exact: "yes"}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - match: [{uri: {prefix: /reviews}, method: {exact: GET}}]
    route:
    - {destination: {host: reviews, subset: v1}, weight: 90}
    - {destination: {host: reviews, subset: v2}, weight: 10}
  - route: [{destination: {host: reviews, subset: v1}}]
"#;

fn request() -> RequestView {
    let mut builder = http::Request::builder()
        .method("GET")
        .uri("/reviews/42?page=2")
        .header("host", "bookinfo.example.com");
    for (name, value) in [
        ("user-agent", "bench/1.0"),
        ("accept", "application/json"),
        ("accept-encoding", "gzip, br"),
        ("accept-language", "en-GB"),
        ("cookie", "session=abc123"),
        ("x-request-id", "0f4d6a9e-1b7c-4f1e-9d1e-0c8e4b7a2d11"),
        ("x-forwarded-for", "203.0.113.9"),
        ("authorization", "Bearer token"),
        ("cache-control", "no-cache"),
    ] {
        builder = builder.header(name, value);
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

fn chain(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let yaml = [
        GATEWAY,
        REVIEWS,
        &destination_rule("reviews", SUBSETS),
        &virtual_service("reviews", "*", ROUTES),
    ]
    .join("---\n");
    let (_runtime, generation) = support::generation(&yaml, &rt);
    let view = Arc::new(request());
    let vhost = &generation.tables[0][0].virtual_hosts[0];
    let endpoints = [
        EndpointState {
            id: 0,
            weight: 1,
            in_flight: 3,
            healthy: true,
            latency_us: Some(900),
        },
        EndpointState {
            id: 1,
            weight: 1,
            in_flight: 1,
            healthy: true,
            latency_us: None,
        },
    ];

    // Through the generation, as the data path calls them: each phase goes to the
    // component its chain names (here the built-ins).
    let generation = &generation;
    let entry = |id: u32| vhost.routes.iter().find(|r| r.id == id).unwrap();
    let weighted = &vhost.routes[2];
    c.bench_function("route-match", |b| {
        b.to_async(&rt)
            .iter(|| async { generation.select_route(vhost, &view).await.unwrap() });
    });
    c.bench_function("destination", |b| {
        b.to_async(&rt)
            .iter(|| async { generation.pick_destination(weighted, &view).await.unwrap() });
    });
    c.bench_function("endpoint", |b| {
        b.to_async(&rt).iter(|| async {
            generation
                .pick_endpoint(1, &view, &endpoints)
                .await
                .unwrap()
        });
    });
    c.bench_function("chain: match + weight + lb", |b| {
        b.to_async(&rt).iter(|| async {
            let selected = generation.select_route(vhost, &view).await.unwrap();
            let route = entry(selected.value.unwrap().route);
            let destination = generation.pick_destination(route, &view).await.unwrap();
            let cluster = route.clusters[destination.value as usize];
            generation
                .pick_endpoint(cluster, &view, &endpoints)
                .await
                .unwrap()
        });
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = chain
}
criterion_main!(benches);
