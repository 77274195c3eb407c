//! A retry policy that replaces the built-in one wherever its WasmPlugin's `targetRefs`
//! reach: the route's own Istio retry policy (`attempts`, `retryOn`, jittered back-off),
//! within a retry budget in the manner of Envoy's and Finagle's.
//!
//! The budget is counted per route and per one-second window of the wall clock, in host
//! counters, so every instance of the plugin shares it:
//!
//! - every call for a first attempt (`attempt == 1`) counts one failed first attempt: the
//!   host asks the retry phase only after an attempt failed, so these are the route's
//!   failed requests, and the plugin never sees the successful ones;
//! - a retry the route's policy allows is granted while the window's granted retries are
//!   fewer than `max(min_per_second, percent% of its failed first attempts)`, and refused
//!   (the client gets the failed attempt) once they reach it.
//!
//! ```yaml
//! pluginConfig:
//!   percent: 20          # optional; the default
//!   min_per_second: 3    # optional; the default
//! ```

use std::time::{SystemTime, UNIX_EPOCH};

use portcullis_sdk::retry::{self, Decision, Millis, Outcome, PluginConfig, Retry, RetryPolicy};
use portcullis_sdk::{Rng, host};
use serde::Deserialize;

/// The WasmPlugin's `pluginConfig`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Settings {
    /// Retries a window allows per 100 failed first attempts.
    percent: f64,
    /// Retries a window allows whatever the failures.
    min_per_second: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            percent: 20.0,
            min_per_second: 3,
        }
    }
}

impl Settings {
    /// The retries a window with `failed` failed first attempts allows.
    fn budget(&self, failed: u32) -> u32 {
        let share = (f64::from(failed) * self.percent / 100.0).floor() as u32;
        share.max(self.min_per_second)
    }
}

/// Whether `outcome` meets Envoy's retry condition `condition` (as Istio's `retryOn`
/// names it); `codes` are the route's retriable status codes.
fn meets(condition: &str, outcome: &Outcome, codes: &[u16]) -> bool {
    let (status, grpc_status) = match outcome {
        Outcome::Response(r) => (r.status, r.grpc_status),
        // No response: `5xx`, `gateway-error` and `reset` cover every such failure.
        Outcome::ConnectFailure => {
            return matches!(
                condition,
                "5xx" | "gateway-error" | "reset" | "connect-failure"
            );
        }
        Outcome::RefusedStream => {
            return matches!(
                condition,
                "5xx" | "gateway-error" | "reset" | "refused-stream"
            );
        }
        Outcome::Reset | Outcome::Timeout => {
            return matches!(condition, "5xx" | "gateway-error" | "reset");
        }
    };
    let grpc = |code| grpc_status == Some(code);
    match condition {
        "5xx" => status >= 500,
        "gateway-error" => matches!(status, 502..=504),
        "retriable-4xx" => status == 409,
        "retriable-status-codes" => codes.contains(&status),
        "cancelled" => grpc(1),
        "deadline-exceeded" => grpc(4),
        "resource-exhausted" => grpc(8),
        "internal" => grpc(13),
        "unavailable" => grpc(14),
        _ => false,
    }
}

/// Envoy's back-off before retry number `retry` (1 for the first): a random wait in
/// `[0, min(base × 2^(retry-1), 10 × base))`.
fn backoff(base: Millis, retry: u32, rng: &mut Rng) -> Millis {
    let base = base.max(1);
    let ceiling = base
        .saturating_mul(1 << (retry - 1).min(20))
        .min(base.saturating_mul(10));
    rng.next_u64() % ceiling
}

/// A count per one-second window in a host counter: the window's second (modulo 2^30)
/// in the high 32 bits, the count in the low 32. The first use in a new window starts
/// the count over.
struct Window<'a> {
    counter: &'a str,
    tag: i64,
}

impl<'a> Window<'a> {
    fn new(counter: &'a str, second: u64) -> Self {
        Window {
            counter,
            tag: ((second & 0x3fff_ffff) as i64) << 32,
        }
    }

