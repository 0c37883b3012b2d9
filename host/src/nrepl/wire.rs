//! The `nrepl/*` events and the nREPL messages' keys the host reads or writes.
//!
//! The nREPL message map travels over the channel as it is (extension keys intact), as CBOR
//! Value maps for native clients and as the dialect's map for text clients (section 20 of
//! PROTOCOL.md).

use sentelite_core::frame::PayloadBuf;
use serde_json::{Map, Value, json};

use crate::translate::payload_to_json;

/// Host → client: one nREPL request. A server→client request for native clients (each
/// part one nREPL response map), a plain event for text clients.
pub const REQUEST: &str = "nrepl/request";
/// Client → host: one nREPL response map, from text clients (native clients answer with
/// the request's parts).
pub const RESPONSE: &str = "nrepl/response";
/// Client → host: "I evaluate", from clients that cannot set the Hello's NREPL bit (text
/// dialects). Optional data: `{"ops": {...}}`.
pub const EVALUATOR: &str = "nrepl/evaluator";

/// Client → host: evaluate on the host's upstream nREPL server. A request for native
/// clients (each response one part), an event for text clients.
pub const BROWSER_REQUEST: &str = "nrepl/browser-request";
/// Host → text client: one upstream response to its `nrepl/browser-request`.
pub const BROWSER_RESPONSE: &str = "nrepl/browser-response";

/// An nREPL map as a channel payload: a CBOR map whose keys are keywords where they can be
/// (`op`, `code`, `nrepl.middleware.print/print` …), so sente-lite code reads `(:code msg)`;
/// values stay as they came (text, integers, lists, maps).
pub fn to_payload(message: &Map<String, Value>) -> PayloadBuf {
    let mut out = VecWriter(Vec::new());
    let mut encoder = minicbor::Encoder::new(&mut out);
    // Writing into a Vec cannot fail.
    let _ = write_map(&mut encoder, message, 0);
    PayloadBuf::Value(out.0)
}

/// Deepest nesting written; deeper values (never produced by the bencode framer, which
/// stops at 32) become null.
const MAX_WRITE_DEPTH: usize = 64;

struct VecWriter(Vec<u8>);

impl minicbor::encode::Write for VecWriter {
    type Error = std::convert::Infallible;
    fn write_all(&mut self, buf: &[u8]) -> Result<(), Self::Error> {
        self.0.extend_from_slice(buf);
        Ok(())
    }
}

type Enc<'a> = minicbor::Encoder<&'a mut VecWriter>;
type EncResult = Result<(), minicbor::encode::Error<std::convert::Infallible>>;

fn write_map(e: &mut Enc<'_>, map: &Map<String, Value>, depth: usize) -> EncResult {
    e.map(map.len() as u64)?;
    for (key, value) in map {
        if is_keyword(key) {
            e.tag(minicbor::data::Tag::new(sentelite_core::value::KEYWORD_TAG))?;
        }
        e.str(key)?;
        write_value(e, value, depth + 1)?;
    }
    Ok(())
}

fn write_value(e: &mut Enc<'_>, value: &Value, depth: usize) -> EncResult {
    if depth > MAX_WRITE_DEPTH {
        e.null()?;
        return Ok(());
    }
    match value {
        Value::Null => {
            e.null()?;
        }
        Value::Bool(b) => {
            e.bool(*b)?;
        }
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                e.i64(i)?;
            } else if let Some(u) = n.as_u64() {
                e.u64(u)?;
            } else {
                e.f64(n.as_f64().unwrap_or(f64::NAN))?;
            }
        }
        Value::String(s) => {
            e.str(s)?;
        }
        Value::Array(items) => {
            e.array(items.len() as u64)?;
            for item in items {
                write_value(e, item, depth + 1)?;
            }
        }
        Value::Object(map) => write_map(e, map, depth)?,
    }
    Ok(())
}

/// Whether `key` reads as an EDN keyword name (`op`, `new-session`, `a.b/c`).
fn is_keyword(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || "*+!-_?<>=.".contains(c))
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "*+!-_?<>=./".contains(c))
        && !key.ends_with('/')
        && key.matches('/').count() <= 1
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
