//! The built-in policy components' own decisions, each component called through the
//! host's instance pool as the data path calls it, with the settings the host would give
//! it: no gateway, no network.

use std::sync::Arc;

use portcullis::config::resolved::{HashKey, LoadBalancer};
use portcullis::wasm::builtin::{self, Builtin};
use portcullis::wasm::policies::{
    Admission, AttemptOutcome, BalancerWorld, ClusterLoadView, DetectorWorld, EndpointResult,
    EndpointState, InjectorWorld, LimiterWorld, ResponseStatus, RetrierWorld, WeighterWorld,
};
use portcullis::wasm::pool::{PolicyWorld, Pool, Setup};
use portcullis::wasm::{Limits, RequestView, WasmEngine};
use serde_json::json;

use crate::support;

/// The built-in `builtin`, configured with `config`.
async fn pool<W: PolicyWorld>(builtin: &Builtin, config: serde_json::Value) -> Pool<W> {
    let engine = WasmEngine::new(Some(support::cache_dir())).unwrap();
    let (bytes, source) = builtin.load(None).unwrap();
    let component = engine.compile(&source, bytes).await.unwrap();
    let setup = Setup::config(config.to_string());
    Pool::new(
        &source,
        &engine,
        &component,
        setup,
        Arc::default(),
        Limits::default(),
        Arc::default(),
    )
    .await
    .unwrap()
}

/// A GET of `/` with `headers`.
fn request(headers: &[(&str, &str)]) -> Arc<RequestView> {
    let mut builder = http::Request::get("/").header("host", "shop.example.com");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let (parts, ()) = builder.body(()).unwrap().into_parts();
    Arc::new(RequestView {
        parts,
        scheme: "http",
        port: 8080,
        client: "192.0.2.7:5555".parse().unwrap(),
        tls: None,
    })
}

fn response(status: u16, grpc_status: Option<u32>) -> AttemptOutcome {
    AttemptOutcome::Response(ResponseStatus {
        status,
        grpc_status,
    })
}

#[tokio::test]
async fn retry_follows_retry_on_and_the_attempt_count() {
    let route = |retry_on: &[&str], codes: &[u16]| json!({"attempts": 2, "retry_on": retry_on, "retriable_status_codes": codes, "backoff_base_ms": 25});
    let routes = json!({"routes": [
        route(&["5xx"], &[]),
        route(&["connect-failure", "refused-stream", "unavailable", "cancelled", "retriable-status-codes"], &[]),
        route(&["retriable-status-codes"], &[409]),
        route(&["gateway-error"], &[]),
    ]});
    let retry: Pool<RetrierWorld> = pool(&builtin::RETRY, routes).await;
    let view = request(&[]);
    let decide = async |route, attempt, outcome| {
        retry
            .should_retry(&view, route, attempt, outcome)
            .await
            .unwrap()
    };
    // 5xx: any 5xx and any failure to get a response.
    let first = decide(0, 1, response(503, None)).await;
    assert!(first.retry);
    assert!(first.backoff_ms <= 25, "{}", first.backoff_ms);
    assert!(decide(0, 1, AttemptOutcome::ConnectFailure).await.retry);
    assert!(!decide(0, 1, response(404, None)).await.retry);
    assert!(
        !decide(0, 3, response(503, None)).await.retry,
        "two retries at most"
    );
    // Istio's default: not a 503 response, but a refused connection and gRPC UNAVAILABLE.
    assert!(!decide(1, 1, response(503, None)).await.retry);
    assert!(decide(1, 1, AttemptOutcome::ConnectFailure).await.retry);
    assert!(decide(1, 1, response(200, Some(14))).await.retry);
    assert!(!decide(1, 1, response(200, Some(5))).await.retry);
    // Listed status codes, and gateway errors only.
    assert!(decide(2, 1, response(409, None)).await.retry);
    assert!(!decide(2, 1, response(503, None)).await.retry);
    assert!(decide(3, 1, response(502, None)).await.retry);
    assert!(!decide(3, 1, response(500, None)).await.retry);
    // The jittered back-off grows with the attempt, capped at ten times the base.
    let mut longest = 0;
    for _ in 0..200 {
        longest = longest.max(decide(0, 2, response(503, None)).await.backoff_ms);
    }
    assert!((26..=50).contains(&longest), "{longest}");
}

