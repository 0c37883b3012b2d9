//! Defect 1: WebSocket control frames must be backpressured like native frames. Peers that
//! flood 125-byte pings and never read must not make the server queue a pong per ping,
//! whether they have said Hello or not.

use std::time::{Duration, Instant};

use sentelite_hostile_tests::http;
use sentelite_hostile_tests::ws::{HelloAnswer, HelloFields, Peer, encode};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::target::Target;

/// Pings per flood: 52 MB on the wire, and as many pong bytes if every one is queued.
const PINGS: usize = 400_000;
/// Longest each flood runs.
const FLOOD_FOR: Duration = Duration::from_secs(6);
/// Most the server may grow during the two floods. A server that queues every pong grows by
/// 13 to 30 MiB in the floods' six seconds (how much depends on how fast it reads); one
/// that keeps a single pending pong, or stops reading, barely grows.
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
/// (a write blocked for a second) or drops the connection. Returns pings sent.
async fn flood(stream: &mut TcpStream) -> usize {
    let batch: Vec<u8> = ping_frame().repeat(BATCH);
    let started = Instant::now();
    let mut sent = 0;
    while sent < PINGS && started.elapsed() < FLOOD_FOR {
        match tokio::time::timeout(Duration::from_secs(1), stream.write_all(&batch)).await {
            Ok(Ok(())) => sent += BATCH,
            Ok(Err(_)) | Err(_) => break,
        }
    }
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_floods_before_and_after_hello_are_bounded() {
    let target = Target::start("handshake-timeout-ms = 7000\n").await;
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
    let growth_mib = target.baseline.growth_kib() / 1024;
    eprintln!(
        "ping floods: {sent_before} pings before hello, {sent_after} after, \
         server RSS growth {growth_mib} MiB"
    );
    target
        .baseline
        .assert_growth_below(CEILING_MIB, "ping floods");

    // Never said Hello: closed by the handshake timeout at the latest.
    let attacker = Peer::over(before_hello).await;
    attacker.ending(Duration::from_secs(10)).await;
    // Said Hello: still served once it reads again (its Welcome is waiting for it).
    let mut pinger = Peer::over(after_hello).await;
    assert!(
        matches!(pinger.hello_answer().await, HelloAnswer::Welcome { .. }),
        "the flooding client was not welcomed"
    );
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
