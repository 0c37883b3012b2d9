//! Any byte stream into the COBS accumulator, fed in chunks whose size comes from the first
//! input byte: no panics, every byte accounted for, and every packet safe to decode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sentelite_core::cobs::{CobsAccumulator, Feed};
use sentelite_core::codec::decode;

/// Small enough that long packets overflow it.
const CAPACITY: usize = 256;

fuzz_target!(|data: &[u8]| {
    let Some((&split, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(split).max(1);
    let mut acc = CobsAccumulator::<CAPACITY>::new();
    let mut accounted = 0;
    for piece in stream.chunks(chunk) {
        let mut rest = piece;
        // Each call either uses everything or ends one packet, so this is bounded.
        for _ in 0..=piece.len() {
            match acc.feed(rest) {
                Feed::Consumed => {
                    accounted += rest.len();
                    rest = &[];
                    break;
                }
                Feed::Frame { frame, consumed } => {
                    assert!((1..=rest.len()).contains(&consumed));
                    assert!(frame.len() <= CAPACITY);
                    let _ = decode(frame);
                    accounted += consumed;
                    rest = &rest[consumed..];
                }
                Feed::Error { consumed, .. } => {
                    assert!((1..=rest.len()).contains(&consumed));
                    accounted += consumed;
                    rest = &rest[consumed..];
                }
            }
        }
        assert!(rest.is_empty(), "feed stopped making progress");
        assert!(acc.pending() <= CAPACITY);
    }
    assert_eq!(
        accounted,
        stream.len(),
        "consumed counts must add up to the input"
    );
});
