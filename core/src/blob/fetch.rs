//! The fetch machine: which range to ask from which source next, what a response and its
//! body mean, when to retry, fail over, restart or give up.
//!
//! Resume rules. Inside one run a broken connection resumes at the exact offset received
//! (the sink still holds every byte written). Across a reboot the caller persists
//! [`Fetch::state`], whose offset is a hash checkpoint at or below what the sink reported
//! durable, aligned to its erase block; [`Fetch::resume`] continues from there with the
//! SHA-256 state saved at that point. Nothing is committed before the hash of every byte
//! matched.

use super::io::{
    Action, End, FailReason, FetchError, Progress, RangeRequest, ResponseHead, TransportError,
};
use super::plan::FetchPlan;
use super::sink::{BlobSink, SinkError};
use super::state::{self, ETAG_MAX, TransferState};
use crate::backoff::Backoff;
use crate::time::Instant;
use heapless::{String, Vec};
use sha2::{Digest, Sha256};

/// Hash checkpoints kept by default between what is durable and what is received.
pub const CHECKPOINTS: usize = 4;
/// Restarts from offset 0 one source may cause (ignored ranges, changed ETags) before it is
/// given up on.
const RESTART_LIMIT: u32 = 3;
const FAR: Instant = Instant::from_micros(u64::MAX);

/// The SHA-256 state after hashing bytes `0..offset`.
#[derive(Clone)]
struct Checkpoint {
    offset: u64,
    hasher: Sha256,
}

impl Checkpoint {
    fn zero() -> Self {
        Self {
            offset: 0,
            hasher: Sha256::new(),
        }
    }
}

/// What is known about one source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    Usable,
    /// Out of retries on transient failures: worth trying again later.
    Exhausted,
    /// Permanently unusable for this blob.
    Gone,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    /// The next request can go out now.
    Ready,
    /// Backing off until then.
    Waiting(Instant),
    /// A request is out, no response head yet.
    InFlight { start: u64, end: u64, idle: Instant },
    /// Body bytes up to `end` (exclusive) are expected.
    Receiving {
        end: u64,
        idle: Instant,
        progressed: bool,
    },
    /// Ended; the sink is aborted on the next call that holds it (failures only).
    Ending(End),
    /// Ended for good.
    Done(End),
}

/// One blob transfer, from plan to end state. See the [module docs](super).
///
/// The caller's loop, with the HTTP part stubbed by a server that has the blob:
///
/// ```
/// use sentelite_core::blob::{Action, End, Fetch, FetchPlan, ResponseHead, SliceSink};
/// use sentelite_core::time::Instant;
///
/// let blob = b"firmware image";
/// let sha256 = [0x1d, 0xf2, 0xf3, 0x85, 0x3d, 0x10, 0xa3, 0x05, 0xaa, 0x52, 0xd3, 0x6f,
///     0xd4, 0xa0, 0x3f, 0x57, 0x21, 0xd7, 0xce, 0x7d, 0xae, 0xf6, 0xf7, 0xe5, 0xe8,
///     0xd5, 0x10, 0x74, 0xd3, 0x13, 0x61, 0xf1];
/// let plan: FetchPlan<4, 96> = FetchPlan::new("http://host:8080/blobs/1df2f385…", 14, sha256)?;
/// let mut buf = [0u8; 64];
/// let mut sink = SliceSink::new(&mut buf);
/// let now = Instant::ZERO;
/// let mut fetch = Fetch::new(now, plan, &mut sink);
/// let end = loop {
///     match fetch.poll_action(now, &mut sink) {
///         Action::Request(req) => {
///             // GET req.url with `Range: bytes={req.start}-`, `If-Range: {req.if_range}`.
///             let start = req.start as usize;
///             let head = ResponseHead { status: 206, range_start: Some(req.start),
///                                       total: Some(14), etag: Some("\"v1\"") };
///             if fetch.on_response(now, head).is_ok() {
///                 let _ = fetch.on_body(now, &blob[start..], &mut sink);
///                 fetch.on_body_end(now, &mut sink);
///             }
///         }
///         Action::Wait(_until) => { /* sleep until then, or until the response moves */ }
///         Action::Finished(end) => break *end,
///     }
/// };
/// assert!(matches!(end, End::Completed { bytes: 14, .. }));
/// assert_eq!(sink.committed(), Some(&blob[..]));
/// # Ok::<(), sentelite_core::blob::PlanError>(())
/// ```
///
/// `C` hash checkpoints (about 120 bytes each) wait between what is received and what the
/// sink reports durable; while they are all waiting, further interval boundaries are not
/// kept, so the resume point lags further. A boundary the sink already holds durably when
/// it is hashed becomes the resume point at once, without waiting: a sink whose `durable`
/// trails what it was given by less than its erase block (a flash partition written
/// through) needs none, `C = 0`.
pub struct Fetch<const M: usize, const U: usize, const C: usize = CHECKPOINTS> {
    plan: FetchPlan<M, U>,
    backoff: Backoff,
    phase: Phase,
    source: usize,
    marks: [Mark; M],
    last_gone: FailReason,
    failures: u32,
    retries: u32,
    restarts: u32,
    mismatches: u32,
    last_status: Option<u16>,
    offset: u64,
    hasher: Sha256,
    base: Checkpoint,
    pending: Vec<Checkpoint, C>,
    interval: u64,
    etag: Option<String<ETAG_MAX>>,
    needs_begin: bool,
    first_source: usize,
    mixed: bool,
    downloaded: u64,
    next_progress: u64,
    progress: Option<Progress>,
}

