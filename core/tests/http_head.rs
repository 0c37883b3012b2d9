//! The device's HTTP response-head reader (`blob::http`) against `httparse`, the parser the
//! device used before through reqwless and the one hyper uses on the host.
//!
//! - Heads built from the grammar (any status, reason, header order and name case, CRLF or
//!   bare LF, spaces and tabs around values, repeated lengths, a transfer coding): both
//!   accept the same heads, end them at the same byte and read the same fields.
//! - Any bytes, and built heads with bytes changed, cut or inserted: the reader never
//!   panics, and whatever it accepts `httparse` accepts too, with the same fields.
//! - Status lines of any version, code length and reason: taken and refused alike.
//! - Every cut of a complete head asks for more (`Incomplete`) or is refused, never read
//!   as a shorter head.

use proptest::prelude::*;
use sentelite_core::blob::ETAG_MAX;
use sentelite_core::blob::http::{BodyLength, HeadError, HttpResponse, parse_response};
use sentelite_core::blob::parse_content_range;

/// What `httparse` makes of `bytes`, mapped to the reader's result the way the device used
/// reqwless' response: the status, `Content-Range` and `ETag` (trimmed; an ETag as UTF-8
/// within the machine's limit), `Content-Length` for the body and a 200's total, a transfer coding
/// refused. `None` when `httparse` refuses the head or needs more.
fn reference(bytes: &[u8]) -> Option<Result<HttpResponse<'_>, HeadError>> {
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut slots);
    let httparse::Status::Complete(head_len) = response.parse(bytes).ok()? else {
        return None;
    };
    let mut head = sentelite_core::blob::ResponseHead {
        status: response.code?,
        range_start: None,
        total: None,
        etag: None,
    };
    let mut content_length: Option<u64> = None;
    let mut coded = false;
    for header in response.headers.iter() {
        let value = header.value.trim_ascii();
        let name = header.name;
        if name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(value)
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse().ok());
            let Some(n) = n else {
                return Some(Err(HeadError::Malformed));
            };
            if content_length.is_some_and(|m| m != n) {
                return Some(Err(HeadError::Malformed));
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            coded = true;
        } else if name.eq_ignore_ascii_case("content-range") {
            // Bytes beyond ASCII cannot be part of a range's numbers: as text, they stand
            // for what they are.
            (head.range_start, head.total) = parse_content_range(&String::from_utf8_lossy(value));
        } else if name.eq_ignore_ascii_case("etag") {
            head.etag = std::str::from_utf8(value)
                .ok()
                .filter(|value| value.len() <= ETAG_MAX);
        }
    }
    if coded {
        return Some(Err(HeadError::TransferCoding));
    }
    if head.status == 200 {
        head.total = head.total.or(content_length);
    }
    Some(Ok(HttpResponse {
        head,
        body: content_length.map_or(BodyLength::UntilClose, BodyLength::Bytes),
        head_len,
    }))
}

/// Text a reason phrase or field value may hold: visible ASCII, spaces, tabs, obs-text.
fn value_text() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            8 => 0x21u8..0x7f,
            1 => Just(b' '),
            1 => Just(b'\t'),
            1 => 0x80u8..=0xff,
        ],
        0..24,
    )
}

