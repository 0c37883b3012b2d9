//! End-to-end scenarios, written once against the client API and run on every runtime by
//! passing that runtime adapter's `connect`.

use std::time::Duration;

use sentelite_core::ServerConfig;
use sentelite_driver::{
    Client, ClientError, ClientEvent, ClientOptions, CloseCode, Events, Initiator, PayloadBuf,
    RequestOutcome, Status,
};

use super::{Observed, STEP, TestServer, options, wait_for, within};

/// A runtime adapter's `connect`.
pub type Connect = fn(ClientOptions) -> Result<Client, ClientError>;

pub fn bytes(b: &[u8]) -> PayloadBuf {
    PayloadBuf::Bytes(b.to_vec())
}

pub async fn opened(client: &Client) -> (String, u64) {
    wait_for(&client.events(), "open", |event| match event {
        ClientEvent::Opened { uid, connection_id } => Some((uid, connection_id)),
        _ => None,
    })
    .await
}

/// Waits for the next `Closed` event: its code and who ended the connection.
pub async fn closed(events: &Events, what: &str) -> (CloseCode, Initiator) {
    wait_for(events, what, |event| match event {
        ClientEvent::Closed {
            code, initiator, ..
        } => Some((code, initiator)),
        _ => None,
    })
    .await
}

/// A `test/stream` request of one part is answered in full: the connection carries traffic.
pub async fn request_completes(client: &Client) {
    let response = client
        .request("test/stream", bytes(&[1]), STEP)
        .await
        .expect("request");
    assert_eq!(
        within("request end", response.finish()).await,
        RequestOutcome::Completed {
            status: Status::OK,
            payload: bytes(b"done")
        }
    );
}

/// Handshake, a one-way event, and a request answered in three parts and an end.
pub async fn handshake_and_streamed_request(connect: Connect) {
    let server = TestServer::start(ServerConfig::default());
    let client = connect(options(&server)).expect("valid options");
    let (uid, connection_id) = opened(&client).await;
    assert_eq!((uid.as_str(), connection_id), ("user-dev-test", 1));
    assert!(client.is_open());
    let hello = server
        .expect("hello", |seen| match seen {
            Observed::Hello { client_id, .. } => Some(client_id),
            _ => None,
        })
        .await;
    assert_eq!(hello, "dev-test");

    client.send("test/note", bytes(b"x")).await.expect("send");
    server
        .expect("event", |seen| {
            (seen
                == Observed::Event {
                    connection_id: 1,
                    event: "test/note".into(),
                })
            .then_some(())
        })
        .await;

    let mut response = client
        .request("test/stream", bytes(&[3]), STEP)
        .await
        .expect("request");
    let mut parts = Vec::new();
    while let Some(part) = within("part", response.next_part()).await {
        parts.push(part);
    }
    assert_eq!(parts, vec![bytes(&[0]), bytes(&[1]), bytes(&[2])]);
    assert_eq!(
        response.outcome(),
        Some(&RequestOutcome::Completed {
            status: Status::OK,
            payload: bytes(b"done")
        })
    );
    // Ended exactly once: asking again changes nothing.
    assert_eq!(within("part", response.next_part()).await, None);

    let stats = client.stats();
    assert_eq!(stats.handshakes, 1);
    assert!(stats.frames_sent >= 3, "hello, event, request: {stats:?}");
    assert!(
        stats.frames_received >= 5,
        "welcome, 3 parts, end: {stats:?}"
    );
    within("close", client.close()).await;
}

/// The server asks the client; the client streams its answer back. A request the
/// application drops unanswered still ends, with an error status.
pub async fn server_initiated_request(connect: Connect) {
    let server = TestServer::start(ServerConfig::default());
    let client = connect(options(&server)).expect("valid options");
    let events = client.events();
    opened(&client).await;

    client
        .send("test/ask", bytes(b"ping-1"))
        .await
        .expect("send");
    let mut request = wait_for(&events, "server request", |event| match event {
        ClientEvent::Request(request) => Some(request),
        _ => None,
    })
    .await;
    assert_eq!(request.event, "device/ping");
    assert_eq!(request.payload, bytes(b"ping-1"));
    assert_eq!(request.timeout(), Some(Duration::from_secs(5)));
    request.part(bytes(b"part-0")).await.expect("part");
    let payload = request.payload.clone();
    request.end(Status::OK, payload).await.expect("end");
    let reply = server
        .expect("client reply", |seen| match seen {
            Observed::ClientReply { seq, payload } => Some((seq, payload)),
            _ => None,
        })
        .await;
    assert_eq!(reply, (0, bytes(b"part-0")));
    let end = server
        .expect("client end", |seen| match seen {
            Observed::ClientEnd { status, payload } => Some((status, payload)),
            _ => None,
        })
        .await;
    assert_eq!(end, (Status::OK, bytes(b"ping-1")));

    client
        .send("test/ask", bytes(b"ping-2"))
        .await
        .expect("send");
    let dropped = wait_for(&events, "second server request", |event| match event {
        ClientEvent::Request(request) => Some(request),
        _ => None,
    })
    .await;
    drop(dropped);
    let end = server
        .expect("end of the dropped request", |seen| match seen {
            Observed::ClientEnd { status, .. } => Some(status),
            _ => None,
        })
        .await;
    assert_eq!(end, Status::ERROR);
    within("close", client.close()).await;
}

