//! The request body of a routed request: buffered when small enough to send again on a
//! retry (or to a mirror), streamed once otherwise.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;

use super::local_reply::{DownstreamFailure, ProxyError};
use crate::wire::body::{self, Body};
use crate::wire::grpc_messages::{Counting, MessageCounter};

/// Request bodies up to this size are buffered so that a retry can send them again;
/// larger ones stream once and are not retried (Envoy's default buffer limit).
const REPLAY_LIMIT: u64 = 1 << 20;

/// A request body, replayable or not. A streamed one notes how the client broke it off,
/// if it did, so that the failure is not blamed on the upstream.
pub enum RequestBody {
    Replayable(Bytes),
    /// The body, how the client broke it off, and where its gRPC messages are counted.
    Once(
        Option<Incoming>,
        Arc<OnceLock<DownstreamFailure>>,
        Option<Arc<AtomicU64>>,
    ),
}

impl RequestBody {
    /// Buffers `body` when it is small enough (by its declared length) to replay; its
    /// gRPC messages are counted into `messages`, if given.
    pub async fn new(body: Incoming, messages: Option<Arc<AtomicU64>>) -> Result<Self, ProxyError> {
        use http_body::Body as _;
        let fits =
            body.is_end_stream() || body.size_hint().upper().is_some_and(|n| n <= REPLAY_LIMIT);
        if !fits {
            return Ok(Self::Once(Some(body), Arc::default(), messages));
        }
        let bytes = body
            .collect()
            .await
            .map_err(|e| ProxyError::Downstream(DownstreamFailure::of(&e)))?
            .to_bytes();
        if let Some(messages) = messages {
            let mut counter = MessageCounter::default();
            counter.feed(&bytes);
            messages.store(counter.messages, Ordering::Relaxed);
        }
        Ok(Self::Replayable(bytes))
    }

    /// The body for the next attempt, if there can be one.
    pub fn next(&mut self) -> Option<Body> {
        match self {
            Self::Replayable(bytes) => Some(body::full(bytes.clone())),
            Self::Once(body, failure, messages) => {
                let failure = failure.clone();
                let noted = move |e: hyper::Error| {
                    let _ = failure.set(DownstreamFailure::of(&e));
                    e
                };
                let body = body.take()?.map_err(noted);
                Some(match messages {
                    Some(messages) => body::boxed(Counting::new(body, messages.clone())),
                    None => body::boxed(body),
                })
            }
        }
    }

    /// Whether a retry can send the body again.
    pub fn replayable(&self) -> bool {
        matches!(self, Self::Replayable(_))
    }

    /// The whole body, when it was buffered.
    pub fn buffered(&self) -> Option<&Bytes> {
        match self {
            Self::Replayable(bytes) => Some(bytes),
            Self::Once(..) => None,
        }
    }

    /// How the client broke the body off, if it did.
    pub fn failure(&self) -> Option<DownstreamFailure> {
        match self {
            Self::Replayable(_) => None,
            Self::Once(_, failure, _) => failure.get().copied(),
        }
    }
}
