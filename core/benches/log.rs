//! Logging figures: wire bytes per record in a compact batch against the single-record forms
//! (native Event with a CBOR map, sente-lite JSON), and the device-side cost of logging one
//! record (filter + queue) and of encoding it into a batch, beside a bare postcard encode of
//! the same record, all in the same run.
//!
//! Run with `cargo bench -p sentelite-core --bench log`. The machine is shared: compare the
//! ratios, not the absolute times.

use std::hint::black_box;
use std::time::Instant as StdInstant;

use sentelite_core::codec;
use sentelite_core::frame::{Event, Frame, Payload};
use sentelite_core::log::{
    Level, LogConfig, LogShipper, NewRecord, QueueConfig, Record, encode_batch,
};
use sentelite_core::value::{encoder, finish, keyword};
use sentelite_core::{Instant, log};

const ROUNDS: u32 = 200_000;
const BATCH: usize = 20;

/// `{:n 1234 :ok true}` as CBOR, the record's structured data.
fn data(buf: &mut [u8]) -> usize {
    let mut e = encoder(buf);
    e.map(2).unwrap();
    keyword(&mut e, "n").unwrap().u32(1234).unwrap();
    keyword(&mut e, "ok").unwrap().bool(true).unwrap();
    finish(e)
}

/// The same record as one native Event with a CBOR map (the form before batching).
fn single_event_len(data: &[u8]) -> usize {
    let mut value = [0u8; 256];
    let mut e = encoder(&mut value);
    e.map(6).unwrap();
    keyword(&mut e, "ns").unwrap().str("my.app.sensor").unwrap();
    keyword(&mut e, "level").unwrap();
    keyword(&mut e, "warn").unwrap();
    keyword(&mut e, "id").unwrap();
    keyword(&mut e, "my.app.sensor/sampled").unwrap();
    keyword(&mut e, "msg")
        .unwrap()
        .str("sample out of range")
        .unwrap();
    keyword(&mut e, "data").unwrap();
    let n = finish(e);
    value[n..n + data.len()].copy_from_slice(data);
    let mut wire = [0u8; 512];
    codec::encode(
        &Frame::Event(Event {
            event: "telemetry/log-msg",
            payload: Payload::Value(&value[..n + data.len()]),
        }),
        &mut wire,
    )
    .unwrap()
}

fn per_op(rounds: u32, mut op: impl FnMut()) -> f64 {
    let start = StdInstant::now();
    for _ in 0..rounds {
        op();
    }
    start.elapsed().as_nanos() as f64 / f64::from(rounds)
}

fn main() {
    let mut data_buf = [0u8; 64];
    let data_len = data(&mut data_buf);
    let data = &data_buf[..data_len];
    let record = |seq: u32| Record {
        seq,
        time_ms: 1_766_108_726_643 + u64::from(seq) * 37,
        level: Level::Warn,
        namespace: "my.app.sensor",
        id: Some("my.app.sensor/sampled"),
        message: "sample out of range",
        data,
    };
    let records: Vec<Record<'_>> = (0..BATCH as u32).map(record).collect();

    let mut out = [0u8; 4096];
    let batch_len = encode_batch(None, records.iter().copied(), &mut out).unwrap();
    let batch_frame = {
        let mut wire = [0u8; 4096];
        codec::encode(
            &Frame::Request(sentelite_core::frame::Request {
                id: 1,
                event: log::BATCH_EVENT,
                timeout_ms: 30_000,
                payload: Payload::Bytes(&out[..batch_len]),
            }),
            &mut wire,
        )
        .unwrap()
    };
    let single = single_event_len(data);
    let json = serde_json::to_vec(&(
        "telemetry/log-msg",
        serde_json::json!({
            "ns": "my.app.sensor", "level": "warn", "id": "my.app.sensor/sampled",
            "msg": "sample out of range", "data": {"n": 1234, "ok": true},
            "timestamp": 1_766_108_726_643u64
        }),
    ))
    .unwrap()
    .len();
    let per_record = batch_frame as f64 / BATCH as f64;
    // The codec bench's record has no message text: the same without it.
    let bare: Vec<Record<'_>> = records
        .iter()
        .map(|r| Record { message: "", ..*r })
        .collect();
    let bare_batch = encode_batch(None, bare.iter().copied(), &mut out).unwrap();
    let bare_per_record = (batch_frame - batch_len + bare_batch) as f64 / BATCH as f64;

    // Device cost: log one record (filter + queue), with the queue drained by batches.
    let mut storage = vec![0u8; 16 * 1024];
    let config = LogConfig {
        queue: QueueConfig {
            max_records: 10_000,
            ..QueueConfig::default()
        },
        batch_size: BATCH,
        ..LogConfig::default()
    };
    let mut shipper = LogShipper::new(storage.as_mut_slice(), config, 0);
    shipper.on_connected(Instant::ZERO);
    let new = NewRecord {
        time_ms: 1_766_108_726_643,
        level: Level::Warn,
        namespace: "my.app.sensor",
        id: Some("my.app.sensor/sampled"),
        message: "sample out of range",
        data,
    };
    let mut n = 0u32;
    let mut batch_out = [0u8; 2048];
    let log_and_ship = per_op(ROUNDS, || {
        black_box(shipper.log(Instant::ZERO, black_box(&new)));
        n += 1;
        if n.is_multiple_of(BATCH as u32) {
            let ready = shipper
                .poll_batch(Instant::ZERO, &mut batch_out)
                .expect("a full batch is due");
            shipper.on_ack(ready.id);
        }
    });
    let encode_batch_per_record = per_op(ROUNDS / BATCH as u32, || {
        black_box(encode_batch(None, black_box(&records).iter().copied(), &mut out).unwrap());
    }) / BATCH as f64;
    let mut scratch = [0u8; 256];
    let bare_postcard = per_op(ROUNDS, || {
        black_box(postcard::to_slice(black_box(&records[0]), &mut scratch).unwrap());
    });

    println!("| log record, one typical warn with data | bytes on the wire | vs batched |");
    println!("|---|---:|---:|");
    println!(
        "| in a batch of {BATCH} (`telemetry/log-batch` request frame / {BATCH}) | {per_record:.1} | 1.00× |"
    );
    println!(
        "| the same without message text, in a batch | {bare_per_record:.1} | {:.2}× |",
        bare_per_record / per_record
    );
    println!(
        "| one native Event, CBOR map | {single} | {:.2}× |",
        single as f64 / per_record
    );
    println!(
        "| one sente-lite JSON event | {json} | {:.2}× |",
        json as f64 / per_record
    );
    println!();
    println!("| device cost per record | ns | vs bare postcard |");
    println!("|---|---:|---:|");
    println!("| bare postcard encode of the record (baseline) | {bare_postcard:.0} | 1.00× |");
    println!(
        "| log (filter + queue), plus batch encode + ack every {BATCH} | {log_and_ship:.0} | {:.2}× |",
        log_and_ship / bare_postcard
    );
    println!(
        "| batch encode alone, per record | {encode_batch_per_record:.0} | {:.2}× |",
        encode_batch_per_record / bare_postcard
    );
}
