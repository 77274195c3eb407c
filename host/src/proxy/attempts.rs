//! Attempts at a routed request: endpoint choice, per-try and route timeouts, and retries
//! as the retry policy decides, with the request body replayed from a bounded buffer.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Response;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use tokio::time::Instant;

use super::body::{self, Body};
use super::forward::{self, AttemptError, Routed};
use super::local_reply::ProxyError;
use crate::runtime::Generation;
use crate::wasm::RequestView;
use crate::wasm::policies::{Outcome, ResponseStatus};

/// Request bodies up to this size are buffered so that a retry can send them again;
/// larger ones stream once and are not retried (Envoy's default buffer limit).
const REPLAY_LIMIT: u64 = 1 << 20;

/// A request body, replayable or not.
enum RequestBody {
    Replayable(Bytes),
    Once(Option<Incoming>),
}

impl RequestBody {
    /// Buffers `body` when it is small enough (by its declared length) to replay.
    async fn new(body: Incoming) -> Result<Self, ProxyError> {
        use http_body::Body as _;
        let fits =
            body.is_end_stream() || body.size_hint().upper().is_some_and(|n| n <= REPLAY_LIMIT);
        if !fits {
            return Ok(Self::Once(Some(body)));
        }
        let bytes = body
            .collect()
            .await
            .map_err(|e| ProxyError::DownstreamReset(e.to_string()))?
            .to_bytes();
        Ok(Self::Replayable(bytes))
    }

    /// The body for the next attempt, if there can be one.
    fn next(&mut self) -> Option<Body> {
        match self {
            Self::Replayable(bytes) => Some(body::full(bytes.clone())),
            Self::Once(body) => body.take().map(body::boxed),
        }
    }
}

/// Everything the attempts of one request share.
pub struct Attempts<'a> {
    pub generation: &'a Generation,
    /// The request as the policies see it.
    pub view: Arc<RequestView>,
    pub routed: Routed<'a>,
    pub cluster: usize,
}

impl Attempts<'_> {
    /// Runs attempts until one succeeds, the policy stops retrying, or the route times out.
    pub async fn run(
        self,
        head: http::request::Parts,
        body: Incoming,
    ) -> Result<Response<Body>, ProxyError> {
        let route = &self.routed.entry.route;
        let cluster = &self.generation.clusters[self.cluster];
        let deadline = route.timeout.map(|t| Instant::now() + t);
        let mut body = RequestBody::new(body).await?;
        let mut tried: Vec<usize> = Vec::new();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let endpoint = self.pick_endpoint(&tried).await?;
            tried.push(endpoint);
            let per_try = remaining(deadline)?;
            let per_try = match (route.retry.per_try_timeout, per_try) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let attempt_body = body
                .next()
                .expect("a body is available while attempts are allowed");
            let result = forward::send(
                cluster,
                &cluster.endpoints[endpoint],
                self.routed.downstream.worker,
                clone_head(&head),
                attempt_body,
                per_try,
            )
            .await;
            let outcome = match &result {
                Ok((response, _)) => Outcome::Response(ResponseStatus {
                    status: response.status().as_u16(),
                    grpc_status: response
                        .headers()
                        .get("grpc-status")
                        .and_then(|v| v.to_str().ok()?.parse().ok()),
                }),
                Err(AttemptError::ConnectFailure(_)) => Outcome::ConnectFailure,
                Err(AttemptError::Reset(_)) => Outcome::Reset,
                Err(AttemptError::Timeout) => Outcome::Timeout,
            };
            let can_retry = route.retry.attempts > 0 && matches!(body, RequestBody::Replayable(_));
            let decision = match can_retry {
                true => Some(
                    self.generation
                        .policies
                        .should_retry(&self.view, self.routed.entry.id, attempt, outcome)
                        .await?,
                ),
                false => None,
            };
            match decision {
                Some(decision) if decision.retry => {
                    drop(result);
                    let backoff = Duration::from_millis(decision.backoff_ms);
                    match remaining(deadline)? {
                        Some(left) if left <= backoff => return Err(ProxyError::Timeout),
                        _ => tokio::time::sleep(backoff).await,
                    }
                }
                _ => {
                    return match result {
                        Ok((response, in_flight)) => {
                            Ok(forward::respond(response, in_flight, &self.routed))
                        }
                        Err(AttemptError::ConnectFailure(reason)) => {
                            Err(ProxyError::ConnectFailure(reason))
                        }
                        Err(AttemptError::Reset(reason)) => Err(ProxyError::UpstreamReset(reason)),
                        Err(AttemptError::Timeout) => Err(ProxyError::Timeout),
                    };
                }
            }
        }
    }

    /// The endpoint for the next attempt, avoiding those already tried when another is
    /// available (Istio's `retryIgnorePreviousHosts`).
    async fn pick_endpoint(&self, tried: &[usize]) -> Result<usize, ProxyError> {
        let endpoints = &self.generation.clusters[self.cluster].endpoints;
        match endpoints.len() {
            0 => return Err(ProxyError::NoHealthyUpstream),
            1 => return Ok(0),
            _ => {}
        }
        let mut states: Vec<_> = endpoints.iter().map(|e| e.state()).collect();
        let avoid =
            self.routed.entry.route.retry.ignore_previous_hosts && tried.len() < endpoints.len();
        if avoid {
            for &i in tried {
                states[i].healthy = false;
            }
        }
        let picked = self
            .generation
            .policies
            .pick_endpoint(&self.view, self.cluster as u32, &states)
            .await?;
        picked
            .map(|i| i as usize)
            .filter(|i| *i < endpoints.len())
            .ok_or(ProxyError::NoHealthyUpstream)
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

fn clone_head(head: &http::request::Parts) -> http::request::Parts {
    let mut request = http::Request::new(());
    *request.method_mut() = head.method.clone();
    *request.uri_mut() = head.uri.clone();
    *request.version_mut() = head.version;
    *request.headers_mut() = head.headers.clone();
    request.into_parts().0
}
