//! A stored log record as the host keeps it: the device's record plus who sent it and when it
//! arrived, owned, with its structured data as JSON; and the same record borrowed, as the
//! ingest writes it to the file without copying it first.

use sentelite_core::log::Record;
use serde::{Deserialize, Serialize};

use crate::translate::cbor_to_json;

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

impl LogEntry {
    /// An owned copy of `from`.
    pub fn from_record(from: &EntryRef<'_>) -> Self {
        Self {
            client_id: from.client_id.to_owned(),
            boot_id: from.boot_id,
            seq: from.seq,
            uid: from.uid.to_owned(),
            time_ms: from.time_ms,
            received_ms: from.received_ms,
            level: from.level.to_owned(),
            ns: from.ns.to_owned(),
            id: from.id.map(str::to_owned),
            message: from.message.to_owned(),
            data: match from.data {
                Data::Cbor(bytes) => structured(bytes),
                Data::Json(value) => value.clone(),
            },
        }
    }
}

/// A record borrowed from a received batch (or from a [`LogEntry`]): serializes to the same
/// JSON as [`LogEntry`], field for field, without building it.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct EntryRef<'a> {
    /// See [`LogEntry::client_id`].
    pub client_id: &'a str,
    /// See [`LogEntry::boot_id`].
    pub boot_id: u32,
    /// See [`LogEntry::seq`].
    pub seq: Option<u32>,
    /// See [`LogEntry::uid`].
    pub uid: &'a str,
    /// See [`LogEntry::time_ms`].
    pub time_ms: u64,
    /// See [`LogEntry::received_ms`].
    pub received_ms: u64,
    /// See [`LogEntry::level`].
    pub level: &'a str,
    /// See [`LogEntry::ns`].
    pub ns: &'a str,
    /// See [`LogEntry::id`].
    pub id: Option<&'a str>,
    /// See [`LogEntry::message`].
    pub message: &'a str,
    /// See [`LogEntry::data`].
    pub data: Data<'a>,
}

/// Who sent a record and when it arrived: what a batch's records share.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// The client.
    pub client_id: &'a str,
    /// Its boot.
    pub boot_id: u32,
    /// The connection's uid.
    pub uid: &'a str,
    /// Arrival, Unix milliseconds.
    pub received_ms: u64,
}

impl<'a> EntryRef<'a> {
    /// Record `r` from `origin`; `seq` is `None` for records sent without one.
    pub fn of(origin: &Origin<'a>, r: &Record<'a>, with_seq: bool) -> Self {
        Self {
            client_id: origin.client_id,
            boot_id: origin.boot_id,
            seq: with_seq.then_some(r.seq),
            uid: origin.uid,
            time_ms: r.time_ms,
            received_ms: origin.received_ms,
            level: r.level.name(),
            ns: r.namespace,
            id: r.id,
            message: r.message,
            data: Data::Cbor(r.data),
        }
    }
}

impl<'a> From<&'a LogEntry> for EntryRef<'a> {
    fn from(e: &'a LogEntry) -> Self {
        Self {
            client_id: &e.client_id,
            boot_id: e.boot_id,
            seq: e.seq,
            uid: &e.uid,
            time_ms: e.time_ms,
            received_ms: e.received_ms,
            level: &e.level,
            ns: &e.ns,
            id: e.id.as_deref(),
            message: &e.message,
            data: Data::Json(&e.data),
        }
    }
}

/// A record's structured data: CBOR as the device sent it (empty for none), or JSON already.
#[derive(Debug, Clone, Copy)]
pub enum Data<'a> {
    /// CBOR bytes; written as JSON.
    Cbor(&'a [u8]),
    /// JSON.
    Json(&'a serde_json::Value),
}

impl Serialize for Data<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Data::Cbor([]) => s.serialize_unit(),
            Data::Cbor(bytes) => structured(bytes).serialize(s),
            Data::Json(value) => value.serialize(s),
        }
    }
}

/// CBOR data as JSON. Data that is not valid CBOR is kept, base64-encoded, rather than
/// refusing the record over it.
pub(crate) fn structured(data: &[u8]) -> serde_json::Value {
    if data.is_empty() {
        return serde_json::Value::Null;
    }
    cbor_to_json(data).unwrap_or_else(|_| {
        use base64::Engine;
        serde_json::json!({
            "undecoded-cbor": base64::engine::general_purpose::STANDARD.encode(data)
        })
    })
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