/// The server stops answering: the client's heartbeat declares it dead, the request in
/// flight ends `Closed`, and the client reconnects on its own.
pub async fn silent_server_is_detected_and_client_reconnects(connect: Connect) {
    let server = TestServer::start_fast_heartbeat();
    let client = connect(options(&server)).expect("valid options");
    let events = client.events();
    opened(&client).await;

    let pending = client
        .request("test/never", PayloadBuf::Empty, Duration::from_secs(30))
        .await
        .expect("request");
    client
        .send("test/go-silent", PayloadBuf::Empty)
        .await
        .expect("send");
    let (code, initiator) = closed(&events, "heartbeat timeout").await;
    assert_eq!(
        (code, initiator),
        (CloseCode::HEARTBEAT_TIMEOUT, Initiator::Local)
    );
    assert_eq!(
        within("request end", pending.finish()).await,
        RequestOutcome::Closed
    );

    let attempt = wait_for(&events, "reconnect", |event| match event {
        ClientEvent::ReconnectScheduled { attempt, delay } => {
            // The handshake succeeded before, so the backoff starts over: the first delay
            // is drawn from [initial / 2, initial] = [25, 50] ms, far below the 200 ms cap.
            assert!(
                (Duration::from_millis(25)..=Duration::from_millis(50)).contains(&delay),
                "delay {delay:?}"
            );
            Some(attempt)
        }
        _ => None,
    })
    .await;
    assert_eq!(attempt, 1);
    let (_, connection_id) = opened(&client).await;
    assert_eq!(connection_id, 2);
    let stats = client.stats();
    assert_eq!((stats.handshakes, stats.reconnects), (2, 1));

    // The new connection carries requests again.
    request_completes(&client).await;
    within("close", client.close()).await;
}

/// `close()` sends a Close frame, ends the connection and never reconnects.
pub async fn close_does_not_reconnect(connect: Connect) {
    let server = TestServer::start(ServerConfig::default());
    let client = connect(options(&server)).expect("valid options");
    let events = client.events();
    opened(&client).await;

    within("close", client.close()).await;
    assert!(!client.is_open());
    let mut rest = Vec::new();
    while let Some(event) = within("events end", events.recv()).await {
        rest.push(event);
    }
    assert!(
        matches!(
            rest.as_slice(),
            [ClientEvent::Closed {
                code: CloseCode::NORMAL,
                initiator: Initiator::Local,
                ..
            }]
        ),
        "{rest:?}"
    );
    server
        .expect("close frame", |seen| {
            (seen
                == Observed::ClientClose {
                    code: CloseCode::NORMAL,
                })
            .then_some(())
        })
        .await;
    server
        .expect("disconnect", |seen| {
            (seen == Observed::Gone { connection_id: 1 }).then_some(())
        })
        .await;
    assert_eq!(
        client.send("test/note", PayloadBuf::Empty).await,
        Err(ClientError::Closed)
    );
}

/// With no server, sends are refused with a typed error and reconnects are scheduled.
pub async fn sends_while_disconnected_are_refused(connect: Connect) {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let mut options = ClientOptions::new(format!("ws://127.0.0.1:{port}/"), "dev-test");
    options.backoff_initial = Duration::from_millis(50);
    options.backoff_max = Duration::from_millis(100);
    let client = connect(options).expect("valid options");
    let events = client.events();
    let reason = wait_for(&events, "connect failure", |event| match event {
        ClientEvent::ConnectFailed { reason } => Some(reason),
        _ => None,
    })
    .await;
    assert!(reason.contains(&port.to_string()), "{reason}");
    wait_for(&events, "reconnect", |event| {
        matches!(event, ClientEvent::ReconnectScheduled { .. }).then_some(())
    })
    .await;
    assert!(!client.is_open());
    assert_eq!(
        client.send("test/note", PayloadBuf::Empty).await,
        Err(ClientError::NotConnected)
    );
    assert!(matches!(
        client.request("test/stream", PayloadBuf::Empty, STEP).await,
        Err(ClientError::NotConnected)
    ));
    // Wanting a channel works offline: it is subscribed once a connection opens.
    assert_eq!(client.subscribe("news").await, Ok(()));
    assert_eq!(client.subscribe("").await, Err(ClientError::InvalidChannel));
    within("close", client.close()).await;
}

