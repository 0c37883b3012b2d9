//! The fetch loop: drives the core's [`Fetch`] machine with HTTP exchanges on any
//! [`Runtime`]. The machine decides every range, retry, fail-over and end; this loop only
//! makes the requests it asks for, feeds back what arrives, and enforces its timers.
//!
//! With `parallel` set, the body of each response is handed to a thread of its own that runs
//! [`Fetch::on_body`] (SHA-256 and the sink write) while the next buffer is being read: the
//! machine and the sink move to that thread for the length of the body and come back when it
//! ends, so the hash runs beside the reads instead of between them. Buffers go round a small
//! pool, never copied. If no thread can be started the body is processed in line.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;

use futures_lite::future;
use sentelite_core::StdClock;
use sentelite_core::blob::{Action, BlobSink, End, Fetch, Progress, ResponseHead, TransportError};

use super::http::{self, BodyEnd, BodySink, Head, HttpError, HttpTarget, Method};
use crate::Runtime;

/// Sources one transfer can have: the directive's `url` and up to three mirrors.
pub const SOURCES: usize = 4;
/// Longest source URL, in bytes.
pub const URL_MAX: usize = 512;
/// Bytes per read: large reads keep syscalls and per-chunk work negligible.
pub const READ_BUF: usize = 1 << 20;
/// Buffers in flight between the reader and the hashing thread.
const POOL: usize = 3;

/// The machine with the driver's source limits.
pub type BlobFetch = Fetch<SOURCES, URL_MAX>;

