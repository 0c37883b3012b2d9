//! Runs the server's blob directives on this client: a `blob/fetch-and-*` Request is decoded,
//! routed to its handler's sink, fetched with progress as Reply parts, and ended with OK,
//! ERROR, UNSUPPORTED (no such handler), BUSY (at the transfer limit) or CANCELLED; a
//! `blob/upload` Request uploads the named source.

use std::time::Instant as StdInstant;

use futures_lite::future;
use sentelite_core::blob::directive::{BufferTooSmall, Directive, UploadDirective};
use sentelite_core::blob::report::{
    CompleteReport, ErrorReport, FailureState, ProgressReport, RefusalReport,
};
use sentelite_core::blob::{End, FailReason, FetchPlan, Progress, directive};
use sentelite_core::{Duration, Status, StdClock};

use super::fetcher::{self, BlobFetch};
use super::handlers::{BlobHandlers, DynSink};
use super::upload;
use crate::{IncomingRequest, PayloadBuf, Runtime};

/// Room for one report map.
const REPORT_BUF: usize = 1024;
/// Progress parts queued while a slow connection sends earlier ones; more are dropped (the
/// next one or the end carries the newer count).
const PROGRESS_QUEUE: usize = 8;

/// True for the events [`serve_directive`] answers.
pub fn is_blob_directive(event: &str) -> bool {
    directive::HandlerKind::from_event(event).is_some() || event == directive::UPLOAD
}

