//! The one request a policy may send out: an authorization check to an extension provider
//! of the mesh config (`host.check-with-provider`), over plain HTTP/1.1 to the provider
//! service's endpoints, bounded by the provider's timeout.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::Semaphore;

use super::bindings::host::ProviderResponse;
use super::bindings::types::Header;

/// The largest answer body read; a larger one fails the check.
const MAX_BODY: usize = 64 << 10;

/// Checks one provider may have in flight; more fail at once. Each holds an instance of
/// the asking component, and instances are shared by every policy.
const MAX_IN_FLIGHT: usize = 256;

/// Headers that describe one hop, never passed either way (nor a length: checks are sent
/// without a body, as Istio's are).
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
    "host",
];

/// Where a provider's checks go.
#[derive(Debug)]
pub struct Provider {
    /// Its service's endpoints, taken in turn.
    pub endpoints: Vec<SocketAddr>,
    /// How long a check may take.
    pub timeout: Duration,
    /// Checks in flight.
    pub in_flight: Semaphore,
}

impl Provider {
    /// A provider at `endpoints` whose checks may take `timeout`.
    pub fn new(endpoints: Vec<SocketAddr>, timeout: Duration) -> Self {
        Self {
            endpoints,
            timeout,
            in_flight: Semaphore::new(MAX_IN_FLIGHT),
        }
    }
}

/// The extension providers, by name, and the client that reaches them.
#[derive(Debug)]
pub struct Outbound {
    providers: HashMap<String, Provider>,
    client: Client<HttpConnector, Full<Bytes>>,
    turn: AtomicUsize,
}

impl Outbound {
    /// A client for `providers`.
    pub fn new(providers: HashMap<String, Provider>) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Self {
            providers,
            client: Client::builder(TokioExecutor::new()).build(connector),
            turn: AtomicUsize::new(0),
        }
    }

    /// Sends `method` `path` with `headers` to an endpoint of `provider`; its answer, or
    /// why there is none.
    pub async fn check(
        &self,
        provider: &str,
        method: &str,
        path: &str,
        headers: &[Header],
    ) -> Result<ProviderResponse, String> {
        let target = self
            .providers
            .get(provider)
            .ok_or_else(|| format!("no extension provider {provider:?} is configured"))?;
        let _permit = target
            .in_flight
            .try_acquire()
            .map_err(|_| format!("{provider} has {MAX_IN_FLIGHT} checks in flight already"))?;
        let turn = self.turn.fetch_add(1, Ordering::Relaxed);
        let endpoint = target
            .endpoints
            .get(turn % target.endpoints.len().max(1))
            .ok_or_else(|| format!("{provider} has no endpoint"))?;
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("http://{endpoint}{path}"));
        // The authority is the client's (`host` among `headers`), as Envoy sends it.
        for header in headers {
            let name = header.name.to_ascii_lowercase();
            if name == "host" {
                request = request.header(http::header::HOST, &header.value);
            } else if !HOP_BY_HOP.contains(&name.as_str()) {
                request = request.header(&header.name, &header.value);
            }
        }
        let request = request
            .body(Full::default())
            .map_err(|e| format!("the check request is invalid: {e}"))?;
        tokio::time::timeout(target.timeout, self.exchange(request))
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "{provider} did not answer within {:?}",
                    target.timeout
                ))
            })
    }

    async fn exchange(
        &self,
        request: http::Request<Full<Bytes>>,
    ) -> Result<ProviderResponse, String> {
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| format!("the check failed: {e}"))?;
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, MAX_BODY)
            .collect()
            .await
            .map(http_body_util::Collected::to_bytes)
            .map_err(|e| format!("reading the answer: {e}"))?;
        let headers = parts
            .headers
            .iter()
            .filter(|(name, _)| !HOP_BY_HOP.contains(&name.as_str()))
            .map(|(name, value)| Header {
                name: name.to_string(),
                value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
            })
            .collect();
        Ok(ProviderResponse {
            status: parts.status.as_u16(),
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}
