//! The compact log batch: any records and gap survive encode → decode unchanged, the encoder
//! reports exactly the size it needs, and arbitrary bytes never panic the decoder.

use proptest::prelude::*;
use sentelite_core::EncodeError;
use sentelite_core::log::{Gap, Level, Record, decode_batch, encode_batch};

#[derive(Debug, Clone)]
struct Owned {
    seq_step: u32,
    time_ms: u64,
    level: u8,
    namespace: String,
    id: Option<String>,
    message: String,
    data: Vec<u8>,
}

fn owned() -> impl Strategy<Value = Owned> {
    (
        prop_oneof![4 => Just(1u32), 1 => any::<u32>()],
        any::<u64>(),
        0u8..7,
        "[a-c]{0,3}",
        prop::option::of("[a-z./-]{0,12}"),
        ".{0,24}",
        prop::collection::vec(any::<u8>(), 0..12),
    )
        .prop_map(
            |(seq_step, time_ms, level, namespace, id, message, data)| Owned {
                seq_step,
                time_ms,
                level,
                namespace,
                id,
                message,
                data,
            },
        )
}

fn gap() -> impl Strategy<Value = Gap> {
    (
        any::<u32>(),
        any::<[u32; 7]>(),
        any::<u32>(),
        any::<u32>(),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(|(count, by_level, first_seq, span, t0, t1)| Gap {
            count,
            by_level,
            first_seq,
            last_seq: first_seq.wrapping_add(span),
            first_time_ms: t0.min(t1),
            last_time_ms: t0.max(t1),
        })
}

proptest! {
    #[test]
    fn batches_round_trip(
        first_seq in any::<u32>(),
        items in prop::collection::vec(owned(), 0..48),
        gap in prop::option::of(gap()),
    ) {
        let mut seq = first_seq;
        let records: Vec<Record<'_>> = items
            .iter()
            .enumerate()
            .map(|(i, o)| {
                if i > 0 {
                    seq = seq.wrapping_add(o.seq_step);
                }
                Record {
                    seq,
                    time_ms: o.time_ms,
                    level: Level::from_u8(o.level).unwrap(),
                    namespace: &o.namespace,
                    id: o.id.as_deref(),
                    message: &o.message,
                    data: &o.data,
                }
            })
            .collect();
        let needed = match encode_batch(gap.as_ref(), records.iter().copied(), &mut []) {
            Err(EncodeError::BufferTooSmall { required }) => required,
            other => panic!("an empty buffer cannot hold a batch: {other:?}"),
        };
        let mut buf = vec![0u8; needed];
        prop_assert_eq!(encode_batch(gap.as_ref(), records.iter().copied(), &mut buf), Ok(needed));
        let batch = decode_batch(&buf).unwrap();
        prop_assert_eq!(batch.validate(), Ok(()));
        prop_assert_eq!(batch.gap, gap);
        let back: Vec<Record<'_>> = batch.records().map(Result::unwrap).collect();
        prop_assert_eq!(back, records);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(batch) = decode_batch(&bytes) {
            let _ = batch.validate();
            prop_assert!(batch.records().count() <= batch.count);
        }
    }
}
