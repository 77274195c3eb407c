//! The built-in fault injector: Istio's `fault.delay` and `fault.abort`.
//!
//! Delay and abort are sampled independently, each with its own percentage; a fault with
//! no percentage injects nothing (Istio's semantics, unlike APISIX's). A percentage
//! outside 0–100 rejects the configuration.

use portcullis_sdk::Rng;
use portcullis_sdk::fault::{self, Fault, Injection, PluginConfig, RouteFault};

/// Every route's fault, and the generator.
struct Builtin {
    routes: Vec<Option<RouteFault>>,
    rng: Rng,
}

impl Fault for Builtin {
    fn configure(routes: Vec<Option<RouteFault>>, _config: PluginConfig) -> Result<Self, String> {
        for (i, fault) in routes
            .iter()
            .enumerate()
            .filter_map(|(i, f)| Some((i, f.as_ref()?)))
        {
            let percentages = fault
                .delay
                .iter()
                .map(|d| d.percentage)
                .chain(fault.abort.iter().map(|a| a.percentage));
            if let Some(bad) = percentages.into_iter().find(|p| !(0.0..=100.0).contains(p)) {
                return Err(format!("route {i}: percentage {bad} is outside 0..100"));
            }
        }
        Ok(Builtin {
            routes,
            rng: Rng::from_host(),
        })
    }

    fn inject(&mut self, route: u32) -> Injection {
        let mut injection = Injection {
            delay: None,
            abort: None,
        };
        let Some(Some(fault)) = self.routes.get(route as usize) else {
            return injection;
        };
        if let Some(delay) = &fault.delay
            && self.rng.percent(delay.percentage)
        {
            injection.delay = Some(delay.fixed);
        }
        if let Some(abort) = &fault.abort
            && self.rng.percent(abort.percentage)
        {
            injection.abort = Some(abort.status);
        }
        injection
    }
}

fault::export!(Builtin);
