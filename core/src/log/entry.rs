//! The form a record takes inside the [`super::LogQueue`]'s buffer, chosen so that the hot
//! paths never decode a record: eviction reads the first fields only, and the batch encoder
//! slices the text fields out without validating them again (the queue wrote them from
//! `&str`s). Varints (LEB128) keep an entry as small as the record's postcard form.
//!
//! ```text
//! [body length: u16 LE][level: u8]                       entry header
//! [varint seq][varint time_ms]
//! [varint n][namespace: n bytes]
//! [varint 0 | varint n+1][id: n bytes]                   0: no id
//! [varint n][message: n bytes]
//! [varint n][data: n bytes]
//! ```

use super::level::Level;
use super::record::{NewRecord, RawRecord};
use super::varint::{ByteSink, Writer};

/// Bytes before each stored record's body: its length and its level.
pub(crate) const HEADER: usize = 3;

/// Length of the body of `record` stored as `seq`: what [`write`] would write, counted by
/// writing it into no room at all (the writer counts what does not fit), so the sizes can
/// never disagree and no second encoder of lengths is needed.
pub(crate) fn body_len(record: &NewRecord<'_>, seq: u32) -> usize {
    encode(record, seq, 0, &mut []).unwrap_or_else(|n| n) - HEADER
}

/// Writes `record` as `seq`, whose [`body_len`] is `body` (at most `u16::MAX`), as a whole
/// entry at the start of `buf`, which must hold `HEADER + body` bytes; returns the entry's
/// length. The queue sizes `buf` by [`body_len`]; a shorter one gets no entry (0), not a
/// cut one, and no panic.
pub(crate) fn write(record: &NewRecord<'_>, seq: u32, body: usize, buf: &mut [u8]) -> usize {
    encode(record, seq, body, buf).unwrap_or(0)
}

/// [`write`], or `Err` with the length the entry needs when `buf` is shorter.
fn encode(record: &NewRecord<'_>, seq: u32, body: usize, buf: &mut [u8]) -> Result<usize, usize> {
    let mut out = Writer::new(buf);
    out.raw(&(body as u16).to_le_bytes());
    out.byte(record.level as u8);
    out.varint(u64::from(seq));
    out.varint(record.time_ms);
    out.field(record.namespace.as_bytes());
    match record.id {
        Some(id) => {
            out.varint(id.len() as u64 + 1);
            out.raw(id.as_bytes());
        }
        None => out.varint(0),
    }
    out.field(record.message.as_bytes());
    out.field(record.data);
    out.finish()
}

/// The entry at the start of `bytes` split into its level byte, its body and what follows.
fn split(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let ([len_lo, len_hi, level], after) = bytes.split_first_chunk::<HEADER>()?;
    let (body, rest) =
        after.split_at_checked(usize::from(u16::from_le_bytes([*len_lo, *len_hi])))?;
    Some((*level, body, rest))
}

/// Total length of the entry at the start of `bytes`, if one is there.
pub(crate) fn len(bytes: &[u8]) -> Option<usize> {
    split(bytes).map(|(_, body, _)| HEADER + body.len())
}

/// The level, sequence number and time of the entry at the start of `bytes`, read from its
/// first fields alone.
pub(crate) fn summary(bytes: &[u8]) -> Option<(Level, u32, u64)> {
    let (level, body, _) = split(bytes)?;
    let (level, seq, time) = Cursor { bytes: body }.head(level)?;
    Some((level, seq, time))
}

/// Reads the first entry of `bytes`; `None` if it is cut short (the queue wrote every entry
/// itself, so that means a bug, and readers stop rather than panic).
pub(crate) fn read(bytes: &[u8]) -> Option<(RawRecord<'_>, &[u8])> {
    let (level, body, rest) = split(bytes)?;
    let mut r = Cursor { bytes: body };
    let (level, seq, time_ms) = r.head(level)?;
    let namespace = r.field()?;
    let id = match r.varint()? {
        0 => None,
        n => Some(r.take(n - 1)?),
    };
    let message = r.field()?;
    let data = r.field()?;
    let record = RawRecord {
        seq,
        time_ms,
        level,
        namespace,
        id,
        message,
        data,
    };
    Some((record, rest))
}

