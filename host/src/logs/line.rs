//! The JSON line of a record, written straight from its borrowed fields into a reused buffer.
//!
//! The file sink writes one line per stored record, so this is on the ingest's hot path:
//! field names are literals, strings are copied whole when they need no escaping, and CBOR
//! data is walked once and written as it is read. The result is byte for byte what
//! `serde_json` writes for the same [`LogEntry`](super::LogEntry) (its data as a
//! `serde_json::Value`, whose maps sort their keys): data this writer cannot write in one
//! pass — map keys out of order or repeated, keys needing escapes, byte strings, tags other
//! than keywords, numbers beyond 64 bits, half floats, deep nesting — takes that slower path.

use minicbor::Decoder;
use minicbor::data::Type;
use sentelite_core::value::KEYWORD_TAG;

use super::entry::{Data, EntryRef, structured};

/// Deepest nesting the one-pass writer handles; deeper data takes the slower path.
const FAST_DEPTH: usize = 16;

/// Appends `e` as one JSON line (with its newline) to `out`.
pub(crate) fn write_line(out: &mut Vec<u8>, e: &EntryRef<'_>) {
    out.extend_from_slice(b"{\"client-id\":");
    string(out, e.client_id);
    out.extend_from_slice(b",\"boot-id\":");
    number(out, e.boot_id);
    out.extend_from_slice(b",\"seq\":");
    match e.seq {
        Some(seq) => number(out, seq),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"uid\":");
    string(out, e.uid);
    out.extend_from_slice(b",\"time-ms\":");
    number(out, e.time_ms);
    out.extend_from_slice(b",\"received-ms\":");
    number(out, e.received_ms);
    out.extend_from_slice(b",\"level\":");
    string(out, e.level);
    out.extend_from_slice(b",\"ns\":");
    string(out, e.ns);
    out.extend_from_slice(b",\"id\":");
    match e.id {
        Some(id) => string(out, id),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"message\":");
    string(out, e.message);
    out.extend_from_slice(b",\"data\":");
    match e.data {
        Data::Cbor([]) => out.extend_from_slice(b"null"),
        Data::Cbor(bytes) => {
            let start = out.len();
            if cbor_as_json(out, bytes).is_err() {
                out.truncate(start);
                json_value(out, &structured(bytes));
            }
        }
        Data::Json(value) => json_value(out, value),
    }
    out.extend_from_slice(b"}\n");
}

fn json_value(out: &mut Vec<u8>, value: &serde_json::Value) {
    // Writing a Value into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
}