    /// Adds `delta` to the window's count and returns the count.
    fn add(&self, delta: i64) -> u32 {
        let value = host::counter_add(self.counter, 0);
        let value = if value & !0xffff_ffff == self.tag {
            host::counter_add(self.counter, delta)
        } else {
            // Another window's count: start this one at `delta`.
            host::counter_add(self.counter, self.tag + delta - value)
        };
        // Two instances starting the window at once leave a value of no window: the next
        // use starts it over, and this one counts only itself.
        if value & !0xffff_ffff == self.tag {
            (value & 0xffff_ffff) as u32
        } else {
            delta.max(0) as u32
        }
    }
}

/// The policy: every route's Istio retry settings, the budget, and the generator.
struct RetryBudget {
    routes: Vec<RetryPolicy>,
    settings: Settings,
    rng: Rng,
}

impl Retry for RetryBudget {
    fn configure(routes: Vec<RetryPolicy>, config: PluginConfig) -> Result<Self, String> {
        let settings: Settings = config.parse()?;
        if !(settings.percent.is_finite() && settings.percent >= 0.0) {
            return Err(format!(
                "percent must be a number of 0 or more, not {}",
                settings.percent
            ));
        }
        Ok(RetryBudget {
            routes,
            settings,
            rng: Rng::from_host(),
        })
    }

    fn should_retry(&mut self, route: u32, attempt: u32, outcome: Outcome) -> Decision {
        let second = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let failed_counter = format!("retry-budget/{route}/failed");
        let retries_counter = format!("retry-budget/{route}/retries");
        let failed = Window::new(&failed_counter, second);
        let retries = Window::new(&retries_counter, second);
        let failed = failed.add(i64::from(attempt == 1));

        let Some(policy) = self.routes.get(route as usize) else {
            return Decision::Stop;
        };
        let retriable = policy
            .retry_on
            .iter()
            .any(|c| meets(c, &outcome, &policy.retriable_status_codes));
        if attempt > policy.attempts || !retriable {
            return Decision::Stop;
        }
        let budget = self.settings.budget(failed);
        if retries.add(0) >= budget {
            host::log(
                host::LogLevel::Debug,
                &format!("route {route}: retry budget spent ({budget} this second)"),
            );
            return Decision::Stop;
        }
        retries.add(1);
        Decision::RetryAfter(backoff(policy.backoff_base, attempt, &mut self.rng))
    }
}

retry::export!(RetryBudget);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_a_share_of_failures_with_a_floor() {
        let settings = Settings::default();
        assert_eq!(settings.budget(0), 3);
        assert_eq!(settings.budget(19), 3);
        assert_eq!(settings.budget(20), 4);
        assert_eq!(settings.budget(100), 20);
    }

    #[test]
    fn conditions_follow_envoy() {
        let response = |status, grpc_status| {
            Outcome::Response(retry::ResponseStatus {
                status,
                grpc_status,
            })
        };
        assert!(meets("5xx", &response(500, None), &[]));
        assert!(!meets("gateway-error", &response(500, None), &[]));
        assert!(meets("gateway-error", &response(503, None), &[]));
        assert!(meets(
            "retriable-status-codes",
            &response(429, None),
            &[429]
        ));
        assert!(meets("unavailable", &response(200, Some(14)), &[]));
        assert!(meets("reset", &Outcome::Timeout, &[]));
        assert!(meets("connect-failure", &Outcome::ConnectFailure, &[]));
        assert!(!meets("connect-failure", &Outcome::Reset, &[]));
        assert!(!meets("retriable-4xx", &response(404, None), &[]));
    }

    #[test]
    fn backoff_stays_under_its_ceiling() {
        let mut rng = Rng::new(7);
        for retry in 1..30 {
            assert!(backoff(25, retry, &mut rng) < 250);
        }
        assert!((0..100).all(|_| backoff(25, 1, &mut rng) < 25));
    }
}
