//! The directive payloads the server sends and the reports it reads back, in the wire
//! contract's shape (PROTOCOL.md section 14).
//!
//! A directive is a Value map with keyword keys and a keyword handler. It is written as EDN
//! text and turned into CBOR by [`crate::translate::edn_to_cbor`], which marks keywords the
//! way the core's Value format does; reports are read through
//! [`crate::translate::payload_to_json`], so a native client's CBOR and a sente-lite client's
//! EDN-as-JSON arrive in one form (keywords lose their colon: `:failed` reads `"failed"`).

use sentelite_core::frame::PayloadBuf;

use super::transfers::{TransferRecord, TransferState};

/// What a directive asks the client to do with the blob: the handler kinds of the seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HandlerKind {
    /// `blob/fetch-and-process`.
    Process,
    /// `blob/fetch-and-eval`.
    Eval,
    /// `blob/fetch-and-display`.
    Display,
    /// `blob/fetch-and-render`.
    Render,
}

impl HandlerKind {
    /// The directive's event id.
    pub fn event(self) -> &'static str {
        match self {
            Self::Process => "blob/fetch-and-process",
            Self::Eval => "blob/fetch-and-eval",
            Self::Display => "blob/fetch-and-display",
            Self::Render => "blob/fetch-and-render",
        }
    }
}

/// The `blob/upload` directive's event id.
pub const UPLOAD_EVENT: &str = "blob/upload";
/// sente-lite dialect: client→server progress event.
pub const PROGRESS_EVENT: &str = "blob/progress";
/// sente-lite dialect: client→server completion event.
pub const COMPLETE_EVENT: &str = "blob/complete";
/// sente-lite dialect: client→server error event.
pub const ERROR_EVENT: &str = "blob/error";

/// The `:options` map of a fetch directive; `None` leaves a field to the client's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct FetchOptions {
    /// One attempt's timeout.
    pub timeout_ms: Option<u64>,
    /// Retries per source before failing over.
    pub retry_count: Option<u64>,
    /// Verify the SHA-256 before handing the blob to the handler (the client's default is
    /// true).
    pub verify: Option<bool>,
    /// Bytes per range request (0: the whole blob at once).
    pub chunk_size: Option<u64>,
    /// The whole transfer's deadline; also the request's timeout.
    pub deadline_ms: Option<u64>,
}

/// A handler name as a keyword, `ns/name` (a leading `:` is allowed and dropped); `None`
/// when it is not a plain EDN keyword.
pub fn keyword(name: &str) -> Option<&str> {
    let name = name.strip_prefix(':').unwrap_or(name);
    let ok = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit() || c == '/')
        && !name.ends_with('/')
        && name.matches('/').count() <= 1
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"*+!_?<>=.-/".contains(&b));
    ok.then_some(name)
}

fn text(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

/// Everything a fetch directive says.
#[derive(Debug, Clone)]
pub struct FetchDirective<'a> {
    /// The transfer's id.
    pub transfer_id: &'a str,
    /// The first source.
    pub url: &'a str,
    /// Further sources, tried in order after `url`.
    pub mirrors: &'a [String],
    /// The handler keyword (checked with [`keyword`]).
    pub handler: &'a str,
    /// The blob's size.
    pub size: Option<u64>,
    /// The blob's SHA-256 in hex.
    pub sha256: Option<&'a str>,
    /// Its media type.
    pub content_type: Option<&'a str>,
    /// The options map.
    pub options: &'a FetchOptions,
}

/// The payload of a fetch directive.
pub fn encode_fetch(d: &FetchDirective<'_>) -> PayloadBuf {
    let mut edn = format!(
        "{{:transfer-id {} :url {} :mirrors [{}] :handler :{} :metadata {{",
        text(d.transfer_id),
        text(d.url),
        d.mirrors
            .iter()
            .map(|m| text(m))
            .collect::<Vec<_>>()
            .join(" "),
        d.handler,
    );
    if let Some(size) = d.size {
        edn.push_str(&format!(" :size {size}"));
    }
    if let Some(sha) = d.sha256 {
        edn.push_str(&format!(" :sha256 {}", text(sha)));
    }
    if let Some(ct) = d.content_type {
        edn.push_str(&format!(" :content-type {}", text(ct)));
    }
    edn.push_str("} :options {");
    let o = d.options;
    for (key, value) in [
        ("timeout-ms", o.timeout_ms),
        ("retry-count", o.retry_count),
        ("chunk-size", o.chunk_size),
        ("deadline-ms", o.deadline_ms),
    ] {
        if let Some(v) = value {
            edn.push_str(&format!(" :{key} {v}"));
        }
    }
    if let Some(verify) = o.verify {
        edn.push_str(&format!(" :verify {verify}"));
    }
    edn.push_str("}}");
    value_of(&edn)
}

