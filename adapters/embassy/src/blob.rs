//! Blob directives on the device: a `blob/fetch-and-*` request from the server is decoded,
//! the core's [`Fetch`] machine decides every range, retry and end, and this module makes
//! the HTTP Range requests it asks for, feeding the answers back. Progress
//! goes to the server as reply parts, the end as the request's End with the core's report
//! maps; the same wire as the host driver's.

use core::fmt::Write as _;

use embassy_futures::select::{Either, select};
use embassy_net::Stack;
use embassy_net::dns::DnsQueryType;
use embassy_net::tcp::TcpSocket;
use embassy_time::{Duration as EmbassyDuration, Timer, with_timeout};
use embedded_io_async::Write as _;
use heapless::String;
use sentelite_core::blob::directive::{BufferTooSmall, Directive, HandlerKind};
use sentelite_core::blob::http::{BodyLength, HeadError, parse_response};
use sentelite_core::blob::report::{
    CompleteReport, ErrorReport, FailureState, ProgressReport, RefusalReport,
};
use sentelite_core::blob::{
    Action, End, FailReason, Fetch, FetchPlan, RangeRequest, TransportError,
};
use sentelite_core::{Duration, Instant, RequestId, Status};

use crate::handle::Handle;
use crate::sinks::ResumableSink;
use crate::url::HttpUrl;

/// Sources one transfer can have: the directive's URL and its mirrors.
pub const SOURCES: usize = 4;
/// Hash checkpoints the machine keeps waiting for the sink: none. The device's sinks (a
/// flash partition written through, RAM) report durable all but the last partial flash
/// word, so every checkpoint (an erase-block boundary) is durable as soon as it is hashed
/// and becomes the resume point at once; one waiting would take 120 B of the task's
/// future, the core's default of four 480 B.
pub const CHECKPOINTS: usize = 0;
/// The machine with the device's limits. Its plan keeps the sources by index only
/// ([`FetchPlan::from_directive_by_index`]): the URLs stay in the directive, which `serve`
/// holds for the whole transfer, instead of four 160-byte copies in the task's future
/// (640 B). A URL's length is then bounded by the directive's payload (`MAX_PAYLOAD`), which
/// keeps the request head within the default 1 KB head buffer.
pub type DeviceFetch = Fetch<SOURCES, 0, CHECKPOINTS>;
/// Durable bytes between two saved resume points: a flash sink's record sector is erased
/// once per save, so a 1 MiB image costs it 16 erases, and a reboot loses at most this much.
pub const CHECKPOINT_BYTES: u64 = 64 * 1024;

/// Memory for blob transfers, every buffer the application's choice: one HTTP connection's
/// socket buffers (`RX`, `TX`) and `HEAD` bytes for the request head and then the response
/// head, which then buffers the body (each piece is fed to the machine from there, no
/// second copy). A request head (the URL's path and host, the Range and an ETag) or a
/// response head (status line and headers) larger than `HEAD` fails that attempt; 1 KB
/// takes a 96-byte ETag with the headers a static file server adds, and any URL a directive
/// of the default 512-byte message payload carries. The reports need no buffer here: each
/// is encoded straight into the message that carries it to the runner. `new` is `const`,
/// for a `static`.
pub struct BlobResources<const RX: usize = 2048, const TX: usize = 512, const HEAD: usize = 1024> {
    rx: [u8; RX],
    tx: [u8; TX],
    head: [u8; HEAD],
}

impl<const RX: usize, const TX: usize, const HEAD: usize> BlobResources<RX, TX, HEAD> {
    /// Empty buffers.
    pub const fn new() -> Self {
        Self {
            rx: [0; RX],
            tx: [0; TX],
            head: [0; HEAD],
        }
    }
}

impl<const RX: usize, const TX: usize, const HEAD: usize> Default for BlobResources<RX, TX, HEAD> {
    fn default() -> Self {
        Self::new()
    }
}

/// True for the events [`serve`] answers.
pub fn is_directive(event: &str) -> bool {
    HandlerKind::from_event(event).is_some()
}

