//! The WebSocket opening handshake's two messages (RFC 6455 §4.1): the client's upgrade
//! request and the check of the server's `101` answer. The frames after it are
//! [`crate::ws`]'s.
//!
//! Both are written here rather than taken from embedded-websocket's `client_connect` and
//! `client_accept`: those build the request in a 1 KB `heapless::String` and parse the
//! answer with `httparse` (64 header slots, two 256-byte tables): 2.2 KB more flash on the
//! Pico W than these few lines, and still 1.7 KB more when `httparse` is called directly
//! with the checks below, for a head that is one status line and a handful of headers. The
//! check is also the RFC's, which that function's is not: the status must be 101,
//! `Upgrade: websocket` and `Connection: upgrade` must be there, and the accept value must
//! be present and right (not only right when present); a sub-protocol or extension
//! the request did not ask for is refused. Header names compare without case; the answer
//! may arrive in any number of reads. SHA-1 stays with a crate: `hmac-sha1-compact`, whose
//! round loop is 2.2 KB smaller on the Pico W than RustCrypto's unrolled `sha1` that
//! embedded-websocket's handshake linked. The base64 of the key and the accept value is a
//! dozen lines here: the `base64` crate's general encoder, with its length arithmetic and
//! its panic for an overflow, took 0.5 KB more on the Pico W for two fixed sizes.

use crate::url::WsUrl;

/// The `Sec-WebSocket-Key` value: 16 random bytes in base64.
pub type Key = [u8; 24];

/// The GUID RFC 6455 appends to the key before hashing it.
const GUID: &[u8; 36] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// How the server's answer stands so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The answer's head is not complete yet: read more.
    Partial,
    /// A valid `101` upgrade; the head takes this many bytes, frames may follow.
    Accepted(usize),
    /// Not an upgrade this client can use.
    Refused,
}

/// The key for the nonce `bytes`.
pub fn key(bytes: [u8; 16]) -> Key {
    let mut key = [0; 24];
    base64(&bytes, &mut key);
    key
}

/// The standard base64 alphabet (RFC 4648 §4).
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// `bytes` in padded standard base64 into `out`, which the caller sizes to four characters
/// for every three bytes or part of three: what `out` has room for past the encoded bytes
/// is padding. The handshake encodes only its 16-byte nonce and 20-byte hash, too little
/// to take a crate for; a 6-bit index into the 64-entry alphabet needs no bounds check.
fn base64(bytes: &[u8], out: &mut [u8]) {
    let mut chars = out.iter_mut();
    // The bits read and not yet encoded are the low `held` bits of `bits`.
    let (mut bits, mut held) = (0u32, 0u32);
    for &b in bytes {
        bits = bits << 8 | u32::from(b);
        held += 8;
        while held >= 6 {
            held -= 6;
            if let Some(c) = chars.next() {
                *c = ALPHABET[(bits >> held) as usize & 63];
            }
        }
    }
    if held > 0
        && let Some(c) = chars.next()
    {
        *c = ALPHABET[(bits << (6 - held)) as usize & 63];
    }
    for c in chars {
        *c = b'=';
    }
}

/// Appends `bytes` to `out` at `*at`; false when `out` is full.
fn put(out: &mut [u8], at: &mut usize, bytes: &[u8]) -> bool {
    match out.get_mut(*at..*at + bytes.len()) {
        Some(room) => {
            room.copy_from_slice(bytes);
            *at += bytes.len();
            true
        }
        None => false,
    }
}

/// Writes the upgrade request for `url` with `key` into `out`; its length, or `None` when
/// `out` is too small.
pub(crate) fn request(url: &WsUrl<'_>, key: &Key, out: &mut [u8]) -> Option<usize> {
    let mut at = 0;
    let parts: [&[u8]; 7] = [
        b"GET ",
        url.path.as_bytes(),
        b" HTTP/1.1\r\nHost: ",
        url.host.as_bytes(),
        b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ",
        key,
        b"\r\nSec-WebSocket-Version: 13\r\n\r\n",
    ];
    parts
        .iter()
        .all(|part| put(out, &mut at, part))
        .then_some(at)
}

/// True when `bytes` is `lower`, a lower-case word, in any case. Only `bytes` is folded:
/// 14 B less on the Pico W than `eq_ignore_ascii_case`, which folds both sides.
fn is(bytes: &[u8], lower: &[u8]) -> bool {
    bytes.len() == lower.len()
        && bytes
            .iter()
            .zip(lower)
            .all(|(b, l)| b.to_ascii_lowercase() == *l)
}

