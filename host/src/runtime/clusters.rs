//! Upstream clusters at run time: resolved endpoints with their load, pools and ejection
//! state, and the cluster-wide counters the circuit breaker reads.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;

use http::uri::Authority;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;

use crate::config::resolved::{Cluster, ConnectionPool, EndpointAddress, Resolution, UNLIMITED};
use crate::proxy::body::Body;
use crate::upstream::{ClusterLoad, EndpointPool};
use crate::wasm::policies::EndpointState;

/// Milliseconds since the process started: the clock of ejections.
pub fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// One endpoint's address, load, connections and health.
pub struct Endpoint {
    pub address: SocketAddr,
    /// `address` as a URI authority.
    pub authority: Authority,
    /// `address` as text, the key outlier detection counts under.
    pub name: String,
    pub weight: u32,
    /// Requests in flight to it (until their response body ends).
    pub in_flight: Arc<AtomicU32>,
    /// HTTP/1.1 connections to it.
    pub pool: Arc<EndpointPool>,
    /// Ejected by outlier detection until this time ([`now_ms`]).
    pub ejected_until: AtomicU64,
    /// Its last result reported to outlier detection was a failure.
    pub failing: AtomicBool,
}

impl Endpoint {
    /// Whether outlier detection has it ejected now.
    pub fn ejected(&self, now: u64) -> bool {
        self.ejected_until.load(Ordering::Relaxed) > now
    }

    /// What the load balancer sees of it.
    pub fn state(&self, now: u64) -> EndpointState {
        EndpointState {
            in_flight: self.in_flight.load(Ordering::Relaxed),
            weight: self.weight,
            healthy: !self.ejected(now),
        }
    }
}

/// The endpoints of a cluster at one moment; DNS refreshes replace the whole set.
pub type Endpoints = Vec<Arc<Endpoint>>;

/// How often DNS endpoints are resolved again (Envoy's default `dns_refresh_rate`).
const DNS_REFRESH: Duration = Duration::from_secs(5);

/// A cluster ready to forward to.
pub struct ClusterState {
    pub cluster: Cluster,
    endpoints: Arc<ArcSwap<Endpoints>>,
    pub load: Arc<ClusterLoad>,
    /// Whether any circuit-breaker limit is set (else the breaker is not consulted).
    pub limited: bool,
    /// HTTP/2 clusters multiplex on hyper's pooled client, one per worker.
    h2_clients: Vec<Client<HttpConnector, Body>>,
}

impl ClusterState {
    /// The endpoints now.
    pub fn endpoints(&self) -> Arc<Endpoints> {
        self.endpoints.load_full()
    }

    /// The HTTP/2 client of `worker`, for HTTP2 and GRPC clusters.
    pub fn h2_client(&self, worker: usize) -> Option<&Client<HttpConnector, Body>> {
        (!self.h2_clients.is_empty()).then(|| &self.h2_clients[worker % self.h2_clients.len()])
    }

    /// Whether outlier detection applies.
    pub fn detects_outliers(&self) -> bool {
        self.cluster.policy.outlier_detection.is_some()
    }

    /// Resolves the cluster's endpoints and prepares their pools; `load` is the cluster's
    /// counters, shared with earlier generations.
    pub async fn new(cluster: Cluster, load: Arc<ClusterLoad>, workers: usize) -> Self {
        let settings = cluster.policy.connection_pool.clone();
        let endpoints = Arc::new(ArcSwap::from_pointee(
            resolve_all(&cluster, &[], &load).await,
        ));
        if matches!(
            cluster.resolution,
            Resolution::Dns | Resolution::DnsRoundRobin
        ) {
            tokio::spawn(refresh(
                cluster.clone(),
                Arc::downgrade(&endpoints),
                load.clone(),
            ));
        }
        let h2_clients = if cluster.protocol.is_http2() {
            let mut connector = HttpConnector::new();
            connector.set_nodelay(true);
            connector.set_connect_timeout(Some(settings.connect_timeout));
            (0..workers.max(1))
                .map(|_| {
                    Client::builder(TokioExecutor::new())
                        .pool_idle_timeout(settings.idle_timeout())
                        .http2_only(true)
                        // maxConcurrentStreams: streams opened per connection before the
                        // upstream's own SETTINGS say otherwise.
                        .http2_initial_max_send_streams(settings.max_concurrent_streams as usize)
                        .build(connector.clone())
                })
                .collect()
        } else {
            Vec::new()
        };
        Self {
            limited: limited(&settings),
            cluster,
            endpoints,
            load,
            h2_clients,
        }
    }
}

