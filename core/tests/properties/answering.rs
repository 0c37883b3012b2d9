//! The responder side of both roles against a reference model: whatever mix of requests,
//! cancels and answers the peer and the application produce, a session never has more peer
//! requests in flight than its limit, answers every request beyond the limit `BUSY` itself,
//! drops a repeated id in flight, keeps a cancelled request's slot until the application's End,
//! and refuses answers for requests it is not answering.

use std::collections::HashMap;

use proptest::prelude::*;
use sentelite_core::frame::{Cancel, End, Hello, Request, Welcome};
use sentelite_core::{
    ClientConfig, ClientSession, Frame, Instant, Payload, SendError, ServerConfig, ServerSession,
    Session, State, Status,
};

use crate::strategies::encode_vec;

/// The limit both roles run with: small, so "full" happens often.
const LIMIT: usize = 3;

type Client = ClientSession<2, 1, LIMIT>;
/// Capacity above the configured limit: the configured limit is what must hold.
type Server = ServerSession<2, 8>;

#[derive(Debug, Clone, Copy)]
enum Op {
    PeerRequest(u32),
    PeerCancel(u32),
    AppReply(u32),
    AppEnd(u32),
}

fn op() -> impl Strategy<Value = Op> {
    // Ids from a small range, so duplicates and stale ids are common.
    prop_oneof![
        4 => (1u32..7).prop_map(Op::PeerRequest),
        2 => (1u32..7).prop_map(Op::PeerCancel),
        1 => (1u32..7).prop_map(Op::AppReply),
        3 => (1u32..7).prop_map(Op::AppEnd),
    ]
}

fn open_client(now: Instant) -> Client {
    let mut client = Client::new(ClientConfig::new("prop-client").unwrap(), now);
    assert!(client.poll_connect(now));
    client.handle_connected(now);
    let mut buf = [0u8; 256];
    assert!(matches!(client.poll_transmit(&mut buf), Ok(Some(_))));
    let welcome = encode_vec(&Frame::Welcome(Welcome {
        uid: "u",
        connection_id: 1,
        heartbeat_ms: 1000,
        heartbeat_timeout_ms: 3000,
        max_frame: 4096,
        max_pending: 4,
        max_subscriptions: 1,
    }));
    client.handle_frame(now, &welcome).unwrap();
    assert_eq!(client.state(), State::Open);
    client
}

fn open_server(now: Instant) -> Server {
    let config = ServerConfig {
        max_pending: LIMIT as u16,
        ..ServerConfig::default()
    };
    let mut server = Server::new(config, now);
    let hello = encode_vec(&Frame::Hello(Hello {
        client_id: "dev",
        boot_id: 1,
        token: None,
        capabilities: 0,
        max_frame: 4096,
        firmware: None,
    }));
    assert!(matches!(
        server.handle_frame(now, &hello),
        Ok(Some(Frame::Hello(_)))
    ));
    let mut buf = [0u8; 256];
    let n = server.accept(now, "u", 1, &mut buf).unwrap();
    assert!(matches!(
        sentelite_core::decode(&buf[..n]),
        Ok(Frame::Welcome(w)) if usize::from(w.max_pending) == LIMIT
    ));
    server
}

/// The frames the session itself queued, decoded.
fn transmitted<S: Session<2, R>, const R: usize>(s: &mut S) -> Vec<(u32, Status)> {
    let mut out = Vec::new();
    let mut buf = [0u8; 256];
    while let Ok(Some(n)) = s.poll_transmit(&mut buf) {
        match sentelite_core::decode(&buf[..n]) {
            Ok(Frame::End(End { id, status, .. })) => out.push((id, status)),
            Ok(Frame::Close(c)) => out.push((u32::MAX, Status(c.code.0 as u8))),
            _ => {}
        }
    }
    out
}

/// Runs `ops` against a session and the model (id → cancelled). A repeated id in flight must
/// be dropped exactly when the model says it is in flight.
fn run<S: Session<2, R>, const R: usize>(mut s: S, ops: &[Op]) -> Result<(), TestCaseError> {
    let now = Instant::ZERO;
    let mut model: HashMap<u32, bool> = HashMap::new();
    let mut buf = [0u8; 256];
    for &op in ops {
        match op {
            Op::PeerRequest(id) => {
                let bytes = encode_vec(&Frame::Request(Request {
                    id,
                    event: "x/y",
                    timeout_ms: 0,
                    payload: Payload::Empty,
                }));
                let repeats_before = s.stats().duplicate_requests;
                let result = s.handle_frame(now, &bytes);
                if model.contains_key(&id) {
                    prop_assert!(
                        matches!(result, Ok(None)),
                        "a repeated id in flight is dropped, not delivered or fatal"
                    );
                    prop_assert!(transmitted(&mut s).is_empty(), "nothing answers the repeat");
                    prop_assert_eq!(s.state(), State::Open);
                    prop_assert_eq!(s.stats().duplicate_requests, repeats_before + 1);
                    continue;
                }
                let delivered = matches!(result, Ok(Some(Frame::Request(r))) if r.id == id);
                let sent = transmitted(&mut s);
                if model.len() < LIMIT {
                    prop_assert!(delivered, "request {} under the limit not delivered", id);
                    prop_assert!(sent.is_empty());
                    model.insert(id, false);
                } else {
                    prop_assert!(!delivered, "request {} beyond the limit delivered", id);
                    prop_assert_eq!(sent, vec![(id, Status::BUSY)]);
                }
            }
            Op::PeerCancel(id) => {
                let bytes = encode_vec(&Frame::Cancel(Cancel { id }));
                let result = s.handle_frame(now, &bytes).unwrap();
                let fresh = model.get(&id) == Some(&false);
                prop_assert_eq!(
                    matches!(result, Some(Frame::Cancel(c)) if c.id == id),
                    fresh,
                    "cancel of {} delivered only while in flight and not yet cancelled",
                    id
                );
                if fresh {
                    model.insert(id, true);
                }
            }
            Op::AppReply(id) => {
                let result = s.reply(id, 0, Payload::Empty, &mut buf);
                if model.contains_key(&id) {
                    prop_assert!(result.is_ok());
                } else {
                    prop_assert_eq!(result, Err(SendError::UnknownRequest));
                }
            }
            Op::AppEnd(id) => {
                let result = s.end(id, Status::OK, Payload::Empty, &mut buf);
                if model.remove(&id).is_some() {
                    prop_assert!(result.is_ok());
                } else {
                    prop_assert_eq!(result, Err(SendError::UnknownRequest));
                }
            }
        }
        prop_assert_eq!(s.requests_answering(), model.len());
        prop_assert!(s.requests_answering() <= LIMIT);
    }
    // The transport going away forgets every request being answered.
    s.handle_disconnected(now);
    prop_assert_eq!(s.requests_answering(), 0);
    Ok(())
}

proptest! {
    #[test]
    fn server_answers_client_requests_within_its_limit(
        ops in prop::collection::vec(op(), 1..60)
    ) {
        run(open_server(Instant::ZERO), &ops)?;
    }

    #[test]
    fn client_answers_server_requests_within_its_limit(
        ops in prop::collection::vec(op(), 1..60)
    ) {
        run(open_client(Instant::ZERO), &ops)?;
    }
}
