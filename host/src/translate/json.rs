//! [`Item`] to JSON. The tree is already depth-bounded, so plain recursion is safe.

use serde_json::{Map, Number, Value};

use super::TranslateError;
use super::item::{Item, base64_encode, uuid_text};

/// Converts a tree to a JSON value (lossy where the module docs say so).
pub(crate) fn to_json(item: &Item) -> Result<Value, TranslateError> {
    Ok(match item {
        Item::Null => Value::Null,
        Item::Bool(b) => Value::Bool(*b),
        Item::Int(n) => int_to_json(*n),
        Item::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Item::Text(s) | Item::Keyword(s) | Item::Inst(s) => Value::String(s.clone()),
        Item::Bytes(b) => Value::String(base64_encode(b)),
        Item::Uuid(b) => Value::String(uuid_text(b)),
        // JSON has no sets: a set is its elements in an array (lossy).
        Item::Array(items) | Item::Set(items) => {
            Value::Array(items.iter().map(to_json).collect::<Result<_, _>>()?)
        }
        // JSON has no tags: a tagged literal is its value (lossy).
        Item::Tagged(_, value) => to_json(value)?,
        Item::Map(entries) => {
            let mut map = Map::new();
            for (k, v) in entries {
                map.insert(key_text(k)?, to_json(v)?);
            }
            Value::Object(map)
        }
    })
}

fn int_to_json(n: i128) -> Value {
    if let Ok(i) = i64::try_from(n) {
        Value::from(i)
    } else if let Ok(u) = u64::try_from(n) {
        Value::from(u)
    } else {
        // Below -2^63: only a double can carry it in serde_json.
        Number::from_f64(n as f64).map_or(Value::Null, Value::Number)
    }
}

/// The JSON object key for a map key: text as is, other scalars as their JSON text.
fn key_text(key: &Item) -> Result<String, TranslateError> {
    Ok(match key {
        Item::Null => "null".to_owned(),
        Item::Bool(b) => b.to_string(),
        Item::Int(n) => n.to_string(),
        Item::Float(f) => format!("{f:?}"),
        Item::Text(s) | Item::Keyword(s) | Item::Inst(s) => s.clone(),
        Item::Bytes(b) => base64_encode(b),
        Item::Uuid(b) => uuid_text(b),
        Item::Tagged(_, value) => return key_text(value),
        Item::Array(_) => return Err(TranslateError::JsonKey("array")),
        Item::Set(_) => return Err(TranslateError::JsonKey("set")),
        Item::Map(_) => return Err(TranslateError::JsonKey("map")),
    })
}
