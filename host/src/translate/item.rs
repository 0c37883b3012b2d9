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
    Map(Vec<(Item, Item)>),
}

/// Smallest integer a CBOR item can hold.
pub(crate) const CBOR_INT_MIN: i128 = -(1i128 << 64);
/// Largest integer a CBOR item can hold.
pub(crate) const CBOR_INT_MAX: i128 = (1i128 << 64) - 1;

/// True when `name` (without the colon) can be printed as an EDN keyword and read back.
///
/// The rules are Clojure's reader's, kept to what matters for round trips: not empty, no
/// whitespace or reader delimiters, not auto-resolved (`::`), and a namespace separator `/`
/// that has text on both sides.
pub(crate) fn is_keyword_name(name: &str) -> bool {
    if name.is_empty() || name.starts_with(':') || name.contains("::") {
        return false;
    }
    if name.chars().any(|c| c.is_whitespace() || is_reader_char(c)) {
        return false;
    }
    name == "/" || !(name.starts_with('/') || name.ends_with('/'))
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
