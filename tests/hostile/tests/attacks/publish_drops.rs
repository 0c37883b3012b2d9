//! Defect 5: a subscriber that never reads must not flood the server's log. Undelivered
//! channel messages are counted and summarised at most once per `drop-report-interval-ms`,
//! and the publisher is told through drop reports (frame kind 15).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use sentelite_core::codec;
use sentelite_core::frame::{ChannelRef, Frame, Payload, Publish};
use sentelite_hostile_tests::http;
use sentelite_hostile_tests::ws::{HelloFields, Peer, encode, frame_tag};
use sentelite_integration_tests::{ServeProcess, TempDir};

use async_tungstenite::tungstenite::Message;

use crate::target::Target;

/// Publishes in the flood (the figure of the original report: 52 MB of log in 1.3 s).
const PUBLISHES: usize = 300_000;
/// Longest the flood runs.
const FLOOD_FOR: Duration = Duration::from_secs(5);
/// Most log the whole test may produce: the startup lines and a few summaries.
const LOG_CEILING: u64 = 64 * 1024;
/// Wire tag of the publish drop report.
const DROP_REPORT_TAG: u8 = 15;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_subscriber_does_not_flood_the_log_and_the_publisher_is_told() {
    let log_dir = TempDir::new("hostile-log");
    let log_path = log_dir.path().join("serve.log");
    let log = std::fs::File::create(&log_path).expect("create log file");
    let server = ServeProcess::start_with_config_logging_to("", log);
    let target = Target::around(server).await;
    let addr = target.addr().to_owned();

    // The stuck subscriber: a tiny receive buffer, subscribes, then never reads again.
    let mut stream = http::connect_with_receive_buffer(&addr, 4096).await;
    let upgraded = http::upgrade(&mut stream, None)
        .await
        .expect("upgrade answer");
    assert_eq!(upgraded.status, 101);
    let mut stuck = Peer::over(stream).await;
    stuck.send_frame(&HelloFields::new("stuck").frame()).await;
    assert!(matches!(
        stuck.hello_answer().await,
        sentelite_hostile_tests::ws::HelloAnswer::Welcome { .. }
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
    let reports = Arc::new(Mutex::new(Vec::<Vec<u8>>::new()));
    let seen = reports.clone();
    let reader = tokio::spawn(async move {
        while let Some(Ok(message)) = incoming.next().await {
            if let Message::Binary(bytes) = message
                && frame_tag(&bytes) == Some(DROP_REPORT_TAG)
            {
                seen.lock().unwrap().push(bytes.to_vec());
            }
        }
    });
    let publish = encode(&Frame::Publish(Publish {
        channel: "flood",
        exclude_sender: true,
        payload: Payload::Bytes(&[1]),
    }));
    let started = Instant::now();
    let mut sent = 0;
    while sent < PUBLISHES && started.elapsed() < FLOOD_FOR {
        for _ in 0..1000 {
            let _ = sink.feed(Message::binary(publish.clone())).await;
        }
        if tokio::time::timeout(Duration::from_secs(2), sink.flush())
            .await
            .is_err()
        {
            break;
        }
        sent += 1000;
    }
    let flood_took = started.elapsed();

    // Summaries come at most once per interval (default 1 s): wait for one after the flood.
    let deadline = Instant::now() + Duration::from_secs(3);
    while reports.lock().unwrap().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log_bytes = std::fs::metadata(&log_path).expect("log file").len();
    let report_count = reports.lock().unwrap().len();
    eprintln!(
        "publish flood: {sent} publishes in {flood_took:?}, {log_bytes} bytes of log, \
         {report_count} drop reports"
    );
    assert!(
        log_bytes < LOG_CEILING,
        "{sent} publishes to a stuck subscriber wrote {log_bytes} bytes of log (ceiling {LOG_CEILING})"
    );
    assert!(
        report_count > 0,
        "the publisher got no drop report for {sent} publishes to a stuck subscriber"
    );
    reader.abort();
    drop(stuck);
    target.assert_survived("stuck subscriber").await;
}
