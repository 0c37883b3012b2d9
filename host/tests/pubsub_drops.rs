//! A subscriber that stops reading: the others still get every message, the misses are
//! counted on both sides, the publisher gets rate-limited drop reports, and the log gets a
//! summary line per interval instead of a line per message.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sentelite_core::ClientConfig;
use sentelite_core::frame::{Payload, SubscribeError};
use sentelite_host::{ChannelDrops, ConnectionId, ServerHandle, ServerSettings};
use support::{Got, STEP, TestClient, quick_settings, start};

const CHANNEL: &str = "feed";
const INTERVAL_MS: u64 = 100;
/// Large messages fill the stuck client's socket buffers after a few hundred.
const PAYLOAD_BYTES: usize = 32 * 1024;
/// Publishes per round; the healthy subscriber reads each round before the next, and the
/// connection queue holds a whole round, so it never misses one.
const ROUND: usize = 16;
const MAX_ROUNDS: usize = 100;
/// Bound on the publishing phase.
const PUBLISHING_TIME: Duration = Duration::from_secs(20);
/// Rounds published after the first drop.
const ROUNDS_AFTER_FIRST_DROP: usize = 20;

/// Log output captured in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn settings() -> ServerSettings {
    ServerSettings {
        connection_queue: ROUND * 2,
        drop_report_interval_ms: INTERVAL_MS,
        // The stuck client must stay connected until it reads its backlog.
        write_timeout_ms: 60_000,
        ..quick_settings()
    }
}

fn big_frames(client_id: &str) -> ClientConfig {
    let mut config = ClientConfig::new(client_id).unwrap();
    config.max_frame = 64 * 1024;
    config
}

async fn subscriber(addr: std::net::SocketAddr, name: &str) -> (TestClient, ConnectionId) {
    let (mut client, welcome) = TestClient::handshake(addr, big_frames(name)).await;
    let Got::Welcome { connection_id, .. } = welcome else {
        unreachable!()
    };
    client.subscribe(CHANNEL).await;
    assert_eq!(
        client.next().await,
        Got::SubscribeAck {
            channel: CHANNEL.into(),
            subscribed: true,
            error: SubscribeError::NONE
        }
    );
    (client, connection_id)
}

fn drops(server: &ServerHandle, id: ConnectionId) -> ChannelDrops {
    server
        .connection(id)
        .expect("connection is open")
        .channel_drops
}

