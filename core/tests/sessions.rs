//! The sessions driven through their public API, a client and a server in this process: the
//! [`Session`] trait that generic adapters drive both roles through, and what each side
//! reports about the connection. These are what mutation testing showed the scenario and
//! property tests could not pin down (see docs/TESTING.md).

use sentelite_core::channels::ChannelError;
use sentelite_core::codec::{EncodeError, NeedsRoom, encoded_len};
use sentelite_core::frame::{
    Cancel, ChannelMsg, ChannelRef, End, Event, Hello, Ping, Publish, PublishDropped, Reply,
    Request, SubscribeAck, SubscribeError, Welcome,
};
use sentelite_core::{
    ClientConfig, ClientSession, CloseCode, Duration, Frame, Instant, Payload, ProtocolError,
    SendError, ServerConfig, ServerSession, Session, State, decode,
};

type Client = ClientSession<16, 8>;
type Server = ServerSession<16>;

const T0: Instant = Instant::ZERO;

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// The next frame `session` sends, through the trait.
fn transmit<S: Session<16>>(session: &mut S) -> Option<Vec<u8>> {
    let mut buf = [0u8; 512];
    session
        .poll_transmit(&mut buf)
        .unwrap()
        .map(|n| buf[..n].to_vec())
}

/// The kind of frame `session` delivered for `bytes`, through the trait.
fn receive<S: Session<16>>(
    session: &mut S,
    now: Instant,
    bytes: &[u8],
) -> Result<Option<&'static str>, ProtocolError> {
    Ok(session.handle_frame(now, bytes)?.map(|f| f.kind()))
}

fn timer<S: Session<16>>(session: &S) -> Option<Instant> {
    session.poll_timeout()
}

fn tick<S: Session<16>>(session: &mut S, now: Instant) {
    session.handle_timeout(now);
}

fn gone<S: Session<16>>(session: &mut S, now: Instant) {
    session.handle_disconnected(now);
}

#[test]
fn both_roles_run_through_the_session_trait() {
    let mut client = Client::new(ClientConfig::new("dev-trait").unwrap(), T0);
    let mut server = Server::new(ServerConfig::default(), T0);
    assert!(client.poll_connect(T0));
    client.handle_connected(T0);
    // Both wait for the handshake at most the default ten seconds.
    assert_eq!(timer(&client), Some(at(10_000)));
    assert_eq!(timer(&server), Some(at(10_000)));

    let hello = transmit(&mut client).expect("Hello");
    assert_eq!(receive(&mut server, T0, &hello), Ok(Some("hello")));
    let mut buf = [0u8; 512];
    let n = server.accept(T0, "u-1", 1, &mut buf).unwrap();
    assert_eq!(receive(&mut client, T0, &buf[..n]), Ok(Some("welcome")));
    assert!(client.is_open() && server.is_open());

    // Open: the client pings every 30 s, the server waits 60 s for the client.
    assert_eq!(timer(&client), Some(at(30_000)));
    assert_eq!(timer(&server), Some(at(60_000)));
    tick(&mut client, at(30_000));
    let ping = transmit(&mut client).expect("a Ping after the interval");
    assert_eq!(receive(&mut server, at(30_000), &ping), Ok(None));
    let pong = transmit(&mut server).expect("the Pong");
    assert_eq!(receive(&mut client, at(30_010), &pong), Ok(None));
    assert!(
        client
            .rtt()
            .is_some_and(|rtt| rtt <= Duration::from_millis(10))
    );

    // A server frame the client may not receive is a protocol error through the trait too.
    assert!(receive(&mut client, at(30_020), &hello).is_err());
    assert_eq!(client.state(), State::Closing);

    gone(&mut server, at(40_000));
    assert_eq!(server.state(), State::Closed);
    gone(&mut client, at(40_000));
    assert_eq!(client.state(), State::Idle, "a reconnect is scheduled");
    assert!(timer(&client).is_some_and(|t| t > at(40_000)));
}

#[test]
fn a_server_without_a_hello_times_out_through_the_session_trait() {
    let mut server = Server::new(ServerConfig::default(), T0);
    tick(&mut server, at(9_999));
    assert_eq!(server.state(), State::Handshaking);
    tick(&mut server, at(10_000));
    assert_eq!(server.state(), State::Closing);
    let close = transmit(&mut server).expect("a Close frame");
    assert!(matches!(
        decode(&close),
        Ok(Frame::Close(c)) if c.code == CloseCode::HANDSHAKE_TIMEOUT
    ));
}

