//! Attacks the server already refused cleanly when this suite was written: malformed,
//! truncated and oversize frames, a 2^64 WebSocket length, fragment floods, wrong tokens, a
//! connection flood past `max-connections` and a request flood. Kept so they stay refused.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::protocol::frame::Frame as WsFrame;
use async_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use futures_util::StreamExt;
use sentelite_core::frame::{CloseCode, Frame, PROTOCOL_VERSION, Payload, Request, Status};
use sentelite_hostile_tests::http;
use sentelite_hostile_tests::ws::{HelloAnswer, HelloFields, Peer, encode, end_status};
use tokio::io::AsyncWriteExt;

use crate::target::Target;

const CLOSE_WITHIN: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_truncated_and_oversize_frames_get_typed_closes() {
    let target = Target::start("max-frame-bytes = 4096\n").await;
    let addr = target.addr().to_owned();

    let mut malformed = Peer::welcomed(&addr, &HelloFields::new("malformed")).await;
    malformed.send_bytes(vec![PROTOCOL_VERSION, 200, 7]).await;
    let ending = malformed.ending(CLOSE_WITHIN).await;
    assert_eq!(
        ending.frame_code,
        Some(CloseCode::PROTOCOL_ERROR),
        "{ending:?}"
    );
    assert_eq!(
        ending.websocket_code,
        Some(CloseCode::PROTOCOL_ERROR.websocket_code())
    );

    let mut truncated = Peer::welcomed(&addr, &HelloFields::new("truncated")).await;
    let mut request = encode(&Frame::Request(Request {
        id: 1,
        event: "sentelite/echo",
        timeout_ms: 0,
        payload: Payload::Bytes(&[1, 2, 3, 4]),
    }));
    request.truncate(request.len() - 3);
    truncated.send_bytes(request).await;
    let ending = truncated.ending(CLOSE_WITHIN).await;
    assert_eq!(
        ending.frame_code,
        Some(CloseCode::PROTOCOL_ERROR),
        "{ending:?}"
    );

    // A Hello cut short, before any handshake.
    let mut truncated_hello = Peer::open(&addr).await;
    let mut hello = encode(&HelloFields::new("cut-short").frame());
    hello.truncate(hello.len() / 2);
    truncated_hello.send_bytes(hello).await;
    let ending = truncated_hello.ending(CLOSE_WITHIN).await;
    assert_eq!(
        ending.frame_code,
        Some(CloseCode::PROTOCOL_ERROR),
        "{ending:?}"
    );

    let mut oversize = Peer::welcomed(&addr, &HelloFields::new("oversize")).await;
    let mut big = vec![0u8; 4096 + 100];
    big[0] = PROTOCOL_VERSION;
    oversize.send_bytes(big).await;
    let ending = oversize.ending(CLOSE_WITHIN).await;
    assert_eq!(
        ending.websocket_code,
        Some(CloseCode::FRAME_TOO_LARGE.websocket_code()),
        "{ending:?}"
    );

    target.assert_survived("bad frames").await;
}

