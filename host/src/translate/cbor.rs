//! CBOR in and out: `minicbor` decodes into an [`Item`] tree with a depth bound; writing is a
//! direct byte encoding of RFC 8949 heads, for [`Item`] trees and for JSON values.

use minicbor::Decoder;
use minicbor::data::Type;
use sentelite_core::value::KEYWORD_TAG;
use serde_json::Value;

use super::item::{Item, TagFault, first_duplicate, tagged};
use super::{MAX_DEPTH, TranslateError};

/// CBOR tag of an RFC 3339 date/time string.
const TAG_DATETIME: u64 = 0;
/// CBOR tag of a binary UUID.
const TAG_UUID: u64 = 37;
/// CBOR tag of a "serialised object", `[type-name, value]`: EDN tagged literals.
const TAG_OBJECT: u64 = 27;
/// CBOR tag of a mathematical finite set, an array of distinct elements.
const TAG_SET: u64 = 258;

const MAJOR_UNSIGNED: u8 = 0;
const MAJOR_NEGATIVE: u8 = 1;
const MAJOR_BYTES: u8 = 2;
const MAJOR_TEXT: u8 = 3;
const MAJOR_ARRAY: u8 = 4;
const MAJOR_MAP: u8 = 5;
const MAJOR_TAG: u8 = 6;
const FALSE: u8 = 0xf4;
const TRUE: u8 = 0xf5;
const NULL: u8 = 0xf6;
const FLOAT64: u8 = 0xfb;

/// Decodes exactly one data item; anything after it is an error.
pub(crate) fn decode(bytes: &[u8]) -> Result<Item, TranslateError> {
    let mut d = Decoder::new(bytes);
    let item = read(&mut d, 0)?;
    if d.position() < bytes.len() {
        return Err(TranslateError::TrailingBytes {
            offset: d.position(),
        });
    }
    Ok(item)
}

fn read(d: &mut Decoder<'_>, depth: usize) -> Result<Item, TranslateError> {
    let at = d.position();
    let err = |e: minicbor::decode::Error| cbor_error(e, at);
    let item = match d.datatype().map_err(err)? {
        Type::Bool => Item::Bool(d.bool().map_err(err)?),
        Type::Null => {
            d.null().map_err(err)?;
            Item::Null
        }
        Type::Undefined => {
            d.undefined().map_err(err)?;
            Item::Null
        }
        Type::U8
        | Type::U16
        | Type::U32
        | Type::U64
        | Type::I8
        | Type::I16
        | Type::I32
        | Type::I64
        | Type::Int => Item::Int(i128::from(d.int().map_err(err)?)),
        Type::F16 => float(read_f16(d)?),
        Type::F32 => float(f64::from(d.f32().map_err(err)?)),
        Type::F64 => float(d.f64().map_err(err)?),
        Type::Bytes | Type::BytesIndef => Item::Bytes(read_bytes(d)?),
        Type::String | Type::StringIndef => Item::Text(read_text(d)?),
        Type::Array | Type::ArrayIndef => {
            let depth = deeper(depth)?;
            let len = d.array().map_err(err)?;
            let mut items = Vec::with_capacity(capacity(d, len));
            each_element(d, len, |d| {
                items.push(read(d, depth)?);
                Ok(())
            })?;
            Item::Array(items)
        }
        Type::Map | Type::MapIndef => {
            let depth = deeper(depth)?;
            let len = d.map().map_err(err)?;
            let mut entries = Vec::with_capacity(capacity(d, len));
            each_element(d, len, |d| {
                let key = read(d, depth)?;
                let value = read(d, depth)?;
                entries.push((key, value));
                Ok(())
            })?;
            // EDN peers refuse a map literal with a repeated key, so it cannot be passed on.
            if first_duplicate(entries.iter().map(|(k, _)| k)).is_some() {
                return Err(TranslateError::CborDuplicate {
                    offset: at,
                    what: "map key",
                });
            }
            Item::Map(entries)
        }
        Type::Tag => {
            let tag = d.tag().map_err(err)?.as_u64();
            read_tagged(d, tag, depth, at)?
        }
        Type::Simple => {
            let n = d.simple().map_err(err)?;
            return Err(TranslateError::Unsupported(format!(
                "CBOR simple value {n}"
            )));
        }
        Type::Break => {
            return Err(TranslateError::Cbor {
                offset: at,
                detail: "break outside an indefinite-length item".to_owned(),
            });
        }
        Type::Unknown(b) => {
            return Err(TranslateError::Cbor {
                offset: at,
                detail: format!("reserved initial byte {b:#04x}"),
            });
        }
    };
    Ok(item)
}

