//! A tree read from a text message, interpreted as one [`Inbound`] message.

use sentelite_core::frame::PayloadBuf;

use crate::dialect::{Dialect, DialectError, Inbound};
use crate::translate::cbor;
use crate::translate::item::Item;

const SUBSCRIBE: &str = "sente-lite/subscribe";
const UNSUBSCRIBE: &str = "sente-lite/unsubscribe";
const PUBLISH: &str = "sente-lite/publish";
const PING: &str = "chsk/ws-ping";
const PONG: &str = "chsk/ws-pong";

/// Interprets the tree of one message.
pub(super) fn message(dialect: Dialect, item: Item) -> Result<Inbound, DialectError> {
    let (event, data, cb) = envelope(dialect, item)?;
    Ok(match event.as_str() {
        PING => Inbound::Ping { cb },
        PONG => Inbound::Pong,
        SUBSCRIBE => Inbound::Subscribe {
            channel: channel_id(SUBSCRIBE, data.as_ref())?,
        },
        UNSUBSCRIBE => Inbound::Unsubscribe {
            channel: channel_id(UNSUBSCRIBE, data.as_ref())?,
        },
        PUBLISH => publish(data)?,
        _ => Inbound::Event {
            event,
            data: payload(data),
            cb,
        },
    })
}

/// Event id, data and callback id of a message, per dialect.
fn envelope(
    dialect: Dialect,
    item: Item,
) -> Result<(String, Option<Item>, Option<String>), DialectError> {
    match dialect {
        Dialect::SenteLite => {
            let (event, data) = event_vector(dialect, item, "[ev-id ?data]")?;
            Ok((event, data, None))
        }
        Dialect::Json => {
            let (event, data) = event_vector(dialect, item, "[\"ns/event\", data?]")?;
            Ok((event, data, None))
        }
        Dialect::Sente => {
            const EXPECTED: &str = "[[ev-id ?data] ?cb-uuid]";
            let mut parts = vector_of_1_or_2(dialect, item, EXPECTED)?;
            let cb = match parts.pop_second() {
                None | Some(Item::Null) => None,
                Some(Item::Text(cb)) => Some(cb),
                Some(_) => return Err(shape(dialect, EXPECTED)),
            };
            let (event, data) = match parts.first {
                // A bare keyword is an event without data.
                Item::Keyword(event) => (event, None),
                clj => event_vector(dialect, clj, EXPECTED)?,
            };
            Ok((event, data, cb))
        }
    }
}

/// `[ev-id ?data]`: a keyword (EDN) or a string (JSON, an optional leading colon dropped).
fn event_vector(
    dialect: Dialect,
    item: Item,
    expected: &'static str,
) -> Result<(String, Option<Item>), DialectError> {
    let mut parts = vector_of_1_or_2(dialect, item, expected)?;
    let data = parts.pop_second();
    let event = match (dialect, parts.first) {
        (Dialect::Json, Item::Text(name)) => match name.strip_prefix(':').unwrap_or(&name) {
            "" => None,
            stripped if stripped.len() != name.len() => Some(stripped.to_owned()),
            _ => Some(name),
        },
        (Dialect::SenteLite | Dialect::Sente, Item::Keyword(name)) => Some(name),
        _ => None,
    };
    let expected = match dialect {
        Dialect::Json => "a non-empty string",
        _ => "a keyword",
    };
    event
        .map(|e| (e, data))
        .ok_or(DialectError::EventId { expected })
}

/// The one or two elements of a vector.
struct Parts {
    first: Item,
    second: Option<Item>,
}

impl Parts {
    fn pop_second(&mut self) -> Option<Item> {
        self.second.take()
    }
}

fn vector_of_1_or_2(
    dialect: Dialect,
    item: Item,
    expected: &'static str,
) -> Result<Parts, DialectError> {
    let Item::Array(items) = item else {
        return Err(shape(dialect, expected));
    };
    let mut items = items.into_iter();
    match (items.next(), items.next(), items.next()) {
        (Some(first), second, None) => Ok(Parts { first, second }),
        _ => Err(shape(dialect, expected)),
    }
}

fn shape(dialect: Dialect, expected: &'static str) -> DialectError {
    DialectError::Shape {
        dialect: dialect.name(),
        expected,
    }
}

fn channel_id(event: &'static str, data: Option<&Item>) -> Result<String, DialectError> {
    match data.and_then(|d| field(d, "channel-id")) {
        Some(Item::Text(channel)) | Some(Item::Keyword(channel)) => Ok(channel.clone()),
        _ => Err(DialectError::Field {
            event,
            field: "channel-id",
            expected: "a string",
        }),
    }
}

fn publish(data: Option<Item>) -> Result<Inbound, DialectError> {
    let channel = channel_id(PUBLISH, data.as_ref())?;
    // `channel_id` found a key, so the data is a map.
    let Some(Item::Map(entries)) = data else {
        return Err(DialectError::Field {
            event: PUBLISH,
            field: "channel-id",
            expected: "a string",
        });
    };
    let mut message = None;
    let mut exclude_sender = false;
    for (key, value) in entries {
        match key_name(&key) {
            Some("data") => message = Some(value),
            Some("exclude-sender?" | "exclude-sender") => match value {
                Item::Bool(b) => exclude_sender = b,
                Item::Null => {}
                _ => {
                    return Err(DialectError::Field {
                        event: PUBLISH,
                        field: "exclude-sender?",
                        expected: "a boolean",
                    });
                }
            },
            _ => {}
        }
    }
    Ok(Inbound::Publish {
        channel,
        data: payload(message),
        exclude_sender,
    })
}

/// A map's value under `name`, whether the key is the keyword `:name` or the text `"name"`.
fn field<'a>(map: &'a Item, name: &str) -> Option<&'a Item> {
    let Item::Map(entries) = map else { return None };
    entries
        .iter()
        .find(|(k, _)| key_name(k) == Some(name))
        .map(|(_, v)| v)
}

fn key_name(key: &Item) -> Option<&str> {
    match key {
        Item::Keyword(k) | Item::Text(k) => Some(k),
        _ => None,
    }
}

/// Data in the native value form; absent data is `Empty`, an explicit `nil` stays a value.
fn payload(data: Option<Item>) -> PayloadBuf {
    data.map_or(PayloadBuf::Empty, |d| PayloadBuf::Value(cbor::encode(&d)))
}
