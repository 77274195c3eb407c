//! Request times: read from the CPU's time-stamp counter where it is invariant
//! ([`quanta`]; the monotonic clock elsewhere), at half the cost of a clock read, and
//! mapped to the wall clock without a second read per request: each thread anchors the
//! counter to the wall clock and re-anchors it whenever it hands its buffer to the
//! writer (at least every [`super::FLUSH_EVERY`] on a worker), so that a step of the
//! wall clock shows in the log within that time.

use std::cell::Cell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time as the access log reads it: cheap, monotonic, mapped to the wall
/// clock by [`since_epoch`].
pub use quanta::Instant as Stamp;

thread_local! {
    /// A monotonic instant and the wall-clock time (since the Unix epoch) read with it.
    static ANCHOR: Cell<(Stamp, Duration)> = Cell::new(now());
}

/// The counter, then the wall clock: the counter's first read calibrates it, which must
/// not come between the two.
fn now() -> (Stamp, Duration) {
    let instant = Stamp::now();
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (instant, wall)
}

/// The wall-clock time of `instant`, since the Unix epoch.
pub fn since_epoch(instant: Stamp) -> Duration {
    let (anchor, wall) = ANCHOR.get();
    match instant.checked_duration_since(anchor) {
        Some(after) => wall + after,
        None => wall.saturating_sub(anchor.duration_since(instant)),
    }
}

/// Anchors this thread's clock again.
pub fn reanchor() {
    ANCHOR.set(now());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instant_maps_to_the_wall_clock_time_it_was_read_at() {
        let (instant, wall) = now();
        reanchor();
        let mapped = since_epoch(instant);
        assert!(
            mapped.abs_diff(wall) < Duration::from_millis(5),
            "{mapped:?} {wall:?}"
        );
        let later = since_epoch(instant + Duration::from_secs(3));
        assert_eq!(later - mapped, Duration::from_secs(3));
    }
}