/// A float item with every NaN made the one NaN EDN (`##NaN`) and JSON can express, so two
/// NaNs with different payload bits are the same element of a set, as they are once printed.
fn float(f: f64) -> Item {
    Item::Float(if f.is_nan() { f64::NAN } else { f })
}

/// The item under `tag`, whose head starts at `start`; `depth` is the tag's own level.
///
/// Levels count as the EDN reader counts them, so a form it accepts is accepted here too:
/// a set's or tagged literal's array belongs to its tag and is one level with it, and a
/// keyword, date/time or UUID is a scalar, however it is tagged. Unknown tags are a level.
fn read_tagged(
    d: &mut Decoder<'_>,
    tag: u64,
    depth: usize,
    start: usize,
) -> Result<Item, TranslateError> {
    let at = d.position();
    let kind = d.datatype().map_err(|e| cbor_error(e, at))?;
    let is_text = matches!(kind, Type::String | Type::StringIndef);
    let is_bytes = matches!(kind, Type::Bytes | Type::BytesIndef);
    let is_array = matches!(kind, Type::Array | Type::ArrayIndef);
    match tag {
        TAG_SET if is_array => {
            let depth = deeper(depth)?;
            let len = d.array().map_err(|e| cbor_error(e, at))?;
            let mut items = Vec::with_capacity(capacity(d, len));
            each_element(d, len, |d| {
                items.push(read(d, depth)?);
                Ok(())
            })?;
            if first_duplicate(&items).is_some() {
                return Err(TranslateError::CborDuplicate {
                    offset: start,
                    what: "set element",
                });
            }
            Ok(Item::Set(items))
        }
        TAG_OBJECT if is_array => read_object(d, deeper(depth)?),
        KEYWORD_TAG if is_text => Ok(Item::Keyword(read_text(d)?)),
        // The EDN reader refuses `#inst ""`, so an empty date/time must not get through here.
        TAG_DATETIME if is_text => match read_text(d)? {
            text if text.is_empty() => Err(TranslateError::Unsupported(
                "an empty date/time (tag 0)".to_owned(),
            )),
            text => Ok(Item::Inst(text)),
        },
        TAG_UUID if is_bytes => {
            let bytes = read_bytes(d)?;
            <[u8; 16]>::try_from(bytes.as_slice())
                .map(Item::Uuid)
                .map_err(|_| {
                    TranslateError::Unsupported(format!("a UUID (tag 37) of {} bytes", bytes.len()))
                })
        }
        KEYWORD_TAG | TAG_DATETIME | TAG_UUID | TAG_SET | TAG_OBJECT => Err(
            TranslateError::Unsupported(format!("tag {tag} on a CBOR {kind}")),
        ),
        _ => read(d, deeper(depth)?),
    }
}

/// Tag 27's `[tag-name, value]`, interpreted as the EDN reader interprets `#tag-name value`.
fn read_object(d: &mut Decoder<'_>, depth: usize) -> Result<Item, TranslateError> {
    let at = d.position();
    let unsupported = |detail: String| TranslateError::Unsupported(format!("tag 27 {detail}"));
    let len = d.array().map_err(|e| cbor_error(e, at))?;
    let name = match len {
        Some(2) | None => read(d, depth)?,
        Some(n) => return Err(unsupported(format!("over {n} elements (expected 2)"))),
    };
    let Item::Text(name) = name else {
        return Err(unsupported("whose name is not text".to_owned()));
    };
    let value = read(d, depth)?;
    if len.is_none() {
        let end = d.position();
        if d.datatype().map_err(|e| cbor_error(e, end))? != Type::Break {
            return Err(unsupported("over more than 2 elements".to_owned()));
        }
        d.set_position(end + 1);
    }
    let shown = name.clone();
    tagged(name, value).map_err(|fault| match fault {
        TagFault::Name => TranslateError::InvalidTag(shown),
        TagFault::Value(detail) => unsupported(format!("value: {detail}")),
    })
}

