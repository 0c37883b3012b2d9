//! The client's log queue: encoded records in a byte buffer the caller owns, sent in batches,
//! kept until the server acknowledges them, and never dropped without being counted.
//!
//! Records live in `buf[start..end]`, oldest first, each in the form of [`super::entry`]: a
//! fixed header with the level, sequence number and time, then the text fields with their
//! lengths, so neither eviction nor batch encoding has to decode a record. Taking a batch marks the oldest records as in flight; an ack removes them, a
//! disconnect or a refusal puts them back in line. At most one batch is in flight, so an ack
//! can never be matched to the wrong records, and a stale ack (from before a reconnect) is
//! recognised by its batch id and ignored.
//!
//! When a record does not fit, the [`Overflow`] policy decides what goes: the oldest record not
//! in flight (optionally the lowest level first), the new record, or nothing (`Block`, for hosts
//! that can wait). Every dropped record is summed into a [`Gap`] that rides along with the next
//! batch, so the server knows exactly which sequence numbers it will never see.

use super::batch::encode_raw;
use super::entry::{self, HEADER};
use super::level::Level;
use super::record::{Gap, NewRecord, RawRecord, Record, tally_one};
use crate::codec::EncodeError;

/// What makes room when the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Overflow {
    /// Drop the oldest record never sent (the default: the newest records usually explain the
    /// state a device is in). Records sent once stay until acknowledged: the server may hold
    /// them already, and a loss must be certain to be counted.
    #[default]
    DropOldest,
    /// Drop the record being logged.
    DropNewest,
    /// Queue nothing and report [`Full`]; for hosts whose callers can wait.
    Block,
}

/// Limits of a [`LogQueue`]; its byte capacity is the length of the buffer it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct QueueConfig {
    /// Most records held at once (in flight included).
    pub max_records: usize,
    /// What to do when a record does not fit.
    pub overflow: Overflow,
    /// With [`Overflow::DropOldest`]: drop the oldest record of the lowest level present
    /// first, so debug lines go before errors.
    pub evict_lower_levels_first: bool,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            max_records: 1000,
            overflow: Overflow::DropOldest,
            evict_lower_levels_first: false,
        }
    }
}

/// What became of a pushed record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Pushed {
    /// Queued as `seq`, after dropping `evicted` older records to make room.
    Queued {
        /// The record's sequence number.
        seq: u32,
        /// Older records dropped for it (counted in the next gap).
        evicted: u32,
    },
    /// Not kept (no room under the policy, or larger than the whole buffer); counted in the
    /// next gap as `seq`.
    Dropped {
        /// The sequence number the record would have had.
        seq: u32,
    },
}

/// [`Overflow::Block`] found no room: nothing was queued or dropped, no sequence number used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Full;

/// Names one batch, so its ack cannot be confused with another's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BatchId(pub u32);

/// Counters of a queue's life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct QueueStats {
    /// Records queued.
    pub queued: u64,
    /// Records dropped (each also reported in a gap).
    pub dropped: u64,
    /// Records the server acknowledged.
    pub acked: u64,
    /// Batches taken (resends included).
    pub batches: u64,
    /// Batches put back after a disconnect or refusal.
    pub requeued: u64,
}

/// The records of the batch in flight, the gap sent with them, and the id its ack must carry.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'q> {
    /// Matches the ack to this batch.
    pub id: BatchId,
    /// Records dropped and not yet acknowledged, if any. A gap sent again after a failure is
    /// the same gap, byte for byte; newer drops follow in a later batch.
    pub gap: Option<Gap>,
    entries: &'q [u8],
    records: usize,
}

impl<'q> Batch<'q> {
    /// Number of records in the batch.
    pub fn len(&self) -> usize {
        self.records
    }

    /// True for a batch that only carries a gap.
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// The records, oldest first.
    pub fn records(&self) -> Entries<'q> {
        Entries {
            bytes: self.entries,
        }
    }

    /// Encodes the batch (its gap and records) in the `telemetry/log-batch` form into `buf`,
    /// straight from the stored bytes: the same result as [`super::encode_batch`] over
    /// [`Batch::records`], without decoding a record.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        encode_raw(
            self.gap.as_ref(),
            self.records,
            RawEntries {
                bytes: self.entries,
            },
            buf,
        )
    }
}

