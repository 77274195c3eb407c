//! Counters held by the host for the policies: they outlive instances and reloads. Each
//! component sees only its own, and may hold a bounded number of bounded names.

use std::collections::HashMap;
use std::sync::Mutex;

/// The longest counter name, in bytes.
pub const MAX_NAME_BYTES: usize = 256;
/// The most counters one component may hold.
pub const MAX_PER_COMPONENT: usize = 4096;

/// Named counters and token buckets, kept per component.
#[derive(Debug, Default)]
pub struct Counters {
    scopes: Mutex<HashMap<String, HashMap<String, i64>>>,
    /// The token buckets.
    pub buckets: super::buckets::Buckets,
}

/// Why a counter was refused: the call traps, failing that request.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CounterError {
    /// The counter's name is longer than allowed.
    #[error("counter name of {0} bytes is longer than {MAX_NAME_BYTES}")]
    NameTooLong(usize),
    /// The plugin has made as many counters as it may.
    #[error("component already holds {MAX_PER_COMPONENT} counters")]
    TooMany,
    /// A token bucket that never gains tokens.
    #[error("a token bucket needs tokens-per-fill and a fill-interval above 0")]
    NeverFills,
}

impl Counters {
    /// Adds `delta` to `scope`'s counter `name` (created at 0) and returns the new value.
    pub fn add(&self, scope: &str, name: &str, delta: i64) -> Result<i64, CounterError> {
        if name.len() > MAX_NAME_BYTES {
            return Err(CounterError::NameTooLong(name.len()));
        }
        let mut scopes = self
            .scopes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let values = match scopes.get_mut(scope) {
            Some(values) => values,
            None => scopes.entry(scope.to_string()).or_default(),
        };
        if let Some(value) = values.get_mut(name) {
            *value = value.wrapping_add(delta);
            return Ok(*value);
        }
        if values.len() >= MAX_PER_COMPONENT {
            return Err(CounterError::TooMany);
        }
        values.insert(name.to_string(), delta);
        Ok(delta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_apart_and_bounded() {
        let counters = Counters::default();
        assert_eq!(counters.add("builtin:outlier", "streak/a", 5), Ok(5));
        assert_eq!(counters.add("default/plugin", "streak/a", 1), Ok(1));
        assert_eq!(counters.add("builtin:outlier", "streak/a", 0), Ok(5));
        let long = "x".repeat(MAX_NAME_BYTES + 1);
        assert_eq!(
            counters.add("p", &long, 1),
            Err(CounterError::NameTooLong(MAX_NAME_BYTES + 1))
        );
        for i in 0..MAX_PER_COMPONENT - 1 {
            counters.add("p", &i.to_string(), 1).unwrap();
        }
        assert_eq!(counters.add("p", "one more", 1), Ok(1));
        assert_eq!(counters.add("p", "too many", 1), Err(CounterError::TooMany));
        assert_eq!(counters.add("q", "fine", 1), Ok(1));
    }
}
