//! The built-in retry policy: Envoy's `retry_on` conditions as Istio programs them, with
//! fully jittered exponential back-off (base 25 ms by default, capped at 10× the base).

use std::cell::RefCell;

use portcullis_sdk::{Decision, Outcome, Retry, Rng, retry};
use serde::Deserialize;

#[derive(Deserialize)]
struct Policy {
    attempts: u32,
    retry_on: Vec<String>,
    retriable_status_codes: Vec<u16>,
    backoff_base_ms: u64,
}

#[derive(Deserialize)]
struct Config {
    routes: Vec<Policy>,
}

/// gRPC status codes by retry condition name.
const GRPC: &[(&str, u32)] = &[
    ("cancelled", 1),
    ("deadline-exceeded", 4),
    ("resource-exhausted", 8),
    ("internal", 13),
    ("unavailable", 14),
];

impl Policy {
    fn on(&self, condition: &str) -> bool {
        self.retry_on.iter().any(|c| c == condition)
    }

    /// Whether `outcome` is one the policy retries.
    fn retriable(&self, outcome: &Outcome) -> bool {
        let any_failure = self.on("5xx") || self.on("gateway-error") || self.on("reset");
        match outcome {
            Outcome::ConnectFailure => any_failure || self.on("connect-failure"),
            Outcome::Reset | Outcome::Timeout => any_failure,
            Outcome::RefusedStream => any_failure || self.on("refused-stream"),
            Outcome::Response(response) => {
                let status = response.status;
                (self.on("5xx") && status >= 500)
                    || (self.on("gateway-error") && matches!(status, 502..=504))
                    || (self.on("retriable-4xx") && status == 409)
                    || (self.on("retriable-status-codes")
                        && self.retriable_status_codes.contains(&status))
                    || response.grpc_status.is_some_and(|code| {
                        GRPC.iter().any(|(name, c)| *c == code && self.on(name))
                    })
            }
        }
    }
}

struct State {
    routes: Vec<Policy>,
    rng: Rng,
}

thread_local! {
    static STATE: RefCell<State> = const { RefCell::new(State { routes: Vec::new(), rng: Rng::new(1) }) };
}

struct Builtin;

impl Retry for Builtin {
    fn configure(config: String) -> Result<(), String> {
        let config: Config = serde_json::from_str(&config).map_err(|e| e.to_string())?;
        STATE.with(|s| {
            *s.borrow_mut() = State {
                routes: config.routes,
                rng: Rng::from_host(),
            }
        });
        Ok(())
    }

    fn should_retry(route: u32, attempt: u32, outcome: Outcome) -> Decision {
        STATE.with(|s| {
            let s = &mut *s.borrow_mut();
            let no = Decision {
                retry: false,
                backoff_ms: 0,
            };
            let Some(policy) = s.routes.get(route as usize) else {
                return no;
            };
            if attempt > policy.attempts || !policy.retriable(&outcome) {
                return no;
            }
            // Envoy: a random wait in [0, min(base × 2^(n-1), 10 × base)).
            let base = policy.backoff_base_ms.max(1);
            let ceiling = base
                .saturating_mul(1 << (attempt - 1).min(20))
                .min(base * 10);
            Decision {
                retry: true,
                backoff_ms: s.rng.next_u64() % ceiling,
            }
        })
    }
}

retry::export!(Builtin);
