//! Log levels and level sets.
//!
//! The seven levels are the ones sente-lite's users know from Trove, in rising severity. A
//! [`LevelSet`] is one byte, so the enabled levels travel cheaply in a control event and are
//! checked with one mask on every log call.

use serde::{Deserialize, Serialize};

/// How severe a record is, lowest first. The wire value is the discriminant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum Level {
    /// Step-by-step detail, usually off.
    Trace = 0,
    /// Developer detail.
    Debug = 1,
    /// Normal operation worth noting.
    Info = 2,
    /// Something unexpected that the program handled.
    Warn = 3,
    /// An operation failed.
    Error = 4,
    /// The program cannot go on.
    Fatal = 5,
    /// Always recorded, whatever the level filter (audit lines, metrics summaries).
    Report = 6,
}

impl Level {
    /// Every level, lowest first.
    pub const ALL: [Level; 7] = [
        Level::Trace,
        Level::Debug,
        Level::Info,
        Level::Warn,
        Level::Error,
        Level::Fatal,
        Level::Report,
    ];

    /// The level with wire value `n`, if there is one.
    pub const fn from_u8(n: u8) -> Option<Level> {
        match n {
            0 => Some(Level::Trace),
            1 => Some(Level::Debug),
            2 => Some(Level::Info),
            3 => Some(Level::Warn),
            4 => Some(Level::Error),
            5 => Some(Level::Fatal),
            6 => Some(Level::Report),
            _ => None,
        }
    }

    /// The lowercase name users write in settings and queries (`warn`, `error`, …).
    pub const fn name(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
            Level::Fatal => "fatal",
            Level::Report => "report",
        }
    }

    /// Parses a name as written by [`Level::name`], ignoring ASCII case.
    pub fn from_name(name: &str) -> Option<Level> {
        Level::ALL
            .into_iter()
            .find(|l| l.name().eq_ignore_ascii_case(name))
    }

    /// Position in per-level tables.
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// A set of levels, one bit per level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[serde(transparent)]
pub struct LevelSet(u8);

impl LevelSet {
    /// No level.
    pub const NONE: LevelSet = LevelSet(0);
    /// Every level.
    pub const ALL: LevelSet = LevelSet(0x7f);
    /// The default of sente-lite's remote logging: warnings and errors only.
    pub const WARN_AND_ERROR: LevelSet = LevelSet(1 << 3 | 1 << 4);

    /// The set holding exactly `levels`.
    pub const fn of(levels: &[Level]) -> LevelSet {
        let mut bits = 0u8;
        let mut i = 0;
        while i < levels.len() {
            bits |= 1 << levels[i] as u8;
            i += 1;
        }
        LevelSet(bits)
    }

    /// `level` and every level above it.
    pub const fn at_least(level: Level) -> LevelSet {
        LevelSet(0x7f & !((1u8 << level as u8) - 1))
    }

    /// The set from its bits; bits above the seven levels are ignored.
    pub const fn from_bits(bits: u8) -> LevelSet {
        LevelSet(bits & 0x7f)
    }

    /// The set from a byte of a log-control payload as it stands, as serde reads it.
    pub(super) const fn from_wire(bits: u8) -> LevelSet {
        LevelSet(bits)
    }

    /// The bits, one per level (bit 0 = trace).
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// True when `level` is in the set.
    pub const fn contains(self, level: Level) -> bool {
        self.0 & (1 << level as u8) != 0
    }

    /// The set with `level` added.
    pub const fn with(self, level: Level) -> LevelSet {
        LevelSet(self.0 | 1 << level as u8)
    }
}

impl Default for LevelSet {
    fn default() -> Self {
        LevelSet::WARN_AND_ERROR
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_order_is_severity() {
        for (i, level) in Level::ALL.into_iter().enumerate() {
            assert_eq!(level.index(), i);
            assert_eq!(Level::from_u8(i as u8), Some(level));
            assert_eq!(Level::from_name(level.name()), Some(level));
        }
        assert_eq!(Level::from_u8(7), None);
        assert_eq!(Level::from_name("WARN"), Some(Level::Warn));
        assert_eq!(Level::from_name("warning"), None);
        assert!(Level::Trace < Level::Report);
    }

    #[test]
    fn sets_hold_exactly_their_levels() {
        let set = LevelSet::default();
        assert!(set.contains(Level::Warn) && set.contains(Level::Error));
        assert!(!set.contains(Level::Info) && !set.contains(Level::Fatal));
        let from_info = LevelSet::at_least(Level::Info);
        assert!(!from_info.contains(Level::Debug));
        assert!(Level::ALL[2..].iter().all(|&l| from_info.contains(l)));
        assert_eq!(LevelSet::at_least(Level::Trace), LevelSet::ALL);
        assert_eq!(
            LevelSet::of(&[Level::Debug]).with(Level::Fatal).bits(),
            0b10_0010
        );
        assert_eq!(LevelSet::from_bits(0xff), LevelSet::ALL);
    }
}
