//! The worked examples of `docs/PROTOCOL.md`, byte for byte.
//!
//! Every hex string below appears verbatim in the protocol document. Each test encodes the
//! frame with the real encoder and compares, then decodes the hex and compares the frame, so
//! the document cannot drift from the code in either direction.

use sentelite_core::cobs::{CobsAccumulator, Feed, encode_cobs};
use sentelite_core::codec::{DecodeError, decode, encode, encoded_len};
use sentelite_core::frame::{
    Cancel, ChannelMsg, ChannelRef, Close, CloseCode, End, Event, Frame, Hello, Payload, Ping,
    Publish, PublishDropped, Reply, Request, Status, SubscribeAck, SubscribeError, Welcome,
    capability,
};
use sentelite_core::value::{encoder, finish, keyword};
use sentelite_core::{Instant, ServerConfig, ServerSession};

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
    assert_eq!(
        hex(&buf[..n]),
        "a2 d8 27 65 6c 65 76 65 6c d8 27 64 69 6e 66 6f d8 27 63 6d 73 67 62 75 70"
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
        "01 00 05 64 65 76 2d 31 ac 02 00 13 80 20 01 06 66 77 2d 31 2e 32",
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
        "01 01 03 75 2d 31 2a b0 ea 01 e0 d4 03 80 80 04 40 20",
    );
}

#[test]
fn ping_and_pong() {
    assert_wire(Frame::Ping(Ping { nonce: 1 }), "01 02 01");
    assert_wire(Frame::Pong(Ping { nonce: 1 }), "01 03 01");
}

#[test]
fn close() {
    assert_wire(
        Frame::Close(Close {
            code: CloseCode::NORMAL,
            reason: "bye",
        }),
        "01 04 00 03 62 79 65",
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
        "01 05 11 74 65 6c 65 6d 65 74 72 79 2f 6c 6f 67 2d 6d 73 67 02 19 \
         a2 d8 27 65 6c 65 76 65 6c d8 27 64 69 6e 66 6f d8 27 63 6d 73 67 62 75 70",
    );
}

#[test]
fn event_with_bytes_payload() {
    assert_wire(
        Frame::Event(Event {
            event: "app/raw",
            payload: Payload::Bytes(&[0x00, 0xff]),
        }),
        "01 05 07 61 70 70 2f 72 61 77 01 02 00 ff",
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
        "01 06 01 0d 6e 72 65 70 6c 2f 72 65 71 75 65 73 74 88 27 02 1a \
         a2 d8 27 62 6f 70 64 65 76 61 6c d8 27 64 63 6f 64 65 67 28 2b 20 31 20 32 29",
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
        "01 07 01 00 02 0b a1 d8 27 65 76 61 6c 75 65 61 33",
    );

    assert_wire(
        Frame::End(End {
            id: 1,
            status: Status::OK,
            payload: Payload::Empty,
        }),
        "01 08 01 00 00",
    );
    assert_wire(Frame::Cancel(Cancel { id: 1 }), "01 09 01");
}

#[test]
fn channel_frames() {
    assert_wire(
        Frame::Subscribe(ChannelRef { channel: "c1" }),
        "01 0a 02 63 31",
    );
    assert_wire(
        Frame::Unsubscribe(ChannelRef { channel: "c1" }),
        "01 0b 02 63 31",
    );
    assert_wire(
        Frame::Publish(Publish {
            channel: "c1",
            exclude_sender: true,
            payload: Payload::Json("{\"n\":1}"),
        }),
        "01 0c 02 63 31 01 03 07 7b 22 6e 22 3a 31 7d",
    );
    assert_wire(
        Frame::ChannelMsg(ChannelMsg {
            channel: "c1",
            from: "u-1",
            payload: Payload::Json("{\"n\":1}"),
        }),
        "01 0d 02 63 31 03 75 2d 31 03 07 7b 22 6e 22 3a 31 7d",
    );
    assert_wire(
        Frame::SubscribeAck(SubscribeAck {
            channel: "c1",
            subscribed: false,
            error: SubscribeError::MAX_SUBSCRIPTIONS_PER_CONN,
        }),
        "01 0e 02 63 31 00 01",
    );
    assert_wire(
        Frame::PublishDropped(PublishDropped {
            channel: "c1",
            dropped: 300,
        }),
        "01 0f 02 63 31 ac 02",
    );
}

#[test]
fn cobs_examples() {
    let mut buf = [0u8; 64];
    let n = encode_cobs(&Frame::Ping(Ping { nonce: 1 }), &mut buf).unwrap();
    assert_eq!(hex(&buf[..n]), "04 01 02 01 00");

    let raw = Frame::Event(Event {
        event: "app/raw",
        payload: Payload::Bytes(&[0x00, 0xff]),
    });
    let n = encode_cobs(&raw, &mut buf).unwrap();
    assert_eq!(
        hex(&buf[..n]),
        "0d 01 05 07 61 70 70 2f 72 61 77 01 02 02 ff 00"
    );

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
        "01 04 ff ff 03 00",
    );
    assert_wire(
        Frame::Cancel(Cancel { id: u32::MAX }),
        "01 09 ff ff ff ff 0f",
    );
    assert_wire(
        Frame::End(End {
            id: 300,
            status: Status(200),
            payload: Payload::Empty,
        }),
        "01 08 ac 02 c8 00",
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
    let mut server: ServerSession = ServerSession::new(ServerConfig::default(), Instant::ZERO);
    let err = server
        .handle_frame(Instant::ZERO, &unhex("02 02 01"))
        .expect_err("a version 2 frame is refused");
    assert_eq!(err.code, CloseCode::UNSUPPORTED_VERSION);
    let mut buf = [0u8; 128];
    let n = server
        .poll_transmit(&mut buf)
        .unwrap()
        .expect("a Close frame");
    assert_eq!(
        hex(&buf[..n]),
        "01 04 04 31 75 6e 73 75 70 70 6f 72 74 65 64 20 70 72 6f 74 6f 63 6f 6c 20 76 \
         65 72 73 69 6f 6e 20 28 74 68 69 73 20 73 69 64 65 20 73 70 65 61 6b 73 20 31 29"
    );
    assert_eq!(
        decode(&buf[..n]),
        Ok(Frame::Close(Close {
            code: CloseCode::UNSUPPORTED_VERSION,
            reason: "unsupported protocol version (this side speaks 1)",
        }))
    );
    assert_eq!(CloseCode::UNSUPPORTED_VERSION.websocket_code(), 4004);
}
