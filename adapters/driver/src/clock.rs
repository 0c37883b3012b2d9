//! Time conversion. The core counts microseconds from an origin the adapter chooses; the
//! driver takes the moment the client starts as that origin, so the core's numbers stay small
//! and readable in logs.

use std::time::{Duration as StdDuration, Instant as StdInstant};

use sentelite_core::{Duration, Instant};

/// Far enough ahead to mean "never" when a core instant does not fit `std::time::Instant`.
const NEVER: StdDuration = StdDuration::from_secs(100 * 365 * 24 * 3600);

/// Converts between `std::time::Instant` and the core's [`Instant`].
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: StdInstant,
}

impl Clock {
    /// A clock whose core time zero is `origin`.
    pub fn new(origin: StdInstant) -> Self {
        Self { origin }
    }

    /// A clock starting now.
    pub fn start() -> Self {
        Self::new(StdInstant::now())
    }

    /// The current core time.
    pub fn now(&self) -> Instant {
        self.to_core(StdInstant::now())
    }

    /// Microseconds since the origin; moments before it map to zero.
    pub fn to_core(&self, t: StdInstant) -> Instant {
        let micros = t.saturating_duration_since(self.origin).as_micros();
        Instant::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
    }

    /// The `std` moment of a core instant. Round trips exactly, so waking at the returned
    /// moment always finds the core deadline reached.
    pub fn to_std(&self, t: Instant) -> StdInstant {
        let offset = StdDuration::from_micros(t.as_micros());
        self.origin
            .checked_add(offset)
            .or_else(|| self.origin.checked_add(NEVER))
            .unwrap_or(self.origin)
    }
}

/// A `std` duration as a core duration (saturating, truncated to microseconds).
pub fn to_core_duration(d: StdDuration) -> Duration {
    Duration::from_micros(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// A core duration as a `std` duration.
pub fn to_std_duration(d: Duration) -> StdDuration {
    StdDuration::from_micros(d.as_micros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_micros_from_the_origin() {
        let origin = StdInstant::now();
        let clock = Clock::new(origin);
        assert_eq!(clock.to_core(origin), Instant::ZERO);
        let later = origin + StdDuration::from_millis(1500) + StdDuration::from_nanos(999);
        assert_eq!(clock.to_core(later), Instant::from_micros(1_500_000));
    }

    #[test]
    fn moments_before_the_origin_are_zero() {
        let origin = StdInstant::now() + StdDuration::from_secs(5);
        let clock = Clock::new(origin);
        assert_eq!(clock.to_core(StdInstant::now()), Instant::ZERO);
    }

    #[test]
    fn deadlines_round_trip_so_a_wake_is_never_early() {
        let clock = Clock::start();
        for micros in [0u64, 1, 999, 1_000_001, 86_400_000_000] {
            let deadline = Instant::from_micros(micros);
            let wake = clock.to_std(deadline);
            assert_eq!(clock.to_core(wake), deadline);
            // Any moment at or after the wake reads as at or after the deadline.
            assert!(clock.to_core(wake + StdDuration::from_nanos(1)) >= deadline);
        }
    }

    #[test]
    fn an_unrepresentable_deadline_becomes_far_future() {
        let clock = Clock::start();
        let wake = clock.to_std(Instant::from_micros(u64::MAX));
        assert!(wake > StdInstant::now() + StdDuration::from_secs(365 * 24 * 3600));
    }

    #[test]
    fn durations_convert_both_ways() {
        assert_eq!(
            to_core_duration(StdDuration::from_millis(250)),
            Duration::from_millis(250)
        );
        assert_eq!(
            to_std_duration(Duration::from_micros(42)),
            StdDuration::from_micros(42)
        );
        assert_eq!(
            to_core_duration(StdDuration::MAX),
            Duration::from_micros(u64::MAX)
        );
    }
}