/// Iterates stored records. Entries were encoded by the queue itself; one that did not decode
/// would end the iteration rather than panic.
#[derive(Debug, Clone)]
pub struct Entries<'q> {
    bytes: &'q [u8],
}

impl<'q> Iterator for Entries<'q> {
    type Item = Record<'q>;

    fn next(&mut self) -> Option<Record<'q>> {
        let (raw, rest) = entry::read(self.bytes)?;
        self.bytes = rest;
        raw.to_record()
    }
}

/// Stored records as bytes, for the batch encoder.
#[derive(Debug, Clone)]
struct RawEntries<'q> {
    bytes: &'q [u8],
}

impl<'q> Iterator for RawEntries<'q> {
    type Item = RawRecord<'q>;

    fn next(&mut self) -> Option<RawRecord<'q>> {
        let (raw, rest) = entry::read(self.bytes)?;
        self.bytes = rest;
        Some(raw)
    }
}

#[derive(Debug, Clone, Copy)]
struct InFlight {
    id: BatchId,
    records: usize,
    bytes: usize,
    /// The batch carries the gap held in `resend_gap`.
    gap: bool,
}

/// A bounded, acknowledged log queue over a caller-owned byte buffer: a `&mut [u8]` or an
/// array on a device, a `Vec<u8>` on a host. Its length is the queue's byte capacity.
// `repr(C)`: the fields stay in the order written, so the buffer (a reference on a device)
// and the bounds every operation reads sit at the small offsets a Cortex-M0+ load or store
// reaches in one instruction; the compiler's own order put them after the gaps (68 B more).
#[repr(C)]
pub struct LogQueue<B> {
    buf: B,
    start: usize,
    end: usize,
    records: usize,
    /// The oldest records that were sent at least once (records, bytes): the server may hold
    /// them already, so they are never evicted. Dropping one would make its loss uncertain
    /// and a gap could count a record the server did store.
    sent_once: (usize, usize),
    next_seq: u32,
    next_batch: u32,
    /// Drops not yet handed to a batch.
    gap: Option<Gap>,
    /// The gap of the batch in flight, or one that was sent but not acknowledged: it goes
    /// again exactly as it was, never merged with newer drops, so a server that stored it the
    /// first time can recognise the repeat (by its first sequence number) instead of counting
    /// its losses twice. It stays here while in flight (the batch only marks that it carries
    /// it), so taking, failing and encoding a batch copy no gap. With a batch in flight it is
    /// set exactly when that batch carries it.
    resend_gap: Option<Gap>,
    in_flight: Option<InFlight>,
    config: QueueConfig,
    stats: QueueStats,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> LogQueue<B> {
    /// An empty queue holding at most `buf.len()` bytes of records; the first record gets
    /// sequence number `first_seq` (0 on a fresh boot).
    pub fn new(buf: B, config: QueueConfig, first_seq: u32) -> Self {
        Self {
            buf,
            start: 0,
            end: 0,
            records: 0,
            next_seq: first_seq,
            next_batch: 0,
            gap: None,
            resend_gap: None,
            in_flight: None,
            sent_once: (0, 0),
            config,
            stats: QueueStats::default(),
        }
    }

    /// The limits in force.
    pub fn config(&self) -> QueueConfig {
        self.config
    }

    /// Changes the limits; records already queued stay even above a lowered `max_records`
    /// until they are sent or evicted by the next push.
    pub fn set_config(&mut self, config: QueueConfig) {
        self.config = config;
    }

    /// Records held, in flight included.
    pub fn len(&self) -> usize {
        self.records
    }

    /// True when no record is held.
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Bytes of the buffer in use.
    pub fn bytes_used(&self) -> usize {
        self.end - self.start
    }

    /// Records waiting to be taken into a batch.
    pub fn unsent(&self) -> usize {
        self.records - self.in_flight.map_or(0, |f| f.records)
    }

    /// Drops not yet acknowledged and not in flight: a gap to send again, else the newer
    /// drops (the other follows in the next batch).
    pub fn pending_gap(&self) -> Option<Gap> {
        if self.in_flight.is_some() {
            self.gap
        } else {
            self.resend_gap.or(self.gap)
        }
    }

    fn gap_waiting(&self) -> bool {
        self.gap.is_some() || (self.in_flight.is_none() && self.resend_gap.is_some())
    }

    /// True when a batch is waiting for its ack.
    pub fn in_flight(&self) -> Option<BatchId> {
        self.in_flight.map(|f| f.id)
    }

    /// The sequence number the next record gets.
    pub fn next_seq(&self) -> u32 {
        self.next_seq
    }

    /// Counters.
    pub fn stats(&self) -> QueueStats {
        self.stats
    }

    /// True when there is something to send now: unsent records or an unreported gap, and no
    /// batch in flight.
    pub fn has_batch(&self) -> bool {
        self.in_flight.is_none() && (self.unsent() > 0 || self.gap_waiting())
    }

    /// True when records or a gap remain beside the batch in flight.
    pub fn has_batch_after_flight(&self) -> bool {
        self.unsent() > 0 || self.gap_waiting()
    }

    /// Queues a record, making room by the overflow policy. Only [`Overflow::Block`] returns
    /// an error; every other outcome either queues the record or counts it in the next gap.
    pub fn push(&mut self, record: &NewRecord<'_>) -> Result<Pushed, Full> {
        let seq = self.next_seq;
        let body = entry::body_len(record, seq);
        let need = body.saturating_add(HEADER);
        if body > usize::from(u16::MAX) || need > self.buf.as_ref().len() {
            if self.config.overflow == Overflow::Block {
                return Err(Full);
            }
            return Ok(self.drop_incoming(seq, record));
        }
        let mut evicted = 0u32;
        while self.records >= self.config.max_records || self.free() < need {
            match self.config.overflow {
                Overflow::Block => return Err(Full),
                Overflow::DropNewest => return Ok(self.drop_incoming(seq, record)),
                Overflow::DropOldest => match self.victim() {
                    Some(at) => {
                        self.evict(at);
                        evicted += 1;
                    }
                    // Everything left is in flight and may already be stored by the server.
                    None => return Ok(self.drop_incoming(seq, record)),
                },
            }
        }
        if self.buf.as_ref().len() - self.end < need {
            self.compact();
        }
        let at = self.end;
        // `compact` and `free` leave `need` bytes from `at`; `write` writes no more than that.
        let room = self.buf.as_mut().get_mut(at..).unwrap_or_default();
        self.end = at + entry::write(record, seq, body, room);
        self.records += 1;
        self.next_seq = seq.wrapping_add(1);
        self.stats.queued += 1;
        Ok(Pushed::Queued { seq, evicted })
    }

    /// Takes up to `max_records` of the oldest unsent records, whose stored size adds up to at
    /// most `max_bytes`, together with the unreported gap, as the batch in flight. `None` when
    /// a batch is already in flight or there is nothing to send. A record larger than
    /// `max_bytes` on its own could never be sent: it is dropped and counted in the gap.
    pub fn begin_batch(&mut self, max_records: usize, max_bytes: usize) -> Option<Batch<'_>> {
        self.take_batch(max_records, max_bytes)?;
        self.current_batch()
    }