impl<const M: usize, const U: usize, const C: usize> core::fmt::Debug for Fetch<M, U, C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Fetch")
            .field("phase", &self.phase)
            .field("source", &self.source)
            .field("offset", &self.offset)
            .field("durable_checkpoint", &self.base.offset)
            .field("downloaded", &self.downloaded)
            .field("retries", &self.retries)
            .finish_non_exhaustive()
    }
}

impl<const M: usize, const U: usize> Fetch<M, U> {
    /// Start a transfer. A sink that already holds the blob ends it at once as
    /// `Completed` with nothing downloaded; otherwise the sink is told to
    /// [`begin`](BlobSink::begin).
    pub fn new(now: Instant, plan: FetchPlan<M, U>, sink: &mut impl BlobSink) -> Self {
        Self::start(now, plan, sink)
    }

    /// Continue a transfer saved with [`Fetch::state`] (after a reboot). A state that does
    /// not fit the plan or the sink (other blob, offset beyond what the sink holds durably
    /// or not on its erase block, unreadable hash state) starts over from offset 0.
    pub fn resume(
        now: Instant,
        plan: FetchPlan<M, U>,
        saved: &TransferState,
        sink: &mut impl BlobSink,
    ) -> Self {
        Self::restore(now, plan, saved, sink)
    }
}

impl<const M: usize, const U: usize, const C: usize> Fetch<M, U, C> {
    fn blank(plan: FetchPlan<M, U>, erase_block: u32) -> Self {
        let erase = u64::from(erase_block.max(1));
        let step = u64::from(plan.options.checkpoint_step.max(1));
        let interval = step.div_ceil(erase).saturating_mul(erase);
        let backoff = plan.options.backoff.clone();
        let next_progress = plan.options.progress_step;
        Self {
            plan,
            backoff,
            phase: Phase::Ready,
            source: 0,
            marks: [Mark::Usable; M],
            last_gone: FailReason::BadResponse,
            failures: 0,
            retries: 0,
            restarts: 0,
            mismatches: 0,
            last_status: None,
            offset: 0,
            hasher: Sha256::new(),
            base: Checkpoint::zero(),
            pending: Vec::new(),
            interval,
            etag: None,
            needs_begin: false,
            first_source: 0,
            mixed: false,
            downloaded: 0,
            next_progress,
            progress: None,
        }
    }

    /// [`Fetch::new`] for a machine with `C` checkpoints (`Fetch::<M, U, C>::…`).
    pub fn new_with_checkpoints(
        now: Instant,
        plan: FetchPlan<M, U>,
        sink: &mut impl BlobSink,
    ) -> Self {
        Self::start(now, plan, sink)
    }

    /// [`Fetch::resume`] for a machine with `C` checkpoints (`Fetch::<M, U, C>::…`).
    pub fn resume_with_checkpoints(
        now: Instant,
        plan: FetchPlan<M, U>,
        saved: &TransferState,
        sink: &mut impl BlobSink,
    ) -> Self {
        Self::restore(now, plan, saved, sink)
    }

