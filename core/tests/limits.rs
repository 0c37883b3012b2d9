//! The sessions' size and queue limits, driven through the public session API: frames of
//! exactly the limit pass, one byte more closes with `FRAME_TOO_LARGE` on either side, our own
//! frames are held to the peer's announced limit, and an event queue the application does not
//! drain keeps the newest events and counts the ones it dropped.

use sentelite_core::codec::{EncodeError, encode, encoded_len};
use sentelite_core::frame::{Event, Reply};
use sentelite_core::{
    ClientConfig, ClientSession, CloseCode, Duration, Frame, Initiator, Instant, Payload,
    SendError, ServerConfig, ServerSession, SessionEvent, State,
};

type Client = ClientSession<16, 8>;
type Server = ServerSession<16>;

const T0: Instant = Instant::ZERO;

/// A client and a server session whose handshake has completed, with the given frame limits.
fn open(client_max: u32, server_max: u32) -> (Client, Server) {
    let mut config = ClientConfig::new("dev-limits").unwrap();
    config.max_frame = client_max;
    let mut client = Client::new(config, T0);
    let mut server = Server::new(
        ServerConfig {
            max_frame: server_max,
            ..ServerConfig::default()
        },
        T0,
    );
    let mut buf = [0u8; 512];
    assert!(client.poll_connect(T0));
    client.handle_connected(T0);
    let n = client.poll_transmit(&mut buf).unwrap().expect("Hello");
    let hello = buf[..n].to_vec();
    assert!(matches!(
        server.handle_frame(T0, &hello),
        Ok(Some(Frame::Hello(_)))
    ));
    let n = server.accept(T0, "u-1", 1, &mut buf).unwrap();
    let welcome = buf[..n].to_vec();
    assert!(matches!(
        client.handle_frame(T0, &welcome),
        Ok(Some(Frame::Welcome(_)))
    ));
    assert!(client.is_open() && server.is_open());
    while client.poll_event().is_some() {}
    while server.poll_event().is_some() {}
    (client, server)
}

/// An encoded Event frame of exactly `len` bytes.
fn event_of_len(len: usize) -> Vec<u8> {
    let payload = vec![0xab; len];
    // Shrink the payload until the whole frame fits `len`; varint lengths make it stepwise.
    for body in (0..len).rev() {
        let frame = Frame::Event(Event {
            event: "e",
            payload: Payload::Bytes(&payload[..body]),
        });
        if encoded_len(&frame) == len {
            let mut buf = vec![0; len];
            assert_eq!(encode(&frame, &mut buf), Ok(len));
            return buf;
        }
    }
    panic!("no Event frame of {len} bytes");
}

/// The code of the Close frame the session queued.
fn queued_close(poll: impl FnOnce(&mut [u8]) -> Result<Option<usize>, EncodeError>) -> CloseCode {
    let mut buf = [0u8; 256];
    let n = poll(&mut buf).unwrap().expect("a Close frame is queued");
    match sentelite_core::decode(&buf[..n]) {
        Ok(Frame::Close(close)) => close.code,
        other => panic!("expected a Close frame, got {other:?}"),
    }
}

#[test]
fn the_server_takes_a_frame_of_its_limit_and_closes_on_one_byte_more() {
    let (_, mut server) = open(4096, 256);
    let at_limit = event_of_len(256);
    assert!(matches!(
        server.handle_frame(T0, &at_limit),
        Ok(Some(Frame::Event(_)))
    ));
    let over = event_of_len(257);
    let err = server
        .handle_frame(T0, &over)
        .expect_err("a frame over max_frame is refused");
    assert_eq!(err.code, CloseCode::FRAME_TOO_LARGE);
    assert_eq!(server.state(), State::Closing);
    assert_eq!(
        queued_close(|buf| server.poll_transmit(buf)),
        CloseCode::FRAME_TOO_LARGE
    );
    assert_eq!(
        server.local_close().map(|(code, _)| code),
        Some(CloseCode::FRAME_TOO_LARGE)
    );
}