    /// [`Self::begin_batch`] without the [`Batch`]: the id and record count of the batch now
    /// in flight. The shipper encodes it with [`Self::encode_in_flight`], which reads the gap
    /// in place instead of copying it into a `Batch` (and that `Batch` out of an `Option`).
    pub(crate) fn take_batch(
        &mut self,
        max_records: usize,
        max_bytes: usize,
    ) -> Option<(BatchId, usize)> {
        if self.in_flight.is_some() {
            return None;
        }
        let (mut records, mut bytes) = (0usize, 0usize);
        while records < max_records {
            let at = self.start + bytes;
            let Some(len) = self.entry_len(at) else {
                break;
            };
            if len > max_bytes && records == 0 && records >= self.sent_once.0 {
                // It could never be sent alone. A record sent before is kept (the server may
                // have it); the caller keeps its batch budget stable, so that cannot happen.
                self.evict(at);
                continue;
            }
            if bytes + len > max_bytes && records > 0 {
                break;
            }
            records += 1;
            bytes += len;
        }
        if records == 0 && !self.gap_waiting() {
            return None;
        }
        let id = BatchId(self.next_batch);
        self.next_batch = self.next_batch.wrapping_add(1);
        if self.resend_gap.is_none() {
            self.resend_gap = self.gap.take();
        }
        let gap = self.resend_gap.is_some();
        if records > self.sent_once.0 {
            self.sent_once = (records, bytes);
        }
        self.in_flight = Some(InFlight {
            id,
            records,
            bytes,
            gap,
        });
        self.stats.batches += 1;
        Some((id, records))
    }