/// True when the comma-separated `list` holds `token` (ASCII case ignored).
fn has_token(list: &[u8], token: &[u8]) -> bool {
    list.split(|&b| b == b',')
        .any(|item| is(item.trim_ascii(), token))
}

/// Bytes of the answer's head (status line, headers and the empty line ending them), once
/// `input` holds all of it.
fn head_len(input: &[u8]) -> Option<usize> {
    input
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| at + 4)
}

/// Checks the server's answer to the request sent with `key`, from the first byte read.
pub fn answer(key: &Key, input: &[u8]) -> Answer {
    let Some(head) = head_len(input) else {
        return Answer::Partial;
    };
    // The head without its final CRLF CRLF: a status line and header lines, CRLF apart.
    // Split at the LF, each line but the last keeps its CR, which the checks below allow
    // for: after the status code, and in the values, trimmed as optional white space.
    // (`head` is within `input`; an empty head would fail the status check.)
    let head_lines = input.get(..head - 4).unwrap_or_default();
    let mut lines = head_lines.split(|&b| b == b'\n');
    let status_ok = lines.next().is_some_and(|status| {
        status
            .strip_prefix(b"HTTP/1.1 101")
            .is_some_and(|rest| rest.first().is_none_or(|&b| b == b' ' || b == b'\r'))
    });
    if !status_ok {
        return Answer::Refused;
    }
    let expected = accept(key);
    let (mut upgrade, mut connection, mut accepted) = (false, false, false);
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Answer::Refused;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        // A name is a token: no space before the colon, no folded continuation line.
        if name.is_empty() || name.iter().any(|b| !b.is_ascii_graphic()) {
            return Answer::Refused;
        }
        if is(name, b"upgrade") {
            upgrade = is(value, b"websocket");
        } else if is(name, b"connection") {
            connection |= has_token(value, b"upgrade");
        } else if is(name, b"sec-websocket-accept") {
            accepted = value == expected;
        } else if is(name, b"sec-websocket-extensions") || is(name, b"sec-websocket-protocol") {
            // The request asked for neither: the server may not pick one.
            return Answer::Refused;
        }
    }
    if upgrade && connection && accepted {
        Answer::Accepted(head)
    } else {
        Answer::Refused
    }
}

