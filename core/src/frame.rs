//! The native frame set. Every frame travels as one WebSocket binary message (or one COBS
//! packet on a byte-stream link): a version byte followed by the postcard encoding of
//! [`Frame`]. The variant order below *is* the wire tag, so new frames are only ever appended.
//!
//! All frames borrow their strings and payloads from the buffer they were decoded from, so
//! decoding never copies or allocates.

use serde::{Deserialize, Serialize};

/// Version byte that starts every encoded frame.
pub const PROTOCOL_VERSION: u8 = 1;

/// The payload carried by events, requests, replies and channel messages.
///
/// `Value` is the self-describing form: CBOR (RFC 8949) with tag 39 marking keywords, which
/// the host server translates to EDN for sente-lite peers and to JSON for JS peers. `Bytes` is
/// opaque to everyone but the application; `Json` carries JSON text untouched (LSP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Payload<'a> {
    /// No payload.
    #[default]
    Empty,
    /// Application-defined bytes.
    Bytes(&'a [u8]),
    /// One CBOR data item (see [`crate::value`]).
    Value(&'a [u8]),
    /// JSON text.
    Json(&'a str),
}

impl Payload<'_> {
    /// Length of the payload body in bytes.
    pub fn len(&self) -> usize {
        match self {
            Payload::Empty => 0,
            Payload::Bytes(b) | Payload::Value(b) => b.len(),
            Payload::Json(s) => s.len(),
        }
    }

    /// True when the payload carries nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An owned copy of a [`Payload`], for hosts that queue or forward payloads after the
/// receive buffer is reused.
#[cfg(feature = "alloc")]
#[derive(Debug, Clone, PartialEq, Eq, Default, Hash)]
pub enum PayloadBuf {
    /// No payload.
    #[default]
    Empty,
    /// Application-defined bytes.
    Bytes(alloc::vec::Vec<u8>),
    /// One CBOR data item.
    Value(alloc::vec::Vec<u8>),
    /// JSON text.
    Json(alloc::string::String),
}

#[cfg(feature = "alloc")]
impl PayloadBuf {
    /// Borrows this payload for encoding.
    pub fn as_payload(&self) -> Payload<'_> {
        match self {
            PayloadBuf::Empty => Payload::Empty,
            PayloadBuf::Bytes(b) => Payload::Bytes(b),
            PayloadBuf::Value(b) => Payload::Value(b),
            PayloadBuf::Json(s) => Payload::Json(s),
        }
    }
}

#[cfg(feature = "alloc")]
impl From<Payload<'_>> for PayloadBuf {
    fn from(p: Payload<'_>) -> Self {
        match p {
            Payload::Empty => PayloadBuf::Empty,
            Payload::Bytes(b) => PayloadBuf::Bytes(b.into()),
            Payload::Value(b) => PayloadBuf::Value(b.into()),
            Payload::Json(s) => PayloadBuf::Json(s.into()),
        }
    }
}

/// Capability bits a client announces in [`Hello::capabilities`].
pub mod capability {
    /// Sends log batches (`telemetry/*`).
    pub const LOGS: u32 = 1 << 0;
    /// Accepts blob fetch directives (`blob/*`).
    pub const BLOB_FETCH: u32 = 1 << 1;
    /// Serves or relays nREPL (`nrepl/*`).
    pub const NREPL: u32 = 1 << 2;
    /// Serves or relays LSP (`lsp/*`).
    pub const LSP: u32 = 1 << 3;
    /// Uses channel pub/sub.
    pub const CHANNELS: u32 = 1 << 4;
    /// Accepts requests relayed from other clients (the host's `sentelite/relay`). A server
    /// relays only to clients that set this bit, and only the event names it allows.
    pub const RELAY_TARGET: u32 = 1 << 5;
}

/// First frame from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Hello<'a> {
    /// Stable identity of the device or program; several connections may share it.
    pub client_id: &'a str,
    /// Changes on every boot, so the server can tell a reboot from a reconnect.
    pub boot_id: u32,
    /// Shared-secret token, when the server asks for one.
    pub token: Option<&'a str>,
    /// Bit set of [`capability`] flags.
    pub capabilities: u32,
    /// Largest encoded frame the client can receive, in bytes.
    pub max_frame: u32,
    /// Build id of the firmware or program, for decoding compact logs later.
    pub firmware: Option<&'a str>,
}