/// The handler a directive names (`ns/name`), or `None` if the payload is not a directive.
pub fn handler_of<'p>(event: &str, payload: &'p [u8]) -> Option<&'p str> {
    Directive::decode(event, payload).ok().map(|d| d.handler)
}

/// How a directive was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Served {
    /// Refused before any transfer (malformed, no such handler, bad plan), with this status.
    Refused(Status),
    /// The transfer ran to this end; the request was ended accordingly.
    Ended(End),
}

/// A directive request from the server, as [`crate::Incoming::Request`] carries it.
#[derive(Debug, Clone, Copy)]
pub struct DirectiveRequest<'p> {
    /// The request id, for the answer.
    pub id: RequestId,
    /// Its event (`blob/fetch-and-process`, …).
    pub event: &'p str,
    /// The directive map.
    pub payload: &'p [u8],
    /// The request's deadline in milliseconds (0: none); it bounds the transfer.
    pub timeout_ms: u32,
}

/// Answers the server's directive request completely: decodes it, fetches into `sink`
/// (or refuses with `UNSUPPORTED` when `sink` is `None`: the application has no handler
/// by that name), reports progress as reply parts and ends the request with a report.
///
/// A sink that keeps resume points ([`ResumableSink`]) continues a transfer of the same
/// blob interrupted by a reboot from its saved point (if the core's [`Fetch::resume`] finds
/// it fits), saves a new point every [`CHECKPOINT_BYTES`] made durable, and forgets it when
/// the transfer ends, whichever way.
pub async fn serve<S: ResumableSink, const RX: usize, const TX: usize, const HEAD: usize>(
    handle: &Handle<'_>,
    stack: Stack<'_>,
    resources: &mut BlobResources<RX, TX, HEAD>,
    request: DirectiveRequest<'_>,
    sink: Option<&mut S>,
) -> Served {
    let DirectiveRequest {
        id,
        event,
        payload,
        timeout_ms,
    } = request;
    let started = now();
    let request = Received { event, payload };
    // One `end` for every way out: each awaited call is a state of this future with its
    // poll code inlined, so refusals share the end of a transfer. Bindings by `let … else`,
    // not `match` on a call: a scrutinee's temporary (the plan, the fetch) would stay in
    // the future across the transfer's await.
    let (status, outcome, served) = 'done: {
        let (status, error) = 'refuse: {
            if request.directive().is_none() {
                break 'refuse (Status::ERROR, "bad directive");
            }
            let Some(sink) = sink else {
                break 'refuse (Status::UNSUPPORTED, "unknown handler");
            };
            let Some(mut fetch) = prepare(request, started, timeout_ms, sink) else {
                break 'refuse (Status::ERROR, "cannot plan");
            };
            // A Cancel from the server stops the transfer wherever it is (a stalled read
            // included); the sink is aborted and the request ends `CANCELLED`.
            let transfer = run(handle, stack, resources, id, request, &mut fetch, sink);
            let end = match select(transfer, handle.cancelled(id)).await {
                Either::First(end) => end,
                Either::Second(()) => {
                    fetch.cancel(sink);
                    End::Failed {
                        reason: FailReason::Cancelled,
                    }
                }
            };
            sink.forget();
            let outcome = Outcome::Ended {
                end,
                source: fetch.source(),
                retries: fetch.retries(),
                status_code: fetch.last_status(),
                offset: fetch.offset(),
                duration_ms: now().saturating_since(started).as_millis(),
            };
            break 'done (end_status(end), outcome, Served::Ended(end));
        };
        (status, Outcome::Refused(error), Served::Refused(status))
    };
    // The report is encoded straight into the End message once the outbox has room; one
    // that does not fit ends the request without it.
    let _ = handle
        .end_encoded(id, status, |buf| report(request, &outcome, buf))
        .await;
    served
}

