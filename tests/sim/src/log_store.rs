//! The server's durable log store as the simulation models it: what the host's store promises
//! (records deduplicated on `(boot_id, seq)`, gaps on `(boot_id, first_seq)`, kept across a
//! server restart), without SQLite.
//!
//! The store belongs to the [`crate::Pair`], not to a server session, so it outlives every
//! connection and every [`crate::Pair::restart_server`]; batches received but not yet stored
//! when the server restarts are lost with the process, exactly as on the host.

use std::collections::{HashMap, HashSet};

use sentelite_core::log::{BatchError, Gap, Level, decode_batch};

/// One stored record, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// The client's boot id (from its Hello).
    pub boot_id: u32,
    /// The record's sequence number in that boot.
    pub seq: u32,
    /// Its level.
    pub level: Level,
    /// Its message.
    pub message: String,
}

/// Records and gaps stored so far, in the order they were stored.
#[derive(Debug, Default, Clone)]
pub struct LogStore {
    records: Vec<StoredRecord>,
    gaps: Vec<(u32, Gap)>,
    seen: HashSet<(u32, u32)>,
    gap_keys: HashMap<(u32, u32), Gap>,
    /// Records offered again after they were stored (dropped by the dedup).
    pub duplicates: u64,
    /// Gaps offered again after they were stored.
    pub duplicate_gaps: u64,
    /// Batches stored (repeats included).
    pub batches: u64,
}

impl LogStore {
    /// Stores one `telemetry/log-batch` payload of a client with boot id `boot_id`: the whole
    /// batch is checked first, so a malformed one stores nothing.
    pub fn store_batch(&mut self, boot_id: u32, bytes: &[u8]) -> Result<(), BatchError> {
        let batch = decode_batch(bytes)?;
        batch.validate()?;
        self.batches += 1;
        if let Some(gap) = batch.gap {
            match self.gap_keys.get(&(boot_id, gap.first_seq)) {
                // A gap sent again is the same gap byte for byte; anything else under the
                // same key would be a client bug the scenario must see.
                Some(known) => {
                    assert_eq!(known, &gap, "a gap resent with different contents");
                    self.duplicate_gaps += 1;
                }
                None => {
                    self.gap_keys.insert((boot_id, gap.first_seq), gap);
                    self.gaps.push((boot_id, gap));
                }
            }
        }
        for record in batch.records() {
            let record = record?;
            if !self.seen.insert((boot_id, record.seq)) {
                self.duplicates += 1;
                continue;
            }
            self.records.push(StoredRecord {
                boot_id,
                seq: record.seq,
                level: record.level,
                message: record.message.to_owned(),
            });
        }
        Ok(())
    }

    /// Stored records, in storing order.
    pub fn records(&self) -> &[StoredRecord] {
        &self.records
    }

    /// Stored gaps with their boot ids, in storing order.
    pub fn gaps(&self) -> &[(u32, Gap)] {
        &self.gaps
    }
}