/// The server's answer to an accepted [`Hello`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Welcome<'a> {
    /// Server-assigned identity of this connection's user (sente's uid).
    pub uid: &'a str,
    /// Unique id of this connection on the server.
    pub connection_id: u64,
    /// How often the client should ping, in milliseconds.
    pub heartbeat_ms: u32,
    /// Silence after which either side declares the other dead, in milliseconds.
    pub heartbeat_timeout_ms: u32,
    /// Largest encoded frame the server accepts, in bytes.
    pub max_frame: u32,
    /// Most requests the client may have outstanding towards the server.
    pub max_pending: u16,
    /// Most channels the client may subscribe to.
    pub max_subscriptions: u16,
}

/// Heartbeat probe or its answer; the nonce pairs a pong with its ping for RTT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Ping {
    /// Echoed back unchanged in the pong.
    pub nonce: u32,
}

/// Why a connection ends. Codes are stable on the wire; unknown ones are preserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[serde(transparent)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// Orderly close requested by the application.
    pub const NORMAL: CloseCode = CloseCode(0);
    /// The endpoint is shutting down or restarting.
    pub const GOING_AWAY: CloseCode = CloseCode(1);
    /// A frame could not be decoded or broke the protocol's rules.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(2);
    /// A frame exceeded the receiver's maximum frame size.
    pub const FRAME_TOO_LARGE: CloseCode = CloseCode(3);
    /// The peer speaks a protocol version this side does not.
    pub const UNSUPPORTED_VERSION: CloseCode = CloseCode(4);
    /// The handshake token was missing or wrong.
    pub const AUTH_FAILED: CloseCode = CloseCode(5);
    /// No Hello/Welcome arrived in time.
    pub const HANDSHAKE_TIMEOUT: CloseCode = CloseCode(6);
    /// The peer stayed silent past the heartbeat timeout.
    pub const HEARTBEAT_TIMEOUT: CloseCode = CloseCode(7);
    /// The server is at its connection limit.
    pub const TOO_MANY_CONNECTIONS: CloseCode = CloseCode(8);
    /// The peer exceeded a limit (pending requests, subscriptions, rate).
    pub const LIMIT_EXCEEDED: CloseCode = CloseCode(9);
    /// The receiving side failed internally.
    pub const INTERNAL_ERROR: CloseCode = CloseCode(10);
    /// The Hello claims a client id that already has a live connection, and the server's
    /// policy refuses a second one.
    pub const DUPLICATE_CLIENT: CloseCode = CloseCode(11);
    /// A newer connection of the same client took this one's place.
    pub const REPLACED: CloseCode = CloseCode(12);

    /// A short stable name, for logs and the sente-lite dialect.
    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "normal",
            1 => "going-away",
            2 => "protocol-error",
            3 => "frame-too-large",
            4 => "unsupported-version",
            5 => "auth-failed",
            6 => "handshake-timeout",
            7 => "heartbeat-timeout",
            8 => "too-many-connections",
            9 => "limit-exceeded",
            10 => "internal-error",
            11 => "duplicate-client",
            12 => "replaced",
            _ => "unknown",
        }
    }

    /// The WebSocket close code the host uses for this reason (4000 + code, 1000 for normal).
    pub fn websocket_code(self) -> u16 {
        match self.0 {
            0 => 1000,
            1 => 1001,
            c => 4000u16.saturating_add(c),
        }
    }

    /// The longest prefix of `reason` that fits a WebSocket close frame (123 bytes after the
    /// code), cut on a character boundary so the frame stays valid UTF-8.
    pub fn websocket_reason(reason: &str) -> &str {
        const MAX_WEBSOCKET_REASON: usize = 123;
        let mut end = reason.len().min(MAX_WEBSOCKET_REASON);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        &reason[..end]
    }

    /// Inverse of [`CloseCode::websocket_code`] for codes this crate produced.
    pub fn from_websocket_code(code: u16) -> CloseCode {
        match code {
            1000 => CloseCode::NORMAL,
            1001 => CloseCode::GOING_AWAY,
            1002 | 1003 | 1007 => CloseCode::PROTOCOL_ERROR,
            1009 => CloseCode::FRAME_TOO_LARGE,
            4000..=4999 => CloseCode(code - 4000),
            _ => CloseCode::GOING_AWAY,
        }
    }
}

