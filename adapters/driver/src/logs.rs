//! The client's remote logging: records logged through [`crate::Client::log`] (or the
//! `tracing`/`log` front ends an application builds on it) wait in the core's
//! [`LogShipper`], shared between the application's threads and the driver, which sends them
//! in `telemetry/log-batch` requests whenever a batch is due and the connection is open.
//!
//! Everything about batching, acks, losses and the server's live control is the core's; this
//! file only holds the shipper where both sides can reach it.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use sentelite_core::log::{
    FilterStats, Level, LogConfig, LogShipper, Logged, NewRecord, QueueStats,
};

/// The shipper over a heap buffer, behind a lock both the application and the driver take
/// briefly.
pub(crate) type SharedShipper = Arc<Mutex<LogShipper<Vec<u8>>>>;

/// A new shipper with `queue_bytes` of record storage; the first record of this run gets
/// sequence number 0 (the run is told apart by the Hello's boot id).
pub(crate) fn shipper(config: LogConfig, queue_bytes: usize) -> SharedShipper {
    Arc::new(Mutex::new(LogShipper::new(
        vec![0u8; queue_bytes.max(64)],
        config,
        0,
    )))
}

/// Locks the shipper; a panic elsewhere while holding it leaves it usable (every call keeps
/// it consistent between statements).
pub(crate) fn lock(shipper: &SharedShipper) -> MutexGuard<'_, LogShipper<Vec<u8>>> {
    shipper.lock().unwrap_or_else(|p| p.into_inner())
}

/// Now in Unix milliseconds, the timestamp of records logged on a host.
pub(crate) fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// One record as an application gives it.
pub(crate) fn record<'a>(
    level: Level,
    namespace: &'a str,
    id: Option<&'a str>,
    message: &'a str,
    data: &'a [u8],
) -> NewRecord<'a> {
    NewRecord {
        time_ms: unix_millis(),
        level,
        namespace,
        id,
        message,
        data,
    }
}

/// What a client's logging has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Records in the queue (sent and not yet acknowledged included).
    pub queued: usize,
    /// The queue's counters: queued, dropped (each reported to the server in a gap), acked.
    pub queue: QueueStats,
    /// Records the filter held back (sampling, rate limits), per level.
    pub filtered: FilterStats,
    /// True while dropped records wait to be reported to the server in a gap.
    pub unreported_gap: bool,
}

impl LogStats {
    /// True once every record logged was either acknowledged by the server or reported to
    /// it as dropped: nothing is left to send.
    pub fn settled(&self) -> bool {
        self.queued == 0 && !self.unreported_gap
    }
}

/// The outcome of [`crate::Client::log`].
pub type LogOutcome = Logged;

thread_local! {
    /// True while this thread runs the client's own sending path (the driver task) or a log
    /// front end: records raised then are not logged, so shipping logs can never log.
    static SILENT: Cell<bool> = const { Cell::new(false) };
}

/// True while the current thread is on the client's own sending path.
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
pub(crate) fn silenced() -> bool {
    SILENT.with(Cell::get)
}

/// Marks the current thread as on the sending path until dropped.
pub(crate) struct Silence {
    before: bool,
}

impl Silence {
    pub(crate) fn begin() -> Self {
        Self {
            before: SILENT.with(|s| s.replace(true)),
        }
    }
}

impl Drop for Silence {
    fn drop(&mut self) {
        SILENT.with(|s| s.set(self.before));
    }
}

/// `task`, with the thread marked silent during each of its polls.
pub(crate) fn silent<F: Future<Output = ()>>(task: F) -> Silent<F> {
    Silent {
        task: Box::pin(task),
    }
}

/// See [`silent`].
pub(crate) struct Silent<F> {
    task: Pin<Box<F>>,
}

impl<F: Future<Output = ()>> Future for Silent<F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let _silence = Silence::begin();
        self.task.as_mut().poll(cx)
    }
}
