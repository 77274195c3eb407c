//! The built-in policy components' own decisions, each component called through the
//! host's instance pool as the data path calls it, with the settings the host would give
//! it: no gateway, no network.

use std::sync::Arc;

use portcullis::wasm::builtin::{self, Builtin};
use portcullis::wasm::policies::{
    Abort, Admission, Algorithm, AttemptOutcome, BalancerCluster, BalancerHashKey, BreakerLimits,
    BreakerWorld, ClusterLoadView, Delay, DestinationRoute, DestinationWorld, Detection,
    EndpointResult, EndpointState, EndpointWorld, FaultStatus, FaultWorld, OutlierCluster,
    OutlierWorld, PhaseConfig, ResponseStatus, RetryDecision, RetrySettings, RetryWorld,
    RouteFault, Weighted,
};
use portcullis::wasm::pool::{PolicyWorld, Pool, Setup};
use portcullis::wasm::{Limits, RequestView, WasmEngine};

use crate::support;

/// The built-in `builtin`, configured with `table` as a generation would.
async fn pool<W, T>(builtin: &Builtin, table: Vec<T>) -> Pool<W>
where
    W: PolicyWorld<Config = PhaseConfig<T>>,
{
    let engine = WasmEngine::new(Some(support::cache_dir())).unwrap();
    let (bytes, source) = builtin.load(None).unwrap();
    let component = engine.compile(&source, bytes).await.unwrap();
    let setup = Setup::config(PhaseConfig {
        table,
        plugin_config: None,
    });
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
        identity: None,
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
    let route = |retry_on: &[&str], codes: &[u16]| RetrySettings {
        attempts: 2,
        retry_on: retry_on.iter().map(ToString::to_string).collect(),
        retriable_status_codes: codes.to_vec(),
        backoff_base: 25,
        per_try_timeout: None,
    };
    let routes = vec![
        route(&["5xx"], &[]),
        route(
            &[
                "connect-failure",
                "refused-stream",
                "unavailable",
                "cancelled",
                "retriable-status-codes",
            ],
            &[],
        ),
        route(&["retriable-status-codes"], &[409]),
        route(&["gateway-error"], &[]),
    ];
    let retry: Pool<RetryWorld> = pool(&builtin::RETRY, routes).await;
    let view = request(&[]);
    // The back-off of a retry, or none for no retry.
    let decide = async |route, attempt, outcome| match retry
        .should_retry(&view, route, attempt, outcome)
        .await
        .unwrap()
    {
        RetryDecision::RetryAfter(ms) => Some(ms),
        RetryDecision::Stop => None,
    };
    // 5xx: any 5xx and any failure to get a response.
    let first = decide(0, 1, response(503, None)).await;
    assert!(first.is_some_and(|ms| ms <= 25), "{first:?}");
    assert!(decide(0, 1, AttemptOutcome::ConnectFailure).await.is_some());
    assert!(decide(0, 1, response(404, None)).await.is_none());
    assert!(
        decide(0, 3, response(503, None)).await.is_none(),
        "two retries at most"
    );
    // Istio's default: not a 503 response, but a refused connection and gRPC UNAVAILABLE.
    assert!(decide(1, 1, response(503, None)).await.is_none());
    assert!(decide(1, 1, AttemptOutcome::ConnectFailure).await.is_some());
    assert!(decide(1, 1, response(200, Some(14))).await.is_some());
    assert!(decide(1, 1, response(200, Some(5))).await.is_none());
    // Listed status codes, and gateway errors only.
    assert!(decide(2, 1, response(409, None)).await.is_some());
    assert!(decide(2, 1, response(503, None)).await.is_none());
    assert!(decide(3, 1, response(502, None)).await.is_some());
    assert!(decide(3, 1, response(500, None)).await.is_none());
    // The jittered back-off grows with the attempt, capped at ten times the base.
    let mut longest = 0;
    for _ in 0..200 {
        longest = longest.max(decide(0, 2, response(503, None)).await.unwrap());
    }
    assert!((26..=50).contains(&longest), "{longest}");
}

