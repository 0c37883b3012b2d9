//! Frame codec figures: bytes on the wire and time per encode/decode of a typical log event,
//! against a JSON baseline of the same record measured in the same run.
//!
//! Run with `cargo bench -p sentelite-core --bench codec`. The machine is shared, so the
//! printed ratios matter more than the absolute times.

use std::hint::black_box;
use std::time::Instant as StdInstant;

use sentelite_core::frame::{Event, Frame, Payload};
use sentelite_core::value::{encoder, finish, keyword};
use sentelite_core::{codec, decode};
use serde::{Deserialize, Serialize};

const ROUNDS: u32 = 200_000;

/// The JSON baseline: the sente-lite event `[ev-id data]` with the record as an object.
#[derive(Serialize, Deserialize)]
struct JsonRecord<'a> {
    ns: &'a str,
    level: &'a str,
    id: &'a str,
    data: JsonData,
    timestamp: u64,
}

#[derive(Serialize, Deserialize)]
struct JsonData {
    n: u32,
    ok: bool,
}

fn record_value(buf: &mut [u8]) -> usize {
    let mut e = encoder(buf);
    e.map(5).unwrap();
    keyword(&mut e, "ns").unwrap().str("my.app.sensor").unwrap();
    keyword(&mut e, "level").unwrap();
    keyword(&mut e, "info").unwrap();
    keyword(&mut e, "id").unwrap();
    keyword(&mut e, "my.app.sensor/sampled").unwrap();
    keyword(&mut e, "data").unwrap().map(2).unwrap();
    keyword(&mut e, "n").unwrap().u32(1234).unwrap();
    keyword(&mut e, "ok").unwrap().bool(true).unwrap();
    keyword(&mut e, "timestamp")
        .unwrap()
        .u64(1_766_108_726_643)
        .unwrap();
    finish(e)
}

fn time_per_op(mut op: impl FnMut()) -> f64 {
    let start = StdInstant::now();
    for _ in 0..ROUNDS {
        op();
    }
    start.elapsed().as_nanos() as f64 / f64::from(ROUNDS)
}

fn main() {
    let mut value = [0u8; 256];
    let value_len = record_value(&mut value);
    let frame = Frame::Event(Event {
        event: "telemetry/log-msg",
        payload: Payload::Value(&value[..value_len]),
    });
    let mut wire = [0u8; 512];
    let native_len = codec::encode(&frame, &mut wire).unwrap();

    let record = (
        "telemetry/log-msg",
        JsonRecord {
            ns: "my.app.sensor",
            level: "info",
            id: "my.app.sensor/sampled",
            data: JsonData { n: 1234, ok: true },
            timestamp: 1_766_108_726_643,
        },
    );
    let json = serde_json::to_vec(&record).unwrap();
    let edn = "[:telemetry/log-msg {:ns \"my.app.sensor\", :level :info, :id :my.app.sensor/sampled, :data {:n 1234, :ok true}, :timestamp 1766108726643}]";

    let native_encode = time_per_op(|| {
        let n = codec::encode(black_box(&frame), &mut wire).unwrap();
        black_box(n);
    });
    let native_decode = time_per_op(|| {
        let f = decode(black_box(&wire[..native_len])).unwrap();
        black_box(f);
    });
    // The decoder a client session uses (the kinds a client receives only).
    let client_decode = time_per_op(|| {
        let f = codec::decode_for_client(black_box(&wire[..native_len]), usize::MAX).unwrap();
        black_box(f);
    });
    let mut json_buf = Vec::with_capacity(256);
    let json_encode = time_per_op(|| {
        json_buf.clear();
        serde_json::to_writer(&mut json_buf, black_box(&record)).unwrap();
        black_box(json_buf.len());
    });
    let json_decode = time_per_op(|| {
        let r: (&str, JsonRecord<'_>) = serde_json::from_slice(black_box(&json)).unwrap();
        black_box(r);
    });

    println!("log event, {ROUNDS} rounds each");
    println!(
        "  bytes: native frame {native_len}, JSON {} ({:.2}x), sente-lite EDN {} ({:.2}x)",
        json.len(),
        json.len() as f64 / native_len as f64,
        edn.len(),
        edn.len() as f64 / native_len as f64
    );
    println!(
        "  encode: native {native_encode:.0} ns, JSON {json_encode:.0} ns ({:.2}x)",
        json_encode / native_encode
    );
    println!(
        "  decode: native {native_decode:.0} ns, JSON {json_decode:.0} ns ({:.2}x)",
        json_decode / native_decode
    );
    println!("  decode as a client: native {client_decode:.0} ns");
}
