//! The device's WebSocket reassembly (`sentelite-embassy`, `ws.rs`) and its server URL parser.
//!
//! The first byte picks the mode. Raw: any bytes, in reads of sizes taken from the input,
//! as what the server sent; the reassembly answers with messages, "need more" or a typed
//! error, never a panic, and never reports a message longer than the buffer it was given.
//! Framed: the input is a payload that a server sends as a fragmented message, read in
//! pieces of varying size; the message that comes out is that payload, exactly once.
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

/// Hands `bytes` to the framing in reads no larger than its free space; collects messages.
fn feed(
    framing: &mut Framing,
    input: &mut [u8],
    message: &mut [u8],
    mut bytes: &[u8],
    sizes: &[u8],
    got: &mut Vec<(WebSocketReceiveMessageType, Vec<u8>)>,
) -> bool {
    let mut sizes = sizes.iter().cycle();
    // Every turn either takes a message, reads at least one byte, or stops: bounded.
    for _ in 0..bytes.len() * 2 + 16 {
        match framing.next_message(input, message) {
            Ok(Some(received)) => {
                assert!(received.len <= message.len());
                got.push((received.kind, message[..received.len].to_vec()));
                continue;
            }
            Ok(None) => {}
            Err(_) => return false,
        }
        if bytes.is_empty() {
            return true;
        }
        let spare = framing.spare(input);
        assert!(!spare.is_empty(), "\"need more\" with a full input buffer");
        let want = usize::from(*sizes.next().unwrap_or(&255)).max(1);
        let n = want.min(spare.len()).min(bytes.len());
        spare[..n].copy_from_slice(&bytes[..n]);
        framing.filled(n);
        bytes = &bytes[n..];
    }
    panic!("the reassembly neither progressed nor stopped");
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (mut input, mut message) = ([0u8; INPUT], [0u8; MESSAGE]);
    let mut got = Vec::new();
    match mode % 3 {
        0 => {
            let (sizes, bytes) = rest.split_at(rest.len().min(4));
            let mut framing = Framing::opened(1);
            feed(
                &mut framing,
                &mut input,
                &mut message,
                bytes,
                sizes,
                &mut got,
            );
        }
        1 => {
            let Some((&fragments, payload)) = rest.split_first() else {
                return;
            };
            let payload = &payload[..payload.len().min(MESSAGE)];
            let mut server = WebSocketServer::new_server();
            server.state = WebSocketState::Open;
            let pieces = usize::from(fragments % 4) + 1;
            let step = payload.len().div_ceil(pieces).max(1);
            let mut wire = Vec::new();
            let mut frame = [0u8; MESSAGE + 16];
            let chunks: Vec<&[u8]> = if payload.is_empty() {
                vec![&[][..]]
            } else {
                payload.chunks(step).collect()
            };
            for (i, chunk) in chunks.iter().enumerate() {
                // The server turns every write after an unfinished one into a continuation.
                let n = server
                    .write(
                        WebSocketSendMessageType::Binary,
                        i + 1 == chunks.len(),
                        chunk,
                        &mut frame,
                    )
                    .expect("the frame fits");
                wire.extend_from_slice(&frame[..n]);
            }
            let mut framing = Framing::opened(1);
            let sizes = [fragments, fragments.rotate_left(3), 1, 200];
            assert!(
                feed(
                    &mut framing,
                    &mut input,
                    &mut message,
                    &wire,
                    &sizes,
                    &mut got
                ),
                "a well-formed message was refused"
            );
            assert_eq!(
                got,
                vec![(WebSocketReceiveMessageType::Binary, payload.to_vec())]
            );
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
