//! The core's own notion of time. The core never reads a clock: adapters convert whatever
//! clock they have (embassy-time, `std::time::Instant`) into these microsecond values.

use core::ops::{Add, AddAssign, Sub};

/// A point in time, in microseconds since an origin chosen by the adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Instant {
    micros: u64,
}

/// A span of time in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Duration {
    micros: u64,
}

impl Instant {
    /// The origin.
    pub const ZERO: Instant = Instant { micros: 0 };

    /// An instant `micros` microseconds after the origin.
    pub const fn from_micros(micros: u64) -> Self {
        Self { micros }
    }

    /// An instant `millis` milliseconds after the origin.
    pub const fn from_millis(millis: u64) -> Self {
        Self {
            micros: millis.saturating_mul(1000),
        }
    }

    /// Microseconds since the origin.
    pub const fn as_micros(self) -> u64 {
        self.micros
    }

    /// Milliseconds since the origin (truncated).
    pub const fn as_millis(self) -> u64 {
        self.micros / 1000
    }

    /// Time elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub const fn saturating_since(self, earlier: Instant) -> Duration {
        Duration {
            micros: self.micros.saturating_sub(earlier.micros),
        }
    }
}

impl Duration {
    /// No time at all.
    pub const ZERO: Duration = Duration { micros: 0 };

    /// A duration of `micros` microseconds.
    pub const fn from_micros(micros: u64) -> Self {
        Self { micros }
    }

    /// A duration of `millis` milliseconds.
    pub const fn from_millis(millis: u64) -> Self {
        Self {
            micros: millis.saturating_mul(1000),
        }
    }

    /// A duration of `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self {
            micros: secs.saturating_mul(1_000_000),
        }
    }

    /// Length in microseconds.
    pub const fn as_micros(self) -> u64 {
        self.micros
    }

    /// Length in milliseconds (truncated).
    pub const fn as_millis(self) -> u64 {
        self.micros / 1000
    }

    /// Multiplies, saturating at the largest representable duration.
    pub const fn saturating_mul(self, factor: u64) -> Self {
        Self {
            micros: self.micros.saturating_mul(factor),
        }
    }

    /// The smaller of two durations.
    pub fn min(self, other: Duration) -> Duration {
        if self <= other { self } else { other }
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        Instant {
            micros: saturating_add(self.micros, rhs.micros),
        }
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, rhs: Duration) {
        *self = *self + rhs;
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_since(rhs)
    }
}

impl Add for Duration {
    type Output = Duration;
    fn add(self, rhs: Duration) -> Duration {
        Duration {
            micros: saturating_add(self.micros, rhs.micros),
        }
    }
}

impl From<core::time::Duration> for Duration {
    /// Truncated to whole microseconds, saturating at the largest representable duration.
    fn from(d: core::time::Duration) -> Self {
        Duration {
            micros: u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
        }
    }
}

impl From<Duration> for core::time::Duration {
    fn from(d: Duration) -> Self {
        core::time::Duration::from_micros(d.micros)
    }
}

/// Converts between `std::time::Instant` and the core's [`Instant`], counting from an origin
/// the adapter picks (usually its start, so the core's numbers stay small and readable).
/// Runtimes whose clock is a wrapper of `std::time::Instant` (tokio's, which tests can
/// pause) convert through it.
#[cfg(feature = "std")]
#[derive(Debug, Clone, Copy)]
pub struct StdClock {
    origin: std::time::Instant,
}

#[cfg(feature = "std")]
impl StdClock {
    /// Far enough ahead to mean "never" when a core instant does not fit `std`'s.
    const NEVER: core::time::Duration = core::time::Duration::from_secs(100 * 365 * 24 * 3600);

    /// A clock whose core time zero is `origin`.
    pub fn new(origin: std::time::Instant) -> Self {
        Self { origin }
    }

    /// A clock starting now.
    pub fn start() -> Self {
        Self::new(std::time::Instant::now())
    }

    /// The current core time.
    pub fn now(&self) -> Instant {
        self.to_core(std::time::Instant::now())
    }

    /// Microseconds since the origin; moments before it map to zero, moments beyond
    /// `u64::MAX` microseconds to the largest instant.
    pub fn to_core(&self, t: std::time::Instant) -> Instant {
        Instant {
            micros: Duration::from(t.saturating_duration_since(self.origin)).micros,
        }
    }

