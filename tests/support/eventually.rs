//! Waiting for something the gateway does in its own time (a reload, a log line, a
//! mirrored copy): poll until it holds, with one patience for every test.

use std::future::Future;
use std::time::{Duration, Instant};

/// How long a condition may take to hold, before `PORTCULLIS_TEST_PATIENCE` scales it
/// (e.g. `2` on a slow machine).
const PATIENCE: Duration = Duration::from_secs(10);

/// Between two polls.
const INTERVAL: Duration = Duration::from_millis(20);

/// How long to wait for a condition here: [`PATIENCE`] times `PORTCULLIS_TEST_PATIENCE`.
pub fn patience() -> Duration {
    let scale = std::env::var("PORTCULLIS_TEST_PATIENCE")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .unwrap_or(1.0);
    PATIENCE.mul_f64(scale)
}

/// Polls `check` until it returns `Some`, and returns that; panics with `what` (and how
/// long it waited) when it has not within [`patience`].
pub async fn eventually<T, F>(what: impl std::fmt::Display, check: impl FnMut() -> F) -> T
where
    F: Future<Output = Option<T>>,
{
    poll(patience(), what, check).await
}

/// [`eventually`], for a condition that cannot hold before `delay` has passed (a deadline
/// the gateway waits out): the patience starts after it.
pub async fn eventually_after<T, F>(
    delay: Duration,
    what: impl std::fmt::Display,
    check: impl FnMut() -> F,
) -> T
where
    F: Future<Output = Option<T>>,
{
    poll(delay + patience(), what, check).await
}

/// Polls `check` until it returns `Some`, for at most `limit`.
async fn poll<T, F>(
    limit: Duration,
    what: impl std::fmt::Display,
    mut check: impl FnMut() -> F,
) -> T
where
    F: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(started.elapsed() < limit, "not within {limit:?}: {what}");
        tokio::time::sleep(INTERVAL).await;
    }
}

/// Polls an async condition (it may `.await`) until it holds, or panics with the message
/// (formatted as `format!` does) after the common patience.
#[macro_export]
macro_rules! assert_eventually {
    ($condition:expr, $($message:tt)+) => {
        $crate::support::eventually::eventually(format!($($message)+), || async {
            ($condition).then_some(())
        })
        .await
    };
}
