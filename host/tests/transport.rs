//! The transport layer under slow and hostile peers: heartbeats while the server holds back
//! reading, WebSocket control-frame floods, time limits and slot limits before the upgrade,
//! and the `Origin` check. Loopback only; every loop is bounded in count and time.

mod support;

use std::time::Duration;

use sentelite_core::frame::{Payload, PayloadBuf};
use sentelite_core::{State, Status};
use sentelite_host::{LifecycleEvent, ReplyItem, RequestOutcome, ServerSettings};
use support::{Got, STEP, TestClient, quick_settings, start};

/// A server→client request whose consumer does not read for several heartbeat timeouts
/// while the client streams more parts than the stream buffers. The server stops reading
/// (backpressure) but must neither blame the client for the silence nor fall silent itself;
/// once the consumer reads, every part arrives.
#[tokio::test]
async fn a_stalled_reply_stream_does_not_cost_the_client_its_heartbeat() {
    let settings = ServerSettings {
        heartbeat_interval_ms: 150,
        heartbeat_timeout_ms: 450,
        ..quick_settings()
    };
    let (server, _dir) = start(settings).await;
    let mut lifecycle = server.lifecycle();
    let mut client = TestClient::open(server.local_addr(), "streamer").await;
    let conn = client.session.connection_id();
    let mut stream = server
        .handle()
        .request(conn, "device/stream", PayloadBuf::Empty, None)
        .await
        .unwrap();
    let Got::Request { id, .. } = client.next().await else {
        panic!("expected a request")
    };
    let parts = 300u32;
    for seq in 0..parts {
        client
            .reply(id, seq, Payload::Bytes(&seq.to_be_bytes()))
            .await;
    }
    client.end(id, Status::OK, Payload::Empty).await;

    // Nobody reads the stream for more than four heartbeat timeouts.
    let seen = client.run_for(Duration::from_millis(2000)).await;
    assert!(
        seen.is_empty(),
        "the client saw {seen:?} while the server held back reading"
    );
    assert_eq!(client.session.state(), State::Open, "client gave up");
    while let Ok(event) = lifecycle.try_recv() {
        assert!(
            !matches!(event, LifecycleEvent::Closed { .. }),
            "server closed the connection: {event:?}"
        );
    }

    for seq in 0..parts {
        let item = tokio::time::timeout(STEP, stream.next()).await.unwrap();
        assert_eq!(
            item,
            Some(ReplyItem::Part {
                seq,
                payload: PayloadBuf::Bytes(seq.to_be_bytes().to_vec()),
            })
        );
    }
    assert!(matches!(
        tokio::time::timeout(STEP, stream.next()).await.unwrap(),
        Some(ReplyItem::End(RequestOutcome::Completed {
            status: Status::OK,
            ..
        }))
    ));
    // Reading resumed: the connection is still healthy afterwards.
    let seen = client.run_for(Duration::from_millis(600)).await;
    assert!(seen.is_empty(), "unexpected {seen:?}");
    assert_eq!(client.session.state(), State::Open);
    assert_eq!(server.handle().connection_count(), 1);
    server.shutdown().await;
}
