//! The compact wire form of a log batch: what the client sends as the payload of one
//! `telemetry/log-batch` request, and what the server decodes.
//!
//! Repeated namespaces and event ids are sent once per batch in a string table; sequence
//! numbers are implied when consecutive and times are deltas, all as LEB128 varints. A typical
//! record (namespace, id, a short message, a little data) costs its message and data plus
//! about seven bytes. The layout is specified byte for byte in `docs/PROTOCOL.md`.
//!
//! ```text
//! batch   = version:u8(1) flags:u8 [gap] count:v first_seq:v first_time:v
//!           strings:v (len:v utf8)* record*
//! gap     = count:v by_level:v*7 first_seq:v seq_span:v first_time:v time_span:v
//! record  = head:u8 [seq_skip:v] time_delta:zv namespace:ref [id:ref] message:str [data:bytes]
//! head    = level (bits 0-2) | has_id (bit 3) | has_data (bit 4) | seq_skips (bit 5)
//! ref     = 0 str | table index + 1 (as v)
//! ```
//! `v` is an unsigned LEB128 varint, `zv` a zigzag-encoded signed one (a clock may step
//! back), `str`/`bytes` a varint length and the bytes.

use heapless::Vec;

use super::level::Level;
use super::record::{Gap, RawRecord, Record};
use super::varint::{ByteSink, Writer};
use crate::codec::EncodeError;

/// Version byte of the batch layout.
pub const BATCH_VERSION: u8 = 1;
/// Most strings in one batch's table; the encoder writes further strings inline.
pub const MAX_TABLE: usize = 32;

const FLAG_GAP: u8 = 1;
const HAS_ID: u8 = 1 << 3;
const HAS_DATA: u8 = 1 << 4;
const SEQ_SKIPS: u8 = 1 << 5;

/// Why a batch did not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BatchError {
    /// Unknown layout version.
    Version(u8),
    /// Ended in the middle of a field.
    Truncated,
    /// A varint longer than its type, a bad level, a string that is not UTF-8, a table
    /// reference out of range, unknown flag bits, or bytes after the last record.
    Malformed,
    /// More table strings than [`MAX_TABLE`].
    TableTooLarge,
}

impl core::fmt::Display for BatchError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BatchError::Version(v) => write!(f, "unknown log batch version {v}"),
            BatchError::Truncated => f.write_str("log batch ends early"),
            BatchError::Malformed => f.write_str("malformed log batch"),
            BatchError::TableTooLarge => f.write_str("log batch string table too large"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for BatchError {}

/// Encodes a batch of `records` (oldest first) and an optional `gap` into `buf`. Returns the
/// length, or [`EncodeError::BufferTooSmall`] with the exact size needed.
pub fn encode_batch<'r>(
    gap: Option<&Gap>,
    records: impl Iterator<Item = Record<'r>> + Clone,
    buf: &mut [u8],
) -> Result<usize, EncodeError> {
    let count = records.clone().count();
    encode_raw(gap, count, records.map(|r| r.raw()), buf)
}