/// The payload of a `blob/upload` directive.
pub fn encode_upload(transfer_id: &str, url: &str, source: &str) -> PayloadBuf {
    value_of(&format!(
        "{{:transfer-id {} :url {} :source :{source}}}",
        text(transfer_id),
        text(url)
    ))
}

fn value_of(edn: &str) -> PayloadBuf {
    match crate::translate::edn_to_cbor(edn) {
        Ok(cbor) => PayloadBuf::Value(cbor),
        // Every part above is escaped or checked; an EDN error here is a bug, and the JSON
        // form still carries the same keys to a client that reads text keys.
        Err(e) => {
            tracing::error!(error = %e, "directive did not encode as a Value");
            PayloadBuf::Empty
        }
    }
}

/// A report's map as JSON, or `None` when it is not a map.
pub fn report_map(payload: &PayloadBuf) -> Option<serde_json::Map<String, serde_json::Value>> {
    match crate::translate::payload_to_json(payload).ok()? {
        serde_json::Value::Object(map) => Some(map),
        _ => None,
    }
}

fn num(map: &serde_json::Map<String, serde_json::Value>, key: &str) -> Option<u64> {
    map.get(key).and_then(|v| {
        v.as_u64()
            .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
    })
}

fn string(map: &serde_json::Map<String, serde_json::Value>, key: &str) -> Option<String> {
    map.get(key).and_then(|v| v.as_str()).map(str::to_owned)
}

/// The transfer id a report names (`:transfer-id`), if any.
pub fn transfer_id_of(map: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
    string(map, "transfer-id")
}

/// The URL a report names (`:url`), if any.
pub fn url_of(map: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
    string(map, "url")
}

/// Applies a progress report (`:loaded :total`).
pub fn apply_progress(r: &mut TransferRecord, map: &serde_json::Map<String, serde_json::Value>) {
    if r.state.is_end() {
        return;
    }
    r.state = TransferState::Running;
    if let Some(loaded) = num(map, "loaded") {
        r.loaded = loaded;
    }
    if let Some(total) = num(map, "total") {
        r.total = Some(total);
    }
}

/// Applies a completion report (`:bytes-transferred`, `:bytes`, `:sha256`). A reported hash
/// other than the one the directive named fails the transfer.
pub fn apply_complete(
    r: &mut TransferRecord,
    map: &serde_json::Map<String, serde_json::Value>,
    now_ms: u64,
) {
    let reported = string(map, "sha256").map(|s| s.to_ascii_lowercase());
    match (&r.sha256, &reported) {
        (Some(expected), Some(got)) if expected != got => {
            r.state = TransferState::Failed;
            r.error = Some(format!(
                "client reported SHA-256 {got}, expected {expected}"
            ));
        }
        _ => {
            r.state = TransferState::Completed;
            if r.sha256.is_none() {
                r.sha256 = reported;
            }
            if let Some(bytes) = num(map, "bytes-transferred").or_else(|| num(map, "bytes")) {
                r.loaded = r.loaded.max(bytes);
                r.total.get_or_insert(bytes);
            }
            if let Some(total) = r.total {
                r.loaded = r.loaded.max(total);
            }
        }
    }
    r.ended_ms = Some(now_ms);
}

/// Applies an error report (`:error :retry-count :status-code :state :after-ms :offset`).
pub fn apply_error(
    r: &mut TransferRecord,
    map: &serde_json::Map<String, serde_json::Value>,
    now_ms: u64,
) {
    r.state = match map.get("state").and_then(|v| v.as_str()) {
        Some("rescheduled") => TransferState::Rescheduled,
        _ => TransferState::Failed,
    };
    r.error = Some(string(map, "error").unwrap_or_else(|| "transfer failed".to_owned()));
    if let Some(n) = num(map, "retry-count") {
        r.retry_count = n;
    }
    r.status_code = num(map, "status-code");
    r.after_ms = num(map, "after-ms");
    if let Some(offset) = num(map, "offset") {
        r.loaded = offset;
    }
    r.ended_ms = Some(now_ms);
}

/// Ends a record that the client refused or the request system ended.
pub fn apply_end(r: &mut TransferRecord, state: TransferState, error: String, now_ms: u64) {
    r.state = state;
    r.error = Some(error);
    r.ended_ms = Some(now_ms);
}
