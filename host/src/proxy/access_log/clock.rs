//! Wall-clock start times without a second clock read per request: each thread anchors
//! the monotonic clock to the wall clock and re-anchors it whenever it hands its buffer
//! to the writer (at least every [`super::FLUSH_EVERY`] on a worker), so that a step of
//! the wall clock shows in the log within that time.

use std::cell::Cell;
use std::time::{Instant, SystemTime};

thread_local! {
    /// A monotonic instant and the wall-clock time read with it.
    static ANCHOR: Cell<(Instant, SystemTime)> = Cell::new(now());
}

fn now() -> (Instant, SystemTime) {
    (Instant::now(), SystemTime::now())
}

/// The wall-clock time of `instant`.
pub fn wall_clock(instant: Instant) -> SystemTime {
    let (anchor, wall) = ANCHOR.get();
    match instant.checked_duration_since(anchor) {
        Some(after) => wall + after,
        None => wall - anchor.duration_since(instant),
    }
}

/// Anchors this thread's clock again.
pub fn reanchor() {
    ANCHOR.set(now());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn an_instant_maps_to_the_wall_clock_time_it_was_read_at() {
        let (instant, wall) = now();
        reanchor();
        let mapped = wall_clock(instant);
        let off = mapped.duration_since(wall).unwrap_or_else(|e| e.duration());
        assert!(off < Duration::from_millis(5), "{off:?}");
        let later = wall_clock(instant + Duration::from_secs(3));
        assert_eq!(
            later.duration_since(mapped).unwrap(),
            Duration::from_secs(3)
        );
    }
}
