//! A load balancer that replaces the built-in one for the services its WasmPlugin's
//! `targetRefs` name: peak-EWMA latency balancing, as Finagle's and Linkerd's.
//!
//! Each endpoint (by its stable `endpoint-id`) has a latency estimate, kept in instance
//! memory: an exponentially weighted moving average of the `latency-us` the host reports,
//! that jumps at once to a new peak and otherwise decays towards the latest latency with
//! the time constant `pluginConfig.decay_ms` (10 000 by default), measured on the WASI
//! clock. An endpoint's cost is `estimate × (in_flight + 1)`; one without a latency yet
//! costs 0, so that it gets tried. Among the healthy endpoints, the cheaper of two picked
//! at random wins (power of two choices), or the cheapest when there are three or fewer.
//! Weights are not used. No healthy endpoint: none (503).
//!
//! The host reports each endpoint's last latency, not every response, so the estimate
//! takes the reported value in at each pick, weighted by the time since it last did:
//! how often the balancer picks does not change how fast it forgets.
//!
//! ```yaml
//! pluginConfig:
//!   decay_ms: 10000   # optional; the default
//! ```

use std::collections::HashMap;
use std::time::{Duration, Instant};

use portcullis_sdk::Rng;
use portcullis_sdk::endpoint::{self, Cluster, Endpoint, EndpointId, EndpointState, PluginConfig};
use serde::Deserialize;

/// The WasmPlugin's `pluginConfig`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// The time constant of the decay, in milliseconds.
    #[serde(default = "default_decay_ms")]
    decay_ms: u64,
}

fn default_decay_ms() -> u64 {
    10_000
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            decay_ms: default_decay_ms(),
        }
    }
}

/// Past this many endpoints remembered, those not sampled for five time constants (whose
/// estimate has lost over 99% of its weight) are forgotten.
const REMEMBERED: usize = 4096;

/// One endpoint's latency estimate.
#[derive(Debug, Clone, Copy)]
struct Estimate {
    /// The peak-EWMA of its latency, in microseconds.
    ewma_us: f64,
    /// When it last took a sample in.
    at: Instant,
}

impl Estimate {
    /// Takes in `latency_us`, `elapsed` after the last sample: a higher latency replaces
    /// the estimate (the peak); a lower one pulls it down by `1 - e^(-elapsed/decay)`.
    fn observe(&mut self, latency_us: f64, now: Instant, decay: Duration) {
        if latency_us >= self.ewma_us {
            self.ewma_us = latency_us;
        } else {
            let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
            let keep = (-elapsed / decay.as_secs_f64()).exp();
            self.ewma_us = latency_us + (self.ewma_us - latency_us) * keep;
        }
        self.at = now;
    }
}

/// The balancer: the decay, every endpoint's estimate, and the generator.
struct PeakEwma {
    decay: Duration,
    estimates: HashMap<EndpointId, Estimate>,
    rng: Rng,
}

impl PeakEwma {
    /// The cost of `endpoint` now, after taking its latest latency in.
    fn cost(&mut self, endpoint: &EndpointState, now: Instant) -> f64 {
        let Some(latency_us) = endpoint.latency_us.map(f64::from) else {
            return 0.0;
        };
        let estimate = self.estimates.entry(endpoint.id).or_insert(Estimate {
            ewma_us: latency_us,
            at: now,
        });
        estimate.observe(latency_us, now, self.decay);
        estimate.ewma_us * (f64::from(endpoint.in_flight) + 1.0)
    }

    /// Forgets the endpoints not sampled for a long while, once there are many.
    fn forget_stale(&mut self, now: Instant) {
        if self.estimates.len() > REMEMBERED {
            let horizon = self.decay.saturating_mul(5);
            self.estimates
                .retain(|_, e| now.saturating_duration_since(e.at) < horizon);
        }
    }
}

impl Endpoint for PeakEwma {
    fn configure(_clusters: Vec<Cluster>, config: PluginConfig) -> Result<Self, String> {
        let settings: Settings = config.parse()?;
        if settings.decay_ms == 0 {
            return Err("decay_ms must be positive".into());
        }
        Ok(PeakEwma {
            decay: Duration::from_millis(settings.decay_ms),
            estimates: HashMap::new(),
            rng: Rng::from_host(),
        })
    }

    fn pick_endpoint(&mut self, _cluster: u32, endpoints: Vec<EndpointState>) -> Option<u32> {
        let now = Instant::now();
        self.forget_stale(now);
        let healthy: Vec<usize> = (0..endpoints.len())
            .filter(|&i| endpoints[i].healthy)
            .collect();
        let candidates = match healthy.len() {
            0 => return None,
            1..=3 => healthy,
            n => {
                // Two distinct endpoints, uniformly.
                let first = (self.rng.next_u64() % n as u64) as usize;
                let mut second = (self.rng.next_u64() % (n as u64 - 1)) as usize;
                if second >= first {
                    second += 1;
                }
                vec![healthy[first], healthy[second]]
            }
        };
        let mut best: Option<(usize, f64)> = None;
        for i in candidates {
            let cost = self.cost(&endpoints[i], now);
            if best.is_none_or(|(_, lowest)| cost < lowest) {
                best = Some((i, cost));
            }
        }
        best.and_then(|(i, _)| u32::try_from(i).ok())
    }
}

endpoint::export!(PeakEwma);

#[cfg(test)]
mod tests {
    use super::*;

    const DECAY: Duration = Duration::from_secs(10);

    #[test]
    fn a_peak_replaces_the_estimate_at_once() {
        let t0 = Instant::now();
        let mut e = Estimate {
            ewma_us: 1_000.0,
            at: t0,
        };
        e.observe(50_000.0, t0 + Duration::from_millis(1), DECAY);
        assert_eq!(e.ewma_us, 50_000.0);
    }

    #[test]
    fn a_lower_latency_pulls_it_down_by_elapsed_time() {
        let t0 = Instant::now();
        let mut e = Estimate {
            ewma_us: 11_000.0,
            at: t0,
        };
        // One time constant: 1/e of the gap is left.
        e.observe(1_000.0, t0 + DECAY, DECAY);
        let expected = 1_000.0 + 10_000.0 / std::f64::consts::E;
        assert!((e.ewma_us - expected).abs() < 1e-6, "{}", e.ewma_us);
    }

    #[test]
    fn sampling_often_forgets_no_faster_than_sampling_once() {
        let t0 = Instant::now();
        let mut once = Estimate {
            ewma_us: 11_000.0,
            at: t0,
        };
        let mut often = once;
        once.observe(1_000.0, t0 + DECAY, DECAY);
        for step in 1..=100 {
            often.observe(1_000.0, t0 + DECAY * step / 100, DECAY);
        }
        assert!((once.ewma_us - often.ewma_us).abs() < 1e-6);
    }
}
