//! Client and server sessions fed hostile bytes and arbitrary valid frames in every state.
//!
//! Beyond "never panics", each run checks what must hold whatever the peer sends:
//! a protocol error always leaves the session `Closing`, the timer never asks to be called in
//! the past twice, and every request this side issued ends exactly once (an `End` frame
//! delivered, or one `RequestEnded` event).

use std::collections::HashMap;

use proptest::prelude::*;
use sentelite_core::frame::{Hello, Welcome};
use sentelite_core::{
    ClientConfig, ClientSession, CloseCode, Duration, Frame, Instant, Payload, ServerConfig,
    ServerSession, Session, SessionEvent, State,
};

use crate::strategies::{OwnedFrame, encode_vec, frame};

type Client = ClientSession<4, 2>;
type Server = ServerSession<4>;

/// Where a session is put before the operations start.
#[derive(Debug, Clone, Copy)]
enum ClientStart {
    Idle,
    Connecting,
    HelloDue,
    Handshaking,
    Open,
    Closing,
    Closed,
    Reconnecting,
}

#[derive(Debug, Clone, Copy)]
enum ServerStart {
    Handshaking,
    HelloSeen,
    Open,
    Closing,
    Closed,
}

/// One thing that happens to a session.
#[derive(Debug, Clone)]
enum Op {
    /// Damaged or random bytes from the peer.
    Raw(Vec<u8>),
    /// A well-formed frame from the peer (possibly one the role forbids).
    Valid(OwnedFrame),
    /// Time passes; due timers fire.
    Advance(u16),
    /// The application starts a request (timeout in ms; 0 = none).
    Request(u16),
    /// The application cancels one of its requests.
    Cancel(prop::sample::Index),
    /// The transport drops.
    Disconnect,
    /// Client: connect if due. Server: accept a pending Hello.
    Connect,
    /// The application closes.
    Close,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => frame().prop_map(Op::Valid),
        2 => prop::collection::vec(any::<u8>(), 0..40).prop_map(Op::Raw),
        3 => (0u16..2500).prop_map(Op::Advance),
        2 => (0u16..3000).prop_map(Op::Request),
        1 => any::<prop::sample::Index>().prop_map(Op::Cancel),
        1 => Just(Op::Disconnect),
        2 => Just(Op::Connect),
        1 => Just(Op::Close),
    ]
}

fn client_start() -> impl Strategy<Value = ClientStart> {
    prop_oneof![
        Just(ClientStart::Idle),
        Just(ClientStart::Connecting),
        Just(ClientStart::HelloDue),
        Just(ClientStart::Handshaking),
        Just(ClientStart::Open),
        Just(ClientStart::Closing),
        Just(ClientStart::Closed),
        Just(ClientStart::Reconnecting),
    ]
}

fn server_start() -> impl Strategy<Value = ServerStart> {
    prop_oneof![
        Just(ServerStart::Handshaking),
        Just(ServerStart::HelloSeen),
        Just(ServerStart::Open),
        Just(ServerStart::Closing),
        Just(ServerStart::Closed),
    ]
}

fn welcome_bytes() -> Vec<u8> {
    encode_vec(&Frame::Welcome(Welcome {
        uid: "u-1",
        connection_id: 1,
        heartbeat_ms: 1000,
        heartbeat_timeout_ms: 3000,
        max_frame: 4096,
        max_pending: 4,
        max_subscriptions: 2,
    }))
}

fn hello_bytes() -> Vec<u8> {
    encode_vec(&Frame::Hello(Hello {
        client_id: "dev",
        boot_id: 1,
        token: None,
        capabilities: 0,
        max_frame: 4096,
        firmware: None,
    }))
}

/// Bookkeeping shared by both roles: which requests were issued and how often each ended.
#[derive(Default)]
struct Ledger {
    issued: Vec<u32>,
    ends: HashMap<u32, u32>,
}

impl Ledger {
    fn ended(&mut self, id: u32) -> Result<(), TestCaseError> {
        prop_assert!(
            self.issued.contains(&id),
            "end for a request never issued: {id}"
        );
        let n = self.ends.entry(id).or_insert(0);
        *n += 1;
        prop_assert_eq!(*n, 1, "request {} ended twice", id);
        Ok(())
    }

    fn all_ended_once(&self) -> Result<(), TestCaseError> {
        for id in &self.issued {
            prop_assert_eq!(
                self.ends.get(id).copied(),
                Some(1),
                "request {} did not end once",
                id
            );
        }
        Ok(())
    }
}