/// A client and a server session whose handshake has completed.
fn open() -> (Client, Server) {
    let mut client = Client::new(ClientConfig::new("dev-sessions").unwrap(), T0);
    let mut server = Server::new(ServerConfig::default(), T0);
    let mut buf = [0u8; 512];
    assert!(client.poll_connect(T0));
    client.handle_connected(T0);
    let hello = transmit(&mut client).expect("Hello");
    assert_eq!(receive(&mut server, T0, &hello), Ok(Some("hello")));
    let n = server.accept(T0, "u-7", 7, &mut buf).unwrap();
    assert_eq!(receive(&mut client, T0, &buf[..n]), Ok(Some("welcome")));
    while client.poll_event().is_some() {}
    while server.poll_event().is_some() {}
    (client, server)
}

#[test]
fn a_send_into_too_small_a_buffer_says_how_much_room_it_needs() {
    let (mut client, _server) = open();
    let payload = Payload::Bytes(&[7; 40]);
    let frame = Frame::Event(Event {
        event: "app/e",
        payload,
    });
    let err = client
        .send_event("app/e", payload, &mut [0u8; 8])
        .unwrap_err();
    assert_eq!(err.room_needed(), Some(encoded_len(&frame)));
    let mut buf = vec![0u8; encoded_len(&frame)];
    assert_eq!(
        client.send_event("app/e", payload, &mut buf),
        Ok(encoded_len(&frame))
    );
    // Other refusals are not about room.
    assert_eq!(SendError::NotOpen.room_needed(), None);
    assert_eq!(
        SendError::Encode(EncodeError::TooLarge { len: 900, max: 512 }).room_needed(),
        None
    );
}

#[test]
fn session_errors_say_what_was_wrong() {
    assert_eq!(SendError::NotOpen.to_string(), "session is not open");
    assert_eq!(
        SendError::PendingFull.to_string(),
        "too many requests in flight"
    );
    assert_eq!(
        SendError::UnknownRequest.to_string(),
        "no such request in flight"
    );
    assert_eq!(
        SendError::Channel(ChannelError::Full).to_string(),
        "channel refused: Full"
    );
    assert_eq!(
        SendError::Encode(EncodeError::BufferTooSmall { required: 9 }).to_string(),
        EncodeError::BufferTooSmall { required: 9 }.to_string()
    );
    let error = ProtocolError {
        code: CloseCode::PROTOCOL_ERROR,
        reason: "malformed frame",
    };
    assert_eq!(error.to_string(), "malformed frame (protocol-error)");
}

#[test]
fn welcome_heartbeats_are_kept_within_the_documented_bounds() {
    use sentelite_core::session::heartbeat_from_welcome;
    // docs/PROTOCOL.md section 8.3: the interval within 100 ms to 1 h, the timeout at least
    // 1.5 intervals and at most 2 h.
    let config = ClientConfig::new("dev-bounds").unwrap();
    let ms = Duration::from_millis;
    assert_eq!(
        heartbeat_from_welcome(u32::MAX, u32::MAX, &config),
        (ms(3_600_000), ms(7_200_000))
    );
    assert_eq!(heartbeat_from_welcome(1, 1, &config), (ms(100), ms(150)));
    assert_eq!(
        heartbeat_from_welcome(1_000, 7_200_001, &config).1,
        ms(7_200_000)
    );
    assert_eq!(
        heartbeat_from_welcome(1_000, 7_199_999, &config).1,
        ms(7_199_999)
    );
}

fn encoded(frame: &Frame<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; encoded_len(frame)];
    sentelite_core::encode(frame, &mut buf).unwrap();
    buf
}

fn welcome() -> Vec<u8> {
    encoded(&Frame::Welcome(Welcome {
        uid: "u-2",
        connection_id: 2,
        heartbeat_ms: 30_000,
        heartbeat_timeout_ms: 60_000,
        max_frame: 4096,
        max_pending: 4,
        max_subscriptions: 4,
    }))
}

/// A client that sent its Hello and waits for the Welcome.
fn handshaking() -> Client {
    let mut client = Client::new(ClientConfig::new("dev-order").unwrap(), T0);
    assert!(client.poll_connect(T0));
    client.handle_connected(T0);
    transmit(&mut client).expect("Hello");
    client
}

