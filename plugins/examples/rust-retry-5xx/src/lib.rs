//! A retry policy that replaces the built-in one wherever its WasmPlugin's `targetRefs`
//! reach: it retries any 5xx response, reset or failed connection, up to
//! `pluginConfig.attempts` retries, after `pluginConfig.backoff_ms`. Each retry is counted
//! in the host counter `retries`, which outlives instances and reloads.

use portcullis_sdk::host;
use portcullis_sdk::retry::{self, Decision, Millis, Outcome, PluginConfig, Retry, RetryPolicy};
use serde::Deserialize;

/// The WasmPlugin's `pluginConfig`; `attempts` is required.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    attempts: u32,
    #[serde(default)]
    backoff_ms: Millis,
}

/// The policy: the `pluginConfig` alone (the routes' own retry settings are unused).
struct Retry5xx {
    settings: Settings,
}

impl Retry for Retry5xx {
    fn configure(_routes: Vec<RetryPolicy>, config: PluginConfig) -> Result<Self, String> {
        Ok(Retry5xx {
            settings: config.parse_required()?,
        })
    }

    fn should_retry(&mut self, _route: u32, attempt: u32, outcome: Outcome) -> Decision {
        let failed = match outcome {
            Outcome::Response(response) => response.status >= 500,
            Outcome::ConnectFailure | Outcome::Reset | Outcome::RefusedStream => true,
            Outcome::Timeout => false,
        };
        if failed && attempt <= self.settings.attempts {
            host::counter_add("retries", 1);
            Decision::RetryAfter(self.settings.backoff_ms)
        } else {
            Decision::Stop
        }
    }
}

retry::export!(Retry5xx);