    /// The `std` moment of a core instant, for a timer. Round trips exactly, so waking at
    /// the returned moment always finds the core deadline reached; an instant `std` cannot
    /// represent becomes a moment a century away instead of a panic.
    pub fn to_std(&self, t: Instant) -> std::time::Instant {
        let offset = core::time::Duration::from_micros(t.micros);
        self.origin
            .checked_add(offset)
            .or_else(|| self.origin.checked_add(Self::NEVER))
            .unwrap_or(self.origin)
    }
}

/// `a + b`, saturating: every deadline the core computes goes through it. Not inlined: a
/// saturating 64-bit addition is a long sequence on a 32-bit core, and a call is shorter.
#[inline(never)]
const fn saturating_add(a: u64, b: u64) -> u64 {
    a.saturating_add(b)
}

/// The earlier of two optional deadlines; `None` means "no deadline".
pub fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    // Picks one of the two as a whole rather than rebuilding an `Option`: fewer moves of
    // 64-bit values on a 32-bit core.
    // "No deadline" compares as the last instant; `a.is_none()` settles the one tie that
    // matters (no deadline against a deadline at the last instant).
    let key = |d: Option<Instant>| d.map_or(u64::MAX, Instant::as_micros);
    if a.is_none() || key(b) < key(a) { b } else { a }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_panicking() {
        let far = Instant::from_micros(u64::MAX - 1);
        assert_eq!((far + Duration::from_secs(10)).as_micros(), u64::MAX);
        assert_eq!(Instant::ZERO - far, Duration::ZERO);
        assert_eq!(Duration::from_millis(3).as_micros(), 3000);
    }

    #[test]
    fn earliest_ignores_missing_deadlines() {
        let a = Instant::from_millis(5);
        let b = Instant::from_millis(7);
        assert_eq!(earliest(Some(b), Some(a)), Some(a));
        assert_eq!(earliest(None, Some(b)), Some(b));
        assert_eq!(earliest(None, None), None);
        assert_eq!(earliest(Some(a), Some(a)), Some(a));
        // A deadline at the last instant is still a deadline, on either side.
        let last = Some(Instant::from_micros(u64::MAX));
        assert_eq!(earliest(None, last), last);
        assert_eq!(earliest(last, None), last);
        assert_eq!(earliest(last, Some(b)), Some(b));
    }

    #[test]
    fn durations_convert_both_ways_saturating() {
        assert_eq!(
            Duration::from(core::time::Duration::from_millis(250)),
            Duration::from_millis(250)
        );
        assert_eq!(
            core::time::Duration::from(Duration::from_micros(42)),
            core::time::Duration::from_micros(42)
        );
        assert_eq!(
            Duration::from(core::time::Duration::MAX),
            Duration::from_micros(u64::MAX)
        );
    }

    #[cfg(feature = "std")]
    mod std_clock {
        use super::super::*;
        use std::time::{Duration as StdDuration, Instant as StdInstant};

        #[test]
        fn counts_micros_from_the_origin() {
            let origin = StdInstant::now();
            let clock = StdClock::new(origin);
            assert_eq!(clock.to_core(origin), Instant::ZERO);
            let later = origin + StdDuration::from_millis(1500) + StdDuration::from_nanos(999);
            assert_eq!(clock.to_core(later), Instant::from_micros(1_500_000));
        }

        #[test]
        fn moments_before_the_origin_are_zero() {
            let origin = StdInstant::now() + StdDuration::from_secs(5);
            let clock = StdClock::new(origin);
            assert_eq!(clock.to_core(StdInstant::now()), Instant::ZERO);
        }

        #[test]
        fn deadlines_round_trip_so_a_wake_is_never_early() {
            let clock = StdClock::start();
            for micros in [0u64, 1, 999, 1_000_001, 86_400_000_000] {
                let deadline = Instant::from_micros(micros);
                let wake = clock.to_std(deadline);
                assert_eq!(clock.to_core(wake), deadline);
                assert!(clock.to_core(wake + StdDuration::from_nanos(1)) >= deadline);
            }
        }

        #[test]
        fn an_unrepresentable_deadline_becomes_far_future_not_a_panic() {
            let clock = StdClock::start();
            let wake = clock.to_std(Instant::from_micros(u64::MAX));
            assert!(wake > StdInstant::now() + StdDuration::from_secs(365 * 24 * 3600));
        }
    }
}
