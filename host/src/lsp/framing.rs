//! The language server's stdio framing: `Content-Length: N\r\n`, optional other headers, a
//! blank line, then N bytes of UTF-8 JSON.
//!
//! [`decode`] is sans-IO: it looks at the bytes read so far and says how long the next
//! message's header and body are, that more bytes are needed, or what is wrong. Header and
//! body sizes are bounded by [`Limits`], so a server that writes garbage (or a fuzzer) can
//! never make the reader buffer without limit. [`MessageReader`] and [`encode`] are the IO
//! around it.

use tokio::io::{AsyncRead, AsyncReadExt};

/// The longest header block accepted (all header lines and the blank line).
pub const MAX_HEADER_BYTES: usize = 1024;

/// Bounds on what [`decode`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest header block, terminator included.
    pub max_header_bytes: usize,
    /// Largest body.
    pub max_body_bytes: usize,
}

/// Why a byte stream is not LSP framing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FramingError {
    /// No blank line within the header limit.
    #[error("header block longer than {max} bytes")]
    HeaderTooLong {
        /// The limit.
        max: usize,
    },
    /// A header line without `name: value`, or not ASCII.
    #[error("malformed header line")]
    MalformedHeader,
    /// The header block has no `Content-Length`.
    #[error("no Content-Length header")]
    MissingContentLength,
    /// `Content-Length` given twice.
    #[error("Content-Length given twice")]
    DuplicateContentLength,
    /// `Content-Length` is not a decimal number.
    #[error("Content-Length is not a number")]
    InvalidContentLength,
    /// The body is larger than the limit.
    #[error("body of {len} bytes exceeds the limit of {max}")]
    BodyTooLarge {
        /// The announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The stream ended inside a message.
    #[error("stream ended inside a message")]
    Truncated,
    /// Reading the stream failed.
    #[error("read failed: {0}")]
    Io(String),
}

/// What [`decode`] found at the start of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded {
    /// Not enough bytes yet for a whole message.
    NeedMore,
    /// A whole message: the body is `buf[header_len..header_len + body_len]`.
    Message {
        /// Bytes of the header block, blank line included.
        header_len: usize,
        /// Bytes of the body.
        body_len: usize,
    },
}

/// Looks for one message at the start of `buf`.
pub fn decode(buf: &[u8], limits: Limits) -> Result<Decoded, FramingError> {
    let window = &buf[..buf.len().min(limits.max_header_bytes)];
    let Some(end) = window.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() >= limits.max_header_bytes {
            return Err(FramingError::HeaderTooLong {
                max: limits.max_header_bytes,
            });
        }
        return Ok(Decoded::NeedMore);
    };
    let header_len = end + 4;
    let body_len = content_length(&buf[..end])?;
    if body_len > limits.max_body_bytes {
        return Err(FramingError::BodyTooLarge {
            len: body_len,
            max: limits.max_body_bytes,
        });
    }
    if buf.len() - header_len < body_len {
        return Ok(Decoded::NeedMore);
    }
    Ok(Decoded::Message {
        header_len,
        body_len,
    })
}

/// The `Content-Length` of a header block (without its final blank line). Other headers
/// (`Content-Type`) are accepted and ignored; names are case-insensitive.
fn content_length(block: &[u8]) -> Result<usize, FramingError> {
    let text = std::str::from_utf8(block).map_err(|_| FramingError::MalformedHeader)?;
    let mut length = None;
    for line in text.split("\r\n") {
        let (name, value) = line.split_once(':').ok_or(FramingError::MalformedHeader)?;
        if !name.is_ascii() || name.trim() != name || name.is_empty() {
            return Err(FramingError::MalformedHeader);
        }
        if name.eq_ignore_ascii_case("content-length") {
            if length.is_some() {
                return Err(FramingError::DuplicateContentLength);
            }
            let digits = value.trim();
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(FramingError::InvalidContentLength);
            }
            length = Some(
                digits
                    .parse::<usize>()
                    .map_err(|_| FramingError::InvalidContentLength)?,
            );
        }
    }
    length.ok_or(FramingError::MissingContentLength)
}