fn refused<S: Session<16>>(session: &mut S, bytes: &[u8]) {
    let error = receive(session, T0, bytes).expect_err("a protocol error");
    assert_eq!(error.code, CloseCode::PROTOCOL_ERROR);
    assert_eq!(session.state(), State::Closing);
}

#[test]
fn a_client_refuses_server_frames_out_of_order() {
    // Channel frames and subscription answers before the Welcome.
    for frame in [
        Frame::ChannelMsg(ChannelMsg {
            channel: "c",
            from: "u",
            payload: Payload::Empty,
        }),
        Frame::PublishDropped(PublishDropped {
            channel: "c",
            dropped: 1,
        }),
        Frame::SubscribeAck(SubscribeAck {
            channel: "c",
            subscribed: true,
            error: SubscribeError::NONE,
        }),
    ] {
        refused(&mut handshaking(), &encoded(&frame));
    }
    // A Welcome before the Hello went out.
    let mut early = Client::new(ClientConfig::new("dev-order").unwrap(), T0);
    assert!(early.poll_connect(T0));
    early.handle_connected(T0);
    refused(&mut early, &welcome());
    // A second Welcome on an open connection.
    let mut client = handshaking();
    assert_eq!(receive(&mut client, T0, &welcome()), Ok(Some("welcome")));
    assert_eq!(client.connection_id(), 2);
    refused(&mut client, &welcome());
}

/// Hello, subscribe, unsubscribe and publish reach a client undecoded (its decoder knows only
/// the kinds it receives): whatever their body, the client closes with a protocol error that
/// names them, and counts the frame as received.
#[test]
fn an_open_client_refuses_the_kinds_only_a_server_receives() {
    let channel = ChannelRef { channel: "c" };
    let server_only = [
        encoded(&Frame::Hello(Hello {
            client_id: "dev",
            boot_id: 1,
            token: None,
            capabilities: 0,
            max_frame: 4096,
            firmware: None,
        })),
        encoded(&Frame::Subscribe(channel)),
        encoded(&Frame::Unsubscribe(channel)),
        encoded(&Frame::Publish(Publish {
            channel: "c",
            payload: Payload::Empty,
            exclude_sender: false,
        })),
        // A hello whose body is cut short: the kind alone decides.
        vec![1, 0, 3],
    ];
    for bytes in server_only {
        let (mut client, _server) = open();
        let received = client.stats().frames_received;
        let error = receive(&mut client, T0, &bytes).expect_err("a protocol error");
        assert_eq!(error.code, CloseCode::PROTOCOL_ERROR);
        assert_eq!(error.reason, "unexpected frame for a client", "{bytes:?}");
        assert_eq!(client.state(), State::Closing);
        assert_eq!(client.stats().frames_received, received + 1);
    }
}

#[test]
fn every_scheduled_reconnect_is_counted() {
    let (mut client, _server) = open();
    assert_eq!(client.stats().reconnects, 0);
    client.handle_disconnected(at(1_000));
    assert_eq!(client.stats().reconnects, 1);
    // The next attempt fails before the transport is up.
    let retry = client.poll_timeout().expect("a retry time");
    assert!(client.poll_connect(retry));
    client.handle_connect_failed(retry);
    assert_eq!(client.stats().reconnects, 2);
}

#[test]
fn the_responder_knows_which_requests_it_is_answering() {
    let (mut client, mut server) = open();
    let mut buf = [0u8; 256];
    let (id, n) = client
        .request(T0, "app/work", Payload::Empty, None, &mut buf)
        .unwrap();
    assert!(!server.is_answering(id), "not arrived yet");
    assert_eq!(receive(&mut server, T0, &buf[..n]), Ok(Some("request")));
    assert!(server.is_answering(id));
    assert!(!server.is_answering(id + 1));
    assert_eq!(server.requests_answering(), 1);
    server
        .end(id, sentelite_core::Status::OK, Payload::Empty, &mut buf)
        .unwrap();
    assert!(!server.is_answering(id), "its End was sent");
    assert_eq!(server.requests_answering(), 0);
}

