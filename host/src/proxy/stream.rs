//! Connections forwarded as bytes: TLS PASSTHROUGH servers (routed by the SNI of the
//! ClientHello, which is replayed upstream) and TCP servers. The route, its destination,
//! the endpoint and the connection limit are chosen by the same policy components as a
//! request's, asked about a request standing for the connection (Host: the SNI); then
//! bytes are copied both ways, a half-close passed on, until both sides close or the
//! connection idles out.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::idle;
use crate::config::resolved::{ConnectionPool, ListenerId, RouteAction};
use crate::runtime::Generation;
use crate::runtime::generation::RouteEntry;
use crate::upstream::load::Counted;
use crate::upstream::pool::keep_alive;
use crate::wasm::policies::Admission;
use crate::wasm::{PolicyError, RequestView};
use crate::wire::counting::Counting;

/// Why a forwarded connection was closed without reaching an upstream, or ended badly;
/// each carries Envoy's response flag.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// No route takes the connection (NR).
    #[error("no route for SNI {0:?}")]
    NoRoute(Option<String>),
    /// The destination has no healthy endpoint (UH).
    #[error("no healthy upstream")]
    NoHealthyUpstream,
    /// The breaker refused a connection (`maxConnections`) (UO).
    #[error("upstream connection limit reached")]
    Overflow,
    /// The upstream could not be reached (UF).
    #[error("connecting to {0}: {1}")]
    Connect(SocketAddr, std::io::Error),
    /// A policy failed and its fail strategy closes the connection.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// Copying failed.
    #[error("forwarding: {0}")]
    Io(#[from] std::io::Error),
}

impl StreamError {
    /// Envoy's response flag for the error, when it has one.
    pub fn flag(&self) -> Option<&'static str> {
        match self {
            Self::NoRoute(_) => Some("NR"),
            Self::NoHealthyUpstream => Some("UH"),
            Self::Overflow => Some("UO"),
            Self::Connect(..) => Some("UF"),
            Self::Policy(_) | Self::Io(_) => None,
        }
    }
}

/// Where a connection came in, and what was read of it already.
pub struct Accepted {
    /// The listener it came in on.
    pub listener: ListenerId,
    /// The route table of its server.
    pub route_table: usize,
    /// The gateway port.
    pub port: u16,
    /// The client (or the one a PROXY header names).
    pub client: SocketAddr,
    /// The ClientHello's server name (PASSTHROUGH); `None` for TCP.
    pub sni: Option<String>,
    /// Bytes read from the client to route it (the ClientHello), sent upstream first.
    pub seen: Bytes,
    /// Bytes moved on the client connection, and how long it may move none.
    pub idle: (Arc<AtomicU64>, Duration),
}

/// What a forwarded connection did, as far as it got: the route, the upstream, and
/// bytes each way.
#[derive(Debug, Default)]
pub struct Forwarded {
    /// The route that took it.
    pub route: Option<u32>,
    /// The endpoint connected to (or tried).
    pub upstream: Option<SocketAddr>,
    /// Bytes from the client.
    pub received: u64,
    /// Bytes to the client.
    pub sent: u64,
}

/// Routes `client` and forwards it until both sides are done, noting in `done` how far
/// it got.
pub async fn forward<S>(
    mut client: S,
    accepted: Accepted,
    generation: &Generation,
    done: &mut Forwarded,
) -> Result<(), StreamError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let view = Arc::new(view(&accepted));
    let entry = route(generation, &accepted, &view).await?;
    done.route = Some(entry.id);
    let cluster = destination(generation, entry, &view).await?;
    let state = &generation.clusters[cluster];
    let load = state.load.reserve_connection(false);
    let _open = Counted::adopt(&state.load.active_connections);
    if state.limited && generation.admit_connection(cluster, &view, load).await? != Admission::Admit
    {
        state.load.overflows.fetch_add(1, Ordering::Relaxed);
        return Err(StreamError::Overflow);
    }
    let address = endpoint(generation, cluster, &view).await?;
    done.upstream = Some(address);
    let pool = &state.cluster.policy.connection_pool;
    let mut upstream = connect(address, pool).await?;
    upstream.write_all(&accepted.seen).await?;
    done.received = accepted.seen.len() as u64;
    let (moved, idle_timeout) = accepted.idle;
    let idle_timeout = idle_timeout.min(pool.tcp_idle_timeout);
    let lifetime = pool.max_connection_duration.unwrap_or(Duration::MAX);
    let mut client = Counting::new(&mut client);
    let copied = tokio::select! {
        copied = tokio::io::copy_bidirectional(&mut client, &mut upstream) => copied.map(drop),
        () = idle::idle(moved, idle_timeout) => Ok(()),
        () = tokio::time::sleep(lifetime) => Ok(()),
    };
    // Counted whether the copy ended, failed or was cut short.
    done.received += client.read;
    done.sent = client.written;
    Ok(copied?)
}