    /// [`Fetch::new_with_checkpoints`] without a saved state, else
    /// [`Fetch::resume_with_checkpoints`]: for a caller that learns at run time whether it
    /// has a resume point (a device's `blob::serve`), with the machine's set-up compiled
    /// once instead of once per constructor.
    pub fn start_or_resume_with_checkpoints(
        now: Instant,
        plan: FetchPlan<M, U>,
        saved: Option<&TransferState>,
        sink: &mut impl BlobSink,
    ) -> Self {
        Self::set_up(now, plan, saved, sink)
    }

    /// Start a transfer. A sink that already holds the blob ends it at once as
    /// `Completed` with nothing downloaded; otherwise the sink is told to
    /// [`begin`](BlobSink::begin).
    fn start(now: Instant, plan: FetchPlan<M, U>, sink: &mut impl BlobSink) -> Self {
        Self::set_up(now, plan, None, sink)
    }

    /// Continue a transfer saved with [`Fetch::state`] (after a reboot). A state that does
    /// not fit the plan or the sink (other blob, offset beyond what the sink holds durably
    /// or not on its erase block, unreadable hash state) starts over from offset 0.
    fn restore(
        now: Instant,
        plan: FetchPlan<M, U>,
        saved: &TransferState,
        sink: &mut impl BlobSink,
    ) -> Self {
        Self::set_up(now, plan, Some(saved), sink)
    }

    /// [`start`](Self::start) without `saved`, [`restore`](Self::restore) with it.
    fn set_up(
        _now: Instant,
        plan: FetchPlan<M, U>,
        saved: Option<&TransferState>,
        sink: &mut impl BlobSink,
    ) -> Self {
        let mut fetch = Self::blank(plan, sink.erase_block());
        if fetch.dedup(sink) {
            return fetch;
        }
        let Some(saved) = saved else {
            fetch.begin_fresh(sink);
            return fetch;
        };
        let erase = u64::from(sink.erase_block().max(1));
        let source = usize::try_from(saved.source).unwrap_or(usize::MAX);
        let fits = saved.size == fetch.plan.size
            && saved.sha256 == fetch.plan.sha256
            && saved.offset > 0
            && saved.offset <= fetch.plan.size
            && saved.offset <= sink.durable()
            && saved.offset.is_multiple_of(erase)
            && source < fetch.plan.sources.len();
        let hasher = if fits {
            state::load_hasher(&saved.hash_state)
        } else {
            None
        };
        if saved.size == fetch.plan.size && saved.sha256 == fetch.plan.sha256 {
            fetch.downloaded = saved.downloaded;
        }
        let Some(hasher) = hasher else {
            sink.abort();
            fetch.begin_fresh(sink);
            return fetch;
        };
        fetch.offset = saved.offset;
        fetch.base = Checkpoint {
            offset: saved.offset,
            hasher: hasher.clone(),
        };
        fetch.hasher = hasher;
        fetch.source = source;
        fetch.first_source = source;
        fetch.etag = saved.etag.clone();
        fetch.next_progress = saved
            .offset
            .saturating_add(fetch.plan.options.progress_step);
        fetch
    }

    fn dedup(&mut self, sink: &mut impl BlobSink) -> bool {
        if self.plan.sources.is_empty() {
            self.phase = Phase::Ending(End::Failed {
                reason: FailReason::Status(0),
            });
            return true;
        }
        if !sink.contains(&self.plan.sha256) {
            return false;
        }
        self.offset = self.plan.size;
        self.phase = Phase::Done(End::Completed {
            bytes: self.plan.size,
            downloaded: 0,
            sha256: self.plan.sha256,
        });
        true
    }

    fn begin_fresh(&mut self, sink: &mut impl BlobSink) {
        if let Err(e) = sink.begin(self.plan.size) {
            self.phase = Phase::Ending(fail(FailReason::Sink(e)));
        }
    }

