//! The built-in destination picker: relative weights, as Istio's `route[].weight`.
//!
//! A destination gets `weight / sum(weights)` of its route's requests; one of weight 0
//! gets none. A route with destinations whose weights are all 0 is refused at
//! `configure` (the WIT would read it as equal shares; the host's configuration check
//! refuses such routes before they reach the component).

use portcullis_sdk::Rng;
use portcullis_sdk::destination::{self, Destination, PluginConfig, Route};

/// Cumulative weights per route, and the generator.
struct Builtin {
    routes: Vec<Vec<u64>>,
    rng: Rng,
}

impl Destination for Builtin {
    fn configure(routes: Vec<Route>, _config: PluginConfig) -> Result<Self, String> {
        let mut cumulative_routes = Vec::with_capacity(routes.len());
        for (i, route) in routes.into_iter().enumerate() {
            let cumulative: Vec<u64> = route
                .destinations
                .iter()
                .scan(0u64, |sum, d| {
                    *sum += u64::from(d.weight);
                    Some(*sum)
                })
                .collect();
            // Routes that do not forward have no destinations at all.
            if cumulative.last() == Some(&0) {
                return Err(format!("route {i} has no positive weight"));
            }
            cumulative_routes.push(cumulative);
        }
        Ok(Builtin {
            routes: cumulative_routes,
            rng: Rng::from_host(),
        })
    }

    fn pick_destination(&mut self, route: u32) -> u32 {
        let Some(cumulative) = self.routes.get(route as usize) else {
            return 0;
        };
        let Some(&total) = cumulative.last().filter(|t| **t > 0) else {
            return 0;
        };
        let ticket = self.rng.next_u64() % total;
        cumulative.partition_point(|&c| c <= ticket) as u32
    }
}

destination::export!(Builtin);
