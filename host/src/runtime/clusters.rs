//! Upstream clusters at run time: resolved endpoints with their load, pools and ejection
//! state, and the cluster-wide counters the circuit breaker reads.

use super::chain::ClusterChain;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;

use http::uri::Authority;
use tokio::time::Instant;

use super::destination::{Destination, DestinationId};
use crate::config::resolved::{Cluster, ConnectionPool, EndpointAddress, Resolution, UNLIMITED};
use crate::upstream::dns::Dns;
use crate::upstream::h2::H2Client;
use crate::upstream::load::EndpointHealth;
use crate::upstream::tls::{Origination, OriginationError};
use crate::upstream::{ClusterLoad, EndpointPool};
use crate::wasm::endpoints;
use crate::wasm::policies::EndpointState;

/// Milliseconds since the process started: the clock of ejections.
pub fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// One endpoint's address, load, connections and health.
pub struct LiveEndpoint {
    /// Where to connect.
    pub address: SocketAddr,
    /// `address` as a URI authority.
    pub authority: Authority,
    /// `address` as text, for logs.
    pub name: String,
    /// Its identity as policies see it ([`crate::wasm::endpoints`]).
    pub id: u32,
    /// Its load-balancing weight.
    pub weight: u32,
    /// The index of the configured endpoint it was resolved from.
    source: usize,
    /// The service and workload labels its requests are counted under.
    pub destination: DestinationId,
    /// Requests in flight to it (until their response body ends).
    pub in_flight: Arc<AtomicU32>,
    /// HTTP/1.1 connections to it.
    pub pool: Arc<EndpointPool>,
    /// Outlier detection's view of it ([`now_ms`] is its clock), shared with the
    /// endpoint at the same address in other generations.
    pub health: Arc<EndpointHealth>,
}

impl LiveEndpoint {
    /// Whether outlier detection has it ejected now.
    pub fn ejected(&self, now: u64) -> bool {
        self.health.ejected_until.load(Ordering::Relaxed) > now
    }

    /// What the load balancer sees of it.
    pub fn state(&self, now: u64) -> EndpointState {
        EndpointState {
            id: self.id,
            weight: self.weight,
            in_flight: self.in_flight.load(Ordering::Relaxed),
            healthy: !self.ejected(now),
            latency_us: self.health.latency_us(),
        }
    }
}

/// The endpoints of a cluster at one moment; DNS refreshes replace the whole set.
pub type Endpoints = Vec<Arc<LiveEndpoint>>;

/// The shortest wait between two resolutions of a DNS cluster, whatever the TTL.
const MIN_REFRESH: Duration = Duration::from_secs(1);

/// The longest wait between two resolutions, whatever the TTL.
const MAX_REFRESH: Duration = Duration::from_secs(3600);

/// How soon a failed DNS lookup is tried again (Envoy's `dns_refresh_rate` default).
const FAILED_REFRESH: Duration = Duration::from_secs(5);

/// A cluster ready to forward to.
pub struct ClusterState {
    /// The cluster as configured.
    pub cluster: Cluster,
    /// The service its requests are counted under until an endpoint is picked.
    pub destination: DestinationId,
    endpoints: Arc<ArcSwap<Endpoints>>,
    /// Live request and connection counts.
    pub load: Arc<ClusterLoad>,
    /// Whether any circuit-breaker limit is set or a plugin serves the breaker phase (else
    /// the breaker is not consulted).
    pub limited: bool,
    /// The plugins that replace the cluster's built-in policies.
    pub chain: ClusterChain,
    /// HTTP/2 clusters multiplex on hyper's pooled client, one per worker.
    h2_clients: Vec<H2Client>,
}

impl ClusterState {
    /// The endpoints now.
    pub fn endpoints(&self) -> Arc<Endpoints> {
        self.endpoints.load_full()
    }

    /// The endpoints now, with their states for the balancer. Below Envoy's panic
    /// threshold (Istio's `minHealthPercent`, 0 by default) ejections are ignored and
    /// every endpoint takes traffic.
    pub fn endpoint_states(&self) -> (Arc<Endpoints>, Vec<EndpointState>) {
        let endpoints = self.endpoints();
        let now = now_ms();
        let mut states: Vec<_> = endpoints.iter().map(|e| e.state(now)).collect();
        let outlier = self.cluster.policy.outlier_detection.as_ref();
        let min_health = outlier.map_or(0, |o| o.min_health_percent) as usize;
        let healthy = states.iter().filter(|s| s.healthy).count();
        if healthy * 100 < min_health * states.len() {
            states.iter_mut().for_each(|s| s.healthy = true);
        }
        (endpoints, states)
    }

    /// The HTTP/2 client of `worker`, for HTTP2 and GRPC clusters.
    /// With `useClientProtocol`, only for requests that came over HTTP/2.
    pub fn h2_client(&self, worker: usize, client: http::Version) -> Option<&H2Client> {
        if self.h2_clients.is_empty()
            || self.cluster.policy.connection_pool.use_client_protocol
                && client != http::Version::HTTP_2
        {
            return None;
        }
        Some(&self.h2_clients[worker % self.h2_clients.len()])
    }

    /// Whether outlier detection applies.
    pub fn detects_outliers(&self) -> bool {
        self.cluster.policy.outlier_detection.is_some()
    }

