//! Wire bytes per log record: the same records (those of the log ingest bench, one second
//! apart) in our batched `telemetry/log-batch` request, as one native Event each, as the
//! seed's EDN event `[:telemetry/log-msg {…}]` per record, as a JSON event per record, and as
//! MQTT PUBLISH packets with a JSON payload.
//!
//! Counted per record, client to server: the application's bytes (the native frame, the text
//! frame, the MQTT packet with its fixed header and topic); then the WebSocket frame header of
//! a client message (2 bytes, 2 or 8 more for long messages, 4 bytes of mask; MQTT runs on
//! TCP directly); then 52 bytes of IPv4 + TCP headers (with timestamps) per TCP segment of at
//! most 1448 bytes (Ethernet MTU), each message in its own segments as a device sending
//! records as they come would. The acks column is what comes back per record: the batch's
//! End frame, MQTT QoS 1's PUBACK, each with its framing and its own segment; the other forms
//! have no ack. Bare TCP acknowledgements are not counted for any form.

use clap::Args;
use sentelite_core::frame::{End, Event, Frame, Request};
use sentelite_core::log::{BATCH_EVENT, Record, encode_batch};
use sentelite_core::value::{encoder, finish, keyword};
use sentelite_core::{Payload, Status};

use crate::logs::record;
use crate::mqtt_raw;
use crate::native::to_vec;

/// Options of `sentelite-bench wire`.
#[derive(Debug, Args)]
pub struct WireArgs {
    /// Records to encode in each form
    #[arg(long, default_value_t = 1000)]
    records: usize,
    /// Records per batch, as in the log ingest bench
    #[arg(long, default_value_t = 50)]
    batch: usize,
}

/// IPv4 (20) + TCP (20) + timestamps option (12).
const TCP_IP_HEADERS: usize = 52;
/// Largest TCP payload per segment on Ethernet with timestamps.
const MSS: usize = 1448;
/// A record's first timestamp.
const EPOCH_MS: u64 = 1_766_108_726_643;

/// Bytes one message of `len` application bytes costs on the wire, per layer.
#[derive(Debug, Default, Clone, Copy)]
struct Cost {
    app: usize,
    framing: usize,
    tcp: usize,
}

impl Cost {
    /// A WebSocket message from a client (masked).
    fn ws_client(len: usize) -> Cost {
        Cost::framed(len, ws_header(len) + 4)
    }

    /// A WebSocket message from the server (unmasked).
    fn ws_server(len: usize) -> Cost {
        Cost::framed(len, ws_header(len))
    }

    /// A message straight on TCP.
    fn tcp(len: usize) -> Cost {
        Cost::framed(len, 0)
    }

    fn framed(app: usize, framing: usize) -> Cost {
        let segments = (app + framing).div_ceil(MSS).max(1);
        Cost {
            app,
            framing,
            tcp: segments * TCP_IP_HEADERS,
        }
    }

    fn total(&self) -> usize {
        self.app + self.framing + self.tcp
    }

    fn add(&mut self, other: Cost) {
        self.app += other.app;
        self.framing += other.framing;
        self.tcp += other.tcp;
    }
}

/// WebSocket base header plus extended length.
fn ws_header(len: usize) -> usize {
    match len {
        0..=125 => 2,
        126..=65535 => 4,
        _ => 10,
    }
}

/// One form's totals over all records.
struct Form {
    name: &'static str,
    sent: Cost,
    acks: usize,
}