/// Depth of the children of a collection or tag opened at `depth`.
fn deeper(depth: usize) -> Result<usize, TranslateError> {
    if depth >= MAX_DEPTH {
        return Err(TranslateError::TooDeep { limit: MAX_DEPTH });
    }
    Ok(depth + 1)
}

/// A capacity hint that a forged length cannot inflate: every element takes at least one
/// byte of the remaining input.
fn capacity(d: &Decoder<'_>, len: Option<u64>) -> usize {
    let remaining = d.input().len().saturating_sub(d.position());
    len.map_or(0, |n| {
        usize::try_from(n).unwrap_or(usize::MAX).min(remaining)
    })
}

/// Runs `f` once per element of a definite (`Some(len)`) or indefinite (`None`) collection,
/// consuming the break of an indefinite one.
fn each_element<'b>(
    d: &mut Decoder<'b>,
    len: Option<u64>,
    mut f: impl FnMut(&mut Decoder<'b>) -> Result<(), TranslateError>,
) -> Result<(), TranslateError> {
    match len {
        Some(n) => (0..n).try_for_each(|_| f(d)),
        None => loop {
            let at = d.position();
            if d.datatype().map_err(|e| cbor_error(e, at))? == Type::Break {
                d.set_position(at + 1);
                return Ok(());
            }
            f(d)?;
        },
    }
}

fn read_text(d: &mut Decoder<'_>) -> Result<String, TranslateError> {
    let at = d.position();
    let mut out = String::new();
    for chunk in d.str_iter().map_err(|e| cbor_error(e, at))? {
        out.push_str(chunk.map_err(|e| cbor_error(e, at))?);
    }
    Ok(out)
}

fn read_bytes(d: &mut Decoder<'_>) -> Result<Vec<u8>, TranslateError> {
    let at = d.position();
    let mut out = Vec::new();
    for chunk in d.bytes_iter().map_err(|e| cbor_error(e, at))? {
        out.extend_from_slice(chunk.map_err(|e| cbor_error(e, at))?);
    }
    Ok(out)
}

/// Half floats by hand (RFC 8949 appendix D), so `minicbor` needs no `half` dependency.
fn read_f16(d: &mut Decoder<'_>) -> Result<f64, TranslateError> {
    let at = d.position();
    let bits = d
        .input()
        .get(at + 1..at + 3)
        .ok_or(TranslateError::CborTruncated)?;
    let half = u16::from_be_bytes([bits[0], bits[1]]);
    d.set_position(at + 3);
    let exponent = i32::from((half >> 10) & 0x1f);
    let mantissa = f64::from(half & 0x3ff);
    let magnitude = match exponent {
        0 => mantissa * 2f64.powi(-24),
        31 if mantissa == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (mantissa + 1024.0) * 2f64.powi(e - 25),
    };
    Ok(if half & 0x8000 != 0 {
        -magnitude
    } else {
        magnitude
    })
}

fn cbor_error(e: minicbor::decode::Error, at: usize) -> TranslateError {
    if e.is_end_of_input() {
        TranslateError::CborTruncated
    } else {
        TranslateError::Cbor {
            offset: e.position().unwrap_or(at),
            detail: e.to_string(),
        }
    }
}

/// Writes an [`Item`] tree (already depth-bounded by whoever built it).
pub(crate) fn encode(item: &Item) -> Vec<u8> {
    let mut out = Vec::new();
    write_item(&mut out, item, Floats::AsTheyAre);
    out
}

/// The bytes two items share exactly when a set or map must not hold both: [`encode`], but
/// a float with an integral value written as that integer. ClojureScript's numbers are
/// JavaScript's, where `1` and `1.0`, `0.0` and `-0.0` are one number, and its reader
/// refuses `#{1 1.0}` and `#{0.0 -0.0}`; refusing them here too means no peer is ever sent a
/// set or map it cannot read.
pub(crate) fn equality_key(item: &Item) -> Vec<u8> {
    let mut out = Vec::new();
    write_item(&mut out, item, Floats::IntegralAsIntegers);
    out
}

