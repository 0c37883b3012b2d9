//! The `lsp/*` events' payloads: a map read from any dialect, written back in the form the
//! session's client used.
//!
//! Every dialect's event data meets in one shape here: a JSON object with the keys
//! `session-id`, `language`, `request-id`, `method`, `params`, `result`, `error` (EDN
//! keywords lose their colon on the way, section 11.2 of PROTOCOL.md). A client that sent a
//! Json payload gets Json payloads back; every other client gets Value maps whose keys are
//! keywords where they can be, so sente-lite code reads `(:session-id data)` and
//! `(get-in data [:result :capabilities])`.

use sentelite_core::frame::PayloadBuf;
use serde_json::{Map, Value, json};

use crate::translate::{json_to_cbor_keyword_keys, payload_to_json};

/// Starts or rejoins a session. Answered with an `lsp/response` carrying the language
/// server's initialize result, or an `lsp/error`.
pub const INITIALIZE: &str = "lsp/initialize";
/// A JSON-RPC request, either way.
pub const REQUEST: &str = "lsp/request";
/// A JSON-RPC response, either way.
pub const RESPONSE: &str = "lsp/response";
/// A JSON-RPC notification, either way.
pub const NOTIFICATION: &str = "lsp/notification";
/// A session-level failure, from the host to the client.
pub const ERROR: &str = "lsp/error";

/// How a client writes its payloads, and so how it is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadForm {
    /// CBOR Value maps (native clients, and every text dialect after translation).
    Value,
    /// JSON text (native clients that speak JSON).
    Json,
}

/// One event's data, read.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// The map.
    pub map: Map<String, Value>,
    /// The form it came in.
    pub form: PayloadForm,
}

impl Inbound {
    /// Reads a payload; anything but a map is refused.
    pub fn read(payload: &PayloadBuf) -> Result<Self, String> {
        let form = match payload {
            PayloadBuf::Json(_) => PayloadForm::Json,
            _ => PayloadForm::Value,
        };
        match payload_to_json(payload) {
            Ok(Value::Object(map)) => Ok(Self { map, form }),
            Ok(_) => Err("the payload must be a map".to_owned()),
            Err(e) => Err(format!("unreadable payload: {e}")),
        }
    }

    /// `session-id` as text.
    pub fn session_id(&self) -> Option<&str> {
        self.map.get("session-id").and_then(Value::as_str)
    }

    /// A text field.
    pub fn text(&self, key: &str) -> Option<&str> {
        self.map.get(key).and_then(Value::as_str)
    }

    /// A field, `None` when absent or null (so `"params": null` is never forwarded).
    pub fn field(&self, key: &str) -> Option<&Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }
}

/// Writes `body` in `form`.
pub fn write(form: PayloadForm, body: &Value) -> PayloadBuf {
    match form {
        PayloadForm::Value => PayloadBuf::Value(json_to_cbor_keyword_keys(body)),
        PayloadForm::Json => PayloadBuf::Json(body.to_string()),
    }
}

/// Why a session could not be used, as the `error` of an `lsp/error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LspErrorKind {
    /// The client is not in `lsp.allowed-clients`.
    NotAllowed,
    /// No `[lsp.<language>]` table.
    UnknownLanguage,
    /// The language's `enabled = false`.
    LanguageDisabled,
    /// The language's `max-sessions` are all in use.
    MaxSessions,
    /// The server program could not be started.
    SpawnFailed,
    /// The server answered `initialize` with an error, or not in time.
    InitializeFailed,
    /// The server process ended without being asked to.
    ServerExited,
    /// No session with this id (or it belongs to another language).
    NoSession,
    /// The event's data lacks a field or has the wrong type.
    BadPayload,
    /// The session's queue towards the server is full; the message was not taken.
    Busy,
    /// The client's `rootUri` cannot be used for this language.
    BadRoot,
}

impl LspErrorKind {
    /// Every kind, for documentation checks.
    pub const ALL: [Self; 11] = [
        Self::NotAllowed,
        Self::UnknownLanguage,
        Self::LanguageDisabled,
        Self::MaxSessions,
        Self::SpawnFailed,
        Self::InitializeFailed,
        Self::ServerExited,
        Self::NoSession,
        Self::BadPayload,
        Self::Busy,
        Self::BadRoot,
    ];

    /// The text clients match on.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotAllowed => "not-allowed",
            Self::UnknownLanguage => "unknown-language",
            Self::LanguageDisabled => "language-disabled",
            Self::MaxSessions => "max-sessions",
            Self::SpawnFailed => "spawn-failed",
            Self::InitializeFailed => "initialize-failed",
            Self::ServerExited => "server-exited",
            Self::NoSession => "no-session",
            Self::BadPayload => "bad-payload",
            Self::Busy => "busy",
            Self::BadRoot => "bad-root",
        }
    }
}

/// An `lsp/error` body.
pub fn error_body(session_id: Option<&str>, kind: LspErrorKind, message: &str) -> Value {
    let mut body = json!({"error": kind.as_str(), "message": message});
    if let Some(id) = session_id {
        body["session-id"] = json!(id);
    }
    body
}

/// JSON-RPC error code for a request whose server went away (in the range JSON-RPC leaves
/// to servers).
pub const SERVER_GONE: i64 = -32050;
/// JSON-RPC error code for a message the host could not take or deliver.
pub const HOST_REFUSED: i64 = -32051;
