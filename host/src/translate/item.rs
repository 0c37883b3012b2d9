//! The shape all three notations share. Readers build an [`Item`] tree (bounded by
//! [`super::MAX_DEPTH`]), writers print it; keeping one tree means each mapping rule is
//! written once.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// One value, in the vocabulary common to CBOR, EDN and JSON.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Item {
    Null,
    Bool(bool),
    /// Always within CBOR's integer range, -2^64 ..= 2^64-1.
    Int(i128),
    Float(f64),
    Text(String),
    /// Keyword text without the leading colon.
    Keyword(String),
    Bytes(Vec<u8>),
    /// RFC 3339 date/time text (CBOR tag 0, EDN `#inst`).
    Inst(String),
    /// CBOR tag 37, EDN `#uuid`.
    Uuid([u8; 16]),
    Array(Vec<Item>),
    /// CBOR tag 258 around an array, EDN `#{…}`. Elements are distinct (see [`first_duplicate`]);
    /// their order is kept as written.
    Set(Vec<Item>),
    /// Keys are distinct (see [`first_duplicate`]); the order is kept as written.
    Map(Vec<(Item, Item)>),
    /// A tagged literal the value model does not interpret, `#my/tag value`: CBOR tag 27
    /// around `[tag-name, value]`. Built only through [`tagged`], so the name is a valid tag.
    Tagged(String, Box<Item>),
}

/// Smallest integer a CBOR item can hold.
pub(crate) const CBOR_INT_MIN: i128 = -(1i128 << 64);
/// Largest integer a CBOR item can hold.
pub(crate) const CBOR_INT_MAX: i128 = (1i128 << 64) - 1;

/// True when `name` (without the colon) can be printed as an EDN keyword and read back.
///
/// The rules are Clojure's reader's, kept to what matters for round trips: not empty, no
/// whitespace or reader delimiters, not auto-resolved (`::`), not ending in `:`, and a
/// namespace separator `/` that has text on both sides.
pub(crate) fn is_keyword_name(name: &str) -> bool {
    if name.is_empty() || name.starts_with(':') || name.ends_with(':') || name.contains("::") {
        return false;
    }
    if name.chars().any(|c| c.is_whitespace() || is_reader_char(c)) {
        return false;
    }
    name == "/" || !(name.starts_with('/') || name.ends_with('/'))
}

/// True when `name` can follow `#` as a tagged literal's tag: a symbol that starts with a
/// letter (the EDN spec's rule; `#_`, `##`, `#:` and the rest are other reader syntax).
pub(crate) fn is_tag_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_alphabetic()) && !name.contains('#') && is_keyword_name(name)
}

/// Why [`tagged`] refused a tagged literal.
pub(crate) enum TagFault {
    /// The name cannot be a tag.
    Name,
    /// A tag the model knows (`inst`, `uuid`, `sentelite/bytes`) over a value it cannot hold.
    Value(String),
}

/// The item for `#name value`, the one place EDN's `#tag` and CBOR's tag 27 are interpreted,
/// so both notations agree on every tagged value:
/// - `#inst "…"` is a date/time (CBOR tag 0); the text is kept exactly and must not be empty.
/// - `#uuid "…"` is a UUID (CBOR tag 37), printed back in lowercase as Clojure's and
///   ClojureScript's readers and `pr-str` do; text that is no UUID is refused.
/// - `#sentelite/bytes "base64"` is a byte string.
/// - Any other tag is kept as [`Item::Tagged`].
pub(crate) fn tagged(name: String, value: Item) -> Result<Item, TagFault> {
    if !is_tag_name(&name) {
        return Err(TagFault::Name);
    }
    let text = match (&value, name.as_str()) {
        (Item::Text(text), "inst" | "uuid" | "sentelite/bytes") => text,
        (_, "inst" | "uuid" | "sentelite/bytes") => {
            return Err(TagFault::Value("expected a string".to_owned()));
        }
        _ => return Ok(Item::Tagged(name, Box::new(value))),
    };
    match name.as_str() {
        "inst" if text.is_empty() => Err(TagFault::Value("empty timestamp".to_owned())),
        "inst" => Ok(Item::Inst(text.clone())),
        "uuid" => match parse_uuid(text) {
            Some(bytes) => Ok(Item::Uuid(bytes)),
            None => Err(TagFault::Value(format!("{text:?} is not a UUID"))),
        },
        _ => base64_decode(text)
            .map(Item::Bytes)
            .map_err(TagFault::Value),
    }
}

/// Index of the first element equal to an earlier one, if any. Equal means the same
/// [`super::cbor::equality_key`]: the same CBOR, numbers compared by value (`1` and `1.0`
/// are equal, as in ClojureScript). The check is one hash per element, not a comparison of
/// every pair, so a hostile set of many elements stays linear.
pub(crate) fn first_duplicate<'a>(items: impl IntoIterator<Item = &'a Item>) -> Option<usize> {
    let mut seen = std::collections::HashSet::new();
    items
        .into_iter()
        .position(|item| !seen.insert(super::cbor::equality_key(item)))
}

/// Characters that end a token or start reader syntax in EDN.
pub(crate) fn is_reader_char(c: char) -> bool {
    matches!(
        c,
        ',' | '"' | ';' | '(' | ')' | '[' | ']' | '{' | '}' | '\\' | '^' | '@' | '~' | '`'
    )
}

/// Standard base64 with padding, the form byte strings take in EDN and JSON.
pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Inverse of [`base64_encode`]; the error text says what was wrong.
pub(crate) fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    STANDARD.decode(text).map_err(|e| e.to_string())
}

/// The canonical `8-4-4-4-12` lowercase hex form.
pub(crate) fn uuid_text(bytes: &[u8; 16]) -> String {
    let mut out = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Reads the `8-4-4-4-12` hex form (either case).
pub(crate) fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let bytes = text.as_bytes();
    if bytes.len() != 36 {
        return None;
    }
    let mut out = [0u8; 16];
    let mut digits = bytes
        .iter()
        .enumerate()
        .filter(|(i, _)| !matches!(i, 8 | 13 | 18 | 23));
    if [8, 13, 18, 23].iter().any(|&i| bytes[i] != b'-') {
        return None;
    }
    for slot in out.iter_mut() {
        let (_, &hi) = digits.next()?;
        let (_, &lo) = digits.next()?;
        *slot = (hex_value(hi)? << 4) | hex_value(lo)?;
    }
    Some(out)
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_names() {
        for ok in ["level", "my.ns/started", "a-b?", "/", "ns/a/b", "1", "x<y>"] {
            assert!(is_keyword_name(ok), "{ok}");
        }
        for bad in [
            "", ":a", "a::b", "a b", "a,b", "/a", "a/", "a\"b", "a(b", "a\\b",
        ] {
            assert!(!is_keyword_name(bad), "{bad}");
        }
    }

    #[test]
    fn uuid_round_trip() {
        let text = "f81d4fae-7dec-11d0-a765-00a0c91e6bf6";
        let bytes = parse_uuid(text).unwrap();
        assert_eq!(bytes[0], 0xf8);
        assert_eq!(bytes[15], 0xf6);
        assert_eq!(uuid_text(&bytes), text);
        assert_eq!(parse_uuid(&text.to_uppercase()), Some(bytes));
        assert_eq!(parse_uuid("f81d4fae-7dec-11d0-a765-00a0c91e6bf"), None);
        assert_eq!(parse_uuid("f81d4fae07dec-11d0-a765-00a0c91e6bf6"), None);
        assert_eq!(parse_uuid("g81d4fae-7dec-11d0-a765-00a0c91e6bf6"), None);
    }
}