    /// What to do next. Ends that need the sink (aborting it after a failure, committing a
    /// blob resumed at its last byte) happen here, so the caller passes it along.
    pub fn poll_action(&mut self, now: Instant, sink: &mut impl BlobSink) -> Action<'_> {
        self.advance(now, sink);
        let deadline = self.plan.options.deadline.unwrap_or(FAR);
        match self.phase {
            Phase::Ready => {
                let start = self.offset;
                let chunk = u64::from(self.plan.options.chunk_size);
                let end = if chunk == 0 {
                    self.plan.size
                } else {
                    start.saturating_add(chunk).min(self.plan.size)
                };
                self.phase = Phase::InFlight {
                    start,
                    end,
                    idle: self.idle_deadline(now),
                };
                let url = self
                    .plan
                    .sources
                    .get(self.source)
                    .map_or("", |s| s.as_str());
                Action::Request(RangeRequest {
                    source: self.source,
                    url,
                    start,
                    end_inclusive: (chunk != 0).then(|| end.saturating_sub(1)),
                    if_range: self.etag.as_deref().filter(|_| start > 0),
                })
            }
            Phase::Waiting(until) => Action::Wait(until.min(deadline)),
            Phase::InFlight { idle, .. } | Phase::Receiving { idle, .. } => {
                Action::Wait(idle.min(deadline))
            }
            Phase::Done(ref end) => Action::Finished(end),
            // `advance` never leaves the machine ending.
            Phase::Ending(_) => Action::Wait(now),
        }
    }

    /// Apply the clock and settle pending ends. Every branch either returns or moves the
    /// phase strictly on (Ending → Done, Waiting → Ready, timeouts → fewer retries left),
    /// and the loop is bounded besides.
    fn advance(&mut self, now: Instant, sink: &mut impl BlobSink) {
        for _ in 0..(2 * M + 8) {
            match self.phase {
                Phase::Done(_) => return,
                Phase::Ending(end) => {
                    if matches!(end, End::Failed { .. }) {
                        sink.abort();
                    }
                    self.phase = Phase::Done(end);
                    return;
                }
                _ if self.deadline_passed(now) => {
                    self.phase = Phase::Ending(fail(FailReason::Deadline));
                }
                Phase::Waiting(until) if now >= until => self.phase = Phase::Ready,
                Phase::InFlight { idle, .. } if now >= idle => self.attempt_failed(now, false),
                Phase::Receiving {
                    idle, progressed, ..
                } if now >= idle => self.attempt_failed(now, progressed),
                Phase::Ready if self.offset >= self.plan.size => self.finish(sink),
                _ => return,
            }
        }
    }

    /// The response head of the request in flight. `Ok` means: read the body into
    /// [`Fetch::on_body`]. An error means: drop this response.
    pub fn on_response(&mut self, now: Instant, head: ResponseHead<'_>) -> Result<(), FetchError> {
        let (start, end) = match self.phase {
            Phase::InFlight { start, end, .. } => (start, end),
            Phase::Ending(_) | Phase::Done(_) => return Err(FetchError::Finished),
            _ => return Err(FetchError::Unexpected),
        };
        if self.deadline_passed(now) {
            self.phase = Phase::Ending(fail(FailReason::Deadline));
            return Err(FetchError::Finished);
        }
        self.last_status = Some(head.status);
        let size = self.plan.size;
        match head.status {
            206 => {
                if head.range_start != Some(start) {
                    self.give_up_source(FailReason::BadResponse);
                    return Err(FetchError::BadRange);
                }
                if head.total.is_some_and(|t| t != size) {
                    self.give_up_source(FailReason::SizeMismatch);
                    return Err(FetchError::SizeChanged);
                }
                let changed = match (&self.etag, head.etag) {
                    (Some(ours), Some(theirs)) => ours.as_str() != theirs,
                    _ => false,
                };
                if changed {
                    self.restart_from_zero();
                    if matches!(self.phase, Phase::InFlight { .. }) {
                        self.attempt_failed(now, false);
                    }
                    return Err(FetchError::ContentChanged);
                }
                self.remember_etag(head.etag);
                self.phase = Phase::Receiving {
                    end,
                    idle: self.idle_deadline(now),
                    progressed: false,
                };
                Ok(())
            }
            200 => {
                if head.total.is_some_and(|t| t != size) {
                    self.give_up_source(FailReason::SizeMismatch);
                    return Err(FetchError::SizeChanged);
                }
                if start != 0 {
                    // The server ignored Range (or If-Range did not match): this body is
                    // the whole blob, so take it from offset 0.
                    self.restart_from_zero();
                    if !matches!(self.phase, Phase::InFlight { .. }) {
                        // This source restarted too often and was given up on.
                        return Err(FetchError::BadRange);
                    }
                }
                self.remember_etag(head.etag);
                self.phase = Phase::Receiving {
                    end: size,
                    idle: self.idle_deadline(now),
                    progressed: false,
                };
                Ok(())
            }
            s @ (408 | 425 | 429 | 500..=599) => {
                self.attempt_failed(now, false);
                Err(FetchError::Status(s))
            }
            s => {
                self.give_up_source(FailReason::Status(s));
                Err(FetchError::Status(s))
            }
        }
    }

    /// A chunk of the response body: written to the sink at the current offset and hashed.
    /// Bytes past the range asked for are ignored ([`FetchError::Overrun`]).
    pub fn on_body(
        &mut self,
        now: Instant,
        chunk: &[u8],
        sink: &mut impl BlobSink,
    ) -> Result<(), FetchError> {
        let end = match self.phase {
            Phase::Receiving { end, .. } => end,
            Phase::Ending(_) | Phase::Done(_) => {
                self.advance(now, sink);
                return Err(FetchError::Finished);
            }
            _ => return Err(FetchError::Unexpected),
        };
        if self.deadline_passed(now) {
            self.phase = Phase::Ending(fail(FailReason::Deadline));
            self.advance(now, sink);
            return Err(FetchError::Finished);
        }
        if self.needs_begin {
            sink.abort();
            if let Err(e) = sink.begin(self.plan.size) {
                return self.sink_failed(e, sink);
            }
            self.needs_begin = false;
        }
        let room = usize::try_from(end.saturating_sub(self.offset)).unwrap_or(usize::MAX);
        let data = chunk.get(..room).unwrap_or(chunk);
        if !data.is_empty() {
            if let Err(e) = sink.write_at(self.offset, data) {
                return self.sink_failed(e, sink);
            }
            if self.offset == 0 {
                self.first_source = self.source;
                self.mixed = false;
            }
            self.hash(data, sink.durable());
            if self.source != self.first_source {
                self.mixed = true;
            }
            self.downloaded = self.downloaded.saturating_add(data.len() as u64);
            self.promote(sink.durable());
            self.note_progress();
            self.phase = Phase::Receiving {
                end,
                idle: self.idle_deadline(now),
                progressed: true,
            };
        }
        if self.offset >= end {
            self.failures = 0;
            self.backoff.reset();
            self.phase = Phase::Ready;
            if self.offset >= self.plan.size {
                self.finish(sink);
            }
        }
        if data.len() < chunk.len() {
            return Err(FetchError::Overrun);
        }
        Ok(())
    }

    /// The response body ended. Short of the range asked for, it counts as a cut.
    pub fn on_body_end(&mut self, now: Instant, sink: &mut impl BlobSink) {
        match self.phase {
            Phase::Receiving { progressed, .. } => self.attempt_failed(now, progressed),
            Phase::InFlight { .. } => self.attempt_failed(now, false),
            _ => {}
        }
        self.advance(now, sink);
    }

    /// The request in flight failed in transport. Retried from the offset reached, at once
    /// if it delivered bytes, else after a backoff delay; a source out of retries is failed
    /// over.
    pub fn on_error(&mut self, now: Instant, _kind: TransportError) {
        match self.phase {
            Phase::Receiving { progressed, .. } => self.attempt_failed(now, progressed),
            Phase::InFlight { .. } => self.attempt_failed(now, false),
            _ => {}
        }
    }

    /// Stop the transfer: the sink is aborted and the end is `Failed { Cancelled }`,
    /// unless it had already ended.
    pub fn cancel(&mut self, sink: &mut impl BlobSink) {
        match self.phase {
            Phase::Done(_) => {}
            Phase::Ending(end @ End::Failed { .. }) => {
                sink.abort();
                self.phase = Phase::Done(end);
            }
            _ => {
                sink.abort();
                self.phase = Phase::Done(fail(FailReason::Cancelled));
            }
        }
    }

    /// Progress since the last call, at most one per `progress_step` bytes (the last one
    /// always reports the whole blob).
    pub fn poll_progress(&mut self) -> Option<Progress> {
        self.progress.take()
    }

    /// When [`Fetch::poll_action`] wants calling at the latest; `None` once ended. An
    /// instant in the past means now.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let deadline = self.plan.options.deadline.unwrap_or(FAR);
        let at = match self.phase {
            Phase::Done(_) => return None,
            Phase::Ready | Phase::Ending(_) => Instant::ZERO,
            Phase::Waiting(until) => until.min(deadline),
            Phase::InFlight { idle, .. } | Phase::Receiving { idle, .. } => idle.min(deadline),
        };
        (at != FAR).then_some(at)
    }

    /// The resume point to persist: the newest hash checkpoint at or below what the sink
    /// reported durable, on an erase-block boundary.
    pub fn state(&self) -> TransferState {
        TransferState {
            source: u32::try_from(self.source).unwrap_or(u32::MAX),
            etag: if self.base.offset > 0 {
                self.etag.clone()
            } else {
                None
            },
            offset: self.base.offset,
            size: self.plan.size,
            sha256: self.plan.sha256,
            downloaded: self.downloaded,
            hash_state: state::save_hasher(&self.base.hasher),
        }
    }

    /// How it ended, once it has.
    pub fn end(&self) -> Option<&End> {
        match &self.phase {
            Phase::Done(end) => Some(end),
            _ => None,
        }
    }

    /// Bytes of the blob received and written (from offset 0).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Body bytes taken from the network, restarts and resumes included.
    pub fn downloaded(&self) -> u64 {
        self.downloaded
    }

    /// Retries made after failed attempts, over all sources.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// The last HTTP status seen.
    pub fn last_status(&self) -> Option<u16> {
        self.last_status
    }

    /// Index of the source in use.
    pub fn source(&self) -> usize {
        self.source
    }

    /// The plan being fetched.
    pub fn plan(&self) -> &FetchPlan<M, U> {
        &self.plan
    }

    fn phase_is_done(&self) -> bool {
        matches!(self.phase, Phase::Ending(_) | Phase::Done(_))
    }

    fn deadline_passed(&self, now: Instant) -> bool {
        self.plan.options.deadline.is_some_and(|d| now >= d)
    }

    fn idle_deadline(&self, now: Instant) -> Instant {
        let t = self.plan.options.attempt_timeout;
        if t.as_micros() == 0 { FAR } else { now + t }
    }

    fn remember_etag(&mut self, etag: Option<&str>) {
        // Weak validators must not be used with If-Range (RFC 9110, 13.1.5).
        if let Some(tag) = etag.filter(|t| !t.starts_with("W/")) {
            self.etag = String::try_from(tag).ok();
        }
    }

    /// Hash `data` (just written at `offset`), keeping a checkpoint at each interval
    /// boundary: as the resume point at once when the sink already holds it (`durable`),
    /// else waiting while there is room for one.
    fn hash(&mut self, data: &[u8], durable: u64) {
        let mut rest = data;
        while !rest.is_empty() {
            let next = (self.offset / self.interval)
                .saturating_add(1)
                .saturating_mul(self.interval);
            let n = usize::try_from(next.saturating_sub(self.offset))
                .unwrap_or(usize::MAX)
                .clamp(1, rest.len());
            let (piece, tail) = rest.split_at_checked(n).unwrap_or((rest, &[]));
            self.hasher.update(piece);
            self.offset = self.offset.saturating_add(piece.len() as u64);
            if self.offset.is_multiple_of(self.interval) {
                let checkpoint = Checkpoint {
                    offset: self.offset,
                    hasher: self.hasher.clone(),
                };
                if self.offset <= durable {
                    // Every waiting checkpoint lies below it and is durable too.
                    self.pending.clear();
                    self.base = checkpoint;
                } else {
                    let _ = self.pending.push(checkpoint);
                }
            }
            rest = tail;
        }
    }

    /// Move the resume point up to the newest checkpoint the sink now holds durably.
    fn promote(&mut self, durable: u64) {
        let durable = durable.min(self.offset);
        // Oldest first: the durable ones are a prefix, the last of them the newest.
        if let Some(newest) = self.pending.iter().rev().find(|c| c.offset <= durable) {
            self.base = newest.clone();
            self.pending.retain(|c| c.offset > durable);
        }
    }

    fn note_progress(&mut self) {
        let size = self.plan.size;
        if self.offset >= self.next_progress || self.offset >= size {
            self.progress = Some(progress(self.offset, size));
            self.next_progress = self.offset.saturating_add(self.plan.options.progress_step);
        }
    }

    /// Forget everything received: the next bytes are the blob from offset 0, into a sink
    /// that begins again. A source causing this too often is given up on.
    fn restart_from_zero(&mut self) {
        self.reset_to_zero();
        self.restarts = self.restarts.saturating_add(1);
        if self.restarts > RESTART_LIMIT {
            self.give_up_source(FailReason::BadResponse);
        }
    }

    fn reset_to_zero(&mut self) {
        self.offset = 0;
        self.hasher = Sha256::new();
        self.base = Checkpoint::zero();
        self.pending.clear();
        self.etag = None;
        self.needs_begin = true;
        self.first_source = self.source;
        self.mixed = false;
        self.next_progress = self.plan.options.progress_step;
    }

    /// Every byte is in: verify, then commit or start over elsewhere.
    fn finish(&mut self, sink: &mut impl BlobSink) {
        let digest: [u8; 32] = self.hasher.clone().finalize().into();
        if self.plan.options.verify && digest != self.plan.sha256 {
            sink.abort();
            self.mismatches = self.mismatches.saturating_add(1);
            let blamed = self.first_source;
            let mixed = self.mixed;
            self.reset_to_zero();
            if !mixed {
                // All of it came from one source: that source serves other bytes.
                self.mark(blamed, FailReason::Corrupt);
            }
            if self.mismatches > 2 * M as u32 {
                self.phase = Phase::Ending(fail(FailReason::Corrupt));
                return;
            }
            self.fail_over();
            return;
        }
        self.phase = match sink.commit(&digest) {
            Ok(()) => Phase::Done(End::Completed {
                bytes: self.plan.size,
                downloaded: self.downloaded,
                sha256: digest,
            }),
            Err(e) => {
                sink.abort();
                Phase::Done(fail(FailReason::Sink(e)))
            }
        };
    }

    fn sink_failed(&mut self, e: SinkError, sink: &mut impl BlobSink) -> Result<(), FetchError> {
        sink.abort();
        self.phase = Phase::Done(fail(FailReason::Sink(e)));
        Err(FetchError::Finished)
    }

    /// A transient failure of the attempt in flight.
    fn attempt_failed(&mut self, now: Instant, progressed: bool) {
        if self.phase_is_done() {
            return;
        }
        if progressed {
            self.failures = 0;
            self.backoff.reset();
            self.phase = Phase::Ready;
            return;
        }
        self.failures = self.failures.saturating_add(1);
        self.retries = self.retries.saturating_add(1);
        if self.failures > self.plan.options.retry_count {
            if let Some(m) = self.marks.get_mut(self.source) {
                *m = Mark::Exhausted;
            }
            self.fail_over();
        } else {
            self.phase = Phase::Waiting(now + self.backoff.next_delay());
        }
    }

    fn mark(&mut self, source: usize, reason: FailReason) {
        if let Some(m) = self.marks.get_mut(source) {
            *m = Mark::Gone;
            self.last_gone = reason;
        }
    }

    fn give_up_source(&mut self, reason: FailReason) {
        self.mark(self.source, reason);
        self.fail_over();
    }

    /// Continue on the next usable source (the current one included, last), or end.
    fn fail_over(&mut self) {
        if self.phase_is_done() {
            return;
        }
        let count = self.plan.sources.len().min(M);
        // The sources after this one, wrapping round to it; a step rather than a remainder.
        let mut i = self.source;
        let next = (0..count).find_map(|_| {
            i += 1;
            if i >= count {
                i = 0;
            }
            (self.marks.get(i) == Some(&Mark::Usable)).then_some(i)
        });
        match next {
            Some(i) => {
                if i != self.source {
                    self.etag = None;
                    self.restarts = 0;
                }
                self.source = i;
                self.failures = 0;
                self.backoff.reset();
                self.phase = Phase::Ready;
            }
            None if self.marks.iter().take(count).any(|m| *m == Mark::Exhausted) => {
                self.phase = Phase::Ending(End::Rescheduled {
                    after: self.backoff.next_delay(),
                });
            }
            None => self.phase = Phase::Ending(fail(self.last_gone)),
        }
    }
}

fn fail(reason: FailReason) -> End {
    End::Failed { reason }
}

fn progress(loaded: u64, total: u64) -> Progress {
    let percent = if total == 0 {
        100
    } else {
        (u128::from(loaded.min(total)) * 100 / u128::from(total)) as u8
    };
    Progress {
        loaded,
        total,
        percent,
    }
}