/// A header name in random case: one the reader looks for, or any other token.
fn header_name() -> impl Strategy<Value = String> {
    let known = prop::sample::select(vec!["content-length", "content-range", "etag", "x-ok"]);
    let other = "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}";
    (
        prop_oneof![3 => known.prop_map(str::to_owned), 1 => other],
        any::<u64>(),
    )
        .prop_map(|(name, case)| {
            name.chars()
                .enumerate()
                .map(|(i, c)| {
                    if case >> (i % 64) & 1 == 1 {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect()
        })
}

/// A value fitting the name: lengths and ranges mostly well formed, sometimes not.
fn header_value(name: &str) -> BoxedStrategy<Vec<u8>> {
    let number = prop_oneof![0u64..100_000, any::<u64>()];
    match name.to_ascii_lowercase().as_str() {
        "content-length" => prop_oneof![
            4 => number.prop_map(|n| n.to_string().into_bytes()),
            1 => value_text(),
        ]
        .boxed(),
        "content-range" => prop_oneof![
            3 => (0u64..1 << 40, 0u64..1 << 20, 0u64..1 << 41)
                .prop_map(|(a, n, t)| format!("bytes {a}-{}/{t}", a + n).into_bytes()),
            1 => (0u64..1 << 40).prop_map(|t| format!("bytes */{t}").into_bytes()),
            1 => value_text(),
        ]
        .boxed(),
        "etag" => prop_oneof![
            3 => "\"[a-z0-9-]{0,40}\"".prop_map(String::into_bytes),
            1 => "\"[a-z]{60,80}\"".prop_map(String::into_bytes),
        ]
        .boxed(),
        _ => value_text().boxed(),
    }
}

fn header() -> impl Strategy<Value = (String, Vec<u8>)> {
    header_name().prop_flat_map(|name| {
        let value = header_value(&name);
        (Just(name), value)
    })
}

/// A response head as a server could send it, with a body after it.
fn built_head() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::bool::ANY,
        100u16..1000,
        prop::option::of(value_text()),
        prop::collection::vec((header(), "[ \t]{0,2}", "[ \t]{0,2}"), 0..10),
        prop::bool::weighted(0.1),
        prop::bool::ANY,
        prop::collection::vec(any::<u8>(), 0..16),
    )
        .prop_map(|(minor, code, reason, headers, coded, bare_lf, body)| {
            let eol: &[u8] = if bare_lf { b"\n" } else { b"\r\n" };
            let mut out = format!("HTTP/1.{} {code}", u8::from(minor)).into_bytes();
            if let Some(reason) = reason {
                out.push(b' ');
                out.extend_from_slice(&reason);
            }
            out.extend_from_slice(eol);
            for ((name, value), before, after) in headers {
                out.extend_from_slice(name.as_bytes());
                out.push(b':');
                out.extend_from_slice(before.as_bytes());
                out.extend_from_slice(&value);
                out.extend_from_slice(after.as_bytes());
                out.extend_from_slice(eol);
            }
            if coded {
                out.extend_from_slice(b"Transfer-Encoding: chunked");
                out.extend_from_slice(eol);
            }
            out.extend_from_slice(eol);
            out.extend_from_slice(&body);
            out
        })
}

/// A built head with a few bytes changed, inserted or removed.
fn damaged_head() -> impl Strategy<Value = Vec<u8>> {
    (
        built_head(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..4),
    )
        .prop_map(|(mut bytes, edits)| {
            for (at, byte, how) in edits {
                if bytes.is_empty() {
                    break;
                }
                let i = at.index(bytes.len());
                match how {
                    0 => bytes[i] = byte,
                    1 => bytes.insert(i, byte),
                    _ => {
                        bytes.remove(i);
                    }
                }
            }
            bytes
        })
}

/// What the reader accepted, `httparse` accepts the same way.
fn accepted_alike(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(ours) = parse_response(bytes) {
        let theirs = reference(bytes);
        prop_assert_eq!(
            theirs,
            Some(Ok(ours)),
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn built_heads_read_as_httparse_reads_them(bytes in built_head()) {
        let theirs = reference(&bytes);
        prop_assert!(theirs.is_some(), "httparse refused {:?}", String::from_utf8_lossy(&bytes));
        prop_assert_eq!(Some(parse_response(&bytes)), theirs);
    }

    #[test]
    fn damaged_heads_are_never_read_differently(bytes in damaged_head()) {
        accepted_alike(&bytes)?;
    }

    #[test]
    fn any_bytes_are_never_read_differently(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        accepted_alike(&bytes)?;
        let mut with_status = b"HTTP/1.1 206 OK\r\n".to_vec();
        with_status.extend_from_slice(&bytes);
        accepted_alike(&with_status)?;
    }

    #[test]
    fn status_lines_are_taken_and_refused_as_httparse_does(
        line in r"HTTP/(1\.[0-9]|[0-9]\.[0-9]|[0-9.]{1,4}) [0-9]{2,4}( [ -~\t]{0,8})?",
    ) {
        let bytes = format!("{line}\r\n\r\n").into_bytes();
        let ours = parse_response(&bytes).ok();
        let theirs = reference(&bytes).and_then(Result::ok);
        prop_assert_eq!(ours, theirs, "{:?}", line);
    }

    #[test]
    fn a_cut_head_is_never_a_shorter_head(bytes in built_head()) {
        let Ok(whole) = parse_response(&bytes) else {
            return Ok(());
        };
        for cut in 0..whole.head_len {
            prop_assert!(
                matches!(parse_response(&bytes[..cut]), Err(HeadError::Incomplete)),
                "cut at {cut} of {:?}", String::from_utf8_lossy(&bytes)
            );
        }
    }
}