/// One message with its header, ready to write to the server's stdin.
pub fn encode(body: &[u8]) -> Vec<u8> {
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

/// Reads whole message bodies from a byte stream (the server's stdout).
#[derive(Debug)]
pub struct MessageReader<R> {
    inner: R,
    buf: Vec<u8>,
    limits: Limits,
}

/// Bytes asked of the stream per read.
const READ_CHUNK: usize = 16 * 1024;

impl<R: AsyncRead + Unpin> MessageReader<R> {
    /// Reads from `inner` within `limits`.
    pub fn new(inner: R, limits: Limits) -> Self {
        Self {
            inner,
            buf: Vec::new(),
            limits,
        }
    }

    /// The next body; `None` when the stream ends between messages.
    pub async fn next(&mut self) -> Result<Option<Vec<u8>>, FramingError> {
        loop {
            if let Decoded::Message {
                header_len,
                body_len,
            } = decode(&self.buf, self.limits)?
            {
                let body = self.buf[header_len..header_len + body_len].to_vec();
                self.buf.drain(..header_len + body_len);
                return Ok(Some(body));
            }
            let start = self.buf.len();
            self.buf.resize(start + READ_CHUNK, 0);
            let n = self
                .inner
                .read(&mut self.buf[start..])
                .await
                .map_err(|e| FramingError::Io(e.to_string()));
            self.buf.truncate(start + *n.as_ref().unwrap_or(&0));
            match n? {
                0 if self.buf.is_empty() => return Ok(None),
                0 => return Err(FramingError::Truncated),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_header_bytes: 64,
        max_body_bytes: 16,
    };

    #[test]
    fn whole_and_partial_messages() {
        let msg = b"Content-Length: 2\r\n\r\n{}rest";
        assert_eq!(
            decode(msg, LIMITS),
            Ok(Decoded::Message {
                header_len: 21,
                body_len: 2
            })
        );
        assert_eq!(decode(&msg[..22], LIMITS), Ok(Decoded::NeedMore));
        assert_eq!(decode(b"Content-Len", LIMITS), Ok(Decoded::NeedMore));
        let typed = b"content-length: 2\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n{}";
        let limits = Limits {
            max_header_bytes: 128,
            ..LIMITS
        };
        assert!(matches!(
            decode(typed, limits),
            Ok(Decoded::Message { body_len: 2, .. })
        ));
    }

    #[test]
    fn bad_headers_are_typed_errors() {
        let cases: [(&[u8], FramingError); 6] = [
            (
                b"Content-Length: x\r\n\r\n",
                FramingError::InvalidContentLength,
            ),
            (
                b"Content-Length: -1\r\n\r\n",
                FramingError::InvalidContentLength,
            ),
            (
                b"Content-Length: 99999999999999999999999\r\n\r\n",
                FramingError::InvalidContentLength,
            ),
            (
                b"Content-Type: a\r\n\r\n",
                FramingError::MissingContentLength,
            ),
            (
                b"Content-Length: 1\r\nContent-Length: 1\r\n\r\n",
                FramingError::DuplicateContentLength,
            ),
            (b"garbage\r\n\r\n", FramingError::MalformedHeader),
        ];
        for (input, error) in cases {
            assert_eq!(decode(input, LIMITS), Err(error), "{input:?}");
        }
        assert_eq!(
            decode(b"Content-Length: 17\r\n\r\n", LIMITS),
            Err(FramingError::BodyTooLarge { len: 17, max: 16 })
        );
        assert_eq!(
            decode(&[b'a'; 64], LIMITS),
            Err(FramingError::HeaderTooLong { max: 64 })
        );
    }

    #[tokio::test]
    async fn the_reader_splits_a_stream_and_reports_truncation() {
        let stream: &[u8] =
            b"Content-Length: 2\r\n\r\n{}Content-Length: 3\r\n\r\n[1]Content-Length: 5\r\n\r\n{";
        let mut reader = MessageReader::new(stream, LIMITS);
        assert_eq!(reader.next().await, Ok(Some(b"{}".to_vec())));
        assert_eq!(reader.next().await, Ok(Some(b"[1]".to_vec())));
        assert_eq!(reader.next().await, Err(FramingError::Truncated));
        let mut empty = MessageReader::new(&b""[..], LIMITS);
        assert_eq!(empty.next().await, Ok(None));
    }

    #[test]
    fn encode_round_trips() {
        let framed = encode(br#"{"a":1}"#);
        assert_eq!(
            decode(&framed, LIMITS),
            Ok(Decoded::Message {
                header_len: framed.len() - 7,
                body_len: 7
            })
        );
    }
}
