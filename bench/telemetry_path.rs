//! What the access log and the metrics cost one request on a worker: capturing the
//! request, noting the outcome, wrapping the response, and at its end counting it and
//! writing its line (JSON, to /dev/null). Measured alone, and while a second thread does
//! the same, as a second worker would.
//!
//! `cargo bench --bench telemetry_path`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt as _;
use http_body_util::BodyExt as _;
use portcullis::runtime::Generation;
use portcullis::telemetry::access_log::{
    AccessLog, Destination, Format, Pending, Policy, Said, Telemetry,
};
use portcullis::telemetry::metrics::Metrics;
use portcullis::wire::body;

mod support;
use support::config::{GATEWAY, route_to, virtual_service};

// The allocator the gateway runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Bookinfo's product page, the one service of the config.
const PRODUCTPAGE: &str = r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: productpage
spec:
  hosts: [productpage.default.svc.cluster.local]
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 127.0.0.1}]
"#;

/// A request as a browser sends it.
fn request() -> http::Request<http_body_util::Empty<Bytes>> {
    http::Request::builder()
        .uri("/productpage?u=1")
        .header("host", "bookinfo.example.com")
        .header("user-agent", "wrk/4.2")
        .header("x-request-id", "5d7c4a52-6d6f-4b1e-9a35-0f4c2a1b7e11")
        .header("accept", "*/*")
        .body(http_body_util::Empty::<Bytes>::new())
        .unwrap()
}

/// A request through the plain route, as the data path reports it.
fn one_request(telemetry: &'static Telemetry, generation: &Arc<Generation>) {
    let mut request = request();
    let client = std::net::IpAddr::from([127, 0, 0, 1]);
    let mut pending = Pending::new(&mut request, client, None, telemetry, generation.clone());
    let (_, outcome) = pending.parts();
    outcome.route = Some(0);
    outcome.note(Policy::Match, || Said::Route(0));
    outcome.destination = Some(generation.clusters[0].destination);
    outcome.upstream_host = Some("127.0.0.1:18000".parse().unwrap());
    outcome.upstream_service_time = Some(0);
    let response = http::Response::new(body::full(Bytes::from_static(b"ok\n")));
    let mut body = pending.finish(response).into_body();
    while let Some(Some(Ok(_))) = body.frame().now_or_never() {}
}

/// The same request and response, for the baseline.
fn without_telemetry(generation: &Arc<Generation>) {
    std::hint::black_box(generation.clone());
    let request = request();
    std::hint::black_box(request);
    let mut body = http::Response::new(body::full(Bytes::from_static(b"ok\n"))).into_body();
    while let Some(Some(Ok(_))) = body.frame().now_or_never() {}
}

fn telemetry_path(c: &mut Criterion) {
    let routes = route_to("productpage.default.svc.cluster.local");
    let yaml = [
        GATEWAY,
        PRODUCTPAGE,
        &virtual_service("bookinfo", "*", &routes),
    ]
    .join("---\n");
    // Built on a runtime of its own, gone before the measurements.
    let (_runtime, generation) =
        support::generation(&yaml, &tokio::runtime::Runtime::new().unwrap());
    let generation = Arc::new(generation);
    let observed = |log: bool, metrics: bool| -> &'static Telemetry {
        Box::leak(Box::new(Telemetry {
            log: log.then(|| {
                AccessLog::start(&Destination::File("/dev/null".into()), Format::Json).unwrap()
            }),
            metrics: metrics.then(|| Arc::new(Metrics::default())),
            #[cfg(feature = "otel")]
            spans: None,
        }))
    };
    c.bench_function("request and response alone", |b| {
        b.iter(|| without_telemetry(&generation));
    });
    let metrics_only = observed(false, true);
    c.bench_function("metrics, one thread", |b| {
        b.iter(|| one_request(metrics_only, &generation));
    });
    let telemetry = observed(true, true);
    let flush = || telemetry.flush_thread();
    c.bench_function("log and metrics, one thread", |b| {
        b.iter(|| one_request(telemetry, &generation));
        flush();
    });
    c.bench_function("log and metrics, beside a second thread", |b| {
        let stop = Arc::new(AtomicBool::new(false));
        let other = {
            let (generation, stop) = (generation.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..64 {
                        one_request(telemetry, &generation);
                    }
                    telemetry.flush_thread();
                }
            })
        };
        b.iter_custom(|iterations| {
            let start = Instant::now();
            for _ in 0..iterations {
                one_request(telemetry, &generation);
            }
            start.elapsed()
        });
        stop.store(true, Ordering::Relaxed);
        other.join().unwrap();
        flush();
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = telemetry_path
}
criterion_main!(benches);
