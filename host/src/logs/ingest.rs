//! Reading what clients send before it goes to the store: why a payload is refused, and the
//! single `telemetry/log-msg` map of sente-lite clients turned into an owned record. (The
//! compact `telemetry/log-batch` payload of native clients is checked by
//! [`WireBatch::checked`](super::WireBatch::checked) and stored as it came.)

use sentelite_core::frame::PayloadBuf;
use sentelite_core::log::{BatchError, Level};

use super::entry::LogEntry;
use super::store::IngestBatch;
use crate::translate::payload_to_json;

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