#[test]
fn frames_and_bytes_sent_are_counted_on_both_sides() {
    let mut client = Client::new(ClientConfig::new("dev-count").unwrap(), T0);
    let mut server = Server::new(ServerConfig::default(), T0);
    assert!(client.poll_connect(T0));
    client.handle_connected(T0);
    let hello = transmit(&mut client).expect("Hello");
    receive(&mut server, T0, &hello).unwrap();
    let mut buf = [0u8; 256];
    let welcome = server.accept(T0, "u", 1, &mut buf).unwrap();
    assert_eq!(
        (client.stats().frames_sent, client.stats().bytes_sent),
        (1, hello.len() as u64)
    );
    assert_eq!(
        (server.stats().frames_sent, server.stats().bytes_sent),
        (1, welcome as u64)
    );
    let event = server
        .send_event("app/e", Payload::Bytes(b"xyz"), &mut buf)
        .unwrap();
    assert_eq!(
        (server.stats().frames_sent, server.stats().bytes_sent),
        (2, (welcome + event) as u64)
    );
}

#[test]
fn closing_while_still_connecting_sends_nothing_and_lets_go_of_the_transport() {
    let mut client = Client::new(ClientConfig::new("dev-early").unwrap(), T0);
    assert!(client.poll_connect(T0));
    assert_eq!(client.state(), State::Connecting);
    client.close(CloseCode::NORMAL, "changed my mind");
    assert_eq!(client.state(), State::Closing);
    assert!(client.wants_disconnect(), "no Close frame to send first");
    assert_eq!(transmit(&mut client), None);
}

#[test]
fn frames_and_bytes_received_are_counted() {
    let (mut client, mut server) = open();
    let mut buf = [0u8; 256];
    let before = server.stats();
    let n = client
        .send_event("app/e", Payload::Bytes(b"abc"), &mut buf)
        .unwrap();
    receive(&mut server, T0, &buf[..n]).unwrap();
    let n2 = client
        .send_event("app/e", Payload::Empty, &mut buf)
        .unwrap();
    receive(&mut server, T0, &buf[..n2]).unwrap();
    let after = server.stats();
    assert_eq!(after.frames_received - before.frames_received, 2);
    assert_eq!(
        after.bytes_received - before.bytes_received,
        (n + n2) as u64
    );
}

#[test]
fn application_frames_before_the_handshake_are_protocol_errors() {
    let frames = [
        Frame::Event(Event {
            event: "app/e",
            payload: Payload::Empty,
        }),
        Frame::Request(Request {
            id: 1,
            event: "app/r",
            timeout_ms: 0,
            payload: Payload::Empty,
        }),
        Frame::Cancel(Cancel { id: 1 }),
        Frame::Reply(Reply {
            id: 1,
            seq: 0,
            payload: Payload::Empty,
        }),
        Frame::End(End {
            id: 1,
            status: sentelite_core::Status::OK,
            payload: Payload::Empty,
        }),
    ];
    for frame in frames {
        let mut server = Server::new(ServerConfig::default(), T0);
        refused(&mut server, &encoded(&frame));
        refused(&mut handshaking(), &encoded(&frame));
    }
}

#[test]
fn pongs_beyond_the_control_queue_are_counted_as_dropped() {
    let (_client, mut server) = open();
    let ping = encoded(&Frame::Ping(Ping { nonce: 1 }));
    // Ten pings and no transmit in between: the control queue holds eight answers.
    for _ in 0..10 {
        assert_eq!(receive(&mut server, T0, &ping), Ok(None));
    }
    assert_eq!(server.stats().control_dropped, 2);
    let mut pongs = 0;
    while let Some(frame) = transmit(&mut server) {
        assert!(matches!(decode(&frame), Ok(Frame::Pong(_))));
        pongs += 1;
    }
    assert_eq!(pongs, 8);
}

