//! Attempts at a routed request: endpoint choice, per-try and route timeouts, and retries
//! as the retry policy decides, the request body replayed from a bounded buffer
//! (`replay.rs`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http::Response;
use hyper::body::Incoming;
use tokio::time::Instant;

use super::forward::{self, AttemptError, Routed, Upstream};
use super::local_reply::ProxyError;
use super::replay::RequestBody;
use super::upgrade::Requested;
use crate::runtime::Generation;
use crate::runtime::clusters::{ClusterState, LiveEndpoint, now_ms};
use crate::telemetry::access_log::{self, Said};
use crate::upstream::lease::UpstreamLease;
use crate::upstream::load::Counted;
use crate::upstream::{Checkout, EndpointPool};
use crate::wasm::RequestView;
use crate::wasm::policies::{
    Admission, AttemptOutcome, EndpointResult, ResponseStatus, RetryDecision,
};
use crate::wire::body::Body;
use crate::wire::grpc;

/// Everything the attempts of one request share.
pub struct Attempts<'a> {
    pub generation: &'a Generation,
    /// The request as the policies see it.
    pub view: Arc<RequestView>,
    pub routed: Routed<'a>,
    pub cluster: usize,
    /// The client's side of the upgrade the request asks for: it goes over HTTP/1.1.
    pub upgrade: Option<Requested>,
    /// The request's timeout ([`timeout`]).
    pub timeout: Option<Duration>,
}

