//! Scenarios written once against the client API; `tests/tokio_client.rs` and
//! `tests/smol_client.rs` run each of them on their runtime against a real `sentelite serve`.

use std::time::Duration;

use futures_lite::FutureExt;
use sentelite_driver::{
    Client, ClientError, ClientEvent, ClientOptions, CloseCode, Initiator, PayloadBuf,
    RequestOutcome, Status,
};

use crate::wait::{event_matching, no_event_matching, within};

/// How a runtime adapter starts a client (`sentelite_tokio::connect`, `sentelite_smol::connect`).
pub type Connect = fn(ClientOptions) -> Result<Client, ClientError>;

const STEP: Duration = Duration::from_secs(10);

/// Options for tests: quick reconnects so recovery is seen within seconds.
pub fn options(url: &str, client_id: &str) -> ClientOptions {
    let mut options = ClientOptions::new(url, client_id);
    options.backoff_initial = Duration::from_millis(100);
    options.backoff_max = Duration::from_millis(400);
    options
}

/// Starts a client and waits for its first Opened event; returns the client and its uid.
pub async fn open_client(connect: Connect, url: &str, client_id: &str) -> (Client, String) {
    let client = connect(options(url, client_id)).expect("start client");
    let events = client.events();
    let opened = event_matching(&events, STEP, "the handshake", |e| {
        matches!(e, ClientEvent::Opened { .. })
    })
    .await;
    let ClientEvent::Opened { uid, .. } = opened else {
        unreachable!()
    };
    (client, uid)
}

/// Handshake, then a 5000-byte `sentelite/echo` comes back as five parts that reassemble.
pub async fn handshake_and_streamed_echo(connect: Connect, url: &str) {
    let (client, uid) = open_client(connect, url, "echo-client").await;
    assert!(uid.starts_with("conn-"), "server-assigned uid, got {uid}");
    assert!(client.is_open());
    let sent: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let mut response = client
        .request("sentelite/echo", PayloadBuf::Bytes(sent.clone()), STEP)
        .await
        .expect("request accepted");
    let mut parts = Vec::new();
    while let Some(part) = within(STEP, "an echo part", response.next_part()).await {
        parts.push(part);
    }
    assert_eq!(parts.len(), 5, "1024-byte parts");
    let joined: Vec<u8> = parts
        .into_iter()
        .flat_map(|p| match p {
            PayloadBuf::Bytes(b) => b,
            other => panic!("echo part of the wrong kind: {other:?}"),
        })
        .collect();
    assert_eq!(joined, sent);
    assert!(matches!(
        response.outcome(),
        Some(RequestOutcome::Completed {
            status: Status::OK,
            ..
        })
    ));
    let unknown = client
        .request("no/such-request", PayloadBuf::Empty, STEP)
        .await
        .expect("request accepted")
        .finish()
        .await;
    assert!(matches!(
        unknown,
        RequestOutcome::Completed {
            status: Status::UNSUPPORTED,
            ..
        }
    ));
    let stats = client.stats();
    assert!(
        stats.handshakes >= 1 && stats.frames_received >= 7,
        "{stats:?}"
    );
    client.close().await;
}

/// Settings that open the relay for the `test/*` events the relay scenario uses (the relay is
/// off by default).
pub const RELAY_CONFIG: &str = "relay-enabled = true\nrelay-events = [\"test/*\"]\n";

