//! Counters held by the host for the policies: they outlive instances and reloads.

use std::collections::HashMap;
use std::sync::Mutex;

/// Named counters shared by every policy instance.
#[derive(Debug, Default)]
pub struct Counters {
    values: Mutex<HashMap<String, i64>>,
}

impl Counters {
    /// Adds `delta` to counter `name` (created at 0) and returns the new value.
    pub fn add(&self, name: &str, delta: i64) -> i64 {
        let mut values = self.values.lock().unwrap_or_else(|e| e.into_inner());
        match values.get_mut(name) {
            Some(value) => {
                *value = value.wrapping_add(delta);
                *value
            }
            None => {
                values.insert(name.to_string(), delta);
                delta
            }
        }
    }
}
