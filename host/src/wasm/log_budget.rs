//! What a component may write to the gateway's log: lines cut to a bounded length, and a
//! bounded number of lines a second, the rest counted and reported as dropped.

use std::sync::atomic::{AtomicU64, Ordering};

/// The longest line a component may log, in bytes; longer ones are cut.
pub const MAX_LINE_BYTES: usize = 4096;
/// Lines a component may log each second; more are dropped and counted.
pub const LINES_PER_SECOND: u64 = 100;

/// One component's log allowance, shared by its instances.
#[derive(Debug, Default)]
pub struct LogBudget {
    /// The second (since the Unix epoch) the count is for.
    second: AtomicU64,
    /// Lines logged in that second.
    lines: AtomicU64,
    /// Lines dropped since the last report of them.
    unreported: AtomicU64,
    /// Lines dropped in all.
    pub dropped: AtomicU64,
}

/// Whether a line may be written, and how many were dropped before it.
#[derive(Debug, PartialEq, Eq)]
pub enum Allowance {
    /// Write the line, noting the lines dropped since the last one.
    Write {
        /// Lines dropped since the last written.
        dropped_before: u64,
    },
    /// Drop the line: the budget is spent.
    Drop,
}

impl LogBudget {
    /// Takes one line from the budget of second `now`.
    pub fn take(&self, now: u64) -> Allowance {
        if self.second.swap(now, Ordering::Relaxed) != now {
            self.lines.store(0, Ordering::Relaxed);
        }
        if self.lines.fetch_add(1, Ordering::Relaxed) >= LINES_PER_SECOND {
            self.unreported.fetch_add(1, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return Allowance::Drop;
        }
        Allowance::Write {
            dropped_before: self.unreported.swap(0, Ordering::Relaxed),
        }
    }
}

/// `message` cut to [`MAX_LINE_BYTES`] on a character boundary, saying how much was cut.
pub fn bounded(message: &str) -> std::borrow::Cow<'_, str> {
    if message.len() <= MAX_LINE_BYTES {
        return message.into();
    }
    let mut end = MAX_LINE_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes cut)", &message[..end], message.len() - end).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_past_the_rate_and_reports_it_next_second() {
        let budget = LogBudget::default();
        for _ in 0..LINES_PER_SECOND {
            assert_eq!(budget.take(7), Allowance::Write { dropped_before: 0 });
        }
        assert_eq!(budget.take(7), Allowance::Drop);
        assert_eq!(budget.take(7), Allowance::Drop);
        assert_eq!(budget.take(8), Allowance::Write { dropped_before: 2 });
        assert_eq!(budget.dropped.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn cuts_long_lines_on_a_character_boundary() {
        let line = "é".repeat(MAX_LINE_BYTES);
        let cut = bounded(&line);
        assert!(cut.len() < MAX_LINE_BYTES + 40, "{}", cut.len());
        assert!(cut.ends_with("bytes cut)"));
        assert_eq!(bounded("short"), "short");
    }
}
