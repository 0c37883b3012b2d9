//! The device's check of the server's WebSocket upgrade answer (`sentelite-embassy`,
//! `upgrade.rs`), the first bytes a device takes from the network.
//!
//! The first byte picks the mode. Raw: any bytes as the answer to the RFC 6455 example key;
//! never a panic, and an accepted head is a prefix of the input ending in CRLF CRLF, every
//! shorter cut of which is still "need more", and whatever follows it does not change the
//! verdict. Shaped: a valid `101` whose header names change case, whose order and extra
//! headers come from the input and whose `Connection` lists other tokens too; it is
//! accepted in full and at no shorter cut, and refused once one byte of its accept value
//! changes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sentelite_embassy::fuzzing::{Answer, Key, answer};

/// RFC 6455 §1.3's example key and the accept value it asks for.
const KEY: &Key = b"dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// Checks what holds for any answer; returns the verdict on the whole input.
fn check_any(bytes: &[u8]) -> Answer {
    let verdict = answer(KEY, bytes);
    if let Answer::Accepted(head) = verdict {
        assert!(head <= bytes.len());
        assert!(bytes[..head].ends_with(b"\r\n\r\n"));
        assert_eq!(
            answer(KEY, &bytes[..head]),
            verdict,
            "frames after the head matter"
        );
        for cut in [0, head / 2, head - 1] {
            assert_eq!(answer(KEY, &bytes[..cut]), Answer::Partial, "cut at {cut}");
        }
    }
    verdict
}

/// `name` with the case of each letter flipped where `flips` has a bit set.
fn recase(name: &str, flips: u32) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| {
            if flips >> (i % 32) & 1 == 1 {
                if c.is_ascii_lowercase() {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            } else {
                c
            }
        })
        .collect()
}

/// A header of the input's choosing that is none of those the check looks at.
fn extra(bytes: &[u8]) -> String {
    let name: String = bytes
        .iter()
        .take(8)
        .map(|&b| char::from(b'a' + b % 26))
        .collect();
    let value: String = bytes
        .iter()
        .skip(8)
        .take(16)
        .map(|&b| char::from(b' ' + b % 95))
        .collect();
    format!("x-{name}: {}\r\n", value.trim())
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        check_any(rest);
        return;
    }
    let (shape, rest) = rest.split_at(rest.len().min(8));
    let mut shape = shape.to_vec();
    shape.resize(8, 0);
    let flips = u32::from_le_bytes([shape[0], shape[1], shape[2], shape[3]]);
    let connection = match shape[4] % 3 {
        0 => "Upgrade",
        1 => "keep-alive, Upgrade",
        _ => "upgrade ,close",
    };
    let mut headers = vec![
        format!("{}: {connection}\r\n", recase("Connection", flips)),
        format!("{}: websocket\r\n", recase("Upgrade", flips.rotate_left(7))),
        format!(
            "{}: {ACCEPT}\r\n",
            recase("Sec-WebSocket-Accept", flips.rotate_left(13))
        ),
    ];
    for chunk in rest.chunks(24).take(4) {
        headers.push(extra(chunk));
    }
    let turn = usize::from(shape[5]) % headers.len();
    headers.rotate_left(turn);
    let wire = format!(
        "HTTP/1.1 101 Switching Protocols\r\n{}\r\n",
        headers.concat()
    );
    let bytes = wire.as_bytes();
    assert_eq!(
        check_any(bytes),
        Answer::Accepted(bytes.len()),
        "a valid answer was refused: {wire:?}"
    );
    // One byte of the accept value changed: refused.
    let at = wire.find(ACCEPT).expect("the accept value is there") + usize::from(shape[6]) % 27;
    let mut wrong = bytes.to_vec();
    wrong[at] = if wrong[at] == b'A' { b'B' } else { b'A' };
    assert_eq!(
        answer(KEY, &wrong),
        Answer::Refused,
        "{:?}",
        String::from_utf8_lossy(&wrong)
    );
});
