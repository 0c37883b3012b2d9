//! One HTTP/1.1 exchange over the runtime's TCP stream, with reqwless doing the HTTP.
//!
//! reqwless speaks `embedded-io-async`; `embedded-io-adapters` makes the runtime's
//! `futures-io` stream look like one, so the same request code could run over an embassy-net
//! socket on a device. The body is read straight into the caller's buffer (reqwless copies only
//! the few body bytes that arrived with the head), which keeps a loopback fetch at the speed of
//! the hash rather than of the HTTP code.

use std::fmt;
use std::future::Future;

use embedded_io_adapters::futures_03::FromFutures;
use embedded_io_async::Read as _;
use reqwless::client::HttpConnection;
pub use reqwless::request::Method;
use reqwless::request::{Request, RequestBuilder as _};

use crate::Runtime;
use sentelite_core::blob::parse_content_range;

/// Bytes for the request line and headers we send.
const TX_BUF: usize = 2048;
/// Bytes for the response head (and whatever part of the body arrives with it).
const HEAD_BUF: usize = 8192;

/// A plain `http://` URL split for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTarget {
    /// Host name or IP literal.
    pub host: String,
    /// TCP port (80 when the URL does not say).
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
    /// The `Host` header value (`host:port`).
    authority: String,
}

impl HttpTarget {
    /// Parses `url`; only `http://` is accepted (HTTPS would need a TLS stream under reqwless).
    pub fn parse(url: &str) -> Result<Self, HttpError> {
        let parsed = url::Url::parse(url).map_err(|e| HttpError::Url(format!("{url}: {e}")))?;
        if parsed.scheme() != "http" {
            return Err(HttpError::Url(format!("{url}: only http:// is supported")));
        }
        let host = match parsed.host() {
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(h) => h.to_string(),
            None => return Err(HttpError::Url(format!("{url}: no host"))),
        };
        let port = parsed.port_or_known_default().unwrap_or(80);
        let mut path = parsed.path().to_string();
        if let Some(q) = parsed.query() {
            path.push('?');
            path.push_str(q);
        }
        let authority = match parsed.host() {
            Some(url::Host::Ipv6(ip)) => format!("[{ip}]:{port}"),
            _ => format!("{host}:{port}"),
        };
        Ok(Self {
            host,
            port,
            path,
            authority,
        })
    }

    /// `self` with `suffix` appended to the path (upload URLs: `<url>/<sha256>`).
    pub fn join(&self, suffix: &str) -> Self {
        let mut next = self.clone();
        if !next.path.ends_with('/') {
            next.path.push('/');
        }
        next.path.push_str(suffix);
        next
    }
}

/// Why an exchange failed before a complete response was read.
#[derive(Debug)]
pub enum HttpError {
    /// The URL cannot be used.
    Url(String),
    /// The TCP connection could not be opened.
    Connect(std::io::Error),
    /// The connection failed or closed mid-exchange, or the response was not HTTP.
    Transfer(String),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Url(e) => write!(f, "bad URL {e}"),
            Self::Connect(e) => write!(f, "connect: {e}"),
            Self::Transfer(e) => write!(f, "transfer: {e}"),
        }
    }
}

impl std::error::Error for HttpError {}

fn transfer(e: reqwless::Error) -> HttpError {
    HttpError::Transfer(format!("{e:?}"))
}

/// What the response head said, in the terms a range fetch or an upload cares about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Head {
    /// Status code.
    pub status: u16,
    /// `Content-Length`.
    pub content_length: Option<u64>,
    /// First byte of a `Content-Range: bytes a-b/n` (206) answer.
    pub range_start: Option<u64>,
    /// Total size: `n` of `Content-Range` (`bytes a-b/n` or `bytes */n`), else the length of a 200.
    pub total: Option<u64>,
    /// `ETag`, as sent.
    pub etag: Option<String>,
    /// End of a `Range: bytes=0-e` answer (a resumable upload's `308`/`409`): `e + 1` bytes held.
    pub held: Option<u64>,
}

/// Receives the response of one exchange. The body is read into buffers the receiver hands
/// out, so a receiver can pass a filled buffer on (to a hashing thread) instead of copying it.
pub trait BodySink {
    /// The head arrived. Return `false` to skip the body (the connection is then dropped).
    fn head(&mut self, head: &Head) -> bool;
    /// The buffer the next read fills (make it large: a read fills at most this much).
    /// `None` stops the exchange.
    fn buffer(&mut self) -> impl Future<Output = Option<&mut [u8]>> + Send;
    /// The buffer last handed out now holds `n` more body bytes, in order. Return `false` to
    /// stop the exchange.
    fn filled(&mut self, n: usize) -> bool;
}

