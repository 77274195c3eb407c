//! A retry policy that replaces the built-in one wherever its WasmPlugin's `targetRefs`
//! reach: it retries any 5xx response, reset or failed connection, up to
//! `pluginConfig.attempts` retries, after `pluginConfig.backoff_ms`. Each retry is counted
//! in the host counter `retries`, which outlives instances and reloads.

use std::cell::Cell;

use portcullis_sdk::{Decision, Outcome, Retry, host, retry};
use serde::Deserialize;

/// The WasmPlugin's `pluginConfig`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PluginConfig {
    attempts: u32,
    #[serde(default)]
    backoff_ms: u64,
}

/// What a retry policy is configured with: the built-in's settings of every route
/// (unused here) and the plugin's own config.
#[derive(Deserialize)]
struct Config {
    plugin_config: PluginConfig,
}

thread_local! {
    static SETTINGS: Cell<(u32, u64)> = const { Cell::new((0, 0)) };
}

struct Retry5xx;

impl Retry for Retry5xx {
    fn configure(config: String) -> Result<(), String> {
        let config: Config =
            serde_json::from_str(&config).map_err(|e| format!("pluginConfig: {e}"))?;
        let PluginConfig {
            attempts,
            backoff_ms,
        } = config.plugin_config;
        SETTINGS.set((attempts, backoff_ms));
        Ok(())
    }

    fn should_retry(_route: u32, attempt: u32, outcome: Outcome) -> Decision {
        let (attempts, backoff_ms) = SETTINGS.get();
        let failed = match outcome {
            Outcome::Response(response) => response.status >= 500,
            Outcome::ConnectFailure | Outcome::Reset | Outcome::RefusedStream => true,
            Outcome::Timeout => false,
        };
        let retry = failed && attempt <= attempts;
        if retry {
            host::counter_add("retries", 1);
        }
        Decision { retry, backoff_ms }
    }
}

retry::export!(Retry5xx);
