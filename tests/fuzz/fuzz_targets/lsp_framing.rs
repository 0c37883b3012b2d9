//! Any bytes, in any split, into the LSP `Content-Length` decoder: it must never panic,
//! never report a message that the buffer does not hold or that breaks the limits, decide
//! the same whether the bytes came at once or in two pieces, and re-encode every message
//! it found to the same body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sentelite_host::lsp::framing::{Decoded, Limits, decode, encode};

fuzz_target!(|data: &[u8]| {
    let Some((&split, data)) = data.split_first() else {
        return;
    };
    // Small limits from the input exercise both size checks.
    let limits = Limits {
        max_header_bytes: 64 + usize::from(split % 64),
        max_body_bytes: usize::from(split) * 8,
    };
    let mut rest = data;
    loop {
        match decode(rest, limits) {
            Ok(Decoded::NeedMore) | Err(_) => break,
            Ok(Decoded::Message {
                header_len,
                body_len,
            }) => {
                assert!(header_len <= limits.max_header_bytes);
                assert!(body_len <= limits.max_body_bytes);
                assert!(header_len + body_len <= rest.len());
                // A prefix of a whole message is never a message of its own.
                let cut = usize::from(split) % (header_len + body_len);
                assert_eq!(decode(&rest[..cut], limits), Ok(Decoded::NeedMore));
                let body = &rest[header_len..header_len + body_len];
                let framed = encode(body);
                assert_eq!(
                    decode(&framed, Limits { max_header_bytes: 64, max_body_bytes: body_len }),
                    Ok(Decoded::Message { header_len: framed.len() - body_len, body_len })
                );
                rest = &rest[header_len + body_len..];
            }
        }
    }
});
