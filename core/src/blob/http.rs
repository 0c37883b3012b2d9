//! The HTTP/1.1 response to one of the machine's range requests, read without a general
//! parser: the status line, the four headers the machine and the body's framing need
//! (`Content-Range`, `ETag`, `Content-Length`, `Transfer-Encoding`), and where the body ends.
//!
//! A device makes one request per connection and keeps nothing of the head but these
//! fields, so a parser with header slots and lookup tables would be flash it never uses
//! (`httparse` behind `reqwless` cost the Pico W image several KB). The rules are those of
//! RFC 9112 for a response: lines end in CRLF (a bare LF is taken too), a header name is a
//! token followed directly by `:`, a value has no control bytes but tab, no line folding.
//! A body is `Content-Length` long or, without one, runs to the connection's close; a
//! response with a `Transfer-Encoding` (chunked) is refused, since a blob server sends
//! fixed-length files and a device without a chunked decoder must not write chunk framing
//! into a partition. Anything accepted here `httparse` accepts too, with the same fields (a
//! property test holds them together).

use super::io::ResponseHead;
use super::state::ETAG_MAX;

/// Where the body of a response ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BodyLength {
    /// After this many bytes (`Content-Length`).
    Bytes(u64),
    /// When the server closes the connection (no `Content-Length`).
    UntilClose,
}

/// A response head as the machine and the body reader need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpResponse<'a> {
    /// What goes to [`Fetch::on_response`](super::Fetch::on_response).
    pub head: ResponseHead<'a>,
    /// Where the body ends.
    pub body: BodyLength,
    /// The head's length in bytes, blank line included; the body starts there.
    pub head_len: usize,
}

/// Why a response head was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum HeadError {
    /// The blank line that ends the head has not arrived yet: read more.
    Incomplete,
    /// Not an HTTP/1.x response head (bad status line, header line or `Content-Length`).
    Malformed,
    /// The body has a transfer coding (chunked), which this reader does not decode.
    TransferCoding,
}

/// Reads the response head at the start of `buf` (bytes after it are the body's).
pub fn parse_response(buf: &[u8]) -> Result<HttpResponse<'_>, HeadError> {
    let mut lines = Lines { buf, at: 0 };
    let status = status_line(lines.next().ok_or(HeadError::Incomplete)?)?;
    let mut head = ResponseHead {
        status,
        range_start: None,
        total: None,
        etag: None,
    };
    let mut content_length = None;
    let mut coded = false;
    loop {
        let line = lines.next().ok_or(HeadError::Incomplete)?;
        if line.is_empty() {
            break;
        }
        let (name, value) = header_line(line)?;
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = decimal(value).ok_or(HeadError::Malformed)?;
            // Two lengths that differ leave the body's end unknown (RFC 9112, 6.3).
            if content_length.is_some_and(|m| m != n) {
                return Err(HeadError::Malformed);
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            coded = true;
        } else if name.eq_ignore_ascii_case(b"content-range") {
            (head.range_start, head.total) = content_range(value);
        } else if name.eq_ignore_ascii_case(b"etag") {
            // The machine's limit; a longer ETag is not one it can resume with. Not UTF-8:
            // not one to send back in `If-Range` either.
            head.etag = core::str::from_utf8(value)
                .ok()
                .filter(|etag| etag.len() <= ETAG_MAX);
        }
    }
    if coded {
        return Err(HeadError::TransferCoding);
    }
    if head.status == 200 {
        head.total = head.total.or(content_length);
    }
    Ok(HttpResponse {
        head,
        body: content_length.map_or(BodyLength::UntilClose, BodyLength::Bytes),
        head_len: lines.at,
    })
}

/// The lines of a head, each without its line end; `None` at a line not yet ended.
struct Lines<'b> {
    buf: &'b [u8],
    at: usize,
}

impl<'b> Lines<'b> {
    fn next(&mut self) -> Option<&'b [u8]> {
        let rest = self.buf.get(self.at..)?;
        let end = rest.iter().position(|&b| b == b'\n')?;
        self.at += end + 1;
        let line = rest.get(..end)?;
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    }
}

