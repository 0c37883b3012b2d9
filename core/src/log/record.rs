//! One log record as the device queues it, and the gap record that stands for records it had
//! to drop.
//!
//! The client context (client id, uid, boot id) is the same for every record of a connection,
//! so it is not repeated per record: the server adds it from the connection's Hello.

use serde::{Deserialize, Serialize};

use super::level::Level;

/// A log record, borrowing its strings. `(boot_id, seq)` names it uniquely: the boot id comes
/// from the connection's Hello, `seq` counts the records this boot accepted, with no holes
/// except the ones a [`Gap`] accounts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Record<'a> {
    /// Position in this boot's record sequence.
    pub seq: u32,
    /// Milliseconds on the client's clock: Unix time when it has one, else time since boot.
    pub time_ms: u64,
    /// How severe.
    pub level: Level,
    /// Where it comes from (`my.app.sensor`).
    pub namespace: &'a str,
    /// Optional event id (`my.app/sensor-failed`), for records that name a kind of event.
    pub id: Option<&'a str>,
    /// Human-readable text.
    pub message: &'a str,
    /// Structured data: a CBOR map in the [`crate::value`] form, or empty.
    pub data: &'a [u8],
}

/// The fields a caller gives when logging; the queue assigns the sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewRecord<'a> {
    /// See [`Record::time_ms`].
    pub time_ms: u64,
    /// See [`Record::level`].
    pub level: Level,
    /// See [`Record::namespace`].
    pub namespace: &'a str,
    /// See [`Record::id`].
    pub id: Option<&'a str>,
    /// See [`Record::message`].
    pub message: &'a str,
    /// See [`Record::data`].
    pub data: &'a [u8],
}

impl<'a> NewRecord<'a> {
    /// The record it becomes with sequence number `seq`.
    pub fn with_seq(&self, seq: u32) -> Record<'a> {
        Record {
            seq,
            time_ms: self.time_ms,
            level: self.level,
            namespace: self.namespace,
            id: self.id,
            message: self.message,
            data: self.data,
        }
    }
}

/// A record as bytes: what the batch encoder needs, without checking text that was valid
/// UTF-8 when it was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawRecord<'a> {
    pub seq: u32,
    pub time_ms: u64,
    pub level: Level,
    pub namespace: &'a [u8],
    pub id: Option<&'a [u8]>,
    pub message: &'a [u8],
    pub data: &'a [u8],
}

impl<'a> RawRecord<'a> {
    /// The record with its text checked; `None` if a text field is not UTF-8.
    pub fn to_record(self) -> Option<Record<'a>> {
        let text = |b| core::str::from_utf8(b).ok();
        Some(Record {
            seq: self.seq,
            time_ms: self.time_ms,
            level: self.level,
            namespace: text(self.namespace)?,
            id: match self.id {
                Some(id) => Some(text(id)?),
                None => None,
            },
            message: text(self.message)?,
            data: self.data,
        })
    }
}

impl<'a> Record<'a> {
    pub(crate) fn raw(&self) -> RawRecord<'a> {
        RawRecord {
            seq: self.seq,
            time_ms: self.time_ms,
            level: self.level,
            namespace: self.namespace.as_bytes(),
            id: self.id.map(str::as_bytes),
            message: self.message.as_bytes(),
            data: self.data,
        }
    }
}

/// Records the client accepted but had to drop, summed: sent in-band so the server always
/// knows what it did not get. Sequence numbers of dropped records all lie in
/// `first_seq..=last_seq`; the records of that range the server did receive are the ones not
/// dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Gap {
    /// Records dropped.
    pub count: u32,
    /// Of those, how many at each level (indexed by [`Level::index`]).
    pub by_level: [u32; 7],
    /// Lowest sequence number dropped.
    pub first_seq: u32,
    /// Highest sequence number dropped.
    pub last_seq: u32,
    /// Earliest timestamp among the dropped records.
    pub first_time_ms: u64,
    /// Latest timestamp among the dropped records.
    pub last_time_ms: u64,
}

impl Gap {
    /// A gap of the one record `seq`.
    pub fn of(seq: u32, level: Level, time_ms: u64) -> Gap {
        let mut by_level = [0; 7];
        by_level[level.index()] = 1;
        Gap {
            count: 1,
            by_level,
            first_seq: seq,
            last_seq: seq,
            first_time_ms: time_ms,
            last_time_ms: time_ms,
        }
    }