/// [`encode_batch`] over `count` records given as bytes, so the queue can encode the records
/// it stores without decoding them or checking their text again. Walks the records twice:
/// once for the string table, once to write them.
pub(crate) fn encode_raw<'r>(
    gap: Option<&Gap>,
    count: usize,
    records: impl Iterator<Item = RawRecord<'r>> + Clone,
    buf: &mut [u8],
) -> Result<usize, EncodeError> {
    let mut table: Vec<&[u8], MAX_TABLE> = Vec::new();
    let mut head = None;
    for r in records.clone() {
        head.get_or_insert((r.seq, r.time_ms));
        remember(&mut table, r.namespace);
        if let Some(id) = r.id {
            remember(&mut table, id);
        }
    }
    let mut w = Writer::new(buf);
    w.byte(BATCH_VERSION);
    w.byte(if gap.is_some() { FLAG_GAP } else { 0 });
    if let Some(g) = gap {
        w.varint(u64::from(g.count));
        for n in g.by_level {
            w.varint(u64::from(n));
        }
        w.varint(u64::from(g.first_seq));
        w.varint(u64::from(g.last_seq.wrapping_sub(g.first_seq)));
        w.varint(g.first_time_ms);
        w.varint(g.last_time_ms.saturating_sub(g.first_time_ms));
    }
    w.varint(count as u64);
    let (mut seq, mut time) = head.unwrap_or((0, 0));
    w.varint(u64::from(seq));
    w.varint(time);
    w.varint(table.len() as u64);
    for s in &table {
        w.field(s);
    }
    for r in records {
        let skips = r.seq != seq;
        let mut h = r.level as u8;
        if r.id.is_some() {
            h |= HAS_ID;
        }
        if !r.data.is_empty() {
            h |= HAS_DATA;
        }
        if skips {
            h |= SEQ_SKIPS;
        }
        w.byte(h);
        if skips {
            w.varint(u64::from(r.seq.wrapping_sub(seq)));
        }
        let delta = r.time_ms.wrapping_sub(time) as i64;
        w.varint(((delta << 1) ^ (delta >> 63)) as u64);
        write_ref(&mut w, &table, r.namespace);
        if let Some(id) = r.id {
            write_ref(&mut w, &table, id);
        }
        w.field(r.message);
        if !r.data.is_empty() {
            w.field(r.data);
        }
        seq = r.seq.wrapping_add(1);
        time = r.time_ms;
    }
    w.finish()
        .map_err(|required| EncodeError::BufferTooSmall { required })
}

/// Puts `s` in the string table unless it is there; a full table leaves it out, and the
/// records then carry it inline.
fn remember<'r>(table: &mut Vec<&'r [u8], MAX_TABLE>, s: &'r [u8]) {
    if position(table, s).is_none() {
        let _ = table.push(s);
    }
}

/// Where `s` is in the string table.
fn position(table: &[&[u8]], s: &[u8]) -> Option<usize> {
    table.iter().position(|t| *t == s)
}

fn write_ref(w: &mut Writer<'_>, table: &[&[u8]], s: &[u8]) {
    match position(table, s) {
        Some(i) => w.varint(i as u64 + 1),
        None => {
            w.varint(0);
            w.field(s);
        }
    }
}

/// Reads a batch, borrowing its strings.
#[derive(Debug, Clone)]
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, BatchError> {
        let (&b, rest) = self.bytes.split_first().ok_or(BatchError::Truncated)?;
        self.bytes = rest;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, BatchError> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(BatchError::Malformed);
            }
            n |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(BatchError::Malformed)
    }

    fn u32(&mut self) -> Result<u32, BatchError> {
        u32::try_from(self.varint()?).map_err(|_| BatchError::Malformed)
    }

    fn bytes(&mut self) -> Result<&'a [u8], BatchError> {
        let len = usize::try_from(self.varint()?).map_err(|_| BatchError::Malformed)?;
        if len > self.bytes.len() {
            return Err(BatchError::Truncated);
        }
        let (b, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(b)
    }

    fn str(&mut self) -> Result<&'a str, BatchError> {
        core::str::from_utf8(self.bytes()?).map_err(|_| BatchError::Malformed)
    }
}

/// A decoded batch: the gap it reports and its records.
#[derive(Debug, Clone)]
pub struct DecodedBatch<'a> {
    /// Records the client dropped, if it reports any.
    pub gap: Option<Gap>,
    /// Number of records.
    pub count: usize,
    table: Vec<&'a str, MAX_TABLE>,
    first_seq: u32,
    first_time: u64,
    body: &'a [u8],
}

