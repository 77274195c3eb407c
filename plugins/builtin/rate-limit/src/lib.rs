//! Local rate limiting, as Envoy's local rate limit filter does it: a token bucket per
//! descriptor (one for everything the plugin is attached to, one per client address, or
//! one per value of a header), held by the host so that every worker shares it and it
//! survives reloads. A request that finds its bucket empty is answered 429 with
//! `x-ratelimit-limit`, `x-ratelimit-remaining`, `x-ratelimit-reset` and `retry-after`.
//!
//! ```yaml
//! url: builtin:rate-limit
//! pluginConfig:
//!   tokenBucket: {maxTokens: 100, tokensPerFill: 100, fillInterval: 1s}
//!   descriptor: client          # `all` (the default), `client`, or {header: x-api-key}
//!   rateLimitHeaders: true      # x-ratelimit-* on allowed responses too (default false)
//! ```

mod config;

use portcullis_sdk::filter::{self, Action, Edits, Filter, Header, PluginConfig, Rejection};
use portcullis_sdk::host::{self, Bucket};
use portcullis_sdk::request;

use config::{Config, Descriptor, Named};

/// The filter: its bucket's shape and what names a bucket.
struct RateLimit {
    config: Config,
    bucket: Bucket,
}

impl Filter for RateLimit {
    fn configure(config: PluginConfig) -> Result<Self, String> {
        let config: Config = config
            .parse_required()
            .map_err(|e| format!("invalid pluginConfig: {e}"))?;
        let bucket = config.bucket()?;
        Ok(Self { config, bucket })
    }

    fn on_request(&mut self) -> Action {
        let Some(name) = self.bucket_name() else {
            return Action::Proceed(Edits::default());
        };
        let limit = self.bucket.max_tokens.to_string();
        match host::take_tokens(&name, self.bucket, 1) {
            Ok(remaining) => {
                let mut edits = Edits::default();
                if self.config.rate_limit_headers {
                    edits.set_response_headers = vec![
                        header("x-ratelimit-limit", &limit),
                        header("x-ratelimit-remaining", &remaining.to_string()),
                    ];
                }
                Action::Proceed(edits)
            }
            Err(wait_ms) => {
                host::response_details("local_rate_limited");
                let seconds = wait_ms.div_ceil(1000).max(1).to_string();
                Action::Reject(Rejection {
                    status: 429,
                    headers: vec![
                        header("x-ratelimit-limit", &limit),
                        header("x-ratelimit-remaining", "0"),
                        header("x-ratelimit-reset", &seconds),
                        header("retry-after", &seconds),
                        header("content-type", "text/plain"),
                    ],
                    body: "local_rate_limited".into(),
                })
            }
        }
    }
}

impl RateLimit {
    /// The bucket of the request in progress; none where its descriptor is absent (a
    /// request without the header is not limited, as in Envoy).
    fn bucket_name(&self) -> Option<String> {
        match &self.config.descriptor {
            Descriptor::Named(Named::All) => Some("all".into()),
            Descriptor::Named(Named::Client) => {
                Some(format!("client:{}", request::client_address()))
            }
            // Hashed: a value of any length names a bucket of a bounded name.
            Descriptor::Header { header } => {
                request::header(header).map(|value| format!("header:{:016x}", fnv1a(&value)))
            }
        }
    }
}

/// The 64-bit FNV-1a hash of `text`.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn header(name: &str, value: &str) -> Header {
    Header {
        name: name.into(),
        value: value.into(),
    }
}

filter::export!(RateLimit);
