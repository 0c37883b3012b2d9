//! Handshake, limits, timeouts, health and shutdown of the host server, over real loopback
//! WebSockets.

mod support;

use sentelite_core::frame::{PROTOCOL_VERSION, Payload, PayloadBuf};
use sentelite_core::{ClientConfig, CloseCode, Initiator};
use sentelite_host::{LifecycleEvent, ServerSettings};
use support::{Got, STEP, TestClient, quick_settings, start, wait_lifecycle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn handshake_returns_welcome_and_registers_the_connection() {
    let settings = ServerSettings {
        heartbeat_interval_ms: 1500,
        heartbeat_timeout_ms: 4500,
        max_frame_bytes: 8192,
        max_pending: 7,
        max_subscriptions_per_conn: 5,
        ..quick_settings()
    };
    let (server, _dir) = start(settings).await;
    let mut lifecycle = server.lifecycle();
    let mut config = ClientConfig::new("dev-1").unwrap();
    config.boot_id = 42;
    config.firmware = Some("fw-1.2".try_into().unwrap());
    let (_client, welcome) = TestClient::handshake(server.local_addr(), config).await;
    let Got::Welcome {
        uid,
        connection_id,
        heartbeat_ms,
        heartbeat_timeout_ms,
        max_frame,
        max_pending,
        max_subscriptions,
    } = welcome
    else {
        unreachable!()
    };
    assert!(uid.starts_with("conn-"), "uid {uid}");
    assert!(uid.ends_with(&format!("-{connection_id}")), "uid {uid}");
    assert_eq!((heartbeat_ms, heartbeat_timeout_ms), (1500, 4500));
    assert_eq!((max_frame, max_pending, max_subscriptions), (8192, 7, 5));

    let connected = wait_lifecycle(&mut lifecycle, |e| {
        matches!(e, LifecycleEvent::Connected { .. })
    })
    .await;
    assert_eq!(connected.connection_id(), connection_id);
    let handshake = wait_lifecycle(&mut lifecycle, |e| {
        matches!(e, LifecycleEvent::Handshake { .. })
    })
    .await;
    let LifecycleEvent::Handshake {
        uid: hs_uid,
        client_id,
        boot_id,
        firmware,
        ..
    } = handshake
    else {
        unreachable!()
    };
    assert_eq!(
        (&*hs_uid, &*client_id, boot_id),
        (uid.as_str(), "dev-1", 42)
    );
    assert_eq!(firmware.as_deref(), Some("fw-1.2"));

    let infos = server.handle().connections();
    assert_eq!(infos.len(), 1);
    let info = &infos[0];
    assert_eq!(info.connection_id, connection_id);
    assert_eq!(&*info.uid, uid);
    assert_eq!(&*info.client_id, "dev-1");
    assert_eq!(info.boot_id, 42);
    assert_eq!(info.firmware.as_deref(), Some("fw-1.2"));
    assert!(info.remote_addr.ip().is_loopback());
    assert_eq!(info.stats.handshakes, 1);
    assert!(info.stats.frames_received >= 1);
    server.shutdown().await;
}

#[tokio::test]
async fn wrong_or_missing_token_is_refused_with_auth_failed() {
    let (server, _dir) = start(ServerSettings {
        token: Some("s3cret".into()),
        ..quick_settings()
    })
    .await;
    let addr = server.local_addr();
    let mut lifecycle = server.lifecycle();

    let mut wrong = ClientConfig::new("intruder").unwrap();
    wrong.token = Some("guess".try_into().unwrap());
    let mut client = TestClient::connect(addr, wrong).await;
    assert_eq!(
        client.next().await,
        Got::Close {
            code: CloseCode::AUTH_FAILED,
            reason: "missing or wrong token".into()
        }
    );
    let (code, _) = client.expect_ws_close().await;
    assert_eq!(code, CloseCode::AUTH_FAILED.websocket_code());
    let closed = wait_lifecycle(&mut lifecycle, |e| {
        matches!(e, LifecycleEvent::Closed { .. })
    })
    .await;
    assert!(matches!(
        closed,
        LifecycleEvent::Closed {
            code: CloseCode::AUTH_FAILED,
            initiator: Initiator::Local,
            uid: None,
            ..
        }
    ));

    let mut missing = TestClient::connect_as(addr, "anonymous").await;
    let (code, _) = missing.expect_ws_close().await;
    assert_eq!(code, 4005);

    let mut right = ClientConfig::new("friend").unwrap();
    right.token = Some("s3cret".try_into().unwrap());
    let (_ok, welcome) = TestClient::handshake(addr, right).await;
    assert!(matches!(welcome, Got::Welcome { .. }));
    assert_eq!(server.handle().connection_count(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn connections_beyond_the_limit_are_refused_until_one_leaves() {
    let (server, _dir) = start(ServerSettings {
        max_connections: 2,
        ..quick_settings()
    })
    .await;
    let addr = server.local_addr();
    let mut lifecycle = server.lifecycle();
    let mut first = TestClient::open(addr, "a").await;
    let _second = TestClient::open(addr, "b").await;

    let mut third = TestClient::connect_as(addr, "c").await;
    assert!(matches!(
        third.next().await,
        Got::Close {
            code: CloseCode::TOO_MANY_CONNECTIONS,
            ..
        }
    ));
    assert_eq!(third.expect_ws_close().await.0, 4008);
    assert_eq!(server.handle().connection_count(), 2);

    // The first client leaves with a native Close; its slot frees up.
    first.session.shutdown("bye");
    first.flush().await;
    assert_eq!(first.expect_ws_close().await.0, 1000);
    let closed = wait_lifecycle(&mut lifecycle, |e| {
        matches!(e, LifecycleEvent::Closed { uid: Some(_), .. })
    })
    .await;
    assert!(matches!(
        closed,
        LifecycleEvent::Closed {
            code: CloseCode::NORMAL,
            initiator: Initiator::Peer,
            ..
        }
    ));
    let _fourth = TestClient::open(addr, "d").await;
    assert_eq!(server.handle().connection_count(), 2);
    server.shutdown().await;
}

/// The other client's liveness check: a round trip through the server.
async fn still_works(client: &mut TestClient) {
    client.subscribe("alive").await;
    assert!(matches!(
        client.next().await,
        Got::SubscribeAck {
            subscribed: true,
            ..
        }
    ));
    client
        .publish("alive", Payload::Bytes(b"ping"), false)
        .await;
    assert!(matches!(
        client.next().await,
        Got::ChannelMsg { payload: PayloadBuf::Bytes(b), .. } if b == b"ping"
    ));
}

#[tokio::test]
async fn oversize_frame_closes_only_that_connection_with_frame_too_large() {
    let (server, _dir) = start(ServerSettings {
        max_frame_bytes: 1024,
        ..quick_settings()
    })
    .await;
    let addr = server.local_addr();
    let mut bystander = TestClient::open(addr, "bystander").await;
    let mut offender = TestClient::open(addr, "offender").await;
    offender.send_raw(&[PROTOCOL_VERSION; 1025]).await;
    assert_eq!(
        offender.expect_ws_close().await.0,
        CloseCode::FRAME_TOO_LARGE.websocket_code()
    );
    still_works(&mut bystander).await;
    server.shutdown().await;
}

#[tokio::test]
async fn malformed_and_text_frames_close_with_protocol_error() {
    let (server, _dir) = start(quick_settings()).await;
    let addr = server.local_addr();
    let mut bystander = TestClient::open(addr, "bystander").await;

    let mut garbage = TestClient::open(addr, "garbage").await;
    garbage.send_raw(&[PROTOCOL_VERSION, 200, 1, 2]).await;
    assert_eq!(
        garbage.next().await,
        Got::Close {
            code: CloseCode::PROTOCOL_ERROR,
            reason: "malformed frame".into()
        }
    );
    assert_eq!(
        garbage.expect_ws_close().await,
        (4002, "malformed frame".into())
    );

    let mut texter = TestClient::open(addr, "texter").await;
    texter.send_text("[:chsk/ws-ping]").await;
    assert_eq!(texter.expect_ws_close().await.0, 4002);

    let mut versioned = TestClient::connect_as(addr, "future").await;
    versioned.send_raw(&[9, 2, 0]).await;
    // The Hello was valid, so a Welcome may come first; the close must follow.
    assert_eq!(
        versioned.expect_ws_close().await.0,
        CloseCode::UNSUPPORTED_VERSION.websocket_code()
    );

    still_works(&mut bystander).await;
    server.shutdown().await;
}

#[tokio::test]
async fn silent_socket_is_closed_at_the_handshake_timeout() {
    let (server, _dir) = start(ServerSettings {
        handshake_timeout_ms: 200,
        ..quick_settings()
    })
    .await;
    // Told native: a silent socket of unknown dialect is taken for a sente-lite client.
    let url = format!("ws://{}/ws?dialect=native", server.local_addr());
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let started = std::time::Instant::now();
    let code = tokio::time::timeout(STEP, async {
        use futures_util::StreamExt;
        while let Some(Ok(msg)) = ws.next().await {
            if let tokio_tungstenite::tungstenite::Message::Close(Some(f)) = msg {
                return u16::from(f.code);
            }
        }
        panic!("no close frame");
    })
    .await
    .expect("closed in time");
    assert_eq!(code, CloseCode::HANDSHAKE_TIMEOUT.websocket_code());
    assert!(started.elapsed() >= std::time::Duration::from_millis(150));
    server.shutdown().await;
}

#[tokio::test]
async fn silent_client_is_closed_at_the_heartbeat_timeout() {
    let (server, _dir) = start(ServerSettings {
        heartbeat_interval_ms: 100,
        heartbeat_timeout_ms: 300,
        ..quick_settings()
    })
    .await;
    let mut lifecycle = server.lifecycle();
    let mut client = TestClient::open(server.local_addr(), "sleepy").await;
    let started = std::time::Instant::now();
    // The test client never pings: the server must give up on it.
    assert!(matches!(
        client.next().await,
        Got::Close {
            code: CloseCode::HEARTBEAT_TIMEOUT,
            ..
        }
    ));
    assert_eq!(client.expect_ws_close().await.0, 4007);
    assert!(started.elapsed() >= std::time::Duration::from_millis(250));
    wait_lifecycle(&mut lifecycle, |e| {
        matches!(
            e,
            LifecycleEvent::Closed {
                code: CloseCode::HEARTBEAT_TIMEOUT,
                ..
            }
        )
    })
    .await;
    assert_eq!(server.handle().connection_count(), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn health_answers_ok() {
    let (server, _dir) = start(quick_settings()).await;
    let mut stream = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    tokio::time::timeout(STEP, stream.read_to_string(&mut response))
        .await
        .expect("answer in time")
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("\r\n\r\nok"), "{response}");
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_every_connection_with_going_away() {
    let (server, dir) = start(quick_settings()).await;
    assert!(dir.0.is_dir(), "data dir is created at bind");
    let addr = server.local_addr();
    let mut a = TestClient::open(addr, "a").await;
    let mut b = TestClient::open(addr, "b").await;
    let mut pending = TestClient::connect_as(addr, "c").await;
    let handle = server.handle();
    let shutdown = tokio::spawn(server.shutdown());
    assert_eq!(a.expect_ws_close().await.0, 1001);
    assert_eq!(b.expect_ws_close().await.0, 1001);
    assert_eq!(pending.expect_ws_close().await.0, 1001);
    tokio::time::timeout(STEP, shutdown)
        .await
        .expect("shutdown finishes")
        .unwrap();
    assert_eq!(handle.connection_count(), 0);
    assert!(handle.is_shutting_down());
}

#[tokio::test]
async fn upgrades_beyond_the_handshake_limit_get_503_until_the_hello() {
    let (server, _dir) = start(ServerSettings {
        max_handshaking: 1,
        ..quick_settings()
    })
    .await;
    let addr = server.local_addr();
    let mut lifecycle = server.lifecycle();
    let url = format!("ws://{addr}/ws");
    let (silent, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    match tokio_tungstenite::connect_async(&url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503);
        }
        other => panic!("expected HTTP 503, got {other:?}"),
    }
    // The silent socket's permit returns when its connection ends...
    drop(silent);
    wait_lifecycle(&mut lifecycle, |e| {
        matches!(e, LifecycleEvent::Closed { .. })
    })
    .await;
    // ...and a client's returns with its Hello, so the next one gets in.
    let _a = TestClient::open(addr, "a").await;
    let _b = TestClient::open(addr, "b").await;
    assert_eq!(server.handle().connection_count(), 2);
    server.shutdown().await;
}
