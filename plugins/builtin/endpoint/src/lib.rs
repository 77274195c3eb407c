//! The built-in load balancer: Istio's `loadBalancer.simple` algorithms and
//! `consistentHash`, over the endpoints the host reports healthy.
//!
//! - `ROUND_ROBIN`: weighted, with the position in a host counter (`round-robin/<cluster
//!   name>`) so that it survives instance recycling and reloads and is shared by every
//!   instance.
//! - `RANDOM`, and `PASSTHROUGH` (there is no original destination here): weighted random.
//! - `LEAST_REQUEST` (Istio's default): two weighted random choices, keeping the one with
//!   the higher `weight / (in_flight + 1)`, as Envoy does.
//! - `consistentHash`: rendezvous hashing of the header, cookie, source IP or query
//!   parameter against each endpoint's stable id, so that an endpoint leaving only moves
//!   its own keys; a request without the key gets a weighted random endpoint.
//!
//! Weights of 0 count as 1.

use portcullis_sdk::endpoint::{
    self, Algorithm, Cluster, Endpoint, EndpointState, HashKey, PluginConfig,
};
use portcullis_sdk::{Rng, host, request};

/// FNV-1a, then a finaliser so that nearby keys spread.
fn hash(bytes: &[u8], seed: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

/// Picks among the healthy endpoints the one `ticket` lands on, by weight.
fn by_weight(endpoints: &[EndpointState], ticket: u64) -> Option<u32> {
    let total: u64 = endpoints
        .iter()
        .filter(|e| e.healthy)
        .map(|e| u64::from(e.weight.max(1)))
        .sum();
    if total == 0 {
        return None;
    }
    let mut ticket = ticket % total;
    for (i, e) in endpoints.iter().enumerate().filter(|(_, e)| e.healthy) {
        let w = u64::from(e.weight.max(1));
        if ticket < w {
            return Some(i as u32);
        }
        ticket -= w;
    }
    None
}

/// The value the request in progress has for `key`, if any.
fn hash_key(key: &HashKey) -> Option<String> {
    match key {
        HashKey::Header(name) => request::header(name),
        HashKey::SourceIp => Some(request::client_address()),
        HashKey::Cookie(name) => request::header("cookie").and_then(|cookies| {
            cookies.split(';').find_map(|c| {
                let (k, v) = c.trim().split_once('=')?;
                (k == name).then(|| v.to_string())
            })
        }),
        HashKey::QueryParameter(name) => {
            let path = request::path();
            let (_, query) = path.split_once('?')?;
            query.split('&').find_map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (k == name).then(|| v.to_string())
            })
        }
    }
}

/// Weighted rendezvous hashing: the healthy endpoint with the highest score for `key`.
fn rendezvous(endpoints: &[EndpointState], key: &str) -> Option<u32> {
    let score = |e: &EndpointState| {
        let h = hash(key.as_bytes(), u64::from(e.id)) as f64 / u64::MAX as f64;
        -f64::from(e.weight.max(1)) / h.max(f64::MIN_POSITIVE).ln()
    };
    endpoints
        .iter()
        .enumerate()
        .filter(|(_, e)| e.healthy)
        .max_by(|(_, e), (_, f)| score(e).total_cmp(&score(f)))
        .map(|(i, _)| i as u32)
}

/// Every cluster's settings, and the generator.
struct Builtin {
    clusters: Vec<Cluster>,
    rng: Rng,
}

impl Endpoint for Builtin {
    fn configure(clusters: Vec<Cluster>, _config: PluginConfig) -> Result<Self, String> {
        Ok(Builtin {
            clusters,
            rng: Rng::from_host(),
        })
    }

    fn pick_endpoint(&mut self, cluster: u32, endpoints: Vec<EndpointState>) -> Option<u32> {
        let cluster = self.clusters.get(cluster as usize)?;
        match &cluster.algorithm {
            Algorithm::RoundRobin => {
                let position = host::counter_add(&format!("round-robin/{}", cluster.name), 1);
                by_weight(&endpoints, position as u64)
            }
            Algorithm::Random | Algorithm::Passthrough => {
                by_weight(&endpoints, self.rng.next_u64())
            }
            Algorithm::LeastRequest => {
                let a = by_weight(&endpoints, self.rng.next_u64())?;
                let b = by_weight(&endpoints, self.rng.next_u64())?;
                let score = |i: u32| {
                    let e = &endpoints[i as usize];
                    f64::from(e.weight.max(1)) / (f64::from(e.in_flight) + 1.0)
                };
                Some(if score(b) > score(a) { b } else { a })
            }
            Algorithm::ConsistentHash(key) => match hash_key(key) {
                None => by_weight(&endpoints, self.rng.next_u64()),
                Some(key) => rendezvous(&endpoints, &key),
            },
        }
    }
}

endpoint::export!(Builtin);
