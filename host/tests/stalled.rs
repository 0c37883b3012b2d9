//! A client that stops reading: once the socket stops taking the server's writes for
//! `write-timeout-ms`, the server gives the connection up instead of waiting forever, and
//! the connection's end is reported. Loopback only; the pushing loop is bounded in count and
//! time.

mod support;

use std::time::{Duration, Instant};

use sentelite_core::frame::PayloadBuf;
use sentelite_host::{LifecycleEvent, ServerSettings};
use support::{TestClient, start};

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_after_the_write_timeout() {
    let settings = ServerSettings {
        write_timeout_ms: 400,
        close_linger_ms: 200,
        // Heartbeats must not be what ends it.
        heartbeat_interval_ms: 60_000,
        heartbeat_timeout_ms: 120_000,
        connection_queue: 8,
        ..ServerSettings::default()
    };
    let (server, _dir) = start(settings).await;
    let mut lifecycle = server.lifecycle();
    let handle = server.handle();
    // Handshakes, then never reads again.
    let client = TestClient::open(server.local_addr(), "dev-stalled").await;
    let conn = handle.connections()[0].connection_id;

    // Push 3 KiB events (the client takes 4 KiB frames) until the kernel buffers are full
    // and the queue refuses; at most 40 000 events (120 MiB) or 20 s, whichever is first.
    let payload = PayloadBuf::Bytes(vec![0x5a; 3 * 1024]);
    let started = Instant::now();
    let mut pushed = 0usize;
    let mut refused_since = None;
    let closed = loop {
        assert!(
            started.elapsed() < Duration::from_secs(20) && pushed < 40_000,
            "still connected after {pushed} pushes in {:?}",
            started.elapsed()
        );
        match lifecycle.try_recv() {
            Ok(LifecycleEvent::Closed { connection_id, .. }) if connection_id == conn => {
                break Instant::now();
            }
            _ => {}
        }
        match handle.send_to_connection(conn, "test/flood", payload.clone()) {
            Ok(()) => {
                pushed += 1;
                refused_since = None;
            }
            Err(e) => {
                assert!(pushed > 0, "the first push failed: {e}");
                refused_since.get_or_insert_with(Instant::now);
            }
        }
        tokio::task::yield_now().await;
        if refused_since.is_some() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    // The writes stalled for at least the timeout before the server gave up, and it did not
    // wait much longer than timeout plus linger.
    let stalled_at = refused_since.expect("the queue filled up before the connection ended");
    let waited = closed - stalled_at;
    assert!(
        waited < Duration::from_millis(400 + 200 + 2000),
        "gave up {waited:?} after the queue filled"
    );
    assert!(
        pushed >= 8,
        "{pushed} pushes: the flood never reached the socket"
    );
    assert!(handle.connection(conn).is_none(), "connection forgotten");
    drop(client);
    server.shutdown().await;
}