impl Attempts<'_> {
    fn cluster(&self) -> &ClusterState {
        &self.generation.clusters[self.cluster]
    }

    /// The head to send upstream: the client's, prepared for the route (and carrying the
    /// upgrade it asks for).
    pub fn upstream_head(&self) -> http::request::Parts {
        let mut head = forward::prepare(forward::clone_head(&self.view.parts), &self.routed);
        if let Some(upgrade) = &self.upgrade {
            upgrade.restore(&mut head);
        }
        // As Envoy does, a gRPC request's upstream learns the timeout in force.
        if let Some(timeout) = self
            .timeout
            .filter(|_| grpc::is_grpc_request(&head.headers))
        {
            head.headers
                .insert(grpc::GRPC_TIMEOUT, grpc::timeout_value(timeout));
        }
        head
    }

    /// Runs attempts until one succeeds, the policy stops retrying, or the route times out;
    /// the upstream that answered is `noted` for the access log. The first attempt sends
    /// `head` (from [`Self::upstream_head`]); a retry prepares it again.
    pub async fn run(
        self,
        head: http::request::Parts,
        mut body: RequestBody,
        noted: &mut access_log::Outcome,
    ) -> Result<Response<Body>, ProxyError> {
        let deadline = self.timeout.map(|t| Instant::now() + t);
        let mut tried: Vec<SocketAddr> = Vec::new();
        let mut attempt = 0u32;
        let mut first = Some(head);
        loop {
            attempt += 1;
            let retrying = (attempt > 1).then(|| Counted::new(&self.cluster().load.active_retries));
            let head = first.take().unwrap_or_else(|| self.upstream_head());
            let sent = self
                .attempt(head, &mut body, &mut tried, deadline, noted)
                .await?;
            // The client's fault is not the upstream's: no outlier report, no retry.
            if let (Err(_), Some(failure)) = (&sent.result, body.failure()) {
                return Err(ProxyError::Downstream(failure));
            }
            let outcome = classify(&sent.result);
            self.detect_outlier(&sent.endpoint, &outcome).await?;
            drop(retrying);
            let Some(backoff) = self.retry_after(attempt, &body, outcome, noted).await? else {
                return self.finish(sent, noted);
            };
            drop(sent);
            match remaining(deadline)? {
                Some(left) if left <= backoff => return Err(ProxyError::Timeout),
                _ => tokio::time::sleep(backoff).await,
            }
        }
    }

    /// One attempt: breaker admission, an endpoint not yet `tried`, and the exchange under
    /// the per-try timeout (capped by what is left of the route's).
    async fn attempt(
        &self,
        head: http::request::Parts,
        body: &mut RequestBody,
        tried: &mut Vec<SocketAddr>,
        deadline: Option<Instant>,
        noted: &mut access_log::Outcome,
    ) -> Result<Sent, ProxyError> {
        let (lease, load) = UpstreamLease::reserve(&self.cluster().load);
        if self.cluster().limited
            && !self
                .generation
                .admit_request(self.cluster, &self.view, load)
                .await?
        {
            return Err(self.overflow());
        }
        let endpoint = self.pick_endpoint(tried).await?;
        tried.push(endpoint.address);
        noted.destination = Some(endpoint.destination);
        // Envoy's upstream host is the last one tried, whether it answered or not.
        noted.upstream_host = Some(endpoint.address);
        let per_try = match (
            self.routed.entry.route.retry.per_try_timeout,
            remaining(deadline)?,
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let attempt_body = body
            .next()
            .expect("a body is available while attempts are allowed");
        let sent_at = noted.logged().then(access_log::Stamp::now);
        let started = Instant::now();
        let result = match self.upstream(&endpoint, &head, per_try).await? {
            Ok(upstream) => {
                forward::send(upstream, &endpoint, lease, head, attempt_body, per_try).await
            }
            Err(failure) => Err(failure),
        };
        if result.is_ok() {
            endpoint.health.record_latency(started.elapsed());
        }
        Ok(Sent {
            endpoint,
            result,
            sent_at,
        })
    }

    /// How long to wait before the next attempt, or `None` to stop. Envoy never retries
    /// a success: only failures of a replayable request go to the retry policy.
    async fn retry_after(
        &self,
        attempt: u32,
        body: &RequestBody,
        outcome: AttemptOutcome,
        noted: &mut access_log::Outcome,
    ) -> Result<Option<Duration>, ProxyError> {
        let retry = &self.routed.entry.route.retry;
        if retry.attempts == 0 || !body.replayable() || !failed(&outcome) {
            return Ok(None);
        }
        let decided = self
            .generation
            .should_retry(self.routed.entry, &self.view, attempt, outcome)
            .await?;
        let (decision, by) = (decided.value, decided.by);
        let policy = by.map_or(access_log::Policy::Retry, access_log::Policy::Plugin);
        noted.note(policy, || match decision {
            RetryDecision::RetryAfter(ms) => {
                Said::Text(format!("attempt {attempt} failed: retry in {ms} ms"))
            }
            RetryDecision::Stop => Said::Text(format!("attempt {attempt} failed: no retry")),
        });
        if let RetryDecision::RetryAfter(ms) = decision {
            let admitted = self.admit_retry().await?;
            return Ok(admitted.then(|| Duration::from_millis(ms)));
        }
        // Envoy's URX: the policy would go on, but the route's attempts ran out.
        if attempt > retry.attempts {
            noted.flags.push("URX");
        }
        Ok(None)
    }

    /// The last attempt's result as the client's response: an upgrade is spliced, a
    /// response forwarded, a failure mapped to its local reply.
    fn finish(
        mut self,
        sent: Sent,
        noted: &mut access_log::Outcome,
    ) -> Result<Response<Body>, ProxyError> {
        let (response, lease) = match sent.result {
            Ok(exchanged) => exchanged,
            Err(AttemptError::ConnectFailure(reason)) => {
                return Err(ProxyError::ConnectFailure(reason));
            }
            Err(AttemptError::Reset(reason)) => return Err(ProxyError::UpstreamReset(reason)),
            Err(AttemptError::Timeout) => return Err(ProxyError::Timeout),
        };
        noted.upstream_service_time = sent.sent_at.map(|t| t.elapsed().as_millis() as u64);
        if response.status() != http::StatusCode::SWITCHING_PROTOCOLS {
            return Ok(forward::respond(response, lease, &self.routed));
        }
        match self.upgrade.take() {
            Some(upgrade) => Ok(upgrade.splice(response, lease, &self.routed.downstream.tunnels)),
            None => Err(ProxyError::UpstreamReset(
                "101 to a request that asked for no upgrade".into(),
            )),
        }
    }

    /// A way to the endpoint: an idle or new HTTP/1.1 connection for `head` (queueing while the
    /// breaker says so), or the cluster's HTTP/2 client. The outer error refuses the
    /// request (overflow); the inner one is a failed attempt.
    async fn upstream<'e>(
        &'e self,
        endpoint: &'e LiveEndpoint,
        head: &http::request::Parts,
        wait: Option<Duration>,
    ) -> Result<Result<Upstream<'e>, AttemptError>, ProxyError> {
        let cluster = self.cluster();
        let worker = self.routed.downstream.worker;
        let h2 = cluster.h2_client(worker, self.view.parts.version);
        if let Some(client) = h2.filter(|_| self.upgrade.is_none()) {
            return Ok(Ok(Upstream::Http2(client)));
        }
        let pool = &endpoint.pool;
        // TLS origination sends the Host the upstream sees as SNI (Envoy's `auto_sni`).
        let sni = pool.sni(|| {
            head.headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or(self.routed.host)
        });
        let give_up = wait.map(|w| Instant::now() + w);
        let mut pending: Option<Counted<'_>> = None;
        loop {
            // The worker's own idle connection, else a new one while the breaker allows,
            // else another worker's idle one, else wait.
            if let Some(connection) = pool.take_idle(worker, &sni, false).await {
                return Ok(Ok(Upstream::Http1(connection, pool)));
            }
            let admission = self.admit_connection(&mut pending).await?;
            if admission != Admission::Admit
                && let Some(connection) = pool.take_idle(worker, &sni, true).await
            {
                return Ok(Ok(Upstream::Http1(connection, pool)));
            }
            match admission {
                Admission::Admit => {
                    drop(pending);
                    return Ok(pool
                        .connect(worker, sni)
                        .await
                        .map(|c| Upstream::Http1(c, pool))
                        .map_err(|Checkout::ConnectFailure(reason)| {
                            AttemptError::ConnectFailure(reason)
                        }));
                }
                Admission::Overflow if pending.is_none() => return Err(self.overflow()),
                // Waiting already: its place stays until a connection frees up.
                Admission::Overflow | Admission::Queue => {
                    if give_up.is_some_and(|t| Instant::now() >= t) {
                        return Ok(Err(AttemptError::Timeout));
                    }
                    let freed = cluster.load.freed.notified();
                    let _ = tokio::time::timeout(EndpointPool::QUEUE_POLL, freed).await;
                }
            }
        }
    }

    /// Whether the breaker lets a new connection open (`maxConnections`), or the request
    /// queues for one (`http1MaxPendingRequests`). A request not yet waiting reserves a
    /// pending place as it asks, so that concurrent requests cannot all take the last one;
    /// the place is kept in `pending` while it queues.
    async fn admit_connection<'c>(
        &'c self,
        pending: &mut Option<Counted<'c>>,
    ) -> Result<Admission, ProxyError> {
        let cluster = self.cluster();
        let newly_pending = cluster.limited && pending.is_none();
        let load = cluster.load.reserve_connection(newly_pending);
        let admission = match cluster.limited {
            false => Ok(Admission::Admit),
            true => {
                self.generation
                    .admit_connection(self.cluster, &self.view, load)
                    .await
            }
        };
        let counters = &cluster.load;
        if !matches!(admission, Ok(Admission::Admit)) {
            counters.active_connections.fetch_sub(1, Ordering::Relaxed);
        }
        if newly_pending {
            match admission {
                Ok(Admission::Queue) => {
                    *pending = Some(Counted::adopt(&counters.pending_requests));
                }
                _ => {
                    counters.pending_requests.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
        Ok(admission?)
    }

    /// Whether the breaker lets another retry start (`maxRetries`).
    async fn admit_retry(&self) -> Result<bool, ProxyError> {
        let cluster = self.cluster();
        if !cluster.limited {
            return Ok(true);
        }
        Ok(self
            .generation
            .admit_retry(self.cluster, &self.view, cluster.load.view())
            .await?)
    }

    /// The breaker refused the request: counted, then answered 503 UO.
    fn overflow(&self) -> ProxyError {
        self.cluster()
            .load
            .overflows
            .fetch_add(1, Ordering::Relaxed);
        ProxyError::Overflow
    }

    /// Reports the attempt to outlier detection and ejects the endpoint if it says so.
    async fn detect_outlier(
        &self,
        target: &LiveEndpoint,
        outcome: &AttemptOutcome,
    ) -> Result<(), ProxyError> {
        let cluster = self.cluster();
        if !cluster.detects_outliers() {
            return Ok(());
        }
        let result = match outcome {
            AttemptOutcome::Response(response) => EndpointResult::Status(response.status),
            _ => EndpointResult::LocalFailure,
        };
        // A success only ends a failure streak: with none under way there is nothing to tell.
        let failure = failed(outcome);
        if !target.health.failing.swap(failure, Ordering::Relaxed) && !failure {
            return Ok(());
        }
        let now = now_ms();
        let endpoints = cluster.endpoints();
        let ejected = endpoints.iter().filter(|e| e.ejected(now)).count() as u32;
        let total = endpoints.len() as u32;
        let eject_ms = self
            .generation
            .record_result(
                self.cluster,
                &self.view,
                target.id,
                result,
                (ejected, total),
            )
            .await?;
        if let Some(eject_ms) = eject_ms.filter(|&ms| ms > 0) {
            cluster.load.ejections.fetch_add(1, Ordering::Relaxed);
            target
                .health
                .ejected_until
                .store(now + eject_ms, Ordering::Relaxed);
            tracing::info!(cluster = %cluster.cluster.name, endpoint = %target.name, "ejected for {eject_ms} ms");
        }
        Ok(())
    }

    /// The endpoint for the next attempt, avoiding those already tried when another is
    /// available (Istio's `retryIgnorePreviousHosts`).
    async fn pick_endpoint(&self, tried: &[SocketAddr]) -> Result<Arc<LiveEndpoint>, ProxyError> {
        let (endpoints, mut states) = self.cluster().endpoint_states();
        match states.as_slice() {
            [] => return Err(ProxyError::NoHealthyUpstream),
            [only] if !only.healthy => return Err(ProxyError::NoHealthyUpstream),
            [_] => return Ok(endpoints[0].clone()),
            _ => {}
        }
        let avoid = self.routed.entry.route.retry.ignore_previous_hosts;
        let untried_healthy = endpoints
            .iter()
            .zip(&states)
            .any(|(e, s)| s.healthy && !tried.contains(&e.address));
        if avoid && untried_healthy {
            for (endpoint, state) in endpoints.iter().zip(states.iter_mut()) {
                if tried.contains(&endpoint.address) {
                    state.healthy = false;
                }
            }
        }
        let picked = self
            .generation
            .pick_endpoint(self.cluster, &self.view, &states)
            .await?;
        picked
            .and_then(|i| endpoints.get(i as usize).cloned())
            .ok_or(ProxyError::NoHealthyUpstream)
    }
}

/// One attempt's endpoint, result, and when its request was sent (when logged).
struct Sent {
    endpoint: Arc<LiveEndpoint>,
    result: Result<(Response<Incoming>, UpstreamLease), AttemptError>,
    sent_at: Option<access_log::Stamp>,
}

/// What the retry policy and outlier detection are told of an attempt.
fn classify(result: &Result<(Response<Incoming>, UpstreamLease), AttemptError>) -> AttemptOutcome {
    match result {
        Ok((response, _)) => AttemptOutcome::Response(ResponseStatus {
            status: response.status().as_u16(),
            grpc_status: response
                .headers()
                .get("grpc-status")
                .and_then(|v| v.to_str().ok()?.parse().ok()),
        }),
        Err(AttemptError::ConnectFailure(_)) => AttemptOutcome::ConnectFailure,
        Err(AttemptError::Reset(_)) => AttemptOutcome::Reset,
        Err(AttemptError::Timeout) => AttemptOutcome::Timeout,
    }
}

/// Whether an attempt failed: no response, a 4xx or 5xx status, or a gRPC error status.
fn failed(outcome: &AttemptOutcome) -> bool {
    match outcome {
        AttemptOutcome::Response(response) => {
            response.status >= 400 || response.grpc_status.is_some_and(|code| code != 0)
        }
        _ => true,
    }
}

/// A request's timeout: the route's, or the client's `grpc-timeout` (in `headers`) when
/// shorter (Istio caps a gRPC request's deadline by the route timeout).
pub fn timeout(route: Option<Duration>, headers: &http::HeaderMap) -> Option<Duration> {
    let asked = grpc::is_grpc_request(headers)
        .then(|| grpc::timeout(headers))
        .flatten();
    match (route, asked) {
        (Some(route), Some(asked)) => Some(route.min(asked)),
        (route, asked) => route.or(asked),
    }
}

/// Time left before `deadline`, or a timeout error when it has passed.
fn remaining(deadline: Option<Instant>) -> Result<Option<Duration>, ProxyError> {
    match deadline {
        None => Ok(None),
        Some(deadline) => {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                Err(ProxyError::Timeout)
            } else {
                Ok(Some(left))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_route_deadline_counts_down_then_times_out() {
        assert_eq!(remaining(None).unwrap(), None);
        let deadline = Instant::now() + Duration::from_millis(100);
        assert_eq!(
            remaining(Some(deadline)).unwrap(),
            Some(Duration::from_millis(100))
        );
        tokio::time::advance(Duration::from_millis(60)).await;
        assert_eq!(
            remaining(Some(deadline)).unwrap(),
            Some(Duration::from_millis(40))
        );
        tokio::time::advance(Duration::from_millis(40)).await;
        assert!(matches!(
            remaining(Some(deadline)),
            Err(ProxyError::Timeout)
        ));
    }

    #[test]
    fn only_failures_go_to_the_retry_policy() {
        let response = |status, grpc_status| {
            AttemptOutcome::Response(ResponseStatus {
                status,
                grpc_status,
            })
        };
        assert!(!failed(&response(200, None)));
        assert!(!failed(&response(200, Some(0))));
        assert!(failed(&response(200, Some(14))));
        assert!(failed(&response(409, None)));
        assert!(failed(&response(503, None)));
        assert!(failed(&AttemptOutcome::ConnectFailure));
        assert!(failed(&AttemptOutcome::Timeout));
    }
}
