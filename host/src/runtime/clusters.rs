//! Upstream clusters at run time: resolved endpoints with their in-flight counts, and a
//! pooled HTTP client per cluster.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use http::uri::Authority;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::config::resolved::{Cluster, EndpointAddress, Resolution};
use crate::proxy::body::Body;
use crate::wasm::policies::EndpointState;

/// One endpoint's address and load.
#[derive(Debug)]
pub struct Endpoint {
    pub address: SocketAddr,
    /// `address` as a URI authority.
    pub authority: Authority,
    pub weight: u32,
    /// Requests in flight to it (until their response body ends).
    pub in_flight: Arc<AtomicU32>,
}

impl Endpoint {
    /// What the load balancer sees of it.
    pub fn state(&self) -> EndpointState {
        EndpointState {
            in_flight: self.in_flight.load(Ordering::Relaxed),
            weight: self.weight,
            healthy: true,
        }
    }
}

/// A cluster ready to forward to.
pub struct ClusterState {
    pub cluster: Cluster,
    pub endpoints: Vec<Endpoint>,
    /// One pooled client per worker, so that connections stay on their thread.
    clients: Vec<Client<HttpConnector, Body>>,
}

impl ClusterState {
    /// The client of worker `worker`.
    pub fn client(&self, worker: usize) -> &Client<HttpConnector, Body> {
        &self.clients[worker % self.clients.len()]
    }

    /// Resolves the cluster's endpoints and builds a client per worker.
    pub async fn new(cluster: Cluster, workers: usize) -> Self {
        let mut endpoints = Vec::new();
        for endpoint in &cluster.endpoints {
            let addresses = match &endpoint.address {
                EndpointAddress::Ip(ip) => vec![SocketAddr::new(*ip, endpoint.port)],
                EndpointAddress::Dns(name) => {
                    match tokio::net::lookup_host((name.as_str(), endpoint.port)).await {
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
                    }
                }
                EndpointAddress::Unix(path) => {
                    tracing::warn!(cluster = %cluster.name, path = %path.display(), "unix socket endpoints are not supported yet");
                    Vec::new()
                }
            };
            endpoints.extend(addresses.into_iter().map(|address| {
                Endpoint {
                    address,
                    authority: Authority::try_from(address.to_string())
                        .expect("a socket address is an authority"),
                    weight: endpoint.weight,
                    in_flight: Arc::default(),
                }
            }));
        }
        let pool = &cluster.policy.connection_pool;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(pool.connect_timeout));
        connector.enforce_http(true);
        let clients = (0..workers.max(1))
            .map(|_| {
                Client::builder(TokioExecutor::new())
                    .pool_idle_timeout(pool.http_idle_timeout)
                    .http2_only(cluster.protocol.is_http2())
                    .build(connector.clone())
            })
            .collect();
        Self {
            cluster,
            endpoints,
            clients,
        }
    }
}