/// A WebSocket frame header announcing `len` payload bytes (masked, as a client must),
/// followed by no payload at all.
fn huge_frame_header(len: u64) -> Vec<u8> {
    let mut header = vec![0x82, 0x80 | 127];
    header.extend_from_slice(&len.to_be_bytes());
    header.extend_from_slice(&[0x11, 0x22, 0x33, 0x44]);
    header
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_lengths_near_2_pow_64_are_refused() {
    let target = Target::start("").await;
    for len in [u64::MAX, (1 << 63) - 1, 1 << 40] {
        let mut stream = http::connect(target.addr()).await;
        let answer = http::upgrade(&mut stream, None)
            .await
            .expect("upgrade answer");
        assert_eq!(answer.status, 101);
        stream
            .write_all(&huge_frame_header(len))
            .await
            .expect("write header");
        stream.write_all(&[0u8; 1024]).await.expect("write payload");
        let closed = http::closed_after(&mut stream, Instant::now(), CLOSE_WITHIN).await;
        assert!(
            closed.is_some(),
            "length {len:#x}: connection still open after {CLOSE_WITHIN:?}"
        );
    }
    target.assert_survived("2^64 lengths").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragment_flood_is_refused_at_the_message_limit() {
    let target = Target::start("max-frame-bytes = 4096\n").await;
    // Before the Hello: one message that never ends, sent as 1 KiB fragments. The server
    // admits at most twice max-frame-bytes per message, so it must close long before the
    // 16 MiB cap of this loop.
    let mut peer = Peer::open(target.addr()).await;
    let chunk = vec![0u8; 1024];
    let started = Instant::now();
    let mut sent = 0usize;
    let mut opcode = OpCode::Data(Data::Binary);
    while sent < 16 << 20 && started.elapsed() < Duration::from_secs(3) {
        let frame = WsFrame::message(chunk.clone(), opcode, false);
        opcode = OpCode::Data(Data::Continue);
        if peer.ws.send(Message::Frame(frame)).await.is_err() {
            break;
        }
        sent += chunk.len();
    }
    // The close may arrive as the native Close frame only: the socket still holds unread
    // fragments when the server drops it, which can reset it before the WebSocket close.
    let ending = peer.ending(CLOSE_WITHIN).await;
    assert!(
        ending.frame_code == Some(CloseCode::FRAME_TOO_LARGE)
            || ending.websocket_code == Some(CloseCode::FRAME_TOO_LARGE.websocket_code()),
        "after {sent} bytes of fragments: {ending:?}"
    );
    target.assert_survived("fragment flood").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_or_missing_token_gets_auth_failed() {
    let server = sentelite_integration_tests::ServeProcess::start(&["--token", "s3cret"]);
    let mut options = sentelite_tokio::ClientOptions::new(&server.ws_url, "bystander");
    options.token = Some("s3cret".into());
    let bystander = sentelite_hostile_tests::bystander::Bystander::join_with(options).await;
    let target = Target {
        baseline: sentelite_hostile_tests::memory::MemoryBaseline::take(server.pid()),
        server,
        bystander,
    };
    for token in [Some("wrong"), Some(""), None] {
        let mut hello = HelloFields::new("intruder");
        hello.token = token.map(str::to_owned);
        let (_, answer) = Peer::handshake(target.addr(), &hello).await;
        let HelloAnswer::Refused(ending) = answer else {
            panic!("token {token:?} was welcomed");
        };
        assert_eq!(
            ending.frame_code,
            Some(CloseCode::AUTH_FAILED),
            "{ending:?}"
        );
        assert_eq!(
            ending.websocket_code,
            Some(CloseCode::AUTH_FAILED.websocket_code())
        );
    }
    target.assert_survived("wrong tokens").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_flood_past_max_connections_is_refused() {
    let target = Target::start("max-connections = 4\n").await;
    let addr = target.addr().to_owned();
    // The bystander holds one of the four slots.
    let mut admitted = Vec::new();
    for n in 0..3 {
        admitted.push(Peer::welcomed(&addr, &HelloFields::new(&format!("flood-{n}"))).await);
    }
    let mut refused = 0;
    for n in 3..23 {
        let (_, answer) = Peer::handshake(&addr, &HelloFields::new(&format!("flood-{n}"))).await;
        match answer {
            HelloAnswer::Refused(ending) => {
                assert_eq!(
                    ending.frame_code,
                    Some(CloseCode::TOO_MANY_CONNECTIONS),
                    "{ending:?}"
                );
                refused += 1;
            }
            HelloAnswer::Welcome { uid } => panic!("connection past the limit welcomed as {uid}"),
        }
    }
    assert_eq!(refused, 20);
    // A slot freed by a leaving client is available again.
    let leaving = admitted.pop().expect("an admitted peer");
    drop(leaving);
    let readmitted = async {
        loop {
            if let (peer, HelloAnswer::Welcome { .. }) =
                Peer::handshake(&addr, &HelloFields::new("late")).await
            {
                return peer;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let _late = sentelite_hostile_tests::within(CLOSE_WITHIN, "a freed slot", readmitted).await;
    target.assert_survived("connection flood").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_flood_is_answered_busy() {
    let target = Target::start("max-pending = 2\n").await;
    let mut peer = Peer::welcomed(target.addr(), &HelloFields::new("request-flood")).await;
    const REQUESTS: u32 = 300;
    for id in 1..=REQUESTS {
        let request = encode(&Frame::Request(Request {
            id,
            event: "sentelite/echo",
            timeout_ms: 0,
            payload: Payload::Bytes(&[0u8; 512]),
        }));
        assert!(peer.feed_bytes(request).await, "request {id} not sent");
    }
    assert!(peer.flush().await);
    let mut ends: HashMap<u32, Status> = HashMap::new();
    let deadline = Instant::now() + CLOSE_WITHIN;
    while ends.len() < REQUESTS as usize && Instant::now() < deadline {
        let Some(bytes) = peer.next_frame(Duration::from_secs(5)).await else {
            break;
        };
        if let Some((id, status)) = end_status(&bytes) {
            assert!(
                ends.insert(id, status).is_none(),
                "request {id} ended twice"
            );
        }
    }
    assert_eq!(ends.len(), REQUESTS as usize, "every request gets one End");
    let busy = ends.values().filter(|s| **s == Status::BUSY).count();
    let ok = ends.values().filter(|s| **s == Status::OK).count();
    assert_eq!(busy + ok, REQUESTS as usize, "only ok or busy: {ends:?}");
    assert!(busy > 0, "no request answered BUSY with max-pending = 2");
    assert!(ok >= 2, "fewer than max-pending requests served");
    target.assert_survived("request flood").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgraded_but_silent_is_closed_by_the_handshake_timeout() {
    let target = Target::start("handshake-timeout-ms = 500\n").await;
    let started = Instant::now();
    // Named native: a silent socket of unknown dialect is taken for a sente-lite client
    // waiting for its handshake (see the next test).
    let mut stream = http::connect_from(None, target.addr())
        .await
        .expect("connects");
    let answer = http::upgrade_to(&mut stream, "/ws?dialect=native", None)
        .await
        .expect("upgrade answer");
    assert_eq!(answer.status, 101);
    let silent = Peer::over(stream).await;
    let ending = silent.ending(Duration::from_secs(3)).await;
    let took = started.elapsed();
    assert_eq!(
        ending.frame_code,
        Some(CloseCode::HANDSHAKE_TIMEOUT),
        "{ending:?}"
    );
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_millis(2000),
        "closed after {took:?} with a 500 ms handshake timeout"
    );
    target.assert_survived("silent websocket").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgraded_silent_and_of_no_dialect_is_closed_by_the_heartbeat_timeout() {
    let target = Target::start(
        "dialect-detect-ms = 100\nheartbeat-interval-ms = 200\nheartbeat-timeout-ms = 600\n",
    )
    .await;
    let started = Instant::now();
    let mut silent = Peer::open(target.addr()).await;
    // Taken for a sente-lite client: the handshake comes after the detection window, and
    // then a client that never answers is closed like any silent one.
    let handshake =
        sentelite_hostile_tests::within(Duration::from_secs(5), "the handshake", silent.ws.next())
            .await;
    let Some(Ok(Message::Text(text))) = handshake else {
        panic!("expected the sente-lite handshake, got {handshake:?}");
    };
    assert!(text.as_str().starts_with("[:chsk/handshake"), "{text}");
    let ending = silent.ending(Duration::from_secs(3)).await;
    let took = started.elapsed();
    assert_eq!(ending.websocket_code, Some(1001), "{ending:?}");
    assert!(
        took >= Duration::from_millis(600) && took < Duration::from_millis(2500),
        "closed after {took:?} with a 600 ms heartbeat timeout"
    );
    target.assert_survived("silent text websocket").await;
}
