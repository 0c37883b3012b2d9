//! Text dialects: how sente-lite, Sente and plain JSON clients talk to the server over `/ws`,
//! next to native devices.
//!
//! A native client sends binary postcard frames; the clients of the Clojure and JavaScript
//! world send one text value per WebSocket message. This module turns those messages into
//! [`Inbound`] values the server acts on (payloads already translated into the native Value
//! form, so a device and a browser on one channel see the same data) and turns what the
//! server has to say ([`Outbound`]) back into each dialect's text. The codec is pure:
//! no IO, no clock, no connection state.
//!
//! | dialect | one message | event id | server handshake |
//! |---|---|---|---|
//! | [`Dialect::SenteLite`] | EDN `[ev-id ?data]` | keyword `:ns/name` | `[:chsk/handshake [uid csrf data first?]]` |
//! | [`Dialect::Sente`] | EDN `[[ev-id ?data] ?cb-uuid]` (also `[[ev-id ?data]]`) | keyword | `[[:chsk/handshake [uid nil data]] nil]` |
//! | [`Dialect::Json`] | JSON `["ns/name", data]` | string | `["chsk/handshake", [uid, null, data, true]]` |
//!
//! docs/PROTOCOL.md has one section per dialect with every frame.

mod codec;
pub(crate) mod connection;

use sentelite_core::frame::PayloadBuf;

use crate::translate::TranslateError;

pub use codec::{decode, detect, encode_batch};

/// How a text connection speaks. Native (binary) connections are served elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// sente-lite: one EDN event vector per message.
    SenteLite,
    /// taoensso/sente 1.17 and later: EDN events in a `[clj ?cb-uuid]` envelope.
    Sente,
    /// JSON arrays `["ns/name", data]` for plain JavaScript and browsers.
    Json,
}

impl Dialect {
    /// The dialect a `?dialect=` query value names. `edn` is an alias of `sente-lite`;
    /// `native` is not a text dialect and gives `None`, as does anything unknown.
    pub fn from_query(value: &str) -> Option<Dialect> {
        match value {
            "sente-lite" | "edn" => Some(Dialect::SenteLite),
            "sente" => Some(Dialect::Sente),
            "json" => Some(Dialect::Json),
            _ => None,
        }
    }

    /// The name used in `?dialect=`, logs and connection listings.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::SenteLite => "sente-lite",
            Dialect::Sente => "sente",
            Dialect::Json => "json",
        }
    }
}

/// One message from a text client. Payloads are in the native value form
/// ([`PayloadBuf::Value`], one CBOR item), or [`PayloadBuf::Empty`] when the event carried
/// no data.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// A heartbeat ping. Sente's carries the callback id its answer must name.
    Ping {
        /// Sente callback id, if any.
        cb: Option<String>,
    },
    /// The answer to the server's ping.
    Pong,
    /// `sente-lite/subscribe {:channel-id …}`.
    Subscribe {
        /// The channel asked for.
        channel: String,
    },
    /// `sente-lite/unsubscribe {:channel-id …}`.
    Unsubscribe {
        /// The channel to leave.
        channel: String,
    },
    /// `sente-lite/publish {:channel-id … :data … :exclude-sender? …}`.
    Publish {
        /// Target channel.
        channel: String,
        /// The message, `Empty` when `:data` was absent.
        data: PayloadBuf,
        /// Keep the message from the publisher's own connection.
        exclude_sender: bool,
    },
    /// Any other event, for the server's handlers.
    Event {
        /// Event id without the keyword colon (`:app/get` → `app/get`).
        event: String,
        /// The event's data, `Empty` when absent.
        data: PayloadBuf,
        /// Sente callback id: the client waits for a [`Outbound::Reply`] naming it.
        cb: Option<String>,
    },
}

/// Why a subscription change was refused; written as the keywords sente-lite clients know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `:max-subscriptions-per-conn`: this connection holds as many channels as allowed.
    MaxSubscriptionsPerConn,
    /// `:max-subscribers-reached`: the channel has as many members as allowed.
    MaxSubscribersReached,
    /// `:channel-not-found`: the connection is not subscribed to that channel.
    ChannelNotFound,
    /// `:invalid-channel`: the name is empty, too long or has control characters.
    InvalidChannel,
}

impl Refusal {
    /// The keyword (without colon) sent to the client.
    pub fn keyword(self) -> &'static str {
        match self {
            Refusal::MaxSubscriptionsPerConn => "max-subscriptions-per-conn",
            Refusal::MaxSubscribersReached => "max-subscribers-reached",
            Refusal::ChannelNotFound => "channel-not-found",
            Refusal::InvalidChannel => "invalid-channel",
        }
    }
}

