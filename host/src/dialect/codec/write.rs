//! The tree of one [`Outbound`] message in a dialect.

use sentelite_core::frame::PayloadBuf;

use super::json_item;
use crate::dialect::{Dialect, DialectError, EncodeOptions, Outbound};
use crate::translate::cbor;
use crate::translate::item::Item;

/// The sente-lite protocol version our handshake announces; its clients read it.
const SENTE_LITE_VERSION: &str = "2.0.0";

/// A message ready to print, and whether it is a push (Sente batches those).
pub(super) struct Written {
    push: bool,
    item: Item,
}

impl Written {
    pub(super) fn is_push(&self) -> bool {
        self.push
    }

    pub(super) fn into_item(self) -> Item {
        self.item
    }
}

pub(super) fn message(
    dialect: Dialect,
    message: &Outbound<'_>,
    options: EncodeOptions,
) -> Result<Written, DialectError> {
    let frame = |item| Ok(Written { push: false, item });
    let sente = dialect == Dialect::Sente;
    match *message {
        Outbound::Handshake { uid, csrf, first } => {
            let data = handshake_data();
            if sente {
                let args = vec![text(uid), Item::Null, data];
                frame(sente_envelope(event(
                    "chsk/handshake",
                    Some(Item::Array(args)),
                )))
            } else {
                let csrf = csrf.map_or(Item::Null, text);
                let args = vec![text(uid), csrf, data, Item::Bool(first)];
                frame(event("chsk/handshake", Some(Item::Array(args))))
            }
        }
        Outbound::Ping if sente => frame(Item::Array(vec![keyword("chsk/ws-ping"), Item::Null])),
        Outbound::Ping => frame(event("chsk/ws-ping", None)),
        Outbound::Pong { cb: Some(cb) } if sente => {
            frame(Item::Array(vec![text("pong"), text(cb)]))
        }
        Outbound::Pong { .. } if sente => frame(sente_envelope(event("chsk/ws-pong", None))),
        Outbound::Pong { .. } => frame(event("chsk/ws-pong", None)),
        Outbound::Subscribed { channel, refusal } | Outbound::Unsubscribed { channel, refusal } => {
            let name = if matches!(message, Outbound::Subscribed { .. }) {
                "sente-lite/subscribed"
            } else {
                "sente-lite/unsubscribed"
            };
            let mut fields = vec![
                (keyword("channel-id"), text(channel)),
                (keyword("success"), Item::Bool(refusal.is_none())),
            ];
            if let Some(refusal) = refusal {
                fields.push((keyword("error"), keyword(refusal.keyword())));
            }
            push(dialect, options, event(name, Some(Item::Map(fields))))
        }
        Outbound::ChannelMsg {
            channel,
            from,
            data,
        } => {
            let fields = vec![
                (keyword("channel-id"), text(channel)),
                (keyword("data"), payload(data)?.unwrap_or(Item::Null)),
                (keyword("from"), text(from)),
            ];
            push(
                dialect,
                options,
                event("sente-lite/channel-msg", Some(Item::Map(fields))),
            )
        }
        Outbound::Event { event: name, data } => {
            push(dialect, options, event(name, payload(data)?))
        }
        Outbound::Echo {
            event: name,
            data,
            conn_id,
            timestamp_ms,
        } => {
            let fields = vec![
                (keyword("original-event-id"), keyword(name)),
                (
                    keyword("original-data"),
                    payload(data)?.unwrap_or(Item::Null),
                ),
                (keyword("conn-id"), text(conn_id)),
                (keyword("timestamp"), Item::Int(i128::from(timestamp_ms))),
            ];
            push(
                dialect,
                options,
                event("sente-lite/echo", Some(Item::Map(fields))),
            )
        }
        Outbound::Reply { cb, data } if sente => frame(Item::Array(vec![
            payload(data)?.unwrap_or(Item::Null),
            text(cb),
        ])),
        Outbound::CallbackError { cb, error } if sente => {
            frame(Item::Array(vec![keyword(error.keyword()), text(cb)]))
        }
        Outbound::Reply { .. } => Err(not_in(dialect, "a callback reply")),
        Outbound::CallbackError { .. } => Err(not_in(dialect, "a callback error")),
    }
}

/// A push: Sente batches it as is; the others may wrap it in `[:chsk/recv …]`.
fn push(
    dialect: Dialect,
    options: EncodeOptions,
    event_vector: Item,
) -> Result<Written, DialectError> {
    let item = if options.wrap_recv && dialect != Dialect::Sente {
        event("chsk/recv", Some(event_vector))
    } else {
        event_vector
    };
    Ok(Written { push: true, item })
}

fn not_in(dialect: Dialect, what: &'static str) -> DialectError {
    DialectError::NotInDialect {
        what,
        dialect: dialect.name(),
    }
}

/// `[:ns/name]` or `[:ns/name data]`. JSON writes keywords as strings, so the same tree
/// prints `["ns/name", data]` there.
fn event(name: &str, data: Option<Item>) -> Item {
    let mut items = vec![keyword(name)];
    items.extend(data);
    Item::Array(items)
}

/// Sente's `[clj nil]` envelope of a server message that needs no callback.
fn sente_envelope(clj: Item) -> Item {
    Item::Array(vec![clj, Item::Null])
}

fn handshake_data() -> Item {
    Item::Map(vec![
        (keyword("sente-lite-version"), text(SENTE_LITE_VERSION)),
        (keyword("server"), text("sentelite")),
        (keyword("server-version"), text(env!("CARGO_PKG_VERSION"))),
    ])
}

fn keyword(name: &str) -> Item {
    Item::Keyword(name.to_owned())
}

fn text(s: &str) -> Item {
    Item::Text(s.to_owned())
}

/// Any payload as a tree; `None` for `Empty`.
fn payload(data: &PayloadBuf) -> Result<Option<Item>, DialectError> {
    Ok(match data {
        PayloadBuf::Empty => None,
        PayloadBuf::Value(bytes) => Some(cbor::decode(bytes)?),
        PayloadBuf::Bytes(bytes) => Some(Item::Bytes(bytes.clone())),
        PayloadBuf::Json(text) => Some(json_item(text)?),
    })
}