/// What the End's report says: the refusal's reason, or the transfer's end with the
/// fetch's figures at that point (copied, so the fetch need not outlive the transfer).
#[derive(Clone, Copy)]
enum Outcome {
    Refused(&'static str),
    Ended {
        end: End,
        source: usize,
        retries: u32,
        status_code: Option<u16>,
        offset: u64,
        duration_ms: u64,
    },
}

/// The status a transfer that ended `end` ends its request with.
fn end_status(end: End) -> Status {
    match end {
        End::Completed { .. } => Status::OK,
        End::Failed {
            reason: FailReason::Cancelled,
        } => Status::CANCELLED,
        End::Failed { .. } | End::Rescheduled { .. } => Status::ERROR,
    }
}

/// The directive request as it arrived: a transfer's future keeps these two references and
/// decodes the directive again where it needs it, in code that does not wait, instead of
/// holding the decoded directive (176 B) across the transfer.
#[derive(Clone, Copy)]
struct Received<'p> {
    event: &'p str,
    payload: &'p [u8],
}

impl<'p> Received<'p> {
    /// The directive, `None` if the payload is not one; the same every time.
    // Not inlined: one copy of the decode's result conversion for its five callers.
    #[inline(never)]
    fn directive(self) -> Option<Directive<'p>> {
        Directive::decode(self.event, self.payload).ok()
    }
}

/// The fetch of a directive: its plan with the request's deadline and the device's
/// progress step, from the sink's saved point when it has one for this blob (and the core
/// finds it fits), else from 0; `None` when no plan fits the device's limits. A function
/// of its own, not part of `serve`'s future: the plan and the restored state are only
/// needed until the fetch is built.
// Not inlined: in the task's poll code this and `report`, `checkpoint` and
// `ResumingSink::restore` took 708 B more flash on the Pico W (measured together).
#[inline(never)]
fn prepare<S: ResumableSink>(
    request: Received<'_>,
    started: Instant,
    timeout_ms: u32,
    sink: &mut S,
) -> Option<DeviceFetch> {
    let directive = request.directive()?;
    let mut plan: FetchPlan<SOURCES, 0> =
        FetchPlan::from_directive_by_index(&directive, started).ok()?;
    if timeout_ms > 0 {
        let by_request = started + Duration::from_millis(u64::from(timeout_ms));
        plan.options.deadline = Some(
            plan.options
                .deadline
                .map_or(by_request, |d| d.min(by_request)),
        );
    }
    plan.options.progress_step = (plan.size / 20).max(16 * 1024);
    let saved = sink.restore(plan.size, &plan.sha256);
    Some(DeviceFetch::start_or_resume_with_checkpoints(
        started,
        plan,
        saved.as_ref(),
        sink,
    ))
}

/// Encodes the report of `outcome` into `buf`: a refusal, a completion or an error map.
// Not inlined, like `prepare`.
#[inline(never)]
fn report(
    request: Received<'_>,
    outcome: &Outcome,
    buf: &mut [u8],
) -> Result<usize, BufferTooSmall> {
    let directive = request.directive();
    let (end, source, retry_count, status_code, offset, duration_ms) = match *outcome {
        Outcome::Refused(error) => {
            let transfer_id = directive.map_or("", |d| d.transfer_id);
            return RefusalReport { transfer_id, error }.encode(buf);
        }
        Outcome::Ended {
            end,
            source,
            retries,
            status_code,
            offset,
            duration_ms,
        } => (end, source, retries, status_code, offset, duration_ms),
    };
    // Decoded before the transfer, so again now; an empty report map never happens.
    let Some(directive) = directive else {
        return Err(BufferTooSmall);
    };
    let source = source_url(&directive, source).unwrap_or(directive.url);
    let mut error: String<64> = String::new();
    let state = match end {
        End::Completed {
            downloaded, sha256, ..
        } => {
            let report = CompleteReport {
                transfer_id: directive.transfer_id,
                url: source,
                handler: directive.handler,
                duration_ms,
                bytes_transferred: downloaded,
                sha256,
            };
            return report.encode(buf);
        }
        End::Rescheduled { after } => {
            let _ = error.push_str("every source failed transiently");
            FailureState::Rescheduled {
                after_ms: after.as_millis(),
            }
        }
        End::Failed { reason } => {
            let _ = write!(error, "{reason}");
            FailureState::Failed
        }
    };
    let report = ErrorReport {
        transfer_id: directive.transfer_id,
        url: source,
        error: &error,
        retry_count,
        status_code,
        state,
        offset,
    };
    report.encode(buf)
}