/// `HTTP/1.0` or `HTTP/1.1`, a three-digit code and an optional reason: the code.
fn status_line(line: &[u8]) -> Result<u16, HeadError> {
    let Some((b"HTTP/1.", rest)) = line.split_at_checked(7) else {
        return Err(HeadError::Malformed);
    };
    let [minor, b' ', a, b, c, rest @ ..] = rest else {
        return Err(HeadError::Malformed);
    };
    let digits = [*a, *b, *c];
    let reason_ok = match rest {
        [] => true,
        [b' ', reason @ ..] => reason.iter().all(|&b| is_value_byte(b)),
        _ => false,
    };
    if !reason_ok || !matches!(minor, b'0' | b'1') || !digits.iter().all(u8::is_ascii_digit) {
        return Err(HeadError::Malformed);
    }
    Ok(digits
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0')))
}

/// `name: value`: the name and the value without the spaces and tabs around it.
fn header_line(line: &[u8]) -> Result<(&[u8], &[u8]), HeadError> {
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(HeadError::Malformed)?;
    let (name, value) = line.split_at(colon);
    let value = value.get(1..).unwrap_or_default();
    if name.is_empty() || !name.iter().all(|&b| is_token_byte(b)) {
        return Err(HeadError::Malformed);
    }
    if !value.iter().all(|&b| is_value_byte(b)) {
        return Err(HeadError::Malformed);
    }
    Ok((name, value.trim_ascii()))
}

/// A `Content-Range` value: `bytes a-b/n` gives (`a`, `n`), `bytes */n` gives (`None`, `n`);
/// `n` may be `*` (unknown). Anything else gives (`None`, `None`). Spaces and tabs around
/// the numbers are allowed.
pub fn content_range(value: &[u8]) -> (Option<u64>, Option<u64>) {
    let Some(rest) = value.trim_ascii().strip_prefix(b"bytes ") else {
        return (None, None);
    };
    let slash = rest.iter().position(|&b| b == b'/');
    let (range, total) = match slash {
        Some(at) => (rest.get(..at).unwrap_or_default(), rest.get(at + 1..)),
        None => (rest, None),
    };
    let total = total.and_then(|t| decimal(t.trim_ascii()));
    let start = range
        .iter()
        .position(|&b| b == b'-')
        .and_then(|at| decimal(range.get(..at)?.trim_ascii()));
    (start, total)
}

/// A decimal number (`Content-Length`, a range's bounds): digits only, within `u64`.
fn decimal(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    value.iter().try_fold(0u64, |n, &b| {
        let digit = b.checked_sub(b'0').filter(|d| *d < 10)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// RFC 9110's `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A byte a field value or reason phrase may hold: visible, space, tab, or obs-text.
fn is_value_byte(b: u8) -> bool {
    b == b'\t' || (b >= b' ' && b != 0x7f)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    fn parsed(head: &str) -> Result<HttpResponse<'_>, HeadError> {
        parse_response(head.as_bytes())
    }

    #[test]
    fn a_partial_content_answer_gives_range_total_etag_and_length() {
        let text = "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 10-19/100\r\n\
                    ETag: \"v1\"\r\ncontent-length: 10\r\n\r\nBODY";
        let response = parsed(text).unwrap();
        assert_eq!(response.head.status, 206);
        assert_eq!(response.head.range_start, Some(10));
        assert_eq!(response.head.total, Some(100));
        assert_eq!(response.head.etag, Some("\"v1\""));
        assert_eq!(response.body, BodyLength::Bytes(10));
        assert_eq!(&text[response.head_len..], "BODY");
    }

    #[test]
    fn a_whole_answer_takes_its_total_from_the_length_and_may_run_to_the_close() {
        let response = parsed("HTTP/1.0 200 OK\nContent-Length: 42\n\n").unwrap();
        assert_eq!(response.head.total, Some(42));
        let response = parsed("HTTP/1.1 200\r\nServer: x\r\n\r\n").unwrap();
        assert_eq!(response.head.total, None);
        assert_eq!(response.body, BodyLength::UntilClose);
        // Only a 200's length is the blob's size.
        let response = parsed("HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\n").unwrap();
        assert_eq!((response.head.status, response.head.total), (404, None));
    }

    #[test]
    fn an_unfinished_head_asks_for_more() {
        for cut in [
            "",
            "HTTP/1.1 206",
            "HTTP/1.1 206 OK\r\n",
            "HTTP/1.1 206 OK\r\nA: b\r\n\r",
        ] {
            assert_eq!(parsed(cut), Err(HeadError::Incomplete), "{cut:?}");
        }
    }

    #[test]
    fn bad_heads_and_codings_are_refused() {
        for bad in [
            "HTTP/2 200 OK\r\n\r\n",
            "HTTP/1.2 200 OK\r\n\r\n",
            "HTTP/1.1 20 OK\r\n\r\n",
            "HTTP/1.1 2000 OK\r\n\r\n",
            "http/1.1 200 OK\r\n\r\n",
            "HTTP/1.1 200 OK\r\nNo colon\r\n\r\n",
            "HTTP/1.1 200 OK\r\nBad name: x\r\n\r\n",
            "HTTP/1.1 200 OK\r\n: x\r\n\r\n",
            "HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "HTTP/1.1 200 OK\r\nA: b\x01c\r\n\r\n",
        ] {
            assert_eq!(parsed(bad), Err(HeadError::Malformed), "{bad:?}");
        }
        let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(parsed(chunked), Err(HeadError::TransferCoding));
        // The same length twice is one length.
        let twice = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n";
        assert_eq!(parsed(twice).unwrap().body, BodyLength::Bytes(5));
    }

    #[test]
    fn content_ranges_give_start_and_total() {
        let read = |text: &str| content_range(text.as_bytes());
        assert_eq!(read("bytes 10-19/100"), (Some(10), Some(100)));
        assert_eq!(read(" bytes */100 "), (None, Some(100)));
        assert_eq!(read("bytes 0-9/*"), (Some(0), None));
        assert_eq!(read("bytes 0-9"), (Some(0), None));
        assert_eq!(read("bytes\t0-9/10"), (None, None));
        assert_eq!(read("bytes  7 - 9 / 10"), (Some(7), Some(10)));
        assert_eq!(read("bytes +7-9/10"), (None, Some(10)));
        assert_eq!(read("items 0-9/10"), (None, None));
        assert_eq!(read("bytes 18446744073709551616-1/2"), (None, Some(2)));
    }

    #[test]
    fn a_long_etag_is_not_kept() {
        let long = "x".repeat(ETAG_MAX + 1);
        let text = std::format!("HTTP/1.1 206 OK\r\nETag: {long}\r\n\r\n");
        assert_eq!(parsed(&text).unwrap().head.etag, None);
    }
}