#[test]
fn late_cancels_and_late_answers_are_counted_not_delivered() {
    let (mut client, mut server) = open();
    let mut buf = [0u8; 256];
    let (id, n) = client
        .request(T0, "app/work", Payload::Empty, None, &mut buf)
        .unwrap();
    receive(&mut server, T0, &buf[..n]).unwrap();
    let n = server
        .end(id, sentelite_core::Status::OK, Payload::Empty, &mut buf)
        .unwrap();
    let end = buf[..n].to_vec();
    // The client cancels while the End is on its way: the Cancel arrives after the End left.
    let n = client.cancel(id, &mut buf).unwrap();
    assert_eq!(receive(&mut server, T0, &buf[..n]), Ok(None));
    assert_eq!(server.stats().late_cancels, 1);
    // The End reaches a client that no longer waits for it, then a Reply for no request.
    assert_eq!(receive(&mut client, T0, &end), Ok(None));
    let reply = encoded(&Frame::Reply(Reply {
        id: id + 100,
        seq: 0,
        payload: Payload::Empty,
    }));
    assert_eq!(receive(&mut client, T0, &reply), Ok(None));
    assert_eq!(client.stats().late_replies, 2);
    assert!(client.is_open() && server.is_open());
}

#[test]
fn requests_beyond_the_limit_are_refused_busy_and_counted() {
    let (_client, mut server) = open();
    let limit = server.answer_limit() as u32;
    for id in 1..=limit + 2 {
        let request = encoded(&Frame::Request(Request {
            id,
            event: "app/work",
            timeout_ms: 0,
            payload: Payload::Empty,
        }));
        let delivered = receive(&mut server, T0, &request).unwrap();
        assert_eq!(delivered.is_some(), id <= limit, "request {id}");
    }
    assert_eq!(server.stats().requests_refused, 2);
    let busy = transmit(&mut server).expect("a BUSY end");
    assert!(matches!(
        decode(&busy),
        Ok(Frame::End(e)) if e.id == limit + 1 && e.status == sentelite_core::Status::BUSY
    ));
}

#[test]
fn a_ping_that_finds_the_control_queue_full_is_counted_as_dropped() {
    let (mut client, _server) = open();
    let ping = encoded(&Frame::Ping(Ping { nonce: 9 }));
    // Eight pongs owed and not yet sent fill the control queue.
    for _ in 0..8 {
        assert_eq!(receive(&mut client, T0, &ping), Ok(None));
    }
    assert_eq!(client.stats().control_dropped, 0);
    tick(&mut client, at(30_000));
    assert_eq!(
        client.stats().control_dropped,
        1,
        "the heartbeat's own Ping"
    );
}

#[test]
fn a_server_takes_one_hello_only() {
    let hello = encoded(&Frame::Hello(Hello {
        client_id: "dev-twice",
        boot_id: 1,
        token: None,
        capabilities: 0,
        max_frame: 4096,
        firmware: None,
    }));
    // Twice before the application accepted.
    let mut server = Server::new(ServerConfig::default(), T0);
    assert_eq!(receive(&mut server, T0, &hello), Ok(Some("hello")));
    refused(&mut server, &hello);
    // Again once open.
    let (_client, mut server) = open();
    refused(&mut server, &hello);
}

#[test]
fn channel_frames_before_the_handshake_are_protocol_errors_at_the_server() {
    let channel = ChannelRef { channel: "c" };
    for frame in [
        Frame::Subscribe(channel),
        Frame::Unsubscribe(channel),
        Frame::Publish(Publish {
            channel: "c",
            exclude_sender: false,
            payload: Payload::Empty,
        }),
    ] {
        let mut server = Server::new(ServerConfig::default(), T0);
        refused(&mut server, &encoded(&frame));
    }
}

#[test]
fn a_server_accepts_only_after_a_hello_and_only_once() {
    let mut buf = [0u8; 256];
    let mut server = Server::new(ServerConfig::default(), T0);
    assert_eq!(
        server.accept(T0, "u", 1, &mut buf),
        Err(SendError::NotOpen),
        "no Hello yet"
    );
    assert_eq!(server.state(), State::Handshaking);
    let (_client, mut server) = open();
    assert_eq!(
        server.accept(T0, "u", 2, &mut buf),
        Err(SendError::NotOpen),
        "already open"
    );
    assert_eq!(server.stats().handshakes, 1);
}

#[test]
fn the_server_tells_a_publisher_how_many_messages_were_dropped() {
    let (mut client, mut server) = open();
    let mut buf = [0u8; 256];
    let n = server.publish_dropped("room", 3, &mut buf).unwrap();
    assert!(matches!(
        decode(&buf[..n]),
        Ok(Frame::PublishDropped(p)) if p.channel == "room" && p.dropped == 3
    ));
    assert_eq!(
        receive(&mut client, T0, &buf[..n]),
        Ok(Some("publish-dropped"))
    );
}