#[tokio::test]
async fn faults_are_sampled_at_their_percentages() {
    let routes = json!({"routes": [
        {"delay": {"ms": 40, "percentage": 100.0}, "abort": null},
        {"delay": null, "abort": {"status": {"http": 503}, "percentage": 100.0}},
        {"delay": null, "abort": {"status": {"grpc": 14}, "percentage": 25.0}},
        null,
    ]});
    let fault: Pool<InjectorWorld> = pool(&builtin::FAULT, routes).await;
    let view = request(&[]);
    let delay = fault.inject_fault(&view, 0).await.unwrap();
    assert_eq!((delay.delay_ms, delay.abort_http), (40, None));
    let abort = fault.inject_fault(&view, 1).await.unwrap();
    assert_eq!((abort.delay_ms, abort.abort_http), (0, Some(503)));
    let mut aborted = 0;
    for _ in 0..2000 {
        if fault.inject_fault(&view, 2).await.unwrap().abort_grpc == Some(14) {
            aborted += 1;
        }
    }
    // 25% of 2000 is 500; five standard deviations (±97) either way.
    assert!((403..=597).contains(&aborted), "{aborted} of 2000 at 25%");
    let none = fault.inject_fault(&view, 3).await.unwrap();
    assert_eq!(
        (none.delay_ms, none.abort_http, none.abort_grpc),
        (0, None, None)
    );
}

#[tokio::test]
async fn weights_split_requests_in_proportion() {
    let weight: Pool<WeighterWorld> =
        pool(&builtin::WEIGHT, json!({"routes": [[80, 20], [0, 1]]})).await;
    let view = request(&[]);
    let mut first = 0;
    for _ in 0..2000 {
        if weight.pick_destination(&view, 0).await.unwrap() == 0 {
            first += 1;
        }
    }
    // 80% of 2000 is 1600; five standard deviations (±89) either way.
    assert!((1511..=1689).contains(&first), "{first} of 2000 at 80%");
    assert_eq!(weight.pick_destination(&view, 1).await.unwrap(), 1);
}

#[tokio::test]
async fn balancers_pick_by_their_algorithm_and_skip_the_ejected() {
    let cluster = |name: &str, lb: LoadBalancer| json!({"name": name, "load_balancer": lb});
    let clusters = json!({"clusters": [
        cluster("rr", LoadBalancer::RoundRobin),
        cluster("least", LoadBalancer::LeastRequest),
        cluster("hash", LoadBalancer::ConsistentHash(HashKey::Header("x-user".into()))),
    ]});
    let lb: Pool<BalancerWorld> = pool(&builtin::LB, clusters).await;
    let endpoint = |in_flight, healthy| EndpointState {
        in_flight,
        weight: 1,
        healthy,
    };
    let view = request(&[]);
    // Round robin takes turns, and never picks an ejected endpoint.
    let three = [endpoint(0, true), endpoint(0, false), endpoint(0, true)];
    let mut picks = Vec::new();
    for _ in 0..4 {
        picks.push(lb.pick_endpoint(&view, 0, &three).await.unwrap().unwrap());
    }
    assert!(!picks.contains(&1), "{picks:?}");
    assert!(picks.contains(&0) && picks.contains(&2), "{picks:?}");
    // Least request (two random choices): the idle endpoint wins most picks.
    let loaded = [endpoint(50, true), endpoint(0, true)];
    let mut idle = 0;
    for _ in 0..400 {
        if lb.pick_endpoint(&view, 1, &loaded).await.unwrap() == Some(1) {
            idle += 1;
        }
    }
    assert!(idle > 250, "the idle endpoint won {idle} of 400");
    // Consistent hash: one user, one endpoint.
    let four = [
        endpoint(0, true),
        endpoint(0, true),
        endpoint(0, true),
        endpoint(0, true),
    ];
    let alice = request(&[("x-user", "alice")]);
    let pick = lb.pick_endpoint(&alice, 2, &four).await.unwrap();
    for _ in 0..20 {
        assert_eq!(lb.pick_endpoint(&alice, 2, &four).await.unwrap(), pick);
    }
    // Nobody healthy: no pick.
    let out = [endpoint(0, false)];
    assert_eq!(lb.pick_endpoint(&view, 0, &out).await.unwrap(), None);
}

