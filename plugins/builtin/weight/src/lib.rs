//! The built-in destination picker: relative weights, as Istio's `route[].weight`.
//!
//! A destination gets `weight / sum(weights)` of the requests; zero weights never reach
//! the component (the host drops them).

use std::cell::RefCell;

use portcullis_sdk::{Destination, Rng, destination};
use serde::Deserialize;

#[derive(Deserialize)]
struct Config {
    routes: Vec<Vec<u32>>,
}

/// Cumulative weights per route, and the generator.
struct State {
    routes: Vec<Vec<u64>>,
    rng: Rng,
}

thread_local! {
    static STATE: RefCell<State> = const { RefCell::new(State { routes: Vec::new(), rng: Rng::new(1) }) };
}

struct Builtin;

impl Destination for Builtin {
    fn configure(config: String) -> Result<(), String> {
        let config: Config = serde_json::from_str(&config).map_err(|e| e.to_string())?;
        let mut routes = Vec::with_capacity(config.routes.len());
        for (i, weights) in config.routes.into_iter().enumerate() {
            let cumulative: Vec<u64> = weights
                .iter()
                .scan(0u64, |sum, w| {
                    *sum += u64::from(*w);
                    Some(*sum)
                })
                .collect();
            // Routes that do not forward have no destinations at all.
            if !cumulative.is_empty() && cumulative.last() == Some(&0) {
                return Err(format!("route {i} has no positive weight"));
            }
            routes.push(cumulative);
        }
        STATE.with(|s| {
            *s.borrow_mut() = State {
                routes,
                rng: Rng::from_host(),
            };
        });
        Ok(())
    }

    fn pick_destination(route: u32) -> u32 {
        STATE.with(|s| {
            let s = &mut *s.borrow_mut();
            let Some(cumulative) = s.routes.get(route as usize) else {
                return 0;
            };
            let Some(&total) = cumulative.last().filter(|t| **t > 0) else {
                return 0;
            };
            let ticket = s.rng.next_u64() % total;
            cumulative.partition_point(|&c| c <= ticket) as u32
        })
    }
}

destination::export!(Builtin);
