//! The device's WebSocket reassembly (`sentelite-embassy`, `ws.rs`) and its server URL parser.
//!
//! The first byte picks the mode. Raw: any bytes, in reads of sizes taken from the input,
//! as what the server sent; the reassembly answers with messages, "need more" or a typed
//! error, never a panic, and never reports a message longer than the buffer it was given.
//! Framed: the input is a payload that a server sends as one frame or as a fragmented
//! message, read in pieces of varying size that split frames anywhere; the message that
//! comes out is that payload, exactly once.
//! URL: the text is a server URL; what parses prints back to a URL that parses the same.
//! Client: a payload the device sends as a binary message, pong or close, framed into an
//! output buffer of a size taken from the input: it fits exactly when header, mask and
//! payload do, and embedded-websocket's server side (an independent implementation) reads
//! back the kind and payload that were sent, as one masked final frame.
#![no_main]

use embedded_websocket::{
    WebSocketReceiveMessageType, WebSocketSendMessageType, WebSocketServer, WebSocketState,
};
use libfuzzer_sys::fuzz_target;
use sentelite_embassy::WsUrl;
use sentelite_embassy::fuzzing::{Framing, Kind, SendKind};

const INPUT: usize = 512;
const MESSAGE: usize = 1024;

type Messages = Vec<(Kind, Vec<u8>)>;

/// Hands `bytes` to the framing in reads of `sizes` (cycled, cut to its free space) and
/// collects the messages. False when the framing refused the input or could take no more.
fn feed(
    framing: &mut Framing,
    input: &mut [u8],
    message: &mut [u8],
    mut bytes: &[u8],
    sizes: &[usize],
    got: &mut Messages,
) -> bool {
    let mut sizes = sizes.iter().cycle();
    // Every turn takes a message, reads at least one byte, or stops: bounded.
    for _ in 0..bytes.len() * 2 + 16 {
        match framing.next_message(input, message) {
            Ok(Some(received)) => {
                assert!(received.start + received.len <= message.len());
                got.push((received.kind, received.bytes(message).to_vec()));
                continue;
            }
            Ok(None) => {}
            Err(_) => return false,
        }
        if bytes.is_empty() {
            return true;
        }
        let spare = framing.spare(input);
        if spare.is_empty() {
            // "Need more" with a full buffer: the runner's next read gets no space and the
            // connection ends (see the module note).
            return false;
        }
        let want = (*sizes.next().unwrap_or(&255)).max(1);
        let n = want.min(spare.len()).min(bytes.len());
        spare[..n].copy_from_slice(&bytes[..n]);
        framing.filled(n);
        bytes = &bytes[n..];
    }
    panic!("the reassembly neither progressed nor stopped");
}

/// `payload` as a server sends it: one frame, or `pieces` or more frames each small enough
/// for one read.
fn server_frames(payload: &[u8], pieces: usize) -> Vec<Vec<u8>> {
    let mut server = WebSocketServer::new_server();
    server.state = WebSocketState::Open;
    let step = if pieces == 1 {
        payload.len().max(1)
    } else {
        payload.len().div_ceil(pieces).clamp(1, INPUT - 16)
    };
    let chunks: Vec<&[u8]> = if payload.is_empty() {
        vec![&[][..]]
    } else {
        payload.chunks(step).collect()
    };
    let mut frame = [0u8; MESSAGE + 16];
    let mut frames = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        // The server turns every write after an unfinished one into a continuation.
        let last = i + 1 == chunks.len();
        let n = server
            .write(WebSocketSendMessageType::Binary, last, chunk, &mut frame)
            .expect("the frame fits");
        frames.push(frame[..n].to_vec());
    }
    frames
}

/// Frames `payload` as the client would send it (`shape` picks the kind and the output
/// buffer's size) and checks it against embedded-websocket's server reading it.
fn client_frame(framing: &mut Framing, shape: u8, payload: &[u8]) {
    let (kind, payload, want) = match shape % 3 {
        0 => (
            SendKind::Binary,
            &payload[..payload.len().min(MESSAGE)],
            WebSocketReceiveMessageType::Binary,
        ),
        // Control frames carry at most 125 bytes; a close starts with its two-byte code
        // (embedded-websocket reads a shorter one as no payload at all).
        1 => (
            SendKind::Pong,
            &payload[..payload.len().min(125)],
            WebSocketReceiveMessageType::Pong,
        ),
        _ if payload.len() < 2 => return,
        _ => (
            SendKind::Close,
            &payload[..payload.len().min(125)],
            WebSocketReceiveMessageType::CloseMustReply,
        ),
    };
    let header = if payload.len() < 126 { 2 } else { 4 } + 4;
    let mut out = [0u8; MESSAGE + 16];
    // Sizes around the exact fit, and the whole buffer.
    let size = match shape / 3 % 4 {
        0 => header + payload.len(),
        1 => (header + payload.len()).saturating_sub(usize::from(shape % 7) + 1),
        2 => usize::from(shape),
        _ => out.len(),
    };
    let encoded = framing.encode(kind, payload, &mut out[..size]);
    if header + payload.len() > size {
        assert_eq!(encoded, None, "a frame larger than its buffer was written");
        return;
    }
    let n = encoded.expect("a frame that fits was refused");
    assert_eq!(n, header + payload.len());
    assert_eq!(
        out[0],
        0x80 | kind as u8,
        "one final frame of the kind sent"
    );
    assert_ne!(out[1] & 0x80, 0, "masked");
    let mut server = WebSocketServer::new_server();
    server.state = WebSocketState::Open;
    let mut read = [0u8; MESSAGE];
    let got = server
        .read(&out[..n], &mut read)
        .expect("the server reads it");
    assert_eq!(got.len_from, n, "one frame, read whole");
    assert!(got.end_of_message);
    assert_eq!(got.message_type, want);
    assert_eq!(&read[..got.len_to], payload);
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (mut input, mut message) = ([0u8; INPUT], [0u8; MESSAGE]);
    let mut got = Messages::new();
    let mut framing = Framing::new(1);
    match mode % 4 {
        0 => {
            let (sizes, bytes) = rest.split_at(rest.len().min(4));
            let sizes: Vec<usize> = sizes.iter().map(|&b| usize::from(b)).collect();
            feed(
                &mut framing,
                &mut input,
                &mut message,
                bytes,
                &sizes,
                &mut got,
            );
        }
        1 => {
            let Some((&shape, payload)) = rest.split_first() else {
                return;
            };
            let payload = &payload[..payload.len().min(MESSAGE)];
            let frames = server_frames(payload, usize::from(shape % 4) + 1);
            // One frame or several fragments, read in pieces that split frames anywhere.
            let wire = frames.concat();
            let sizes = [shape, shape.rotate_left(3), 1, 200].map(usize::from);
            let whole = feed(
                &mut framing,
                &mut input,
                &mut message,
                &wire,
                &sizes,
                &mut got,
            );
            assert!(whole, "a well-formed message was refused");
            let want = vec![(Kind::Binary, payload.to_vec())];
            assert_eq!(got, want);
        }
        3 => {
            let Some((&shape, payload)) = rest.split_first() else {
                return;
            };
            client_frame(&mut framing, shape, payload);
        }
        _ => {
            let Ok(text) = std::str::from_utf8(rest) else {
                return;
            };
            if let Ok(url) = WsUrl::parse(text) {
                assert!(!url.host.is_empty() && url.port != 0 && url.path.starts_with('/'));
                let printed = format!("ws://{}:{}{}", url.host, url.port, url.path);
                assert_eq!(WsUrl::parse(&printed), Ok(url));
            }
        }
    }
});
