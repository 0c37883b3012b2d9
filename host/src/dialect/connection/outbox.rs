//! What a text connection has to say, gathered over one turn of its loop and encoded in one
//! [`encode_batch`] call, so Sente packs the pushes that arrived together into one frame.
//!
//! Items own (or share) their data until the flush; the codec's [`Outbound`] borrows it.

use std::sync::Arc;

use sentelite_core::frame::PayloadBuf;

use crate::dialect::{CallbackError, Dialect, EncodeOptions, Outbound, Refusal, encode_batch};

/// One message waiting to be encoded.
pub(super) enum Item {
    Handshake {
        uid: Arc<str>,
    },
    Ping,
    Pong {
        cb: Option<String>,
    },
    Subscribed {
        channel: String,
        refusal: Option<Refusal>,
    },
    Unsubscribed {
        channel: String,
        refusal: Option<Refusal>,
    },
    ChannelMsg {
        channel: Arc<str>,
        from: Arc<str>,
        data: Arc<PayloadBuf>,
    },
    Event {
        event: Arc<str>,
        data: Arc<PayloadBuf>,
    },
    Reply {
        cb: String,
        data: PayloadBuf,
    },
    CallbackError {
        cb: String,
        error: CallbackError,
    },
    Echo {
        event: String,
        data: PayloadBuf,
        timestamp_ms: u64,
    },
}

impl Item {
    fn outbound<'a>(&'a self, uid: &'a str) -> Outbound<'a> {
        match self {
            Item::Handshake { uid } => Outbound::Handshake {
                uid,
                csrf: None,
                first: true,
            },
            Item::Ping => Outbound::Ping,
            Item::Pong { cb } => Outbound::Pong { cb: cb.as_deref() },
            Item::Subscribed { channel, refusal } => Outbound::Subscribed {
                channel,
                refusal: *refusal,
            },
            Item::Unsubscribed { channel, refusal } => Outbound::Unsubscribed {
                channel,
                refusal: *refusal,
            },
            Item::ChannelMsg {
                channel,
                from,
                data,
            } => Outbound::ChannelMsg {
                channel,
                from,
                data,
            },
            Item::Event { event, data } => Outbound::Event { event, data },
            Item::Reply { cb, data } => Outbound::Reply { cb, data },
            Item::CallbackError { cb, error } => Outbound::CallbackError { cb, error: *error },
            Item::Echo {
                event,
                data,
                timestamp_ms,
            } => Outbound::Echo {
                event,
                data,
                conn_id: uid,
                timestamp_ms: *timestamp_ms,
            },
        }
    }
}

#[derive(Default)]
pub(super) struct Outbox {
    items: Vec<Item>,
}

impl Outbox {
    pub(super) fn push(&mut self, item: Item) {
        self.items.push(item);
    }

    pub(super) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Encodes everything gathered into text frames. Items the dialect cannot express (a
    /// payload with no EDN or JSON form) are left out and logged; the rest still go.
    pub(super) fn take_frames(
        &mut self,
        dialect: Dialect,
        options: EncodeOptions,
        uid: &str,
    ) -> Vec<String> {
        let items = std::mem::take(&mut self.items);
        let outbound: Vec<Outbound<'_>> = items.iter().map(|i| i.outbound(uid)).collect();
        let (frames, errors) = encode_batch(dialect, &outbound, options);
        for error in errors {
            tracing::debug!(%uid, %error, "message not sent: it has no form in this dialect");
        }
        frames
    }
}
