//! The `nrepl/*` events and the nREPL messages' keys the host reads or writes.
//!
//! The nREPL message map travels over the channel as it is (extension keys intact), as CBOR
//! Value maps for native clients and as the dialect's map for text clients (section 20 of
//! PROTOCOL.md).

use sentelite_core::frame::PayloadBuf;
use serde_json::{Map, Value, json};

use crate::translate::{json_to_cbor, payload_to_json};

/// Host → client: one nREPL request. A server→client request for native clients (each
/// part one nREPL response map), a plain event for text clients.
pub const REQUEST: &str = "nrepl/request";
/// Client → host: one nREPL response map, from text clients (native clients answer with
/// the request's parts).
pub const RESPONSE: &str = "nrepl/response";
/// Client → host: "I evaluate", from clients that cannot set the Hello's NREPL bit (text
/// dialects). Optional data: `{"ops": {...}}`.
pub const EVALUATOR: &str = "nrepl/evaluator";

/// An nREPL map as a channel payload.
pub fn to_payload(message: &Map<String, Value>) -> PayloadBuf {
    PayloadBuf::Value(json_to_cbor(&Value::Object(message.clone())))
}

/// A channel payload as an nREPL map, if it is one.
pub fn from_payload(payload: &PayloadBuf) -> Option<Map<String, Value>> {
    match payload_to_json(payload) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

/// Whether a response ends its request: its `status` contains `done`.
pub fn is_done(message: &Map<String, Value>) -> bool {
    message
        .get("status")
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().any(|v| v == "done"))
}

/// A response to `request` (same `id`, and `session` when it had one) with `fields`.
pub fn reply(request: &Map<String, Value>, fields: Value) -> Map<String, Value> {
    let mut out = Map::new();
    if let Some(id) = request.get("id") {
        out.insert("id".into(), id.clone());
    }
    if let Some(session) = request.get("session") {
        out.insert("session".into(), session.clone());
    }
    if let Value::Object(fields) = fields {
        out.extend(fields);
    }
    out
}

/// A failure the editor must see as the end of its request: `err` text, then status
/// `done`, `error` and the `extra` status words.
pub fn failure(request: &Map<String, Value>, err: &str, extra: &[&str]) -> Map<String, Value> {
    let mut status = vec!["done", "error"];
    status.extend_from_slice(extra);
    reply(
        request,
        json!({"err": format!("{err}\n"), "status": status}),
    )
}