    /// Encodes the batch in flight into `buf`, as [`Batch::encode`] does; `None` when no
    /// batch is in flight.
    pub(crate) fn encode_in_flight(&self, buf: &mut [u8]) -> Option<Result<usize, EncodeError>> {
        let f = self.in_flight.as_ref()?;
        let entries = RawEntries {
            bytes: self.buf.as_ref().get(self.start..self.start + f.bytes)?,
        };
        let gap = if f.gap {
            self.resend_gap.as_ref()
        } else {
            None
        };
        Some(encode_raw(gap, f.records, entries, buf))
    }

    /// The batch in flight, to encode it again (e.g. into a larger buffer).
    pub fn current_batch(&self) -> Option<Batch<'_>> {
        let f = self.in_flight.as_ref()?;
        Some(Batch {
            id: f.id,
            gap: if f.gap { self.resend_gap } else { None },
            // The records in flight are the first `f.bytes` of the queue, always held.
            entries: self.buf.as_ref().get(self.start..self.start + f.bytes)?,
            records: f.records,
        })
    }

    /// The server stored batch `id`: its records leave the queue. Returns false (and changes
    /// nothing) for an id that is not the batch in flight, such as an ack from before a
    /// reconnect.
    pub fn ack(&mut self, id: BatchId) -> bool {
        let Some(f) = self.in_flight.filter(|f| f.id == id) else {
            return false;
        };
        self.in_flight = None;
        if f.gap {
            self.resend_gap = None;
        }
        self.sent_once = (
            self.sent_once.0.saturating_sub(f.records),
            self.sent_once.1.saturating_sub(f.bytes),
        );
        self.start += f.bytes;
        self.records -= f.records;
        self.stats.acked += f.records as u64;
        if self.records == 0 {
            self.start = 0;
            self.end = 0;
        }
        true
    }

    /// Batch `id` was not stored (refused, timed out): its records and gap go back to the
    /// front of the line. Returns false for an id that is not in flight.
    pub fn requeue(&mut self, id: BatchId) -> bool {
        if self.in_flight.is_some_and(|f| f.id == id) {
            self.return_in_flight();
            true
        } else {
            false
        }
    }

    /// The connection dropped: whatever was in flight is sent again on the next connection.
    /// The server deduplicates on `(client, boot_id, seq)`, so a batch it did store before the
    /// drop is not stored twice.
    pub fn on_disconnect(&mut self) {
        self.return_in_flight();
    }

    fn return_in_flight(&mut self) {
        // A gap it carried stays in `resend_gap`, to go again as it was.
        if self.in_flight.take().is_some() {
            self.stats.requeued += 1;
        }
    }

    fn free(&self) -> usize {
        self.buf.as_ref().len() - (self.end - self.start)
    }

    fn compact(&mut self) {
        move_down(self.buf.as_mut(), 0, self.start, self.end);
        self.end -= self.start;
        self.start = 0;
    }

    /// Total length of the entry at `at`, if one starts there.
    fn entry_len(&self, at: usize) -> Option<usize> {
        entry::len(self.buf.as_ref().get(at..self.end)?)
    }

    /// The entry to evict under [`Overflow::DropOldest`]: the oldest one never sent, or the
    /// oldest never-sent one of the lowest level present.
    fn victim(&self) -> Option<usize> {
        let mut at = self.start + self.sent_once.1.max(self.in_flight.map_or(0, |f| f.bytes));
        let mut best: Option<(usize, u8)> = None;
        while let Some(len) = self.entry_len(at) {
            let Some(&level) = self.buf.as_ref().get(at + 2) else {
                break;
            };
            if !self.config.evict_lower_levels_first {
                return Some(at);
            }
            if best.is_none_or(|(_, l)| level < l) {
                best = Some((at, level));
            }
            at += len;
        }
        best.map(|(at, _)| at)
    }

    /// Removes the entry at `at` and counts it in the gap.
    fn evict(&mut self, at: usize) {
        let Some(len) = self.entry_len(at) else {
            return;
        };
        if let Some((level, seq, time_ms)) =
            entry::summary(self.buf.as_ref().get(at..).unwrap_or_default())
        {
            self.lose(seq, level, time_ms);
        }
        move_down(self.buf.as_mut(), at, at + len, self.end);
        self.end -= len;
        self.records -= 1;
    }

    fn drop_incoming(&mut self, seq: u32, record: &NewRecord<'_>) -> Pushed {
        self.lose(seq, record.level, record.time_ms);
        self.next_seq = seq.wrapping_add(1);
        Pushed::Dropped { seq }
    }

    /// Counts record `seq`, which will never be sent, in the next gap.
    fn lose(&mut self, seq: u32, level: Level, time_ms: u64) {
        tally_one(&mut self.gap, seq, level, time_ms);
        self.stats.dropped += 1;
    }
}

