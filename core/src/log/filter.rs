//! Which records are kept at all: the enabled switch, the level set, 1-in-N sampling per level
//! and a token-bucket rate limit per level. Deterministic: time is passed in, sampling counts
//! rather than draws, so a test (or a user reading counters) can predict every decision.
//!
//! Records refused here never get a sequence number, so they are not losses of the queue; they
//! are counted per level in [`FilterStats`] so a user can still see how much was held back.
//!
//! Sampling and the rate limits need the `log-limits` feature (on by default). A build
//! without it keeps only the switch and the level set: its filter holds two bytes instead of
//! the counters and buckets, [`LogFilter::config`] reports no sampling and no limits, and a
//! server's request for them is answered with a warning record (see
//! [`super::LogShipper::log_unapplied`]).

use serde::{Deserialize, Serialize};

use super::level::{Level, LevelSet};
use crate::time::{Duration, Instant};

/// A token bucket: `per_second` records on average, bursts of up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Rate {
    /// Tokens added per second.
    pub per_second: u32,
    /// Most tokens held.
    pub burst: u32,
}

/// The filter's settings; the server may replace them at run time.
///
/// Serialized as one flat tuple of 16 values (the switch, the levels, the seven
/// `sample_every`, the seven `rate`): in postcard the same bytes as its fields in order
/// (docs/PROTOCOL.md 13.2), and read back in one visitor with a loop per array instead of a
/// visitor per kind of per-level value and the copies between them (64 B less in the
/// device's log-control decoder on a Cortex-M0+).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FilterConfig {
    /// Master switch: when false nothing is kept.
    pub enabled: bool,
    /// Levels kept (default warn and error).
    pub levels: LevelSet,
    /// Keep one record in N per level (0 and 1 keep all).
    pub sample_every: [u16; 7],
    /// Rate limit per level; `None` is unlimited.
    pub rate: [Option<Rate>; 7],
}

impl Serialize for FilterConfig {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut tuple = serializer.serialize_tuple(16)?;
        tuple.serialize_element(&self.enabled)?;
        tuple.serialize_element(&self.levels)?;
        for every in &self.sample_every {
            tuple.serialize_element(every)?;
        }
        for rate in &self.rate {
            tuple.serialize_element(rate)?;
        }
        tuple.end()
    }
}

impl<'de> Deserialize<'de> for FilterConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Flat;

        impl<'de> serde::de::Visitor<'de> for Flat {
            type Value = FilterConfig;

            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str("a log filter")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<FilterConfig, A::Error> {
                fn next<'de, A: serde::de::SeqAccess<'de>, T: Deserialize<'de>>(
                    seq: &mut A,
                    n: usize,
                ) -> Result<T, A::Error> {
                    seq.next_element()?
                        .ok_or_else(|| serde::de::Error::invalid_length(n, &Flat))
                }
                let mut config = FilterConfig {
                    enabled: next(&mut seq, 0)?,
                    levels: next(&mut seq, 1)?,
                    sample_every: [0; 7],
                    rate: [None; 7],
                };
                for (i, every) in config.sample_every.iter_mut().enumerate() {
                    *every = next(&mut seq, 2 + i)?;
                }
                for (i, rate) in config.rate.iter_mut().enumerate() {
                    *rate = next(&mut seq, 9 + i)?;
                }
                Ok(config)
            }
        }

        deserializer.deserialize_tuple(16, Flat)
    }
}

impl FilterConfig {
    /// True when it asks for sampling (one in more than one) or a rate limit on any level:
    /// what a build without the `log-limits` feature cannot apply.
    pub fn limits(&self) -> bool {
        self.sample_every.iter().any(|&n| n > 1) || self.rate.iter().any(Option::is_some)
    }
}

impl Default for FilterConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            levels: LevelSet::default(),
            sample_every: [1; 7],
            rate: [None; 7],
        }
    }
}

/// The filter's verdict on one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Verdict {
    /// Keep it.
    Keep,
    /// Remote logging is switched off.
    Disabled,
    /// Its level is not in the set.
    LevelOff,
    /// Sampling skipped it.
    Sampled,
    /// Its level's rate limit is exhausted.
    RateLimited,
}

/// Records held back, per level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FilterStats {
    /// Skipped by sampling.
    pub sampled: [u32; 7],
    /// Refused by the rate limit.
    pub rate_limited: [u32; 7],
}

/// Filter state for one client.
#[cfg(feature = "log-limits")]
#[derive(Debug, Clone)]
pub struct LogFilter {
    config: FilterConfig,
    seen: [u16; 7],
    /// Each level's token bucket, in thousandths of a token so slow rates refill smoothly
    /// without floats; meaningful only once the level's bit in `started` is set.
    milli_tokens: [u64; 7],
    /// When each level's bucket was last refilled.
    refilled: [Instant; 7],
    /// One bit per level whose bucket has counted a record (it starts full then): clearing
    /// it is all a new configuration needs to restart every bucket.
    started: u8,
    stats: FilterStats,
}

