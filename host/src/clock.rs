//! Converts between tokio's clock and the core's microsecond [`sentelite_core::Instant`].
//!
//! The origin is tokio's clock at server start, so tests that pause tokio time move the core's
//! time too. The conversion is the core's [`StdClock`] (shared with the client driver):
//! tokio's instants are `std` instants underneath.

use sentelite_core::{Instant, StdClock};

/// The server's time origin.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    std: StdClock,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Self {
            std: StdClock::new(tokio::time::Instant::now().into_std()),
        }
    }

    /// Now, as the core counts time.
    pub(crate) fn now(&self) -> Instant {
        self.std.to_core(tokio::time::Instant::now().into_std())
    }

    /// A core deadline as a tokio instant, for `sleep_until`; one `std` cannot represent
    /// becomes a far-future moment rather than a panic.
    pub(crate) fn deadline(&self, at: Instant) -> tokio::time::Instant {
        tokio::time::Instant::from_std(self.std.to_std(at))
    }
}

/// A std duration as the core's duration (saturating).
pub(crate) fn to_core(d: std::time::Duration) -> sentelite_core::Duration {
    sentelite_core::Duration::from(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wake_at_the_deadline_finds_it_reached_and_far_deadlines_do_not_panic() {
        let clock = Clock::new();
        let at = clock.now() + sentelite_core::Duration::from_millis(20);
        tokio::time::sleep_until(clock.deadline(at)).await;
        assert!(clock.now() >= at);
        // The largest core instant does not fit tokio's clock: a century away instead.
        let year = std::time::Duration::from_secs(365 * 24 * 3600);
        assert!(
            clock.deadline(Instant::from_micros(u64::MAX)) > tokio::time::Instant::now() + year
        );
    }
}
