//! The embedded log store: one SQLite file in the data dir, in WAL mode so queries read while
//! the ingest writes.
//!
//! One row per received batch, not per record: the row holds the batch in its compact wire
//! form (the payload as the client sent it, or re-encoded with only the records that were new)
//! beside index columns — client, boot, uid, first and last seq, first and last client time, a
//! bit per level present, record count, received time. Queries select rows by those columns
//! and decode and filter the records in Rust (`store/read.rs`), so ingest costs one row insert per
//! batch whatever its size.
//!
//! Deduplication stays exact on `(client, boot_id, seq)`: the table `covered` holds, per
//! client and boot, the ranges of sequence numbers already stored (`store/ranges.rs`), cached in
//! memory as they are first needed. A batch sent again after a lost ack, or its records
//! regrouped into other batches after a reconnect, stores only the records no range covers.
//! Gaps are deduplicated on `(client, boot_id, first_seq)`. Writes come in groups of
//! batches, one transaction per group.

mod counters;
mod covered;
mod ranges;
mod read;
mod rows;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use sentelite_core::log::{BatchError, Gap, Level, Record, decode_batch};

use super::entry::{ClientCounters, GapEntry, LogEntry};
use super::query::QueryError;
use crate::translate::json_to_cbor;
use counters::{Counts, FlushClock, Unwritten};
use covered::Covered;
use rows::{RowIndex, encode_records};

/// File name of the store inside the data dir.
pub const STORE_FILE: &str = "logs.sqlite";

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused.
    #[error("log store {path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// The query is invalid.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// A batch given to the store does not decode.
    #[error(transparent)]
    Batch(#[from] BatchError),
}

/// Records to store as owned entries: sente-lite's single records, and callers that build
/// records themselves. Consecutive records with the same client, boot, uid, arrival time and
/// kind of sequence number share a row.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestBatch {
    /// The sender.
    pub client_id: String,
    /// Payload bytes it took on the wire.
    pub bytes: u64,
    /// When it arrived, Unix milliseconds.
    pub received_ms: u64,
    /// Its records.
    pub records: Vec<LogEntry>,
    /// Its gap, if any.
    pub gap: Option<GapEntry>,
}

/// A `telemetry/log-batch` payload as a client sent it, checked, stored without building its
/// records. Made by [`WireBatch::checked`] only, so it always decodes.
#[derive(Debug, Clone)]
pub struct WireBatch {
    client_id: Arc<str>,
    uid: Arc<str>,
    boot_id: u32,
    received_ms: u64,
    payload: Vec<u8>,
    /// What the row's index columns and the dedup need, noted while checking.
    index: RowIndex,
    run: Run,
    gap: Option<Gap>,
}

impl WireBatch {
    /// True when a record of `level` or above is in the batch.
    pub(crate) fn reaches(&self, level: Level) -> bool {
        self.index.levels >> level as u8 != 0
    }

    /// Checks `payload` (the compact batch of [`sentelite_core::log::decode_batch`]) in full,
    /// so a malformed batch is refused whole, and notes its index columns in the same pass.
    pub fn checked(
        client_id: Arc<str>,
        uid: Arc<str>,
        boot_id: u32,
        received_ms: u64,
        payload: Vec<u8>,
    ) -> Result<Self, BatchError> {
        let mut index = RowIndex::default();
        let mut run = Run::default();
        let gap = {
            let decoded = decode_batch(&payload)?;
            decoded.validate_each(|r| {
                index.add(r, true);
                run.add(r.seq);
            })?;
            decoded.gap
        };
        Ok(Self {
            client_id,
            uid,
            boot_id,
            received_ms,
            payload,
            index,
            run,
            gap,
        })
    }

    /// The sender.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The connection's uid.
    pub fn uid(&self) -> &str {
        &self.uid
    }

    /// The sender's boot.
    pub fn boot_id(&self) -> u32 {
        self.boot_id
    }

    /// When it arrived, Unix milliseconds.
    pub fn received_ms(&self) -> u64 {
        self.received_ms
    }

    /// The payload as received.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }
}