fn number(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// True when JSON needs no escape inside `s` (the characters `serde_json` escapes).
fn plain(s: &str) -> bool {
    !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\')
}

fn string(out: &mut Vec<u8>, s: &str) {
    if plain(s) {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// Data the one-pass writer leaves to the slower path.
struct Slow;

impl From<minicbor::decode::Error> for Slow {
    fn from(_: minicbor::decode::Error) -> Self {
        Slow
    }
}

/// Writes one CBOR data item as JSON, or fails with [`Slow`] having written part of it.
fn cbor_as_json(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), Slow> {
    let mut d = Decoder::new(bytes);
    item(&mut d, out, 0)?;
    if d.position() == bytes.len() {
        Ok(())
    } else {
        Err(Slow)
    }
}

/// A text string or a keyword, as its text.
fn text<'b>(d: &mut Decoder<'b>) -> Result<&'b str, Slow> {
    match d.datatype()? {
        Type::String => Ok(d.str()?),
        Type::Tag => {
            if d.tag()?.as_u64() != KEYWORD_TAG || d.datatype()? != Type::String {
                return Err(Slow);
            }
            Ok(d.str()?)
        }
        _ => Err(Slow),
    }
}

fn item(d: &mut Decoder<'_>, out: &mut Vec<u8>, depth: usize) -> Result<(), Slow> {
    if depth > FAST_DEPTH {
        return Err(Slow);
    }
    match d.datatype()? {
        Type::Bool => out.extend_from_slice(if d.bool()? { b"true" } else { b"false" }),
        Type::Null => {
            d.null()?;
            out.extend_from_slice(b"null");
        }
        Type::U8 | Type::U16 | Type::U32 | Type::U64 => number(out, d.u64()?),
        Type::I8 | Type::I16 | Type::I32 | Type::I64 => number(out, d.i64()?),
        Type::F32 => float(out, f64::from(d.f32()?)),
        Type::F64 => float(out, d.f64()?),
        Type::String | Type::Tag => string(out, text(d)?),
        Type::Array => {
            let len = d.array()?.ok_or(Slow)?;
            out.push(b'[');
            for i in 0..len {
                if i > 0 {
                    out.push(b',');
                }
                item(d, out, depth + 1)?;
            }
            out.push(b']');
        }
        Type::Map => {
            let len = d.map()?.ok_or(Slow)?;
            out.push(b'{');
            let mut previous: Option<&str> = None;
            for i in 0..len {
                let key = text(d)?;
                // A sorted map writes its keys in order, each once.
                if !plain(key) || previous.is_some_and(|p| p >= key) {
                    return Err(Slow);
                }
                previous = Some(key);
                if i > 0 {
                    out.push(b',');
                }
                string(out, key);
                out.push(b':');
                item(d, out, depth + 1)?;
            }
            out.push(b'}');
        }
        _ => return Err(Slow),
    }
    Ok(())
}

fn float(out: &mut Vec<u8>, f: f64) {
    // As serde_json writes a Value number: finite floats in shortest form, others as null.
    if f.is_finite() {
        let _ = serde_json::to_writer(&mut *out, &f);
    } else {
        out.extend_from_slice(b"null");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::LogEntry;
    use crate::logs::entry::Origin;
    use sentelite_core::log::{Level, Record};

    fn line_of(data: &[u8], message: &str) -> (Vec<u8>, Vec<u8>) {
        let origin = Origin {
            client_id: "dev-1",
            boot_id: 3,
            uid: "u-1",
            received_ms: 99,
        };
        let record = Record {
            seq: 7,
            time_ms: 1_764_590_000_000,
            level: Level::Warn,
            namespace: "app.sensor",
            id: Some("app.sensor/read"),
            message,
            data,
        };
        let e = EntryRef::of(&origin, &record, true);
        let mut fast = Vec::new();
        write_line(&mut fast, &e);
        let mut slow = serde_json::to_vec(&LogEntry::from_record(&e)).unwrap();
        slow.push(b'\n');
        (fast, slow)
    }

    #[test]
    fn lines_are_what_serde_json_writes_for_the_owned_record() {
        let cases: &[&[u8]] = &[
            // {:n 1234}
            &[0xa1, 0xd8, 0x27, 0x61, 0x6e, 0x19, 0x04, 0xd2],
            // {"b" [1 -2 1.5 true nil], "a" {"z" "x"}}: keys out of order
            &[
                0xa2, 0x61, 0x62, 0x85, 0x01, 0x21, 0xf9, 0x3e, 0x00, 0xf5, 0xf6, 0x61, 0x61, 0xa1,
                0x61, 0x7a, 0x61, 0x78,
            ],
            // {"a" 1, "a" 2}: a repeated key, the last one wins
            &[0xa2, 0x61, 0x61, 0x01, 0x61, 0x61, 0x02],
            // {"a" 1.0e300, "b" NaN (double), "c" "q\"uote"}
            &[
                0xa3, 0x61, 0x61, 0xfb, 0x7e, 0x37, 0xe4, 0x3c, 0x88, 0x00, 0x75, 0x9c, 0x61, 0x62,
                0xfb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0, 0x61, 0x63, 0x67, 0x71, 0x22, 0x75, 0x6f, 0x74,
                0x65, 0x00,
            ],
            // h'0102' (bytes: base64) and a map with an integer key
            &[0x42, 0x01, 0x02],
            &[0xa1, 0x01, 0x02],
            // Not CBOR at all: kept base64-encoded
            &[0xff, 0x00],
            // 18446744073709551615 and -9223372036854775808
            &[
                0x82, 0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3b, 0x7f, 0xff, 0xff,
                0xff, 0xff, 0xff, 0xff, 0xff,
            ],
            &[],
        ];
        for data in cases {
            let (fast, slow) = line_of(data, "sample out of range");
            assert_eq!(
                String::from_utf8_lossy(&fast),
                String::from_utf8_lossy(&slow),
                "data {data:02x?}"
            );
        }
        let (fast, slow) = line_of(&[], "tab\there \"quoted\" back\\slash \u{1}");
        assert_eq!(fast, slow);
    }
}
