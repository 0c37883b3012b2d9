//! Turning what clients send into batches for the store: the compact `telemetry/log-batch` payload of
//! native clients and the single `telemetry/log-msg` map of sente-lite clients.

use sentelite_core::frame::PayloadBuf;
use sentelite_core::log::{BatchError, Level, Record, decode_batch};

use super::entry::{GapEntry, LogEntry};
use super::store::IngestBatch;
use crate::translate::{cbor_to_json, payload_to_json};

/// Who sent a batch.
#[derive(Debug, Clone)]
pub struct Sender<'a> {
    /// Client id from the Hello.
    pub client_id: &'a str,
    /// Boot id from the Hello.
    pub boot_id: u32,
    /// The connection's uid.
    pub uid: &'a str,
}

/// Why a payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    /// A batch must be a bytes payload.
    #[error("a log batch must be a bytes payload")]
    NotBytes,
    /// The batch does not decode.
    #[error(transparent)]
    Batch(#[from] BatchError),
    /// A `telemetry/log-msg` payload is not a map with the expected keys.
    #[error("log message: {0}")]
    Message(String),
}

/// Decodes a `telemetry/log-batch` payload in full (a malformed batch is refused as a whole, nothing of
/// it stored).
pub fn batch_from_payload(
    from: &Sender<'_>,
    payload: &PayloadBuf,
    received_ms: u64,
) -> Result<IngestBatch, IngestError> {
    let PayloadBuf::Bytes(bytes) = payload else {
        return Err(IngestError::NotBytes);
    };
    let batch = decode_batch(bytes)?;
    batch.validate()?;
    let records = batch
        .records()
        .map(|r| r.map(|r| entry_from_record(from, &r, received_ms)))
        .collect::<Result<Vec<_>, _>>()?;
    let gap = batch.gap.map(|g| GapEntry {
        client_id: from.client_id.to_owned(),
        boot_id: from.boot_id,
        count: g.count,
        by_level: g.by_level,
        first_seq: g.first_seq,
        last_seq: g.last_seq,
        first_time_ms: g.first_time_ms,
        last_time_ms: g.last_time_ms,
        received_ms,
    });
    Ok(IngestBatch {
        client_id: from.client_id.to_owned(),
        bytes: bytes.len() as u64,
        received_ms,
        records,
        gap,
    })
}

fn entry_from_record(from: &Sender<'_>, r: &Record<'_>, received_ms: u64) -> LogEntry {
    LogEntry {
        client_id: from.client_id.to_owned(),
        boot_id: from.boot_id,
        seq: Some(r.seq),
        uid: from.uid.to_owned(),
        time_ms: r.time_ms,
        received_ms,
        level: r.level.name().to_owned(),
        ns: r.namespace.to_owned(),
        id: r.id.map(str::to_owned),
        message: r.message.to_owned(),
        data: structured(r.data),
    }
}

/// The record's data as JSON. Data that is not valid CBOR is kept, base64-encoded, rather than
/// refusing the record over it.
fn structured(data: &[u8]) -> serde_json::Value {
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

/// Reads sente-lite's single-record shape, `{:ns :level :id :data :timestamp}` (plus an
/// optional `:message` / `:msg`), sent as an EDN/CBOR value or JSON.
pub fn message_from_payload(
    from: &Sender<'_>,
    payload: &PayloadBuf,
    received_ms: u64,
) -> Result<IngestBatch, IngestError> {
    let value = payload_to_json(payload).map_err(|e| IngestError::Message(e.to_string()))?;
    let serde_json::Value::Object(map) = value else {
        return Err(IngestError::Message("expected a map".into()));
    };
    let text = |key: &str| map.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    let level_name = text("level").unwrap_or_else(|| "info".into());
    let level = Level::from_name(&level_name)
        .ok_or_else(|| IngestError::Message(format!("unknown level {level_name:?}")))?;
    let message = text("message").or_else(|| text("msg")).unwrap_or_default();
    let entry = LogEntry {
        client_id: from.client_id.to_owned(),
        boot_id: from.boot_id,
        seq: None,
        uid: from.uid.to_owned(),
        time_ms: map
            .get("timestamp")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(received_ms),
        received_ms,
        level: level.name().to_owned(),
        ns: text("ns").unwrap_or_default(),
        id: text("id"),
        message,
        data: map.get("data").cloned().unwrap_or(serde_json::Value::Null),
    };
    Ok(IngestBatch {
        client_id: from.client_id.to_owned(),
        bytes: payload.as_payload().len() as u64,
        received_ms,
        records: vec![entry],
        gap: None,
    })
}
