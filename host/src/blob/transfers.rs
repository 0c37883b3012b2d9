//! Transfer records: one row per directive sent (or per transfer a client reported on its
//! own), in `blobs.db` in the data dir.
//!
//! The blob records live in their own SQLite file rather than the log store's: the log
//! store has one writer thread tuned for batch ingest, its own retention, and can be
//! switched off (`[logs] enabled = false`) while blobs are still served; transfer updates
//! are few (progress steps, one end) and written straight from the async side.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

/// File of the transfer records inside the data dir.
pub const TRANSFERS_FILE: &str = "blobs.db";

/// Where a transfer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TransferState {
    /// The directive went out; nothing heard yet.
    Sent,
    /// The client reported progress.
    Running,
    /// The client verified and kept the blob (or uploaded it).
    Completed,
    /// The client gave up, or the request ended without an answer (timeout, connection
    /// closed).
    Failed,
    /// The client will try again later by itself (`after-ms`).
    Rescheduled,
    /// The client refused the directive (unknown handler, busy).
    Refused,
    /// The server cancelled it.
    Cancelled,
}

impl TransferState {
    /// Whether nothing follows this state.
    pub fn is_end(self) -> bool {
        !matches!(self, Self::Sent | Self::Running)
    }

    fn name(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Rescheduled => "rescheduled",
            Self::Refused => "refused",
            Self::Cancelled => "cancelled",
        }
    }

    fn from_name(name: &str) -> Self {
        match name {
            "sent" => Self::Sent,
            "running" => Self::Running,
            "completed" => Self::Completed,
            "rescheduled" => Self::Rescheduled,
            "refused" => Self::Refused,
            "cancelled" => Self::Cancelled,
            _ => Self::Failed,
        }
    }
}

/// One transfer as the server knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct TransferRecord {
    /// The directive's `:transfer-id`.
    pub transfer_id: String,
    /// The client it went to.
    pub client: String,
    /// `fetch-and-process`, `fetch-and-eval`, `fetch-and-display`, `fetch-and-render` or
    /// `upload`: the directive's event id without `blob/`.
    pub kind: String,
    /// The handler (`ns/name`), or the upload's source.
    pub handler: Option<String>,
    /// The blob's SHA-256, when known.
    pub sha256: Option<String>,
    /// Where the bytes come from (or go to, for an upload).
    pub url: Option<String>,
    /// Where it stands.
    pub state: TransferState,
    /// Bytes the client holds so far.
    pub loaded: u64,
    /// The blob's size, when known.
    pub total: Option<u64>,
    /// When the directive was sent (Unix milliseconds).
    pub started_ms: u64,
    /// When it reached its end state.
    pub ended_ms: Option<u64>,
    /// The client's reason for a failure or refusal.
    pub error: Option<String>,
    /// Attempts the client retried.
    pub retry_count: u64,
    /// The HTTP status the client saw last on a failure.
    pub status_code: Option<u64>,
    /// For `rescheduled`: when the client will try again, in milliseconds from the end.
    pub after_ms: Option<u64>,
    /// For `completed`: the bytes that came over HTTP, resumes included (0 when the client
    /// already held the blob).
    pub bytes_transferred: Option<u64>,
    /// For `completed`: the client's time from the directive to the commit.
    pub duration_ms: Option<u64>,
}

impl TransferRecord {
    /// A fresh record in state `sent`.
    pub fn sent(transfer_id: String, client: String, kind: String, started_ms: u64) -> Self {
        Self {
            transfer_id,
            client,
            kind,
            handler: None,
            sha256: None,
            url: None,
            state: TransferState::Sent,
            loaded: 0,
            total: None,
            started_ms,
            ended_ms: None,
            error: None,
            retry_count: 0,
            status_code: None,
            after_ms: None,
            bytes_transferred: None,
            duration_ms: None,
        }
    }
}

/// Why the transfer records could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct TransfersError {
    path: PathBuf,
    source: rusqlite::Error,
}

/// The SQLite file of transfer records.
#[derive(Debug)]
pub struct TransferStore {
    conn: Connection,
    path: PathBuf,
}

const COLUMNS: &str = "transfer_id, client, kind, handler, sha256, url, state, loaded, total, \
     started_ms, ended_ms, error, retry_count, status_code, after_ms, bytes_transferred, duration_ms";

