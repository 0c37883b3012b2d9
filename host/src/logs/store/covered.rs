//! The writer's memory of stored sequence ranges, per client and boot.
//!
//! The batch rows are the truth: a row whose `count` equals `last_seq - first_seq + 1` holds
//! exactly that run (a row never holds one seq twice), so the usual batch — consecutive records,
//! all new — writes nothing beyond its own row. Rows that hold a broken run (holes, records kept
//! out of a partly-new batch) write their ranges to the `covered` table in the same
//! transaction. Every [`CHECKPOINT_ROWS`] rows, and before retention deletes rows, the ranges of
//! every `(client, boot)` that sent since are written to `covered` and the last row they reflect
//! to `covered_upto`, in one transaction. A `(client, boot)` is loaded as its `covered` rows
//! plus its exact rows after that mark, so the ranges are exact after a crash at any point.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use rusqlite::{OptionalExtension, Transaction, params};

use super::ranges::{Merged, SeqRanges};

/// `(client, boot)` pairs kept in memory before the cache starts over (each is reloaded from
/// the tables when it sends again), so years of device boots do not grow the server.
const MAX_CACHED: usize = 100_000;

/// Rows stored between two checkpoints of the ranges: bounds what a load reads from
/// `batches` on top of `covered`.
pub(super) const CHECKPOINT_ROWS: u64 = 8192;

/// Ranges by client, then boot.
#[derive(Debug, Default)]
pub(super) struct Covered {
    clients: HashMap<String, HashMap<u32, SeqRanges>>,
    /// Pairs cached.
    cached: usize,
    /// The last batch row the `covered` table reflects (as `covered_upto` holds it).
    upto: i64,
    /// Rows stored since that checkpoint.
    pub(super) rows_since: u64,
}

impl Covered {
    /// Starts from the checkpoint mark stored in `covered_upto`.
    pub(super) fn load_mark(&mut self, conn: &rusqlite::Connection) -> Result<(), rusqlite::Error> {
        self.upto = conn
            .query_row("SELECT row FROM covered_upto WHERE id = 0", [], |row| {
                row.get(0)
            })
            .optional()?
            .unwrap_or(0);
        self.rows_since = conn.query_row(
            "SELECT count(*) FROM batches WHERE row > ?1",
            params![self.upto],
            |row| row.get::<_, i64>(0),
        )? as u64;
        Ok(())
    }

    /// The ranges of `(client, boot)`, read from the tables on first use.
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
                let mut pairs = tx
                    .prepare_cached(
                        "SELECT first_seq, last_seq FROM covered \
                         WHERE client_id = ?1 AND boot_id = ?2",
                    )?
                    .query_map(params![client, boot], |row| Ok((row.get(0)?, row.get(1)?)))?
                    .collect::<Result<Vec<(u32, u32)>, _>>()?;
                let exact_rows = tx
                    .prepare_cached(
                        "SELECT first_seq, last_seq FROM batches \
                         WHERE client_id = ?1 AND row > ?3 AND boot_id = ?2 \
                         AND first_seq IS NOT NULL AND count = last_seq - first_seq + 1",
                    )?
                    .query_map(params![client, boot, self.upto], |row| {
                        Ok((row.get(0)?, row.get(1)?))
                    })?
                    .collect::<Result<Vec<(u32, u32)>, _>>()?;
                pairs.extend(exact_rows);
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

    /// Writes the ranges of every `(client, boot)` with rows after the mark to `covered` and
    /// moves the mark to the newest row, inside `tx`. Returns the new mark, to give to
    /// [`Covered::checkpointed`] once `tx` commits.
    pub(super) fn checkpoint(&mut self, tx: &Transaction<'_>) -> Result<i64, rusqlite::Error> {
        let top: i64 = tx.query_row(
            "SELECT coalesce(max(row), ?1) FROM batches",
            params![self.upto],
            |row| row.get(0),
        )?;
        let senders = tx
            .prepare(
                "SELECT DISTINCT client_id, boot_id FROM batches \
                 WHERE row > ?1 AND first_seq IS NOT NULL",
            )?
            .query_map(params![self.upto], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, u32>(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        for (client, boot) in senders {
            let pairs = self.of(tx, &client, boot)?.pairs();
            tx.prepare_cached("DELETE FROM covered WHERE client_id = ?1 AND boot_id = ?2")?
                .execute(params![client, boot])?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO covered (client_id, boot_id, first_seq, last_seq) \
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (first, last) in pairs {
                insert.execute(params![client, boot, first, last])?;
            }
        }
        tx.prepare_cached("INSERT OR REPLACE INTO covered_upto (id, row) VALUES (0, ?1)")?
            .execute(params![top])?;
        Ok(top)
    }

    /// Takes the mark of a committed [`Covered::checkpoint`].
    pub(super) fn checkpointed(&mut self, upto: i64) {
        self.upto = upto;
        self.rows_since = 0;
    }
}

/// Writes what [`SeqRanges::insert`] changed to the table (for rows holding a broken run).
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