#[test]
fn a_client_receiving_an_oversize_message_closes_and_reconnects() {
    let (mut client, _) = open(512, 4096);
    let mut buf = [0u8; 64];
    let (id, _) = client
        .request(T0, "op", Payload::Empty, None, &mut buf)
        .unwrap();
    let part = |len: usize| {
        let payload = vec![7u8; len];
        let mut frame = vec![0u8; len + 16];
        let n = encode(
            &Frame::Reply(Reply {
                id,
                seq: 0,
                payload: Payload::Bytes(&payload),
            }),
            &mut frame,
        )
        .unwrap();
        frame.truncate(n);
        frame
    };
    // 512 bytes exactly is accepted, 513 is not.
    let mut fits = part(500);
    while fits.len() < 512 {
        fits = part(500 + 512 - fits.len());
    }
    assert_eq!(fits.len(), 512);
    assert!(matches!(
        client.handle_frame(T0, &fits),
        Ok(Some(Frame::Reply(_)))
    ));
    let mut over = part(501);
    while over.len() < 513 {
        over = part(501 + 513 - over.len());
    }
    assert_eq!(over.len(), 513);
    let err = client.handle_frame(T0, &over).expect_err("over the limit");
    assert_eq!(err.code, CloseCode::FRAME_TOO_LARGE);
    assert_eq!(
        queued_close(|buf| client.poll_transmit(buf)),
        CloseCode::FRAME_TOO_LARGE
    );
    assert!(client.wants_disconnect());
    client.handle_disconnected(T0);
    let mut events = Vec::new();
    while let Some(e) = client.poll_event() {
        events.push(e);
    }
    assert!(
        events.contains(&SessionEvent::Closed {
            code: CloseCode::FRAME_TOO_LARGE,
            initiator: Initiator::Local,
        }),
        "{events:?}"
    );
    assert!(events.contains(&SessionEvent::RequestEnded {
        id,
        end: sentelite_core::RequestEnd::Closed,
    }));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, SessionEvent::ReconnectScheduled { attempt: 1, .. })),
        "{events:?}"
    );
}

#[test]
fn our_frames_are_held_to_the_limit_the_peer_announced() {
    // The server announced 256 bytes in its Welcome: the client refuses to send more.
    let (mut client, _) = open(4096, 256);
    let mut buf = [0u8; 1024];
    let payload = [1u8; 300];
    let err = client
        .send_event("e", Payload::Bytes(&payload), &mut buf)
        .expect_err("over the server's limit");
    assert!(
        matches!(
            err,
            SendError::Encode(EncodeError::TooLarge { max: 256, .. })
        ),
        "{err:?}"
    );
    assert!(client.is_open(), "refusing to send does not close");
    let n = client
        .send_event("e", Payload::Bytes(&payload[..200]), &mut buf)
        .unwrap();
    assert!(n <= 256);
}

#[test]
fn a_request_too_large_to_send_does_not_hold_a_slot() {
    let (mut client, _) = open(4096, 256);
    let mut buf = [0u8; 1024];
    let big = [1u8; 300];
    for _ in 0..32 {
        let err = client
            .request(T0, "op", Payload::Bytes(&big), None, &mut buf)
            .expect_err("over the server's limit");
        assert!(
            matches!(err, SendError::Encode(EncodeError::TooLarge { .. })),
            "{err:?}"
        );
    }
    assert_eq!(client.requests_in_flight(), 0);
    // All 16 slots are still free.
    for _ in 0..16 {
        client
            .request(T0, "op", Payload::Empty, None, &mut buf)
            .expect("a free slot");
    }
    assert!(
        client.poll_event().is_none(),
        "no end reported for the refused ones"
    );
}

#[test]
fn an_undrained_event_queue_keeps_the_newest_and_counts_the_dropped() {
    let mut config = ClientConfig::new("dev-queue").unwrap();
    config.backoff_initial = Duration::from_millis(10);
    config.backoff_max = Duration::from_millis(10);
    let mut client = Client::new(config, T0);
    // Twelve refused connections, nobody reading events: twelve ReconnectScheduled.
    let mut now = T0;
    for _ in 0..12 {
        now = client.poll_timeout().unwrap_or(now).max(now);
        client.handle_timeout(now);
        assert!(client.poll_connect(now), "an attempt is due at {now:?}");
        client.handle_connect_failed(now);
    }
    let mut attempts = Vec::new();
    while let Some(event) = client.poll_event() {
        match event {
            SessionEvent::ReconnectScheduled { attempt, .. } => attempts.push(attempt),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(attempts, (5..=12).collect::<Vec<u32>>(), "the newest eight");
    assert_eq!(client.stats().events_dropped, 4);
}