/// Our deadline and our cancel each end a request exactly once.
pub async fn request_timeout_and_cancel(connect: Connect) {
    let server = TestServer::start(ServerConfig::default());
    let client = connect(options(&server)).expect("valid options");
    opened(&client).await;

    let response = client
        .request("test/never", PayloadBuf::Empty, Duration::from_millis(150))
        .await
        .expect("request");
    assert_eq!(
        within("timeout", response.finish()).await,
        RequestOutcome::TimedOut
    );

    let mut response = client
        .request("test/never", PayloadBuf::Empty, STEP)
        .await
        .expect("request");
    let id = response.id();
    response.cancel();
    assert_eq!(within("cancel", response.next_part()).await, None);
    assert_eq!(response.outcome(), Some(&RequestOutcome::Cancelled));
    let cancelled = server
        .expect("cancel frame", |seen| match seen {
            Observed::Cancel { id } => Some(id),
            _ => None,
        })
        .await;
    assert_eq!(cancelled, id);
    assert!(client.is_open(), "a cancel does not disturb the connection");
    within("close", client.close()).await;
}

/// The server closes with a reason; the client reports it and reconnects.
pub async fn server_close_is_reported_and_followed_by_reconnect(connect: Connect) {
    let server = TestServer::start(ServerConfig::default());
    let client = connect(options(&server)).expect("valid options");
    let events = client.events();
    opened(&client).await;

    client
        .send("test/bye", PayloadBuf::Empty)
        .await
        .expect("send");
    let closed = wait_for(&events, "peer close", |event| match event {
        ClientEvent::Closed {
            code,
            reason,
            initiator,
        } => Some((code, reason, initiator)),
        _ => None,
    })
    .await;
    assert_eq!(
        closed,
        (
            CloseCode::GOING_AWAY,
            "server restarting".to_owned(),
            Initiator::Peer
        )
    );
    let (_, connection_id) = opened(&client).await;
    assert_eq!(connection_id, 2);
    within("close", client.close()).await;
}

/// Subscribing and publishing round-trip through the server.
pub async fn subscribe_and_publish(connect: Connect) {
    let server = TestServer::start(ServerConfig::default());
    let client = connect(options(&server)).expect("valid options");
    let events = client.events();
    let (uid, _) = opened(&client).await;

    client.subscribe("news").await.expect("subscribe");
    let result = wait_for(&events, "subscribe ack", |event| match event {
        ClientEvent::SubscribeResult {
            channel,
            subscribed,
            error,
        } => Some((channel, subscribed, error)),
        _ => None,
    })
    .await;
    assert_eq!(result, ("news".to_owned(), true, None));

    client
        .publish("news", bytes(b"excluded"), true)
        .await
        .expect("publish");
    client
        .publish("news", bytes(b"hello"), false)
        .await
        .expect("publish");
    let message = wait_for(&events, "channel message", |event| match event {
        ClientEvent::ChannelMessage {
            channel,
            from,
            payload,
        } => Some((channel, from, payload)),
        _ => None,
    })
    .await;
    // The excluded publish never came back, so the first message is the second publish.
    assert_eq!(message, ("news".to_owned(), uid, bytes(b"hello")));
    within("close", client.close()).await;
}

/// The server's drop report for a publish arrives as an event.
pub async fn publish_drop_report_is_an_event(connect: Connect) {
    let server = TestServer::start(ServerConfig::default());
    let client = connect(options(&server)).expect("valid options");
    let events = client.events();
    opened(&client).await;
    client
        .publish("test/lossy", bytes(b"x"), true)
        .await
        .expect("publish");
    let report = wait_for(&events, "drop report", |event| match event {
        ClientEvent::PublishDropped { channel, dropped } => Some((channel, dropped)),
        _ => None,
    })
    .await;
    assert_eq!(report, ("test/lossy".to_owned(), 3));
    within("close", client.close()).await;
}