#[tokio::test]
async fn faults_are_sampled_at_their_percentages() {
    let abort = |status, percentage| RouteFault {
        delay: None,
        abort: Some(Abort { status, percentage }),
    };
    let routes = vec![
        Some(RouteFault {
            delay: Some(Delay {
                fixed: 40,
                percentage: 100.0,
            }),
            abort: None,
        }),
        Some(abort(FaultStatus::Http(503), 100.0)),
        Some(abort(FaultStatus::Grpc(14), 25.0)),
        None,
    ];
    let fault: Pool<FaultWorld> = pool(&builtin::FAULT, routes).await;
    let view = request(&[]);
    let delay = fault.inject_fault(&view, 0).await.unwrap();
    assert!(matches!((delay.delay, delay.abort), (Some(40), None)));
    let abort = fault.inject_fault(&view, 1).await.unwrap();
    assert!(matches!(
        (abort.delay, abort.abort),
        (None, Some(FaultStatus::Http(503)))
    ));
    let mut aborted = 0;
    for _ in 0..2000 {
        let injection = fault.inject_fault(&view, 2).await.unwrap();
        if matches!(injection.abort, Some(FaultStatus::Grpc(14))) {
            aborted += 1;
        }
    }
    // 25% of 2000 is 500; five standard deviations (±97) either way.
    assert!((403..=597).contains(&aborted), "{aborted} of 2000 at 25%");
    let none = fault.inject_fault(&view, 3).await.unwrap();
    assert!(matches!((none.delay, none.abort), (None, None)));
}

#[tokio::test]
async fn weights_split_requests_in_proportion() {
    let route = |weights: &[u32]| DestinationRoute {
        destinations: weights
            .iter()
            .map(|&weight| Weighted {
                host: "reviews".into(),
                subset: None,
                weight,
            })
            .collect(),
    };
    let weight: Pool<DestinationWorld> = pool(
        &builtin::DESTINATION,
        vec![route(&[80, 20]), route(&[0, 1])],
    )
    .await;
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
    let cluster = |name: &str, algorithm| BalancerCluster {
        name: name.into(),
        algorithm,
    };
    let clusters = vec![
        cluster("rr", Algorithm::RoundRobin),
        cluster("least", Algorithm::LeastRequest),
        cluster(
            "hash",
            Algorithm::ConsistentHash(BalancerHashKey::Header("x-user".into())),
        ),
    ];
    let lb: Pool<EndpointWorld> = pool(&builtin::ENDPOINT, clusters).await;
    let mut next_id = 0;
    let mut endpoint = |in_flight, healthy| {
        next_id += 1;
        EndpointState {
            id: next_id,
            weight: 1,
            in_flight,
            healthy,
            latency_us: None,
        }
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
    let limits = vec![BreakerLimits {
        max_connections: Some(2),
        http1_max_pending_requests: Some(1),
        http2_max_requests: Some(3),
        max_retries: Some(1),
    }];
    let breaker: Pool<BreakerWorld> = pool(&builtin::BREAKER, limits).await;
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
    let detection = Detection {
        consecutive_5xx_errors: Some(3),
        consecutive_gateway_errors: None,
        split_external_local_origin_errors: false,
        consecutive_local_origin_failures: Some(5),
        base_ejection_time: 1000,
        max_ejection_percent: 50,
    };
    let settings = vec![
        OutlierCluster {
            name: "reviews".into(),
            detection: Some(detection),
        },
        OutlierCluster {
            name: "ratings".into(),
            detection: None,
        },
    ];
    let outlier: Pool<OutlierWorld> = pool(&builtin::OUTLIER, settings).await;
    let view = request(&[]);
    let (a, b, c) = (1, 2, 3);
    let record = async |endpoint: u32, result, ejected| {
        outlier
            .record_result(&view, 0, endpoint, result, ejected, 4)
            .await
            .unwrap()
    };
    let failure = || EndpointResult::Status(503);
    assert_eq!(record(a, failure(), 0).await, None);
    assert_eq!(record(a, failure(), 0).await, None);
    // A success ends the streak.
    assert_eq!(record(a, EndpointResult::Status(200), 0).await, None);
    assert_eq!(record(a, failure(), 0).await, None);
    assert_eq!(record(a, EndpointResult::LocalFailure, 0).await, None);
    assert_eq!(record(a, failure(), 0).await, Some(1000), "third in a row");
    // The second ejection lasts twice as long.
    for _ in 0..2 {
        assert_eq!(record(a, failure(), 0).await, None);
    }
    assert_eq!(record(a, failure(), 0).await, Some(2000));
    // Not past maxEjectionPercent: with 2 of 4 out, a third is kept.
    for _ in 0..2 {
        record(b, failure(), 2).await;
    }
    assert_eq!(record(b, failure(), 2).await, None);
    // A cluster without outlier detection never ejects.
    let none = outlier
        .record_result(&view, 1, c, failure(), 0, 4)
        .await
        .unwrap();
    assert_eq!(none, None);
}