/// Client A asks the server to relay a request to client B: the server makes a request of B
/// (server→client), B streams three parts, and they flow back to A (client→server).
pub async fn relay_streams_both_ways(connect_a: Connect, connect_b: Connect, url: &str) {
    // Only clients announcing the relay-target capability receive relayed requests.
    let mut target_options = options(url, "relay-target");
    target_options.capabilities = sentelite_driver::capability::RELAY_TARGET;
    let responder = connect_b(target_options).expect("start client");
    event_matching(&responder.events(), STEP, "the handshake", |e| {
        matches!(e, ClientEvent::Opened { .. })
    })
    .await;
    let (asker, _) = open_client(connect_a, url, "relay-asker").await;
    let target_events = responder.events();
    let answer = async {
        let event = event_matching(&target_events, STEP, "the relayed request", |e| {
            matches!(e, ClientEvent::Request(_))
        })
        .await;
        let ClientEvent::Request(mut request) = event else {
            unreachable!()
        };
        assert_eq!(request.event, "test/count");
        assert_eq!(request.payload, PayloadBuf::Json(r#"{"upto":3}"#.into()));
        for n in 0..3 {
            request
                .part(PayloadBuf::Json(format!(r#"{{"n":{n}}}"#)))
                .await
                .expect("part");
        }
        request
            .end(Status::OK, PayloadBuf::Json(r#""counted""#.into()))
            .await
            .expect("end");
        std::future::pending::<Vec<PayloadBuf>>().await
    };
    let ask = async {
        let body = r#"{"client-id":"relay-target","event":"test/count","timeout-ms":5000,"data":{"upto":3}}"#;
        let mut response = asker
            .request("sentelite/relay", PayloadBuf::Json(body.into()), STEP)
            .await
            .expect("relay accepted");
        let mut parts = Vec::new();
        while let Some(part) = response.next_part().await {
            parts.push(part);
        }
        assert_eq!(
            response.outcome(),
            Some(&RequestOutcome::Completed {
                status: Status::OK,
                payload: PayloadBuf::Json(r#""counted""#.into())
            })
        );
        parts
    };
    let parts = within(STEP, "the relayed reply", ask.or(answer)).await;
    let expected: Vec<_> = (0..3)
        .map(|n| PayloadBuf::Json(format!(r#"{{"n":{n}}}"#)))
        .collect();
    assert_eq!(parts, expected);

    // A relay to a client that is not connected ends with an error, not a hang.
    let missing = asker
        .request(
            "sentelite/relay",
            PayloadBuf::Json(r#"{"client-id":"nobody","event":"x/y"}"#.into()),
            STEP,
        )
        .await
        .expect("relay accepted")
        .finish()
        .await;
    assert!(matches!(
        missing,
        RequestOutcome::Completed {
            status: Status::ERROR,
            ..
        }
    ));
    asker.close().await;
    responder.close().await;
}

/// Three clients on one channel: a publish with exclude-sender reaches the other two only.
pub async fn pubsub_with_exclude_sender(connect: Connect, url: &str) {
    let mut clients = Vec::new();
    for name in ["pub-a", "pub-b", "pub-c"] {
        let (client, uid) = open_client(connect, url, name).await;
        let events = client.events();
        client.subscribe("c1").await.expect("subscribe");
        event_matching(&events, STEP, "the subscribe answer", |e| {
            matches!(e, ClientEvent::SubscribeResult { channel, subscribed: true, .. } if channel == "c1")
        })
        .await;
        clients.push((client, events, uid));
    }
    let (a, a_events, a_uid) = &clients[0];
    a.publish("c1", PayloadBuf::Json(r#"{"n":1}"#.into()), true)
        .await
        .expect("publish");
    for (_, events, _) in &clients[1..] {
        let got = event_matching(events, STEP, "the channel message", |e| {
            matches!(e, ClientEvent::ChannelMessage { .. })
        })
        .await;
        let ClientEvent::ChannelMessage {
            channel,
            from,
            payload,
        } = got
        else {
            unreachable!()
        };
        assert_eq!(channel, "c1");
        assert_eq!(&from, a_uid);
        assert_eq!(payload, PayloadBuf::Json(r#"{"n":1}"#.into()));
    }
    // The sender sees its second (not excluded) message first: the first never came back.
    a.publish("c1", PayloadBuf::Json(r#"{"n":2}"#.into()), false)
        .await
        .expect("publish");
    let first = event_matching(a_events, STEP, "own message", |e| {
        matches!(e, ClientEvent::ChannelMessage { .. })
    })
    .await;
    assert!(
        matches!(&first, ClientEvent::ChannelMessage { payload, .. } if *payload == PayloadBuf::Json(r#"{"n":2}"#.into())),
        "sender got {first:?}"
    );
    // After unsubscribing, c stops receiving.
    let (c, c_events, _) = &clients[2];
    c.unsubscribe("c1").await.expect("unsubscribe");
    event_matching(c_events, STEP, "the unsubscribe answer", |e| {
        matches!(
            e,
            ClientEvent::SubscribeResult {
                subscribed: false,
                ..
            }
        )
    })
    .await;
    // Drain the n=2 message c may still hold, then check nothing else arrives.
    a.publish("c1", PayloadBuf::Json(r#"{"n":3}"#.into()), false)
        .await
        .expect("publish");
    no_event_matching(
        c_events,
        Duration::from_millis(500),
        "message after unsubscribe",
        |e| matches!(e, ClientEvent::ChannelMessage { payload, .. } if *payload == PayloadBuf::Json(r#"{"n":3}"#.into())),
    )
    .await;
    for (client, _, _) in &clients {
        client.close().await;
    }
}

/// A server that stops answering (SIGSTOP) is declared dead by the client's heartbeat; once it
/// runs again (SIGCONT) the client reconnects on its own.
pub async fn stalled_server_detected_then_reconnect(
    connect: Connect,
    server: &crate::ServeProcess,
) {
    let (client, _) = open_client(connect, &server.ws_url, "stall-watcher").await;
    let events = client.events();
    let started = std::time::Instant::now();
    server.signal("STOP");
    let closed = event_matching(&events, STEP, "heartbeat timeout", |e| {
        matches!(e, ClientEvent::Closed { .. })
    })
    .await;
    server.signal("CONT");
    let ClientEvent::Closed {
        code, initiator, ..
    } = closed
    else {
        unreachable!()
    };
    assert_eq!(code, CloseCode::HEARTBEAT_TIMEOUT);
    assert_eq!(initiator, Initiator::Local);
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "declared dead before the 600 ms timeout could pass: {:?}",
        started.elapsed()
    );
    event_matching(&events, STEP, "the reconnect", |e| {
        matches!(e, ClientEvent::Opened { .. })
    })
    .await;
    assert!(client.stats().reconnects >= 1);
    client.close().await;
}

/// Oversize, malformed and wrong-version frames each get their typed close, while a client
/// on the same server keeps working.
pub async fn bad_frames_get_typed_closes(connect: Connect, server: &crate::ServeProcess) {
    use crate::raw::RawPeer;
    let (bystander, _) = open_client(connect, &server.ws_url, "bystander").await;

    let mut oversize = RawPeer::handshake(&server.addr, "raw-oversize").await;
    let mut big = vec![0u8; oversize.server_max_frame + 100];
    big[0] = sentelite_core::frame::PROTOCOL_VERSION;
    oversize.send_raw(big).await;
    let ending = oversize.ending().await;
    assert_eq!(
        ending.websocket_code,
        Some(CloseCode::FRAME_TOO_LARGE.websocket_code()),
        "{ending:?}"
    );

    let mut malformed = RawPeer::handshake(&server.addr, "raw-malformed").await;
    malformed.send_raw(vec![1, 200, 7]).await;
    let ending = malformed.ending().await;
    assert_eq!(
        ending.frame_code,
        Some(CloseCode::PROTOCOL_ERROR),
        "{ending:?}"
    );
    assert_eq!(
        ending.websocket_code,
        Some(CloseCode::PROTOCOL_ERROR.websocket_code())
    );

    let mut future_version = RawPeer::handshake(&server.addr, "raw-version").await;
    future_version.send_raw(vec![9, 2, 0]).await;
    let ending = future_version.ending().await;
    assert_eq!(
        ending.frame_code,
        Some(CloseCode::UNSUPPORTED_VERSION),
        "{ending:?}"
    );

    let outcome = bystander
        .request("sentelite/echo", PayloadBuf::Bytes(vec![7; 10]), STEP)
        .await
        .expect("bystander still connected")
        .finish()
        .await;
    assert!(matches!(
        outcome,
        RequestOutcome::Completed {
            status: Status::OK,
            ..
        }
    ));
    assert_eq!(bystander.stats().reconnects, 0, "bystander never dropped");
    bystander.close().await;
}

/// Ctrl-C on the server closes every client with `going-away` and the process exits 0.
pub async fn interrupt_closes_clients_going_away(connect: Connect, server: crate::ServeProcess) {
    let (client, _) = open_client(connect, &server.ws_url, "shutdown-watcher").await;
    let events = client.events();
    let status = std::thread::spawn(move || server.interrupt());
    let closed = event_matching(&events, STEP, "the going-away close", |e| {
        matches!(e, ClientEvent::Closed { .. })
    })
    .await;
    assert!(
        matches!(
            closed,
            ClientEvent::Closed {
                code: CloseCode::GOING_AWAY,
                initiator: Initiator::Peer,
                ..
            }
        ),
        "{closed:?}"
    );
    let status = status.join().expect("interrupt thread");
    assert!(status.success(), "sentelite serve exited with {status}");
    client.close().await;
}
