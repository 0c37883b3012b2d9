//! The log queue at its exact limits: a record that fills the buffer to the last byte, the
//! largest record body the queue's two-byte length allows, batches whose records add up to
//! exactly the byte budget, and fields whose lengths cross a varint boundary. The property test
//! (`tests/properties/log_queue.rs`) checks the queue against a model on random sizes; these
//! pin the boundaries random sizes rarely hit.

use sentelite_core::log::{
    Level, LogQueue, NewRecord, Overflow, Pushed, QueueConfig, Record, decode_batch,
};

/// A warn record with `message`.
fn record(message: &str) -> NewRecord<'_> {
    NewRecord {
        time_ms: 1_000,
        level: Level::Warn,
        namespace: "pump.valve",
        id: None,
        message,
        data: &[],
    }
}

fn queue(bytes: usize, config: QueueConfig) -> LogQueue<Vec<u8>> {
    LogQueue::new(vec![0; bytes], config, 0)
}

/// The bytes `r` takes in a queue when it is the first record (sequence number 0).
fn stored_size(r: &NewRecord<'_>) -> usize {
    let mut q = queue(1 << 18, QueueConfig::default());
    assert!(matches!(q.push(r), Ok(Pushed::Queued { .. })));
    q.bytes_used()
}

/// The entry header before each stored body: a two-byte length and the level (see the
/// queue's storage form in `core/src/log/entry.rs`).
const HEADER: usize = 3;

#[test]
fn a_record_that_fills_the_buffer_to_the_last_byte_is_queued() {
    for overflow in [Overflow::DropOldest, Overflow::DropNewest] {
        let config = QueueConfig {
            overflow,
            ..QueueConfig::default()
        };
        let r = record("tank level low");
        let size = stored_size(&r);
        let mut exact = queue(size, config);
        assert_eq!(exact.push(&r), Ok(Pushed::Queued { seq: 0, evicted: 0 }));
        assert_eq!(exact.bytes_used(), size);
        assert_eq!(exact.pending_gap(), None);

        let mut short = queue(size - 1, config);
        assert_eq!(short.push(&r), Ok(Pushed::Dropped { seq: 0 }));
        assert_eq!(short.bytes_used(), 0);
        assert_eq!(short.pending_gap().map(|g| g.count), Some(1));
    }
}

#[test]
fn the_largest_body_is_u16_max_and_one_byte_more_is_dropped() {
    // The body grows one byte per message byte while the message length's varint stays three
    // bytes long (16 384 ..= 2 097 151).
    let probe = "m".repeat(60_000);
    let probe_body = stored_size(&record(&probe)) - HEADER;
    let largest = 60_000 + (usize::from(u16::MAX) - probe_body);
    let message = "m".repeat(largest);
    assert_eq!(
        stored_size(&record(&message)) - HEADER,
        usize::from(u16::MAX)
    );

    let mut q = queue(1 << 18, QueueConfig::default());
    assert_eq!(
        q.push(&record(&message)),
        Ok(Pushed::Queued { seq: 0, evicted: 0 })
    );
    let too_long = "m".repeat(largest + 1);
    assert_eq!(q.push(&record(&too_long)), Ok(Pushed::Dropped { seq: 1 }));
    assert_eq!(q.len(), 1);
    // What was queued reads back whole.
    let batch = q.begin_batch(10, 1 << 18).expect("a batch");
    let records: Vec<Record<'_>> = batch.records().collect();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].message.len(), largest);
    assert_eq!(batch.gap.map(|g| (g.first_seq, g.count)), Some((1, 1)));
}

#[test]
fn records_adding_up_to_exactly_the_byte_budget_make_one_batch() {
    let r = record("pressure high");
    let mut q = queue(4096, QueueConfig::default());
    for _ in 0..3 {
        q.push(&r).unwrap();
    }
    // Sequence numbers 0, 1, 2 all take one varint byte: three equal entries.
    let each = q.bytes_used() / 3;
    assert_eq!(each * 3, q.bytes_used());

    let batch = q.begin_batch(10, 3 * each).expect("a batch");
    assert_eq!(batch.len(), 3);
    let id = batch.id;
    assert!(q.requeue(id));
    let batch = q.begin_batch(10, 3 * each - 1).expect("a batch");
    assert_eq!(batch.len(), 2);
    let id = batch.id;
    assert!(q.ack(id));

    // A record exactly as large as the budget goes out alone; it is not dropped as too large.
    let batch = q.begin_batch(10, each).expect("a batch");
    assert_eq!(batch.len(), 1);
    assert_eq!(q.stats().dropped, 0);
    assert_eq!(q.stats().batches, 3);
}

/// Queues `r` alone, then reads it back from the queue and through the wire form.
fn round_trip(r: &NewRecord<'_>) -> bool {
    let mut q = queue(1 << 17, QueueConfig::default());
    if q.push(r) != Ok(Pushed::Queued { seq: 0, evicted: 0 }) {
        return false;
    }
    let batch = q.begin_batch(10, 1 << 17).expect("a batch");
    let stored: Vec<Record<'_>> = batch.records().collect();
    let mut wire = vec![0; 1 << 17];
    let len = batch.encode(&mut wire).expect("encodes");
    let decoded = decode_batch(&wire[..len]).expect("decodes");
    let sent: Result<Vec<Record<'_>>, _> = decoded.records().collect();
    stored == [r.with_seq(0)] && sent.is_ok_and(|sent| sent == [r.with_seq(0)])
}

