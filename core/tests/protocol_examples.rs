//! The worked examples of `docs/PROTOCOL.md`, byte for byte, read from the document itself.
//!
//! The tests parse section 7 of the protocol document at run time: every fenced block there
//! is a list of examples (a hex line followed by a label is one example; unlabelled hex lines
//! together form one). Each test looks its example up by section and label, encodes the frame
//! with the real encoder and compares, then decodes the document's hex and compares the
//! frame. A count check makes sure every example in the document is found and checked, so
//! the document cannot drift from the code in either direction.

use std::sync::OnceLock;

use sentelite_core::cobs::{CobsAccumulator, Feed, encode_cobs};
use sentelite_core::codec::{DecodeError, decode, encode, encoded_len};
use sentelite_core::frame::{
    Cancel, ChannelMsg, ChannelRef, Close, CloseCode, End, Event, Frame, Hello, Payload, Ping,
    Publish, PublishDropped, Reply, Request, Status, SubscribeAck, SubscribeError, Welcome,
    capability,
};
use sentelite_core::value::{encoder, finish, keyword};
use sentelite_core::{Instant, ServerConfig, ServerSession};

/// Worked examples in section 7 of the document; a new one must get a test here.
const EXAMPLES_IN_SECTION_7: usize = 22;

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn unhex(text: &str) -> Vec<u8> {
    text.split_whitespace()
        .map(|pair| u8::from_str_radix(pair, 16).expect("test hex is valid"))
        .collect()
}

/// One worked example of the document.
#[derive(Debug)]
struct Example {
    /// The heading it is under, such as "7.3 Ping and Pong".
    section: String,
    /// The text after the hex on its line (empty for multi-line examples).
    label: String,
    /// The bytes, as normalised hex ("01 02 01").
    hex: String,
}

/// The protocol document as text, read when the tests run.
fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/PROTOCOL.md");
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"))
    })
}

fn is_hex_byte(word: &str) -> bool {
    word.len() == 2 && word.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Splits a line into its leading hex bytes and the label after them.
fn split_hex_line(line: &str) -> (String, String) {
    let words: Vec<&str> = line.split_whitespace().collect();
    let n = words.iter().take_while(|w| is_hex_byte(w)).count();
    (words[..n].join(" "), words[n..].join(" "))
}

/// Every fenced block of section 7, parsed into examples.
fn examples() -> &'static [Example] {
    static EXAMPLES: OnceLock<Vec<Example>> = OnceLock::new();
    EXAMPLES.get_or_init(|| {
        let mut out = Vec::new();
        let mut section = None::<String>;
        let mut in_block = false;
        let mut joined = String::new();
        for line in document().lines() {
            if line.starts_with("## ") {
                in_block = false;
                section = None;
            }
            if let Some(heading) = line.strip_prefix("### 7.") {
                section = Some(format!("7.{heading}"));
                continue;
            }
            let Some(section) = &section else { continue };
            if line.trim() == "```" {
                if in_block && !joined.is_empty() {
                    out.push(Example {
                        section: section.clone(),
                        label: String::new(),
                        hex: std::mem::take(&mut joined),
                    });
                }
                in_block = !in_block;
                continue;
            }
            if !in_block {
                continue;
            }
            let (bytes, label) = split_hex_line(line);
            assert!(
                !bytes.is_empty(),
                "{section}: no hex in example line {line:?}"
            );
            if label.is_empty() {
                if !joined.is_empty() {
                    joined.push(' ');
                }
                joined.push_str(&bytes);
            } else {
                out.push(Example {
                    section: section.clone(),
                    label,
                    hex: bytes,
                });
            }
        }
        out
    })
}

/// The hex of the one example under heading number `section` ("7.3") whose label starts
/// with `label`.
fn example(section: &str, label: &str) -> &'static str {
    let found: Vec<&Example> = examples()
        .iter()
        .filter(|e| e.section.split_whitespace().next() == Some(section))
        .filter(|e| e.label.starts_with(label))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "examples under {section:?} labelled {label:?} in docs/PROTOCOL.md: {found:?}"
    );
    &found[0].hex
}

/// The text of the section headed `heading` (up to the next heading), lines joined.
fn section_text(heading: &str) -> String {
    let doc = document();
    let start = doc
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading:?} in docs/PROTOCOL.md"));
    let rest = &doc[start + heading.len()..];
    let end = rest.find("\n#").unwrap_or(rest.len());
    rest[..end].split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The hex inside the first pair of backticks after `marker` in `text`.
