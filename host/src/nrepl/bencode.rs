//! Bencode on a TCP stream: finding where one message ends (incrementally, without
//! recursion, with bounded size and nesting), decoding it with `bt_bencode`, and translating
//! between bencode and the JSON maps the rest of the module (and the channel) carries.
//!
//! nREPL frames nothing: dictionaries follow each other on the stream, a read may hold half
//! of one or several, and real clients send keys unsorted. [`Framer`] keeps the bytes read
//! so far and hands out one complete message at a time.

use bt_bencode::Value as Bencode;
use serde_json::{Map, Value};

/// Deepest nesting accepted (nREPL messages nest two or three levels). Checked before the
/// recursive decoder sees the bytes, so hostile input cannot exhaust the stack.
pub const MAX_DEPTH: usize = 32;

/// Why the stream cannot go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BencodeError {
    /// One message grew beyond the limit before it ended.
    #[error("message larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// Nested deeper than [`MAX_DEPTH`].
    #[error("message nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// Not bencode.
    #[error("malformed bencode at byte {offset}: {why}")]
    Malformed {
        /// Offset in the message.
        offset: usize,
        /// What was wrong.
        why: &'static str,
    },
    /// Bencode, but not a dictionary.
    #[error("an nREPL message must be a dictionary")]
    NotADict,
}

/// Where the first value in `bytes` ends: `Ok(Some(len))` when complete, `Ok(None)` when
/// more bytes are needed.
pub fn value_len(bytes: &[u8]) -> Result<Option<usize>, BencodeError> {
    let malformed = |offset, why| BencodeError::Malformed { offset, why };
    let mut depth = 0usize;
    let mut at = 0usize;
    loop {
        let Some(&b) = bytes.get(at) else {
            return Ok(None);
        };
        match b {
            b'd' | b'l' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(BencodeError::TooDeep);
                }
                at += 1;
                continue;
            }
            b'e' if depth > 0 => {
                depth -= 1;
                at += 1;
            }
            b'i' => {
                let rest = &bytes[at + 1..];
                let Some(end) = rest.iter().position(|&c| c == b'e') else {
                    if rest.len() > 21 {
                        return Err(malformed(at, "integer too long"));
                    }
                    return Ok(None);
                };
                let digits = &rest[..end];
                let unsigned = digits.strip_prefix(b"-").unwrap_or(digits);
                if unsigned.is_empty() || !unsigned.iter().all(u8::is_ascii_digit) {
                    return Err(malformed(at, "bad integer"));
                }
                at += end + 2;
            }
            b'0'..=b'9' => {
                let rest = &bytes[at..];
                let Some(colon) = rest.iter().position(|&c| c == b':') else {
                    if rest.len() > 20 {
                        return Err(malformed(at, "string length too long"));
                    }
                    return Ok(None);
                };
                let digits = &rest[..colon];
                if !digits.iter().all(u8::is_ascii_digit) || digits.len() > 19 {
                    return Err(malformed(at, "bad string length"));
                }
                let len: usize = std::str::from_utf8(digits)
                    .ok()
                    .and_then(|d| d.parse().ok())
                    .ok_or(malformed(at, "bad string length"))?;
                let end = at
                    .checked_add(colon + 1)
                    .and_then(|s| s.checked_add(len))
                    .ok_or(malformed(at, "string length too large"))?;
                if end > bytes.len() {
                    return Ok(None);
                }
                at = end;
            }
            _ => return Err(malformed(at, "expected a value")),
        }
        if depth == 0 {
            return Ok(Some(at));
        }
    }
}

/// The bytes read from one stream, handing out whole messages.
#[derive(Debug)]
pub struct Framer {
    buf: Vec<u8>,
    limit: usize,
}

impl Framer {
    /// A framer refusing messages above `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            buf: Vec::new(),
            limit,
        }
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete message, `Ok(None)` when more bytes are needed. After an error the
    /// stream is out of step and must be closed.
    pub fn next_message(&mut self) -> Result<Option<Map<String, Value>>, BencodeError> {
        match value_len(&self.buf)? {
            None if self.buf.len() > self.limit => {
                Err(BencodeError::TooLarge { limit: self.limit })
            }
            None => Ok(None),
            Some(len) if len > self.limit => Err(BencodeError::TooLarge { limit: self.limit }),
            Some(len) => {
                let decoded = bt_bencode::from_slice::<Bencode>(&self.buf[..len]);
                self.buf.drain(..len);
                match decoded {
                    Ok(dict @ Bencode::Dict(_)) => match to_json(&dict) {
                        Value::Object(map) => Ok(Some(map)),
                        _ => Err(BencodeError::NotADict),
                    },
                    Ok(_) => Err(BencodeError::NotADict),
                    Err(e) => Err(BencodeError::Malformed {
                        offset: e.byte_offset(),
                        why: "rejected by the decoder",
                    }),
                }
            }
        }
    }

    /// Bytes held that do not yet make a message.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

/// Bencode to JSON: byte strings become text (invalid UTF-8 replaced), integers numbers.
pub fn to_json(value: &Bencode) -> Value {
    match value {
        Bencode::ByteStr(b) => Value::String(String::from_utf8_lossy(b.as_slice()).into_owned()),
        Bencode::Int(bt_bencode::value::Number::Signed(n)) => Value::from(*n),
        Bencode::Int(bt_bencode::value::Number::Unsigned(n)) => Value::from(*n),
        Bencode::List(items) => Value::Array(items.iter().map(to_json).collect()),
        Bencode::Dict(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    (
                        String::from_utf8_lossy(k.as_slice()).into_owned(),
                        to_json(v),
                    )
                })
                .collect(),
        ),
    }
}