/// A text message breaks the native protocol: the client closes with `PROTOCOL_ERROR`,
/// tells the server why, and reconnects.
pub async fn text_message_is_a_protocol_error(connect: Connect) {
    let server = TestServer::start(ServerConfig::default());
    let client = connect(options(&server)).expect("valid options");
    let events = client.events();
    opened(&client).await;

    client
        .send("test/text", PayloadBuf::Empty)
        .await
        .expect("send");
    let closed = wait_for(&events, "protocol close", |event| match event {
        ClientEvent::Closed {
            code,
            reason,
            initiator,
        } => Some((code, reason, initiator)),
        _ => None,
    })
    .await;
    assert_eq!(
        closed,
        (
            CloseCode::PROTOCOL_ERROR,
            "text message on a binary link".to_owned(),
            Initiator::Local
        )
    );
    server
        .expect("close frame", |seen| {
            (seen
                == Observed::ClientClose {
                    code: CloseCode::PROTOCOL_ERROR,
                })
            .then_some(())
        })
        .await;
    let (_, connection_id) = opened(&client).await;
    assert_eq!(connection_id, 2);
    within("close", client.close()).await;
}

/// Options out of range are refused by `connect` with the field named, before any
/// connection is tried; the smallest valid value of each is accepted.
pub async fn out_of_range_options_are_refused(connect: Connect) {
    let server = TestServer::start(ServerConfig::default());
    let refused = |change: fn(&mut ClientOptions), expected: &str| {
        let mut o = options(&server);
        change(&mut o);
        match connect(o) {
            Err(ClientError::InvalidOptions(message)) => assert_eq!(message, expected),
            Err(other) => panic!("expected InvalidOptions({expected:?}), got {other:?}"),
            Ok(_) => panic!("accepted options that should fail with {expected:?}"),
        }
    };
    refused(
        |o| o.handshake_timeout = Duration::ZERO,
        "handshake_timeout must be above zero",
    );
    refused(
        |o| o.event_capacity = 0,
        "event_capacity must be above zero",
    );
    refused(
        |o| o.backoff_initial = Duration::ZERO,
        "backoff_initial must be above zero and at most backoff_max",
    );
    refused(
        |o| o.backoff_max = Duration::from_millis(10),
        "backoff_initial must be above zero and at most backoff_max",
    );

    // The smallest valid values work end to end: with room for one event, the client opens
    // and still reports what happens.
    let mut o = options(&server);
    o.handshake_timeout = Duration::from_millis(1000);
    o.event_capacity = 1;
    o.backoff_max = o.backoff_initial;
    let client = connect(o).expect("valid options");
    opened(&client).await;
    assert!(client.is_open());
    within("close", client.close()).await;
}

/// The server vanishes in the middle of the handshake twice — once after reading the upgrade
/// request, once after the upgrade and the Hello but before the Welcome. Each is a failed
/// attempt followed by a scheduled reconnect with a growing attempt count (the handshake never
/// completed, so the backoff does not start over); the third connection opens.
pub async fn peer_dropping_mid_handshake_is_retried(connect: Connect) {
    let server = TestServer::start_cutting(
        ServerConfig::default(),
        vec![super::Cut::AfterFirstBytes, super::Cut::AfterHello],
    );
    let client = connect(options(&server)).expect("valid options");
    let events = client.events();
    let mut seen = Vec::new();
    let connection_id = within("open after two cut attempts", async {
        loop {
            match events.recv().await.expect("event stream open") {
                ClientEvent::Opened { connection_id, .. } => return connection_id,
                other => seen.push(other),
            }
        }
    })
    .await;
    assert_eq!(connection_id, 3, "{seen:?}");
    let [
        ClientEvent::ConnectFailed { reason },
        ClientEvent::ReconnectScheduled { attempt: 1, .. },
        ClientEvent::Closed {
            code,
            reason: closed,
            initiator,
        },
        ClientEvent::ReconnectScheduled { attempt: 2, .. },
    ] = seen.as_slice()
    else {
        panic!("unexpected events before the open: {seen:?}");
    };
    // Cut before any answer: the upgrade never finished.
    assert!(reason.starts_with("websocket handshake:"), "{reason}");
    // Cut after the Hello: the peer vanished, which is neither a protocol error nor ours.
    assert_eq!(
        (*code, *initiator),
        (CloseCode::GOING_AWAY, Initiator::Transport)
    );
    assert!(closed.contains("without closing handshake"), "{closed}");
    for cut in 1..=2 {
        let read = server
            .expect("a cut connection", |seen| match seen {
                Observed::Cut {
                    connection_id,
                    read,
                } if connection_id == cut => Some(read),
                _ => None,
            })
            .await;
        assert!(
            read > 0,
            "connection {cut} was cut before the client sent anything"
        );
    }
    let stats = client.stats();
    assert_eq!(stats.handshakes, 1);
    request_completes(&client).await;
    within("close", client.close()).await;
}
