//! Any bytes into the frame decoder: it must never panic, and whatever it accepts must
//! survive an encode → decode round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sentelite_core::codec::{decode, decode_limited, encode, encoded_len};

fuzz_target!(|data: &[u8]| {
    // A limit taken from the input exercises the size check on the same bytes.
    let limit = data.first().map_or(0, |&b| usize::from(b) * 4);
    let _ = decode_limited(data, limit);

    let Ok(frame) = decode(data) else {
        return;
    };
    let len = encoded_len(&frame);
    // Postcard varints have one shortest spelling; the encoder always writes it, so the
    // re-encoding is never longer than what was decoded.
    assert!(
        len <= data.len(),
        "re-encoding grew from {} to {len}",
        data.len()
    );
    let mut buf = vec![0u8; len];
    let written = encode(&frame, &mut buf).expect("a buffer of encoded_len fits");
    assert_eq!(written, len, "encoded_len disagrees with encode");
    assert_eq!(decode(&buf), Ok(frame), "round trip changed the frame");
});