/// Moves `buf[from..end]` down to start at `to` (`to <= from`), with no bounds to panic on:
/// the queue's offsets always lie in `buf`, and bytes outside it would not be moved.
///
/// A host (64-bit) may hold a large queue and moves it with `copy_within`'s one `memmove`;
/// a device moves byte by byte, which keeps `copy_within`'s panic paths out of its image.
fn move_down(buf: &mut [u8], to: usize, from: usize, end: usize) {
    if cfg!(target_pointer_width = "64") {
        if to <= from && from <= end && end <= buf.len() {
            buf.copy_within(from..end, to);
        }
    } else {
        move_down_by_byte(buf, to, from, end);
    }
}

/// [`move_down`] one byte at a time.
fn move_down_by_byte(buf: &mut [u8], to: usize, from: usize, end: usize) {
    let Some(span) = buf.get_mut(to..end) else {
        return;
    };
    let Some(shift) = from.checked_sub(to) else {
        return;
    };
    let mut i = 0;
    while let Some(&b) = span.get(i + shift) {
        if let Some(d) = span.get_mut(i) {
            *d = b;
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::Level;

    /// The devices' byte-by-byte move and the hosts' `copy_within` leave the same bytes,
    /// for every start, source and end in a 12-byte buffer, bounds out of order included.
    #[test]
    fn moving_down_by_byte_is_copy_within() {
        let original: [u8; 12] = core::array::from_fn(|i| i as u8 + 1);
        for to in 0..=13 {
            for from in 0..=13 {
                for end in 0..=13 {
                    let (mut by_byte, mut whole) = (original, original);
                    move_down_by_byte(&mut by_byte, to, from, end);
                    if to <= from && from <= end && end <= whole.len() {
                        whole.copy_within(from..end, to);
                    } else if to <= from && end <= whole.len() && to <= end {
                        // A source starting past the end moves nothing.
                    } else {
                        assert_eq!(by_byte, original, "{to} {from} {end}");
                        continue;
                    }
                    assert_eq!(by_byte, whole, "{to} {from} {end}");
                }
            }
        }
    }

    fn rec(level: Level, time_ms: u64, message: &str) -> NewRecord<'_> {
        NewRecord {
            time_ms,
            level,
            namespace: "app.sensor",
            id: None,
            message,
            data: &[],
        }
    }

    fn seqs(batch: &Batch<'_>) -> [Option<u32>; 8] {
        let mut out = [None; 8];
        for (slot, r) in out.iter_mut().zip(batch.records()) {
            *slot = Some(r.seq);
        }
        out
    }

    #[test]
    fn records_come_out_in_order_and_leave_only_when_acked() {
        let mut buf = [0u8; 256];
        let mut q = LogQueue::new(&mut buf, QueueConfig::default(), 0);
        for i in 0..3 {
            assert_eq!(
                q.push(&rec(Level::Warn, i, "x")),
                Ok(Pushed::Queued {
                    seq: i as u32,
                    evicted: 0
                })
            );
        }
        let batch = q.begin_batch(2, usize::MAX).unwrap();
        let id = batch.id;
        assert_eq!(seqs(&batch)[..3], [Some(0), Some(1), None]);
        assert!(batch.gap.is_none());
        assert!(
            q.begin_batch(8, usize::MAX).is_none(),
            "one batch in flight"
        );
        assert!(!q.ack(BatchId(id.0 + 1)), "a foreign ack changes nothing");
        assert_eq!(q.len(), 3);
        assert!(q.ack(id));
        assert_eq!((q.len(), q.unsent()), (1, 1));
        let next = q.begin_batch(8, usize::MAX).unwrap();
        assert_eq!(next.records().next().map(|r| r.seq), Some(2));
    }

    #[test]
    fn a_disconnect_sends_the_same_records_again() {
        let mut buf = [0u8; 256];
        let mut q = LogQueue::new(&mut buf, QueueConfig::default(), 40);
        q.push(&rec(Level::Error, 1, "a")).unwrap();
        let first = q.begin_batch(8, usize::MAX).unwrap().id;
        q.on_disconnect();
        assert!(!q.ack(first), "an ack from the old connection is stale");
        let again = q.begin_batch(8, usize::MAX).unwrap();
        assert_ne!(again.id, first);
        assert_eq!(again.records().next().map(|r| r.seq), Some(40));
        assert_eq!(q.stats().requeued, 1);
    }

    #[test]
    fn drop_oldest_spares_the_batch_in_flight_and_reports_a_gap() {
        let mut buf = [0u8; 256];
        let config = QueueConfig {
            max_records: 3,
            ..QueueConfig::default()
        };
        let mut q = LogQueue::new(&mut buf, config, 0);
        for i in 0..3 {
            q.push(&rec(Level::Info, i, "x")).unwrap();
        }
        let id = q.begin_batch(1, usize::MAX).unwrap().id;
        assert_eq!(
            q.push(&rec(Level::Info, 10, "y")),
            Ok(Pushed::Queued { seq: 3, evicted: 1 })
        );
        let gap = q.pending_gap().unwrap();
        assert_eq!((gap.count, gap.first_seq, gap.last_seq), (1, 1, 1));
        assert!(q.ack(id));
        let batch = q.begin_batch(8, usize::MAX).unwrap();
        assert_eq!(batch.gap.map(|g| g.first_seq), Some(1));
        assert_eq!(seqs(&batch)[..3], [Some(2), Some(3), None]);
    }

    #[test]
    fn lower_levels_are_evicted_first_when_asked() {
        let mut buf = [0u8; 256];
        let config = QueueConfig {
            max_records: 3,
            evict_lower_levels_first: true,
            ..QueueConfig::default()
        };
        let mut q = LogQueue::new(&mut buf, config, 0);
        q.push(&rec(Level::Error, 0, "e")).unwrap();
        q.push(&rec(Level::Debug, 1, "d")).unwrap();
        q.push(&rec(Level::Warn, 2, "w")).unwrap();
        q.push(&rec(Level::Error, 3, "e2")).unwrap();
        let gap = q.pending_gap().unwrap();
        assert_eq!(gap.by_level[Level::Debug.index()], 1);
        assert_eq!(gap.first_seq, 1);
    }

    #[test]
    fn drop_newest_and_block_keep_what_is_queued() {
        let mut buf = [0u8; 256];
        let config = QueueConfig {
            max_records: 1,
            overflow: Overflow::DropNewest,
            ..QueueConfig::default()
        };
        let mut q = LogQueue::new(&mut buf, config, 0);
        q.push(&rec(Level::Warn, 0, "kept")).unwrap();
        assert_eq!(
            q.push(&rec(Level::Warn, 1, "new")),
            Ok(Pushed::Dropped { seq: 1 })
        );
        q.set_config(QueueConfig {
            overflow: Overflow::Block,
            ..config
        });
        assert_eq!(q.push(&rec(Level::Warn, 2, "new")), Err(Full));
        assert_eq!(q.next_seq(), 2, "a blocked push uses no sequence number");
        let batch = q.begin_batch(8, usize::MAX).unwrap();
        assert_eq!(batch.records().next().map(|r| r.message), Some("kept"));
        assert_eq!(batch.gap.map(|g| (g.count, g.first_seq)), Some((1, 1)));
    }

    #[test]
    fn byte_capacity_is_respected_and_space_is_reused() {
        let mut buf = [0u8; 64];
        let mut q = LogQueue::new(&mut buf, QueueConfig::default(), 0);
        let long = "0123456789012345678901234567890123456789";
        let mut evicted = 0;
        for i in 0..20 {
            match q.push(&rec(Level::Warn, i, long)).unwrap() {
                Pushed::Queued { evicted: e, .. } => evicted += e,
                Pushed::Dropped { .. } => panic!("one record always fits"),
            }
            assert!(q.bytes_used() <= 64);
        }
        assert_eq!(q.len(), 1);
        assert_eq!(evicted, 19);
        assert_eq!(
            q.pending_gap().map(|g| (g.count, g.last_seq)),
            Some((19, 18))
        );
        let huge = [b'x'; 100];
        let huge = core::str::from_utf8(&huge).unwrap();
        assert_eq!(
            q.push(&rec(Level::Error, 99, huge)),
            Ok(Pushed::Dropped { seq: 20 })
        );
    }

    #[test]
    fn a_batch_encodes_from_the_stored_bytes_as_from_its_records() {
        let mut buf = [0u8; 512];
        let config = QueueConfig {
            max_records: 4,
            ..QueueConfig::default()
        };
        let mut q = LogQueue::new(&mut buf, config, 300);
        for (i, level) in [
            Level::Warn,
            Level::Info,
            Level::Error,
            Level::Warn,
            Level::Fatal,
        ]
        .into_iter()
        .enumerate()
        {
            let mut r = rec(level, 1_766_108_726_643 + i as u64 * 40, "tick");
            if i % 2 == 0 {
                r.id = Some("app.sensor/tick");
                r.data = &[0xa1, 0x61, 0x6e, 0x03];
            }
            q.push(&r).unwrap();
        }
        let batch = q.begin_batch(8, usize::MAX).unwrap();
        assert!(batch.gap.is_some(), "one record was evicted");
        let (mut direct, mut decoded) = ([0u8; 256], [0u8; 256]);
        let n = batch.encode(&mut direct).unwrap();
        let m =
            crate::log::encode_batch(batch.gap.as_ref(), batch.records(), &mut decoded).unwrap();
        assert_eq!(&direct[..n], &decoded[..m]);
        let back = crate::log::decode_batch(&direct[..n]).unwrap();
        assert_eq!(back.count, 4);
        assert!(back.records().map(Result::unwrap).eq(batch.records()));
        assert_eq!(
            batch.encode(&mut decoded[..n - 1]),
            Err(EncodeError::BufferTooSmall { required: n })
        );
    }

    #[test]
    fn a_record_too_large_for_any_batch_is_dropped_not_stuck() {
        let mut buf = [0u8; 256];
        let mut q = LogQueue::new(&mut buf, QueueConfig::default(), 0);
        q.push(&rec(Level::Warn, 0, "a long message that will not fit"))
            .unwrap();
        q.push(&rec(Level::Warn, 1, "ok")).unwrap();
        let batch = q.begin_batch(8, 24).unwrap();
        assert_eq!(batch.records().next().map(|r| r.seq), Some(1));
        assert_eq!(batch.gap.map(|g| g.first_seq), Some(0));
    }
}