fn limited(pool: &ConnectionPool) -> bool {
    [
        pool.max_connections,
        pool.http1_max_pending_requests,
        pool.http2_max_requests,
        pool.max_retries,
    ]
    .iter()
    .any(|limit| *limit != UNLIMITED)
}

/// Resolves every endpoint of `cluster`, keeping the `current` endpoint (its pool, load and
/// health) for every address that stays.
async fn resolve_all(
    cluster: &Cluster,
    current: &[Arc<Endpoint>],
    load: &Arc<ClusterLoad>,
) -> Endpoints {
    let mut endpoints = Vec::new();
    for endpoint in &cluster.endpoints {
        for address in resolve(cluster, &endpoint.address, endpoint.port).await {
            let kept = current
                .iter()
                .find(|e| e.address == address && e.weight == endpoint.weight);
            endpoints.push(kept.cloned().unwrap_or_else(|| {
                Arc::new(Endpoint {
                    address,
                    authority: Authority::try_from(address.to_string())
                        .expect("a socket address is an authority"),
                    name: address.to_string(),
                    weight: endpoint.weight,
                    in_flight: Arc::default(),
                    pool: Arc::new(EndpointPool::new(
                        address,
                        cluster.policy.connection_pool.clone(),
                        load.clone(),
                    )),
                    ejected_until: AtomicU64::new(0),
                    failing: AtomicBool::new(false),
                })
            }));
        }
    }
    endpoints
}

/// Resolves a DNS cluster again every [`DNS_REFRESH`] for as long as its generation lives.
/// A lookup that finds nothing keeps the last answer.
async fn refresh(cluster: Cluster, endpoints: Weak<ArcSwap<Endpoints>>, load: Arc<ClusterLoad>) {
    loop {
        tokio::time::sleep(DNS_REFRESH).await;
        let Some(current) = endpoints.upgrade() else {
            return;
        };
        let before = current.load_full();
        let fresh = resolve_all(&cluster, &before, &load).await;
        let changed = fresh.len() != before.len()
            || fresh
                .iter()
                .zip(before.iter())
                .any(|(a, b)| !Arc::ptr_eq(a, b));
        if fresh.is_empty() {
            tracing::warn!(cluster = %cluster.name, "DNS found no address; keeping the last answer");
        } else if changed {
            tracing::info!(cluster = %cluster.name, endpoints = fresh.len(), "DNS answer changed");
            current.store(Arc::new(fresh));
        }
    }
}

/// The socket addresses of one endpoint.
async fn resolve(cluster: &Cluster, address: &EndpointAddress, port: u16) -> Vec<SocketAddr> {
    match address {
        EndpointAddress::Ip(ip) => vec![SocketAddr::new(*ip, port)],
        EndpointAddress::Dns(name) => match tokio::net::lookup_host((name.as_str(), port)).await {
            Ok(found) => {
                let found: Vec<SocketAddr> = found.collect();
                match cluster.resolution {
                    Resolution::DnsRoundRobin => found.into_iter().take(1).collect(),
                    _ => found,
                }
            }
            Err(e) => {
                tracing::warn!(cluster = %cluster.name, host = %name, "DNS lookup failed: {e}");
                Vec::new()
            }
        },
        EndpointAddress::Unix(path) => {
            tracing::warn!(cluster = %cluster.name, path = %path.display(), "unix socket endpoints are not supported yet");
            Vec::new()
        }
    }
}
