//! Defect 1: WebSocket control frames must be backpressured like native frames. A peer that
//! floods 125-byte pings before its Hello and never reads must not make the server queue a
//! pong per ping.

use std::time::{Duration, Instant};

use sentelite_hostile_tests::http;
use sentelite_hostile_tests::ws::Peer;
use tokio::io::AsyncWriteExt;

use crate::target::{RSS_CEILING_MIB, Target};

/// Pings in the flood: 52 MB on the wire, and as many pong bytes if every one is queued.
const PINGS: usize = 400_000;
/// Longest the flood runs.
const FLOOD_FOR: Duration = Duration::from_secs(5);

/// One masked WebSocket ping carrying 125 bytes. The all-zero mask leaves the payload as is.
fn ping_frame() -> Vec<u8> {
    let mut frame = vec![0x89, 0x80 | 125, 0, 0, 0, 0];
    frame.extend_from_slice(&[0xA5; 125]);
    frame
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_flood_before_hello_is_bounded_and_closed() {
    let target = Target::start("handshake-timeout-ms = 6000\n").await;
    let mut stream = http::connect(target.addr()).await;
    let answer = http::upgrade(&mut stream, None)
        .await
        .expect("upgrade answer");
    assert_eq!(answer.status, 101);

    let batch: Vec<u8> = ping_frame().repeat(8192);
    let started = Instant::now();
    let mut sent = 0usize;
    let mut blocked = false;
    while sent < PINGS && started.elapsed() < FLOOD_FOR {
        // A server that stops reading while its pongs are unread blocks this write.
        match tokio::time::timeout(Duration::from_secs(1), stream.write_all(&batch)).await {
            Ok(Ok(())) => sent += 8192,
            Ok(Err(_)) => break,
            Err(_) => {
                blocked = true;
                break;
            }
        }
    }
    let growth_mib = target.baseline.growth_kib() / 1024;
    eprintln!(
        "ping flood: {sent} pings in {:?}, writes blocked: {blocked}, server RSS growth {growth_mib} MiB",
        started.elapsed()
    );
    target
        .baseline
        .assert_growth_below(RSS_CEILING_MIB, "ping flood before hello");

    // Never said Hello: closed by the handshake timeout at the latest.
    let attacker = Peer::over(stream).await;
    attacker.ending(Duration::from_secs(10)).await;
    target.assert_survived("ping flood before hello").await;
}
