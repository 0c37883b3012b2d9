//! Defects 6 and 9: events are bounded too. A flood of one-way events nobody handles is
//! counted and logged at a bounded rate, not once per event; it costs no memory that grows
//! with the flood; and the server stays responsive.
//!
//! The unhandled-event counter lives in the process (`ConnectionInfo`) and is not visible
//! from outside; the log volume is.

use std::time::{Duration, Instant};

use sentelite_core::frame::{Event, Frame, Payload, Request, Status};
use sentelite_hostile_tests::ws::{HelloFields, Peer, encode, end_status};
use sentelite_integration_tests::{ServeProcess, TempDir};

use crate::target::Target;

/// Events in the flood.
const EVENTS: usize = 100_000;
/// Longest the flood runs.
const FLOOD_FOR: Duration = Duration::from_secs(3);
/// Most log the whole test may produce.
const LOG_CEILING: u64 = 64 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unhandled_event_flood_is_counted_not_logged_per_event() {
    let log_dir = TempDir::new("hostile-events-log");
    let log_path = log_dir.path().join("serve.log");
    let log = std::fs::File::create(&log_path).expect("create log file");
    let server = ServeProcess::start_with_config_logging_to("", log);
    let target = Target::around(server).await;
    let mut peer = Peer::welcomed(target.addr(), &HelloFields::new("event-flood")).await;
    let event = encode(&Frame::Event(Event {
        event: "nobody/listens",
        payload: Payload::Bytes(&[0u8; 64]),
    }));
    let started = Instant::now();
    let mut sent = 0;
    while sent < EVENTS && started.elapsed() < FLOOD_FOR {
        for _ in 0..1000 {
            assert!(peer.feed_bytes(event.clone()).await, "connection lost");
        }
        assert!(peer.flush().await, "connection lost");
        sent += 1000;
    }
    // Frames are handled in order: the echo's End means every event has been seen.
    peer.send_frame(&Frame::Request(Request {
        id: 1,
        event: "sentelite/echo",
        timeout_ms: 0,
        payload: Payload::Empty,
    }))
    .await;
    let mut ended = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    while ended.is_none() && Instant::now() < deadline {
        let Some(bytes) = peer.next_frame(Duration::from_secs(5)).await else {
            break;
        };
        ended = end_status(&bytes).filter(|(id, _)| *id == 1);
    }
    assert_eq!(ended, Some((1, Status::OK)), "connection stopped answering");
    let log_bytes = std::fs::metadata(&log_path).expect("log file").len();
    eprintln!(
        "event flood: {sent} events in {:?}, {log_bytes} bytes of log",
        started.elapsed()
    );
    assert!(
        log_bytes < LOG_CEILING,
        "{sent} unhandled events wrote {log_bytes} bytes of log (ceiling {LOG_CEILING})"
    );
    target.assert_survived("unhandled event flood").await;
}
