//! Converts between tokio's clock and the core's microsecond [`sentelite_core::Instant`].
//!
//! The origin is tokio's clock at server start, so tests that pause tokio time move the core's
//! time too.

use sentelite_core::Instant;

/// The server's time origin.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    origin: tokio::time::Instant,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Self {
            origin: tokio::time::Instant::now(),
        }
    }

    /// Now, as the core counts time.
    pub(crate) fn now(&self) -> Instant {
        let micros = u64::try_from(self.origin.elapsed().as_micros()).unwrap_or(u64::MAX);
        Instant::from_micros(micros)
    }

    /// A core deadline as a tokio instant, for `sleep_until`.
    pub(crate) fn deadline(&self, at: Instant) -> tokio::time::Instant {
        self.origin + std::time::Duration::from_micros(at.as_micros())
    }
}

/// A std duration as the core's duration (saturating).
pub(crate) fn to_core(d: std::time::Duration) -> sentelite_core::Duration {
    sentelite_core::Duration::from_micros(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}
