//! The built-in retry policy: Envoy's `retry_on` conditions as Istio programs them, with
//! fully jittered exponential back-off (base 25 ms by default, capped at 10× the base).
//!
//! `attempts` bounds the retries after the first attempt; the host enforces the per-try
//! and route timeouts.

use portcullis_sdk::Rng;
use portcullis_sdk::retry::{self, Decision, Outcome, PluginConfig, Retry, RetryPolicy};

/// gRPC status codes by retry condition name.
const GRPC: &[(&str, u32)] = &[
    ("cancelled", 1),
    ("deadline-exceeded", 4),
    ("resource-exhausted", 8),
    ("internal", 13),
    ("unavailable", 14),
];

/// Whether `policy` lists the condition `condition`.
fn on(policy: &RetryPolicy, condition: &str) -> bool {
    policy.retry_on.iter().any(|c| c == condition)
}

/// Whether `outcome` is one `policy` retries.
fn retriable(policy: &RetryPolicy, outcome: &Outcome) -> bool {
    let on = |condition| on(policy, condition);
    let any_failure = on("5xx") || on("gateway-error") || on("reset");
    match outcome {
        Outcome::ConnectFailure => any_failure || on("connect-failure"),
        Outcome::Reset | Outcome::Timeout => any_failure,
        Outcome::RefusedStream => any_failure || on("refused-stream"),
        Outcome::Response(response) => {
            let status = response.status;
            (on("5xx") && status >= 500)
                || (on("gateway-error") && matches!(status, 502..=504))
                || (on("retriable-4xx") && status == 409)
                || (on("retriable-status-codes") && policy.retriable_status_codes.contains(&status))
                || response
                    .grpc_status
                    .is_some_and(|code| GRPC.iter().any(|(name, c)| *c == code && on(name)))
        }
    }
}

/// Every route's policy, and the generator.
struct Builtin {
    routes: Vec<RetryPolicy>,
    rng: Rng,
}

impl Retry for Builtin {
    fn configure(routes: Vec<RetryPolicy>, _config: PluginConfig) -> Result<Self, String> {
        Ok(Builtin {
            routes,
            rng: Rng::from_host(),
        })
    }

    fn should_retry(&mut self, route: u32, attempt: u32, outcome: Outcome) -> Decision {
        let Some(policy) = self.routes.get(route as usize) else {
            return Decision::Stop;
        };
        if attempt > policy.attempts || !retriable(policy, &outcome) {
            return Decision::Stop;
        }
        // Envoy: a random wait in [0, min(base × 2^(n-1), 10 × base)).
        let base = policy.backoff_base.max(1);
        let ceiling = base
            .saturating_mul(1 << attempt.saturating_sub(1).min(20))
            .min(base.saturating_mul(10));
        Decision::RetryAfter(self.rng.next_u64() % ceiling)
    }
}

retry::export!(Builtin);