#[derive(Clone, Copy)]
enum Floats {
    AsTheyAre,
    IntegralAsIntegers,
}

fn write_item(out: &mut Vec<u8>, item: &Item, floats: Floats) {
    match item {
        Item::Null => out.push(NULL),
        Item::Bool(b) => out.push(if *b { TRUE } else { FALSE }),
        Item::Int(n) => write_int(out, *n),
        // Within ±1.8e19 an integral float converts to an integer exactly.
        Item::Float(f)
            if matches!(floats, Floats::IntegralAsIntegers)
                && f.fract() == 0.0
                && (-1.8e19..1.8e19).contains(f) =>
        {
            write_int(out, *f as i128)
        }
        Item::Float(f) => write_f64(out, *f),
        Item::Text(s) => write_text(out, s),
        Item::Keyword(s) => {
            head(out, MAJOR_TAG, KEYWORD_TAG);
            write_text(out, s);
        }
        Item::Bytes(b) => write_bytes(out, b),
        Item::Inst(s) => {
            head(out, MAJOR_TAG, TAG_DATETIME);
            write_text(out, s);
        }
        Item::Uuid(b) => {
            head(out, MAJOR_TAG, TAG_UUID);
            write_bytes(out, b);
        }
        Item::Array(items) => {
            head(out, MAJOR_ARRAY, items.len() as u64);
            items.iter().for_each(|i| write_item(out, i, floats));
        }
        Item::Set(items) => {
            head(out, MAJOR_TAG, TAG_SET);
            head(out, MAJOR_ARRAY, items.len() as u64);
            items.iter().for_each(|i| write_item(out, i, floats));
        }
        Item::Tagged(name, value) => {
            head(out, MAJOR_TAG, TAG_OBJECT);
            head(out, MAJOR_ARRAY, 2);
            write_text(out, name);
            write_item(out, value, floats);
        }
        Item::Map(entries) => {
            head(out, MAJOR_MAP, entries.len() as u64);
            for (k, v) in entries {
                write_item(out, k, floats);
                write_item(out, v, floats);
            }
        }
    }
}

/// Writes a JSON value without recursion: a programmatically built `Value` can nest deeper
/// than any stack, and this conversion promises not to fail.
pub(crate) fn from_json(value: &Value) -> Vec<u8> {
    from_json_with(value, false)
}

