//! Payload translation between the native value form and the dialects other peers speak.
//!
//! Native peers carry structured data as a `Value` payload: one CBOR data item with tag 39
//! marking keywords (see [`sentelite_core::value`]). sente-lite and other Clojure peers speak
//! EDN, JS peers speak JSON; the host translates at its edge with the functions here.
//!
//! | CBOR item | EDN | JSON |
//! |---|---|---|
//! | map | `{k v, k v}` (order kept; a repeated key is refused) | object; keys as below |
//! | array | `[a b]` (EDN lists read as arrays too) | array |
//! | tag 258 + array (set) | `#{a b}` (order kept; a repeated element is refused) | array (lossy) |
//! | text | `"…"` escaped as `pr-str` does | string |
//! | tag 39 + text (keyword) | `:ns/name` | `"ns/name"` (lossy: the colon is dropped) |
//! | unsigned / negative integer | integer (full CBOR range) | number (outside i64/u64: float, lossy) |
//! | half / single / double float | as Clojure prints a double (`1.0`, `0.001`, `1.0E7`, `1.5E-7`); `##NaN`, `##Inf`, `##-Inf` | number; NaN and infinities become `null` (lossy) |
//! | true / false | `true` / `false` | `true` / `false` |
//! | null, undefined | `nil` | `null` |
//! | byte string | `#sentelite/bytes "base64"` | base64 string (standard alphabet, padded; lossy) |
//! | tag 0 + text (date/time) | `#inst "…"`, the text exactly | string |
//! | tag 37 + 16 bytes (UUID) | `#uuid "…"` (lowercase, as `pr-str` prints it) | string |
//! | tag 27 + `[name, value]` (tagged literal) | `#name value`, e.g. `#my/tag {:a 1}` | the value; the tag is dropped (lossy) |
//! | any other tag | the tagged item; the tag is dropped (lossy) | same |
//!
//! Equal, for repeated keys and elements, means the same CBOR encoding with numbers compared
//! by value: `1`, `1.0` and `1N` are one number, as are `0.0` and `-0.0` (ClojureScript's
//! numbers are JavaScript's), and every NaN is the one `##NaN`. EDN readers refuse `#{1 1}`
//! and `{:a 1, :a 2}`, so CBOR holding either is refused ([`TranslateError::CborDuplicate`])
//! rather than passed on as text a Clojure peer cannot read.
//!
//! JSON object keys: text and keywords become their text, numbers, booleans, null, byte
//! strings, instants and UUIDs their JSON text form, a tagged literal its value's; arrays, sets
//! and maps as keys are refused ([`TranslateError::JsonKey`]). Keys that collide after this
//! (`:a` and `"a"`) keep the last.
//!
//! The other way:
//! - [`json_to_cbor`]: objects become maps with text keys (JSON has no keywords, so a JS
//!   peer's `{"level":"info"}` reaches EDN peers as `{"level" "info"}`), integral numbers
//!   become integers (JS does not tell `1` from `1.0`), other numbers doubles.
//! - [`edn_to_cbor`] reads what Clojure and ClojureScript `pr-str` write and what people write
//!   by hand: maps (commas are whitespace), vectors, lists (as arrays), sets, keywords,
//!   strings (escapes `\t \r \n \\ \" \b \f`, `\uXXXX` with surrogate pairs joined, octal
//!   `\0`–`\377`), characters (as one-character text), integers (with optional `N`), floats
//!   (with optional `M`, as doubles), ratios (as doubles), `##Inf`/`##-Inf`/`##NaN`, `nil`,
//!   booleans, symbols (as text), namespaced maps `#:ns{…}`, comments, `#_` discards and
//!   tagged literals: `#inst`, `#uuid` and `#sentelite/bytes` as above, any other tag as
//!   tag 27, so it prints back exactly as written. Anything
//!   else (metadata, regexes, reader macros, `::auto` keywords) is a typed [`EdnErrorKind`],
//!   never a panic.
//!
//! Lossy on the way through EDN, by design: `1N` prints as `1`, `1.5M` and ratios as doubles,
//! characters and symbols as strings, lists as vectors.
//!
//! Every reader refuses input nested deeper than [`MAX_DEPTH`] collections or tagged
//! literals, so a hostile payload cannot overflow the stack. Levels count the same in EDN and
//! CBOR (a set or tagged literal is one level with its array; keywords, dates and UUIDs are
//! scalars), so a form one side accepts, the other accepts too.
//!
//! EDN reading is a small hand parser: `edn-format` 3.3 recurses without any depth limit and
//! pulls chrono, uuid 0.8, bigdecimal 0.3 and itertools 0.10 into the server for types this
//! subset does not need, and `edn-rs` is deprecated by its authors. CBOR is decoded with
//! `minicbor` (already the core's encoder); CBOR is written with a few lines of our own
//! because writing into a `Vec` cannot fail, so there is no fallible encoder API to unwrap.

