//! Reconnect delays: capped exponential backoff with jitter, reset after a successful
//! handshake. The jitter comes from a small seeded generator so the core stays free of any
//! RNG dependency and simulations are reproducible.

use crate::time::Duration;

/// Capped exponential backoff with "equal jitter": each delay is drawn from
/// `[base/2, base]` where `base = min(max, initial * 2^attempt)`.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
    rng: u64,
}

impl Backoff {
    /// A policy starting at `initial`, never exceeding `max`, with jitter seeded by `seed`.
    pub fn new(initial: Duration, max: Duration, seed: u64) -> Self {
        Self {
            initial,
            max,
            attempt: 0,
            // xorshift must not start at zero.
            rng: seed | 1,
        }
    }

    /// Consecutive failed attempts so far.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The delay before the next attempt; advances the attempt counter.
    pub fn next_delay(&mut self) -> Duration {
        // initial × 2^attempt (attempt capped at 32), saturating, by doubling: a 64-bit
        // multiplication with an overflow check is a long sequence on a 32-bit core.
        let mut base = self.initial;
        for _ in 0..self.attempt.min(32) {
            if base >= self.max {
                break;
            }
            base = base + base;
        }
        let base = base.min(self.max);
        // Saturating; on a 32-bit core this form is shorter than `saturating_add`'s.
        if let Some(next) = self.attempt.checked_add(1) {
            self.attempt = next;
        }
        let half = base.as_micros() / 2;
        let jitter = if half == 0 {
            0
        } else {
            self.next_random() % (half + 1)
        };
        Duration::from_micros(base.as_micros() - half + jitter)
    }

    /// Forget past failures (call after a successful handshake).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64* (Vigna): enough spread for jitter, not for anything secret.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_doubles_caps_and_resets() {
        let mut b = Backoff::new(
            Duration::from_millis(1000),
            Duration::from_millis(30_000),
            42,
        );
        let mut bases = [0u64; 8];
        for base in bases.iter_mut() {
            let d = b.next_delay().as_millis();
            *base = d;
        }
        let expected = [1000u64, 2000, 4000, 8000, 16000, 30000, 30000, 30000];
        for (got, want) in bases.iter().zip(expected) {
            assert!(
                *got >= want / 2 && *got <= want,
                "{got} outside [{}, {want}]",
                want / 2
            );
        }
        b.reset();
        assert!(b.next_delay().as_millis() <= 1000);
    }

    #[test]
    fn jitter_differs_between_seeds() {
        let mut a = Backoff::new(Duration::from_secs(8), Duration::from_secs(8), 1);
        let mut b = Backoff::new(Duration::from_secs(8), Duration::from_secs(8), 2);
        let da: [u64; 4] = core::array::from_fn(|_| a.next_delay().as_micros());
        let db: [u64; 4] = core::array::from_fn(|_| b.next_delay().as_micros());
        assert_ne!(da, db);
    }
}