fn backticked_after(text: &str, marker: &str) -> String {
    let at = text
        .find(marker)
        .unwrap_or_else(|| panic!("{marker:?} not found in {text:?}"));
    let rest = &text[at + marker.len()..];
    let open = rest.find('`').expect("opening backtick") + 1;
    let close = open + rest[open..].find('`').expect("closing backtick");
    let (bytes, label) = split_hex_line(&rest[open..close]);
    assert!(
        label.is_empty() && !bytes.is_empty(),
        "not hex: {:?}",
        &rest[open..close]
    );
    bytes
}

#[test]
fn every_example_of_the_document_is_found() {
    let all = examples();
    assert_eq!(
        all.len(),
        EXAMPLES_IN_SECTION_7,
        "docs/PROTOCOL.md section 7 examples: {all:#?}"
    );
    // Every one is claimed by exactly one lookup of the tests below.
    let claimed = [
        ("7.1", ""),
        ("7.2", ""),
        ("7.3", "Ping"),
        ("7.3", "Pong"),
        ("7.4", ""),
        ("7.5", ""),
        ("7.6", ""),
        ("7.7", ""),
        ("7.8", "Cancel"),
        ("7.8", "Close"),
        ("7.9", ""),
        ("7.10", "Subscribe "),
        ("7.10", "Unsubscribe"),
        ("7.10", "Publish {"),
        ("7.10", "PublishDropped"),
        ("7.10", "ChannelMsg"),
        ("7.10", "SubscribeAck"),
        ("7.11", ""),
        ("7.12", "Close"),
        ("7.12", "Cancel"),
        ("7.12", "End"),
        ("7.13", ""),
    ];
    for (section, label) in claimed {
        example(section, label);
    }
    assert_eq!(claimed.len(), EXAMPLES_IN_SECTION_7);
}

/// Encodes `frame`, compares with `expected`, and decodes `expected` back to `frame`.
fn assert_wire(frame: Frame<'_>, expected: &str) {
    let mut buf = [0u8; 256];
    let n = encode(&frame, &mut buf).expect("example fits the buffer");
    assert_eq!(hex(&buf[..n]), expected, "encoding of {}", frame.kind());
    assert_eq!(encoded_len(&frame), n);
    let wire = unhex(expected);
    assert_eq!(decode(&wire), Ok(frame), "decoding of {}", frame.kind());
}

/// `{:level :info, :msg "up"}` written with the core's no_std value encoder.
fn log_value(buf: &mut [u8]) -> usize {
    let mut e = encoder(buf);
    e.map(2).unwrap();
    keyword(&mut e, "level").unwrap();
    keyword(&mut e, "info").unwrap();
    keyword(&mut e, "msg").unwrap();
    e.str("up").unwrap();
    finish(e)
}

#[test]
fn value_payload_example() {
    let mut buf = [0u8; 64];
    let n = log_value(&mut buf);
    // The document's Event example ends with this value, after its length byte 0x19 = 25.
    assert_eq!(n, 25);
    let event = example("7.4", "");
    assert!(
        event.ends_with(&format!(" 19 {}", hex(&buf[..n]))),
        "{event}"
    );
}

#[test]
fn hello() {
    assert_wire(
        Frame::Hello(Hello {
            client_id: "dev-1",
            boot_id: 300,
            token: None,
            capabilities: capability::LOGS | capability::BLOB_FETCH | capability::CHANNELS,
            max_frame: 4096,
            firmware: Some("fw-1.2"),
        }),
        example("7.1", ""),
    );
}

#[test]
fn welcome() {
    assert_wire(
        Frame::Welcome(Welcome {
            uid: "u-1",
            connection_id: 42,
            heartbeat_ms: 30_000,
            heartbeat_timeout_ms: 60_000,
            max_frame: 65_536,
            max_pending: 64,
            max_subscriptions: 32,
        }),
        example("7.2", ""),
    );
}

#[test]
fn ping_and_pong() {
    assert_wire(Frame::Ping(Ping { nonce: 1 }), example("7.3", "Ping"));
    assert_wire(Frame::Pong(Ping { nonce: 1 }), example("7.3", "Pong"));
}