/// The common drive loop, parameterised by role through these hooks.
trait Role {
    fn handle(
        &mut self,
        now: Instant,
        bytes: &[u8],
        ledger: &mut Ledger,
    ) -> Result<(), TestCaseError>;
    fn cur_state(&self) -> State;
    fn drain(&mut self, now: Instant, ledger: &mut Ledger) -> Result<(), TestCaseError>;
    fn timeout(&self) -> Option<Instant>;
    fn fire(&mut self, now: Instant);
    fn connect(&mut self, now: Instant);
    fn do_request(&mut self, now: Instant, timeout_ms: u16, ledger: &mut Ledger);
    fn do_cancel(&mut self, id: u32);
    fn do_close(&mut self);
    fn disconnect(&mut self, now: Instant);
}

/// Checks what a single `handle_frame` result must satisfy.
fn check_handled<'a>(
    before: State,
    after: State,
    result: &Result<Option<Frame<'a>>, sentelite_core::ProtocolError>,
    ledger: &mut Ledger,
) -> Result<(), TestCaseError> {
    match result {
        Err(_) => {
            prop_assert!(matches!(before, State::Handshaking | State::Open));
            prop_assert_eq!(after, State::Closing, "a protocol error closes the session");
        }
        Ok(Some(Frame::End(end))) => ledger.ended(end.id)?,
        Ok(Some(_)) => {
            prop_assert!(matches!(before, State::Handshaking | State::Open));
        }
        Ok(None) => {}
    }
    if matches!(
        before,
        State::Idle | State::Connecting | State::Closing | State::Closed
    ) {
        prop_assert_eq!(
            before,
            after,
            "frames are ignored outside a live connection"
        );
        prop_assert!(matches!(result, Ok(None)));
    }
    Ok(())
}

fn drain_events(
    next: &mut dyn FnMut() -> Option<SessionEvent>,
    ledger: &mut Ledger,
) -> Result<(), TestCaseError> {
    for _ in 0..64 {
        match next() {
            None => return Ok(()),
            Some(SessionEvent::RequestEnded { id, .. }) => ledger.ended(id)?,
            Some(_) => {}
        }
    }
    Err(TestCaseError::fail("event queue never drained"))
}

/// The one step that differs by role: client connects when due, server accepts a Hello.
trait Connect {
    fn connect(&mut self, now: Instant);
}

impl Connect for Client {
    fn connect(&mut self, now: Instant) {
        if self.poll_connect(now) {
            self.handle_connected(now);
        }
    }
}

impl Connect for Server {
    fn connect(&mut self, now: Instant) {
        let _ = self.accept(now, "u", 1, &mut [0u8; 256]);
    }
}

impl<T: Session<4> + Connect> Role for T {
    fn handle(
        &mut self,
        now: Instant,
        bytes: &[u8],
        ledger: &mut Ledger,
    ) -> Result<(), TestCaseError> {
        let before = self.state();
        let result = Session::handle_frame(self, now, bytes);
        let after = self.state();
        check_handled(before, after, &result, ledger)
    }
    fn cur_state(&self) -> State {
        self.state()
    }
    fn drain(&mut self, now: Instant, ledger: &mut Ledger) -> Result<(), TestCaseError> {
        let mut buf = [0u8; 512];
        for _ in 0..64 {
            match Session::poll_transmit(self, &mut buf) {
                Ok(Some(n)) => prop_assert!(sentelite_core::decode(&buf[..n]).is_ok()),
                Ok(None) | Err(_) => break,
            }
        }
        drain_events(&mut || self.poll_event(), ledger)?;
        if self.wants_disconnect() {
            Session::handle_disconnected(self, now);
            drain_events(&mut || self.poll_event(), ledger)?;
        }
        Ok(())
    }
    fn timeout(&self) -> Option<Instant> {
        Session::poll_timeout(self)
    }
    fn fire(&mut self, now: Instant) {
        Session::handle_timeout(self, now);
    }
    fn connect(&mut self, now: Instant) {
        Connect::connect(self, now);
    }
    fn do_request(&mut self, now: Instant, timeout_ms: u16, ledger: &mut Ledger) {
        let timeout = (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms.into()));
        let mut buf = [0u8; 128];
        if let Ok((id, _)) = self.request(now, "op/x", Payload::Empty, timeout, &mut buf) {
            ledger.issued.push(id);
        }
    }
    fn do_cancel(&mut self, id: u32) {
        let _ = self.cancel(id, &mut [0u8; 64]);
    }
    fn do_close(&mut self) {
        self.close(CloseCode::NORMAL, "app");
    }
    fn disconnect(&mut self, now: Instant) {
        Session::handle_disconnected(self, now);
    }
}

