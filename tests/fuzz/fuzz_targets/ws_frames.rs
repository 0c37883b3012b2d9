//! The device's WebSocket reassembly (`sentelite-embassy`, `ws.rs`) and its server URL parser.
//!
//! The first byte picks the mode. Raw: any bytes, in reads of sizes taken from the input,
//! as what the server sent; the reassembly answers with messages, "need more" or a typed
//! error, never a panic, and never reports a message longer than the buffer it was given.
//! Framed: the input is a payload that a server sends as one frame or as a fragmented
//! message, read in pieces of varying size that split frames anywhere; the message that
//! comes out is that payload, exactly once.
//! URL: the text is a server URL; what parses prints back to a URL that parses the same.
#![no_main]

use embedded_websocket::{
    WebSocketReceiveMessageType, WebSocketSendMessageType, WebSocketServer, WebSocketState,
};
use libfuzzer_sys::fuzz_target;
use sentelite_embassy::WsUrl;
use sentelite_embassy::fuzzing::Framing;

const INPUT: usize = 512;
const MESSAGE: usize = 1024;

type Messages = Vec<(WebSocketReceiveMessageType, Vec<u8>)>;

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

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (mut input, mut message) = ([0u8; INPUT], [0u8; MESSAGE]);
    let mut got = Messages::new();
    let mut framing = Framing::opened(1);
    match mode % 3 {
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
            let want = vec![(WebSocketReceiveMessageType::Binary, payload.to_vec())];
            assert_eq!(got, want);
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