/// The `Sec-WebSocket-Accept` value a server must answer `key` with.
fn accept(key: &Key) -> [u8; 28] {
    let mut text = [0; 60];
    text[..24].copy_from_slice(key);
    text[24..].copy_from_slice(GUID);
    let mut value = [0; 28];
    base64(&hmac_sha1_compact::Hash::hash(&text), &mut value);
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key and accept value of RFC 6455 §1.3's example.
    const RFC_KEY: &Key = b"dGhlIHNhbXBsZSBub25jZQ==";
    const RFC_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    /// A `101` as the sentelite server (axum on hyper) writes it: lower-case names.
    fn server_answer(accept: &str) -> std::string::String {
        std::format!(
            "HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\
             sec-websocket-accept: {accept}\r\ndate: Wed, 02 Dec 2026 05:30:00 GMT\r\n\r\n"
        )
    }

    extern crate std;

    #[test]
    fn the_key_is_the_nonce_in_base64() {
        assert_eq!(&key(*b"the sample nonce"), RFC_KEY);
    }

    /// `bytes` through the handshake's encoder, sized as padded base64 needs.
    fn encoded(bytes: &[u8]) -> std::string::String {
        let mut out = std::vec![0u8; bytes.len().div_ceil(3) * 4];
        base64(bytes, &mut out);
        std::string::String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_encoder_gives_the_rfc_4648_test_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (bytes, text) in vectors {
            assert_eq!(encoded(bytes.as_bytes()), text, "{bytes:?}");
        }
    }

    #[test]
    fn the_rfc_6455_example_key_has_the_rfcs_accept_value() {
        assert_eq!(&accept(RFC_KEY), RFC_ACCEPT.as_bytes());
    }

    /// `bytes` through the `base64` crate, an independent encoder.
    fn reference(bytes: &[u8]) -> std::string::String {
        let mut out = [0u8; 28];
        let n = ::base64::encode_config_slice(bytes, ::base64::STANDARD, &mut out);
        std::string::String::from_utf8(out[..n].to_vec()).unwrap()
    }

    #[test]
    fn the_encoder_agrees_with_the_base64_crate_on_every_byte_value() {
        // Every byte value in every position of a group, in the handshake's two sizes and
        // at every length up to them (so with each padding).
        for start in 0..=255u8 {
            let bytes: [u8; 20] = core::array::from_fn(|i| start.wrapping_add((i * 85) as u8));
            for len in 0..=bytes.len() {
                assert_eq!(
                    encoded(&bytes[..len]),
                    reference(&bytes[..len]),
                    "{:?}",
                    &bytes[..len]
                );
            }
        }
        let nonce: [u8; 16] = core::array::from_fn(|i| (i * 37 + 11) as u8);
        assert_eq!(&key(nonce)[..], reference(&nonce).as_bytes());
    }

    #[test]
    fn the_request_carries_path_host_and_key() {
        let url = WsUrl::parse("ws://192.168.69.100:7700/ws").unwrap();
        let mut out = [0u8; 256];
        let n = request(&url, RFC_KEY, &mut out).unwrap();
        assert_eq!(
            core::str::from_utf8(&out[..n]).unwrap(),
            "GET /ws HTTP/1.1\r\nHost: 192.168.69.100\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        );
        assert_eq!(request(&url, RFC_KEY, &mut out[..n - 1]), None);
    }

    #[test]
    fn the_servers_answer_is_accepted_in_any_split_and_frames_after_it_stay() {
        let answer_text = server_answer(RFC_ACCEPT);
        let mut bytes = answer_text.into_bytes();
        let head = bytes.len();
        bytes.extend_from_slice(&[0x82, 1, 7]);
        for cut in 0..head {
            assert_eq!(
                answer(RFC_KEY, &bytes[..cut]),
                Answer::Partial,
                "cut at {cut}"
            );
        }
        assert_eq!(answer(RFC_KEY, &bytes), Answer::Accepted(head));
    }

    #[test]
    fn the_rfc_example_answer_is_accepted() {
        let text = std::format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\n\
             Connection: keep-alive, Upgrade\r\nSec-WebSocket-Accept: {RFC_ACCEPT}\r\n\r\n"
        );
        assert_eq!(
            answer(RFC_KEY, text.as_bytes()),
            Answer::Accepted(text.len())
        );
    }

    #[test]
    fn a_status_line_without_a_reason_phrase_is_accepted() {
        let accepted = server_answer(RFC_ACCEPT);
        for status in ["HTTP/1.1 101 \r\n", "HTTP/1.1 101\r\n"] {
            let text = accepted.replace("HTTP/1.1 101 Switching Protocols\r\n", status);
            assert_eq!(
                answer(RFC_KEY, text.as_bytes()),
                Answer::Accepted(text.len()),
                "{status:?}"
            );
        }
    }

    #[test]
    fn a_wrong_or_missing_accept_value_is_refused() {
        let wrong = server_answer("s3pPLMBiTxaQ9kYGzzhZRbK+xOp=");
        assert_eq!(answer(RFC_KEY, wrong.as_bytes()), Answer::Refused);
        let other_key = key(*b"another nonce 16");
        let right_for_rfc = server_answer(RFC_ACCEPT);
        assert_eq!(
            answer(&other_key, right_for_rfc.as_bytes()),
            Answer::Refused
        );
        let missing = "HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\n\
                       upgrade: websocket\r\n\r\n";
        assert_eq!(answer(RFC_KEY, missing.as_bytes()), Answer::Refused);
    }

    #[test]
    fn an_answer_that_is_no_upgrade_is_refused() {
        let accepted = server_answer(RFC_ACCEPT);
        let cases = [
            accepted.replace("101 Switching Protocols", "200 OK"),
            accepted.replace("upgrade: websocket\r\n", ""),
            accepted.replace("upgrade: websocket", "upgrade: h2c"),
            accepted.replace("connection: upgrade", "connection: close"),
            accepted.replace(
                "date:",
                "sec-websocket-extensions: permessage-deflate\r\ndate:",
            ),
            accepted.replace("date:", "sec-websocket-protocol: chat\r\ndate:"),
            accepted.replace("101 Switching", "1010 Switching"),
            accepted.replace("HTTP/1.1", "HTTP/1.0"),
            accepted.replace("upgrade: websocket", "upgrade : websocket"),
            accepted.replace("\r\ndate:", "\r\n date:"),
            accepted.replace("date:", "date"),
            std::string::String::from("SSH-2.0-OpenSSH_9.6\r\n\r\n"),
        ];
        for case in cases {
            assert_eq!(
                answer(RFC_KEY, case.as_bytes()),
                Answer::Refused,
                "{case:?}"
            );
        }
    }
}