/// How a Sente callback ended without a reply value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackError {
    /// `:chsk/closed`: the connection is closing.
    Closed,
    /// `:chsk/timeout`: the handler did not answer in time.
    Timeout,
    /// `:chsk/error`: no handler, or the handler ended with an error.
    Error,
}

impl CallbackError {
    /// The keyword (without colon) sent as the callback's value.
    pub fn keyword(self) -> &'static str {
        match self {
            CallbackError::Closed => "chsk/closed",
            CallbackError::Timeout => "chsk/timeout",
            CallbackError::Error => "chsk/error",
        }
    }
}

/// Something the server sends to a text client.
#[derive(Debug, Clone, Copy)]
pub enum Outbound<'a> {
    /// The first message of every connection.
    Handshake {
        /// The connection's user id.
        uid: &'a str,
        /// A token for the client to echo (nothing on the server checks it).
        csrf: Option<&'a str>,
        /// True on the first handshake of this uid.
        first: bool,
    },
    /// The server's heartbeat ping.
    Ping,
    /// The answer to a client's ping (Sente's names its callback).
    Pong {
        /// Sente callback id of the ping, if any.
        cb: Option<&'a str>,
    },
    /// The answer to a subscribe.
    Subscribed {
        /// The channel asked for.
        channel: &'a str,
        /// Why it was refused; `None` on success.
        refusal: Option<Refusal>,
    },
    /// The answer to an unsubscribe.
    Unsubscribed {
        /// The channel named.
        channel: &'a str,
        /// Why it was refused; `None` on success.
        refusal: Option<Refusal>,
    },
    /// A message published on a channel the client is subscribed to.
    ChannelMsg {
        /// The channel.
        channel: &'a str,
        /// The publisher's uid (or `"server"`).
        from: &'a str,
        /// The message in any payload form; translated on the way out.
        data: &'a PayloadBuf,
    },
    /// An event pushed by the server.
    Event {
        /// Event id without colon.
        event: &'a str,
        /// Its data; `Empty` sends the event vector without data.
        data: &'a PayloadBuf,
    },
    /// A Sente callback's reply value.
    Reply {
        /// The callback id the client sent.
        cb: &'a str,
        /// The reply value.
        data: &'a PayloadBuf,
    },
    /// A Sente callback that ended without a value.
    CallbackError {
        /// The callback id the client sent.
        cb: &'a str,
        /// How it ended.
        error: CallbackError,
    },
    /// An event no handler took, sent back to its sender (what sente-lite servers do).
    Echo {
        /// The event id received, without colon.
        event: &'a str,
        /// The data received.
        data: &'a PayloadBuf,
        /// The receiving connection's uid.
        conn_id: &'a str,
        /// Server time in Unix milliseconds.
        timestamp_ms: u64,
    },
}

/// Choices in how pushes are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EncodeOptions {
    /// Wrap pushes (events, channel messages, echoes) as `[:chsk/recv [ev-id data]]`, as
    /// some sente-lite clients expect. sente-lite and JSON only; Sente always batches.
    pub wrap_recv: bool,
}

/// Why a text message could not be read, or a message not written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DialectError {
    /// The text is not a readable EDN or JSON value.
    #[error("{0}")]
    Translate(#[from] TranslateError),
    /// The value read is not the dialect's message shape.
    #[error("a {dialect} message must be {expected}")]
    Shape {
        /// The dialect of the connection.
        dialect: &'static str,
        /// The shape it expects.
        expected: &'static str,
    },
    /// The event id is not a keyword (EDN) or a non-empty string (JSON).
    #[error("the event id must be {expected}")]
    EventId {
        /// What the dialect takes as an event id.
        expected: &'static str,
    },
    /// A field the event needs is missing or has the wrong type.
    #[error("{event} needs :{field} as {expected}")]
    Field {
        /// The event id.
        event: &'static str,
        /// The field.
        field: &'static str,
        /// The expected type.
        expected: &'static str,
    },
    /// An event name or keyword that cannot be written in this dialect.
    #[error("event id {0:?} cannot be written as a keyword")]
    EventName(String),
    /// A message that does not exist in this dialect (a callback reply outside Sente).
    #[error("{what} cannot be sent in the {dialect} dialect")]
    NotInDialect {
        /// The message.
        what: &'static str,
        /// The connection's dialect.
        dialect: &'static str,
    },
}
