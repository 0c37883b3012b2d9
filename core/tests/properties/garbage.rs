//! Hostile input: arbitrary bytes never panic the decoder or the COBS accumulator, and the
//! accumulator always accounts for every byte it is given.

use proptest::prelude::*;
use sentelite_core::cobs::{CobsAccumulator, Feed};
use sentelite_core::codec::{self, encoded_len};

use crate::strategies::{chunk_bounds, encode_vec, frame};

/// Raw bytes: noise, noise behind a valid version byte, or a valid frame with damage.
fn hostile() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..96),
        prop::collection::vec(any::<u8>(), 0..96).prop_map(|mut v| {
            v.insert(0, 1);
            v
        }),
        (
            frame(),
            prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
            any::<prop::sample::Index>(),
        )
            .prop_map(|(owned, flips, cut)| {
                let mut wire = encode_vec(&owned.frame());
                for (at, byte) in flips {
                    let i = at.index(wire.len());
                    wire[i] = byte;
                }
                let keep = cut.index(wire.len() + 1);
                if keep > 0 {
                    wire.truncate(keep);
                }
                wire
            }),
    ]
}

/// Feeds `input` in chunks and returns (bytes accounted for, packets, errors).
fn feed_all<const N: usize>(
    acc: &mut CobsAccumulator<N>,
    input: &[u8],
    sizes: &[usize],
) -> (usize, usize, usize) {
    let (mut accounted, mut packets, mut errors) = (0, 0, 0);
    for (start, end) in chunk_bounds(input.len(), sizes) {
        let mut chunk = &input[start..end];
        let bound = chunk.len() + 2;
        let mut guard = 0;
        loop {
            guard += 1;
            assert!(guard <= bound, "feed made no progress");
            match acc.feed(chunk) {
                Feed::Consumed => {
                    accounted += chunk.len();
                    break;
                }
                Feed::Frame { frame, consumed } => {
                    assert!((1..=chunk.len()).contains(&consumed));
                    assert!(frame.len() <= N);
                    // Whatever came out must be safe to decode too.
                    let _ = codec::decode(frame);
                    packets += 1;
                    accounted += consumed;
                    chunk = &chunk[consumed..];
                }
                Feed::Error { consumed, .. } => {
                    assert!((1..=chunk.len()).contains(&consumed));
                    errors += 1;
                    accounted += consumed;
                    chunk = &chunk[consumed..];
                }
            }
            assert!(acc.pending() <= N);
        }
    }
    (accounted, packets, errors)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn decode_never_panics_and_what_decodes_re_encodes(bytes in hostile(), max in 0usize..128) {
        if let Ok(frame) = codec::decode(&bytes) {
            // Postcard varints have more than one spelling, so compare frames, not bytes.
            let again = encode_vec(&frame);
            prop_assert_eq!(codec::decode(&again), Ok(frame));
            prop_assert!(encoded_len(&frame) <= bytes.len());
        }
        // A client's decoder agrees with the full one wherever it decodes a frame at all.
        match (codec::decode_for_client(&bytes, max), codec::decode_limited(&bytes, max)) {
            (Ok(Some(client)), full) => prop_assert_eq!(Ok(client), full),
            (Ok(None), _) => {}
            (Err(_), full) => prop_assert!(full.is_err()),
        }
        match codec::decode_limited(&bytes, max) {
            Ok(_) => prop_assert!(bytes.len() <= max),
            Err(e) => {
                // Every failure maps to a close code and a reason without panicking.
                let _ = (e.close_code(), e.reason(), e.to_string());
            }
        }
    }

    #[test]
    fn accumulator_accounts_for_every_byte(
        bytes in prop::collection::vec(
            prop_oneof![3 => any::<u8>(), 1 => Just(0u8)], 0..400),
        sizes in prop::collection::vec(1usize..80, 1..6),
    ) {
        let mut small = CobsAccumulator::<16>::new();
        let (accounted, packets, errors) = feed_all(&mut small, &bytes, &sizes);
        prop_assert_eq!(accounted, bytes.len());
        // Every packet or error ends at a zero; runs of zeros produce nothing.
        prop_assert!(packets + errors <= bytes.iter().filter(|&&b| b == 0).count());

        let mut big = CobsAccumulator::<512>::new();
        let (accounted, _, _) = feed_all(&mut big, &bytes, &sizes);
        prop_assert_eq!(accounted, bytes.len());
    }

    #[test]
    fn accumulator_resynchronises_after_garbage(
        noise in prop::collection::vec(any::<u8>(), 0..64),
        owned in frame(),
    ) {
        // Garbage, then a zero, then a valid packet: the valid packet must come out intact.
        let mut stream = noise;
        stream.push(0);
        let mut buf = vec![0u8; 4096];
        let n = sentelite_core::cobs::encode_cobs(&owned.frame(), &mut buf).expect("fits");
        stream.extend_from_slice(&buf[..n]);
        let mut acc = CobsAccumulator::<2048>::new();
        let mut rest = &stream[..];
        let mut last = None;
        for _ in 0..stream.len() + 1 {
            match acc.feed(rest) {
                Feed::Consumed => break,
                Feed::Frame { frame, consumed } => {
                    last = Some(frame.to_vec());
                    rest = &rest[consumed..];
                }
                Feed::Error { consumed, .. } => rest = &rest[consumed..],
            }
        }
        let last = last.expect("the valid packet is produced");
        prop_assert_eq!(codec::decode(&last), Ok(owned.frame()));
    }
}