/// Decodes the batch header and string table; the records are decoded by
/// [`DecodedBatch::records`]. [`validate`](DecodedBatch::validate) walks them all once.
pub fn decode_batch(bytes: &[u8]) -> Result<DecodedBatch<'_>, BatchError> {
    let mut r = Reader { bytes };
    let version = r.byte()?;
    if version != BATCH_VERSION {
        return Err(BatchError::Version(version));
    }
    let flags = r.byte()?;
    if flags & !FLAG_GAP != 0 {
        return Err(BatchError::Malformed);
    }
    let gap = if flags & FLAG_GAP != 0 {
        let count = r.u32()?;
        let mut by_level = [0u32; 7];
        for n in &mut by_level {
            *n = r.u32()?;
        }
        let first_seq = r.u32()?;
        let last_seq = first_seq.wrapping_add(r.u32()?);
        let first_time_ms = r.varint()?;
        let last_time_ms = first_time_ms
            .checked_add(r.varint()?)
            .ok_or(BatchError::Malformed)?;
        Some(Gap {
            count,
            by_level,
            first_seq,
            last_seq,
            first_time_ms,
            last_time_ms,
        })
    } else {
        None
    };
    let count = usize::try_from(r.varint()?).map_err(|_| BatchError::Malformed)?;
    // Every record takes at least four bytes: a count beyond that is a lie.
    if count > bytes.len() {
        return Err(BatchError::Malformed);
    }
    let first_seq = r.u32()?;
    let first_time = r.varint()?;
    let strings = r.varint()?;
    if strings > MAX_TABLE as u64 {
        return Err(BatchError::TableTooLarge);
    }
    let mut table = Vec::new();
    for _ in 0..strings {
        let _ = table.push(r.str()?);
    }
    Ok(DecodedBatch {
        gap,
        count,
        table,
        first_seq,
        first_time,
        body: r.bytes,
    })
}

impl<'a> DecodedBatch<'a> {
    /// The records, oldest first. Each item is a record or the error that stops the walk.
    pub fn records(&self) -> BatchRecords<'_, 'a> {
        BatchRecords {
            batch: self,
            reader: Reader { bytes: self.body },
            left: self.count,
            seq: self.first_seq,
            time: self.first_time,
            failed: false,
        }
    }

    /// Walks every record once, so a server can refuse a malformed batch as a whole before
    /// storing any of it.
    pub fn validate(&self) -> Result<(), BatchError> {
        self.validate_each(|_| ())
    }

    /// [`validate`](DecodedBatch::validate), handing each record to `seen` on the way, so a
    /// server can check a batch and index it in one pass.
    pub fn validate_each(&self, mut seen: impl FnMut(&Record<'a>)) -> Result<(), BatchError> {
        let mut records = self.records();
        for r in records.by_ref() {
            seen(&r?);
        }
        if records.reader.bytes.is_empty() {
            Ok(())
        } else {
            Err(BatchError::Malformed)
        }
    }
}

/// Iterator over a decoded batch's records.
#[derive(Debug)]
pub struct BatchRecords<'b, 'a> {
    batch: &'b DecodedBatch<'a>,
    reader: Reader<'a>,
    left: usize,
    seq: u32,
    time: u64,
    failed: bool,
}

impl<'a> BatchRecords<'_, 'a> {
    fn string(&mut self) -> Result<&'a str, BatchError> {
        match self.reader.varint()? {
            0 => self.reader.str(),
            i => usize::try_from(i - 1)
                .ok()
                .and_then(|i| self.batch.table.get(i).copied())
                .ok_or(BatchError::Malformed),
        }
    }

    fn record(&mut self) -> Result<Record<'a>, BatchError> {
        let head = self.reader.byte()?;
        if head & 0xc0 != 0 {
            return Err(BatchError::Malformed);
        }
        let level = Level::from_u8(head & 0x07).ok_or(BatchError::Malformed)?;
        if head & SEQ_SKIPS != 0 {
            self.seq = self.seq.wrapping_add(self.reader.u32()?);
        }
        let z = self.reader.varint()?;
        let delta = ((z >> 1) as i64) ^ -((z & 1) as i64);
        let time_ms = self.time.wrapping_add(delta as u64);
        let namespace = self.string()?;
        let id = if head & HAS_ID != 0 {
            Some(self.string()?)
        } else {
            None
        };
        let message = self.reader.str()?;
        let data = if head & HAS_DATA != 0 {
            self.reader.bytes()?
        } else {
            &[]
        };
        let record = Record {
            seq: self.seq,
            time_ms,
            level,
            namespace,
            id,
            message,
            data,
        };
        self.seq = self.seq.wrapping_add(1);
        self.time = time_ms;
        Ok(record)
    }
}