struct Cursor<'a> {
    bytes: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn varint(&mut self) -> Option<u64> {
        // Found first, then folded from its last byte down: each step shifts by a constant 7,
        // where a running `<< shift` would be a variable 64-bit shift (a library call on a
        // Cortex-M0+). At most ten bytes, the same value modulo 2^64 as shifting each in.
        let last = self.bytes.iter().position(|b| b & 0x80 == 0)?;
        let (bytes, rest) = self.bytes.split_at_checked(last + 1)?;
        if last >= 10 {
            return None;
        }
        self.bytes = rest;
        Some(
            bytes
                .iter()
                .rev()
                .fold(0, |n, b| (n << 7) | u64::from(b & 0x7f)),
        )
    }

    fn head(&mut self, level: u8) -> Option<(Level, u32, u64)> {
        let level = Level::from_u8(level)?;
        let seq = u32::try_from(self.varint()?).ok()?;
        Some((level, seq, self.varint()?))
    }

    fn take(&mut self, n: u64) -> Option<&'a [u8]> {
        let (field, rest) = self.bytes.split_at_checked(usize::try_from(n).ok()?)?;
        self.bytes = rest;
        Some(field)
    }

    fn field(&mut self) -> Option<&'a [u8]> {
        let n = self.varint()?;
        self.take(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::Record;

    /// The fields of `r` as the queue is given them, and its sequence number.
    fn parts<'a>(r: &Record<'a>) -> (NewRecord<'a>, u32) {
        let new = NewRecord {
            time_ms: r.time_ms,
            level: r.level,
            namespace: r.namespace,
            id: r.id,
            message: r.message,
            data: r.data,
        };
        (new, r.seq)
    }

    #[test]
    fn an_entry_reads_back_as_written() {
        let long = [b'm'; 300];
        let records = [
            Record {
                seq: 7,
                time_ms: 1_766_108_726_643,
                level: Level::Warn,
                namespace: "my.app.sensor",
                id: Some("my.app.sensor/sampled"),
                message: "sample out of range",
                data: &[1, 2, 3],
            },
            Record {
                seq: u32::MAX,
                time_ms: 0,
                level: Level::Report,
                namespace: "",
                id: None,
                message: core::str::from_utf8(&long).unwrap(),
                data: &[],
            },
        ];
        // Counted by hand: seq, time, then each field's length and bytes (the id's length
        // is n+1, and a missing id is one byte).
        let bodies = [
            1 + 6 + (1 + 13) + (1 + 21) + (1 + 19) + (1 + 3),
            5 + 1 + 1 + 1 + (2 + 300) + 1,
        ];
        for (r, body) in records.iter().zip(bodies) {
            let (new, seq) = parts(r);
            assert_eq!(body_len(&new, seq), body);
        }
        let mut buf = [0u8; 1024];
        let mut at = 0;
        for r in &records {
            let (new, seq) = parts(r);
            let n = write(&new, seq, body_len(&new, seq), &mut buf[at..]);
            assert_eq!(n, HEADER + body_len(&new, seq));
            at += n;
        }
        let mut rest = &buf[..at];
        for r in &records {
            let (new, seq) = parts(r);
            assert_eq!(new.with_seq(seq), *r);
            assert_eq!(len(rest), Some(HEADER + body_len(&new, seq)));
            assert_eq!(summary(rest), Some((r.level, r.seq, r.time_ms)));
            let (raw, next) = read(rest).unwrap();
            assert_eq!(raw.to_record(), Some(*r));
            rest = next;
        }
        assert!(rest.is_empty());
        assert_eq!(read(&buf[..at - 1]).map(|(r, _)| r.seq), Some(7));
        let (first, seq) = parts(&records[0]);
        assert!(read(&buf[HEADER + body_len(&first, seq)..at - 1]).is_none());
    }

    #[test]
    fn varints_read_back_at_every_length_and_overlong_ones_are_refused() {
        let mut values = [
            0u64,
            1,
            127,
            128,
            300,
            u64::from(u32::MAX),
            1 << 35,
            u64::MAX,
        ];
        values.sort_unstable();
        for n in (0..64).map(|bits| 1u64 << bits).chain(values) {
            let mut buf = [0u8; 12];
            let mut w = Writer::new(&mut buf);
            w.varint(n);
            w.byte(0x55);
            let len = w.finish().unwrap();
            let mut c = Cursor { bytes: &buf[..len] };
            assert_eq!(c.varint(), Some(n));
            assert_eq!(c.bytes, &[0x55], "the cursor stops after the varint");
        }
        let mut eleven = [0xffu8; 11];
        eleven[10] = 0x01;
        assert_eq!(
            Cursor { bytes: &eleven }.varint(),
            None,
            "longer than ten bytes"
        );
        assert_eq!(
            Cursor {
                bytes: &[0x80, 0x80]
            }
            .varint(),
            None,
            "no last byte"
        );
        assert_eq!(Cursor { bytes: &[] }.varint(), None);
    }

    #[test]
    fn a_short_buffer_gets_no_entry_not_a_panic() {
        let seq = 300;
        let record = NewRecord {
            time_ms: 5,
            level: Level::Info,
            namespace: "ns",
            id: Some("ns/id"),
            message: "hello",
            data: &[9; 4],
        };
        let whole = HEADER + body_len(&record, seq);
        for short in 0..whole {
            let mut buf = [0u8; 64];
            let n = write(&record, seq, body_len(&record, seq), &mut buf[..short]);
            assert_eq!(n, 0, "no entry in {short} bytes");
            assert_eq!(
                len(&buf[..short]),
                None,
                "what fit must not read as an entry"
            );
            assert!(read(&buf[..short]).is_none());
        }
    }
}
