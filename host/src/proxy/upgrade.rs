//! Upgraded connections, proxied as Envoy does: an HTTP/1.1 `Upgrade` (WebSocket or any
//! other protocol token) or an HTTP/2 extended CONNECT (RFC 8441) goes upstream as an
//! HTTP/1.1 upgrade; once the upstream switches protocols, bytes flow both ways until
//! each side has closed its half, or the tunnel moves nothing for the idle timeout.

use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;
use http::{Method, Response, StatusCode};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;
use tokio_util::task::TaskTracker;

use super::headers;
use super::idle::{self, Active};
use crate::upstream::lease::UpstreamLease;
use crate::wire::body::{self, Body};
use crate::wire::tunnel::{Carried, TunnelEnd};

static SEC_WEBSOCKET_KEY: HeaderName = HeaderName::from_static("sec-websocket-key");
static SEC_WEBSOCKET_ACCEPT: HeaderName = HeaderName::from_static("sec-websocket-accept");

/// A client's request to switch protocols.
pub struct Requested {
    /// The protocol asked for (`websocket`, say).
    protocol: HeaderValue,
    /// Asked by HTTP/2 extended CONNECT, which is answered 200 rather than 101.
    extended_connect: bool,
    /// Resolves to the client's connection once the answer has been sent.
    client: OnUpgrade,
}

/// Where tunnels run, so that shutdown can wait for them; and how long one may idle.
#[derive(Debug, Clone)]
pub struct Tunnels {
    /// Tracks tunnels so a drain can wait for them.
    pub tracker: TaskTracker,
    /// A tunnel idle this long is closed.
    pub idle_timeout: Duration,
}

impl Requested {
    /// The upgrade `parts` asks for, if any, with hyper's handle on the client side.
    /// `h2c` is not proxied: it is hop-by-hop and dropped, as Envoy drops it.
    pub fn of(parts: &mut Parts) -> Option<Self> {
        if parts.method == Method::CONNECT {
            let protocol = parts.extensions.get::<hyper::ext::Protocol>()?;
            let protocol = HeaderValue::from_str(protocol.as_str()).ok()?;
            let client = parts.extensions.remove::<OnUpgrade>()?;
            return Some(Self {
                protocol,
                extended_connect: true,
                client,
            });
        }
        // Most requests have no Upgrade header: they stop here.
        let protocol = parts.headers.get(header::UPGRADE)?.clone();
        let asks = parts
            .headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
        if !asks || protocol.as_bytes().eq_ignore_ascii_case(b"h2c") {
            return None;
        }
        let client = parts.extensions.remove::<OnUpgrade>()?;
        Some(Self {
            protocol,
            extended_connect: false,
            client,
        })
    }

    /// Puts the upgrade on the head going upstream (forwarding strips the hop-by-hop
    /// headers that carry it): an HTTP/1.1 GET with `Connection: upgrade` and `Upgrade`.
    /// A WebSocket from HTTP/2 gets the `Sec-WebSocket-Key` HTTP/1.1 requires.
    pub fn restore(&self, head: &mut Parts) {
        head.method = Method::GET;
        let headers = &mut head.headers;
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, self.protocol.clone());
        let websocket = self.protocol.as_bytes().eq_ignore_ascii_case(b"websocket");
        if self.extended_connect && websocket && !headers.contains_key(&SEC_WEBSOCKET_KEY) {
            let key = base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                rand::random::<[u8; 16]>(),
            );
            if let Ok(key) = HeaderValue::from_str(&key) {
                headers.insert(SEC_WEBSOCKET_KEY.clone(), key);
            }
        }
    }

    /// The answer to the client for the upstream's 101, and the tunnel between the two
    /// started on `tunnels`. The lease (the cluster's count of active requests) is held
    /// until the tunnel closes; its connection never goes back to the pool.
    pub fn splice(
        self,
        mut upstream: Response<Incoming>,
        lease: UpstreamLease,
        tunnels: &Tunnels,
    ) -> Response<Body> {
        let upstream_side = hyper::upgrade::on(&mut upstream);
        let (parts, _) = upstream.into_parts();
        let mut answer = Response::new(body::empty());
        *answer.headers_mut() = answer_headers(parts.headers, &self);
        *answer.status_mut() = if self.extended_connect {
            StatusCode::OK
        } else {
            StatusCode::SWITCHING_PROTOCOLS
        };
        let (done, end) = oneshot::channel();
        let idle_timeout = tunnels.idle_timeout;
        tunnels.tracker.spawn(async move {
            let carried = tunnel(self.client, upstream_side, idle_timeout).await;
            let _ = done.send(carried);
            drop(lease);
        });
        answer.extensions_mut().insert(TunnelEnd::new(end));
        answer
    }
}

/// The upstream's 101 headers as the client gets them.
fn answer_headers(mut from_upstream: HeaderMap, requested: &Requested) -> HeaderMap {
    let protocol = from_upstream
        .get(header::UPGRADE)
        .cloned()
        .unwrap_or_else(|| requested.protocol.clone());
    headers::remove_hop_by_hop(&mut from_upstream);
    if requested.extended_connect {
        from_upstream.remove(&SEC_WEBSOCKET_ACCEPT);
    } else {
        from_upstream.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        from_upstream.insert(header::UPGRADE, protocol);
    }
    from_upstream
}

/// Copies bytes both ways until both halves have closed, or nothing has moved for
/// `idle_timeout`.
async fn tunnel(client: OnUpgrade, upstream: OnUpgrade, idle_timeout: Duration) -> Carried {
    let (client, upstream) = match tokio::try_join!(client, upstream) {
        Ok(sides) => sides,
        Err(e) => {
            tracing::debug!("upgrade failed: {e}");
            return Carried::default();
        }
    };
    let (mut client, moved) = Active::new(TokioIo::new(client));
    let mut upstream = TokioIo::new(upstream);
    let copy = tokio::io::copy_bidirectional(&mut client, &mut upstream);
    let carried = tokio::select! {
        copied = copy => copied.unwrap_or_default(),
        () = idle::idle(moved, idle_timeout) => {
            tracing::debug!("upgraded connection idle for {idle_timeout:?}; closed");
            (0, 0)
        }
    };
    Carried {
        received: carried.0,
        sent: carried.1,
    }
}
