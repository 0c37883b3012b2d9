//! The application role on the server side: what the harness does with the frames a
//! `ServerSession` hands up. It decides; [`crate::Pair`] carries the decisions out.

use sentelite_core::frame::PayloadBuf;
use sentelite_core::{Duration, Frame, Instant, RequestId};

/// How the simulated server answers requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyMode {
    /// `parts` Reply frames, one every `interval` (all at once when zero), then `End(OK)`.
    Stream {
        /// Reply parts before the End.
        parts: u32,
        /// Time between parts, and between the last part and the End.
        interval: Duration,
    },
    /// Never answer (the requester's timeout or the connection's end must end the request).
    Never,
}

/// The simulated server application's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerBehaviour {
    /// Accept every Hello (uid `sim-<n>`); when false, reject with `AUTH_FAILED`.
    pub accept_hello: bool,
    /// Refuse transports outright (as a server that is down but whose host answers).
    pub refuse_connections: bool,
    /// How requests are answered.
    pub replies: ReplyMode,
}

impl Default for ServerBehaviour {
    /// Accept everyone; answer each request with three parts 10 ms apart, then End.
    fn default() -> Self {
        Self {
            accept_hello: true,
            refuse_connections: false,
            replies: ReplyMode::Stream {
                parts: 3,
                interval: Duration::from_millis(10),
            },
        }
    }
}

/// One thing the server application wants done on a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    Accept,
    Reject,
    StartStream(RequestId),
    /// Stop streaming and answer `End(CANCELLED)`.
    CancelStream(RequestId),
    Ack {
        channel: String,
        subscribed: bool,
    },
    /// Deliver a published message back to this connection's own subscriber.
    Echo {
        channel: String,
        payload: PayloadBuf,
    },
}

/// Decides the server application's answer to one delivered frame.
pub(crate) fn respond(behaviour: &ServerBehaviour, frame: &Frame<'_>) -> Option<Action> {
    match frame {
        Frame::Hello(_) if behaviour.accept_hello => Some(Action::Accept),
        Frame::Hello(_) => Some(Action::Reject),
        Frame::Request(req) => match behaviour.replies {
            ReplyMode::Stream { .. } => Some(Action::StartStream(req.id)),
            ReplyMode::Never => None,
        },
        Frame::Cancel(c) => Some(Action::CancelStream(c.id)),
        Frame::Subscribe(c) => Some(Action::Ack {
            channel: c.channel.into(),
            subscribed: true,
        }),
        Frame::Unsubscribe(c) => Some(Action::Ack {
            channel: c.channel.into(),
            subscribed: false,
        }),
        Frame::Publish(p) if !p.exclude_sender => Some(Action::Echo {
            channel: p.channel.into(),
            payload: p.payload.into(),
        }),
        _ => None,
    }
}

/// A reply stream in progress.
#[derive(Debug, Clone)]
pub(crate) struct StreamJob {
    pub conn: u64,
    pub id: RequestId,
    pub next_seq: u32,
    pub parts: u32,
    pub interval: Duration,
    pub due: Instant,
}

/// The payload of reply part `seq`: recognisable in assertions and a few bytes long.
pub fn part_payload(id: RequestId, seq: u32) -> Vec<u8> {
    let mut v = id.to_be_bytes().to_vec();
    v.extend_from_slice(&seq.to_be_bytes());
    v
}
