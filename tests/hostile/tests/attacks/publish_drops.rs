//! A subscriber that never reads must not flood the server's log. Undelivered
//! channel messages are counted and summarised at most once per `drop-report-interval-ms`
//! (default 1 s), and the publisher is told through drop reports (`PublishDropped`, frame
//! kind 15) whose counts, with what the subscriber finally reads, add up to what was sent.
//!
//! The server's own drop counters (`ConnectionInfo::channel_drops`) live in the process and
//! are not visible from outside; the drop reports are their outside view.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::Message;
use futures_util::{SinkExt, StreamExt};
use sentelite_core::codec;
use sentelite_core::frame::{ChannelRef, Frame, Payload, Publish, Request, Status};
use sentelite_hostile_tests::http;
use sentelite_hostile_tests::ws::{HelloAnswer, HelloFields, Peer, encode, end_status, frame_tag};
use sentelite_integration_tests::{ServeProcess, TempDir};
use serde::Deserialize;
use tokio::sync::oneshot;

use crate::target::Target;

/// Publishes in the flood (the figure of the original report: 52 MB of log in 1.3 s).
const PUBLISHES: usize = 300_000;
/// Longest the flood runs.
const FLOOD_FOR: Duration = Duration::from_secs(5);
/// Most log the whole test may produce: the startup lines and a few summaries.
const LOG_CEILING: u64 = 64 * 1024;
/// Wire tag of the publish drop report.
const DROP_REPORT_TAG: u8 = 15;
/// Id of the echo request that marks the end of the flood.
const MARKER: u32 = 1;

/// The body of a drop report, decoded by its wire layout (postcard, after the version and
/// tag bytes) so the suite does not depend on the frame type being in its build of the core.
#[derive(Debug, Deserialize)]
struct DropReport<'a> {
    channel: &'a str,
    dropped: u32,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_subscriber_does_not_flood_the_log_and_drops_are_reported() {
    let log_dir = TempDir::new("hostile-log");
    let log_path = log_dir.path().join("serve.log");
    let log = std::fs::File::create(&log_path).expect("create log file");
    // The stuck subscriber must outlive the test, not be dropped by the write timeout.
    let server = ServeProcess::start_with_config_logging_to("write-timeout-ms = 60000\n", log);
    let target = Target::around(server).await;
    let addr = target.addr().to_owned();

    // The stuck subscriber: a tiny receive buffer, subscribes, then stops reading.
    let mut stream = http::connect_with_receive_buffer(&addr, 4096).await;
    let upgraded = http::upgrade(&mut stream, None)
        .await
        .expect("upgrade answer");
    assert_eq!(upgraded.status, 101);
    let mut stuck = Peer::over(stream).await;
    stuck.send_frame(&HelloFields::new("stuck").frame()).await;
    assert!(matches!(
        stuck.hello_answer().await,
        HelloAnswer::Welcome { .. }
    ));
    stuck
        .send_frame(&Frame::Subscribe(ChannelRef { channel: "flood" }))
        .await;
    let ack = stuck
        .next_frame(Duration::from_secs(5))
        .await
        .expect("subscribe ack");
    assert!(
        matches!(codec::decode(&ack), Ok(Frame::SubscribeAck(a)) if a.subscribed),
        "{:?}",
        codec::decode(&ack)
    );

    // The publisher reads everything the server sends it while it floods the channel.
    let publisher = Peer::welcomed(&addr, &HelloFields::new("publisher")).await;
    let (mut sink, mut incoming) = publisher.ws.split();
    let reports = Arc::new(Mutex::new(Vec::<(String, u32)>::new()));
    let seen = reports.clone();
    let (marker_tx, marker_rx) = oneshot::channel();
    let reader = tokio::spawn(async move {
        let mut marker_tx = Some(marker_tx);
        while let Some(Ok(message)) = incoming.next().await {
            let Message::Binary(bytes) = message else {
                continue;
            };
            if frame_tag(&bytes) == Some(DROP_REPORT_TAG) {
                let report: DropReport<'_> =
                    postcard::from_bytes(&bytes[2..]).expect("drop report body");
                seen.lock()
                    .unwrap()
                    .push((report.channel.to_owned(), report.dropped));
            } else if end_status(&bytes) == Some((MARKER, Status::OK)) {
                let _ = marker_tx.take().map(|tx| tx.send(()));
            }
        }
    });
    let publish = encode(&Frame::Publish(Publish {
        channel: "flood",
        exclude_sender: true,
        payload: Payload::Bytes(&[1]),
    }));
    let started = Instant::now();
    let (mut sent, mut exact) = (0, true);
    while sent < PUBLISHES && started.elapsed() < FLOOD_FOR {
        for _ in 0..1000 {
            let _ = sink.feed(Message::binary(publish.clone())).await;
        }
        if tokio::time::timeout(Duration::from_secs(2), sink.flush())
            .await
            .is_err()
        {
            exact = false;
            break;
        }
        sent += 1000;
    }
    let flood_took = started.elapsed();

    // The server handles a connection's frames in order: once the echo sent after the flood
    // has ended, every publish has been delivered or counted as dropped. The last counts are
    // reported when the open report window closes, one interval later.
    let marker = encode(&Frame::Request(Request {
        id: MARKER,
        event: "sentelite/echo",
        timeout_ms: 0,
        payload: Payload::Empty,
    }));
    sink.send(Message::binary(marker))
        .await
        .expect("send marker");
    tokio::time::timeout(Duration::from_secs(20), marker_rx)
        .await
        .expect("the server to work through the flood")
        .expect("marker seen");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let log_bytes = std::fs::metadata(&log_path).expect("log file").len();
    let reports = reports.lock().unwrap().clone();
    reader.abort();

    // Now the subscriber reads what did reach it.
    let mut delivered = 0usize;
    while let Some(bytes) = stuck.next_frame(Duration::from_secs(1)).await {
        if matches!(codec::decode(&bytes), Ok(Frame::ChannelMsg(_))) {
            delivered += 1;
        }
    }
    let dropped: u64 = reports.iter().map(|(_, n)| u64::from(*n)).sum();
    eprintln!(
        "publish flood: {sent} publishes in {flood_took:?}, {log_bytes} bytes of log, \
         {} drop reports counting {dropped}, {delivered} delivered",
        reports.len()
    );
    assert!(
        log_bytes < LOG_CEILING,
        "{sent} publishes to a stuck subscriber wrote {log_bytes} bytes of log (ceiling {LOG_CEILING})"
    );
    assert!(
        !reports.is_empty(),
        "the publisher got no drop report for {sent} publishes to a stuck subscriber"
    );
    assert!(
        reports
            .iter()
            .all(|(channel, n)| channel == "flood" && *n > 0),
        "{reports:?}"
    );
    if exact {
        assert_eq!(
            dropped as usize + delivered,
            sent,
            "drop reports ({dropped}) and deliveries ({delivered}) do not add up to the publishes"
        );
    }
    target.assert_survived("stuck subscriber").await;
}
