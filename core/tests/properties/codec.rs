//! Round trips through the codec and through COBS framing, for every frame variant.

use proptest::prelude::*;
use sentelite_core::DecodeError;
use sentelite_core::cobs::{CobsAccumulator, Feed, encode_cobs};
use sentelite_core::codec::{self, EncodeError, encoded_len};
use sentelite_core::frame::Frame;

use crate::strategies::{OwnedFrame, chunk_bounds, encode_vec, frame};

/// Large enough for the biggest generated frame.
const ACC: usize = 4096;

/// Feeds `wire` to an accumulator in the given chunk sizes and returns every packet it
/// produced (owned), checking that the consumed counts add up to the input.
fn accumulate(acc: &mut CobsAccumulator<ACC>, wire: &[u8], sizes: &[usize]) -> Vec<Vec<u8>> {
    let mut packets = Vec::new();
    for (start, end) in chunk_bounds(wire.len(), sizes) {
        let mut chunk = &wire[start..end];
        let bound = chunk.len() + 2;
        let mut guard = 0;
        loop {
            guard += 1;
            assert!(guard <= bound, "feed made no progress");
            match acc.feed(chunk) {
                Feed::Consumed => break,
                Feed::Frame { frame, consumed } => {
                    assert!(consumed >= 1 && consumed <= chunk.len());
                    packets.push(frame.to_vec());
                    chunk = &chunk[consumed..];
                }
                Feed::Error { error, consumed } => {
                    panic!("valid COBS stream rejected: {error:?} after {consumed} bytes")
                }
            }
        }
    }
    packets
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn encode_then_decode_gives_the_same_frame(owned in frame()) {
        let frame = owned.frame();
        let wire = encode_vec(&frame);
        prop_assert_eq!(codec::decode(&wire), Ok(frame));
        prop_assert_eq!(codec::decode_limited(&wire, wire.len()), Ok(frame));
        prop_assert_eq!(
            codec::decode_limited(&wire, wire.len() - 1),
            Err(DecodeError::TooLarge { len: wire.len(), max: wire.len() - 1 })
        );
    }

    /// The client's decoder (variant indices written by hand) against the derived one, for
    /// every kind: the same frame, or `None` for exactly the kinds only a server receives.
    #[test]
    fn the_client_decoder_agrees_with_the_full_one(owned in frame()) {
        let frame = owned.frame();
        let wire = encode_vec(&frame);
        let server_only = matches!(
            frame,
            Frame::Hello(_) | Frame::Subscribe(_) | Frame::Unsubscribe(_) | Frame::Publish(_)
        );
        let expected = if server_only { None } else { Some(frame) };
        prop_assert_eq!(codec::decode_for_client(&wire, wire.len()), Ok(expected));
        prop_assert_eq!(
            codec::decode_for_client(&wire, wire.len() - 1),
            Err(DecodeError::TooLarge { len: wire.len(), max: wire.len() - 1 })
        );
        if !server_only {
            let mut longer = wire.clone();
            longer.push(0);
            prop_assert_eq!(
                codec::decode_for_client(&longer, usize::MAX),
                Err(DecodeError::TrailingBytes)
            );
            prop_assert!(codec::decode_for_client(&wire[..wire.len() - 1], usize::MAX).is_err());
        }
    }

    #[test]
    fn encoded_len_is_exact_and_small_buffers_are_typed_errors(owned in frame()) {
        let frame = owned.frame();
        let len = encoded_len(&frame);
        let mut roomy = vec![0u8; len + 16];
        prop_assert_eq!(codec::encode(&frame, &mut roomy), Ok(len));
        let mut short = vec![0u8; len - 1];
        prop_assert_eq!(
            codec::encode(&frame, &mut short),
            Err(EncodeError::BufferTooSmall { required: len })
        );
        prop_assert_eq!(
            codec::encode_limited(&frame, &mut roomy, len - 1),
            Err(EncodeError::TooLarge { len, max: len - 1 })
        );
        prop_assert_eq!(codec::encode_limited(&frame, &mut roomy, len), Ok(len));
    }

    #[test]
    fn trailing_bytes_and_truncation_are_rejected(
        owned in frame(),
        suffix in prop::collection::vec(any::<u8>(), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let wire = encode_vec(&owned.frame());
        let mut longer = wire.clone();
        longer.extend_from_slice(&suffix);
        prop_assert_eq!(codec::decode(&longer), Err(DecodeError::TrailingBytes));
        // Postcard is self-delimiting: a strict prefix follows the same path and runs dry.
        let keep = 1 + cut.index(wire.len() - 1);
        prop_assert_eq!(codec::decode(&wire[..keep]), Err(DecodeError::Malformed));
    }

    #[test]
    fn cobs_round_trips_through_the_accumulator_in_random_chunks(
        owned in frame(),
        sizes in prop::collection::vec(1usize..64, 1..8),
    ) {
        let frame = owned.frame();
        let mut wire = vec![0u8; 2 * ACC];
        let n = encode_cobs(&frame, &mut wire).expect("fits");
        let wire = &wire[..n];
        prop_assert_eq!(wire.iter().filter(|&&b| b == 0).count(), 1, "one terminator only");
        prop_assert_eq!(wire.last(), Some(&0));
        let mut acc = CobsAccumulator::<ACC>::new();
        let packets = accumulate(&mut acc, wire, &sizes);
        prop_assert_eq!(packets.len(), 1);
        prop_assert_eq!(codec::decode(&packets[0]), Ok(frame));
        prop_assert_eq!(acc.pending(), 0);
    }

    #[test]
    fn a_stream_of_cobs_frames_comes_out_in_order(
        owned in prop::collection::vec(frame(), 1..6),
        zeros in prop::collection::vec(0usize..3, 6),
        sizes in prop::collection::vec(1usize..300, 1..8),
    ) {
        // Frames back to back, with optional extra zeros between them (resynchronisation).
        let mut stream = Vec::new();
        for (i, o) in owned.iter().enumerate() {
            stream.extend(std::iter::repeat_n(0u8, zeros[i]));
            let mut buf = vec![0u8; 2 * ACC];
            let n = encode_cobs(&o.frame(), &mut buf).expect("fits");
            stream.extend_from_slice(&buf[..n]);
        }
        let mut acc = CobsAccumulator::<ACC>::new();
        let packets = accumulate(&mut acc, &stream, &sizes);
        prop_assert_eq!(packets.len(), owned.len());
        for (packet, o) in packets.iter().zip(&owned) {
            prop_assert_eq!(codec::decode(packet), Ok(o.frame()));
        }
    }

    #[test]
    fn cobs_required_size_is_enough(owned in frame()) {
        let frame = owned.frame();
        let mut tiny = [0u8; 2];
        let required = match encode_cobs(&frame, &mut tiny) {
            Err(EncodeError::BufferTooSmall { required }) => required,
            other => return Err(TestCaseError::fail(format!("expected BufferTooSmall, got {other:?}"))),
        };
        let mut exact = vec![0u8; required];
        let n = encode_cobs(&frame, &mut exact);
        prop_assert!(n.is_ok(), "a buffer of the reported size must fit: {:?}", n);
    }
}

/// One of each variant with fixed fields, so a regression in any single variant shows up by
/// name even when the random cases happen to miss it.
#[test]
fn every_variant_round_trips() {
    use crate::strategies::OwnedPayload as P;
    let all = [
        OwnedFrame::Hello {
            client_id: "dev-1".into(),
            boot_id: 7,
            token: Some("t".into()),
            capabilities: 31,
            max_frame: 4096,
            firmware: None,
        },
        OwnedFrame::Welcome {
            uid: "u".into(),
            connection_id: u64::MAX,
            heartbeat_ms: 1,
            heartbeat_timeout_ms: 2,
            max_frame: 3,
            max_pending: 4,
            max_subscriptions: 5,
        },
        OwnedFrame::Ping(0),
        OwnedFrame::Pong(u32::MAX),
        OwnedFrame::Close {
            code: 4,
            reason: "bye".into(),
        },
        OwnedFrame::Event {
            event: "telemetry/log".into(),
            payload: P::Value(vec![0xa0]),
        },
        OwnedFrame::Request {
            id: 1,
            event: "nrepl/eval".into(),
            timeout_ms: 0,
            payload: P::Json("{}".into()),
        },
        OwnedFrame::Reply {
            id: 1,
            seq: 2,
            payload: P::Bytes(vec![0; 300]),
        },
        OwnedFrame::End {
            id: 1,
            status: 5,
            payload: P::Empty,
        },
        OwnedFrame::Cancel(9),
        OwnedFrame::Subscribe("c".into()),
        OwnedFrame::Unsubscribe("c".into()),
        OwnedFrame::Publish {
            channel: "c".into(),
            exclude_sender: true,
            payload: P::Empty,
        },
        OwnedFrame::ChannelMsg {
            channel: "c".into(),
            from: "".into(),
            payload: P::Bytes(vec![1]),
        },
        OwnedFrame::SubscribeAck {
            channel: "c".into(),
            subscribed: false,
            error: 3,
        },
        OwnedFrame::PublishDropped {
            channel: "c".into(),
            dropped: u32::MAX,
        },
    ];
    let mut tags = Vec::new();
    for owned in &all {
        let frame = owned.frame();
        let wire = encode_vec(&frame);
        tags.push(wire[1]);
        assert_eq!(codec::decode(&wire), Ok(frame), "{}", frame.kind());
    }
    assert_eq!(
        tags,
        (0u8..16).collect::<Vec<_>>(),
        "variant order is the wire tag"
    );
}
