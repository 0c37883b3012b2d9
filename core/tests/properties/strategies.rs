//! Owned mirrors of every frame, and proptest strategies that generate them.
//!
//! `Frame<'a>` borrows its strings and payloads, so a strategy cannot yield one directly: it
//! yields an [`OwnedFrame`] and the test borrows a `Frame` out of it with [`OwnedFrame::frame`].

use proptest::prelude::*;
use sentelite_core::frame::{
    Cancel, ChannelMsg, ChannelRef, Close, End, Event, Hello, Ping, Publish, PublishDropped, Reply,
    Request, SubscribeAck, SubscribeError, Welcome,
};
use sentelite_core::{CloseCode, Frame, Payload, Status};

/// Owned form of [`Payload`].
#[derive(Debug, Clone)]
pub enum OwnedPayload {
    Empty,
    Bytes(Vec<u8>),
    Value(Vec<u8>),
    Json(String),
}

impl OwnedPayload {
    pub fn payload(&self) -> Payload<'_> {
        match self {
            OwnedPayload::Empty => Payload::Empty,
            OwnedPayload::Bytes(b) => Payload::Bytes(b),
            OwnedPayload::Value(b) => Payload::Value(b),
            OwnedPayload::Json(s) => Payload::Json(s),
        }
    }
}

/// Owned form of [`Frame`], one variant per wire tag.
#[derive(Debug, Clone)]
pub enum OwnedFrame {
    Hello {
        client_id: String,
        boot_id: u32,
        token: Option<String>,
        capabilities: u32,
        max_frame: u32,
        firmware: Option<String>,
    },
    Welcome {
        uid: String,
        connection_id: u64,
        heartbeat_ms: u32,
        heartbeat_timeout_ms: u32,
        max_frame: u32,
        max_pending: u16,
        max_subscriptions: u16,
    },
    Ping(u32),
    Pong(u32),
    Close {
        code: u16,
        reason: String,
    },
    Event {
        event: String,
        payload: OwnedPayload,
    },
    Request {
        id: u32,
        event: String,
        timeout_ms: u32,
        payload: OwnedPayload,
    },
    Reply {
        id: u32,
        seq: u32,
        payload: OwnedPayload,
    },
    End {
        id: u32,
        status: u8,
        payload: OwnedPayload,
    },
    Cancel(u32),
    Subscribe(String),
    Unsubscribe(String),
    Publish {
        channel: String,
        exclude_sender: bool,
        payload: OwnedPayload,
    },
    ChannelMsg {
        channel: String,
        from: String,
        payload: OwnedPayload,
    },
    SubscribeAck {
        channel: String,
        subscribed: bool,
        error: u8,
    },
    PublishDropped {
        channel: String,
        dropped: u32,
    },
}

impl OwnedFrame {
    /// Borrows the wire frame.
    pub fn frame(&self) -> Frame<'_> {
        match self {
            OwnedFrame::Hello {
                client_id,
                boot_id,
                token,
                capabilities,
                max_frame,
                firmware,
            } => Frame::Hello(Hello {
                client_id,
                boot_id: *boot_id,
                token: token.as_deref(),
                capabilities: *capabilities,
                max_frame: *max_frame,
                firmware: firmware.as_deref(),
            }),
            OwnedFrame::Welcome {
                uid,
                connection_id,
                heartbeat_ms,
                heartbeat_timeout_ms,
                max_frame,
                max_pending,
                max_subscriptions,
            } => Frame::Welcome(Welcome {
                uid,
                connection_id: *connection_id,
                heartbeat_ms: *heartbeat_ms,
                heartbeat_timeout_ms: *heartbeat_timeout_ms,
                max_frame: *max_frame,
                max_pending: *max_pending,
                max_subscriptions: *max_subscriptions,
            }),
            OwnedFrame::Ping(nonce) => Frame::Ping(Ping { nonce: *nonce }),
            OwnedFrame::Pong(nonce) => Frame::Pong(Ping { nonce: *nonce }),
            OwnedFrame::Close { code, reason } => Frame::Close(Close {
                code: CloseCode(*code),
                reason,
            }),
            OwnedFrame::Event { event, payload } => Frame::Event(Event {
                event,
                payload: payload.payload(),
            }),
            OwnedFrame::Request {
                id,
                event,
                timeout_ms,
                payload,
            } => Frame::Request(Request {
                id: *id,
                event,
                timeout_ms: *timeout_ms,
                payload: payload.payload(),
            }),
            OwnedFrame::Reply { id, seq, payload } => Frame::Reply(Reply {
                id: *id,
                seq: *seq,
                payload: payload.payload(),
            }),
            OwnedFrame::End {
                id,
                status,
                payload,
            } => Frame::End(End {
                id: *id,
                status: Status(*status),
                payload: payload.payload(),
            }),
            OwnedFrame::Cancel(id) => Frame::Cancel(Cancel { id: *id }),
            OwnedFrame::Subscribe(channel) => Frame::Subscribe(ChannelRef { channel }),
            OwnedFrame::Unsubscribe(channel) => Frame::Unsubscribe(ChannelRef { channel }),
            OwnedFrame::Publish {
                channel,
                exclude_sender,
                payload,
            } => Frame::Publish(Publish {
                channel,
                exclude_sender: *exclude_sender,
                payload: payload.payload(),
            }),
            OwnedFrame::ChannelMsg {
                channel,
                from,
                payload,
            } => Frame::ChannelMsg(ChannelMsg {
                channel,
                from,
                payload: payload.payload(),
            }),
            OwnedFrame::SubscribeAck {
                channel,
                subscribed,
                error,
            } => Frame::SubscribeAck(SubscribeAck {
                channel,
                subscribed: *subscribed,
                error: SubscribeError(*error),
            }),
            OwnedFrame::PublishDropped { channel, dropped } => {
                Frame::PublishDropped(PublishDropped {
                    channel,
                    dropped: *dropped,
                })
            }
        }
    }
}

