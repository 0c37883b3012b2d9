//! A stored log record as the host keeps it: the device's record plus who sent it and when it
//! arrived, owned, with its structured data as JSON.

use serde::{Deserialize, Serialize};

/// One record in the store, in the query API and in the JSON-lines file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct LogEntry {
    /// The client's stable identity.
    pub client_id: String,
    /// The client's boot; with `seq` it names the record.
    pub boot_id: u32,
    /// Position in the boot's record sequence; `None` for single records sent without one
    /// (sente-lite's `telemetry/log-msg`).
    pub seq: Option<u32>,
    /// The connection's uid when it arrived.
    pub uid: String,
    /// The client's timestamp, in milliseconds.
    pub time_ms: u64,
    /// When the server stored it, Unix milliseconds.
    pub received_ms: u64,
    /// `trace` … `report`.
    pub level: String,
    /// Namespace (`ns`).
    pub ns: String,
    /// Event id, if any.
    pub id: Option<String>,
    /// Text.
    pub message: String,
    /// Structured data; `null` when none.
    pub data: serde_json::Value,
}

/// Records a client dropped, as its gap record reported them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct GapEntry {
    /// The client.
    pub client_id: String,
    /// Its boot.
    pub boot_id: u32,
    /// Records dropped.
    pub count: u32,
    /// Of those, per level (trace first).
    pub by_level: [u32; 7],
    /// Lowest sequence number dropped.
    pub first_seq: u32,
    /// Highest sequence number dropped.
    pub last_seq: u32,
    /// Earliest client timestamp among them.
    pub first_time_ms: u64,
    /// Latest client timestamp among them.
    pub last_time_ms: u64,
    /// When the server learned of it, Unix milliseconds.
    pub received_ms: u64,
}

/// What the server knows of one client's logging.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ClientCounters {
    /// The client.
    pub client_id: String,
    /// Records stored.
    pub records: u64,
    /// Records received again after a reconnect and recognised as duplicates.
    pub duplicates: u64,
    /// Gap records received.
    pub gaps: u64,
    /// Records the client reported dropped.
    pub dropped: u64,
    /// Batch payload bytes received.
    pub bytes: u64,
    /// Batches refused as malformed.
    pub errors: u64,
    /// Last batch, Unix milliseconds.
    pub last_seen_ms: u64,
}
