//! Histograms with Istio's bucket bounds (Envoy's defaults), written by one thread and
//! summed over threads on a scrape.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::{MetricEncoder, NoLabelSet};

/// Istio's bucket bounds (Envoy's default histogram buckets), in milliseconds or bytes.
const BOUNDS: [f64; BUCKETS] = [
    0.5,
    1.0,
    5.0,
    10.0,
    25.0,
    50.0,
    100.0,
    250.0,
    500.0,
    1_000.0,
    2_500.0,
    5_000.0,
    10_000.0,
    30_000.0,
    60_000.0,
    300_000.0,
    600_000.0,
    1_800_000.0,
    3_600_000.0,
];

/// The number of bounds.
pub const BUCKETS: usize = 19;

/// Twice each bound, so that the limits are whole numbers.
const DOUBLED: [u64; BUCKETS] = [
    1, 2, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 60_000, 120_000, 600_000,
    1_200_000, 3_600_000, 7_200_000,
];

/// How observed whole numbers relate to the unit the bounds are in.
#[derive(Debug)]
pub struct Scale {
    /// The largest value in each bucket.
    limits: [u64; BUCKETS],
    /// Observed values per unit of the bounds.
    per_unit: u64,
}

impl Scale {
    const fn new(per_unit: u64) -> Self {
        let mut limits = [0; BUCKETS];
        let mut i = 0;
        while i < BUCKETS {
            limits[i] = DOUBLED[i] * per_unit / 2;
            i += 1;
        }
        Self { limits, per_unit }
    }
}

/// Durations observed in microseconds, bucketed in milliseconds.
pub static MICROSECONDS: Scale = Scale::new(1_000);

/// Sizes in bytes.
pub static BYTES: Scale = Scale::new(1);

/// Adds `by` to a value that only the calling thread writes: a plain load and store,
/// without the locked instruction of `fetch_add`.
pub fn bump(value: &AtomicU64, by: u64) {
    value.store(
        value.load(Ordering::Relaxed).wrapping_add(by),
        Ordering::Relaxed,
    );
}

/// A histogram of whole numbers, written by one thread and read by scrapes.
#[derive(Debug)]
pub struct Histogram {
    scale: &'static Scale,
    /// Observations per bucket (not cumulative); the rest fell above the last bound.
    buckets: [AtomicU64; BUCKETS],
    count: AtomicU64,
    sum: AtomicU64,
}

impl Histogram {
    pub fn new(scale: &'static Scale) -> Self {
        Self {
            scale,
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, value: u64) {
        if let Some(bucket) = self.scale.limits.iter().position(|&limit| value <= limit) {
            bump(&self.buckets[bucket], 1);
        }
        bump(&self.count, 1);
        bump(&self.sum, value);
    }
}

/// The sum of one histogram over threads.
pub struct Totals {
    scale: &'static Scale,
    buckets: [u64; BUCKETS],
    count: u64,
    sum: u64,
}

impl Totals {
    /// An empty histogram on `scale`'s buckets.
    pub fn new(scale: &'static Scale) -> Self {
        Self {
            scale,
            buckets: [0; BUCKETS],
            count: 0,
            sum: 0,
        }
    }

    /// Adds another histogram's counts (on the same scale).
    pub fn add(&mut self, histogram: &Histogram) {
        for (total, bucket) in self.buckets.iter_mut().zip(&histogram.buckets) {
            *total += bucket.load(Ordering::Relaxed);
        }
        self.count += histogram.count.load(Ordering::Relaxed);
        self.sum += histogram.sum.load(Ordering::Relaxed);
    }

    /// The bucket bounds with the count at or below each, and the count of all.
    pub fn cumulative(&self) -> (&'static [f64], Vec<u64>, u64) {
        let counts = self
            .buckets
            .iter()
            .scan(0, |below, count| {
                *below += count;
                Some(*below)
            })
            .collect();
        (&BOUNDS, counts, self.count)
    }

    /// Writes the histogram, its sum in the bounds' unit.
    pub fn encode(&self, mut encoder: MetricEncoder<'_>) -> fmt::Result {
        let below: u64 = self.buckets.iter().sum();
        let buckets: Vec<(f64, u64)> = BOUNDS
            .iter()
            .zip(self.buckets)
            .map(|(&bound, count)| (bound, count))
            .chain([(f64::INFINITY, self.count.saturating_sub(below))])
            .collect();
        let sum = self.sum as f64 / self.scale.per_unit as f64;
        encoder.encode_histogram::<NoLabelSet>(sum, self.count, &buckets, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_fall_in_istios_buckets() {
        assert_eq!(MICROSECONDS.limits[0], 500);
        assert_eq!(MICROSECONDS.limits[7], 250_000);
        assert_eq!(BYTES.limits[..3], [0, 1, 5]);
        let histogram = Histogram::new(&MICROSECONDS);
        for micros in [400, 500, 501, 250_000, 4_000_000_000] {
            histogram.observe(micros);
        }
        let count = |i: usize| histogram.buckets[i].load(Ordering::Relaxed);
        assert_eq!((count(0), count(1), count(7)), (2, 1, 1));
        assert_eq!(histogram.count.load(Ordering::Relaxed), 5);
    }
}