/// The last frame on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Close<'a> {
    /// Why.
    pub code: CloseCode,
    /// Human-readable detail; may be empty.
    pub reason: &'a str,
}

/// One-way event: `[ev-id ?data]` in sente-lite terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Event<'a> {
    /// Namespaced event id, e.g. `telemetry/log-msg`.
    pub event: &'a str,
    /// Event data.
    #[serde(borrow)]
    pub payload: Payload<'a>,
}

/// A request that expects zero or more [`Reply`] parts and exactly one [`End`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Request<'a> {
    /// Chosen by the requester, unique among its requests in flight on this connection.
    pub id: u32,
    /// Namespaced event id of the operation.
    pub event: &'a str,
    /// How long the requester waits, in milliseconds (0 = requester gives no bound).
    pub timeout_ms: u32,
    /// Request data.
    #[serde(borrow)]
    pub payload: Payload<'a>,
}

/// One streamed part of the response to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Reply<'a> {
    /// The request's id.
    pub id: u32,
    /// Part number, starting at 0, increasing by one per part.
    pub seq: u32,
    /// Part data.
    #[serde(borrow)]
    pub payload: Payload<'a>,
}

/// Final status of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[serde(transparent)]
pub struct Status(pub u8);

impl Status {
    /// Completed.
    pub const OK: Status = Status(0);
    /// Failed; the payload says why.
    pub const ERROR: Status = Status(1);
    /// Stopped because the requester cancelled it.
    pub const CANCELLED: Status = Status(2);
    /// The responder gave up on its own deadline.
    pub const TIMEOUT: Status = Status(3);
    /// No handler for this event id.
    pub const UNSUPPORTED: Status = Status(4);
    /// The responder is at a limit; try again later.
    pub const BUSY: Status = Status(5);

    /// A short stable name.
    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "ok",
            1 => "error",
            2 => "cancelled",
            3 => "timeout",
            4 => "unsupported",
            5 => "busy",
            _ => "unknown",
        }
    }
}

/// The final frame of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct End<'a> {
    /// The request's id.
    pub id: u32,
    /// How it ended.
    pub status: Status,
    /// Result data or error detail.
    #[serde(borrow)]
    pub payload: Payload<'a>,
}

/// Requester asks the responder to stop work on a request (interrupt / `$/cancelRequest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Cancel {
    /// The request's id.
    pub id: u32,
}

/// Names a channel in subscribe and unsubscribe frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ChannelRef<'a> {
    /// Channel id.
    pub channel: &'a str,
}

/// Client publishes to a channel through the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Publish<'a> {
    /// Channel id.
    pub channel: &'a str,
    /// When true the server does not deliver the message back to the publishing connection.
    pub exclude_sender: bool,
    /// Message data.
    #[serde(borrow)]
    pub payload: Payload<'a>,
}

/// Server delivers a channel message to a subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ChannelMsg<'a> {
    /// Channel id.
    pub channel: &'a str,
    /// uid of the publisher (empty when the server itself published).
    pub from: &'a str,
    /// Message data.
    #[serde(borrow)]
    pub payload: Payload<'a>,
}

/// Why a subscription was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[serde(transparent)]
pub struct SubscribeError(pub u8);

impl SubscribeError {
    /// No error.
    pub const NONE: SubscribeError = SubscribeError(0);
    /// This connection holds its maximum number of subscriptions.
    pub const MAX_SUBSCRIPTIONS_PER_CONN: SubscribeError = SubscribeError(1);
    /// The channel holds its maximum number of subscribers.
    pub const MAX_SUBSCRIBERS_REACHED: SubscribeError = SubscribeError(2);
    /// No such channel (unsubscribe from one never joined).
    pub const CHANNEL_NOT_FOUND: SubscribeError = SubscribeError(3);
    /// Channel name empty or too long.
    pub const INVALID_CHANNEL: SubscribeError = SubscribeError(4);

    /// The sente-lite keyword name of this error.
    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "none",
            1 => "max-subscriptions-per-conn",
            2 => "max-subscribers-reached",
            3 => "channel-not-found",
            4 => "invalid-channel",
            _ => "unknown",
        }
    }
}

/// Server's answer to Subscribe or Unsubscribe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SubscribeAck<'a> {
    /// Channel id.
    pub channel: &'a str,
    /// Whether the connection is now subscribed.
    pub subscribed: bool,
    /// Why the request failed, or [`SubscribeError::NONE`].
    pub error: SubscribeError,
}