/// Answers one blob directive completely: a transfer, its progress parts and its end. Spawn
/// it per request (it returns the status it ended the request with, once the transfer has
/// ended); route the server's cancels to [`BlobHandlers::cancel`].
pub async fn serve_directive<R: Runtime>(
    mut req: IncomingRequest,
    handlers: &BlobHandlers,
    runtime: &R,
) -> Status {
    let started = StdInstant::now();
    let payload = match std::mem::take(&mut req.payload) {
        PayloadBuf::Value(bytes) | PayloadBuf::Bytes(bytes) => bytes,
        _ => Vec::new(),
    };
    if req.event == directive::UPLOAD {
        let up = match UploadDirective::decode(&payload) {
            Ok(up) => up,
            Err(e) => return refuse(req, Status::ERROR, "", &e.to_string()).await,
        };
        let Some(source) = handlers.source_for(up.source) else {
            let msg = format!("unknown upload source :{}", up.source);
            return refuse(req, Status::UNSUPPORTED, up.transfer_id, &msg).await;
        };
        let Some(slot) = handlers.admit(req.id()) else {
            return refuse(req, Status::BUSY, up.transfer_id, "busy").await;
        };
        let source = source.clone();
        let (status, report) = future::or(upload::run(runtime, &up, &source), async {
            slot.cancelled().await;
            (
                Status::CANCELLED,
                encode_refusal(up.transfer_id, "cancelled"),
            )
        })
        .await;
        drop(slot);
        let _ = req.end(status, report).await;
        return status;
    }
    let d = match Directive::decode(&req.event, &payload) {
        Ok(d) => d,
        Err(e) => return refuse(req, Status::ERROR, "", &e.to_string()).await,
    };
    let Some(factory) = handlers.sink_for(d.handler) else {
        let msg = format!("unknown handler :{}", d.handler);
        return refuse(req, Status::UNSUPPORTED, d.transfer_id, &msg).await;
    };
    let clock = StdClock::start();
    let now = clock.now();
    let mut plan: FetchPlan<{ fetcher::SOURCES }, { fetcher::URL_MAX }> =
        match FetchPlan::from_directive(&d, now) {
            Ok(plan) => plan,
            Err(e) => return refuse(req, Status::ERROR, d.transfer_id, &e.to_string()).await,
        };
    // The Request's own timeout is the deadline; an explicit :deadline-ms may only shorten it.
    if let Some(timeout) = req.timeout() {
        let by_request = now + Duration::from_millis(timeout.as_millis() as u64);
        let deadline = plan
            .options
            .deadline
            .map_or(by_request, |d| d.min(by_request));
        plan.options.deadline = Some(deadline);
    }
    // Whole percents, but not a part per read buffer on small blobs.
    plan.options.progress_step = (plan.size / 100).max(64 * 1024);
    let sha256 = plan.sha256;
    let Some(slot) = handlers.admit(req.id()) else {
        let msg = format!("busy: at the limit of {} transfers", handlers.running());
        return refuse(req, Status::BUSY, d.transfer_id, &msg).await;
    };
    let mut sink = DynSink(factory(&sha256));
    let fetch = BlobFetch::new(clock.now(), plan, &mut sink);
    let (tx, rx) = async_channel::bounded::<Progress>(PROGRESS_QUEUE);
    let transfer = async {
        let end = fetcher::run(
            runtime,
            &clock,
            fetch,
            sink,
            true,
            &mut |p| {
                let _ = tx.try_send(p);
            },
            slot.cancelled(),
        )
        .await;
        tx.close();
        end
    };
    let url = d.url;
    let forward = async {
        while let Ok(p) = rx.recv().await {
            let report = ProgressReport {
                transfer_id: d.transfer_id,
                url,
                loaded: p.loaded,
                total: p.total,
            };
            if req.part(encode(|b| report.encode(b))).await.is_err() {
                // The connection is gone; the transfer still ends in its own state.
                break;
            }
        }
    };
    let ((end, fetch, sink), ()) = future::zip(transfer, forward).await;
    drop(slot);
    let source = fetch
        .plan()
        .sources
        .get(fetch.source())
        .map_or(d.url, |s| s.as_str())
        .to_string();
    let (status, report) = match end {
        End::Completed {
            downloaded, sha256, ..
        } => {
            let report = CompleteReport {
                transfer_id: d.transfer_id,
                url: &source,
                handler: d.handler,
                duration_ms: started.elapsed().as_millis() as u64,
                bytes_transferred: downloaded,
                sha256,
            };
            (Status::OK, encode(|b| report.encode(b)))
        }
        End::Failed { reason } => {
            let status = if reason == FailReason::Cancelled {
                Status::CANCELLED
            } else {
                Status::ERROR
            };
            let error = reason.to_string();
            (
                status,
                error_report(&d, &source, &fetch, &error, FailureState::Failed),
            )
        }
        End::Rescheduled { after } => {
            let state = FailureState::Rescheduled {
                after_ms: after.as_millis(),
            };
            let error = "every source failed transiently";
            (
                Status::ERROR,
                error_report(&d, &source, &fetch, error, state),
            )
        }
    };
    drop(sink);
    let _ = req.end(status, report).await;
    status
}

fn error_report(
    d: &Directive<'_>,
    url: &str,
    fetch: &BlobFetch,
    error: &str,
    state: FailureState,
) -> PayloadBuf {
    let report = ErrorReport {
        transfer_id: d.transfer_id,
        url,
        error,
        retry_count: fetch.retries(),
        status_code: fetch.last_status(),
        state,
        offset: fetch.offset(),
    };
    encode(|b| report.encode(b))
}

pub(crate) fn encode_refusal(transfer_id: &str, error: &str) -> PayloadBuf {
    let report = RefusalReport { transfer_id, error };
    encode(|b| report.encode(b))
}

async fn refuse(req: IncomingRequest, status: Status, transfer_id: &str, error: &str) -> Status {
    let _ = req.end(status, encode_refusal(transfer_id, error)).await;
    status
}

/// One report map as a Value payload (an over-long text is cut to fit).
pub(crate) fn encode(f: impl Fn(&mut [u8]) -> Result<usize, BufferTooSmall>) -> PayloadBuf {
    let mut buf = vec![0u8; REPORT_BUF];
    for _ in 0..4 {
        if let Ok(n) = f(&mut buf) {
            buf.truncate(n);
            return PayloadBuf::Value(buf);
        }
        buf.resize(buf.len() * 4, 0);
    }
    PayloadBuf::Empty
}