#[test]
fn fields_whose_lengths_cross_a_varint_boundary_read_back_whole() {
    // Every text field and the data at once, around the one-to-two-byte length boundary.
    for n in [126, 127, 128, 129] {
        let text = "a".repeat(n);
        let data = vec![0x5a; n];
        let r = NewRecord {
            time_ms: 1 << 35,
            level: Level::Error,
            namespace: &text,
            id: Some(&text),
            message: &text,
            data: &data,
        };
        assert!(round_trip(&r), "field length {n}");
    }
    // One field around the two-to-three-byte boundary.
    for n in [16_383, 16_384] {
        let text = "b".repeat(n);
        let id = "c".repeat(n - 1);
        for r in [
            NewRecord {
                message: &text,
                ..record("")
            },
            NewRecord {
                id: Some(&id),
                ..record("")
            },
            NewRecord {
                namespace: &text,
                ..record("")
            },
        ] {
            assert!(round_trip(&r), "field length {n}");
        }
    }
}

#[test]
fn a_gap_only_batch_is_empty_and_a_batch_with_records_is_not() {
    let r = record("flow stopped");
    let size = stored_size(&r);
    let mut q = queue(size, QueueConfig::default());
    let too_big = "x".repeat(size);
    assert_eq!(q.push(&record(&too_big)), Ok(Pushed::Dropped { seq: 0 }));
    let batch = q.begin_batch(10, 4096).expect("the gap alone is a batch");
    assert!(batch.is_empty());
    assert_eq!(batch.len(), 0);
    assert_eq!(batch.gap.map(|g| g.count), Some(1));
    let id = batch.id;
    assert!(q.ack(id));

    q.push(&r).unwrap();
    let batch = q.begin_batch(10, 4096).expect("a batch");
    assert!(!batch.is_empty());
    assert_eq!(batch.len(), 1);
}

#[test]
fn size_and_emptiness_follow_the_records_held() {
    let config = QueueConfig {
        max_records: 7,
        overflow: Overflow::DropNewest,
        evict_lower_levels_first: true,
    };
    let mut q = queue(4096, config);
    assert_eq!(q.config(), config);
    assert!(q.is_empty());
    assert_eq!(q.bytes_used(), 0);

    let r = record("door open");
    let size = stored_size(&r);
    q.push(&r).unwrap();
    assert!(!q.is_empty());
    assert_eq!(q.bytes_used(), size);
    q.push(&r).unwrap();
    assert_eq!(q.bytes_used(), 2 * size);

    let id = q.begin_batch(10, 4096).expect("a batch").id;
    assert!(!q.is_empty(), "records in flight are still held");
    assert!(q.ack(id));
    assert!(q.is_empty());
    assert_eq!(q.bytes_used(), 0);
    assert_eq!((q.stats().queued, q.stats().acked), (2, 2));

    let lowered = QueueConfig {
        max_records: 3,
        ..config
    };
    q.set_config(lowered);
    assert_eq!(q.config(), lowered);
}

#[test]
fn more_to_send_beside_the_batch_in_flight() {
    let r = record("valve stuck");
    let mut q = queue(4096, QueueConfig::default());
    q.push(&r).unwrap();
    q.push(&r).unwrap();
    let id = q.begin_batch(1, 4096).expect("a batch").id;
    assert!(!q.has_batch(), "one batch in flight at a time");
    assert!(q.has_batch_after_flight(), "one record is still unsent");
    assert!(q.ack(id));

    let id = q.begin_batch(1, 4096).expect("a batch").id;
    assert!(
        !q.has_batch_after_flight(),
        "nothing beside the last record"
    );
    // A drop while the batch is in flight leaves a gap to send after it.
    let too_big = "x".repeat(8192);
    assert_eq!(q.push(&record(&too_big)), Ok(Pushed::Dropped { seq: 2 }));
    assert_eq!(q.unsent(), 0);
    assert!(q.has_batch_after_flight(), "the gap waits");
    assert!(q.ack(id));
    assert!(q.has_batch());
}

#[test]
fn a_record_sent_once_goes_again_even_past_a_smaller_budget() {
    // Never evicted once sent (the server may have stored it), so a resend under a smaller
    // byte budget still carries it rather than stalling or dropping it.
    let r = record("compressor tripped");
    let size = stored_size(&r);
    let mut q = queue(4096, QueueConfig::default());
    q.push(&r).unwrap();
    let id = q.begin_batch(10, size).expect("a batch").id;
    q.on_disconnect();
    assert_eq!(q.in_flight(), None);
    let batch = q.begin_batch(10, size - 1).expect("the resend");
    assert_ne!(batch.id, id);
    assert_eq!(batch.len(), 1);
    assert_eq!(q.stats().dropped, 0);
}

#[test]
fn lower_levels_first_evicts_the_oldest_record_of_the_lowest_level() {
    let config = QueueConfig {
        max_records: 3,
        overflow: Overflow::DropOldest,
        evict_lower_levels_first: true,
    };
    let mut q = queue(4096, config);
    for level in [Level::Debug, Level::Warn, Level::Debug, Level::Error] {
        let r = NewRecord {
            level,
            ..record("sample")
        };
        q.push(&r).unwrap();
    }
    // Full at three: the fourth push evicted seq 0, the older of the two debug records.
    let batch = q.begin_batch(10, 4096).expect("a batch");
    let seqs: Vec<u32> = batch.records().map(|r| r.seq).collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert_eq!(batch.gap.map(|g| (g.first_seq, g.last_seq)), Some((0, 0)));
}
