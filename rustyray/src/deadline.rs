//! Deadlines from timeouts a caller gives.
//!
//! A timeout too long for the clock (`Duration::MAX`, say) means "no deadline", never a panic
//! or an overflow error: every waiting call takes its deadline from [`after`].

use std::time::{Duration, Instant};

/// The instant `timeout` from now, or `None` (wait without a deadline) when the clock cannot
/// represent it.
pub(crate) fn after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_past_the_clock_is_no_deadline() {
        assert_eq!(after(Duration::MAX), None);
        assert!(after(Duration::from_secs(1)).is_some());
    }
}
