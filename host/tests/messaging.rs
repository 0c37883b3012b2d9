//! Pub/sub, requests both ways, and pushes from the application, over real loopback
//! WebSockets.

mod support;

use std::time::Duration;

use sentelite_core::frame::{Payload, PayloadBuf, SubscribeError};
use sentelite_core::{ClientConfig, Status};
use sentelite_host::{DeliveryError, ReplyItem, RequestOutcome, Server, ServerSettings};
use support::{Got, TestClient, quick_settings, start, start_with};

fn bytes(b: &[u8]) -> PayloadBuf {
    PayloadBuf::Bytes(b.to_vec())
}

async fn welcome_uid(client: TestClient) -> (TestClient, String) {
    let uid = client.session.uid().unwrap().to_owned();
    (client, uid)
}

async fn expect_ack(
    client: &mut TestClient,
    channel: &str,
    subscribed: bool,
    error: SubscribeError,
) {
    assert_eq!(
        client.next().await,
        Got::SubscribeAck {
            channel: channel.into(),
            subscribed,
            error
        }
    );
}

#[tokio::test]
async fn pubsub_among_three_clients_honours_exclude_sender() {
    let (server, _dir) = start(quick_settings()).await;
    let addr = server.local_addr();
    let (mut a, uid_a) = welcome_uid(TestClient::open(addr, "a").await).await;
    let (mut b, _) = welcome_uid(TestClient::open(addr, "b").await).await;
    let (mut c, uid_c) = welcome_uid(TestClient::open(addr, "c").await).await;
    for client in [&mut a, &mut b, &mut c] {
        client.subscribe("room").await;
        expect_ack(client, "room", true, SubscribeError::NONE).await;
    }
    assert_eq!(server.handle().subscribers("room").len(), 3);

    a.publish("room", Payload::Bytes(b"one"), true).await;
    for client in [&mut b, &mut c] {
        assert_eq!(
            client.next().await,
            Got::ChannelMsg {
                channel: "room".into(),
                from: uid_a.clone(),
                payload: bytes(b"one")
            }
        );
    }
    // Had the first message come back to its sender, it would arrive before this one.
    a.publish("room", Payload::Bytes(b"two"), false).await;
    for client in [&mut a, &mut b, &mut c] {
        assert_eq!(
            client.next().await,
            Got::ChannelMsg {
                channel: "room".into(),
                from: uid_a.clone(),
                payload: bytes(b"two")
            }
        );
    }

    b.unsubscribe_raw("room").await;
    expect_ack(&mut b, "room", false, SubscribeError::NONE).await;
    b.unsubscribe_raw("room").await;
    expect_ack(&mut b, "room", false, SubscribeError::CHANNEL_NOT_FOUND).await;

    c.publish("room", Payload::Bytes(b"three"), false).await;
    for client in [&mut a, &mut c] {
        assert_eq!(
            client.next().await,
            Got::ChannelMsg {
                channel: "room".into(),
                from: uid_c.clone(),
                payload: bytes(b"three")
            }
        );
    }
    // A server publish reaches only the remaining subscribers, with an empty `from`.
    let delivery = server.handle().publish("room", bytes(b"four")).unwrap();
    assert_eq!((delivery.delivered, delivery.failed.len()), (2, 0));
    let b_id = b.session.connection_id();
    server
        .handle()
        .send_to_connection(b_id, "test/marker", PayloadBuf::Empty)
        .unwrap();
    assert_eq!(
        b.next().await,
        Got::Event {
            event: "test/marker".into(),
            payload: PayloadBuf::Empty
        },
        "an unsubscribed client gets no channel message"
    );
    for client in [&mut a, &mut c] {
        assert_eq!(
            client.next().await,
            Got::ChannelMsg {
                channel: "room".into(),
                from: String::new(),
                payload: bytes(b"four")
            }
        );
    }

    // Closing a connection removes its subscriptions.
    let mut lifecycle = server.lifecycle();
    let c_id = c.session.connection_id();
    c.session.shutdown("done");
    c.flush().await;
    c.expect_ws_close().await;
    support::wait_lifecycle(&mut lifecycle, |e| {
        matches!(e, sentelite_host::LifecycleEvent::Closed { connection_id, .. } if *connection_id == c_id)
    })
    .await;
    assert_eq!(
        server.handle().subscribers("room"),
        vec![a.session.connection_id()]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn subscription_limits_answer_with_typed_errors() {
    let (server, _dir) = start(ServerSettings {
        max_subscriptions_per_conn: 2,
        max_subscribers_per_channel: 1,
        max_channel_name_bytes: 8,
        ..quick_settings()
    })
    .await;
    let addr = server.local_addr();
    let mut a = TestClient::open(addr, "a").await;
    let mut b = TestClient::open(addr, "b").await;
    a.subscribe("x").await;
    expect_ack(&mut a, "x", true, SubscribeError::NONE).await;
    a.subscribe("y").await;
    expect_ack(&mut a, "y", true, SubscribeError::NONE).await;
    a.subscribe("z").await;
    expect_ack(
        &mut a,
        "z",
        false,
        SubscribeError::MAX_SUBSCRIPTIONS_PER_CONN,
    )
    .await;
    b.subscribe("x").await;
    expect_ack(&mut b, "x", false, SubscribeError::MAX_SUBSCRIBERS_REACHED).await;
    b.subscribe("too-long-name").await;
    expect_ack(
        &mut b,
        "too-long-name",
        false,
        SubscribeError::INVALID_CHANNEL,
    )
    .await;
    assert_eq!(
        server.handle().publish("", PayloadBuf::Empty),
        Err(DeliveryError::InvalidChannel)
    );
    let info = server
        .handle()
        .connection(a.session.connection_id())
        .unwrap();
    assert_eq!(info.channels.len(), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn server_request_streams_parts_then_the_outcome() {
    let (server, _dir) = start(quick_settings()).await;
    let mut client = TestClient::open(server.local_addr(), "responder").await;
    let conn = client.session.connection_id();
    let handle = server.handle();

    let mut stream = handle
        .request(
            conn,
            "device/dump",
            bytes(b"all"),
            Some(Duration::from_secs(5)),
        )
        .await
        .unwrap();
    let Got::Request { id, event, payload } = client.next().await else {
        panic!("expected a request")
    };
    assert_eq!((event.as_str(), payload), ("device/dump", bytes(b"all")));
    assert_eq!(id, stream.request_id());
    for (seq, part) in [b"p0", b"p1", b"p2"].iter().enumerate() {
        client.reply(id, seq as u32, Payload::Bytes(*part)).await;
    }
    client.end(id, Status::OK, Payload::Bytes(b"fin")).await;
    for (seq, part) in [b"p0", b"p1", b"p2"].iter().enumerate() {
        assert_eq!(
            stream.next().await,
            Some(ReplyItem::Part {
                seq: seq as u32,
                payload: bytes(*part)
            })
        );
    }
    assert_eq!(
        stream.next().await,
        Some(ReplyItem::End(RequestOutcome::Completed {
            status: Status::OK,
            payload: bytes(b"fin")
        }))
    );
    assert_eq!(stream.next().await, None);

    // Unanswered, a request ends at its deadline.
    let stream = handle
        .request(
            conn,
            "device/slow",
            PayloadBuf::Empty,
            Some(Duration::from_millis(100)),
        )
        .await
        .unwrap();
    assert!(matches!(client.next().await, Got::Request { .. }));
    let (parts, outcome) = tokio::time::timeout(support::STEP, stream.collect())
        .await
        .unwrap();
    assert!(parts.is_empty());
    assert_eq!(outcome, RequestOutcome::TimedOut);

    // And with no deadline, it ends when the connection does.
    let stream = handle
        .request(conn, "device/forever", PayloadBuf::Empty, None)
        .await
        .unwrap();
    assert!(matches!(client.next().await, Got::Request { .. }));
    client.session.shutdown("leaving");
    client.flush().await;
    let (_, outcome) = tokio::time::timeout(support::STEP, stream.collect())
        .await
        .unwrap();
    assert_eq!(outcome, RequestOutcome::Closed);
    assert_eq!(
        handle
            .request(conn, "device/dump", PayloadBuf::Empty, None)
            .await
            .unwrap_err(),
        DeliveryError::UnknownConnection(conn)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn client_requests_reach_handlers_and_unknown_ones_are_unsupported() {
    let builder = Server::builder()
        .config(quick_settings())
        .on_request("demo/count", |ctx, mut responder| async move {
            let PayloadBuf::Bytes(n) = &ctx.payload else {
                return;
            };
            for i in 0..n[0] {
                responder.part(PayloadBuf::Bytes(vec![i])).await.unwrap();
            }
            responder
                .end(
                    Status::OK,
                    PayloadBuf::Json(format!("{{\"uid\":\"{}\"}}", ctx.uid)),
                )
                .await
                .unwrap();
        })
        .on_request("demo/forget", |_ctx, responder| async move {
            drop(responder);
        });
    let (server, _dir) = start_with(builder).await;
    let mut client = TestClient::open(server.local_addr(), "asker").await;
    let uid = client.session.uid().unwrap().to_owned();

    let id = client
        .request(
            "demo/count",
            Payload::Bytes(&[3]),
            Some(Duration::from_secs(5)),
        )
        .await;
    for seq in 0..3u32 {
        assert_eq!(
            client.next().await,
            Got::Reply {
                id,
                seq,
                payload: PayloadBuf::Bytes(vec![seq as u8])
            }
        );
    }
    assert_eq!(
        client.next().await,
        Got::End {
            id,
            status: Status::OK,
            payload: PayloadBuf::Json(format!("{{\"uid\":\"{uid}\"}}"))
        }
    );

    let id = client.request("demo/nope", Payload::Empty, None).await;
    assert_eq!(
        client.next().await,
        Got::End {
            id,
            status: Status::UNSUPPORTED,
            payload: PayloadBuf::Empty
        }
    );

    let id = client.request("demo/forget", Payload::Empty, None).await;
    assert_eq!(
        client.next().await,
        Got::End {
            id,
            status: Status::ERROR,
            payload: PayloadBuf::Empty
        }
    );
    // A handler without a payload to count returns without ending: also an error answer.
    let id = client.request("demo/count", Payload::Empty, None).await;
    assert!(matches!(
        client.next().await,
        Got::End { id: got, status: Status::ERROR, .. } if got == id
    ));
    server.shutdown().await;
}

#[tokio::test]
async fn events_reach_handlers_and_pushes_reach_every_connection_of_a_client() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    // Two live connections of one client id need the `allow` policy.
    let settings = ServerSettings {
        duplicate_client_id: sentelite_host::DuplicateClientId::Allow,
        ..quick_settings()
    };
    let builder = Server::builder()
        .config(settings)
        .on_event("telemetry/log-msg", move |ctx| {
            // The synchronous part runs in arrival order.
            let _ = tx.send((ctx.client_id.to_string(), ctx.payload.clone()));
            async {}
        });
    let (server, _dir) = start_with(builder).await;
    let addr = server.local_addr();
    let mut one = TestClient::open(addr, "multi").await;
    let mut two = TestClient::open(addr, "multi").await;
    let mut other = TestClient::open(addr, "other").await;

    for i in 0..5u8 {
        one.send_event("telemetry/log-msg", Payload::Bytes(&[i]))
            .await;
    }
    one.send_event("telemetry/unhandled", Payload::Empty).await;
    for i in 0..5u8 {
        let got = tokio::time::timeout(support::STEP, rx.recv())
            .await
            .unwrap();
        assert_eq!(got, Some(("multi".to_owned(), PayloadBuf::Bytes(vec![i]))));
    }

    let handle = server.handle();
    let delivery = handle
        .send_to_client("multi", "app/hello", bytes(b"hi"))
        .unwrap();
    assert_eq!((delivery.delivered, delivery.failed.len()), (2, 0));
    for client in [&mut one, &mut two] {
        assert_eq!(
            client.next().await,
            Got::Event {
                event: "app/hello".into(),
                payload: bytes(b"hi")
            }
        );
    }
    assert!(matches!(
        handle.send_to_client("nobody", "app/hello", PayloadBuf::Empty),
        Err(DeliveryError::UnknownClient(_))
    ));
    let delivery = handle.broadcast("app/all", PayloadBuf::Empty);
    assert_eq!(delivery.delivered, 3);
    for client in [&mut one, &mut two, &mut other] {
        assert!(matches!(client.next().await, Got::Event { event, .. } if event == "app/all"));
    }
    server.shutdown().await;
}

#[tokio::test]
async fn pushes_larger_than_the_client_accepts_are_refused() {
    let (server, _dir) = start(quick_settings()).await;
    let mut config = ClientConfig::new("tiny").unwrap();
    config.max_frame = 256;
    let (client, _) = TestClient::handshake(server.local_addr(), config).await;
    let err = server
        .handle()
        .send_to_connection(
            client.session.connection_id(),
            "big",
            PayloadBuf::Bytes(vec![0; 300]),
        )
        .unwrap_err();
    assert!(
        matches!(err, DeliveryError::TooLarge { max: 256, .. }),
        "{err}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_full_queue_is_reported_to_the_sender() {
    let (server, _dir) = start(ServerSettings {
        connection_queue: 1,
        ..quick_settings()
    })
    .await;
    // This client never reads: the socket fills up, then the queue does.
    let client = TestClient::open(server.local_addr(), "stalled").await;
    let conn = client.session.connection_id();
    let handle = server.handle();
    let payload = PayloadBuf::Bytes(vec![7; 3000]);
    let mut full = false;
    for _ in 0..20_000 {
        match handle.send_to_connection(conn, "flood", payload.clone()) {
            Ok(()) => tokio::task::yield_now().await,
            Err(DeliveryError::QueueFull(id)) => {
                assert_eq!(id, conn);
                full = true;
                break;
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert!(full, "the queue never reported full");
    drop(client);
    server.shutdown().await;
}

#[tokio::test]
async fn a_slow_reply_consumer_loses_nothing_and_cancel_ends_the_stream() {
    let (server, _dir) = start(quick_settings()).await;
    let mut client = TestClient::open(server.local_addr(), "streamer").await;
    let conn = client.session.connection_id();
    let handle = server.handle();

    // More parts than the stream buffers: the server must hold back, not drop.
    let parts = 200u32;
    let mut stream = handle
        .request(conn, "device/stream", PayloadBuf::Empty, None)
        .await
        .unwrap();
    let Got::Request { id, .. } = client.next().await else {
        panic!("expected a request")
    };
    for seq in 0..parts {
        client
            .reply(id, seq, Payload::Bytes(&seq.to_be_bytes()))
            .await;
    }
    client.end(id, Status::OK, Payload::Empty).await;
    for seq in 0..parts {
        let item = tokio::time::timeout(support::STEP, stream.next())
            .await
            .unwrap();
        assert_eq!(
            item,
            Some(ReplyItem::Part {
                seq,
                payload: bytes(&seq.to_be_bytes())
            })
        );
    }
    assert!(matches!(
        stream.next().await,
        Some(ReplyItem::End(RequestOutcome::Completed {
            status: Status::OK,
            ..
        }))
    ));

    // Cancelling tells the client and ends the stream.
    let mut stream = handle
        .request(conn, "device/stream", PayloadBuf::Empty, None)
        .await
        .unwrap();
    let Got::Request { id, .. } = client.next().await else {
        panic!("expected a request")
    };
    stream.cancel().unwrap();
    assert_eq!(client.next().await, Got::Cancel { id });
    assert_eq!(
        stream.next().await,
        Some(ReplyItem::End(RequestOutcome::Cancelled))
    );
    server.shutdown().await;
}

#[tokio::test]
async fn client_cancel_reaches_the_handler_and_the_pending_limit_answers_busy() {
    let (tx, mut cancelled) = tokio::sync::mpsc::unbounded_channel();
    let builder = Server::builder()
        .config(ServerSettings {
            max_pending: 1,
            ..quick_settings()
        })
        .on_request("demo/wait", move |_ctx, mut responder| {
            let tx = tx.clone();
            async move {
                responder.part(PayloadBuf::Empty).await.unwrap();
                responder.cancelled().await;
                assert_eq!(
                    responder.part(PayloadBuf::Empty).await,
                    Err(sentelite_host::ResponderError::Cancelled)
                );
                let _ = tx.send(responder.request_id());
            }
        });
    let (server, _dir) = start_with(builder).await;
    let mut client = TestClient::open(server.local_addr(), "impatient").await;

    let first = client.request("demo/wait", Payload::Empty, None).await;
    assert!(matches!(client.next().await, Got::Reply { id, seq: 0, .. } if id == first));
    let second = client.request("demo/wait", Payload::Empty, None).await;
    assert_eq!(
        client.next().await,
        Got::End {
            id: second,
            status: Status::BUSY,
            payload: PayloadBuf::Empty
        }
    );
    client.cancel_raw(first).await;
    assert_eq!(
        client.next().await,
        Got::End {
            id: first,
            status: Status::CANCELLED,
            payload: PayloadBuf::Empty
        }
    );
    let seen = tokio::time::timeout(support::STEP, cancelled.recv())
        .await
        .unwrap();
    assert_eq!(seen, Some(first));
    // The slot is free again.
    let third = client.request("demo/wait", Payload::Empty, None).await;
    assert!(matches!(client.next().await, Got::Reply { id, .. } if id == third));
    server.shutdown().await;
}
