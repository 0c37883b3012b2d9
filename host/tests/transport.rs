//! The transport layer under slow and hostile peers: heartbeats while the server holds back
//! reading, WebSocket control-frame floods, time limits and slot limits before the upgrade,
//! and the `Origin` check. Loopback only; every loop is bounded in count and time.

mod support;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures_util::SinkExt;
use sentelite_core::frame::{Frame, Hello, Payload, PayloadBuf};
use sentelite_core::{ClientConfig, CloseCode, State, Status};
use sentelite_host::{LifecycleEvent, ReplyItem, RequestOutcome, ServerSettings};
use support::{Got, STEP, TestClient, quick_settings, start, wait_lifecycle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// A server→client request whose consumer does not read for several heartbeat timeouts
/// while the client streams more parts than the stream buffers. The server stops reading
/// (backpressure) but must neither blame the client for the silence nor fall silent itself;
/// once the consumer reads, every part arrives.
#[tokio::test]
async fn a_stalled_reply_stream_does_not_cost_the_client_its_heartbeat() {
    let settings = ServerSettings {
        heartbeat_interval_ms: 200,
        heartbeat_timeout_ms: 800,
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

    // Nobody reads the stream for more than three heartbeat timeouts.
    let seen = client.run_for(Duration::from_millis(2500)).await;
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
    let seen = client.run_for(Duration::from_millis(1000)).await;
    assert!(seen.is_empty(), "unexpected {seen:?}");
    assert_eq!(client.session.state(), State::Open);
    assert_eq!(server.handle().connection_count(), 1);
    server.shutdown().await;
}

/// A raw WebSocket to the server, not speaking the native protocol unless told to.
type RawWs = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// Opens a raw WebSocket whose socket has a small receive buffer, so a peer that never reads
/// fills it quickly.
async fn raw_ws_small_window(addr: SocketAddr) -> RawWs {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async(
        format!("ws://{addr}/ws"),
        tokio_tungstenite::MaybeTlsStream::Plain(stream),
    )
    .await
    .unwrap();
    ws
}

/// A native Hello for `client_id`, encoded.
fn hello(client_id: &str) -> Vec<u8> {
    let frame = Frame::Hello(Hello {
        client_id,
        boot_id: 1,
        token: None,
        capabilities: 0,
        max_frame: 4096,
        firmware: None,
    });
    let mut buf = [0u8; 256];
    let n = sentelite_core::encode(&frame, &mut buf).unwrap();
    buf[..n].to_vec()
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

/// Before its Hello a connection gets a small budget of WebSocket control frames; a peer
/// that floods pings instead of saying Hello is closed long before the handshake timeout.
#[tokio::test]
async fn ws_pings_before_the_hello_have_a_small_budget() {
    let (server, _dir) = start(ServerSettings {
        handshake_timeout_ms: 30_000,
        ..quick_settings()
    })
    .await;
    let addr = server.local_addr();
    let mut lifecycle = server.lifecycle();
    let mut bystander = TestClient::open(addr, "bystander").await;
    let mut flooder = raw_ws_small_window(addr).await;
    let started = std::time::Instant::now();
    for _ in 0..64 {
        if flooder
            .send(Message::Ping(vec![7u8; 125].into()))
            .await
            .is_err()
        {
            break;
        }
    }
    let closed = wait_lifecycle(&mut lifecycle, |e| {
        matches!(e, LifecycleEvent::Closed { uid: None, .. })
    })
    .await;
    assert!(
        matches!(
            closed,
            LifecycleEvent::Closed {
                code: CloseCode::LIMIT_EXCEEDED,
                ..
            }
        ),
        "{closed:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    still_works(&mut bystander).await;
    server.shutdown().await;
}

/// A handshaken client that floods 125-byte WebSocket pings and never reads must not make
/// the server queue pongs without bound: the server stops reading once its writes block and
/// drops the connection at the write timeout, while another client keeps working.
#[tokio::test]
async fn a_ws_ping_flood_that_never_reads_is_cut_off_at_the_write_timeout() {
    let (server, _dir) = start(ServerSettings {
        write_timeout_ms: 500,
        heartbeat_interval_ms: 30_000,
        heartbeat_timeout_ms: 60_000,
        ..quick_settings()
    })
    .await;
    let addr = server.local_addr();
    let mut lifecycle = server.lifecycle();
    let mut bystander = TestClient::open(addr, "bystander").await;
    let mut flooder = raw_ws_small_window(addr).await;
    flooder
        .send(Message::Binary(hello("flooder").into()))
        .await
        .unwrap();
    wait_lifecycle(
        &mut lifecycle,
        |e| matches!(e, LifecycleEvent::Handshake { client_id, .. } if &**client_id == "flooder"),
    )
    .await;
    // At most 20 MB of pings (160,000 pongs the server would owe); stop as soon as the
    // server stops taking them.
    let mut sent = 0usize;
    for _ in 0..160_000 {
        match tokio::time::timeout(
            Duration::from_millis(300),
            flooder.send(Message::Ping(vec![7u8; 125].into())),
        )
        .await
        {
            Ok(Ok(())) => sent += 1,
            Ok(Err(_)) | Err(_) => break,
        }
    }
    assert!(
        sent < 160_000,
        "the server took every ping and queued a pong for each"
    );
    let closed = wait_lifecycle(
        &mut lifecycle,
        |e| matches!(e, LifecycleEvent::Closed { client_id: Some(c), .. } if &**c == "flooder"),
    )
    .await;
    assert!(
        matches!(closed, LifecycleEvent::Closed { ref reason, .. } if reason.contains("timed out")),
        "{closed:?}"
    );
    still_works(&mut bystander).await;
    server.shutdown().await;
}

/// Reads until the peer closes; returns how long that took, or `None` if it stayed open past
/// `limit`.
async fn time_to_close(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = std::time::Instant::now();
    let mut buf = [0u8; 1024];
    tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return started.elapsed(),
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
}

fn timeouts(header_ms: u64, idle_ms: u64) -> ServerSettings {
    ServerSettings {
        header_read_timeout_ms: header_ms,
        idle_keepalive_timeout_ms: idle_ms,
        ..quick_settings()
    }
}

#[tokio::test]
async fn a_silent_socket_is_closed_at_the_header_read_timeout() {
    let (server, _dir) = start(timeouts(300, 5000)).await;
    let mut silent = TcpStream::connect(server.local_addr()).await.unwrap();
    let took = time_to_close(&mut silent, STEP)
        .await
        .expect("a silent socket is closed");
    assert!(took >= Duration::from_millis(250), "closed after {took:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn partial_request_headers_are_closed_at_the_header_read_timeout() {
    let (server, _dir) = start(timeouts(300, 5000)).await;
    let mut slow = TcpStream::connect(server.local_addr()).await.unwrap();
    slow.write_all(b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n")
        .await
        .unwrap();
    let took = time_to_close(&mut slow, STEP)
        .await
        .expect("a socket with partial headers is closed");
    assert!(took >= Duration::from_millis(250), "closed after {took:?}");
    server.shutdown().await;
}

/// Sends `GET /health` on a kept-alive connection and reads the answer.
async fn health_keep_alive(stream: &mut TcpStream) {
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 512];
    tokio::time::timeout(STEP, async {
        while !response.ends_with(b"\r\n\r\nok") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before the answer");
            response.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("health answers in time");
    assert!(response.starts_with(b"HTTP/1.1 200"));
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let (server, _dir) = start(timeouts(10_000, 300)).await;
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    health_keep_alive(&mut stream).await;
    // A second request within the idle time is served on the same connection.
    tokio::time::sleep(Duration::from_millis(100)).await;
    health_keep_alive(&mut stream).await;
    let took = time_to_close(&mut stream, Duration::from_secs(3))
        .await
        .expect("an idle keep-alive connection is closed");
    assert!(took >= Duration::from_millis(250), "closed after {took:?}");
    server.shutdown().await;
}

/// Many silent sockets (more than `max-half-open`, with timeouts too long to help) shed the
/// oldest half-open connections; `/health` and a new device still get in.
#[tokio::test]
async fn a_flood_of_silent_sockets_sheds_the_oldest_and_admits_newcomers() {
    let (server, _dir) = start(ServerSettings {
        max_half_open: 8,
        max_handshaking_per_address: 1000,
        ..timeouts(10_000, 10_000)
    })
    .await;
    let addr = server.local_addr();
    let mut silent = Vec::new();
    for _ in 0..40 {
        silent.push(TcpStream::connect(addr).await.unwrap());
    }
    let mut health = TcpStream::connect(addr).await.unwrap();
    health_keep_alive(&mut health).await;
    drop(health);
    let _device = TestClient::open(addr, "device").await;
    // The oldest were shed; at most `max-half-open` silent sockets are still open.
    let mut closed = 0;
    for (i, stream) in silent.iter_mut().enumerate() {
        match time_to_close(stream, Duration::from_millis(50)).await {
            Some(_) => closed += 1,
            None => assert!(i >= 30, "silent socket {i} (among the oldest) still open"),
        }
    }
    assert!(
        closed >= 40 - 8,
        "only {closed} of 40 silent sockets were shed"
    );
    server.shutdown().await;
}

/// One address reaching its cap of connections in handshake is refused further ones, while
/// another address gets in.
#[tokio::test]
async fn one_address_cannot_take_every_handshake_slot() {
    let (server, _dir) = start(ServerSettings {
        max_half_open: 100,
        max_handshaking_per_address: 4,
        ..timeouts(10_000, 10_000)
    })
    .await;
    let addr = server.local_addr();
    let mut hogs = Vec::new();
    for _ in 0..10 {
        hogs.push(TcpStream::connect(addr).await.unwrap());
    }
    let other: IpAddr = "127.0.0.2".parse().unwrap();
    let mut device =
        TestClient::connect_from(addr, other, ClientConfig::new("device").unwrap()).await;
    assert!(matches!(device.next().await, Got::Welcome { .. }));
    let mut open = 0;
    for stream in &mut hogs {
        if time_to_close(stream, Duration::from_millis(100))
            .await
            .is_none()
        {
            open += 1;
        }
    }
    assert_eq!(open, 4, "the first address keeps exactly its cap");
    // Its Hello done, the device no longer holds a handshake slot; the capped address still
    // cannot open more.
    let mut extra = TcpStream::connect(addr).await.unwrap();
    assert!(
        time_to_close(&mut extra, Duration::from_secs(1))
            .await
            .is_some()
    );
    server.shutdown().await;
}

/// Connects a WebSocket carrying `origin` (if any) and returns the HTTP status of the answer.
async fn upgrade_status(addr: SocketAddr, origin: Option<&str>) -> u16 {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("Origin", origin.parse().unwrap());
    }
    match tokio::time::timeout(STEP, tokio_tungstenite::connect_async(request))
        .await
        .expect("answer in time")
    {
        Ok((_, response)) => response.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("upgrade failed: {e}"),
    }
}

#[tokio::test]
async fn browser_origins_are_refused_unless_allowed() {
    // Default: no origin allowed, clients without an Origin header (devices, tools) are.
    let (server, _dir) = start(quick_settings()).await;
    let addr = server.local_addr();
    assert_eq!(
        upgrade_status(addr, Some("http://localhost:8080")).await,
        403
    );
    assert_eq!(upgrade_status(addr, None).await, 101);
    // An empty Origin is a device library's, never a browser's.
    assert_eq!(upgrade_status(addr, Some("")).await, 101);
    assert_eq!(upgrade_status(addr, Some("null")).await, 403);
    let mut health = TcpStream::connect(addr).await.unwrap();
    health
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(STEP, health.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 403"), "{:?}", &buf[..n]);
    server.shutdown().await;

    let (server, _dir) = start(ServerSettings {
        allowed_origins: vec!["https://console.example".to_owned()],
        ..quick_settings()
    })
    .await;
    let addr = server.local_addr();
    assert_eq!(
        upgrade_status(addr, Some("https://console.example")).await,
        101
    );
    assert_eq!(
        upgrade_status(addr, Some("https://evil.example")).await,
        403
    );
    assert_eq!(upgrade_status(addr, None).await, 101);
    server.shutdown().await;
}

/// Shutting down does not wait for half-sent requests to reach their header-read timeout.
#[tokio::test]
async fn shutdown_closes_http_connections_without_a_request_in_progress_at_once() {
    let (server, _dir) = start(timeouts(30_000, 30_000)).await;
    let mut silent = TcpStream::connect(server.local_addr()).await.unwrap();
    let mut trickling = TcpStream::connect(server.local_addr()).await.unwrap();
    trickling
        .write_all(b"GET /health HTTP/1.1\r\nHost: loc")
        .await
        .unwrap();
    let mut idle = TcpStream::connect(server.local_addr()).await.unwrap();
    health_keep_alive(&mut idle).await;
    let started = std::time::Instant::now();
    tokio::time::timeout(STEP, server.shutdown())
        .await
        .expect("shutdown in time");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(time_to_close(&mut silent, STEP).await.is_some());
    assert!(time_to_close(&mut trickling, STEP).await.is_some());
    assert!(time_to_close(&mut idle, STEP).await.is_some());
}

/// A connection reads through a 256-byte WebSocket buffer and the thread's shared scratch
/// buffer; after idling, a message several times the scratch buffer's size still arrives
/// whole, twice in a row (the second one straight after the first, so part of it may be read
/// with the end of the first), and both come back intact.
#[tokio::test]
async fn a_large_message_after_idling_arrives_whole_through_the_small_read_buffer() {
    let settings = quick_settings();
    assert!(
        settings.read_buffer_bytes <= 256,
        "the small buffer is the default"
    );
    let (server, _dir) = start(settings).await;
    let mut config = ClientConfig::new("big-after-idle").unwrap();
    config.max_frame = 64 * 1024;
    let (mut client, _) = TestClient::handshake(server.local_addr(), config).await;
    client.subscribe("big").await;
    assert!(matches!(
        client.next().await,
        Got::SubscribeAck {
            subscribed: true,
            ..
        }
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let first: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    let second: Vec<u8> = (0..40_000u32).map(|i| (i % 241) as u8).collect();
    client.publish("big", Payload::Bytes(&first), false).await;
    client.publish("big", Payload::Bytes(&second), false).await;
    for sent in [&first, &second] {
        match client.next().await {
            Got::ChannelMsg {
                payload: PayloadBuf::Bytes(got),
                ..
            } => assert!(got == *sent, "payload of {} bytes changed", sent.len()),
            other => panic!("expected the channel message, got {other:?}"),
        }
    }
    still_works(&mut client).await;
}