/// Filter state for one client: the switch and the level set only (no `log-limits`).
#[cfg(not(feature = "log-limits"))]
#[derive(Debug, Clone)]
pub struct LogFilter {
    enabled: bool,
    levels: LevelSet,
}

#[cfg(feature = "log-limits")]
impl LogFilter {
    /// A filter with `config`.
    pub fn new(config: FilterConfig) -> Self {
        Self {
            config,
            seen: [0; 7],
            milli_tokens: [0; 7],
            refilled: [Instant::ZERO; 7],
            started: 0,
            stats: FilterStats::default(),
        }
    }

    /// The settings in force.
    pub fn config(&self) -> FilterConfig {
        self.config
    }

    /// Replaces the settings; sampling counters and buckets start afresh.
    pub fn set_config(&mut self, config: FilterConfig) {
        self.config = config;
        self.seen = [0; 7];
        self.started = 0;
    }

    /// Counters of records held back.
    pub fn stats(&self) -> FilterStats {
        self.stats
    }

    /// True when a record of `level` could be kept: a cheap check before formatting a message.
    pub fn wants(&self, level: Level) -> bool {
        self.config.enabled && self.config.levels.contains(level)
    }

    /// Decides on one record of `level` logged at `now`.
    pub fn admit(&mut self, now: Instant, level: Level) -> Verdict {
        if !self.config.enabled {
            return Verdict::Disabled;
        }
        if !self.config.levels.contains(level) {
            return Verdict::LevelOff;
        }
        let i = level.index();
        let every = self.config.sample_every[i].max(1);
        let nth = self.seen[i];
        self.seen[i] = if nth + 1 >= every { 0 } else { nth + 1 };
        if nth != 0 {
            self.stats.sampled[i] = self.stats.sampled[i].saturating_add(1);
            return Verdict::Sampled;
        }
        if let Some(rate) = self.config.rate[i] {
            let cap = u64::from(rate.burst) * 1000;
            let (tokens, refilled) = (&mut self.milli_tokens[i], &mut self.refilled[i]);
            let bit = 1 << i;
            if self.started & bit == 0 {
                self.started |= bit;
                *tokens = cap;
                *refilled = now;
            }
            let elapsed = now.saturating_since(*refilled);
            // per_second tokens per 1e6 µs = per_second / 1000 milli-tokens per µs.
            let added = elapsed
                .as_micros()
                .saturating_mul(u64::from(rate.per_second))
                / 1000;
            if added > 0 {
                *tokens = tokens.saturating_add(added).min(cap);
                *refilled = now;
            }
            if *tokens < 1000 {
                self.stats.rate_limited[i] = self.stats.rate_limited[i].saturating_add(1);
                return Verdict::RateLimited;
            }
            *tokens -= 1000;
        }
        Verdict::Keep
    }
}

#[cfg(not(feature = "log-limits"))]
impl LogFilter {
    /// A filter with `config`'s switch and levels; its sampling and rate limits are not
    /// applied (this build has no `log-limits`).
    pub fn new(config: FilterConfig) -> Self {
        Self {
            enabled: config.enabled,
            levels: config.levels,
        }
    }

    /// The settings in force: the switch and levels given, no sampling, no rate limits.
    pub fn config(&self) -> FilterConfig {
        FilterConfig {
            enabled: self.enabled,
            levels: self.levels,
            ..FilterConfig::default()
        }
    }

    /// Replaces the switch and levels; sampling and rate limits are not applied.
    pub fn set_config(&mut self, config: FilterConfig) {
        *self = Self::new(config);
    }

    /// Counters of records held back: always zero, nothing is sampled or rate limited.
    pub fn stats(&self) -> FilterStats {
        FilterStats::default()
    }

    /// True when a record of `level` could be kept: a cheap check before formatting a message.
    pub fn wants(&self, level: Level) -> bool {
        self.enabled && self.levels.contains(level)
    }

    /// Decides on one record of `level`: the switch, then the level set.
    pub fn admit(&mut self, _now: Instant, level: Level) -> Verdict {
        if !self.enabled {
            Verdict::Disabled
        } else if !self.levels.contains(level) {
            Verdict::LevelOff
        } else {
            Verdict::Keep
        }
    }
}

