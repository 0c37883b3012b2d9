//! A stored row's index columns and body: records in the compact batch form of
//! [`sentelite_core::log`], so a row of fifty records costs one insert and about the bytes the
//! client sent.

use sentelite_core::codec::EncodeError;
use sentelite_core::log::{LevelSet, Record, encode_batch};

/// The columns queries select rows by.
#[derive(Debug, Clone, Default)]
pub(super) struct RowIndex {
    /// Lowest sequence number; `None` for records sent without one.
    pub first_seq: Option<u32>,
    /// Highest sequence number.
    pub last_seq: Option<u32>,
    /// Earliest client time.
    pub first_time_ms: u64,
    /// Latest client time.
    pub last_time_ms: u64,
    /// One bit per level present ([`LevelSet`] bits).
    pub levels: u8,
    /// Records in the row.
    pub count: u32,
}

impl RowIndex {
    /// Widens the columns to cover `r`.
    pub(super) fn add(&mut self, r: &Record<'_>, with_seq: bool) {
        if self.count == 0 {
            self.first_time_ms = r.time_ms;
            self.last_time_ms = r.time_ms;
        }
        if with_seq {
            self.first_seq = Some(self.first_seq.map_or(r.seq, |s| s.min(r.seq)));
            self.last_seq = Some(self.last_seq.map_or(r.seq, |s| s.max(r.seq)));
        }
        self.first_time_ms = self.first_time_ms.min(r.time_ms);
        self.last_time_ms = self.last_time_ms.max(r.time_ms);
        self.levels = LevelSet::from_bits(self.levels).with(r.level).bits();
        self.count += 1;
    }
}

/// `records` in the compact batch form (no gap: gaps have their own table).
pub(super) fn encode_records(
    records: &[Record<'_>],
    size_hint: usize,
) -> Result<Vec<u8>, rusqlite::Error> {
    let mut body = vec![0u8; size_hint.max(64)];
    let encoded = match encode_batch(None, records.iter().copied(), &mut body) {
        Err(EncodeError::BufferTooSmall { required }) => {
            body.resize(required, 0);
            encode_batch(None, records.iter().copied(), &mut body)
        }
        other => other,
    };
    match encoded {
        Ok(n) => {
            body.truncate(n);
            Ok(body)
        }
        Err(e) => Err(rusqlite::Error::ToSqlConversionFailure(
            format!("log records not encoded: {e:?}").into(),
        )),
    }
}