// Not inlined: read at a dozen places of the transfer, each a driver call with the tick
// conversion when inlined (376 B more flash on the Pico W).
#[inline(never)]
fn now() -> Instant {
    Instant::from_micros(embassy_time::Instant::now().as_micros())
}

fn at(instant: Instant) -> embassy_time::Instant {
    embassy_time::Instant::from_micros(instant.as_micros())
}

/// The offset of the fetch's resume point (what a save now would record).
fn resume_point(fetch: &DeviceFetch) -> u64 {
    fetch.state().offset
}

/// Saves the fetch's resume point once [`CHECKPOINT_BYTES`] more are durable than at the
/// point saved last (`saved`); returns the offset now saved. A transfer that went back below
/// it (restarted from 0) forgets the old point, which no longer describes the partition.
// Not inlined, like `prepare`.
#[inline(never)]
fn checkpoint<S: ResumableSink>(fetch: &DeviceFetch, sink: &mut S, saved: u64) -> u64 {
    let durable = sink.durable();
    if durable < saved {
        sink.forget();
        return 0;
    }
    if durable < saved.saturating_add(CHECKPOINT_BYTES) {
        return saved;
    }
    let state = fetch.state();
    if state.offset < saved.saturating_add(CHECKPOINT_BYTES) {
        return saved;
    }
    // A save that fails costs only the resume after a reboot; the transfer goes on, and
    // the next try comes a step later, not on every chunk.
    let _ = sink.save(&state);
    state.offset
}

/// The URL of source `source`: the directive's own (0) or one of its mirrors, in the order
/// of [`Directive::sources`], which [`FetchPlan::from_directive_by_index`] numbers.
fn source_url<'d>(directive: &Directive<'d>, source: usize) -> Option<&'d str> {
    match source.checked_sub(1) {
        None => Some(directive.url),
        Some(mirror) => directive.mirrors.get(mirror).copied(),
    }
}

/// Writes the HTTP request head for `request` (a GET with `Range`, and `If-Range` when the
/// machine has an ETag) into `buf`; its length, or `None` if it does not fit. Written here,
/// part after part like the WebSocket upgrade's request, rather than by an HTTP client
/// crate: reqwless' request writer brought a basic-auth header (base64) and `u64`
/// formatting this client never uses (about 1.8 KB of flash on the Pico W).
// Not inlined: in the transfer's poll code it took 116 B more flash on the Pico W.
#[inline(never)]
fn request_head(buf: &mut [u8], url: &HttpUrl<'_>, request: &RangeRequest<'_>) -> Option<usize> {
    let mut head = Head { buf, at: 0 };
    head.put(b"GET ")?;
    head.put(url.path.as_bytes())?;
    head.put(b" HTTP/1.1\r\nHost: ")?;
    head.put(url.authority.as_bytes())?;
    head.put(b"\r\nRange: bytes=")?;
    head.decimal(request.start)?;
    head.put(b"-")?;
    if let Some(end) = request.end_inclusive {
        head.decimal(end)?;
    }
    if let Some(etag) = request.if_range {
        head.put(b"\r\nIf-Range: ")?;
        head.put(etag.as_bytes())?;
    }
    head.put(b"\r\n\r\n")?;
    Some(head.at)
}

/// A request head being written into a buffer.
struct Head<'b> {
    buf: &'b mut [u8],
    at: usize,
}

impl Head<'_> {
    /// Appends `bytes`; `None` when the buffer is full.
    fn put(&mut self, bytes: &[u8]) -> Option<()> {
        let end = self.at.checked_add(bytes.len())?;
        self.buf.get_mut(self.at..end)?.copy_from_slice(bytes);
        self.at = end;
        Some(())
    }

    /// Appends `n` in decimal.
    fn decimal(&mut self, mut n: u64) -> Option<()> {
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        // At most 20 digits: `start` stays within `digits`.
        while let Some(digit) = start.checked_sub(1).and_then(|i| digits.get_mut(i)) {
            *digit = b'0' + (n % 10) as u8;
            start -= 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.put(digits.get(start..)?)
    }
}

