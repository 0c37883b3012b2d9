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
use super::record::{RawRecord, Record};

/// Bytes before each stored record's body: its length and its level.
pub(crate) const HEADER: usize = 3;

fn varint_len(n: u64) -> usize {
    let bits = u64::BITS - (n | 1).leading_zeros();
    bits.div_ceil(7) as usize
}

fn put_varint(buf: &mut [u8], at: &mut usize, mut n: u64) {
    loop {
        let low = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            buf[*at] = low;
            *at += 1;
            return;
        }
        buf[*at] = low | 0x80;
        *at += 1;
    }
}

fn put_bytes(buf: &mut [u8], at: &mut usize, bytes: &[u8]) {
    buf[*at..*at + bytes.len()].copy_from_slice(bytes);
    *at += bytes.len();
}

/// Length of `record`'s body.
pub(crate) fn body_len(record: &Record<'_>) -> usize {
    let field = |n: usize| varint_len(n as u64) + n;
    varint_len(u64::from(record.seq))
        + varint_len(record.time_ms)
        + field(record.namespace.len())
        + record
            .id
            .map_or(1, |id| varint_len(id.len() as u64 + 1) + id.len())
        + field(record.message.len())
        + field(record.data.len())
}

/// Writes `record`, whose [`body_len`] is `body` (at most `u16::MAX`), as a whole entry at the
/// start of `buf`, which must hold `HEADER + body` bytes; returns the entry's length.
pub(crate) fn write(record: &Record<'_>, body: usize, buf: &mut [u8]) -> usize {
    buf[..2].copy_from_slice(&(body as u16).to_le_bytes());
    buf[2] = record.level as u8;
    let mut at = HEADER;
    put_varint(buf, &mut at, u64::from(record.seq));
    put_varint(buf, &mut at, record.time_ms);
    put_field(buf, &mut at, record.namespace.as_bytes());
    match record.id {
        Some(id) => {
            put_varint(buf, &mut at, id.len() as u64 + 1);
            put_bytes(buf, &mut at, id.as_bytes());
        }
        None => put_varint(buf, &mut at, 0),
    }
    put_field(buf, &mut at, record.message.as_bytes());
    put_field(buf, &mut at, record.data);
    at
}

fn put_field(buf: &mut [u8], at: &mut usize, bytes: &[u8]) {
    put_varint(buf, at, bytes.len() as u64);
    put_bytes(buf, at, bytes);
}

/// Total length of the entry at the start of `bytes`, if one is there.
pub(crate) fn len(bytes: &[u8]) -> Option<usize> {
    let header = bytes.get(..HEADER)?;
    let len = HEADER + usize::from(u16::from_le_bytes([header[0], header[1]]));
    (len <= bytes.len()).then_some(len)
}

/// The level, sequence number and time of the entry at the start of `bytes`, read from its
/// first fields alone.
pub(crate) fn summary(bytes: &[u8]) -> Option<(Level, u32, u64)> {
    let total = len(bytes)?;
    let mut r = Cursor {
        bytes: &bytes[HEADER..total],
    };
    let (level, seq, time) = r.head(bytes[2])?;
    Some((level, seq, time))
}

/// Reads the first entry of `bytes`; `None` if it is cut short (the queue wrote every entry
/// itself, so that means a bug, and readers stop rather than panic).
pub(crate) fn read(bytes: &[u8]) -> Option<(RawRecord<'_>, &[u8])> {
    let total = len(bytes)?;
    let mut r = Cursor {
        bytes: &bytes[HEADER..total],
    };
    let (level, seq, time_ms) = r.head(bytes[2])?;
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
    Some((record, &bytes[total..]))
}

struct Cursor<'a> {
    bytes: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut n = 0u64;
        for shift in (0..u64::BITS).step_by(7) {
            let (&b, rest) = self.bytes.split_first()?;
            self.bytes = rest;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }

    fn head(&mut self, level: u8) -> Option<(Level, u32, u64)> {
        let level = Level::from_u8(level)?;
        let seq = u32::try_from(self.varint()?).ok()?;
        Some((level, seq, self.varint()?))
    }

    fn take(&mut self, n: u64) -> Option<&'a [u8]> {
        let n = usize::try_from(n).ok()?;
        if n > self.bytes.len() {
            return None;
        }
        let (field, rest) = self.bytes.split_at(n);
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
        let mut buf = [0u8; 1024];
        let mut at = 0;
        for r in &records {
            let n = write(r, body_len(r), &mut buf[at..]);
            assert_eq!(n, HEADER + body_len(r));
            at += n;
        }
        let mut rest = &buf[..at];
        for r in &records {
            assert_eq!(len(rest), Some(HEADER + body_len(r)));
            assert_eq!(summary(rest), Some((r.level, r.seq, r.time_ms)));
            let (raw, next) = read(rest).unwrap();
            assert_eq!(raw.to_record(), Some(*r));
            rest = next;
        }
        assert!(rest.is_empty());
        assert_eq!(read(&buf[..at - 1]).map(|(r, _)| r.seq), Some(7));
        assert!(read(&buf[HEADER + body_len(&records[0])..at - 1]).is_none());
    }
}
