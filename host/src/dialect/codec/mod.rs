//! Text ⇄ [`Inbound`] / [`Outbound`] for the three text dialects. Text is read into the
//! translator's [`Item`] tree (depth-bounded, typed errors), so every rule of the value model
//! applies to dialect messages unchanged; `read` interprets a tree as a message, `write`
//! builds the tree of a message.

mod read;
mod write;

use super::{Dialect, DialectError, EncodeOptions, Inbound, Outbound};
use crate::translate::item::Item;
use crate::translate::{TranslateError, cbor, edn_read, edn_write, json};

/// Reads one text message of `dialect`.
pub fn decode(dialect: Dialect, text: &str) -> Result<Inbound, DialectError> {
    let item = match dialect {
        Dialect::SenteLite | Dialect::Sente => edn_read::parse(text)?,
        Dialect::Json => json_item(text)?,
    };
    read::message(dialect, item)
}

/// Tells the dialect of a connection from its first text message: a JSON array whose first
/// element is a string is JSON; an EDN vector whose first element is a keyword is sente-lite;
/// an EDN vector of one or two elements whose first is an event vector (and second, if any,
/// `nil` or a callback id string) is Sente. Anything else is `None`.
pub fn detect(first_text: &str) -> Option<Dialect> {
    if let Ok(serde_json::Value::Array(items)) = serde_json::from_str(first_text)
        && matches!(items.first(), Some(serde_json::Value::String(_)))
    {
        return Some(Dialect::Json);
    }
    let Ok(Item::Array(items)) = edn_read::parse(first_text) else {
        return None;
    };
    match items.as_slice() {
        [Item::Keyword(_), ..] => Some(Dialect::SenteLite),
        [Item::Array(event)] | [Item::Array(event), Item::Null | Item::Text(_)]
            if matches!(event.first(), Some(Item::Keyword(_))) =>
        {
            Some(Dialect::Sente)
        }
        _ => None,
    }
}

/// Writes `messages` as text frames in order: one frame per message, except that Sente
/// packs consecutive pushes (events, channel messages, echoes, subscription answers) into
/// one `[[ev …] nil]` frame, as Sente servers batch them. A message that cannot be written
/// in `dialect` is left out and its error returned; the others are still written.
pub fn encode_batch(
    dialect: Dialect,
    messages: &[Outbound<'_>],
    options: EncodeOptions,
) -> (Vec<String>, Vec<DialectError>) {
    let mut frames = Vec::with_capacity(messages.len());
    let mut errors = Vec::new();
    let mut batch: Vec<String> = Vec::new();
    for message in messages {
        let written = write::message(dialect, message, options).and_then(|w| {
            let push = w.is_push();
            render(dialect, &w.into_item()).map(|text| (push, text))
        });
        match written {
            Ok((true, text)) if dialect == Dialect::Sente => batch.push(text),
            Ok((_, text)) => {
                flush_sente_batch(&mut batch, &mut frames);
                frames.push(text);
            }
            Err(e) => errors.push(e),
        }
    }
    flush_sente_batch(&mut batch, &mut frames);
    (frames, errors)
}

/// Sente's push envelope around the events gathered so far: `[[ev1 ev2 …] nil]`. Each event
/// was rendered on its own, so one untranslatable event never spoils its neighbours.
fn flush_sente_batch(batch: &mut Vec<String>, frames: &mut Vec<String>) {
    if batch.is_empty() {
        return;
    }
    let mut frame = String::with_capacity(batch.iter().map(|e| e.len() + 1).sum::<usize>() + 8);
    frame.push_str("[[");
    frame.push_str(&batch.join(" "));
    frame.push_str("] nil]");
    frames.push(frame);
    batch.clear();
}

fn render(dialect: Dialect, item: &Item) -> Result<String, DialectError> {
    match dialect {
        Dialect::SenteLite | Dialect::Sente => Ok(edn_write::to_edn(item)?),
        Dialect::Json => Ok(json::to_json(item)?.to_string()),
    }
}

/// JSON text as a tree, through the same JSON → CBOR rules payloads use (integral numbers
/// become integers, keys stay text).
fn json_item(text: &str) -> Result<Item, TranslateError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| TranslateError::Json(e.to_string()))?;
    cbor::decode(&cbor::from_json(&value))
}

#[cfg(test)]
mod tests;