/// Connects to `address` within the pool's `connectTimeout`, with its TCP keep-alive.
async fn connect(address: SocketAddr, pool: &ConnectionPool) -> Result<TcpStream, StreamError> {
    match tokio::time::timeout(pool.connect_timeout, TcpStream::connect(address)).await {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            if let Some(keepalive) = &pool.tcp_keepalive {
                keep_alive(&stream, keepalive);
            }
            Ok(stream)
        }
        Ok(Err(e)) => Err(StreamError::Connect(address, e)),
        Err(_) => {
            let timed_out = std::io::Error::from(std::io::ErrorKind::TimedOut);
            Err(StreamError::Connect(address, timed_out))
        }
    }
}

/// The request the policies are asked about for a connection: `GET /` with the SNI as
/// its Host, on the gateway port, from the client.
fn view(accepted: &Accepted) -> RequestView {
    let mut request = http::Request::new(());
    if let Some(sni) = accepted
        .sni
        .as_deref()
        .and_then(|s| http::HeaderValue::from_str(s).ok())
    {
        request.headers_mut().insert(http::header::HOST, sni);
    }
    RequestView {
        parts: request.into_parts().0,
        scheme: if accepted.sni.is_some() { "tls" } else { "tcp" },
        port: accepted.port,
        client: accepted.client,
        tls: None,
        identity: None,
    }
}

/// The route of the connection: its virtual host by SNI (TCP: any), then the match policy.
async fn route<'g>(
    generation: &'g Generation,
    accepted: &Accepted,
    view: &Arc<RequestView>,
) -> Result<&'g RouteEntry, StreamError> {
    let no_route = || StreamError::NoRoute(accepted.sni.clone());
    let table = generation
        .listener_index(&accepted.listener)
        .and_then(|index| generation.tables.get(index))
        .and_then(|tables| tables.get(accepted.route_table))
        .ok_or_else(no_route)?;
    let host = accepted.sni.as_deref().unwrap_or("*");
    let vhost = table
        .domains
        .find(host)
        .map(|i| &table.virtual_hosts[i])
        .ok_or_else(no_route)?;
    let selected = generation
        .select_route(vhost, view)
        .await?
        .value
        .ok_or_else(no_route)?;
    vhost
        .routes
        .get(selected.route as usize)
        .ok_or_else(no_route)
}

/// The cluster of the destination the destination policy picks among the route's.
async fn destination(
    generation: &Generation,
    entry: &RouteEntry,
    view: &Arc<RequestView>,
) -> Result<usize, StreamError> {
    let RouteAction::Forward(destinations) = &entry.route.action else {
        return Err(StreamError::NoHealthyUpstream);
    };
    let picked = match destinations.len() {
        1 => 0,
        _ => generation.pick_destination(entry, view).await?.value as usize,
    };
    entry
        .clusters
        .get(picked)
        .copied()
        .ok_or(StreamError::NoHealthyUpstream)
}

/// The address of the endpoint the balancer picks among the healthy ones.
async fn endpoint(
    generation: &Generation,
    cluster: usize,
    view: &Arc<RequestView>,
) -> Result<SocketAddr, StreamError> {
    let (endpoints, states) = generation.clusters[cluster].endpoint_states();
    let picked = match states.as_slice() {
        [] => None,
        [only] => only.healthy.then_some(0),
        _ => generation.pick_endpoint(cluster, view, &states).await?,
    };
    picked
        .and_then(|i| endpoints.get(i as usize))
        .map(|e| e.address)
        .ok_or(StreamError::NoHealthyUpstream)
}
