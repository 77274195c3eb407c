//! End to end: retries, timeouts and fault injection against misbehaving upstreams on
//! loopback, counted at the upstream.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::assert_eventually;
use crate::support;
use support::admin::until_reloaded;
use support::client::{Client, empty};
use support::config::{GATEWAY, destination_rule, service, virtual_service};
use support::gateway::Gateway;
use support::upstream::Upstream;

/// A gateway with one VirtualService whose routes are `routes` (YAML under `http:`), in
/// front of `backend` (the upstream) and `flaky` (a refusing endpoint, then the upstream).
fn gateway(upstream: &Upstream, refused_port: u16, routes: &str) -> Gateway {
    let port = upstream.addr.port();
    let round_robin = "  trafficPolicy:\n    loadBalancer: {simple: ROUND_ROBIN}\n";
    let config = [
        GATEWAY,
        &service("backend", &[port]),
        &service("flaky", &[refused_port, port]),
        &destination_rule("flaky", round_robin),
        &virtual_service("routes", "*", routes),
    ];
    Gateway::start(&config.join("---\n"))
}

/// A loopback port that refuses connections: bound, so that no other test takes it, and
/// not listening.
struct RefusedPort(tokio::net::TcpSocket);

impl RefusedPort {
    fn new() -> Self {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        Self(socket)
    }