/// How long `rate` takes to earn one token; for documentation and tests.
pub fn token_interval(rate: Rate) -> Duration {
    Duration::from_micros(1_000_000 / u64::from(rate.per_second.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_switch_decide_first() {
        let mut f = LogFilter::new(FilterConfig::default());
        assert_eq!(f.admit(Instant::ZERO, Level::Warn), Verdict::Keep);
        assert_eq!(f.admit(Instant::ZERO, Level::Info), Verdict::LevelOff);
        assert!(!f.wants(Level::Debug) && f.wants(Level::Error));
        f.set_config(FilterConfig {
            enabled: false,
            ..FilterConfig::default()
        });
        assert_eq!(f.admit(Instant::ZERO, Level::Error), Verdict::Disabled);
    }

    #[cfg(feature = "log-limits")]
    #[test]
    fn sampling_keeps_exactly_one_in_n() {
        let mut config = FilterConfig {
            levels: LevelSet::ALL,
            ..FilterConfig::default()
        };
        config.sample_every[Level::Debug.index()] = 3;
        let mut f = LogFilter::new(config);
        let kept: usize = (0..30)
            .filter(|_| f.admit(Instant::ZERO, Level::Debug) == Verdict::Keep)
            .count();
        assert_eq!(kept, 10);
        assert_eq!(f.stats().sampled[Level::Debug.index()], 20);
        assert_eq!(
            f.admit(Instant::ZERO, Level::Info),
            Verdict::Keep,
            "other levels unaffected"
        );
    }

    #[cfg(feature = "log-limits")]
    #[test]
    fn the_rate_limit_allows_a_burst_then_the_refill_rate() {
        let mut config = FilterConfig::default();
        let rate = Rate {
            per_second: 10,
            burst: 3,
        };
        config.rate[Level::Error.index()] = Some(rate);
        let mut f = LogFilter::new(config);
        let t0 = Instant::from_millis(1000);
        let burst = (0..5)
            .filter(|_| f.admit(t0, Level::Error) == Verdict::Keep)
            .count();
        assert_eq!(burst, 3);
        // One token every 100 ms afterwards: over one second, ten more.
        let mut kept = 0;
        for ms in (10..=1000).step_by(10) {
            if f.admit(t0 + Duration::from_millis(ms), Level::Error) == Verdict::Keep {
                kept += 1;
            }
        }
        assert_eq!(kept, 10);
        assert_eq!(token_interval(rate), Duration::from_millis(100));
        assert_eq!(f.stats().rate_limited[Level::Error.index()], 2 + 90);
        assert_eq!(
            f.admit(t0, Level::Warn),
            Verdict::Keep,
            "other levels unaffected"
        );
    }

    #[cfg(feature = "log-limits")]
    #[test]
    fn a_new_configuration_restarts_each_levels_bucket_full() {
        let mut config = FilterConfig {
            levels: LevelSet::ALL,
            ..FilterConfig::default()
        };
        let (slow, fast) = (
            Rate {
                per_second: 1,
                burst: 2,
            },
            Rate {
                per_second: 1,
                burst: 4,
            },
        );
        config.rate[Level::Error.index()] = Some(slow);
        config.rate[Level::Debug.index()] = Some(fast);
        let mut f = LogFilter::new(config);
        let t = Instant::from_millis(5_000);
        let kept = |f: &mut LogFilter, level| {
            (0..6)
                .filter(|_| f.admit(t, level) == Verdict::Keep)
                .count()
        };
        assert_eq!(kept(&mut f, Level::Error), 2);
        assert_eq!(
            kept(&mut f, Level::Debug),
            4,
            "its own bucket, started full"
        );
        assert_eq!(kept(&mut f, Level::Error), 0, "no time passed: still empty");
        f.set_config(config);
        assert_eq!(kept(&mut f, Level::Debug), 4, "full again");
        assert_eq!(kept(&mut f, Level::Error), 2, "full again");
        assert_eq!(kept(&mut f, Level::Info), 6, "no rate: all kept");
    }

    #[test]
    fn per_level_arrays_decode_each_level_into_its_own_slot() {
        let config = FilterConfig {
            enabled: true,
            levels: LevelSet::ALL,
            sample_every: [1, 2, 3, 400, 5, 6, 7],
            rate: [
                None,
                Some(Rate {
                    per_second: 1,
                    burst: 2,
                }),
                None,
                None,
                None,
                None,
                Some(Rate {
                    per_second: 70_000,
                    burst: 7,
                }),
            ],
        };
        let mut buf = [0u8; 128];
        let bytes = postcard::to_slice(&config, &mut buf).unwrap();
        assert_eq!(postcard::from_bytes::<FilterConfig>(bytes), Ok(config));
        // A self-describing format reads back what it wrote too.
        let json = serde_json::to_string(&config).unwrap();
        assert_eq!(serde_json::from_str::<FilterConfig>(&json).unwrap(), config);
        // Cut anywhere, one value short included: an error, never a padded array.
        for n in 0..bytes.len() {
            assert!(
                postcard::from_bytes::<FilterConfig>(&bytes[..n]).is_err(),
                "{n}"
            );
        }
    }
}
