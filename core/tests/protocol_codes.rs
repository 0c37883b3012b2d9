//! The code tables of `docs/PROTOCOL.md` (frame tags, close codes and their WebSocket
//! mapping, End statuses, subscribe errors, capability bits), read from the document at test
//! time and compared with the names and values the core uses, so neither can change without
//! the other.

use std::sync::OnceLock;

use sentelite_core::codec::encode;
use sentelite_core::frame::{
    Cancel, ChannelMsg, ChannelRef, Close, CloseCode, End, Event, Frame, Hello, Payload, Ping,
    Publish, PublishDropped, Reply, Request, Status, SubscribeAck, SubscribeError, Welcome,
    capability,
};

fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/PROTOCOL.md");
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"))
    })
}

/// The body rows of the first table under `heading`, each as its cells with backticks
/// removed.
fn table(heading: &str) -> Vec<Vec<String>> {
    let doc = document();
    let start = doc
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading:?} in docs/PROTOCOL.md"));
    let rows: Vec<Vec<String>> = doc[start..]
        .lines()
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        .skip(2) // header and separator
        .map(|line| {
            line.trim_matches('|')
                .split('|')
                .map(|cell| cell.trim().replace('`', ""))
                .collect()
        })
        .collect();
    assert!(!rows.is_empty(), "no table under {heading:?}");
    rows
}

fn number(cell: &str) -> u64 {
    match cell.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => cell.parse(),
    }
    .unwrap_or_else(|e| panic!("{cell:?} is not a number: {e}"))
}

#[test]
fn close_codes_names_and_websocket_codes_follow_section_6_1() {
    let rows = table("### 6.1 Close codes");
    assert_eq!(
        rows.len(),
        13,
        "a new close code needs its row and its name"
    );
    for row in rows {
        let code = CloseCode(u16::try_from(number(&row[0])).unwrap());
        let ws = u16::try_from(number(&row[3])).unwrap();
        assert_eq!(code.name(), row[1], "name of {code:?}");
        assert_eq!(code.websocket_code(), ws, "WebSocket code of {code:?}");
        assert_eq!(CloseCode::from_websocket_code(ws), code, "back from {ws}");
    }
    assert_eq!(CloseCode(200).name(), "unknown");
    // The rules under the table: saturation, and WebSocket closes no native code produced.
    assert_eq!(CloseCode(u16::MAX - 10).websocket_code(), u16::MAX);
    for (ws, code) in [
        (1002, CloseCode::PROTOCOL_ERROR),
        (1003, CloseCode::PROTOCOL_ERROR),
        (1007, CloseCode::PROTOCOL_ERROR),
        (1009, CloseCode::FRAME_TOO_LARGE),
        (4000, CloseCode(0)),
        (4999, CloseCode(999)),
        (1005, CloseCode::GOING_AWAY),
        (1006, CloseCode::GOING_AWAY),
        (3999, CloseCode::GOING_AWAY),
        (5000, CloseCode::GOING_AWAY),
    ] {
        assert_eq!(CloseCode::from_websocket_code(ws), code, "from {ws}");
    }
}

#[test]
fn status_names_follow_section_6_2() {
    let rows = table("### 6.2 Status codes");
    assert_eq!(rows.len(), 6);
    for row in rows {
        let status = Status(u8::try_from(number(&row[0])).unwrap());
        assert_eq!(status.name(), row[1]);
    }
    assert_eq!(Status(6).name(), "unknown");
}

#[test]
fn subscribe_error_names_follow_section_6_3() {
    let rows = table("### 6.3 Subscribe error codes");
    assert_eq!(rows.len(), 5);
    for row in rows {
        let error = SubscribeError(u8::try_from(number(&row[0])).unwrap());
        assert_eq!(error.name(), row[1]);
    }
    assert_eq!(SubscribeError(5).name(), "unknown");
}

#[test]
fn capability_bits_follow_section_6_4() {
    let ours = [
        ("LOGS", capability::LOGS),
        ("BLOB_FETCH", capability::BLOB_FETCH),
        ("NREPL", capability::NREPL),
        ("LSP", capability::LSP),
        ("CHANNELS", capability::CHANNELS),
        ("RELAY_TARGET", capability::RELAY_TARGET),
    ];
    let rows = table("### 6.4 Capability bits");
    assert_eq!(rows.len(), ours.len());
    for row in rows {
        let (bit, value, name) = (number(&row[0]), number(&row[1]), &row[2]);
        assert_eq!(value, 1 << bit, "{name}: bit {bit}");
        let (_, constant) = ours
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no constant for {name}"));
        assert_eq!(u64::from(*constant), value, "{name}");
    }
}

/// `SubscribeAck` → `subscribe-ack`.
fn kebab(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

#[test]
fn frame_tags_and_kinds_follow_section_4_1() {
    let channel = ChannelRef { channel: "c" };
    let frames = [
        Frame::Hello(Hello {
            client_id: "d",
            boot_id: 1,
            token: None,
            capabilities: 0,
            max_frame: 512,
            firmware: None,
        }),
        Frame::Welcome(Welcome {
            uid: "u",
            connection_id: 1,
            heartbeat_ms: 1,
            heartbeat_timeout_ms: 2,
            max_frame: 512,
            max_pending: 1,
            max_subscriptions: 1,
        }),
        Frame::Ping(Ping { nonce: 1 }),
        Frame::Pong(Ping { nonce: 1 }),
        Frame::Close(Close {
            code: CloseCode::NORMAL,
            reason: "",
        }),
        Frame::Event(Event {
            event: "e",
            payload: Payload::Empty,
        }),
        Frame::Request(Request {
            id: 1,
            event: "e",
            timeout_ms: 0,
            payload: Payload::Empty,
        }),
        Frame::Reply(Reply {
            id: 1,
            seq: 0,
            payload: Payload::Empty,
        }),
        Frame::End(End {
            id: 1,
            status: Status::OK,
            payload: Payload::Empty,
        }),
        Frame::Cancel(Cancel { id: 1 }),
        Frame::Subscribe(channel),
        Frame::Unsubscribe(channel),
        Frame::Publish(Publish {
            channel: "c",
            exclude_sender: false,
            payload: Payload::Empty,
        }),
        Frame::ChannelMsg(ChannelMsg {
            channel: "c",
            from: "u",
            payload: Payload::Empty,
        }),
        Frame::SubscribeAck(SubscribeAck {
            channel: "c",
            subscribed: true,
            error: SubscribeError::NONE,
        }),
        Frame::PublishDropped(PublishDropped {
            channel: "c",
            dropped: 1,
        }),
    ];
    let rows = table("### 4.1 Frame tags");
    assert_eq!(rows.len(), frames.len());
    for (row, frame) in rows.iter().zip(frames) {
        let mut buf = [0u8; 64];
        encode(&frame, &mut buf).unwrap();
        assert_eq!(u64::from(buf[1]), number(&row[0]), "tag of {}", row[1]);
        assert_eq!(frame.kind(), kebab(&row[1]), "kind of {}", row[1]);
    }
}