/// One batch for [`LogStore::insert_all`].
#[derive(Debug, Clone, Copy)]
pub enum Incoming<'a> {
    /// As received on the wire.
    Wire(&'a WireBatch),
    /// As owned entries.
    Entries(&'a IngestBatch),
}

/// What storing one batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stored {
    /// For each record of the batch, true when it was new (live subscribers get only those).
    pub fresh: Vec<bool>,
    /// Records new to the store.
    pub stored: usize,
    /// Records it held already.
    pub duplicates: usize,
    /// True when the gap was new (false when absent or a repeat).
    pub new_gap: bool,
}

impl Stored {
    fn of(fresh: Vec<bool>) -> Self {
        let stored = fresh.iter().filter(|&&f| f).count();
        Self {
            duplicates: fresh.len() - stored,
            stored,
            fresh,
            new_gap: false,
        }
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS batches (
    row INTEGER PRIMARY KEY,
    client_id TEXT NOT NULL,
    boot_id INTEGER NOT NULL,
    uid TEXT NOT NULL,
    first_seq INTEGER,
    last_seq INTEGER,
    first_time_ms INTEGER NOT NULL,
    last_time_ms INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    levels INTEGER NOT NULL,
    count INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS batches_client ON batches (client_id);
CREATE INDEX IF NOT EXISTS batches_received ON batches (received_ms);
CREATE TABLE IF NOT EXISTS covered (
    client_id TEXT NOT NULL,
    boot_id INTEGER NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    PRIMARY KEY (client_id, boot_id, first_seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS gaps (
    client_id TEXT NOT NULL,
    boot_id INTEGER NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    count INTEGER NOT NULL,
    by_level TEXT NOT NULL,
    first_time_ms INTEGER NOT NULL,
    last_time_ms INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    PRIMARY KEY (client_id, boot_id, first_seq)
);
CREATE TABLE IF NOT EXISTS clients (
    client_id TEXT PRIMARY KEY,
    records INTEGER NOT NULL DEFAULT 0,
    duplicates INTEGER NOT NULL DEFAULT 0,
    gaps INTEGER NOT NULL DEFAULT 0,
    dropped INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    errors INTEGER NOT NULL DEFAULT 0,
    last_seen_ms INTEGER NOT NULL DEFAULT 0
);
";

/// A connection to the store file.
pub struct LogStore {
    conn: Connection,
    path: PathBuf,
    /// Sequence ranges stored per client and boot, for the writer's deduplication.
    covered: Covered,
    /// Counter increments not yet in the `clients` table, shared with read connections.
    unwritten: Unwritten,
    /// Set on the connection that writes them (at most once a second, and when dropped).
    counters_clock: Option<FlushClock>,
}

impl std::fmt::Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore")
            .field("path", &self.path)
            .finish()
    }
}

impl LogStore {
    /// Opens (creating if needed) the store in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(data_dir, Unwritten::default(), true)
    }

    /// Opens a second connection to the same store for reading while this one writes: its
    /// counters include the increments this one has not written yet.
    pub fn open_reader(&self) -> Result<Self, StoreError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        Self::open_with(dir, self.unwritten.clone(), false)
    }

    fn open_with(
        data_dir: &Path,
        unwritten: Unwritten,
        writes_counters: bool,
    ) -> Result<Self, StoreError> {
        let path = data_dir.join(STORE_FILE);
        let fail = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(fail)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(fail)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(fail)?;
        // WAL with NORMAL survives a process crash; only a power cut can lose the last commits.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(fail)?;
        conn.execute_batch(SCHEMA).map_err(fail)?;
        Ok(Self {
            conn,
            path,
            covered: Covered::default(),
            unwritten,
            counters_clock: writes_counters.then(FlushClock::default),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Stores `batches` of owned entries in one transaction; one outcome per batch, in order.
    pub fn insert(&mut self, batches: &[IngestBatch]) -> Result<Vec<Stored>, StoreError> {
        let incoming: Vec<Incoming<'_>> = batches.iter().map(Incoming::Entries).collect();
        self.insert_all(&incoming)
    }

    /// Stores `batches` in one transaction; one outcome per batch, in order. Nothing is
    /// stored when it fails.
    pub fn insert_all(&mut self, batches: &[Incoming<'_>]) -> Result<Vec<Stored>, StoreError> {
        self.insert_while(batches, || true)
    }

    /// Stores `batches` in order in one transaction, asking `go_on` before each batch after
    /// the first; when it says no, commits what was stored so far. One outcome per batch
    /// stored (at least the first); nothing is stored when it fails. The writer stops a long
    /// transaction this way when a more urgent batch is waiting.
    pub(crate) fn insert_while(
        &mut self,
        batches: &[Incoming<'_>],
        go_on: impl FnMut() -> bool,
    ) -> Result<Vec<Stored>, StoreError> {
        let result = self.try_insert(batches, go_on);
        if result.is_err() {
            // The transaction rolled back: forget ranges it may have added.
            self.covered.clear();
        }
        result
    }

    fn try_insert(
        &mut self,
        batches: &[Incoming<'_>],
        mut go_on: impl FnMut() -> bool,
    ) -> Result<Vec<Stored>, StoreError> {
        let path = self.path.clone();
        let fail = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(fail)?;
        let mut outcomes = Vec::with_capacity(batches.len());
        let mut counts: HashMap<&str, Counts> = HashMap::new();
        for &batch in batches {
            if !outcomes.is_empty() && !go_on() {
                break;
            }
            let (client, bytes, received_ms, gap, mut outcome) = match batch {
                Incoming::Wire(w) => {
                    let gap = w.gap.map(|g| GapEntry {
                        client_id: w.client_id.to_string(),
                        boot_id: w.boot_id,
                        count: g.count,
                        by_level: g.by_level,
                        first_seq: g.first_seq,
                        last_seq: g.last_seq,
                        first_time_ms: g.first_time_ms,
                        last_time_ms: g.last_time_ms,
                        received_ms: w.received_ms,
                    });
                    let outcome = store_wire(&tx, &mut self.covered, w, &path)?;
                    (
                        &*w.client_id,
                        w.payload.len() as u64,
                        w.received_ms,
                        gap,
                        outcome,
                    )
                }
                Incoming::Entries(b) => {
                    let outcome = store_entries(&tx, &mut self.covered, b).map_err(fail)?;
                    (
                        b.client_id.as_str(),
                        b.bytes,
                        b.received_ms,
                        b.gap.clone(),
                        outcome,
                    )
                }
            };
            let c = counts.entry(client).or_default();
            if let Some(g) = &gap {
                outcome.new_gap = insert_gap(&tx, g).map_err(fail)?;
                if outcome.new_gap {
                    c.gaps += 1;
                    c.dropped += u64::from(g.count);
                }
            }
            c.records += outcome.stored as u64;
            c.duplicates += outcome.duplicates as u64;
            c.bytes += bytes;
            c.last_seen_ms = c.last_seen_ms.max(received_ms);
            outcomes.push(outcome);
        }
        tx.commit().map_err(fail)?;
        self.unwritten
            .add(counts.iter().map(|(&client, c)| (client, c)));
        if self.counters_clock.as_mut().is_some_and(FlushClock::due)
            && let Err(e) = self.write_counters()
        {
            // The records are committed; the increments stay in memory for the next write.
            tracing::warn!(error = %e, "log client counters not written");
        }
        Ok(outcomes)
    }

    /// Writes the counter increments kept in memory to the `clients` table now (also done
    /// about once a second while storing, and when the writing connection is dropped).
    pub fn write_counters(&mut self) -> Result<(), StoreError> {
        let unwritten = self.unwritten.clone();
        unwritten.write(&mut self.conn).map_err(|e| self.err(e))
    }

    /// Counts a batch refused as malformed against its client.
    pub fn count_error(&mut self, client_id: &str, received_ms: u64) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO clients (client_id, errors, last_seen_ms) VALUES (?1, 1, ?2) \
                 ON CONFLICT (client_id) DO UPDATE SET errors = errors + 1, \
                 last_seen_ms = max(last_seen_ms, ?2)",
                params![client_id, received_ms as i64],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// Gaps reported by `client` (all clients when `None`), oldest first.
    pub fn gaps(&self, client: Option<&str>) -> Result<Vec<GapEntry>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT client_id, boot_id, count, by_level, first_seq, last_seq, first_time_ms, \
                 last_time_ms, received_ms FROM gaps WHERE ?1 IS NULL OR client_id = ?1 \
                 ORDER BY received_ms, first_seq",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![client], |row| {
                let by_level: String = row.get(3)?;
                Ok(GapEntry {
                    client_id: row.get(0)?,
                    boot_id: row.get(1)?,
                    count: row.get(2)?,
                    by_level: serde_json::from_str(&by_level).unwrap_or_default(),
                    first_seq: row.get(4)?,
                    last_seq: row.get(5)?,
                    first_time_ms: row.get::<_, i64>(6)? as u64,
                    last_time_ms: row.get::<_, i64>(7)? as u64,
                    received_ms: row.get::<_, i64>(8)? as u64,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// Per-client counters, by client id.
    pub fn counters(&self) -> Result<Vec<ClientCounters>, StoreError> {
        self.unwritten.read(&self.conn).map_err(|e| self.err(e))
    }

    /// Deletes records received before `older_than_ms` (whole stored batches) and, beyond
    /// `max_records`, the oldest ones: whole batches, then the oldest records of the oldest
    /// batch kept, so exactly `max_records` stay. Returns how many records went. The covered
    /// sequence ranges stay, so a late resend of deleted records is still recognised as a
    /// duplicate.
    pub fn retain(
        &mut self,
        older_than_ms: Option<u64>,
        max_records: Option<u64>,
    ) -> Result<usize, StoreError> {
        let mut removed = 0;
        if let Some(cutoff) = older_than_ms {
            removed += self
                .delete_rows("received_ms < ?1", cutoff as i64)
                .map_err(|e| self.err(e))?;
        }
        if let Some(max) = max_records {
            // The oldest row that still fits within `max` records, counting from the newest.
            let first_kept: Option<i64> = self
                .conn
                .query_row(
                    "SELECT row FROM (SELECT row, sum(count) OVER (ORDER BY row DESC) AS kept \
                     FROM batches) WHERE kept >= ?1 ORDER BY row DESC LIMIT 1",
                    params![max.max(1) as i64],
                    |row| row.get(0),
                )
                .optional()
                .map_err(|e| self.err(e))?;
            if let Some(first_kept) = first_kept {
                removed += self
                    .delete_rows("row < ?1", first_kept)
                    .map_err(|e| self.err(e))?;
                removed += self.trim_oldest_row(first_kept, max.max(1))?;
            }
        }
        Ok(removed)
    }

    /// Rows are deleted whole, so the oldest kept row may hold records beyond `max`: drops
    /// its oldest records until the store holds exactly `max`. Returns how many it dropped.
    fn trim_oldest_row(&mut self, row: i64, max: u64) -> Result<usize, StoreError> {
        let tx = self.conn.transaction().map_err(|e| sqlite(&self.path, e))?;
        let (total, count, with_seq, body): (i64, i64, bool, Vec<u8>) = tx
            .query_row(
                "SELECT (SELECT sum(count) FROM batches WHERE row >= ?1), count, \
                 first_seq IS NOT NULL, body FROM batches WHERE row = ?1",
                params![row],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .map_err(|e| sqlite(&self.path, e))?;
        let excess = (total as u64).saturating_sub(max).min(count as u64) as usize;
        if excess == 0 {
            return Ok(0);
        }
        let decoded = decode_batch(&body)?;
        let kept: Vec<Record<'_>> = decoded.records().skip(excess).collect::<Result<_, _>>()?;
        let mut index = RowIndex::default();
        for r in &kept {
            index.add(r, with_seq);
        }
        let body = encode_records(&kept, body.len()).map_err(|e| sqlite(&self.path, e))?;
        tx.execute(
            "UPDATE batches SET first_seq = ?2, last_seq = ?3, first_time_ms = ?4, \
             last_time_ms = ?5, levels = ?6, count = ?7, body = ?8 WHERE row = ?1",
            params![
                row,
                index.first_seq,
                index.last_seq,
                index.first_time_ms as i64,
                index.last_time_ms as i64,
                index.levels,
                index.count,
                body
            ],
        )
        .and_then(|_| tx.commit())
        .map_err(|e| sqlite(&self.path, e))?;
        Ok(excess)
    }

    /// Deletes the rows matching `condition` (one `?1` parameter); returns their records.
    fn delete_rows(&mut self, condition: &str, arg: i64) -> Result<usize, rusqlite::Error> {
        let tx = self.conn.transaction()?;
        let records: i64 = tx.query_row(
            &format!("SELECT coalesce(sum(count), 0) FROM batches WHERE {condition}"),
            params![arg],
            |row| row.get(0),
        )?;
        tx.execute(
            &format!("DELETE FROM batches WHERE {condition}"),
            params![arg],
        )?;
        tx.commit()?;
        Ok(records as usize)
    }
}

/// A SQLite failure on the store at `path`.
fn sqlite(path: &Path, source: rusqlite::Error) -> StoreError {
    StoreError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

impl Drop for LogStore {
    fn drop(&mut self) {
        if self.counters_clock.is_some()
            && let Err(e) = self.write_counters()
        {
            tracing::warn!(error = %e, "log client counters not written at close");
        }
    }
}

/// Inserts a gap unless it is known; true when it was new.
fn insert_gap(tx: &Transaction<'_>, g: &GapEntry) -> Result<bool, rusqlite::Error> {
    let by_level = serde_json::to_string(&g.by_level).unwrap_or_default();
    let n = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO gaps (client_id, boot_id, first_seq, last_seq, count, \
             by_level, first_time_ms, last_time_ms, received_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            g.client_id,
            g.boot_id,
            g.first_seq,
            g.last_seq,
            g.count,
            by_level,
            g.first_time_ms as i64,
            g.last_time_ms as i64,
            g.received_ms as i64
        ])?;
    Ok(n == 1)
}

/// Who a row's records came from.
struct RowOrigin<'a> {
    client_id: &'a str,
    boot_id: u32,
    uid: &'a str,
    received_ms: u64,
}

fn insert_row(
    tx: &Transaction<'_>,
    origin: &RowOrigin<'_>,
    index: &RowIndex,
    body: &[u8],
) -> Result<(), rusqlite::Error> {
    tx.prepare_cached(
        "INSERT INTO batches (client_id, boot_id, uid, first_seq, last_seq, first_time_ms, \
         last_time_ms, received_ms, levels, count, body) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        origin.client_id,
        origin.boot_id,
        origin.uid,
        index.first_seq,
        index.last_seq,
        index.first_time_ms as i64,
        index.last_time_ms as i64,
        origin.received_ms as i64,
        index.levels,
        index.count,
        body
    ])
    .map(drop)
}

/// Stores the records of `w` that are new; the payload itself when all are.
fn store_wire(
    tx: &Transaction<'_>,
    covered: &mut Covered,
    w: &WireBatch,
    path: &Path,
) -> Result<Stored, StoreError> {
    let index = &w.index;
    if index.count == 0 {
        return Ok(Stored::default());
    }
    let origin = RowOrigin {
        client_id: &w.client_id,
        boot_id: w.boot_id,
        uid: &w.uid,
        received_ms: w.received_ms,
    };
    let sql = |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        source,
    };
    let ranges = covered.of(tx, &w.client_id, w.boot_id).map_err(sql)?;
    // The usual cases: a batch of consecutive records all new, or all stored already.
    if let Some((first, last)) = w.run.consecutive() {
        if ranges.disjoint(first, last) {
            let merged = ranges.insert(first, last);
            covered::persist(tx, &w.client_id, w.boot_id, &merged).map_err(sql)?;
            insert_row(tx, &origin, index, &w.payload).map_err(sql)?;
            return Ok(Stored::of(vec![true; index.count as usize]));
        }
        if ranges.covers(first, last) {
            return Ok(Stored::of(vec![false; index.count as usize]));
        }
    }
    // Partly new, or out of order: record by record; a seq twice in the batch counts once.
    let decoded = decode_batch(&w.payload)?;
    let mut fresh = Vec::with_capacity(index.count as usize);
    for r in decoded.records() {
        let seq = r?.seq;
        let new = !ranges.contains(seq);
        if new {
            let merged = ranges.insert(seq, seq);
            covered::persist(tx, &w.client_id, w.boot_id, &merged).map_err(sql)?;
        }
        fresh.push(new);
    }
    if fresh.iter().all(|&f| f) {
        insert_row(tx, &origin, index, &w.payload).map_err(sql)?;
    } else if fresh.iter().any(|&f| f) {
        let records: Vec<Record<'_>> = decoded
            .records()
            .zip(&fresh)
            .filter(|&(_, &new)| new)
            .map(|(r, _)| r)
            .collect::<Result<_, _>>()?;
        let mut index = RowIndex::default();
        for r in &records {
            index.add(r, true);
        }
        let body = encode_records(&records, w.payload.len()).map_err(sql)?;
        insert_row(tx, &origin, &index, &body).map_err(sql)?;
    }
    Ok(Stored::of(fresh))
}

/// Whether a batch's sequence numbers follow each other, and their span.
#[derive(Debug, Clone, Default)]
struct Run {
    span: Option<(u32, u32)>,
    broken: bool,
}

impl Run {
    fn add(&mut self, seq: u32) {
        self.span = match self.span {
            None => Some((seq, seq)),
            Some((first, last)) => {
                if last.checked_add(1) != Some(seq) {
                    self.broken = true;
                }
                Some((first, seq))
            }
        };
    }

    fn consecutive(&self) -> Option<(u32, u32)> {
        self.span.filter(|_| !self.broken)
    }
}

/// Stores the new records of an owned batch, one row per run of records from the same origin.
fn store_entries(
    tx: &Transaction<'_>,
    covered: &mut Covered,
    batch: &IngestBatch,
) -> Result<Stored, rusqlite::Error> {
    let mut fresh = Vec::with_capacity(batch.records.len());
    for e in &batch.records {
        let new = match e.seq {
            None => true,
            Some(seq) => {
                let ranges = covered.of(tx, &e.client_id, e.boot_id)?;
                let new = !ranges.contains(seq);
                if new {
                    let merged = ranges.insert(seq, seq);
                    covered::persist(tx, &e.client_id, e.boot_id, &merged)?;
                }
                new
            }
        };
        fresh.push(new);
    }
    let new: Vec<&LogEntry> = batch
        .records
        .iter()
        .zip(&fresh)
        .filter_map(|(e, &f)| f.then_some(e))
        .collect();
    let same_row = |a: &LogEntry, b: &LogEntry| {
        a.client_id == b.client_id
            && a.boot_id == b.boot_id
            && a.uid == b.uid
            && a.received_ms == b.received_ms
            && a.seq.is_some() == b.seq.is_some()
    };
    for group in new.chunk_by(|a, b| same_row(a, b)) {
        let data: Vec<Vec<u8>> = group
            .iter()
            .map(|e| {
                if e.data.is_null() {
                    Vec::new()
                } else {
                    json_to_cbor(&e.data)
                }
            })
            .collect();
        let with_seq = group[0].seq.is_some();
        let records: Vec<Record<'_>> = group
            .iter()
            .zip(&data)
            .enumerate()
            .map(|(i, (e, data))| Record {
                seq: e.seq.unwrap_or(i as u32),
                time_ms: e.time_ms,
                level: Level::from_name(&e.level).unwrap_or(Level::Trace),
                namespace: &e.ns,
                id: e.id.as_deref(),
                message: &e.message,
                data,
            })
            .collect();
        let mut index = RowIndex::default();
        for r in &records {
            index.add(r, with_seq);
        }
        let body = encode_records(&records, 256)?;
        let origin = RowOrigin {
            client_id: &group[0].client_id,
            boot_id: group[0].boot_id,
            uid: &group[0].uid,
            received_ms: group[0].received_ms,
        };
        insert_row(tx, &origin, &index, &body)?;
    }
    Ok(Stored::of(fresh))
}