#[tokio::test]
async fn the_breaker_admits_queues_and_overflows_at_its_limits() {
    let limits = json!({"clusters": [{
        "max_connections": 2, "http1_max_pending_requests": 1,
        "http2_max_requests": 3, "max_retries": 1,
    }]});
    let breaker: Pool<LimiterWorld> = pool(&builtin::BREAKER, limits).await;
    let view = request(&[]);
    let load = |requests, pending, connections, retries| ClusterLoadView {
        active_requests: requests,
        pending_requests: pending,
        active_connections: connections,
        active_retries: retries,
    };
    assert!(
        breaker
            .admit_request(&view, 0, load(2, 0, 0, 0))
            .await
            .unwrap()
    );
    assert!(
        !breaker
            .admit_request(&view, 0, load(3, 0, 0, 0))
            .await
            .unwrap()
    );
    let admission = async |l| breaker.admit_connection(&view, 0, l).await.unwrap();
    assert!(matches!(
        admission(load(0, 0, 1, 0)).await,
        Admission::Admit
    ));
    assert!(matches!(
        admission(load(0, 0, 2, 0)).await,
        Admission::Queue
    ));
    assert!(matches!(
        admission(load(0, 1, 2, 0)).await,
        Admission::Overflow
    ));
    assert!(
        breaker
            .admit_retry(&view, 0, load(0, 0, 0, 0))
            .await
            .unwrap()
    );
    assert!(
        !breaker
            .admit_retry(&view, 0, load(0, 0, 0, 1))
            .await
            .unwrap()
    );
    // A cluster without limits (none configured for it) admits everything.
    assert!(
        breaker
            .admit_request(&view, 7, load(1000, 0, 0, 0))
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn outlier_detection_ejects_after_consecutive_errors_for_longer_each_time() {
    let settings = json!({"clusters": [{
        "name": "reviews", "consecutive_5xx_errors": 3, "consecutive_gateway_errors": 0,
        "split_external_local_origin_errors": false, "consecutive_local_origin_failures": 5,
        "base_ejection_time_ms": 1000, "max_ejection_percent": 50,
    }, null]});
    let outlier: Pool<DetectorWorld> = pool(&builtin::OUTLIER, settings).await;
    let view = request(&[]);
    let record = async |endpoint: &str, result, ejected| {
        outlier
            .record_result(&view, 0, endpoint, result, ejected, 4)
            .await
            .unwrap()
    };
    let failure = || EndpointResult::Status(503);
    assert_eq!(record("a", failure(), 0).await, 0);
    assert_eq!(record("a", failure(), 0).await, 0);
    // A success ends the streak.
    assert_eq!(record("a", EndpointResult::Status(200), 0).await, 0);
    assert_eq!(record("a", failure(), 0).await, 0);
    assert_eq!(record("a", EndpointResult::LocalFailure, 0).await, 0);
    assert_eq!(record("a", failure(), 0).await, 1000, "third in a row");
    // The second ejection lasts twice as long.
    for _ in 0..2 {
        assert_eq!(record("a", failure(), 0).await, 0);
    }
    assert_eq!(record("a", failure(), 0).await, 2000);
    // Not past maxEjectionPercent: with 2 of 4 out, a third is kept.
    for _ in 0..2 {
        record("b", failure(), 2).await;
    }
    assert_eq!(record("b", failure(), 2).await, 0);
    // A cluster without outlier detection never ejects.
    let none = outlier
        .record_result(&view, 1, "c", failure(), 0, 4)
        .await
        .unwrap();
    assert_eq!(none, 0);
}