impl TransferStore {
    /// Opens (creating if needed) `blobs.db` in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, TransfersError> {
        let path = data_dir.join(TRANSFERS_FILE);
        let wrap = |source| TransfersError {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(wrap)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA busy_timeout = 5000;
             CREATE TABLE IF NOT EXISTS transfers (
                 transfer_id TEXT PRIMARY KEY,
                 client TEXT NOT NULL,
                 kind TEXT NOT NULL,
                 handler TEXT,
                 sha256 TEXT,
                 url TEXT,
                 state TEXT NOT NULL,
                 loaded INTEGER NOT NULL,
                 total INTEGER,
                 started_ms INTEGER NOT NULL,
                 ended_ms INTEGER,
                 error TEXT,
                 retry_count INTEGER NOT NULL,
                 status_code INTEGER,
                 after_ms INTEGER,
                 bytes_transferred INTEGER,
                 duration_ms INTEGER
             );
             CREATE INDEX IF NOT EXISTS transfers_client ON transfers (client, started_ms);",
        )
        .map_err(wrap)?;
        Ok(Self { conn, path })
    }

    fn wrap(&self, source: rusqlite::Error) -> TransfersError {
        TransfersError {
            path: self.path.clone(),
            source,
        }
    }

    /// Inserts or replaces the record with its transfer id.
    pub fn save(&self, r: &TransferRecord) -> Result<(), TransfersError> {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.conn
            .execute(
                &format!(
                    "INSERT OR REPLACE INTO transfers ({COLUMNS}) VALUES \
                     (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
                ),
                params![
                    r.transfer_id,
                    r.client,
                    r.kind,
                    r.handler,
                    r.sha256,
                    r.url,
                    r.state.name(),
                    n(r.loaded),
                    r.total.map(n),
                    n(r.started_ms),
                    r.ended_ms.map(n),
                    r.error,
                    n(r.retry_count),
                    r.status_code.map(n),
                    r.after_ms.map(n),
                    r.bytes_transferred.map(n),
                    r.duration_ms.map(n),
                ],
            )
            .map(drop)
            .map_err(|e| self.wrap(e))
    }

    /// The record of `transfer_id`.
    pub fn get(&self, transfer_id: &str) -> Result<Option<TransferRecord>, TransfersError> {
        self.conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM transfers WHERE transfer_id = ?1"),
                [transfer_id],
                row_to_record,
            )
            .optional()
            .map_err(|e| self.wrap(e))
    }

    /// The newest transfer of `client` from `url` that has not ended (the sente-lite
    /// dialect may name a transfer by its URL only).
    pub fn open_by_url(
        &self,
        client: &str,
        url: &str,
    ) -> Result<Option<TransferRecord>, TransfersError> {
        self.conn
            .query_row(
                &format!(
                    "SELECT {COLUMNS} FROM transfers WHERE client = ?1 AND url = ?2 \
                     AND state IN ('sent', 'running') ORDER BY started_ms DESC LIMIT 1"
                ),
                [client, url],
                row_to_record,
            )
            .optional()
            .map_err(|e| self.wrap(e))
    }

    /// The newest `limit` records (all when 0), of one client when given, oldest first.
    pub fn list(
        &self,
        client: Option<&str>,
        limit: usize,
    ) -> Result<Vec<TransferRecord>, TransfersError> {
        let limit = if limit == 0 { i64::MAX } else { limit as i64 };
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM transfers WHERE (?1 IS NULL OR client = ?1) \
                 ORDER BY started_ms DESC, rowid DESC LIMIT ?2"
            ))
            .map_err(|e| self.wrap(e))?;
        let rows = stmt
            .query_map(params![client, limit], row_to_record)
            .map_err(|e| self.wrap(e))?;
        let mut records = rows
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.wrap(e))?;
        records.reverse();
        Ok(records)
    }
}

fn row_to_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<TransferRecord> {
    let u = |v: i64| u64::try_from(v).unwrap_or(0);
    let state: String = row.get(6)?;
    Ok(TransferRecord {
        transfer_id: row.get(0)?,
        client: row.get(1)?,
        kind: row.get(2)?,
        handler: row.get(3)?,
        sha256: row.get(4)?,
        url: row.get(5)?,
        state: TransferState::from_name(&state),
        loaded: u(row.get(7)?),
        total: row.get::<_, Option<i64>>(8)?.map(u),
        started_ms: u(row.get(9)?),
        ended_ms: row.get::<_, Option<i64>>(10)?.map(u),
        error: row.get(11)?,
        retry_count: u(row.get(12)?),
        status_code: row.get::<_, Option<i64>>(13)?.map(u),
        after_ms: row.get::<_, Option<i64>>(14)?.map(u),
        bytes_transferred: row.get::<_, Option<i64>>(15)?.map(u),
        duration_ms: row.get::<_, Option<i64>>(16)?.map(u),
    })
}
