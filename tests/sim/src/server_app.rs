//! The application role on the server side: what the harness does with the frames a
//! `ServerSession` hands up. It decides; [`crate::Pair`] carries the decisions out.

use sentelite_core::frame::PayloadBuf;
use sentelite_core::log::BATCH_EVENT;
use sentelite_core::{Duration, Frame, Instant, Payload, RequestId};

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
    /// Store `telemetry/log-batch` requests in the pair's [`crate::LogStore`] `delay` after
    /// they arrive, then answer `End(OK)` (the ack) if the connection is still open; a batch
    /// that does not decode is answered `End(ERROR)` at once. Other requests get no
    /// answer.
    StoreLogs {
        /// Time the store takes to commit a batch.
        delay: Duration,
    },
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
    /// Store a log batch, then ack it.
    StoreLogs {
        id: RequestId,
        payload: Vec<u8>,
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
            ReplyMode::StoreLogs { .. } if req.event == BATCH_EVENT => match req.payload {
                Payload::Bytes(bytes) => Some(Action::StoreLogs {
                    id: req.id,
                    payload: bytes.to_vec(),
                }),
                _ => Some(Action::StoreLogs {
                    id: req.id,
                    payload: Vec::new(),
                }),
            },
            ReplyMode::StoreLogs { .. } => None,
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

/// A log batch waiting to be committed to the store, then acked.
#[derive(Debug, Clone)]
pub(crate) struct StoreJob {
    pub conn: u64,
    pub id: RequestId,
    pub boot_id: u32,
    pub payload: Vec<u8>,
    pub due: Instant,
}

/// The payload of reply part `seq`: recognisable in assertions and a few bytes long.
pub fn part_payload(id: RequestId, seq: u32) -> Vec<u8> {
    let mut v = id.to_be_bytes().to_vec();
    v.extend_from_slice(&seq.to_be_bytes());
    v
}