    /// Adds the counts and widens the ranges to cover `other` too. Counts saturate rather than
    /// wrap, so a gap never claims fewer losses than happened.
    pub fn merge(&mut self, other: &Gap) {
        self.count = self.count.saturating_add(other.count);
        for (mine, theirs) in self.by_level.iter_mut().zip(other.by_level) {
            *mine = mine.saturating_add(theirs);
        }
        // Sequence numbers grow within a boot; compare by distance so a wrap after 2^32
        // records still orders them.
        if seq_before(other.first_seq, self.first_seq) {
            self.first_seq = other.first_seq;
        }
        if seq_before(self.last_seq, other.last_seq) {
            self.last_seq = other.last_seq;
        }
        self.first_time_ms = self.first_time_ms.min(other.first_time_ms);
        self.last_time_ms = self.last_time_ms.max(other.last_time_ms);
    }
}

/// Adds `gap` to an optional running tally.
pub fn tally(into: &mut Option<Gap>, gap: &Gap) {
    match into {
        Some(sum) => sum.merge(gap),
        None => *into = Some(*gap),
    }
}

/// Adds the one dropped record `seq` to an optional running tally: [`tally`] of
/// [`Gap::of`], without building a gap of one and merging all its levels.
pub(crate) fn tally_one(into: &mut Option<Gap>, seq: u32, level: Level, time_ms: u64) {
    // A new tally starts empty at this record's place and counts it like any other.
    let sum = into.get_or_insert_with(|| Gap {
        count: 0,
        by_level: [0; 7],
        first_seq: seq,
        last_seq: seq,
        first_time_ms: time_ms,
        last_time_ms: time_ms,
    });
    sum.count = sum.count.saturating_add(1);
    if let Some(n) = sum.by_level.get_mut(level.index()) {
        *n = n.saturating_add(1);
    }
    if seq_before(seq, sum.first_seq) {
        sum.first_seq = seq;
    }
    if seq_before(sum.last_seq, seq) {
        sum.last_seq = seq;
    }
    sum.first_time_ms = sum.first_time_ms.min(time_ms);
    sum.last_time_ms = sum.last_time_ms.max(time_ms);
}

/// True when `a` comes before `b` in a sequence that may have wrapped.
pub(crate) fn seq_before(a: u32, b: u32) -> bool {
    a != b && b.wrapping_sub(a) < 1 << 31
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_gaps_sum_counts_and_cover_both_ranges() {
        let mut gap = Gap::of(10, Level::Warn, 500);
        gap.merge(&Gap::of(4, Level::Debug, 900));
        gap.merge(&Gap::of(12, Level::Warn, 100));
        assert_eq!(gap.count, 3);
        assert_eq!(gap.by_level[Level::Warn.index()], 2);
        assert_eq!(gap.by_level[Level::Debug.index()], 1);
        assert_eq!((gap.first_seq, gap.last_seq), (4, 12));
        assert_eq!((gap.first_time_ms, gap.last_time_ms), (100, 900));
    }

    #[test]
    fn ranges_survive_a_sequence_wrap() {
        let mut gap = Gap::of(u32::MAX, Level::Info, 1);
        gap.merge(&Gap::of(2, Level::Info, 2));
        assert_eq!((gap.first_seq, gap.last_seq), (u32::MAX, 2));
        let mut sum = None;
        tally(&mut sum, &Gap::of(7, Level::Error, 3));
        tally(&mut sum, &Gap::of(8, Level::Error, 4));
        assert_eq!(sum.map(|g| g.count), Some(2));
    }

    #[test]
    fn one_record_at_a_time_tallies_as_gaps_of_one_do() {
        let drops = [
            (10, Level::Warn, 500),
            (4, Level::Debug, 900),
            (u32::MAX, Level::Report, 100),
            (12, Level::Warn, 100),
            (3, Level::Trace, u64::MAX),
        ];
        let (mut merged, mut one_by_one) = (None, None);
        for (seq, level, time_ms) in drops {
            tally(&mut merged, &Gap::of(seq, level, time_ms));
            tally_one(&mut one_by_one, seq, level, time_ms);
            assert_eq!(one_by_one, merged);
        }
        let mut full = Some(Gap {
            count: u32::MAX,
            by_level: [u32::MAX; 7],
            ..Gap::of(1, Level::Info, 1)
        });
        tally_one(&mut full, 2, Level::Info, 2);
        assert_eq!(
            full.map(|g| (g.count, g.by_level[2])),
            Some((u32::MAX, u32::MAX))
        );
    }
}
