//! The built-in load balancer: Istio's `loadBalancer.simple` algorithms and
//! `consistentHash`, over the endpoints the host reports healthy.
//!
//! - `ROUND_ROBIN`: weighted, with the position in a host counter so that it survives
//!   instance recycling and reloads.
//! - `RANDOM`: weighted random.
//! - `LEAST_REQUEST` (Istio's default): two random choices, keeping the one with the
//!   higher `weight / (in_flight + 1)`, as Envoy does.
//! - `consistentHash`: rendezvous hashing of the header, cookie, source IP or query
//!   parameter, so that an endpoint leaving only moves its own keys.

use std::cell::RefCell;

use portcullis_sdk::{Endpoint, EndpointState, Rng, endpoint, host, request};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
enum HashKey {
    Header(String),
    Cookie { name: String },
    SourceIp,
    QueryParameter(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum Algorithm {
    RoundRobin,
    Random,
    LeastRequest,
    Passthrough,
    ConsistentHash(HashKey),
}

#[derive(Deserialize)]
struct Cluster {
    name: String,
    load_balancer: Algorithm,
}

#[derive(Deserialize)]
struct Config {
    clusters: Vec<Cluster>,
}

struct State {
    clusters: Vec<(String, Algorithm)>,
    rng: Rng,
}

thread_local! {
    static STATE: RefCell<State> = const { RefCell::new(State { clusters: Vec::new(), rng: Rng::new(1) }) };
}

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

fn hash_key(key: &HashKey) -> Option<String> {
    match key {
        HashKey::Header(name) => request::header(name),
        HashKey::SourceIp => Some(request::client_address()),
        HashKey::Cookie { name } => request::header("cookie").and_then(|cookies| {
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

struct Builtin;

impl Endpoint for Builtin {
    fn configure(config: String) -> Result<(), String> {
        let config: Config = serde_json::from_str(&config).map_err(|e| e.to_string())?;
        let clusters = config
            .clusters
            .into_iter()
            .map(|c| (c.name, c.load_balancer))
            .collect();
        STATE.with(|s| {
            *s.borrow_mut() = State {
                clusters,
                rng: Rng::from_host(),
            }
        });
        Ok(())
    }

    fn pick_endpoint(cluster: u32, endpoints: Vec<EndpointState>) -> Option<u32> {
        STATE.with(|s| {
            let s = &mut *s.borrow_mut();
            let (name, algorithm) = s.clusters.get(cluster as usize)?;
            match algorithm {
                Algorithm::RoundRobin => {
                    let position = host::counter_add(&format!("round-robin/{name}"), 1);
                    by_weight(&endpoints, position as u64)
                }
                Algorithm::Random | Algorithm::Passthrough => {
                    by_weight(&endpoints, s.rng.next_u64())
                }
                Algorithm::LeastRequest => {
                    let a = by_weight(&endpoints, s.rng.next_u64())?;
                    let b = by_weight(&endpoints, s.rng.next_u64())?;
                    let score = |i: u32| {
                        let e = &endpoints[i as usize];
                        f64::from(e.weight.max(1)) / (f64::from(e.in_flight) + 1.0)
                    };
                    Some(if score(b) > score(a) { b } else { a })
                }
                Algorithm::ConsistentHash(key) => match hash_key(key) {
                    None => by_weight(&endpoints, s.rng.next_u64()),
                    Some(key) => endpoints
                        .iter()
                        .enumerate()
                        .filter(|(_, e)| e.healthy)
                        .max_by(|(i, e), (j, f)| {
                            let score = |idx: usize, e: &EndpointState| {
                                let h = hash(key.as_bytes(), idx as u64) as f64 / u64::MAX as f64;
                                -f64::from(e.weight.max(1)) / h.max(f64::MIN_POSITIVE).ln()
                            };
                            score(*i, e).total_cmp(&score(*j, f))
                        })
                        .map(|(i, _)| i as u32),
                },
            }
        })
    }
}

endpoint::export!(Builtin);
