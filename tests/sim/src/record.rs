//! What the simulation saw, with timestamps, for tests to assert on afterwards.

use std::collections::HashMap;

use sentelite_core::{
    Frame, Instant, ProtocolError, RequestEnd, RequestId, SessionEvent, Status, decode,
};

/// Which session a record belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The one client.
    Client,
    /// The server session of transport connection `n` (numbered from 1).
    Server(u64),
}

/// An owned copy of a frame one side's session handed to its application.
#[derive(Clone, PartialEq, Eq)]
pub struct DeliveredFrame {
    bytes: Vec<u8>,
}

impl DeliveredFrame {
    pub(crate) fn new(bytes: &[u8]) -> Self {
        Self {
            bytes: bytes.to_vec(),
        }
    }

    /// The frame, borrowed from the stored copy.
    pub fn frame(&self) -> Frame<'_> {
        // Only frames the session already decoded are stored, so this cannot fail.
        decode(&self.bytes).expect("a delivered frame decodes")
    }

    /// The encoded bytes as they were received.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl core::fmt::Debug for DeliveredFrame {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.frame().fmt(f)
    }
}

/// Transport-level happenings, as the harness (playing both adapters) saw them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportNote {
    /// Client: `poll_connect` said go; a connect went out on the link.
    ConnectStarted,
    /// Client: the transport is up (`handle_connected`).
    Connected,
    /// Client: the server refused the transport (`handle_connect_failed`).
    ConnectFailed,
    /// Server: a transport was accepted and a new session created.
    Accepted,
    /// Server: a transport was refused.
    Refused,
    /// This side dropped the transport (its session wanted to, or gave up connecting).
    Dropped,
    /// This side learned the peer dropped the transport (`handle_disconnected`).
    PeerGone,
    /// The harness tore the transport down under both sides.
    Killed,
}

/// One thing observed.
#[derive(Debug, Clone, PartialEq)]
pub enum Observed {
    /// A session event.
    Event(SessionEvent),
    /// A frame the session handed to the application.
    Frame(DeliveredFrame),
    /// `handle_frame` reported a protocol violation.
    ProtocolError(ProtocolError),
    /// The application started a request with this id.
    Issued(RequestId),
    /// Transport life cycle.
    Transport(TransportNote),
}

/// One timestamped observation.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Fake time of the observation.
    pub at: Instant,
    /// Whose it is.
    pub side: Side,
    /// What.
    pub what: Observed,
}

/// How a request ended, from the requester's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The responder's `End` frame arrived with this status.
    Completed(Status),
    /// The session ended it (timeout, cancel, connection closed).
    Ended(RequestEnd),
}

/// Queries over a list of records.
pub trait Records {
    /// Session events of one side, in order.
    fn events(&self, side: Side) -> Vec<(Instant, SessionEvent)>;
    /// Frames delivered to one side's application, in order.
    fn frames(&self, side: Side) -> Vec<(Instant, &DeliveredFrame)>;
    /// Every ending of request `id` issued by `side`: exactly one entry when all is well.
    fn outcomes(&self, side: Side, id: RequestId) -> Vec<(Instant, Outcome)>;
    /// Part numbers of the replies `side` received for its request `id`, in arrival order.
    fn reply_seqs(&self, side: Side, id: RequestId) -> Vec<(Instant, u32)>;
    /// [`Records::outcomes`] for every request of `side` at once (one pass over the records).
    fn all_outcomes(&self, side: Side) -> HashMap<RequestId, Vec<(Instant, Outcome)>>;
    /// [`Records::reply_seqs`] for every request of `side` at once.
    fn all_reply_seqs(&self, side: Side) -> HashMap<RequestId, Vec<(Instant, u32)>>;
    /// Requests `side` issued, in order.
    fn issued(&self, side: Side) -> Vec<RequestId>;
    /// Transport notes of one side.
    fn transport(&self, side: Side) -> Vec<(Instant, TransportNote)>;
}

impl Records for [Record] {
    fn events(&self, side: Side) -> Vec<(Instant, SessionEvent)> {
        self.iter()
            .filter(|r| r.side == side)
            .filter_map(|r| match r.what {
                Observed::Event(e) => Some((r.at, e)),
                _ => None,
            })
            .collect()
    }

    fn frames(&self, side: Side) -> Vec<(Instant, &DeliveredFrame)> {
        self.iter()
            .filter(|r| r.side == side)
            .filter_map(|r| match &r.what {
                Observed::Frame(f) => Some((r.at, f)),
                _ => None,
            })
            .collect()
    }

    fn outcomes(&self, side: Side, id: RequestId) -> Vec<(Instant, Outcome)> {
        self.iter()
            .filter(|r| r.side == side)
            .filter_map(|r| match &r.what {
                Observed::Event(SessionEvent::RequestEnded { id: i, end }) if *i == id => {
                    Some((r.at, Outcome::Ended(*end)))
                }
                Observed::Frame(f) => match f.frame() {
                    Frame::End(end) if end.id == id => Some((r.at, Outcome::Completed(end.status))),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }

    fn reply_seqs(&self, side: Side, id: RequestId) -> Vec<(Instant, u32)> {
        self.frames(side)
            .into_iter()
            .filter_map(|(at, f)| match f.frame() {
                Frame::Reply(reply) if reply.id == id => Some((at, reply.seq)),
                _ => None,
            })
            .collect()
    }

    fn all_outcomes(&self, side: Side) -> HashMap<RequestId, Vec<(Instant, Outcome)>> {
        let mut out: HashMap<RequestId, Vec<(Instant, Outcome)>> = HashMap::new();
        for r in self.iter().filter(|r| r.side == side) {
            let (id, outcome) = match &r.what {
                Observed::Event(SessionEvent::RequestEnded { id, end }) => {
                    (*id, Outcome::Ended(*end))
                }
                Observed::Frame(f) => match f.frame() {
                    Frame::End(end) => (end.id, Outcome::Completed(end.status)),
                    _ => continue,
                },
                _ => continue,
            };
            out.entry(id).or_default().push((r.at, outcome));
        }
        out
    }

    fn all_reply_seqs(&self, side: Side) -> HashMap<RequestId, Vec<(Instant, u32)>> {
        let mut out: HashMap<RequestId, Vec<(Instant, u32)>> = HashMap::new();
        for (at, f) in self.frames(side) {
            if let Frame::Reply(reply) = f.frame() {
                out.entry(reply.id).or_default().push((at, reply.seq));
            }
        }
        out
    }

    fn issued(&self, side: Side) -> Vec<RequestId> {
        self.iter()
            .filter(|r| r.side == side)
            .filter_map(|r| match r.what {
                Observed::Issued(id) => Some(id),
                _ => None,
            })
            .collect()
    }

    fn transport(&self, side: Side) -> Vec<(Instant, TransportNote)> {
        self.iter()
            .filter(|r| r.side == side)
            .filter_map(|r| match r.what {
                Observed::Transport(t) => Some((r.at, t)),
                _ => None,
            })
            .collect()
    }
}
