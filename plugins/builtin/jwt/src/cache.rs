//! Tokens this instance has verified, so that a client's next request with the same token
//! costs a lookup instead of a signature check. An entry serves only while its `exp` and
//! `nbf` still hold; the cache is bounded and emptied when full.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::verify::CLOCK_SKEW_SECONDS;

/// How many tokens an instance remembers.
const CAPACITY: usize = 1024;

/// A token that verified.
pub struct Verified {
    /// The index of the provider that verified it.
    pub provider: usize,
    pub principal: String,
    pub claims: Map<String, Value>,
    /// `claims` as JSON text, as `host.authenticate` takes them (written once).
    pub claims_json: String,
    /// The base64url payload, as `outputPayloadToHeader` forwards it.
    pub payload: String,
}

#[derive(Default)]
pub struct Cache {
    entries: HashMap<String, Verified>,
}

impl Cache {
    /// The verification of `token`, if it is remembered and still in its time window
    /// at `now` (seconds since the epoch).
    pub fn get(&mut self, token: &str, now: u64) -> Option<&Verified> {
        let verified = self.entries.get(token)?;
        if in_window(&verified.claims, now) {
            return self.entries.get(token);
        }
        self.entries.remove(token);
        None
    }

    /// Remembers that `token` verified.
    pub fn insert(&mut self, token: String, verified: Verified) -> &Verified {
        if self.entries.len() >= CAPACITY {
            self.entries.clear();
        }
        self.entries.entry(token).insert_entry(verified).into_mut()
    }
}

/// Whether `exp` and `nbf`, where present, hold at `now` with Envoy's clock skew.
fn in_window(claims: &Map<String, Value>, now: u64) -> bool {
    // As jsonwebtoken reads them: numbers, fractional ones too.
    let time = |name: &str| claims.get(name).and_then(Value::as_f64);
    let (now, skew) = (now as f64, CLOCK_SKEW_SECONDS as f64);
    let expired = time("exp").is_some_and(|exp| exp + skew < now);
    let early = time("nbf").is_some_and(|nbf| nbf > now + skew);
    !expired && !early
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verified(claims: Value) -> Verified {
        Verified {
            provider: 0,
            principal: "i/s".into(),
            claims: claims.as_object().unwrap().clone(),
            claims_json: claims.to_string(),
            payload: String::new(),
        }
    }

    #[test]
    fn an_entry_serves_only_within_its_time_window() {
        let mut cache = Cache::default();
        cache.insert(
            "t".into(),
            verified(serde_json::json!({"exp": 1000, "nbf": 500})),
        );
        assert!(
            cache.get("t", 400).is_none(),
            "not yet valid, even with skew"
        );
        cache.insert(
            "t".into(),
            verified(serde_json::json!({"exp": 1000, "nbf": 500})),
        );
        assert!(cache.get("t", 450).is_some(), "within the skew of nbf");
        assert!(cache.get("t", 1060).is_some(), "within the skew of exp");
        assert!(cache.get("t", 1061).is_none(), "expired");
        assert!(cache.get("t", 900).is_none(), "and forgotten");
    }

    #[test]
    fn a_fractional_expiry_still_expires() {
        let mut cache = Cache::default();
        cache.insert("t".into(), verified(serde_json::json!({"exp": 1000.5})));
        assert!(cache.get("t", 1000).is_some());
        assert!(cache.get("t", 1061).is_none());
    }

    #[test]
    fn a_full_cache_starts_over() {
        let mut cache = Cache::default();
        for i in 0..CAPACITY + 1 {
            cache.insert(i.to_string(), verified(serde_json::json!({})));
        }
        assert_eq!(cache.entries.len(), 1);
        assert!(cache.get(&CAPACITY.to_string(), 0).is_some());
    }
}
