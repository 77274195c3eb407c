//! Types shared by several Istio kinds: string matches, percentages, durations, ports.

use std::fmt;
use std::time::Duration as StdDuration;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

/// Istio `StringMatch`: exactly one of `exact`, `prefix` or `regex` (RE2, full match).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StringMatch {
    /// The whole value equals this string (case-sensitive).
    pub exact: Option<String>,
    /// The value starts with this string: a plain string prefix (case-sensitive).
    pub prefix: Option<String>,
    /// An RE2 regex that must match the whole value.
    pub regex: Option<String>,
}

/// Istio `Percent`: a double in [0, 100].
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Percent {
    /// The percentage, 0–100; fractions allowed (default 0).
    #[serde(default)]
    pub value: f64,
}

/// Istio `PortSelector`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortSelector {
    /// The port number.
    pub number: Option<u32>,
}

/// A duration as Istio writes it: `10s`, `0.5s`, `250ms`, `1m30s`, `1h`.
///
/// Istio reads protobuf durations (`1.5s`); Kubernetes users also write Go durations
/// (`1m30s`), so both are accepted. Range checks happen in validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Duration(pub StdDuration);

impl Duration {
    /// Parses a Go- or protobuf-style duration.
    pub fn parse(text: &str) -> Result<Self, String> {
        let invalid = || {
            format!(
                "invalid duration {text:?}: expected a number and a unit such as 10s, 250ms, 1m30s"
            )
        };
        let mut rest = text.trim();
        if rest.is_empty() || rest.starts_with('-') {
            return Err(invalid());
        }
        let mut nanos: f64 = 0.0;
        while !rest.is_empty() {
            let number_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(invalid)?;
            let number: f64 = rest[..number_len].parse().map_err(|_| invalid())?;
            rest = &rest[number_len..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let scale = match &rest[..unit_len] {
                "ns" => 1.0,
                "us" | "µs" => 1e3,
                "ms" => 1e6,
                "s" => 1e9,
                "m" => 60e9,
                "h" => 3600e9,
                _ => return Err(invalid()),
            };
            rest = &rest[unit_len..];
            nanos += number * scale;
        }
        if nanos > u64::MAX as f64 {
            return Err(invalid());
        }
        Ok(Duration(StdDuration::from_nanos(nanos.round() as u64)))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration with a unit, such as 10s or 250ms")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
                Duration::parse(text).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// Any value: used for fields that only mean something inside a Kubernetes mesh, which
/// are accepted and ignored with a warning.
pub type Ignored = serde_yaml::Value;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_istio_and_go_durations() {
        let ms = |t| Duration::parse(t).map(|d| d.0.as_millis());
        assert_eq!(ms("10s"), Ok(10_000));
        assert_eq!(ms("0.5s"), Ok(500));
        assert_eq!(ms("250ms"), Ok(250));
        assert_eq!(ms("1m30s"), Ok(90_000));
        assert_eq!(ms("1h"), Ok(3_600_000));
        assert!(ms("10").is_err());
        assert!(ms("-1s").is_err());
        assert!(ms("5 sec").is_err());
        assert!(ms("").is_err());
    }
}
