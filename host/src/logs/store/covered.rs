//! The writer's memory of stored sequence ranges, per client and boot, backed by the
//! `covered` table: loaded from it the first time a `(client, boot)` sends, written to it in
//! the same transaction as the records.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use rusqlite::{Transaction, params};

use super::ranges::{Merged, SeqRanges};

/// `(client, boot)` pairs kept in memory before the cache starts over (each is reloaded from
/// the table when it sends again), so years of device boots do not grow the server.
const MAX_CACHED: usize = 100_000;

/// Ranges by client, then boot.
#[derive(Debug, Default)]
pub(super) struct Covered {
    clients: HashMap<String, HashMap<u32, SeqRanges>>,
    /// Pairs cached.
    cached: usize,
}

impl Covered {
    /// The ranges of `(client, boot)`, read from the table on first use.
    pub(super) fn of(
        &mut self,
        tx: &Transaction<'_>,
        client: &str,
        boot: u32,
    ) -> Result<&mut SeqRanges, rusqlite::Error> {
        if self.cached >= MAX_CACHED {
            self.clear();
        }
        if !self.clients.contains_key(client) {
            self.clients.insert(client.to_owned(), HashMap::new());
        }
        let boots = self.clients.get_mut(client).expect("inserted above");
        match boots.entry(boot) {
            Entry::Occupied(ranges) => Ok(ranges.into_mut()),
            Entry::Vacant(slot) => {
                let mut stmt = tx.prepare_cached(
                    "SELECT first_seq, last_seq FROM covered WHERE client_id = ?1 AND boot_id = ?2",
                )?;
                let pairs = stmt
                    .query_map(params![client, boot], |row| Ok((row.get(0)?, row.get(1)?)))?
                    .collect::<Result<Vec<(u32, u32)>, _>>()?;
                self.cached += 1;
                Ok(slot.insert(SeqRanges::from_pairs(pairs)))
            }
        }
    }

    /// Forgets everything (after a rolled-back transaction); reloaded on next use.
    pub(super) fn clear(&mut self) {
        self.clients.clear();
        self.cached = 0;
    }
}

/// Writes what [`SeqRanges::insert`] changed to the table.
pub(super) fn persist(
    tx: &Transaction<'_>,
    client: &str,
    boot: u32,
    merged: &Merged,
) -> Result<(), rusqlite::Error> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO covered (client_id, boot_id, first_seq, last_seq) \
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![client, boot, merged.first, merged.last])?;
    if !merged.absorbed.is_empty() {
        let mut delete = tx.prepare_cached(
            "DELETE FROM covered WHERE client_id = ?1 AND boot_id = ?2 AND first_seq = ?3",
        )?;
        for first in &merged.absorbed {
            delete.execute(params![client, boot, first])?;
        }
    }
    Ok(())
}
