//! The fetch loop: drives the core's [`Fetch`] machine with HTTP exchanges on any
//! [`Runtime`]. The machine decides every range, retry, fail-over and end; this loop only
//! makes the requests it asks for, feeds back what arrives, and enforces its timers.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_lite::future;
use sentelite_core::StdClock;
use sentelite_core::blob::{Action, BlobSink, End, Fetch, Progress, ResponseHead, TransportError};

use super::http::{self, BodyEnd, BodySink, Head, HttpError, HttpTarget, Method};
use crate::Runtime;

/// Sources one transfer can have: the directive's `url` and up to three mirrors.
pub const SOURCES: usize = 4;
/// Longest source URL, in bytes.
pub const URL_MAX: usize = 512;
/// Default read buffer: large reads keep syscalls and per-chunk work negligible.
pub const READ_BUF: usize = 1 << 20;

/// The machine with the driver's source limits.
pub type BlobFetch = Fetch<SOURCES, URL_MAX>;

/// Runs `fetch` to its end, writing into `sink`. `progress` hears each progress step;
/// `cancel` completing stops the transfer (the sink is aborted, the end is
/// `Failed { Cancelled }`).
pub async fn run<R: Runtime, S: BlobSink>(
    runtime: &R,
    clock: &StdClock,
    fetch: &mut BlobFetch,
    sink: &mut S,
    buf: &mut [u8],
    progress: &mut impl FnMut(Progress),
    cancel: impl Future<Output = ()>,
) -> End {
    let mut cancel = std::pin::pin!(cancel);
    // Bounded: every pass either ends, waits for a timer, or makes a request, and the machine
    // limits requests by its retries, sources and deadline.
    loop {
        let now = clock.now();
        let request = match fetch.poll_action(now, sink) {
            Action::Finished(end) => return *end,
            Action::Wait(at) => {
                let wake = runtime.sleep_until(clock.to_std(at));
                if future::or(
                    async {
                        wake.await;
                        false
                    },
                    async {
                        cancel.as_mut().await;
                        true
                    },
                )
                .await
                {
                    fetch.cancel(sink);
                }
                continue;
            }
            Action::Request(r) => OwnedRequest {
                url: r.url.to_string(),
                range: match r.end_inclusive {
                    Some(end) => format!("bytes={}-{end}", r.start),
                    None => format!("bytes={}-", r.start),
                },
                if_range: r.if_range.map(str::to_string),
            },
        };
        let target = match HttpTarget::parse(&request.url) {
            Ok(target) => target,
            Err(_) => {
                fetch.on_error(now, TransportError::Protocol);
                continue;
            }
        };
        let mut headers = vec![("Range", request.range.as_str())];
        if let Some(etag) = &request.if_range {
            headers.push(("If-Range", etag.as_str()));
        }
        let options = fetch.plan().options.clone();
        let last = AtomicU64::new(now.as_micros());
        let outcome = {
            let mut feed = Feed {
                fetch: &mut *fetch,
                sink: &mut *sink,
                clock,
                last: &last,
                progress: &mut *progress,
            };
            let exchange = async {
                Outcome::Http(
                    http::exchange(runtime, Method::GET, &target, &headers, &[], buf, &mut feed)
                        .await,
                )
            };
            let watchdog = async {
                // Bounded by the idle timeout or the deadline: each pass sleeps until one.
                loop {
                    let idle = sentelite_core::Instant::from_micros(last.load(Ordering::Relaxed));
                    let mut at = options.deadline;
                    if options.attempt_timeout > sentelite_core::Duration::ZERO {
                        let idle_at = idle + options.attempt_timeout;
                        at = Some(at.map_or(idle_at, |d| d.min(idle_at)));
                    }
                    let Some(at) = at else {
                        return future::pending().await;
                    };
                    if clock.now() >= at {
                        return Outcome::TimedOut;
                    }
                    runtime.sleep_until(clock.to_std(at)).await;
                }
            };
            let cancelled = async {
                cancel.as_mut().await;
                Outcome::Cancelled
            };
            future::or(exchange, future::or(watchdog, cancelled)).await
        };
        let now = clock.now();
        match outcome {
            Outcome::Http(Ok(BodyEnd::Complete)) => fetch.on_body_end(now, sink),
            Outcome::Http(Ok(BodyEnd::Stopped)) => {}
            Outcome::Http(Err(HttpError::Connect(_))) => {
                fetch.on_error(now, TransportError::Connect)
            }
            Outcome::Http(Err(HttpError::Url(_))) => fetch.on_error(now, TransportError::Protocol),
            Outcome::Http(Err(HttpError::Transfer(_))) => fetch.on_error(now, TransportError::Cut),
            Outcome::TimedOut => fetch.on_error(now, TransportError::Timeout),
            Outcome::Cancelled => fetch.cancel(sink),
        }
    }
}

struct OwnedRequest {
    url: String,
    range: String,
    if_range: Option<String>,
}

enum Outcome {
    Http(Result<BodyEnd, HttpError>),
    TimedOut,
    Cancelled,
}

/// Hands the response to the machine as it arrives.
struct Feed<'a, S, P> {
    fetch: &'a mut BlobFetch,
    sink: &'a mut S,
    clock: &'a StdClock,
    last: &'a AtomicU64,
    progress: &'a mut P,
}

impl<S: BlobSink, P: FnMut(Progress)> BodySink for Feed<'_, S, P> {
    fn head(&mut self, head: &Head) -> bool {
        let now = self.clock.now();
        self.last.store(now.as_micros(), Ordering::Relaxed);
        self.fetch
            .on_response(
                now,
                ResponseHead {
                    status: head.status,
                    range_start: head.range_start,
                    total: head.total,
                    etag: head.etag.as_deref(),
                },
            )
            .is_ok()
    }

    fn chunk(&mut self, data: &[u8]) -> bool {
        let now = self.clock.now();
        self.last.store(now.as_micros(), Ordering::Relaxed);
        let accepted = self.fetch.on_body(now, data, self.sink).is_ok();
        if let Some(p) = self.fetch.poll_progress() {
            (self.progress)(p);
        }
        accepted
    }
}
