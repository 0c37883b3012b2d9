//! Reading what clients send before it goes to the store: why a payload is refused, and the
//! single `telemetry/log-msg` map of sente-lite clients turned into an owned record. (The
//! compact `telemetry/log-batch` payload of native clients is checked by
//! [`WireBatch::checked`](super::WireBatch::checked) and stored as it came.)

use sentelite_core::frame::PayloadBuf;
use sentelite_core::log::{BatchError, Level};

use super::entry::LogEntry;
use super::store::IngestBatch;
use crate::translate::payload_to_json;

/// Who sent a batch.
#[derive(Debug, Clone)]
pub struct Sender<'a> {
    /// Client id from the Hello.
    pub client_id: &'a str,
    /// Boot id from the Hello.
    pub boot_id: u32,
    /// The connection's uid.
    pub uid: &'a str,
}

/// Why a payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    /// A batch must be a bytes payload.
    #[error("a log batch must be a bytes payload")]
    NotBytes,
    /// The batch does not decode.
    #[error(transparent)]
    Batch(#[from] BatchError),
    /// A `telemetry/log-msg` payload is not a map with the expected keys.
    #[error("log message: {0}")]
    Message(String),
}

/// Reads one record in either shape Clojure clients send: the `telemetry/log-msg` map
/// `{:ns :level :id :data :timestamp}` (plus an optional `:message` / `:msg`) and the
/// `log-routing` channel map, which adds `:coords` (`[line column]`) and `:source` (the
/// sender's own name for itself). Keys may be keywords or text (EDN, CBOR Value or JSON);
/// levels are Trove's `:trace` … `:report`.
///
/// The text of the record is `:message`, else `:msg`, else the `:msg` inside `:data` (where
/// Trove's wrappers put it). The stored record has no columns for `:source` and `:coords`,
/// so they are kept in its data: added to the `:data` map under those names unless it has
/// them already, or, when `:data` is not a map, beside it as `{"value" … "source" …}`.
pub fn message_from_payload(
    from: &Sender<'_>,
    payload: &PayloadBuf,
    received_ms: u64,
) -> Result<IngestBatch, IngestError> {
    let value = payload_to_json(payload).map_err(|e| IngestError::Message(e.to_string()))?;
    let serde_json::Value::Object(mut map) = value else {
        return Err(IngestError::Message("expected a map".into()));
    };
    let text = |map: &Map, key: &str| map.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    let level_name = text(&map, "level").unwrap_or_else(|| "info".into());
    let level = Level::from_name(&level_name)
        .ok_or_else(|| IngestError::Message(format!("unknown level {level_name:?}")))?;
    // A timestamp that is not Unix milliseconds (an `#inst`, say) costs the record its
    // client time, not its place in the store.
    let time_ms = map
        .get("timestamp")
        .and_then(timestamp_ms)
        .unwrap_or(received_ms);
    let data = map.remove("data").unwrap_or(serde_json::Value::Null);
    let message = text(&map, "message")
        .or_else(|| text(&map, "msg"))
        .or_else(|| data.get("msg").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_default();
    let extras: Vec<(&str, serde_json::Value)> = ["source", "coords"]
        .into_iter()
        .filter_map(|key| map.remove(key).map(|v| (key, v)))
        .collect();
    let entry = LogEntry {
        client_id: from.client_id.to_owned(),
        boot_id: from.boot_id,
        seq: None,
        uid: from.uid.to_owned(),
        time_ms,
        received_ms,
        level: level.name().to_owned(),
        ns: text(&map, "ns").unwrap_or_default(),
        id: text(&map, "id"),
        message,
        data: with_extras(data, extras),
    };
    Ok(IngestBatch {
        client_id: from.client_id.to_owned(),
        bytes: payload.as_payload().len() as u64,
        received_ms,
        records: vec![entry],
        gap: None,
    })
}

type Map = serde_json::Map<String, serde_json::Value>;

/// A client timestamp in Unix milliseconds. JavaScript numbers do not tell integers from
/// floats, so an integral float is taken too.
fn timestamp_ms(value: &serde_json::Value) -> Option<u64> {
    value.as_u64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 2f64.powi(53))
            .map(|f| f as u64)
    })
}

