//! A circuit breaker for log shipping: after repeated failures it stops sending (records stay
//! queued) for a cool-down, then lets one batch through as a probe. A success closes it again.
//! This keeps a device whose server is refusing or timing out from spending its radio and CPU
//! on batches that will fail.

use crate::time::{Duration, Instant};

/// When the breaker opens and how long it stays open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BreakerConfig {
    /// Consecutive failed batches that open the breaker (0 never opens it).
    pub failures_to_open: u32,
    /// How long it stays open before the probe.
    pub cool_down: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failures_to_open: 5,
            cool_down: Duration::from_secs(30),
        }
    }
}

/// The breaker's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BreakerState {
    /// Sending normally.
    Closed,
    /// Not sending until the instant given.
    Open {
        /// When the probe may go.
        until: Instant,
    },
    /// One probe batch may go; its result decides.
    HalfOpen,
}

/// Counts failures and decides whether a batch may go.
#[derive(Debug, Clone)]
pub struct Breaker {
    config: BreakerConfig,
    failures: u32,
    state: BreakerState,
    opened: u32,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            failures: 0,
            state: BreakerState::Closed,
            opened: 0,
        }
    }

    /// The limits in force.
    pub fn config(&self) -> BreakerConfig {
        self.config
    }

    /// Where it stands at `now` (an open breaker whose cool-down is over is half-open).
    pub fn state(&mut self, now: Instant) -> BreakerState {
        if let BreakerState::Open { until } = self.state
            && now >= until
        {
            self.state = BreakerState::HalfOpen;
        }
        self.state
    }

    /// True when a batch may be sent at `now`. Not inlined: the logger asks it for every
    /// record and the shipper before every batch (70 B less on a Cortex-M0+).
    #[inline(never)]
    pub fn allows(&mut self, now: Instant) -> bool {
        !matches!(self.state(now), BreakerState::Open { .. })
    }

    /// When an open breaker lets the probe through.
    pub fn reopens_at(&self) -> Option<Instant> {
        match self.state {
            BreakerState::Open { until } => Some(until),
            _ => None,
        }
    }

    /// Times it has opened.
    pub fn times_opened(&self) -> u32 {
        self.opened
    }

    /// A batch was stored.
    pub fn on_success(&mut self) {
        self.failures = 0;
        self.state = BreakerState::Closed;
    }

    /// A batch failed (refused or timed out) at `now`.
    pub fn on_failure(&mut self, now: Instant) {
        self.failures = self.failures.saturating_add(1);
        let trips = self.config.failures_to_open != 0
            && (self.failures >= self.config.failures_to_open
                || self.state == BreakerState::HalfOpen);
        if trips {
            self.state = BreakerState::Open {
                until: now + self.config.cool_down,
            };
            self.opened = self.opened.saturating_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_probes_after_the_cool_down_and_closes_on_success() {
        let config = BreakerConfig {
            failures_to_open: 3,
            cool_down: Duration::from_secs(10),
        };
        let mut b = Breaker::new(config);
        let t = Instant::from_millis(5000);
        b.on_failure(t);
        b.on_failure(t);
        assert!(b.allows(t), "two failures are not enough");
        b.on_failure(t);
        assert!(!b.allows(t + Duration::from_millis(9_999)));
        assert_eq!(b.reopens_at(), Some(t + Duration::from_secs(10)));
        assert_eq!(b.state(t + Duration::from_secs(10)), BreakerState::HalfOpen);
        // A failed probe opens it again at once.
        b.on_failure(t + Duration::from_secs(10));
        assert!(!b.allows(t + Duration::from_secs(11)));
        assert_eq!(b.times_opened(), 2);
        assert!(b.allows(t + Duration::from_secs(20)));
        b.on_success();
        assert_eq!(b.state(t + Duration::from_secs(20)), BreakerState::Closed);
        b.on_failure(t + Duration::from_secs(21));
        assert!(
            b.allows(t + Duration::from_secs(21)),
            "the count starts over"
        );
    }

    #[test]
    fn a_zero_threshold_never_opens() {
        let mut b = Breaker::new(BreakerConfig {
            failures_to_open: 0,
            cool_down: Duration::from_secs(1),
        });
        for _ in 0..100 {
            b.on_failure(Instant::ZERO);
        }
        assert!(b.allows(Instant::ZERO));
    }
}
