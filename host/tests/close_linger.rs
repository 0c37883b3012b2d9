//! `close-linger-ms` as behaviour: after sending its WebSocket close, the server waits that
//! long for the client's answering close, then drops the socket; it neither drops at once nor
//! waits forever. The client here is a raw socket that upgrades and then never answers.

mod support;

use std::time::{Duration, Instant};

use sentelite_host::ServerSettings;
use support::start;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until `needle` has arrived; returns everything read.
async fn read_until(socket: &mut TcpStream, needle: &[u8]) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.windows(needle.len()).any(|w| w == needle) {
        let n = socket.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before {needle:?}");
        got.extend_from_slice(&buf[..n]);
    }
    got
}

#[tokio::test]
async fn the_server_lingers_for_the_clients_close_then_drops_the_socket() {
    let linger = Duration::from_millis(800);
    let settings = ServerSettings {
        // No Hello comes, so the server closes with HANDSHAKE_TIMEOUT after this.
        handshake_timeout_ms: 200,
        close_linger_ms: linger.as_millis() as u64,
        ..ServerSettings::default()
    };
    let (server, _dir) = start(settings).await;
    let mut socket = TcpStream::connect(server.local_addr()).await.unwrap();
    socket
        .write_all(
            b"GET /ws?dialect=native HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .await
        .unwrap();
    let head = read_until(&mut socket, b"\r\n\r\n").await;
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    let after_head = head.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let mut frames = head[after_head..].to_vec();
    // The server's WebSocket close frame (opcode 8) arrives after the handshake timeout.
    let mut buf = [0u8; 1024];
    let closed_at = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if frames.contains(&0x88) {
                return Instant::now();
            }
            let n = socket.read(&mut buf).await.unwrap();
            assert!(n > 0, "dropped before any close frame");
            frames.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("a close frame within the handshake timeout");
    // We never answer it. The socket must stay open for the linger, then end.
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return Instant::now(),
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("the server drops the socket after the linger");
    let waited = ended - closed_at;
    assert!(
        waited >= linger.mul_f64(0.9),
        "dropped {waited:?} after its close, before the {linger:?} linger"
    );
    server.shutdown().await;
}
