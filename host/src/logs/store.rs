//! The embedded log store: one SQLite file in the data dir, in WAL mode so queries read while
//! the ingest writes. Records are deduplicated on `(client, boot_id, seq)` by a unique index
//! and gaps on `(client, boot_id, first_seq)`, so a batch sent again after a lost ack is
//! stored once and its gap counted once. Writes come in groups of batches, one transaction
//! per group.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use sentelite_core::log::Level;

use super::entry::{ClientCounters, GapEntry, LogEntry};
use super::query::{LogQuery, QueryError};

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
}

/// One batch to store, as received from one client.
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

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS logs (
    row INTEGER PRIMARY KEY,
    client_id TEXT NOT NULL,
    boot_id INTEGER NOT NULL,
    seq INTEGER,
    uid TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    level INTEGER NOT NULL,
    ns TEXT NOT NULL,
    event_id TEXT,
    message TEXT NOT NULL,
    data TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS logs_record ON logs (client_id, boot_id, seq);
CREATE INDEX IF NOT EXISTS logs_received ON logs (received_ms);
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
        Ok(Self { conn, path })
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

    /// Stores `batches` in one transaction; one outcome per batch, in order.
    pub fn insert(&mut self, batches: &[IngestBatch]) -> Result<Vec<Stored>, StoreError> {
        let path = self.path.clone();
        let fail = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(fail)?;
        let mut outcomes = Vec::with_capacity(batches.len());
        {
            let mut record = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO logs (client_id, boot_id, seq, uid, time_ms, \
                     received_ms, level, ns, event_id, message, data) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )
                .map_err(fail)?;
            let mut gap = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO gaps (client_id, boot_id, first_seq, last_seq, count, \
                     by_level, first_time_ms, last_time_ms, received_ms) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .map_err(fail)?;
            let mut counters = tx
                .prepare_cached(
                    "INSERT INTO clients (client_id, records, duplicates, gaps, dropped, bytes, \
                     last_seen_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                     ON CONFLICT (client_id) DO UPDATE SET records = records + ?2, \
                     duplicates = duplicates + ?3, gaps = gaps + ?4, dropped = dropped + ?5, \
                     bytes = bytes + ?6, last_seen_ms = max(last_seen_ms, ?7)",
                )
                .map_err(fail)?;
            for batch in batches {
                let mut outcome = Stored::default();
                for r in &batch.records {
                    let level = Level::from_name(&r.level).map_or(0, |l| l as u8);
                    let data = (!r.data.is_null()).then(|| r.data.to_string());
                    let n = record
                        .execute(params![
                            r.client_id,
                            r.boot_id,
                            r.seq,
                            r.uid,
                            r.time_ms as i64,
                            r.received_ms as i64,
                            level,
                            r.ns,
                            r.id,
                            r.message,
                            data
                        ])
                        .map_err(fail)?;
                    outcome.fresh.push(n == 1);
                    if n == 1 {
                        outcome.stored += 1;
                    } else {
                        outcome.duplicates += 1;
                    }
                }
                let mut dropped = 0u64;
                if let Some(g) = &batch.gap {
                    let by_level = serde_json::to_string(&g.by_level).unwrap_or_default();
                    let n = gap
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
                        ])
                        .map_err(fail)?;
                    outcome.new_gap = n == 1;
                    if outcome.new_gap {
                        dropped = u64::from(g.count);
                    }
                }
                counters
                    .execute(params![
                        batch.client_id,
                        outcome.stored as i64,
                        outcome.duplicates as i64,
                        i64::from(outcome.new_gap),
                        dropped as i64,
                        batch.bytes as i64,
                        batch.received_ms as i64
                    ])
                    .map_err(fail)?;
                outcomes.push(outcome);
            }
        }
        tx.commit().map_err(fail)?;
        Ok(outcomes)
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

    /// The newest records matching `query`, oldest first.
    pub fn query(&self, query: &LogQuery) -> Result<Vec<LogEntry>, StoreError> {
        let (filter, args) = where_clause(query)?;
        let sql = format!(
            "SELECT client_id, boot_id, seq, uid, time_ms, received_ms, level, ns, event_id, \
             message, data FROM logs {filter} ORDER BY row DESC LIMIT {}",
            query.effective_limit()
        );
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args.iter()), |row| {
                let level: u8 = row.get(6)?;
                let data: Option<String> = row.get(10)?;
                Ok(LogEntry {
                    client_id: row.get(0)?,
                    boot_id: row.get(1)?,
                    seq: row.get(2)?,
                    uid: row.get(3)?,
                    time_ms: row.get::<_, i64>(4)? as u64,
                    received_ms: row.get::<_, i64>(5)? as u64,
                    level: Level::from_u8(level).map_or("?", Level::name).to_owned(),
                    ns: row.get(7)?,
                    id: row.get(8)?,
                    message: row.get(9)?,
                    data: data
                        .and_then(|d| serde_json::from_str(&d).ok())
                        .unwrap_or(serde_json::Value::Null),
                })
            })
            .map_err(|e| self.err(e))?;
        let mut out = rows
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        out.reverse();
        Ok(out)
    }

    /// How many records match `query` (its limit ignored).
    pub fn count(&self, query: &LogQuery) -> Result<u64, StoreError> {
        let (filter, args) = where_clause(query)?;
        let sql = format!("SELECT count(*) FROM logs {filter}");
        self.conn
            .query_row(&sql, rusqlite::params_from_iter(args.iter()), |row| {
                row.get::<_, i64>(0)
            })
            .map(|n| n as u64)
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
        let mut stmt = self
            .conn
            .prepare(
                "SELECT client_id, records, duplicates, gaps, dropped, bytes, errors, \
                 last_seen_ms FROM clients ORDER BY client_id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
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
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// Deletes records received before `older_than_ms` and, beyond `max_records`, the oldest
    /// ones. Returns how many went.
    pub fn retain(
        &mut self,
        older_than_ms: Option<u64>,
        max_records: Option<u64>,
    ) -> Result<usize, StoreError> {
        let mut removed = 0;
        if let Some(cutoff) = older_than_ms {
            removed += self
                .conn
                .execute(
                    "DELETE FROM logs WHERE received_ms < ?1",
                    params![cutoff as i64],
                )
                .map_err(|e| self.err(e))?;
        }
        if let Some(max) = max_records {
            let newest_kept: Option<i64> = self
                .conn
                .query_row(
                    "SELECT row FROM logs ORDER BY row DESC LIMIT 1 OFFSET ?1",
                    params![max.saturating_sub(1) as i64],
                    |row| row.get(0),
                )
                .optional()
                .map_err(|e| self.err(e))?;
            if let Some(first_kept) = newest_kept {
                removed += self
                    .conn
                    .execute("DELETE FROM logs WHERE row < ?1", params![first_kept])
                    .map_err(|e| self.err(e))?;
            }
        }
        Ok(removed)
    }
}

/// The WHERE clause and its arguments for `query`'s filters.
fn where_clause(query: &LogQuery) -> Result<(String, Vec<rusqlite::types::Value>), QueryError> {
    use rusqlite::types::Value;
    let mut parts = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    if let Some(level) = query.min_level()? {
        args.push(Value::Integer(level as i64));
        parts.push(format!("level >= ?{}", args.len()));
    }
    if let Some(client) = &query.client {
        args.push(Value::Text(client.clone()));
        parts.push(format!("client_id = ?{}", args.len()));
    }
    if let Some(id) = &query.id {
        args.push(Value::Text(id.clone()));
        parts.push(format!("event_id = ?{}", args.len()));
    }
    if let Some(since) = query.since_ms {
        args.push(Value::Integer(since as i64));
        parts.push(format!("received_ms >= ?{}", args.len()));
    }
    if let Some(until) = query.until_ms {
        args.push(Value::Integer(until as i64));
        parts.push(format!("received_ms < ?{}", args.len()));
    }
    if let Some(grep) = &query.grep {
        args.push(Value::Text(grep.clone()));
        parts.push(format!("instr(message, ?{}) > 0", args.len()));
    }
    let clause = if parts.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", parts.join(" AND "))
    };
    Ok((clause, args))
}
