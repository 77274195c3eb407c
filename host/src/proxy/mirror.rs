//! Request mirroring (Istio's `mirror`, `mirrors`, `mirrorPercentage`; Envoy's shadowing):
//! a copy of each sampled request goes to the mirror's cluster in the background, with
//! the same headers (`x-request-id` and Host included) and body; its response is read and
//! dropped. The request it copies never waits for it and never fails with it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt as _;

use super::Downstream;
use super::attempts::Attempts;
use super::forward::{self, Routed};
use super::replay::RequestBody;
use crate::config::resolved::RouteAction;
use crate::runtime::Generation;
use crate::runtime::generation::{RouteAt, RouteEntry};
use crate::telemetry::access_log::{Outcome, Policy, Said};
use crate::wasm::RequestView;

/// How long a copy may take when its route sets no timeout (Envoy's default route
/// timeout): a mirror that never answers holds nothing for longer.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// One copy of a request on its way to a mirror.
struct Shadow {
    generation: Arc<Generation>,
    at: RouteAt,
    cluster: usize,
    view: Arc<RequestView>,
    head: http::request::Parts,
    body: Bytes,
    downstream: Downstream,
}

/// What a copy is made of.
#[derive(Clone, Copy)]
pub struct Original<'a> {
    pub entry: &'a RouteEntry,
    pub view: &'a Arc<RequestView>,
    /// The request as it goes to the route's own destination.
    pub head: &'a http::request::Parts,
    pub body: &'a RequestBody,
    pub downstream: &'a Downstream,
}

/// Sends a copy of the request to each of its route's mirrors that samples it. A body
/// too large to buffer (over 1 MiB) is not copied, nor is its request.
pub fn send(original: Original<'_>, generation: &Arc<Generation>, outcome: &mut Outcome) {
    for &(cluster, percentage) in &original.entry.mirrors {
        if rand::random::<f64>() * 100.0 >= percentage {
            continue;
        }
        let name = || generation.clusters[cluster].cluster.name.clone();
        let Some(body) = original.body.buffered() else {
            outcome.note(Policy::Mirror, || {
                Said::Text(format!("not copied to {}: body over 1 MiB", name()))
            });
            continue;
        };
        outcome.note(Policy::Mirror, || {
            Said::Text(format!("copied to {}", name()))
        });
        let load = &generation.clusters[cluster].load;
        load.mirrored
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let shadow = Shadow {
            generation: generation.clone(),
            at: original.entry.at,
            cluster,
            view: original.view.clone(),
            head: forward::clone_head(original.head),
            body: body.clone(),
            downstream: original.downstream.clone(),
        };
        tokio::spawn(shadow.send());
    }
}

impl Shadow {
    async fn send(self) {
        let entry = self.generation.route_at(self.at);
        let RouteAction::Forward(destinations) = &entry.route.action else {
            return;
        };
        let host = self
            .head
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let timeout = super::attempts::timeout(entry.route.timeout, &self.view.parts.headers);
        let attempts = Attempts {
            generation: &self.generation,
            view: self.view,
            routed: Routed {
                downstream: &self.downstream,
                entry,
                destination: &destinations[0],
                matched_uri: None,
                host: &host,
            },
            cluster: self.cluster,
            upgrade: None,
            timeout,
        };
        let timeout = entry.route.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let mut outcome = Outcome::new(false);
        let exchange = async {
            let body = RequestBody::Replayable(self.body);
            let response = attempts.run(self.head, body, &mut outcome).await?;
            let _ = response.into_body().collect().await;
            Ok::<_, super::local_reply::ProxyError>(())
        };
        let failed = match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(())) => return,
            Ok(Err(error)) => format!("{error}"),
            Err(_) => format!("timed out after {timeout:?}"),
        };
        tracing::debug!("mirrored request failed: {failed}");
        let load = &self.generation.clusters[self.cluster].load;
        load.mirror_failures
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}
