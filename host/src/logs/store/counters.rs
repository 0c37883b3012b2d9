//! Per-client counters between two writes to the `clients` table.
//!
//! Counting every batch in `clients` would dirty one more page per batch; instead the writer
//! adds each committed batch here and writes the sums about once a second
//! ([`FLUSH_EVERY`]), and when its store closes. A read connection of the same store shares
//! this map and adds it to what the table holds, so counters read exact at any time. A crash
//! (kill -9, power cut) can lose up to the last second of counter increments — never records,
//! gaps or deduplication state, which are written with each batch.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::{Connection, params};

use crate::logs::entry::ClientCounters;

/// How long counter increments may stay in memory only.
pub(super) const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Increments of one client.
#[derive(Debug, Default, Clone)]
pub(super) struct Counts {
    pub records: u64,
    pub duplicates: u64,
    pub gaps: u64,
    pub dropped: u64,
    pub bytes: u64,
    pub last_seen_ms: u64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.records += other.records;
        self.duplicates += other.duplicates;
        self.gaps += other.gaps;
        self.dropped += other.dropped;
        self.bytes += other.bytes;
        self.last_seen_ms = self.last_seen_ms.max(other.last_seen_ms);
    }
}

/// Increments not yet in the table, shared by a store's write and read connections.
#[derive(Debug, Clone, Default)]
pub(super) struct Unwritten {
    by_client: Arc<Mutex<HashMap<String, Counts>>>,
}

impl Unwritten {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Counts>> {
        self.by_client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds the increments of a committed transaction.
    pub(super) fn add<'a>(&self, counts: impl IntoIterator<Item = (&'a str, &'a Counts)>) {
        let mut map = self.lock();
        for (client, c) in counts {
            match map.get_mut(client) {
                Some(sum) => sum.add(c),
                None => {
                    map.insert(client.to_owned(), c.clone());
                }
            }
        }
    }

    /// Writes the sums to the `clients` table and forgets them, in one transaction. Holds the
    /// map meanwhile, so a reader never counts an increment twice or misses it.
    pub(super) fn write(&self, conn: &mut Connection) -> Result<(), rusqlite::Error> {
        let mut map = self.lock();
        if map.is_empty() {
            return Ok(());
        }
        let tx = conn.transaction()?;
        {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO clients (client_id, records, duplicates, gaps, dropped, bytes, \
                 last_seen_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                 ON CONFLICT (client_id) DO UPDATE SET records = records + ?2, \
                 duplicates = duplicates + ?3, gaps = gaps + ?4, dropped = dropped + ?5, \
                 bytes = bytes + ?6, last_seen_ms = max(last_seen_ms, ?7)",
            )?;
            for (client, c) in map.iter() {
                upsert.execute(params![
                    client,
                    c.records as i64,
                    c.duplicates as i64,
                    c.gaps as i64,
                    c.dropped as i64,
                    c.bytes as i64,
                    c.last_seen_ms as i64
                ])?;
            }
        }
        tx.commit()?;
        map.clear();
        Ok(())
    }

    /// The counters `conn` reads from the table plus the increments not written yet.
    pub(super) fn read(&self, conn: &Connection) -> Result<Vec<ClientCounters>, rusqlite::Error> {
        let map = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT client_id, records, duplicates, gaps, dropped, bytes, errors, \
             last_seen_ms FROM clients ORDER BY client_id",
        )?;
        let mut all = stmt
            .query_map([], |row| {
                Ok(ClientCounters {
                    client_id: row.get(0)?,
                    records: row.get::<_, i64>(1)? as u64,
                    duplicates: row.get::<_, i64>(2)? as u64,
                    gaps: row.get::<_, i64>(3)? as u64,
                    dropped: row.get::<_, i64>(4)? as u64,
                    bytes: row.get::<_, i64>(5)? as u64,
                    errors: row.get::<_, i64>(6)? as u64,
                    last_seen_ms: row.get::<_, i64>(7)? as u64,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        for (client, c) in map.iter() {
            let at = match all.binary_search_by(|k| k.client_id.as_str().cmp(client)) {
                Ok(at) => at,
                Err(at) => {
                    all.insert(
                        at,
                        ClientCounters {
                            client_id: client.clone(),
                            ..ClientCounters::default()
                        },
                    );
                    at
                }
            };
            let k = &mut all[at];
            k.records += c.records;
            k.duplicates += c.duplicates;
            k.gaps += c.gaps;
            k.dropped += c.dropped;
            k.bytes += c.bytes;
            k.last_seen_ms = k.last_seen_ms.max(c.last_seen_ms);
        }
        Ok(all)
    }
}

/// When the writer last wrote the counters.
#[derive(Debug)]
pub(super) struct FlushClock(Instant);

impl Default for FlushClock {
    fn default() -> Self {
        Self(Instant::now())
    }
}

impl FlushClock {
    /// True (and restarted) when [`FLUSH_EVERY`] has passed.
    pub(super) fn due(&mut self) -> bool {
        if self.0.elapsed() >= FLUSH_EVERY {
            self.0 = Instant::now();
            true
        } else {
            false
        }
    }
}