/// Arbitrary text, including NULs, multi-byte characters and the empty string.
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any::<String>(),
        1 => Just(String::new()),
        1 => "[a-z]{1,8}/[a-z-]{1,12}",
    ]
}

/// Arbitrary bytes: mostly short, sometimes long enough to cross COBS's 254-byte blocks.
pub fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => prop::collection::vec(any::<u8>(), 0..48),
        1 => prop::collection::vec(any::<u8>(), 240..800),
        1 => prop::collection::vec(Just(0u8), 250..520),
    ]
}

/// Every payload kind.
pub fn payload() -> impl Strategy<Value = OwnedPayload> {
    prop_oneof![
        Just(OwnedPayload::Empty),
        bytes().prop_map(OwnedPayload::Bytes),
        bytes().prop_map(OwnedPayload::Value),
        text().prop_map(OwnedPayload::Json),
    ]
}

/// Request ids: mostly small (so sessions recognise them), sometimes anything.
pub fn request_id() -> impl Strategy<Value = u32> {
    prop_oneof![3 => 0u32..8, 1 => any::<u32>()]
}

/// A small positive u32 or anything at all, so edge values show up.
fn num32() -> impl Strategy<Value = u32> {
    prop_oneof![any::<u32>(), Just(0u32), Just(u32::MAX), 1u32..100_000]
}

/// Every frame variant with arbitrary fields.
pub fn frame() -> impl Strategy<Value = OwnedFrame> {
    prop_oneof![
        (
            text(),
            num32(),
            proptest::option::of(text()),
            num32(),
            num32(),
            proptest::option::of(text())
        )
            .prop_map(
                |(client_id, boot_id, token, capabilities, max_frame, firmware)| {
                    OwnedFrame::Hello {
                        client_id,
                        boot_id,
                        token,
                        capabilities,
                        max_frame,
                        firmware,
                    }
                }
            ),
        (
            text(),
            any::<u64>(),
            num32(),
            num32(),
            num32(),
            any::<u16>(),
            any::<u16>()
        )
            .prop_map(|(uid, connection_id, hb, hbt, max_frame, mp, ms)| {
                OwnedFrame::Welcome {
                    uid,
                    connection_id,
                    heartbeat_ms: hb,
                    heartbeat_timeout_ms: hbt,
                    max_frame,
                    max_pending: mp,
                    max_subscriptions: ms,
                }
            }),
        num32().prop_map(OwnedFrame::Ping),
        num32().prop_map(OwnedFrame::Pong),
        (any::<u16>(), text()).prop_map(|(code, reason)| OwnedFrame::Close { code, reason }),
        (text(), payload()).prop_map(|(event, payload)| OwnedFrame::Event { event, payload }),
        (request_id(), text(), num32(), payload()).prop_map(|(id, event, timeout_ms, payload)| {
            OwnedFrame::Request {
                id,
                event,
                timeout_ms,
                payload,
            }
        }),
        (request_id(), prop_oneof![0u32..6, any::<u32>()], payload())
            .prop_map(|(id, seq, payload)| OwnedFrame::Reply { id, seq, payload }),
        (request_id(), any::<u8>(), payload()).prop_map(|(id, status, payload)| {
            OwnedFrame::End {
                id,
                status,
                payload,
            }
        }),
        request_id().prop_map(OwnedFrame::Cancel),
        text().prop_map(OwnedFrame::Subscribe),
        text().prop_map(OwnedFrame::Unsubscribe),
        (text(), any::<bool>(), payload()).prop_map(|(channel, exclude_sender, payload)| {
            OwnedFrame::Publish {
                channel,
                exclude_sender,
                payload,
            }
        }),
        (text(), text(), payload()).prop_map(|(channel, from, payload)| {
            OwnedFrame::ChannelMsg {
                channel,
                from,
                payload,
            }
        }),
        (text(), any::<bool>(), any::<u8>()).prop_map(|(channel, subscribed, error)| {
            OwnedFrame::SubscribeAck {
                channel,
                subscribed,
                error,
            }
        }),
        (text(), prop_oneof![1u32..1000, any::<u32>()])
            .prop_map(|(channel, dropped)| OwnedFrame::PublishDropped { channel, dropped }),
    ]
}

/// Encodes a frame into a fresh vector of exactly its encoded length.
pub fn encode_vec(frame: &Frame<'_>) -> Vec<u8> {
    let len = sentelite_core::codec::encoded_len(frame);
    let mut buf = vec![0u8; len];
    let n = sentelite_core::encode(frame, &mut buf).expect("buffer of encoded_len fits");
    assert_eq!(n, len, "encoded_len must equal the bytes written");
    buf
}

/// Splits `len` bytes into consecutive chunk lengths drawn from `sizes` (cycled; 0 is
/// bumped to 1 so every chunk makes progress).
pub fn chunk_bounds(len: usize, sizes: &[usize]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while start < len {
        let size = sizes
            .get(i % sizes.len().max(1))
            .copied()
            .unwrap_or(len)
            .max(1);
        let end = (start + size).min(len);
        out.push((start, end));
        start = end;
        i += 1;
    }
    out
}