/// The blob's TCP connection, closed (FIN, as far as the stack gets it out) when the
/// exchange is over, however it ended; dropping the socket alone would only forget it.
struct Connection<'r>(TcpSocket<'r>);

impl Drop for Connection<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// DNS and the TCP connect to the URL's host (an IPv4 literal is used as it is).
async fn connect(
    stack: Stack<'_>,
    socket: &mut TcpSocket<'_>,
    url: &HttpUrl<'_>,
) -> Result<(), TransportError> {
    let addresses = stack
        .dns_query(url.host, DnsQueryType::A)
        .await
        .map_err(|_| TransportError::Connect)?;
    let address = addresses.first().ok_or(TransportError::Connect)?;
    socket
        .connect((*address, url.port))
        .await
        .map_err(|_| TransportError::Connect)
}

/// Runs the machine to its end: every request it asks for, every wait, every answer.
///
/// Each request is one connection: DNS and connect here (the runner's own DNS query, no
/// second resolver), then the request head goes out and the core's reader
/// ([`parse_response`]) takes the response head; the body is read into the head buffer
/// and fed from there, up to its `Content-Length` or the close. Not reqwless, whose
/// response reader with its chunked, fixed-length and to-the-end bodies and `httparse`'s
/// tables took 7.5 KB of the Pico W's flash for the one answer form blob servers give.
async fn run<S: ResumableSink, const RX: usize, const TX: usize, const HEAD: usize>(
    handle: &Handle<'_>,
    stack: Stack<'_>,
    resources: &mut BlobResources<RX, TX, HEAD>,
    id: RequestId,
    request: Received<'_>,
    fetch: &mut DeviceFetch,
    sink: &mut S,
) -> End {
    let mut seq = 0u32;
    let mut saved = resume_point(fetch);
    // Bounded: every pass ends, waits or makes a request, and the machine bounds requests by
    // its retries, sources and deadline.
    loop {
        // The request head is written into the head buffer now, while the machine's request
        // (its ETag) is at hand: nothing of it has to live on in this future.
        let prepared = match fetch.poll_action(now(), sink) {
            Action::Finished(end) => return *end,
            Action::Wait(until) => {
                Timer::at(at(until)).await;
                continue;
            }
            Action::Request(range) => request
                .directive()
                .and_then(|directive| source_url(&directive, range.source))
                .and_then(|url| HttpUrl::parse(url).ok())
                .and_then(|url| Some((url, request_head(&mut resources.head, &url, &range)?))),
        };
        let Some((url, head_len)) = prepared else {
            fetch.on_error(now(), TransportError::Protocol);
            continue;
        };
        let attempt = fetch.plan().options.attempt_timeout;
        let attempt = EmbassyDuration::from_micros(attempt.as_micros().max(1_000_000));
        let mut connection =
            Connection(TcpSocket::new(stack, &mut resources.rx, &mut resources.tx));
        connection.0.set_timeout(Some(attempt));
        match with_timeout(attempt, connect(stack, &mut connection.0, &url)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                fetch.on_error(now(), e);
                continue;
            }
            Err(_) => {
                fetch.on_error(now(), TransportError::Timeout);
                continue;
            }
        }
        let sent = async {
            let head = resources.head.get(..head_len).unwrap_or(&[]);
            connection
                .0
                .write_all(head)
                .await
                .map_err(|_| TransportError::Cut)?;
            read_head(&mut connection.0, &mut resources.head).await
        };
        let filled = match with_timeout(attempt, sent).await {
            Ok(Ok(filled)) => filled,
            Ok(Err(e)) => {
                fetch.on_error(now(), e);
                continue;
            }
            Err(_) => {
                fetch.on_error(now(), TransportError::Timeout);
                continue;
            }
        };
        // In a block of its own: nothing of the head is held across the body's awaits.
        let (mut remaining, mut piece) = {
            let Ok(response) = parse_response(resources.head.get(..filled).unwrap_or(&[])) else {
                fetch.on_error(now(), TransportError::Protocol);
                continue;
            };
            if fetch.on_response(now(), response.head).is_err() {
                // The machine has decided (retry, fail over, restart or end).
                continue;
            }
            let remaining = match response.body {
                BodyLength::Bytes(n) => n,
                BodyLength::UntilClose => u64::MAX,
            };
            (remaining, response.head_len..filled)
        };
        // The body's first bytes came with the head; the rest is read into the same buffer
        // and fed from there.
        loop {
            let data = resources.head.get(piece.clone()).unwrap_or(&[]);
            let data = data
                .get(
                    ..usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(data.len()),
                )
                .unwrap_or(&[]);
            if !data.is_empty() {
                remaining -= data.len() as u64;
                if fetch.on_body(now(), data, sink).is_err() {
                    break;
                }
                saved = checkpoint(fetch, sink, saved);
                while let Some(progress) = fetch.poll_progress() {
                    let Some(directive) = request.directive() else {
                        break;
                    };
                    let report = ProgressReport {
                        transfer_id: directive.transfer_id,
                        url: directive.url,
                        loaded: progress.loaded,
                        total: progress.total,
                    };
                    // Encoded straight into the message. A full outbox skips a part; the
                    // next one or the end says more.
                    if handle
                        .try_reply_encoded(id, seq, |buf| report.encode(buf))
                        .is_ok()
                    {
                        seq += 1;
                    }
                }
            }
            if remaining == 0 {
                fetch.on_body_end(now(), sink);
                break;
            }
            let read = select(
                connection.0.read(&mut resources.head),
                Timer::after(attempt),
            )
            .await;
            match read {
                // The close: the end of a body without a length, else a short body, which
                // the machine takes as a cut attempt.
                Either::First(Ok(0)) => {
                    fetch.on_body_end(now(), sink);
                    break;
                }
                Either::First(Ok(n)) => piece = 0..n,
                Either::First(Err(_)) => {
                    fetch.on_error(now(), TransportError::Cut);
                    break;
                }
                Either::Second(()) => {
                    fetch.on_error(now(), TransportError::Timeout);
                    break;
                }
            }
        }
    }
}

