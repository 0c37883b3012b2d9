//! The directive payloads the server sends and the reports it reads back, in the shape of
//! PROTOCOL.md section 14.
//!
//! Directives are written by the core's codec ([`sentelite_core::blob::directive`]), the
//! same one clients decode with, so both sides agree on keys and keywords by construction.
//! Reports are read through [`crate::translate::payload_to_json`], so a native client's CBOR
//! and a sente-lite client's JSON arrive in one form (keywords lose their colon: `:failed`
//! reads `"failed"`; a SHA-256 sent as a byte string reads as base64 and is accepted).

use sentelite_core::frame::PayloadBuf;

use super::transfers::{TransferRecord, TransferState};

/// sente-lite dialect: client→server completion event.
pub use sentelite_core::blob::directive::COMPLETE as COMPLETE_EVENT;
/// sente-lite dialect: client→server error event.
pub use sentelite_core::blob::directive::ERROR as ERROR_EVENT;
/// What a directive asks the client to do with the blob: the core's handler kinds (their
/// event ids and CLI names live there, beside the codec).
pub use sentelite_core::blob::directive::HandlerKind;
/// sente-lite dialect: client→server progress event.
pub use sentelite_core::blob::directive::PROGRESS as PROGRESS_EVENT;
/// The `blob/upload` directive's event id.
pub use sentelite_core::blob::directive::UPLOAD as UPLOAD_EVENT;

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

/// Most mirrors a directive carries (the core decoder's limit).
pub const MAX_MIRRORS: usize = sentelite_core::blob::directive::MAX_MIRRORS;

/// Everything a fetch directive says.
#[derive(Debug, Clone)]
pub struct FetchDirective<'a> {
    /// Which directive.
    pub kind: HandlerKind,
    /// The transfer's id.
    pub transfer_id: &'a str,
    /// The first source.
    pub url: &'a str,
    /// Further sources, tried in order after `url` (at most [`MAX_MIRRORS`]).
    pub mirrors: &'a [String],
    /// The handler keyword (checked with [`keyword`]).
    pub handler: &'a str,
    /// The blob's size.
    pub size: Option<u64>,
    /// The blob's SHA-256.
    pub sha256: Option<[u8; 32]>,
    /// Its media type.
    pub content_type: Option<&'a str>,
    /// The options map.
    pub options: &'a FetchOptions,
}

/// The payload of a fetch directive, written by the core's codec (the one clients decode
/// with); `None` with more than [`MAX_MIRRORS`] mirrors.
pub fn encode_fetch(d: &FetchDirective<'_>) -> Option<PayloadBuf> {
    use sentelite_core::blob::directive::{Directive, Metadata, Options};
    let mut mirrors = heapless::Vec::new();
    for mirror in d.mirrors {
        mirrors.push(mirror.as_str()).ok()?;
    }
    let o = d.options;
    let clamp = |v: Option<u64>| v.map(|v| u32::try_from(v).unwrap_or(u32::MAX));
    let directive = Directive {
        kind: d.kind,
        transfer_id: d.transfer_id,
        url: d.url,
        mirrors,
        handler: d.handler,
        metadata: Metadata {
            size: d.size,
            sha256: d.sha256,
            content_type: d.content_type,
        },
        options: Options {
            timeout_ms: o.timeout_ms,
            retry_count: clamp(o.retry_count),
            verify: o.verify.unwrap_or(true),
            chunk_size: clamp(o.chunk_size),
            deadline_ms: o.deadline_ms,
        },
    };
    let hint = 512 + d.url.len() + d.mirrors.iter().map(String::len).sum::<usize>();
    encoded(hint, |buf| directive.encode(buf).ok())
}

/// The payload of a `blob/upload` directive.
pub fn encode_upload(transfer_id: &str, url: &str, source: &str) -> Option<PayloadBuf> {
    let directive = sentelite_core::blob::directive::UploadDirective {
        transfer_id,
        url,
        source,
    };
    encoded(256 + url.len() + source.len(), |buf| {
        directive.encode(buf).ok()
    })
}

/// Runs a core encoder into a buffer that grows until it fits (the hint is already an
/// upper bound for sane inputs).
fn encoded(hint: usize, encode: impl Fn(&mut [u8]) -> Option<usize>) -> Option<PayloadBuf> {
    let mut len = hint;
    for _ in 0..8 {
        let mut buf = vec![0u8; len];
        if let Some(n) = encode(&mut buf) {
            buf.truncate(n);
            return Some(PayloadBuf::Value(buf));
        }
        len *= 2;
    }
    None
}

/// A reported SHA-256 as lowercase hex: 64 hex digits, or the base64 form a 32-byte byte
/// string takes in the JSON view.
fn digest_hex(value: &serde_json::Value) -> Option<String> {
    use base64::Engine;
    let text = value.as_str()?;
    if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Some(text.to_ascii_lowercase());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    (bytes.len() == 32).then(|| hex::encode(bytes))
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
    let reported = map.get("sha256").and_then(digest_hex);
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
            r.bytes_transferred = num(map, "bytes-transferred");
            r.duration_ms = num(map, "duration-ms");
            // An upload reports `:bytes`; a sente-lite client that never sent the size has
            // only `:bytes-transferred` to go by.
            let size = num(map, "bytes").or(r.bytes_transferred.filter(|_| r.total.is_none()));
            if let Some(bytes) = size {
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

#[cfg(test)]
mod tests {
    use super::keyword;

    #[test]
    fn handler_names_are_keywords() {
        assert_eq!(keyword("demo/show"), Some("demo/show"));
        assert_eq!(keyword(":demo/show"), Some("demo/show"));
        assert_eq!(keyword("show"), Some("show"));
        for bad in ["", ":", "a b", "1x", "/x", "x/", "a/b/c", "a\"b", "a{b"] {
            assert_eq!(keyword(bad), None, "{bad:?}");
        }
    }
}