fn run(role: &mut dyn Role, mut now: Instant, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut ledger = Ledger::default();
    role.drain(now, &mut ledger)?;
    for op in ops {
        match op {
            Op::Raw(bytes) => role.handle(now, bytes, &mut ledger)?,
            Op::Valid(owned) => role.handle(now, &encode_vec(&owned.frame()), &mut ledger)?,
            Op::Advance(ms) => {
                let until = now + Duration::from_millis((*ms).into());
                // Fire every timer due on the way, in order, as an adapter would.
                for _ in 0..1000 {
                    match role.timeout() {
                        Some(at) if at <= until => {
                            now = now.max(at);
                            role.fire(now);
                            if let Some(again) = role.timeout() {
                                prop_assert!(
                                    again > now || role.cur_state() == State::Idle,
                                    "timer due again at once after firing ({:?})",
                                    role.cur_state()
                                );
                            }
                            role.drain(now, &mut ledger)?;
                            if role.cur_state() == State::Idle {
                                role.connect(now);
                            }
                        }
                        _ => break,
                    }
                }
                now = until;
            }
            Op::Request(timeout_ms) => role.do_request(now, *timeout_ms, &mut ledger),
            Op::Cancel(which) => {
                if !ledger.issued.is_empty() {
                    role.do_cancel(*which.get(&ledger.issued));
                }
            }
            Op::Disconnect => role.disconnect(now),
            Op::Connect => role.connect(now),
            Op::Close => role.do_close(),
        }
        role.drain(now, &mut ledger)?;
    }
    // However the run went, dropping the transport ends everything still in flight.
    role.disconnect(now);
    role.drain(now, &mut ledger)?;
    ledger.all_ended_once()
}

fn client_in(start: ClientStart, now: Instant) -> Client {
    let mut client = Client::new(ClientConfig::new("prop-client").unwrap(), now);
    let mut buf = [0u8; 256];
    let want = match start {
        ClientStart::Idle => State::Idle,
        ClientStart::Closed => {
            client.shutdown("done");
            State::Closed
        }
        _ => {
            assert!(client.poll_connect(now));
            if !matches!(start, ClientStart::Connecting) {
                client.handle_connected(now);
            }
            if !matches!(start, ClientStart::Connecting | ClientStart::HelloDue) {
                assert!(matches!(client.poll_transmit(&mut buf), Ok(Some(_))));
            }
            if matches!(
                start,
                ClientStart::Open | ClientStart::Closing | ClientStart::Reconnecting
            ) {
                client.handle_frame(now, &welcome_bytes()).unwrap();
                client.subscribe("chan").unwrap();
            }
            match start {
                ClientStart::Closing => client.close(CloseCode::NORMAL, "test"),
                ClientStart::Reconnecting => client.handle_disconnected(now),
                _ => {}
            }
            match start {
                ClientStart::Connecting => State::Connecting,
                ClientStart::HelloDue | ClientStart::Handshaking => State::Handshaking,
                ClientStart::Open => State::Open,
                ClientStart::Closing => State::Closing,
                _ => State::Idle,
            }
        }
    };
    assert_eq!(client.state(), want, "setup for {start:?}");
    client
}

fn server_in(start: ServerStart, now: Instant) -> Server {
    let config = ServerConfig {
        heartbeat_interval: Duration::from_millis(1000),
        heartbeat_timeout: Duration::from_millis(3000),
        handshake_timeout: Duration::from_millis(2000),
        max_frame: 4096,
        ..ServerConfig::default()
    };
    let mut server = Server::new(config, now);
    if !matches!(start, ServerStart::Handshaking) {
        let hello = hello_bytes();
        assert!(matches!(
            server.handle_frame(now, &hello),
            Ok(Some(Frame::Hello(_)))
        ));
    }
    if matches!(
        start,
        ServerStart::Open | ServerStart::Closing | ServerStart::Closed
    ) {
        server.accept(now, "u", 1, &mut [0u8; 256]).unwrap();
    }
    match start {
        ServerStart::Closing => server.close(CloseCode::GOING_AWAY, "test"),
        ServerStart::Closed => server.handle_disconnected(now),
        _ => {}
    }
    server
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn client_survives_anything_in_any_state(
        start in client_start(),
        ops in prop::collection::vec(op(), 0..24),
    ) {
        let now = Instant::from_millis(1);
        let mut client = client_in(start, now);
        run(&mut client, now, &ops)?;
    }

    #[test]
    fn server_survives_anything_in_any_state(
        start in server_start(),
        ops in prop::collection::vec(op(), 0..24),
    ) {
        let now = Instant::from_millis(1);
        let mut server = server_in(start, now);
        run(&mut server, now, &ops)?;
    }

    #[test]
    fn hostile_bytes_in_every_state_never_panic(
        client_state in client_start(),
        server_state in server_start(),
        inputs in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 1..8),
    ) {
        let now = Instant::from_millis(5);
        let mut client = client_in(client_state, now);
        let mut server = server_in(server_state, now);
        let mut ledger = Ledger::default();
        for bytes in &inputs {
            Role::handle(&mut client, now, bytes, &mut ledger)?;
            Role::handle(&mut server, now, bytes, &mut ledger)?;
        }
    }
}
