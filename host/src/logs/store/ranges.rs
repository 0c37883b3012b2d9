//! The sequence numbers a store holds for one `(client, boot)`, as disjoint inclusive ranges.
//!
//! Deduplication works on these rather than on a unique index per record: a client that
//! reconnects resends its unacked records, possibly grouped into batches differently, and the
//! store keeps only the ones no range covers yet. A client that never drops records has one
//! range per boot; each gap it reports splits that into one more.

use std::collections::BTreeMap;

/// Disjoint, non-adjacent inclusive ranges of sequence numbers, keyed by their first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SeqRanges {
    ranges: BTreeMap<u32, u32>,
}

/// What [`SeqRanges::insert`] changed, so the store can write the same change to its table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Merged {
    /// The range now holding the inserted one.
    pub first: u32,
    /// Its last sequence number.
    pub last: u32,
    /// First sequence numbers of ranges it absorbed (other than `first`).
    pub absorbed: Vec<u32>,
}

impl SeqRanges {
    /// Builds the set from stored `(first, last)` pairs.
    pub(crate) fn from_pairs(pairs: impl IntoIterator<Item = (u32, u32)>) -> Self {
        let mut set = Self::default();
        for (first, last) in pairs {
            set.insert(first, last);
        }
        set
    }

    /// The range that holds `seq`, if any.
    fn holding(&self, seq: u32) -> Option<(u32, u32)> {
        self.ranges
            .range(..=seq)
            .next_back()
            .map(|(&f, &l)| (f, l))
            .filter(|&(_, l)| l >= seq)
    }

    /// True when `seq` is held.
    pub(crate) fn contains(&self, seq: u32) -> bool {
        self.holding(seq).is_some()
    }

    /// True when no number of `first..=last` is held.
    pub(crate) fn disjoint(&self, first: u32, last: u32) -> bool {
        !self.contains(first) && self.ranges.range(first..=last).next().is_none()
    }

    /// True when every number of `first..=last` is held.
    pub(crate) fn covers(&self, first: u32, last: u32) -> bool {
        self.holding(first).is_some_and(|(_, l)| l >= last)
    }

    /// Adds `first..=last`, merging it with every range it overlaps or touches.
    pub(crate) fn insert(&mut self, first: u32, last: u32) -> Merged {
        let (mut lo, mut hi) = (first.min(last), first.max(last));
        let mut absorbed = Vec::new();
        // A range starting before `lo` that reaches it (or ends right before it).
        if let Some((&f, &l)) = self.ranges.range(..lo).next_back()
            && l.saturating_add(1) >= lo
        {
            lo = f;
            hi = hi.max(l);
        }
        let reach = hi.saturating_add(1);
        let touched: Vec<(u32, u32)> = self
            .ranges
            .range(lo..=reach)
            .map(|(&f, &l)| (f, l))
            .collect();
        for &(_, l) in &touched {
            hi = hi.max(l);
        }
        for (f, _) in touched {
            self.ranges.remove(&f);
            if f != lo {
                absorbed.push(f);
            }
        }
        self.ranges.insert(lo, hi);
        Merged {
            first: lo,
            last: hi,
            absorbed,
        }
    }

    /// The ranges, lowest first.
    #[cfg(test)]
    fn pairs(&self) -> Vec<(u32, u32)> {
        self.ranges.iter().map(|(&f, &l)| (f, l)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_merge_overlapping_and_touching_ranges() {
        let mut set = SeqRanges::default();
        set.insert(10, 19);
        set.insert(30, 39);
        assert_eq!(set.pairs(), vec![(10, 19), (30, 39)]);
        // Touching on the right of the first range.
        let m = set.insert(20, 25);
        assert_eq!((m.first, m.last, m.absorbed), (10, 25, vec![]));
        // Bridging the two ranges absorbs the second.
        let m = set.insert(22, 29);
        assert_eq!((m.first, m.last, m.absorbed), (10, 39, vec![30]));
        assert_eq!(set.pairs(), vec![(10, 39)]);
        // Covering from below absorbs the old start.
        let m = set.insert(0, 12);
        assert_eq!((m.first, m.last, m.absorbed), (0, 39, vec![10]));
        assert_eq!(set.pairs(), vec![(0, 39)]);
        let m = set.insert(u32::MAX, u32::MAX);
        assert_eq!((m.first, m.last), (u32::MAX, u32::MAX));
        assert_eq!(set.pairs(), vec![(0, 39), (u32::MAX, u32::MAX)]);
    }

    #[test]
    fn membership_queries_see_every_range() {
        let set = SeqRanges::from_pairs([(5, 9), (20, 20)]);
        assert!(!set.contains(4) && set.contains(5) && set.contains(9) && !set.contains(10));
        assert!(set.contains(20) && !set.contains(21));
        assert!(set.covers(5, 9) && set.covers(6, 7) && !set.covers(5, 10));
        assert!(!set.covers(9, 20), "a hole between ranges is not covered");
        assert!(set.disjoint(0, 4) && set.disjoint(10, 19) && set.disjoint(21, 100));
        assert!(!set.disjoint(0, 5) && !set.disjoint(9, 12) && !set.disjoint(10, 20));
    }
}