/// Reads channel messages until `count` arrived.
async fn read_messages(client: &mut TestClient, count: usize) {
    for i in 0..count {
        match client.next().await {
            Got::ChannelMsg { payload, .. } => {
                assert_eq!(payload.as_payload().len(), PAYLOAD_BYTES, "message {i}")
            }
            other => panic!("expected a channel message, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_stuck_subscriber_is_counted_reported_and_summarised() {
    let log = Captured::default();
    let writer = log.clone();
    let subscriber_guard = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish(),
    );

    let (server, _dir) = start(settings()).await;
    let addr = server.local_addr();
    let handle = server.handle();
    let (mut publisher, publisher_welcome) =
        TestClient::handshake(addr, big_frames("publisher")).await;
    let Got::Welcome {
        connection_id: publisher_id,
        ..
    } = publisher_welcome
    else {
        unreachable!()
    };
    let (mut healthy, healthy_id) = subscriber(addr, "healthy").await;
    // From here on `stuck` is not read until the end.
    let (mut stuck, stuck_id) = subscriber(addr, "stuck").await;

    let payload = vec![7u8; PAYLOAD_BYTES];
    let started = Instant::now();
    let mut published = 0;
    let mut first_drop_round = None;
    for round in 0..MAX_ROUNDS {
        for _ in 0..ROUND {
            publisher
                .publish(CHANNEL, Payload::Bytes(&payload), true)
                .await;
        }
        published += ROUND;
        read_messages(&mut healthy, ROUND).await;
        if first_drop_round.is_none() && drops(&handle, stuck_id).missed > 0 {
            first_drop_round = Some(round);
        }
        if first_drop_round.is_some_and(|first| round >= first + ROUNDS_AFTER_FIRST_DROP)
            || started.elapsed() > PUBLISHING_TIME
        {
            break;
        }
    }
    assert!(
        first_drop_round.is_some(),
        "the stuck subscriber never missed a message in {published} publishes"
    );

    // The healthy subscriber read every message (above) and missed none.
    assert_eq!(drops(&handle, healthy_id), ChannelDrops::default());
    let missed = drops(&handle, stuck_id).missed;
    assert!(missed > 0 && missed < published as u64);
    assert_eq!(
        drops(&handle, publisher_id),
        ChannelDrops {
            missed: 0,
            undelivered: missed
        },
        "every miss is one undelivered message of the publisher"
    );

    // The publisher hears of every miss, in few reports.
    let mut reported = 0u64;
    let mut reports = 0u64;
    while reported < missed {
        match publisher.next().await {
            Got::PublishDropped { channel, dropped } => {
                assert_eq!(channel, CHANNEL);
                assert!(dropped > 0, "no empty reports");
                reported += u64::from(dropped);
                reports += 1;
            }
            other => panic!("expected a drop report, got {other:?}"),
        }
    }
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap();
    assert_eq!(reported, missed, "reports add up to the counters");
    let windows = elapsed_ms / INTERVAL_MS + 2;
    assert!(
        reports <= windows,
        "{reports} reports in {elapsed_ms} ms; at most one per {INTERVAL_MS} ms expected"
    );

    // The stuck subscriber reads its backlog: what it got plus what it missed is everything.
    let received = published - usize::try_from(missed).unwrap();
    tokio::time::timeout(Duration::from_secs(30), read_messages(&mut stuck, received))
        .await
        .expect("backlog read in time");
    assert_eq!(drops(&handle, stuck_id).missed, missed);
    // Nothing else was queued for it: the next message is the one published now.
    publisher
        .publish(CHANNEL, Payload::Bytes(b"end"), true)
        .await;
    match stuck.next().await {
        Got::ChannelMsg { payload, .. } => assert_eq!(payload.as_payload(), Payload::Bytes(b"end")),
        other => panic!("expected the last message, got {other:?}"),
    }

    // The log names the drops but stays small: one line per interval, not one per message.
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap();
    drop(subscriber_guard);
    let text = log.text();
    let lines = text.lines().filter(|l| l.contains("not delivered")).count() as u64;
    assert!(lines >= 1, "drops were not logged at all:\n{text}");
    assert!(
        lines <= elapsed_ms / INTERVAL_MS + 2,
        "{lines} log lines about {missed} drops in {elapsed_ms} ms"
    );
    assert!(text.len() < 64 * 1024, "{} bytes of log", text.len());
    eprintln!(
        "published {published}, stuck missed {missed}, {reports} reports, {lines} log lines, \
         {} log bytes, {elapsed_ms} ms",
        text.len()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_publisher_whose_messages_all_arrive_gets_no_report() {
    let (server, _dir) = start(settings()).await;
    let addr = server.local_addr();
    let mut publisher = TestClient::open(addr, "publisher").await;
    let (mut reader, reader_id) = subscriber(addr, "reader").await;
    for _ in 0..ROUND {
        publisher.publish(CHANNEL, Payload::Bytes(b"x"), true).await;
    }
    for _ in 0..ROUND {
        assert!(matches!(reader.next().await, Got::ChannelMsg { .. }));
    }
    tokio::time::sleep(Duration::from_millis(2 * INTERVAL_MS)).await;
    // A report would have arrived before this answer.
    publisher.subscribe("other").await;
    assert!(matches!(
        tokio::time::timeout(STEP, publisher.next()).await.unwrap(),
        Got::SubscribeAck { .. }
    ));
    assert_eq!(
        server.handle().connection(reader_id).unwrap().channel_drops,
        ChannelDrops::default()
    );
    server.shutdown().await;
}