pub(crate) mod cbor;
pub(crate) mod edn_read;
pub(crate) mod edn_write;
pub(crate) mod item;
pub(crate) mod json;
#[cfg(test)]
mod properties;

use sentelite_core::frame::{Payload, PayloadBuf};

/// Deepest nesting of collections and tags any translation accepts.
pub const MAX_DEPTH: usize = 128;

/// Why a payload could not be translated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TranslateError {
    /// The CBOR input ended inside a data item.
    #[error("CBOR input ends inside a data item")]
    CborTruncated,
    /// The CBOR input is not well-formed.
    #[error("malformed CBOR at byte {offset}: {detail}")]
    Cbor {
        /// Byte offset of the offending item.
        offset: usize,
        /// What was wrong.
        detail: String,
    },
    /// Bytes follow the single CBOR data item a payload holds.
    #[error("bytes follow the CBOR data item, starting at byte {offset}")]
    TrailingBytes {
        /// Where the extra bytes start.
        offset: usize,
    },
    /// The EDN text could not be read.
    #[error("EDN error at line {line}, column {column}: {kind}")]
    Edn {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column (in characters) of the error.
        column: usize,
        /// What was wrong.
        kind: EdnErrorKind,
    },
    /// The input nests collections or tags deeper than [`MAX_DEPTH`].
    #[error("nesting deeper than {limit} levels")]
    TooDeep {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// A CBOR map with a repeated key or a set (tag 258) with a repeated element: EDN
    /// readers refuse both, so the item cannot be passed on. Equal means the same encoding.
    #[error("repeated {what} in the CBOR collection at byte {offset}")]
    CborDuplicate {
        /// Where the collection starts.
        offset: usize,
        /// `"map key"` or `"set element"`.
        what: &'static str,
    },
    /// A tag-27 tagged literal whose name cannot be written after `#` in EDN.
    #[error("{0:?} is not a valid EDN tag")]
    InvalidTag(String),
    /// A tag-39 keyword whose text cannot be written as an EDN keyword.
    #[error("keyword text {0:?} is not a valid EDN keyword")]
    InvalidKeyword(String),
    /// A well-formed CBOR item that has no counterpart in the target notation.
    #[error("{0} cannot be translated")]
    Unsupported(String),
    /// A map key that JSON cannot express (JSON keys are strings).
    #[error("a {0} cannot be a JSON object key")]
    JsonKey(&'static str),
    /// A `Json` payload whose text is not valid JSON.
    #[error("JSON payload is not valid JSON: {0}")]
    Json(String),
}

/// What was wrong with EDN input (inside [`TranslateError::Edn`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EdnErrorKind {
    /// Only whitespace, commas, comments or discards.
    #[error("no form in the input")]
    Empty,
    /// The input ended inside a form (an open collection or string).
    #[error("input ends inside a form")]
    UnexpectedEnd,
    /// A closing delimiter that closes nothing, or the wrong one.
    #[error("unmatched delimiter {0:?}")]
    UnmatchedDelimiter(char),
    /// A map literal with an odd number of forms.
    #[error("map literal with an odd number of forms")]
    OddMap,
    /// A token that starts like a number but is not one.
    #[error("invalid number {0:?}")]
    InvalidNumber(String),
    /// An integer outside CBOR's range (-2^64 ..= 2^64-1).
    #[error("integer {0} is outside the CBOR integer range")]
    IntegerOutOfRange(String),
    /// An unknown or incomplete escape inside a string.
    #[error("invalid string escape {0:?}")]
    InvalidEscape(String),
    /// An unknown character literal (`\foo`).
    #[error("invalid character literal {0:?}")]
    InvalidCharacter(String),
    /// A keyword that is empty, auto-resolved (`::k`) or otherwise malformed.
    #[error("invalid keyword {0:?}")]
    InvalidKeyword(String),
    /// `#` followed by something that is neither reader syntax nor a tag (a symbol starting
    /// with a letter).
    #[error("invalid tag #{0}")]
    UnsupportedTag(String),
    /// A set literal that names an element twice, as Clojure's reader refuses it.
    #[error("duplicate set element {0}")]
    DuplicateSetElement(String),
    /// A map literal that names a key twice, as Clojure's reader refuses it.
    #[error("duplicate map key {0}")]
    DuplicateMapKey(String),
    /// A symbol that Clojure's reader would refuse (`a/`, `/a`, `a::b`).
    #[error("invalid symbol {0:?}")]
    InvalidSymbol(String),
    /// A supported tagged literal with a bad value.
    #[error("invalid #{tag} literal: {detail}")]
    InvalidTagged {
        /// The tag.
        tag: String,
        /// What was wrong.
        detail: String,
    },
    /// Reader syntax outside the supported subset (metadata, regexes, reader macros …).
    #[error("{0} is not in the supported EDN subset")]
    Unsupported(&'static str),
    /// Another form follows the first one.
    #[error("more than one form in the input")]
    TrailingInput,
}

/// Translates one CBOR data item to JSON.
pub fn cbor_to_json(bytes: &[u8]) -> Result<serde_json::Value, TranslateError> {
    json::to_json(&cbor::decode(bytes)?)
}

/// Translates JSON to one CBOR data item. Never fails: every JSON value has a CBOR form.
pub fn json_to_cbor(value: &serde_json::Value) -> Vec<u8> {
    cbor::from_json(value)
}

/// Translates JSON to one CBOR data item whose object keys are keywords where they can be
/// (`{"uri": …}` reads as `{:uri …}` in EDN; a key like `file:///a.py` stays a string), for
/// JSON documents handed to EDN peers. Never fails.
pub fn json_to_cbor_keyword_keys(value: &serde_json::Value) -> Vec<u8> {
    cbor::from_json_with(value, true)
}

/// Translates one CBOR data item to EDN text, printed the way Clojure's `pr-str` prints.
pub fn cbor_to_edn(bytes: &[u8]) -> Result<String, TranslateError> {
    edn_write::to_edn(&cbor::decode(bytes)?)
}

/// Reads one EDN form and translates it to one CBOR data item.
pub fn edn_to_cbor(text: &str) -> Result<Vec<u8>, TranslateError> {
    Ok(cbor::encode(&edn_read::parse(text)?))
}

/// Any payload as JSON: `Empty` is `null`, `Bytes` a base64 string, `Value` translated,
/// `Json` parsed.
pub fn payload_to_json(payload: &PayloadBuf) -> Result<serde_json::Value, TranslateError> {
    match payload.as_payload() {
        Payload::Empty => Ok(serde_json::Value::Null),
        Payload::Bytes(b) => Ok(serde_json::Value::String(item::base64_encode(b))),
        Payload::Value(b) => cbor_to_json(b),
        Payload::Json(text) => parse_json(text),
    }
}

/// Any payload as EDN: `Empty` is `nil`, `Bytes` a `#sentelite/bytes` literal, `Value`
/// translated, `Json` parsed and translated as [`json_to_cbor`] does (keys stay strings).
pub fn payload_to_edn(payload: &PayloadBuf) -> Result<String, TranslateError> {
    match payload.as_payload() {
        Payload::Empty => Ok("nil".to_owned()),
        Payload::Bytes(b) => edn_write::to_edn(&item::Item::Bytes(b.to_vec())),
        Payload::Value(b) => cbor_to_edn(b),
        Payload::Json(text) => cbor_to_edn(&json_to_cbor(&parse_json(text)?)),
    }
}

fn parse_json(text: &str) -> Result<serde_json::Value, TranslateError> {
    serde_json::from_str(text).map_err(|e| TranslateError::Json(e.to_string()))
}