    fn port(&self) -> u16 {
        self.0.local_addr().unwrap().port()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_as_envoy_does() {
    let upstream = Upstream::start("backend").await;
    let routes = "  - match: [{uri: {prefix: /five}}]
    retries: {attempts: 2, retryOn: 5xx}
    route: [{destination: {host: backend}}]
  - match: [{uri: {prefix: /codes}}]
    retries: {attempts: 3, retryOn: \"503\"}
    route: [{destination: {host: backend}}]
  - match: [{uri: {prefix: /disabled}}]
    retries: {attempts: 0}
    route: [{destination: {host: backend}}]
  - match: [{uri: {prefix: /resets}}]
    retries: {attempts: 2, retryOn: reset}
    route: [{destination: {host: backend}}]
  - match: [{authority: {exact: flaky}}]
    route: [{destination: {host: flaky}}]
  - route: [{destination: {host: backend}}]
";
    let refused = RefusedPort::new();
    let gateway = gateway(&upstream, refused.port(), routes);
    let client = Client::http1(gateway.addr("default/gw/http"));
    let hits_during = |before: usize| upstream.hits() - before;

    // attempts: 2 means the first try and two retries, then the last response goes through.
    let before = upstream.hits();
    assert_eq!(client.get("backend", "/five/fail/5/a").await.status, 503);
    assert_eq!(hits_during(before), 3);

    // Bare status codes in retryOn are retried; the third try succeeds.
    let before = upstream.hits();
    assert_eq!(client.get("backend", "/codes/fail/2/b").await.status, 200);
    assert_eq!(hits_during(before), 3);

    // attempts: 0 disables retries.
    let before = upstream.hits();
    assert_eq!(
        client.get("backend", "/disabled/fail/1/c").await.status,
        503
    );
    assert_eq!(hits_during(before), 1);

    // Istio's default policy (since 1.24) does not retry a 503 response…
    let before = upstream.hits();
    assert_eq!(client.get("backend", "/fail/1/d").await.status, 503);
    assert_eq!(hits_during(before), 1);

    // …but does retry connection failures, on another endpoint: never a failure here.
    for _ in 0..20 {
        assert_eq!(client.get("flaky", "/x").await.status, 200);
    }

    // reset: a connection closed before any response is retried, then answered 503.
    let before = upstream.hits();
    let reply = client.get("backend", "/resets/reset").await;
    assert_eq!(reply.status, 503);
    assert!(
        String::from_utf8_lossy(&reply.body).contains("reset"),
        "{reply:?}"
    );
    assert_eq!(hits_during(before), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn times_out_per_try_and_per_route() {
    let upstream = Upstream::start("backend").await;
    let routes = "  - match: [{uri: {prefix: /route}}]
    timeout: 300ms
    route: [{destination: {host: backend}}]
  - match: [{uri: {prefix: /per-try}}]
    retries: {attempts: 2, perTryTimeout: 100ms, retryOn: 5xx}
    route: [{destination: {host: backend}}]
  - route: [{destination: {host: backend}}]
";
    let refused = RefusedPort::new();
    let gateway = gateway(&upstream, refused.port(), routes);
    let client = Client::http1(gateway.addr("default/gw/http"));

    let started = Instant::now();
    let reply = client.get("backend", "/route/slow/2000").await;
    let took = started.elapsed();
    assert_eq!(reply.status, 504);
    assert_eq!(&reply.body[..], b"upstream request timeout");
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_millis(1500),
        "{took:?}"
    );

    // Each try times out after 100ms and is retried; the last timeout is a 504.
    let before = upstream.hits();
    let started = Instant::now();
    assert_eq!(
        client.get("backend", "/per-try/slow/1000").await.status,
        504
    );
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(upstream.hits() - before, 3);

    // No timeout by default.
    assert_eq!(client.get("backend", "/slow/400").await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn injects_faults_as_istio_does() {
    let upstream = Upstream::start("backend").await;
    let routes = "  - match: [{uri: {prefix: /abort}}]
    fault: {abort: {httpStatus: 418, percentage: {value: 100}}}
    route: [{destination: {host: backend}}]
  - match: [{uri: {prefix: /half}}]
    fault: {abort: {httpStatus: 503, percentage: {value: 50}}}
    route: [{destination: {host: backend}}]
  - match: [{uri: {prefix: /delay}}]
    timeout: 100ms
    fault: {delay: {fixedDelay: 300ms, percentage: {value: 100}}}
    route: [{destination: {host: backend}}]
  - match: [{uri: {prefix: /unset}}]
    fault: {abort: {httpStatus: 500}}
    route: [{destination: {host: backend}}]
  - match: [{uri: {prefix: /grpc}}]
    fault: {abort: {grpcStatus: UNAVAILABLE, percentage: {value: 100}}}
    route: [{destination: {host: backend}}]
  - route: [{destination: {host: backend}}]
";
    let refused = RefusedPort::new();
    let gateway = gateway(&upstream, refused.port(), routes);
    let client = Client::http1(gateway.addr("default/gw/http"));

    // An abort answers at once and never reaches the upstream.
    let before = upstream.hits();
    let reply = client.get("backend", "/abort").await;
    assert_eq!(reply.status, 418);
    assert_eq!(&reply.body[..], b"fault filter abort");
    assert_eq!(upstream.hits(), before);

    // 50% within ±5σ over 400 requests (σ = 10).
    let mut aborted = 0;
    for _ in 0..400 {
        if client.get("backend", "/half").await.status == 503 {
            aborted += 1;
        }
    }
    assert!((150..=250).contains(&aborted), "{aborted} of 400 aborted");

    // The delay happens before the router: the route's 100ms timeout does not count it.
    let started = Instant::now();
    assert_eq!(client.get("backend", "/delay").await.status, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );

    // A fault without a percentage injects nothing.
    for _ in 0..20 {
        assert_eq!(client.get("backend", "/unset").await.status, 200);
    }

    // gRPC aborts answer 200 with grpc-status.
    let reply = client
        .send(
            client
                .request("POST", "backend", "/grpc")
                .header("content-type", "application/grpc")
                .body(empty())
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["grpc-status"], "14");
}

/// A gateway in front of `endpoints` (as one ServiceEntry `svc`) with `policy` as the
/// DestinationRule's trafficPolicy and retries off, so that every request is one attempt.
fn guarded(endpoints: &[&Upstream], policy: &str) -> Gateway {
    let ports: Vec<u16> = endpoints.iter().map(|u| u.addr.port()).collect();
    let config = format!(
        "{GATEWAY}---\n{}---\n{}---\n{}",
        service("svc", &ports),
        destination_rule("svc", &format!("  trafficPolicy:\n{policy}")),
        virtual_service(
            "svc",
            "*",
            "  - retries: {attempts: 0}\n    route: [{destination: {host: svc}}]\n"
        ),
    );
    Gateway::start_with(&config, |command| {
        command.args(["--admin", "127.0.0.1:0"]);
    })
}

/// Sends `n` requests at once; returns each status and whether it was marked overloaded.
async fn burst(client: &Client, path: &str, n: usize) -> Vec<(u16, bool)> {
    burst_counting(client, path, n, Arc::default()).await
}

/// [`burst`], counting the requests answered so far in `answered`.
async fn burst_counting(
    client: &Client,
    path: &str,
    n: usize,
    answered: Arc<AtomicUsize>,
) -> Vec<(u16, bool)> {
    let requests = (0..n).map(|_| {
        let (client, answered) = (client.clone(), answered.clone());
        let path = path.to_string();
        tokio::spawn(async move {
            let reply = client.get("svc", &path).await;
            answered.fetch_add(1, Ordering::SeqCst);
            (
                reply.status.as_u16(),
                reply
                    .headers
                    .get("x-envoy-overloaded")
                    .is_some_and(|v| v == "true"),
            )
        })
    });
    futures_util::future::join_all(requests)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn circuit_breakers_bound_connections_and_overflow_with_503() {
    let upstream = Upstream::start("backend").await;

    // maxConnections alone queues: everything succeeds over at most 2 connections.
    let queued = guarded(
        &[&upstream],
        "    connectionPool:\n      tcp: {maxConnections: 2}\n",
    );
    let client = Client::http1(queued.addr("default/gw/http"));
    let statuses = burst(&client, "/slow/100", 8).await;
    assert!(statuses.iter().all(|(s, _)| *s == 200), "{statuses:?}");
    assert!(
        upstream.max_connections() <= 2,
        "{} connections",
        upstream.max_connections()
    );
    drop(queued);

    // With a pending limit, what does not fit is refused at once, marked overloaded: the
    // upstream holds the one request on the one connection, one waits for it, the other
    // four are refused; then the two go on.
    let upstream = Upstream::start("backend").await;
    let limited = guarded(
        &[&upstream],
        "    connectionPool:\n      tcp: {maxConnections: 1}\n      http: {http1MaxPendingRequests: 1}\n",
    );
    let client = Client::http1(limited.addr("default/gw/http"));
    let statuses = held_burst(&client, &upstream, 6, 4).await;
    let ok = statuses.iter().filter(|(s, _)| *s == 200).count();
    let overloaded = statuses.iter().filter(|(s, o)| *s == 503 && *o).count();
    assert_eq!((ok, overloaded), (2, 4), "{statuses:?}");
    assert_eq!(upstream.max_connections(), 1);
    drop(limited);

    // http2MaxRequests bounds requests in flight, whatever the connections: two are
    // held, three refused.
    let upstream = Upstream::start("backend").await;
    let requests = guarded(
        &[&upstream],
        "    connectionPool:\n      http: {http2MaxRequests: 2}\n",
    );
    let client = Client::http1(requests.addr("default/gw/http"));
    let statuses = held_burst(&client, &upstream, 5, 3).await;
    let ok = statuses.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(ok, 2, "{statuses:?}");
    assert!(
        statuses.iter().all(|(s, o)| *s == 200 || (*s == 503 && *o)),
        "{statuses:?}"
    );
}

/// Sends `n` requests at once to `/hold`, which `upstream` holds; once `refused` of them
/// have been answered (the gateway refuses them without the upstream), releases the rest.
async fn held_burst(
    client: &Client,
    upstream: &Upstream,
    n: usize,
    refused: usize,
) -> Vec<(u16, bool)> {
    let answered = Arc::new(AtomicUsize::new(0));
    let sent = burst_counting(client, "/hold", n, answered.clone());
    let release = async {
        assert_eventually!(answered.load(Ordering::SeqCst) >= refused, "not refused");
        upstream.release();
    };
    tokio::join!(sent, release).0
}

#[tokio::test(flavor = "multi_thread")]
async fn outlier_detection_ejects_failing_endpoints() {
    let good = Upstream::start("good").await;
    let bad = Upstream::failing("bad", 503).await;
    let policy = "    loadBalancer: {simple: ROUND_ROBIN}
    outlierDetection: {consecutive5xxErrors: 3, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 100}
";
    let gateway = guarded(&[&good, &bad], policy);
    let client = Client::http1(gateway.addr("default/gw/http"));
    let mut failures = 0;
    for _ in 0..40 {
        if client.get("svc", "/x").await.status != 200 {
            failures += 1;
        }
    }
    // Three 5xx in a row eject the bad endpoint; after that only the good one serves.
    assert_eq!(bad.hits(), 3);
    assert_eq!(failures, 3);
    // A reload does not bring it back before its ejection time is up.
    gateway.signal("HUP");
    until_reloaded(&Client::http1(gateway.admin.unwrap()), 2, None).await;
    for _ in 0..10 {
        assert_eq!(client.get("svc", "/x").await.status, 200);
    }
    assert_eq!(bad.hits(), 3);
    drop(gateway);

    // When every endpoint is ejected: 503 "no healthy upstream", and the upstream is spared.
    let bad = Upstream::failing("bad", 502).await;
    let gateway = guarded(
        &[&bad],
        "    outlierDetection: {consecutiveGatewayErrors: 2, consecutive5xxErrors: 0, maxEjectionPercent: 100}\n",
    );
    let client = Client::http1(gateway.addr("default/gw/http"));
    assert_eq!(client.get("svc", "/").await.status, 502);
    assert_eq!(client.get("svc", "/").await.status, 502);
    let reply = client.get("svc", "/").await;
    assert_eq!(reply.status, 503);
    assert_eq!(&reply.body[..], b"no healthy upstream");
    assert_eq!(bad.hits(), 2);
    drop(gateway);

    // Below minHealthPercent, ejections are ignored (Envoy's panic mode).
    let bad = Upstream::failing("bad", 502).await;
    let policy = "    outlierDetection: {consecutiveGatewayErrors: 2, consecutive5xxErrors: 0, maxEjectionPercent: 100, minHealthPercent: 50}\n";
    let gateway = guarded(&[&bad], policy);
    let client = Client::http1(gateway.addr("default/gw/http"));
    for _ in 0..4 {
        assert_eq!(client.get("svc", "/").await.status, 502);
    }
    assert_eq!(bad.hits(), 4);
}
