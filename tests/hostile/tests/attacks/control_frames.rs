//! WebSocket control frames must be backpressured like native frames. Peers that
//! flood 125-byte pings and never read must not make the server queue a pong per ping,
//! whether they have said Hello or not.

use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::Message;
use futures_util::StreamExt;
use sentelite_core::codec;
use sentelite_core::frame::Frame;
use sentelite_hostile_tests::http;
use sentelite_hostile_tests::within;
use sentelite_hostile_tests::ws::{HelloFields, Peer, encode};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::target::Target;

/// Pings per flood: 20 MB on the wire, and as many pong bytes if every one is queued. The
/// floods are bounded by count rather than time, so a slow (debug, loaded) server that
/// queues pongs still reaches the same size; a server that stops reading ends them early.
const PINGS: usize = 160_000;
/// Longest each flood runs.
const FLOOD_FOR: Duration = Duration::from_secs(12);
/// Before the Hello, the handshake timeout ends a flood at the latest.
const HANDSHAKE_TIMEOUT_MS: u64 = 8000;
/// Most the server may grow during the two floods. A server that queues every pong grows by
/// about 30 MiB; one that keeps a single pending pong, or stops reading, barely grows.
const CEILING_MIB: u64 = 8;
/// Pings written per write call.
const BATCH: usize = 8192;

/// One masked WebSocket ping carrying 125 bytes. The all-zero mask leaves the payload as is.
fn ping_frame() -> Vec<u8> {
    let mut frame = vec![0x89, 0x80 | 125, 0, 0, 0, 0];
    frame.extend_from_slice(&[0xA5; 125]);
    frame
}

/// An upgraded connection with a tiny receive buffer, so every pong the server cannot send
/// stays in the server.
async fn upgraded(addr: &str) -> TcpStream {
    let mut stream = http::connect_with_receive_buffer(addr, 4096).await;
    let answer = http::upgrade(&mut stream, None)
        .await
        .expect("upgrade answer");
    assert_eq!(answer.status, 101);
    stream
}

/// Writes pings without reading until [`PINGS`], [`FLOOD_FOR`], or the server stops reading
/// (a write blocked for three seconds) or drops the connection. Returns pings sent.
async fn flood(stream: &mut TcpStream) -> usize {
    let batch: Vec<u8> = ping_frame().repeat(BATCH);
    let started = Instant::now();
    let mut sent = 0;
    while sent < PINGS && started.elapsed() < FLOOD_FOR {
        match tokio::time::timeout(Duration::from_secs(3), stream.write_all(&batch)).await {
            Ok(Ok(())) => sent += BATCH,
            Ok(Err(_)) | Err(_) => break,
        }
    }
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_floods_before_and_after_hello_are_bounded() {
    let target = Target::start(&format!("handshake-timeout-ms = {HANDSHAKE_TIMEOUT_MS}\n")).await;
    let addr = target.addr().to_owned();
    let mut before_hello = upgraded(&addr).await;
    let mut after_hello = upgraded(&addr).await;
    after_hello
        .write_all(&websocket_binary(&encode(
            &HelloFields::new("pinger").frame(),
        )))
        .await
        .expect("send hello");

    let (sent_before, sent_after) = tokio::join!(flood(&mut before_hello), flood(&mut after_hello));

    // Read until the server falls silent, so it works through every ping it took in: the
    // flooding client's Welcome, then one pong per ping. The peak resident set size includes
    // whatever the server queued on the way. Then the connection that never said Hello is
    // read until the server closes it.
    let mut incoming = Peer::over(after_hello).await.ws;
    let draining = async {
        let mut welcomed = false;
        while let Ok(Some(Ok(message))) =
            tokio::time::timeout(Duration::from_secs(2), incoming.next()).await
        {
            if let Message::Binary(bytes) = message {
                welcomed |= matches!(codec::decode(&bytes), Ok(Frame::Welcome(_)));
            }
        }
        welcomed
    };
    let welcomed = within(Duration::from_secs(40), "the pongs to drain", draining).await;
    assert!(welcomed, "the flooding client was not welcomed");
    let attacker = Peer::over(before_hello).await;
    attacker
        .ending(Duration::from_millis(HANDSHAKE_TIMEOUT_MS) + Duration::from_secs(5))
        .await;

    let growth_mib = target.baseline.growth_kib() / 1024;
    eprintln!(
        "ping floods: {sent_before} pings before hello, {sent_after} after, \
         server RSS growth {growth_mib} MiB"
    );
    target
        .baseline
        .assert_growth_below(CEILING_MIB, "ping floods");
    target.assert_survived("ping floods").await;
}

/// One masked binary WebSocket message holding `payload` (shorter than 64 KiB), zero mask.
fn websocket_binary(payload: &[u8]) -> Vec<u8> {
    let mut message = vec![0x82];
    if payload.len() < 126 {
        message.push(0x80 | payload.len() as u8);
    } else {
        message.push(0x80 | 126);
        message.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    message.extend_from_slice(&[0, 0, 0, 0]);
    message.extend_from_slice(payload);
    message
}