/// JSON to bencode bytes. Bencode has no null, booleans or floats: null map entries are
/// left out, `true`/`false` are sent as `"true"`/`"false"`, floats as their text.
pub fn encode(message: &Map<String, Value>) -> Vec<u8> {
    let mut out = Vec::new();
    write_map(&mut out, message);
    out
}

fn write_map(out: &mut Vec<u8>, map: &Map<String, Value>) {
    out.push(b'd');
    let mut keys: Vec<&String> = map.keys().filter(|k| !map[*k].is_null()).collect();
    keys.sort();
    for key in keys {
        write_str(out, key.as_bytes());
        write_value(out, &map[key]);
    }
    out.push(b'e');
}

fn write_str(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(bytes.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(bytes);
}

fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => write_str(out, b""),
        Value::Bool(b) => write_str(out, if *b { b"true" } else { b"false" }),
        Value::Number(n) if n.is_i64() || n.is_u64() => {
            out.push(b'i');
            out.extend_from_slice(n.to_string().as_bytes());
            out.push(b'e');
        }
        Value::Number(n) => write_str(out, n.to_string().as_bytes()),
        Value::String(s) => write_str(out, s.as_bytes()),
        Value::Array(items) => {
            out.push(b'l');
            for item in items {
                write_value(out, item);
            }
            out.push(b'e');
        }
        Value::Object(map) => write_map(out, map),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unsorted_keys_and_several_messages_in_pieces() {
        let stream = b"d4:code7:(+ 1 2)2:op4:eval2:id1:1ed2:op8:describe2:id0:e";
        let mut framer = Framer::new(1024);
        let mut got = Vec::new();
        for chunk in stream.chunks(5) {
            framer.push(chunk);
            while let Some(m) = framer.next_message().unwrap() {
                got.push(Value::Object(m));
            }
        }
        assert_eq!(
            got,
            vec![
                json!({"code": "(+ 1 2)", "op": "eval", "id": "1"}),
                json!({"op": "describe", "id": ""}),
            ]
        );
        assert_eq!(framer.buffered(), 0);
        // Keys out of order as real clients send them.
        let mut framer = Framer::new(1024);
        framer.push(b"d2:op5:clone2:id1:ae");
        assert_eq!(framer.next_message().unwrap().unwrap()["op"], "clone");
    }

    #[test]
    fn limits_and_garbage_are_typed_errors() {
        let mut framer = Framer::new(16);
        framer.push(b"d4:code30:");
        framer.push(&[b'x'; 20]);
        assert_eq!(
            framer.next_message(),
            Err(BencodeError::TooLarge { limit: 16 })
        );
        let mut framer = Framer::new(1 << 20);
        framer.push(&[b'l'; 100]);
        assert_eq!(framer.next_message(), Err(BencodeError::TooDeep));
        let mut framer = Framer::new(1024);
        framer.push(b"i42e");
        assert_eq!(framer.next_message(), Err(BencodeError::NotADict));
        let mut framer = Framer::new(1024);
        framer.push(b"x");
        assert!(matches!(
            framer.next_message(),
            Err(BencodeError::Malformed { .. })
        ));
        let mut framer = Framer::new(1024);
        framer.push(b"d2:op99999999999999999999999:");
        assert!(framer.next_message().is_err());
    }

    #[test]
    fn round_trip_keeps_extension_keys() {
        let message =
            json!({"id": "", "status": ["done"], "nrepl.middleware.print/print": "x", "n": -3});
        let bytes = encode(message.as_object().unwrap());
        let mut framer = Framer::new(1024);
        framer.push(&bytes);
        assert_eq!(
            Value::Object(framer.next_message().unwrap().unwrap()),
            message
        );
    }

    proptest::proptest! {
        /// The fuzz target's property on random input: whole messages or a typed error,
        /// and every decoded message survives re-encoding.
        #[test]
        fn any_bytes_frame_or_fail_cleanly(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256), split in 0usize..256) {
            let split = split.min(data.len());
            let mut framer = Framer::new(2048);
            for chunk in [&data[..split], &data[split..]] {
                framer.push(chunk);
                while let Ok(Some(message)) = framer.next_message() {
                    let mut again = Framer::new(usize::MAX);
                    again.push(&encode(&message));
                    proptest::prop_assert_eq!(again.next_message().unwrap(), Some(message));
                }
            }
        }

        /// Generated dictionaries, cut anywhere, come out whole.
        #[test]
        fn generated_messages_survive_any_cut(keys in proptest::collection::btree_map("[a-z/.-]{1,8}", "[ -~]{0,12}", 1..6), cut in 0usize..200) {
            let map: Map<String, Value> = keys.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
            let bytes = encode(&map);
            let cut = cut.min(bytes.len());
            let mut framer = Framer::new(4096);
            framer.push(&bytes[..cut]);
            let early = framer.next_message().unwrap();
            framer.push(&bytes[cut..]);
            let got = early.or_else(|| framer.next_message().unwrap());
            proptest::prop_assert_eq!(got, Some(map));
        }
    }
}
