//! Token buckets held by the host for the policies (a rate limit per client, say): like
//! counters, they outlive instances and reloads, and each component sees only its own.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::counters::{CounterError, MAX_NAME_BYTES};

/// The most buckets one component holds; past it, the one used longest ago is dropped.
pub const MAX_PER_COMPONENT: usize = 16_384;

/// A bucket's shape.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// The most tokens it holds (it starts full).
    pub max_tokens: u32,
    /// Tokens added every `fill_interval`.
    pub tokens_per_fill: u32,
    /// How often tokens are added.
    pub fill_interval: Duration,
}

/// Token buckets, kept per component.
#[derive(Debug, Default)]
pub struct Buckets {
    scopes: Mutex<HashMap<String, HashMap<String, Bucket>>>,
}

#[derive(Debug)]
struct Bucket {
    tokens: u32,
    /// When tokens were last added (whole intervals since).
    filled: Instant,
    used: Instant,
}

impl Buckets {
    /// Takes `cost` tokens from `scope`'s bucket `name` of `shape`, at `now`: the tokens
    /// left, or how long until `cost` are there.
    pub fn take(
        &self,
        (scope, name): (&str, &str),
        shape: Shape,
        cost: u32,
        now: Instant,
    ) -> Result<Result<u32, Duration>, CounterError> {
        if name.len() > MAX_NAME_BYTES {
            return Err(CounterError::NameTooLong(name.len()));
        }
        if shape.fill_interval.is_zero() || shape.tokens_per_fill == 0 {
            return Err(CounterError::NeverFills);
        }
        let mut scopes = self
            .scopes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let buckets = match scopes.get_mut(scope) {
            Some(buckets) => buckets,
            None => scopes.entry(scope.to_string()).or_default(),
        };
        if !buckets.contains_key(name) && buckets.len() >= MAX_PER_COMPONENT {
            let oldest = buckets
                .iter()
                .min_by_key(|(_, b)| b.used)
                .map(|(n, _)| n.clone());
            oldest.map(|oldest| buckets.remove(&oldest));
        }
        let bucket = buckets.entry(name.to_string()).or_insert(Bucket {
            tokens: shape.max_tokens,
            filled: now,
            used: now,
        });
        Ok(bucket.take(shape, cost, now))
    }
}

impl Bucket {
    fn take(&mut self, shape: Shape, cost: u32, now: Instant) -> Result<u32, Duration> {
        let interval = shape.fill_interval;
        let fills = now.duration_since(self.filled).as_nanos() / interval.as_nanos();
        if fills > 0 {
            let added = u64::from(shape.tokens_per_fill).saturating_mul(fills as u64);
            self.tokens = (u64::from(self.tokens) + added).min(u64::from(shape.max_tokens)) as u32;
            self.filled += interval * u32::try_from(fills).unwrap_or(u32::MAX);
        }
        self.used = now;
        if self.tokens >= cost {
            self.tokens -= cost;
            return Ok(self.tokens);
        }
        let missing = cost - self.tokens;
        let fills = missing.div_ceil(shape.tokens_per_fill);
        let next = self.filled + interval * fills;
        Err(next.saturating_duration_since(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHAPE: Shape = Shape {
        max_tokens: 3,
        tokens_per_fill: 1,
        fill_interval: Duration::from_secs(1),
    };

    #[test]
    fn a_bucket_starts_full_empties_and_fills_by_whole_intervals() {
        let buckets = Buckets::default();
        let start = Instant::now();
        let take = |at: Duration| buckets.take(("p", "client"), SHAPE, 1, start + at).unwrap();
        assert_eq!(take(Duration::ZERO), Ok(2));
        assert_eq!(take(Duration::ZERO), Ok(1));
        assert_eq!(take(Duration::ZERO), Ok(0));
        assert_eq!(
            take(Duration::from_millis(400)),
            Err(Duration::from_millis(600))
        );
        assert_eq!(take(Duration::from_millis(1000)), Ok(0));
        // Never more than full, however long it waits.
        assert_eq!(take(Duration::from_secs(60)), Ok(2));
    }

    #[test]
    fn buckets_are_apart_per_component_and_name_and_bounded() {
        let buckets = Buckets::default();
        let now = Instant::now();
        assert_eq!(buckets.take(("a", "x"), SHAPE, 3, now).unwrap(), Ok(0));
        assert_eq!(buckets.take(("a", "y"), SHAPE, 1, now).unwrap(), Ok(2));
        assert_eq!(buckets.take(("b", "x"), SHAPE, 1, now).unwrap(), Ok(2));
        for i in 0..MAX_PER_COMPONENT + 1 {
            buckets
                .take(("c", &i.to_string()), SHAPE, 1, now)
                .unwrap()
                .unwrap();
        }
        let scopes = buckets.scopes.lock().unwrap();
        assert_eq!(scopes["c"].len(), MAX_PER_COMPONENT);
        drop(scopes);
        let never = Shape {
            tokens_per_fill: 0,
            ..SHAPE
        };
        assert!(buckets.take(("a", "z"), never, 1, now).is_err());
    }
}
