//! A slow reader on the server side must not get a healthy client closed. When a
//! relay's asker stops reading, the relay backs up into the target's reply stream and the
//! server stops reading the target's socket; the target's heartbeat must not be declared
//! failed for that, on either side (the stall is the server's own), and every part must
//! arrive once the asker reads again, unless the server closed the asker, which it may:
//! the asker is the one that stopped reading.

use std::time::{Duration, Instant};

use sentelite_core::codec;
use sentelite_core::frame::{Frame, Payload, Ping, Request, Status};
use sentelite_hostile_tests::device::{ANSWER, AnsweringDevice};
use sentelite_hostile_tests::http;
use sentelite_hostile_tests::ws::{HelloAnswer, HelloFields, Peer};

use crate::target::Target;

/// `capability::RELAY_TARGET`.
const RELAY_TARGET: u32 = 1 << 5;
/// Parts the target streams: 16 MB, more than the socket buffers on the way can hold even
/// when the kernel has grown them (up to 4 MB to send, 32 MB to receive here).
const PARTS: usize = 16_000;
/// How long the asker does not read.
const STALL: Duration = Duration::from_secs(3);

const CONFIG: &str = "relay-enabled = true\nrelay-events = [\"demo/*\"]\n\
                      heartbeat-interval-ms = 200\nheartbeat-timeout-ms = 600\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_relay_asker_does_not_get_the_target_closed() {
    let target = Target::start(CONFIG).await;
    let addr = target.addr().to_owned();
    let streamer =
        AnsweringDevice::join_streaming(&target.server.ws_url, "streamer", RELAY_TARGET, PARTS)
            .await;

    // The asker has a tiny receive buffer and stops reading after asking; it keeps pinging
    // so that its own heartbeat stays good.
    let mut stream = http::connect_with_receive_buffer(&addr, 4096).await;
    let upgraded = http::upgrade(&mut stream, None)
        .await
        .expect("upgrade answer");
    assert_eq!(upgraded.status, 101);
    let mut asker = Peer::over(stream).await;
    asker.send_frame(&HelloFields::new("asker").frame()).await;
    assert!(matches!(
        asker.hello_answer().await,
        HelloAnswer::Welcome { .. }
    ));
    let body = r#"{"client-id":"streamer","event":"demo/stream","timeout-ms":30000}"#;
    asker
        .send_frame(&Frame::Request(Request {
            id: 1,
            event: "sentelite/relay",
            timeout_ms: 0,
            payload: Payload::Json(body),
        }))
        .await;
    let stalled = Instant::now();
    let mut nonce = 0;
    while stalled.elapsed() < STALL {
        tokio::time::sleep(Duration::from_millis(150)).await;
        nonce += 1;
        asker.send_frame(&Frame::Ping(Ping { nonce })).await;
    }
    assert_eq!(
        streamer.asked(),
        ["demo/stream"],
        "the relay never reached the target"
    );
    assert_eq!(
        streamer.closes(),
        [],
        "the target was closed while the asker was stalled"
    );
    assert!(streamer.client().is_open());

    // The asker reads again: every part, then the target's answer. The server may have
    // given up on the asker itself (it was the one not reading); then it must say so with a
    // typed close, and the target must still not have been blamed.
    let mut parts = 0;
    let mut end = None;
    let mut asker_closed = None;
    let reading = Instant::now();
    while end.is_none() && asker_closed.is_none() && reading.elapsed() < Duration::from_secs(20) {
        let Some(bytes) = asker.next_frame(Duration::from_secs(5)).await else {
            break;
        };
        match codec::decode(&bytes) {
            Ok(Frame::Reply(reply)) if reply.id == 1 => parts += 1,
            Ok(Frame::End(e)) if e.id == 1 => {
                end = Some((
                    e.status,
                    matches!(e.payload, Payload::Json(j) if j == ANSWER),
                ))
            }
            Ok(Frame::Close(close)) => asker_closed = Some(close.code),
            _ => {}
        }
    }
    match asker_closed {
        None => {
            assert_eq!(parts, PARTS, "parts lost on the way");
            assert_eq!(end, Some((Status::OK, true)));
        }
        Some(code) => eprintln!(
            "the stalled asker was closed {} after {parts} parts",
            code.name()
        ),
    }
    assert_eq!(streamer.closes(), [], "the target was closed");
    streamer.leave().await;
    target.assert_survived("stalled relay asker").await;
}