/// `data` with the record's `:source` / `:coords` kept in it (see [`message_from_payload`]).
fn with_extras(
    data: serde_json::Value,
    extras: Vec<(&str, serde_json::Value)>,
) -> serde_json::Value {
    if extras.is_empty() {
        return data;
    }
    let mut map = match data {
        serde_json::Value::Object(map) => map,
        serde_json::Value::Null => Map::new(),
        other => Map::from_iter([("value".to_owned(), other)]),
    };
    for (key, value) in extras {
        map.entry(key).or_insert(value);
    }
    serde_json::Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::edn_to_cbor;

    const FROM: Sender<'static> = Sender {
        client_id: "web-1",
        boot_id: 0,
        uid: "conn-1-1",
    };

    fn read(payload: PayloadBuf) -> Result<LogEntry, IngestError> {
        message_from_payload(&FROM, &payload, 99).map(|mut b| b.records.remove(0))
    }

    fn edn(text: &str) -> PayloadBuf {
        PayloadBuf::Value(edn_to_cbor(text).unwrap())
    }

    #[test]
    fn every_trove_level_is_read_from_a_keyword() {
        for level in ["trace", "debug", "info", "warn", "error", "fatal", "report"] {
            let got = read(edn(&format!("{{:level :{level}}}"))).unwrap();
            assert_eq!(got.level, level);
        }
        assert!(matches!(
            read(edn("{:level :loud}")),
            Err(IngestError::Message(_))
        ));
    }

    #[test]
    fn keyword_and_text_keys_read_the_same_and_the_sender_is_kept() {
        let keywords = read(edn(
            r#"{:ns "my.app", :level :warn, :id :my.app/slow, :data [1 "two" nil], :timestamp 1766108726643}"#,
        ))
        .unwrap();
        let text = read(PayloadBuf::Json(
            r#"{"ns":"my.app","level":"warn","id":"my.app/slow","data":[1,"two",null],"timestamp":1766108726643.0}"#
                .into(),
        ))
        .unwrap();
        let cbor_text = read(edn(
            r#"{"ns" "my.app", "level" "warn", "id" "my.app/slow", "data" [1 "two" nil], "timestamp" 1766108726643}"#,
        ))
        .unwrap();
        assert_eq!(keywords, text);
        assert_eq!(keywords, cbor_text);
        assert_eq!(
            (
                keywords.client_id.as_str(),
                keywords.uid.as_str(),
                keywords.time_ms,
                keywords.received_ms,
                keywords.id.as_deref(),
            ),
            ("web-1", "conn-1-1", 1766108726643, 99, Some("my.app/slow"))
        );
        assert_eq!(keywords.data, serde_json::json!([1, "two", null]));
    }

    #[test]
    fn the_text_comes_from_message_msg_or_the_datas_msg() {
        let of = |text: &str| read(edn(text)).unwrap().message;
        assert_eq!(of(r#"{:message "a", :msg "b", :data {:msg "c"}}"#), "a");
        assert_eq!(of(r#"{:msg "b", :data {:msg "c"}}"#), "b");
        assert_eq!(of(r#"{:data {:msg "c"}}"#), "c");
        assert_eq!(of(r#"{:data "not a map"}"#), "");
    }

    #[test]
    fn source_and_coords_are_kept_in_the_data() {
        let data = |text: &str| read(edn(text)).unwrap().data;
        assert_eq!(
            data(r#"{:data {:n 1}, :source "pad", :coords [4 2]}"#),
            serde_json::json!({"n": 1, "source": "pad", "coords": [4, 2]})
        );
        assert_eq!(
            data(r#"{:data {:source "inner"}, :source "outer"}"#),
            serde_json::json!({"source": "inner"})
        );
        assert_eq!(
            data(r#"{:data 7, :source "pad"}"#),
            serde_json::json!({"value": 7, "source": "pad"})
        );
        assert_eq!(
            data(r#"{:source "pad"}"#),
            serde_json::json!({"source": "pad"})
        );
        assert_eq!(data("{:level :info}"), serde_json::Value::Null);
    }

    #[test]
    fn a_timestamp_that_is_not_milliseconds_falls_back_to_arrival() {
        let time = |text: &str| read(edn(text)).unwrap().time_ms;
        assert_eq!(time(r#"{:timestamp #inst "2026-01-01T00:00:00Z"}"#), 99);
        assert_eq!(time("{:timestamp -5}"), 99);
        assert_eq!(time("{:timestamp 12.5}"), 99);
        assert_eq!(time("{:timestamp 12.0}"), 12);
    }

    #[test]
    fn what_is_not_a_map_is_refused() {
        for payload in [
            edn("[:a :b]"),
            edn("nil"),
            PayloadBuf::Value(vec![0xa1]),
            PayloadBuf::Json("{".into()),
        ] {
            assert!(matches!(read(payload), Err(IngestError::Message(_))));
        }
    }
}
