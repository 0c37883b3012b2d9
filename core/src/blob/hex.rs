//! SHA-256 digests as the 64 lowercase hex digits the wire and the URLs use.

use heapless::String;

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// The digest in lowercase hex.
pub fn encode(digest: &[u8; 32]) -> String<64> {
    let mut out = String::new();
    for byte in digest {
        // Cannot fail: 32 bytes make exactly 64 digits.
        let _ = out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        let _ = out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// Parses 64 hex digits (either case); `None` for any other text.
pub fn decode(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut digest = [0u8; 32];
    for (out, pair) in digest.iter_mut().zip(bytes.chunks_exact(2)) {
        *out = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(digest)
}

fn digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}
