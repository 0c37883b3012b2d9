//! The client's remote logging: records logged through [`crate::Client::log`] (or the
//! `tracing`/`log` front ends an application builds on it) wait in the core's
//! [`LogShipper`], shared between the application's threads and the driver, which sends them
//! in `telemetry/log-batch` requests whenever a batch is due and the connection is open.
//!
//! Everything about batching, acks, losses and the server's live control is the core's; this
//! file only holds the shipper where both sides can reach it.

use std::sync::{Arc, Mutex, MutexGuard};
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
