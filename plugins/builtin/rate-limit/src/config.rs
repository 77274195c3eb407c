//! The plugin's `pluginConfig`.

use portcullis_sdk::host::Bucket;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    pub token_bucket: TokenBucket,
    #[serde(default)]
    pub descriptor: Descriptor,
    #[serde(default)]
    pub rate_limit_headers: bool,
}

/// Envoy's token bucket.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenBucket {
    pub max_tokens: u32,
    /// Default: `maxTokens`.
    pub tokens_per_fill: Option<u32>,
    /// A duration: `500ms`, `1s`, `1m`, `1h`.
    pub fill_interval: String,
}

/// What names a request's bucket.
#[derive(Deserialize, Debug, PartialEq, Eq)]
#[serde(untagged)]
pub enum Descriptor {
    /// `all` (one bucket) or `client` (one per client address).
    Named(Named),
    /// `{header: name}`: one bucket per value of the header.
    Header { header: String },
}

impl Default for Descriptor {
    fn default() -> Self {
        Self::Named(Named::All)
    }
}

#[derive(Deserialize, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Named {
    All,
    Client,
}

impl Config {
    /// The bucket's shape, checked.
    pub fn bucket(&self) -> Result<Bucket, String> {
        let b = &self.token_bucket;
        let fill_interval = millis(&b.fill_interval).ok_or_else(|| {
            format!(
                "fillInterval {:?} is not a duration like 1s",
                b.fill_interval
            )
        })?;
        let bucket = Bucket {
            max_tokens: b.max_tokens,
            tokens_per_fill: b.tokens_per_fill.unwrap_or(b.max_tokens),
            fill_interval,
        };
        if bucket.max_tokens == 0 || bucket.tokens_per_fill == 0 || fill_interval == 0 {
            return Err("maxTokens, tokensPerFill and fillInterval must be above 0".into());
        }
        Ok(bucket)
    }
}

/// Milliseconds of a duration such as `500ms`, `1.5s`, `1m` or `1h`.
pub fn millis(text: &str) -> Option<u64> {
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(at) => text.split_at(at),
        None => return None,
    };
    let number: f64 = number.parse().ok()?;
    let scale = match unit {
        "ms" => 1.0,
        "s" => 1_000.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        _ => return None,
    };
    let millis = number * scale;
    (millis.is_finite() && millis >= 1.0).then_some(millis as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_descriptors_read_as_written() {
        assert_eq!(millis("500ms"), Some(500));
        assert_eq!(millis("1.5s"), Some(1500));
        assert_eq!(millis("1m"), Some(60_000));
        assert_eq!(millis("1"), None);
        assert_eq!(millis("0s"), None);
        let config: Config = serde_json::from_str(
            r#"{"tokenBucket": {"maxTokens": 5, "fillInterval": "1s"}, "descriptor": {"header": "x-key"}}"#,
        )
        .unwrap();
        assert_eq!(
            config.descriptor,
            Descriptor::Header {
                header: "x-key".into()
            }
        );
        let bucket = config.bucket().unwrap();
        assert_eq!(
            (
                bucket.max_tokens,
                bucket.tokens_per_fill,
                bucket.fill_interval
            ),
            (5, 5, 1000)
        );
        let client: Config = serde_json::from_str(
            r#"{"tokenBucket": {"maxTokens": 1, "fillInterval": "1s"}, "descriptor": "client"}"#,
        )
        .unwrap();
        assert_eq!(client.descriptor, Descriptor::Named(Named::Client));
        let zero: Config =
            serde_json::from_str(r#"{"tokenBucket": {"maxTokens": 0, "fillInterval": "1s"}}"#)
                .unwrap();
        assert!(zero.bucket().is_err());
    }
}