pub async fn run(args: WireArgs) -> Result<(), String> {
    let n = args.records.max(1);
    let batch = args.batch.max(1);
    let data = record(0).data;
    let records: Vec<Record<'_>> = (0..n)
        .map(|i| {
            let r = record(EPOCH_MS + i as u64 * 1000);
            Record {
                seq: i as u32,
                time_ms: r.time_ms,
                level: r.level,
                namespace: r.namespace,
                id: r.id,
                message: r.message,
                data,
            }
        })
        .collect();

    let mut forms = Vec::new();

    let mut batched = Form {
        name: "sentelite `telemetry/log-batch` request",
        sent: Cost::default(),
        acks: 0,
    };
    let mut out = vec![0u8; 1 << 20];
    for (i, chunk) in records.chunks(batch).enumerate() {
        let len =
            encode_batch(None, chunk.iter().copied(), &mut out).map_err(|e| format!("{e:?}"))?;
        let id = i as u32 + 1;
        let frame = to_vec(&Frame::Request(Request {
            id,
            event: BATCH_EVENT,
            timeout_ms: 30_000,
            payload: Payload::Bytes(&out[..len]),
        }))?;
        batched.sent.add(Cost::ws_client(frame.len()));
        let end = to_vec(&Frame::End(End {
            id,
            status: Status::OK,
            payload: Payload::Empty,
        }))?;
        batched.acks += Cost::ws_server(end.len()).total();
    }
    forms.push(batched);

    let (mut native, mut edn, mut json, mut mqtt0, mut mqtt1) = (
        Form {
            name: "sentelite native Event `telemetry/log-msg` (CBOR map) per record",
            sent: Cost::default(),
            acks: 0,
        },
        Form {
            name: "seed's EDN event `[:telemetry/log-msg {…}]` per record",
            sent: Cost::default(),
            acks: 0,
        },
        Form {
            name: "JSON event `[\"telemetry/log-msg\", {…}]` per record",
            sent: Cost::default(),
            acks: 0,
        },
        Form {
            name: "MQTT PUBLISH QoS 0, JSON payload, per record",
            sent: Cost::default(),
            acks: 0,
        },
        Form {
            name: "MQTT PUBLISH QoS 1, JSON payload, per record",
            sent: Cost::default(),
            acks: 0,
        },
    );
    for (i, r) in records.iter().enumerate() {
        let map = record_map(r)?;
        let frame = to_vec(&Frame::Event(Event {
            event: "telemetry/log-msg",
            payload: Payload::Value(&map),
        }))?;
        native.sent.add(Cost::ws_client(frame.len()));
        let text = format!(
            "[:telemetry/log-msg {}]",
            sentelite_host::translate::cbor_to_edn(&map).map_err(|e| e.to_string())?
        );
        edn.sent.add(Cost::ws_client(text.len()));
        let value = sentelite_host::translate::cbor_to_json(&map).map_err(|e| e.to_string())?;
        let text =
            serde_json::to_string(&("telemetry/log-msg", &value)).map_err(|e| e.to_string())?;
        json.sent.add(Cost::ws_client(text.len()));
        let payload = serde_json::to_vec(&value).map_err(|e| e.to_string())?;
        let topic = "logs/bench-0";
        let packet = mqtt_raw::publish(topic, rumqttc::QoS::AtMostOnce, 0, &payload)?;
        mqtt0.sent.add(Cost::tcp(packet.len()));
        let pkid = (i % 65535) as u16 + 1;
        let packet = mqtt_raw::publish(topic, rumqttc::QoS::AtLeastOnce, pkid, &payload)?;
        mqtt1.sent.add(Cost::tcp(packet.len()));
        // PUBACK: fixed header (2) + packet id (2).
        mqtt1.acks += Cost::tcp(4).total();
        if i == 0 {
            eprintln!(
                "one record as EDN: [:telemetry/log-msg {}]",
                sentelite_host::translate::cbor_to_edn(&map).unwrap_or_default()
            );
            eprintln!("as JSON: {text}");
        }
    }
    forms.extend([native, edn, json, mqtt0, mqtt1]);

    println!(
        "Wire bytes per log record, {n} records (batches of {batch}), client to server; \
         TCP/IPv4 headers at 52 bytes per segment of at most {MSS} bytes, one message per \
         segment; acks with their framing and headers"
    );
    println!();
    println!(
        "| form | application bytes | + WebSocket framing (none for MQTT) | + TCP/IPv4 headers | acks back | total | vs batched |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let per = |x: usize| x as f64 / n as f64;
    let batched_total = per(forms[0].sent.total() + forms[0].acks);
    for f in &forms {
        let total = per(f.sent.total() + f.acks);
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1}× |",
            f.name,
            per(f.sent.app),
            per(f.sent.app + f.sent.framing),
            per(f.sent.total()),
            per(f.acks),
            total,
            total / batched_total,
        );
    }
    Ok(())
}

/// The seed's single-record map, `{:ns :level :id :msg :timestamp :data}`, as CBOR.
fn record_map(r: &Record<'_>) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; 512];
    let mut e = encoder(&mut buf);
    // The data goes last, as the record's CBOR bytes appended after the key.
    let fail = |e: &dyn std::fmt::Display| e.to_string();
    e.map(6).map_err(|x| fail(&x))?;
    keyword(&mut e, "ns")
        .and_then(|e| e.str(r.namespace))
        .and_then(|e| keyword(e, "level"))
        .and_then(|e| keyword(e, "warn"))
        .and_then(|e| keyword(e, "id"))
        .and_then(|e| keyword(e, r.id.unwrap_or("")))
        .and_then(|e| keyword(e, "msg"))
        .and_then(|e| e.str(r.message))
        .and_then(|e| keyword(e, "timestamp"))
        .and_then(|e| e.u64(r.time_ms))
        .and_then(|e| keyword(e, "data"))
        .map_err(|x| fail(&x))?;
    let n = finish(e);
    buf.truncate(n);
    buf.extend_from_slice(r.data);
    Ok(buf)
}