/// [`from_json`], with object keys that are keyword names written as keywords (tag 39), for
/// JSON that EDN peers should read with keyword keys.
pub(crate) fn from_json_with(value: &Value, keyword_keys: bool) -> Vec<u8> {
    enum Work<'a> {
        Value(&'a Value),
        Key(&'a str),
    }
    let mut out = Vec::new();
    let mut stack = vec![Work::Value(value)];
    while let Some(work) = stack.pop() {
        let value = match work {
            Work::Key(key) => {
                if keyword_keys && super::item::is_keyword_name(key) {
                    head(&mut out, MAJOR_TAG, KEYWORD_TAG);
                }
                write_text(&mut out, key);
                continue;
            }
            Work::Value(value) => value,
        };
        match value {
            Value::Null => out.push(NULL),
            Value::Bool(b) => out.push(if *b { TRUE } else { FALSE }),
            Value::Number(n) => write_json_number(&mut out, n),
            Value::String(s) => write_text(&mut out, s),
            Value::Array(items) => {
                head(&mut out, MAJOR_ARRAY, items.len() as u64);
                stack.extend(items.iter().rev().map(Work::Value));
            }
            Value::Object(map) => {
                head(&mut out, MAJOR_MAP, map.len() as u64);
                for (k, v) in map.iter().rev() {
                    stack.push(Work::Value(v));
                    stack.push(Work::Key(k));
                }
            }
        }
    }
    out
}

/// Integers stay integers; a float with no fractional part becomes an integer too, since JS
/// peers cannot tell `1.0` from `1`.
fn write_json_number(out: &mut Vec<u8>, n: &serde_json::Number) {
    if let Some(u) = n.as_u64() {
        head(out, MAJOR_UNSIGNED, u);
    } else if let Some(i) = n.as_i64() {
        write_int(out, i128::from(i));
    } else if let Some(f) = n.as_f64() {
        // `i64::MAX as f64` is exactly 2^63: below it an integral double converts exactly.
        if f.is_finite() && f.fract() == 0.0 && f.abs() < i64::MAX as f64 {
            write_int(out, f as i128);
        } else {
            write_f64(out, f);
        }
    } else {
        out.push(NULL);
    }
}

fn write_int(out: &mut Vec<u8>, n: i128) {
    // Item::Int holds only CBOR-range integers; saturating keeps this total regardless.
    if n >= 0 {
        head(out, MAJOR_UNSIGNED, u64::try_from(n).unwrap_or(u64::MAX));
    } else {
        head(
            out,
            MAJOR_NEGATIVE,
            u64::try_from(-1 - n).unwrap_or(u64::MAX),
        );
    }
}

fn write_f64(out: &mut Vec<u8>, f: f64) {
    out.push(FLOAT64);
    out.extend_from_slice(&f.to_be_bytes());
}

fn write_text(out: &mut Vec<u8>, s: &str) {
    head(out, MAJOR_TEXT, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn write_bytes(out: &mut Vec<u8>, b: &[u8]) {
    head(out, MAJOR_BYTES, b.len() as u64);
    out.extend_from_slice(b);
}

/// An initial byte plus its argument in the shortest form.
fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    if n < 24 {
        out.push(m | n as u8);
    } else if let Ok(n) = u8::try_from(n) {
        out.extend_from_slice(&[m | 24, n]);
    } else if let Ok(n) = u16::try_from(n) {
        out.push(m | 25);
        out.extend_from_slice(&n.to_be_bytes());
    } else if let Ok(n) = u32::try_from(n) {
        out.push(m | 26);
        out.extend_from_slice(&n.to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_use_the_shortest_form() {
        let cases: [(u64, &[u8]); 6] = [
            (0, &[0x00]),
            (23, &[0x17]),
            (24, &[0x18, 24]),
            (256, &[0x19, 1, 0]),
            (65_536, &[0x1a, 0, 1, 0, 0]),
            (1 << 32, &[0x1b, 0, 0, 0, 1, 0, 0, 0, 0]),
        ];
        for (n, want) in cases {
            let mut out = Vec::new();
            head(&mut out, MAJOR_UNSIGNED, n);
            assert_eq!(out, want, "{n}");
        }
    }

    #[test]
    fn half_floats() {
        for (bits, want) in [
            ([0x3c, 0x00], 1.0),
            ([0xc0, 0x00], -2.0),
            ([0x7b, 0xff], 65504.0),
            ([0x00, 0x01], 5.960_464_477_539_063e-8),
            ([0x7c, 0x00], f64::INFINITY),
        ] {
            let input = [0xf9, bits[0], bits[1]];
            assert_eq!(decode(&input), Ok(Item::Float(want)), "{bits:?}");
        }
        assert!(matches!(decode(&[0xf9, 0x7e, 0x00]), Ok(Item::Float(f)) if f.is_nan()));
        assert_eq!(decode(&[0xf9, 0x3c]), Err(TranslateError::CborTruncated));
    }

    #[test]
    fn indefinite_items_are_joined() {
        // (_ "ab" "c"), [_ 1, [2]], {_ "k": h'0102' }
        let input = [
            0x83, 0x7f, 0x62, b'a', b'b', 0x61, b'c', 0xff, 0x9f, 0x01, 0x81, 0x02, 0xff, 0xbf,
            0x61, b'k', 0x5f, 0x41, 0x01, 0x41, 0x02, 0xff, 0xff,
        ];
        assert_eq!(
            decode(&input),
            Ok(Item::Array(vec![
                Item::Text("abc".into()),
                Item::Array(vec![Item::Int(1), Item::Array(vec![Item::Int(2)])]),
                Item::Map(vec![(Item::Text("k".into()), Item::Bytes(vec![1, 2]))]),
            ]))
        );
    }
}