/// Reads the response head into `buf`; how many bytes were read (the head and the first
/// of the body) once the head is complete. A head larger than `buf`, or one the core's
/// reader refuses, is a protocol error; a close before its end, a cut.
async fn read_head(socket: &mut TcpSocket<'_>, buf: &mut [u8]) -> Result<usize, TransportError> {
    let mut filled = 0;
    loop {
        let free = buf.get_mut(filled..).unwrap_or_default();
        if free.is_empty() {
            return Err(TransportError::Protocol);
        }
        match socket.read(free).await {
            Ok(0) | Err(_) => return Err(TransportError::Cut),
            Ok(n) => filled += n,
        }
        match parse_response(buf.get(..filled).unwrap_or_default()) {
            Err(HeadError::Incomplete) => {}
            Ok(_) => return Ok(filled),
            Err(_) => return Err(TransportError::Protocol),
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use sentelite_core::blob::{BlobSink, ResponseHead, SinkError};
    use std::vec::Vec;

    /// A sink whose every byte is durable at once, recording what `serve` asks of it.
    #[derive(Default)]
    struct Recording {
        len: u64,
        saves: Vec<u64>,
        forgets: u32,
    }

    impl BlobSink for Recording {
        fn erase_block(&self) -> u32 {
            4096
        }
        fn contains(&mut self, _: &[u8; 32]) -> bool {
            false
        }
        fn begin(&mut self, _: u64) -> Result<(), SinkError> {
            self.len = 0;
            Ok(())
        }
        fn write_at(&mut self, at: u64, data: &[u8]) -> Result<(), SinkError> {
            self.len = at + data.len() as u64;
            Ok(())
        }
        fn durable(&self) -> u64 {
            self.len
        }
        fn commit(&mut self, _: &[u8; 32]) -> Result<(), SinkError> {
            Ok(())
        }
        fn abort(&mut self) {
            self.len = 0;
        }
    }

    impl ResumableSink for Recording {
        fn save(&mut self, state: &sentelite_core::blob::TransferState) -> Result<(), SinkError> {
            self.saves.push(state.offset);
            Ok(())
        }
        fn forget(&mut self) {
            self.forgets += 1;
        }
    }

    /// A fetch of 400 KiB answered from 0, its body fed in 1 KiB chunks up to `upto`, with
    /// the checkpoint policy applied after each as `run` does.
    fn fed(sink: &mut Recording, upto: usize) -> (DeviceFetch, u64) {
        let now = Instant::from_micros(0);
        // Sources by index, as `prepare` plans them: the URL is the caller's.
        let plan = FetchPlan::new("", 400 * 1024, [7; 32]).unwrap();
        let mut fetch = DeviceFetch::new_with_checkpoints(now, plan, sink);
        assert!(matches!(fetch.poll_action(now, sink), Action::Request(_)));
        let head = ResponseHead {
            status: 200,
            range_start: None,
            total: Some(400 * 1024),
            etag: None,
        };
        fetch.on_response(now, head).unwrap();
        let mut saved = fetch.state().offset;
        for _ in 0..upto / 1024 {
            fetch.on_body(now, &[0x5a; 1024], sink).unwrap();
            saved = checkpoint(&fetch, sink, saved);
        }
        (fetch, saved)
    }

    fn head_of(request: &RangeRequest<'_>, room: usize) -> Option<std::string::String> {
        let url = HttpUrl::parse(request.url).unwrap();
        let mut buf = std::vec![0u8; room];
        let n = request_head(&mut buf, &url, request)?;
        Some(std::string::String::from_utf8(buf[..n].to_vec()).unwrap())
    }

    #[test]
    fn the_request_head_asks_for_the_range_and_names_the_etag_only_when_resuming() {
        let mut request = RangeRequest {
            source: 0,
            url: "http://10.0.0.1:8080/blobs/ab",
            start: 0,
            end_inclusive: None,
            if_range: None,
        };
        assert_eq!(
            head_of(&request, 1024).unwrap(),
            "GET /blobs/ab HTTP/1.1\r\nHost: 10.0.0.1:8080\r\nRange: bytes=0-\r\n\r\n"
        );
        request.start = 65_536;
        request.end_inclusive = Some(131_071);
        request.if_range = Some("\"v1\"");
        assert_eq!(
            head_of(&request, 1024).unwrap(),
            "GET /blobs/ab HTTP/1.1\r\nHost: 10.0.0.1:8080\r\nRange: bytes=65536-131071\r\n\
             If-Range: \"v1\"\r\n\r\n"
        );
        // A head larger than the buffer is refused, not cut.
        assert_eq!(head_of(&request, 40), None);
    }

    #[test]
    fn the_range_is_written_in_decimal_like_display() {
        for n in [0, 7, 10, 65_535, 1 << 32, u64::MAX] {
            let mut buf = [0u8; 20];
            let mut head = Head {
                buf: &mut buf,
                at: 0,
            };
            head.decimal(n).unwrap();
            let at = head.at;
            assert_eq!(&buf[..at], std::format!("{n}").as_bytes());
        }
        // No room, no digits.
        let mut buf = [0u8; 4];
        let mut head = Head {
            buf: &mut buf,
            at: 0,
        };
        assert_eq!(head.decimal(12_345), None);
    }

    #[test]
    fn a_resume_point_is_saved_once_per_64_kib_made_durable() {
        let mut sink = Recording::default();
        let (_, saved) = fed(&mut sink, 300 * 1024);
        assert_eq!(sink.saves, [65_536, 131_072, 196_608, 262_144]);
        assert_eq!((saved, sink.forgets), (262_144, 0));
    }

    #[test]
    fn falling_below_the_saved_point_forgets_it() {
        let mut sink = Recording::default();
        let (fetch, saved) = fed(&mut sink, 70 * 1024);
        assert_eq!(saved, 65_536);
        // The transfer starts over from 0 (say the source's ETag changed).
        sink.len = 1024;
        assert_eq!(checkpoint(&fetch, &mut sink, saved), 0);
        assert_eq!(sink.forgets, 1);
    }
}