#[test]
fn close() {
    assert_wire(
        Frame::Close(Close {
            code: CloseCode::NORMAL,
            reason: "bye",
        }),
        example("7.8", "Close"),
    );
}

#[test]
fn event_with_value_payload() {
    let mut value = [0u8; 64];
    let n = log_value(&mut value);
    assert_wire(
        Frame::Event(Event {
            event: "telemetry/log-msg",
            payload: Payload::Value(&value[..n]),
        }),
        example("7.4", ""),
    );
}

#[test]
fn event_with_bytes_payload() {
    assert_wire(
        Frame::Event(Event {
            event: "app/raw",
            payload: Payload::Bytes(&[0x00, 0xff]),
        }),
        example("7.9", ""),
    );
}

#[test]
fn request_reply_end_cancel() {
    let mut value = [0u8; 64];
    let mut e = encoder(&mut value);
    e.map(2).unwrap();
    keyword(&mut e, "op").unwrap();
    e.str("eval").unwrap();
    keyword(&mut e, "code").unwrap();
    e.str("(+ 1 2)").unwrap();
    let n = finish(e);
    assert_wire(
        Frame::Request(Request {
            id: 1,
            event: "nrepl/request",
            timeout_ms: 5000,
            payload: Payload::Value(&value[..n]),
        }),
        example("7.5", ""),
    );

    let mut e = encoder(&mut value);
    e.map(1).unwrap();
    keyword(&mut e, "value").unwrap();
    e.str("3").unwrap();
    let n = finish(e);
    assert_wire(
        Frame::Reply(Reply {
            id: 1,
            seq: 0,
            payload: Payload::Value(&value[..n]),
        }),
        example("7.6", ""),
    );

    assert_wire(
        Frame::End(End {
            id: 1,
            status: Status::OK,
            payload: Payload::Empty,
        }),
        example("7.7", ""),
    );
    assert_wire(Frame::Cancel(Cancel { id: 1 }), example("7.8", "Cancel"));
}

#[test]
fn channel_frames() {
    assert_wire(
        Frame::Subscribe(ChannelRef { channel: "c1" }),
        example("7.10", "Subscribe "),
    );
    assert_wire(
        Frame::Unsubscribe(ChannelRef { channel: "c1" }),
        example("7.10", "Unsubscribe"),
    );
    assert_wire(
        Frame::Publish(Publish {
            channel: "c1",
            exclude_sender: true,
            payload: Payload::Json("{\"n\":1}"),
        }),
        example("7.10", "Publish {"),
    );
    assert_wire(
        Frame::ChannelMsg(ChannelMsg {
            channel: "c1",
            from: "u-1",
            payload: Payload::Json("{\"n\":1}"),
        }),
        example("7.10", "ChannelMsg"),
    );
    assert_wire(
        Frame::SubscribeAck(SubscribeAck {
            channel: "c1",
            subscribed: false,
            error: SubscribeError::MAX_SUBSCRIPTIONS_PER_CONN,
        }),
        example("7.10", "SubscribeAck"),
    );
    assert_wire(
        Frame::PublishDropped(PublishDropped {
            channel: "c1",
            dropped: 300,
        }),
        example("7.10", "PublishDropped"),
    );
}

#[test]
fn cobs_examples() {
    let mut buf = [0u8; 64];
    // Section 1.2: "the Ping frame `01 02 01` becomes `04 01 02 01 00`; the Event frame
    // `…` (section 7.9) becomes `…`"; section 7.9 repeats the latter.
    let transport = section_text("### 1.2 Byte streams");
    let ping_frame = backticked_after(&transport, "the Ping frame");
    assert_eq!(ping_frame, example("7.3", "Ping"));
    let n = encode_cobs(&Frame::Ping(Ping { nonce: 1 }), &mut buf).unwrap();
    assert_eq!(
        hex(&buf[..n]),
        backticked_after(&transport, "`01 02 01` becomes")
    );
    let event_frame = backticked_after(&transport, "the Event frame");
    assert_eq!(event_frame, example("7.9", ""));
    let event_cobs = backticked_after(&transport, "(section 7.9) becomes");
    assert_eq!(
        event_cobs,
        backticked_after(&section_text("### 7.9"), "As a COBS packet:")
    );

    let raw = Frame::Event(Event {
        event: "app/raw",
        payload: Payload::Bytes(&[0x00, 0xff]),
    });
    let n = encode_cobs(&raw, &mut buf).unwrap();
    assert_eq!(hex(&buf[..n]), event_cobs);

    // Leading zeros (empty packets) are skipped; the packet decodes to the same frame.
    let mut stream = vec![0u8, 0u8];
    stream.extend_from_slice(&buf[..n]);
    let mut acc = CobsAccumulator::<64>::new();
    match acc.feed(&stream) {
        Feed::Frame { frame, consumed } => {
            assert_eq!(consumed, stream.len());
            assert_eq!(decode(frame), Ok(raw));
        }
        other => panic!("expected a frame, got {other:?}"),
    }
}