impl<'a> Iterator for BatchRecords<'_, 'a> {
    type Item = Result<Record<'a>, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 || self.failed {
            return None;
        }
        self.left -= 1;
        let record = self.record();
        self.failed = record.is_err();
        Some(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> [Record<'static>; 3] {
        let r = Record {
            seq: 41,
            time_ms: 1_764_590_000_000,
            level: Level::Warn,
            namespace: "app.sensor",
            id: Some("app.sensor/read-failed"),
            message: "read failed",
            data: &[0xa1, 0x61, 0x6e, 0x03],
        };
        [
            r,
            Record {
                seq: 42,
                time_ms: r.time_ms + 250,
                ..r
            },
            Record {
                seq: 45,
                time_ms: r.time_ms + 100,
                level: Level::Error,
                id: None,
                data: &[],
                ..r
            },
        ]
    }

    #[test]
    fn a_batch_round_trips_with_gaps_skips_and_a_clock_step_back() {
        let records = sample();
        let gap = Gap::of(43, Level::Debug, 5);
        let mut buf = [0u8; 256];
        let n = encode_batch(Some(&gap), records.iter().copied(), &mut buf).unwrap();
        let batch = decode_batch(&buf[..n]).unwrap();
        batch.validate().unwrap();
        assert_eq!(batch.gap, Some(gap));
        let back: heapless::Vec<Record<'_>, 4> = batch.records().map(Result::unwrap).collect();
        assert_eq!(back.as_slice(), &records);
    }

    #[test]
    fn a_typical_record_costs_little_beyond_its_text() {
        let records = sample();
        let mut buf = [0u8; 512];
        let one = encode_batch(None, records[..1].iter().copied(), &mut buf).unwrap();
        let two = encode_batch(None, records[..2].iter().copied(), &mut buf).unwrap();
        let text = records[1].message.len() + records[1].data.len();
        // The second record repeats namespace and id: they come from the table.
        assert!(
            two - one <= text + 7,
            "{} bytes for {text} of text",
            two - one
        );
    }

    #[test]
    fn too_small_a_buffer_reports_the_size_needed() {
        let records = sample();
        let mut big = [0u8; 256];
        let n = encode_batch(None, records.iter().copied(), &mut big).unwrap();
        let mut small = [0u8; 16];
        assert_eq!(
            encode_batch(None, records.iter().copied(), &mut small),
            Err(EncodeError::BufferTooSmall { required: n })
        );
    }

    #[test]
    fn hostile_batches_are_refused() {
        assert_eq!(decode_batch(&[]).unwrap_err(), BatchError::Truncated);
        assert_eq!(decode_batch(&[9, 0]).unwrap_err(), BatchError::Version(9));
        assert_eq!(decode_batch(&[1, 0x80]).unwrap_err(), BatchError::Malformed);
        // count 200 in a 6-byte batch
        assert_eq!(
            decode_batch(&[1, 0, 0xc8, 0x01, 0, 0]).unwrap_err(),
            BatchError::Malformed
        );
        // 40 table strings
        assert_eq!(
            decode_batch(&[1, 0, 0, 0, 0, 40]).unwrap_err(),
            BatchError::TableTooLarge
        );
        // one record, table index 5 of an empty table
        let b = decode_batch(&[1, 0, 1, 0, 0, 0, 3, 0, 5, 0]).unwrap();
        assert_eq!(b.validate(), Err(BatchError::Malformed));
        // trailing bytes after the last record
        let b = decode_batch(&[1, 0, 1, 0, 0, 0, 3, 0, 0, 0, 0, 0xff]).unwrap();
        assert_eq!(b.validate(), Err(BatchError::Malformed));
        // an over-long varint
        assert_eq!(
            decode_batch(&[
                1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f
            ])
            .unwrap_err(),
            BatchError::Malformed
        );
    }
}