/// Server tells a publishing client that some of its channel messages were not delivered:
/// a subscriber's queue was full (it reads too slowly) or the message was larger than the
/// subscriber accepts. Sent at most once per report interval per channel, and only while
/// drops happen, so a publisher whose messages all arrive never sees one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PublishDropped<'a> {
    /// Channel id the messages were published to.
    pub channel: &'a str,
    /// Deliveries that failed since the previous report for this channel (one per
    /// subscriber that missed one message), saturating.
    pub dropped: u32,
}

/// Every frame of protocol version 1, in wire-tag order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Frame<'a> {
    /// Tag 0: client → server, first frame.
    #[serde(borrow)]
    Hello(Hello<'a>),
    /// Tag 1: server → client, handshake accepted.
    #[serde(borrow)]
    Welcome(Welcome<'a>),
    /// Tag 2: either way, heartbeat probe.
    Ping(Ping),
    /// Tag 3: either way, heartbeat answer.
    Pong(Ping),
    /// Tag 4: either way, last frame.
    #[serde(borrow)]
    Close(Close<'a>),
    /// Tag 5: either way, one-way event.
    #[serde(borrow)]
    Event(Event<'a>),
    /// Tag 6: either way, request.
    #[serde(borrow)]
    Request(Request<'a>),
    /// Tag 7: either way, streamed reply part.
    #[serde(borrow)]
    Reply(Reply<'a>),
    /// Tag 8: either way, final reply status.
    #[serde(borrow)]
    End(End<'a>),
    /// Tag 9: either way, cancel a request.
    Cancel(Cancel),
    /// Tag 10: client → server.
    #[serde(borrow)]
    Subscribe(ChannelRef<'a>),
    /// Tag 11: client → server.
    #[serde(borrow)]
    Unsubscribe(ChannelRef<'a>),
    /// Tag 12: client → server.
    #[serde(borrow)]
    Publish(Publish<'a>),
    /// Tag 13: server → client.
    #[serde(borrow)]
    ChannelMsg(ChannelMsg<'a>),
    /// Tag 14: server → client, answers Subscribe and Unsubscribe.
    #[serde(borrow)]
    SubscribeAck(SubscribeAck<'a>),
    /// Tag 15: server → client, channel deliveries of this client's publishes that failed.
    #[serde(borrow)]
    PublishDropped(PublishDropped<'a>),
}

impl Frame<'_> {
    /// Stable name of the frame kind, for logs and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Frame::Hello(_) => "hello",
            Frame::Welcome(_) => "welcome",
            Frame::Ping(_) => "ping",
            Frame::Pong(_) => "pong",
            Frame::Close(_) => "close",
            Frame::Event(_) => "event",
            Frame::Request(_) => "request",
            Frame::Reply(_) => "reply",
            Frame::End(_) => "end",
            Frame::Cancel(_) => "cancel",
            Frame::Subscribe(_) => "subscribe",
            Frame::Unsubscribe(_) => "unsubscribe",
            Frame::Publish(_) => "publish",
            Frame::ChannelMsg(_) => "channel-msg",
            Frame::SubscribeAck(_) => "subscribe-ack",
            Frame::PublishDropped(_) => "publish-dropped",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::CloseCode;

    #[test]
    fn websocket_reasons_are_cut_on_character_boundaries() {
        assert_eq!(CloseCode::websocket_reason("short"), "short");
        let long = "é".repeat(100);
        let cut = CloseCode::websocket_reason(&long);
        assert_eq!(cut.len(), 122, "61 two-byte characters fit in 123 bytes");
        assert_eq!(
            CloseCode::from_websocket_code(CloseCode::FRAME_TOO_LARGE.websocket_code()),
            CloseCode::FRAME_TOO_LARGE
        );
    }

    #[test]
    fn client_identity_close_codes_map_to_websocket_and_back() {
        for (code, name, ws) in [
            (CloseCode::DUPLICATE_CLIENT, "duplicate-client", 4011),
            (CloseCode::REPLACED, "replaced", 4012),
        ] {
            assert_eq!(code.name(), name);
            assert_eq!(code.websocket_code(), ws);
            assert_eq!(CloseCode::from_websocket_code(ws), code);
        }
    }
}
