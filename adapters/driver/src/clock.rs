//! Time conversion. The core counts microseconds from an origin the adapter chooses; the
//! driver takes the moment the client starts as that origin, so the core's numbers stay small
//! and readable in logs. The conversion itself is the core's [`StdClock`], shared with the
//! host server.
//!
//! [`StdClock`]: sentelite_core::StdClock

use std::time::Duration as StdDuration;

use sentelite_core::Duration;

/// Converts between `std::time::Instant` and the core's [`sentelite_core::Instant`].
pub use sentelite_core::StdClock as Clock;

/// A `std` duration as a core duration (saturating, truncated to microseconds).
pub fn to_core_duration(d: StdDuration) -> Duration {
    Duration::from(d)
}

/// A core duration as a `std` duration.
pub fn to_std_duration(d: Duration) -> StdDuration {
    StdDuration::from(d)
}
