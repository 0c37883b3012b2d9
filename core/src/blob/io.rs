//! The vocabulary between the fetch machine and whoever does the HTTP: what to request,
//! what came back, what went wrong, and how the transfer ended.

use super::sink::SinkError;
use crate::time::{Duration, Instant};
use core::fmt;

/// One HTTP `GET` to make: `Range: bytes=start-[end_inclusive]`, plus `If-Range` when a
/// resumed request must only be honoured if the resource is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeRequest<'a> {
    /// Index of the source in the plan (0 is the directive's `url`).
    pub source: usize,
    /// The URL to request.
    pub url: &'a str,
    /// First byte wanted.
    pub start: u64,
    /// Last byte wanted; `None` means to the end of the blob.
    pub end_inclusive: Option<u64>,
    /// ETag for `If-Range`, when resuming from a source that sent one.
    pub if_range: Option<&'a str>,
}

/// What the caller should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action<'a> {
    /// Start this request; it replaces (drop) any request still in flight.
    Request(RangeRequest<'a>),
    /// Nothing to start: feed the response in flight, if any, or poll again at this instant.
    Wait(Instant),
    /// The transfer is over; it stays over.
    Finished(&'a End),
}

/// The parts of an HTTP response head the machine needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHead<'a> {
    /// The status code.
    pub status: u16,
    /// First byte of `Content-Range` (206 only).
    pub range_start: Option<u64>,
    /// The complete length: `Content-Range`'s total for a 206, `Content-Length` for a 200.
    pub total: Option<u64>,
    /// The `ETag` header, as sent (quotes included).
    pub etag: Option<&'a str>,
}

/// A transport failure reported by the caller. All are transient: retried with backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TransportError {
    /// Could not connect (refused, unreachable, name not resolved).
    Connect,
    /// The connection closed or broke before the response was complete.
    Cut,
    /// The caller's own timeout fired.
    Timeout,
    /// The response was not valid HTTP.
    Protocol,
}

/// Why the machine did not take a response or a body chunk. Every error means: stop reading
/// this response and ask [`Fetch::poll_action`](super::Fetch::poll_action) what is next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FetchError {
    /// Nothing of the kind was expected now (no request in flight, no body awaited).
    Unexpected,
    /// The response status is not one that carries the blob.
    Status(u16),
    /// `Content-Range` does not start where the request asked.
    BadRange,
    /// The server announced a different blob size.
    SizeChanged,
    /// The ETag changed: the transfer restarts from offset 0.
    ContentChanged,
    /// The body went past the range asked for; the excess was ignored.
    Overrun,
    /// The transfer has ended (deadline, sink failure).
    Finished,
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Unexpected => f.write_str("unexpected response or body"),
            FetchError::Status(s) => write!(f, "http status {s}"),
            FetchError::BadRange => f.write_str("content-range does not match the request"),
            FetchError::SizeChanged => f.write_str("server reports a different blob size"),
            FetchError::ContentChanged => f.write_str("etag changed, restarting"),
            FetchError::Overrun => f.write_str("more bytes than requested"),
            FetchError::Finished => f.write_str("transfer already ended"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for FetchError {}

/// Progress to report: `loaded` of `total` bytes are received and written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Progress {
    /// Bytes of the blob held so far (from offset 0).
    pub loaded: u64,
    /// The blob's size.
    pub total: u64,
    /// `loaded * 100 / total`, 100 for an empty blob.
    pub percent: u8,
}

/// How a transfer ended. Exactly one of these, once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum End {
    /// The blob is committed in the sink; its SHA-256 was checked (unless `verify` was off).
    Completed {
        /// The blob's size.
        bytes: u64,
        /// Body bytes taken from the network for it (0 for a deduplicated blob).
        downloaded: u64,
        /// The hash it was committed under.
        sha256: [u8; 32],
    },
    /// The transfer gave up; the sink was aborted and holds nothing.
    Failed {
        /// Why.
        reason: FailReason,
    },
    /// Every source failed transiently; try again after this long. The sink was left as it
    /// is so that [`Fetch::state`](super::Fetch::state) can resume it later (or the caller
    /// aborts it).
    Rescheduled {
        /// Suggested delay before a new attempt.
        after: Duration,
    },
}

/// Why a transfer failed for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FailReason {
    /// The deadline passed.
    Deadline,
    /// The caller cancelled it.
    Cancelled,
    /// Every source answered with a permanent HTTP status (the last one seen).
    Status(u16),
    /// The bytes never matched the announced SHA-256.
    Corrupt,
    /// The sources report a size other than the announced one.
    SizeMismatch,
    /// The sources answer with ranges other than those asked for.
    BadResponse,
    /// The sink refused or failed.
    Sink(SinkError),
}

impl fmt::Display for FailReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailReason::Deadline => f.write_str("deadline passed"),
            FailReason::Cancelled => f.write_str("cancelled"),
            FailReason::Status(s) => write!(f, "http status {s}"),
            FailReason::Corrupt => f.write_str("sha256 mismatch on every source"),
            FailReason::SizeMismatch => f.write_str("size differs from the announced size"),
            FailReason::BadResponse => f.write_str("content-range differs from the request"),
            FailReason::Sink(e) => write!(f, "{e}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for FailReason {}

/// Reads a `Content-Range` value: `bytes a-b/n` gives (`a`, `n`), `bytes */n` gives
/// (`None`, `n`); `n` may be `*` (unknown). Anything else gives (`None`, `None`). Every
/// adapter that makes the machine's range requests reads its answers with this (the
/// device's head reader, [`super::http`], through the same byte form).
pub fn parse_content_range(value: &str) -> (Option<u64>, Option<u64>) {
    super::http::content_range(value.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::parse_content_range;

    #[test]
    fn content_ranges_give_start_and_total() {
        assert_eq!(
            parse_content_range("bytes 10-19/100"),
            (Some(10), Some(100))
        );
        assert_eq!(parse_content_range(" bytes */100 "), (None, Some(100)));
        assert_eq!(parse_content_range("bytes 0-9/*"), (Some(0), None));
        assert_eq!(parse_content_range("items 0-9/10"), (None, None));
    }
}