    /// Sets up the cluster's TLS, resolves its endpoints and prepares their pools; `chain`
    /// names the plugins replacing its built-ins, `load` is the cluster's counters, shared
    /// with earlier generations.
    pub async fn new(
        cluster: Cluster,
        chain: ClusterChain,
        load: Arc<ClusterLoad>,
        workers: usize,
        dns: Arc<Dns>,
    ) -> Result<Self, OriginationError> {
        let settings = cluster.policy.connection_pool.clone();
        // HTTP/2 is spoken to HTTP2/GRPC ports, to any with `h2UpgradePolicy: UPGRADE`, and
        // to HTTP/2 clients' requests with `useClientProtocol`.
        let http2 =
            cluster.protocol.is_http2() || settings.h2_upgrade || settings.use_client_protocol;
        // hyper-rustls's HTTP/2 connector offers ALPN h2 itself.
        let alpn: &[&[u8]] = if http2 { &[] } else { &[b"http/1.1"] };
        let tls = Origination::new(&cluster.policy.tls, alpn)?.map(Arc::new);
        let h2_clients = match http2 {
            true => {
                let tls = tls.as_deref().map(|t| {
                    let name = t
                        .server_name(&cluster.host)
                        .ok_or_else(|| OriginationError::Sni(cluster.host.clone()))?;
                    Ok::<_, OriginationError>((t, name))
                });
                let tls = tls.transpose()?;
                (0..workers.max(1))
                    .map(|_| H2Client::new(&settings, tls.clone()))
                    .collect()
            }
            false => Vec::new(),
        };
        let resolver = Resolver {
            cluster: cluster.clone(),
            load: load.clone(),
            tls,
            dns,
        };
        let (resolved, next) = resolver.resolve_all(&[]).await;
        let endpoints = Arc::new(ArcSwap::from_pointee(resolved));
        if matches!(
            cluster.resolution,
            Resolution::Dns | Resolution::DnsRoundRobin
        ) {
            tokio::spawn(resolver.refresh(Arc::downgrade(&endpoints), next));
        }
        Ok(Self {
            // A breaker plugin is asked whatever the Istio limits say.
            limited: limited(&settings) || chain.breaker.is_some(),
            destination: Destination::new(&cluster.host, &cluster.namespace, None).intern(),
            cluster,
            endpoints,
            load,
            h2_clients,
            chain,
        })
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

/// What resolving a cluster's endpoints needs.
struct Resolver {
    cluster: Cluster,
    load: Arc<ClusterLoad>,
    tls: Option<Arc<Origination>>,
    dns: Arc<Dns>,
}

impl Resolver {
    /// Resolves every endpoint of the cluster, keeping the `current` endpoint (its pool,
    /// load and health) for every address that stays, and the last answer of a name whose
    /// lookup fails. Also says when to resolve again.
    async fn resolve_all(&self, current: &[Arc<LiveEndpoint>]) -> (Endpoints, Instant) {
        let mut endpoints = Vec::new();
        let mut next = Instant::now() + MAX_REFRESH;
        for (source, endpoint) in self.cluster.endpoints.iter().enumerate() {
            let addresses = match &endpoint.address {
                EndpointAddress::Ip(ip) => vec![*ip],
                EndpointAddress::Dns(name) => match self.dns.lookup(name).await {
                    Ok(answer) => {
                        next = next.min(answer.valid_until);
                        match self.cluster.resolution {
                            Resolution::DnsRoundRobin => {
                                answer.addresses.into_iter().take(1).collect()
                            }
                            _ => answer.addresses,
                        }
                    }
                    Err(e) => {
                        tracing::warn!(cluster = %self.cluster.name, host = %name, "DNS lookup failed, keeping the last answer: {e}");
                        next = next.min(Instant::now() + FAILED_REFRESH);
                        endpoints.extend(current.iter().filter(|e| e.source == source).cloned());
                        continue;
                    }
                },
                EndpointAddress::Unix(path) => {
                    tracing::warn!(cluster = %self.cluster.name, path = %path.display(), "unix socket endpoints are not supported yet");
                    Vec::new()
                }
            };
            for ip in addresses {
                let address = SocketAddr::new(ip, endpoint.port);
                let kept = current.iter().find(|e| {
                    e.address == address && e.weight == endpoint.weight && e.source == source
                });
                endpoints.push(kept.cloned().unwrap_or_else(|| {
                    Arc::new(LiveEndpoint {
                        address,
                        authority: Authority::try_from(address.to_string())
                            .expect("a socket address is an authority"),
                        name: address.to_string(),
                        id: endpoints::id(address),
                        weight: endpoint.weight,
                        source,
                        destination: Destination::new(
                            &self.cluster.host,
                            &self.cluster.namespace,
                            Some(&endpoint.labels),
                        )
                        .intern(),
                        in_flight: Arc::default(),
                        pool: Arc::new(EndpointPool::new(
                            address,
                            self.cluster.policy.connection_pool.clone(),
                            self.load.clone(),
                            self.tls.clone(),
                        )),
                        health: self.load.health.get(&address),
                    })
                }));
            }
        }
        (endpoints, next)
    }

    /// Resolves a DNS cluster again when its answers expire (Envoy's `respect_dns_ttl`),
    /// for as long as its generation lives.
    async fn refresh(self, endpoints: Weak<ArcSwap<Endpoints>>, mut next: Instant) {
        loop {
            tokio::time::sleep_until(next.max(Instant::now() + MIN_REFRESH)).await;
            let Some(current) = endpoints.upgrade() else {
                return;
            };
            let before = current.load_full();
            let (fresh, refresh_at) = self.resolve_all(&before).await;
            next = refresh_at;
            let changed = fresh.len() != before.len()
                || fresh
                    .iter()
                    .zip(before.iter())
                    .any(|(a, b)| !Arc::ptr_eq(a, b));
            if changed {
                tracing::info!(cluster = %self.cluster.name, endpoints = fresh.len(), "DNS answer changed");
                current.store(Arc::new(fresh));
            }
        }
    }
}