#[test]
fn scalar_encoding_rules() {
    // u16/u32/u64 are LEB128 varints with at most 3/5/10 bytes.
    assert_wire(
        Frame::Close(Close {
            code: CloseCode(u16::MAX),
            reason: "",
        }),
        example("7.12", "Close"),
    );
    assert_wire(
        Frame::Cancel(Cancel { id: u32::MAX }),
        example("7.12", "Cancel"),
    );
    assert_wire(
        Frame::End(End {
            id: 300,
            status: Status(200),
            payload: Payload::Empty,
        }),
        example("7.12", "End"),
    );
    // A varint that overflows its type, a bool or Option tag other than 0/1, an unknown frame
    // or payload tag, and invalid UTF-8 are all malformed.
    for bad in [
        "01 04 ff ff 04 00",
        "01 09 80 80 80 80 80 00",
        "01 0c 01 63 02 00",
        "01 00 01 61 00 02",
        "01 0f",
        "01 05 01 61 04",
        "01 05 01 ff 00",
        "01 05 01 61 03 01 ff",
    ] {
        assert_eq!(decode(&unhex(bad)), Err(DecodeError::Malformed), "{bad}");
    }
    assert_eq!(
        decode(&unhex("01 02 01 00")),
        Err(DecodeError::TrailingBytes)
    );
}

#[test]
fn other_versions_are_answered_with_a_version_one_close() {
    let refused = backticked_after(&section_text("### 7.11"), "A server that receives");
    assert_eq!(refused, "02 02 01");
    let mut server: ServerSession = ServerSession::new(ServerConfig::default(), Instant::ZERO);
    let err = server
        .handle_frame(Instant::ZERO, &unhex(&refused))
        .expect_err("a version 2 frame is refused");
    assert_eq!(err.code, CloseCode::UNSUPPORTED_VERSION);
    let mut buf = [0u8; 128];
    let n = server
        .poll_transmit(&mut buf)
        .unwrap()
        .expect("a Close frame");
    assert_eq!(hex(&buf[..n]), example("7.11", ""));
    assert_eq!(
        decode(&buf[..n]),
        Ok(Frame::Close(Close {
            code: CloseCode::UNSUPPORTED_VERSION,
            reason: "unsupported protocol version (this side speaks 1)",
        }))
    );
    assert_eq!(CloseCode::UNSUPPORTED_VERSION.websocket_code(), 4004);
}

#[test]
fn log_batch_example() {
    use sentelite_core::log::{Gap, Level, Record, decode_batch, encode_batch};
    let mut by_level = [0; 7];
    by_level[Level::Debug.index()] = 2;
    let gap = Gap {
        count: 2,
        by_level,
        first_seq: 3,
        last_seq: 4,
        first_time_ms: 1000,
        last_time_ms: 1200,
    };
    let records = [
        Record {
            seq: 5,
            time_ms: 1500,
            level: Level::Warn,
            namespace: "pump",
            id: Some("pump/high"),
            message: "hot",
            data: &[],
        },
        Record {
            seq: 6,
            time_ms: 1750,
            level: Level::Error,
            namespace: "pump",
            id: None,
            message: "trip",
            data: &[0xa1, 0x61, 0x6e, 0x03],
        },
    ];
    let expected = example("7.13", "");
    let mut buf = [0u8; 128];
    let n = encode_batch(Some(&gap), records.iter().copied(), &mut buf).unwrap();
    assert_eq!(hex(&buf[..n]), expected);
    let wire = unhex(expected);
    let batch = decode_batch(&wire).unwrap();
    assert_eq!(batch.gap, Some(gap));
    let back: Vec<Record<'_>> = batch.records().map(Result::unwrap).collect();
    assert_eq!(back, records);
}