/// How an exchange ended once the head had arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEnd {
    /// The whole body (as long as `Content-Length` said) was delivered.
    Complete,
    /// The sink declined the head or a chunk.
    Stopped,
}

/// One request: `method` `target` with `headers` and `body`, the response streamed into `sink`.
pub async fn exchange<R: Runtime>(
    runtime: &R,
    method: Method,
    target: &HttpTarget,
    headers: &[(&str, &str)],
    body: &[u8],
    sink: &mut impl BodySink,
) -> Result<BodyEnd, HttpError> {
    let stream = runtime
        .connect(target.host.clone(), target.port)
        .await
        .map_err(HttpError::Connect)?;
    let mut tx = [0u8; TX_BUF];
    let mut head_buf = vec![0u8; HEAD_BUF];
    let mut conn = HttpConnection::Plain(FromFutures::new(stream)).into_buffered(&mut tx);
    let builder = Request::new(method, &target.path)
        .host(&target.authority)
        .headers(headers);
    let response = if body.is_empty() && method == Method::GET {
        conn.send(builder.build(), &mut head_buf).await
    } else {
        conn.send(builder.body(body).build(), &mut head_buf).await
    }
    .map_err(transfer)?;
    let head = parse_head(&response);
    if !sink.head(&head) {
        return Ok(BodyEnd::Stopped);
    }
    let mut reader = response.body().reader();
    let mut delivered = 0u64;
    loop {
        let Some(buf) = sink.buffer().await else {
            return Ok(BodyEnd::Stopped);
        };
        let n = reader.read(buf).await.map_err(transfer)?;
        if n == 0 {
            break;
        }
        delivered += n as u64;
        if !sink.filled(n) {
            return Ok(BodyEnd::Stopped);
        }
    }
    match head.content_length {
        Some(len) if delivered < len => Err(HttpError::Transfer(format!(
            "connection closed after {delivered} of {len} body bytes"
        ))),
        _ => Ok(BodyEnd::Complete),
    }
}

fn parse_head<C: embedded_io_async::Read>(
    response: &reqwless::response::Response<'_, '_, C>,
) -> Head {
    let mut head = Head {
        status: response.status.0,
        content_length: response.content_length.map(|n| n as u64),
        ..Head::default()
    };
    for (name, value) in response.headers() {
        let Ok(value) = std::str::from_utf8(value) else {
            continue;
        };
        if name.eq_ignore_ascii_case("content-range") {
            let (start, total) = parse_content_range(value);
            head.range_start = start;
            head.total = total;
        } else if name.eq_ignore_ascii_case("etag") {
            head.etag = Some(value.trim().to_string());
        } else if name.eq_ignore_ascii_case("range") {
            head.held = parse_held(value);
        }
    }
    if head.status == 200 {
        head.total = head.total.or(head.content_length);
    }
    head
}

/// `bytes=0-e` → `e + 1` (how much a resumable-upload server holds).
fn parse_held(value: &str) -> Option<u64> {
    let (start, end) = value.trim().strip_prefix("bytes=")?.split_once('-')?;
    if start.trim() != "0" {
        return None;
    }
    end.trim().parse::<u64>().ok()?.checked_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_forms() {
        assert_eq!(parse_content_range("bytes 5-9/10"), (Some(5), Some(10)));
        assert_eq!(parse_content_range("bytes */10"), (None, Some(10)));
        assert_eq!(parse_content_range("bytes 0-3/*"), (Some(0), None));
        assert_eq!(parse_content_range("items 0-3/4"), (None, None));
    }

    #[test]
    fn held_range() {
        assert_eq!(parse_held("bytes=0-99"), Some(100));
        assert_eq!(parse_held("bytes=5-99"), None);
        assert_eq!(parse_held("garbage"), None);
    }

    #[test]
    fn targets() {
        let t = HttpTarget::parse("http://127.0.0.1:8080/blobs/ab?x=1").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("127.0.0.1", 8080, "/blobs/ab?x=1")
        );
        assert_eq!(t.authority, "127.0.0.1:8080");
        assert_eq!(
            HttpTarget::parse("http://h/blobs").unwrap().join("cd").path,
            "/blobs/cd"
        );
        assert!(matches!(
            HttpTarget::parse("https://h/x"),
            Err(HttpError::Url(_))
        ));
    }
}