/// Runs `fetch` to its end, writing into `sink`, and hands both back with the end.
/// `progress` hears each progress step; `cancel` completing stops the transfer (the sink is
/// aborted, the end is `Failed { Cancelled }`); `parallel` hashes on a second thread.
pub async fn run<R: Runtime, S: BlobSink + Send + 'static>(
    runtime: &R,
    clock: &StdClock,
    fetch: BlobFetch,
    sink: S,
    parallel: bool,
    progress: &mut (impl FnMut(Progress) + Send),
    cancel: impl Future<Output = ()>,
) -> (End, BlobFetch, S) {
    let mut cancel = std::pin::pin!(cancel);
    let mut held = Some((fetch, sink));
    let mut buffers: Vec<Vec<u8>> = Vec::new();
    // Bounded: every pass either ends, waits for a timer, or makes a request, and the machine
    // limits requests by its retries, sources and deadline.
    loop {
        let (mut fetch, mut sink) = held.take().expect("the machine is back between exchanges");
        let now = clock.now();
        let request = match fetch.poll_action(now, &mut sink) {
            Action::Finished(end) => return (*end, fetch, sink),
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
                    fetch.cancel(&mut sink);
                }
                held = Some((fetch, sink));
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
        let Ok(target) = HttpTarget::parse(&request.url) else {
            fetch.on_error(now, TransportError::Protocol);
            held = Some((fetch, sink));
            continue;
        };
        let mut headers = vec![("Range", request.range.as_str())];
        if let Some(etag) = &request.if_range {
            headers.push(("If-Range", etag.as_str()));
        }
        let options = fetch.plan().options.clone();
        let last = AtomicU64::new(now.as_micros());
        while buffers.len() < POOL {
            buffers.push(vec![0u8; READ_BUF]);
        }
        let (pool_tx, pool_rx) = async_channel::bounded(POOL);
        for buf in buffers.drain(..) {
            let _ = pool_tx.try_send(buf);
        }
        let (done_tx, done_rx) = async_channel::bounded(1);
        let (progress_tx, progress_rx) = async_channel::bounded(64);
        held = Some((fetch, sink));
        let outcome = {
            let mut feed = Feed {
                held: &mut held,
                clock,
                last: &last,
                parallel,
                current: None,
                pool_tx: pool_tx.clone(),
                pool_rx: pool_rx.clone(),
                worker: None,
                done_tx,
                progress_tx,
                progress_rx: progress_rx.clone(),
                progress: &mut *progress,
            };
            let exchange = async {
                Outcome::Http(
                    http::exchange(runtime, Method::GET, &target, &headers, &[], &mut feed).await,
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
        // The feed is gone, so the hashing thread (if any) sees the end of its queue, finishes
        // what was read and hands the machine and the sink back.
        if held.is_none() {
            let returned = done_rx.recv().await;
            held = Some(returned.expect("the hashing thread hands the machine back"));
        }
        while let Ok(p) = progress_rx.try_recv() {
            progress(p);
        }
        while let Ok(buf) = pool_rx.try_recv() {
            buffers.push(buf);
        }
        let (fetch, sink) = held.as_mut().expect("the machine is back");
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

/// The hashing thread's side of one response body.
struct Worker {
    jobs: mpsc::Sender<(Vec<u8>, usize)>,
    stopped: Arc<AtomicBool>,
}

/// Hands the response to the machine as it arrives: in line, or through the hashing thread.
struct Feed<'a, S, P> {
    /// The machine and the sink while they are on this side.
    held: &'a mut Option<(BlobFetch, S)>,
    clock: &'a StdClock,
    last: &'a AtomicU64,
    parallel: bool,
    /// The buffer handed to the current read.
    current: Option<Vec<u8>>,
    pool_tx: async_channel::Sender<Vec<u8>>,
    pool_rx: async_channel::Receiver<Vec<u8>>,
    worker: Option<Worker>,
    done_tx: async_channel::Sender<(BlobFetch, S)>,
    progress_tx: async_channel::Sender<Progress>,
    progress_rx: async_channel::Receiver<Progress>,
    progress: &'a mut P,
}

impl<S: BlobSink + Send + 'static, P> Feed<'_, S, P> {
    /// Moves the machine and the sink to a new hashing thread; on failure they stay here.
    fn start_worker(&mut self) {
        let (give_tx, give_rx) = mpsc::channel::<(BlobFetch, S)>();
        let (jobs_tx, jobs_rx) = mpsc::channel::<(Vec<u8>, usize)>();
        let stopped = Arc::new(AtomicBool::new(false));
        let (pool, progress, done) = (
            self.pool_tx.clone(),
            self.progress_tx.clone(),
            self.done_tx.clone(),
        );
        let (clock, flag) = (*self.clock, stopped.clone());
        let spawned = std::thread::Builder::new()
            .name("blob-hash".into())
            .spawn(move || {
                let Ok((mut fetch, mut sink)) = give_rx.recv() else {
                    return;
                };
                for (buf, n) in jobs_rx {
                    if !flag.load(Ordering::Relaxed) {
                        let data = buf.get(..n).unwrap_or(&buf);
                        if fetch.on_body(clock.now(), data, &mut sink).is_err() {
                            flag.store(true, Ordering::Relaxed);
                        }
                        if let Some(p) = fetch.poll_progress() {
                            let _ = progress.try_send(p);
                        }
                    }
                    let _ = pool.try_send(buf);
                }
                let _ = done.try_send((fetch, sink));
            });
        if spawned.is_ok()
            && let Some(pair) = self.held.take()
        {
            if let Err(mpsc::SendError(pair)) = give_tx.send(pair) {
                *self.held = Some(pair);
                return;
            }
            self.worker = Some(Worker {
                jobs: jobs_tx,
                stopped,
            });
        }
    }

    fn report_progress(&mut self)
    where
        P: FnMut(Progress),
    {
        while let Ok(p) = self.progress_rx.try_recv() {
            (self.progress)(p);
        }
    }
}

impl<S: BlobSink + Send + 'static, P: FnMut(Progress) + Send> BodySink for Feed<'_, S, P> {
    fn head(&mut self, head: &Head) -> bool {
        let now = self.clock.now();
        self.last.store(now.as_micros(), Ordering::Relaxed);
        let Some((fetch, _)) = self.held.as_mut() else {
            return false;
        };
        let accepted = fetch
            .on_response(
                now,
                ResponseHead {
                    status: head.status,
                    range_start: head.range_start,
                    total: head.total,
                    etag: head.etag.as_deref(),
                },
            )
            .is_ok();
        if accepted && self.parallel {
            self.start_worker();
        }
        accepted
    }

    async fn buffer(&mut self) -> Option<&mut [u8]> {
        if self.current.is_none() {
            self.current = Some(self.pool_rx.recv().await.ok()?);
        }
        self.current.as_deref_mut()
    }

    fn filled(&mut self, n: usize) -> bool {
        let now = self.clock.now();
        self.last.store(now.as_micros(), Ordering::Relaxed);
        let accepted = match &self.worker {
            Some(worker) => {
                let Some(buf) = self.current.take() else {
                    return false;
                };
                !worker.stopped.load(Ordering::Relaxed) && worker.jobs.send((buf, n)).is_ok()
            }
            None => {
                let (Some((fetch, sink)), Some(buf)) = (self.held.as_mut(), &self.current) else {
                    return false;
                };
                let data = buf.get(..n).unwrap_or(buf);
                let accepted = fetch.on_body(now, data, sink).is_ok();
                if let Some(p) = fetch.poll_progress() {
                    let _ = self.progress_tx.try_send(p);
                }
                accepted
            }
        };
        self.report_progress();
        accepted
    }
}
