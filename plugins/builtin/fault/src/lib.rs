//! The built-in fault injector: Istio's `fault.delay` and `fault.abort`.
//!
//! Delay and abort are sampled independently, each with its own percentage; a fault with
//! no percentage injects nothing (Istio's semantics, unlike APISIX's).

use std::cell::RefCell;

use portcullis_sdk::{Fault, Injection, Rng, fault};
use serde::Deserialize;

#[derive(Deserialize)]
struct Delay {
    ms: u64,
    percentage: f64,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Http(u16),
    Grpc(u8),
}

#[derive(Deserialize)]
struct Abort {
    status: Status,
    percentage: f64,
}

#[derive(Deserialize)]
struct RouteFault {
    delay: Option<Delay>,
    abort: Option<Abort>,
}

#[derive(Deserialize)]
struct Config {
    routes: Vec<Option<RouteFault>>,
}

struct State {
    routes: Vec<Option<RouteFault>>,
    rng: Rng,
}

thread_local! {
    static STATE: RefCell<State> = const { RefCell::new(State { routes: Vec::new(), rng: Rng::new(1) }) };
}

struct Builtin;

impl Fault for Builtin {
    fn configure(config: String) -> Result<(), String> {
        let config: Config = serde_json::from_str(&config).map_err(|e| e.to_string())?;
        for (i, fault) in config
            .routes
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
        STATE.with(|s| {
            *s.borrow_mut() = State {
                routes: config.routes,
                rng: Rng::from_host(),
            }
        });
        Ok(())
    }

    fn inject(route: u32) -> Injection {
        STATE.with(|s| {
            let s = &mut *s.borrow_mut();
            let mut injection = Injection {
                delay_ms: 0,
                abort_http: None,
                abort_grpc: None,
            };
            let Some(Some(fault)) = s.routes.get(route as usize) else {
                return injection;
            };
            if let Some(delay) = fault.delay.as_ref().filter(|d| s.rng.percent(d.percentage)) {
                injection.delay_ms = delay.ms;
            }
            if let Some(abort) = fault.abort.as_ref().filter(|a| s.rng.percent(a.percentage)) {
                match abort.status {
                    Status::Http(code) => injection.abort_http = Some(code),
                    Status::Grpc(code) => injection.abort_grpc = Some(code),
                }
            }
            injection
        })
    }
}

fault::export!(Builtin);
